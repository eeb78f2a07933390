/*
 * test_store.c - reading the event log: job history, job state and live
 * filtered streams, against a real nats-server.
 *
 * Events are published here with plain nats.c calls, the way docs/protocol.md
 * describes (JSON body, Nats-Msg-Id and Naq-* headers), so these tests do not
 * depend on the logger; the client runs with logging disabled, so the stream
 * holds exactly what a test published.
 */
#include "harness.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    naq_test_server srv;
    naq_client *c;
    natsConnection *nc; /* the tests' own publisher */
    jsCtx *js;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    naq_test_server_start(&fx->srv);
    naq_config cfg;
    naq_test_config(&fx->srv, &cfg);
    cfg.disable_logging = 1;
    naq_status st = naq_client_connect(&cfg, &fx->c);
    if (st != NAQ_OK)
        fail_msg("connect: %s", naq_last_error());
    assert_int_equal(natsConnection_ConnectTo(&fx->nc, fx->srv.url), NATS_OK);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    assert_int_equal(natsConnection_JetStream(&fx->js, fx->nc, &jo), NATS_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    jsCtx_Destroy(fx->js);
    natsConnection_Destroy(fx->nc);
    naq_client_destroy(fx->c);
    naq_test_server_destroy(&fx->srv);
    free(fx);
    return 0;
}

/* ---- publishing like any writer of the protocol ---- */

typedef struct {
    naq_event_type type;
    const char *job, *queue, *worker;
    double timestamp; /* 0 = now */
    int late;         /* published with the logger's Naq-Late header */
} spec;

/* Builds the message of one event. Thread-safe; no cmocka calls. */
static natsStatus make_event_msg(const spec *sp, natsMsg **out)
{
    naq_event e;
    naq_event_init(&e, sp->type);
    naq_id_new(e.event_id);
    snprintf(e.job_id, sizeof e.job_id, "%s", sp->job ? sp->job : "");
    snprintf(e.queue_name, sizeof e.queue_name, "%s", sp->queue ? sp->queue : "");
    snprintf(e.worker_id, sizeof e.worker_id, "%s", sp->worker ? sp->worker : "");
    e.timestamp = sp->timestamp;
    char subject[256];
    char *json = NULL;
    size_t len = 0;
    if (naq_event_subject("naq", &e, subject, sizeof subject) != NAQ_OK ||
        naq_event_encode(&e, &json, &len) != NAQ_OK)
        return NATS_ERR;
    natsStatus ns = natsMsg_Create(out, subject, NULL, json, (int)len);
    free(json);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*out, "Nats-Msg-Id", e.event_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*out, "Naq-Event-Type", naq_event_type_name(e.type));
    if (ns == NATS_OK && e.queue_name[0])
        ns = natsMsgHeader_Set(*out, "Naq-Queue", e.queue_name);
    if (ns == NATS_OK && e.worker_id[0])
        ns = natsMsgHeader_Set(*out, "Naq-Worker", e.worker_id);
    if (ns == NATS_OK && sp->late)
        ns = natsMsgHeader_Set(*out, "Naq-Late", "1");
    return ns;
}

/* Publishes and waits for the ack; *seq gets the stream sequence. */
static natsStatus publish_sync(jsCtx *js, const spec *sp, uint64_t *seq)
{
    natsMsg *m = NULL;
    natsStatus ns = make_event_msg(sp, &m);
    jsPubAck *pa = NULL;
    if (ns == NATS_OK)
        ns = js_PublishMsg(&pa, js, m, NULL, NULL);
    if (ns == NATS_OK && seq != NULL)
        *seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    return ns;
}

static uint64_t publish(fixture *fx, naq_event_type type, const char *job, const char *queue,
                        const char *worker)
{
    spec sp = {type, job, queue, worker, 0, 0};
    uint64_t seq = 0;
    assert_int_equal(publish_sync(fx->js, &sp, &seq), NATS_OK);
    return seq;
}

