/*
 * jsonscan.c - the validating scanner of jsonscan.h. It follows RFC 8259
 * and refuses, rather than decides, wherever jansson adds a rule of its
 * own (no \u0000, integers within 64 bits, finite reals, a nesting limit).
 */
#include "core/jsonscan.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    const unsigned char *p, *end;
    int escaped, spaced; /* seen since the value being measured began */
} scan;

static void skip_ws(scan *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
    if (s->p != start)
        s->spaced = 1;
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The 4 hex digits after "\u" at p (p + 4 <= end checked by the caller). */
static unsigned hex4(const unsigned char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static int unicode_escape(scan *s) /* s->p at the 'u' */
{
    if (s->end - s->p < 5 || !is_hex(s->p[1]) || !is_hex(s->p[2]) || !is_hex(s->p[3]) ||
        !is_hex(s->p[4]))
        return 0;
    unsigned v = hex4(s->p + 1);
    s->p += 5;
    if (v == 0 || (v >= 0xDC00 && v <= 0xDFFF))
        return 0; /* jansson refuses both */
    if (v < 0xD800 || v > 0xDBFF)
        return 1;
    /* A high surrogate: only with its low half. */
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || !is_hex(s->p[2]) ||
        !is_hex(s->p[3]) || !is_hex(s->p[4]) || !is_hex(s->p[5]))
        return 0;
    unsigned low = hex4(s->p + 2);
    s->p += 6;
    return low >= 0xDC00 && low <= 0xDFFF;
}

/* Length of the UTF-8 sequence at p, 0 if it is not a valid one (overlong
 * forms, surrogates and code points past U+10FFFF are not). */
static int utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    int n;
    unsigned v, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (end - p < n)
        return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return n;
}

static int scan_string(scan *s) /* s->p at the opening quote */
{
    s->p++;
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            s->escaped = 1;
            if (++s->p >= s->end)
                return 0;
            if (*s->p == 'u') {
                if (!unicode_escape(s))
                    return 0;
            } else if (strchr("\"\\/bfnrt", *s->p) != NULL && *s->p != '\0') {
                s->p++;
            } else {
                return 0;
            }
            continue;
        }
        int n = utf8_len(s->p, s->end);
        if (n == 0)
            return 0;
        s->p += n;
    }
    return 0;
}

static int is_digit(const scan *s)
{
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

/* The digits at s->p as a magnitude, saturating at UINT64_MAX. */
static uint64_t digits(scan *s, int *count)
{
    uint64_t v = 0;
    *count = 0;
    while (is_digit(s)) {
        unsigned d = (unsigned)(*s->p++ - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        (*count)++;
    }
    return v;
}

static int scan_number(scan *s, naq__jv_type *type)
{
    int negative = s->p < s->end && *s->p == '-';
    if (negative)
        s->p++;
    if (!is_digit(s))
        return 0;
    int n_int, n_frac = 0, n_exp = 0;
    int leading_zero = *s->p == '0';
    uint64_t mag = digits(s, &n_int);
    if (leading_zero && n_int > 1)
        return 0;
    *type = NAQ__JV_INTEGER;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        digits(s, &n_frac);
        if (n_frac == 0)
            return 0;
        *type = NAQ__JV_REAL;
    }
    uint64_t exp = 0;
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        int exp_negative = s->p < s->end && *s->p == '-';
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        exp = digits(s, &n_exp);
        if (n_exp == 0)
            return 0;
        if (exp_negative)
            exp = 0; /* small numbers underflow to 0, which jansson allows */
        *type = NAQ__JV_REAL;
    }
    if (*type == NAQ__JV_INTEGER) /* jansson reads integers into int64 */
        return mag <= (negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX);
    /* A real is surely finite below 10^300 (doubles reach 1.8 * 10^308). */
    return exp <= 300 && (uint64_t)n_int + exp <= 300;
}

static int scan_literal(scan *s, const char *word, size_t len)
{
    if ((size_t)(s->end - s->p) < len || memcmp(s->p, word, len) != 0)
        return 0;
    s->p += len;
    return 1;
}

