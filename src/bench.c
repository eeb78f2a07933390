/*
 * bench.c - the figures behind `naq bench`.
 *
 * bench events compares the logger with the ceiling it is built on: the same
 * messages (subject, headers, payload size) pushed straight through
 * js_PublishMsgAsync by one thread. Both sides run alternately on the same
 * server and stream, and the best of `runs` is kept for each, so a noisy
 * neighbour penalises neither side alone.
 *
 * bench jobs measures enqueue -> completed for no-op jobs, with workers
 * running in this process while the enqueuers publish.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void naq_bench_events_opts_init(naq_bench_events_opts *o)
{
    o->events = 200000;
    o->runs = 3;
    o->payload_bytes = 300;
}

void naq_bench_jobs_opts_init(naq_bench_jobs_opts *o)
{
    o->count = 20000;
    o->workers = 2;
    o->enqueuers = 2;
    o->events = 1;
    o->queue = "bench";
}

static double elapsed_s(int64_t start_ms) { return (double)(naq__mono_ms() - start_ms) / 1000.0; }

/* A realistic event: a completed job with a message padded so the JSON is
 * about payload_bytes long. A new job id every 5 events, as in real life. */
static void bench_event(naq_event *e, int64_t i, int payload_bytes, char *message)
{
    naq_event_init(e, NAQ_EVENT_COMPLETED);
    snprintf(e->job_id, sizeof e->job_id, "bench%08lld", (long long)(i / 5));
    snprintf(e->queue_name, sizeof e->queue_name, "bench");
    snprintf(e->worker_id, sizeof e->worker_id, "bench-worker-1");
    snprintf(e->worker_type, sizeof e->worker_type, "c");
    e->attempt = 1;
    e->duration_ms = 1.25;
    int pad = payload_bytes - 240;
    if (pad < 1)
        pad = 1;
    memset(message, 'x', (size_t)pad);
    message[pad] = '\0';
    e->message = message;
}

static naq_status logger_run(const naq_config *base, const naq_bench_events_opts *o,
                             naq_bench_events_result *r, double *per_s)
{
    naq_config cfg = *base;
    /* Room for the whole run in memory: the figure is about publishing, so
     * nothing may go to the spool. */
    cfg.logger_buffer_events = o->events + 1;
    cfg.logger_buffer_bytes = (int64_t)o->events * (o->payload_bytes + 256) + (1 << 20);
    cfg.disable_logging = 0;
    naq_client *c = NULL;
    naq_status s = naq_client_connect(&cfg, &c);
    if (s != NAQ_OK)
        return s;
    char *message = malloc((size_t)o->payload_bytes + 2);
    naq_event e;
    int64_t start = naq__mono_ms();
    for (int64_t i = 0; i < o->events; i++) {
        bench_event(&e, i, o->payload_bytes, message);
        naq_client_log(c, &e);
    }
    s = naq_client_flush_events(c, 120000);
    double secs = elapsed_s(start);
    naq_logger_stats st;
    naq_client_logger_stats(c, &st);
    r->dropped += st.dropped;
    r->spooled += st.spooled;
    r->retried += st.retried;
    *per_s = (double)o->events / secs;
    naq_client_destroy(c);
    free(message);
    return s;
}

static void raw_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)pa;
    if (pae != NULL)
        atomic_fetch_add((atomic_int_least64_t *)closure, 1);
    natsMsg_Destroy(msg);
}

