/*
 * naq/job.h - jobs: what a job is on the wire, enqueueing one (alone, many
 * at once, uniquely, after other jobs), and what an operator can do to a
 * job that waits: cancel it, change its priority, move it.
 *
 * A job is published as JSON to the work-queue stream on the subject
 * "<prefix>.queue.<queue>.<priority>" with Nats-Msg-Id = job id, so an
 * enqueue re-sent within the duplicate window is stored once. The job's
 * "enqueued" event is logged after the server has stored the job, so the
 * event log never shows a job that is not queued. A job with dependencies
 * waits in the KV bucket "naq_deps" instead, and is queued (and logged
 * "enqueued") when its last dependency completes. docs/jobs.md shows
 * every feature; docs/protocol.md is the wire format.
 *
 * Thread-safety: every call taking a client is safe from any thread. A
 * naq_job_opts or naq_job belongs to one thread at a time.
 */
#ifndef NAQ_JOB_H
#define NAQ_JOB_H

#include <stdint.h>

#include "naq/client.h"
#include "naq/id.h"
#include "naq/results.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Priorities: a worker takes a waiting job of a higher priority first. */
#define NAQ_PRIORITY_LOWEST 0
#define NAQ_PRIORITY_LOW 1
#define NAQ_PRIORITY_NORMAL 2
#define NAQ_PRIORITY_HIGH 3
#define NAQ_PRIORITY_CRITICAL 4
#define NAQ_PRIORITY_LEVELS 5

/* "lowest", "low", "normal", "high", "critical" for 0-4; "unknown" else. */
const char *naq_priority_name(int priority);
/* Parses a priority name or a digit 0-4. NAQ_ERR_INVALID_ARG otherwise. */
naq_status naq_priority_parse(const char *text, int *out);

/* The function name of the built-in handler that runs a command. Its args
 * are {"argv": ["cmd", "arg", ...]} with optional "env" (object of strings)
 * and "cwd" (string). */
#define NAQ_EXEC_FUNCTION "exec"

/* How long to wait before each retry. */
typedef enum {
    NAQ_BACKOFF_FIXED,       /* delay_ms every time */
    NAQ_BACKOFF_LINEAR,      /* delay_ms * attempt */
    NAQ_BACKOFF_EXPONENTIAL, /* delay_ms * 2^(attempt-1), capped at max_delay_ms */
    NAQ_BACKOFF_LIST,        /* delays_ms[attempt-1], the last one repeated */
} naq_backoff_kind;

#define NAQ_BACKOFF_LIST_MAX 16

typedef struct {
    naq_backoff_kind kind; /* default NAQ_BACKOFF_EXPONENTIAL */
    int64_t delay_ms;      /* default 1000 */
    int64_t max_delay_ms;  /* cap; default 300000 (0 = no cap) */
    double jitter;         /* 0..1: each delay is multiplied by 1 +- jitter*random; default 0 */
    int64_t delays_ms[NAQ_BACKOFF_LIST_MAX];
    int n_delays; /* for NAQ_BACKOFF_LIST */
    /* Comma-separated error types: retry only these ("" = all) / never
     * retry these. Borrowed in naq_job_opts, heap in naq_job. */
    char *retry_on;
    char *skip_on;
} naq_retry_policy;

/* Exponential from 1 s, capped at 5 min, no jitter, every error type. */
void naq_retry_policy_init(naq_retry_policy *p);

/* Parses a backoff for the command line and configuration:
 *   "fixed:5s"                        5 s before every retry
 *   "linear:1s[:CAP]"                 1 s, 2 s, 3 s, ... (CAP default 5m)
 *   "exponential:1s[:CAP[:JITTER]]"   1 s, 2 s, 4 s, ... (CAP default 5m,
 *                                     0 = none; JITTER 0..1 or "20%")
 *   "list:1s,5s,30s"                  these delays, the last one repeated
 * Durations as naq_parse_duration_ms ("500ms", "30s", "5m"; a bare number
 * is seconds). Sets kind, delay_ms, max_delay_ms (0 for fixed and list),
 * jitter and the list; leaves retry_on and skip_on as they are. On error
 * (NAQ_ERR_INVALID_ARG saying what is wrong) *out is unchanged. */
naq_status naq_retry_policy_parse(const char *text, naq_retry_policy *out);

/* Limits of the options below. */
#define NAQ_UNIQUE_KEY_MAX 512 /* bytes of a unique key */
#define NAQ_DEPENDS_ON_MAX 256 /* dependencies of one job */

