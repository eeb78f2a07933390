/*
 * bqueue.h - a thread-safe bounded FIFO of byte records.
 *
 * The hand-off between threads that must never wait on each other for long:
 * the event logger's job-path producers push encoded events, one background
 * consumer pops them in batches and publishes them. A record is an opaque
 * blob (its layout belongs to whoever pushes it). The queue is bounded by a
 * record count AND a total of record bytes, so its memory stays bounded
 * whatever the consumer does; a push that would cross either bound fails at
 * once with NAQ_ERR_FULL and the caller decides what to do (spool, drop).
 *
 * Thread-safety: every call may be made from any thread concurrently, except
 * naq__bqueue_destroy, which must run when no other call is in progress.
 * The design assumes one consumer but stays correct with several.
 */
#ifndef NAQ_BQUEUE_H
#define NAQ_BQUEUE_H

#include "naq/status.h"

#include <stddef.h>
#include <stdint.h>

typedef struct naq__bqueue naq__bqueue;

/* One record: a single heap block holding this header and the bytes. data is
 * aligned for any object type, so a producer may store a struct in it. */
typedef struct naq__bqueue_record {
    struct naq__bqueue_record *next; /* queue link; meaningless once popped */
    size_t len;                      /* bytes in data */
    _Alignas(max_align_t) unsigned char data[];
} naq__bqueue_record;

/* Create a queue holding at most max_records records and at most max_bytes
 * bytes of record data (the sum of the lens; headers are not counted). Both
 * must be > 0. Destroy with naq__bqueue_destroy. */
naq_status naq__bqueue_create(size_t max_records, size_t max_bytes, naq__bqueue **out);

/* Free the queue and any records still inside. Accepts NULL. */
void naq__bqueue_destroy(naq__bqueue *q);

/* Copy len bytes from data into a new record at the tail (data may be NULL
 * when len is 0). Never blocks beyond a short mutex hold.
 * NAQ_ERR_FULL if the record would cross either bound (nothing is queued),
 * NAQ_ERR_CLOSED after naq__bqueue_close, NAQ_ERR_NO_MEMORY. */
naq_status naq__bqueue_push(naq__bqueue *q, const void *data, size_t len);

/* Wait up to timeout_ms (0: do not wait, < 0: wait until a record arrives or
 * the queue is closed) for at least one record, then move up to max records,
 * oldest first, into out[0..*n). Each out[i] is the caller's: free it with
 * naq__bqueue_record_free (plain free() is equivalent).
 * NAQ_OK with *n == 0 on timeout. After close the remaining records are
 * still handed out; once none is left the call returns NAQ_ERR_CLOSED with
 * *n == 0. */
naq_status naq__bqueue_pop_batch(naq__bqueue *q, naq__bqueue_record **out, size_t max,
                                 int64_t timeout_ms, size_t *n);

/* Free one record returned by naq__bqueue_pop_batch. Accepts NULL. */
void naq__bqueue_record_free(naq__bqueue_record *r);

/* Refuse further pushes and wake every waiting pop. Idempotent. */
void naq__bqueue_close(naq__bqueue *q);

/* Current number of records and record bytes inside (either out may be NULL). */
void naq__bqueue_stats(naq__bqueue *q, size_t *records, size_t *bytes);

#endif
