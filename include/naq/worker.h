/*
 * naq/worker.h - workers: run jobs from one or more queues with N concurrent
 * executions, through C handlers registered by name and the built-in "exec".
 *
 * Each job message is acknowledged explicitly after its outcome is logged,
 * so a worker that dies mid-job leaves the message unacknowledged and the
 * server delivers it again after the ack wait (config ack_wait_ms). While a
 * job runs the worker sends in-progress acks, so a long job is not
 * delivered twice.
 *
 * Thread-safety: register handlers before naq_worker_run(); naq_worker_stop()
 * may be called from any thread or a signal-handling thread.
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
 * runs longer than its timeout_ms is recorded as failed with error_type
 * "Timeout" however the handler returns. Handlers run on worker threads,
 * several at once when concurrency > 1; the ctx and job belong to the
 * handler's thread and live only for the call. */
typedef naq_status (*naq_handler_fn)(naq_job_ctx *ctx, const naq_job *job, void *user);

/* Marks the job failed with an error type (e.g. "ValueError"; NULL or ""
 * means "Error") and message; a later call replaces an earlier one. */
void naq_job_ctx_fail(naq_job_ctx *ctx, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets the job's JSON result (any JSON value, copied); it is carried in
 * the "completed" event as details.result. NAQ_ERR_INVALID_ARG if it is not
 * JSON. */
naq_status naq_job_ctx_set_result(naq_job_ctx *ctx, const char *result_json);
/* Non-zero once the job should stop: it ran past its timeout_ms, or the
 * worker is stopping hard (naq_worker_stop called twice). Long handlers
 * poll it (checked by the worker every 50 ms). */
int naq_job_ctx_cancelled(const naq_job_ctx *ctx);

typedef struct {
    const char *const *queues; /* NULL-terminated list of queue names */
    int concurrency;           /* jobs at once, 1..4096; default 1 */
    const char *worker_id;     /* NULL = "<short hostname>-<pid>-<4 hex digits>" */
} naq_worker_opts;

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
 * in-progress acks while `concurrency` threads run jobs. A worker runs
 * once: after it stopped (or if stop came first) run returns at once. */
naq_status naq_worker_run(naq_worker *w);
/* Asks a running worker to stop taking jobs; naq_worker_run returns once
 * the running jobs are done (an idle worker notices within ~0.2 s). A
 * second call stops hard: running jobs are cancelled (their contexts read
 * as cancelled, exec commands are terminated), and a job that then fails
 * is recorded as failed with error_type "WorkerStopped" and handed back to
 * the queue at once, to run again. Async-signal-safe. */
void naq_worker_stop(naq_worker *w);

const char *naq_worker_id(const naq_worker *w);

typedef struct {
    uint64_t processed; /* jobs finished (completed + failed) */
    uint64_t completed;
    uint64_t failed;
    int active;         /* running now */
} naq_worker_stats;

void naq_worker_get_stats(naq_worker *w, naq_worker_stats *out);

#ifdef __cplusplus
}
#endif
#endif
