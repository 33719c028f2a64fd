/* Frame codec of docs/protocol.md: a streaming parser and a frame builder, fixed buffers. */
#ifndef EXO_FRAME_H
#define EXO_FRAME_H

#include <stdint.h>

#include "config.h"

/* Why the parser discarded input (the same counters as devices/protocol.py). */
enum exo_drop {
    EXO_DROP_NOISE = 0,   /* bytes outside any frame */
    EXO_DROP_TRUNCATED,   /* a '$' arrived before the line ended */
    EXO_DROP_OVERLONG,    /* longer than EXO_MAX_FRAME */
    EXO_DROP_MALFORMED,   /* grammar */
    EXO_DROP_BAD_CRC,
    EXO_DROP_BAD_SEQ,     /* sequence number above 65535 */
    EXO_DROP_COUNT
};

/* A verified frame; its strings point into the parser's buffer (valid until the next byte). */
typedef struct {
    uint16_t seq;
    const char *verb;
    uint8_t argc;                       /* number of arguments on the wire */
    const char *argv[EXO_MAX_ARGS];     /* the first EXO_MAX_ARGS of them, NUL-terminated */
    uint16_t content_crc;               /* CRC-16 of "VERB[,args]": identifies the command */
} exo_frame_t;

typedef struct {
    uint8_t buf[EXO_MAX_FRAME];
    uint8_t len;
    uint8_t state;                      /* idle, in a frame, skipping an overlong line */
    uint32_t drops[EXO_DROP_COUNT];
    uint32_t frames;
} exo_parser_t;

void exo_parser_init(exo_parser_t *p);

/* Feed one byte; returns 1 and fills *out when it completes a valid frame. Never fails. */
uint8_t exo_parser_feed(exo_parser_t *p, uint8_t byte, exo_frame_t *out);

/* Frame builder: exo_tx_begin, then arguments, then exo_tx_end gives the wire bytes. */
typedef struct {
    char buf[EXO_MAX_FRAME];
    uint8_t len;
    uint8_t overflow;
} exo_tx_t;

void exo_tx_begin(exo_tx_t *t, uint16_t seq, const char *verb_flash);
void exo_tx_arg_flash(exo_tx_t *t, const char *s_flash);   /* constant string (flash on AVR) */
void exo_tx_arg_ram(exo_tx_t *t, const char *s);
void exo_tx_arg_u32(exo_tx_t *t, uint32_t v);
/* A signed fixed-point value: value / 10^decimals printed with exactly `decimals` digits. */
void exo_tx_arg_fixed(exo_tx_t *t, int32_t value, uint8_t decimals);
/* Append "*CRC\n"; returns the frame length, or 0 if it did not fit (nothing to send). */
uint8_t exo_tx_end(exo_tx_t *t);

/* Argument parsing: EXO_ARG_OK, EXO_ARG_FORMAT (-> BAD_ARGS) or EXO_ARG_RANGE (-> OUT_OF_RANGE).
 * `max` must stay below 10^8. */
enum { EXO_ARG_FORMAT = 0, EXO_ARG_OK = 1, EXO_ARG_RANGE = 2 };
uint8_t exo_parse_uint(const char *s, uint32_t max, uint32_t *out);     /* plain decimal */
/* Decimal with up to `decimals` fraction digits, scaled: "13.5" with 3 -> 13500. */
uint8_t exo_parse_fixed(const char *s, uint8_t decimals, uint32_t max, uint32_t *out);
/* 1 when the RAM string equals the constant (flash on AVR) string. */
uint8_t exo_str_eq_flash(const char *ram, const char *flash);

#endif
