/*
 * worker.c - the worker runtime: options, handlers, consumers, and the
 * thread that called naq_worker_run (the keeper). Finding jobs is in
 * worker_pull.c, running one in worker_job.c, the handler's context in
 * job_ctx.c; worker_int.h says what they share.
 *
 * Threads. naq_worker_run() starts `concurrency` executor threads; the
 * calling thread becomes the keeper. Each executor loops: find a job, run
 * it, log, settle its message. The keeper, every KEEPER_TICK_MS, sends
 * in-progress acks (+WPI) for every running job each ack_wait/3 so a long
 * job is never delivered twice, flags jobs that ran past their timeout
 * (their context reads as cancelled), re-creates consumers that went
 * missing, and carries out a stop. A worker that dies never acknowledges,
 * so the server delivers its jobs again after the ack wait: that is how a
 * killed worker's job runs again.
 *
 * Stopping (issue 4). The first naq_worker_stop() stops the executors from
 * taking jobs; running jobs get grace_ms to finish. Past it, or at once on
 * a second stop, the keeper hands every job still running back to the
 * queue (a nak without delay, after logging why) and raises its cancel
 * flag; another worker can take it right away. naq_worker_run returns
 * when every handler has returned, and worker_stopped says "graceful" (one
 * stop) or "forced" (two) and how many jobs were handed back.
 */
#include "worker.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define KEEPER_TICK_MS 50
/* Minimum time between attempts to re-create lost consumers. */
#define CONSUMER_RETRY_MS 2000
/* Unacknowledged jobs one consumer allows across all its workers; the
 * server default (1000) would cap a large fleet. Jobs waiting out a
 * delayed retry count too. */
#define MAX_ACK_PENDING 10000
#define MAX_CONCURRENCY 4096
#define DEFAULT_GRACE_MS 30000
/* At a stop, how long outcomes on their way may take to be acknowledged. */
#define SETTLE_WAIT_MS 5000
/* The JetStream API prefix (naq uses no JetStream domain). */
#define JS_API "$JS.API"

int naq__worker_stopping(naq_worker *w)
{
    return atomic_load(&w->stop_requests) > 0;
}

/* How often a running job's message gets +WPI: three times per ack wait,
 * so one lost in-progress ack does not cause a redelivery. With no ack
 * wait configured the server's default (30 s) applies. */
int64_t naq__worker_wpi_ms(const naq_worker *w)
{
    int64_t ack_wait = w->client->cfg.ack_wait_ms > 0 ? w->client->cfg.ack_wait_ms : 30000;
    return ack_wait / 3 > 0 ? ack_wait / 3 : 1;
}

/* ---- options, handlers, consumers ---- */

void naq_worker_opts_init(naq_worker_opts *o)
{
    memset(o, 0, sizeof *o);
    o->concurrency = 1;
    o->grace_ms = DEFAULT_GRACE_MS;
    o->prefetch = NAQ_PREFETCH_AUTO;
}

/* "<short hostname>-<pid>-<4 hex>", with characters a subject token cannot
 * hold replaced by '-'. */
/* JetStream's "temporarily unavailable": no meta leader right now. */
#define JS_CLUSTER_NOT_AVAILABLE 10008

/* Creates (or updates) a job consumer. While a cluster elects a leader
 * the request goes unanswered or is refused as temporarily unavailable:
 * tried again, three times in all, so a worker starting then still
 * starts. */
static natsStatus add_consumer(naq_client *c, jsConsumerConfig *cc, jsErrCode *jerr)
{
    natsStatus ns = NATS_OK;
    for (int attempt = 0; attempt < 3; attempt++) {
        *jerr = 0;
        ns = js_AddConsumer(NULL, c->js, c->cfg.job_stream, cc, NULL, jerr);
        if (ns != NATS_TIMEOUT && *jerr != JS_CLUSTER_NOT_AVAILABLE)
            break;
        nats_Sleep(500);
    }
    return ns;
}

