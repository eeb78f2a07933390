/*
 * worker.c - the worker runtime: take jobs from the queues' durable pull
 * consumers, run them through registered handlers, log every transition,
 * and acknowledge each job only after its outcome is logged.
 *
 * Threads. naq_worker_run() starts `concurrency` executor threads; the
 * calling thread becomes the keeper. Each executor loops: find a job, run
 * it, log, ack. The keeper, every KEEPER_TICK_MS, sends in-progress acks
 * (+WPI) for every running job each ack_wait/3 so a long job is never
 * delivered twice, flags jobs that ran past their timeout (their context
 * reads as cancelled), and re-creates consumers that went missing. A worker
 * that dies never acknowledges, so the server delivers its jobs again after
 * the ack wait: that is how a killed worker's job runs again.
 *
 * Pulling. Each (queue, priority) has a durable consumer "naq_<q>_p<n>";
 * executors pull from them by publishing to
 * $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> (batch 1) with a literal
 * reply inbox of their own, and acknowledge with the protocol bodies
 * "+ACK", "+WPI", "+TERM", "-NAK" on the job's reply subject
 * (docs/protocol.md). Why not js_PullSubscribe + natsSubscription_Fetch,
 * measured on nats.c 3.4.1 against server 2.9.10:
 *  - Fetch cannot probe a level: NoWait without Expires returns before the
 *    server answers, and with Expires the 2.9 server waits that long when
 *    the level is empty. A raw no-wait pull answers in ~0.1 ms (the job, or
 *    status 404), so checking the higher levels before each job is cheap.
 *  - Only one Fetch may run per subscription at a time.
 *  - A no-wait pull that loses a race with another puller is kept by the
 *    server without expiry and later swallows a message; through a shared
 *    (wildcard) request inbox that message is dropped and only comes back
 *    after the ack wait (seen as a stall of the whole queue). With a literal
 *    inbox the executor can withdraw interest (retire_inbox), and the server
 *    then drops the kept pull.
 *
 * Fairness rule. A job is taken from the highest priority level that has
 * one waiting: levels are probed from 4 down to 0 with no-wait pulls before
 * every job. Within a level, queues are probed round-robin starting after
 * the queue this executor served last, so one busy queue cannot starve
 * another of the same priority. A level found empty is not probed again by
 * this worker's executors for EMPTY_HINT_MS, so priority is strict for jobs
 * that have waited at least that long (measured: with 0 ms two no-op
 * workers spend two thirds of their pulls on empty levels and run ~3.5k
 * jobs/s; with 5 ms, ~1.1 pulls per job and ~5.7k jobs/s). When every level
 * is empty the executor long-polls (IDLE_PULL_MS) the level where it last
 * found a job: a stream of jobs at one level starts at once, a job at
 * another level within IDLE_PULL_MS. An idle executor costs about
 * 5 * queues + 1 small requests per IDLE_PULL_MS.
 */
#include "internal.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Longest wait of one pull when idle; also bounds how long naq_worker_stop
 * takes to be noticed by an idle executor. */
#define IDLE_PULL_MS 200
/* Extra client-side wait past a pull's expiry before it counts as lost. */
#define PULL_MARGIN_MS 1000
/* Wait for the answer to a no-wait pull (normally well under 1 ms); past
 * it the pull counts as kept by the server (see retire_inbox). */
#define NOWAIT_REPLY_MS 50
/* See "Fairness rule" above. */
#define EMPTY_HINT_MS 5
/* Pause after a failed pull (server away, consumer missing). */
#define ERROR_BACKOFF_MS 250
#define KEEPER_TICK_MS 50
/* Minimum time between attempts to re-create lost consumers. */
#define CONSUMER_RETRY_MS 2000
/* Unacknowledged jobs one consumer allows across all its workers; the
 * server default (1000) would cap a large fleet. */
#define MAX_ACK_PENDING 10000
#define MAX_CONCURRENCY 4096
/* The JetStream API prefix (naq uses no JetStream domain). */
#define JS_API "$JS.API"