/* Publishes n events of one kind without waiting for each ack. */
static void publish_many(fixture *fx, int n, naq_event_type type, const char *queue)
{
    char job[32];
    for (int i = 0; i < n; i++) {
        snprintf(job, sizeof job, "bulk-%d", i % 997);
        spec sp = {type, job, queue, "w-bulk", 0, 0};
        natsMsg *m = NULL;
        assert_int_equal(make_event_msg(&sp, &m), NATS_OK);
        assert_int_equal(js_PublishMsgAsync(fx->js, &m, NULL), NATS_OK);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    assert_int_equal(js_PublishAsyncComplete(fx->js, &po), NATS_OK);
}

/* ---- collecting what a stream delivers ---- */

#define MAX_COLLECT 4096

typedef struct {
    naq_event ev[MAX_COLLECT];
    size_t n;
    size_t stop_after; /* the callback returns 1 after this many (0 = never) */
} collected;

static int collect(const naq_event *e, void *user)
{
    collected *col = user;
    if (col->n < MAX_COLLECT && naq_event_copy(&col->ev[col->n], e) == NAQ_OK)
        col->n++;
    return col->stop_after > 0 && col->n >= col->stop_after;
}

static collected *collected_new(size_t stop_after)
{
    collected *col = calloc(1, sizeof *col);
    assert_non_null(col);
    col->stop_after = stop_after;
    return col;
}

static void collected_free(collected *col)
{
    for (size_t i = 0; i < col->n; i++)
        naq_event_clear(&col->ev[i]);
    free(col);
}

static naq_status stream(fixture *fx, naq_event_filter f, int tail, int follow, collected *col)
{
    naq_stream_opts o = {0};
    o.filter = f;
    o.tail = tail;
    o.follow = follow;
    return naq_events_stream(fx->c, &o, collect, col);
}

static void assert_sequences(const collected *col, const uint64_t *want, size_t n)
{
    assert_int_equal(col->n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(col->ev[i].nats_sequence, want[i]);
}

/* ---- history and state ---- */

static void history_lists_a_jobs_events_in_publish_order_and_only_its_own(void **state)
{
    fixture *fx = *state;
    uint64_t a1 = publish(fx, NAQ_EVENT_ENQUEUED, "job-a", "q1", NULL);
    publish(fx, NAQ_EVENT_ENQUEUED, "job-b", "q1", NULL);
    uint64_t a2 = publish(fx, NAQ_EVENT_STARTED, "job-a", "q1", "w1");
    publish(fx, NAQ_EVENT_WORKER_BUSY, NULL, NULL, "w1");
    publish(fx, NAQ_EVENT_STARTED, "job-b", "q1", "w1");
    uint64_t a3 = publish(fx, NAQ_EVENT_COMPLETED, "job-a", "q1", "w1");
    publish(fx, NAQ_EVENT_SYSTEM_METRICS, NULL, NULL, NULL);

    naq_event_list l;
    assert_int_equal(naq_job_history(fx->c, "job-a", &l), NAQ_OK);
    assert_int_equal(l.count, 3);
    naq_event_type want_types[] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_STARTED, NAQ_EVENT_COMPLETED};
    uint64_t want_seqs[] = {a1, a2, a3};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(l.items[i].type, want_types[i]);
        assert_string_equal(l.items[i].job_id, "job-a");
        assert_string_equal(l.items[i].nats_subject, "naq.jobs.events.job-a");
        assert_int_equal(l.items[i].nats_sequence, want_seqs[i]);
    }
    assert_string_equal(l.items[2].worker_id, "w1");
    naq_event_list_free(&l);
    assert_null(l.items);
    assert_int_equal(l.count, 0);
}

static void history_of_an_unknown_job_is_not_found_with_a_hint(void **state)
{
    fixture *fx = *state;
    publish(fx, NAQ_EVENT_ENQUEUED, "job-a", "q1", NULL);
    naq_event_list l;
    assert_int_equal(naq_job_history(fx->c, "nope-123", &l), NAQ_ERR_NOT_FOUND);
    assert_int_equal(l.count, 0);
    assert_null(l.items);
    assert_non_null(strstr(naq_last_error(), "no events for job nope-123"));
    assert_non_null(strstr(naq_last_error(), "max age"));
    naq_event_list_free(&l); /* safe after a failure */

    naq_event e;
    assert_int_equal(naq_job_last_event(fx->c, "nope-123", &e), NAQ_ERR_NOT_FOUND);
    assert_non_null(strstr(naq_last_error(), "no events for job nope-123"));
    naq_event_clear(&e);
}

static void reads_refuse_a_malformed_job_id(void **state)
{
    fixture *fx = *state;
    naq_event_list l;
    assert_int_equal(naq_job_history(fx->c, "a.b", &l), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "job id"));
    assert_int_equal(naq_job_history(fx->c, "", &l), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_job_history(fx->c, "job>", &l), NAQ_ERR_INVALID_ARG);
    naq_event e;
    assert_int_equal(naq_job_last_event(fx->c, "a b", &e), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "job id"));
    naq_event_clear(&e);
}

