/*
 * delay.c - delayed jobs: the due-time index and its release by the
 * scheduler's leader.
 *
 * A delayed job is stored whole, as the job JSON naq_enqueue would queue,
 * in the file-storage stream NAQ_DELAYED on the subject
 * "<p>.due.<bucket>", bucket = ceil(run_at * 10): one subject per tenth of
 * a second. The leader releases bucket b once its clock reads b / 10 or
 * later, so a job never runs early and, with a 100 ms tick, is queued
 * within about 0.2 s of its time.
 *
 * How the leader finds due buckets without reading every delayed job per
 * tick (issue 3) and without walking every missed tenth after downtime: it
 * follows the stream's arrivals with an ordered, headers-only consumer
 * that starts at the first stored message, and keeps the bucket number of
 * each arrival in a min-heap. At election the consumer replays what is
 * stored (one small message per pending job, once), then only new arrivals
 * come. A tick pops the buckets <= now and reads just those, so its cost
 * follows the work that is due, not the number of pending jobs or the
 * length of a downtime. Because every arrival is seen whatever its bucket,
 * a job published late into an already passed bucket (a client whose clock
 * is behind) is still released at the next tick; a persisted "cursor"
 * would have skipped it, and would cost a KV write per tick.
 *
 * Release is idempotent: each job is re-published to its queue with
 * Nats-Msg-Id = job id, and the bucket is purged only up to the last
 * sequence released, after the queue acknowledged every job. A leader
 * that dies in between leaves the bucket to its successor, whose
 * re-publish the queue stream drops as a duplicate (2-minute window).
 */
#include "core/heap.h"
#include "internal.h"
#include "core/jsonw.h"
#include "jobs.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUE_TOKEN "due"
/* Jobs read from one bucket per call, and released per tick. */
#define RELEASE_BATCH 5000
#define RELEASE_PER_TICK 20000
#define PUBLISH_WAIT_MS 5000

struct naq__due_index {
    naq_client *c;
    jsCtx *js;
    naq__sched_counters *ctr;
    natsSubscription *feed;
    naq__heap buckets;        /* key = bucket, one node per arrival */
    char prefix[NAQ_URL_MAX]; /* "<p>.due." */
    size_t prefix_len;
    _Atomic int publish_errors;
};

/* ---------------------------------------------------------------- stream */

/* Creates the NAQ_DELAYED stream if it does not exist. */
naq_status naq__delayed_stream_ensure(naq_client *c, jsCtx *js)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq__subject(c, subject, sizeof subject, DUE_TOKEN ".>");
    if (s != NAQ_OK)
        return s;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = naq__stream_info(js, c->delayed_stream, NULL, &si, &jerr);
    jsStreamInfo_Destroy(si);
    if (ns == NATS_OK)
        return NAQ_OK;
    if (naq__stream_missing(ns, jerr)) {
        const char *subjects[] = {subject};
        jsStreamConfig sc;
        naq__stream_config_init(&sc, c->delayed_stream, subjects, 1, c->cfg.replicas);
        /* Enqueueing the same delayed job id twice stores it once. */
        sc.Duplicates = 120 * 1000000000LL;
        int existed;
        ns = naq__stream_create(js, &sc, &existed, &jerr);
    }
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot create the delayed-job stream %s", c->delayed_stream);
    return NAQ_OK;
}

/* ---------------------------------------------------------------- enqueue */

/* The job naq_enqueue would queue, as JSON (heap). Validation follows
 * naq_enqueue's, so a job refused here would be refused there too. */
/* Validates o exactly as naq_enqueue does and encodes the job; j is the
 * caller's to naq_job_clear on success, cleared here on failure. Unique
 * keys and dependencies are not supported for delayed jobs (docs/jobs.md):
 * they are refused rather than silently dropped. */
