/*
 * worker_job.c - one job through the worker, from its message to the
 * message's settlement: the job lifecycle as a worker sees it (issue 3).
 *
 * Per delivery (attempt = the stream's delivery count):
 *   dequeued
 *   -> ttl_expired            (ttl_ms passed since it was queued: not run)
 *   -> cancelled {queued}     (`naq job cancel` came first: not run)
 *   -> retry_started          (attempt > 1), worker_assigned, started
 *   -> completed | failed | timeout + failed | cancelled {running}
 *   -> failed: retry_scheduled + delayed nak, or the dead-letter stream
 *      (max_retries_exceeded) when the policy allows no further attempt
 *   -> dependents told, the outcome record stored, unique key released
 *      (final outcomes only: finish.c), then the ack.
 *
 * Invariants, each against a worker killed at any instant:
 *  - The outcome is logged before the message is settled: a worker that
 *    dies earlier leaves the message to the ack wait, and the job runs
 *    again (its history then shows an attempt with no outcome, never an
 *    outcome that did not happen). "completed" only follows a handler
 *    that returned success.
 *  - A final outcome is acknowledged only once the server confirmed both
 *    its outcome event (the logger's confirmation) and its outcome record
 *    (finish.c). Neither is waited for on the executor: both are
 *    asynchronous, and whichever confirmation comes last sends the ack
 *    (a settlement, below), so the executor takes its next job at once.
 *    If either fails, the job is not acknowledged but delivered again
 *    after FOLLOWUP_RETRY_MS (a worker_error says why), because a lost
 *    result or a dependent that never runs is worse than running a job
 *    twice, which at-least-once delivery allows anyway.
 *  - A retry is a nak with a delay: the server holds the message and no
 *    worker thread waits for it.
 *  - Who settles a message is decided under slots_lock (worker_int.h): the
 *    executor, or the keeper when it handed the job back at a stop.
 */
#include "core/crypt.h"
#include "core/jsonw.h"
#include "jobs/retry.h"
#include "worker.h"

#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Delay of the redelivery when the result, the dependents or the unique
 * key could not be written (server away): long enough not to spin. */
#define FOLLOWUP_RETRY_MS 2000
/* Acks further apart than this are sent at once, closer ones batched: a
 * worker of 5,000 jobs/s batches, one fed a job at a time does not. */
#define SPARSE_ACK_US 200

/* An event of job j (details, may be NULL, is taken and encoded into
 * *text, which the caller frees). */
static void job_event(naq_event *e, naq_worker *w, naq_event_type type, const naq_job *j,
                      json_t *details, char **text)
{
    naq__worker_job_event(e, type, w, j);
    *text = details ? naq__json_dumps(details, NAQ__JSON_FLAGS) : NULL;
    e->details_json = *text;
    json_decref(details);
}

/* With payload keys, moves e's error message and payload details into its
 * sealed details (crypt.h): *text (heap, e's details, the caller's to
 * free) is replaced. Sealing only fails for lack of memory: the payload is
 * then left out, never logged in plaintext. */
static void seal_event(naq_worker *w, naq_event *e, char **text)
{
    char *sealed = NULL;
    if (naq__crypt_seal_event(w->client->crypt, e, &sealed) != NAQ_OK) {
        e->error_message = NULL;
        e->details_json = NULL;
    }
    free(*text);
    *text = sealed;
}

/* Logs an event of job j now; details (may be NULL) is taken. */
static void log_job(naq_worker *w, naq_event_type type, const naq_job *j, json_t *details,
                    const char *error_type, const char *error_message)
{
    naq_event e;
    char *d = NULL;
    job_event(&e, w, type, j, details, &d);
    e.error_type = (char *)error_type;
    e.error_message = (char *)error_message;
    if (w->client->crypt != NULL && error_message != NULL)
        seal_event(w, &e, &d);
    naq_client_log(w->client, &e);
    free(d);
}

/* "-NAK {"delay": <ns>}" (server 2.9.10 reads a Go duration: nanoseconds),
 * or a plain "-NAK" for no delay. */
