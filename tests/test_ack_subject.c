/*
 * test_ack_subject.c - reading a JetStream ack subject
 * (naq__ack_subject_parse): the consumer that delivered a message and the
 * count it still has pending, which the worker's fetcher and the event
 * processors take from every message instead of asking the server. No
 * server needed.
 */
#include "harness.h"
#include "internal.h"

#include <string.h>

static void a_delivered_message_names_its_consumer_and_pending_count(void **state)
{
    (void)state;
    const char *reply = "$JS.ACK.NAQ_JOBS.naq_w_default_p2.1.4711.12.1733400000000000000.37";
    naq__ack_info a;
    assert_int_equal(naq__ack_subject_parse(reply, &a), 1);
    assert_int_equal(a.consumer_len, strlen("naq_w_default_p2"));
    assert_memory_equal(a.consumer, "naq_w_default_p2", a.consumer_len);
    assert_ptr_equal(a.consumer, reply + strlen("$JS.ACK.NAQ_JOBS."));
    assert_int_equal(a.pending, 37);
}

/* pending 0 is what tells the fetcher a priority level is empty. */
static void the_pending_count_is_the_last_token_and_may_be_zero_or_large(void **state)
{
    (void)state;
    naq__ack_info a;
    assert_int_equal(naq__ack_subject_parse("$JS.ACK.S.c.1.2.3.4.0", &a), 1);
    assert_int_equal(a.pending, 0);
    assert_int_equal(naq__ack_subject_parse("$JS.ACK.S.c.1.2.3.4.9000000000", &a), 1);
    assert_int_equal(a.pending, 9000000000LL);
    assert_int_equal(a.consumer_len, 1);
    assert_memory_equal(a.consumer, "c", 1);
}

static void subjects_that_are_not_ack_subjects_are_refused_and_out_untouched(void **state)
{
    (void)state;
    const char *refused[] = {
        "",
        "_INBOX.abc.def",
        "$JS.API.CONSUMER.MSG.NEXT.S.c",
        "$JS.ACK.",
        "$JS.ACK.S",       /* no consumer */
        "$JS.ACK.S.c",     /* the consumer runs to the end: no tokens after it */
        "$js.ack.S.c.1.2", /* subjects are case-sensitive */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        naq__ack_info a = {.consumer = "untouched", .consumer_len = 9, .pending = -1};
        if (naq__ack_subject_parse(refused[i], &a) != 0)
            fail_msg("accepted \"%s\"", refused[i]);
        assert_string_equal(a.consumer, "untouched");
        assert_int_equal(a.pending, -1);
    }
    naq__ack_info a;
    assert_int_equal(naq__ack_subject_parse(NULL, &a), 0);
}

/* The outcome record names the message it settled by this sequence. */
static void the_stream_sequence_is_read_from_either_format_and_0_when_there_is_none(void **state)
{
    (void)state;
    assert_int_equal(naq__ack_subject_stream_seq(
                         "$JS.ACK.NAQ_JOBS.naq_w_default_p2.3.4711.12.1733400000000000000.37"),
                     4711);
    assert_int_equal(naq__ack_subject_stream_seq(
                         "$JS.ACK._.ACCHASH.NAQ_JOBS.naq_w_default_p2.1.18446744073709551615.12."
                         "1733400000000000000.0.x1y2"),
                     UINT64_MAX);
    const char *none[] = {"",
                          "_INBOX.a.b",
                          "$JS.ACK.S.c.1.2.3.4",
                          "$JS.ACK.S.c.1.x.3.4.0",
                          "$JS.ACK.S.c.1..3.4.0",
                          "$JS.ACK.a.b.S.c.1.2.3.4"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        if (naq__ack_subject_stream_seq(none[i]) != 0)
            fail_msg("read a sequence from \"%s\"", none[i]);
    assert_int_equal(naq__ack_subject_stream_seq(NULL), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_delivered_message_names_its_consumer_and_pending_count),
    cmocka_unit_test(the_pending_count_is_the_last_token_and_may_be_zero_or_large),
    cmocka_unit_test(subjects_that_are_not_ack_subjects_are_refused_and_out_untouched),
    cmocka_unit_test(the_stream_sequence_is_read_from_either_format_and_0_when_there_is_none),
};

NAQ_TEST_MAIN(tests)
