/*
 * naq/worker.h - workers: run jobs from one or more queues with N concurrent
 * executions, through C handlers registered by name and the built-in "exec".
 *
 * Each job message is settled explicitly after its outcome is logged, so a
 * worker that dies mid-job leaves the message unacknowledged and the
 * server delivers it again after the ack wait (config ack_wait_ms). While a
 * job runs the worker sends in-progress acks, so a long job is not
 * delivered twice.
 *
 * The life of a job in a worker (docs/protocol.md lists the events):
 *  - attempt = the stream's delivery count: 1 on the first delivery, +1 on
 *    every redelivery, whatever caused it (a retry, a worker that died, a
 *    job handed back at a stop). Every event of a run carries it.
 *  - Each delivery logs "dequeued"; a job whose ttl_ms passed since it was
 *    queued (stored in its queue by the server: a delayed job or a
 *    dependent counts from its release) logs "ttl_expired" and is not run,
 *    on any attempt, like Celery's "expires"; a job
 *    cancelled with `naq job cancel` logs "cancelled" {"while":"queued"}
 *    and is not run. Otherwise "retry_started" (attempt > 1), "started",
 *    then "completed", "failed", or "timeout" + "failed".
 *  - A failed attempt N is retried when N <= max_retries and its
 *    error_type passes retry_on / skip_on: "retry_scheduled" {"delay_ms",
 *    "next_attempt", "reason"} and the server holds the message for the
 *    delay (no worker thread waits). Otherwise the job goes to the
 *    dead-letter stream ("max_retries_exceeded"). Attempts cut short by a
 *    dead worker or a stop count as attempts but never end a job: such a
 *    job always runs again.
 *  - A final outcome (completed, dead-lettered, cancelled, ttl_expired)
 *    stores the job's result, releases its dependents and its unique key,
 *    and only then acknowledges the message.
 *
 * Thread-safety: register handlers before naq_worker_run(); naq_worker_stop()
 * may be called from any thread or a signal handler.
 */
#ifndef NAQ_WORKER_H
#define NAQ_WORKER_H

#include <stdint.h>

#include "naq/client.h"
#include "naq/job.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct naq_worker naq_worker;
typedef struct naq_job_ctx naq_job_ctx;

/* A handler runs one job. Return NAQ_OK for success (optionally after
 * naq_job_ctx_set_result) or anything else for failure, after
 * naq_job_ctx_fail() to say why (without it the failure is recorded as
 * error_type "HandlerError" with naq_last_error()). Calling
 * naq_job_ctx_fail() fails the job whatever the return value. A job that
 * runs longer than its timeout_ms is recorded as "timeout" then "failed"
 * with error_type "Timeout" however the handler returns. Handlers run on
 * worker threads, several at once when concurrency > 1; the ctx and job
 * belong to the handler's thread and live only for the call.
 *
 * Hard limit: C cannot stop a thread safely, so a handler is only ASKED to
 * stop (naq_job_ctx_cancelled) at its timeout, on `naq job cancel` and
 * when the worker stops. One that ignores the flag keeps its executor
 * thread until it returns; meanwhile its message gets in-progress acks, so
 * the job is never delivered twice while it runs, and its timeout is
 * recorded when it returns. naq_worker_run does not return before every
 * handler has. (An "exec" job is different: its process group is killed.) */
typedef naq_status (*naq_handler_fn)(naq_job_ctx *ctx, const naq_job *job, void *user);

/* Marks the job failed with an error type (e.g. "ValueError"; NULL or ""
 * means "Error") and message; a later call replaces an earlier one. */
