/*
 * bench_ceiling.c - the ceiling of `naq bench jobs`: naq's message pattern
 * in plain nats.c, with no naq code on its path, to show what the server
 * allows for the same guarantees (docs/benchmarks.md).
 *
 * Producer: one job message (headers Nats-Msg-Id, queue, function; a body
 * as large as naq's job JSON) per job to the work-queue stream CEIL_JOBS,
 * with js_PublishMsg (sync) or js_PublishMsgAsync (async, prefilled), and,
 * with events on, one asynchronous "enqueued" event per job like naq's
 * enqueue logs.
 *
 * Worker (one process, one pull thread): pulls from the durable consumer
 * "ceil_workers" with raw $JS.API.CONSUMER.MSG.NEXT requests on its own
 * inbox, batch = the free handler slots (C, the handler is a no-op) plus
 * the prefetch, and an expiry. For each job it runs the no-op handler, then publishes
 * asynchronously K events (~300 B JSON, Nats-Msg-Id, literal subject
 * ceil.events.<job id>, CEIL_EVENTS) and one outcome record (~200 B,
 * ceil.outcomes.<job id>, CEIL_OUTCOMES, one per subject like a KV put),
 * and sends +ACK on the job's reply subject only when the server has
 * acknowledged all of them (from the publish-ack callback). A job waiting
 * for its confirmations holds no handler slot, but at most UNSETTLED_MAX
 * jobs per worker may wait, so memory and the consumer's ack-pending stay
 * bounded.
 */
#include "bench_jobs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JOBS_STREAM "CEIL_JOBS"
#define EVENTS_STREAM "CEIL_EVENTS"
#define OUTCOMES_STREAM "CEIL_OUTCOMES"
#define CONSUMER "ceil_workers"
#define JOB_SUBJECT "ceil.jobs.bench"
#define NEXT_SUBJECT "$JS.API.CONSUMER.MSG.NEXT." JOBS_STREAM "." CONSUMER
/* Async publishes in flight per connection (naq's logger uses 8192). */
#define MAX_PENDING 4096
/* Jobs per worker waiting for their confirmations before their ack. */
#define UNSETTLED_MAX 1024
/* As naq's consumers (worker.c). */
#define MAX_ACK_PENDING 10000
/* Expiry of one pull request (nanoseconds on the wire). */
#define PULL_EXPIRES_MS 500
#define EVENT_BYTES 300
#define OUTCOME_BYTES 200
#define WAIT_MS 120000
#define PROGRESS_MS 20

/* Records what went wrong first in this process, for BENCH_MSG_ERROR. */
static naq_status fail_ns(natsStatus ns, jsErrCode jerr, const char *what)
{
    return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "ceiling: %s", what);
}

/* Job ids: 16 hex digits of a per-run nonce and 16 of the job's index, as
 * long as naq's ids, and the index is read back from the id. */
static void job_id(char out[33], uint64_t nonce, int64_t i)
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)nonce, (unsigned long long)i);
}

static int64_t job_index(const char *id)
{
    size_t n = strlen(id);
    return n >= 16 ? (int64_t)strtoull(id + n - 16, NULL, 16) : -1;
}

/* Counts refused async publishes (the closure is an atomic counter). */
typedef struct {
    atomic_int_least64_t failed;
} pub_errors;

static void producer_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js, (void)pa;
    if (pae != NULL)
        atomic_fetch_add(&((pub_errors *)closure)->failed, 1);
    natsMsg_Destroy(msg);
}

/* send_asap: every publish is written at once instead of waiting for
 * nats.c's flusher (about 1 ms), as naq does on its latency connection:
 * right for pulls, acks and synchronous publishes, while a stream of async
 * publishes is cheaper batched. */
/* Connects as naq does (client.c): every server of a cluster's URL list,
 * and the same TLS and credentials. */
static natsStatus connect_nats(const naq_config *cfg, int send_asap, natsConnection **nc)
{
    natsOptions *o = NULL;
    natsStatus ns = natsOptions_Create(&o);
    if (ns == NATS_OK)
        ns = naq__nats_set_urls(o, cfg->url);
    if (ns == NATS_OK && send_asap)
        ns = natsOptions_SetSendAsap(o, true);
    if (ns == NATS_OK && naq__conn_secure(o, cfg, cfg->url) != NAQ_OK)
        ns = NATS_NOT_PERMITTED;
    if (ns == NATS_OK)
        ns = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return ns;
}

