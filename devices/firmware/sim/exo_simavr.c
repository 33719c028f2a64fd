/* Run the AVR firmware image in simavr with its UART on a pseudo-terminal.
 *
 *   exo-simavr FIRMWARE.elf [--mcu atmega328p] [--freq 16000000] [--link PATH]
 *              [--trace CSV] [--vcd FILE] [--duration S]
 *
 * The UART is bridged to a pty by simavr's uart_pty part; the host (ExoskeletonDriver,
 * `ssvep-exo conformance`) opens the printed path. The LED pins (PD2..PD6), motor enable (PB0)
 * and session LED (PB5) are traced through pin IRQ callbacks into CSV rows
 * "t_ns,wall_ns,signal,value": t_ns is simulated time (cycles / frequency), wall_ns the
 * CLOCK_MONOTONIC time at which the simulation produced the edge (the clock of pylsl's
 * local_clock and Python's time.monotonic on Linux).
 *
 * Pacing: whenever the firmware sleeps (its idle loop, between 10 kHz timer ticks) the runner
 * waits until the wall clock reaches the simulated time, so the host sees the firmware in real
 time (at most 1 ms ahead of it). When the simulation falls behind (this process was not
 * scheduled, or a sleep overslept), it catches up by running faster than real time, but by at
 * most MAX_LAG_NS: a longer lag is forgiven (the simulated clock slips) instead of being made
 * up, which would shorten the firmware's intervals (its watchdog) as the host sees them. The runner also asks for a higher scheduling
 * priority (nice -10) where it is allowed to: it stands for a microcontroller of its own.
 * SIGUSR1 pulls the vendor-fault input PB1 low, SIGUSR2 releases it; SIGINT/SIGTERM end the run.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "avr_extint.h"
#include "avr_ioport.h"
#include "sim_avr.h"
#include "sim_elf.h"
#include "sim_irq.h"
#include "sim_time.h"
#include "sim_vcd_file.h"
#include "uart_pty.h"

typedef struct {
    const char *name;
    char port;
    uint8_t pin;
    int last;
} signal_t;

static signal_t signals[] = {
    { "led1", 'D', 2, -1 }, { "led2", 'D', 3, -1 }, { "led3", 'D', 4, -1 },
    { "led4", 'D', 5, -1 }, { "led5", 'D', 6, -1 }, { "motor", 'B', 0, -1 },
    { "session", 'B', 5, -1 },
};
#define N_SIGNALS (sizeof signals / sizeof signals[0])

static avr_t *avr;
static FILE *trace;
static uart_pty_t uart_pty;
static avr_vcd_t vcd;
static volatile sig_atomic_t stop_requested, fault_request;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define MAX_LAG_NS 20000000ull  /* catch up at most 20 ms of lag; forgive the rest */
#define MIN_SLEEP_NS 1000000ull /* sleep only once 1 ms ahead: fewer, longer sleeps */
static uint64_t wall_base_ns;      /* wall time of simulated time 0 (slips forward on lags) */
static uint64_t slipped_ns;        /* total lag forgiven */

/* avr->sleep: wait until the wall clock reaches the end of the sleep in simulated time. */
static void paced_sleep(avr_t *a, avr_cycle_count_t how_long)
{
    uint64_t target = wall_base_ns + avr_cycles_to_nsec(a, a->cycle + how_long);
    uint64_t now = mono_ns();
    if (now > target + MAX_LAG_NS) {
        uint64_t slip = now - target - MAX_LAG_NS;
        wall_base_ns += slip;
        slipped_ns += slip;
        return;
    }
    if (target > now + MIN_SLEEP_NS) {
        struct timespec ts = { (time_t)(target / 1000000000ull),
                               (long)(target % 1000000000ull) };
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

static void on_pin(struct avr_irq_t *irq, uint32_t value, void *param)
{
    signal_t *s = (signal_t *)param;
    (void)irq;
    value = value ? 1u : 0u;
    if ((int)value == s->last)
        return;
    s->last = (int)value;
    if (trace)
        fprintf(trace, "%llu,%llu,%s,%u\n",
                (unsigned long long)avr_cycles_to_nsec(avr, avr->cycle),
                (unsigned long long)mono_ns(), s->name, value);
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        fault_request = 1;
    else if (sig == SIGUSR2)
        fault_request = 2;
    else
        stop_requested = 1;
}

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s FIRMWARE.elf [--mcu NAME] [--freq HZ] [--link PATH] "
                    "[--trace CSV] [--vcd FILE] [--duration S]\n", prog);
}