void naq_job_ctx_fail(naq_job_ctx *ctx, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets the job's JSON result (any JSON value, copied); it is carried in
 * the "completed" event as details.result. NAQ_ERR_INVALID_ARG if it is not
 * JSON. */
naq_status naq_job_ctx_set_result(naq_job_ctx *ctx, const char *result_json);
/* Non-zero once the job should stop: it ran past its timeout_ms, it was
 * cancelled (`naq job cancel`), or the worker handed it back to the queue
 * while stopping. Long handlers poll it (the flag is raised within 50 ms).
 * A cancelled handler should fail (naq_job_ctx_fail) and return: the job
 * is then recorded as "cancelled", not "failed", and is not retried; one
 * that returns success was not stopped in time and is "completed". */
int naq_job_ctx_cancelled(const naq_job_ctx *ctx);

typedef struct {
    const char *const *queues; /* NULL-terminated list of queue names */
    int concurrency;           /* jobs at once, 1..4096; default 1 */
    const char *worker_id;     /* NULL = "<short hostname>-<pid>-<4 hex digits>" */
    /* After the first naq_worker_stop(), how long running jobs may go on
     * before they are handed back to the queue (so another worker runs
     * them at once) and their handlers cancelled. Default 30000; 0 = hand
     * back at once; negative = wait for them however long they take. */
    int64_t grace_ms;
    /* Jobs fetched beyond the free slots, so that a slot that frees up
     * finds its next job already here instead of waiting for the server.
     * NAQ_PREFETCH_AUTO (the default of naq_worker_opts_init) sizes it from
     * what the worker measures: as many jobs as the slots finish while a
     * request for more travels to the server and back, none when a job
     * takes longer than that trip, at most NAQ_PREFETCH_AUTO_MAX. 0..4096
     * is a fixed number (0 = none). A fetched job that waits gets
     * in-progress acks, but it waits: with long jobs, another idle worker
     * could have run it, which is why auto fetches ahead only short jobs. */
    int prefetch;
    /* Autoscaling: with autoscale_max > 0 the worker runs between
     * autoscale_min (>= 1) and autoscale_max jobs at once, and concurrency
     * is ignored. It starts at autoscale_min, doubles (up to max) once
     * every slot has been busy for NAQ_AUTOSCALE_GROW_MS while jobs wait
     * (reason "lag"), and halves (down to min, never below the most jobs
     * it ran at once in the window) after NAQ_AUTOSCALE_SHRINK_MS with a
     * slot to spare (reason "idle"). A running job is never cut: fewer
     * slots only means fewer new jobs. Each change is a
     * worker_status_changed event (details old_concurrency,
     * new_concurrency, reason) and moves the registry's concurrency. */
    int autoscale_min, autoscale_max;
} naq_worker_opts;

#define NAQ_AUTOSCALE_GROW_MS 200
#define NAQ_AUTOSCALE_SHRINK_MS 2000

#define NAQ_PREFETCH_AUTO (-1)
#define NAQ_PREFETCH_AUTO_MAX 64

void naq_worker_opts_init(naq_worker_opts *o);

/* Creates a worker on client c (which must outlive it), after creating or
 * updating the durable consumers of its queues (one per queue and
 * priority, "naq_<queue>_p<priority>", ack wait from the client's config).
 * o is copied; a queue listed twice is served once. The "exec" handler is
 * registered already. Destroy with naq_worker_destroy(), never while
 * naq_worker_run() runs. */
naq_status naq_worker_create(naq_client *c, const naq_worker_opts *o, naq_worker **out);
void naq_worker_destroy(naq_worker *w);

/* Registers fn for jobs whose function is `name` (replacing an earlier one,
 * "exec" included). NAQ_ERR_INVALID_ARG while the worker runs. */
naq_status naq_worker_register(naq_worker *w, const char *name, naq_handler_fn fn, void *user);

/* Runs until naq_worker_stop(): blocks the calling thread, which sends the
 * in-progress acks while `concurrency` threads run jobs. Logs
 * worker_started / worker_stopped and keeps the worker in the live
 * registry meanwhile. A worker runs once: after it stopped (or if stop
 * came first) run returns at once. An error starting it (registry) is
 * returned and nothing runs. */
naq_status naq_worker_run(naq_worker *w);
/* Asks a running worker to stop taking jobs (an idle worker notices within
 * ~0.2 s). Running jobs get opts.grace_ms to finish; then, or at once on a
 * second call, each job still running is handed back to the queue (logged
 * as "retry_scheduled" with reason "worker_stopped" and error_type
 * "WorkerStopped"; a nak without delay, so another worker takes it now)
 * and its handler is cancelled (its context reads as cancelled, an exec
 * command is terminated). What such a handler still does is not recorded:
 * the job's next delivery owns its outcome. naq_worker_run returns once
 * every handler returned; worker_stopped says "graceful" (one call) or
 * "forced" (two) and how many jobs were handed back. Async-signal-safe. */
void naq_worker_stop(naq_worker *w);

const char *naq_worker_id(const naq_worker *w);

/* Counts of this worker's deliveries since it was created. */
typedef struct {
    uint64_t processed; /* settled here: completed + failed + cancelled + expired */
    uint64_t completed;
    uint64_t failed;        /* failed attempts, retried or not (timeouts included) */
    uint64_t retried;       /* of failed: scheduled for another attempt */
    uint64_t dead_lettered; /* of failed: sent to the dead-letter stream */
    uint64_t cancelled;     /* cancelled while queued or while running */
    uint64_t expired;       /* not run: ttl_ms passed */
    uint64_t handed_back;   /* cut short by a stop and given back to the queue */
    int active;             /* taken and not yet settled, now */
    int prefetch;           /* jobs it fetches beyond its free slots, now
                             * (with NAQ_PREFETCH_AUTO: as last sized) */
    int concurrency;        /* jobs it runs at once, now (autoscale moves it) */
} naq_worker_stats;

void naq_worker_get_stats(naq_worker *w, naq_worker_stats *out);

#ifdef __cplusplus
}
#endif
#endif
