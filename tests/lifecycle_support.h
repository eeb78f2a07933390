/*
 * lifecycle_support.h - what the job lifecycle tests share (test_job.c,
 * test_unique.c, test_batch.c, test_deps.c, test_results.c,
 * test_cancel.c, test_dlq.c): a fixture with a real server, a client and
 * a plain nats.c connection, and raw reads of what is stored (queued
 * messages, KV keys, a job's event types), so the tests check the
 * server's state, not what the library believes it stored.
 */
#ifndef NAQ_TEST_LIFECYCLE_SUPPORT_H
#define NAQ_TEST_LIFECYCLE_SUPPORT_H

#include "harness.h"

#include "jobs/jobs.h"

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    naq_test_server srv;
    naq_client *c;
    natsConnection *nc; /* the tests' own view of the server */
    jsCtx *js;
} lc_fixture;

static inline int lc_setup(void **state)
{
    lc_fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    naq_test_server_start(&fx->srv);
    fx->c = naq_test_connect(&fx->srv);
    assert_int_equal(natsConnection_ConnectTo(&fx->nc, fx->srv.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&fx->js, fx->nc, NULL), NATS_OK);
    *state = fx;
    return 0;
}

static inline int lc_teardown(void **state)
{
    lc_fixture *fx = *state;
    jsCtx_Destroy(fx->js);
    natsConnection_Destroy(fx->nc);
    naq_client_destroy(fx->c);
    naq_test_server_destroy(&fx->srv);
    free(fx);
    return 0;
}

static inline void lc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Messages in a stream. */
static inline uint64_t lc_stream_msgs(lc_fixture *fx, const char *stream)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, fx->js, stream, NULL, &jerr);
    if (ns != NATS_OK)
        fail_msg("stream info %s: %s (%d)", stream, natsStatus_GetText(ns), (int)jerr);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

static inline uint64_t lc_queued(lc_fixture *fx)
{
    return lc_stream_msgs(fx, "NAQ_JOBS");
}

/* Every message of a stream on subjects matching filter (NULL = all), in
 * order; *n of them. The caller destroys them and frees the array. */
static inline natsMsg **lc_stream_read(lc_fixture *fx, const char *stream, const char *filter,
                                       size_t *n)
{
    natsMsg **v = NULL;
    size_t cap = 0;
    *n = 0;
    char all[64];
    snprintf(all, sizeof all, ">");
    for (uint64_t seq = 0;;) {
        jsDirectGetMsgOptions dg;
        jsDirectGetMsgOptions_Init(&dg);
        dg.NextBySubject = filter ? filter : all;
        dg.Sequence = seq;
        natsMsg *m = NULL;
        natsStatus ns = js_DirectGetMsg(&m, fx->js, stream, NULL, &dg);
        if (ns == NATS_NOT_FOUND)
            break;
        if (ns != NATS_OK)
            fail_msg("reading %s: %s", stream, natsStatus_GetText(ns));
        seq = natsMsg_GetSequence(m) + 1;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            v = realloc(v, cap * sizeof *v);
            assert_non_null(v);
        }
        v[(*n)++] = m;
    }
    return v;
}

static inline void lc_msgs_free(natsMsg **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        natsMsg_Destroy(v[i]);
    free(v);
}

/* How many queued messages carry this job (its id as "job_id"). */
static inline int lc_queued_copies(lc_fixture *fx, const char *job_id)
{
    size_t n = 0;
    natsMsg **v = lc_stream_read(fx, "NAQ_JOBS", NULL, &n);
    int copies = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_loadb(natsMsg_GetData(v[i]), (size_t)natsMsg_GetDataLength(v[i]), 0, NULL);
        const char *id = json_string_value(json_object_get(o, "job_id"));
        copies += id != NULL && strcmp(id, job_id) == 0;
        json_decref(o);
    }
    lc_msgs_free(v, n);
    return copies;
}

/* The queued message of a job, decoded (clear it), and its subject; fails
 * the test when it is not queued exactly once. */
static inline void lc_queued_job(lc_fixture *fx, const char *job_id, naq_job *out, char *subject,
                                 size_t cap)
{
    size_t n = 0;
    natsMsg **v = lc_stream_read(fx, "NAQ_JOBS", NULL, &n);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        naq_job j;
        if (naq_job_decode(natsMsg_GetData(v[i]), (size_t)natsMsg_GetDataLength(v[i]), &j) ==
                NAQ_OK &&
            strcmp(j.id, job_id) == 0) {
            if (found++ == 0) {
                *out = j;
                if (subject != NULL)
                    snprintf(subject, cap, "%s", natsMsg_GetSubject(v[i]));
                continue;
            }
        }
        naq_job_clear(&j);
    }
    lc_msgs_free(v, n);
    if (found != 1)
        fail_msg("job %s is queued %d times, wanted once", job_id, found);
}

