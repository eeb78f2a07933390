/*
 * test_event.c - the event model: names, categories, subjects and a JSON
 * codec that round-trips every field. No server needed.
 */
#include "harness.h"

#include "events/events.h" /* naq__history_place_late */

#include <stdlib.h>
#include <string.h>

static void every_type_has_a_unique_name_that_parses_back(void **state)
{
    (void)state;
    for (int i = 0; i < NAQ_EVENT_TYPE_COUNT; i++) {
        const char *name = naq_event_type_name((naq_event_type)i);
        naq_event_type back;
        assert_int_equal(naq_event_type_parse(name, &back), NAQ_OK);
        assert_int_equal(back, i);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(name, naq_event_type_name((naq_event_type)j));
    }
    assert_int_equal(NAQ_EVENT_TYPE_COUNT, 24 + 7 + 9 + 6);
}

static void categories_follow_the_name_prefixes(void **state)
{
    (void)state;
    assert_int_equal(naq_event_type_category(NAQ_EVENT_COMPLETED), NAQ_CATEGORY_JOB);
    assert_int_equal(naq_event_type_category(NAQ_EVENT_TTL_EXTENDED), NAQ_CATEGORY_JOB);
    assert_int_equal(naq_event_type_category(NAQ_EVENT_WORKER_HEARTBEAT), NAQ_CATEGORY_WORKER);
    assert_int_equal(naq_event_type_category(NAQ_EVENT_SCHEDULER_LEADER_LOST),
                     NAQ_CATEGORY_SCHEDULER);
    assert_int_equal(naq_event_type_category(NAQ_EVENT_SYSTEM_RECOVERY), NAQ_CATEGORY_SYSTEM);
    assert_string_equal(naq_event_type_name(NAQ_EVENT_WORKER_STARTED), "worker_started");
    assert_string_equal(naq_event_type_name(NAQ_EVENT_TYPE_COUNT), "unknown");
}

static void unknown_type_name_is_refused_with_a_hint(void **state)
{
    (void)state;
    naq_event_type t;
    assert_int_equal(naq_event_type_parse("finished", &t), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "finished"));
    assert_non_null(strstr(naq_last_error(), "naq events types"));
}

static void fill_every_field(naq_event *e)
{
    naq_event_init(e, NAQ_EVENT_FAILED);
    strcpy(e->event_id, "ev-1");
    strcpy(e->job_id, "0191b3a2c4d5e6f708192a3b4c5d6e7f");
    strcpy(e->schedule_id, "nightly");
    e->timestamp = 1763900000.123456;
    strcpy(e->worker_id, "host-42-abcd");
    strcpy(e->worker_type, "c");
    strcpy(e->queue_name, "emails");
    e->attempt = 3;
    e->message = strdup("it broke \"badly\"\n");
    e->error_type = strdup("ValueError");
    e->error_message = strdup("x must be > 0 (ünïcödé)");
    e->details_json = strdup("{\"exit_status\":3,\"nested\":{\"a\":[1,2.5,null]}}");
    e->tags_json = strdup("{\"team\":\"billing\",\"env\":\"prod\"}");
    e->metadata_json = strdup("{\"trace\":\"abc\"}");
    e->duration_ms = 12.5;
    e->memory_mb = 3.25;
    e->cpu_time_ms = 7.0;
}

/* An exec job's details carry its memory; an event shows it as written. */
static void event_details_print_reals_as_their_shortest_text(void **state)
{
    (void)state;
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_COMPLETED);
    e.details_json = strdup("{\"memory_mb\":2.418,\"exit_status\":0}");
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_event_encode(&e, &json, &len), NAQ_OK);
    if (strstr(json, "\"details\":{\"memory_mb\":2.418,\"exit_status\":0}") == NULL)
        fail_msg("details not shortest in: %s", json);
    free(json);
    naq_event_clear(&e);
}

static void codec_round_trips_every_field(void **state)
{
    (void)state;
    naq_event e, d;
    fill_every_field(&e);
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_event_encode(&e, &json, &len), NAQ_OK);
    assert_int_equal(strlen(json), len);
    assert_null(strchr(json, '\n'));
    assert_int_equal(naq_event_decode(json, len, &d), NAQ_OK);
    assert_int_equal(d.version, NAQ_WIRE_VERSION_PLAIN);
    assert_int_equal(d.type, NAQ_EVENT_FAILED);
    assert_string_equal(d.event_id, e.event_id);
    assert_string_equal(d.job_id, e.job_id);
    assert_string_equal(d.schedule_id, e.schedule_id);
    assert_true(d.timestamp == e.timestamp);
    assert_string_equal(d.worker_id, e.worker_id);
    assert_string_equal(d.worker_type, e.worker_type);
    assert_string_equal(d.queue_name, e.queue_name);
    assert_int_equal(d.attempt, 3);
    assert_string_equal(d.message, e.message);
    assert_string_equal(d.error_type, e.error_type);
    assert_string_equal(d.error_message, e.error_message);
    assert_string_equal(d.details_json, "{\"exit_status\":3,\"nested\":{\"a\":[1,2.5,null]}}");
    assert_string_equal(d.tags_json, e.tags_json);
    assert_string_equal(d.metadata_json, e.metadata_json);
    assert_true(d.duration_ms == 12.5);
    assert_true(d.memory_mb == 3.25);
    assert_true(d.cpu_time_ms == 7.0);
    free(json);
    naq_event_clear(&d);
    naq_event_clear(&e);
}