/* Options of one job. Strings are borrowed: naq_enqueue copies what it
 * needs, so they only have to live for the call. */
typedef struct {
    const char *queue;      /* required; a subject token (naq_id_validate) */
    const char *function;   /* required; the handler name, e.g. "exec": 1..NAQ_ID_MAX
                             * printable ASCII characters, no white space */
    const char *args_json;  /* JSON value passed to the handler; NULL = [] */
    int max_retries;        /* further attempts after a failure; default 0 */
    int64_t timeout_ms;     /* 0 = none; exec jobs are killed past it */
    const char *tags_json;  /* JSON object of string values, or NULL */
    int priority;           /* NAQ_PRIORITY_*, default NAQ_PRIORITY_NORMAL */
    const char *job_id;     /* NULL = a new id (naq_id_new); set to make enqueue idempotent */
    naq_retry_policy retry; /* used when max_retries > 0 (strings borrowed) */
    int64_t ttl_ms;         /* 0 = none: a job not started within ttl_ms of being
                             * queued is not run (event ttl_expired) */
    const char *const *depends_on; /* NULL-terminated job ids, or NULL: see naq_enqueue_ex */
    int run_on_dependency_failure; /* run even if a dependency failed */
    const char *unique_key;        /* NULL = none: while a job with this key is pending,
                                    * enqueue returns its id (naq_enqueue_ex) */
    const char *schedule_id;       /* set by the scheduler for the jobs it makes */
    int64_t result_ttl_ms;         /* how long the result is kept; default (and 0)
                                    * NAQ_RESULTS_TTL_MS, at most
                                    * NAQ_RESULTS_MAX_TTL_MS (naq/results.h) */
} naq_job_opts;

/* Defaults: no retries (and, for when there are, naq_retry_policy_init),
 * no timeout, no TTL, normal priority, results kept NAQ_RESULTS_TTL_MS. */
void naq_job_opts_init(naq_job_opts *o);

/* What naq_enqueue checks before anything is sent, on its own (no
 * server): NAQ_ERR_INVALID_ARG with a message naming the option and what
 * it accepts. Checks: queue, job id, function, priority 0-4, max_retries
 * >= 0, timeout_ms >= 0, args and tags JSON (for the "exec" function,
 * args the exec handler can run: a non-empty command); the retry policy (a known
 * kind; delays from 0 to a year; for linear and exponential a delay no
 * longer than a cap that is set; jitter 0..1; a list of 1 to
 * NAQ_BACKOFF_LIST_MAX delays; retry_on / skip_on lists of names);
 * ttl_ms >= 0; depends_on: at most NAQ_DEPENDS_ON_MAX valid job ids, none
 * twice, not the job itself; unique_key: 1 to NAQ_UNIQUE_KEY_MAX bytes;
 * schedule_id a valid id; result_ttl_ms from 0 (the default) to
 * NAQ_RESULTS_MAX_TTL_MS (7 days: the outcome stream's age). */
naq_status naq_job_opts_validate(const naq_job_opts *o);

/* Validates o completely, then publishes the job and waits for the server's
 * acknowledgement (so a returned id is durably queued), then logs
 * "enqueued". On any error nothing is queued, nothing is logged and job_id
 * is "". job_id receives the id. A job id enqueued again within the job
 * stream's duplicate window (2 minutes) is stored once: the call succeeds
 * and logs no second "enqueued". NAQ_ERR_INVALID_ARG for bad options (the
 * message names the option and what it accepts), NAQ_ERR_TIMEOUT when the
 * server did not confirm in time (the job may be queued: enqueue again
 * with the same id), NAQ_ERR_NATS otherwise. Thread-safe. */
naq_status naq_enqueue(naq_client *c, const naq_job_opts *o, char job_id[NAQ_ID_SIZE]);

