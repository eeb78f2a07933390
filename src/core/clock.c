/*
 * clock.c - the clocks and the sleeps every module uses: wall time as the
 * events carry it, the monotonic clock for timeouts and durations, a
 * sleep a stop flag cuts short, and the absolute deadlines
 * pthread_cond_timedwait wants.
 */
#include "internal.h"

#include <time.h>

double naq__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t naq__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t naq__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double naq__clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void naq__sleep_us(int64_t us)
{
    if (us <= 0)
        return;
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
    nanosleep(&ts, NULL); /* a signal may end it early */
}

void naq__sleep_ms(int64_t ms)
{
    naq__sleep_us(ms * 1000);
}

/* How often naq__nap looks at its stop flag. */
#define NAP_STEP_MS 50

void naq__nap(int64_t ms, const volatile int *stop)
{
    for (int64_t waited = 0; waited < ms && !(stop != NULL && *stop); waited += NAP_STEP_MS)
        naq__sleep_ms(ms - waited < NAP_STEP_MS ? ms - waited : NAP_STEP_MS);
}

struct timespec naq__deadline(clockid_t clock, int64_t ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