static naq_status raw_run(const naq_config *cfg, const naq_bench_events_opts *o,
                          naq_bench_events_result *r, double *per_s)
{
    naq_client *c = NULL;
    naq_config plain = *cfg;
    plain.disable_logging = 1;
    naq_status s = naq_client_connect(&plain, &c);
    if (s != NAQ_OK)
        return s;
    atomic_int_least64_t errors = 0;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 8192; /* as the logger */
    jo.PublishAsync.AckHandler = raw_ack;
    jo.PublishAsync.AckHandlerClosure = &errors;
    jsCtx *js = NULL;
    natsStatus ns = natsConnection_JetStream(&js, c->enc, &jo);
    char *message = malloc((size_t)o->payload_bytes + 2);
    naq_event e;
    bench_event(&e, 0, o->payload_bytes, message);
    naq_id_new(e.event_id);
    e.timestamp = naq__now();
    char *json = NULL;
    size_t len = 0;
    if (ns == NATS_OK)
        s = naq_event_encode(&e, &json, &len);
    r->payload_bytes = (int)len;
    int64_t start = naq__mono_ms();
    for (int64_t i = 0; ns == NATS_OK && s == NAQ_OK && i < o->events; i++) {
        char subject[NAQ_URL_MAX], id[NAQ_ID_SIZE];
        bench_event(&e, i, o->payload_bytes, message);
        naq_event_subject(cfg->subject_prefix, &e, subject, sizeof subject);
        naq_id_new(id);
        natsMsg *m = NULL;
        ns = natsMsg_Create(&m, subject, NULL, json, (int)len);
        if (ns == NATS_OK)
            ns = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        if (ns == NATS_OK)
            ns = natsMsgHeader_Set(m, "Naq-Event-Type", "completed");
        if (ns == NATS_OK)
            ns = natsMsgHeader_Set(m, "Naq-Queue", e.queue_name);
        if (ns == NATS_OK)
            ns = natsMsgHeader_Set(m, "Naq-Worker", e.worker_id);
        if (ns == NATS_OK)
            ns = js_PublishMsgAsync(js, &m, NULL);
        natsMsg_Destroy(m);
    }
    if (ns == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 120000;
        ns = js_PublishAsyncComplete(js, &po);
    }
    *per_s = (double)o->events / elapsed_s(start);
    if (ns != NATS_OK && s == NAQ_OK)
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "raw publish failed");
    if (s == NAQ_OK && atomic_load(&errors) > 0)
        s = naq__fail(NAQ_ERR_NATS, "%lld raw publishes were not acknowledged",
                      (long long)atomic_load(&errors));
    free(json);
    free(message);
    jsCtx_Destroy(js);
    naq_client_destroy(c);
    return s;
}

naq_status naq_bench_events(const naq_config *cfg, const naq_bench_events_opts *o,
                            naq_bench_events_result *out)
{
    memset(out, 0, sizeof *out);
    if (o->events <= 0 || o->runs <= 0 || o->payload_bytes < 100)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "bench events needs events > 0, runs > 0 and payload >= 100 bytes");
    naq_status s = NAQ_OK;
    for (int run = 0; run < o->runs && s == NAQ_OK; run++) {
        double raw = 0, logger = 0;
        if ((s = raw_run(cfg, o, out, &raw)) != NAQ_OK ||
            (s = logger_run(cfg, o, out, &logger)) != NAQ_OK)
            break;
        if (raw > out->raw_per_s)
            out->raw_per_s = raw;
        if (logger > out->logger_per_s)
            out->logger_per_s = logger;
    }
    if (out->raw_per_s > 0)
        out->ratio = out->logger_per_s / out->raw_per_s;
    return s;
}

/* ---- jobs ---- */

static naq_status noop_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    (void)job;
    (void)user;
    return NAQ_OK;
}

typedef struct {
    naq_client *client;
    const naq_bench_jobs_opts *o;
    int64_t first, last; /* ids handed to this enqueuer: [first, last) */
    naq_status status;
} enqueuer;

static void *enqueue_main(void *arg)
{
    enqueuer *q = arg;
    naq_job_opts jo;
    naq_job_opts_init(&jo);
    jo.queue = q->o->queue;
    jo.function = "noop";
    char id[NAQ_ID_SIZE];
    for (int64_t i = q->first; i < q->last && q->status == NAQ_OK; i++)
        q->status = naq_enqueue(q->client, &jo, id);
    return NULL;
}

typedef struct {
    naq_worker *w;
    naq_status status;
} worker_thread;

