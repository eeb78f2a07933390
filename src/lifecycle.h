/*
 * lifecycle.h - what the job lifecycle modules share, private to them:
 *   kv.c       the lifecycle's KV buckets, read and written by subject
 *   job.c      job options, their validation, the job JSON
 *   enqueue.c  naq_enqueue, unique keys;  batch.c  naq_enqueue_batch
 *   deps.c     dependencies;  cancel.c  cancellation;  results.c  results
 *   dlq.c      dead letters;  requeue.c  priority changes and moves
 * The worker's side of the contract is in internal.h ("job lifecycle").
 */
#ifndef NAQ_LIFECYCLE_H
#define NAQ_LIFECYCLE_H

#include "internal.h"

#include <jansson.h>

#include "naq/dlq.h"
#include "naq/results.h"

#define NAQ__JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(17))

/* ---- kv.c ----
 *
 * The buckets are ordinary KV buckets (the `nats kv` tool reads them), but
 * naq reads and writes them by subject through the client's JetStream
 * context: a kvStore handle costs a stream-info request to bind, and the
 * client has nowhere to keep one. Reads are direct gets (why, and why a
 * bucket is made sure of before the first read: kv.c). A bucket is
 * created the first time it is read or a write finds no stream. Removing
 * a key purges its messages up to a revision instead of writing a delete
 * marker, so buckets without a TTL do not keep a marker per job forever. */
typedef enum {
    NAQ__KV_UNIQUE,   /* "<queue>/<unique key>" -> the job holding it; no TTL */
    NAQ__KV_DEPS,     /* "<job>" waiting job, "r.<dep>" its dependents; no TTL */
    NAQ__KV_FINISHED, /* "<job>" -> "completed" | "failed"; 7 days */
    NAQ__KV_RESULTS,  /* "<job>" -> result record; 24 h */
    NAQ__KV_CANCEL,   /* "<job>" -> cancel request; 7 days */
    NAQ__KV_COUNT
} naq__kv;

/* Longest encoded key (a subject has room for it after "$KV.<bucket>."). */
#define NAQ__KV_KEY_MAX 420

const char *naq__kv_bucket(naq__kv b);
/* Creates the bucket when it does not exist (an existing one is used as it
 * is, whatever its TTL). */
naq_status naq__kv_ensure(naq_client *c, naq__kv b);
/* Encodes text as a KV key: letters, digits, '-' and '_' stay, every other
 * byte becomes "=HH" (so '.', '/' and '=' never come from the text).
 * NAQ_ERR_INVALID_ARG when it does not fit in cap. */
naq_status naq__kv_key(const char *text, char *out, size_t cap);
/* The text of an encoded key. */
naq_status naq__kv_unkey(const char *key, char *out, size_t cap);
/* The value of key: *val is heap (free(), NUL-terminated), *len its length,
 * *rev its revision. NAQ_ERR_NOT_FOUND, with no message recorded, when the
 * key (or the bucket) does not exist or was deleted; *rev is then the
 * delete marker's revision or 0. val and len may be NULL. */
naq_status naq__kv_get(naq_client *c, naq__kv b, const char *key, char **val, size_t *len,
                       uint64_t *rev);
/* Writes key whatever it holds. rev may be NULL. */
naq_status naq__kv_put(naq_client *c, naq__kv b, const char *key, const void *val, size_t len,
                       uint64_t *rev);
/* Writes key only if it holds nothing: NAQ_ERR_EXISTS (no message
 * recorded) when it does. */
naq_status naq__kv_create(naq_client *c, naq__kv b, const char *key, const void *val, size_t len,
                          uint64_t *rev);
/* Writes key only if its revision is still `last`: NAQ_ERR_EXISTS (no
 * message recorded) when someone wrote or removed it in between. */
naq_status naq__kv_update(naq_client *c, naq__kv b, const char *key, const void *val, size_t len,
                          uint64_t last, uint64_t *rev);
/* Removes key's revisions up to and including rev (0 = all): a newer value
 * written meanwhile stays. */
naq_status naq__kv_remove(naq_client *c, naq__kv b, const char *key, uint64_t rev);

/* ---- job.c ---- */

/* Fills j (zeroed here; naq_job_clear it) from validated options: a new id
 * unless o->job_id is set, enqueued_at = now, heap copies of every string. */
naq_status naq__job_from_opts(const naq_job_opts *o, naq_job *j);
/* The job as a JSON object (new reference), or NULL when its args or tags
 * are not JSON (message recorded). */
json_t *naq__job_json(const naq_job *j);

/* ---- enqueue.c ---- */

/* Publishes job JSON to "<p>.queue.<queue>.<priority>" (as naq_enqueue
 * does, headers included) through js and waits for the stream's ack.
 * msg_id is the Nats-Msg-Id (NULL = the job id). *duplicate (may be NULL)
 * tells that the stream had it already; *seq (may be NULL) its sequence. */
naq_status naq__job_publish(naq_client *c, jsCtx *js, const char *job_id, const char *queue,
                            const char *function, int priority, const char *json, size_t len,
                            const char *msg_id, int *duplicate, uint64_t *seq);
/* Logs j's "enqueued" (naq__enqueued_event). */
void naq__log_enqueued(naq_client *c, const naq_job *j);
/* naq_enqueue_ex for a job already built and encoded (batch.c). */
naq_status naq__enqueue_built(naq_client *c, const naq_job *j, const char *json, size_t len,
                              char job_id[NAQ_ID_SIZE], int *existing);
/* NAQ_ERR_INVALID_ARG when len exceeds the server's max payload. */
naq_status naq__check_payload(naq_client *c, const char *job_id, size_t len);

/* ---- cancel.c ---- */

/* naq_job_last_event for an operator action on a job that may have been
 * enqueued a moment ago: this client's own events are flushed first, and
 * when there is none yet the read is repeated once after the loggers'
 * flush interval (another process's "enqueued" may be on its way). */
naq_status naq__last_event_settled(naq_client *c, const char *job_id, naq_event *out);

/* ---- deps.c ---- */

/* What is known of a job's end: 1 completed, -1 failed for good or
 * cancelled, 0 not finished (or unknown). From the finished marker that
 * naq__deps_on_finished writes, else from the job's events. */
int naq__job_finished(naq_client *c, const char *job_id);
/* Stores j (JSON json) to wait for its dependencies instead of queueing
 * it, logs waiting_for_dependencies, and accounts at once for
 * dependencies that finished already (possibly releasing it). A job id
 * stored already is not stored twice. */
naq_status naq__deps_enqueue(naq_client *c, const naq_job *j, const char *json, size_t len);
/* Cancels a job that waits for its dependencies: it is never released,
 * "cancelled" is logged and its own dependents are told. *cancelled = 1
 * when it was waiting, 0 when it is not (or no longer) waiting. */
naq_status naq__deps_cancel(naq_client *c, const char *job_id, int *cancelled);
/* A job that ends without ever running (cancelled while it waited):
 * what the worker does after a final outcome - its result record
 * ({"status": "cancelled", error_type, error_message}), its dependents
 * told (naq__deps_on_finished), its unique key released. */
naq_status naq__job_finish_unrun(naq_client *c, json_t *job, const char *error_type,
                                 const char *message);
/* The stored job JSON (heap, *json) of a job waiting for dependencies, or
 * NAQ_ERR_NOT_FOUND (no message recorded). */
naq_status naq__deps_waiting_job(naq_client *c, const char *job_id, char **json);

#endif