static natsStatus connect_js(const naq_config *cfg, int send_asap, jsPubAckHandler ack,
                             void *closure, natsConnection **nc, jsCtx **js)
{
    natsStatus ns = connect_nats(cfg, send_asap, nc);
    if (ns != NATS_OK)
        return ns;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = MAX_PENDING;
    jo.PublishAsync.AckHandler = ack;
    jo.PublishAsync.AckHandlerClosure = closure;
    jo.PublishAsync.StallWait = WAIT_MS; /* a full window waits, it does not fail */
    return natsConnection_JetStream(js, *nc, &jo);
}

static void delete_streams(jsCtx *js)
{
    const char *names[] = {JOBS_STREAM, EVENTS_STREAM, OUTCOMES_STREAM};
    for (int i = 0; i < 3; i++)
        js_DeleteStream(js, names[i], NULL, NULL); /* absent is fine */
}

/* Fresh streams, configured as naq's (client.c): file storage, a 2-minute
 * duplicate window, naq's replicas; the outcomes keep one record per
 * job's subject, as naq's outcome stream does. */
static naq_status create_streams(jsCtx *js, int replicas)
{
    const char *subj[3] = {"ceil.jobs.>", "ceil.events.>", "ceil.outcomes.>"};
    const char *names[3] = {JOBS_STREAM, EVENTS_STREAM, OUTCOMES_STREAM};
    for (int i = 0; i < 3; i++) {
        jsStreamConfig sc;
        naq__stream_config_init(&sc, names[i], &subj[i], 1, replicas);
        if (i == 0)
            sc.Retention = js_WorkQueuePolicy;
        sc.Duplicates = 120 * 1000000000LL;
        if (i == 2)
            sc.MaxMsgsPerSubject = 1;
        jsErrCode jerr = 0;
        natsStatus ns = js_AddStream(NULL, js, &sc, NULL, &jerr);
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "ceiling: cannot create stream %s",
                                  names[i]);
    }
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = CONSUMER;
    cc.FilterSubject = JOB_SUBJECT;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = 30 * 1000000000LL;
    cc.MaxAckPending = MAX_ACK_PENDING;
    cc.MaxDeliver = -1;
    cc.Replicas = replicas;
    jsErrCode jerr = 0;
    natsStatus ns = js_AddConsumer(NULL, js, JOBS_STREAM, &cc, NULL, &jerr);
    return ns == NATS_OK ? NAQ_OK : fail_ns(ns, jerr, "cannot create the consumer");
}

/* One job message: headers as naq's, a body of job_bytes holding the
 * shared payload (its enqueue time). */
static natsStatus job_msg(natsMsg **m, const naq__bench_run *r, const char *id, int64_t i)
{
    char payload[4200], body[4600];
    int wrap = snprintf(body, sizeof body, "{\"id\":\"%s\",\"queue\":\"bench\",\"args\":}", id);
    int want = r->job_bytes - wrap;
    naq__bench_job_payload(payload, sizeof payload, want < 64 ? 64 : want, naq__bench_mono_ns(), i);
    int len =
        snprintf(body, sizeof body, "{\"id\":\"%s\",\"queue\":\"bench\",\"args\":%s}", id, payload);
    natsStatus ns = natsMsg_Create(m, JOB_SUBJECT, NULL, body, len);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*m, "Nats-Msg-Id", id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*m, "Ceil-Queue", "bench");
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*m, "Ceil-Function", "noop");
    return ns;
}

/* An event of a job: ~EVENT_BYTES of JSON on its literal subject. */
static natsStatus event_msg(natsMsg **m, const char *id, const char *msg_id, const char *type,
                            const char *worker)
{
    char subject[64], fields[256], body[EVENT_BYTES + 64];
    snprintf(subject, sizeof subject, "ceil.events.%s", id);
    snprintf(fields, sizeof fields,
             "\"version\":1,\"event_id\":\"%s\",\"job_id\":\"%s\",\"event_type\":\"%s\","
             "\"timestamp\":%.6f,\"worker_id\":\"%s\",\"queue_name\":\"bench\",\"attempt\":1",
             msg_id, id, type, (double)time(NULL), worker);
    int len = naq__bench_padded_json(body, sizeof body, EVENT_BYTES, fields);
    natsStatus ns = natsMsg_Create(m, subject, NULL, body, len);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*m, "Nats-Msg-Id", msg_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*m, "Ceil-Event-Type", type);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*m, "Ceil-Queue", "bench");
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*m, "Ceil-Worker", worker);
    return ns;
}

