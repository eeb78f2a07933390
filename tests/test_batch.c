/*
 * test_batch.c - naq_enqueue_batch and `naq enqueue --batch`, against a
 * real nats-server: every job stored with its id reported in input order,
 * the batch validated whole before anything is sent, and a partial
 * failure (the server refusing some jobs) reported job by job, with
 * "enqueued" logged for exactly the stored ones.
 */
#include "lifecycle_support.h"

#include <unistd.h>

/* Limits the size of messages NAQ_JOBS accepts, so the server refuses
 * the bigger jobs of a batch. */
static void limit_job_size(lc_fixture *fx, int32_t max)
{
    jsStreamInfo *si = NULL;
    assert_int_equal(js_GetStreamInfo(&si, fx->js, "NAQ_JOBS", NULL, NULL), NATS_OK);
    si->Config->MaxMsgSize = max;
    jsErrCode jerr = 0;
    natsStatus ns = js_UpdateStream(NULL, fx->js, si->Config, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (ns != NATS_OK)
        fail_msg("update stream: %s (%d)", natsStatus_GetText(ns), (int)jerr);
}

static uint64_t logged(lc_fixture *fx)
{
    naq_logger_stats st;
    naq_client_logger_stats(fx->c, &st);
    return st.logged;
}

static void a_batch_stores_every_job_and_reports_the_ids_in_input_order(void **state)
{
    lc_fixture *fx = *state;
    enum { N = 300 };
    naq_job_opts jobs[N];
    char given[N][32];
    for (int i = 0; i < N; i++) {
        jobs[i] = lc_job(i % 2 ? "odd" : "even", NULL);
        if (i % 3 == 0) {
            snprintf(given[i], sizeof given[i], "batch-%d", i);
            jobs[i].job_id = given[i];
        }
        jobs[i].priority = i % NAQ_PRIORITY_LEVELS;
    }
    char(*ids)[NAQ_ID_SIZE] = calloc(N, sizeof *ids);
    naq_status st[N];
    size_t done = 0;
    naq_status s = naq_enqueue_batch(fx->c, jobs, N, ids, st, &done);
    if (s != NAQ_OK)
        fail_msg("batch: %s", naq_last_error());
    assert_int_equal(done, N);
    assert_int_equal(lc_queued(fx), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(st[i], NAQ_OK);
        if (i % 3 == 0)
            assert_string_equal(ids[i], given[i]);
    }
    /* ids[i] is job i: its stored message has its queue and priority. */
    for (int i = 0; i < N; i += 37) {
        naq_job j;
        char subject[128], want[128];
        lc_queued_job(fx, ids[i], &j, subject, sizeof subject);
        snprintf(want, sizeof want, "naq.queue.%s.%d", jobs[i].queue, i % NAQ_PRIORITY_LEVELS);
        assert_string_equal(subject, want);
        naq_job_clear(&j);
        assert_events(fx, ids[i], "enqueued");
    }
    free(ids);
}

static void a_batch_is_validated_whole_before_anything_is_sent(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts jobs[4] = {lc_job("q", NULL), lc_job("bad.queue", NULL), lc_job("q", NULL),
                            lc_job("q", NULL)};
    jobs[3].priority = 9;
    char ids[4][NAQ_ID_SIZE];
    naq_status st[4];
    size_t done = 99;
    uint64_t before = logged(fx);
    assert_int_equal(naq_enqueue_batch(fx->c, jobs, 4, ids, st, &done), NAQ_ERR_INVALID_ARG);
    if (strstr(naq_last_error(), "job 2 of the batch") == NULL ||
        strstr(naq_last_error(), "nothing was enqueued") == NULL)
        fail_msg("message: %s", naq_last_error());
    assert_int_equal(done, 0);
    assert_int_equal(st[0], NAQ_ERR_CLOSED);
    assert_int_equal(st[1], NAQ_ERR_INVALID_ARG);
    assert_int_equal(st[2], NAQ_ERR_CLOSED);
    assert_int_equal(st[3], NAQ_ERR_INVALID_ARG);
    assert_int_equal(lc_queued(fx), 0);
    assert_int_equal(logged(fx), before);

    /* A job id twice in one batch is a mistake too. */
    naq_job_opts twice[3] = {lc_job("q", "same"), lc_job("q", "other"), lc_job("q", "same")};
    assert_int_equal(naq_enqueue_batch(fx->c, twice, 3, ids, st, &done), NAQ_ERR_INVALID_ARG);
    assert_int_equal(st[2], NAQ_ERR_INVALID_ARG);
    if (strstr(naq_last_error(), "job 3 of the batch has the id same of job 1") == NULL)
        fail_msg("message: %s", naq_last_error());
    assert_int_equal(lc_queued(fx), 0);
}

static void a_partial_failure_reports_exactly_which_jobs_were_stored(void **state)
{
    lc_fixture *fx = *state;
    limit_job_size(fx, 2000);
    enum { N = 40 };
    char big[4000];
    snprintf(big, 2, "\"");
    memset(big + 1, 'x', 3000);
    snprintf(big + 3001, 2, "\"");
    naq_job_opts jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = lc_job("q", NULL);
        if (i == 3 || i == 17 || i == 38)
            jobs[i].args_json = big;
    }
    char ids[N][NAQ_ID_SIZE];
    naq_status st[N];
    size_t done = 0;
    naq_status s = naq_enqueue_batch(fx->c, jobs, N, ids, st, &done);
    assert_int_equal(s, NAQ_ERR_NATS);
    if (strstr(naq_last_error(), "3 of 40 jobs were not enqueued") == NULL ||
        strstr(naq_last_error(), ids[3]) == NULL)
        fail_msg("message: %s", naq_last_error());
    assert_int_equal(done, N - 3);
    assert_int_equal(lc_queued(fx), N - 3);
    for (int i = 0; i < N; i++) {
        int refused = i == 3 || i == 17 || i == 38;
        if (refused)
            assert_int_equal(st[i], NAQ_ERR_NATS);
        else
            assert_int_equal(st[i], NAQ_OK);
        assert_int_equal(lc_queued_copies(fx, ids[i]), !refused);
    }
    /* Events for exactly the stored jobs. */
    assert_events(fx, ids[3], "");
    assert_events(fx, ids[4], "enqueued");
    assert_events(fx, ids[39], "enqueued");
}

