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
 * Time zones are read straight from the TZif files (RFC 8536) and their
 * POSIX-TZ footer, instead of the usual setenv("TZ") + tzset() +
 * localtime_r dance: that dance changes process-wide state, which another
 * thread's getenv() or localtime_r() could observe mid-change, and a
 * library must not do that behind its caller's back. UTC is plain
 * days-from-civil arithmetic.
 *
 * Invariant: every calendar computation is done in int64 on days or
 * seconds since 1970-01-01 (proleptic Gregorian), with floor division, so
 * dates before 1970 work too.
 */
#include "internal.h"
#include "naq/cron.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

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

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
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

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int weekday(int64_t days) /* 0 = Sunday; 1970-01-01 was a Thursday */
{
    return (int)(days - floor_div(days + 4, 7) * 7 + 4);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

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

/* ----------------------------------------------------------- time zones */

/* One date of a POSIX TZ rule: Jn (1-365, Feb 29 never counted), n (0-365)
 * or Mm.w.d (day d of week w of month m, w = 5 meaning the last), plus the
 * local time of day in seconds (may be negative or past 24h, RFC 8536). */
typedef struct {
    char kind; /* 'J', 'D' or 'M' */
    int n, m, w, d;
    int32_t time;
} rule_date;

typedef struct {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    rule_date start, end;
} tz_rule;

/* A loaded zone. Transition data points into `buf` (big-endian, decoded
 * on use); the static UTC zone has no transitions, no types, no rule. */
typedef struct {
    unsigned char *buf;
    const unsigned char *times, *idx, *types;
    uint32_t timecnt, typecnt;
    int tsize; /* 4 (v1 data) or 8 */
    bool has_rule;
    tz_rule rule;
} zone;

static int64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return n == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
}

static int32_t type_off(const zone *z, unsigned i)
{
    return (int32_t)be(z->types + 6 * i, 4);
}

static int64_t rule_day(const rule_date *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    if (r->kind == 'J')
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
    if (r->kind == 'D')
        return jan1 + r->n;
    int64_t first = days_from_civil(y, r->m, 1);
    int64_t day = first + (r->d - weekday(first) + 7) % 7 + (r->w - 1) * 7;
    if (day >= first + days_in_month(y, r->m)) /* no 5th such weekday: the last */
        day -= 7;
    return day;
}