naq_status naq__worker_ensure_consumers(naq_worker *w)
{
    naq_client *c = w->client;
    for (int q = 0; q < w->nqueues; q++) {
        naq__queue_state *qs = &w->queues[q];
        for (int level = 0; level < NAQ_PRIORITY_LEVELS; level++) {
            char filter[NAQ_URL_MAX];
            naq_status s = naq__subject(c, filter, sizeof filter, "queue.%s.%d", qs->name, level);
            if (s != NAQ_OK)
                return s;
            jsConsumerConfig cc;
            jsConsumerConfig_Init(&cc);
            cc.Durable = qs->consumer[level];
            cc.FilterSubject = filter;
            cc.DeliverPolicy = js_DeliverAll;
            cc.AckPolicy = js_AckExplicit;
            cc.AckWait = c->cfg.ack_wait_ms > 0 ? c->cfg.ack_wait_ms * 1000000LL /* ns */
                                                : 0;                             /* default */
            cc.MaxAckPending = MAX_ACK_PENDING;
            cc.MaxDeliver = -1;
            /* On an existing durable this updates it (server 2.9.10), so a
             * changed NAQ_ACK_WAIT takes effect; the last worker wins. */
            jsErrCode jerr = 0;
            natsStatus ns = add_consumer(c, &cc, &jerr);
            if (ns != NATS_OK)
                return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                                      "cannot create or update consumer %s on stream %s for queue "
                                      "'%s'",
                                      qs->consumer[level], c->cfg.job_stream, qs->name);
        }
    }
    return NAQ_OK;
}

static naq_status add_queue(naq_worker *w, const char *name)
{
    naq_status s = naq_id_validate("queue name", name);
    if (s != NAQ_OK)
        return s;
    for (int i = 0; i < w->nqueues; i++)
        if (strcmp(w->queues[i].name, name) == 0)
            return NAQ_OK; /* listed twice: served once */
    naq__queue_state *qs = &w->queues[w->nqueues];
    snprintf(qs->name, sizeof qs->name, "%s", name);
    for (int level = 0; level < NAQ_PRIORITY_LEVELS; level++) {
        snprintf(qs->consumer[level], sizeof qs->consumer[level], "naq_%s_p%d", name, level);
        int n = snprintf(qs->next_subject[level], sizeof qs->next_subject[level],
                         JS_API ".CONSUMER.MSG.NEXT.%s.%s", w->client->cfg.job_stream,
                         qs->consumer[level]);
        if (n < 0 || (size_t)n >= sizeof qs->next_subject[level])
            return naq__fail(NAQ_ERR_INVALID_ARG, "queue name '%s' is too long", name);
    }
    w->nqueues++;
    return NAQ_OK;
}