static void unique_and_dependent_jobs_of_a_batch_go_one_at_a_time(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts jobs[4] = {lc_job("q", "first"), lc_job("q", "then"), lc_job("q", NULL),
                            lc_job("q", NULL)};
    const char *deps[] = {"first", NULL};
    jobs[1].depends_on = deps;
    jobs[2].unique_key = "once";
    jobs[3].unique_key = "once";
    char ids[4][NAQ_ID_SIZE];
    naq_status st[4];
    size_t done = 0;
    assert_int_equal(naq_enqueue_batch(fx->c, jobs, 4, ids, st, &done), NAQ_OK);
    assert_int_equal(done, 4);
    assert_string_equal(ids[3], ids[2]); /* the pending holder's id */
    assert_int_equal(lc_queued(fx), 2);  /* "first" and one "once" */
    assert_events(fx, "then", "waiting_for_dependencies");
    assert_events(fx, ids[2], "enqueued");
}

static char *write_file(lc_fixture *fx, const char *name, const char *text)
{
    char *path = malloc(512);
    snprintf(path, 512, "%s/%s", fx->srv.dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void cli_batch_prints_one_id_per_line_in_input_order(void **state)
{
    lc_fixture *fx = *state;
    char *path = write_file(fx, "jobs.jsonl",
                            "{\"function\":\"render\",\"args\":{\"n\":1},\"job_id\":\"b1\"}\n"
                            "\n"
                            "{\"argv\":[\"echo\",\"hi\"],\"priority\":\"high\",\"job_id\":\"b2\"}\n"
                            "{\"queue\":\"other\",\"function\":\"f\",\"retry\":\"fixed:5s\","
                            "\"max_retries\":2,\"job_id\":\"b3\"}\n");
    const char *argv[] = {"enqueue", "--batch", path, "-q", "default", NULL};
    char *out = NULL, *err = NULL;
    int rc = lc_cli(fx, argv, &out, &err);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, err);
    assert_string_equal(out, "b1\nb2\nb3\n");
    naq_job j;
    char subject[128];
    lc_queued_job(fx, "b2", &j, subject, sizeof subject);
    assert_string_equal(subject, "naq.queue.default.3");
    assert_string_equal(j.function, "exec");
    naq_job_clear(&j);
    lc_queued_job(fx, "b3", &j, subject, sizeof subject);
    assert_string_equal(subject, "naq.queue.other.2");
    assert_int_equal(j.retry.kind, NAQ_BACKOFF_FIXED);
    assert_int_equal(j.retry.delay_ms, 5000);
    naq_job_clear(&j);
    free(out);
    free(err);
    free(path);
}

static void cli_batch_with_a_bad_line_enqueues_nothing(void **state)
{
    lc_fixture *fx = *state;
    char *path = write_file(fx, "bad.jsonl",
                            "{\"queue\":\"q\",\"function\":\"f\"}\n"
                            "{\"queue\":\"q\",\"function\":\"f\",\"colour\":\"red\"}\n"
                            "not json\n"
                            "{\"queue\":\"a.b\",\"function\":\"f\"}\n");
    const char *argv[] = {"enqueue", "--batch", path, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(lc_cli(fx, argv, &out, &err), 2);
    if (strstr(err, "line 2: unknown field 'colour'") == NULL || strstr(err, "line 3:") == NULL ||
        strstr(err, "line 4: queue name") == NULL || strstr(err, "nothing was enqueued") == NULL)
        fail_msg("stderr: %s", err);
    assert_string_equal(out, "");
    assert_int_equal(lc_queued(fx), 0);
    free(out);
    free(err);
    free(path);
}

static void a_batch_with_an_exec_job_without_a_command_enqueues_nothing(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts jobs[2] = {lc_job("q", NULL), lc_job("q", NULL)};
    jobs[1].function = NAQ_EXEC_FUNCTION;
    jobs[1].args_json = "{\"argv\": []}";
    char ids[2][NAQ_ID_SIZE];
    naq_status st[2];
    assert_int_equal(naq_enqueue_batch(fx->c, jobs, 2, ids, st, NULL), NAQ_ERR_INVALID_ARG);
    assert_int_equal(st[1], NAQ_ERR_INVALID_ARG);
    if (strstr(naq_last_error(), "no command to run") == NULL)
        fail_msg("message: %s", naq_last_error());
    assert_int_equal(lc_queued(fx), 0);

    /* The same from the command line: exit 2, no id printed. */
    char *path = write_file(fx, "argv.jsonl",
                            "{\"argv\":[\"echo\",\"a\"]}\n"
                            "{\"argv\":[]}\n");
    const char *argv[] = {"enqueue", "-q", "q", "--batch", path, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(lc_cli(fx, argv, &out, &err), 2);
    if (strstr(err, "line 2: the exec job has no command to run") == NULL)
        fail_msg("stderr: %s", err);
    assert_string_equal(out, "");
    assert_int_equal(lc_queued(fx), 0);
    free(out);
    free(err);
    free(path);
}

static void cli_batch_marks_the_jobs_the_server_refused(void **state)
{
    lc_fixture *fx = *state;
    /* The CLI's connect resets the job stream's limits, but not a bucket's:
     * a dependency store that takes small values only refuses the one job
     * that has to wait there. */
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = "naq_deps";
    kc.History = 1;
    kc.MaxValueSize = 1000;
    kvStore *kv = NULL;
    /* Made at connect (every bucket exists before the first job): made
     * again, smaller. */
    assert_int_equal(js_DeleteKeyValue(fx->js, "naq_deps"), NATS_OK);
    assert_int_equal(js_CreateKeyValue(&kv, fx->js, &kc), NATS_OK);
    kvStore_Destroy(kv);
    char big[2100];
    memset(big, 'y', 2000);
    big[2000] = '\0';
    char text[2600];
    snprintf(text, sizeof text,
             "{\"queue\":\"q\",\"function\":\"f\",\"job_id\":\"ok1\"}\n"
             "{\"queue\":\"q\",\"function\":\"f\",\"job_id\":\"big\",\"args\":\"%s\","
             "\"depends_on\":[\"ok1\"]}\n"
             "{\"queue\":\"q\",\"function\":\"f\",\"job_id\":\"ok2\"}\n",
             big);
    char *path = write_file(fx, "partial.jsonl", text);
    const char *argv[] = {"enqueue", "--batch", path, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(lc_cli(fx, argv, &out, &err), 1);
    assert_string_equal(out, "ok1\n-\nok2\n");
    if (strstr(err, "line 2 (job big) was not enqueued") == NULL ||
        strstr(err, "2 of 3 jobs enqueued") == NULL)
        fail_msg("stderr: %s", err);
    assert_int_equal(lc_queued(fx), 2);
    free(out);
    free(err);
    free(path);
}

#define T(f) cmocka_unit_test_setup_teardown(f, lc_setup, lc_teardown)
static const struct CMUnitTest tests[] = {
    T(a_batch_stores_every_job_and_reports_the_ids_in_input_order),
    T(a_batch_is_validated_whole_before_anything_is_sent),
    T(a_partial_failure_reports_exactly_which_jobs_were_stored),
    T(unique_and_dependent_jobs_of_a_batch_go_one_at_a_time),
    T(cli_batch_prints_one_id_per_line_in_input_order),
    T(cli_batch_with_a_bad_line_enqueues_nothing),
    T(a_batch_with_an_exec_job_without_a_command_enqueues_nothing),
    T(cli_batch_marks_the_jobs_the_server_refused),
};

NAQ_TEST_MAIN(tests)
