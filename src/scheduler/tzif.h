/*
 * tzif.h - time zones read straight from their TZif files (tzif.c), for
 * the cron calculator. Private to src/scheduler/.
 */
#ifndef NAQ_SCHEDULER_TZIF_H
#define NAQ_SCHEDULER_TZIF_H

#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

/* One date of a POSIX TZ rule: Jn (1-365, Feb 29 never counted), n (0-365)
 * or Mm.w.d (day d of week w of month m, w = 5 meaning the last), plus the
 * local time of day in seconds (may be negative or past 24h, RFC 8536). */
typedef struct {
    char kind; /* 'J', 'D' or 'M' */
    int n, m, w, d;
    int32_t time;
} naq__tz_date;

typedef struct {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    naq__tz_date start, end;
} naq__tz_rule;

/* A loaded zone. Transition data points into `buf` (big-endian, decoded
 * on use); the static UTC zone has no transitions, no types, no rule. */
typedef struct {
    unsigned char *buf;
    const unsigned char *times, *idx, *types;
    uint32_t timecnt, typecnt;
    int tsize; /* 4 (v1 data) or 8 */
    bool has_rule;
    naq__tz_rule rule;
} naq__zone;

/* Loads zone `tz` (an IANA name, under $TZDIR or /usr/share/zoneinfo); on
 * NAQ_OK the caller frees z->buf. A zeroed naq__zone is UTC. */
naq_status naq__zone_load(const char *tz, naq__zone *z);
/* UTC offset (seconds east) in effect at instant t. */
int32_t naq__zone_offset(const naq__zone *z, int64_t t);
/* The instant a wall time w (local seconds since the epoch) fires at: its
 * first occurrence, or, inside a DST gap, the first instant after it. */
int64_t naq__zone_wall_to_utc(const naq__zone *z, int64_t w);

#endif /* NAQ_SCHEDULER_TZIF_H */
