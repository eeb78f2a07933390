/*
 * worker_pull.c - how a worker's executors get their jobs: one fetcher per
 * worker pulls in batches sized to the free slots and hands the messages
 * out, highest priority first.
 *
 * Pulling. Each (queue, priority) has a durable consumer "naq_<q>_p<n>".
 * The fetcher asks for messages by publishing pull requests
 * ($JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>) on the worker's own
 * connection, which sends at once (no flush, no PING per request), with
 * the reply subject "<inbox>.<request slot>.<generation>" (pull_request.h:
 * the requests and how the server ends them). At most one request is open
 * per consumer. Its batch is what the worker can take now:
 *     free slots (concurrency - jobs running) + prefetch - ready - requested
 * so the server hands out no more than the worker will start, and a slot
 * that frees up asks for the next job at once (naq__worker_job_done), from
 * the executor's thread, without waiting for any reply.
 *
 * Reading. The fetcher has no thread of its own: an idle executor reads
 * the replies itself (one at a time: the "reader"), so a job goes from
 * nats.c's socket thread to the executor that runs it with one hand-off,
 * not two. When every executor is busy, the keeper drains the replies
 * (naq__fetcher_in_progress), so prefetched jobs get in-progress acks.
 *
 * Measured on nats-server 2.9.10 (a probe program against the real server;
 * how requests end is in pull_request.h):
 *  - job messages arrive with their own subject, not the reply subject:
 *    their ack subject names the consumer (and the messages still pending
 *    on it, the last token), which is how a job is counted against the
 *    request that fetched it. A message for a request already counted as
 *    ended (a no-wait request the server kept after losing a race) is
 *    simply ours: it is handed out like any other.
 *
 * Prefetch. With NAQ_PREFETCH_AUTO the fetcher sizes "prefetch" from two
 * averages it measures: how long a slot holds a job (taken to done, naq's
 * own work included) and how long a no-wait request takes to bring its
 * first job (the round trip). A request goes out once half the room
 * (slots + prefetch) is free, so that half must last one round trip:
 *     prefetch = 2 * concurrency * round trip / job time - concurrency,
 * between 0 and NAQ_PREFETCH_AUTO_MAX. Jobs shorter than a round trip are
 * fetched ahead (for no-op jobs the server is asked about once per
 * NAQ_PREFETCH_AUTO_MAX / 2 jobs, not once per job); jobs that take
 * longer are not, so an idle worker is not kept from a job another one
 * holds. A job running longer than the average counts with its time so
 * far, so fetching ahead stops as soon as long jobs follow short ones
 * (what was fetched before waits its turn), and a worker that ran out of
 * jobs measures the job time afresh. Until both averages exist it is 0. The delay this adds to a
 * higher-priority job that arrives meanwhile is about one round trip.
 *
 * Fairness rule. A job is taken from the highest priority level that has
 * one waiting: when the worker can take more, levels are asked from 4 down
 * to 0 with no-wait requests, skipping a level known to be empty; within a
 * level, queues are asked round-robin, so one busy queue cannot starve
 * another of the same priority. Jobs fetched are handed out highest level
 * first. A job whose retry is delayed is held by the server (a delayed
 * nak) and comes back through the same requests.
 *
 * Doorbells. Which levels are empty is not found by asking each of them
 * every few milliseconds (a JetStream request and its "no messages" answer
 * per level: with jobs at one level, most of the requests a worker made).
 * The level jobs last came from (the focus) counts as empty for
 * EMPTY_HINT_MS after it was found so, as before. Every other level found
 * empty gets a doorbell: a plain NATS subscription on its job subject
 * ("<prefix>.queue.<queue>.<level>"), which hears every job published
 * there (new jobs, retries from the dead-letter queue, released delayed
 * jobs and dependents) and makes the level worth asking again at once.
 * What a doorbell cannot hear is a message the server delivers again (a
 * delayed nak, an ack wait that ran out, a worker that stopped), so a
 * level with a doorbell is still asked every BELL_PROBE_MS. A job that
 * comes from a level ends its doorbell (the level is busy: every job there
 * would ring it) and gives the level jobs came from before a doorbell;
 * the first time a level without one is found empty, the doorbell is set
 * up and the level asked once more, for the jobs published before the
 * server had the subscription. So a job published at another level than
 * the one an idle worker polls starts at once, not when the poll ends.
 * The doorbells share nats.c's delivery thread (the pull connection's
 * option), so they cost no thread of their own.
 *
 * Polling. When every level is empty the fetcher polls the level where it
 * last found a job: a stream of jobs at one level starts at once, a job at
 * another level when its doorbell rings. A poll asks for what the worker
 * can take (free slots + prefetch), and while it is open the worker asks
 * again only once half of the room is free, as while jobs run. So jobs
 * that come one at a time, as from a producer that waits for each
 * enqueue, come several to a request when they are short, instead of one
 * request and a round of probes per job (docs/benchmarks.md, "Requests
 * per job"). Polls differ in length:
 *  - for the free slots only (auto prefetch after a quiet spell is 0: the
 *    next jobs may be long ones): IDLE_PULL_MS, with heartbeats, so an
 *    idle worker costs the server two requests a second;
 *  - beyond the free slots: PREFETCH_PULL_MS, without heartbeats. The
 *    server cannot be asked to shrink a request, so this bounds how old
 *    the prefetch it was sized with can be when a job fills it: long jobs
 *    that follow short ones come to a worker already busy only within
 *    that time.
 */
