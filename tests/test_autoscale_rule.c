/*
 * test_autoscale_rule.c - autoscale.c, the grow / shrink rule shared by
 * workers and event processors, as a pure function of what the caller
 * measured. No server; test_autoscale.c (workers) and test_group.c
 * (processors) run it against one.
 */
#include "harness.h"

#include "core/autoscale.h"
#include "naq/worker.h"

#include <string.h>

#define GROW NAQ_AUTOSCALE_GROW_MS
#define SHRINK NAQ_AUTOSCALE_SHRINK_MS

static void grows_by_doubling_after_the_grow_delay_while_work_waits(void **state)
{
    (void)state;
    naq__autoscale a;
    memset(&a, 0, sizeof a);
    const char *why = NULL;
    int64_t t = 1000;
    /* Busy with work waiting: the first look only starts the clock. */
    assert_int_equal(naq__autoscale_step(&a, 2, 1, 16, 2, 5, t, &why), 2);
    assert_int_equal(naq__autoscale_step(&a, 2, 1, 16, 2, 5, t + GROW - 1, &why), 2);
    assert_int_equal(naq__autoscale_step(&a, 2, 1, 16, 2, 5, t + GROW, &why), 4);
    assert_string_equal(why, "lag");
    /* A change starts afresh: the next doubling needs another GROW. */
    t += GROW;
    assert_int_equal(naq__autoscale_step(&a, 4, 1, 16, 4, 5, t + 1, &why), 4);
    assert_int_equal(naq__autoscale_step(&a, 4, 1, 16, 4, 5, t + 1 + GROW, &why), 8);
    /* Capped at max. */
    t += 1 + GROW;
    assert_int_equal(naq__autoscale_step(&a, 12, 1, 16, 12, 5, t + 1, &why), 12);
    assert_int_equal(naq__autoscale_step(&a, 12, 1, 16, 12, 5, t + 1 + GROW, &why), 16);
}

static void does_not_grow_without_waiting_work_or_with_a_free_slot(void **state)
{
    (void)state;
    naq__autoscale a;
    memset(&a, 0, sizeof a);
    const char *why = NULL;
    for (int64_t t = 1; t < 10 * GROW; t += GROW / 2) {
        assert_int_equal(naq__autoscale_step(&a, 4, 4, 16, 4, 0, t, &why), 4); /* none waits */
        assert_int_equal(naq__autoscale_step(&a, 4, 4, 16, 3, 9, t, &why), 4); /* a slot free */
    }
    /* A gap in the busy spell restarts the clock. */
    memset(&a, 0, sizeof a);
    assert_int_equal(naq__autoscale_step(&a, 2, 1, 16, 2, 1, 100, &why), 2);
    assert_int_equal(naq__autoscale_step(&a, 2, 1, 16, 1, 0, 100 + GROW / 2, &why), 2);
    assert_int_equal(naq__autoscale_step(&a, 2, 1, 16, 2, 1, 100 + GROW, &why), 2);
    assert_int_equal(naq__autoscale_step(&a, 2, 1, 16, 2, 1, 100 + 2 * GROW, &why), 4);
}

static void shrinks_by_halving_but_not_below_the_peak_or_min(void **state)
{
    (void)state;
    naq__autoscale a;
    memset(&a, 0, sizeof a);
    const char *why = NULL;
    int64_t t = 5000;
    /* Idle: halve once per window, down to min. */
    assert_int_equal(naq__autoscale_step(&a, 16, 2, 16, 0, 0, t, &why), 16);
    assert_int_equal(naq__autoscale_step(&a, 16, 2, 16, 0, 0, t + SHRINK - 1, &why), 16);
    assert_int_equal(naq__autoscale_step(&a, 16, 2, 16, 0, 0, t + SHRINK, &why), 8);
    assert_string_equal(why, "idle");
    t += SHRINK;
    assert_int_equal(naq__autoscale_step(&a, 8, 2, 16, 0, 0, t + SHRINK, &why), 4);
    t += SHRINK;
    assert_int_equal(naq__autoscale_step(&a, 4, 2, 16, 0, 0, t + SHRINK, &why), 2);
    t += SHRINK;
    assert_int_equal(naq__autoscale_step(&a, 2, 2, 16, 0, 0, t + SHRINK, &why), 2); /* min */
    /* A window whose peak used 6 of 8 slots comes down to 6, not 4. */
    memset(&a, 0, sizeof a);
    assert_int_equal(naq__autoscale_step(&a, 8, 1, 16, 6, 0, 100, &why), 8);
    assert_int_equal(naq__autoscale_step(&a, 8, 1, 16, 1, 0, 100 + SHRINK, &why), 6);
    /* A window that needed every slot keeps them. */
    memset(&a, 0, sizeof a);
    assert_int_equal(naq__autoscale_step(&a, 4, 1, 16, 4, 0, 100, &why), 4);
    assert_int_equal(naq__autoscale_step(&a, 4, 1, 16, 0, 0, 100 + SHRINK, &why), 4);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(grows_by_doubling_after_the_grow_delay_while_work_waits),
    cmocka_unit_test(does_not_grow_without_waiting_work_or_with_a_free_slot),
    cmocka_unit_test(shrinks_by_halving_but_not_below_the_peak_or_min),
};

NAQ_TEST_MAIN(tests)