/* js_PublishMsgAsync takes the message on success; on failure it is ours. */
static natsStatus publish_async(jsCtx *js, natsMsg *m)
{
    natsStatus ns = js_PublishMsgAsync(js, &m, NULL);
    natsMsg_Destroy(m);
    return ns;
}

/* Publishes jobs [0, count): synchronously, or asynchronously (async,
 * prefilled), paced at rate when it is set; each followed by its
 * "enqueued" event when events are on. */
static naq_status publish_jobs(jsCtx *js, const naq__bench_run *r, uint64_t nonce, int async,
                               naq__bench_chan *progress, naq__bench_produced *p)
{
    const naq_bench_jobs_opts *o = r->o;
    int64_t period = o->rate > 0 ? (int64_t)(1e9 / o->rate) : 0;
    natsStatus ns = NATS_OK;
    jsErrCode jerr = 0;
    p->first_ns = naq__bench_mono_ns();
    for (int64_t i = 0; ns == NATS_OK && i < o->count; i++) {
        char id[33], eid[40];
        job_id(id, nonce, i);
        if (period > 0)
            naq__bench_sleep_until_ns(p->first_ns + i * period);
        natsMsg *m = NULL;
        ns = job_msg(&m, r, id, i);
        if (ns == NATS_OK && async) {
            ns = publish_async(js, m);
        } else if (ns == NATS_OK) {
            jsPubAck *pa = NULL;
            ns = js_PublishMsg(&pa, js, m, NULL, &jerr);
            jsPubAck_Destroy(pa);
            natsMsg_Destroy(m);
        } else {
            natsMsg_Destroy(m);
        }
        if (ns == NATS_OK && o->events) {
            snprintf(eid, sizeof eid, "enq-%s", id);
            ns = event_msg(&m, id, eid, "enqueued", "");
            if (ns == NATS_OK)
                ns = publish_async(js, m);
            else
                natsMsg_Destroy(m);
        }
        if (progress != NULL && ns == NATS_OK && (i + 1) % 1000 == 0) {
            int64_t done = i + 1;
            naq__bench_send(progress, BENCH_MSG_PROGRESS, &done, sizeof done);
        }
    }
    if (ns == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = WAIT_MS;
        ns = js_PublishAsyncComplete(js, &po);
    }
    p->last_ns = naq__bench_mono_ns();
    return ns == NATS_OK ? NAQ_OK : fail_ns(ns, jerr, "publishing the jobs");
}

int naq__bench_ceiling_producer(naq__bench_chan *ch, void *arg)
{
    const naq__bench_run *r = arg;
    const naq_bench_jobs_opts *o = r->o;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    pub_errors errs;
    atomic_init(&errs.failed, 0);
    naq__bench_produced p = {0, 0};
    int rc = 1;
    uint64_t nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)naq__bench_mono_ns();
    int sync = o->mode == NAQ_BENCH_SYNC || o->rate > 0;
    natsStatus ns = connect_js(&r->cfg, sync, producer_ack, &errs, &nc, &js);
    if (ns != NATS_OK) {
        fail_ns(ns, 0, "cannot connect");
        rc = naq__bench_fail(ch, "ceiling producer");
        goto out;
    }
    delete_streams(js); /* what an interrupted run left */
    if (create_streams(js, r->cfg.replicas) != NAQ_OK) {
        rc = naq__bench_fail(ch, "ceiling producer");
        goto out;
    }
    int prefilled = o->mode == NAQ_BENCH_PREFILLED;
    if (prefilled && publish_jobs(js, r, nonce, 1, ch, &p) != NAQ_OK) {
        rc = naq__bench_fail(ch, "ceiling prefill");
        goto out;
    }
    if (naq__bench_send(ch, BENCH_MSG_READY, NULL, 0) != 0)
        goto out;
    if (!prefilled) {
        if (naq__bench_wait(ch, -1) != BENCH_CMD_GO)
            goto out;
        int async = o->mode == NAQ_BENCH_ASYNC && o->rate <= 0;
        if (publish_jobs(js, r, nonce, async, NULL, &p) != NAQ_OK) {
            rc = naq__bench_fail(ch, "ceiling producer");
            goto out;
        }
    }
    if (atomic_load(&errs.failed) > 0) {
        naq__fail(NAQ_ERR_NATS, "%lld publishes were refused",
                  (long long)atomic_load(&errs.failed));
        rc = naq__bench_fail(ch, "ceiling producer");
        goto out;
    }
    if (naq__bench_send(ch, BENCH_MSG_PRODUCED, &p, sizeof p) != 0 ||
        naq__bench_wait(ch, -1) != BENCH_CMD_END)
        goto out;
    rc = 0;