#include "pull_request.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest wait of one long poll when idle. */
#define IDLE_PULL_MS 500
/* Longest wait of a poll that asks for more than the free slots (see
 * "Polling" above): the prefetch it was sized with is never older. */
#define PREFETCH_PULL_MS 50
/* See "Doorbells" above: how long the focus level counts as empty; long
 * enough that a busy lower level does not pay a probe per job, short
 * enough for priorities to bite. */
#define EMPTY_HINT_MS 5
/* How often a level with a doorbell is asked anyway, for the jobs the
 * server delivers again (they ring no bell). */
#define BELL_PROBE_MS 250
/* Pause after a failed request (server away, consumer missing). */
#define ERROR_BACKOFF_MS 250
/* How long the reader waits for a reply before it looks at its requests. */
#define FETCH_TICK_MS 50
/* Weight of a new sample in the auto-prefetch averages: 1/8. */
#define AVG_SHIFT 3

typedef struct ready_msg {
    struct ready_msg *next;
    natsMsg *m;
    int64_t since_ms; /* when it arrived: in-progress acks while it waits */
} ready_msg;

/* The doorbell of one request slot, and the closure of its callbacks. */
typedef struct {
    naq__fetcher *f;
    int slot;
    natsSubscription *sub; /* NULL: none */
} bell;

struct naq__fetcher {
    naq_worker *w;
    pthread_mutex_t lock;
    pthread_cond_t ready_cv; /* executors wait here for a job */
    pthread_cond_t bells_cv; /* a doorbell's last callback returned */
    bell *bells;             /* per request slot */
    int bells_live;          /* subscriptions whose last callback may not have returned */
    natsSubscription *sub;   /* "<inbox>.*.*": every reply to our requests */
    char inbox[64];
    unsigned next_gen; /* of the next request */
    ready_msg *ready[NAQ_PRIORITY_LEVELS], *ready_tail[NAQ_PRIORITY_LEVELS];
    int nready, running, requested;
    naq__pull_req *reqs;      /* nqueues * NAQ_PRIORITY_LEVELS */
    int next_queue;           /* round-robin start within a level */
    int focus_q, focus_l;     /* where the last job came from */
    int64_t backoff_until_ms; /* after an error, no request before this */
    int reading;              /* an executor (or the keeper) reads replies */
    int stopping;
    int64_t trip_us, job_us; /* auto prefetch: averages, 0 = none yet */
    long long backlog;       /* jobs pending on the server, as the last reply said */
};

/* The request slot of (queue q, level): the index into reqs and bells. */
static int slot_of(int q, int level)
{
    return q * NAQ_PRIORITY_LEVELS + level;
}