static void nak(naq_worker *w, const char *reply, int64_t delay_ms)
{
    char body[64];
    if (delay_ms > 0)
        snprintf(body, sizeof body, "-NAK {\"delay\":%lld}", (long long)delay_ms * 1000000LL);
    else
        snprintf(body, sizeof body, "-NAK");
    naq__worker_ack(w, reply, body);
}

/* ---- slots ---- */

static naq__slot *slot_begin(naq__executor *x, natsMsg *m, const naq_job *j, naq_job_ctx *ctx)
{
    naq_worker *w = x->w;
    int64_t now = naq__mono_ms();
    naq__slot *sl = &w->slots[x->index];
    pthread_mutex_lock(&w->slots_lock);
    snprintf(sl->reply, sizeof sl->reply, "%s", natsMsg_GetReply(m) ? natsMsg_GetReply(m) : "");
    sl->deadline_ms = j->timeout_ms > 0 ? now + j->timeout_ms : 0;
    sl->next_wpi_ms = now + naq__worker_wpi_ms(w);
    sl->ctx = ctx;
    sl->job = j;
    sl->state = SLOT_RUNNING;
    pthread_mutex_unlock(&w->slots_lock);
    atomic_fetch_add(&w->active, 1);
    return sl;
}

/* The executor claims the settlement: 0 when the keeper handed the job
 * back first. */
static int slot_claim(naq_worker *w, naq__slot *sl)
{
    pthread_mutex_lock(&w->slots_lock);
    int mine = sl->state == SLOT_RUNNING;
    if (mine)
        sl->state = SLOT_FINISHING;
    pthread_mutex_unlock(&w->slots_lock);
    return mine;
}

static void slot_end(naq_worker *w, naq__slot *sl)
{
    pthread_mutex_lock(&w->slots_lock);
    sl->state = SLOT_IDLE;
    sl->ctx = NULL;
    sl->job = NULL;
    sl->reply[0] = '\0';
    pthread_mutex_unlock(&w->slots_lock);
    atomic_fetch_sub(&w->active, 1);
}

int naq__worker_hand_back(naq_worker *w, int i)
{
    naq__slot *sl = &w->slots[i];
    if (sl->state != SLOT_RUNNING)
        return 0;
    const naq_job *j = sl->job;
    char msg[256];
    snprintf(msg, sizeof msg,
             "worker %s stopped before the job finished; handed back to the queue to run again",
             w->id);
    /* Logged before the nak, like every outcome. Should the nak be lost,
     * the ack wait delivers the job again all the same. */
    naq__registry_job_finished(w->registry, j->id, j->queue, -1);
    log_job(w, NAQ_EVENT_RETRY_SCHEDULED, j,
            json_pack("{s:i, s:i, s:s}", "delay_ms", 0, "next_attempt", j->attempt + 1, "reason",
                      "worker_stopped"),
            "WorkerStopped", msg);
    nak(w, sl->reply, 0);
    sl->state = SLOT_HANDED_BACK;
    naq__flag_set(&sl->ctx->handed_back);
    naq__flag_set(&sl->ctx->cancel);
    atomic_fetch_add(&w->handed_back, 1);
    return 1;
}

void naq__worker_on_cancel(const char *job_id, void *ud)
{
    naq_worker *w = ud;
    pthread_mutex_lock(&w->slots_lock);
    for (int i = 0; i < w->concurrency; i++) {
        naq__slot *sl = &w->slots[i];
        if (sl->state == SLOT_RUNNING && strcmp(sl->job->id, job_id) == 0) {
            naq__flag_set(&sl->ctx->user_cancelled);
            naq__flag_set(&sl->ctx->cancel);
        }
    }
    pthread_mutex_unlock(&w->slots_lock);
}

/* ---- settlements: the ack after the confirmations ---- */

typedef struct settlement settlement;

struct naq__ack_sink {
    pthread_mutex_t lock;
    naq_worker *w;       /* NULL once closed */
    int refs;            /* the worker's, and one per open settlement */
    settlement *open;    /* waiting for confirmations: in-progress acks */
    int64_t last_ack_us; /* when the last settlement's ack was sent */
};

