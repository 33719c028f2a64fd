/* Unit tests of the portable core on the host: CRC, frame codec, LED engine, controller.
 * Built with AddressSanitizer and UBSan by `make test`; prints "N passed, N failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/controller.h"
#include "../core/crc16.h"
#include "../core/frame.h"
#include "../core/hal.h"
#include "../core/leds.h"

static int passed, failed;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond)                                                                    \
            passed++;                                                                \
        else {                                                                       \
            failed++;                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* ------------------------------------------------------------------ fake board */
static char wire[65536];
static size_t wire_len;
static int motor;

void hal_uart_write(const uint8_t *data, uint8_t len)
{
    if (wire_len + len < sizeof wire) {
        memcpy(wire + wire_len, data, len);
        wire_len += len;
    }
}

void hal_motor_enable(uint8_t on) { motor = on; }

/* ------------------------------------------------------------------ CRC and codec */
static uint8_t feed_str(exo_parser_t *p, const char *s, exo_frame_t *f)
{
    uint8_t got = 0;
    while (*s)
        got = (uint8_t)(got + exo_parser_feed(p, (uint8_t)*s++, f));
    return got;
}

static void test_crc(void)
{
    const char *vectors[] = {
        "$7,WALK,3*06C2\n", "$2,STAND*BE7F\n", "$2,ACK,2*00F4\n", "$5,TURN,L,30*38E3\n",
        "$8,STOP*84AF\n", "$4,HB*7D9C\n", "$4,NAK,3,ILLEGAL_STATE*7B87\n",
        "$1,HELLO,2,5EED0001*868C\n", "$6,NAK,9,NO_SESSION*B262\n",
    };
    size_t i;
    CHECK(exo_crc16((const uint8_t *)"123456789", 9) == 0x29B1u);
    for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        exo_parser_t p;
        exo_frame_t f;
        exo_parser_init(&p);
        CHECK(feed_str(&p, vectors[i], &f) == 1);
    }
}

static void test_parser(void)
{
    exo_parser_t p;
    exo_frame_t f;
    char line[200];
    int n;

    exo_parser_init(&p);
    CHECK(feed_str(&p, "xx$5,TURN,L,30*38E3\r\n", &f) == 1);
    CHECK(f.seq == 5 && !strcmp(f.verb, "TURN") && f.argc == 2);
    CHECK(!strcmp(f.argv[0], "L") && !strcmp(f.argv[1], "30"));
    CHECK(p.drops[EXO_DROP_NOISE] == 2);
    /* '$' restarts a frame */
    CHECK(feed_str(&p, "$1,WA$2,STAND*BE7F\n", &f) == 1 && f.seq == 2);
    CHECK(p.drops[EXO_DROP_TRUNCATED] == 1);
    /* bad CRC, lower-case CRC, leading zero in seq, 6-digit seq, seq above 65535 */
    CHECK(feed_str(&p, "$2,STAND*BE7E\n", &f) == 0 && p.drops[EXO_DROP_BAD_CRC] == 1);
    CHECK(feed_str(&p, "$2,STAND*be7f\n", &f) == 0);
    CHECK(feed_str(&p, "$02,STAND*XXXX\n", &f) == 0);
    CHECK(feed_str(&p, "$123456,HB*0000\n", &f) == 0);
    CHECK(p.drops[EXO_DROP_MALFORMED] == 3);
    /* "65536,HB" has a valid CRC computed here */
    {
        exo_tx_t t;
        exo_tx_begin(&t, 0, "HB");
        n = exo_tx_end(&t);
        CHECK(n > 0);
        snprintf(line, sizeof line, "$65536,HB*%04X\n", exo_crc16((const uint8_t *)"65536,HB", 8));
        CHECK(feed_str(&p, line, &f) == 0 && p.drops[EXO_DROP_BAD_SEQ] == 1);
        snprintf(line, sizeof line, "$0,HB*%04X\n", exo_crc16((const uint8_t *)"0,HB", 4));
        CHECK(feed_str(&p, line, &f) == 1 && f.seq == 0);
    }
    /* grammar: empty argument, 17-character argument, 9-letter verb, lower-case verb */
    CHECK(feed_str(&p, "$1,WALK,*0000\n", &f) == 0);
    CHECK(feed_str(&p, "$1,WALK,12345678901234567*0000\n", &f) == 0);
    CHECK(feed_str(&p, "$1,ABCDEFGHI*0000\n", &f) == 0);
    CHECK(feed_str(&p, "$1,walk*0000\n", &f) == 0);
    /* overlong: 127 bytes before LF pass, 128 do not */
    {
        exo_tx_t t;
        int k;
        exo_tx_begin(&t, 1, "X");
        for (k = 0; k < 7; k++)
            exo_tx_arg_ram(&t, "ABCDEFGHIJKLMNOP");
        n = exo_tx_end(&t);
        CHECK(n == 0); /* does not fit: the builder refuses */
    }
    memset(line, 0, sizeof line);
    strcpy(line, "$1,LONG");
    while (strlen(line) < 120)
        strcat(line, ",ABCDEF");
    line[120] = 0;
    {
        char body[200], frame[220];
        size_t len;
        strcpy(body, line + 1);
        len = strlen(body);
        while (len + 7 < 128) { /* '$' + body + "*XXXX" + LF = 128 bytes */
            body[len++] = 'A';
            body[len] = 0;
        }
        snprintf(frame, sizeof frame, "$%s*%04X\n", body, exo_crc16((const uint8_t *)body, (uint8_t)len));
        CHECK(strlen(frame) == 128);
        CHECK(feed_str(&p, frame, &f) == 1);
        body[len++] = 'A';
        body[len] = 0;
        snprintf(frame, sizeof frame, "$%s*%04X\n", body, exo_crc16((const uint8_t *)body, (uint8_t)len));
        CHECK(strlen(frame) == 129);
        CHECK(feed_str(&p, frame, &f) == 0 && p.drops[EXO_DROP_OVERLONG] == 1);
        /* the parser resynchronises on the next '$' */
        CHECK(feed_str(&p, "$4,HB*7D9C\n", &f) == 1);
    }
    /* garbage never crashes and never yields a frame without a valid CRC */
    {
        unsigned seed = 12345;
        int k, frames = 0;
        for (k = 0; k < 200000; k++) {
            seed = seed * 1103515245u + 12345u;
            frames += exo_parser_feed(&p, (uint8_t)(seed >> 16), &f);
        }
        CHECK(frames == 0);
    }
}

