#include "frame.h"

#include "crc16.h"
#include "pgm.h"

enum { ST_IDLE = 0, ST_FRAME, ST_SKIP };

void exo_parser_init(exo_parser_t *p)
{
    uint8_t i;
    p->len = 0;
    p->state = ST_IDLE;
    p->frames = 0;
    for (i = 0; i < EXO_DROP_COUNT; i++)
        p->drops[i] = 0;
}

static uint8_t is_upper(uint8_t c) { return c >= 'A' && c <= 'Z'; }
static uint8_t is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static uint8_t is_arg_char(uint8_t c)
{
    return is_upper(c) || is_digit(c) || (c >= 'a' && c <= 'z') || c == '_' || c == '.'
           || c == '+' || c == '-';
}
static int8_t hex_upper(uint8_t c)
{
    if (is_digit(c))
        return (int8_t)(c - '0');
    if (c >= 'A' && c <= 'F')
        return (int8_t)(c - 'A' + 10);
    return -1;
}

/* Check the grammar of buf[0..n) = "$body*CRC" and split it in place. */
static void decode(exo_parser_t *p, uint8_t n, exo_frame_t *out, uint8_t *ok)
{
    uint8_t *b = p->buf;
    uint8_t i = 1, start, star, k;
    uint32_t seq = 0;
    uint16_t crc_rx = 0, crc;

    *ok = 0;
    /* seq: 1-5 digits */
    start = i;
    while (i < n && is_digit(b[i]) && (uint8_t)(i - start) < 5u) {
        seq = seq * 10u + (uint32_t)(b[i] - '0');
        i++;
    }
    if (i == start || i >= n || b[i] != ',' || (b[start] == '0' && (uint8_t)(i - start) > 1u))
        goto malformed;   /* no digits, more than 5, or a leading zero */
    i++;
    /* verb: 1-8 upper-case letters */
    start = i;
    while (i < n && is_upper(b[i]) && (uint8_t)(i - start) < 8u)
        i++;
    if (i == start || i >= n || (b[i] != ',' && b[i] != '*'))
        goto malformed;
    out->verb = (const char *)&b[start];
    out->argc = 0;
    while (b[i] == ',') {
        b[i++] = 0;
        start = i;
        while (i < n && is_arg_char(b[i]) && (uint8_t)(i - start) < 16u)
            i++;
        if (i == start || i >= n || (b[i] != ',' && b[i] != '*'))
            goto malformed;
        if (out->argc < EXO_MAX_ARGS)
            out->argv[out->argc] = (const char *)&b[start];
        if (out->argc < 255u)
            out->argc++;
    }
    star = i; /* b[i] == '*' */
    if (n - star != 5u)
        goto malformed;
    for (k = 1; k <= 4u; k++) {
        int8_t h = hex_upper(b[star + k]);
        if (h < 0)
            goto malformed;
        crc_rx = (uint16_t)((crc_rx << 4) | (uint16_t)(uint8_t)h);
    }
    /* CRC over the body: the separators were overwritten by NULs, count them as ','. */
    crc = EXO_CRC16_INIT;
    for (k = 1; k < star; k++)
        crc = exo_crc16_update(crc, b[k] ? b[k] : (uint8_t)',');
    if (crc != crc_rx) {
        p->drops[EXO_DROP_BAD_CRC]++;
        return;
    }
    if (seq > 65535ul) {
        p->drops[EXO_DROP_BAD_SEQ]++;
        return;
    }
    /* content CRC: "VERB[,args]" identifies a command independently of its seq */
    crc = EXO_CRC16_INIT;
    for (k = (uint8_t)((const uint8_t *)out->verb - b); k < star; k++)
        crc = exo_crc16_update(crc, b[k] ? b[k] : (uint8_t)',');
    out->content_crc = crc;
    b[star] = 0;
    /* the verb ends at the first separator, now a NUL */
    out->seq = (uint16_t)seq;
    *ok = 1;
    return;
malformed:
    p->drops[EXO_DROP_MALFORMED]++;
}

uint8_t exo_parser_feed(exo_parser_t *p, uint8_t c, exo_frame_t *out)
{
    uint8_t ok = 0, n;

    if (c == '$') {
        if (p->state == ST_FRAME)
            p->drops[EXO_DROP_TRUNCATED]++;
        p->buf[0] = '$';
        p->len = 1;
        p->state = ST_FRAME;
        return 0;
    }
    if (c == '\n') {
        if (p->state == ST_FRAME) {
            n = p->len;
            if (n > 1u && p->buf[n - 1u] == '\r')
                n--;
            p->buf[n] = 0; /* n < EXO_MAX_FRAME: see the overlong check below */
            decode(p, n, out, &ok);
            if (ok)
                p->frames++;
        }
        p->state = ST_IDLE;
        p->len = 0;
        return ok;
    }
    if (p->state == ST_FRAME) {
        if (p->len + 1u >= EXO_MAX_FRAME) {
            p->drops[EXO_DROP_OVERLONG]++;
            p->state = ST_SKIP;
            p->len = 0;
        } else {
            p->buf[p->len++] = c;
        }
    } else if (p->state == ST_IDLE && c != '\r') {
        p->drops[EXO_DROP_NOISE]++;
    }
    return 0;
}

