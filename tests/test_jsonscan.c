/*
 * test_jsonscan.c - the tree-less JSON scanner (core/jsonscan.c) and the
 * job decoder's fast path built on it: what the scanner accepts jansson
 * accepts with the same members, what it is not sure of it refuses, and
 * the fast decoder reads every job as the jansson decoder does. No server.
 */
#include "harness.h"
#include "core/jsonscan.h"
#include "jobs/jobs.h"

#include <jansson.h>
#include <string.h>

static int scan(const char *json, naq__jmember *m)
{
    return naq__jscan_object(json, strlen(json), m);
}

static void members_are_found_with_their_text_and_type(void **state)
{
    (void)state;
    naq__jmember m[NAQ__JSCAN_MEMBERS];
    const char *json = " {\"a\":1,\"b\" : [1, {\"x\":\"y\"}],\"c\":\"t\\u00e9\",\"d\":-2.5e3,"
                       "\"e\":true,\"f\":null,\"a\":7} ";
    int n = scan(json, m);
    assert_int_equal(n, 6); /* "a" twice: kept once, with its last value */
    const naq__jv *a = naq__jscan_get(m, n, "a");
    assert_int_equal(a->type, NAQ__JV_INTEGER);
    assert_int_equal(a->len, 1);
    assert_memory_equal(a->text, "7", 1);
    const naq__jv *b = naq__jscan_get(m, n, "b");
    assert_int_equal(b->type, NAQ__JV_ARRAY);
    assert_true(b->spaced);
    assert_false(b->escaped);
    assert_int_equal(b->len, strlen("[1, {\"x\":\"y\"}]"));
    const naq__jv *c = naq__jscan_get(m, n, "c");
    assert_int_equal(c->type, NAQ__JV_STRING);
    assert_true(c->escaped);
    assert_false(c->spaced);
    assert_int_equal(naq__jscan_get(m, n, "d")->type, NAQ__JV_REAL);
    assert_int_equal(naq__jscan_get(m, n, "e")->type, NAQ__JV_TRUE);
    assert_int_equal(naq__jscan_get(m, n, "f")->type, NAQ__JV_NULL);
    assert_null(naq__jscan_get(m, n, "g"));
    assert_int_equal(scan("{}", m), 0);
}

/* Everything the scanner accepts, jansson accepts; these it must refuse
 * (most are invalid JSON; some are valid but jansson's rules differ). */
static void what_jansson_refuses_or_may_refuse_is_refused(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":01}",
        "{\"a\":-}", "{\"a\":1.}", "{\"a\":1e}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":tru}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\xC0\x80\"}",
        "{\"a\":\"\xED\xA0\x80\"}", "{\"a\":\"\xF4\x90\x80\x80\"}", "{\"a\":\"\xFF\"}",
        "{\"a\":'x'}", "{a:1}",
        /* valid JSON, but jansson refuses it or it is past what is sure */
        "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":9223372036854775808}", "{\"a\":1e400}",
        "{\"a\\u0062\":1}"};
    naq__jmember m[NAQ__JSCAN_MEMBERS];
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        if (scan(refused[i], m) >= 0)
            fail_msg("accepted: %s", refused[i]);
    }
    /* The limits themselves are accepted. */
    assert_int_equal(scan("{\"a\":-9223372036854775808,\"b\":9223372036854775807,"
                          "\"c\":\"\\ud83d\\ude00\",\"d\":1e-999,\"e\":\"\xF0\x9F\x98\x80\"}",
                          m),
                     5);
    json_t *j = json_loads("{\"a\":-9223372036854775808,\"d\":1e-999}", 0, NULL);
    assert_non_null(j);
    json_decref(j);
}

static void nesting_past_the_limit_and_too_many_members_are_refused(void **state)
{
    (void)state;
    char deep[4 * NAQ__JSCAN_DEPTH + 16];
    size_t n = 0;
    n += (size_t)sprintf(deep + n, "{\"a\":");
    for (int i = 0; i < NAQ__JSCAN_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < NAQ__JSCAN_DEPTH; i++)
        deep[n++] = ']';
    sprintf(deep + n, "}");
    naq__jmember m[NAQ__JSCAN_MEMBERS];
    assert_int_equal(scan(deep, m), -1);
    char wide[16 * (NAQ__JSCAN_MEMBERS + 2)];
    n = (size_t)sprintf(wide, "{");
    for (int i = 0; i <= NAQ__JSCAN_MEMBERS; i++)
        n += (size_t)sprintf(wide + n, "%s\"k%d\":%d", i ? "," : "", i, i);
    sprintf(wide + n, "}");
    assert_int_equal(scan(wide, m), -1);
}

/* Jobs as naq and foreign senders write them: the fast path reads the
 * plain ones itself and every one the same as the jansson decoder. */