static int32_t rule_offset(const tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y;
    int m, d;
    civil_from_days(floor_div(t, 86400), &y, &m, &d);
    /* The start time is given in standard time, the end time in DST. */
    int64_t start = rule_day(&r->start, y) * 86400 + r->start.time - r->std_off;
    int64_t end = rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

/* UTC offset (seconds east) in effect at instant t. */
static int32_t zone_offset(const zone *z, int64_t t)
{
    uint32_t n = z->timecnt;
    if (n == 0 || t >= be(z->times + (size_t)(n - 1) * z->tsize, z->tsize)) {
        if (z->has_rule)
            return rule_offset(&z->rule, t);
        if (n == 0)
            return z->typecnt ? type_off(z, 0) : 0;
    }
    if (t < be(z->times, z->tsize))
        return type_off(z, 0);   /* RFC 8536: type 0 before the first transition */
    uint32_t lo = 0, hi = n - 1; /* invariant: times[lo] <= t < times[hi + 1] */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (be(z->times + (size_t)mid * z->tsize, z->tsize) <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return type_off(z, z->idx[lo]);
}

/* Map wall time w (local seconds since the epoch) to the instant to fire
 * at: its first occurrence, or for a wall time inside a DST gap the first
 * instant after the gap. Assumes at most one transition within a day of w,
 * which holds for every real zone. */
static int64_t zone_wall_to_utc(const zone *z, int64_t w)
{
    int32_t before = zone_offset(z, w - 86400), after = zone_offset(z, w + 86400);
    int64_t ta = w - before, tb = w - after;
    bool va = zone_offset(z, ta) == before, vb = zone_offset(z, tb) == after;
    if (va && vb)
        return ta < tb ? ta : tb; /* repeated (or ordinary): the first */
    if (va || vb || before == after)
        return va || before == after ? ta : tb;
    /* In the gap: the clock jumps forward (after > before, tb < ta). Find
     * the transition instant, the first t in (tb, ta] no longer at `before`. */
    int64_t lo = tb, hi = ta;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (zone_offset(z, mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* POSIX TZ string pieces, as zic writes them into the TZif footer. */
static bool tz_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *close = strchr(s, '>');
        if (!close || close == s + 1)
            return false;
        *p = close + 1;
        return true;
    }
    while (is_alpha(*s))
        s++;
    if (s == *p)
        return false;
    *p = s;
    return true;
}

/* [+-]h[h][:mm[:ss]] in seconds; hours up to max_hours. */
static bool tz_hms(const char **p, int max_hours, int32_t *out)
{
    const char *s = *p;
    int sign = 1, part[3] = {0, 0, 0}, nparts = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    while (nparts < 3) {
        if (!is_digit(*s))
            return false;
        int v = 0, digits = 0;
        for (; is_digit(*s) && digits < 3; s++, digits++)
            v = v * 10 + (*s - '0');
        part[nparts++] = v;
        if (*s != ':')
            break;
        s++;
    }
    if (part[0] > max_hours || part[1] > 59 || part[2] > 59)
        return false;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *p = s;
    return true;
}

static bool tz_date(const char **p, rule_date *r)
{
    const char *s = *p;
    memset(r, 0, sizeof *r);
    if (*s == 'M') {
        s++;
        r->kind = 'M';
        int *dst[3] = {&r->m, &r->w, &r->d};
        for (int i = 0; i < 3; i++) {
            if (i > 0 && *s++ != '.')
                return false;
            if (!is_digit(*s))
                return false;
            for (*dst[i] = 0; is_digit(*s) && *dst[i] < 100; s++)
                *dst[i] = *dst[i] * 10 + (*s - '0');
        }
        if (r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d > 6)
            return false;
    } else {
        r->kind = *s == 'J' ? 'J' : 'D';
        s += *s == 'J';
        if (!is_digit(*s))
            return false;
        for (; is_digit(*s) && r->n < 1000; s++)
            r->n = r->n * 10 + (*s - '0');
        if (r->kind == 'J' ? (r->n < 1 || r->n > 365) : r->n > 365)
            return false;
    }
    r->time = 2 * 3600;
    if (*s == '/') {
        s++;
        if (!tz_hms(&s, 167, &r->time))
            return false;
    }
    *p = s;
    return true;
}

/* Parse a footer like "CET-1CEST,M3.5.0,M10.5.0/3". Note POSIX offsets
 * count hours WEST of UTC, the opposite sign of TZif offsets. */
static bool tz_parse_rule(const char *s, tz_rule *r)
{
    int32_t off;
    memset(r, 0, sizeof *r);
    if (!tz_name(&s) || !tz_hms(&s, 24, &off))
        return false;
    r->std_off = -off;
    if (*s == '\0')
        return true;
    if (!tz_name(&s))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!tz_hms(&s, 24, &off))
            return false;
        r->dst_off = -off;
    }
    if (*s == '\0') /* no rule given: POSIX leaves it to the implementation; use the US one */
        s = ",M3.2.0,M11.1.0";
    if (*s++ != ',' || !tz_date(&s, &r->start) || *s++ != ',' || !tz_date(&s, &r->end))
        return false;
    return *s == '\0';
}

/* Zone names come from job definitions, so refuse anything that could
 * escape the zoneinfo directory. */
static bool tz_name_ok(const char *tz)
{
    if (tz[0] == '/' || strlen(tz) > 200)
        return false;
    for (const char *p = tz; *p; p++)
        if (!is_alpha(*p) && !is_digit(*p) && !strchr("/_+-.", *p))
            return false;
    for (const char *p = tz; (p = strstr(p, "..")) != NULL; p++)
        if ((p == tz || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return false;
    return true;
}

/* Read the whole zone file into a fresh buffer the caller frees. */
static naq_status read_file(const char *path, const char *tz, unsigned char **buf, size_t *len)
{
    enum { MAX_TZIF = 1 << 20 }; /* real files are a few KiB */
    naq_status s = NAQ_OK;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return naq__fail(NAQ_ERR_INVALID_ARG, "unknown time zone '%s' (no file %s)", tz, path);
        return naq__fail(NAQ_ERR_IO, "cannot open time zone file %s (errno %d)", path, errno);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_TZIF) {
        /* "America" is a directory, not a zone. */
        s = naq__fail(NAQ_ERR_INVALID_ARG, "unknown time zone '%s' (%s is not a zone file)", tz,
                      path);
        goto out;
    }
    *len = (size_t)st.st_size;
    *buf = malloc(*len ? *len : 1);
    if (!*buf) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "no memory to read time zone '%s'", tz);
        goto out;
    }
    for (size_t got = 0; got < *len;) {
        ssize_t n = read(fd, *buf + got, *len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s = naq__fail(NAQ_ERR_IO, "cannot read time zone file %s", path);
            free(*buf);
            *buf = NULL;
            goto out;
        }
        got += (size_t)n;
    }
out:
    close(fd);
    return s;
}