static void test_builder_and_args(void)
{
    exo_tx_t t;
    uint32_t v = 0;
    uint8_t n;
    exo_tx_begin(&t, 3, "TEL");
    exo_tx_arg_fixed(&t, -500, 3);
    exo_tx_arg_fixed(&t, 0, 3);
    exo_tx_arg_fixed(&t, 999, 1);
    exo_tx_arg_fixed(&t, -2147483647 - 1, 3);
    n = exo_tx_end(&t);
    CHECK(n > 0);
    CHECK(!strncmp(t.buf, "$3,TEL,-0.500,0.000,99.9,-2147483.648*", 38));
    CHECK(exo_parse_fixed("13", 3, 100000, &v) == EXO_ARG_OK && v == 13000);
    CHECK(exo_parse_fixed("13.5", 3, 100000, &v) == EXO_ARG_OK && v == 13500);
    CHECK(exo_parse_fixed("99.999", 3, 100000, &v) == EXO_ARG_OK && v == 99999);
    CHECK(exo_parse_fixed("0.5", 3, 100000, &v) == EXO_ARG_OK && v == 500);
    CHECK(exo_parse_fixed("1.2345", 3, 100000, &v) == EXO_ARG_FORMAT);
    CHECK(exo_parse_fixed("013", 3, 100000, &v) == EXO_ARG_FORMAT);
    CHECK(exo_parse_fixed(".5", 3, 100000, &v) == EXO_ARG_FORMAT);
    CHECK(exo_parse_fixed("5.", 3, 100000, &v) == EXO_ARG_FORMAT);
    CHECK(exo_parse_fixed("+5", 3, 100000, &v) == EXO_ARG_FORMAT);
    CHECK(exo_parse_fixed("100.001", 3, 100000, &v) == EXO_ARG_RANGE);
    CHECK(exo_parse_fixed("999999999", 3, 100000, &v) == EXO_ARG_RANGE);
    CHECK(exo_parse_fixed("1000000000", 3, 100000, &v) == EXO_ARG_FORMAT);
    CHECK(exo_parse_uint("0", 10, &v) == EXO_ARG_OK && v == 0);
    CHECK(exo_parse_uint("03", 10, &v) == EXO_ARG_FORMAT);
    CHECK(exo_parse_uint("3.0", 10, &v) == EXO_ARG_FORMAT);
    CHECK(exo_parse_uint("11", 10, &v) == EXO_ARG_RANGE);
}