static void last_event_is_the_latest_event_of_the_job(void **state)
{
    fixture *fx = *state;
    publish(fx, NAQ_EVENT_ENQUEUED, "job-a", "q1", NULL);
    publish(fx, NAQ_EVENT_STARTED, "job-a", "q1", "w1");
    uint64_t last = publish(fx, NAQ_EVENT_FAILED, "job-a", "q1", "w1");
    publish(fx, NAQ_EVENT_COMPLETED, "job-b", "q1", "w1");
    naq_event e;
    assert_int_equal(naq_job_last_event(fx->c, "job-a", &e), NAQ_OK);
    assert_int_equal(e.type, NAQ_EVENT_FAILED);
    assert_string_equal(e.job_id, "job-a");
    assert_int_equal(e.nats_sequence, last);
    assert_string_equal(e.nats_subject, "naq.jobs.events.job-a");
    naq_event_clear(&e);
}

/* An event the logger re-sent after an election is stored after later
 * events of its job; history and state place it by its time. */
static void a_late_event_takes_its_place_by_time_in_history_and_state(void **state)
{
    fixture *fx = *state;
    double t = (double)time(NULL);
    for (int late = 1; late >= 0; late--) {
        const char *job = late ? "job-late" : "job-skewed";
        spec enq = {NAQ_EVENT_ENQUEUED, job, "q1", NULL, t - 30, 0};
        spec done = {NAQ_EVENT_COMPLETED, job, "q1", "w1", t - 10, 0};
        spec started = {NAQ_EVENT_STARTED, job, "q1", "w1", t - 20, late};
        assert_int_equal(publish_sync(fx->js, &enq, NULL), NATS_OK);
        assert_int_equal(publish_sync(fx->js, &done, NULL), NATS_OK);
        assert_int_equal(publish_sync(fx->js, &started, NULL), NATS_OK);
        naq_event_list l;
        assert_int_equal(naq_job_history(fx->c, job, &l), NAQ_OK);
        assert_int_equal(l.count, 3);
        /* Late: the order things happened. Without the header (the control)
         * the stored order stands: an old timestamp alone may be clock skew. */
        naq_event_type want[2][3] = {{NAQ_EVENT_ENQUEUED, NAQ_EVENT_COMPLETED, NAQ_EVENT_STARTED},
                                     {NAQ_EVENT_ENQUEUED, NAQ_EVENT_STARTED, NAQ_EVENT_COMPLETED}};
        for (int i = 0; i < 3; i++)
            if (l.items[i].type != want[late][i])
                fail_msg("%s: event %d is %s, want %s", job, i,
                         naq_event_type_name(l.items[i].type), naq_event_type_name(want[late][i]));
        naq_event_list_free(&l);
        naq_event e;
        assert_int_equal(naq_job_last_event(fx->c, job, &e), NAQ_OK);
        assert_int_equal(e.type, late ? NAQ_EVENT_COMPLETED : NAQ_EVENT_STARTED);
        assert_string_equal(e.job_id, job);
        naq_event_clear(&e);
    }
}

static void history_refuses_an_event_it_cannot_decode(void **state)
{
    fixture *fx = *state;
    publish(fx, NAQ_EVENT_ENQUEUED, "job-a", "q1", NULL);
    assert_int_equal(js_Publish(NULL, fx->js, "naq.jobs.events.job-a", "not json", 8, NULL, NULL),
                     NATS_OK);
    naq_event_list l;
    assert_int_equal(naq_job_history(fx->c, "job-a", &l), NAQ_ERR_CODEC);
    assert_non_null(strstr(naq_last_error(), "cannot be read"));
    assert_null(l.items);
}

/* ---- filters ---- */

static void event_matches_requires_every_given_field(void **state)
{
    (void)state;
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_FAILED);
    strcpy(e.job_id, "j1");
    strcpy(e.queue_name, "q1");
    strcpy(e.worker_id, "w1");
    naq_event_filter none = {0};
    assert_true(naq_event_matches(&e, NULL));
    assert_true(naq_event_matches(&e, &none));
    naq_event_filter empty = {"", "", "", ""};
    assert_true(naq_event_matches(&e, &empty));
    naq_event_filter all = {"j1", "failed", "q1", "w1"};
    assert_true(naq_event_matches(&e, &all));
    naq_event_filter job = {.job_id = "j2"};
    naq_event_filter type = {.type = "completed"};
    naq_event_filter queue = {.queue = "q2"};
    naq_event_filter worker = {.worker = "w2"};
    assert_false(naq_event_matches(&e, &job));
    assert_false(naq_event_matches(&e, &type));
    assert_false(naq_event_matches(&e, &queue));
    assert_false(naq_event_matches(&e, &worker));
    naq_event_filter one_wrong = {"j1", "failed", "q1", "w2"};
    assert_false(naq_event_matches(&e, &one_wrong));
}