static naq_status build_job(naq_client *c, const naq_job_opts *o, naq_job *j, char **json,
                            size_t *len)
{
    memset(j, 0, sizeof *j);
    naq_status s = naq_job_opts_validate(o);
    if (s != NAQ_OK)
        return s;
    if ((o->unique_key != NULL && o->unique_key[0] != '\0') ||
        (o->depends_on != NULL && o->depends_on[0] != NULL))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "a delayed job cannot have a unique key or dependencies; enqueue it "
                         "without a delay, or schedule the job it depends on instead");
    if ((s = naq__job_from_opts(c->crypt, o, j)) == NAQ_OK)
        s = naq_job_encode(j, json, len);
    if (s != NAQ_OK)
        naq_job_clear(j);
    /* Bad args or tags are the caller's mistake, as in naq_enqueue. */
    return s == NAQ_ERR_CODEC ? NAQ_ERR_INVALID_ARG : s;
}

/* "scheduled" for a delayed job stored in the delayed stream; its id is
 * derived from the job's. */
static void log_scheduled(naq_client *c, const naq_job *j, const char *tags_json, int64_t run_at_ms)
{
    json_t *d = json_pack("{s:f, s:s, s:i}", "run_at", (double)run_at_ms / 1000.0, "function",
                          j->function, "priority", j->priority);
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_SCHEDULED);
    snprintf(e.job_id, sizeof e.job_id, "%s", j->id);
    snprintf(e.queue_name, sizeof e.queue_name, "%s", j->queue);
    naq__derived_id("scheduled", j->id, e.event_id);
    e.timestamp = j->enqueued_at;
    e.details_json = d ? naq__json_dumps(d, NAQ__JSON_FLAGS) : NULL;
    e.tags_json = tags_json ? strdup(tags_json) : NULL;
    naq_client_log(c, &e);
    naq_event_clear(&e);
    json_decref(d);
}

naq_status naq_enqueue_at(naq_client *c, const naq_job_opts *o, double run_at_unix,
                          char job_id[NAQ_ID_SIZE])
{
    if (job_id != NULL)
        job_id[0] = '\0';
    if (c == NULL || o == NULL || job_id == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "naq_enqueue_at needs a client, options and a buffer for the job id");
    if (!isfinite(run_at_unix) || run_at_unix > 1e11)
        return naq__fail(NAQ_ERR_INVALID_ARG, "run_at %g is not a time", run_at_unix);
    if (run_at_unix <= naq__now())
        return naq_enqueue(c, o, job_id);

    naq_job j;
    char *json = NULL;
    size_t len = 0;
    natsMsg *msg = NULL;
    jsPubAck *ack = NULL;
    char subject[NAQ_URL_MAX], run_at[32];
    naq_status s = build_job(c, o, &j, &json, &len);
    if (s != NAQ_OK)
        return s;
    /* Whole milliseconds, rounded up (never early), then tenths, rounded
     * up. The tiny tolerance keeps 12.3 (stored as 12.29999...) in bucket
     * 123, not 124. */
    int64_t run_at_ms = (int64_t)ceil(run_at_unix * 1000.0 - 1e-6);
    int64_t bucket = (run_at_ms + 99) / 100;
    snprintf(run_at, sizeof run_at, "%.3f", (double)run_at_ms / 1000.0);
    if ((s = naq__subject(c, subject, sizeof subject, DUE_TOKEN ".%lld", (long long)bucket)) !=
        NAQ_OK)
        goto out;
    if ((s = naq__job_msg_to(subject, j.id, j.queue, j.function, json, len, NULL, &msg)) != NAQ_OK)
        goto out;
    natsStatus ns = natsMsgHeader_Set(msg, "Naq-Run-At", run_at);
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NO_MEMORY, ns, 0, "cannot build the message of job %s", j.id);
        goto out;
    }
    jsErrCode jerr = 0;
    ns = js_PublishMsg(&ack, c->js, msg, NULL, &jerr);
    if (ns == NATS_NO_RESPONDERS) {
        /* First delayed job on this server: create the stream, then retry. */
        if ((s = naq__delayed_stream_ensure(c, c->js)) != NAQ_OK)
            goto out;
        ns = js_PublishMsg(&ack, c->js, msg, NULL, &jerr);
    }
    if (ns == NATS_TIMEOUT) {
        s = naq__fail(NAQ_ERR_TIMEOUT,
                      "the server did not confirm delayed job %s in time, so it may or may not "
                      "be stored; enqueue again with the same job id (stored once within 2 "
                      "minutes)",
                      j.id);
        goto out;
    }
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "delayed job %s was not stored on %s", j.id,
                           subject);
        goto out;
    }
    snprintf(job_id, NAQ_ID_SIZE, "%s", j.id);
    /* A duplicate too, as naq_enqueue: the event stream keeps one copy. */
    log_scheduled(c, &j, o->tags_json, run_at_ms);
