/* LED flicker engine: one 32-bit phase accumulator per light, advanced by a hardware timer.
 *
 * Every tick (EXO_TICK_HZ) each running light adds its increment inc = round(f * 2^32 / tick)
 * to its accumulator; the light is on while the accumulator is below 2^31 (a square wave,
 * 50 % duty on average, on during the first half of each cycle). The mean frequency is exact
 * to the resolution tick / 2^32 (2.3 uHz at 10 kHz); single edges sit on the tick grid, so
 * each edge is late by less than one tick (the jitter; one period or on-time varies by at most
 * one tick). A light starts at its configured phase: phase 0 turns it on at the start tick.
 *
 * Requests from the main loop (start, stop) take effect on the next tick, where the lights
 * of one request start or stop together; the tick reports each start/stop as an event with
 * its tick number, which the main loop sends to the host.
 */
#ifndef EXO_LEDS_H
#define EXO_LEDS_H

#include <stdint.h>

#include "config.h"

typedef struct {
    uint8_t mask;       /* lights that started or stopped together */
    uint8_t on;         /* 1 started, 0 stopped */
    uint32_t tick;      /* tick at which the outputs changed */
} exo_led_event_t;

typedef struct {
    /* configuration (main loop; only for lights that are off) */
    uint32_t inc[EXO_LED_COUNT];
    uint32_t phase0[EXO_LED_COUNT];
    /* tick state */
    uint32_t acc[EXO_LED_COUNT];
    uint32_t remain[EXO_LED_COUNT];     /* ticks left of a timed run, 0 = until LEDOFF */
    uint32_t tick;                      /* number of the tick being computed */
    uint8_t running;                    /* mask of lights flickering */
    uint8_t out;                        /* output levels of the tick computed last */
    /* requests from the main loop, taken by the next tick */
    volatile uint8_t req_on, req_off;
    uint32_t req_remain[EXO_LED_COUNT];
    /* events from the tick to the main loop */
    exo_led_event_t ev[EXO_LED_EVENTS];
    volatile uint8_t ev_head, ev_tail;
    volatile uint8_t ev_lost;
} exo_leds_t;

void exo_leds_init(exo_leds_t *l);

/* Phase increment of a frequency given in millihertz. */
uint32_t exo_leds_increment(uint32_t freq_mhz);
/* Accumulator start value of a phase given in tenths of a degree (0..3599). */
uint32_t exo_leds_phase(uint16_t phase_ddeg);

/* Main loop side. Masks are bit i for light i+1. */
uint8_t exo_leds_busy(const exo_leds_t *l);            /* lights on or about to start */
void exo_leds_configure(exo_leds_t *l, uint8_t index, uint32_t inc, uint32_t phase0);
void exo_leds_start(exo_leds_t *l, uint8_t mask, uint32_t duration_ticks);
void exo_leds_stop(exo_leds_t *l, uint8_t mask);
uint8_t exo_leds_pop_event(exo_leds_t *l, exo_led_event_t *ev);

/* Tick side: compute the outputs of the next tick (apply them at the start of that tick, so
 * that edges keep a constant latency); returns the output mask. */
uint8_t exo_leds_tick(exo_leds_t *l);

#endif