/* ------------------------------------------------------------------ LED engine */
typedef struct {
    long rises, falls, on_ticks;
    long first_rise, last_rise, first_fall;
    long min_period, max_period;
} led_stats_t;

static void run_leds(exo_leds_t *l, long ticks, led_stats_t *st)
{
    uint8_t prev = l->out;
    long k, i;
    for (i = 0; i < EXO_LED_COUNT; i++) {
        memset(&st[i], 0, sizeof st[i]);
        st[i].first_rise = st[i].last_rise = st[i].first_fall = -1;
        st[i].min_period = 1L << 30;
    }
    for (k = 0; k < ticks; k++) {
        uint8_t out = exo_leds_tick(l);
        long t = (long)l->tick;
        for (i = 0; i < EXO_LED_COUNT; i++) {
            uint8_t b = (uint8_t)(1u << i);
            if (out & b)
                st[i].on_ticks++;
            if ((out & b) && !(prev & b)) {
                if (st[i].last_rise >= 0) {
                    long per = t - st[i].last_rise;
                    if (per < st[i].min_period)
                        st[i].min_period = per;
                    if (per > st[i].max_period)
                        st[i].max_period = per;
                }
                if (st[i].first_rise < 0)
                    st[i].first_rise = t;
                st[i].last_rise = t;
                st[i].rises++;
            }
            if (!(out & b) && (prev & b)) {
                if (st[i].first_fall < 0)
                    st[i].first_fall = t;
                st[i].falls++;
            }
        }
        prev = out;
    }
}

static void test_leds(void)
{
    static exo_leds_t l;
    led_stats_t st[EXO_LED_COUNT];
    exo_led_event_t ev;
    const uint32_t freqs[EXO_LED_COUNT] = { 13000, 17000, 21000, 1000, 100000 };
    long ticks = 100L * (long)EXO_TICK_HZ; /* 100 s */
    uint8_t i;

    exo_leds_init(&l);
    for (i = 0; i < EXO_LED_COUNT; i++)
        exo_leds_configure(&l, i, exo_leds_increment(freqs[i]), 0);
    exo_leds_start(&l, 0x1F, 0);
    CHECK(exo_leds_busy(&l) == 0x1F);
    run_leds(&l, ticks, st);
    CHECK(exo_leds_pop_event(&l, &ev) && ev.on == 1 && ev.mask == 0x1F && ev.tick == 1);
    for (i = 0; i < EXO_LED_COUNT; i++) {
        double f = freqs[i] / 1000.0;
        double measured = (double)(st[i].rises - 1) * EXO_TICK_HZ
                          / (double)(st[i].last_rise - st[i].first_rise);
        double duty = (double)st[i].on_ticks / (double)ticks;
        double nominal = EXO_TICK_HZ / f;
        /* all lights start together, on, at the start tick */
        CHECK(st[i].first_rise == 1);
        /* mean frequency: edge quantisation only (one tick over 100 s) */
        CHECK(fabs(measured - f) < 0.0005);
        /* every period within one tick of nominal */
        CHECK(st[i].min_period >= (long)floor(nominal) && st[i].max_period <= (long)ceil(nominal));
        CHECK(fabs(duty - 0.5) < 0.002);
    }
    /* phase: 90 degrees starts a quarter period into the cycle, so the first fall comes after
     * a quarter period; 180 degrees starts dark */
    exo_leds_stop(&l, 0x1F);
    exo_leds_tick(&l);
    while (exo_leds_pop_event(&l, &ev))
        ;
    exo_leds_configure(&l, 0, exo_leds_increment(10000), exo_leds_phase(900));
    exo_leds_configure(&l, 1, exo_leds_increment(10000), exo_leds_phase(1800));
    exo_leds_start(&l, 0x03, 0);
    {
        long start = (long)l.tick + 1;
        run_leds(&l, 3000, st);
        /* 10 Hz: 1000 ticks, a quarter = 250 (+1: the increment is rounded down) */
        CHECK(labs(st[0].first_fall - start - 250) <= 1);
        CHECK(labs(st[1].first_rise - start - 500) <= 1);   /* dark for half a period */
        CHECK(st[1].first_fall == -1 || st[1].first_fall > st[1].first_rise);
    }
    /* a timed run lasts exactly its ticks and reports its end */
    exo_leds_stop(&l, 0x1F);
    exo_leds_tick(&l);
    while (exo_leds_pop_event(&l, &ev))
        ;
    exo_leds_configure(&l, 2, exo_leds_increment(13000), 0);
    exo_leds_start(&l, 0x04, 40000); /* 4 s */
    run_leds(&l, 50000, st);
    CHECK(st[2].on_ticks > 19000 && st[2].on_ticks < 21000);
    {
        exo_led_event_t on, off;
        CHECK(exo_leds_pop_event(&l, &on) && on.on == 1 && on.mask == 0x04);
        CHECK(exo_leds_pop_event(&l, &off) && off.on == 0 && off.mask == 0x04);
        CHECK(off.tick - on.tick == 40000u);
        CHECK(!exo_leds_pop_event(&l, &ev));
    }
    /* increments: resolution of 2.3 uHz at 10 kHz */
    CHECK(fabs(exo_leds_increment(13000) * (double)EXO_TICK_HZ / 4294967296.0 - 13.0) < 3e-6);
    CHECK(exo_leds_increment(100000) == 42949673u);
}

