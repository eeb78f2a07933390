/*
 * naq/dlq.h - the dead-letter queue: jobs that failed for good.
 *
 * When a job's last attempt fails (or its error type may not be retried),
 * the worker stores the whole job, its last error and the number of
 * attempts as one entry on "<prefix>.dlq.<queue>" in the NAQ_DLQ stream
 * and logs "max_retries_exceeded". From there an operator lists entries,
 * looks at one, retries them (each becomes a new job linked to the dead
 * one) or purges them. docs/jobs.md, "Dead letters", and
 * docs/protocol.md, "Dead-letter entries", describe the format.
 *
 * Thread-safety: every call is safe on a shared client from any thread;
 * lists and entries belong to the caller.
 */
#ifndef NAQ_DLQ_H
#define NAQ_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include "naq/client.h"
#include "naq/id.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the entry JSON; same rules as NAQ_WIRE_VERSION (event.h). */
#define NAQ_DLQ_VERSION 1

/* One dead job. Heap fields are owned by the entry: naq_dlq_entry_clear. */
typedef struct {
    uint64_t seq; /* the entry's sequence in the DLQ stream */
    char job_id[NAQ_ID_SIZE];
    char queue[NAQ_ID_SIZE];
    char function[NAQ_ID_SIZE];
    char *error_type;    /* heap; "" when the job had none */
    char *error_message; /* heap; "" when none */
    int attempts;        /* runs the job had */
    double failed_at;    /* seconds since the epoch, UTC */
    char *job_json;      /* heap: the job as it was queued (docs/protocol.md, "Job JSON") */
    char *entry_json;    /* heap: the whole stored entry */
} naq_dlq_entry;

void naq_dlq_entry_clear(naq_dlq_entry *e); /* accepts NULL */

typedef struct {
    naq_dlq_entry *items;
    size_t count;
} naq_dlq_entry_list;

void naq_dlq_entry_list_free(naq_dlq_entry_list *l); /* accepts NULL; leaves l empty */

/* Which entries a call is about; zero-initialise it. Every field that is
 * set must match. */
typedef struct {
    const char *queue;      /* NULL or "" = any queue */
    const char *error_type; /* NULL or "" = any error type (exact match) */
    const char *job_id;     /* NULL or "" = any job */
    uint64_t seq;           /* 0 = any entry; else only this one */
    size_t limit;           /* at most this many, oldest first; 0 = no limit */
    int all;                /* retry and purge refuse an empty filter unless this is set */
} naq_dlq_filter;

/* The matching entries, oldest first (f may be NULL = all). *out is
 * heap; free it with naq_dlq_entry_list_free, also after a failure. Reads the
 * queue's subject (or the whole stream) once. */
naq_status naq_dlq_list(naq_client *c, const naq_dlq_filter *f, naq_dlq_entry_list *out);

/* One entry: by its sequence (seq > 0) or else the newest entry of job_id.
 * NAQ_ERR_NOT_FOUND when there is none. Clear *out with
 * naq_dlq_entry_clear, also after a failure. */
naq_status naq_dlq_show(naq_client *c, uint64_t seq, const char *job_id, naq_dlq_entry *out);

typedef struct {
    uint64_t seq;                 /* the entry that was retried (and is gone now) */
    char job_id[NAQ_ID_SIZE];     /* the dead job */
    char new_job_id[NAQ_ID_SIZE]; /* the job that retries it */
} naq_dlq_retried;

/* Re-enqueues every matching entry as a new job: the same job JSON with a
 * new id "<old id>-r<seq>" (a hash when too long), "original_job_id" =
 * the dead job's id, attempts starting again at 1, queued at once (its
 * dependencies were met before it died). Logs "enqueued" on the new job
 * (details {"original_job_id"}) and "retry_scheduled" on the dead one
 * (details {"new_job_id", "from": "dlq"}), then deletes the entry. Running
 * the same retry again after a crash re-enqueues nothing new within 2
 * minutes (the new id is the Nats-Msg-Id). An empty filter needs f->all.
 * *out (heap, free(); may be NULL) lists what was retried, in order, *n
 * how many. NAQ_ERR_NOT_FOUND when nothing matched. On a failure midway,
 * *out and *n still tell what was retried before it. */
naq_status naq_dlq_retry(naq_client *c, const naq_dlq_filter *f, naq_dlq_retried **out, size_t *n);

/* Deletes every matching entry for good; *purged (may be NULL) counts
 * them. An empty filter needs f->all. NAQ_OK with 0 when nothing matched. */
naq_status naq_dlq_purge(naq_client *c, const naq_dlq_filter *f, size_t *purged);

#ifdef __cplusplus
}
#endif
#endif
