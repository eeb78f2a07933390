/*
 * calendar.h - proleptic Gregorian date arithmetic on days since
 * 1970-01-01, with floor division so that dates before 1970 work too.
 * Shared by the cron calculator, the TZif reader's POSIX rules and the
 * schedules' interval arithmetic; inline because each is a line or two.
 * Also the two character classes both text parsers use.
 */
#ifndef NAQ_SCHEDULER_CALENDAR_H
#define NAQ_SCHEDULER_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

static inline int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static inline int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static inline void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
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

static inline int weekday(int64_t days) /* 0 = Sunday; 1970-01-01 was a Thursday */
{
    return (int)(days - floor_div(days + 4, 7) * 7 + 4);
}

static inline bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static inline int days_in_month(int64_t y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* ASCII classes for the scheduler's text formats (cron fields, POSIX TZ
 * rules): <ctype.h>'s depend on the locale. */
static inline bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
static inline bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

#endif /* NAQ_SCHEDULER_CALENDAR_H */