naq_status naq_worker_create(naq_client *c, const naq_worker_opts *o, naq_worker **out)
{
    if (out != NULL)
        *out = NULL;
    if (c == NULL || o == NULL || out == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_worker_create needs a client, options and an "
                                              "out-parameter");
    int nq = 0;
    while (o->queues != NULL && o->queues[nq] != NULL)
        nq++;
    if (nq == 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "a worker needs at least one queue; set naq_worker_opts.queues to a "
                         "NULL-terminated list such as {\"default\", NULL}");
    int conc = o->concurrency == 0 ? 1 : o->concurrency;
    if (o->autoscale_max > 0)
        conc = o->autoscale_max; /* one executor per slot it may grow to */
    if (o->autoscale_max > 0 && (o->autoscale_min < 1 || o->autoscale_min > o->autoscale_max))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "autoscale %d:%d is not a range; use MIN:MAX with 1 <= MIN <= MAX",
                         o->autoscale_min, o->autoscale_max);
    if (conc < 1 || conc > MAX_CONCURRENCY)
        return naq__fail(NAQ_ERR_INVALID_ARG, "concurrency %d is out of range; use 1 to %d", conc,
                         MAX_CONCURRENCY);
    if (o->prefetch != NAQ_PREFETCH_AUTO && (o->prefetch < 0 || o->prefetch > MAX_CONCURRENCY))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "prefetch %d is out of range; use 0 to %d, or NAQ_PREFETCH_AUTO",
                         o->prefetch, MAX_CONCURRENCY);
    naq_status s;
    if (o->worker_id != NULL && (s = naq_id_validate("worker id", o->worker_id)) != NAQ_OK)
        return s;

    naq_worker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating a worker");
    w->client = c;
    w->concurrency = conc;
    w->autoscale_min = o->autoscale_max > 0 ? o->autoscale_min : 0;
    atomic_init(&w->slots_now, w->autoscale_min > 0 ? w->autoscale_min : conc);
    w->prefetch = o->prefetch;
    w->grace_ms = o->grace_ms;
    pthread_mutex_init(&w->slots_lock, NULL);
    if (o->worker_id != NULL)
        snprintf(w->id, sizeof w->id, "%s", o->worker_id);
    else
        naq__host_pid_id(w->id);
    w->queues = calloc((size_t)nq, sizeof *w->queues);
    w->execs = calloc((size_t)conc, sizeof *w->execs);
    w->slots = calloc((size_t)conc, sizeof *w->slots);
    if (w->queues == NULL || w->execs == NULL || w->slots == NULL) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating a worker");
        goto fail;
    }
    if ((s = naq_id_validate("worker id", w->id)) != NAQ_OK)
        goto fail;
    for (int i = 0; i < nq; i++)
        if ((s = add_queue(w, o->queues[i])) != NAQ_OK)
            goto fail;
    if ((s = naq_worker_register(w, NAQ_EXEC_FUNCTION, naq__exec_handler, NULL)) != NAQ_OK)
        goto fail;
    if ((s = naq__worker_ensure_consumers(w)) != NAQ_OK)
        goto fail;
    *out = w;
    return NAQ_OK;
fail:
    naq_worker_destroy(w);
    return s;
}

void naq_worker_destroy(naq_worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_destroy(&w->slots_lock);
    free(w->handlers);
    free(w->queues);
    free(w->execs);
    free(w->slots);
    free(w);
}

naq_status naq_worker_register(naq_worker *w, const char *name, naq_handler_fn fn, void *user)
{
    naq_status s = naq__function_validate(name);
    if (s != NAQ_OK)
        return s;
    if (fn == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "handler for '%s' is NULL", name);
    if (atomic_load(&w->running))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "cannot register '%s' while the worker runs; register handlers before "
                         "naq_worker_run",
                         name);
    for (int i = 0; i < w->nhandlers; i++) {
        if (strcmp(w->handlers[i].name, name) == 0) {
            w->handlers[i].fn = fn;
            w->handlers[i].user = user;
            return NAQ_OK;
        }
    }
    naq__handler_entry *h = realloc(w->handlers, ((size_t)w->nhandlers + 1) * sizeof *h);
    if (h == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory registering handler '%s'", name);
    w->handlers = h;
    h += w->nhandlers++;
    snprintf(h->name, sizeof h->name, "%s", name);
    h->fn = fn;
    h->user = user;
    return NAQ_OK;
}

const naq__handler_entry *naq__worker_find_handler(const naq_worker *w, const char *name)
{
    for (int i = 0; i < w->nhandlers; i++)
        if (strcmp(w->handlers[i].name, name) == 0)
            return &w->handlers[i];
    return NULL;
}

const char *naq_worker_id(const naq_worker *w)
{
    return w->id;
}

void naq_worker_stop(naq_worker *w)
{
    /* Only a lock-free atomic: callable from a signal handler. */
    if (w != NULL)
        atomic_fetch_add(&w->stop_requests, 1);
}

