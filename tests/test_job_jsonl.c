/*
 * test_job_jsonl.c - job_jsonl.c, one line of a `naq enqueue --batch`
 * file decoded into job options: the fields and shorthands a line may
 * hold, the defaults a line leaves alone, and for every kind of bad line
 * an error that names the line and the field. No server.
 */
#include "harness.h"

#include "jobs/job_jsonl.h"

#include <string.h>

/* Decodes text as line 7 over defaults with queue "dq". */
static naq_status decode(const char *text, naq__jsonl_job *j)
{
    naq_job_opts d;
    naq_job_opts_init(&d);
    d.queue = "dq";
    d.function = "dflt";
    d.max_retries = 2;
    return naq__jsonl_job_decode(text, strlen(text), 7, &d, j);
}

/* The line is refused, and the error starts "line 7: " and holds want. */
static void refused(const char *text, const char *want)
{
    naq__jsonl_job j;
    naq_status s = decode(text, &j);
    naq__jsonl_job_clear(&j);
    if (s != NAQ_ERR_INVALID_ARG)
        fail_msg("%s: status %s, wanted invalid argument", text, naq_status_str(s));
    const char *msg = naq_last_error();
    if (strncmp(msg, "line 7: ", 8) != 0 || strstr(msg, want) == NULL)
        fail_msg("%s: error '%s', wanted 'line 7: ...%s...'", text, msg, want);
}

static void a_line_sets_the_fields_it_names_and_keeps_the_defaults_of_the_rest(void **state)
{
    (void)state;
    naq__jsonl_job j;
    assert_int_equal(decode("{\"function\":\"send\",\"args\":{\"to\":\"a\"},\"timeout_ms\":500,"
                            "\"tags\":{\"k\":\"v\"},\"priority\":\"high\",\"id\":\"j1\","
                            "\"depends_on\":[\"a\",\"b\"],\"run_on_dependency_failure\":true}",
                            &j),
                     NAQ_OK);
    assert_string_equal(j.opts.queue, "dq"); /* the default */
    assert_int_equal(j.opts.max_retries, 2); /* the default */
    assert_string_equal(j.opts.function, "send");
    assert_string_equal(j.opts.args_json, "{\"to\":\"a\"}");
    assert_string_equal(j.opts.tags_json, "{\"k\":\"v\"}");
    assert_int_equal(j.opts.timeout_ms, 500);
    assert_int_equal(j.opts.priority, 3);
    assert_string_equal(j.opts.job_id, "j1");
    assert_non_null(j.opts.depends_on);
    assert_string_equal(j.opts.depends_on[0], "a");
    assert_string_equal(j.opts.depends_on[1], "b");
    assert_null(j.opts.depends_on[2]);
    assert_true(j.opts.run_on_dependency_failure);
    naq__jsonl_job_clear(&j);
}

static void argv_makes_an_exec_job_and_retry_reads_text_or_the_wire_object(void **state)
{
    (void)state;
    naq__jsonl_job j;
    assert_int_equal(
        decode("{\"argv\":[\"echo\",\"hi\"],\"retries\":3,\"retry\":\"fixed:5s\"}", &j), NAQ_OK);
    assert_string_equal(j.opts.function, NAQ_EXEC_FUNCTION);
    assert_string_equal(j.opts.args_json, "{\"argv\":[\"echo\",\"hi\"]}");
    assert_int_equal(j.opts.max_retries, 3);
    assert_int_equal(j.opts.retry.kind, NAQ_BACKOFF_FIXED);
    assert_int_equal(j.opts.retry.delay_ms, 5000);
    naq__jsonl_job_clear(&j);

    assert_int_equal(decode("{\"queue\":\"q2\",\"max_retries\":1,\"priority\":0,"
                            "\"retry\":{\"backoff\":\"linear\",\"delay_ms\":200}}",
                            &j),
                     NAQ_OK);
    assert_string_equal(j.opts.queue, "q2");
    assert_int_equal(j.opts.priority, 0);
    assert_int_equal(j.opts.retry.kind, NAQ_BACKOFF_LINEAR);
    assert_int_equal(j.opts.retry.delay_ms, 200);
    naq__jsonl_job_clear(&j);
}

static void a_line_that_is_not_a_json_object_is_refused_with_its_line(void **state)
{
    (void)state;
    refused("{\"queue\":", "");
    refused("[1,2]", "not a JSON object");
    refused("42", "expected"); /* jansson says what it wanted */
}

static void a_field_of_the_wrong_type_is_refused_naming_the_field(void **state)
{
    (void)state;
    refused("{\"queue\":5}", "'queue' must be a string");
    refused("{\"function\":true}", "'function' must be a string");
    refused("{\"timeout_ms\":\"5s\"}", "'timeout_ms' must be a whole number");
    refused("{\"ttl_ms\":1.5}", "'ttl_ms' must be a whole number");
    refused("{\"retries\":\"3\"}", "'retries' must be a whole number");
    refused("{\"priority\":[1]}", "'priority' must be 0-4 or a name");
    refused("{\"depends_on\":\"a\"}", "'depends_on' must be an array of job ids");
    refused("{\"depends_on\":[\"a\",1]}", "'depends_on' must be an array of job ids");
    refused("{\"run_on_dependency_failure\":1}", "'run_on_dependency_failure' must be true");
}

static void unknown_fields_conflicts_and_bad_values_are_refused(void **state)
{
    (void)state;
    refused("{\"max_retires\":3}", "unknown field 'max_retires'");
    refused("{\"argv\":[\"ls\"],\"function\":\"f\"}", "give either \"argv\" or");
    refused("{\"argv\":[\"ls\"],\"args\":[]}", "give either \"argv\" or");
    refused("{\"retries\":-1}", "max_retries must be 0 to 1000000");
    refused("{\"priority\":\"urgent\"}", "unknown priority 'urgent'");
    refused("{\"retry\":\"sometimes\"}", "sometimes");
    refused("{\"retry\":{\"backoff\":\"never\"}}", "retry.backoff");
}

static void the_decoded_job_is_validated_like_any_job(void **state)
{
    (void)state;
    refused("{\"queue\":\"a.b\"}", "queue"); /* not a subject token */
    refused("{\"timeout_ms\":-1}", "timeout");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_line_sets_the_fields_it_names_and_keeps_the_defaults_of_the_rest),
    cmocka_unit_test(argv_makes_an_exec_job_and_retry_reads_text_or_the_wire_object),
    cmocka_unit_test(a_line_that_is_not_a_json_object_is_refused_with_its_line),
    cmocka_unit_test(a_field_of_the_wrong_type_is_refused_naming_the_field),
    cmocka_unit_test(unknown_fields_conflicts_and_bad_values_are_refused),
    cmocka_unit_test(the_decoded_job_is_validated_like_any_job),
};

NAQ_TEST_MAIN(tests)