static naq__pull_req *req_of(naq__fetcher *f, int q, int level)
{
    return &f->reqs[slot_of(q, level)];
}

/* Lock held. The prefetch in force (see "Prefetch" above). */
static int prefetch_now(const naq__fetcher *f)
{
    const naq_worker *w = f->w;
    if (w->prefetch != NAQ_PREFETCH_AUTO)
        return w->prefetch;
    if (f->trip_us <= 0 || f->job_us <= 0)
        return 0;
    /* A job running longer than the average counts with its time so far:
     * when long jobs follow short ones, fetching ahead stops at once. */
    int64_t job_us = f->job_us, now = naq__mono_us();
    for (int i = 0; i < w->concurrency && f->running > 0; i++) {
        int64_t taken = w->execs[i].taken_us;
        if (taken > 0 && now - taken > job_us)
            job_us = now - taken;
    }
    int slots = atomic_load(&w->slots_now);
    int64_t p = 2 * (int64_t)slots * f->trip_us / job_us - slots;
    return p < 0 ? 0 : p > NAQ_PREFETCH_AUTO_MAX ? NAQ_PREFETCH_AUTO_MAX : (int)p;
}

/* Adds a sample to a running average (the first sample starts it). */
static void average_in(int64_t *avg, int64_t sample)
{
    if (sample <= 0)
        sample = 1;
    *avg = *avg == 0 ? sample : *avg + ((sample - *avg) >> AVG_SHIFT);
}

/* Lock held. The request of (q, level) has ended: what it did not deliver
 * is no longer expected. */
static void req_end(naq__fetcher *f, naq__pull_req *r)
{
    if (!r->open)
        return;
    int left = r->batch - r->delivered;
    f->requested -= left > 0 ? left : 0;
    r->open = 0;
}

static int send_request(naq__fetcher *f, int q, int level, int n, int64_t expires_ms);
static void refill(naq__fetcher *f);

/* ---------------------------------------------------------------- doorbells */

/* Lock held. Whether a request may go out now. */
static int may_ask(const naq__fetcher *f)
{
    return !f->stopping && !naq__worker_stopping(f->w) && naq__mono_ms() >= f->backoff_until_ms;
}

/* nats.c's delivery thread: a job was published at a level with a
 * doorbell, which is then worth asking at once. */
static void bell_rang(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc;
    (void)sub;
    const bell *b = closure;
    naq__fetcher *f = b->f;
    int q = b->slot / NAQ_PRIORITY_LEVELS, level = b->slot % NAQ_PRIORITY_LEVELS;
    natsMsg_Destroy(m);
    pthread_mutex_lock(&f->lock);
    f->w->queues[q].empty_until[level] = 0;
    /* A worker with a slot free and nothing to start waits in a poll at
     * another level, which the server cannot be asked to end: this level
     * is asked too (at worst one job more than the worker can start at
     * once, which waits its turn here). */
    if (f->running + f->nready < atomic_load(&f->w->slots_now) && !req_of(f, q, level)->open &&
        may_ask(f))
        send_request(f, q, level, 1, 0);
    else
        refill(f);
    pthread_mutex_unlock(&f->lock);
}

/* nats.c's delivery thread: a doorbell's last callback has returned. */
static void bell_closed(void *closure)
{
    naq__fetcher *f = ((const bell *)closure)->f;
    pthread_mutex_lock(&f->lock);
    f->bells_live--;
    pthread_cond_broadcast(&f->bells_cv);
    pthread_mutex_unlock(&f->lock);
}

/* Lock held. Sets up the doorbell of slot i; 0 when it cannot (the level
 * is then asked as the focus is). */
