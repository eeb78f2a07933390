/*
 * jobs.h - what the job lifecycle modules (src/jobs/) share, private to them:
 *   outcome.c  the outcome stream: outcome records and who waits for them
 *   job_opts.c job options and their validation;  job.c  the job JSON
 *   publish.c  the job message, published to its queue
 *   enqueue.c  naq_enqueue;  batch.c  naq_enqueue_batch;  unique.c  unique keys
 *   deps.c     jobs waiting for dependencies;  finish.c  the finish protocol
 *   cancel.c  cancellation;  results.c  reading results
 *   dlq.c      dead letters;  requeue.c  priority changes and moves
 * Dependencies point one way: enqueue and finish use deps, unique, outcome
 * and publish; deps uses outcome and publish; those use kv.
 * The worker's side of the contract is in internal.h ("jobs <-> worker").
 */
#ifndef NAQ_SRC_JOBS_H
#define NAQ_SRC_JOBS_H

#include "core/jsonw.h"
#include "core/kv.h"
#include "internal.h"
#include "retry.h"

#include <jansson.h>

#include "naq/dlq.h"
#include "naq/results.h"

/* ---- outcome.c ---- */

#define NAQ__OUTCOME_KIND_HEADER "Naq-Kind"
naq_status naq__outcome_subject(naq_client *c, const char *job_id, char *out, size_t cap);
/* The last message on a job's outcome subject (*out: natsMsg_Destroy it),
 * or NAQ_ERR_NOT_FOUND (no message recorded). */
naq_status naq__outcome_last(naq_client *c, const char *job_id, natsMsg **out);
/* The first message on a job's outcome subject at or after from_seq. */
naq_status naq__outcome_next(naq_client *c, const char *job_id, uint64_t from_seq, natsMsg **out);
/* 1 when m is an outcome record (else a waiter). */
int naq__outcome_is_record(natsMsg *m);
/* 1 when the record says completed, -1 otherwise. */
int naq__outcome_status(natsMsg *record);
/* A message of `kind` ("outcome" | "waiter") for job_id (*out:
 * natsMsg_Destroy it). */
naq_status naq__outcome_msg(naq_client *c, const char *job_id, const char *kind, const char *body,
                            size_t len, natsMsg **out);
/* Writes m if the subject's last sequence is still last_seq (0 = empty):
 * NAQ_ERR_EXISTS (no message recorded) when it is not. */
naq_status naq__outcome_write(naq_client *c, natsMsg *m, uint64_t last_seq);
/* Registers `dependent` as waiting for dep, unless dep has finished:
 * *outcome = 0 registered, 1 dep completed, -1 dep failed for good. */
naq_status naq__outcome_wait_for(naq_client *c, const char *dep, const char *dependent,
                                 int *outcome);
/* What is known of a job's end: 1 completed, -1 failed for good or
 * cancelled, 0 not finished (or unknown). From its outcome record, else
 * (the record expired) from its events. */
int naq__job_finished(naq_client *c, const char *job_id);
int naq__job_finished_by_events(naq_client *c, const char *job_id);

/* ---- job_opts.c: the checks the codec reuses on what it decodes ---- */

/* Longest retry delay, TTL or result TTL accepted: a year catches unit
 * mistakes (nanoseconds passed as milliseconds) without limiting anyone. */
#define NAQ__MAX_DELAY_MS NAQ__RETRY_MAX_DELAY_MS
/* The retry policy's backoff kinds by name, indexed by naq_backoff_kind. */
extern const char *const naq__backoff_names[NAQ_BACKOFF_LIST + 1];
/* A comma-separated list of error type names (retry_on / skip_on, called
 * `what` in messages): NAQ_ERR_INVALID_ARG saying what is wrong. */
naq_status naq__retry_names_check(const char *what, const char *list);
/* NAQ_OK when v is a JSON object whose values are all strings; else `bad`. */
naq_status naq__tags_check(const json_t *v, naq_status bad);

/* ---- job.c ---- */

/* Fills j (zeroed here; naq_job_clear it) from validated options: a new id
 * unless o->job_id is set, enqueued_at = now, heap copies of every string.
 * With keys (k, may be NULL) the args are sealed here, the one place every
 * new job is built, so no enqueue path can publish them in plaintext. */
/* naq_job_decode reads a job with jsonscan.h when it can and with this
 * jansson decoder when it cannot; the two agree on every job the first
 * one reads (tests/test_job.c, fuzz/fuzz_job.c compare them). */
naq_status naq__job_decode_tree(const char *json, size_t len, naq_job *out);
/* 1 when the fast reader declines the text (*fast = 0) or reads the same
 * job from it as naq__job_decode_tree (*fast = 1). */
int naq__job_decoders_agree(const char *json, size_t len, int *fast);
naq_status naq__job_from_opts(const struct naq__crypt *k, const naq_job_opts *o, naq_job *j);
/* The job as a JSON object (new reference), or NULL when its args or tags
 * are not JSON (message recorded). */
json_t *naq__job_json(const naq_job *j);

/* ---- publish.c ---- */

/* Publishes job JSON to "<p>.queue.<queue>.<priority>" with its headers
 * and waits for the stream's ack. msg_id is the Nats-Msg-Id (NULL = the
 * job id). A duplicate is success: the stream has the job. */