/* ---- streams: tail ---- */

/* A mix of jobs, types, queues and workers, plus worker and system events.
 * seqs[i] is the sequence of specs[i]. */
#define MIX 120
static void publish_mix(fixture *fx, spec *specs, uint64_t *seqs)
{
    static const char *jobs[] = {"j0", "j1", "j2", "j3", "j4"};
    static const char *queues[] = {"qa", "qb", "qc"};
    static const char *workers[] = {"w1", "w2"};
    static const naq_event_type types[] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_STARTED, NAQ_EVENT_FAILED,
                                           NAQ_EVENT_COMPLETED};
    for (int i = 0; i < MIX; i++) {
        if (i % 10 == 7)
            specs[i] = (spec){NAQ_EVENT_WORKER_HEARTBEAT, NULL, NULL, workers[i % 2], 0, 0};
        else if (i % 10 == 9)
            specs[i] = (spec){NAQ_EVENT_SYSTEM_METRICS, NULL, NULL, NULL, 0, 0};
        else
            specs[i] = (spec){types[i % 4],
                              jobs[i % 5],
                              queues[i % 3],
                              types[i % 4] == NAQ_EVENT_ENQUEUED ? NULL : workers[(i / 3) % 2],
                              0,
                              0};
        assert_int_equal(publish_sync(fx->js, &specs[i], &seqs[i]), NATS_OK);
    }
}

static int spec_matches(const spec *sp, const naq_event_filter *f)
{
    naq_event e;
    naq_event_init(&e, sp->type);
    snprintf(e.job_id, sizeof e.job_id, "%s", sp->job ? sp->job : "");
    snprintf(e.queue_name, sizeof e.queue_name, "%s", sp->queue ? sp->queue : "");
    snprintf(e.worker_id, sizeof e.worker_id, "%s", sp->worker ? sp->worker : "");
    return naq_event_matches(&e, f);
}

/* Streams with tail n and no follow, and checks the answer is exactly the
 * last n matching events of the mix, in order. */
static void check_tail(fixture *fx, const spec *specs, const uint64_t *seqs, naq_event_filter f,
                       size_t n)
{
    uint64_t want[MIX];
    size_t nwant = 0;
    for (int i = MIX - 1; i >= 0 && nwant < n; i--)
        if (spec_matches(&specs[i], &f))
            want[nwant++] = seqs[i];
    for (size_t i = 0; i < nwant / 2; i++) {
        uint64_t t = want[i];
        want[i] = want[nwant - 1 - i];
        want[nwant - 1 - i] = t;
    }
    assert_int_equal(nwant, n); /* the mix has enough of each */
    collected *col = collected_new(0);
    assert_int_equal(stream(fx, f, (int)n, 0, col), NAQ_OK);
    assert_sequences(col, want, nwant);
    for (size_t i = 0; i < col->n; i++)
        assert_true(naq_event_matches(&col->ev[i], &f));
    collected_free(col);
}

static void stream_tail_by_type_is_the_last_n_of_that_type_in_order(void **state)
{
    fixture *fx = *state;
    spec specs[MIX];
    uint64_t seqs[MIX];
    publish_mix(fx, specs, seqs);
    check_tail(fx, specs, seqs, (naq_event_filter){.type = "failed"}, 7);
    check_tail(fx, specs, seqs, (naq_event_filter){.type = "worker_heartbeat"}, 5);
    check_tail(fx, specs, seqs, (naq_event_filter){.type = "system_metrics"}, 1);
}

static void stream_tail_by_queue_is_the_last_n_of_that_queue_in_order(void **state)
{
    fixture *fx = *state;
    spec specs[MIX];
    uint64_t seqs[MIX];
    publish_mix(fx, specs, seqs);
    check_tail(fx, specs, seqs, (naq_event_filter){.queue = "qb"}, 9);
    check_tail(fx, specs, seqs, (naq_event_filter){.queue = "qa", .type = "started"}, 3);
}