out:
    if (js != NULL)
        delete_streams(js);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

/* ---- the worker ---- */

typedef struct {
    natsConnection *nc; /* the records (async publishes, batched) */
    jsCtx *js;
    natsConnection *lc; /* pulls and acks, each sent at once (send_asap) */
    const naq__bench_run *r;
    char worker_id[48];
    pthread_mutex_t mu; /* guards the slots below */
    pthread_cond_t freed;
    int remaining[UNSETTLED_MAX]; /* confirmations still awaited */
    int failed[UNSETTLED_MAX];    /* a publish of the job was refused */
    char reply[UNSETTLED_MAX][192];
    int free_slots[UNSETTLED_MAX];
    int nfree;
    int32_t *slot_of; /* job index -> slot; heap (count entries), freed by the worker */
    atomic_int_least64_t refused;
} ceil_worker;

/* Publish-ack callback (a nats.c thread): counts the job's confirmation
 * down and acknowledges the job after its last. Never publishes under mu:
 * a stalled js_PublishMsgAsync in the pull thread must not block it. */
static void worker_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js, (void)pa;
    ceil_worker *w = closure;
    const char *subject = natsMsg_GetSubject(msg);
    const char *dot = subject ? strrchr(subject, '.') : NULL;
    int64_t i = dot ? job_index(dot + 1) : -1;
    char reply[192] = "";
    int ack = 0;
    if (pae != NULL)
        atomic_fetch_add(&w->refused, 1);
    int s = -1;
    if (i >= 0 && i < w->r->o->count) {
        pthread_mutex_lock(&w->mu);
        s = w->slot_of[i];
        if (s >= 0) {
            w->failed[s] |= pae != NULL;
            if (--w->remaining[s] == 0) {
                ack = !w->failed[s];
                memcpy(reply, w->reply[s], sizeof reply);
                w->slot_of[i] = -1;
            } else {
                s = -1;
            }
        }
        pthread_mutex_unlock(&w->mu);
    }
    if (ack && reply[0] != '\0')
        natsConnection_Publish(w->lc, reply, "+ACK", 4);
    if (s >= 0) { /* freed after the ack is written, so the end can flush it */
        pthread_mutex_lock(&w->mu);
        w->free_slots[w->nfree++] = s;
        pthread_cond_signal(&w->freed);
        pthread_mutex_unlock(&w->mu);
    }
    natsMsg_Destroy(msg);
}

/* Runs the no-op handler on one job and gives it an unsettled slot (one
 * is free: pulls never ask for more jobs than there are free slots);
 * jid receives its id. */
static natsStatus take(ceil_worker *w, natsMsg *m, naq__bench_tally *t, char jid[33])
{
    int64_t entry = naq__bench_mono_ns();
    char head[256];
    int dl = natsMsg_GetDataLength(m);
    if (dl > (int)sizeof head - 1)
        dl = (int)sizeof head - 1;
    memcpy(head, natsMsg_GetData(m), (size_t)dl);
    head[dl] = '\0';
    naq__bench_tally_job(t, entry, head); /* the no-op handler */

    const char *id = NULL;
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK)
        return NATS_ERR;
    snprintf(jid, 33, "%s", id);
    int64_t i = job_index(jid);
    if (i < 0 || i >= w->r->o->count)
        return NATS_ERR;
    pthread_mutex_lock(&w->mu);
    int s = w->free_slots[--w->nfree];
    w->remaining[s] = w->r->events_per_job + 1;
    w->failed[s] = 0;
    snprintf(w->reply[s], sizeof w->reply[s], "%s", natsMsg_GetReply(m) ? natsMsg_GetReply(m) : "");
    w->slot_of[i] = s;
    pthread_mutex_unlock(&w->mu);
    return NATS_OK;
}

/* Publishes the events and the outcome of a job that ran; its ack follows
 * from worker_ack. */