/* Load zone `tz`; on NAQ_OK the caller frees z->buf. */
static naq_status zone_load(const char *tz, zone *z)
{
    char path[512];
    unsigned char *b = NULL;
    size_t len = 0;
    naq_status s;

    memset(z, 0, sizeof *z);
    if (!tz_name_ok(tz))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "time zone '%s' is not an IANA zone name (like Europe/Paris or UTC)", tz);
    const char *dir = getenv("TZDIR");
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    if ((s = read_file(path, tz, &b, &len)) != NAQ_OK)
        return s;

    /* Header: magic, version, 15 unused bytes, six big-endian counts. */
    const unsigned char *p = b, *end = b + len;
    uint64_t cnt[6];
    int version = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (end - p < 44 || memcmp(p, "TZif", 4) != 0)
            goto corrupt;
        version = p[4];
        for (int i = 0; i < 6; i++)
            cnt[i] = (uint32_t)be(p + 20 + 4 * i, 4);
        int tsize = pass == 0 ? 4 : 8;
        /* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
        uint64_t data =
            cnt[3] * tsize + cnt[3] + cnt[4] * 6 + cnt[5] + cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
        if ((uint64_t)(end - p) - 44 < data)
            goto corrupt;
        p += 44 + data;
        if (pass == 0 && version >= '2')
            continue; /* v2+ readers use the 64-bit block that follows */
        if (cnt[4] == 0)
            goto corrupt;
        if (cnt[2] != 0) {
            free(b);
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "time zone '%s' counts leap seconds, which naq does not support", tz);
        }
        z->times = p - data;
        z->idx = z->times + cnt[3] * tsize;
        z->types = z->idx + cnt[3];
        z->timecnt = (uint32_t)cnt[3];
        z->typecnt = (uint32_t)cnt[4];
        z->tsize = tsize;
        break;
    }
    for (uint32_t i = 0; i < z->timecnt; i++)
        if (z->idx[i] >= z->typecnt)
            goto corrupt;
    for (uint32_t i = 0; i < z->typecnt; i++)
        if (type_off(z, i) < -26 * 3600 || type_off(z, i) > 26 * 3600)
            goto corrupt;
    if (version >= '2') {
        /* Footer "\n<POSIX TZ>\n": the rule for instants after the last
         * transition. Empty means the last transition's type holds. */
        const unsigned char *nl = p < end ? memchr(p + 1, '\n', (size_t)(end - p - 1)) : NULL;
        if (p >= end || *p != '\n' || !nl)
            goto corrupt;
        char footer[128];
        size_t flen = (size_t)(nl - p - 1);
        if (flen >= sizeof footer)
            goto corrupt;
        memcpy(footer, p + 1, flen);
        footer[flen] = '\0';
        if (flen > 0) {
            if (!tz_parse_rule(footer, &z->rule))
                goto corrupt;
            z->has_rule = true;
        }
    }
    z->buf = b;
    return NAQ_OK;

corrupt:
    free(b);
    return naq__fail(NAQ_ERR_CODEC, "time zone file %s is not a TZif file naq can read", path);
}

/* -------------------------------------------------------------- next */

naq_status naq_cron_next(const naq_cron *c, int64_t after, const char *tz, int64_t *next_out)
{
    /* Years 1-9999: keeps every sum below far from int64 overflow. */
    const int64_t min_after = -62135596800, max_after = 253402300799;
    zone z;
    naq_status s = NAQ_OK;

    if (c == NULL || next_out == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_cron_next: c and next_out must not be NULL");
    if (after < min_after || after > max_after)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_cron_next: time %lld is outside years 1-9999",
                         (long long)after);
    if (tz == NULL || tz[0] == '\0' || strcmp(tz, "UTC") == 0)
        memset(&z, 0, sizeof z);
    else if ((s = zone_load(tz, &z)) != NAQ_OK)
        return s;

    int64_t start = after + 1;
    civil w = civil_from_seconds(start + zone_offset(&z, start));
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
        int64_t t = zone_wall_to_utc(&z, civil_seconds(&w));
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