/* The event types of a job, comma-separated, in stream order, after
 * flushing the client's logger. "" when it has none. Heap. */
static inline char *lc_event_types(lc_fixture *fx, const char *job_id)
{
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    naq_event_list l;
    char *out = calloc(1, 4096);
    assert_non_null(out);
    if (naq_job_history(fx->c, job_id, &l) == NAQ_OK) {
        for (size_t i = 0; i < l.count; i++) {
            strcat(out, i ? "," : "");
            strncat(out, naq_event_type_name(l.items[i].type), 4000 - strlen(out));
        }
    }
    naq_event_list_free(&l);
    return out;
}

#define assert_events(fx, job_id, want)                                                            \
    do {                                                                                           \
        char *got_ = lc_event_types(fx, job_id);                                                   \
        if (strcmp(got_, want) != 0)                                                               \
            fail_msg("events of %s: got '%s', want '%s'", job_id, got_, want);                     \
        free(got_);                                                                                \
    } while (0)

/* The event of a job of type t (the last one), found in its history: its
 * details as JSON (new reference) or NULL. */
static inline json_t *lc_event_details(lc_fixture *fx, const char *job_id, naq_event_type t)
{
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    naq_event_list l;
    json_t *d = NULL;
    if (naq_job_history(fx->c, job_id, &l) == NAQ_OK) {
        for (size_t i = l.count; i-- > 0;) {
            if (l.items[i].type == t) {
                d = json_loads(l.items[i].details_json ? l.items[i].details_json : "{}", 0, NULL);
                break;
            }
        }
    }
    naq_event_list_free(&l);
    return d;
}

/* A plain job on queue q (id may be NULL for a new one). */
static inline naq_job_opts lc_job(const char *q, const char *id)
{
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = q;
    o.function = "noop";
    o.job_id = id;
    return o;
}

static inline void lc_enqueue(lc_fixture *fx, const naq_job_opts *o, char id[NAQ_ID_SIZE])
{
    naq_status s = naq_enqueue(fx->c, o, id);
    if (s != NAQ_OK)
        fail_msg("enqueue: %s: %s", naq_status_str(s), naq_last_error());
}

/* What the worker's finisher does at a job's final outcome, synchronously
 * (finish.c): the outcome record, naming the queue message of sequence
 * message_seq as the one it settled (0: none), the dependents told, the
 * unique key released. */
static inline void lc_finish_message(naq_client *c, const char *id, uint64_t message_seq, int ok)
{
    naq_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.queue, sizeof j.queue, "any");
    snprintf(j.function, sizeof j.function, "any");
    j.attempt = 1;
    char *record =
        naq__outcome_record(NULL, &j, message_seq, ok ? "completed" : "failed", NULL, NULL, NULL);
    naq_status s = naq__finish(c, &j, record, ok);
    free(record);
    if (s != NAQ_OK)
        fail_msg("finish(%s): %s", id, naq_last_error());
}

static inline void lc_finish(lc_fixture *fx, const char *id, int ok)
{
    lc_finish_message(fx->c, id, 0, ok);
}

/* 1 when job id has an outcome record. */
static inline int lc_has_outcome(lc_fixture *fx, const char *id)
{
    natsMsg *m = NULL;
    int has = naq__outcome_last(fx->c, id, &m) == NAQ_OK && naq__outcome_is_record(m);
    natsMsg_Destroy(m);
    return has;
}

/* A raw KV value: 1 when the key holds one. */
static inline int lc_kv_has(lc_fixture *fx, const char *bucket, const char *key)
{
    kvStore *kv = NULL;
    if (js_KeyValue(&kv, fx->js, bucket) != NATS_OK)
        return 0;
    kvEntry *e = NULL;
    int has = kvStore_Get(&e, kv, key) == NATS_OK;
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    return has;
}

/* Runs the CLI against the fixture's server. */
static inline int lc_cli(lc_fixture *fx, const char *const *argv, char **out, char **err)
{
    char url[128];
    snprintf(url, sizeof url, "NAQ_URL=%s", fx->srv.url);
    char spool[300];
    snprintf(spool, sizeof spool, "NAQ_SPOOL_DIR=%s/cli-spool", fx->srv.dir);
    const char *env[] = {url, spool, NULL};
    return naq_test_run_cli(argv, env, out, err);
}

#endif