/* ------------------------------------------------------------------ controller */
static exo_t ctl;
static exo_leds_t leds;
static uint32_t now_ms;

typedef struct {
    char verb[9];
    char args[EXO_MAX_ARGS][17];
    int argc;
} rx_frame_t;

static rx_frame_t got[256];
static int n_got;

static void collect(void)
{
    exo_parser_t p;
    exo_frame_t f;
    size_t i;
    exo_parser_init(&p);
    n_got = 0;
    for (i = 0; i < wire_len; i++) {
        if (exo_parser_feed(&p, (uint8_t)wire[i], &f) && n_got < 256) {
            int k;
            strcpy(got[n_got].verb, f.verb);
            got[n_got].argc = f.argc;
            for (k = 0; k < f.argc && k < (int)EXO_MAX_ARGS; k++)
                strcpy(got[n_got].args[k], f.argv[k]);
            n_got++;
        }
    }
    CHECK(p.drops[EXO_DROP_MALFORMED] + p.drops[EXO_DROP_BAD_CRC] + p.drops[EXO_DROP_NOISE] == 0);
    wire_len = 0;
}

static void advance_ms(uint32_t ms)
{
    uint32_t k;
    for (k = 0; k < ms; k++) {
        uint32_t t;
        now_ms++;
        for (t = 0; t < EXO_TICKS_PER_MS; t++)
            exo_leds_tick(&leds);
        exo_poll(&ctl, now_ms);
    }
}

/* Send one frame; return the ACK/NAK answering it ("ACK", or the NAK reason). */
static const char *send_cmd(uint16_t seq, const char *body_after_seq)
{
    static char answer[32];
    char body[128], line[160];
    const char *s;
    int i;
    snprintf(body, sizeof body, "%u,%s", seq, body_after_seq);
    snprintf(line, sizeof line, "$%s*%04X\n", body,
             exo_crc16((const uint8_t *)body, (uint8_t)strlen(body)));
    for (s = line; *s; s++)
        exo_rx(&ctl, (uint8_t)*s, now_ms);
    collect();
    strcpy(answer, "none");
    for (i = 0; i < n_got; i++) {
        if (!strcmp(got[i].verb, "ACK") && (unsigned)atoi(got[i].args[0]) == seq) {
            strcpy(answer, "ACK");
        } else if (!strcmp(got[i].verb, "NAK") && (unsigned)atoi(got[i].args[0]) == seq) {
            snprintf(answer, sizeof answer, "%s", got[i].args[1]);
        }
    }
    return answer;
}

static const char *last_tel(int field)
{
    int i;
    for (i = n_got - 1; i >= 0; i--)
        if (!strcmp(got[i].verb, "TEL"))
            return got[i].args[field];
    return "";
}

static const char *state_now(void)
{
    static char s[17];
    send_cmd(60000, "STATUS");
    strcpy(s, last_tel(0));
    return s;
}

static void boot(void)
{
    now_ms = 0;
    wire_len = 0;
    exo_leds_init(&leds);
    exo_init(&ctl, &leds, 0);
}

