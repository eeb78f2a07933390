/*
 * processor.c - event processors: the handlers, global handlers and plugins
 * of handlers.c, run on the processor's own small pool of threads and fed by
 * a live ordered consumer or by a consumer group (group.c).
 *
 * Threads of a started processor:
 *   reader    takes messages from the source, judges the filters on the
 *             Naq-* headers, and queues what passes (bqueue.c). It takes
 *             only while fewer than max_pending events are held, so the
 *             queue never fills and a group member never hoards events.
 *   pool      max_concurrent threads: each decodes an event, runs the
 *             matching handlers one after another and settles the event
 *             (group: ack, nak with backoff, or dead-letter). Handlers run
 *             nowhere else, so at most max_concurrent run at once.
 *             Autoscaling (autoscale_max > 0): autoscale_max threads, of
 *             which only slots_now take events; a thread takes a slot
 *             before it takes an event and gives it back after, so a
 *             shrink never cuts a running handler.
 *   watchdog  declares a handler that overruns handler_timeout_ms failed
 *             (its event is settled there and then; the late result is
 *             ignored) and keeps a group's held events alive with
 *             in-progress acks, so the ack wait only ever expires for a
 *             member that is gone. When autoscaling, it also applies
 *             autoscale.c's rule each tick.
 *
 * Invariants:
 *   - held (taken from the source, not yet settled) <= max_pending.
 *   - a task is settled exactly once, by whoever moves its state to
 *     SETTLED with a compare-and-swap: the pool thread when the handlers
 *     return, the watchdog at a deadline, or the pool at stop (release).
 *   - ack-type calls on one message are serialised by the task's ack_lock,
 *     and none follows its settlement.
 */
#include "core/autoscale.h"
#include "core/crypt.h"
#include "events.h"

#include "core/bqueue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest a live reader waits on the source before looking at the stop flag. */
#define READ_WAIT_MS 200
/* The same for a group member: a pull request that expires unanswered is
 * what triggers a duplicate delivery on nats-server 2.9 (group.c), so an
 * idle member asks once a second; stopping it takes up to that long. */
#define GROUP_READ_WAIT_MS 1000
#define FETCH_BATCH_MAX 256
#define WATCHDOG_TICK_MAX_MS 100
#define WATCHDOG_TICK_MIN_MS 5
/* After a source error (server away, consumer deleted), wait this long. */
#define SOURCE_RETRY_MS 250
/* An autoscaled pool thread waiting for an event gives its slot back this
 * often, so a shrink reaches idle threads too. */
#define SLOT_POLL_MS 100

/* ---- tasks: one event taken from the source ---- */

enum { TASK_QUEUED, TASK_RUNNING, TASK_SETTLED };
#define EXPIRED (-1)

typedef struct task {
    struct task *prev, *next; /* the processor's held list, under its lock */
    struct task *wd_next;     /* the watchdog's private lists */
    natsMsg *msg;
    naq__group_msg gm;
    naq_event event;
    atomic_int state;
    atomic_int refs;
    pthread_mutex_t ack_lock;
    int settled;         /* under ack_lock */
    int64_t progress_ms; /* last keep-alive; under the processor's lock */
    /* Deadline of the handler call running now: 0 = none, EXPIRED once the
     * watchdog took the task. Only the watchdog moves it to EXPIRED and only
     * the pool thread back from it, so after the watchdog's compare-and-swap
     * the pool thread writes neither label nor state again. */
    atomic_int_least64_t deadline_ms;
    char label[NAQ_NAME_MAX + 32]; /* the handler running, for a timeout's reason */
} task;

typedef struct {
    naq_processor *p;
    pthread_t thread;
    naq__handler **snap; /* handlers of the current event (handlers.c) */
    size_t cap;
} pool_thread;

struct naq_processor {
    naq_client *client;
    naq_processor_opts o; /* copy; its pointers are re-aimed at the fields below */
    char group[NAQ_ID_SIZE], queue[NAQ_ID_SIZE], worker[NAQ_ID_SIZE], job_id[NAQ_ID_SIZE];
    naq_event_type types[NAQ_EVENT_TYPE_COUNT];
    unsigned char type_on[NAQ_EVENT_TYPE_COUNT];
    int any_type;
    char filter_subject[NAQ_URL_MAX]; /* "" or the job's literal subject */
    char identity[768];               /* the header filters, canonical */
    int64_t ack_wait_ms;

    naq__handlers *handlers;

    pthread_mutex_t lock;
    pthread_cond_t cond; /* held shrank */
    task held;           /* list head */
    int held_count;
    int started, stopped;
    atomic_int stopping;
    atomic_int watchdog_stop;

    natsSubscription *live_sub;
    naq__group *grp;
    naq__bqueue *queue_q;
    pthread_t reader, watchdog;
    pool_thread *pool;
    int npool;