int main(int argc, char **argv)
{
    const char *elf = NULL, *mcu = "atmega328p", *link = NULL, *trace_path = NULL;
    const char *vcd_path = NULL;
    unsigned long freq = 16000000ul;
    double duration = 0.0;
    elf_firmware_t fw;
    struct sigaction sa;
    avr_irq_t *fault_pin;
    uint64_t end_cycle = 0, flush_at;
    uint32_t iter = 0;
    int i, state, rc = 0;
    char tmp_link[4096] = "";

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mcu") && i + 1 < argc)
            mcu = argv[++i];
        else if (!strcmp(argv[i], "--freq") && i + 1 < argc)
            freq = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--link") && i + 1 < argc)
            link = argv[++i];
        else if (!strcmp(argv[i], "--trace") && i + 1 < argc)
            trace_path = argv[++i];
        else if (!strcmp(argv[i], "--vcd") && i + 1 < argc)
            vcd_path = argv[++i];
        else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
            duration = strtod(argv[++i], NULL);
        else if (argv[i][0] != '-' && !elf)
            elf = argv[i];
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (!elf) {
        usage(argv[0]);
        return 2;
    }
    memset(&fw, 0, sizeof fw);
    if (access(elf, R_OK) != 0 || elf_read_firmware(elf, &fw) != 0) {
        fprintf(stderr, "exo-simavr: cannot read the firmware image %s\n", elf);
        return 1;
    }
    if (!fw.mmcu[0])
        snprintf(fw.mmcu, sizeof fw.mmcu, "%s", mcu);
    if (!fw.frequency)
        fw.frequency = (uint32_t)freq;
    avr = avr_make_mcu_by_name(fw.mmcu);
    if (!avr) {
        fprintf(stderr, "exo-simavr: simavr does not know the MCU %s\n", fw.mmcu);
        return 1;
    }
    avr_init(avr);
    avr_load_firmware(avr, &fw);
    /* INT0/INT1 share PD2/PD3 with lights 1 and 2. simavr polls a low-level-triggered external
     * interrupt pin every cycle while it is low, even with the interrupt disabled, which
     * would make a dark light cost a callback per cycle; the firmware uses neither. */
    avr_extint_set_strict_lvl_trig(avr, 0, 0);
    avr_extint_set_strict_lvl_trig(avr, 1, 0);

    uart_pty_init(avr, &uart_pty);
    uart_pty_connect(&uart_pty, '0');

    if (trace_path) {
        trace = fopen(trace_path, "w");
        if (!trace) {
            fprintf(stderr, "exo-simavr: cannot write %s: %s\n", trace_path, strerror(errno));
            return 1;
        }
        fprintf(trace, "t_ns,wall_ns,signal,value\n");
    }
    if (vcd_path && avr_vcd_init(avr, vcd_path, &vcd, 100000) != 0) {
        fprintf(stderr, "exo-simavr: cannot write %s\n", vcd_path);
        return 1;
    }
    for (i = 0; i < (int)N_SIGNALS; i++) {
        avr_irq_t *irq = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ(signals[i].port),
                                       signals[i].pin);
        avr_irq_register_notify(irq, on_pin, &signals[i]);
        if (vcd_path)
            avr_vcd_add_signal(&vcd, irq, 1, signals[i].name);
    }
    if (vcd_path)
        avr_vcd_start(&vcd);
    fault_pin = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 1);

    if (link) {
        snprintf(tmp_link, sizeof tmp_link, "%s.tmp%ld", link, (long)getpid());
        unlink(tmp_link);
        if (symlink(uart_pty.pty.slavename, tmp_link) != 0 || rename(tmp_link, link) != 0) {
            fprintf(stderr, "exo-simavr: cannot create the link %s: %s\n", link, strerror(errno));
            return 1;
        }
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);

    printf("exo-simavr: %s at %lu Hz, firmware %s\n", fw.mmcu, (unsigned long)fw.frequency, elf);
    printf("exo-simavr: serving on %s\n", link ? link : uart_pty.pty.slavename);
    if (link)
        printf("exo-simavr: pty %s\n", uart_pty.pty.slavename);
    fflush(stdout);

    if (duration > 0)
        end_cycle = (uint64_t)(duration * (double)fw.frequency);
    if (setpriority(PRIO_PROCESS, 0, -10) != 0 && errno != EACCES && errno != EPERM)
        fprintf(stderr, "exo-simavr: setpriority: %s\n", strerror(errno));
    wall_base_ns = mono_ns() - avr_cycles_to_nsec(avr, avr->cycle);
    avr->sleep = paced_sleep;
    flush_at = mono_ns() + 200000000ull;
    do {
        state = avr_run(avr);
        if (fault_request) {
            /* an external driver on PB1: low asserts the fault, released it floats back to the
             * pull-up (set as an external pull too, or simavr's pull-up would win at once) */
            avr_ioport_external_t ext = { .name = 'B', .mask = 1u << 1,
                                          .value = fault_request == 1 ? 0u : (1u << 1) };
            avr_ioctl(avr, AVR_IOCTL_IOPORT_SET_EXTERNAL('B'), &ext);
            avr_raise_irq(fault_pin, fault_request == 1 ? 0 : 1);
            fault_request = 0;
        }
        if (trace && (++iter & 0xFFFFu) == 0u && mono_ns() > flush_at) {
            fflush(trace);
            flush_at = mono_ns() + 200000000ull;
        }
        if (end_cycle && avr->cycle >= end_cycle)
            break;
    } while (!stop_requested && state != cpu_Done && state != cpu_Crashed);

    {   /* deepest stack: the firmware painted its free RAM with 0xC5 at reset; the stack is
         * what lies above the highest run of 16 painted bytes below the top of RAM */
        int top = (int)avr->ramend, low = top, run = 0, a;
        for (a = top; a > 0x100; a--) {
            run = avr->data[a] == 0xC5 ? run + 1 : 0;
            if (run == 16) {
                low = a + 16;
                break;
            }
        }
        printf("exo-simavr: stack used at most %d bytes of RAM (0x%03x..0x%03x)\n",
               top - low + 1, (unsigned)low, (unsigned)top);
        printf("exo-simavr: %.3f s simulated; the simulated clock slipped %.3f s behind the "
               "wall clock while this process waited for a CPU\n",
               (double)avr->cycle / (double)fw.frequency, (double)slipped_ns * 1e-9);
        fflush(stdout);
    }
    if (state == cpu_Crashed) {
        fprintf(stderr, "exo-simavr: the firmware crashed at pc 0x%04x after %.3f s\n",
                (unsigned)avr->pc, (double)avr->cycle / (double)fw.frequency);
        rc = 3;
    }
    if (vcd_path)
        avr_vcd_stop(&vcd);
    if (trace)
        fclose(trace);
    /* no uart_pty_stop(): its thread leaves its loop only when select() fails, so a signal
     * that arrives outside select() makes the join wait forever; exit() ends the thread. */
    if (link)
        unlink(link);
    {   /* uart_pty leaves a /tmp/simavr-uart0 link: remove it when it is ours */
        char target[256];
        ssize_t n = readlink("/tmp/simavr-uart0", target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            if (!strcmp(target, uart_pty.pty.slavename))
                unlink("/tmp/simavr-uart0");
        }
    }
    avr_terminate(avr);
    return rc;
}
