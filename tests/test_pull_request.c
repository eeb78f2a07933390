/*
 * test_pull_request.c - the worker fetcher's requests for jobs
 * (src/worker/pull_request.c): what a request asks, the reply subject its
 * answers come on, and when an open request is over or its consumer lost.
 * No server needed: the server's side of these rules is in
 * pull_request.h.
 */
#include "harness.h"
#include "worker/pull_request.h"

#include <string.h>

#define MS 1000 /* microseconds */

static void a_reply_subject_names_its_slot_and_generation(void **state)
{
    (void)state;
    char subject[96];
    naq__pull_req_subject("_INBOX.abc", 7, 4242, subject, sizeof subject);
    assert_string_equal(subject, "_INBOX.abc.7.4242");
    int slot = -1;
    unsigned gen = 0;
    assert_int_equal(naq__pull_req_parse_reply("_INBOX.abc", subject, 10, &slot, &gen), 1);
    assert_int_equal(slot, 7);
    assert_int_equal(gen, 4242);
}

static void subjects_that_are_not_our_replies_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {"_INBOX.abc.7",     /* no generation: the old form */
                         "_INBOX.abd.7.1",   /* another inbox */
                         "_INBOX.abc.10.1",  /* slot beyond the worker's */
                         "_INBOX.abc.-1.1",  /* negative slot */
                         "_INBOX.abc.7.1.2", /* one token too many */
                         "_INBOX.abc.7.x",   /* not a number */
                         "_INBOX.abc..1",    /* empty slot */
                         "naq.queue.q.2",    /* a job's own subject */
                         "_INBOX.abcd.7.1"}; /* the inbox only as a prefix */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int slot = -1;
        unsigned gen = 0;
        if (naq__pull_req_parse_reply("_INBOX.abc", bad[i], 10, &slot, &gen))
            fail_msg("\"%s\" was read as slot %d, generation %u", bad[i], slot, gen);
    }
}

static void the_body_asks_for_no_wait_a_poll_or_a_poll_with_heartbeats(void **state)
{
    (void)state;
    char body[128];
    naq__pull_req_body(3, 0, body, sizeof body);
    assert_string_equal(body, "{\"batch\":3,\"no_wait\":true}");
    naq__pull_req_body(65, 50, body, sizeof body); /* too short for heartbeats */
    assert_string_equal(body, "{\"batch\":65,\"expires\":50000000}");
    naq__pull_req_body(1, 500, body, sizeof body);
    assert_string_equal(body, "{\"batch\":1,\"expires\":500000000,\"idle_heartbeat\":100000000}");
}

/* The server may drop an expired poll without a 408 (nats-server 2.9,
 * consumer.go nextWaiting): a poll that brought jobs is simply over once
 * its expiry and the grace have passed, and the consumer is not lost. */
static void a_poll_past_its_expiry_is_over_not_lost_when_it_was_heard(void **state)
{
    (void)state;
    naq__pull_req r = {0};
    naq__pull_req_sent(&r, 1, 65, 50, 0, 0);
    naq__pull_req_heard(&r, 40);
    assert_int_equal(naq__pull_req_due(&r, 99, 99 * MS), NAQ__PULL_WAITING);
    for (int round = 0; round < 10; round++) { /* however often it happens */
        naq__pull_req_sent(&r, 2 + (unsigned)round, 65, 50, 0, 0);
        naq__pull_req_heard(&r, 10);
        assert_int_equal(naq__pull_req_due(&r, 100, 100 * MS), NAQ__PULL_OVER);
    }
}

/* Before the fix a poll of 50 ms counted as lost only after a further
 * second of silence, and the worker asked for nothing meanwhile. */
static void an_unheard_poll_is_over_at_its_expiry_and_three_in_a_row_lose_the_consumer(void **state)
{
    (void)state;
    naq__pull_req r = {0};
    for (int round = 1; round <= NAQ_PULL_UNANSWERED_LOST; round++) {
        naq__pull_req_sent(&r, (unsigned)round, 65, 50, 0, 0);
        assert_int_equal(naq__pull_req_due(&r, 99, 99 * MS), NAQ__PULL_WAITING);
        naq__pull_verdict want = round < NAQ_PULL_UNANSWERED_LOST ? NAQ__PULL_OVER : NAQ__PULL_LOST;
        assert_int_equal(naq__pull_req_due(&r, 100, 100 * MS), want);
    }
    /* Counting starts again after a loss, and anything heard resets it. */
    naq__pull_req_sent(&r, 10, 65, 50, 0, 0);
    assert_int_equal(naq__pull_req_due(&r, 100, 100 * MS), NAQ__PULL_OVER);
    naq__pull_req_sent(&r, 11, 65, 50, 0, 0);
    naq__pull_req_heard(&r, 20);
    assert_int_equal(naq__pull_req_due(&r, 100, 100 * MS), NAQ__PULL_OVER);
    naq__pull_req_sent(&r, 12, 65, 50, 0, 0);
    assert_int_equal(naq__pull_req_due(&r, 100, 100 * MS), NAQ__PULL_OVER);
    naq__pull_req_sent(&r, 13, 65, 50, 0, 0);
    assert_int_equal(naq__pull_req_due(&r, 100, 100 * MS), NAQ__PULL_OVER);
}

static void a_poll_with_heartbeats_is_lost_after_three_missed_heartbeats(void **state)
{
    (void)state;
    naq__pull_req r = {0};
    naq__pull_req_sent(&r, 1, 1, 500, 1000, 1000 * MS);
    naq__pull_req_heard(&r, 1100); /* a heartbeat */
    assert_int_equal(naq__pull_req_due(&r, 1399, 1399 * MS), NAQ__PULL_WAITING);
    assert_int_equal(naq__pull_req_due(&r, 1400, 1400 * MS), NAQ__PULL_LOST);
}

static void a_no_wait_request_is_lost_after_a_second_without_an_answer(void **state)
{
    (void)state;
    naq__pull_req r = {0};
    naq__pull_req_sent(&r, 1, 4, 0, 5000, 5000 * MS);
    assert_int_equal(naq__pull_req_due(&r, 5999, 5999 * MS), NAQ__PULL_WAITING);
    assert_int_equal(naq__pull_req_due(&r, 6000, 6000 * MS), NAQ__PULL_LOST);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_reply_subject_names_its_slot_and_generation),
    cmocka_unit_test(subjects_that_are_not_our_replies_are_refused),
    cmocka_unit_test(the_body_asks_for_no_wait_a_poll_or_a_poll_with_heartbeats),
    cmocka_unit_test(a_poll_past_its_expiry_is_over_not_lost_when_it_was_heard),
    cmocka_unit_test(an_unheard_poll_is_over_at_its_expiry_and_three_in_a_row_lose_the_consumer),
    cmocka_unit_test(a_poll_with_heartbeats_is_lost_after_three_missed_heartbeats),
    cmocka_unit_test(a_no_wait_request_is_lost_after_a_second_without_an_answer),
};

NAQ_TEST_MAIN(tests)
