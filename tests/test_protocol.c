/*
 * test_protocol.c - docs/protocol.md is enough to take part without libnaq.
 *
 * A "foreign" program, written here with plain nats.c and jansson calls
 * only (no naq function touches its messages), enqueues jobs exactly as the
 * protocol says; a naq worker runs them; the foreign program then reads the
 * events back from the documented subjects and checks the documented JSON
 * and headers.
 */
#include "harness.h"

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the foreign side: nats.c + jansson only ---- */

typedef struct {
    natsConnection *nc;
    jsCtx *js;
} foreign;

static void foreign_connect(foreign *f, const char *url)
{
    assert_int_equal(natsConnection_ConnectTo(&f->nc, url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&f->js, f->nc, NULL), NATS_OK);
}

static void foreign_close(foreign *f)
{
    jsCtx_Destroy(f->js);
    natsConnection_Destroy(f->nc);
}

static void foreign_publish(foreign *f, const char *subject, json_t *body,
                            const char *const *headers /* name, value, ..., NULL */)
{
    char *text = json_dumps(body, JSON_COMPACT);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, text, (int)strlen(text)), NATS_OK);
    for (const char *const *h = headers; *h; h += 2)
        assert_int_equal(natsMsgHeader_Set(m, h[0], h[1]), NATS_OK);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_PublishMsg(&pa, f->js, m, NULL, &jerr);
    if (ns != NATS_OK)
        fail_msg("publish to %s: %s (js error %d)", subject, natsStatus_GetText(ns), (int)jerr);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    free(text);
}

/* Enqueues as docs/protocol.md "Enqueueing" says: the job JSON on
 * <p>.queue.<queue>.<priority>, then its "enqueued" event whose event id is
 * "enq-<job_id>". */
static void foreign_enqueue(foreign *f, const char *job_id, const char *queue, const char *function,
                            json_t *args)
{
    json_t *job = json_pack("{s:i, s:s, s:s, s:s, s:o, s:i, s:f}", "version", 1, "job_id", job_id,
                            "queue", queue, "function", function, "args", args, "priority", 2,
                            "enqueued_at", 1763900000.5);
    char subject[256];
    snprintf(subject, sizeof subject, "naq.queue.%s.2", queue);
    const char *job_headers[] = {"Nats-Msg-Id",  job_id,   "Naq-Queue", queue,
                                 "Naq-Function", function, NULL};
    foreign_publish(f, subject, job, job_headers);
    json_decref(job);

    char event_id[200];
    snprintf(event_id, sizeof event_id, "enq-%s", job_id);
    json_t *ev = json_pack("{s:i, s:s, s:s, s:s, s:f, s:s}", "version", 1, "event_type", "enqueued",
                           "event_id", event_id, "job_id", job_id, "timestamp", 1763900000.5,
                           "queue_name", queue);
    snprintf(subject, sizeof subject, "naq.jobs.events.%s", job_id);
    const char *ev_headers[] = {"Nats-Msg-Id", event_id, "Naq-Event-Type", "enqueued", "Naq-Queue",
                                queue,         NULL};
    foreign_publish(f, subject, ev, ev_headers);
    json_decref(ev);
}

/* Reads a job's history as docs/protocol.md "Reading" says: direct gets of
 * the next message on the job's literal subject. Returns a JSON array of
 * the events, each with "_header_type" and "_msg_id" from the headers. */
static json_t *foreign_history(foreign *f, const char *job_id)
{
    char subject[256];
    snprintf(subject, sizeof subject, "naq.jobs.events.%s", job_id);
    json_t *all = json_array();
    uint64_t seq = 1;
    for (;;) {
        jsDirectGetMsgOptions o;
        jsDirectGetMsgOptions_Init(&o);
        o.Sequence = seq;
        o.NextBySubject = subject;
        natsMsg *m = NULL;
        if (js_DirectGetMsg(&m, f->js, "NAQ_JOB_EVENTS", NULL, &o) != NATS_OK)
            break;
        json_error_t err;
        json_t *ev = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &err);
        assert_non_null(ev);
        const char *v = NULL;
        if (natsMsgHeader_Get(m, "Naq-Event-Type", &v) == NATS_OK)
            json_object_set_new(ev, "_header_type", json_string(v));
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK)
            json_object_set_new(ev, "_msg_id", json_string(v));
        const char *s = NULL;
        assert_int_equal(natsMsgHeader_Get(m, "Nats-Sequence", &s), NATS_OK);
        seq = strtoull(s, NULL, 10) + 1;
        json_array_append_new(all, ev);
        natsMsg_Destroy(m);
    }
    return all;
}