naq_status naq__ack_sink_create(naq_worker *w, naq__ack_sink **out)
{
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory starting worker %s", w->id);
    pthread_mutex_init(&(*out)->lock, NULL);
    (*out)->w = w;
    (*out)->refs = 1;
    return NAQ_OK;
}

static void sink_release(naq__ack_sink *sk)
{
    pthread_mutex_lock(&sk->lock);
    int last = --sk->refs == 0;
    pthread_mutex_unlock(&sk->lock);
    if (last) {
        pthread_mutex_destroy(&sk->lock);
        free(sk);
    }
}

void naq__ack_sink_close(naq__ack_sink *sk, int64_t timeout_ms)
{
    if (sk == NULL)
        return;
    int64_t deadline = naq__mono_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&sk->lock);
        int open = sk->refs - 1;
        if (open == 0 || naq__mono_ms() >= deadline)
            sk->w = NULL;
        pthread_mutex_unlock(&sk->lock);
        if (sk->w == NULL)
            break;
        naq__sleep_ms(2);
    }
    sink_release(sk);
}

_Atomic int naq__worker_crash_before_ack;
_Atomic int naq__worker_unconfirm_next;

/* One final outcome waiting for its two confirmations; on its sink's open
 * list (under the sink's lock) until it is settled. */
struct settlement {
    naq__ack_sink *sink;
    settlement *prev, *next;
    char reply[NAQ_URL_MAX];
    const char *body; /* "+ACK" or "+TERM" */
    atomic_int waiting, failed;
    int64_t next_wpi_ms;
    naq_job who; /* id, queue, schedule id and attempt, for the event */
};

static settlement *settlement_new(naq_worker *w, const char *reply, const naq_job *j,
                                  const char *body)
{
    settlement *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->sink = w->sink;
    snprintf(st->reply, sizeof st->reply, "%s", reply ? reply : "");
    st->body = body;
    atomic_init(&st->waiting, 2);
    memcpy(st->who.id, j->id, sizeof st->who.id);
    memcpy(st->who.queue, j->queue, sizeof st->who.queue);
    memcpy(st->who.schedule_id, j->schedule_id, sizeof st->who.schedule_id);
    st->who.attempt = j->attempt;
    st->next_wpi_ms = naq__mono_ms() + naq__worker_wpi_ms(w);
    pthread_mutex_lock(&w->sink->lock);
    w->sink->refs++;
    st->next = w->sink->open;
    if (st->next != NULL)
        st->next->prev = st;
    w->sink->open = st;
    pthread_mutex_unlock(&w->sink->lock);
    return st;
}

void naq__ack_sink_in_progress(naq__ack_sink *sk, int64_t interval_ms)
{
    int64_t now = naq__mono_ms();
    pthread_mutex_lock(&sk->lock);
    for (settlement *st = sk->open; st != NULL && sk->w != NULL; st = st->next) {
        if (now >= st->next_wpi_ms) {
            naq__worker_ack(sk->w, st->reply, "+WPI");
            st->next_wpi_ms = now + interval_ms;
        }
    }
    pthread_mutex_unlock(&sk->lock);
}

/* A settlement that gave up: the server confirmed its outcome event or its
 * record too late or not at all (an outage, an election). Whether the
 * record was stored after all is known only when the message comes back:
 * the redelivery then acks it without a run (its outcome stands), or runs
 * it again. So the job's history gets no verdict here, which could be
 * false either way (a "will run again" after which nothing runs); the
 * worker reports it, naming the job. The outcome event itself is not
 * lost: the logger sends it until the server has it. */
static void report_unconfirmed(naq_worker *w, const settlement *st)
{
    char msg[384];
    snprintf(msg, sizeof msg,
             "the server did not confirm the outcome of job %s (attempt %d); it is delivered "
             "again in %d ms, and runs again unless its outcome was recorded after all",
             st->who.id, st->who.attempt, FOLLOWUP_RETRY_MS);
    naq__log(NAQ_LOG_WARN, "naq worker %s: %s", w->id, msg);
    naq__registry_error(w->registry, "FinishFailed", msg);
}

