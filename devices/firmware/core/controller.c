#include "controller.h"

#include <math.h>

#include "hal.h"
#include "pgm.h"

/* ------------------------------------------------------------------ constant strings */
static const char s_SITTING[] EXO_FLASH = "SITTING";
static const char s_STANDING[] EXO_FLASH = "STANDING";
static const char s_WALKING[] EXO_FLASH = "WALKING";
static const char s_TURNING[] EXO_FLASH = "TURNING";
static const char s_STOPPED[] EXO_FLASH = "STOPPED";
static const char s_FAULT[] EXO_FLASH = "FAULT";
static const char s_ESTOP[] EXO_FLASH = "ESTOP";
static const char *const state_names[] EXO_FLASH = {
    s_SITTING, s_STANDING, s_WALKING, s_TURNING, s_STOPPED, s_FAULT, s_ESTOP,
};

enum { F_NONE = 0, F_WATCHDOG, F_ESTOP, F_LOW_BATTERY, F_VENDOR = 0xFF };
static const char s_NONE[] EXO_FLASH = "NONE";
static const char s_WATCHDOG[] EXO_FLASH = "WATCHDOG";
static const char s_LOW_BATTERY[] EXO_FLASH = "LOW_BATTERY";
static const char *const fault_names[] EXO_FLASH = { s_NONE, s_WATCHDOG, s_ESTOP, s_LOW_BATTERY };

enum {
    R_ACK = 0, R_UNKNOWN_VERB, R_BAD_ARGS, R_OUT_OF_RANGE, R_ILLEGAL_STATE, R_BUSY,
    R_ESTOP_LATCHED, R_FAULT, R_LOW_BATTERY, R_BAD_VERSION, R_NOT_OWNER, R_NO_SESSION,
    R_EMPTY = 0xFF
};
static const char s_UNKNOWN_VERB[] EXO_FLASH = "UNKNOWN_VERB";
static const char s_BAD_ARGS[] EXO_FLASH = "BAD_ARGS";
static const char s_OUT_OF_RANGE[] EXO_FLASH = "OUT_OF_RANGE";
static const char s_ILLEGAL_STATE[] EXO_FLASH = "ILLEGAL_STATE";
static const char s_BUSY[] EXO_FLASH = "BUSY";
static const char s_ESTOP_LATCHED[] EXO_FLASH = "ESTOP_LATCHED";
static const char s_BAD_VERSION[] EXO_FLASH = "BAD_VERSION";
static const char s_NOT_OWNER[] EXO_FLASH = "NOT_OWNER";
static const char s_NO_SESSION[] EXO_FLASH = "NO_SESSION";
static const char *const reason_names[] EXO_FLASH = {
    s_NONE, s_UNKNOWN_VERB, s_BAD_ARGS, s_OUT_OF_RANGE, s_ILLEGAL_STATE, s_BUSY,
    s_ESTOP_LATCHED, s_FAULT, s_LOW_BATTERY, s_BAD_VERSION, s_NOT_OWNER, s_NO_SESSION,
};

enum { V_HELLO = 0, V_HB, V_STATUS, V_STOP, V_ESTOP, V_RESET, V_STAND, V_SIT, V_WALK, V_TURN,
       V_LEDSET, V_LEDON, V_LEDOFF, V_COUNT };
static const char s_HELLO[] EXO_FLASH = "HELLO";
static const char s_HB[] EXO_FLASH = "HB";
static const char s_STATUS[] EXO_FLASH = "STATUS";
static const char s_STOP[] EXO_FLASH = "STOP";
static const char s_RESET[] EXO_FLASH = "RESET";
static const char s_STAND[] EXO_FLASH = "STAND";
static const char s_SIT[] EXO_FLASH = "SIT";
static const char s_WALK[] EXO_FLASH = "WALK";
static const char s_TURN[] EXO_FLASH = "TURN";
static const char s_LEDSET[] EXO_FLASH = "LEDSET";
static const char s_LEDON[] EXO_FLASH = "LEDON";
static const char s_LEDOFF[] EXO_FLASH = "LEDOFF";
static const char *const verb_names[] EXO_FLASH = {
    s_HELLO, s_HB, s_STATUS, s_STOP, s_ESTOP, s_RESET, s_STAND, s_SIT, s_WALK, s_TURN,
    s_LEDSET, s_LEDON, s_LEDOFF,
};