void naq_worker_get_stats(naq_worker *w, naq_worker_stats *out)
{
    out->processed = atomic_load(&w->processed);
    out->completed = atomic_load(&w->completed);
    out->failed = atomic_load(&w->failed);
    out->retried = atomic_load(&w->retried);
    out->dead_lettered = atomic_load(&w->dead_lettered);
    out->cancelled = atomic_load(&w->cancelled);
    out->expired = atomic_load(&w->expired);
    out->handed_back = (uint64_t)atomic_load(&w->handed_back);
    out->active = atomic_load(&w->active);
    out->prefetch = atomic_load(&w->prefetch_now);
    out->concurrency = atomic_load(&w->slots_now);
}

/* ---- events, acks, errors ---- */

void naq__worker_job_event(naq_event *e, naq_event_type type, const naq_worker *w, const naq_job *j)
{
    naq_event_init(e, type);
    memcpy(e->job_id, j->id, sizeof e->job_id);
    memcpy(e->queue_name, j->queue, sizeof e->queue_name);
    memcpy(e->worker_id, w->id, sizeof e->worker_id);
    memcpy(e->worker_type, "c", 2);
    memcpy(e->schedule_id, j->schedule_id, sizeof e->schedule_id);
    e->attempt = j->attempt;
    e->tags_json = j->tags_json;
}

/* The JetStream ack protocol on the message's reply subject (natsMsg_Ack
 * needs a JetStream subscription, which plain pulls do not have). */
static int send_ack(naq_worker *w, natsConnection *nc, const char *reply, const char *body)
{
    if (reply == NULL || reply[0] == '\0')
        return -1;
    natsStatus ns = natsConnection_PublishString(nc, reply, body);
    if (ns != NATS_OK) {
        naq__log(NAQ_LOG_WARN,
                 "naq worker %s: cannot send %s for a job (%s); it will be delivered "
                 "again after the ack wait\n",
                 w->id, body, natsStatus_GetText(ns));
        return -1;
    }
    return 0;
}

int naq__worker_ack(naq_worker *w, const char *reply, const char *body)
{
    return send_ack(w, w->ack_nc, reply, body);
}

int naq__worker_ack_now(naq_worker *w, const char *reply, const char *body)
{
    return send_ack(w, w->nc, reply, body);
}

void naq__worker_error(naq_worker *w, const char *error_type, const char *fmt, ...)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&w->pull_failing, &expected, 1))
        return; /* reported already; once per episode */
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    naq__log(NAQ_LOG_ERROR, "naq worker %s: %s", w->id, msg);
    naq__registry_error(w->registry, error_type, msg);
}

void naq__worker_error_cleared(naq_worker *w)
{
    if (atomic_load_explicit(&w->pull_failing, memory_order_relaxed))
        atomic_store(&w->pull_failing, 0);
}

/* ---- the keeper (the thread that called naq_worker_run) ---- */

/* Job messages an executor has run, destroyed together. nats.c hands
 * every destroyed message to its collector thread and wakes that thread
 * if it sleeps: one wake-up per job, a third of a worker's wake-ups at
 * full speed (docs/benchmarks.md). In a batch the thread wakes once. */
#define SPENT_MAX 32
#define SPENT_MAX_BYTES (256 * 1024)

typedef struct {
    natsMsg *m[SPENT_MAX];
    int n;
    int64_t bytes;
} spent_msgs;

static void spent_destroy(spent_msgs *sp)
{
    for (int i = 0; i < sp->n; i++)
        natsMsg_Destroy(sp->m[i]);
    sp->n = 0;
    sp->bytes = 0;
}

static void spent_add(spent_msgs *sp, natsMsg *m)
{
    sp->m[sp->n++] = m;
    sp->bytes += natsMsg_GetDataLength(m);
    if (sp->n == SPENT_MAX || sp->bytes >= SPENT_MAX_BYTES)
        spent_destroy(sp);
}

