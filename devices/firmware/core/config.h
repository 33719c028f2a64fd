/* Compile-time constants of the reference controller firmware (see README.md). */
#ifndef EXO_CONFIG_H
#define EXO_CONFIG_H

#include <stdint.h>

/* Protocol (docs/protocol.md). */
#define EXO_MAX_FRAME 128u      /* bytes of one frame, '$' and line end included */
#define EXO_MAX_ARGS 10u        /* arguments kept per received frame (more -> BAD_ARGS) */
#define EXO_SEEN_SIZE 64u       /* remembered host frames (sequence memory) */

/* Time base: one hardware timer tick drives the LEDs; milliseconds derive from it. */
#define EXO_TICK_HZ 10000ul     /* LED engine rate: 100 us per tick */
#define EXO_TICKS_PER_MS (EXO_TICK_HZ / 1000ul)

/* LED flicker engine. */
#define EXO_LED_COUNT 5u        /* lights 1..5 (mask bits 0..4) */
#define EXO_LED_FREQ_MIN_MHZ 1000ul     /* 1.000 Hz */
#define EXO_LED_FREQ_MAX_MHZ 100000ul   /* 100.000 Hz */
#define EXO_LED_DURATION_MAX_MS 600000ul /* 10 min for a timed LEDON */
#define EXO_LED_EVENTS 8u       /* queued start/stop events (tick context -> main loop) */

#endif