static void stream_tail_by_worker_is_the_last_n_of_that_worker_in_order(void **state)
{
    fixture *fx = *state;
    spec specs[MIX];
    uint64_t seqs[MIX];
    publish_mix(fx, specs, seqs);
    check_tail(fx, specs, seqs, (naq_event_filter){.worker = "w2"}, 11);
}

static void stream_tail_by_job_is_the_last_n_of_that_job_in_order(void **state)
{
    fixture *fx = *state;
    spec specs[MIX];
    uint64_t seqs[MIX];
    publish_mix(fx, specs, seqs);
    check_tail(fx, specs, seqs, (naq_event_filter){.job_id = "j3"}, 4);
    check_tail(fx, specs, seqs, (naq_event_filter){.job_id = "j3", .type = "failed"}, 2);
}

static void stream_tail_without_filter_is_the_last_n_events(void **state)
{
    fixture *fx = *state;
    spec specs[MIX];
    uint64_t seqs[MIX];
    publish_mix(fx, specs, seqs);
    check_tail(fx, specs, seqs, (naq_event_filter){0}, 13);
    check_tail(fx, specs, seqs, (naq_event_filter){0}, MIX);
}

static void stream_tail_longer_than_the_matches_delivers_all_of_them(void **state)
{
    fixture *fx = *state;
    uint64_t a = publish(fx, NAQ_EVENT_FAILED, "j1", "q1", "w1");
    publish(fx, NAQ_EVENT_STARTED, "j2", "q1", "w1");
    uint64_t b = publish(fx, NAQ_EVENT_FAILED, "j2", "q1", "w1");
    collected *col = collected_new(0);
    assert_int_equal(stream(fx, (naq_event_filter){.type = "failed"}, 50, 0, col), NAQ_OK);
    uint64_t want[] = {a, b};
    assert_sequences(col, want, 2);
    collected_free(col);
}

static void stream_tail_finds_rare_matches_far_back(void **state)
{
    fixture *fx = *state;
    uint64_t a = publish(fx, NAQ_EVENT_TIMEOUT, "rare-1", "q1", "w1");
    uint64_t b = publish(fx, NAQ_EVENT_TIMEOUT, "rare-2", "q1", "w1");
    publish_many(fx, 6000, NAQ_EVENT_STARTED, "q1");
    uint64_t c = publish(fx, NAQ_EVENT_TIMEOUT, "rare-3", "q1", "w1");
    publish_many(fx, 500, NAQ_EVENT_COMPLETED, "q1");
    collected *col = collected_new(0);
    assert_int_equal(stream(fx, (naq_event_filter){.type = "timeout"}, 3, 0, col), NAQ_OK);
    uint64_t want[] = {a, b, c};
    assert_sequences(col, want, 3);
    assert_string_equal(col->ev[0].job_id, "rare-1");
    assert_string_equal(col->ev[2].job_id, "rare-3");
    collected_free(col);
}

static void stream_tail_search_stops_at_the_scan_bound(void **state)
{
    fixture *fx = *state;
    publish(fx, NAQ_EVENT_TIMEOUT, "too-far", "q1", "w1");
    publish_many(fx, NAQ_STREAM_TAIL_SCAN_MAX + 10, NAQ_EVENT_STARTED, "q1");
    uint64_t near = publish(fx, NAQ_EVENT_TIMEOUT, "near", "q1", "w1");
    collected *col = collected_new(0);
    assert_int_equal(stream(fx, (naq_event_filter){.type = "timeout"}, 2, 0, col), NAQ_OK);
    uint64_t want[] = {near};
    assert_sequences(col, want, 1);
    collected_free(col);
}

