/* AVR build: ATmega328P at 16 MHz (Arduino Uno / Nano class).
 *
 * Pins (Arduino numbering in brackets):
 *   PD0/PD1 [D0/D1]  UART, 115200 8N1 (U2X, UBRR 16: 117647 baud, +2.1 %, as Arduino does)
 *   PD2..PD6 [D2..D6] stimulus lights 1..5, active high
 *   PB0 [D8]         motor enable, active high (pull it down on the board: low in reset)
 *   PB1 [D9]         vendor fault input, active low with the internal pull-up (fault MOTOR)
 *   PB5 [D13]        on while a host session is open
 * Timer1 in CTC mode interrupts at 10 kHz: it writes the LED outputs computed on the
 * previous tick (constant latency), advances the flicker engine and the millisecond clock.
 * The hardware watchdog (WDT, 120 ms) resets the chip if the main loop ever hangs.
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <avr/wdt.h>
#include <util/atomic.h>

#include "../core/controller.h"
#include "../core/hal.h"

#define LED_SHIFT 2
#define LED_PINS ((uint8_t)(((1u << EXO_LED_COUNT) - 1u) << LED_SHIFT))
#define RX_SIZE 64u
#define TX_SIZE 128u

static exo_leds_t leds;
static exo_t ctl;
static volatile uint32_t ms;
static volatile uint8_t next_out;
static uint8_t sub_ms;

static volatile uint8_t rx_buf[RX_SIZE];
static volatile uint8_t rx_head, rx_tail;
static volatile uint16_t rx_overrun;
static volatile uint8_t tx_buf[TX_SIZE];
static volatile uint8_t tx_head, tx_tail;

/* Before main: read and clear the reset cause (the WDT stays on otherwise), and paint the free
 * RAM between the static data and the stack with STACK_PAINT, so that the deepest stack ever
 * used can be read off the RAM (the simavr runner reports it at exit). */
#define STACK_PAINT 0xC5u
extern uint8_t _end;
uint8_t mcusr_at_reset __attribute__((section(".noinit")));
void early_init(void) __attribute__((naked, used, section(".init3")));
void early_init(void)
{
    uint8_t *p = &_end;
    mcusr_at_reset = MCUSR;
    MCUSR = 0;
    wdt_disable();
    while (p < (uint8_t *)(RAMEND - 16u))
        *p++ = STACK_PAINT;
}

ISR(TIMER1_COMPA_vect)
{
    PORTD = (uint8_t)((PORTD & (uint8_t)~LED_PINS) | (uint8_t)(next_out << LED_SHIFT));
    next_out = exo_leds_tick(&leds);
    if (++sub_ms >= EXO_TICKS_PER_MS) {
        sub_ms = 0;
        ms++;
    }
}

ISR(USART_RX_vect)
{
    uint8_t status = UCSR0A, byte = UDR0;
    uint8_t next = (uint8_t)((rx_head + 1u) % RX_SIZE);
    if (status & (1u << DOR0))
        rx_overrun++;
    if (next == rx_tail) {
        rx_overrun++;
        return;
    }
    rx_buf[rx_head] = byte;
    rx_head = next;
}

ISR(USART_UDRE_vect)
{
    if (tx_head == tx_tail) {
        UCSR0B &= (uint8_t)~(1u << UDRIE0);
        return;
    }
    UDR0 = tx_buf[tx_tail];
    tx_tail = (uint8_t)((tx_tail + 1u) % TX_SIZE);
}

/* Idle sleep until the next interrupt (SLEEP_MODE_IDLE: SM bits 0). */
static void idle_sleep(void)
{
    SMCR = (uint8_t)(1u << SE);
    sleep_cpu();
    SMCR = 0;
}

