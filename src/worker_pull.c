/*
 * worker_pull.c - how an executor finds its next job.
 *
 * Pulling. Each (queue, priority) has a durable consumer "naq_<q>_p<n>";
 * executors pull from them by publishing to
 * $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> (batch 1) with a literal
 * reply inbox of their own. Why not js_PullSubscribe + natsSubscription_Fetch,
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
 * 5 * queues + 1 small requests per IDLE_PULL_MS. A job whose retry is
 * delayed is held by the server (a delayed nak) and comes back through the
 * same pulls when its delay is over.
 */
#include "worker_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

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

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A literal reply subject of the executor's own, so that a pull request
 * the server keeps (see retire_inbox) can be made harmless. */
static natsStatus open_inbox(naq__executor *x)
{
    natsInbox *ib = NULL;
    natsStatus ns = natsInbox_Create(&ib);
    if (ns == NATS_OK) {
        snprintf(x->inbox, sizeof x->inbox, "%s", (const char *)ib);
        natsInbox_Destroy(ib);
        ns = natsConnection_SubscribeSync(&x->inbox_sub, x->w->nc, x->inbox);
    }
    if (ns != NATS_OK)
        x->inbox_sub = NULL;
    return ns;
}

void naq__worker_close_inbox(naq__executor *x)
{
    if (x->inbox_sub != NULL) /* every pull was answered or retired */
        natsSubscription_Unsubscribe(x->inbox_sub);
    natsSubscription_Destroy(x->inbox_sub);
    x->inbox_sub = NULL;
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
static natsMsg *retire_inbox(naq__executor *x)
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
static pull_result pull(naq__executor *x, naq__queue_state *qs, int level, int64_t wait_ms,
                        natsMsg **out)
{
    naq_worker *w = x->w;
    natsConnection *nc = w->nc;
    *out = NULL;
    if (x->inbox_sub == NULL && open_inbox(x) != NATS_OK) {
        naq__worker_error(w, "PullFailed",
                          "cannot subscribe to a pull inbox (is the server away?)");
        return PULL_ERROR;
    }
    char body[64];
    if (wait_ms == 0)
        snprintf(body, sizeof body, "{\"batch\":1,\"no_wait\":true}");
    else /* expires is in nanoseconds */
        snprintf(body, sizeof body, "{\"batch\":1,\"expires\":%lld}",
                 (long long)wait_ms * 1000000LL);
    /* The worker's connection sends it at once (no flush, no PING). */
    natsStatus ns =
        natsConnection_PublishRequestString(nc, qs->next_subject[level], x->inbox, body);
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
        if (*out != NULL)
            return PULL_JOB;
        if (ns == NATS_TIMEOUT && wait_ms == 0)
            return PULL_EMPTY;
        naq__worker_error(w, "PullFailed", "pulling from consumer %s got no answer (%s)",
                          qs->consumer[level], natsStatus_GetText(ns));
        return PULL_ERROR;
    }
    const char *status = NULL;
    if (is_status(m, &status)) {
        pull_result r = PULL_EMPTY; /* 404 no messages, 408 request expired or pending */
        if (strcmp(status, "404") != 0 && strcmp(status, "408") != 0) {
            const char *desc = NULL;
            natsMsgHeader_Get(m, "Description", &desc);
            if (desc != NULL && strstr(desc, "Deleted") != NULL) {
                atomic_store(&w->consumers_lost, 1);
                naq__worker_error(w, "ConsumerLost", "consumer %s was deleted; re-creating it",
                                  qs->consumer[level]);
            } else {
                naq__worker_error(w, "PullFailed", "pulling from consumer %s: status %s %s",
                                  qs->consumer[level], status, desc ? desc : "");
            }
            r = PULL_ERROR; /* 409: consumer deleted, too many waiting pulls, ... */
        } else {
            naq__worker_error_cleared(w);
        }
        natsMsg_Destroy(m);
        return r;
    }
    naq__worker_error_cleared(w);
    *out = m;
    return PULL_JOB;
}

natsMsg *naq__worker_next_job(naq__executor *x)
{
    naq_worker *w = x->w;
    natsMsg *m = NULL;
    int64_t now = naq__mono_ms();
    for (int level = NAQ_PRIORITY_LEVELS - 1; level >= 0; level--) {
        for (int k = 0; k < w->nqueues; k++) {
            int q = (x->next_queue + k) % w->nqueues;
            naq__queue_state *qs = &w->queues[q];
            if (atomic_load(&qs->empty_until[level]) > now)
                continue;
            if (naq__worker_stopping(w))
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
    if (naq__worker_stopping(w))
        return NULL;
    pull_result r = pull(x, &w->queues[x->idle_queue], x->idle_level, IDLE_PULL_MS, &m);
    if (r == PULL_ERROR)
        sleep_ms(ERROR_BACKOFF_MS);
    return m;
}