/* A confirmation (naq__confirm_fn): the outcome event's or the record's.
 * The second one settles the message. Runs on a nats.c thread. */
static void settlement_confirm(void *ud, int ok)
{
    settlement *st = ud;
    if (ok && atomic_load_explicit(&naq__worker_unconfirm_next, memory_order_relaxed))
        ok = !atomic_exchange(&naq__worker_unconfirm_next, 0);
    if (!ok)
        atomic_store(&st->failed, 1);
    if (atomic_fetch_sub(&st->waiting, 1) != 1)
        return;
    pthread_mutex_lock(&st->sink->lock);
    naq_worker *w = st->sink->w;
    int gave_up = w != NULL && atomic_load(&st->failed);
    if (w != NULL && !gave_up) {
        if (atomic_load(&naq__worker_crash_before_ack))
            raise(SIGKILL);
        /* Acks far apart (jobs come one at a time) go out at once on the
         * pull connection: batching one alone behind nats.c's flusher only
         * costs that thread's wake-up. Close together, they are batched. */
        int64_t now_us = naq__mono_us();
        if (now_us - st->sink->last_ack_us > SPARSE_ACK_US)
            naq__worker_ack_now(w, st->reply, st->body);
        else
            naq__worker_ack(w, st->reply, st->body);
        st->sink->last_ack_us = now_us;
    } else if (gave_up) { /* under the lock: w stays valid (naq__ack_sink_close) */
        report_unconfirmed(w, st);
        nak(w, st->reply, FOLLOWUP_RETRY_MS);
    }
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        st->sink->open = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    pthread_mutex_unlock(&st->sink->lock);
    sink_release(st->sink);
    free(st);
}

/* Logs the outcome event e of a final outcome and records the outcome
 * (finish.c); the message is settled with `body` once both are confirmed.
 * Only e's own fields are read here. */
static void settle_final(naq_worker *w, const char *reply, const naq_job *j, const naq_event *e,
                         const char *status, const naq_job_ctx *ctx, const char *error_type,
                         const char *error_message, int succeeded, const char *body)
{
    settlement *st = settlement_new(w, reply, j, body);
    if (st == NULL) { /* out of memory: log it; the ack wait delivers it again */
        naq_client_log(w->client, e);
        return;
    }
    naq__client_log_confirmed(w->client, e, settlement_confirm, st);
    char *record =
        naq__outcome_record(w->client->crypt, j, naq__ack_subject_stream_seq(reply), status,
                            ctx ? ctx->details : NULL, error_type, error_message);
    naq__finisher_submit(w->finisher, j, record, succeeded, settlement_confirm, st);
}

/* ---- not run ---- */

/* A message that is not a job: Term it (it can never succeed) and record
 * why, against the job when an id could be read. */
static void reject_malformed(naq_worker *w, natsMsg *m, naq_job *j, const char *why)
{
    if (j->id[0] != '\0')
        log_job(w, NAQ_EVENT_FAILED, j, NULL, "MalformedJob", why);
    else {
        /* No job to record it against: the worker's own event keeps the
         * record (anyone who may publish to a queue can send this). */
        char msg[768];
        snprintf(msg, sizeof msg, "dropped a message on %s that is not a job: %s",
                 natsMsg_GetSubject(m), why);
        naq__log(NAQ_LOG_WARN, "naq worker %s: %s", w->id, msg);
        naq__registry_error(w->registry, "MalformedJob", msg);
    }
    naq__worker_ack(w, natsMsg_GetReply(m), "+TERM");
    atomic_fetch_add(&w->failed, 1);
    atomic_fetch_add(&w->processed, 1);
    naq__registry_job_counted(w->registry, 0);
}

/* 1 when the job waited in its queue longer than its TTL. queued_at is
 * when the server stored the message (so a delayed job or a dependent
 * counts from its release), falling back to enqueued_at. */
static int ttl_expired(const naq_job *j, double queued_at, double *waited_ms)
{
    if (j->ttl_ms <= 0)
        return 0;
    if (queued_at <= 0)
        queued_at = j->enqueued_at;
    *waited_ms = (naq__now() - queued_at) * 1000.0;
    return queued_at > 0 && *waited_ms > (double)j->ttl_ms;
}

