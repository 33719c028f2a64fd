/* What the portable core needs from a board (implemented by host/ and avr/). */
#ifndef EXO_HAL_H
#define EXO_HAL_H

#include <stdint.h>

/* Queue bytes for transmission to the host (may wait for room; never drops part of a frame). */
void hal_uart_write(const uint8_t *data, uint8_t len);

/* Drive the motor-enable output: 1 while the exoskeleton may move, 0 halts the drives. */
void hal_motor_enable(uint8_t on);

/* Critical sections around state shared with the tick interrupt. */
#ifdef __AVR__
#include <avr/interrupt.h>
#include <util/atomic.h>
#define EXO_ATOMIC_BEGIN ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
#define EXO_ATOMIC_END }
#else
#define EXO_ATOMIC_BEGIN {
#define EXO_ATOMIC_END }
#endif

#endif