void hal_uart_write(const uint8_t *data, uint8_t len)
{
    while (len--) {
        uint8_t next = (uint8_t)((tx_head + 1u) % TX_SIZE);
        while (next == tx_tail) {
            /* full: wait for the transmitter (interrupts stay on, the LEDs keep their time) */
            wdt_reset();
            idle_sleep();
        }
        tx_buf[tx_head] = *data++;
        tx_head = next;
        UCSR0B |= (uint8_t)(1u << UDRIE0);
    }
}

void hal_motor_enable(uint8_t on)
{
    if (on)
        PORTB |= (uint8_t)(1u << PB0);
    else
        PORTB &= (uint8_t)~(1u << PB0);
}

static uint32_t millis(void)
{
    uint32_t v;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { v = ms; }
    return v;
}

static void board_init(void)
{
    PORTB = (uint8_t)(1u << PB1);                 /* motor off, pull-up on the fault input */
    DDRB = (uint8_t)((1u << PB0) | (1u << PB5));
    PORTD = 0;
    DDRD = LED_PINS;

    UBRR0 = 16u;                                  /* 115200 with U2X at 16 MHz */
    UCSR0A = (uint8_t)(1u << U2X0);
    UCSR0C = (uint8_t)((1u << UCSZ01) | (1u << UCSZ00)); /* 8N1 */
    UCSR0B = (uint8_t)((1u << RXEN0) | (1u << TXEN0) | (1u << RXCIE0));

    TCCR1A = 0;
    TCCR1B = (uint8_t)((1u << WGM12) | (1u << CS10)); /* CTC on OCR1A, no prescaler */
    OCR1A = (uint16_t)(F_CPU / EXO_TICK_HZ - 1u);
    TIMSK1 = (uint8_t)(1u << OCIE1A);
}

int main(void)
{
    uint16_t overrun_seen = 0;
    uint8_t fault_in = 0, fault_count = 0;
    uint32_t last_ms = 0xFFFFFFFFul;

    board_init();
    exo_leds_init(&leds);
    exo_init(&ctl, &leds, 0);
    wdt_enable(WDTO_120MS);
    sei();

    for (;;) {
        uint32_t now;
        uint8_t n = 0, pin_fault;
        uint16_t ov;

        wdt_reset();
        now = millis();
        /* most wake-ups are timer ticks with nothing to do: go back to sleep at once */
        if (now == last_ms && rx_tail == rx_head && leds.ev_head == leds.ev_tail)
            goto sleep;
        last_ms = now;
        /* a bounded batch of input, so that time-driven work never waits for a flood */
        while (rx_tail != rx_head && n++ < 32u) {
            uint8_t byte = rx_buf[rx_tail];
            rx_tail = (uint8_t)((rx_tail + 1u) % RX_SIZE);
            exo_rx(&ctl, byte, now);
        }
        ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { ov = rx_overrun; }
        if (ov != overrun_seen) {
            ctl.overrun += (uint16_t)(ov - overrun_seen);
            overrun_seen = ov;
        }
        now = millis();
        exo_poll(&ctl, now);

        /* vendor fault input: 10 consecutive equal reads (one per loop) change its level */
        pin_fault = (uint8_t)!(PINB & (1u << PB1));
        if (pin_fault != fault_in) {
            if (++fault_count >= 10u) {
                fault_in = pin_fault;
                fault_count = 0;
                exo_vendor_fault(&ctl, "MOTOR", fault_in, now);
            }
        } else {
            fault_count = 0;
        }
        if (ctl.session)
            PORTB |= (uint8_t)(1u << PB5);
        else
            PORTB &= (uint8_t)~(1u << PB5);

    sleep:
        /* sleep until the next interrupt (a tick at most 100 us away) unless input waits */
        cli();
        if (rx_tail == rx_head) {
            SMCR = (uint8_t)(1u << SE);   /* idle mode: timers and the UART keep running */
            sei();                        /* the instruction after SEI runs before any interrupt */
            sleep_cpu();
            SMCR = 0;
        }
        sei();
    }
}