static void stream_tail_skips_deleted_and_undecodable_events(void **state)
{
    fixture *fx = *state;
    uint64_t s[7], gone[3];
    for (int i = 0; i < 7; i++) {
        if (i == 4) /* a message no reader can decode, between s[3] and s[4] */
            assert_int_equal(js_Publish(NULL, fx->js, "naq.jobs.events.j1", "{oops", 5, NULL, NULL),
                             NATS_OK);
        s[i] = publish(fx, NAQ_EVENT_STARTED, "j1", "q1", "w1");
    }
    /* Delete the newest events, so the first window the tail search reads
     * holds nothing at all: the search and the delivery must still end. (They
     * belong to another job: nats-server 2.9.10 loses track of a subject's
     * last message when exactly that one is deleted alone.) */
    for (int i = 0; i < 3; i++)
        gone[i] = publish(fx, NAQ_EVENT_STARTED, "gone", "q1", "w1");
    for (int i = 0; i < 3; i++)
        assert_int_equal(js_DeleteMsg(fx->js, "NAQ_JOB_EVENTS", gone[i], NULL, NULL), NATS_OK);
    collected *col = collected_new(0);
    assert_int_equal(stream(fx, (naq_event_filter){0}, 3, 0, col), NAQ_OK);
    assert_sequences(col, &s[4], 3); /* its first window holds only deleted events */
    collected_free(col);

    col = collected_new(0);
    assert_int_equal(stream(fx, (naq_event_filter){0}, 4, 0, col), NAQ_OK);
    uint64_t want[] = {s[3], s[4], s[5], s[6]};
    assert_sequences(col, want, 4);
    collected_free(col);

    col = collected_new(0);
    assert_int_equal(stream(fx, (naq_event_filter){.job_id = "j1"}, 4, 0, col), NAQ_OK);
    assert_sequences(col, want, 4);
    collected_free(col);
}

static void stream_without_follow_or_tail_returns_at_once(void **state)
{
    fixture *fx = *state;
    publish(fx, NAQ_EVENT_STARTED, "j1", "q1", "w1");
    collected *col = collected_new(0);
    assert_int_equal(stream(fx, (naq_event_filter){0}, 0, 0, col), NAQ_OK);
    assert_int_equal(col->n, 0);
    collected_free(col);
}

static void stream_refuses_a_malformed_filter_before_calling_back(void **state)
{
    fixture *fx = *state;
    publish(fx, NAQ_EVENT_STARTED, "j1", "q1", "w1");
    collected *col = collected_new(0);
    assert_int_equal(stream(fx, (naq_event_filter){.type = "finished"}, 5, 0, col),
                     NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "finished"));
    assert_int_equal(stream(fx, (naq_event_filter){.job_id = "a.b"}, 5, 0, col),
                     NAQ_ERR_INVALID_ARG);
    assert_int_equal(stream(fx, (naq_event_filter){.queue = "q*"}, 5, 0, col), NAQ_ERR_INVALID_ARG);
    assert_int_equal(stream(fx, (naq_event_filter){.worker = "w 1"}, 5, 0, col),
                     NAQ_ERR_INVALID_ARG);
    assert_int_equal(stream(fx, (naq_event_filter){0}, -1, 0, col), NAQ_ERR_INVALID_ARG);
    assert_int_equal(col->n, 0);
    collected_free(col);
}

static void stream_tail_stops_when_the_callback_returns_non_zero(void **state)
{
    fixture *fx = *state;
    uint64_t s1 = publish(fx, NAQ_EVENT_STARTED, "j1", "q1", "w1");
    uint64_t s2 = publish(fx, NAQ_EVENT_STARTED, "j1", "q1", "w1");
    publish(fx, NAQ_EVENT_STARTED, "j1", "q1", "w1");
    collected *col = collected_new(2);
    assert_int_equal(stream(fx, (naq_event_filter){0}, 3, 1, col), NAQ_OK);
    uint64_t want[] = {s1, s2};
    assert_sequences(col, want, 2);
    collected_free(col);
    col = collected_new(1);
    assert_int_equal(stream(fx, (naq_event_filter){.job_id = "j1"}, 3, 1, col), NAQ_OK);
    assert_sequences(col, want, 1);
    collected_free(col);
}

/* ---- streams: follow ---- */

/* Publishes events for `job` (cycling types) until told to stop. */
typedef struct {
    jsCtx *js;
    const char *job;
    atomic_int done;
    atomic_int published;
    natsStatus err;
} publisher;

static void *publish_loop(void *arg)
{
    publisher *p = arg;
    static const naq_event_type types[] = {NAQ_EVENT_STARTED, NAQ_EVENT_FAILED,
                                           NAQ_EVENT_COMPLETED};
    for (int i = 0; !atomic_load(&p->done); i++) {
        spec sp = {types[i % 3], p->job, "live-q", "live-w", 0, 0};
        natsStatus ns = publish_sync(p->js, &sp, NULL);
        if (ns != NATS_OK) {
            p->err = ns;
            break;
        }
        atomic_fetch_add(&p->published, 1);
    }
    return NULL;
}

static void publisher_start(publisher *p, pthread_t *t, jsCtx *js, const char *job)
{
    p->js = js;
    p->job = job;
    atomic_init(&p->done, 0);
    atomic_init(&p->published, 0);
    p->err = NATS_OK;
    assert_int_equal(pthread_create(t, NULL, publish_loop, p), 0);
}

