/*
 * cron.c - cron expression parser and next-fire-time calculator.
 *
 * Parsing turns each field into a bitset. Finding the next fire time walks
 * the *wall clock* of the zone (year, month, day, hour, minute, second)
 * from the first candidate second upward, jumping a whole month, day, hour
 * or minute whenever that field does not match, so a search costs at most
 * a few hundred steps per calendar year. Each matching wall time is then
 * mapped to a UTC instant; DST gaps and repeats are resolved there (see
 * naq_cron_next in cron.h for the rule).
 *
 * Time zones are read straight from the TZif files by tzif.c (see there
 * why); UTC is plain days-from-civil arithmetic.
 *
 * Invariant: every calendar computation is done in int64 on days or
 * seconds since 1970-01-01 (proleptic Gregorian), with floor division, so
 * dates before 1970 work too.
 */
#include "calendar.h"
#include "internal.h"
#include "naq/cron.h"
#include "tzif.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- parse */

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };

typedef struct {
    const char *name; /* for messages */
    int min, max;
    const char *const *names; /* 3-letter names of min, min+1, ... or NULL */
    const char *allowed;      /* for messages */
} field_spec;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                          "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const field_spec fields[F_COUNT] = {
    [F_SEC] = {"second", 0, 59, NULL, "0-59"},
    [F_MIN] = {"minute", 0, 59, NULL, "0-59"},
    [F_HOUR] = {"hour", 0, 23, NULL, "0-23"},
    [F_DOM] = {"day-of-month", 1, 31, NULL, "1-31"},
    [F_MON] = {"month", 1, 12, month_names, "1-12 or JAN-DEC"},
    [F_DOW] = {"day-of-week", 0, 7, day_names, "0-7 or SUN-SAT, 0 and 7 are Sunday"},
};