out:
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    free(json);
    naq_job_clear(&j);
    return s;
}

naq_status naq_enqueue_in(naq_client *c, const naq_job_opts *o, int64_t delay_ms,
                          char job_id[NAQ_ID_SIZE])
{
    return naq_enqueue_at(c, o, naq__now() + (double)delay_ms / 1000.0, job_id);
}

/* ---------------------------------------------------------------- release */

/* "enqueued" for a released job, once the queue stored it. For a
 * duplicate too: the earlier leader that released it may have died before
 * its reply came, and the derived event id keeps one copy. */
static void log_released(naq__due_index *d, natsMsg *m)
{
    naq_job j;
    if (naq_job_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &j) != NAQ_OK) {
        naq_job_clear(&j);
        return;
    }
    const char *run_at = NULL;
    natsMsgHeader_Get(m, "Naq-Run-At", &run_at);
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_ENQUEUED);
    snprintf(e.job_id, sizeof e.job_id, "%s", j.id);
    snprintf(e.queue_name, sizeof e.queue_name, "%s", j.queue);
    naq__derived_id("released", j.id, e.event_id);
    json_t *det = json_pack("{s:s, s:i, s:i, s:b}", "function", j.function, "priority", j.priority,
                            "max_retries", j.max_retries, "delayed", 1);
    if (det != NULL && run_at != NULL)
        json_object_set_new(det, "run_at", json_real(atof(run_at)));
    e.details_json = det ? naq__json_dumps(det, NAQ__JSON_FLAGS) : NULL;
    e.tags_json = j.tags_json ? strdup(j.tags_json) : NULL;
    naq_client_log(d->c, &e);
    naq_event_clear(&e);
    json_decref(det);
    naq_job_clear(&j);
}

/* Runs on a nats.c thread for every asynchronous publish to a queue. */
static void on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    naq__due_index *d = closure;
    if (pae != NULL || pa == NULL)
        atomic_fetch_add(&d->publish_errors, 1);
    else
        log_released(d, m);
    natsMsg_Destroy(m);
}

/* The queue message for a delayed one: same JSON, the job's queue subject,
 * the headers naq_enqueue sets. NULL (and *bad = 1) when the stored job
 * cannot be decoded. */
static natsMsg *queue_message(naq__due_index *d, natsMsg *stored, int *bad)
{
    naq_job j;
    natsMsg *m = NULL;
    char subject[NAQ_URL_MAX];
    const char *data = natsMsg_GetData(stored);
    int len = natsMsg_GetDataLength(stored);
    *bad = 0;
    if (naq_job_decode(data, (size_t)len, &j) != NAQ_OK ||
        naq__subject(d->c, subject, sizeof subject, "queue.%s.%d", j.queue, j.priority) != NAQ_OK) {
        *bad = 1;
        naq_job_clear(&j);
        return NULL;
    }
    const char *run_at = NULL;
    natsMsgHeader_Get(stored, "Naq-Run-At", &run_at);
    naq_status s = naq__job_msg_to(subject, j.id, j.queue, j.function, data, (size_t)len, NULL, &m);
    naq_job_clear(&j);
    if (s != NAQ_OK)
        return NULL;
    if (run_at != NULL && natsMsgHeader_Set(m, "Naq-Run-At", run_at) != NATS_OK) {
        natsMsg_Destroy(m);
        return NULL;
    }
    return m;
}