static void publisher_stop(publisher *p, pthread_t t)
{
    atomic_store(&p->done, 1);
    pthread_join(t, NULL);
    assert_int_equal(p->err, NATS_OK);
}

static void stream_follow_delivers_events_published_after_the_start(void **state)
{
    fixture *fx = *state;
    for (int i = 0; i < 5; i++)
        publish(fx, NAQ_EVENT_STARTED, "before", "q1", "w1");
    publisher p;
    pthread_t t;
    publisher_start(&p, &t, fx->js, "after");
    collected *col = collected_new(30);
    assert_int_equal(stream(fx, (naq_event_filter){0}, 0, 1, col), NAQ_OK);
    publisher_stop(&p, t);
    assert_int_equal(col->n, 30); /* the callback's non-zero return ended it */
    for (size_t i = 0; i < col->n; i++) {
        assert_string_equal(col->ev[i].job_id, "after");
        if (i > 0)
            assert_int_equal(col->ev[i].nats_sequence, col->ev[i - 1].nats_sequence + 1);
    }
    collected_free(col);

    /* Filtered live streams see only what matches. */
    publisher_start(&p, &t, fx->js, "after-2");
    col = collected_new(10);
    assert_int_equal(
        stream(fx, (naq_event_filter){.type = "failed", .worker = "live-w"}, 0, 1, col), NAQ_OK);
    publisher_stop(&p, t);
    assert_int_equal(col->n, 10);
    for (size_t i = 0; i < col->n; i++) {
        assert_int_equal(col->ev[i].type, NAQ_EVENT_FAILED);
        assert_string_equal(col->ev[i].job_id, "after-2");
        if (i > 0) /* every third event is a failure */
            assert_int_equal(col->ev[i].nats_sequence, col->ev[i - 1].nats_sequence + 3);
    }
    collected_free(col);
}

typedef struct {
    volatile int *flag;
    int delay_ms;
} raiser;

static void *raise_later(void *arg)
{
    raiser *r = arg;
    struct timespec ts = {r->delay_ms / 1000, (long)(r->delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    *r->flag = 1;
    return NULL;
}

static void stream_follow_ends_when_the_stop_flag_is_set(void **state)
{
    fixture *fx = *state;
    publish(fx, NAQ_EVENT_STARTED, "j1", "q1", "w1");
    volatile int stop = 0;
    raiser r = {&stop, 300};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, raise_later, &r), 0);
    collected *col = collected_new(0);
    naq_stream_opts o = {0};
    o.follow = 1;
    o.stop = &stop;
    assert_int_equal(naq_events_stream(fx->c, &o, collect, col), NAQ_OK);
    pthread_join(t, NULL);
    assert_int_equal(col->n, 0);
    collected_free(col);

    /* A flag set before the call ends the stream before the tail, with or
     * without a job filter. */
    o.tail = 5;
    col = collected_new(0);
    assert_int_equal(naq_events_stream(fx->c, &o, collect, col), NAQ_OK);
    assert_int_equal(col->n, 0);
    collected_free(col);
    o.filter.job_id = "j1";
    col = collected_new(0);
    assert_int_equal(naq_events_stream(fx->c, &o, collect, col), NAQ_OK);
    assert_int_equal(col->n, 0);
    collected_free(col);
}

/* Starts a tail + follow stream while events pour in and checks the stream
 * sequences it delivers are contiguous: nothing lost or repeated where the
 * tail ends and the live part begins. */
static void check_no_gap_at_the_seam(fixture *fx, naq_event_filter f)
{
    for (int i = 0; i < 100; i++)
        publish(fx, NAQ_EVENT_STARTED, "seam", "q1", "w1");
    publisher p;
    pthread_t t;
    publisher_start(&p, &t, fx->js, "seam");
    while (atomic_load(&p.published) < 50) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    collected *col = collected_new(1500);
    assert_int_equal(stream(fx, f, 40, 1, col), NAQ_OK);
    publisher_stop(&p, t);
    assert_int_equal(col->n, 1500);
    for (size_t i = 1; i < col->n; i++)
        if (col->ev[i].nats_sequence != col->ev[i - 1].nats_sequence + 1)
            fail_msg("event %zu has sequence %llu after %llu", i,
                     (unsigned long long)col->ev[i].nats_sequence,
                     (unsigned long long)col->ev[i - 1].nats_sequence);
    collected_free(col);
}