    atomic_uint_least64_t received, filtered, handled, failed, timed_out, retried, dead_lettered,
        released, ack_failed, undecodable, running, max_running;

    /* Autoscaling (o.autoscale_max > 0). */
    atomic_int slots_now;        /* pool threads that may take events */
    pthread_cond_t slots_cond;   /* under lock: a slot freed, slots_now changed, stop */
    int taking;                  /* under lock: pool threads holding a slot */
    atomic_int busy;             /* pool threads running an event */
    atomic_llong server_pending; /* the source's backlog, from the last message */
    naq__autoscale scale;        /* the watchdog's */
    char member_id[NAQ_ID_SIZE]; /* worker_id of its worker_status_changed events */
};

/* The processor whose pool thread this is, so remove() called from one of
 * its handlers does not wait for itself. */
static _Thread_local naq_processor *tl_pool_of;

/* ---- options ---- */

void naq_processor_opts_init(naq_processor_opts *o)
{
    memset(o, 0, sizeof *o);
    o->start = NAQ_START_NEW;
    o->max_concurrent = 4;
    o->max_pending = 256;
    o->max_deliveries = 5;
    o->backoff_ms[0] = 1000;
    o->backoff_ms[1] = 5000;
    o->backoff_ms[2] = 30000;
    o->backoff_len = 3;
    o->max_ack_pending = 4096;
}

static int has(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static naq_status copy_id(const char *what, const char *src, char *dst)
{
    dst[0] = '\0';
    if (!has(src))
        return NAQ_OK;
    naq_status s = naq_id_validate(what, src);
    if (s == NAQ_OK)
        snprintf(dst, NAQ_ID_SIZE, "%s", src);
    return s;
}

static naq_status bad(const char *fmt, long long v)
{
    return naq__fail(NAQ_ERR_INVALID_ARG, fmt, v);
}

static naq_status check_opts(const naq_processor_opts *o)
{
    if (o->max_concurrent < 1 || o->max_concurrent > 1024)
        return bad("max_concurrent must be 1 to 1024, got %lld", o->max_concurrent);
    if (o->autoscale_max != 0 &&
        (o->autoscale_min < 1 || o->autoscale_min > o->autoscale_max || o->autoscale_max > 1024))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "autoscale %d:%d is not a range; use MIN:MAX with 1 <= MIN <= MAX <= 1024",
                         o->autoscale_min, o->autoscale_max);
    if (o->max_pending < 1 || o->max_pending > 1000000)
        return bad("max_pending must be 1 to 1000000, got %lld", o->max_pending);
    if (o->handler_timeout_ms < 0)
        return bad("handler_timeout_ms must be >= 0 (0 = none), got %lld", o->handler_timeout_ms);
    if (o->ntypes > 0 && o->types == NULL)
        return bad("types is NULL but ntypes is %lld", (long long)o->ntypes);
    for (size_t i = 0; i < o->ntypes; i++)
        if ((int)o->types[i] < 0 || o->types[i] >= NAQ_EVENT_TYPE_COUNT)
            return bad("types holds %lld, which is no event type", o->types[i]);
    switch (o->start) {
    case NAQ_START_NEW:
    case NAQ_START_ALL: break;
    case NAQ_START_SEQUENCE:
        if (o->start_sequence < 1)
            return bad("NAQ_START_SEQUENCE needs start_sequence >= 1, got %lld",
                       (long long)o->start_sequence);
        break;
    case NAQ_START_TIME:
        if (!(o->start_time > 0))
            return bad("NAQ_START_TIME needs start_time > 0 (seconds since the epoch), got %lld",
                       (long long)o->start_time);
        break;
    default: return bad("start %lld is not a naq_start", o->start);
    }
    if (!has(o->group))
        return NAQ_OK;
    if (o->max_deliveries < 1)
        return bad("max_deliveries must be >= 1, got %lld", o->max_deliveries);
    if (o->backoff_len < 0 || o->backoff_len > NAQ_BACKOFF_MAX)
        return bad("backoff_len must be 0 to 8 (NAQ_BACKOFF_MAX), got %lld", o->backoff_len);
    for (int i = 0; i < o->backoff_len; i++)
        if (o->backoff_ms[i] < 0)
            return bad("backoff_ms values must be >= 0, got %lld", o->backoff_ms[i]);
    if (o->ack_wait_ms < 0)
        return bad("ack_wait_ms must be >= 0 (0 = the client's), got %lld", o->ack_wait_ms);
    if (o->max_ack_pending < 1)
        return bad("max_ack_pending must be >= 1, got %lld", o->max_ack_pending);
    return NAQ_OK;
}

/* "types=completed,failed;queue=q;worker=w;job=j": what makes members of
 * one group agree. Types in enum order, so the order given does not matter. */
