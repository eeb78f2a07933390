/*
 * jsonw.c - see jsonw.h.
 */
#include "jsonw.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void naq__jsonw_init(naq__jsonw *w, size_t initial)
{
    w->cap = initial < 64 ? 64 : initial;
    w->buf = malloc(w->cap);
    w->len = 0;
    w->failed = w->buf == NULL;
    w->need_comma = 0;
    w->borrowed = NULL;
}

void naq__jsonw_init_buf(naq__jsonw *w, char *buf, size_t cap)
{
    w->buf = w->borrowed = buf;
    w->cap = cap;
    w->len = 0;
    w->failed = 0;
    w->need_comma = 0;
}

void naq__jsonw_discard(naq__jsonw *w)
{
    if (w->buf != w->borrowed)
        free(w->buf);
    w->buf = NULL;
}

static int reserve(naq__jsonw *w, size_t more)
{
    if (w->failed)
        return 0;
    if (w->len + more + 1 <= w->cap)
        return 1;
    size_t cap = w->cap * 2;
    while (cap < w->len + more + 1)
        cap *= 2;
    char *b = w->buf == w->borrowed ? malloc(cap) : realloc(w->buf, cap);
    if (b == NULL) {
        w->failed = 1;
        return 0;
    }
    if (w->buf == w->borrowed)
        memcpy(b, w->buf, w->len);
    w->buf = b;
    w->cap = cap;
    return 1;
}

static void put(naq__jsonw *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* Length of a valid UTF-8 sequence starting at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (n == 2 && c < 0xc2) || c > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0)))
        return 0; /* overlong, or a UTF-16 surrogate */
    if (n == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90)))
        return 0;
    return n;
}

static void put_string(naq__jsonw *w, const char *v)
{
    static const char hex[] = "0123456789abcdef";
    put(w, "\"", 1);
    const unsigned char *s = (const unsigned char *)v;
    while (*s) {
        const unsigned char *run = s;
        /* Copy the longest run that needs no escaping in one go. */
        while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
            s++;
        put(w, (const char *)run, (size_t)(s - run));
        if (*s == '\0')
            break;
        if (*s >= 0x80) {
            size_t n = utf8_len(s);
            if (n == 0) {
                put(w, "\xef\xbf\xbd", 3); /* U+FFFD for an invalid byte */
                s++;
            } else {
                put(w, (const char *)s, n);
                s += n;
            }
            continue;
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (*s) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[*s >> 4];
            esc[5] = hex[*s & 15];
            n = 6;
        }
        put(w, esc, n);
        s++;
    }
    put(w, "\"", 1);
}

static void put_key(naq__jsonw *w, const char *key)
{
    if (w->need_comma)
        put(w, ",", 1);
    w->need_comma = 1;
    put_string(w, key);
    put(w, ":", 1);
}

void naq__jsonw_begin(naq__jsonw *w)
{
    put(w, "{", 1);
    w->need_comma = 0;
}

void naq__jsonw_str(naq__jsonw *w, const char *key, const char *v)
{
    put_key(w, key);
    put_string(w, v);
}

void naq__jsonw_int(naq__jsonw *w, const char *key, long long v)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", v);
    put_key(w, key);
    put(w, num, (size_t)n);
}

/* The shortest %g text (15, 16 or 17 significant digits) that reads back
 * as v: 2.418 prints as "2.418", not "2.4180000000000001" (%.17g), and
 * every double still survives the round trip. A value whose shortest form
 * has at most 15 digits prints exactly that with %.15g (trailing zeros are
 * dropped), so trying 15, 16 and 17 finds the shortest. Always with a
 * fraction or exponent, so readers see a real ("5.0", not "5"). */
static int shortest_real(char *num, size_t cap, double v)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(num, cap, "%.*g", prec, v);
        if (prec == 17 || strtod(num, NULL) == v)
            break;
    }
    if (strspn(num, "-0123456789") == (size_t)n)
        n += snprintf(num + n, cap - (size_t)n, ".0");
    return n;
}

void naq__jsonw_real(naq__jsonw *w, const char *key, double v)
{
    char num[40];
    int n = shortest_real(num, sizeof num, v);
    put_key(w, key);
    put(w, num, (size_t)n);
}

/* Rewrites, in place, every real number outside strings in JSON text to
 * its shortest form. jansson prints reals with a fixed precision (17 gives
 * "2.4180000000000001"), and has no shortest mode. The shortest form is
 * never longer than jansson's 17 digits; a token that would grow is kept. */
static void shorten_reals(char *s)
{
    char *r = s, *w = s;
    int in_string = 0;
    while (*r != '\0') {
        char c = *r;
        if (in_string || c == '"') {
            *w++ = *r++;
            if (c == '\\' && in_string && *r != '\0')
                *w++ = *r++; /* an escaped quote does not end the string */
            else if (c == '"')
                in_string = !in_string;
            continue;
        }
        size_t n = (c == '-' || (c >= '0' && c <= '9')) ? strspn(r, "-+0123456789.eE") : 1;
        char tok[64], num[40];
        if (n > 1 && n < sizeof tok && strcspn(r, ".eE") < n) {
            memcpy(tok, r, n);
            tok[n] = '\0';
            int len = shortest_real(num, sizeof num, strtod(tok, NULL));
            if ((size_t)len <= n) {
                memmove(w, num, (size_t)len);
                w += len;
                r += n;
                continue;
            }
        }
        memmove(w, r, n);
        w += n;
        r += n;
    }
    *w = '\0';
}

char *naq__json_dumps(const json_t *v, size_t flags)
{
    char *text = json_dumps(v, flags);
    if (text != NULL)
        shorten_reals(text);
    return text;
}

void naq__jsonw_raw(naq__jsonw *w, const char *key, const char *json, size_t len)
{
    put_key(w, key);
    put(w, json, len);
}

void naq__jsonw_fixed(naq__jsonw *w, const char *key, double v, int decimals)
{
    static const uint64_t pow10[] = {1,      10,      100,      1000,      10000,
                                     100000, 1000000, 10000000, 100000000, 1000000000};
    if (decimals < 1 || decimals > 9 || !(v > -1e9 && v < 1e12)) {
        naq__jsonw_real(w, key, v); /* out of the fast path's range */
        return;
    }
    int neg = v < 0;
    double a = neg ? -v : v;
    uint64_t scale = pow10[decimals];
    uint64_t units = (uint64_t)(a * (double)scale + 0.5);
    uint64_t whole = units / scale, frac = units % scale;
    char num[48], *p = num + sizeof num;
    for (int i = 0; i < decimals; i++) {
        *--p = (char)('0' + frac % 10);
        frac /= 10;
    }
    *--p = '.';
    do {
        *--p = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    if (neg)
        *--p = '-';
    put_key(w, key);
    put(w, p, (size_t)(num + sizeof num - p));
}

char *naq__jsonw_finish(naq__jsonw *w, size_t *len)
{
    put(w, "}", 1);
    if (w->failed) {
        naq__jsonw_discard(w);
        return NULL;
    }
    w->buf[w->len] = '\0';
    *len = w->len;
    char *out = w->buf;
    w->buf = NULL;
    return out;
}