static int bell_open(naq__fetcher *f, int i)
{
    naq_worker *w = f->w;
    char subject[NAQ_URL_MAX];
    if (naq__subject(w->client, subject, sizeof subject, "queue.%s.%d",
                     w->queues[i / NAQ_PRIORITY_LEVELS].name, i % NAQ_PRIORITY_LEVELS) != NAQ_OK)
        return 0;
    bell *b = &f->bells[i];
    natsSubscription *sub = NULL;
    /* No callback runs before the lock is let go, so the completion
     * callback is in place before the first one can. */
    if (natsConnection_Subscribe(&sub, w->nc, subject, bell_rang, b) != NATS_OK)
        return 0;
    if (natsSubscription_SetOnCompleteCB(sub, bell_closed, b) != NATS_OK) {
        natsSubscription_Destroy(sub); /* closed already: it delivers nothing */
        return 0;
    }
    natsSubscription_SetPendingLimits(sub, -1, -1); /* a burst of jobs rings it many times */
    b->sub = sub;
    f->bells_live++;
    return 1;
}

/* Lock held. Ends the doorbell of slot i, if it has one. */
static void bell_close(naq__fetcher *f, int i)
{
    bell *b = &f->bells[i];
    if (b->sub == NULL)
        return;
    natsSubscription_Unsubscribe(b->sub);
    natsSubscription_Destroy(b->sub);
    b->sub = NULL;
}

/* Lock held. A job came from (q, level): the level is busy (each job
 * there would ring its doorbell), and the level jobs came from before
 * gets a doorbell as the other levels have. */
static void focus_on(naq__fetcher *f, int q, int level)
{
    int was = slot_of(f->focus_q, f->focus_l), now = slot_of(q, level);
    bell_close(f, now);
    f->focus_q = q;
    f->focus_l = level;
    if (was != now && f->bells[was].sub == NULL && !f->stopping)
        bell_open(f, was);
}

/* Lock held. (q, level) was found empty: see "Doorbells" above for when
 * it is asked again. */
static void found_empty(naq__fetcher *f, int q, int level)
{
    int64_t *until = &f->w->queues[q].empty_until[level];
    int64_t now = naq__mono_ms();
    int i = slot_of(q, level);
    if (i == slot_of(f->focus_q, f->focus_l))
        *until = now + EMPTY_HINT_MS;
    else if (f->bells[i].sub != NULL)
        *until = now + BELL_PROBE_MS;
    else if (!f->stopping && bell_open(f, i))
        *until = 0; /* once more: a job published before the subscription */
    else
        *until = now + EMPTY_HINT_MS;
}

/* ---------------------------------------------------------------- requests */

/* Lock held. Sends a request for n jobs to (q, level): a no-wait probe
 * (expires_ms 0), or a poll that waits up to expires_ms. */
static int send_request(naq__fetcher *f, int q, int level, int n, int64_t expires_ms)
{
    naq_worker *w = f->w;
    char reply[96], body[128];
    unsigned gen = ++f->next_gen;
    naq__pull_req_subject(f->inbox, slot_of(q, level), gen, reply, sizeof reply);
    naq__pull_req_body(n, expires_ms, body, sizeof body);
    natsStatus ns =
        natsConnection_PublishRequestString(w->nc, w->queues[q].next_subject[level], reply, body);
    if (ns != NATS_OK) {
        naq__worker_error(w, "PullFailed", "cannot ask for jobs (%s); is the server away?",
                          natsStatus_GetText(ns));
        f->backoff_until_ms = naq__mono_ms() + ERROR_BACKOFF_MS;
        return 0;
    }
    naq__pull_req_sent(req_of(f, q, level), gen, n, expires_ms, naq__mono_ms(), naq__mono_us());
    f->requested += n;
    return 1;
}

/* Lock held. Asks for as many jobs as the worker can take now, by the
 * fairness rule. */