static void absent_fields_are_left_out_and_decode_as_unset(void **state)
{
    (void)state;
    naq_event e, d;
    naq_event_init(&e, NAQ_EVENT_ENQUEUED);
    strcpy(e.job_id, "j1");
    e.timestamp = 5.0;
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_event_encode(&e, &json, &len), NAQ_OK);
    assert_string_equal(
        json,
        "{\"version\":1,\"event_type\":\"enqueued\",\"job_id\":\"j1\",\"timestamp\":5.000000}");
    assert_int_equal(naq_event_decode(json, len, &d), NAQ_OK);
    assert_true(d.duration_ms == NAQ_UNSET);
    assert_true(d.memory_mb == NAQ_UNSET);
    assert_null(d.message);
    assert_null(d.details_json);
    assert_int_equal(d.attempt, 0);
    free(json);
    naq_event_clear(&d);
}

static void decode_ignores_unknown_fields(void **state)
{
    (void)state;
    const char *json = "{\"version\":1,\"event_type\":\"started\",\"job_id\":\"j\","
                       "\"timestamp\":1.5,\"from_the_future\":{\"x\":1}}";
    naq_event d;
    assert_int_equal(naq_event_decode(json, strlen(json), &d), NAQ_OK);
    assert_int_equal(d.type, NAQ_EVENT_STARTED);
    naq_event_clear(&d);
}

static void decode_refuses_bad_input_with_a_message(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"event_type\":\"started\"}",                /* no version */
        "{\"version\":99,\"event_type\":\"started\"}", /* from a newer naq */
        "{\"version\":1}",                             /* no type */
        "{\"version\":1,\"event_type\":\"exploded\"}", /* unknown type */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        naq_event d;
        naq_status s = naq_event_decode(bad[i], strlen(bad[i]), &d);
        if (s != NAQ_ERR_CODEC)
            fail_msg("'%s' decoded with status %d", bad[i], s);
        assert_true(strlen(naq_last_error()) > 0);
        naq_event_clear(&d);
    }
}

static void encode_refuses_details_that_are_not_an_object(void **state)
{
    (void)state;
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_COMPLETED);
    strcpy(e.job_id, "j");
    e.details_json = strdup("[1,2]");
    char *json = NULL;
    size_t len;
    assert_int_equal(naq_event_encode(&e, &json, &len), NAQ_ERR_CODEC);
    assert_null(json);
    assert_non_null(strstr(naq_last_error(), "details"));
    naq_event_clear(&e);
}

static void awkward_strings_still_encode_as_valid_json(void **state)
{
    (void)state;
    naq_event e, d;
    naq_event_init(&e, NAQ_EVENT_FAILED);
    strcpy(e.job_id, "j");
    e.timestamp = 1.0;
    /* quotes, backslash, every control class, valid multi-byte UTF-8, and
     * bytes that are not UTF-8 at all (a truncated sequence, a lone 0xff) */
    e.message = strdup("q\"b\\n\nr\rt\tc\x01\x1f caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    e.error_message = strdup("bad \xc3 and \xff end");
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_event_encode(&e, &json, &len), NAQ_OK);
    assert_null(strchr(json, '\n'));
    assert_int_equal(naq_event_decode(json, len, &d), NAQ_OK);
    assert_string_equal(d.message, e.message);
    assert_string_equal(d.error_message, "bad \xef\xbf\xbd and \xef\xbf\xbd end");
    free(json);
    naq_event_clear(&d);
    naq_event_clear(&e);
}

static void copy_is_deep(void **state)
{
    (void)state;
    naq_event e, c;
    fill_every_field(&e);
    assert_int_equal(naq_event_copy(&c, &e), NAQ_OK);
    assert_ptr_not_equal(c.message, e.message);
    assert_string_equal(c.message, e.message);
    naq_event_clear(&e);
    assert_string_equal(c.error_type, "ValueError");
    naq_event_clear(&c);
}

