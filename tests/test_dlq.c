/*
 * test_dlq.c - the dead-letter queue of jobs (naq__dlq_put, naq_dlq_*,
 * `naq dlq`), against a real nats-server: a dead job is stored whole and
 * logged, listed and shown with filters, retried as a new job linked to
 * the old one (logged on both) and purged.
 */
#include "lifecycle_support.h"

/* Enqueues o and reads the job back as a worker gets it: *j and its
 * JSON *json (heap; the caller frees it and clears j). */
static void enqueue_and_take(lc_fixture *fx, const naq_job_opts *o, naq_job *j, char **json,
                             size_t *len)
{
    char got[NAQ_ID_SIZE];
    lc_enqueue(fx, o, got);
    lc_queued_job(fx, got, j, NULL, 0);
    assert_int_equal(naq_job_encode(j, json, len), NAQ_OK);
}

/* Enqueues a job and dead-letters it as the worker would. */
static void kill_job(lc_fixture *fx, const char *id, const char *queue, const char *error_type,
                     int attempts)
{
    naq_job_opts o = lc_job(queue, id);
    o.args_json = "{\"n\":7}";
    o.max_retries = attempts - 1;
    o.tags_json = "{\"team\":\"ops\"}";
    naq_job j;
    char *json = NULL;
    size_t len = 0;
    enqueue_and_take(fx, &o, &j, &json, &len);
    naq_status s = naq__dlq_put(fx->c, &j, json, len, error_type, "it broke", attempts);
    if (s != NAQ_OK)
        fail_msg("dlq put: %s", naq_last_error());
    free(json);
    naq_job_clear(&j);
}

static void a_dead_job_is_stored_whole_and_logged(void **state)
{
    lc_fixture *fx = *state;
    kill_job(fx, "d1", "emails", "Timeout", 3);
    size_t n = 0;
    natsMsg **v = lc_stream_read(fx, "NAQ_DLQ", NULL, &n);
    assert_int_equal(n, 1);
    assert_string_equal(natsMsg_GetSubject(v[0]), "naq.dlq.emails");
    const char *h = NULL;
    assert_int_equal(natsMsgHeader_Get(v[0], "Naq-Error-Type", &h), NATS_OK);
    assert_string_equal(h, "Timeout");
    json_t *o = json_loadb(natsMsg_GetData(v[0]), (size_t)natsMsg_GetDataLength(v[0]), 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(o, "version")), 1);
    assert_string_equal(json_string_value(json_object_get(o, "job_id")), "d1");
    assert_string_equal(json_string_value(json_object_get(o, "queue")), "emails");
    assert_string_equal(json_string_value(json_object_get(o, "error_type")), "Timeout");
    assert_string_equal(json_string_value(json_object_get(o, "error_message")), "it broke");
    assert_int_equal(json_integer_value(json_object_get(o, "attempts")), 3);
    assert_true(json_number_value(json_object_get(o, "failed_at")) > 1.7e9);
    json_t *job = json_object_get(o, "job");
    assert_string_equal(json_string_value(json_object_get(job, "job_id")), "d1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(job, "args"), "n")), 7);
    json_decref(o);
    lc_msgs_free(v, n);

    assert_events(fx, "d1", "enqueued,max_retries_exceeded");
    json_t *d = lc_event_details(fx, "d1", NAQ_EVENT_MAX_RETRIES_EXCEEDED);
    assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 3);
    assert_string_equal(json_string_value(json_object_get(d, "error_type")), "Timeout");
    json_decref(d);
    naq_event last;
    assert_int_equal(naq_job_last_event(fx->c, "d1", &last), NAQ_OK);
    assert_int_equal(last.attempt, 3);
    assert_string_equal(last.error_type, "Timeout");
    naq_event_clear(&last);
}

/* The worker whose put was stored but whose reply was lost (the server
 * killed in between) logged nothing, and its re-run's put is a duplicate:
 * that put logs the event, and a third logs no second copy. */