static const struct {
    const char *name, *expansion;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* One field being parsed: its spec and its text, for error messages. */
typedef struct {
    const field_spec *spec;
    const char *text;
    int len;
} field_ctx;

static naq_status field_fail(const field_ctx *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static naq_status field_fail(const field_ctx *f, const char *fmt, ...)
{
    char why[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return naq__fail(NAQ_ERR_INVALID_ARG,
                     "cron %s field '%.*s': %s (allowed: %s; items *, a, a-b, */n, a-b/n, a/n, "
                     "comma-separated)",
                     f->spec->name, f->len, f->text, why, f->spec->allowed);
}

/* A decimal number or a name, range-checked against the field. */
static naq_status parse_value(const field_ctx *f, const char **p, const char *end, int *out)
{
    const char *s = *p;
    if (s < end && is_digit(*s)) {
        int v = 0;
        /* Cap the accumulator: anything past 3 digits is out of range anyway. */
        for (; s < end && is_digit(*s); s++)
            v = v > 999 ? v : v * 10 + (*s - '0');
        if (v < f->spec->min || v > f->spec->max)
            return field_fail(f, "value %d is out of range", v);
        *p = s;
        *out = v;
        return NAQ_OK;
    }
    if (s < end && is_alpha(*s)) {
        const char *word = s;
        while (s < end && is_alpha(*s))
            s++;
        int wlen = (int)(s - word);
        for (int i = 0; f->spec->names && f->spec->names[i]; i++) {
            if (wlen == 3 && strncasecmp(word, f->spec->names[i], 3) == 0) {
                *p = s;
                *out = f->spec->min + i;
                return NAQ_OK;
            }
        }
        return field_fail(f, "unknown name '%.*s'", wlen, word);
    }
    if (s == end)
        return field_fail(f, "a value is missing");
    return field_fail(f, "unexpected '%c'", *s);
}

/* One comma-separated item: `*`, `a`, `a-b`, each optionally `/step`. */
static naq_status parse_item(const field_ctx *f, const char *p, const char *end, uint64_t *bits)
{
    const field_spec *spec = f->spec;
    int lo, hi, step = 1;
    bool single = false;

    if (p == end)
        return field_fail(f, "empty list item");
    if (*p == '*') {
        lo = spec->min;
        hi = spec->max;
        p++;
    } else {
        naq_status s = parse_value(f, &p, end, &lo);
        if (s != NAQ_OK)
            return s;
        hi = lo;
        single = true;
        if (p < end && *p == '-') {
            p++;
            if ((s = parse_value(f, &p, end, &hi)) != NAQ_OK)
                return s;
            single = false;
            /* "FRI-SUN": Sunday ends a range as 7, since SUN parses as 0. */
            if (spec == &fields[F_DOW] && hi == 0 && lo > 0)
                hi = 7;
            if (lo > hi)
                return field_fail(f, "range %d-%d runs backwards", lo, hi);
        }
    }
    if (p < end && *p == '/') {
        p++;
        if (p == end || !is_digit(*p))
            return field_fail(f, "a step must be a number after '/'");
        step = 0;
        for (; p < end && is_digit(*p); p++)
            step = step > 999 ? step : step * 10 + (*p - '0');
        if (step < 1 || step > spec->max)
            return field_fail(f, "step %d is out of range 1-%d", step, spec->max);
        if (single) /* `a/n` means a through the maximum */
            hi = spec->max;
    }
    if (p != end)
        return field_fail(f, "unexpected '%c'", *p);
    for (int v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << v;
    return NAQ_OK;
}

static naq_status parse_field(const field_spec *spec, const char *text, int len, uint64_t *bits)
{
    field_ctx f = {spec, text, len};
    const char *end = text + len;
    *bits = 0;
    for (const char *p = text;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        naq_status s = parse_item(&f, p, item_end, bits);
        if (s != NAQ_OK)
            return s;
        if (!comma)
            return NAQ_OK;
        p = comma + 1;
    }
}

naq_status naq_cron_parse(const char *expr, naq_cron *out)
{
    if (expr == NULL || out == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_cron_parse: expr and out must not be NULL");

    /* Real expressions are short; the cap keeps field lengths in an int. */
    if (strlen(expr) > 1024)
        return naq__fail(NAQ_ERR_INVALID_ARG, "cron expression is longer than 1024 characters");
    while (*expr == ' ' || *expr == '\t')
        expr++;
    if (*expr == '@') {
        size_t n = strcspn(expr, " \t");
        if (expr[n + strspn(expr + n, " \t")] == '\0') {
            for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
                if (strlen(macros[i].name) == n && strncasecmp(expr, macros[i].name, n) == 0)
                    return naq_cron_parse(macros[i].expansion, out);
        }
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "cron macro '%s' is not supported (allowed: @yearly, @annually, "
                         "@monthly, @weekly, @daily, @midnight, @hourly)",
                         expr);
    }

    /* Split on blanks; remember up to 6 fields, count all of them. */
    const char *text[F_COUNT];
    int len[F_COUNT];
    int nfields = 0;
    for (const char *p = expr; *p;) {
        size_t n = strcspn(p, " \t");
        if (nfields < F_COUNT) {
            text[nfields] = p;
            len[nfields] = (int)n;
        }
        nfields++;
        p += n;
        p += strspn(p, " \t");
    }
    if (nfields != 5 && nfields != 6)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "cron expression '%s' has %d fields; expected 5 (minute hour "
                         "day-of-month month day-of-week) or 6 (second first)",
                         expr, nfields);

    uint64_t bits[F_COUNT];
    int first = nfields == 6 ? F_SEC : F_MIN;
    bits[F_SEC] = 1; /* 5 fields: second 0 */
    for (int i = first; i < F_COUNT; i++) {
        naq_status s = parse_field(&fields[i], text[i - first], len[i - first], &bits[i]);
        if (s != NAQ_OK)
            return s;
    }

    naq_cron c = {0};
    c.seconds = bits[F_SEC];
    c.minutes = bits[F_MIN];
    c.hours = (uint32_t)bits[F_HOUR];
    c.mdays = (uint32_t)bits[F_DOM];
    c.months = (uint16_t)bits[F_MON];
    /* 7 is another spelling of Sunday. */
    c.wdays = (uint8_t)((bits[F_DOW] | bits[F_DOW] >> 7) & 0x7f);
    if (text[F_DOM - first][0] == '*')
        c.flags |= NAQ_CRON_DOM_ANY;
    if (text[F_DOW - first][0] == '*')
        c.flags |= NAQ_CRON_DOW_ANY;
    *out = c;
    return NAQ_OK;
}

/* ------------------------------------------------------------- calendar */
/* Days and dates are calendar.h's; a wall time is built on them. */

/* A wall-clock time; fields always hold a valid date and time. */
typedef struct {
    int64_t y;
    int mon, d, h, mi, s;
} civil;

static int64_t civil_seconds(const civil *w)
{
    return days_from_civil(w->y, w->mon, w->d) * 86400 + w->h * 3600 + w->mi * 60 + w->s;
}

static civil civil_from_seconds(int64_t t)
{
    civil w;
    int64_t days = floor_div(t, 86400), sod = t - days * 86400;
    civil_from_days(days, &w.y, &w.mon, &w.d);
    w.h = (int)(sod / 3600);
    w.mi = (int)(sod / 60 % 60);
    w.s = (int)(sod % 60);
    return w;
}

/* Each advances to the start of the next unit, carrying upward. */
static void next_month(civil *w)
{
    w->d = 1;
    w->h = w->mi = w->s = 0;
    if (++w->mon > 12) {
        w->mon = 1;
        w->y++;
    }
}
static void next_day(civil *w)
{
    w->h = w->mi = w->s = 0;
    if (++w->d > days_in_month(w->y, w->mon))
        next_month(w);
}
static void next_hour(civil *w)
{
    w->mi = w->s = 0;
    if (++w->h > 23)
        next_day(w);
}
static void next_minute(civil *w)
{
    w->s = 0;
    if (++w->mi > 59)
        next_hour(w);
}
static void next_second(civil *w)
{
    if (++w->s > 59)
        next_minute(w);
}

/* Lowest set bit >= from, or -1. */
static int next_bit(uint64_t mask, int from)
{
    mask >>= from;
    return mask ? from + __builtin_ctzll(mask) : -1;
}

static bool day_matches(const naq_cron *c, const civil *w)
{
    bool dom = c->mdays >> w->d & 1;
    bool dow = c->wdays >> weekday(days_from_civil(w->y, w->mon, w->d)) & 1;
    /* Vixie cron: if either field is '*', both must match (the '*' one
     * always does unless stepped); if both are restricted, either will do. */
    if (c->flags & (NAQ_CRON_DOM_ANY | NAQ_CRON_DOW_ANY))
        return dom && dow;
    return dom || dow;
}

/* Move *w forward to the first wall time >= *w that the expression
 * matches. false if none before year `limit`. */
static bool find_match(const naq_cron *c, civil *w, int64_t limit)
{
    int v;
    while (w->y <= limit) {
        if (!(c->months >> w->mon & 1))
            next_month(w);
        else if (!day_matches(c, w))
            next_day(w);
        else if ((v = next_bit(c->hours, w->h)) < 0)
            next_day(w);
        else if (v != w->h)
            w->h = v, w->mi = w->s = 0;
        else if ((v = next_bit(c->minutes, w->mi)) < 0)
            next_hour(w);
        else if (v != w->mi)
            w->mi = v, w->s = 0;
        else if ((v = next_bit(c->seconds, w->s)) < 0)
            next_minute(w);
        else if (v != w->s)
            w->s = v;
        else
            return true;
    }
    return false;
}

/* -------------------------------------------------------------- next */

naq_status naq_cron_next(const naq_cron *c, int64_t after, const char *tz, int64_t *next_out)
{
    /* Years 1-9999: keeps every sum below far from int64 overflow. */
    const int64_t min_after = -62135596800, max_after = 253402300799;
    naq__zone z;
    naq_status s = NAQ_OK;

    if (c == NULL || next_out == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_cron_next: c and next_out must not be NULL");
    if (after < min_after || after > max_after)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_cron_next: time %lld is outside years 1-9999",
                         (long long)after);
    if (tz == NULL || tz[0] == '\0' || strcmp(tz, "UTC") == 0)
        memset(&z, 0, sizeof z);
    else if ((s = naq__zone_load(tz, &z)) != NAQ_OK)
        return s;

    int64_t start = after + 1;
    civil w = civil_from_seconds(start + naq__zone_offset(&z, start));
    /* The Gregorian calendar repeats every 400 years (146097 days, a whole
     * number of weeks), so a pattern unseen in 400 years never matches. An
     * impossible one costs ~12k cheap steps; a 5-year cap would wrongly
     * give up on "0 0 29 2 *" around 2100, which is not a leap year. */
    int64_t limit = w.y + 400;
    for (;;) {
        if (!find_match(c, &w, limit)) {
            s = naq__fail(
                NAQ_ERR_NOT_FOUND,
                "cron expression never fires (no matching date in a 400-year calendar cycle)");
            break;
        }
        int64_t t = naq__zone_wall_to_utc(&z, civil_seconds(&w));
        /* t <= after: a repeated wall time whose first occurrence has
         * passed, or a DST gap whose fire time has passed; each fires once.
         * Offsets are within +-26h (checked at load), so only wall times
         * within about two days of the start can be skipped: the loop ends. */
        if (t > after) {
            *next_out = t;
            break;
        }
        next_second(&w);
    }
    free(z.buf);
    return s;
}