static const char s_ACK[] EXO_FLASH = "ACK";
static const char s_NAK[] EXO_FLASH = "NAK";
static const char s_TEL[] EXO_FLASH = "TEL";
static const char s_LEDEV[] EXO_FLASH = "LEDEV";
static const char s_MOVING[] EXO_FLASH = "MOVING";
static const char s_IDLE[] EXO_FLASH = "IDLE";
static const char s_ON[] EXO_FLASH = "ON";
static const char s_OFF[] EXO_FLASH = "OFF";
static const char s_version[] EXO_FLASH = "2";
static const char s_L[] EXO_FLASH = "L";
static const char s_R[] EXO_FLASH = "R";

#ifndef EXO_BOARD_NAME
#define EXO_BOARD_NAME "EXOFW"
#endif
static const char s_name[] EXO_FLASH = EXO_BOARD_NAME;

#define LED_ALL ((uint8_t)((1u << EXO_LED_COUNT) - 1u))

/* ------------------------------------------------------------------ output */
static uint16_t next_seq(exo_t *c)
{
    c->tx_seq = (uint16_t)(c->tx_seq + 1u);
    return c->tx_seq;
}

static void send(exo_t *c)
{
    uint8_t n = exo_tx_end(&c->tx);
    if (n)
        hal_uart_write((const uint8_t *)c->tx.buf, n);
}

static void send_reply(exo_t *c, uint16_t host_seq, uint8_t reason)
{
    exo_tx_begin(&c->tx, next_seq(c), reason == R_ACK ? s_ACK : s_NAK);
    exo_tx_arg_u32(&c->tx, host_seq);
    if (reason != R_ACK)
        exo_tx_arg_flash(&c->tx, exo_flash_ptr(&reason_names[reason]));
    send(c);
}

static uint8_t fault_now(const exo_t *c)
{
    if (c->state == EXO_ESTOP)
        return F_ESTOP;
    if (c->state == EXO_FAULT)
        return c->fault_code[0] ? F_VENDOR : F_LOW_BATTERY;
    if (c->battery < EXO_BATTERY_LOW)
        return F_LOW_BATTERY;
    if (c->watchdog_fault)
        return F_WATCHDOG;
    return F_NONE;
}

static void send_telemetry(exo_t *c)
{
    exo_tx_t *t = &c->tx;
    uint8_t f = fault_now(c);
    uint32_t heading = (c->heading_mdeg + 50u) / 100u;   /* tenths of a degree */
    if (heading >= 3600u)
        heading -= 3600u;
    exo_tx_begin(t, next_seq(c), s_TEL);
    exo_tx_arg_flash(t, exo_flash_ptr(&state_names[c->state]));
    exo_tx_arg_flash(t, (c->state == EXO_WALKING || c->state == EXO_TURNING) ? s_MOVING : s_IDLE);
    exo_tx_arg_u32(t, c->steps);
    exo_tx_arg_fixed(t, c->x_mm, 3);
    exo_tx_arg_fixed(t, c->y_mm, 3);
    exo_tx_arg_fixed(t, (int32_t)heading, 1);
    exo_tx_arg_fixed(t, (int32_t)((c->battery + 50000u) / 100000u), 1);
    if (f == F_VENDOR)
        exo_tx_arg_ram(t, c->fault_code);
    else
        exo_tx_arg_flash(t, exo_flash_ptr(&fault_names[f]));
    exo_tx_arg_u32(t, c->since_ms);
    send(c);
}