typedef struct {
    char name[NAQ_ID_SIZE];
    naq_handler_fn fn;
    void *user;
} handler_entry;

typedef struct {
    char name[NAQ_ID_SIZE];
    char consumer[NAQ_PRIORITY_LEVELS][NAQ_ID_SIZE + 16];
    char next_subject[NAQ_PRIORITY_LEVELS][NAQ_URL_MAX];
    /* Monotonic ms until which the level counts as empty (a hint). */
    atomic_int_least64_t empty_until[NAQ_PRIORITY_LEVELS];
} queue_state;

struct naq_job_ctx {
    /* Read by the handler (and exec_run) and written by the keeper; plain
     * ints because naq__exec_opts.cancel is a `const volatile int *`,
     * accessed through __atomic builtins. */
    volatile int cancel;
    volatile int timed_out;
    volatile int stop_cancelled; /* cancelled because the worker stops hard */
    int failed;
    char *error_type;    /* heap */
    char *error_message; /* heap */
    json_t *details;     /* object of the outcome event, or NULL */
    double cpu_time_ms, memory_mb;
};

/* What the keeper knows of one executor's running job; under slots_lock. */
typedef struct {
    int busy;
    char reply[NAQ_URL_MAX]; /* the message's ack subject */
    int64_t deadline_ms;     /* 0 = no timeout */
    int64_t next_wpi_ms;
    naq_job_ctx *ctx;
} slot;

typedef struct {
    naq_worker *w;
    int index;
    pthread_t thread;
    int next_queue;              /* round-robin start within a level */
    int idle_queue, idle_level;  /* where to long-poll when idle */
    natsSubscription *inbox_sub; /* replies to this executor's pulls */
    char inbox[64];
} executor;

struct naq_worker {
    naq_client *client;
    char id[NAQ_ID_SIZE];
    int concurrency;
    queue_state *queues;
    int nqueues;
    handler_entry *handlers;
    int nhandlers;

    executor *execs;
    slot *slots;
    pthread_mutex_t slots_lock;

    atomic_int stop_requests; /* 1 = finish running jobs, >= 2 = cancel them */
    atomic_int running;
    atomic_int live_executors;
    atomic_int consumers_lost;
    atomic_uint_least64_t processed, completed, failed;
    atomic_int active;
};