/* naq_enqueue, telling whether a unique job was found instead.
 *
 * Unique jobs: with o->unique_key set, the key "<queue>/<unique_key>" is
 * created in the KV bucket "naq_unique" (create-if-absent, so of any
 * number of concurrent enqueues exactly one gets it) before the job is
 * published. When another job holds the key and has not finished (it is
 * queued, delayed, running, retrying or waiting for dependencies), nothing
 * is enqueued or logged: job_id receives the holder's id, *existing (may
 * be NULL) is set to 1, and the call returns NAQ_OK. The worker releases
 * the key when the job finishes (completed, failed for good, cancelled,
 * expired); a key whose holder finished without releasing it (a crash),
 * was cancelled, or outlived its TTL in the queue is taken over. If the publish fails after the key
 * was taken, the key is released again: nothing is left half-enqueued.
 *
 * Dependencies: with o->depends_on set, the job is stored in the KV bucket
 * "naq_deps" instead of its queue and "waiting_for_dependencies" is logged
 * (details {"depends_on": [...]}); each dependency that completes logs
 * "dependency_satisfied" on it, and after the last one it is queued and
 * "enqueued" is logged. A dependency that fails for good (or is
 * cancelled) logs "dependency_failed" and then "cancelled", unless
 * run_on_dependency_failure is set, in which case it counts as met. A
 * dependency that finished before the enqueue counts at once. */
naq_status naq_enqueue_ex(naq_client *c, const naq_job_opts *o, char job_id[NAQ_ID_SIZE],
                          int *existing);

/* Called once per job of naq_enqueue_async when its fate is known, on a
 * nats.c thread (keep it short, do not block): status NAQ_OK = stored in
 * its queue and "enqueued" logged; otherwise it was not stored
 * (NAQ_ERR_NATS, error says why) or may not be (NAQ_ERR_TIMEOUT: enqueue
 * it again with the same id, it is stored once). job_id and error are
 * valid during the call only. */
typedef void (*naq_enqueue_done_fn)(const char *job_id, naq_status status, const char *error,
                                    void *user);

/* naq_enqueue without waiting for the server: validates o (a refused job
 * returns the error and done never runs), publishes, sets job_id and
 * returns at once; done (may be NULL) reports the server's answer later.
 * Nothing is reported stored before the server acknowledged it. At most
 * 8192 jobs wait for an answer per client; past that the call waits up to
 * 10 s for room, then fails with NAQ_ERR_TIMEOUT. Jobs with a unique key
 * or dependencies need reads of their own first: they take naq_enqueue's
 * path, and done runs before the return. Thread-safe. */
naq_status naq_enqueue_async(naq_client *c, const naq_job_opts *o, char job_id[NAQ_ID_SIZE],
                             naq_enqueue_done_fn done, void *user);
/* Waits until every naq_enqueue_async of this client was answered (and
 * its done returned): NAQ_OK, or NAQ_ERR_TIMEOUT after timeout_ms.
 * naq_client_destroy flushes too (up to 10 s) and reports what is still
 * open as NAQ_ERR_TIMEOUT. */
naq_status naq_enqueue_async_flush(naq_client *c, int64_t timeout_ms);

/* Enqueues n jobs through naq_enqueue_async, and reports per job:
 * statuses[i] is NAQ_OK when job i is stored in its queue (or, for a job
 * with a unique key or dependencies, handled as naq_enqueue_ex would:
 * those go one at a time), and ids[i] its id - also for a job that failed,
 * so that enqueueing it again with that id cannot store it twice.
 * "enqueued" is logged for the stored jobs only, as the server stores them.
 *
 * The batch is validated whole first (naq_job_opts_validate, job ids
 * unique within the batch, sizes within the server's max payload): if any
 * job is invalid nothing is sent, statuses[i] is NAQ_ERR_INVALID_ARG for
 * each invalid job and NAQ_ERR_CLOSED ("not attempted") for the others,
 * and the call returns NAQ_ERR_INVALID_ARG naming the first bad job. Else
 * the jobs are sent and the call returns NAQ_OK when all were stored, or
 * the status of the first failure otherwise (the message counts and names
 * the failures): per job NAQ_ERR_NATS when the server refused it (for
 * instance a stream limit), NAQ_ERR_TIMEOUT when no acknowledgement came
 * (it may be stored: enqueue it again with its id). *enqueued (may be
 * NULL) is the number of jobs with NAQ_OK. */
naq_status naq_enqueue_batch(naq_client *c, const naq_job_opts *jobs, size_t n,
                             char (*ids)[NAQ_ID_SIZE], naq_status *statuses, size_t *enqueued);

/* A job as a worker receives it. Every string is owned by the job;
 * naq_job_clear frees them. */