static void stream_loses_and_repeats_nothing_between_tail_and_live(void **state)
{
    check_no_gap_at_the_seam(*state, (naq_event_filter){0});
}

static void job_stream_loses_and_repeats_nothing_between_history_and_live(void **state)
{
    check_no_gap_at_the_seam(*state, (naq_event_filter){.job_id = "seam"});
}

static void stream_follow_on_a_job_without_events_delivers_its_first_ones(void **state)
{
    fixture *fx = *state;
    publisher p;
    pthread_t t;
    publisher_start(&p, &t, fx->js, "newborn");
    collected *col = collected_new(5);
    assert_int_equal(stream(fx, (naq_event_filter){.job_id = "newborn"}, 3, 1, col), NAQ_OK);
    publisher_stop(&p, t);
    assert_int_equal(col->n, 5);
    for (size_t i = 0; i < col->n; i++) {
        assert_string_equal(col->ev[i].job_id, "newborn");
        assert_string_equal(col->ev[i].nats_subject, "naq.jobs.events.newborn");
        assert_true(col->ev[i].nats_sequence > 0);
    }
    collected_free(col);
}

/* Resuming (the web UI's live feed after a reconnect): from a sequence,
 * matching events from there on, with a filter and with a job, without
 * follow up to the end, and nothing before it. */
static void stream_from_a_sequence_resumes_there_with_filters(void **state)
{
    fixture *fx = *state;
    spec specs[MIX];
    uint64_t seqs[MIX];
    publish_mix(fx, specs, seqs);
    naq_event_filter filters[] = {{0}, {.queue = "qb"}, {.job_id = "j3"}, {.type = "failed"}};
    for (size_t k = 0; k < sizeof filters / sizeof filters[0]; k++) {
        uint64_t from = seqs[MIX / 2];
        uint64_t want[MIX];
        size_t nwant = 0;
        for (int i = 0; i < MIX; i++)
            if (seqs[i] >= from && spec_matches(&specs[i], &filters[k]))
                want[nwant++] = seqs[i];
        collected *col = collected_new(0);
        naq_stream_opts o = {0};
        o.filter = filters[k];
        o.from_seq = from;
        o.tail = 1; /* ignored with from_seq */
        assert_int_equal(naq_events_stream(fx->c, &o, collect, col), NAQ_OK);
        assert_sequences(col, want, nwant);
        collected_free(col);
    }
    /* Past the end without follow: nothing, at once. */
    collected *col = collected_new(0);
    naq_stream_opts o = {0};
    o.from_seq = seqs[MIX - 1] + 1;
    assert_int_equal(naq_events_stream(fx->c, &o, collect, col), NAQ_OK);
    assert_int_equal(col->n, 0);
    collected_free(col);
}

static const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    T(history_lists_a_jobs_events_in_publish_order_and_only_its_own),
    T(history_of_an_unknown_job_is_not_found_with_a_hint),
    T(reads_refuse_a_malformed_job_id),
    T(last_event_is_the_latest_event_of_the_job),
    T(a_late_event_takes_its_place_by_time_in_history_and_state),
    T(history_refuses_an_event_it_cannot_decode),
    cmocka_unit_test(event_matches_requires_every_given_field),
    T(stream_tail_by_type_is_the_last_n_of_that_type_in_order),
    T(stream_tail_by_queue_is_the_last_n_of_that_queue_in_order),
    T(stream_tail_by_worker_is_the_last_n_of_that_worker_in_order),
    T(stream_tail_by_job_is_the_last_n_of_that_job_in_order),
    T(stream_tail_without_filter_is_the_last_n_events),
    T(stream_tail_longer_than_the_matches_delivers_all_of_them),
    T(stream_tail_finds_rare_matches_far_back),
    T(stream_tail_search_stops_at_the_scan_bound),
    T(stream_tail_skips_deleted_and_undecodable_events),
    T(stream_without_follow_or_tail_returns_at_once),
    T(stream_refuses_a_malformed_filter_before_calling_back),
    T(stream_tail_stops_when_the_callback_returns_non_zero),
    T(stream_follow_delivers_events_published_after_the_start),
    T(stream_follow_ends_when_the_stop_flag_is_set),
    T(stream_loses_and_repeats_nothing_between_tail_and_live),
    T(job_stream_loses_and_repeats_nothing_between_history_and_live),
    T(stream_follow_on_a_job_without_events_delivers_its_first_ones),
    T(stream_from_a_sequence_resumes_there_with_filters),
#undef T
};

NAQ_TEST_MAIN(tests)
