/*
 * schedule_support.h - what test_schedule.c, test_scheduler.c and
 * test_delay.c share: a scheduler running on its own thread with its own
 * client, and raw reads of streams (queued jobs, events, KV values) with
 * plain nats.c calls, so the tests check what is stored, not what the
 * library believes it stored.
 */
#ifndef NAQ_TEST_SCHEDULE_SUPPORT_H
#define NAQ_TEST_SCHEDULE_SUPPORT_H

#include "harness.h"

#include "naq/schedule.h"

#include <jansson.h>
#include <math.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* ---- a scheduler on a thread ---- */

typedef struct {
    naq_client *c;
    naq_scheduler *s;
    pthread_t t;
} sched_runner;

static inline void *sched_runner_main(void *arg)
{
    naq_scheduler_run(((sched_runner *)arg)->s);
    return NULL;
}

/* lease_ms / grace_ms <= 0 keep the defaults. */
static inline void sched_runner_start(sched_runner *r, const naq_test_server *srv, const char *id,
                                      int64_t lease_ms, int64_t grace_ms)
{
    memset(r, 0, sizeof *r);
    r->c = naq_test_connect(srv);
    naq_scheduler_opts o;
    naq_scheduler_opts_init(&o);
    o.scheduler_id = id;
    if (lease_ms > 0)
        o.lease_ms = lease_ms;
    if (grace_ms > 0)
        o.misfire_grace_ms = grace_ms;
    naq_status st = naq_scheduler_create(r->c, &o, &r->s);
    if (st != NAQ_OK)
        fail_msg("naq_scheduler_create: %s", naq_last_error());
    assert_int_equal(pthread_create(&r->t, NULL, sched_runner_main, r), 0);
}

/* Stops gracefully (releasing the lease) and publishes its events. */
static inline void sched_runner_stop(sched_runner *r)
{
    if (r->s == NULL)
        return;
    naq_scheduler_stop(r->s);
    pthread_join(r->t, NULL);
    assert_int_equal(naq_client_flush_events(r->c, 5000), NAQ_OK);
    naq_scheduler_destroy(r->s);
    naq_client_destroy(r->c);
    r->s = NULL;
    r->c = NULL;
}

static inline naq_scheduler_stats sched_stats(sched_runner *r)
{
    naq_scheduler_stats st;
    naq_scheduler_get_stats(r->s, &st);
    return st;
}

/* ---- raw reads ---- */

typedef struct {
    natsConnection *nc;
    jsCtx *js;
} raw_conn;

static inline void raw_open(raw_conn *rc, const naq_test_server *srv)
{
    assert_int_equal(natsConnection_ConnectTo(&rc->nc, srv->url), NATS_OK);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 8192;
    assert_int_equal(natsConnection_JetStream(&rc->js, rc->nc, &jo), NATS_OK);
}

static inline void raw_close(raw_conn *rc)
{
    jsCtx_Destroy(rc->js);
    natsConnection_Destroy(rc->nc);
}

/* Calls fn(data, len, ud) for every message on `filter` (wildcards
 * allowed) in stream order; returns how many. A missing stream is 0. */
static inline size_t raw_each(raw_conn *rc, const char *stream, const char *filter,
                              void (*fn)(const char *data, int len, void *ud), void *ud)
{
    size_t n = 0;
    uint64_t seq = 0;
    for (;;) {
        jsDirectGetMsgOptions dg;
        jsDirectGetMsgOptions_Init(&dg);
        dg.NextBySubject = filter;
        dg.Sequence = seq;
        natsMsg *m = NULL;
        natsStatus ns = js_DirectGetMsg(&m, rc->js, stream, NULL, &dg);
        if (ns == NATS_NOT_FOUND)
            break;
        if (ns != NATS_OK)
            fail_msg("direct get on %s %s: %s", stream, filter, natsStatus_GetText(ns));
        seq = natsMsg_GetSequence(m) + 1;
        fn(natsMsg_GetData(m), natsMsg_GetDataLength(m), ud);
        natsMsg_Destroy(m);
        n++;
    }
    return n;
}

#define MAX_JOBS 512

/* Jobs as stored in a queue: id and enqueued_at. */
typedef struct {
    size_t n;
    char id[MAX_JOBS][NAQ_ID_SIZE];
    double enqueued_at[MAX_JOBS];
} job_set;

