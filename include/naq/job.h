/*
 * naq/job.h - jobs: what a job is on the wire, and enqueueing one.
 *
 * A job is published as JSON to the work-queue stream on the subject
 * "<prefix>.queue.<queue>.<priority>" with Nats-Msg-Id = job id, so an
 * enqueue re-sent within the duplicate window is stored once. The job's
 * "enqueued" event is logged after the server has stored the job, so the
 * event log never shows a job that is not queued.
 */
#ifndef NAQ_JOB_H
#define NAQ_JOB_H

#include <stdint.h>

#include "naq/client.h"
#include "naq/id.h"
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

/* The function name of the built-in handler that runs a command. Its args
 * are {"argv": ["cmd", "arg", ...]} with optional "env" (object of strings)
 * and "cwd" (string). */
#define NAQ_EXEC_FUNCTION "exec"

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
} naq_job_opts;

/* Defaults: no retries, no timeout, normal priority. */
void naq_job_opts_init(naq_job_opts *o);

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

/* A job as a worker receives it. Every string is owned by the job. */
typedef struct {
    int version;
    char id[NAQ_ID_SIZE];
    char queue[NAQ_ID_SIZE];
    char function[NAQ_ID_SIZE];
    char *args_json;   /* heap; "[]" when none */
    char *tags_json;   /* heap; NULL when none */
    int max_retries;
    int64_t timeout_ms;
    int priority;
    double enqueued_at;
    int attempt;       /* 1 on first delivery, from the stream's delivery count */
} naq_job;

/* Encodes a job as compact JSON; *json is heap, freed with free(). */
naq_status naq_job_encode(const naq_job *j, char **json, size_t *len);
/* Decodes; NAQ_ERR_CODEC naming the bad field. Unknown fields are
 * ignored. On failure out->id (and out->queue) still hold the job id when
 * it could be read, so the failure can be recorded against the job. Clear
 * with naq_job_clear() even on failure. */
naq_status naq_job_decode(const char *json, size_t len, naq_job *out);
void naq_job_clear(naq_job *j);

#ifdef __cplusplus
}
#endif
#endif