static void refill(naq__fetcher *f)
{
    naq_worker *w = f->w;
    int64_t now = naq__mono_ms();
    if (!may_ask(f))
        return;
    int prefetch = prefetch_now(f);
    atomic_store(&w->prefetch_now, prefetch);
    int slots = atomic_load(&w->slots_now);
    int want = slots - f->running + prefetch - f->nready - f->requested;
    /* One probe at a time, highest level first: were two levels asked at
     * once, the lower one's answer could come first and its job start
     * while the higher one's is on its way. */
    int any_open = 0;
    for (int i = 0; i < w->nqueues * NAQ_PRIORITY_LEVELS; i++) {
        if (f->reqs[i].open && f->reqs[i].expires_ms == 0)
            return;
        any_open |= f->reqs[i].open;
    }
    /* While jobs still run or a poll is open, ask only once half of the
     * room is free: one request for several jobs costs the server a
     * fraction of several requests for one (a request is a JetStream API
     * call), and a round of probes per job costs more than a no-op job. */
    int room = slots + prefetch;
    if (want <= 0 || ((f->running > 0 || any_open) && want < (room + 1) / 2))
        return;
    for (int level = NAQ_PRIORITY_LEVELS - 1; level >= 0 && want > 0; level--) {
        for (int k = 0; k < w->nqueues && want > 0; k++) {
            int q = (f->next_queue + k) % w->nqueues;
            naq__pull_req *r = req_of(f, q, level);
            if (r->open || w->queues[q].empty_until[level] > now)
                continue;
            if (!send_request(f, q, level, want, 0))
                return;
            want = 0; /* its answer says what is left to ask for */
            any_open = 1;
            f->next_queue = (q + 1) % w->nqueues;
        }
    }
    /* Everything is empty (as far as we know): poll where jobs came last,
     * for what the worker can take (see "Polling" above). */
    int free_slots = slots - f->running - f->nready - f->requested;
    if (want > 0 && !any_open)
        send_request(f, f->focus_q, f->focus_l, want,
                     want > free_slots ? PREFETCH_PULL_MS : IDLE_PULL_MS);
}

/* ---------------------------------------------------------------- replies */

/* (q, level) of a job message, from the consumer named in its ack
 * subject; *pending is the consumer's pending count from the same subject.
 * -1 when it is not ours. */
static int consumer_of(naq__fetcher *f, natsMsg *m, int *level, long long *pending)
{
    naq__ack_info ack;
    if (!naq__ack_subject_parse(natsMsg_GetReply(m), &ack))
        return -1;
    *pending = ack.pending;
    for (int q = 0; q < f->w->nqueues; q++) {
        for (int l = 0; l < NAQ_PRIORITY_LEVELS; l++) {
            const char *name = f->w->queues[q].consumer[l];
            if (strlen(name) == ack.consumer_len &&
                strncmp(name, ack.consumer, ack.consumer_len) == 0) {
                *level = l;
                return q;
            }
        }
    }
    return -1;
}

/* Lock held. A job arrived: count it against its request, queue it. */
static void on_job(naq__fetcher *f, natsMsg *m)
{
    int level = NAQ_PRIORITY_NORMAL;
    long long pending = -1;
    int q = consumer_of(f, m, &level, &pending);
    if (q >= 0) {
        naq__pull_req *r = req_of(f, q, level);
        if (r->open) {
            if (r->delivered == 0 && r->expires_ms == 0) /* a poll waits for jobs: no trip */
                average_in(&f->trip_us, naq__mono_us() - r->sent_us);
            r->delivered++;
            naq__pull_req_heard(r, naq__mono_ms());
            f->requested--;
            if (r->delivered >= r->batch)
                r->open = 0;
        }
        f->backlog = pending;
        focus_on(f, q, level);
        if (pending == 0) /* the level is empty now: do not ask it again at once */
            found_empty(f, q, level);
    }
    ready_msg *rm = malloc(sizeof *rm);
    if (rm == NULL) {
        /* Not lost: without an ack the server delivers it again. */
        natsMsg_Destroy(m);
        return;
    }
    rm->m = m;
    rm->next = NULL;
    rm->since_ms = naq__mono_ms();
    if (f->ready_tail[level])
        f->ready_tail[level]->next = rm;
    else
        f->ready[level] = rm;
    f->ready_tail[level] = rm;
    f->nready++;
    pthread_cond_signal(&f->ready_cv);
}

/* Lock held. A status reply. One for a request that has ended already
 * (a 408 that came after the request's expiry passed) is ignored. */