static void *executor_main(void *arg)
{
    naq__executor *x = arg;
    naq_worker *w = x->w;
    spent_msgs spent = {.n = 0};
    while (!naq__worker_stopping(w)) {
        natsMsg *m = naq__worker_next_job(x);
        if (m != NULL) {
            /* Taken even if a stop came meanwhile: run it rather than
             * leave it to wait out the ack wait. */
            naq__worker_run_message(x, m);
            spent_add(&spent, m);
            naq__worker_job_done(x);
        } else {
            spent_destroy(&spent); /* idle: nothing to batch with */
        }
    }
    spent_destroy(&spent);
    atomic_fetch_sub(&w->live_executors, 1);
    return NULL;
}

/* stop_at: monotonic ms of the first stop seen, 0 before. */
static void keeper_tick(naq_worker *w, int64_t *next_consumer_retry, int64_t *stop_at)
{
    int64_t now = naq__mono_ms();
    int64_t wpi = naq__worker_wpi_ms(w);
    int stops = atomic_load(&w->stop_requests);
    if (stops > 0 && *stop_at == 0) {
        *stop_at = now;
        naq__registry_stopping(w->registry); /* status: stopping */
    }
    int hand_back = stops >= 2 || (stops == 1 && w->grace_ms >= 0 && now - *stop_at >= w->grace_ms);
    pthread_mutex_lock(&w->slots_lock);
    for (int i = 0; i < w->concurrency; i++) {
        naq__slot *sl = &w->slots[i];
        if (sl->state == SLOT_IDLE || sl->state == SLOT_HANDED_BACK)
            continue;
        if (sl->state == SLOT_RUNNING && hand_back && naq__worker_hand_back(w, i))
            continue;
        if (sl->deadline_ms > 0 && now >= sl->deadline_ms && !naq__flag_get(&sl->ctx->timed_out)) {
            naq__flag_set(&sl->ctx->timed_out);
            naq__flag_set(&sl->ctx->cancel);
        }
        if (now >= sl->next_wpi_ms && sl->reply[0] != '\0') {
            naq__worker_ack(w, sl->reply, "+WPI");
            sl->next_wpi_ms = now + wpi;
        }
    }
    pthread_mutex_unlock(&w->slots_lock);
    naq__fetcher_in_progress(w->fetcher, wpi);
    naq__ack_sink_in_progress(w->sink, wpi);
    if (w->autoscale_min > 0 && stops == 0)
        naq__autoscale_tick(w, now);
    if (atomic_load(&w->consumers_lost) && now >= *next_consumer_retry) {
        *next_consumer_retry = now + CONSUMER_RETRY_MS;
        if (naq__worker_ensure_consumers(w) == NAQ_OK)
            atomic_store(&w->consumers_lost, 0);
        else
            naq__worker_error(w, "ConsumerLost", "%s; retrying", naq_last_error());
    }
}

