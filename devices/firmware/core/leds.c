#include "leds.h"

#include "hal.h"

void exo_leds_init(exo_leds_t *l)
{
    uint8_t i;
    for (i = 0; i < EXO_LED_COUNT; i++) {
        l->inc[i] = exo_leds_increment(10000ul); /* 10 Hz until configured */
        l->phase0[i] = 0;
        l->acc[i] = 0;
        l->remain[i] = 0;
        l->req_remain[i] = 0;
    }
    l->tick = 0;
    l->running = 0;
    l->out = 0;
    l->req_on = l->req_off = 0;
    l->ev_head = l->ev_tail = 0;
    l->ev_lost = 0;
}

uint32_t exo_leds_increment(uint32_t freq_mhz)
{
    /* round(f_mHz / 1000 / EXO_TICK_HZ * 2^32) */
    uint64_t num = ((uint64_t)freq_mhz << 32) + (EXO_TICK_HZ * 1000ull) / 2u;
    return (uint32_t)(num / (EXO_TICK_HZ * 1000ull));
}

uint32_t exo_leds_phase(uint16_t phase_ddeg)
{
    /* round(phase / 3600 * 2^32) */
    return (uint32_t)((((uint64_t)phase_ddeg << 32) + 1800u) / 3600u);
}

uint8_t exo_leds_busy(const exo_leds_t *l)
{
    uint8_t m;
    EXO_ATOMIC_BEGIN
    m = (uint8_t)((l->running | l->req_on) & (uint8_t)~l->req_off);
    EXO_ATOMIC_END
    return m;
}

void exo_leds_configure(exo_leds_t *l, uint8_t index, uint32_t inc, uint32_t phase0)
{
    if (index >= EXO_LED_COUNT)
        return;
    EXO_ATOMIC_BEGIN
    l->inc[index] = inc;
    l->phase0[index] = phase0;
    EXO_ATOMIC_END
}

void exo_leds_start(exo_leds_t *l, uint8_t mask, uint32_t duration_ticks)
{
    uint8_t i;
    EXO_ATOMIC_BEGIN
    for (i = 0; i < EXO_LED_COUNT; i++)
        if (mask & (1u << i))
            l->req_remain[i] = duration_ticks;
    l->req_off = (uint8_t)(l->req_off & ~mask);
    l->req_on = (uint8_t)(l->req_on | mask);
    EXO_ATOMIC_END
}

void exo_leds_stop(exo_leds_t *l, uint8_t mask)
{
    EXO_ATOMIC_BEGIN
    l->req_on = (uint8_t)(l->req_on & ~mask);
    l->req_off = (uint8_t)(l->req_off | mask);
    EXO_ATOMIC_END
}

uint8_t exo_leds_pop_event(exo_leds_t *l, exo_led_event_t *ev)
{
    uint8_t got = 0;
    EXO_ATOMIC_BEGIN
    if (l->ev_tail != l->ev_head) {
        *ev = l->ev[l->ev_tail];
        l->ev_tail = (uint8_t)((l->ev_tail + 1u) % EXO_LED_EVENTS);
        got = 1;
    }
    EXO_ATOMIC_END
    return got;
}

static void push_event(exo_leds_t *l, uint8_t mask, uint8_t on)
{
    uint8_t next = (uint8_t)((l->ev_head + 1u) % EXO_LED_EVENTS);
    if (next == l->ev_tail) {
        l->ev_lost++;
        return;
    }
    l->ev[l->ev_head].mask = mask;
    l->ev[l->ev_head].on = on;
    l->ev[l->ev_head].tick = l->tick;
    l->ev_head = next;
}

uint8_t exo_leds_tick(exo_leds_t *l)
{
    uint8_t i, bit, stop, start, out = 0;

    l->tick++;
    if (!(l->running | l->req_on | l->req_off)) {   /* all dark: the common case */
        l->out = 0;
        return 0;
    }
    /* stops: requested, or the end of a timed run */
    stop = (uint8_t)(l->req_off & l->running);
    l->req_off = 0;
    for (i = 0, bit = 1; i < EXO_LED_COUNT; i++, bit = (uint8_t)(bit << 1))
        if ((l->running & bit) && l->remain[i] && --l->remain[i] == 0u)
            stop |= bit;
    if (stop) {
        l->running = (uint8_t)(l->running & ~stop);
        push_event(l, stop, 0);
    }
    /* advance the lights that keep running, then start the requested ones at their phase */
    for (i = 0, bit = 1; i < EXO_LED_COUNT; i++, bit = (uint8_t)(bit << 1))
        if (l->running & bit)
            l->acc[i] += l->inc[i];
    start = (uint8_t)(l->req_on & ~l->running);
    l->req_on = 0;
    if (start) {
        for (i = 0, bit = 1; i < EXO_LED_COUNT; i++, bit = (uint8_t)(bit << 1))
            if (start & bit) {
                l->acc[i] = l->phase0[i];
                l->remain[i] = l->req_remain[i];
            }
        l->running |= start;
        push_event(l, start, 1);
    }
    for (i = 0, bit = 1; i < EXO_LED_COUNT; i++, bit = (uint8_t)(bit << 1))
        if ((l->running & bit) && !(l->acc[i] & 0x80000000ul))
            out |= bit;
    l->out = out;
    return out;
}