/* ---- the naq side: an ordinary worker ---- */

static naq_status greet(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)user;
    json_error_t err;
    json_t *args = json_loads(job->args_json, 0, &err);
    const char *name = json_string_value(json_object_get(args, "name"));
    if (name == NULL) {
        json_decref(args);
        naq_job_ctx_fail(ctx, "ValueError", "args need a name");
        return NAQ_ERR_HANDLER;
    }
    json_decref(args);
    return NAQ_OK;
}

typedef struct {
    naq_worker *w;
} worker_run;

static void *run_worker(void *arg)
{
    naq_worker_run(((worker_run *)arg)->w);
    return NULL;
}

typedef struct {
    naq_worker *w;
    uint64_t want;
} done_wait;

static int worker_done(void *ud)
{
    done_wait *d = ud;
    naq_worker_stats st;
    naq_worker_get_stats(d->w, &st);
    return st.processed >= d->want;
}

static const char *type_at(json_t *history, size_t i)
{
    return json_string_value(json_object_get(json_array_get(history, i), "event_type"));
}

/* The run's transitions, without the worker registry's worker_assigned /
 * worker_released bookkeeping, joined by spaces. */
static void run_types(json_t *history, char *out, size_t cap, int *assigned)
{
    out[0] = '\0';
    *assigned = 0;
    for (size_t i = 0; i < json_array_size(history); i++) {
        const char *t = type_at(history, i);
        if (!strcmp(t, "worker_assigned") || !strcmp(t, "worker_released")) {
            *assigned += !strcmp(t, "worker_assigned");
            continue;
        }
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", n ? " " : "", t);
    }
}

static void check_documented_form(json_t *history, const char *job_id)
{
    size_t i;
    json_t *ev;
    json_array_foreach(history, i, ev)
    {
        assert_int_equal(json_integer_value(json_object_get(ev, "version")), 1);
        assert_string_equal(json_string_value(json_object_get(ev, "job_id")), job_id);
        assert_true(json_is_number(json_object_get(ev, "timestamp")));
        /* headers repeat the body, and the dedup id is the event id */
        assert_string_equal(json_string_value(json_object_get(ev, "_header_type")),
                            json_string_value(json_object_get(ev, "event_type")));
        assert_string_equal(json_string_value(json_object_get(ev, "_msg_id")),
                            json_string_value(json_object_get(ev, "event_id")));
        assert_string_equal(json_string_value(json_object_get(ev, "queue_name")), "proto");
    }
}

