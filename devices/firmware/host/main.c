/* Host build: the firmware core served on a pseudo-terminal, like `ssvep-exo exo-sim --pty`.
 *
 * The LED engine runs on a virtual tick clock (EXO_TICK_HZ from the start, caught up from the
 * monotonic clock every loop), so its edges and events carry exact virtual times; the real
 * timing of the lights is what the AVR build in simavr measures.
 *
 *   exo-fw-host [--link PATH] [--trace CSV]
 *
 * Prints "exo-fw: serving on <pty>" once ready. SIGUSR1 raises the vendor fault MOTOR,
 * SIGUSR2 clears its cause; SIGINT/SIGTERM end it.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../core/controller.h"
#include "../core/hal.h"

static int master_fd = -1;
static int attached;
static FILE *trace;
static uint64_t t0_ns;
static volatile sig_atomic_t stop_requested, fault_signal;
static exo_leds_t leds;
static exo_t ctl;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void hal_uart_write(const uint8_t *data, uint8_t len)
{
    uint64_t give_up = mono_ns() + 20000000ull; /* a host that does not read: drop after 20 ms */
    while (attached && len) {
        ssize_t n = write(master_fd, data, len);
        if (n > 0) {
            data += n;
            len = (uint8_t)(len - (uint8_t)n);
        } else if (n < 0 && errno == EAGAIN && mono_ns() < give_up) {
            struct pollfd p = { master_fd, POLLOUT, 0 };
            poll(&p, 1, 1);
        } else {
            return;
        }
    }
}

void hal_motor_enable(uint8_t on)
{
    static int last = -1;
    if (trace && (int)on != last) {
        uint64_t now = mono_ns();
        fprintf(trace, "%llu,%llu,motor,%u\n", (unsigned long long)(now - t0_ns),
                (unsigned long long)now, on);
        fflush(trace);
    }
    last = on;
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        fault_signal = 1;
    else if (sig == SIGUSR2)
        fault_signal = 2;
    else
        stop_requested = 1;
}

static int open_pty(const char *link)
{
    int m, s;
    struct termios tio;
    char name[64];
    if (openpty(&m, &s, name, NULL, NULL) < 0) {
        fprintf(stderr, "exo-fw: cannot open a pty: %s\n", strerror(errno));
        return -1;
    }
    tcgetattr(s, &tio);
    cfmakeraw(&tio);
    tcsetattr(s, TCSANOW, &tio);
    close(s); /* the host opens it by path; the master sees POLLHUP until it does */
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    if (link) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp%ld", link, (long)getpid());
        unlink(tmp);
        if (symlink(name, tmp) != 0 || rename(tmp, link) != 0) {
            fprintf(stderr, "exo-fw: cannot create the link %s: %s\n", link, strerror(errno));
            close(m);
            return -1;
        }
    }
    printf("exo-fw: serving on %s\n", link ? link : name);
    if (link)
        printf("exo-fw: pty %s\n", name);
    fflush(stdout);
    return m;
}

int main(int argc, char **argv)
{
    const char *link = NULL, *trace_path = NULL;
    uint8_t last_out = 0;
    int i;
    struct sigaction sa;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--link") && i + 1 < argc)
            link = argv[++i];
        else if (!strcmp(argv[i], "--trace") && i + 1 < argc)
            trace_path = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--link PATH] [--trace CSV]\n", argv[0]);
            return 2;
        }
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (trace_path) {
        trace = fopen(trace_path, "w");
        if (!trace) {
            fprintf(stderr, "exo-fw: cannot write %s: %s\n", trace_path, strerror(errno));
            return 1;
        }
        fprintf(trace, "t_ns,wall_ns,signal,value\n");
    }
    master_fd = open_pty(link);
    if (master_fd < 0)
        return 1;
    t0_ns = mono_ns();
    exo_leds_init(&leds);
    exo_init(&ctl, &leds, 0);

    while (!stop_requested) {
        uint64_t now = mono_ns(), t = now - t0_ns;
        uint32_t now_ms = (uint32_t)(t / 1000000ull);
        uint32_t target = (uint32_t)(t / (1000000000ull / EXO_TICK_HZ));
        struct pollfd p = { master_fd, POLLIN, 0 };

        while ((int32_t)(target - leds.tick) > 0) {
            uint8_t out = exo_leds_tick(&leds);
            if (trace && out != last_out) {
                uint8_t k;
                for (k = 0; k < EXO_LED_COUNT; k++)
                    if ((out ^ last_out) & (1u << k))
                        fprintf(trace, "%llu,%llu,led%u,%u\n",
                                (unsigned long long)leds.tick * (1000000000ull / EXO_TICK_HZ),
                                (unsigned long long)now, k + 1u, (out >> k) & 1u);
            }
            last_out = out;
        }
        if (fault_signal) {
            exo_vendor_fault(&ctl, "MOTOR", fault_signal == 1, now_ms);
            fault_signal = 0;
        }
        poll(&p, 1, 1);
        if (p.revents & POLLHUP) {
            if (attached) {
                attached = 0;
                exo_link_closed(&ctl, now_ms);
            }
            exo_poll(&ctl, now_ms);
            usleep(1000);
            continue;
        }
        attached = 1;
        if (p.revents & POLLIN) {
            uint8_t buf[256];
            ssize_t n = read(master_fd, buf, sizeof buf), k;
            now_ms = (uint32_t)((mono_ns() - t0_ns) / 1000000ull);
            for (k = 0; k < n; k++)
                exo_rx(&ctl, buf[k], now_ms);
        }
        exo_poll(&ctl, (uint32_t)((mono_ns() - t0_ns) / 1000000ull));
    }
    if (trace)
        fclose(trace);
    if (link)
        unlink(link);
    return 0;
}