/* Send a TEL at once when the state or the fault report changed (whatever changed it). */
static void report_changes(exo_t *c)
{
    uint8_t f = fault_now(c);
    if (f != c->reported_fault || c->state != c->reported_state) {
        c->reported_fault = f;
        c->reported_state = c->state;
        c->since_ms = 0;
        send_telemetry(c);
        c->next_tel_ms = c->now_ms + EXO_TELEMETRY_MS;
    }
}

/* ------------------------------------------------------------------ state */
static uint8_t moving(const exo_t *c)
{
    return c->state == EXO_WALKING || c->state == EXO_TURNING;
}

static void set_state(exo_t *c, uint8_t s)
{
    c->state = s;
    hal_motor_enable(moving(c));
}

static void halt(exo_t *c, uint8_t new_state)
{
    c->steps_left = 0;
    c->step_ms = 0;
    c->turn_left_mdeg = 0;
    set_state(c, new_state);
}

static void forget_frames(exo_t *c)
{
    uint8_t i;
    for (i = 0; i < EXO_SEEN_SIZE; i++)
        c->seen[i].reply = R_EMPTY;
    c->seen_next = 0;
}

static void end_session(exo_t *c, uint8_t by_watchdog)
{
    if (moving(c))
        halt(c, EXO_STOPPED);
    if (c->session)
        exo_leds_stop(c->leds, LED_ALL);   /* no flicker without its host */
    c->session = 0;
    c->nonce[0] = 0;
    forget_frames(c);
    if (by_watchdog)
        c->watchdog_fault = 1;
}

void exo_init(exo_t *c, exo_leds_t *leds, uint32_t now_ms)
{
    exo_parser_init(&c->parser);
    c->leds = leds;
    c->tx_seq = 0;
    c->seated = 1;
    c->fault_code[0] = 0;
    c->vendor_fault_active = 0;
    c->session = 0;
    c->nonce[0] = 0;
    c->watchdog_fault = 0;
    c->last_hb_ms = now_ms;
    forget_frames(c);
    c->steps = 0;
    c->x_mm = c->y_mm = 0;
    c->heading_mdeg = 0;
    c->battery = EXO_BATTERY_FULL;
    c->battery_frac = 0;
    c->steps_left = 0;
    c->step_ms = 0;
    c->turn_left_mdeg = 0;
    c->turn_sign = 1;
    c->now_ms = now_ms;
    c->next_tel_ms = now_ms;   /* telemetry from power-up */
    c->since_ms = 0;
    c->overrun = 0;
    c->leds_lost = 0;
    set_state(c, EXO_SITTING);
    c->reported_state = c->state;
    c->reported_fault = fault_now(c);
}

/* ------------------------------------------------------------------ time */
static void drain(exo_t *c, uint32_t amount)
{
    c->battery = c->battery > amount ? c->battery - amount : 0u;
}

static void advance(exo_t *c, uint32_t dt)
{
    drain(c, 2u * dt);   /* 0.002 % per second */
    if (c->state == EXO_WALKING) {
        uint32_t progress = (uint32_t)c->step_ms + dt;
        while (progress >= EXO_STEP_MS && c->steps_left) {
            float h = (float)c->heading_mdeg * (float)(3.14159265358979 / 180000.0);
            progress -= EXO_STEP_MS;
            c->steps_left--;
            c->steps++;
            c->x_mm += (int32_t)lroundf((float)EXO_STEP_MM * cosf(h));
            c->y_mm += (int32_t)lroundf((float)EXO_STEP_MM * sinf(h));
            drain(c, 50000u);   /* 0.05 % per step */
        }
        c->step_ms = (uint16_t)progress;
        if (!c->steps_left)
            halt(c, EXO_STANDING);
    } else if (c->state == EXO_TURNING) {
        uint32_t d = EXO_TURN_MDEG_PER_MS * dt;
        if (d > c->turn_left_mdeg)
            d = c->turn_left_mdeg;
        c->turn_left_mdeg -= d;
        if (c->turn_sign > 0)
            c->heading_mdeg = (c->heading_mdeg + d) % 360000u;
        else
            c->heading_mdeg = (c->heading_mdeg + 360000u - d) % 360000u;
        if (!c->turn_left_mdeg)
            halt(c, EXO_STANDING);
    }
    if (moving(c) && c->battery < EXO_BATTERY_LOW) {
        c->fault_code[0] = 0;   /* FAULT without a vendor code: the cause is LOW_BATTERY */
        halt(c, EXO_FAULT);
    }
}

