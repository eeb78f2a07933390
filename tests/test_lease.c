/*
 * test_lease.c - the scheduler's leader lease (lease.c) against a real
 * nats-server: one candidate leads at a time, a released lease passes on
 * at once, and a leader that stops renewing stops counting itself leader
 * before the server lets anyone else take the key.
 */
#include "harness.h"
#include "scheduler/lease.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE_MS 3000

typedef struct {
    naq_test_server srv;
    naq_client *c;
    naq__sched_counters ctr;
    naq__lease *a, *b;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    naq_test_server_start(&f->srv);
    f->c = naq_test_connect(&f->srv);
    assert_int_equal(naq__lease_create(f->c->js, 1, "cand-a", LEASE_MS, &f->ctr, &f->a), NAQ_OK);
    assert_int_equal(naq__lease_create(f->c->js, 1, "cand-b", LEASE_MS, &f->ctr, &f->b), NAQ_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    naq__lease_destroy(f->a);
    naq__lease_destroy(f->b);
    naq_client_destroy(f->c);
    naq_test_server_destroy(&f->srv);
    free(f);
    return 0;
}

static naq__lease_change step(naq__lease *l, int64_t now)
{
    int io_error = -1;
    naq__lease_change ch = naq__lease_step(l, now, &io_error);
    if (io_error == 1)
        fail_msg("lease step failed: %s", naq_last_error());
    return ch;
}

static void one_candidate_leads_while_the_other_waits(void **state)
{
    fixture *f = *state;
    assert_int_equal(naq__lease_ms(f->a), LEASE_MS);
    int64_t now = naq__mono_ms();
    assert_int_equal(step(f->a, now), NAQ__LEASE_ACQUIRED);
    assert_true(naq__lease_valid(f->a, naq__mono_ms()));
    assert_int_equal(step(f->b, now), NAQ__LEASE_NO_CHANGE);
    assert_false(naq__lease_valid(f->b, naq__mono_ms()));
    /* Renewing (due every lease/3) keeps it. */
    int64_t later = naq__mono_ms() + LEASE_MS / 3;
    assert_int_equal(step(f->a, later), NAQ__LEASE_NO_CHANGE);
    assert_true(naq__lease_valid(f->a, naq__mono_ms()));
}

static void a_released_lease_passes_to_the_next_candidate_at_once(void **state)
{
    fixture *f = *state;
    assert_int_equal(step(f->a, naq__mono_ms()), NAQ__LEASE_ACQUIRED);
    naq__lease_release(f->a);
    assert_false(naq__lease_valid(f->a, naq__mono_ms()));
    assert_int_equal(step(f->b, naq__mono_ms()), NAQ__LEASE_ACQUIRED);
}

/* Validity ends a margin (lease/3) before the key can expire on the
 * server, so two leaders never overlap. */
static void a_leader_that_stops_renewing_gives_up_before_another_can_lead(void **state)
{
    fixture *f = *state;
    int64_t start = naq__mono_ms();
    assert_int_equal(step(f->a, start), NAQ__LEASE_ACQUIRED);
    int64_t end = naq__mono_ms() + LEASE_MS - LEASE_MS / 3; /* at the latest */
    assert_false(naq__lease_valid(f->a, end));
    assert_int_equal(step(f->a, end), NAQ__LEASE_LOST);
    assert_non_null(strstr(naq__lease_why(f->a), "ran out"));
    /* The key still lives on the server: b cannot take it yet... */
    assert_int_equal(step(f->b, naq__mono_ms()), NAQ__LEASE_NO_CHANGE);
    assert_true(naq__mono_ms() - start < LEASE_MS); /* (the check above was in time) */
    /* ...but can once the server expired it. */
    int64_t deadline = start + 4 * LEASE_MS;
    naq__lease_change ch = NAQ__LEASE_NO_CHANGE;
    for (int64_t now = naq__mono_ms(); now < deadline && ch != NAQ__LEASE_ACQUIRED;
         now = naq__mono_ms()) {
        ch = step(f->b, now + 1000000); /* past its 1 s retry pacing */
        if (ch != NAQ__LEASE_ACQUIRED) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(ch, NAQ__LEASE_ACQUIRED);
    assert_true(naq__mono_ms() - start >= LEASE_MS - 50); /* not before the TTL */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(one_candidate_leads_while_the_other_waits, setup, teardown),
    cmocka_unit_test_setup_teardown(a_released_lease_passes_to_the_next_candidate_at_once, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(a_leader_that_stops_renewing_gives_up_before_another_can_lead,
                                    setup, teardown),
};

NAQ_TEST_MAIN(tests)