static void subjects_are_one_literal_per_job_worker_and_schedule(void **state)
{
    (void)state;
    char buf[256];
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_COMPLETED);
    strcpy(e.job_id, "abc");
    assert_int_equal(naq_event_subject("naq", &e, buf, sizeof buf), NAQ_OK);
    assert_string_equal(buf, "naq.jobs.events.abc");
    naq_event_init(&e, NAQ_EVENT_WORKER_IDLE);
    strcpy(e.worker_id, "w-1");
    assert_int_equal(naq_event_subject("p", &e, buf, sizeof buf), NAQ_OK);
    assert_string_equal(buf, "p.workers.events.w-1");
    naq_event_init(&e, NAQ_EVENT_SCHEDULER_TRIGGERED);
    strcpy(e.schedule_id, "nightly");
    assert_int_equal(naq_event_subject("naq", &e, buf, sizeof buf), NAQ_OK);
    assert_string_equal(buf, "naq.schedules.events.nightly");
    naq_event_init(&e, NAQ_EVENT_SYSTEM_STARTUP);
    assert_int_equal(naq_event_subject("naq", &e, buf, sizeof buf), NAQ_OK);
    assert_string_equal(buf, "naq.system.events");
}

static void subject_refuses_a_job_event_without_a_valid_id(void **state)
{
    (void)state;
    char buf[256];
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_COMPLETED);
    assert_int_equal(naq_event_subject("naq", &e, buf, sizeof buf), NAQ_ERR_INVALID_ARG);
    strcpy(e.job_id, "a.b");
    assert_int_equal(naq_event_subject("naq", &e, buf, sizeof buf), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "job id"));
}

/* ---- a history's order (history.c): late events placed by their time ---- */

/* items[i] gets type types[i] and timestamp times[i]. */
static void make_history(naq_event *items, const naq_event_type *types, const double *times,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        naq_event_init(&items[i], types[i]);
        items[i].timestamp = times[i];
    }
}

static void late_events_go_before_the_first_later_event_and_the_rest_keep_stored_order(void **st)
{
    (void)st;
    /* Stored: enqueued, completed, released, then started and dequeued
     * re-sent late. */
    naq_event_type types[] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_COMPLETED, NAQ_EVENT_WORKER_RELEASED,
                              NAQ_EVENT_STARTED, NAQ_EVENT_DEQUEUED};
    double times[] = {10, 30, 30, 20, 15};
    size_t late[] = {3, 4};
    naq_event items[5];
    make_history(items, types, times, 5);
    naq__history_place_late(items, 5, late, 2);
    naq_event_type want[] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_DEQUEUED, NAQ_EVENT_STARTED,
                             NAQ_EVENT_COMPLETED, NAQ_EVENT_WORKER_RELEASED};
    for (int i = 0; i < 5; i++)
        if (items[i].type != want[i])
            fail_msg("position %d: %s, want %s", i, naq_event_type_name(items[i].type),
                     naq_event_type_name(want[i]));

    /* Not late: the stored order stands, even against the timestamps (a
     * reader cannot tell clock skew between hosts from lateness). */
    make_history(items, types, times, 5);
    naq__history_place_late(items, 5, NULL, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(items[i].type, types[i]);

    /* All late: a sort by time that keeps ties in stored order. */
    size_t all[] = {0, 1, 2, 3, 4};
    make_history(items, types, times, 5);
    naq__history_place_late(items, 5, all, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(items[i].type, want[i]);
    naq__history_place_late(items, 0, all, 0); /* nothing to order: no effect */
    assert_int_equal(items[0].type, NAQ_EVENT_ENQUEUED);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_type_has_a_unique_name_that_parses_back),
    cmocka_unit_test(event_details_print_reals_as_their_shortest_text),
    cmocka_unit_test(categories_follow_the_name_prefixes),
    cmocka_unit_test(unknown_type_name_is_refused_with_a_hint),
    cmocka_unit_test(codec_round_trips_every_field),
    cmocka_unit_test(absent_fields_are_left_out_and_decode_as_unset),
    cmocka_unit_test(decode_ignores_unknown_fields),
    cmocka_unit_test(decode_refuses_bad_input_with_a_message),
    cmocka_unit_test(encode_refuses_details_that_are_not_an_object),
    cmocka_unit_test(awkward_strings_still_encode_as_valid_json),
    cmocka_unit_test(copy_is_deep),
    cmocka_unit_test(subjects_are_one_literal_per_job_worker_and_schedule),
    cmocka_unit_test(subject_refuses_a_job_event_without_a_valid_id),
    cmocka_unit_test(late_events_go_before_the_first_later_event_and_the_rest_keep_stored_order),
};

NAQ_TEST_MAIN(tests)