/* Reports a stored job that can never be released (it is dropped). */
static void log_undecodable(naq__due_index *d, const char *subject, uint64_t seq)
{
    char msg[NAQ_URL_MAX + NAQ_NAME_MAX * 2 + 128];
    snprintf(msg, sizeof msg,
             "delayed job at %s sequence %llu in %s is not a job this naq can read; dropped",
             subject, (unsigned long long)seq, d->c->delayed_stream);
    naq__schedule_event(d->c, NAQ_EVENT_SYSTEM_ERROR, NULL, NULL, NULL, NULL, msg, NULL);
}

/* Releases up to RELEASE_BATCH jobs of bucket b; *count gets how many were
 * read, *more whether the bucket may hold more. */
static naq_status release_bucket(naq__due_index *d, int64_t b, int *count, int *more)
{
    char subject[NAQ_URL_MAX + 24];
    snprintf(subject, sizeof subject, "%s%lld", d->prefix, (long long)b);
    jsDirectGetMsgOptions dg;
    uint64_t seq = 0, last = 0;
    int n = 0;
    natsStatus ns = NATS_OK;
    *count = 0;
    *more = 0;
    atomic_store(&d->publish_errors, 0);
    while (n < RELEASE_BATCH) {
        natsMsg *stored = NULL;
        jsDirectGetMsgOptions_Init(&dg);
        dg.NextBySubject = subject;
        dg.Sequence = seq;
        atomic_fetch_add(&d->ctr->index_reads, 1);
        ns = js_DirectGetMsg(&stored, d->js, d->c->delayed_stream, NULL, &dg);
        if (ns == NATS_NOT_FOUND) {
            ns = NATS_OK;
            break;
        }
        if (ns != NATS_OK)
            break;
        last = natsMsg_GetSequence(stored);
        seq = last + 1;
        n++;
        int bad = 0;
        natsMsg *m = queue_message(d, stored, &bad);
        natsMsg_Destroy(stored);
        if (bad) {
            log_undecodable(d, subject, last);
            continue;
        }
        if (m == NULL) {
            ns = NATS_NO_MEMORY;
            break;
        }
        ns = js_PublishMsgAsync(d->js, &m, NULL);
        natsMsg_Destroy(m); /* NULL after a successful call: the library owns it */
        if (ns != NATS_OK)
            break;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = PUBLISH_WAIT_MS;
    natsStatus done = js_PublishAsyncComplete(d->js, &po);
    if (ns == NATS_OK)
        ns = done;
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot release delayed jobs of %s", subject);
    if (atomic_load(&d->publish_errors) > 0)
        return naq__fail(NAQ_ERR_NATS,
                         "the queue refused %d delayed job(s) of %s; they stay delayed and are "
                         "retried",
                         atomic_load(&d->publish_errors), subject);
    if (n > 0) {
        /* Only what was released: a job that arrived in this bucket since
         * (sequence > last) stays, and its arrival brings us back. */
        jsErrCode jerr = 0;
        ns = naq__stream_purge(d->js, d->c->delayed_stream, subject, last + 1, &jerr);
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                                  "released the jobs of %s but cannot purge them (they will be "
                                  "released again, as duplicates the queue ignores)",
                                  subject);
    }
    atomic_fetch_add(&d->ctr->released, (uint64_t)n);
    *count = n;
    *more = n == RELEASE_BATCH;
    return NAQ_OK;
}

/* ---------------------------------------------------------------- index */