static void *worker_main(void *arg)
{
    worker_thread *t = arg;
    t->status = naq_worker_run(t->w);
    return NULL;
}

static uint64_t completed_total(worker_thread *ws, int n)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        naq_worker_stats st;
        naq_worker_get_stats(ws[i].w, &st);
        total += st.processed;
    }
    return total;
}

/* Jobs left by an interrupted run would be counted as ours. */
static naq_status purge_queue(naq_client *c, const char *queue)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq_id_validate("queue name", queue);
    if (s == NAQ_OK)
        s = naq__subject(c, subject, sizeof subject, "queue.%s.>", queue);
    if (s != NAQ_OK)
        return s;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Stream.Purge.Subject = subject;
    jsErrCode jerr = 0;
    natsStatus ns = js_PurgeStream(c->js, c->cfg.job_stream, &jo, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot purge queue %s", queue);
    return NAQ_OK;
}

naq_status naq_bench_jobs(const naq_config *base, const naq_bench_jobs_opts *o,
                          naq_bench_jobs_result *out)
{
    memset(out, 0, sizeof *out);
    if (o->count <= 0 || o->workers <= 0 || o->enqueuers <= 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "bench jobs needs --count, --workers > 0");
    naq_config cfg = *base;
    cfg.disable_logging = !o->events;
    naq_client *c = NULL;
    naq_status s = naq_client_connect(&cfg, &c);
    if (s != NAQ_OK)
        return s;
    if ((s = purge_queue(c, o->queue)) != NAQ_OK) {
        naq_client_destroy(c);
        return s;
    }
    worker_thread *ws = calloc((size_t)o->workers, sizeof *ws);
    pthread_t *wt = calloc((size_t)o->workers, sizeof *wt);
    enqueuer *qs = calloc((size_t)o->enqueuers, sizeof *qs);
    pthread_t *qt = calloc((size_t)o->enqueuers, sizeof *qt);
    int started = 0;
    const char *queues[] = {o->queue, NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    for (int i = 0; i < o->workers && s == NAQ_OK; i++) {
        if ((s = naq_worker_create(c, &wo, &ws[i].w)) == NAQ_OK &&
            (s = naq_worker_register(ws[i].w, "noop", noop_handler, NULL)) == NAQ_OK)
            pthread_create(&wt[started++], NULL, worker_main, &ws[i]);
    }
    int64_t start = naq__mono_ms();
    for (int i = 0; i < o->enqueuers && s == NAQ_OK; i++) {
        qs[i] = (enqueuer){c, o, o->count * i / o->enqueuers, o->count * (i + 1) / o->enqueuers,
                           NAQ_OK};
        pthread_create(&qt[i], NULL, enqueue_main, &qs[i]);
    }
    for (int i = 0; i < o->enqueuers && s == NAQ_OK; i++) {
        pthread_join(qt[i], NULL);
        if (qs[i].status != NAQ_OK)
            s = qs[i].status;
    }
    out->enqueue_per_s = (double)o->count / elapsed_s(start);
    /* Wait for the workers to finish everything (bounded: 10 minutes). */
    while (s == NAQ_OK && completed_total(ws, started) < (uint64_t)o->count &&
           naq__mono_ms() - start < 600000) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    out->seconds = elapsed_s(start);
    out->completed = completed_total(ws, started);
    out->jobs_per_s = (double)out->completed / out->seconds;
    for (int i = 0; i < started; i++)
        naq_worker_stop(ws[i].w);
    for (int i = 0; i < started; i++)
        pthread_join(wt[i], NULL);
    for (int i = 0; i < o->workers; i++)
        naq_worker_destroy(ws[i].w);
    if (s == NAQ_OK && out->completed < (uint64_t)o->count)
        s = naq__fail(NAQ_ERR_TIMEOUT, "only %llu of %lld jobs completed",
                      (unsigned long long)out->completed, (long long)o->count);
    naq_client_destroy(c);
    free(ws);
    free(wt);
    free(qs);
    free(qt);
    return s;
}