/* Puts the worker in the registry (naq_workers): from then on it is ready. */
static naq_status register_worker(naq_worker *w)
{
    const char **names = calloc((size_t)w->nqueues + 1, sizeof *names);
    if (names == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory starting worker %s", w->id);
    for (int i = 0; i < w->nqueues; i++)
        names[i] = w->queues[i].name;
    naq__registry_info info = {w->id, names, atomic_load(&w->slots_now)};
    naq_status s = naq__registry_start(w->client, &info, &w->registry);
    free(names);
    return s;
}

naq_status naq_worker_run(naq_worker *w)
{
    if (w == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_worker_run needs a worker");
    int expected = 0;
    if (!atomic_compare_exchange_strong(&w->running, &expected, 1))
        return naq__fail(NAQ_ERR_INVALID_ARG, "worker %s is already running", w->id);

    /* Two connections of the worker's own. One, whose publishes go out at
     * once, carries its pull requests (a job waits for those) and the
     * doorbells of empty levels (worker_pull.c). The other
     * carries acks and in-progress acks, batched by nats.c's flusher
     * (about 1 ms later, and far fewer writes for the server to read: sent
     * at once, 10-20% fewer jobs/s on a full queue). Not the client's
     * connection: there they queued behind the events, and under load an
     * ack came seconds late, after the ack wait, so thousands of jobs ran
     * twice (docs/benchmarks.md, "Acks behind events"). Outcome records
     * stay there, batched with the events: an ack waits for both. An ack
     * alone, far from the worker's last one, goes out at once on the
     * first connection instead (worker_job.c, settlement_confirm).
     * They open before the worker registers: registered is what "ready"
     * means to others, so a ready worker can be stopped at once. */
    naq_status s;
    if ((s = naq__client_open_conn(w->client, NAQ__CONN_SEND_ASAP | NAQ__CONN_SHARED_DELIVERY,
                                   &w->nc)) != NAQ_OK ||
        (s = naq__client_open_conn(w->client, 0, &w->ack_nc)) != NAQ_OK ||
        (s = naq__finisher_create(w->client, w->client->nc, &w->finisher)) != NAQ_OK ||
        (s = naq__ack_sink_create(w, &w->sink)) != NAQ_OK ||
        (s = naq__fetcher_start(w, &w->fetcher)) != NAQ_OK || (s = register_worker(w)) != NAQ_OK) {
        naq__fetcher_stop(w->fetcher);
        naq__ack_sink_close(w->sink, 0);
        naq__finisher_destroy(w->finisher, 0);
        natsConnection_Destroy(w->ack_nc);
        natsConnection_Destroy(w->nc);
        w->fetcher = NULL;
        w->sink = NULL;
        w->finisher = NULL;
        w->ack_nc = NULL;
        w->nc = NULL;
        atomic_store(&w->running, 0);
        return s;
    }
    /* Without the watch the worker says so and falls back to one read per
     * job (worker_job.c), and running jobs cannot be cancelled. */
    if (naq__cancel_watch_start(w->client, naq__worker_on_cancel, w, &w->watch) != NAQ_OK)
        naq__worker_error(w, "CancelWatchFailed", "cannot watch job cancellations: %s",
                          naq_last_error());

    int nthreads = 0;
    atomic_store(&w->live_executors, w->concurrency);
    for (int i = 0; i < w->concurrency; i++) {
        naq__executor *x = &w->execs[i];
        x->w = w;
        x->index = i;
        if (pthread_create(&x->thread, NULL, executor_main, x) != 0) {
            s = naq__fail(NAQ_ERR_NO_MEMORY, "cannot start executor thread %d of worker %s", i,
                          w->id);
            atomic_fetch_sub(&w->live_executors, w->concurrency - i);
            naq_worker_stop(w);
            break;
        }
        nthreads++;
    }
    int64_t next_consumer_retry = 0, stop_at = 0;
    while (atomic_load(&w->live_executors) > 0) {
        keeper_tick(w, &next_consumer_retry, &stop_at);
        naq__sleep_ms(KEEPER_TICK_MS);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(w->execs[i].thread, NULL);
    naq__fetcher_stop(w->fetcher);
    w->fetcher = NULL;
    /* Outcomes still on their way get a few seconds to be confirmed and
     * acknowledged; past that they are delivered again after the ack
     * wait. */
    naq__finisher_destroy(w->finisher, SETTLE_WAIT_MS);
    naq__ack_sink_close(w->sink, SETTLE_WAIT_MS);
    naq__cancel_watch_stop(w->watch); /* no callback runs after this */
    /* Acks wait in the write buffer: send them before the caller may
     * exit. */
    natsConnection_FlushTimeout(w->ack_nc, 2000);
    natsConnection_Destroy(w->ack_nc);
    natsConnection_Destroy(w->nc);
    w->finisher = NULL;
    w->sink = NULL;
    w->watch = NULL;
    w->ack_nc = NULL;
    w->nc = NULL;

    naq__registry_stop(w->registry, atomic_load(&w->stop_requests) >= 2 ? "forced" : "graceful",
                       atomic_load(&w->handed_back));
    w->registry = NULL;
    atomic_store(&w->running, 0);
    return s;
}
