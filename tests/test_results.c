/*
 * test_results.c - job results (outcome records: naq__finish, naq_job_result,
 * `naq job result`), against a real nats-server: stored and read back,
 * waited for, absent, expired by the job's own result TTL.
 */
#include "lifecycle_support.h"

static void job_for(naq_job *j, const char *id, int64_t result_ttl_ms)
{
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->queue, sizeof j->queue, "reports");
    snprintf(j->function, sizeof j->function, "render");
    j->result_ttl_ms = result_ttl_ms;
}

static void store(lc_fixture *fx, const char *id, int64_t ttl_ms, const char *record)
{
    naq_job j;
    job_for(&j, id, ttl_ms);
    /* The record as naq__outcome_record completes it. */
    json_t *o = json_loads(record, 0, NULL);
    json_object_set_new(o, "job_id", json_string(id));
    json_object_set_new(o, "queue", json_string(j.queue));
    json_object_set_new(o, "function", json_string(j.function));
    json_object_set_new(
        o, "expires_at",
        json_real((double)time(NULL) + (double)(ttl_ms ? ttl_ms : 86400000) / 1000));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    naq_status s = naq__finish(fx->c, &j, text, 1);
    free(text);
    if (s != NAQ_OK)
        fail_msg("store: %s", naq_last_error());
}

static void a_stored_result_is_read_back_with_its_job_and_expiry(void **state)
{
    lc_fixture *fx = *state;
    store(fx, "r1", 0,
          "{\"status\":\"completed\",\"attempt\":1,\"finished_at\":1763900000.5,"
          "\"result\":{\"pages\":3}}");
    char *json = NULL;
    assert_int_equal(naq_job_result(fx->c, "r1", 0, &json), NAQ_OK);
    json_t *o = json_loads(json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "job_id")), "r1");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(o, "queue")), "reports");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "result"), "pages")), 3);
    double expires = json_number_value(json_object_get(o, "expires_at"));
    double in = expires - (double)time(NULL);
    if (in < 24 * 3600 - 60 || in > 24 * 3600 + 60)
        fail_msg("a default result expires in %.0f s, not 24 h", in);
    json_decref(o);
    free(json);
    assert_true(lc_has_outcome(fx, "r1"));
}

static void a_missing_result_is_not_found_with_a_clear_message(void **state)
{
    lc_fixture *fx = *state;
    char *json = (char *)"untouched";
    assert_int_equal(naq_job_result(fx->c, "nobody", 0, &json), NAQ_ERR_NOT_FOUND);
    assert_null(json);
    if (strstr(naq_last_error(), "no result for job nobody") == NULL)
        fail_msg("message: %s", naq_last_error());
    assert_int_equal(naq_job_result(fx->c, "bad.id", 0, &json), NAQ_ERR_INVALID_ARG);
}

typedef struct {
    lc_fixture *fx;
} late_store;

static void *store_later(void *arg)
{
    late_store *l = arg;
    lc_sleep_ms(300);
    store(l->fx, "r2", 0, "{\"status\":\"failed\",\"error_type\":\"ExitStatus\"}");
    return NULL;
}

static void waiting_returns_a_result_stored_while_it_waits(void **state)
{
    lc_fixture *fx = *state;
    late_store l = {fx};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, store_later, &l), 0);
    char *json = NULL;
    naq_status s = naq_job_result(fx->c, "r2", 10000, &json);
    pthread_join(t, NULL);
    if (s != NAQ_OK)
        fail_msg("wait: %s", naq_last_error());
    json_t *o = json_loads(json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "failed");
    json_decref(o);
    free(json);
}

static void waiting_times_out_when_no_result_comes(void **state)
{
    lc_fixture *fx = *state;
    char *json = NULL;
    assert_int_equal(naq_job_result(fx->c, "never", 300, &json), NAQ_ERR_TIMEOUT);
    assert_null(json);
    if (strstr(naq_last_error(), "within 300 ms") == NULL)
        fail_msg("message: %s", naq_last_error());
}

static void a_result_past_the_job_s_result_ttl_reads_as_absent(void **state)
{
    lc_fixture *fx = *state;
    store(fx, "r3", 1, "{\"status\":\"completed\"}");
    lc_sleep_ms(20);
    char *json = NULL;
    assert_int_equal(naq_job_result(fx->c, "r3", 0, &json), NAQ_ERR_NOT_FOUND);
    assert_null(json);
    /* Still in the stream (it keeps records 7 days): "expires_at" decides. */
    assert_true(lc_has_outcome(fx, "r3"));
}

static void cli_job_result_prints_the_record_and_says_when_there_is_none(void **state)
{
    lc_fixture *fx = *state;
    store(fx, "r5", 0,
          "{\"status\":\"completed\",\"attempt\":2,\"exit_status\":0,\"stdout_tail\":\"hi\\n\"}");
    char *out = NULL, *err = NULL;
    const char *table[] = {"job", "result", "r5", NULL};
    assert_int_equal(lc_cli(fx, table, &out, NULL), 0);
    if (strstr(out, "status        completed") == NULL || strstr(out, "exit_status   0") == NULL ||
        strstr(out, "stdout_tail   hi ") == NULL)
        fail_msg("table output:\n%s", out);
    free(out);
    const char *json[] = {"job", "result", "r5", "--format", "json", NULL};
    assert_int_equal(lc_cli(fx, json, &out, NULL), 0);
    json_t *o = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 2);
    json_decref(o);
    free(out);
    const char *missing[] = {"job", "result", "nope", "--wait", "0.2", NULL};
    assert_int_equal(lc_cli(fx, missing, NULL, &err), 1);
    if (strstr(err, "no result for job nope") == NULL)
        fail_msg("stderr: %s", err);
    free(err);
    const char *bad[] = {"job", "result", "x", "--wait", "soon", NULL};
    assert_int_equal(lc_cli(fx, bad, NULL, NULL), 2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, lc_setup, lc_teardown)
static const struct CMUnitTest tests[] = {
    T(a_stored_result_is_read_back_with_its_job_and_expiry),
    T(a_missing_result_is_not_found_with_a_clear_message),
    T(waiting_returns_a_result_stored_while_it_waits),
    T(waiting_times_out_when_no_result_comes),
    T(a_result_past_the_job_s_result_ttl_reads_as_absent),
    T(cli_job_result_prints_the_record_and_says_when_there_is_none),
};

NAQ_TEST_MAIN(tests)