naq_status naq__job_publish(naq_client *c, jsCtx *js, const char *job_id, const char *queue,
                            const char *function, int priority, const char *json, size_t len,
                            const char *msg_id);
/* The job's message on a given subject (*out: natsMsg_Destroy it). */
naq_status naq__job_msg_to(const char *subject, const char *job_id, const char *queue,
                           const char *function, const char *json, size_t len, const char *msg_id,
                           natsMsg **out);
/* The job's message, as naq__job_publish sends it (*out: natsMsg_Destroy
 * it), for callers that publish asynchronously. */
naq_status naq__job_msg(naq_client *c, const char *job_id, const char *queue, const char *function,
                        int priority, const char *json, size_t len, const char *msg_id,
                        natsMsg **out);
/* Logs j's "enqueued" (naq__enqueued_event). */
void naq__log_enqueued(naq_client *c, const naq_job *j);
/* NAQ_ERR_INVALID_ARG when len exceeds the server's max payload. */
naq_status naq__check_payload(naq_client *c, const char *job_id, size_t len);

/* ---- unique.c ---- */

/* Takes j's unique key, or finds the pending job that holds it (holder =
 * its id; nothing taken). *took = 1 and *rev set when taken. */
naq_status naq__unique_claim(naq_client *c, const naq_job *j, char holder[NAQ_ID_SIZE], int *took,
                             uint64_t *rev);
/* Gives back a key taken at revision rev by a job that was then not
 * enqueued. */
void naq__unique_unclaim(naq_client *c, const naq_job *j, uint64_t rev);
/* Releases job_id's hold on (queue, key), if it still holds it. */
void naq__unique_release(naq_client *c, const char *queue, const char *key, const char *job_id);

/* ---- enqueue.c ---- */

/* naq_enqueue_async for a job already built and encoded, without a unique
 * key or dependencies; takes j (cleared here, also on failure). */
naq_status naq__enqueue_async_built(naq_client *c, naq_job *j, const char *json, size_t len,
                                    naq_enqueue_done_fn done, void *user);
/* naq_enqueue_ex for a job already built and encoded (batch.c). */
naq_status naq__enqueue_built(naq_client *c, const naq_job *j, const char *json, size_t len,
                              char job_id[NAQ_ID_SIZE], int *existing);

/* ---- cancel.c ---- */

/* naq_job_last_event for an operator action on a job that may have been
 * enqueued a moment ago: this client's own events are flushed first, and
 * when there is none yet the read is repeated once after the loggers'
 * flush interval (another process's "enqueued" may be on its way). */
naq_status naq__last_event_settled(naq_client *c, const char *job_id, naq_event *out);

/* ---- deps.c ---- */

/* Stores j (JSON json) to wait for its dependencies instead of queueing
 * it, logs waiting_for_dependencies, and accounts at once for
 * dependencies that finished already (possibly releasing it). A job id
 * stored already is not stored twice. A job this cancels (a dependency
 * failed) is appended to `ended` (JSON array of job objects) for the
 * caller to finish. */
naq_status naq__deps_enqueue(naq_client *c, const naq_job *j, const char *json, size_t len,
                             json_t *ended);
/* Records that dep ended (ok = completed) for the waiting job `job`,
 * releasing it when that was its last dependency, or cancelling it (and
 * appending it to `ended`) when dep failed and it does not run anyway.
 * Idempotent. */
naq_status naq__deps_account(naq_client *c, const char *job, const char *dep, int ok,
                             json_t *ended);
/* Cancels a job that waits for its dependencies: it is never released,
 * "cancelled" is logged and it is appended to `ended`. *cancelled = 1
 * when it was waiting, 0 when it is not (or no longer) waiting. */
naq_status naq__deps_cancel(naq_client *c, const char *job_id, int *cancelled, json_t *ended);
/* Removes a cancelled waiting job once it was finished. */
void naq__deps_forget(naq_client *c, const char *job_id);
/* The stored job JSON (heap, *json) of a job waiting for dependencies, or
 * NAQ_ERR_NOT_FOUND (no message recorded). */
naq_status naq__deps_waiting_job(naq_client *c, const char *job_id, char **json);

/* ---- finish.c ---- */

/* An entry of an `ended` list: a job that ended without running. Takes
 * job (a job object). */
naq_status naq__ended_add(json_t *ended, json_t *job, const char *error_type, const char *message);
/* Finishes the jobs of an `ended` list (cancelled while waiting or
 * delayed): for each, an outcome record {"status": "cancelled",
 * error_type, error_message}, its dependents told (cancelling more of them
 * adds to the list), its unique key released, its waiting entry removed. */
naq_status naq__finish_unrun(naq_client *c, json_t *ended);

/* ---- requeue.c ---- */

/* The message of a queued job: m (the caller destroys it), its stream
 * sequence and priority level. */
typedef struct {
    natsMsg *m;
    uint64_t seq;
    int level;
} naq__queued_msg;

/* Finds job_id's message (its own or a move's, by Nats-Msg-Id) in queue, on
 * one priority level (-1: every level, highest first), reading up to
 * max_scan messages per level (0: all). NAQ_OK with *f filled;
 * NAQ_ERR_NOT_FOUND, with *cut = 1 when a level was not read to its end;
 * another status when the server cannot be read. */
naq_status naq__job_find_queued(naq_client *c, const char *job_id, const char *queue, int level,
                                int max_scan, naq__queued_msg *f, int *cut);

#endif
