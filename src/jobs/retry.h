/*
 * retry.h - the retry policy of a job as pure functions: how long to wait
 * before the next attempt, and whether an error type may be retried at
 * all. No I/O, no clock: the worker (worker_job.c) feeds in the attempt
 * and a random number, so the table tests in test_lifecycle.c pin every
 * case down. Private to libnaq.
 */
#ifndef NAQ_RETRY_H
#define NAQ_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "naq/job.h"

/* The longest delay a retry can get (one year): beyond it the nanosecond
 * count of the delayed nak would not mean anything useful. */
#define NAQ__RETRY_MAX_DELAY_MS (366LL * 24 * 3600 * 1000)

/*
 * The delay before the attempt after `attempt` failed (attempt >= 1 is the
 * attempt that just failed), in milliseconds:
 *   FIXED        delay_ms
 *   LINEAR       delay_ms * attempt
 *   EXPONENTIAL  delay_ms * 2^(attempt-1)
 *   LIST         delays_ms[attempt-1], the last entry repeated (0 when the
 *                list is empty)
 * then multiplied by (1 + jitter * u), u in [-1, 1] (jitter clamped to
 * 0..1). LINEAR and EXPONENTIAL, which the policy computes, never exceed
 * max_delay_ms when it is > 0 (jitter included); FIXED and LIST delays
 * are the user's own numbers and are not capped. Saturates instead of
 * overflowing; the result is in [0, NAQ__RETRY_MAX_DELAY_MS].
 */
int64_t naq__retry_delay_ms(const naq_retry_policy *p, int attempt, double u);

/* The same with u drawn uniformly from [-1, 1] (thread-safe). */
int64_t naq__retry_delay_random_ms(const naq_retry_policy *p, int attempt);

/* 1 when a failure of error_type may be retried under p: not listed in
 * skip_on, and listed in retry_on unless retry_on is empty or NULL. Lists
 * are comma-separated, spaces around names ignored, case-sensitive. A
 * NULL or empty error_type is matched as "Error". */
int naq__retry_allowed(const naq_retry_policy *p, const char *error_type);

/* Lists of error type names (retry_on, skip_on): "a, b", comma-separated,
 * spaces around names ignored. naq__names_next sets *name and *len to the
 * first name of p (len 0 for an empty one) and returns the rest of the
 * list, or NULL after the last name. */
const char *naq__names_next(const char *p, const char **name, size_t *len);
/* 1 when the list (may be NULL) holds no name. */
int naq__names_empty(const char *list);

#endif