static inline void collect_job(const char *data, int len, void *ud)
{
    job_set *js = ud;
    json_t *o = json_loadb(data, (size_t)len, 0, NULL);
    assert_non_null(o);
    if (js->n < MAX_JOBS) {
        snprintf(js->id[js->n], NAQ_ID_SIZE, "%s", json_string_value(json_object_get(o, "job_id")));
        js->enqueued_at[js->n] = json_number_value(json_object_get(o, "enqueued_at"));
        js->n++;
    }
    json_decref(o);
}

/* Every job queued on `queue` (any priority). */
static inline void queue_jobs(raw_conn *rc, const char *queue, job_set *out)
{
    char filter[256];
    snprintf(filter, sizeof filter, "naq.queue.%s.>", queue);
    memset(out, 0, sizeof *out);
    raw_each(rc, "NAQ_JOBS", filter, collect_job, out);
}

static inline int job_set_has(const job_set *js, const char *id)
{
    for (size_t i = 0; i < js->n; i++)
        if (strcmp(js->id[i], id) == 0)
            return 1;
    return 0;
}

#define MAX_EVENTS 512

typedef struct {
    size_t n;
    naq_event ev[MAX_EVENTS];
} event_set;

static inline void collect_event(const char *data, int len, void *ud)
{
    event_set *es = ud;
    if (es->n >= MAX_EVENTS)
        return;
    if (naq_event_decode(data, (size_t)len, &es->ev[es->n]) != NAQ_OK)
        fail_msg("undecodable event: %.*s", len, data);
    es->n++;
}

/* Every event stored on `subject` (wildcards allowed). */
static inline void subject_events(raw_conn *rc, const char *subject, event_set *out)
{
    out->n = 0;
    raw_each(rc, "NAQ_JOB_EVENTS", subject, collect_event, out);
}

static inline void event_set_clear(event_set *es)
{
    for (size_t i = 0; i < es->n; i++)
        naq_event_clear(&es->ev[i]);
    es->n = 0;
}

static inline size_t count_type(const event_set *es, naq_event_type t)
{
    size_t n = 0;
    for (size_t i = 0; i < es->n; i++)
        n += es->ev[i].type == t;
    return n;
}

/* A number from an event's details, or NAN. */
static inline double detail_number(const naq_event *e, const char *key)
{
    json_t *o = e->details_json ? json_loads(e->details_json, 0, NULL) : NULL;
    json_t *v = json_object_get(o, key);
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    json_decref(o);
    return d;
}

/* The scheduler id in the lock, or "" when nobody holds it. */
static inline void lock_holder(raw_conn *rc, char out[NAQ_ID_SIZE])
{
    out[0] = '\0';
    kvStore *kv = NULL;
    if (js_KeyValue(&kv, rc->js, "naq_scheduler_lock") != NATS_OK)
        return;
    kvEntry *e = NULL;
    if (kvStore_Get(&e, kv, "leader") == NATS_OK) {
        json_t *o = json_loadb(kvEntry_ValueString(e), (size_t)kvEntry_ValueLen(e), 0, NULL);
        snprintf(out, NAQ_ID_SIZE, "%s", json_string_value(json_object_get(o, "scheduler_id")));
        json_decref(o);
        kvEntry_Destroy(e);
    }
    kvStore_Destroy(kv);
}

/* Adds an "every" schedule running `function` on `queue`. */
static inline void add_every(naq_client *c, const char *name, const char *queue, int64_t every_ms,
                             int64_t repeat, naq_misfire_policy misfire, naq_schedule *out)
{
    naq_schedule s;
    naq_schedule_init(&s);
    snprintf(s.name, sizeof s.name, "%s", name);
    snprintf(s.queue, sizeof s.queue, "%s", queue);
    snprintf(s.function, sizeof s.function, "noop");
    s.kind = NAQ_SCHEDULE_EVERY;
    s.every_ms = every_ms;
    s.repeat = repeat;
    s.misfire = misfire;
    naq_status st = naq_schedule_add(c, &s);
    if (st != NAQ_OK)
        fail_msg("naq_schedule_add %s: %s", name, naq_last_error());
    if (out != NULL)
        *out = s;
    else
        naq_schedule_clear(&s);
}

#endif