static void flag_set(volatile int *f)
{
    __atomic_store_n(f, 1, __ATOMIC_RELEASE);
}
static int flag_get(const volatile int *f)
{
    return __atomic_load_n(f, __ATOMIC_ACQUIRE);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_ms_precise(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int stopping(naq_worker *w)
{
    return atomic_load(&w->stop_requests) > 0;
}

/* How often a running job's message gets +WPI: three times per ack wait,
 * so one lost in-progress ack does not cause a redelivery. With no ack
 * wait configured the server's default (30 s) applies. */
static int64_t wpi_interval_ms(const naq_worker *w)
{
    int64_t ack_wait = w->client->cfg.ack_wait_ms > 0 ? w->client->cfg.ack_wait_ms : 30000;
    return ack_wait / 3 > 0 ? ack_wait / 3 : 1;
}

/* ---- job context ---- */

void naq_job_ctx_fail(naq_job_ctx *ctx, const char *error_type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap); /* first: the arguments may be the old reason */
    va_end(ap);
    free(ctx->error_type);
    free(ctx->error_message);
    ctx->error_type = strdup(error_type && error_type[0] ? error_type : "Error");
    ctx->error_message = strdup(msg);
    ctx->failed = 1;
}

naq_status naq__job_ctx_set_detail(naq_job_ctx *ctx, const char *key, json_t *value)
{
    if (value == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory setting a job detail");
    if (ctx->details == NULL && (ctx->details = json_object()) == NULL) {
        json_decref(value);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory setting a job detail");
    }
    if (json_object_set_new(ctx->details, key, value) != 0)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory setting a job detail");
    return NAQ_OK;
}

naq_status naq_job_ctx_set_result(naq_job_ctx *ctx, const char *result_json)
{
    json_error_t e;
    json_t *v = result_json ? json_loads(result_json, JSON_DECODE_ANY, &e) : NULL;
    if (v == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "job result is not valid JSON: %s",
                         result_json ? e.text : "NULL");
    return naq__job_ctx_set_detail(ctx, "result", v);
}

int naq_job_ctx_cancelled(const naq_job_ctx *ctx)
{
    return flag_get(&ctx->cancel);
}
const volatile int *naq__job_ctx_cancel_flag(naq_job_ctx *ctx)
{
    return &ctx->cancel;
}
int naq__job_ctx_timed_out(const naq_job_ctx *ctx)
{
    return flag_get(&ctx->timed_out);
}

void naq__job_ctx_set_usage(naq_job_ctx *ctx, double cpu_time_ms, double memory_mb)
{
    ctx->cpu_time_ms = cpu_time_ms;
    ctx->memory_mb = memory_mb;
}

static void ctx_init(naq_job_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->cpu_time_ms = NAQ_UNSET;
    ctx->memory_mb = NAQ_UNSET;
}

static void ctx_clear(naq_job_ctx *ctx)
{
    free(ctx->error_type);
    free(ctx->error_message);
    json_decref(ctx->details);
}

/* ---- options, handlers, consumers ---- */

void naq_worker_opts_init(naq_worker_opts *o)
{
    memset(o, 0, sizeof *o);
    o->concurrency = 1;
}

/* "<short hostname>-<pid>-<4 hex>", with characters a subject token cannot
 * hold replaced by '-'. */
static void default_worker_id(char out[NAQ_ID_SIZE])
{
    char host[65] = "";
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "worker");
    host[strcspn(host, ".")] = '\0';
    for (char *p = host; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch >= 0x7f || ch == '*' || ch == '>')
            *p = '-';
    }
    unsigned char r[2] = {0, 0};
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        r[0] = (unsigned char)(naq__mono_ms() & 0xff);
        r[1] = (unsigned char)(getpid() & 0xff);
    }
    snprintf(out, NAQ_ID_SIZE, "%s-%ld-%02x%02x", host[0] ? host : "worker", (long)getpid(), r[0],
             r[1]);
}