static natsStatus record(ceil_worker *w, const char *jid)
{
    static const char *const types[] = {"dequeued",  "worker_assigned", "started",
                                        "completed", "worker_released", "result_stored"};
    int k = w->r->events_per_job;
    natsStatus ns = NATS_OK;
    for (int e = 0; ns == NATS_OK && e < k; e++) {
        char eid[48];
        snprintf(eid, sizeof eid, "%s-%d", jid, e);
        natsMsg *em = NULL;
        ns = event_msg(&em, jid, eid, types[e % 6], w->worker_id);
        ns = ns == NATS_OK ? publish_async(w->js, em) : (natsMsg_Destroy(em), ns);
    }
    if (ns == NATS_OK) {
        char subject[64], fields[160], body[OUTCOME_BYTES + 64];
        snprintf(subject, sizeof subject, "ceil.outcomes.%s", jid);
        snprintf(fields, sizeof fields,
                 "\"status\":\"completed\",\"attempt\":1,\"finished_at\":%.6f,\"job_id\":\"%s\"",
                 (double)time(NULL), jid);
        int len = naq__bench_padded_json(body, sizeof body, OUTCOME_BYTES, fields);
        natsMsg *om = NULL;
        ns = natsMsg_Create(&om, subject, NULL, body, len);
        ns = ns == NATS_OK ? publish_async(w->js, om) : (natsMsg_Destroy(om), ns);
    }
    return ns;
}

static int is_status(natsMsg *m)
{
    const char *status = NULL;
    return natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", &status) == NATS_OK;
}

/* Asks for as many jobs as there are free handler slots (C: the handler
 * is a no-op) plus the prefetch, but no more than there are unsettled
 * slots free; when none
 * is, waits a moment for one (wait != 0) or leaves it to the next round. */
static natsStatus request_jobs(ceil_worker *w, const char *inbox, int wait, int *outstanding)
{
    pthread_mutex_lock(&w->mu);
    if (w->nfree == 0 && wait) { /* every slot waits for confirmations */
        struct timespec until = naq__deadline(CLOCK_REALTIME, PROGRESS_MS);
        pthread_cond_timedwait(&w->freed, &w->mu, &until);
    }
    int prefetch =
        w->r->o->prefetch == NAQ_PREFETCH_AUTO ? NAQ_PREFETCH_AUTO_MAX : w->r->o->prefetch;
    int want = w->r->o->concurrency + prefetch;
    int batch = w->nfree < want ? w->nfree : want;
    pthread_mutex_unlock(&w->mu);
    if (batch == 0)
        return NATS_OK;
    char body[96];
    snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld}", batch,
             (long long)PULL_EXPIRES_MS * 1000000LL);
    *outstanding = batch;
    return natsConnection_PublishRequestString(w->lc, NEXT_SUBJECT, inbox, body);
}