static void send_led_events(exo_t *c)
{
    exo_led_event_t ev;
    while (exo_leds_pop_event(c->leds, &ev)) {
        exo_tx_begin(&c->tx, next_seq(c), s_LEDEV);
        exo_tx_arg_u32(&c->tx, ev.mask);
        exo_tx_arg_flash(&c->tx, ev.on ? s_ON : s_OFF);
        exo_tx_arg_u32(&c->tx, ev.tick * (1000000ul / EXO_TICK_HZ));
        send(c);
    }
}

void exo_poll(exo_t *c, uint32_t now_ms)
{
    uint32_t dt = now_ms - c->now_ms;
    send_led_events(c);            /* first: their timing matters most */
    if (dt) {
        c->now_ms = now_ms;
        c->since_ms = c->since_ms > 0xFFFFFFFFul - dt ? 0xFFFFFFFFul : c->since_ms + dt;
        advance(c, dt);
    }
    if (c->session && (uint32_t)(now_ms - c->last_hb_ms) > EXO_WATCHDOG_MS)
        end_session(c, 1);
    report_changes(c);
    if ((int32_t)(now_ms - c->next_tel_ms) >= 0) {
        send_telemetry(c);
        c->next_tel_ms += EXO_TELEMETRY_MS;
        if ((int32_t)(now_ms - c->next_tel_ms) >= 0)   /* fell behind: do not burst */
            c->next_tel_ms = now_ms + EXO_TELEMETRY_MS;
    }
}

void exo_link_closed(exo_t *c, uint32_t now_ms)
{
    exo_poll(c, now_ms);
    if (c->session) {
        end_session(c, 0);
        report_changes(c);
    }
}

void exo_vendor_fault(exo_t *c, const char *code, uint8_t active, uint32_t now_ms)
{
    uint8_t i = 0;
    exo_poll(c, now_ms);
    c->vendor_fault_active = active;
    if (!active)
        return;
    while (code[i] && i < 16u) {
        c->fault_code[i] = code[i];
        i++;
    }
    c->fault_code[i] = 0;
    if (c->state != EXO_ESTOP)   /* ESTOP stays latched; RESET then meets the fault */
        halt(c, EXO_FAULT);
    report_changes(c);
}

/* ------------------------------------------------------------------ commands */
static uint8_t find_verb(const char *verb)
{
    uint8_t v;
    for (v = 0; v < V_COUNT; v++)
        if (exo_str_eq_flash(verb, exo_flash_ptr(&verb_names[v])))
            return v;
    return V_COUNT;
}

static uint8_t remembered(uint8_t v)
{
    return v == V_RESET || v == V_STAND || v == V_SIT || v == V_WALK || v == V_TURN
           || v == V_LEDSET || v == V_LEDON || v == V_LEDOFF;
}

static uint8_t arg_reason(uint8_t parsed)
{
    return parsed == EXO_ARG_OK ? R_ACK : (parsed == EXO_ARG_RANGE ? R_OUT_OF_RANGE : R_BAD_ARGS);
}

static uint8_t valid_nonce(const char *s)
{
    uint8_t n = 0;
    for (; *s; s++, n++) {
        char ch = *s;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            return 0;
    }
    return n >= 1u && n <= EXO_NONCE_MAX;
}