static void build_identity(naq_processor *p)
{
    size_t n = 0;
    n += (size_t)snprintf(p->identity + n, sizeof p->identity - n, "types=");
    if (p->any_type)
        n += (size_t)snprintf(p->identity + n, sizeof p->identity - n, "*");
    for (int t = 0, first = 1; t < NAQ_EVENT_TYPE_COUNT && n < sizeof p->identity; t++) {
        if (!p->type_on[t] || p->any_type)
            continue;
        n += (size_t)snprintf(p->identity + n, sizeof p->identity - n, "%s%s", first ? "" : ",",
                              naq_event_type_name((naq_event_type)t));
        first = 0;
    }
    if (n < sizeof p->identity)
        snprintf(p->identity + n, sizeof p->identity - n, ";queue=%s;worker=%s;job=%s",
                 has(p->queue) ? p->queue : "*", has(p->worker) ? p->worker : "*",
                 has(p->job_id) ? p->job_id : "*");
}

naq_status naq_processor_create(naq_client *c, const naq_processor_opts *o, naq_processor **out)
{
    *out = NULL;
    naq_status s = check_opts(o);
    if (s != NAQ_OK)
        return s;
    naq_processor *p = calloc(1, sizeof *p);
    if (p == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating a processor");
    p->client = c;
    p->o = *o;
    if ((s = copy_id("queue", o->queue, p->queue)) != NAQ_OK ||
        (s = copy_id("worker id", o->worker, p->worker)) != NAQ_OK ||
        (s = copy_id("job id", o->job_id, p->job_id)) != NAQ_OK)
        goto fail;
    if (has(o->group)) {
        if ((s = naq__group_validate_name(o->group)) != NAQ_OK)
            goto fail;
        snprintf(p->group, sizeof p->group, "%s", o->group);
    }
    p->o.group = p->group;
    p->o.queue = p->queue;
    p->o.worker = p->worker;
    p->o.job_id = p->job_id;
    p->any_type = o->ntypes == 0;
    for (size_t i = 0; i < o->ntypes; i++)
        p->type_on[o->types[i]] = 1;
    p->o.ntypes = 0;
    for (int t = 0; t < NAQ_EVENT_TYPE_COUNT; t++)
        if (p->type_on[t])
            p->types[p->o.ntypes++] = (naq_event_type)t;
    p->o.types = p->types;
    if (has(p->job_id) && (s = naq__subject(c, p->filter_subject, sizeof p->filter_subject,
                                            "jobs.events.%s", p->job_id)) != NAQ_OK)
        goto fail;
    build_identity(p);
    if ((s = naq__handlers_create(&p->handlers)) != NAQ_OK)
        goto fail;
    p->ack_wait_ms = o->ack_wait_ms > 0 ? o->ack_wait_ms : naq_client_config(c)->ack_wait_ms;
    if (p->ack_wait_ms <= 0)
        p->ack_wait_ms = 30000;
    char host_pid[NAQ_ID_SIZE];
    naq__host_pid_id(host_pid);
    snprintf(p->member_id, sizeof p->member_id, "%.40s-%.80s", has(p->group) ? p->group : "live",
             host_pid);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    pthread_cond_init(&p->slots_cond, NULL);
    atomic_init(&p->slots_now, o->autoscale_max > 0 ? o->autoscale_min : o->max_concurrent);
    p->held.next = p->held.prev = &p->held;
    *out = p;
    return NAQ_OK;
fail:
    naq__handlers_destroy(p->handlers);
    free(p);
    return s;
}

/* ---- handlers (handlers.c keeps them) ---- */

naq_status naq_processor_add_handler(naq_processor *p, naq_event_type type, naq_event_handler_fn fn,
                                     void *user, naq_handler_id *id)
{
    return naq__handlers_add(p->handlers, 0, type, fn, user, id);
}

naq_status naq_processor_add_global_handler(naq_processor *p, naq_event_handler_fn fn, void *user,
                                            naq_handler_id *id)
{
    return naq__handlers_add(p->handlers, 1, NAQ_EVENT_ENQUEUED, fn, user, id);
}

naq_status naq_processor_add_plugin(naq_processor *p, const naq_plugin *plugin, naq_handler_id *id)
{
    return naq__handlers_add_plugin(p->handlers, plugin, id);
}

naq_status naq_processor_remove(naq_processor *p, naq_handler_id id)
{
    return naq__handlers_remove(p->handlers, id, tl_pool_of != p);
}

/* ---- filters ---- */

/* 1 when header `name` is present and differs from want (the body decides
 * when a publisher left the header out). */
static int header_differs(natsMsg *m, const char *name, const char *want)
{
    const char *v = NULL;
    if (want[0] == '\0' || natsMsgHeader_Get(m, name, &v) != NATS_OK || v == NULL)
        return 0;
    return strcmp(v, want) != 0;
}

static int headers_pass(const naq_processor *p, natsMsg *m)
{
    const char *v = NULL;
    if (!p->any_type && natsMsgHeader_Get(m, "Naq-Event-Type", &v) == NATS_OK && v != NULL) {
        int hit = 0;
        for (size_t i = 0; i < p->o.ntypes && !hit; i++)
            hit = strcmp(naq_event_type_name(p->types[i]), v) == 0;
        if (!hit)
            return 0;
    }
    return !header_differs(m, "Naq-Queue", p->queue) && !header_differs(m, "Naq-Worker", p->worker);
}

static int body_passes(const naq_processor *p, const naq_event *e)
{
    return (p->any_type || p->type_on[e->type]) &&
           (!has(p->queue) || strcmp(e->queue_name, p->queue) == 0) &&
           (!has(p->worker) || strcmp(e->worker_id, p->worker) == 0) &&
           (!has(p->job_id) || strcmp(e->job_id, p->job_id) == 0);
}

/* ---- tasks ---- */

static void task_unref(task *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    natsMsg_Destroy(t->msg);
    naq_event_clear(&t->event);
    pthread_mutex_destroy(&t->ack_lock);
    free(t);
}

static int task_claim(task *t, int from)
{
    return atomic_compare_exchange_strong(&t->state, &from, TASK_SETTLED);
}

static void unhold(naq_processor *p, task *t)
{
    pthread_mutex_lock(&p->lock);
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = t;
    p->held_count--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void count_outcome(naq_processor *p, const naq_outcome *o)
{
    switch (o->kind) {
    case NAQ_OUTCOME_HANDLED: atomic_fetch_add(&p->handled, 1); break;
    case NAQ_OUTCOME_FAILED: break;
    case NAQ_OUTCOME_RETRY: atomic_fetch_add(&p->retried, 1); break;
    case NAQ_OUTCOME_DEAD_LETTERED: atomic_fetch_add(&p->dead_lettered, 1); break;
    case NAQ_OUTCOME_RELEASED: atomic_fetch_add(&p->released, 1); break;
    case NAQ_OUTCOME_ACK_FAILED: atomic_fetch_add(&p->ack_failed, 1); break;
    }
}

/* Settles a task its caller has claimed: off the held list, then the
 * group's ack / nak / dead-letter, then the report. final: dead-letter a
 * failure whatever the delivery count (it can never succeed). */
static void settle(naq_processor *p, task *t, int ok, int timed_out, int final, const char *reason)
{
    unhold(p, t);
    naq_outcome o = {ok ? NAQ_OUTCOME_HANDLED : NAQ_OUTCOME_FAILED, timed_out, 1, 0,
                     ok ? "" : reason};
    pthread_mutex_lock(&t->ack_lock);
    t->settled = 1;
    if (p->grp != NULL)
        naq__group_settle(p->grp, t->msg, &t->gm, ok, final, reason, &o);
    pthread_mutex_unlock(&t->ack_lock);
    if (!ok)
        atomic_fetch_add(&p->failed, 1);
    if (timed_out)
        atomic_fetch_add(&p->timed_out, 1);
    count_outcome(p, &o);
    if (p->o.on_outcome != NULL)
        p->o.on_outcome(&t->event, &o, p->o.outcome_user);
}

/* Reads the message's origin and decodes it; 0 when it cannot be decoded
 * (then the event carries only where it came from). */
static int prepare(naq_processor *p, task *t, char *reason)
{
    naq__group_msg_info(p->grp, t->msg, &t->gm);
    const char *data = natsMsg_GetData(t->msg);
    naq_status s =
        naq_event_decode(data ? data : "", (size_t)natsMsg_GetDataLength(t->msg), &t->event);
    if (s != NAQ_OK) {
        snprintf(reason, NAQ_REASON_MAX, "event cannot be decoded: %s", naq_last_error());
        naq_event_clear(&t->event);
    } else {
        naq__crypt_open_event(p->client->crypt, &t->event);
    }
    snprintf(t->event.nats_subject, sizeof t->event.nats_subject, "%s", t->gm.original_subject);
    t->event.nats_sequence = t->gm.original_seq;
    return s == NAQ_OK;
}

/* Stop: hand a queued event back without running it. */
static void release_task(naq_processor *p, task *t)
{
    if (!task_claim(t, TASK_QUEUED))
        return;
    char reason[NAQ_REASON_MAX];
    prepare(p, t, reason);
    unhold(p, t);
    naq_outcome o = {NAQ_OUTCOME_RELEASED, 0, t->gm.deliveries, 0, "processor stopped"};
    pthread_mutex_lock(&t->ack_lock);
    t->settled = 1;
    if (p->grp != NULL)
        naq__group_release(t->msg);
    pthread_mutex_unlock(&t->ack_lock);
    count_outcome(p, &o);
    if (p->o.on_outcome != NULL)
        p->o.on_outcome(&t->event, &o, p->o.outcome_user);
}

static void note_running(naq_processor *p)
{
    uint64_t now = atomic_fetch_add(&p->running, 1) + 1;
    uint64_t max = atomic_load(&p->max_running);
    while (now > max && !atomic_compare_exchange_weak(&p->max_running, &max, now))
        ;
}

/* Runs the handlers of e in order; 1 when all succeeded. Stops early when
 * one fails or overran its deadline (then the watchdog has settled the
 * task and this thread must leave it alone). */
static int run_handlers(pool_thread *pt, task *t, size_t n, char *reason)
{
    naq_processor *p = pt->p;
    for (size_t i = 0; i < n; i++) {
        const naq__handler *h = pt->snap[i];
        naq__handler_label(h, t->label, sizeof t->label);
        char why[NAQ_REASON_MAX] = "";
        int64_t timeout = p->o.handler_timeout_ms;
        atomic_store(&t->deadline_ms, timeout > 0 ? naq__mono_ms() + timeout : 0);
        note_running(p);
        int rc = naq__handler_call(h, &t->event, why);
        atomic_fetch_sub(&p->running, 1);
        if (atomic_exchange(&t->deadline_ms, 0) == EXPIRED)
            return 0; /* the late result is ignored */
        if (rc != 0) {
            why[NAQ_REASON_MAX - 1] = '\0';
            const char *plugin = naq__handler_plugin(h);
            if (plugin != NULL)
                snprintf(reason, NAQ_REASON_MAX, "%.60s: %.190s", plugin, /* fits, untruncated */
                         why[0] ? why : "failed without a reason");
            else if (why[0])
                snprintf(reason, NAQ_REASON_MAX, "%s", why);
            else
                snprintf(reason, NAQ_REASON_MAX, "%s failed without a reason (returned %d)",
                         t->label, rc);
            return 0;
        }
    }
    return 1;
}

static void run_task(pool_thread *pt, task *t)
{
    naq_processor *p = pt->p;
    char reason[NAQ_REASON_MAX] = "";
    if (!prepare(p, t, reason)) {
        atomic_fetch_add(&p->undecodable, 1);
        if (task_claim(t, TASK_QUEUED))
            settle(p, t, 0, 0, 1, reason); /* can never succeed: dead-letter at once */
        return;
    }
    if (!body_passes(p, &t->event)) {
        atomic_fetch_add(&p->filtered, 1);
        if (task_claim(t, TASK_QUEUED)) {
            unhold(p, t);
            pthread_mutex_lock(&t->ack_lock);
            t->settled = 1;
            if (p->grp != NULL)
                naq__group_skip(p->grp, t->msg);
            pthread_mutex_unlock(&t->ack_lock);
        }
        return;
    }
    atomic_fetch_add(&p->received, 1);
    if (p->grp != NULL && t->gm.deliveries > p->o.max_deliveries) {
        snprintf(reason, sizeof reason,
                 "delivered %d times without being settled (the members that held it stopped "
                 "or died); max_deliveries is %d",
                 t->gm.deliveries, p->o.max_deliveries);
        if (task_claim(t, TASK_QUEUED))
            settle(p, t, 0, 0, 1, reason);
        return;
    }
    int queued = TASK_QUEUED;
    if (!atomic_compare_exchange_strong(&t->state, &queued, TASK_RUNNING))
        return;
    size_t n = naq__handlers_take(p->handlers, t->event.type, &pt->snap, &pt->cap);
    int ok = run_handlers(pt, t, n, reason);
    naq__handlers_release(p->handlers, pt->snap, n);
    /* Fails when the watchdog settled it at the deadline: this late result
     * is ignored. */
    if (task_claim(t, TASK_RUNNING))
        settle(p, t, ok, 0, 0, reason);
}

/* Autoscaling: waits until fewer than slots_now pool threads hold a slot
 * and takes one. When stopping every thread takes one, so that all of
 * them drain the queue. */
static void take_slot(naq_processor *p)
{
    pthread_mutex_lock(&p->lock);
    while (!atomic_load(&p->stopping) && p->taking >= atomic_load(&p->slots_now))
        pthread_cond_wait(&p->slots_cond, &p->lock);
    p->taking++;
    pthread_mutex_unlock(&p->lock);
}

static void give_slot(naq_processor *p)
{
    pthread_mutex_lock(&p->lock);
    p->taking--;
    pthread_cond_signal(&p->slots_cond);
    pthread_mutex_unlock(&p->lock);
}

static void *pool_main(void *arg)
{
    pool_thread *pt = arg;
    naq_processor *p = pt->p;
    int scaled = p->o.autoscale_max > 0;
    tl_pool_of = p;
    for (;;) {
        naq__bqueue_record *r = NULL;
        size_t n = 0;
        if (scaled)
            take_slot(p);
        naq_status s = naq__bqueue_pop_batch(p->queue_q, &r, 1, scaled ? SLOT_POLL_MS : -1, &n);
        if (n == 1) {
            task *t;
            memcpy(&t, r->data, sizeof t);
            naq__bqueue_record_free(r);
            atomic_fetch_add(&p->busy, 1);
            if (atomic_load(&p->stopping))
                release_task(p, t);
            else
                run_task(pt, t);
            atomic_fetch_sub(&p->busy, 1);
            task_unref(t);
        }
        if (scaled)
            give_slot(p);
        if (s == NAQ_ERR_CLOSED)
            break;
    }
    return NULL;
}

/* ---- reader ---- */

/* Waits until fewer than max_pending events are held; returns the room,
 * 0 when stopping. */
static int wait_for_room(naq_processor *p)
{
    int room = 0;
    pthread_mutex_lock(&p->lock);
    while (!atomic_load(&p->stopping) && (room = p->o.max_pending - p->held_count) <= 0) {
        struct timespec ts = naq__deadline(CLOCK_REALTIME, 100);
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
    return atomic_load(&p->stopping) ? 0 : room;
}

static naq_status read_source(naq_processor *p, natsMsg **msgs, int max, int *n)
{
    if (p->grp != NULL)
        return naq__group_fetch(p->grp, msgs, max, GROUP_READ_WAIT_MS, n);
    *n = 0;
    natsStatus ns = natsSubscription_NextMsg(&msgs[0], p->live_sub, READ_WAIT_MS);
    if (ns == NATS_OK)
        *n = 1;
    else if (ns != NATS_TIMEOUT)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read the live event stream");
    return NAQ_OK;
}

/* The source's backlog as the server last told it, in the message's ack
 * subject (core/ack_subject.c). */
static void note_backlog(naq_processor *p, natsMsg *m)
{
    naq__ack_info ack;
    if (naq__ack_subject_parse(natsMsg_GetReply(m), &ack))
        atomic_store(&p->server_pending, ack.pending);
}

static void take(naq_processor *p, natsMsg *m)
{
    if (!headers_pass(p, m)) {
        atomic_fetch_add(&p->filtered, 1);
        if (p->grp != NULL)
            naq__group_skip(p->grp, m);
        natsMsg_Destroy(m);
        return;
    }
    task *t = calloc(1, sizeof *t);
    if (t == NULL) {
        if (p->grp != NULL)
            naq__group_release(m); /* someone with memory takes it */
        natsMsg_Destroy(m);
        return;
    }
    t->msg = m;
    note_backlog(p, m);
    naq_event_init(&t->event, NAQ_EVENT_ENQUEUED);
    atomic_init(&t->state, TASK_QUEUED);
    atomic_init(&t->refs, 1);
    atomic_init(&t->deadline_ms, 0);
    pthread_mutex_init(&t->ack_lock, NULL);
    pthread_mutex_lock(&p->lock);
    t->progress_ms = naq__mono_ms();
    t->next = &p->held;
    t->prev = p->held.prev;
    p->held.prev->next = t;
    p->held.prev = t;
    p->held_count++;
    pthread_mutex_unlock(&p->lock);
    /* Cannot fail: the queue holds max_pending and at most that many are held. */
    naq__bqueue_push(p->queue_q, &t, sizeof t);
}

static void *reader_main(void *arg)
{
    naq_processor *p = arg;
    natsMsg *msgs[FETCH_BATCH_MAX];
    while (!atomic_load(&p->stopping)) {
        int room = wait_for_room(p);
        if (room <= 0)
            continue;
        int n = 0;
        naq_status s = read_source(p, msgs, room < FETCH_BATCH_MAX ? room : FETCH_BATCH_MAX, &n);
        if (s != NAQ_OK) {
            naq__sleep_ms(SOURCE_RETRY_MS);
            continue;
        }
        for (int i = 0; i < n; i++)
            take(p, msgs[i]);
    }
    return NULL;
}

/* ---- watchdog ---- */

/* A change of the pool's size is a worker_status_changed event of the
 * member (its details as a worker's: old_concurrency, new_concurrency,
 * reason, plus the group). */
static void log_concurrency(naq_processor *p, int from, int to, const char *reason)
{
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_WORKER_STATUS_CHANGED);
    snprintf(e.worker_id, sizeof e.worker_id, "%s", p->member_id);
    snprintf(e.worker_type, sizeof e.worker_type, "processor");
    char msg[96], details[256];
    snprintf(msg, sizeof msg, "concurrency %d -> %d (%s)", from, to, reason);
    snprintf(details, sizeof details,
             "{\"group\":\"%s\",\"old_concurrency\":%d,\"new_concurrency\":%d,\"reason\":\"%s\"}",
             p->group, from, to, reason);
    e.message = msg;
    e.details_json = details;
    naq_client_log(p->client, &e); /* copies: the strings are borrowed */
}

static void autoscale_tick(naq_processor *p, int64_t now)
{
    int slots = atomic_load(&p->slots_now), busy = atomic_load(&p->busy);
    pthread_mutex_lock(&p->lock);
    long long waiting = p->held_count - busy; /* taken from the source, not started */
    pthread_mutex_unlock(&p->lock);
    waiting += atomic_load(&p->server_pending);
    const char *reason = NULL;
    int to = naq__autoscale_step(&p->scale, slots, p->o.autoscale_min, p->o.autoscale_max, busy,
                                 waiting, now, &reason);
    if (to == slots)
        return;
    atomic_store(&p->slots_now, to);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->slots_cond);
    pthread_mutex_unlock(&p->lock);
    log_concurrency(p, slots, to, reason);
}

static void *watchdog_main(void *arg)
{
    naq_processor *p = arg;
    int64_t timeout = p->o.handler_timeout_ms;
    int64_t tick = timeout > 0 ? timeout / 10 : WATCHDOG_TICK_MAX_MS;
    if (tick < WATCHDOG_TICK_MIN_MS)
        tick = WATCHDOG_TICK_MIN_MS;
    if (tick > WATCHDOG_TICK_MAX_MS)
        tick = WATCHDOG_TICK_MAX_MS;
    /* In-progress acks well before the ack wait runs out. */
    int64_t keepalive = p->ack_wait_ms / 3 > 0 ? p->ack_wait_ms / 3 : 1;
    while (!atomic_load(&p->watchdog_stop)) {
        naq__sleep_ms(tick);
        int64_t now = naq__mono_ms();
        if (p->o.autoscale_max > 0)
            autoscale_tick(p, now);
        task *expired = NULL, *alive = NULL;
        pthread_mutex_lock(&p->lock);
        for (task *t = p->held.next; t != &p->held; t = t->next) {
            int_least64_t dl = atomic_load(&t->deadline_ms);
            if (dl > 0 && now >= dl &&
                atomic_compare_exchange_strong(&t->deadline_ms, &dl, EXPIRED)) {
                task_claim(t, TASK_RUNNING); /* cannot fail: its handler is still out */
                atomic_fetch_add(&t->refs, 1);
                t->wd_next = expired;
                expired = t;
            } else if (p->grp != NULL && now - t->progress_ms >= keepalive) {
                t->progress_ms = now;
                atomic_fetch_add(&t->refs, 1);
                t->wd_next = alive;
                alive = t;
            }
        }
        pthread_mutex_unlock(&p->lock);
        for (task *t = expired, *next; t != NULL; t = next) {
            next = t->wd_next;
            char reason[NAQ_REASON_MAX];
            snprintf(reason, sizeof reason,
                     "%s timed out after %lld ms (it is still running; its result will be "
                     "ignored)",
                     t->label, (long long)timeout);
            settle(p, t, 0, 1, 0, reason);
            task_unref(t);
        }
        for (task *t = alive, *next; t != NULL; t = next) {
            next = t->wd_next;
            pthread_mutex_lock(&t->ack_lock);
            if (!t->settled)
                naq__group_keepalive(t->msg);
            pthread_mutex_unlock(&t->ack_lock);
            task_unref(t);
        }
    }
    return NULL;
}

/* ---- lifecycle ---- */

static naq_status open_live(naq_processor *p)
{
    naq_client *c = p->client;
    naq__event_start at = {js_DeliverAll, 0, 0};
    switch (p->o.start) {
    case NAQ_START_NEW: at.policy = js_DeliverNew; break;
    case NAQ_START_ALL: break;
    case NAQ_START_SEQUENCE: at.seq = p->o.start_sequence; break;
    case NAQ_START_TIME: at.ns = (int64_t)(p->o.start_time * 1e9); break;
    }
    /* The stream holds only events, so ">" is all of it (see live.c). */
    const char *subject = p->filter_subject[0] ? p->filter_subject : ">";
    char what[NAQ_NAME_MAX + 64];
    snprintf(what, sizeof what, "cannot follow event stream %s live", c->cfg.event_stream);
    return naq__event_subscribe(c, subject, at, &p->live_sub, what);
}

static void close_source(naq_processor *p)
{
    if (p->live_sub != NULL) {
        natsSubscription_Unsubscribe(p->live_sub); /* deletes the ephemeral consumer now */
        natsSubscription_Destroy(p->live_sub);
        p->live_sub = NULL;
    }
    naq__group_leave(p->grp);
    p->grp = NULL;
}

static naq_status open_source(naq_processor *p)
{
    if (!has(p->group))
        return open_live(p);
    naq__group_cfg g = {p->group,        p->filter_subject,    p->identity,
                        p->o.start,      p->o.start_sequence,  p->o.start_time,
                        p->ack_wait_ms,  p->o.max_ack_pending, p->o.max_deliveries,
                        p->o.backoff_ms, p->o.backoff_len,     p->o.ack_sync};
    return naq__group_join(p->client, &g, &p->grp);
}

/* Stops and joins whatever threads run (also used when start fails). */
static void stop_threads(naq_processor *p, int reader, int npool, int watchdog)
{
    atomic_store(&p->stopping, 1);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->cond);
    pthread_cond_broadcast(&p->slots_cond);
    pthread_mutex_unlock(&p->lock);
    if (reader)
        pthread_join(p->reader, NULL);
    naq__bqueue_close(p->queue_q);
    for (int i = 0; i < npool; i++)
        pthread_join(p->pool[i].thread, NULL);
    atomic_store(&p->watchdog_stop, 1);
    if (watchdog)
        pthread_join(p->watchdog, NULL);
}