static void heartbeat_for(uint32_t ms, uint16_t *seq)
{
    uint32_t k;
    for (k = 0; k < ms; k += 100) {
        advance_ms(100);
        send_cmd((*seq)++, "HB");
    }
}

static void test_controller(void)
{
    uint16_t seq = 1;
    uint32_t t;

    boot();
    advance_ms(1);
    collect();
    CHECK(n_got == 1 && !strcmp(got[0].verb, "TEL"));   /* telemetry from power-up */
    CHECK(got[0].argc == 9 && !strcmp(got[0].args[0], "SITTING"));
    /* outside a session */
    CHECK(!strcmp(send_cmd(seq++, "STAND"), "NO_SESSION"));
    CHECK(!strcmp(send_cmd(seq++, "HB"), "NO_SESSION"));
    CHECK(!strcmp(send_cmd(seq++, "STOP"), "ACK"));
    CHECK(!strcmp(send_cmd(seq++, "WALK,0"), "OUT_OF_RANGE"));   /* arguments come first */
    CHECK(!strcmp(send_cmd(seq++, "HELLO,1,AB"), "BAD_VERSION"));
    CHECK(!strcmp(send_cmd(seq++, "HELLO,2,A-B"), "BAD_ARGS"));
    CHECK(!strcmp(send_cmd(seq++, "FLY"), "UNKNOWN_VERB"));
    CHECK(!strcmp(send_cmd(seq++, "STOP,1"), "BAD_ARGS"));
    /* a session: the ACK echoes the nonce */
    CHECK(!strcmp(send_cmd(seq, "HELLO,2,5EED0001"), "ACK"));
    CHECK(n_got >= 1 && got[0].argc == 4 && !strcmp(got[0].args[3], "5EED0001"));
    seq++;
    CHECK(!strcmp(send_cmd(seq++, "WALK,2"), "ILLEGAL_STATE"));
    CHECK(!strcmp(send_cmd(seq++, "STAND"), "ACK") && motor == 0);
    CHECK(!strcmp(last_tel(0), "STANDING") && !strcmp(last_tel(8), "0"));   /* TEL at once */
    CHECK(!strcmp(send_cmd(seq++, "STAND"), "ILLEGAL_STATE"));
    CHECK(!strcmp(send_cmd(seq++, "RESET"), "ILLEGAL_STATE"));
    CHECK(!strcmp(send_cmd(seq++, "WALK,03"), "BAD_ARGS"));
    CHECK(!strcmp(send_cmd(seq++, "WALK,11"), "OUT_OF_RANGE"));
    CHECK(!strcmp(send_cmd(seq++, "TURN,X,10"), "BAD_ARGS"));
    CHECK(!strcmp(send_cmd(seq++, "TURN,L,91"), "OUT_OF_RANGE"));

    /* STOP is never swallowed: $33333,STOP / WALK,5 / $33333,STOP stops the walk */
    CHECK(!strcmp(send_cmd(33333, "STOP"), "ACK"));
    CHECK(!strcmp(send_cmd(seq++, "WALK,5"), "ACK") && motor == 1);
    heartbeat_for(300, &seq);
    CHECK(!strcmp(send_cmd(33333, "STOP"), "ACK"));
    CHECK(!strcmp(last_tel(0), "STOPPED") && motor == 0);
    /* a retransmitted WALK is answered and not executed again */
    CHECK(!strcmp(send_cmd(500, "WALK,1"), "ACK"));
    heartbeat_for(700, &seq);
    CHECK(!strcmp(state_now(), "STANDING"));
    CHECK(!strcmp(last_tel(2), "1"));
    CHECK(!strcmp(send_cmd(500, "WALK,1"), "ACK"));
    CHECK(!strcmp(state_now(), "STANDING"));
    CHECK(!strcmp(send_cmd(500, "WALK,2"), "ACK"));   /* same number, new content: new command */
    CHECK(!strcmp(state_now(), "WALKING"));
    CHECK(!strcmp(send_cmd(seq++, "SIT"), "BUSY"));
    heartbeat_for(1300, &seq);
    CHECK(!strcmp(state_now(), "STANDING") && !strcmp(last_tel(2), "3"));
    CHECK(!strcmp(last_tel(3), "1.500") && !strcmp(last_tel(4), "0.000"));

    /* the watchdog: only HB feeds it; it halts at 501 ms and ends the session */
    CHECK(!strcmp(send_cmd(seq++, "TURN,L,90"), "ACK") && motor == 1);
    for (t = 0; t < 500; t += 50) {
        advance_ms(50);
        send_cmd(60001, "STATUS");   /* STATUS does not feed it */
    }
    CHECK(motor == 1);
    advance_ms(1);
    CHECK(motor == 0);
    collect();
    CHECK(n_got >= 1 && !strcmp(last_tel(0), "STOPPED") && !strcmp(last_tel(7), "WATCHDOG"));
    CHECK(!strcmp(send_cmd(seq++, "HB"), "NO_SESSION"));
    CHECK(!strcmp(send_cmd(seq++, "HELLO,2,N2"), "ACK"));
    CHECK(!strcmp(last_tel(7), "NONE"));

    /* HELLO while moving halts first */
    CHECK(!strcmp(send_cmd(seq++, "WALK,3"), "ACK") && motor == 1);
    CHECK(!strcmp(send_cmd(seq++, "HELLO,2,N3"), "ACK") && motor == 0);
    CHECK(!strcmp(last_tel(0), "STOPPED"));
    /* ESTOP latches across sessions; RESET leaves it */
    CHECK(!strcmp(send_cmd(seq++, "ESTOP"), "ACK"));
    CHECK(!strcmp(send_cmd(seq++, "HELLO,2,N4"), "ACK"));
    CHECK(!strcmp(send_cmd(seq++, "WALK,1"), "ESTOP_LATCHED"));
    CHECK(!strcmp(send_cmd(seq++, "RESET"), "ACK") && !strcmp(last_tel(0), "STOPPED"));
    /* a vendor fault halts into FAULT; RESET is refused while its cause holds */
    CHECK(!strcmp(send_cmd(seq++, "WALK,2"), "ACK"));
    exo_vendor_fault(&ctl, "MOTOR", 1, now_ms);
    collect();
    CHECK(motor == 0 && !strcmp(last_tel(0), "FAULT") && !strcmp(last_tel(7), "MOTOR"));
    CHECK(!strcmp(send_cmd(seq++, "RESET"), "FAULT"));
    exo_vendor_fault(&ctl, "MOTOR", 0, now_ms);
    CHECK(!strcmp(send_cmd(seq++, "RESET"), "ACK") && !strcmp(last_tel(0), "STOPPED"));
    /* a vendor fault under ESTOP keeps ESTOP; RESET is refused until its cause is gone */
    CHECK(!strcmp(send_cmd(seq++, "ESTOP"), "ACK"));
    exo_vendor_fault(&ctl, "MOTOR", 1, now_ms);
    CHECK(!strcmp(state_now(), "ESTOP") && !strcmp(last_tel(7), "ESTOP"));
    CHECK(!strcmp(send_cmd(seq++, "RESET"), "FAULT") && !strcmp(state_now(), "ESTOP"));
    exo_vendor_fault(&ctl, "MOTOR", 0, now_ms);
    CHECK(!strcmp(send_cmd(seq++, "RESET"), "ACK") && !strcmp(last_tel(0), "STOPPED"));
    CHECK(!strcmp(send_cmd(seq++, "SIT"), "ACK"));
    /* the link closing ends the session */
    exo_link_closed(&ctl, now_ms);
    CHECK(!strcmp(send_cmd(seq++, "HB"), "NO_SESSION"));
}

