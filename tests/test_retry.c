/*
 * test_retry.c - retry.c, the retry policy as pure functions: the delay
 * before each attempt for every backoff kind (tables, the random draw
 * given), jitter bounds, the caps, and which error types are retried. No
 * server; test_lifecycle.c runs the policy against one.
 */
#include "harness.h"

#include "jobs/retry.h"

#include <math.h>
#include <string.h>

typedef struct {
    int attempt;
    double u; /* the random draw, -1..1 */
    int64_t want_ms;
} delay_case;

static void check_delays(const naq_retry_policy *p, const delay_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t got = naq__retry_delay_ms(p, cases[i].attempt, cases[i].u);
        if (got != cases[i].want_ms)
            fail_msg("kind %d, attempt %d, u %.2f: delay %lld ms, wanted %lld ms", (int)p->kind,
                     cases[i].attempt, cases[i].u, (long long)got, (long long)cases[i].want_ms);
    }
}

static naq_retry_policy policy(naq_backoff_kind kind, int64_t delay_ms, int64_t max_delay_ms,
                               double jitter)
{
    naq_retry_policy p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.delay_ms = delay_ms;
    p.max_delay_ms = max_delay_ms;
    p.jitter = jitter;
    return p;
}

static void backoff_fixed_waits_the_same_delay_every_time(void **state)
{
    (void)state;
    naq_retry_policy p = policy(NAQ_BACKOFF_FIXED, 1500, 1000, 0);
    /* The cap is for computed delays: a fixed delay is the user's number. */
    delay_case cases[] = {{1, 0, 1500}, {2, 0, 1500}, {50, 0, 1500}, {1000000, 0, 1500}};
    check_delays(&p, cases, sizeof cases / sizeof *cases);
    p.delay_ms = 0;
    delay_case zero[] = {{1, 0, 0}, {7, 1, 0}};
    check_delays(&p, zero, sizeof zero / sizeof *zero);
}

static void backoff_linear_grows_by_the_delay_and_stops_at_the_cap(void **state)
{
    (void)state;
    naq_retry_policy p = policy(NAQ_BACKOFF_LINEAR, 200, 1000, 0);
    delay_case cases[] = {{1, 0, 200}, {2, 0, 400}, {5, 0, 1000}, {6, 0, 1000}, {1000000, 0, 1000}};
    check_delays(&p, cases, sizeof cases / sizeof *cases);
    p.max_delay_ms = 0; /* no cap */
    delay_case uncapped[] = {{10, 0, 2000}, {1000, 0, 200000}};
    check_delays(&p, uncapped, sizeof uncapped / sizeof *uncapped);
}

static void backoff_exponential_doubles_up_to_the_cap_without_overflow(void **state)
{
    (void)state;
    naq_retry_policy p = policy(NAQ_BACKOFF_EXPONENTIAL, 1000, 300000, 0);
    delay_case cases[] = {{1, 0, 1000},      {2, 0, 2000},        {3, 0, 4000},
                          {9, 0, 256000},    {10, 0, 300000},     {64, 0, 300000},
                          {1000, 0, 300000}, {1000000, 0, 300000}};
    check_delays(&p, cases, sizeof cases / sizeof *cases);
    /* Without a cap it saturates at the longest delay naq gives a retry. */
    p.max_delay_ms = 0;
    delay_case uncapped[] = {
        {11, 0, 1024000}, {100, 0, NAQ__RETRY_MAX_DELAY_MS}, {1000000, 0, NAQ__RETRY_MAX_DELAY_MS}};
    check_delays(&p, uncapped, sizeof uncapped / sizeof *uncapped);
    /* Attempt numbers below 1 are treated as 1. */
    p.max_delay_ms = 300000;
    delay_case low[] = {{0, 0, 1000}, {-5, 0, 1000}};
    check_delays(&p, low, sizeof low / sizeof *low);
}