static naq_status work(ceil_worker *w, naq__bench_chan *ch, naq__bench_tally *t)
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    natsStatus ns = natsInbox_Create(&inbox);
    if (ns == NATS_OK)
        ns = natsConnection_SubscribeSync(&sub, w->lc, (const char *)inbox);
    if (ns != NATS_OK) {
        natsInbox_Destroy(inbox);
        return fail_ns(ns, 0, "cannot subscribe to a pull inbox");
    }
    if (naq__bench_send(ch, BENCH_MSG_READY, NULL, 0) != 0 ||
        naq__bench_wait(ch, -1) != BENCH_CMD_GO) {
        natsSubscription_Destroy(sub);
        natsInbox_Destroy(inbox);
        return naq__fail(NAQ_ERR_CLOSED, "the parent is gone");
    }
    int outstanding = 0, cmd = 0;
    int64_t reported = -1, next_check = 0;
    while (ns == NATS_OK && cmd == 0) {
        int64_t now = naq__bench_mono_ns();
        if (now >= next_check) {
            next_check = now + PROGRESS_MS * 1000000LL;
            cmd = naq__bench_wait(ch, 0);
            int64_t n = atomic_load(&t->handled);
            if (n != reported && naq__bench_send(ch, BENCH_MSG_PROGRESS, &n, sizeof n) == 0)
                reported = n;
            if (cmd != 0)
                break;
        }
        if (outstanding == 0) {
            ns = request_jobs(w, (const char *)inbox, 1, &outstanding);
            continue;
        }
        natsMsg *m = NULL;
        natsStatus rs = natsSubscription_NextMsg(&m, sub, PROGRESS_MS);
        if (rs == NATS_TIMEOUT)
            continue;
        if (rs != NATS_OK) {
            ns = rs;
            break;
        }
        if (is_status(m)) {
            outstanding = 0; /* 408 expired, 404 nothing, 409: ask again */
            natsMsg_Destroy(m);
        } else {
            /* The handler returned, so its slot is free: the next pull
             * goes out before this job's records, and overlaps them. */
            outstanding--;
            char jid[33];
            ns = take(w, m, t, jid);
            natsMsg_Destroy(m);
            if (ns == NATS_OK && outstanding == 0)
                ns = request_jobs(w, (const char *)inbox, 0, &outstanding);
            if (ns == NATS_OK)
                ns = record(w, jid);
        }
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(inbox);
    if (ns != NATS_OK)
        return fail_ns(ns, 0, "pulling or publishing");
    if (cmd != BENCH_CMD_STOP)
        return naq__fail(NAQ_ERR_CLOSED, "the parent is gone");
    /* Every job's confirmations, then every ack on the wire. */
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = WAIT_MS;
    ns = js_PublishAsyncComplete(w->js, &po);
    int64_t deadline = naq__bench_mono_ns() + WAIT_MS * 1000000LL;
    pthread_mutex_lock(&w->mu);
    while (w->nfree < UNSETTLED_MAX && naq__bench_mono_ns() < deadline) {
        pthread_mutex_unlock(&w->mu);
        naq__sleep_ms(1);
        pthread_mutex_lock(&w->mu);
    }
    int unsettled = UNSETTLED_MAX - w->nfree;
    pthread_mutex_unlock(&w->mu);
    if (ns == NATS_OK)
        ns = natsConnection_FlushTimeout(w->lc, WAIT_MS);
    if (ns != NATS_OK)
        return fail_ns(ns, 0, "waiting for the last confirmations");
    if (unsettled > 0 || atomic_load(&w->refused) > 0)
        return naq__fail(NAQ_ERR_NATS, "%d jobs unsettled, %lld publishes refused", unsettled,
                         (long long)atomic_load(&w->refused));
    return NAQ_OK;
}

int naq__bench_ceiling_worker(naq__bench_chan *ch, void *arg)
{
    const naq__bench_run *r = arg;
    ceil_worker *w = calloc(1, sizeof *w); /* freed at the end of this function */
    naq__bench_tally t = {0};
    int rc = 1;
    if (w == NULL || naq__bench_tally_init(&t, r->o->count) != NAQ_OK) {
        naq__fail(NAQ_ERR_NO_MEMORY, "out of memory");
        rc = naq__bench_fail(ch, "ceiling worker");
        free(w);
        free(t.samples);
        return rc;
    }
    w->r = r;
    snprintf(w->worker_id, sizeof w->worker_id, "ceil-%ld", (long)getpid());
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->freed, NULL);
    for (int i = 0; i < UNSETTLED_MAX; i++)
        w->free_slots[i] = UNSETTLED_MAX - 1 - i;
    w->nfree = UNSETTLED_MAX;
    atomic_init(&w->refused, 0);
    w->slot_of = malloc((size_t)r->o->count * sizeof *w->slot_of);
    natsStatus ns =
        w->slot_of ? connect_js(&r->cfg, 0, worker_ack, w, &w->nc, &w->js) : NATS_NO_MEMORY;
    if (ns == NATS_OK)
        ns = connect_nats(&r->cfg, 1, &w->lc);
    if (ns != NATS_OK) {
        fail_ns(ns, 0, "cannot connect");
        rc = naq__bench_fail(ch, "ceiling worker");
    } else {
        memset(w->slot_of, 0xff, (size_t)r->o->count * sizeof *w->slot_of); /* all -1 */
        if (work(w, ch, &t) != NAQ_OK)
            rc = naq__bench_fail(ch, "ceiling worker");
        else
            rc = naq__bench_tally_report(&t, ch) == 0 ? 0 : 1;
    }
    jsCtx_Destroy(w->js);
    natsConnection_Destroy(w->nc);
    natsConnection_Destroy(w->lc);
    pthread_cond_destroy(&w->freed);
    pthread_mutex_destroy(&w->mu);
    free(w->slot_of);
    free(w);
    free(t.samples);
    return rc;
}