typedef struct {
    int version;
    char id[NAQ_ID_SIZE];
    char queue[NAQ_ID_SIZE];
    char function[NAQ_ID_SIZE];
    char *args_json; /* heap; "[]" when none */
    char *tags_json; /* heap; NULL when none */
    int max_retries;
    int64_t timeout_ms;
    int priority;
    double enqueued_at;
    int attempt;            /* 1 on first delivery, from the stream's delivery count */
    naq_retry_policy retry; /* retry_on / skip_on heap */
    int64_t ttl_ms;
    char **depends_on; /* heap, NULL-terminated; NULL when none */
    int run_on_dependency_failure;
    char *unique_key;              /* heap or NULL */
    char schedule_id[NAQ_ID_SIZE]; /* "" when none */
    int64_t result_ttl_ms;         /* > 0 */
    char *original_job_id;         /* heap or NULL: the job this one retries from the DLQ */
} naq_job;

/* Encodes a job as compact JSON; *json is heap, freed with free(). */
naq_status naq_job_encode(const naq_job *j, char **json, size_t *len);
/* Decodes; NAQ_ERR_CODEC naming the bad field. Unknown fields are
 * ignored. On failure out->id (and out->queue) still hold the job id when
 * it could be read, so the failure can be recorded against the job. Clear
 * with naq_job_clear() even on failure. */
naq_status naq_job_decode(const char *json, size_t len, naq_job *out);
/* Frees every heap field and zeroes j. Accepts NULL. */
void naq_job_clear(naq_job *j);

/* ---- Operator actions on one job ---- */

typedef enum {
    NAQ_CANCEL_REQUESTED, /* queued or running: the worker that meets it
                             does not run it, or stops it; it logs "cancelled" */
    NAQ_CANCEL_DONE,      /* it was waiting (for dependencies, or delayed) and
                             is cancelled now; "cancelled" is logged */
} naq_cancel_outcome;

/* Cancels a job: records the request in the KV bucket "naq_cancel" (key =
 * job id, kept 7 days), which every worker checks before it runs a job
 * and watches while jobs run (a running exec job is killed, a C handler
 * sees naq_job_ctx_cancelled()). A job waiting for its dependencies is
 * removed from "naq_deps" and a delayed job from the NAQ_DELAYED stream,
 * and then "cancelled" is logged here; their dependents are told, as for
 * any cancelled job. *out (may be NULL) tells which case it was.
 * NAQ_ERR_NOT_FOUND when naq knows nothing of the job (no events, not
 * waiting), NAQ_ERR_CLOSED when it already finished (completed, failed
 * for good, cancelled, expired), NAQ_ERR_INVALID_ARG for a malformed id. */
naq_status naq_job_cancel(naq_client *c, const char *job_id, naq_cancel_outcome *out);

/* Changes the priority of a job that is still waiting in its queue (not
 * yet delivered to a worker), or moves it to another queue, keeping its
 * place as a new message at the end of the new level. The job's message
 * is found by its Nats-Msg-Id header among the queue's messages (a scan
 * of that queue: an operator action, not a hot path), re-published with
 * the changed "priority" / "queue" and a new Nats-Msg-Id "<job id>:mv<old
 * sequence>" (the job id itself is inside the duplicate window for 2
 * minutes after the enqueue, and the server would drop it), then the old
 * message is deleted. Logs "queue_priority_changed" (details {"from",
 * "to"}: priorities) / "queue_moved" (details {"from", "to"}: queues).
 * When a worker takes the job meanwhile, nothing is re-published and the
 * call fails with NAQ_ERR_CLOSED "job ... is no longer queued"; the same
 * for a job that was delivered already (running, or waiting for a retry).
 * NAQ_ERR_NOT_FOUND when the job is not in its queue (unknown, finished,
 * delayed or waiting for dependencies: the message says which),
 * NAQ_ERR_INVALID_ARG for a bad priority, queue or id. Moving to the
 * queue it is in, or setting the priority it has, changes nothing and
 * logs nothing. */
naq_status naq_job_set_priority(naq_client *c, const char *job_id, int priority);
naq_status naq_job_move(naq_client *c, const char *job_id, const char *queue);

/* Gives a job that still waits in its queue extend_ms more before its TTL
 * runs out (ttl_ms, counted from when it was queued), the same way: its
 * message is re-published with the ttl_ms that leaves it the old deadline
 * plus extend_ms. Logs "ttl_extended" (details {"extended_by_ms",
 * "previous_ttl_ms", "ttl_ms", "expires_at"}). NAQ_ERR_CLOSED when the
 * job has no TTL, or would still be past it; NAQ_ERR_INVALID_ARG for
 * extend_ms <= 0; otherwise fails like naq_job_move. */
naq_status naq_job_extend_ttl(naq_client *c, const char *job_id, int64_t extend_ms);

#ifdef __cplusplus
}
#endif
#endif