static int scan_value(scan *s, naq__jv *v, int depth);

/* An object's or an array's members, s->p after the opening bracket. */
static int scan_compound(scan *s, int object, int depth)
{
    if (depth >= NAQ__JSCAN_DEPTH)
        return 0;
    char close = object ? '}' : ']';
    skip_ws(s);
    if (s->p < s->end && *s->p == (unsigned char)close) {
        s->p++;
        return 1;
    }
    for (;;) {
        naq__jv member;
        if (object) {
            if (s->p >= s->end || *s->p != '"' || !scan_string(s))
                return 0;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return 0;
            s->p++;
            skip_ws(s);
        }
        if (!scan_value(s, &member, depth + 1))
            return 0;
        skip_ws(s);
        if (s->p >= s->end)
            return 0;
        unsigned char c = *s->p++;
        if (c == (unsigned char)close)
            return 1;
        if (c != ',')
            return 0;
        skip_ws(s);
    }
}

/* The value at s->p (no white space before it) into v. */
static int scan_value(scan *s, naq__jv *v, int depth)
{
    if (s->p >= s->end)
        return 0;
    int escaped = s->escaped, spaced = s->spaced;
    s->escaped = s->spaced = 0;
    const unsigned char *start = s->p;
    int ok;
    switch (*s->p) {
    case '"':
        v->type = NAQ__JV_STRING;
        ok = scan_string(s);
        break;
    case '{':
    case '[':
        v->type = *s->p == '{' ? NAQ__JV_OBJECT : NAQ__JV_ARRAY;
        s->p++;
        ok = scan_compound(s, v->type == NAQ__JV_OBJECT, depth);
        break;
    case 't':
        v->type = NAQ__JV_TRUE;
        ok = scan_literal(s, "true", 4);
        break;
    case 'f':
        v->type = NAQ__JV_FALSE;
        ok = scan_literal(s, "false", 5);
        break;
    case 'n':
        v->type = NAQ__JV_NULL;
        ok = scan_literal(s, "null", 4);
        break;
    default: ok = scan_number(s, &v->type); break;
    }
    v->text = (const char *)start;
    v->len = (size_t)(s->p - start);
    v->escaped = s->escaped;
    v->spaced = s->spaced;
    s->escaped |= escaped;
    s->spaced |= spaced;
    return ok;
}

static int key_is(const naq__jmember *m, const char *key, size_t len)
{
    return m->key_len == len && memcmp(m->key, key, len) == 0;
}

int naq__jscan_object(const char *json, size_t len, naq__jmember *m)
{
    scan s = {(const unsigned char *)json, (const unsigned char *)json + len, 0, 0};
    int n = 0;
    skip_ws(&s);
    if (s.p >= s.end || *s.p++ != '{')
        return -1;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            naq__jv key;
            if (s.p >= s.end || *s.p != '"' || !scan_value(&s, &key, 1) || key.escaped)
                return -1;
            skip_ws(&s);
            if (s.p >= s.end || *s.p++ != ':')
                return -1;
            skip_ws(&s);
            naq__jmember cur = {key.text + 1, key.len - 2, {0}};
            if (!scan_value(&s, &cur.value, 1))
                return -1;
            int at = 0;
            while (at < n && !key_is(&m[at], cur.key, cur.key_len))
                at++;
            if (at == NAQ__JSCAN_MEMBERS)
                return -1;
            m[at] = cur;
            if (at == n)
                n++;
            skip_ws(&s);
            if (s.p >= s.end)
                return -1;
            unsigned char c = *s.p++;
            if (c == '}')
                break;
            if (c != ',')
                return -1;
            skip_ws(&s);
        }
    }
    skip_ws(&s);
    return s.p == s.end ? n : -1;
}

const naq__jv *naq__jscan_get(const naq__jmember *m, int n, const char *key)
{
    size_t len = strlen(key);
    for (int i = 0; i < n; i++)
        if (key_is(&m[i], key, len))
            return &m[i].value;
    return NULL;
}