static void expire(naq_worker *w, natsMsg *m, const naq_job *j, double waited_ms)
{
    char msg[256];
    snprintf(msg, sizeof msg, "not started within its TTL of %lld ms (queued %.0f ms ago)",
             (long long)j->ttl_ms, waited_ms);
    naq_event e;
    char *details = NULL;
    job_event(&e, w, NAQ_EVENT_TTL_EXPIRED, j,
              json_pack("{s:I, s:f}", "ttl_ms", (json_int_t)j->ttl_ms, "waited_ms", waited_ms),
              &details);
    e.error_type = "TtlExpired";
    e.error_message = msg;
    atomic_fetch_add(&w->expired, 1);
    atomic_fetch_add(&w->processed, 1);
    naq__registry_job_counted(w->registry, 0);
    settle_final(w, natsMsg_GetReply(m), j, &e, "failed", NULL, "TtlExpired", msg, 0, "+TERM");
    free(details);
}

static void cancel_queued(naq_worker *w, natsMsg *m, const naq_job *j)
{
    naq_event e;
    char *details = NULL;
    job_event(&e, w, NAQ_EVENT_CANCELLED, j, json_pack("{s:s}", "while", "queued"), &details);
    atomic_fetch_add(&w->cancelled, 1);
    atomic_fetch_add(&w->processed, 1);
    naq__registry_job_counted(w->registry, 0);
    settle_final(w, natsMsg_GetReply(m), j, &e, "cancelled", NULL, "Cancelled",
                 "cancelled before it started", 0, "+TERM");
    free(details);
}

/* ---- run ---- */

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

/* The outcome event of a run (completed, failed or cancelled) with the
 * run's measurements; details from ctx plus `extra` (taken) encoded into
 * *text, which the caller frees. */
static void outcome_event(naq_event *e, naq_worker *w, naq_event_type type, const naq_job *j,
                          const naq_job_ctx *ctx, double duration, json_t *extra, char **text)
{
    naq__worker_job_event(e, type, w, j);
    e->duration_ms = duration;
    e->cpu_time_ms = ctx->cpu_time_ms;
    e->memory_mb = ctx->memory_mb;
    if (type != NAQ_EVENT_COMPLETED) {
        e->error_type = ctx->error_type;
        e->error_message = ctx->error_message;
    }
    json_t *d = ctx->details ? json_deep_copy(ctx->details) : NULL;
    if (extra != NULL) {
        if (d == NULL)
            d = json_object();
        json_object_update(d, extra);
        json_decref(extra);
    }
    *text = d ? naq__json_dumps(d, NAQ__JSON_FLAGS) : NULL;
    json_decref(d);
    e->details_json = *text;
    if (w->client->crypt != NULL)
        seal_event(w, e, text);
}

/* A failed run (its "failed" event is e): retry with a delay when the
 * policy allows, else the dead-letter stream and the final settlement. */
static void settle_failure(naq_worker *w, const char *reply, natsMsg *m, const naq_job *j,
                           const naq_job_ctx *ctx, const naq_event *e)
{
    atomic_fetch_add(&w->failed, 1);
    if (j->attempt <= j->max_retries && naq__retry_allowed(&j->retry, ctx->error_type)) {
        int64_t delay = naq__retry_delay_random_ms(&j->retry, j->attempt);
        naq_client_log(w->client, e);
        log_job(w, NAQ_EVENT_RETRY_SCHEDULED, j,
                json_pack("{s:I, s:i, s:s}", "delay_ms", (json_int_t)delay, "next_attempt",
                          j->attempt + 1, "reason", "failed"),
                ctx->error_type, ctx->error_message);
        nak(w, reply, delay);
        atomic_fetch_add(&w->retried, 1);
        return;
    }
    /* Failed for good: "failed" is the outcome event the ack waits for, and
     * it goes before max_retries_exceeded (naq__dlq_put logs that). */
    settlement *st = settlement_new(w, reply, j, "+ACK");
    if (st != NULL)
        naq__client_log_confirmed(w->client, e, settlement_confirm, st);
    else
        naq_client_log(w->client, e);
    naq_status s = naq__dlq_put(w->client, j, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                                ctx->error_type, ctx->error_message, j->attempt);
    if (s != NAQ_OK) {
        naq__worker_error(w, "DeadLetterFailed",
                          "job %s could not be dead-lettered (%s); it will "
                          "be delivered again",
                          j->id, naq_last_error());
        if (st != NULL)
            settlement_confirm(st, 0); /* no record: logs why, naks with a delay */
        return;
    }
    atomic_fetch_add(&w->dead_lettered, 1);
    if (st != NULL)
        naq__finisher_submit(w->finisher, j,
                             naq__outcome_record(w->client->crypt, j,
                                                 naq__ack_subject_stream_seq(reply), "failed",
                                                 ctx->details, ctx->error_type, ctx->error_message),
                             0, settlement_confirm, st);
}