static void backoff_jitter_stays_within_its_bounds_and_under_the_cap(void **state)
{
    (void)state;
    naq_retry_policy p = policy(NAQ_BACKOFF_EXPONENTIAL, 1000, 10000, 0.5);
    delay_case cases[] = {{1, -1, 500},
                          {1, 0, 1000},
                          {1, 1, 1500},
                          {2, 0.5, 2500},
                          /* at the cap, jitter can only shorten */
                          {4, 1, 10000},
                          {4, -1, 4000},
                          {20, 1, 10000},
                          {20, -1, 5000}};
    check_delays(&p, cases, sizeof cases / sizeof *cases);
    /* Jitter beyond 0..1 is clamped, u outside -1..1 too. */
    p.jitter = 7;
    delay_case wild[] = {{1, -1, 0}, {1, 1, 2000}, {1, 9, 2000}};
    check_delays(&p, wild, sizeof wild / sizeof *wild);

    /* Random draws: always within [d(1-j), d(1+j)], and not all the same. */
    p.jitter = 0.25;
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 2000; i++) {
        int64_t d = naq__retry_delay_random_ms(&p, 2);
        if (d < 1500 || d > 2500)
            fail_msg("random delay %lld ms outside [1500, 2500]", (long long)d);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    if (hi - lo < 500)
        fail_msg("2000 jittered delays spread only over [%lld, %lld] ms", (long long)lo,
                 (long long)hi);
}

static void backoff_list_uses_each_delay_then_repeats_the_last(void **state)
{
    (void)state;
    naq_retry_policy p = policy(NAQ_BACKOFF_LIST, 0, 1000, 0);
    p.delays_ms[0] = 100;
    p.delays_ms[1] = 5000; /* not capped: the user's own number */
    p.delays_ms[2] = 250;
    p.n_delays = 3;
    delay_case cases[] = {{1, 0, 100}, {2, 0, 5000}, {3, 0, 250}, {4, 0, 250}, {1000, 0, 250}};
    check_delays(&p, cases, sizeof cases / sizeof *cases);
    p.n_delays = 0; /* an empty list retries at once */
    delay_case empty[] = {{1, 0, 0}, {3, 0, 0}};
    check_delays(&p, empty, sizeof empty / sizeof *empty);
}

static void retry_on_and_skip_on_pick_the_error_types_that_are_retried(void **state)
{
    (void)state;
    naq_retry_policy p = policy(NAQ_BACKOFF_FIXED, 0, 0, 0);
    assert_true(naq__retry_allowed(&p, "ValueError")); /* no lists: everything */
    assert_true(naq__retry_allowed(&p, NULL));
    p.retry_on = "";
    assert_true(naq__retry_allowed(&p, "ValueError"));
    p.retry_on = "Timeout, IOError";
    assert_true(naq__retry_allowed(&p, "Timeout"));
    assert_true(naq__retry_allowed(&p, "IOError"));
    assert_false(naq__retry_allowed(&p, "ValueError"));
    assert_false(naq__retry_allowed(&p, "IO"));      /* whole names only */
    assert_false(naq__retry_allowed(&p, "timeout")); /* case-sensitive */
    p.retry_on = NULL;
    p.skip_on = "ValueError,InvalidArgs";
    assert_false(naq__retry_allowed(&p, "ValueError"));
    assert_false(naq__retry_allowed(&p, "InvalidArgs"));
    assert_true(naq__retry_allowed(&p, "Timeout"));
    p.retry_on = "ValueError,Timeout"; /* skip_on wins */
    assert_false(naq__retry_allowed(&p, "ValueError"));
    assert_true(naq__retry_allowed(&p, "Timeout"));
    p.retry_on = "Error";
    p.skip_on = NULL;
    assert_true(naq__retry_allowed(&p, "")); /* no type reads as "Error" */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(backoff_fixed_waits_the_same_delay_every_time),
    cmocka_unit_test(backoff_linear_grows_by_the_delay_and_stops_at_the_cap),
    cmocka_unit_test(backoff_exponential_doubles_up_to_the_cap_without_overflow),
    cmocka_unit_test(backoff_jitter_stays_within_its_bounds_and_under_the_cap),
    cmocka_unit_test(backoff_list_uses_each_delay_then_repeats_the_last),
    cmocka_unit_test(retry_on_and_skip_on_pick_the_error_types_that_are_retried),
};

NAQ_TEST_MAIN(tests)