static void on_status(naq__fetcher *f, natsMsg *m, const char *status)
{
    naq_worker *w = f->w;
    int i;
    unsigned gen;
    if (!naq__pull_req_parse_reply(f->inbox, natsMsg_GetSubject(m),
                                   w->nqueues * NAQ_PRIORITY_LEVELS, &i, &gen))
        return;
    int q = i / NAQ_PRIORITY_LEVELS, level = i % NAQ_PRIORITY_LEVELS;
    naq__pull_req *r = &f->reqs[i];
    if (!r->open || r->gen != gen)
        return;
    naq__pull_req_heard(r, naq__mono_ms());
    if (strcmp(status, "100") == 0)
        return; /* a heartbeat: the long poll is alive */
    if (strcmp(status, "404") == 0 || strcmp(status, "408") == 0) {
        if (r->open && r->delivered == 0) {
            found_empty(f, q, level);
            f->backlog = 0;
            if (f->running == 0 && f->nready == 0) /* ran dry: jobs may be long now */
                f->job_us = 0;
        }
        req_end(f, r);
        naq__worker_error_cleared(w);
        return;
    }
    /* 409 and others: consumer deleted, too many waiting requests, ... */
    const char *desc = NULL;
    natsMsgHeader_Get(m, "Description", &desc);
    if (desc != NULL && strstr(desc, "Deleted") != NULL) {
        atomic_store(&w->consumers_lost, 1);
        naq__worker_error(w, "ConsumerLost", "consumer %s was deleted; re-creating it",
                          w->queues[q].consumer[level]);
    } else {
        naq__worker_error(w, "PullFailed", "pulling from consumer %s: status %s %s",
                          w->queues[q].consumer[level], status, desc ? desc : "");
    }
    req_end(f, r);
    f->backoff_until_ms = naq__mono_ms() + ERROR_BACKOFF_MS;
}

/* Lock held. The consumer of slot i answers no more. */
static void consumer_silent(naq__fetcher *f, int i)
{
    naq_worker *w = f->w;
    naq__worker_error(w, "PullFailed", "consumer %s did not answer a request for jobs",
                      w->queues[i / NAQ_PRIORITY_LEVELS].consumer[i % NAQ_PRIORITY_LEVELS]);
    atomic_store(&w->consumers_lost, 1); /* the keeper makes sure they exist */
}

/* Lock held. Ends the polls past their expiry and the requests whose
 * consumer went silent (pull_request.h). */
static void expire_requests(naq__fetcher *f)
{
    naq_worker *w = f->w;
    int64_t now = naq__mono_ms(), now_us = naq__mono_us();
    for (int i = 0; i < w->nqueues * NAQ_PRIORITY_LEVELS; i++) {
        naq__pull_req *r = &f->reqs[i];
        naq__pull_verdict v = r->open ? naq__pull_req_due(r, now, now_us) : NAQ__PULL_WAITING;
        if (v == NAQ__PULL_WAITING)
            continue;
        req_end(f, r);
        if (v == NAQ__PULL_LOST)
            consumer_silent(f, i);
    }
}

/* Lock held, f->reading set by the caller. Reads one reply (waiting up to
 * wait_ms) without the lock, and handles it with the lock. 0 when none
 * came. */
static int read_reply(naq__fetcher *f, int64_t wait_ms)
{
    pthread_mutex_unlock(&f->lock);
    natsMsg *m = NULL;
    natsStatus ns = wait_ms > 0 ? natsSubscription_NextMsg(&m, f->sub, wait_ms)
                                : natsSubscription_NextMsg(&m, f->sub, 0);
    pthread_mutex_lock(&f->lock);
    if (ns != NATS_OK) {
        expire_requests(f);
        refill(f);
        return 0;
    }
    const char *status = NULL;
    if (natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", &status) == NATS_OK) {
        on_status(f, m, status);
        natsMsg_Destroy(m);
    } else {
        on_job(f, m); /* takes m */
    }
    refill(f);
    return 1;
}

/* Lock held, f->reading set by the caller. Reads the replies that came,
 * waiting up to wait_ms for the first: all of them, not one, since a job
 * left in nats.c's queue gets no in-progress acks (one prefetched there
 * while executors took turns reading could outwait the ack wait). */
static void read_replies(naq__fetcher *f, int64_t wait_ms)
{
    if (read_reply(f, wait_ms))
        while (read_reply(f, 0))
            ;
}

