/*
 * test_cron.c - cron parsing and next-fire times, checked against times
 * worked out by hand (and, for time zones, against the C library).
 *
 * Run one case alone with `test_cron <case_name>`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h" /* NAQ_TEST_MAIN */

#include "naq/cron.h"

/* "2024-01-15 09:30:00" (UTC) -> Unix seconds. */
static int64_t utc(const char *s)
{
    struct tm tm = {0};
    if (sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        fail_msg("bad time literal '%s' in test", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static const char *fmt_utc(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

typedef struct {
    const char *expr, *after, *want; /* times in UTC */
} next_case;

/* Every row: the first fire time of expr strictly after `after` is `want`. */
static void expect_next_in(const next_case *rows, size_t n, const char *tz)
{
    for (size_t i = 0; i < n; i++) {
        naq_cron c;
        int64_t got = 0;
        naq_status s = naq_cron_parse(rows[i].expr, &c);
        if (s != NAQ_OK)
            fail_msg("parse '%s': %s: %s", rows[i].expr, naq_status_str(s), naq_last_error());
        s = naq_cron_next(&c, utc(rows[i].after), tz, &got);
        if (s != NAQ_OK)
            fail_msg("'%s' after %s: %s: %s", rows[i].expr, rows[i].after, naq_status_str(s),
                     naq_last_error());
        if (got != utc(rows[i].want)) {
            char buf[32];
            fail_msg("'%s' after %s (%s): want %s, got %s", rows[i].expr, rows[i].after,
                     tz ? tz : "UTC", rows[i].want, fmt_utc(got, buf, sizeof buf));
        }
    }
}
#define EXPECT_NEXT(rows, tz) expect_next_in(rows, sizeof rows / sizeof rows[0], tz)

static void every_minute_fires_at_the_next_whole_minute(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"* * * * *", "2024-01-15 10:00:00", "2024-01-15 10:01:00"},
        {"* * * * *", "2024-01-15 10:00:30", "2024-01-15 10:01:00"},
        {"* * * * *", "2024-01-15 10:59:59", "2024-01-15 11:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void every_15_minutes_fires_on_the_quarter_hours(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"*/15 * * * *", "2024-01-15 10:00:00", "2024-01-15 10:15:00"},
        {"*/15 * * * *", "2024-01-15 10:44:59", "2024-01-15 10:45:00"},
        {"*/15 * * * *", "2024-01-15 10:45:00", "2024-01-15 11:00:00"},
        {"*/15 * * * *", "2024-01-15 23:50:00", "2024-01-16 00:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void specific_hour_fires_once_a_day(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"30 9 * * *", "2024-01-15 09:29:59", "2024-01-15 09:30:00"},
        {"30 9 * * *", "2024-01-15 09:30:00", "2024-01-16 09:30:00"},
        {"30 9 * * *", "2024-01-15 10:00:00", "2024-01-16 09:30:00"},
        {"0 8,12,18 * * *", "2024-01-15 12:00:00", "2024-01-15 18:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void day_31_skips_months_without_a_31st(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"0 0 31 * *", "2024-01-31 00:00:00", "2024-03-31 00:00:00"},
        {"0 0 31 * *", "2024-03-31 00:00:00", "2024-05-31 00:00:00"},
        {"0 0 31 * *", "2024-07-31 00:00:00", "2024-08-31 00:00:00"},
        {"0 0 31 * *", "2024-08-31 00:00:00", "2024-10-31 00:00:00"},
        {"0 0 31 * *", "2024-12-31 00:00:00", "2025-01-31 00:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void feb_29_fires_only_in_leap_years(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"0 0 29 2 *", "2025-03-01 00:00:00", "2028-02-29 00:00:00"},
        {"0 0 29 2 *", "2028-02-29 00:00:00", "2032-02-29 00:00:00"},
        /* 2100 is not a leap year: an 8-year gap. */
        {"0 0 29 2 *", "2096-02-29 00:00:00", "2104-02-29 00:00:00"},
        {"0 0 29 2 *", "1999-01-01 00:00:00", "2000-02-29 00:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void year_rolls_over_to_january(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"0 0 1 1 *", "2024-12-31 23:59:59", "2025-01-01 00:00:00"},
        {"59 23 31 12 *", "2024-12-31 23:59:00", "2025-12-31 23:59:00"},
        {"* * * * *", "2024-12-31 23:59:30", "2025-01-01 00:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void times_before_1970_work(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"0 0 1 1 *", "1960-06-01 00:00:00", "1961-01-01 00:00:00"},
        {"0 12 * * MON", "1969-12-31 23:59:59", "1970-01-05 12:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void day_and_month_names_are_case_insensitive(void **state)
{
    (void)state;
    /* 2024-01-15 is a Monday, 2024-01-19 a Friday. */
    static const next_case rows[] = {
        {"0 12 * * mon-fri", "2024-01-19 12:00:00", "2024-01-22 12:00:00"},
        {"0 12 * * SAT,sun", "2024-01-15 00:00:00", "2024-01-20 12:00:00"},
        {"0 12 * * Wed", "2024-01-15 00:00:00", "2024-01-17 12:00:00"},
        {"0 0 1 jan,JUL *", "2024-02-01 00:00:00", "2024-07-01 00:00:00"},
        {"0 0 1 Mar-may *", "2024-05-01 00:00:00", "2025-03-01 00:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void restricted_day_of_month_and_week_match_either(void **state)
{
    (void)state;
    /* "13th or Friday": Friday the 5th comes first, then Saturday the 13th. */
    static const next_case rows[] = {
        {"0 0 13 * FRI", "2024-01-01 00:00:00", "2024-01-05 00:00:00"},
        {"0 0 13 * FRI", "2024-01-12 00:00:00", "2024-01-13 00:00:00"},
        {"0 0 13 * FRI", "2024-01-13 00:00:00", "2024-01-19 00:00:00"},
        {"0 0 1 * MON", "2024-01-29 00:00:00", "2024-02-01 00:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void star_day_field_makes_both_day_fields_required(void **state)
{
    (void)state;
    /* Vixie: a day field starting with '*' means AND. Odd days that are
     * Fridays: Jan 5 2024, then the 12th (even) is skipped for the 19th. */
    static const next_case rows[] = {
        {"0 0 */2 * 5", "2024-01-01 00:00:00", "2024-01-05 00:00:00"},
        {"0 0 */2 * 5", "2024-01-05 00:00:00", "2024-01-19 00:00:00"},
        {"0 0 * * FRI", "2024-01-05 00:00:00", "2024-01-12 00:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void six_fields_start_with_seconds(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"*/10 * * * * *", "2024-01-15 10:00:00", "2024-01-15 10:00:10"},
        {"*/10 * * * * *", "2024-01-15 10:00:55", "2024-01-15 10:01:00"},
        {"30 0 9 * * *", "2024-01-15 08:00:00", "2024-01-15 09:00:30"},
        {"30 0 9 * * *", "2024-01-15 09:00:30", "2024-01-16 09:00:30"},
        {"* * * * * *", "2024-12-31 23:59:59", "2025-01-01 00:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void steps_apply_within_ranges_and_from_a_start(void **state)
{
    (void)state;
    static const next_case rows[] = {
        /* 9-17/4 = 9, 13, 17 */
        {"0 9-17/4 * * *", "2024-01-15 09:00:00", "2024-01-15 13:00:00"},
        {"0 9-17/4 * * *", "2024-01-15 13:00:00", "2024-01-15 17:00:00"},
        {"0 9-17/4 * * *", "2024-01-15 17:00:00", "2024-01-16 09:00:00"},
        /* 5/20 = 5, 25, 45 */
        {"5/20 * * * *", "2024-01-15 10:25:00", "2024-01-15 10:45:00"},
        {"5/20 * * * *", "2024-01-15 10:45:00", "2024-01-15 11:05:00"},
        {"0 0 1 */3 *", "2024-01-01 00:00:00", "2024-04-01 00:00:00"},
        {"0 0 1-10/5,20 * *", "2024-01-06 00:00:00", "2024-01-20 00:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void macros_expand_to_their_schedules(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"@yearly", "2024-06-01 00:00:00", "2025-01-01 00:00:00"},
        {"@annually", "2024-06-01 00:00:00", "2025-01-01 00:00:00"},
        {"@monthly", "2024-01-31 00:00:00", "2024-02-01 00:00:00"},
        {"@weekly", "2024-01-15 00:00:00", "2024-01-21 00:00:00"},
        {"@daily", "2024-01-15 10:00:00", "2024-01-16 00:00:00"},
        {"@midnight", "2024-01-15 10:00:00", "2024-01-16 00:00:00"},
        {"@hourly", "2024-01-15 10:00:00", "2024-01-15 11:00:00"},
        {"  @HOURLY  ", "2024-01-15 10:00:00", "2024-01-15 11:00:00"},
    };
    EXPECT_NEXT(rows, NULL);
}

static void seven_and_zero_both_mean_sunday(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"0 0 * * 7", "2024-01-15 00:00:00", "2024-01-21 00:00:00"},
        {"0 0 * * 0", "2024-01-15 00:00:00", "2024-01-21 00:00:00"},
        {"0 0 * * SUN", "2024-01-15 00:00:00", "2024-01-21 00:00:00"},
        {"0 0 * * 5-7", "2024-01-19 00:00:00", "2024-01-20 00:00:00"},
        {"0 0 * * 5-7", "2024-01-20 00:00:00", "2024-01-21 00:00:00"},
        {"0 0 * * 5-7", "2024-01-21 00:00:00", "2024-01-26 00:00:00"},
        {"0 0 * * FRI-SUN", "2024-01-21 00:00:00", "2024-01-26 00:00:00"},
    };
    EXPECT_NEXT(rows, NULL);

    naq_cron a, b;
    assert_int_equal(naq_cron_parse("0 0 * * 7", &a), NAQ_OK);
    assert_int_equal(naq_cron_parse("0 0 * * 0", &b), NAQ_OK);
    assert_int_equal(a.wdays, 0x01);
    assert_int_equal(b.wdays, 0x01);
}

static void parse_fills_bitsets_and_star_flags(void **state)
{
    (void)state;
    naq_cron c;
    assert_int_equal(naq_cron_parse("0,30 9-10 */10 JAN 1-2", &c), NAQ_OK);
    assert_int_equal(c.seconds, 1);
    assert_int_equal(c.minutes, (1ull << 0) | (1ull << 30));
    assert_int_equal(c.hours, (1u << 9) | (1u << 10));
    assert_int_equal(c.mdays, (1u << 1) | (1u << 11) | (1u << 21) | (1u << 31));
    assert_int_equal(c.months, 1u << 1);
    assert_int_equal(c.wdays, (1u << 1) | (1u << 2));
    assert_int_equal(c.flags, NAQ_CRON_DOM_ANY);

    assert_int_equal(naq_cron_parse("0 0 1 * *", &c), NAQ_OK);
    assert_int_equal(c.flags, NAQ_CRON_DOW_ANY);
    assert_int_equal(c.wdays, 0x7f);
}

static void invalid_expressions_name_the_bad_field(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *mentions;
    } rows[] = {
        {"", "0 fields"},
        {"* * * *", "4 fields"},
        {"* * * * * * *", "7 fields"},
        {"60 * * * *", "minute field '60'"},
        {"* 24 * * *", "hour field '24'"},
        {"* * 0 * *", "day-of-month field '0'"},
        {"* * 32 * *", "day-of-month field '32'"},
        {"* * * 13 *", "month field '13'"},
        {"* * * FOO *", "month field 'FOO'"},
        {"* * * JAN-FOO *", "month field 'JAN-FOO'"},
        {"* * * * 8", "day-of-week field '8'"},
        {"* * * * MONDAY", "day-of-week field 'MONDAY'"},
        {"*/0 * * * *", "minute field '*/0'"},
        {"*/ * * * *", "minute field '*/'"},
        {"5-1 * * * *", "minute field '5-1'"},
        {"1,,2 * * * *", "minute field '1,,2'"},
        {"1, * * * *", "minute field '1,'"},
        {"1- * * * *", "minute field '1-'"},
        {"1-2-3 * * * *", "minute field '1-2-3'"},
        {"99999999999 * * * *", "minute field '99999999999'"},
        {"60 * * * * *", "second field '60'"},
        {"@reboot", "macro '@reboot'"},
        {"@daily 5", "macro"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        naq_cron c, before;
        memset(&c, 0xAB, sizeof c);
        before = c;
        naq_status s = naq_cron_parse(rows[i].expr, &c);
        if (s != NAQ_ERR_INVALID_ARG)
            fail_msg("'%s': want invalid argument, got %s", rows[i].expr, naq_status_str(s));
        if (strstr(naq_last_error(), rows[i].mentions) == NULL)
            fail_msg("'%s': message '%s' does not mention \"%s\"", rows[i].expr, naq_last_error(),
                     rows[i].mentions);
        if (strncmp(rows[i].mentions, "minute", 6) == 0 &&
            strstr(naq_last_error(), "allowed: 0-59") == NULL)
            fail_msg("'%s': message '%s' does not say what is allowed", rows[i].expr,
                     naq_last_error());
        if (memcmp(&c, &before, sizeof c) != 0)
            fail_msg("'%s': failed parse wrote its output", rows[i].expr);
    }
    naq_cron c;
    assert_int_equal(naq_cron_parse(NULL, &c), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_cron_parse("* * * * *", NULL), NAQ_ERR_INVALID_ARG);
}

static void impossible_expression_is_not_found(void **state)
{
    (void)state;
    static const char *const exprs[] = {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 FEB *"};
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        naq_cron c;
        int64_t next = 0;
        assert_int_equal(naq_cron_parse(exprs[i], &c), NAQ_OK);
        naq_status s = naq_cron_next(&c, utc("2024-01-01 00:00:00"), NULL, &next);
        if (s != NAQ_ERR_NOT_FOUND)
            fail_msg("'%s': want not found, got %s", exprs[i], naq_status_str(s));
    }
}

static void next_rejects_bad_arguments(void **state)
{
    (void)state;
    naq_cron c;
    int64_t next;
    assert_int_equal(naq_cron_parse("* * * * *", &c), NAQ_OK);
    assert_int_equal(naq_cron_next(NULL, 0, NULL, &next), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_cron_next(&c, 0, NULL, NULL), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_cron_next(&c, INT64_MAX, NULL, &next), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_cron_next(&c, INT64_MIN, NULL, &next), NAQ_ERR_INVALID_ARG);
}

static void utc_spellings_are_equivalent(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"0 9 * * *", "2024-07-15 00:00:00", "2024-07-15 09:00:00"},
    };
    expect_next_in(rows, 1, NULL);
    expect_next_in(rows, 1, "");
    expect_next_in(rows, 1, "UTC");
    expect_next_in(rows, 1, "Etc/UTC"); /* through the zone file */
}

static void new_york_9am_is_14h_utc_in_winter_and_13h_in_summer(void **state)
{
    (void)state;
    static const next_case rows[] = {
        {"0 9 * * *", "2024-01-15 00:00:00", "2024-01-15 14:00:00"},
        {"0 9 * * *", "2024-07-15 00:00:00", "2024-07-15 13:00:00"},
        /* Past the file's transition table: the footer rule takes over. */
        {"0 9 * * *", "2050-01-10 00:00:00", "2050-01-10 14:00:00"},
        {"0 9 * * *", "2050-07-01 00:00:00", "2050-07-01 13:00:00"},
    };
    EXPECT_NEXT(rows, "America/New_York");
}

static void southern_and_eastern_zones_convert_correctly(void **state)
{
    (void)state;
    static const next_case paris[] = {
        {"0 9 * * *", "2024-01-15 00:00:00", "2024-01-15 08:00:00"},
        {"0 9 * * *", "2024-07-15 00:00:00", "2024-07-15 07:00:00"},
    };
    /* Sydney is on daylight time (UTC+11) in January: 09:00 on the 11th
     * local is 22:00 on the 10th UTC; on standard time (+10) in July. */
    static const next_case sydney[] = {
        {"0 9 * * *", "2050-01-10 00:00:00", "2050-01-10 22:00:00"},
        {"0 9 * * *", "2050-07-10 00:00:00", "2050-07-10 23:00:00"},
    };
    static const next_case kolkata[] = {
        {"0 9 * * *", "2024-01-15 00:00:00", "2024-01-15 03:30:00"},
    };
    EXPECT_NEXT(paris, "Europe/Paris");
    EXPECT_NEXT(sydney, "Australia/Sydney");
    EXPECT_NEXT(kolkata, "Asia/Kolkata");
}

static void wall_time_skipped_by_dst_fires_once_after_the_gap(void **state)
{
    (void)state;
    /* New York, 2024-03-10: 02:00 EST jumps to 03:00 EDT (07:00 UTC). */
    static const next_case rows[] = {
        {"30 2 * * *", "2024-03-10 05:00:00", "2024-03-10 07:00:00"},
        {"30 2 * * *", "2024-03-10 07:00:00", "2024-03-11 06:30:00"},
        /* 02:00, 02:15, 02:30, 02:45 are all skipped: one firing at 03:00. */
        {"*/15 2 * * *", "2024-03-10 05:00:00", "2024-03-10 07:00:00"},
        {"*/15 2 * * *", "2024-03-10 07:00:00", "2024-03-11 06:00:00"},
        /* An every-minute job runs straight through. */
        {"* * * * *", "2024-03-10 06:59:00", "2024-03-10 07:00:00"},
        {"* * * * *", "2024-03-10 07:00:00", "2024-03-10 07:01:00"},
    };
    EXPECT_NEXT(rows, "America/New_York");
}

static void wall_time_repeated_by_dst_fires_once(void **state)
{
    (void)state;
    /* New York, 2024-11-03: 02:00 EDT falls back to 01:00 EST (06:00 UTC),
     * so 01:30 happens at 05:30 UTC and again at 06:30 UTC. */
    static const next_case rows[] = {
        {"30 1 * * *", "2024-11-03 04:00:00", "2024-11-03 05:30:00"},
        {"30 1 * * *", "2024-11-03 05:30:00", "2024-11-04 06:30:00"},
        /* Starting inside the second 01:xx hour: its first 01:30 is past. */
        {"30 1 * * *", "2024-11-03 06:10:00", "2024-11-04 06:30:00"},
        {"0 * * * *", "2024-11-03 05:00:00", "2024-11-03 07:00:00"},
    };
    EXPECT_NEXT(rows, "America/New_York");
}

/* Noon every few days from 1950 to 2150 must land where the C library's
 * mktime puts it, in zones with odd offsets, southern DST, DST rules
 * with negative or >24h times, and footer rules after 2037. */
static void zone_offsets_match_the_c_library(void **state)
{
    (void)state;
    static const char *const zones[] = {
        "America/New_York", "Europe/Paris",      "Australia/Sydney", "Asia/Kolkata",
        "Pacific/Chatham",  "America/Nuuk",      "Asia/Jerusalem",   "Africa/Casablanca",
        "Europe/London",    "America/Sao_Paulo",
    };
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    naq_cron c;
    assert_int_equal(naq_cron_parse("0 12 * * *", &c), NAQ_OK);
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        setenv("TZ", zones[z], 1);
        tzset();
        for (int64_t day = utc("1950-01-01 00:00:00") / 86400;
             day < utc("2150-01-01 00:00:00") / 86400; day += 5) {
            time_t d = (time_t)(day * 86400);
            struct tm tm;
            gmtime_r(&d, &tm);
            tm.tm_hour = 12;
            tm.tm_min = tm.tm_sec = 0;
            tm.tm_isdst = -1;
            int64_t want = (int64_t)mktime(&tm), got = 0;
            naq_status s = naq_cron_next(&c, want - 3600, zones[z], &got);
            if (s != NAQ_OK || got != want) {
                char a[32], b[32];
                fail_msg("%s noon: want %s UTC, got %s UTC (%s)", zones[z],
                         fmt_utc(want, a, sizeof a), fmt_utc(got, b, sizeof b), naq_status_str(s));
            }
        }
    }
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

static void unknown_or_unsafe_zone_names_are_invalid(void **state)
{
    (void)state;
    static const char *const names[] = {"Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime",
                                        "America", "Europe/Paris;rm"};
    naq_cron c;
    int64_t next;
    assert_int_equal(naq_cron_parse("* * * * *", &c), NAQ_OK);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        naq_status s = naq_cron_next(&c, 0, names[i], &next);
        if (s != NAQ_ERR_INVALID_ARG)
            fail_msg("zone '%s': want invalid argument, got %s", names[i], naq_status_str(s));
        if (strstr(naq_last_error(), names[i]) == NULL)
            fail_msg("zone '%s': message '%s' does not name it", names[i], naq_last_error());
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_minute_fires_at_the_next_whole_minute),
    cmocka_unit_test(every_15_minutes_fires_on_the_quarter_hours),
    cmocka_unit_test(specific_hour_fires_once_a_day),
    cmocka_unit_test(day_31_skips_months_without_a_31st),
    cmocka_unit_test(feb_29_fires_only_in_leap_years),
    cmocka_unit_test(year_rolls_over_to_january),
    cmocka_unit_test(times_before_1970_work),
    cmocka_unit_test(day_and_month_names_are_case_insensitive),
    cmocka_unit_test(restricted_day_of_month_and_week_match_either),
    cmocka_unit_test(star_day_field_makes_both_day_fields_required),
    cmocka_unit_test(six_fields_start_with_seconds),
    cmocka_unit_test(steps_apply_within_ranges_and_from_a_start),
    cmocka_unit_test(macros_expand_to_their_schedules),
    cmocka_unit_test(seven_and_zero_both_mean_sunday),
    cmocka_unit_test(parse_fills_bitsets_and_star_flags),
    cmocka_unit_test(invalid_expressions_name_the_bad_field),
    cmocka_unit_test(impossible_expression_is_not_found),
    cmocka_unit_test(next_rejects_bad_arguments),
    cmocka_unit_test(utc_spellings_are_equivalent),
    cmocka_unit_test(new_york_9am_is_14h_utc_in_winter_and_13h_in_summer),
    cmocka_unit_test(southern_and_eastern_zones_convert_correctly),
    cmocka_unit_test(wall_time_skipped_by_dst_fires_once_after_the_gap),
    cmocka_unit_test(wall_time_repeated_by_dst_fires_once),
    cmocka_unit_test(zone_offsets_match_the_c_library),
    cmocka_unit_test(unknown_or_unsafe_zone_names_are_invalid),
};

NAQ_TEST_MAIN(tests)
