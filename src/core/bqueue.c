/*
 * bqueue.c - the bounded FIFO between job-path producers and one consumer.
 *
 * Why it is built this way (push sits on the job path, so it must be cheap):
 *  - One malloc per push: the record header and its bytes are one block, and
 *    the block itself is the list node, so popping hands the very same block
 *    to the consumer with no copy and no second allocation. The malloc and
 *    memcpy happen before the mutex is taken, so the lock is held only to
 *    check the bounds and link the node.
 *  - A mutex and one condition variable, and a producer signals only when a
 *    consumer is actually waiting. While the consumer is busy publishing a
 *    batch it is not waiting, so a burst of pushes costs no futex wake-up.
 *  - The consumer takes a whole batch per lock, which amortises the lock
 *    over many records on the slow side.
 *
 * Invariant (under mu): count and bytes are exactly the number and the
 * summed lens of the records on the list head..tail, and never exceed
 * max_records / max_bytes.
 */
#include "bqueue.h"

#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct naq__bqueue {
    pthread_mutex_t mu;
    pthread_cond_t nonempty; /* signalled on push (when waiters > 0) and on close */
    naq__bqueue_record *head, *tail;
    size_t count, bytes;
    size_t max_records, max_bytes;
    unsigned waiters; /* consumers blocked in pop_batch */
    int closed;
};

naq_status naq__bqueue_create(size_t max_records, size_t max_bytes, naq__bqueue **out)
{
    pthread_condattr_t ca;
    naq__bqueue *q = NULL;

    if (out == NULL || max_records == 0 || max_bytes == 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "bqueue: bounds must be > 0 and out non-NULL");
    *out = NULL;
    q = calloc(1, sizeof *q);
    if (q == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "bqueue: out of memory");
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        goto fail_free;
    /* Timeouts are measured on the monotonic clock so that a wall-clock jump
     * (NTP, manual change) cannot make a pop wait for hours or not at all. */
    if (pthread_condattr_init(&ca) != 0)
        goto fail_mutex;
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&q->nonempty, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        goto fail_mutex;
    }
    pthread_condattr_destroy(&ca);
    q->max_records = max_records;
    q->max_bytes = max_bytes;
    *out = q;
    return NAQ_OK;

fail_mutex:
    pthread_mutex_destroy(&q->mu);
fail_free:
    free(q);
    return naq__fail(NAQ_ERR_NO_MEMORY, "bqueue: cannot initialise mutex or condition");
}

void naq__bqueue_destroy(naq__bqueue *q)
{
    if (q == NULL)
        return;
    naq__bqueue_record *r = q->head;
    while (r != NULL) {
        naq__bqueue_record *next = r->next;
        free(r);
        r = next;
    }
    pthread_cond_destroy(&q->nonempty);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

naq_status naq__bqueue_push(naq__bqueue *q, const void *data, size_t len)
{
    if (q == NULL || (data == NULL && len > 0))
        return naq__fail(NAQ_ERR_INVALID_ARG, "bqueue_push: NULL queue or data");
    /* A record larger than the byte bound can never fit; refusing it early
     * also keeps the size computation below from overflowing. */
    if (len > q->max_bytes)
        return naq__fail(NAQ_ERR_FULL,
                         "bqueue_push: record of %zu bytes exceeds the %zu "
                         "byte bound",
                         len, q->max_bytes);

    naq__bqueue_record *r = malloc(sizeof *r + len);
    if (r == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "bqueue_push: out of memory");
    r->next = NULL;
    r->len = len;
    if (len > 0)
        memcpy(r->data, data, len);

    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        free(r);
        return naq__fail(NAQ_ERR_CLOSED, "bqueue_push: queue is closed");
    }
    if (q->count >= q->max_records || len > q->max_bytes - q->bytes) {
        pthread_mutex_unlock(&q->mu);
        free(r);
        return naq__fail(NAQ_ERR_FULL, "bqueue_push: queue is full");
    }
    if (q->tail != NULL)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->count++;
    q->bytes += len;
    int wake = q->waiters > 0;
    pthread_mutex_unlock(&q->mu);
    /* Signalled after unlocking so the woken consumer does not immediately
     * block on the mutex we still hold. waiters was read under the lock, and
     * a consumer re-checks count under the lock before sleeping, so no
     * wake-up can be missed. */
    if (wake)
        pthread_cond_signal(&q->nonempty);
    return NAQ_OK;
}

naq_status naq__bqueue_pop_batch(naq__bqueue *q, naq__bqueue_record **out, size_t max,
                                 int64_t timeout_ms, size_t *n)
{
    if (n != NULL)
        *n = 0;
    if (q == NULL || out == NULL || n == NULL || max == 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "bqueue_pop_batch: NULL argument or max == 0");

    pthread_mutex_lock(&q->mu);
    if (q->count == 0 && !q->closed && timeout_ms != 0) {
        /* The deadline is fixed once, so spurious wake-ups do not extend it. */
        struct timespec deadline = {0, 0};
        if (timeout_ms > 0)
            deadline = naq__deadline(CLOCK_MONOTONIC, timeout_ms);
        q->waiters++;
        while (q->count == 0 && !q->closed) {
            int rc = timeout_ms > 0 ? pthread_cond_timedwait(&q->nonempty, &q->mu, &deadline)
                                    : pthread_cond_wait(&q->nonempty, &q->mu);
            if (rc == ETIMEDOUT)
                break;
        }
        q->waiters--;
    }

    size_t taken = 0;
    while (taken < max && q->head != NULL) {
        naq__bqueue_record *r = q->head;
        q->head = r->next;
        q->count--;
        q->bytes -= r->len;
        r->next = NULL;
        out[taken++] = r;
    }
    if (q->head == NULL)
        q->tail = NULL;
    int closed = q->closed;
    pthread_mutex_unlock(&q->mu);

    *n = taken;
    if (taken == 0 && closed)
        return naq__fail(NAQ_ERR_CLOSED, "bqueue_pop_batch: queue is closed and empty");
    return NAQ_OK;
}

void naq__bqueue_record_free(naq__bqueue_record *r)
{
    free(r);
}

void naq__bqueue_close(naq__bqueue *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_mutex_unlock(&q->mu);
    pthread_cond_broadcast(&q->nonempty);
}

void naq__bqueue_stats(naq__bqueue *q, size_t *records, size_t *bytes)
{
    size_t c = 0, b = 0;
    if (q != NULL) {
        pthread_mutex_lock(&q->mu);
        c = q->count;
        b = q->bytes;
        pthread_mutex_unlock(&q->mu);
    }
    if (records != NULL)
        *records = c;
    if (bytes != NULL)
        *bytes = b;
}