/* Arguments of a command, checked before anything else; returns a reason (R_ACK = fine). */
static uint8_t check_args(uint8_t v, const exo_frame_t *f, uint32_t *a, uint32_t *b, uint32_t *d)
{
    uint8_t argc = f->argc, r;
    switch (v) {
    case V_WALK:
        if (argc != 1u)
            return R_BAD_ARGS;
        r = arg_reason(exo_parse_uint(f->argv[0], 99999999ul, a));
        if (r == R_ACK && (*a < 1u || *a > EXO_WALK_MAX))
            r = R_OUT_OF_RANGE;
        return r;
    case V_TURN:
        if (argc != 2u)
            return R_BAD_ARGS;
        if (exo_str_eq_flash(f->argv[0], s_L))
            *b = 1;
        else if (exo_str_eq_flash(f->argv[0], s_R))
            *b = 0;
        else
            return R_BAD_ARGS;
        r = arg_reason(exo_parse_uint(f->argv[1], 99999999ul, a));
        if (r == R_ACK && (*a < 1u || *a > EXO_TURN_MAX))
            r = R_OUT_OF_RANGE;
        return r;
    case V_LEDSET:
        if (argc != 2u && argc != 3u)
            return R_BAD_ARGS;
        r = arg_reason(exo_parse_uint(f->argv[0], 99999999ul, a));
        if (r == R_ACK)
            r = arg_reason(exo_parse_fixed(f->argv[1], 3, 99999999ul, b));
        *d = 0;
        if (r == R_ACK && argc == 3u)
            r = arg_reason(exo_parse_fixed(f->argv[2], 1, 99999999ul, d));
        if (r == R_ACK && (*a < 1u || *a > EXO_LED_COUNT || *b < EXO_LED_FREQ_MIN_MHZ
                           || *b > EXO_LED_FREQ_MAX_MHZ || *d > 3599u))
            r = R_OUT_OF_RANGE;
        return r;
    case V_LEDON:
    case V_LEDOFF:
        if (argc != 1u && !(v == V_LEDON && argc == 2u))
            return R_BAD_ARGS;
        r = arg_reason(exo_parse_uint(f->argv[0], 99999999ul, a));
        *b = 0;
        if (r == R_ACK && argc == 2u)
            r = arg_reason(exo_parse_uint(f->argv[1], 99999999ul, b));
        if (r == R_ACK && (*a < 1u || *a > LED_ALL
                           || (argc == 2u && (*b < 1u || *b > EXO_LED_DURATION_MAX_MS))))
            r = R_OUT_OF_RANGE;
        return r;
    default:
        return argc ? R_BAD_ARGS : R_ACK;
    }
}

