/*
 * naq/cron.h - cron expressions: parse once, then ask for the next fire time.
 *
 * A naq_cron is a plain struct of bitsets (no heap), so it can live on the
 * stack, be copied with `=` and be shared read-only by any number of
 * threads. Both calls are thread-safe: they touch no global state (time
 * zones are read from the zoneinfo files directly, never through the TZ
 * environment variable).
 */
#ifndef NAQ_CRON_H
#define NAQ_CRON_H

#include <stdint.h>

#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* naq_cron.flags: the day-of-month / day-of-week field began with '*'.
 * Vixie cron decides the day rule from this (see naq_cron_parse). */
#define NAQ_CRON_DOM_ANY 0x01u
#define NAQ_CRON_DOW_ANY 0x02u

/* A parsed expression. Bit n of each set means "value n matches". */
typedef struct naq_cron {
    uint64_t seconds; /* 0-59; just bit 0 for a 5-field expression */
    uint64_t minutes; /* 0-59 */
    uint32_t hours;   /* 0-23 */
    uint32_t mdays;   /* 1-31 (bit 0 unused) */
    uint16_t months;  /* 1-12 (bit 0 unused) */
    uint8_t wdays;    /* 0-6, 0 = Sunday (a 7 in the text is folded to 0) */
    uint8_t flags;    /* NAQ_CRON_DOM_ANY | NAQ_CRON_DOW_ANY */
} naq_cron;

/* Parse `expr` into *out.
 *
 * Syntax: 5 fields "minute hour day-of-month month day-of-week", or 6 with
 * a leading "second" field, separated by spaces or tabs. Each field is a
 * comma list of items; an item is `*`, `a`, `a-b`, optionally followed by
 * `/step` (`a/step` means a through the field's maximum). Months accept
 * JAN-DEC, days of week SUN-SAT (both case-insensitive); day of week is
 * 0-7 with 0 and 7 both Sunday, and a range may end on Sunday as 7 or SUN
 * ("FRI-SUN"). Macros: @yearly @annually @monthly @weekly @daily
 * @midnight @hourly (they fire at second 0).
 *
 * Day rule (Vixie cron): when both day-of-month and day-of-week are
 * restricted, a day matches if EITHER matches ("0 0 1 * MON" = the 1st
 * and every Monday); otherwise both must match. As in Vixie cron, a field
 * counts as unrestricted when its text begins with '*', so a stepped star
 * day-of-month ("0 0 * /2 * FRI" without the space) means odd days that
 * are also Fridays.
 *
 * Returns NAQ_OK, or NAQ_ERR_INVALID_ARG with naq_last_error() naming the
 * bad field and what it allows. *out is written only on success.
 */
naq_status naq_cron_parse(const char *expr, naq_cron *out);

/* The first fire time strictly after `after` (Unix seconds), in *next_out.
 *
 * `tz` is an IANA zone name ("Europe/Paris") whose wall clock the
 * expression is read in; NULL, "" or "UTC" mean UTC. The zone is read
 * from $TZDIR or /usr/share/zoneinfo on each call (no cache).
 *
 * Daylight-saving rule: a wall time that a clock change skips (02:30 on a
 * spring-forward night) fires once, at the first valid instant after the
 * gap (03:00 new time); a wall time that happens twice (01:30 on a
 * fall-back night) fires once, at its first occurrence. So a job that
 * runs every minute in a named zone pauses for the repeated hour; use UTC
 * for strict intervals.
 *
 * `after` must lie in years 1-9999. Returns NAQ_OK; NAQ_ERR_NOT_FOUND when
 * the expression never fires ("0 0 30 2 *"); NAQ_ERR_INVALID_ARG for bad
 * arguments or an unknown zone; NAQ_ERR_IO / NAQ_ERR_CODEC when the zone
 * file cannot be read or parsed.
 */
naq_status naq_cron_next(const naq_cron *c, int64_t after, const char *tz, int64_t *next_out);

#ifdef __cplusplus
}
#endif
#endif