static void a_repeated_put_after_a_lost_reply_keeps_one_entry_and_logs_one_event(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = lc_job("emails", "lost1");
    naq_job j;
    char *json = NULL;
    size_t len = 0;
    enqueue_and_take(fx, &o, &j, &json, &len);

    /* The first put as the server stored it: same message id, no event. */
    char msg_id[NAQ_ID_SIZE];
    naq__derived_id("dlq", "lost1-1", msg_id);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, "naq.dlq.emails", NULL, "{}", 2), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id), NATS_OK);
    jsPubAck *ack = NULL;
    assert_int_equal(js_PublishMsg(&ack, fx->js, m, NULL, NULL), NATS_OK);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(m);

    for (int i = 0; i < 2; i++)
        if (naq__dlq_put(fx->c, &j, json, len, "IOError", "it broke", 1) != NAQ_OK)
            fail_msg("dlq put: %s", naq_last_error());
    free(json);
    naq_job_clear(&j);
    size_t n = 0;
    natsMsg **v = lc_stream_read(fx, "NAQ_DLQ", NULL, &n);
    assert_int_equal(n, 1);
    lc_msgs_free(v, n);
    assert_events(fx, "lost1", "enqueued,max_retries_exceeded");
}

static void list_and_show_filter_by_queue_error_type_and_job(void **state)
{
    lc_fixture *fx = *state;
    kill_job(fx, "a1", "emails", "Timeout", 1);
    kill_job(fx, "a2", "emails", "ExitStatus", 2);
    kill_job(fx, "a3", "reports", "Timeout", 1);
    kill_job(fx, "a4", "emails", "Timeout", 4);

    naq_dlq_entry_list l;
    assert_int_equal(naq_dlq_list(fx->c, NULL, &l), NAQ_OK);
    assert_int_equal(l.count, 4);
    assert_string_equal(l.items[0].job_id, "a1"); /* oldest first */
    naq_dlq_entry_list_free(&l);

    naq_dlq_filter f = {.queue = "emails", .error_type = "Timeout"};
    assert_int_equal(naq_dlq_list(fx->c, &f, &l), NAQ_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.items[0].job_id, "a1");
    assert_string_equal(l.items[1].job_id, "a4");
    assert_int_equal(l.items[1].attempts, 4);
    assert_string_equal(l.items[1].function, "noop");
    assert_string_equal(l.items[1].error_message, "it broke");
    uint64_t seq_a4 = l.items[1].seq;
    naq_dlq_entry_list_free(&l);

    f = (naq_dlq_filter){.error_type = "Timeout", .limit = 2};
    assert_int_equal(naq_dlq_list(fx->c, &f, &l), NAQ_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.items[1].job_id, "a3");
    naq_dlq_entry_list_free(&l);

    naq_dlq_entry e;
    assert_int_equal(naq_dlq_show(fx->c, seq_a4, NULL, &e), NAQ_OK);
    assert_string_equal(e.job_id, "a4");
    json_t *job = json_loads(e.job_json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(job, "queue")), "emails");
    json_decref(job);
    naq_dlq_entry_clear(&e);
    assert_int_equal(naq_dlq_show(fx->c, 0, "a2", &e), NAQ_OK);
    assert_string_equal(e.error_type, "ExitStatus");
    naq_dlq_entry_clear(&e);
    assert_int_equal(naq_dlq_show(fx->c, 0, "ghost", &e), NAQ_ERR_NOT_FOUND);
    naq_dlq_entry_clear(&e);
    assert_int_equal(naq_dlq_show(fx->c, 999, NULL, &e), NAQ_ERR_NOT_FOUND);
    naq_dlq_entry_clear(&e);
}

