/*
 * retry.c - backoff delays and retry_on / skip_on matching (see retry.h).
 *
 * Everything is computed in doubles and clamped before converting back:
 * an exponential policy at attempt 1000 is 2^999 * delay, which no
 * integer holds, and the answer must still be "the cap".
 */
#include "retry.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int64_t naq__retry_delay_ms(const naq_retry_policy *p, int attempt, double u)
{
    if (attempt < 1)
        attempt = 1;
    double base = (double)(p->delay_ms > 0 ? p->delay_ms : 0);
    int computed = 0; /* the cap applies */
    double d;
    switch (p->kind) {
    case NAQ_BACKOFF_LINEAR:
        d = base * attempt;
        computed = 1;
        break;
    case NAQ_BACKOFF_EXPONENTIAL:
        /* 2^1100 is already inf in a double: ldexp saturates cleanly. */
        d = ldexp(base, attempt - 1 > 1100 ? 1100 : attempt - 1);
        computed = 1;
        break;
    case NAQ_BACKOFF_LIST: {
        int n = p->n_delays < 0                      ? 0
                : p->n_delays > NAQ_BACKOFF_LIST_MAX ? NAQ_BACKOFF_LIST_MAX
                                                     : p->n_delays;
        int i = attempt - 1 < n ? attempt - 1 : n - 1;
        d = n > 0 && p->delays_ms[i] > 0 ? (double)p->delays_ms[i] : 0;
        break;
    }
    case NAQ_BACKOFF_FIXED:
    default: d = base; break;
    }
    double limit = (double)NAQ__RETRY_MAX_DELAY_MS;
    if (computed && p->max_delay_ms > 0 && (double)p->max_delay_ms < limit)
        limit = (double)p->max_delay_ms;
    d = clamp(d, 0, limit); /* before jitter too: inf * 0 would be NaN */
    double jitter = isnan(p->jitter) ? 0 : clamp(p->jitter, 0, 1);
    d *= 1.0 + jitter * clamp(isnan(u) ? 0 : u, -1, 1);
    return (int64_t)llround(clamp(d, 0, limit));
}

int64_t naq__retry_delay_random_ms(const naq_retry_policy *p, int attempt)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = 0x80000000u; /* u = 0: no jitter rather than a failure */
    double u = (double)r / (double)UINT32_MAX * 2.0 - 1.0;
    return naq__retry_delay_ms(p, attempt, u);
}

const char *naq__names_next(const char *p, const char **name, size_t *len)
{
    const char *end = strchr(p, ',');
    const char *stop = end ? end : p + strlen(p);
    while (p < stop && *p == ' ')
        p++;
    const char *last = stop;
    while (last > p && last[-1] == ' ')
        last--;
    *name = p;
    *len = (size_t)(last - p);
    return end ? end + 1 : NULL;
}

int naq__names_empty(const char *list)
{
    for (const char *p = list; p != NULL && *p; p++)
        if (*p != ' ' && *p != ',')
            return 0;
    return 1;
}

/* 1 when the comma-separated list names `name` (spaces around names
 * ignored). */
static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *item;
        size_t len;
        p = naq__names_next(p, &item, &len);
        if (len == n && strncmp(item, name, n) == 0)
            return 1;
    }
    return 0;
}

int naq__retry_allowed(const naq_retry_policy *p, const char *error_type)
{
    const char *t = error_type && error_type[0] ? error_type : "Error";
    /* Another attempt with the same keys decrypts no better. */
    if (strcmp(t, "DecryptError") == 0)
        return 0;
    if (p->skip_on != NULL && listed(p->skip_on, t))
        return 0;
    return naq__names_empty(p->retry_on) || listed(p->retry_on, t);
}