/* ---------------------------------------------------------------- executors */

/* Lock held. A fetched job waits and a slot is free for it: with
 * autoscaling there are more executors than slots. */
static int job_for_a_slot(naq__fetcher *f)
{
    return f->nready > 0 && f->running < atomic_load(&f->w->slots_now);
}

natsMsg *naq__worker_next_job(naq__executor *x)
{
    naq__fetcher *f = x->w->fetcher;
    natsMsg *m = NULL;
    pthread_mutex_lock(&f->lock);
    refill(f);
    int64_t deadline = naq__mono_ms() + FETCH_TICK_MS;
    while (!job_for_a_slot(f) && !naq__worker_stopping(x->w) && !f->stopping &&
           naq__mono_ms() < deadline) {
        if (!f->reading) {
            f->reading = 1;
            read_replies(f, FETCH_TICK_MS);
            f->reading = 0;
            pthread_cond_signal(&f->ready_cv); /* another may read now */
            continue;
        }
        struct timespec until = naq__deadline(CLOCK_REALTIME, FETCH_TICK_MS);
        pthread_cond_timedwait(&f->ready_cv, &f->lock, &until);
    }
    for (int level = NAQ_PRIORITY_LEVELS - 1; level >= 0 && job_for_a_slot(f); level--) {
        ready_msg *rm = f->ready[level];
        if (rm == NULL)
            continue;
        f->ready[level] = rm->next;
        if (f->ready[level] == NULL)
            f->ready_tail[level] = NULL;
        f->nready--;
        f->running++;
        x->taken_us = naq__mono_us();
        m = rm->m;
        /* Its slot's in-progress acks start a full interval from now: one
         * that waited here long gets its ack timer reset first. */
        if (naq__mono_ms() - rm->since_ms >= naq__worker_wpi_ms(x->w) / 2)
            naq__worker_ack(x->w, natsMsg_GetReply(m), "+WPI");
        free(rm);
        break;
    }
    pthread_mutex_unlock(&f->lock);
    return m;
}

void naq__worker_job_done(naq__executor *x)
{
    naq__fetcher *f = x->w->fetcher;
    pthread_mutex_lock(&f->lock);
    f->running--;
    average_in(&f->job_us, naq__mono_us() - x->taken_us);
    x->taken_us = 0;
    refill(f); /* the freed slot asks for its next job now */
    pthread_mutex_unlock(&f->lock);
}

void naq__fetcher_load(naq__fetcher *f, int *running, long long *waiting)
{
    pthread_mutex_lock(&f->lock);
    *running = f->running;
    *waiting = f->nready + f->backlog;
    pthread_mutex_unlock(&f->lock);
}

void naq__fetcher_in_progress(naq__fetcher *f, int64_t older_than_ms)
{
    pthread_mutex_lock(&f->lock);
    /* Every executor busy: nobody reads, so the keeper does (prefetched
     * jobs, statuses, lost requests). */
    if (!f->reading && !f->stopping) {
        f->reading = 1;
        read_replies(f, 0);
        f->reading = 0;
        /* An executor that found the keeper reading waits to take over. */
        pthread_cond_signal(&f->ready_cv);
    }
    int64_t now = naq__mono_ms();
    for (int level = 0; level < NAQ_PRIORITY_LEVELS; level++) {
        for (ready_msg *rm = f->ready[level]; rm != NULL; rm = rm->next) {
            if (now - rm->since_ms >= older_than_ms) {
                naq__worker_ack(f->w, natsMsg_GetReply(rm->m), "+WPI");
                rm->since_ms = now;
            }
        }
    }
    pthread_mutex_unlock(&f->lock);
}

/* ---------------------------------------------------------------- lifetime */

/* Frees f and what it holds: the subscription (destroyed, so unsubscribe
 * first when it must stop delivering), the lock, the conditions and the
 * tables. The ready lists must be empty and the doorbells closed. */
static void fetcher_free(naq__fetcher *f)
{
    natsSubscription_Destroy(f->sub);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->ready_cv);
    pthread_cond_destroy(&f->bells_cv);
    free(f->reqs);
    free(f->bells);
    free(f);
}