static void retry_enqueues_a_new_job_linked_to_the_dead_one_and_logs_on_both(void **state)
{
    lc_fixture *fx = *state;
    kill_job(fx, "r1", "emails", "Timeout", 2);
    kill_job(fx, "r2", "emails", "ExitStatus", 1);
    assert_int_equal(js_PurgeStream(fx->js, "NAQ_JOBS", NULL, NULL), NATS_OK); /* as acked */

    naq_dlq_filter f = {.error_type = "Timeout"};
    naq_dlq_retried *done = NULL;
    size_t n = 0;
    naq_status s = naq_dlq_retry(fx->c, &f, &done, &n);
    if (s != NAQ_OK)
        fail_msg("retry: %s", naq_last_error());
    assert_int_equal(n, 1);
    assert_string_equal(done[0].job_id, "r1");
    char want[64];
    snprintf(want, sizeof want, "r1-r%llu", (unsigned long long)done[0].seq);
    assert_string_equal(done[0].new_job_id, want);

    naq_job j;
    lc_queued_job(fx, want, &j, NULL, 0);
    assert_string_equal(j.original_job_id, "r1");
    assert_string_equal(j.queue, "emails");
    assert_string_equal(j.args_json, "{\"n\":7}");
    assert_int_equal(j.max_retries, 1);
    naq_job_clear(&j);

    assert_events(fx, "r1", "enqueued,max_retries_exceeded,retry_scheduled");
    json_t *d = lc_event_details(fx, "r1", NAQ_EVENT_RETRY_SCHEDULED);
    assert_string_equal(json_string_value(json_object_get(d, "new_job_id")), want);
    assert_string_equal(json_string_value(json_object_get(d, "from")), "dlq");
    json_decref(d);
    assert_events(fx, want, "enqueued");
    d = lc_event_details(fx, want, NAQ_EVENT_ENQUEUED);
    assert_string_equal(json_string_value(json_object_get(d, "original_job_id")), "r1");
    json_decref(d);

    /* The entry is gone; the other stays. */
    naq_dlq_entry_list l;
    assert_int_equal(naq_dlq_list(fx->c, NULL, &l), NAQ_OK);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.items[0].job_id, "r2");
    naq_dlq_entry_list_free(&l);
    free(done);

    /* Nothing left to match, and no filter at all, are refused. */
    assert_int_equal(naq_dlq_retry(fx->c, &f, NULL, NULL), NAQ_ERR_NOT_FOUND);
    naq_dlq_filter none = {0};
    assert_int_equal(naq_dlq_retry(fx->c, &none, NULL, NULL), NAQ_ERR_INVALID_ARG);
    none.all = 1;
    assert_int_equal(naq_dlq_retry(fx->c, &none, NULL, &n), NAQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(lc_stream_msgs(fx, "NAQ_DLQ"), 0);
}

static void purge_deletes_only_the_matching_entries(void **state)
{
    lc_fixture *fx = *state;
    kill_job(fx, "p1", "emails", "Timeout", 1);
    kill_job(fx, "p2", "reports", "Timeout", 1);
    kill_job(fx, "p3", "emails", "ExitStatus", 1);
    size_t n = 0;
    naq_dlq_filter f = {.queue = "emails"};
    assert_int_equal(naq_dlq_purge(fx->c, &f, &n), NAQ_OK);
    assert_int_equal(n, 2);
    naq_dlq_entry_list l;
    assert_int_equal(naq_dlq_list(fx->c, NULL, &l), NAQ_OK);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.items[0].job_id, "p2");
    naq_dlq_entry_list_free(&l);
    naq_dlq_filter none = {0};
    assert_int_equal(naq_dlq_purge(fx->c, &none, &n), NAQ_ERR_INVALID_ARG);
    none.all = 1;
    assert_int_equal(naq_dlq_purge(fx->c, &none, &n), NAQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(lc_stream_msgs(fx, "NAQ_DLQ"), 0);
}