static void the_fast_decoder_reads_jobs_as_the_tree_decoder_does(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int fast; /* expected to be read without the tree decoder */
    } jobs[] = {
        {"{\"version\":1,\"job_id\":\"j1\",\"queue\":\"q\",\"function\":\"f\",\"args\":[1,\"a\"],"
         "\"max_retries\":0,\"timeout_ms\":0,\"priority\":2,\"enqueued_at\":1764960000.123456}",
         1},
        {"{ \"version\": 1, \"job_id\": \"j2\", \"queue\": \"q\", \"function\": \"f\", "
         "\"args\": {\"x\": [1, 2.50, \"caf\\u00e9\"]}, \"tags\": {\"team\": \"a\"}, "
         "\"retry\": {\"backoff\": \"list\", \"delays_ms\": [5, 10], \"retry_on\": [\"E1\"]}, "
         "\"max_retries\": 3, \"depends_on\": [\"j1\"], \"run_on_dependency_failure\": true, "
         "\"unique_key\": \"k\", \"ttl_ms\": 100, \"result_ttl_ms\": 5000, "
         "\"schedule_id\": \"s\", \"original_job_id\": \"j0\", \"enqueued_at\": 5 }",
         1},
        {"{\"version\":1,\"job_id\":\"j3\",\"queue\":\"q\",\"function\":\"f\"}", 1},
        {"{\"version\":1,\"job_id\":\"j4\",\"queue\":\"q\",\"function\":\"f\",\"args\":null,"
         "\"tags\":null,\"retry\":null,\"unique_key\":null}",
         1},
        /* left to the tree decoder: it accepts or refuses these itself */
        {"{\"version\":1,\"job_id\":\"j\\u0035\",\"queue\":\"q\",\"function\":\"f\"}", 0},
        {"{\"version\":1.0,\"job_id\":\"j6\",\"queue\":\"q\",\"function\":\"f\"}", 0},
        {"{\"version\":1,\"job_id\":\"j7\",\"queue\":\"q\",\"function\":\"f\",\"args\":"
         "[\"\\u0000\"]}",
         0},
        {"{\"version\":9,\"job_id\":\"j8\",\"queue\":\"q\",\"function\":\"f\"}", 0},
        {"{\"version\":1,\"job_id\":\"bad id\",\"queue\":\"q\",\"function\":\"f\"}", 0},
        {"{\"version\":1,\"job_id\":\"j9\",\"queue\":\"q\",\"function\":\"f\","
         "\"schedule_id\":null}",
         0},
        {"{\"version\":1,\"job_id\":\"j10\",\"queue\":\"q\",\"function\":\"f\","
         "\"retry\":{\"backoff\":\"never\"}}",
         0},
        {"{\"version\":1,\"job_id\":\"j11\",\"queue\":\"q\",\"function\":\"f\",\"unique_key\":"
         "\"\"}",
         0},
    };
    for (size_t i = 0; i < sizeof jobs / sizeof *jobs; i++) {
        int fast = -1;
        if (!naq__job_decoders_agree(jobs[i].json, strlen(jobs[i].json), &fast))
            fail_msg("the decoders disagree on %s", jobs[i].json);
        if (fast != jobs[i].fast)
            fail_msg("fast path %s: %s", fast ? "took" : "declined", jobs[i].json);
    }
}

static void the_fast_decoder_keeps_compact_args_as_sent(void **state)
{
    (void)state;
    const char *json = "{\"version\":1,\"job_id\":\"j\",\"queue\":\"q\",\"function\":\"f\","
                       "\"args\":{\"b\":1.50,\"a\":[true,null]}}";
    naq_job j;
    assert_int_equal(naq_job_decode(json, strlen(json), &j), NAQ_OK);
    assert_string_equal(j.args_json, "{\"b\":1.50,\"a\":[true,null]}");
    naq_job_clear(&j);
    const char *spaced = "{\"version\":1,\"job_id\":\"j\",\"queue\":\"q\",\"function\":\"f\","
                         "\"args\": [1, \"\\u00e9\"]}";
    assert_int_equal(naq_job_decode(spaced, strlen(spaced), &j), NAQ_OK);
    assert_string_equal(j.args_json, "[1,\"\xC3\xA9\"]"); /* reprinted compact */
    naq_job_clear(&j);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(members_are_found_with_their_text_and_type),
    cmocka_unit_test(what_jansson_refuses_or_may_refuse_is_refused),
    cmocka_unit_test(nesting_past_the_limit_and_too_many_members_are_refused),
    cmocka_unit_test(the_fast_decoder_reads_jobs_as_the_tree_decoder_does),
    cmocka_unit_test(the_fast_decoder_keeps_compact_args_as_sent),
};

NAQ_TEST_MAIN(tests)