static uint8_t execute(exo_t *c, uint8_t v, const exo_frame_t *f)
{
    uint32_t a = 0, b = 0, d = 0;
    uint8_t r;

    if (v == V_COUNT)
        return R_UNKNOWN_VERB;
    if (v == V_HELLO) {
        uint8_t i;
        if (f->argc >= 1u && !exo_str_eq_flash(f->argv[0], s_version))
            return R_BAD_VERSION;
        if (f->argc != 2u || !valid_nonce(f->argv[1]))
            return R_BAD_ARGS;
        end_session(c, 0);          /* halts whatever moves, lights off */
        c->session = 1;
        c->watchdog_fault = 0;
        c->last_hb_ms = c->now_ms;
        for (i = 0; f->argv[1][i]; i++)
            c->nonce[i] = f->argv[1][i];
        c->nonce[i] = 0;
        return R_ACK;               /* the ACK carries the nonce: sent by the caller */
    }
    r = check_args(v, f, &a, &b, &d);
    if (r != R_ACK)
        return r;
    switch (v) {
    case V_STATUS:
        return R_ACK;
    case V_STOP:
        if (moving(c))
            halt(c, EXO_STOPPED);
        return R_ACK;
    case V_ESTOP:
        halt(c, EXO_ESTOP);
        return R_ACK;
    default:
        break;
    }
    if (!c->session)
        return R_NO_SESSION;
    switch (v) {
    case V_HB:
        c->last_hb_ms = c->now_ms;
        return R_ACK;
    case V_RESET:
        if (c->state != EXO_ESTOP && c->state != EXO_FAULT)
            return R_ILLEGAL_STATE;
        if (c->vendor_fault_active)     /* the cause persists (also under ESTOP) */
            return R_FAULT;
        c->fault_code[0] = 0;
        set_state(c, c->seated ? EXO_SITTING : EXO_STOPPED);
        return R_ACK;
    case V_LEDSET:
        if (exo_leds_busy(c->leds) & (1u << (a - 1u)))
            return R_ILLEGAL_STATE;
        exo_leds_configure(c->leds, (uint8_t)(a - 1u), exo_leds_increment(b),
                           exo_leds_phase((uint16_t)d));
        return R_ACK;
    case V_LEDON:
        if (exo_leds_busy(c->leds) & a)
            return R_ILLEGAL_STATE;
        exo_leds_start(c->leds, (uint8_t)a, b * EXO_TICKS_PER_MS);
        return R_ACK;
    case V_LEDOFF:
        exo_leds_stop(c->leds, (uint8_t)(a & exo_leds_busy(c->leds)));
        return R_ACK;
    default:
        break;
    }
    /* posture and motion: STAND, SIT, WALK, TURN */
    if (c->state == EXO_ESTOP)
        return R_ESTOP_LATCHED;
    if (c->state == EXO_FAULT)
        return R_FAULT;
    if (moving(c))
        return R_BUSY;
    if ((v == V_WALK || v == V_TURN) && c->battery < EXO_BATTERY_LOW)
        return R_LOW_BATTERY;
    if (v == V_STAND) {
        if (c->state != EXO_SITTING)
            return R_ILLEGAL_STATE;
        c->seated = 0;
        set_state(c, EXO_STANDING);
    } else if (v == V_SIT) {
        if (c->state == EXO_SITTING)
            return R_ILLEGAL_STATE;
        c->seated = 1;
        set_state(c, EXO_SITTING);
    } else {
        if (c->state == EXO_SITTING)
            return R_ILLEGAL_STATE;
        if (v == V_WALK) {
            c->steps_left = (uint8_t)a;
            c->step_ms = 0;
            set_state(c, EXO_WALKING);
        } else {
            c->turn_left_mdeg = a * 1000u;
            c->turn_sign = b ? 1 : -1;
            set_state(c, EXO_TURNING);
        }
    }
    return R_ACK;
}

static void handle(exo_t *c, const exo_frame_t *f)
{
    uint8_t v = find_verb(f->verb), r, i;

    if (remembered(v) && c->session) {
        for (i = 0; i < EXO_SEEN_SIZE; i++) {
            const exo_seen_t *s = &c->seen[i];
            if (s->reply != R_EMPTY && s->seq == f->seq && s->content_crc == f->content_crc) {
                send_reply(c, f->seq, s->reply);   /* a retransmission: answer, never redo */
                return;
            }
        }
    }
    r = execute(c, v, f);
    if (v == V_HELLO && r == R_ACK) {
        exo_tx_begin(&c->tx, next_seq(c), s_ACK);
        exo_tx_arg_u32(&c->tx, f->seq);
        exo_tx_arg_flash(&c->tx, s_version);
        exo_tx_arg_flash(&c->tx, s_name);
        exo_tx_arg_ram(&c->tx, c->nonce);
        send(c);
    } else {
        send_reply(c, f->seq, r);
    }
    if (remembered(v) && c->session) {
        exo_seen_t *s = &c->seen[c->seen_next];
        s->seq = f->seq;
        s->content_crc = f->content_crc;
        s->reply = r;
        c->seen_next = (uint8_t)((c->seen_next + 1u) % EXO_SEEN_SIZE);
    }
    report_changes(c);
    if (v == V_STATUS && r == R_ACK)
        send_telemetry(c);
}

void exo_rx(exo_t *c, uint8_t byte, uint32_t now_ms)
{
    exo_frame_t f;
    if (exo_parser_feed(&c->parser, byte, &f)) {
        exo_poll(c, now_ms);   /* bring time up to date before acting */
        handle(c, &f);
    }
}