/* ------------------------------------------------------------------ builder */
static void put(exo_tx_t *t, char c)
{
    /* keep room for "*XXXX\n" */
    if (t->len + 6u < EXO_MAX_FRAME)
        t->buf[t->len++] = c;
    else
        t->overflow = 1;
}

static void put_u32(exo_tx_t *t, uint32_t v)
{
    char digits[10];
    uint8_t n = 0;
    do {
        digits[n++] = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v);
    while (n)
        put(t, digits[--n]);
}

void exo_tx_begin(exo_tx_t *t, uint16_t seq, const char *verb_flash)
{
    t->len = 0;
    t->overflow = 0;
    put(t, '$');
    put_u32(t, seq);
    exo_tx_arg_flash(t, verb_flash);
}

void exo_tx_arg_flash(exo_tx_t *t, const char *s)
{
    char c;
    put(t, ',');
    while ((c = (char)exo_flash_byte(s)) != 0) {
        put(t, c);
        s++;
    }
}

void exo_tx_arg_ram(exo_tx_t *t, const char *s)
{
    put(t, ',');
    while (*s)
        put(t, *s++);
}

void exo_tx_arg_u32(exo_tx_t *t, uint32_t v)
{
    put(t, ',');
    put_u32(t, v);
}

void exo_tx_arg_fixed(exo_tx_t *t, int32_t value, uint8_t decimals)
{
    uint32_t mag, scale = 1, frac;
    uint8_t i;
    put(t, ',');
    if (value < 0) {
        put(t, '-');
        mag = (uint32_t)(-(value + 1)) + 1u;
    } else {
        mag = (uint32_t)value;
    }
    for (i = 0; i < decimals; i++)
        scale *= 10u;
    put_u32(t, mag / scale);
    if (decimals) {
        put(t, '.');
        frac = mag % scale;
        while (scale > 1u) {
            scale /= 10u;
            put(t, (char)('0' + (frac / scale) % 10u));
        }
    }
}

uint8_t exo_tx_end(exo_tx_t *t)
{
    static const char hex[] EXO_FLASH = "0123456789ABCDEF";
    uint16_t crc;
    if (t->overflow || t->len < 2u)
        return 0;
    crc = exo_crc16((const uint8_t *)t->buf + 1, (uint8_t)(t->len - 1u));
    t->buf[t->len++] = '*';
    t->buf[t->len++] = (char)exo_flash_byte(&hex[(crc >> 12) & 0xFu]);
    t->buf[t->len++] = (char)exo_flash_byte(&hex[(crc >> 8) & 0xFu]);
    t->buf[t->len++] = (char)exo_flash_byte(&hex[(crc >> 4) & 0xFu]);
    t->buf[t->len++] = (char)exo_flash_byte(&hex[crc & 0xFu]);
    t->buf[t->len++] = '\n';
    return t->len;
}

/* ------------------------------------------------------------------ arguments */
uint8_t exo_parse_uint(const char *s, uint32_t max, uint32_t *out)
{
    return exo_parse_fixed(s, 0, max, out);
}

uint8_t exo_parse_fixed(const char *s, uint8_t decimals, uint32_t max, uint32_t *out)
{
    uint32_t v = 0;
    uint8_t digits = 0, frac = 0, point = 0, big = 0;
    if (s[0] == '0' && s[1] != 0 && s[1] != '.')
        return EXO_ARG_FORMAT;  /* no leading zero */
    for (; *s; s++) {
        if (*s == '.' && !point && decimals) {
            point = 1;
            continue;
        }
        if (!is_digit((uint8_t)*s))
            return EXO_ARG_FORMAT;
        if (point) {
            if (frac == decimals)
                return EXO_ARG_FORMAT;
            frac++;
        } else {
            digits++;
        }
        if (v > 99999999ul)
            big = 1; /* far out of range: stop before overflowing */
        else
            v = v * 10u + (uint32_t)(*s - '0');
    }
    if (!digits || digits > 9u || (point && !frac))
        return EXO_ARG_FORMAT;  /* as devices/protocol.py: at most 9 integer digits */
    for (; frac < decimals; frac++) {
        if (v > 99999999ul)
            big = 1;
        else
            v *= 10u;
    }
    if (big || v > max)
        return EXO_ARG_RANGE;
    *out = v;
    return EXO_ARG_OK;
}

uint8_t exo_str_eq_flash(const char *ram, const char *flash)
{
    char c;
    while ((c = (char)exo_flash_byte(flash)) != 0) {
        if (*ram++ != c)
            return 0;
        flash++;
    }
    return *ram == 0;
}
