/*
 * tzif.c - time zones read straight from the TZif files (RFC 8536) and
 * their POSIX-TZ footer, for naq_cron_next (cron.c).
 *
 * Why not setenv("TZ") + tzset() + localtime_r: that changes process-wide
 * state, which another thread's getenv() or localtime_r() could observe
 * mid-change, and a library must not do that behind its caller's back.
 * A zone is read on each call and freed after it; transition data stay
 * big-endian in the file's buffer and are decoded on use.
 */
#include "calendar.h"
#include "tzif.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return n == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
}

static int32_t type_off(const naq__zone *z, unsigned i)
{
    return (int32_t)be(z->types + 6 * i, 4);
}

static int64_t rule_day(const naq__tz_date *r, int64_t y)
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

static int32_t rule_offset(const naq__tz_rule *r, int64_t t)
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
int32_t naq__zone_offset(const naq__zone *z, int64_t t)
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
int64_t naq__zone_wall_to_utc(const naq__zone *z, int64_t w)
{
    int32_t before = naq__zone_offset(z, w - 86400), after = naq__zone_offset(z, w + 86400);
    int64_t ta = w - before, tb = w - after;
    bool va = naq__zone_offset(z, ta) == before, vb = naq__zone_offset(z, tb) == after;
    if (va && vb)
        return ta < tb ? ta : tb; /* repeated (or ordinary): the first */
    if (va || vb || before == after)
        return va || before == after ? ta : tb;
    /* In the gap: the clock jumps forward (after > before, tb < ta). Find
     * the transition instant, the first t in (tb, ta] no longer at `before`. */
    int64_t lo = tb, hi = ta;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (naq__zone_offset(z, mid) == before)
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

static bool tz_date(const char **p, naq__tz_date *r)
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
static bool tz_parse_rule(const char *s, naq__tz_rule *r)
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
naq_status naq__zone_load(const char *tz, naq__zone *z)
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