static void free_runtime(naq_processor *p)
{
    close_source(p);
    naq__bqueue_destroy(p->queue_q);
    p->queue_q = NULL;
    if (p->pool != NULL)
        for (int i = 0; i < p->npool; i++)
            free(p->pool[i].snap);
    free(p->pool);
    p->pool = NULL;
}

naq_status naq_processor_start(naq_processor *p)
{
    pthread_mutex_lock(&p->lock);
    int again = p->started;
    p->started = 1;
    pthread_mutex_unlock(&p->lock);
    if (again)
        return naq__fail(NAQ_ERR_INVALID_ARG, "processor was started already; create another");
    naq_status s = open_source(p);
    if (s == NAQ_OK)
        s = naq__bqueue_create((size_t)p->o.max_pending, (size_t)p->o.max_pending * sizeof(task *),
                               &p->queue_q);
    p->npool = p->o.autoscale_max > 0 ? p->o.autoscale_max : p->o.max_concurrent;
    atomic_store(&p->slots_now, p->o.autoscale_max > 0 ? p->o.autoscale_min : p->npool);
    memset(&p->scale, 0, sizeof p->scale);
    if (s == NAQ_OK && (p->pool = calloc((size_t)p->npool, sizeof *p->pool)) == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory starting a processor");
    int started_pool = 0, reader = 0, watchdog = 0;
    for (; s == NAQ_OK && started_pool < p->npool; started_pool++) {
        p->pool[started_pool].p = p;
        if (pthread_create(&p->pool[started_pool].thread, NULL, pool_main,
                           &p->pool[started_pool]) != 0)
            s = naq__fail(NAQ_ERR_NO_MEMORY, "cannot start processor threads");
    }
    if (s != NAQ_OK && started_pool > 0)
        started_pool--; /* the failed one did not start */
    if (s == NAQ_OK) {
        watchdog = pthread_create(&p->watchdog, NULL, watchdog_main, p) == 0;
        reader = watchdog && pthread_create(&p->reader, NULL, reader_main, p) == 0;
        if (!reader)
            s = naq__fail(NAQ_ERR_NO_MEMORY, "cannot start processor threads");
    }
    if (s != NAQ_OK) {
        if (p->queue_q != NULL)
            stop_threads(p, reader, started_pool, watchdog);
        free_runtime(p);
        atomic_store(&p->stopping, 0);
        atomic_store(&p->watchdog_stop, 0);
        pthread_mutex_lock(&p->lock);
        p->started = 0;
        pthread_mutex_unlock(&p->lock);
    }
    return s;
}

void naq_processor_stop(naq_processor *p)
{
    pthread_mutex_lock(&p->lock);
    int run = p->started && !p->stopped;
    p->stopped = 1;
    pthread_mutex_unlock(&p->lock);
    if (!run)
        return;
    stop_threads(p, 1, p->npool, 1);
    free_runtime(p);
}

void naq_processor_destroy(naq_processor *p)
{
    if (p == NULL)
        return;
    naq_processor_stop(p);
    naq__handlers_destroy(p->handlers); /* plugins' on_stop */
    pthread_cond_destroy(&p->slots_cond);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void naq_processor_get_stats(naq_processor *p, naq_processor_stats *out)
{
    memset(out, 0, sizeof *out);
    out->received = atomic_load(&p->received);
    out->filtered = atomic_load(&p->filtered);
    out->handled = atomic_load(&p->handled);
    out->failed = atomic_load(&p->failed);
    out->timed_out = atomic_load(&p->timed_out);
    out->retried = atomic_load(&p->retried);
    out->dead_lettered = atomic_load(&p->dead_lettered);
    out->released = atomic_load(&p->released);
    out->ack_failed = atomic_load(&p->ack_failed);
    out->undecodable = atomic_load(&p->undecodable);
    out->running = atomic_load(&p->running);
    out->max_running = atomic_load(&p->max_running);
    out->concurrency = (uint64_t)atomic_load(&p->slots_now);
    pthread_mutex_lock(&p->lock);
    out->pending = (uint64_t)p->held_count;
    pthread_mutex_unlock(&p->lock);
}

const char *naq_processor_member_id(const naq_processor *p)
{
    return p->member_id;
}