/* Closes the doorbells and waits for their last callbacks; 0 when one is
 * still due after timeout_ms (then f must not be freed). */
static int bells_close_all(naq__fetcher *f, int64_t timeout_ms)
{
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < f->w->nqueues * NAQ_PRIORITY_LEVELS; i++)
        bell_close(f, i);
    struct timespec until = naq__deadline(CLOCK_REALTIME, timeout_ms);
    int rc = 0;
    while (f->bells_live > 0 && rc == 0)
        rc = pthread_cond_timedwait(&f->bells_cv, &f->lock, &until);
    int closed = f->bells_live == 0;
    pthread_mutex_unlock(&f->lock);
    return closed;
}

naq_status naq__fetcher_start(naq_worker *w, naq__fetcher **out)
{
    *out = NULL;
    size_t slots = (size_t)w->nqueues * NAQ_PRIORITY_LEVELS;
    naq__fetcher *f = calloc(1, sizeof *f);
    naq__pull_req *reqs = calloc(slots, sizeof *reqs);
    bell *bells = calloc(slots, sizeof *bells);
    if (f == NULL || reqs == NULL || bells == NULL) {
        free(f);
        free(reqs);
        free(bells);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory starting worker %s", w->id);
    }
    for (size_t i = 0; i < slots; i++)
        bells[i] = (bell){f, (int)i, NULL};
    f->w = w;
    f->reqs = reqs;
    f->bells = bells;
    f->focus_l = NAQ_PRIORITY_NORMAL;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->ready_cv, NULL);
    pthread_cond_init(&f->bells_cv, NULL);
    natsInbox *ib = NULL;
    natsStatus ns = natsInbox_Create(&ib);
    char subject[80];
    if (ns == NATS_OK) {
        snprintf(f->inbox, sizeof f->inbox, "%s", (const char *)ib);
        natsInbox_Destroy(ib);
        snprintf(subject, sizeof subject, "%s.*.*", f->inbox);
        ns = natsConnection_SubscribeSync(&f->sub, w->nc, subject);
    }
    if (ns == NATS_OK)
        natsSubscription_SetPendingLimits(f->sub, -1, -1); /* bounded by our requests */
    if (ns != NATS_OK) {
        fetcher_free(f);
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot start fetching jobs for worker %s",
                              w->id);
    }
    *out = f;
    return NAQ_OK;
}

void naq__fetcher_stop(naq__fetcher *f)
{
    if (f == NULL)
        return;
    /* The executors have returned (naq_worker_run joined them) and the
     * keeper no longer ticks: nobody reads now. */
    pthread_mutex_lock(&f->lock);
    f->stopping = 1;
    pthread_mutex_unlock(&f->lock);
    /* Withdraw our interest, then hand back what was fetched but never
     * started: a nak without delay, so another worker takes it at once
     * (what arrives after the unsubscribe is not ours: the server keeps
     * it for the ack wait). */
    natsSubscription_Unsubscribe(f->sub);
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, f->sub, 0) == NATS_OK) {
        const char *status = NULL;
        if (!(natsMsg_GetDataLength(m) == 0 && natsMsgHeader_Get(m, "Status", &status) == NATS_OK))
            naq__worker_ack(f->w, natsMsg_GetReply(m), "-NAK");
        natsMsg_Destroy(m);
    }
    for (int level = 0; level < NAQ_PRIORITY_LEVELS; level++) {
        for (ready_msg *rm = f->ready[level], *next; rm != NULL; rm = next) {
            next = rm->next;
            naq__worker_ack(f->w, natsMsg_GetReply(rm->m), "-NAK");
            natsMsg_Destroy(rm->m);
            free(rm);
        }
    }
    /* nats.c's shared delivery thread would only be stuck by another
     * program's callback; rather leak f then than free it under one. */
    if (!bells_close_all(f, 5000)) {
        naq__log(NAQ_LOG_WARN, "naq worker %s: a doorbell did not close; its memory is kept",
                 f->w->id);
        return;
    }
    fetcher_free(f);
}