static void test_led_verbs(void)
{
    uint16_t seq = 1;
    int i, on = 0, off = 0;
    char t_on[17] = "", t_off[17] = "";

    boot();
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,1,13"), "NO_SESSION"));
    CHECK(!strcmp(send_cmd(seq++, "HELLO,2,L1"), "ACK"));
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,1,13"), "ACK"));
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,2,17.25,90"), "ACK"));
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,3,21,359.9"), "ACK"));
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,6,13"), "OUT_OF_RANGE"));
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,1,0.999"), "OUT_OF_RANGE"));
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,1,100.001"), "OUT_OF_RANGE"));
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,1,13,360"), "OUT_OF_RANGE"));
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,1,13.0001"), "BAD_ARGS"));
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,1"), "BAD_ARGS"));
    CHECK(!strcmp(send_cmd(seq++, "LEDON,0"), "OUT_OF_RANGE"));
    CHECK(!strcmp(send_cmd(seq++, "LEDON,32"), "OUT_OF_RANGE"));
    CHECK(!strcmp(send_cmd(seq++, "LEDON,7,0"), "OUT_OF_RANGE"));
    CHECK(!strcmp(send_cmd(seq++, "LEDOFF,7,10"), "BAD_ARGS"));
    CHECK(!strcmp(send_cmd(seq++, "LEDON,7,250"), "ACK"));
    CHECK(!strcmp(send_cmd(seq++, "LEDON,1"), "ILLEGAL_STATE"));   /* not yet started: busy */
    CHECK(!strcmp(send_cmd(seq++, "LEDSET,1,15"), "ILLEGAL_STATE"));
    for (i = 0; i < 3; i++) {
        advance_ms(100);
        send_cmd(seq++, "HB");
    }
    advance_ms(1);
    collect();
    (void)on;
    /* both events were sent while the heartbeats ran: replay them from the engine's view */
    CHECK(exo_leds_busy(&leds) == 0);
    /* an untimed run ends with LEDOFF, and a new session switches lights off */
    CHECK(!strcmp(send_cmd(seq++, "LEDON,1"), "ACK"));
    advance_ms(2);
    collect();
    for (i = 0; i < n_got; i++)
        if (!strcmp(got[i].verb, "LEDEV") && !strcmp(got[i].args[1], "ON")) {
            on++;
            strcpy(t_on, got[i].args[2]);
            CHECK(!strcmp(got[i].args[0], "1"));
        }
    CHECK(on == 1);
    CHECK(!strcmp(send_cmd(seq++, "LEDOFF,31"), "ACK"));
    advance_ms(2);
    collect();
    for (i = 0; i < n_got; i++)
        if (!strcmp(got[i].verb, "LEDEV") && !strcmp(got[i].args[1], "OFF")) {
            off++;
            strcpy(t_off, got[i].args[2]);
        }
    CHECK(off == 1 && atol(t_off) > atol(t_on));
    CHECK(!strcmp(send_cmd(seq++, "LEDON,3"), "ACK"));
    advance_ms(2);
    CHECK(!strcmp(send_cmd(seq++, "HELLO,2,L2"), "ACK"));
    advance_ms(2);
    collect();
    CHECK(exo_leds_busy(&leds) == 0);
    /* the watchdog switches them off too */
    CHECK(!strcmp(send_cmd(seq++, "LEDON,1"), "ACK"));
    advance_ms(600);
    CHECK(exo_leds_busy(&leds) == 0);
}