static naq_status ensure_consumers(naq_worker *w)
{
    naq_client *c = w->client;
    for (int q = 0; q < w->nqueues; q++) {
        queue_state *qs = &w->queues[q];
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
            natsStatus ns = js_AddConsumer(NULL, c->js, c->cfg.job_stream, &cc, NULL, &jerr);
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
    queue_state *qs = &w->queues[w->nqueues];
    snprintf(qs->name, sizeof qs->name, "%s", name);
    for (int level = 0; level < NAQ_PRIORITY_LEVELS; level++) {
        snprintf(qs->consumer[level], sizeof qs->consumer[level], "naq_%s_p%d", name, level);
        int n = snprintf(qs->next_subject[level], sizeof qs->next_subject[level],
                         JS_API ".CONSUMER.MSG.NEXT.%s.%s", w->client->cfg.job_stream,
                         qs->consumer[level]);
        if (n < 0 || (size_t)n >= sizeof qs->next_subject[level])
            return naq__fail(NAQ_ERR_INVALID_ARG, "queue name '%s' is too long", name);
        atomic_init(&qs->empty_until[level], 0);
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
    if (conc < 1 || conc > MAX_CONCURRENCY)
        return naq__fail(NAQ_ERR_INVALID_ARG, "concurrency %d is out of range; use 1 to %d",
                         o->concurrency, MAX_CONCURRENCY);
    naq_status s;
    if (o->worker_id != NULL && (s = naq_id_validate("worker id", o->worker_id)) != NAQ_OK)
        return s;

    naq_worker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating a worker");
    w->client = c;
    w->concurrency = conc;
    pthread_mutex_init(&w->slots_lock, NULL);
    if (o->worker_id != NULL)
        snprintf(w->id, sizeof w->id, "%s", o->worker_id);
    else
        default_worker_id(w->id);
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
    if ((s = ensure_consumers(w)) != NAQ_OK)
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
    handler_entry *h = realloc(w->handlers, ((size_t)w->nhandlers + 1) * sizeof *h);
    if (h == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory registering handler '%s'", name);
    w->handlers = h;
    h += w->nhandlers++;
    snprintf(h->name, sizeof h->name, "%s", name);
    h->fn = fn;
    h->user = user;
    return NAQ_OK;
}

static const handler_entry *find_handler(const naq_worker *w, const char *name)
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
    out->active = atomic_load(&w->active);
}

/* ---- events ---- */

/* An event about job j run by w; heap fields are left for the caller to
 * point at borrowed strings (the event is never cleared). */
static void job_event(naq_event *e, naq_event_type type, const naq_worker *w, const naq_job *j)
{
    naq_event_init(e, type);
    memcpy(e->job_id, j->id, sizeof e->job_id);
    memcpy(e->queue_name, j->queue, sizeof e->queue_name);
    memcpy(e->worker_id, w->id, sizeof e->worker_id);
    memcpy(e->worker_type, "c", 2);
    e->attempt = j->attempt;
    e->tags_json = j->tags_json;
}

static void log_worker_event(naq_worker *w, naq_event_type type, const char *details_json)
{
    naq_event e;
    naq_event_init(&e, type);
    memcpy(e.worker_id, w->id, sizeof e.worker_id);
    memcpy(e.worker_type, "c", 2);
    e.details_json = (char *)details_json;
    naq_client_log(w->client, &e);
}

/* ---- acks ---- */

/* The JetStream ack protocol on the message's reply subject (natsMsg_Ack
 * needs a JetStream subscription, which plain pulls do not have). A lost
 * ack only means the job is delivered again. */
static void ack(naq_worker *w, natsMsg *m, const char *body)
{
    const char *reply = natsMsg_GetReply(m);
    if (reply == NULL)
        return;
    natsStatus ns = natsConnection_PublishString(w->client->nc, reply, body);
    if (ns != NATS_OK)
        fprintf(stderr,
                "naq worker %s: cannot send %s for a job (%s); it will be delivered "
                "again after the ack wait\n",
                w->id, body, natsStatus_GetText(ns));
}

/* ---- pulling ---- */

/* A literal reply subject of the executor's own, so that a pull request
 * the server keeps (see retire_inbox) can be made harmless. */
static natsStatus open_inbox(executor *x)
{
    natsInbox *ib = NULL;
    natsStatus ns = natsInbox_Create(&ib);
    if (ns == NATS_OK) {
        snprintf(x->inbox, sizeof x->inbox, "%s", (const char *)ib);
        natsInbox_Destroy(ib);
        ns = natsConnection_SubscribeSync(&x->inbox_sub, x->w->client->nc, x->inbox);
    }
    if (ns != NATS_OK)
        x->inbox_sub = NULL;
    return ns;
}

static int is_status(natsMsg *m, const char **status)
{
    return natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", status) == NATS_OK;
}

/*
 * Called when a pull got no answer in time. Server 2.9.10 keeps a no-wait
 * pull that arrived while messages were pending but lost them to another
 * puller, with no expiry, and later hands it the next message of that
 * level. The server skips (and drops) kept pulls whose reply subject has
 * no subscriber, so the inbox is drained away: what the server sent before
 * it saw the UNSUB is still read here (a job found that way is returned,
 * it is ours), and a new inbox is used from now on.
 */
static natsMsg *retire_inbox(executor *x)
{
    natsMsg *job = NULL, *m = NULL;
    if (x->inbox_sub != NULL && natsSubscription_Drain(x->inbox_sub) == NATS_OK) {
        int64_t deadline = naq__mono_ms() + PULL_MARGIN_MS;
        while (natsSubscription_IsValid(x->inbox_sub) && naq__mono_ms() < deadline) {
            if (natsSubscription_NextMsg(&m, x->inbox_sub, 50) != NATS_OK)
                continue;
            const char *status = NULL;
            if (job == NULL && !is_status(m, &status))
                job = m; /* at most one: one pull per inbox at a time */
            else
                natsMsg_Destroy(m);
        }
    }
    natsSubscription_Destroy(x->inbox_sub);
    x->inbox_sub = NULL;
    return job;
}

typedef enum { PULL_JOB, PULL_EMPTY, PULL_ERROR } pull_result;

/* One pull of batch 1 from a level; wait_ms 0 = no wait. */
static pull_result pull(executor *x, queue_state *qs, int level, int64_t wait_ms, natsMsg **out)
{
    naq_worker *w = x->w;
    natsConnection *nc = w->client->nc;
    *out = NULL;
    if (x->inbox_sub == NULL && open_inbox(x) != NATS_OK)
        return PULL_ERROR;
    char body[64];
    if (wait_ms == 0)
        snprintf(body, sizeof body, "{\"batch\":1,\"no_wait\":true}");
    else /* expires is in nanoseconds */
        snprintf(body, sizeof body, "{\"batch\":1,\"expires\":%lld}",
                 (long long)wait_ms * 1000000LL);
    natsStatus ns =
        natsConnection_PublishRequestString(nc, qs->next_subject[level], x->inbox, body);
    /* Without a flush the request waits for nats.c's flusher (~1 ms). */
    if (ns == NATS_OK && wait_ms == 0)
        ns = natsConnection_FlushTimeout(nc, PULL_MARGIN_MS);
    natsMsg *m = NULL;
    if (ns == NATS_OK)
        ns = natsSubscription_NextMsg(&m, x->inbox_sub,
                                      wait_ms ? wait_ms + PULL_MARGIN_MS : NOWAIT_REPLY_MS);
    if (ns != NATS_OK) {
        /* No answer: the pull may be kept by the server (see retire_inbox),
         * the consumer may be gone (a pull to a missing consumer is never
         * answered), or the server is away. */
        if (ns == NATS_TIMEOUT && wait_ms > 0)
            atomic_store(&w->consumers_lost, 1);
        *out = retire_inbox(x);
        return *out ? PULL_JOB : ns == NATS_TIMEOUT && wait_ms == 0 ? PULL_EMPTY : PULL_ERROR;
    }
    const char *status = NULL;
    if (is_status(m, &status)) {
        pull_result r = PULL_EMPTY; /* 404 no messages, 408 request expired or pending */
        if (strcmp(status, "404") != 0 && strcmp(status, "408") != 0) {
            const char *desc = NULL;
            natsMsgHeader_Get(m, "Description", &desc);
            if (desc != NULL && strstr(desc, "Deleted") != NULL)
                atomic_store(&w->consumers_lost, 1);
            r = PULL_ERROR; /* 409: consumer deleted, too many waiting pulls, ... */
        }
        natsMsg_Destroy(m);
        return r;
    }
    *out = m;
    return PULL_JOB;
}

/* Finds the next job by the fairness rule at the top of this file. NULL
 * when none came (idle pull expired, error, or stopping). */
static natsMsg *next_job(executor *x)
{
    naq_worker *w = x->w;
    natsMsg *m = NULL;
    int64_t now = naq__mono_ms();
    for (int level = NAQ_PRIORITY_LEVELS - 1; level >= 0; level--) {
        for (int k = 0; k < w->nqueues; k++) {
            int q = (x->next_queue + k) % w->nqueues;
            queue_state *qs = &w->queues[q];
            if (atomic_load(&qs->empty_until[level]) > now)
                continue;
            if (stopping(w))
                return NULL;
            pull_result r = pull(x, qs, level, 0, &m);
            if (r == PULL_JOB) {
                x->next_queue = (q + 1) % w->nqueues;
                x->idle_queue = q;
                x->idle_level = level;
                return m;
            }
            if (r == PULL_ERROR) {
                sleep_ms(ERROR_BACKOFF_MS);
                return NULL;
            }
            atomic_store(&qs->empty_until[level], naq__mono_ms() + EMPTY_HINT_MS);
        }
    }
    if (stopping(w))
        return NULL;
    pull_result r = pull(x, &w->queues[x->idle_queue], x->idle_level, IDLE_PULL_MS, &m);
    if (r == PULL_ERROR)
        sleep_ms(ERROR_BACKOFF_MS);
    return m;
}

/* ---- running one job ---- */

static void slot_begin(executor *x, natsMsg *m, const naq_job *j, naq_job_ctx *ctx)
{
    naq_worker *w = x->w;
    int64_t now = naq__mono_ms();
    slot *sl = &w->slots[x->index];
    pthread_mutex_lock(&w->slots_lock);
    snprintf(sl->reply, sizeof sl->reply, "%s", natsMsg_GetReply(m) ? natsMsg_GetReply(m) : "");
    sl->deadline_ms = j->timeout_ms > 0 ? now + j->timeout_ms : 0;
    sl->next_wpi_ms = now + wpi_interval_ms(w);
    sl->ctx = ctx;
    sl->busy = 1;
    pthread_mutex_unlock(&w->slots_lock);
}

static void slot_end(executor *x)
{
    naq_worker *w = x->w;
    pthread_mutex_lock(&w->slots_lock);
    w->slots[x->index].busy = 0;
    w->slots[x->index].ctx = NULL;
    pthread_mutex_unlock(&w->slots_lock);
}

/* A message that is not a job: Term it (it can never succeed) and record
 * why, against the job when an id could be read. */
static void reject_malformed(naq_worker *w, natsMsg *m, naq_job *j, const char *why)
{
    if (j->id[0] != '\0') {
        naq_event e;
        job_event(&e, NAQ_EVENT_FAILED, w, j);
        e.tags_json = NULL;
        e.error_type = "MalformedJob";
        e.error_message = (char *)why;
        naq_client_log(w->client, &e);
    } else {
        fprintf(stderr, "naq worker %s: dropped a message on %s that is not a job: %s\n", w->id,
                natsMsg_GetSubject(m), why);
    }
    ack(w, m, "+TERM");
    atomic_fetch_add(&w->failed, 1);
    atomic_fetch_add(&w->processed, 1);
}

static void unknown_function(naq_worker *w, naq_job_ctx *ctx, const naq_job *j)
{
    char known[512] = "";
    size_t used = 0;
    for (int i = 0; i < w->nhandlers && used < sizeof known; i++) {
        int n =
            snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", w->handlers[i].name);
        if (n > 0)
            used += (size_t)n;
    }
    naq_job_ctx_fail(ctx, "UnknownFunction",
                     "worker %s has no handler for function '%s' (it has: %s); register one with "
                     "naq_worker_register(worker, \"%s\", handler, user) before naq_worker_run, "
                     "or enqueue to a queue whose workers have it",
                     w->id, j->function, known, j->function);
}

static void run_message(executor *x, natsMsg *m)
{
    naq_worker *w = x->w;
    naq_job j;
    naq_status s = naq_job_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &j);
    jsMsgMetaData *meta = NULL;
    double stored_at = 0; /* when the server stored the job, by its clock */
    j.attempt = 1;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        j.attempt = (int)meta->NumDelivered;
        stored_at = (double)meta->Timestamp / 1e9;
        jsMsgMetaData_Destroy(meta);
    }
    if (s != NAQ_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", naq_last_error());
        reject_malformed(w, m, &j, why);
        naq_job_clear(&j);
        return;
    }

    naq_event e;
    /* The enqueuer logs "enqueued" after the server stored the job, so it
     * may still be on its way; log the same event (same event id) first,
     * and the server keeps whichever copy comes first. Only while the
     * event stream's duplicate window surely covers both copies (half of
     * it: room for clock skew); an older job's event is stored already. */
    if (j.attempt == 1 && naq__now() - stored_at < w->client->cfg.event_dup_window_s / 2.0 &&
        naq__enqueued_event(&j, &e) == NAQ_OK) {
        naq_client_log(w->client, &e);
        naq_event_clear(&e);
    }
    job_event(&e, NAQ_EVENT_DEQUEUED, w, &j);
    naq_client_log(w->client, &e);

    naq_job_ctx ctx;
    ctx_init(&ctx);
    const handler_entry *h = find_handler(w, j.function);
    atomic_fetch_add(&w->active, 1);
    slot_begin(x, m, &j, &ctx);
    double t0 = now_ms_precise(CLOCK_MONOTONIC);
    double cpu0 = now_ms_precise(CLOCK_THREAD_CPUTIME_ID);
    if (h == NULL) {
        unknown_function(w, &ctx, &j);
    } else {
        job_event(&e, NAQ_EVENT_STARTED, w, &j);
        naq_client_log(w->client, &e);
        naq__clear_error();
        naq_status rc = h->fn(&ctx, &j, h->user);
        if (rc != NAQ_OK && !ctx.failed) {
            const char *why = naq_last_error();
            naq_job_ctx_fail(&ctx, "HandlerError", "handler '%s' returned %s%s%s", j.function,
                             naq_status_str(rc), why[0] ? ": " : "", why);
        }
    }
    double duration = now_ms_precise(CLOCK_MONOTONIC) - t0;
    if (h != NULL && ctx.cpu_time_ms == NAQ_UNSET)
        ctx.cpu_time_ms = now_ms_precise(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    slot_end(x);
    int hard_stopped = flag_get(&ctx.stop_cancelled);
    if (j.timeout_ms > 0 && (flag_get(&ctx.timed_out) || duration > (double)j.timeout_ms) &&
        !(ctx.failed && ctx.error_type != NULL && strcmp(ctx.error_type, "Timeout") == 0))
        naq_job_ctx_fail(&ctx, "Timeout", "job ran for %.0f ms, longer than its timeout of %lld ms",
                         duration, (long long)j.timeout_ms);
    else if (hard_stopped && ctx.failed)
        naq_job_ctx_fail(&ctx, "WorkerStopped",
                         "worker %s stopped while the job ran (%s: %s); it will be delivered "
                         "again",
                         w->id, ctx.error_type ? ctx.error_type : "Error",
                         ctx.error_message ? ctx.error_message : "");

    job_event(&e, ctx.failed ? NAQ_EVENT_FAILED : NAQ_EVENT_COMPLETED, w, &j);
    e.duration_ms = duration;
    e.cpu_time_ms = ctx.cpu_time_ms;
    e.memory_mb = ctx.memory_mb;
    e.error_type = ctx.error_type;
    e.error_message = ctx.error_message;
    char *details =
        ctx.details ? json_dumps(ctx.details, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    e.details_json = details;
    naq_client_log(w->client, &e);
    free(details);

    /* Only now: a worker that dies before this line leaves the job to be
     * delivered again. A job cut short by a hard stop goes back at once.
     * Failed jobs are acknowledged: retries are not implemented yet. */
    ack(w, m, ctx.failed && hard_stopped ? "-NAK" : "+ACK");
    atomic_fetch_add(ctx.failed ? &w->failed : &w->completed, 1);
    atomic_fetch_add(&w->processed, 1);
    atomic_fetch_sub(&w->active, 1);
    ctx_clear(&ctx);
    naq_job_clear(&j);
}

static void *executor_main(void *arg)
{
    executor *x = arg;
    naq_worker *w = x->w;
    while (!stopping(w)) {
        natsMsg *m = next_job(x);
        if (m != NULL) {
            /* Delivered to us even if a stop came meanwhile: run it rather
             * than leave it to wait out the ack wait. */
            run_message(x, m);
            natsMsg_Destroy(m);
        }
    }
    if (x->inbox_sub != NULL) /* every pull was answered or retired */
        natsSubscription_Unsubscribe(x->inbox_sub);
    natsSubscription_Destroy(x->inbox_sub);
    x->inbox_sub = NULL;
    atomic_fetch_sub(&w->live_executors, 1);
    return NULL;
}

/* ---- the keeper (the thread that called naq_worker_run) ---- */

static void keeper_tick(naq_worker *w, int64_t *next_consumer_retry)
{
    naq_client *c = w->client;
    int64_t now = naq__mono_ms();
    int64_t wpi = wpi_interval_ms(w);
    int hard = atomic_load(&w->stop_requests) >= 2;
    pthread_mutex_lock(&w->slots_lock);
    for (int i = 0; i < w->concurrency; i++) {
        slot *sl = &w->slots[i];
        if (!sl->busy)
            continue;
        if (sl->deadline_ms > 0 && now >= sl->deadline_ms && !flag_get(&sl->ctx->timed_out)) {
            flag_set(&sl->ctx->timed_out);
            flag_set(&sl->ctx->cancel);
        }
        if (hard && !flag_get(&sl->ctx->cancel)) {
            flag_set(&sl->ctx->stop_cancelled);
            flag_set(&sl->ctx->cancel);
        }
        if (now >= sl->next_wpi_ms && sl->reply[0] != '\0') {
            natsConnection_PublishString(c->nc, sl->reply, "+WPI");
            sl->next_wpi_ms = now + wpi;
        }
    }
    pthread_mutex_unlock(&w->slots_lock);
    if (atomic_load(&w->consumers_lost) && now >= *next_consumer_retry) {
        *next_consumer_retry = now + CONSUMER_RETRY_MS;
        if (ensure_consumers(w) == NAQ_OK)
            atomic_store(&w->consumers_lost, 0);
        else
            fprintf(stderr, "naq worker %s: %s; retrying\n", w->id, naq_last_error());
    }
}

naq_status naq_worker_run(naq_worker *w)
{
    if (w == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_worker_run needs a worker");
    int expected = 0;
    if (!atomic_compare_exchange_strong(&w->running, &expected, 1))
        return naq__fail(NAQ_ERR_INVALID_ARG, "worker %s is already running", w->id);

    char started[256];
    snprintf(started, sizeof started, "{\"concurrency\":%d,\"queues\":%d}", w->concurrency,
             w->nqueues);
    log_worker_event(w, NAQ_EVENT_WORKER_STARTED, started);

    naq_status s = NAQ_OK;
    int nthreads = 0;
    atomic_store(&w->live_executors, w->concurrency);
    for (int i = 0; i < w->concurrency; i++) {
        executor *x = &w->execs[i];
        x->w = w;
        x->index = i;
        x->idle_level = NAQ_PRIORITY_NORMAL;
        x->idle_queue = x->next_queue = i % w->nqueues;
        if (pthread_create(&x->thread, NULL, executor_main, x) != 0) {
            s = naq__fail(NAQ_ERR_NO_MEMORY, "cannot start executor thread %d of worker %s", i,
                          w->id);
            atomic_fetch_sub(&w->live_executors, w->concurrency - i);
            naq_worker_stop(w);
            break;
        }
        nthreads++;
    }
    int64_t next_consumer_retry = 0;
    while (atomic_load(&w->live_executors) > 0) {
        keeper_tick(w, &next_consumer_retry);
        sleep_ms(KEEPER_TICK_MS);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(w->execs[i].thread, NULL);
    /* Acks sit in nats.c's write buffer; send them before the caller may
     * exit. */
    natsConnection_FlushTimeout(w->client->nc, 2000);

    char stopped[256];
    snprintf(stopped, sizeof stopped, "{\"processed\":%llu,\"completed\":%llu,\"failed\":%llu}",
             (unsigned long long)atomic_load(&w->processed),
             (unsigned long long)atomic_load(&w->completed),
             (unsigned long long)atomic_load(&w->failed));
    log_worker_event(w, NAQ_EVENT_WORKER_STOPPED, stopped);
    atomic_store(&w->running, 0);
    return s;
}
