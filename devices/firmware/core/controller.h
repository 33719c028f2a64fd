/* The controller side of docs/protocol.md (version 2) with the LED-stimulus extension.
 *
 * Portable C99, no dynamic allocation: the whole state is one exo_t. The board calls
 * exo_rx() for each received byte and exo_poll() at least every millisecond with its
 * millisecond clock; the core answers through hal_uart_write() and drives
 * hal_motor_enable(). The LED engine's tick runs elsewhere (a timer interrupt on AVR).
 */
#ifndef EXO_CONTROLLER_H
#define EXO_CONTROLLER_H

#include <stdint.h>

#include "config.h"
#include "frame.h"
#include "leds.h"

#define EXO_PROTOCOL_VERSION 2u
#define EXO_WATCHDOG_MS 500u        /* W: halt after this long without a session HB */
#define EXO_TELEMETRY_MS 100u       /* periodic telemetry */
#define EXO_STEP_MS 600u            /* one step */
#define EXO_STEP_MM 500             /* its length */
#define EXO_TURN_MDEG_PER_MS 45u    /* 45 degrees per second */
#define EXO_WALK_MAX 10u
#define EXO_TURN_MAX 90u
#define EXO_BATTERY_FULL 100000000ul   /* micro-percent */
#define EXO_BATTERY_LOW 5000000ul      /* 5 % */
#define EXO_NONCE_MAX 16u

enum exo_state { EXO_SITTING = 0, EXO_STANDING, EXO_WALKING, EXO_TURNING, EXO_STOPPED,
                 EXO_FAULT, EXO_ESTOP };

typedef struct {
    uint16_t seq;
    uint16_t content_crc;
    uint8_t reply;      /* 0 = ACK, else a NAK reason index; 0xFF = empty slot */
} exo_seen_t;

typedef struct {
    exo_parser_t parser;
    exo_leds_t *leds;
    exo_tx_t tx;
    uint16_t tx_seq;
    /* state machine */
    uint8_t state;
    uint8_t seated;
    char fault_code[17];        /* vendor code causing FAULT; "" = FAULT from low battery */
    uint8_t vendor_fault_active;/* the vendor cause still holds (RESET refused) */
    /* session */
    uint8_t session;
    char nonce[EXO_NONCE_MAX + 1u];
    uint8_t watchdog_fault;     /* the last session ended by the watchdog, none opened since */
    uint32_t last_hb_ms;
    exo_seen_t seen[EXO_SEEN_SIZE];
    uint8_t seen_next;
    /* motion and pose */
    uint32_t steps;
    int32_t x_mm, y_mm;
    uint32_t heading_mdeg;      /* 0..359999, counter-clockwise */
    uint32_t battery;           /* micro-percent */
    uint8_t steps_left;
    uint16_t step_ms;           /* progress of the current step */
    uint32_t turn_left_mdeg;
    int8_t turn_sign;
    uint32_t battery_frac;      /* sub-unit drain accumulator */
    /* time and telemetry */
    uint32_t now_ms;
    uint32_t next_tel_ms;
    uint32_t since_ms;          /* ms since the last change of state or fault (saturates) */
    uint8_t reported_state;
    uint8_t reported_fault;     /* index into the fault-name table, or 0xFF for a vendor code */
    uint8_t started;
    /* counters */
    uint32_t overrun;           /* received bytes dropped before parsing (board reports them) */
    uint32_t leds_lost;
} exo_t;

void exo_init(exo_t *c, exo_leds_t *leds, uint32_t now_ms);
/* One received byte. */
void exo_rx(exo_t *c, uint8_t byte, uint32_t now_ms);
/* Time: motion, watchdog, telemetry and LED events. Call at least every millisecond. */
void exo_poll(exo_t *c, uint32_t now_ms);
/* The host's connection closed (where the board can tell, e.g. a pty hang-up): ends the session. */
void exo_link_closed(exo_t *c, uint32_t now_ms);
/* A vendor fault (`code`: 1-16 of [A-Z0-9_]); `active`=0 reports that its cause is gone. */
void exo_vendor_fault(exo_t *c, const char *code, uint8_t active, uint32_t now_ms);

#endif