static void foreign_program_enqueues_naq_runs_and_foreign_program_reads_events(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    /* naq creates the streams when it connects (as docs/protocol.md says). */
    naq_client *c = naq_test_connect(&srv);
    const char *queues[] = {"proto", NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    worker_run wr = {NULL};
    assert_int_equal(naq_worker_create(c, &wo, &wr.w), NAQ_OK);
    assert_int_equal(naq_worker_register(wr.w, "greet", greet, NULL), NAQ_OK);
    pthread_t t;
    pthread_create(&t, NULL, run_worker, &wr);

    foreign f;
    foreign_connect(&f, srv.url);
    foreign_enqueue(&f, "foreign-ok-1", "proto", "greet", json_pack("{s:s}", "name", "ada"));
    foreign_enqueue(&f, "foreign-bad-1", "proto", "greet", json_pack("{}"));
    foreign_enqueue(&f, "foreign-exec-1", "proto", "exec",
                    json_pack("{s:[s,s,s]}", "argv", "sh", "-c", "echo hi; exit 4"));
    done_wait dw = {wr.w, 3};
    assert_true(naq_test_wait_for(worker_done, &dw, 20000));
    assert_int_equal(naq_client_flush_events(c, 10000), NAQ_OK);

    json_t *ok = foreign_history(&f, "foreign-ok-1");
    char types[256];
    int assigned = 0;
    run_types(ok, types, sizeof types, &assigned);
    assert_string_equal(types, "enqueued dequeued started completed");
    assert_int_equal(assigned, 1);
    check_documented_form(ok, "foreign-ok-1");
    json_t *done = NULL;
    for (size_t i = 0; i < json_array_size(ok); i++)
        if (!strcmp(type_at(ok, i), "completed"))
            done = json_array_get(ok, i);
    assert_int_equal(json_integer_value(json_object_get(done, "attempt")), 1);
    assert_true(json_is_string(json_object_get(done, "worker_id")));
    assert_true(json_is_number(json_object_get(done, "duration_ms")));

    json_t *bad = foreign_history(&f, "foreign-bad-1");
    run_types(bad, types, sizeof types, &assigned);
    assert_string_equal(types, "enqueued dequeued started failed max_retries_exceeded");
    json_t *failed = NULL;
    for (size_t i = 0; i < json_array_size(bad); i++)
        if (!strcmp(type_at(bad, i), "failed"))
            failed = json_array_get(bad, i);
    assert_string_equal(json_string_value(json_object_get(failed, "error_type")), "ValueError");
    assert_string_equal(json_string_value(json_object_get(failed, "error_message")),
                        "args need a name");
    check_documented_form(bad, "foreign-bad-1");

    json_t *ex = foreign_history(&f, "foreign-exec-1");
    run_types(ex, types, sizeof types, &assigned);
    assert_string_equal(types, "enqueued dequeued started failed max_retries_exceeded");
    json_t *exfail = NULL;
    for (size_t i = 0; i < json_array_size(ex); i++)
        if (!strcmp(type_at(ex, i), "failed"))
            exfail = json_array_get(ex, i);
    assert_string_equal(json_string_value(json_object_get(exfail, "error_type")), "ExitStatus");
    json_t *details = json_object_get(exfail, "details");
    assert_int_equal(json_integer_value(json_object_get(details, "exit_status")), 4);
    assert_string_equal(json_string_value(json_object_get(details, "stdout_tail")), "hi\n");
    check_documented_form(ex, "foreign-exec-1");

    json_decref(ok);
    json_decref(bad);
    json_decref(ex);
    foreign_close(&f);
    naq_worker_stop(wr.w);
    pthread_join(t, NULL);
    naq_worker_destroy(wr.w);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void foreign_reader_filters_live_events_by_headers(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    foreign f;
    foreign_connect(&f, srv.url);
    /* A plain subscription on every job event subject, as a dashboard in
     * another language would do, reading only the headers. */
    natsSubscription *sub = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&sub, f.nc, "naq.jobs.events.>"), NATS_OK);
    natsConnection_Flush(f.nc);

    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "proto";
    o.function = "noop";
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(c, &o, id), NAQ_OK);
    assert_int_equal(naq_client_flush_events(c, 5000), NAQ_OK);

    natsMsg *m = NULL;
    assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    const char *v = NULL;
    assert_int_equal(natsMsgHeader_Get(m, "Naq-Event-Type", &v), NATS_OK);
    assert_string_equal(v, "enqueued");
    assert_int_equal(natsMsgHeader_Get(m, "Naq-Queue", &v), NATS_OK);
    assert_string_equal(v, "proto");
    char subject[256];
    snprintf(subject, sizeof subject, "naq.jobs.events.%s", id);
    assert_string_equal(natsMsg_GetSubject(m), subject);
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    foreign_close(&f);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(foreign_program_enqueues_naq_runs_and_foreign_program_reads_events),
    cmocka_unit_test(foreign_reader_filters_live_events_by_headers),
};

NAQ_TEST_MAIN(tests)