static void cli_dlq_list_show_retry_and_purge(void **state)
{
    lc_fixture *fx = *state;
    kill_job(fx, "c1", "emails", "Timeout", 2);
    kill_job(fx, "c2", "reports", "ExitStatus", 1);
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    char *out = NULL, *err = NULL;

    const char *list[] = {"dlq", "list", NULL};
    assert_int_equal(lc_cli(fx, list, &out, NULL), 0);
    if (strncmp(out, "SEQ", 3) != 0 || strstr(out, "c1") == NULL || strstr(out, "c2") == NULL ||
        strstr(out, "Timeout: it broke") == NULL)
        fail_msg("list:\n%s", out);
    free(out);

    /* --limit 0 means no limit, as in events list; --limit 1 the oldest. */
    const char *all[] = {"dlq", "list", "--limit", "0", NULL};
    assert_int_equal(lc_cli(fx, all, &out, NULL), 0);
    if (strstr(out, "c1") == NULL || strstr(out, "c2") == NULL)
        fail_msg("list --limit 0:\n%s", out);
    free(out);
    const char *one[] = {"dlq", "list", "--limit", "1", NULL};
    assert_int_equal(lc_cli(fx, one, &out, NULL), 0);
    if (strstr(out, "c1") == NULL || strstr(out, "c2") != NULL)
        fail_msg("list --limit 1:\n%s", out);
    free(out);

    const char *json[] = {"dlq", "list", "--queue", "reports", "--format", "json", NULL};
    assert_int_equal(lc_cli(fx, json, &out, NULL), 0);
    json_t *o = json_loads(out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "job_id")), "c2");
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    assert_true(seq > 0);
    json_decref(o);
    free(out);

    const char *show[] = {"dlq", "show", "--job", "c1", NULL};
    assert_int_equal(lc_cli(fx, show, &out, NULL), 0);
    if (strstr(out, "attempts      2") == NULL || strstr(out, "\"args\"") == NULL)
        fail_msg("show:\n%s", out);
    free(out);

    const char *retry[] = {"dlq", "retry", "--error-type", "Timeout", NULL};
    assert_int_equal(lc_cli(fx, retry, &out, NULL), 0);
    if (strncmp(out, "c1 c1-r", 7) != 0)
        fail_msg("retry: %s", out);
    free(out);

    char seqtext[32];
    snprintf(seqtext, sizeof seqtext, "%llu", (unsigned long long)seq);
    const char *purge[] = {"dlq", "purge", seqtext, NULL};
    assert_int_equal(lc_cli(fx, purge, &out, NULL), 0);
    assert_string_equal(out, "purged 1 dead job\n");
    free(out);
    assert_int_equal(lc_stream_msgs(fx, "NAQ_DLQ"), 0);

    const char *nothing[] = {"dlq", "retry", "--all", NULL};
    assert_int_equal(lc_cli(fx, nothing, NULL, &err), 1);
    if (strstr(err, "no dead job matches") == NULL)
        fail_msg("stderr: %s", err);
    free(err);
    const char *nofilter[] = {"dlq", "purge", NULL};
    assert_int_equal(lc_cli(fx, nofilter, NULL, NULL), 2);
    const char *help[] = {"dlq", "--help", NULL};
    assert_int_equal(lc_cli(fx, help, &out, NULL), 0);
    assert_non_null(strstr(out, "naq dlq retry"));
    free(out);
}

#define T(f) cmocka_unit_test_setup_teardown(f, lc_setup, lc_teardown)
static const struct CMUnitTest tests[] = {
    T(a_dead_job_is_stored_whole_and_logged),
    T(a_repeated_put_after_a_lost_reply_keeps_one_entry_and_logs_one_event),
    T(list_and_show_filter_by_queue_error_type_and_job),
    T(retry_enqueues_a_new_job_linked_to_the_dead_one_and_logs_on_both),
    T(purge_deletes_only_the_matching_entries),
    T(cli_dlq_list_show_retry_and_purge),
};

NAQ_TEST_MAIN(tests)