void naq__worker_run_message(naq__executor *x, natsMsg *m)
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

    /* A redelivery of a message that ran to its end: its ack was lost, or
     * reached the server after the ack wait. Its outcome record names the
     * message, so it is settled again without a second run and without
     * events (the job's last event stays its outcome). Retries come here
     * too, and pay one read; a first delivery never does. */
    if (j.attempt > 1 &&
        naq__outcome_settled(w->client, j.id, naq__ack_subject_stream_seq(natsMsg_GetReply(m)))) {
        naq__worker_ack(w, natsMsg_GetReply(m), "+ACK");
        naq_job_clear(&j);
        return;
    }

    naq_event e;
    /* The enqueuer logs "enqueued" after the server stored the job, so it
     * may still be on its way; log the same event (same event id) first,
     * and the server keeps whichever copy comes first. Only while the
     * event stream's duplicate window surely covers both copies (half of
     * it: room for clock skew); an older job's event is stored already. */
    if (w->client->logger != NULL && j.attempt == 1 &&
        naq__now() - stored_at < w->client->cfg.event_dup_window_s / 2.0 &&
        naq__enqueued_event(&j, &e) == NAQ_OK) {
        naq_client_log(w->client, &e);
        naq_event_clear(&e);
    }
    log_job(w, NAQ_EVENT_DEQUEUED, &j, NULL, NULL, NULL);

    double waited_ms = 0;
    if (ttl_expired(&j, stored_at, &waited_ms)) {
        expire(w, m, &j, waited_ms);
        naq_job_clear(&j);
        return;
    }

    naq_job_ctx ctx;
    naq__job_ctx_init(&ctx);
    /* In the slot before the check: a cancel that comes after the check is
     * seen by the watch (naq__worker_on_cancel), one before it here. */
    naq__slot *sl = slot_begin(x, m, &j, &ctx);
    if (w->watch != NULL ? naq__cancel_watch_has(w->watch, j.id)
                         : naq__cancel_requested(w->client, j.id)) {
        if (slot_claim(w, sl))
            cancel_queued(w, m, &j);
        slot_end(w, sl);
        naq_job_clear(&j);
        return;
    }

    const naq__handler_entry *h = naq__worker_find_handler(w, j.function);
    if (j.attempt > 1)
        log_job(w, NAQ_EVENT_RETRY_STARTED, &j, NULL, NULL, NULL);
    naq__registry_job_started(w->registry, j.id, j.queue);
    double t0 = naq__clock_ms(CLOCK_MONOTONIC);
    double cpu0 = naq__clock_ms(CLOCK_THREAD_CPUTIME_ID);
    if (naq__flag_get(&ctx.handed_back)) {
        /* Handed back (a stop) before it began: not run. */
    } else if (h == NULL) {
        unknown_function(w, &ctx, &j);
    } else if (naq__crypt_is_sealed_text(j.args_json) &&
               naq__crypt_open_args(w->client->crypt, &j) != NAQ_OK) {
        /* Not retried (retry.c): it waits in the dead-letter queue for a
         * worker with the key. */
        naq_job_ctx_fail(&ctx, "DecryptError", "%s", naq_last_error());
    } else {
        log_job(w, NAQ_EVENT_STARTED, &j, NULL, NULL, NULL);
        naq__clear_error();
        naq_status rc = h->fn(&ctx, &j, h->user);
        if (rc != NAQ_OK && !ctx.failed) {
            const char *why = naq_last_error();
            naq_job_ctx_fail(&ctx, "HandlerError", "handler '%s' returned %s%s%s", j.function,
                             naq_status_str(rc), why[0] ? ": " : "", why);
        }
    }
    double duration = naq__clock_ms(CLOCK_MONOTONIC) - t0;
    char *details = NULL; /* of the outcome event e */
    if (h != NULL && ctx.cpu_time_ms == NAQ_UNSET)
        ctx.cpu_time_ms = naq__clock_ms(CLOCK_THREAD_CPUTIME_ID) - cpu0;

    /* worker_released (the registry) goes before the outcome, so that a
     * finished job's last event is its outcome (a job's state is its last
     * event, ARCHITECTURE.md). */
    if (!slot_claim(w, sl)) {
        /* Handed back by the keeper, which logged why and released it: the
         * next delivery owns the outcome, whatever the handler did. */
    } else if (naq__flag_get(&ctx.user_cancelled) && ctx.failed) {
        /* Cancelled while it ran (a handler that finished its work anyway
         * is recorded as completed, below). Not a failure: no retry. */
        naq__registry_job_finished(w->registry, j.id, j.queue, 0);
        outcome_event(&e, w, NAQ_EVENT_CANCELLED, &j, &ctx, duration,
                      json_pack("{s:s}", "while", "running"), &details);
        atomic_fetch_add(&w->cancelled, 1);
        settle_final(w, natsMsg_GetReply(m), &j, &e, "cancelled", &ctx, "Cancelled",
                     "cancelled while it ran", 0, "+ACK");
    } else if (j.timeout_ms > 0 &&
               (naq__flag_get(&ctx.timed_out) || duration > (double)j.timeout_ms)) {
        /* However the handler returned: it ran past its limit. */
        if (!(ctx.failed && ctx.error_type && strcmp(ctx.error_type, "Timeout") == 0))
            naq_job_ctx_fail(&ctx, "Timeout",
                             "job ran for %.0f ms, longer than its timeout of %lld ms", duration,
                             (long long)j.timeout_ms);
        naq__registry_job_finished(w->registry, j.id, j.queue, 0);
        naq_event te;
        naq__worker_job_event(&te, NAQ_EVENT_TIMEOUT, w, &j);
        te.duration_ms = duration;
        te.error_type = ctx.error_type;
        te.error_message = ctx.error_message;
        char *td = malloc(64);
        if (td != NULL)
            snprintf(td, 64, "{\"timeout_ms\":%lld}", (long long)j.timeout_ms);
        te.details_json = td;
        if (w->client->crypt != NULL)
            seal_event(w, &te, &td);
        naq_client_log(w->client, &te);
        free(td);
        outcome_event(&e, w, NAQ_EVENT_FAILED, &j, &ctx, duration, NULL, &details);
        settle_failure(w, natsMsg_GetReply(m), m, &j, &ctx, &e);
    } else if (ctx.failed) {
        naq__registry_job_finished(w->registry, j.id, j.queue, 0);
        outcome_event(&e, w, NAQ_EVENT_FAILED, &j, &ctx, duration, NULL, &details);
        settle_failure(w, natsMsg_GetReply(m), m, &j, &ctx, &e);
    } else {
        naq__registry_job_finished(w->registry, j.id, j.queue, 1);
        outcome_event(&e, w, NAQ_EVENT_COMPLETED, &j, &ctx, duration, NULL, &details);
        atomic_fetch_add(&w->completed, 1);
        settle_final(w, natsMsg_GetReply(m), &j, &e, "completed", &ctx, NULL, NULL, 1, "+ACK");
    }
    free(details);
    if (!naq__flag_get(&ctx.handed_back))
        atomic_fetch_add(&w->processed, 1); /* settled here */
    slot_end(w, sl);
    naq__job_ctx_clear(&ctx);
    naq_job_clear(&j);
}