naq_status naq__due_index_open(naq_client *c, naq__sched_counters *ctr, naq__due_index **out)
{
    *out = NULL;
    naq__due_index *d = calloc(1, sizeof *d);
    if (d == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating the due index");
    d->c = c;
    d->ctr = ctr;
    naq_status s = naq__subject(c, d->prefix, sizeof d->prefix, DUE_TOKEN ".");
    if (s != NAQ_OK)
        goto fail;
    d->prefix_len = strlen(d->prefix);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    jo.PublishAsync.MaxPending = 2 * RELEASE_BATCH;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = d;
    natsStatus ns = natsConnection_JetStream(&d->js, c->nc, &jo);
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot open JetStream for the due index");
        goto fail;
    }
    if ((s = naq__delayed_stream_ensure(c, d->js)) != NAQ_OK)
        goto fail;
    char filter[sizeof d->prefix + 1];
    snprintf(filter, sizeof filter, "%s>", d->prefix);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->delayed_stream;
    so.Ordered = true;
    so.Config.HeadersOnly = true; /* the subject is all we need */
    so.Config.DeliverPolicy = js_DeliverAll;
    jsErrCode jerr = 0;
    ns = js_SubscribeSync(&d->feed, d->js, filter, NULL, &so, &jerr);
    if (ns == NATS_OK)
        ns = natsSubscription_SetPendingLimits(d->feed, -1, -1);
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot follow the delayed-job stream %s",
                           c->delayed_stream);
        goto fail;
    }
    *out = d;
    return NAQ_OK;
fail:
    naq__due_index_close(d);
    return s;
}

void naq__due_index_close(naq__due_index *d)
{
    if (d == NULL)
        return;
    natsSubscription_Destroy(d->feed);
    jsCtx_Destroy(d->js);
    naq__heap_free(&d->buckets);
    free(d);
}

size_t naq__due_index_pending(const naq__due_index *d)
{
    return d->buckets.n;
}

/* Moves every arrival waiting in the subscription into the heap. */
static naq_status take_arrivals(naq__due_index *d)
{
    for (;;) {
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, d->feed, 0);
        if (ns == NATS_TIMEOUT)
            return NAQ_OK;
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_CLOSED, ns, 0, "the delayed-job feed stopped");
        const char *subject = natsMsg_GetSubject(m);
        char *end = NULL;
        long long b = -1;
        if (strncmp(subject, d->prefix, d->prefix_len) == 0)
            b = strtoll(subject + d->prefix_len, &end, 10);
        /* Anything else on the subjects is not ours to release. */
        naq_status s = NAQ_OK;
        if (b >= 0 && end != NULL && *end == '\0')
            s = naq__heap_push(&d->buckets, b, NULL);
        natsMsg_Destroy(m);
        atomic_fetch_add(&d->ctr->index_feed, 1);
        if (s != NAQ_OK)
            return s;
    }
}

naq_status naq__due_index_tick(naq__due_index *d, int64_t now_ms, int (*still_leader)(void *),
                               void *ud)
{
    naq_status s = take_arrivals(d);
    if (s != NAQ_OK)
        return s;
    int64_t now_bucket = now_ms / 100;
    int budget = RELEASE_PER_TICK;
    while (d->buckets.n > 0 && d->buckets.v[0].key <= now_bucket && budget > 0) {
        if (!still_leader(ud))
            break;
        int64_t b = naq__heap_pop(&d->buckets).key;
        while (d->buckets.n > 0 && d->buckets.v[0].key == b)
            naq__heap_pop(&d->buckets);
        int count = 0, more = 0;
        s = release_bucket(d, b, &count, &more);
        if (s != NAQ_OK || more) {
            naq_status p = naq__heap_push(&d->buckets, b, NULL);
            if (s == NAQ_OK)
                s = p;
        }
        if (s != NAQ_OK)
            return s;
        budget -= count;
    }
    return NAQ_OK;
}