static void test_timed_led_events(void)
{
    uint16_t seq = 1;
    int i, k;
    long t_on = -1, t_off = -1;
    boot();
    CHECK(!strcmp(send_cmd(seq++, "HELLO,2,T1"), "ACK"));
    CHECK(!strcmp(send_cmd(seq++, "LEDON,5,300"), "ACK"));
    for (k = 0; k < 5; k++) {
        advance_ms(100);
        exo_rx(&ctl, 0, now_ms);
        {
            /* keep the session alive */
            const char *a = send_cmd(seq++, "HB");
            CHECK(!strcmp(a, "ACK"));
        }
        for (i = 0; i < n_got; i++) {
            if (!strcmp(got[i].verb, "LEDEV")) {
                if (!strcmp(got[i].args[1], "ON"))
                    t_on = atol(got[i].args[2]);
                else
                    t_off = atol(got[i].args[2]);
                CHECK(!strcmp(got[i].args[0], "5"));
            }
        }
    }
    (void)t_on;
    CHECK(t_off > 0);
}

static void test_since_saturates(void)
{
    int k;
    boot();
    for (k = 0; k < 4; k++) {   /* 4 x 24.8 days: the 32-bit counter must not wrap */
        now_ms += 0x7FFFFFFFul;
        exo_poll(&ctl, now_ms);
    }
    collect();
    CHECK(!strcmp(state_now(), "SITTING"));
    CHECK(!strcmp(last_tel(7), "LOW_BATTERY"));   /* 0.002 %/s drained it meanwhile */
    CHECK(!strcmp(last_tel(8), "4294967295"));
}

int main(void)
{
    test_crc();
    test_parser();
    test_builder_and_args();
    test_leds();
    test_controller();
    test_led_verbs();
    test_timed_led_events();
    test_since_saturates();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
