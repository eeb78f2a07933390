/*
 * test_bqueue.c - the bounded FIFO between the job path and the logger thread.
 *
 * Asserts behaviour only (order, bounds, close, wake-ups, exactly-once
 * delivery under concurrency); speed is measured by bench/, not here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h" /* NAQ_TEST_MAIN */

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bqueue.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void free_all(naq__bqueue_record **recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        naq__bqueue_record_free(recs[i]);
}

static void create_rejects_zero_bounds(void **state)
{
    (void)state;
    naq__bqueue *q = (naq__bqueue *)1;
    assert_int_equal(naq__bqueue_create(0, 100, &q), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq__bqueue_create(10, 0, &q), NAQ_ERR_INVALID_ARG);
    naq__bqueue_destroy(NULL); /* accepted */
}

static void pop_returns_records_in_push_order(void **state)
{
    (void)state;
    naq__bqueue *q = NULL;
    assert_int_equal(naq__bqueue_create(100, 10000, &q), NAQ_OK);
    char buf[32];
    for (int i = 0; i < 10; i++) {
        int len = snprintf(buf, sizeof buf, "record-%d", i);
        assert_int_equal(naq__bqueue_push(q, buf, (size_t)len), NAQ_OK);
    }
    assert_int_equal(naq__bqueue_push(q, NULL, 0), NAQ_OK); /* empty record is allowed */

    size_t records = 0, bytes = 0;
    naq__bqueue_stats(q, &records, &bytes);
    assert_int_equal(records, 11);
    assert_int_equal(bytes, 10 * strlen("record-0"));

    naq__bqueue_record *out[16];
    size_t n = 0;
    /* A batch smaller than the queue takes the oldest records. */
    assert_int_equal(naq__bqueue_pop_batch(q, out, 4, 0, &n), NAQ_OK);
    assert_int_equal(n, 4);
    size_t n2 = 0;
    assert_int_equal(naq__bqueue_pop_batch(q, out + 4, 12, 0, &n2), NAQ_OK);
    assert_int_equal(n2, 7);
    for (int i = 0; i < 10; i++) {
        int len = snprintf(buf, sizeof buf, "record-%d", i);
        assert_int_equal(out[i]->len, (size_t)len);
        assert_memory_equal(out[i]->data, buf, (size_t)len);
    }
    assert_int_equal(out[10]->len, 0);
    free_all(out, n + n2);

    naq__bqueue_stats(q, &records, &bytes);
    assert_int_equal(records, 0);
    assert_int_equal(bytes, 0);
    naq__bqueue_destroy(q);
}

static void push_beyond_record_bound_is_full(void **state)
{
    (void)state;
    naq__bqueue *q = NULL;
    assert_int_equal(naq__bqueue_create(3, 1 << 20, &q), NAQ_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(naq__bqueue_push(q, "x", 1), NAQ_OK);
    assert_int_equal(naq__bqueue_push(q, "x", 1), NAQ_ERR_FULL);

    /* A refused push leaves the queue as it was. */
    size_t records = 0;
    naq__bqueue_stats(q, &records, NULL);
    assert_int_equal(records, 3);

    /* Taking one out makes room for exactly one. */
    naq__bqueue_record *out[1];
    size_t n = 0;
    assert_int_equal(naq__bqueue_pop_batch(q, out, 1, 0, &n), NAQ_OK);
    assert_int_equal(n, 1);
    free_all(out, n);
    assert_int_equal(naq__bqueue_push(q, "y", 1), NAQ_OK);
    assert_int_equal(naq__bqueue_push(q, "z", 1), NAQ_ERR_FULL);
    naq__bqueue_destroy(q);
}

static void push_beyond_byte_bound_is_full(void **state)
{
    (void)state;
    naq__bqueue *q = NULL;
    char big[100];
    memset(big, 'b', sizeof big);
    assert_int_equal(naq__bqueue_create(1000, 250, &q), NAQ_OK);

    assert_int_equal(naq__bqueue_push(q, big, 100), NAQ_OK);
    assert_int_equal(naq__bqueue_push(q, big, 100), NAQ_OK);
    assert_int_equal(naq__bqueue_push(q, big, 51), NAQ_ERR_FULL); /* 251 > 250 */
    assert_int_equal(naq__bqueue_push(q, big, 50), NAQ_OK);       /* exactly 250 fits */
    assert_int_equal(naq__bqueue_push(q, big, 1), NAQ_ERR_FULL);

    size_t bytes = 0;
    naq__bqueue_stats(q, NULL, &bytes);
    assert_int_equal(bytes, 250);

    /* Popping returns the bytes to the budget. */
    naq__bqueue_record *out[1];
    size_t n = 0;
    assert_int_equal(naq__bqueue_pop_batch(q, out, 1, 0, &n), NAQ_OK);
    assert_int_equal(n, 1);
    free_all(out, n);
    assert_int_equal(naq__bqueue_push(q, big, 100), NAQ_OK);
    naq__bqueue_destroy(q);

    /* A record larger than the whole byte bound can never fit. */
    assert_int_equal(naq__bqueue_create(10, 99, &q), NAQ_OK);
    assert_int_equal(naq__bqueue_push(q, big, 100), NAQ_ERR_FULL);
    naq__bqueue_destroy(q);
}

static void push_after_close_is_closed(void **state)
{
    (void)state;
    naq__bqueue *q = NULL;
    assert_int_equal(naq__bqueue_create(10, 100, &q), NAQ_OK);
    naq__bqueue_close(q);
    naq__bqueue_close(q); /* idempotent */
    assert_int_equal(naq__bqueue_push(q, "a", 1), NAQ_ERR_CLOSED);
    size_t records = 1;
    naq__bqueue_stats(q, &records, NULL);
    assert_int_equal(records, 0);
    naq__bqueue_destroy(q);
}

static void pop_on_empty_queue_times_out_with_no_records(void **state)
{
    (void)state;
    naq__bqueue *q = NULL;
    assert_int_equal(naq__bqueue_create(10, 100, &q), NAQ_OK);
    naq__bqueue_record *out[4];
    size_t n = 99;

    int64_t t0 = now_ms();
    assert_int_equal(naq__bqueue_pop_batch(q, out, 4, 150, &n), NAQ_OK);
    int64_t waited = now_ms() - t0;
    assert_int_equal(n, 0);
    /* Waited about the timeout: not returned early, and not stuck. The upper
     * bound is loose on purpose (sanitizers and a busy machine are slow). */
    assert_in_range(waited, 140, 5000);

    /* A zero timeout is a poll: it returns at once. */
    n = 99;
    t0 = now_ms();
    assert_int_equal(naq__bqueue_pop_batch(q, out, 4, 0, &n), NAQ_OK);
    assert_int_equal(n, 0);
    assert_in_range(now_ms() - t0, 0, 1000);
    naq__bqueue_destroy(q);
}

static void pop_after_close_hands_out_remaining_then_closed(void **state)
{
    (void)state;
    naq__bqueue *q = NULL;
    assert_int_equal(naq__bqueue_create(10, 100, &q), NAQ_OK);
    assert_int_equal(naq__bqueue_push(q, "a", 1), NAQ_OK);
    assert_int_equal(naq__bqueue_push(q, "b", 1), NAQ_OK);
    assert_int_equal(naq__bqueue_push(q, "c", 1), NAQ_OK);
    naq__bqueue_close(q);

    naq__bqueue_record *out[2];
    size_t n = 0;
    assert_int_equal(naq__bqueue_pop_batch(q, out, 2, 1000, &n), NAQ_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(out[0]->data, "a", 1);
    assert_memory_equal(out[1]->data, "b", 1);
    free_all(out, n);
    assert_int_equal(naq__bqueue_pop_batch(q, out, 2, 1000, &n), NAQ_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(out[0]->data, "c", 1);
    free_all(out, n);

    /* Empty and closed: CLOSED at once, even with a long timeout. */
    int64_t t0 = now_ms();
    assert_int_equal(naq__bqueue_pop_batch(q, out, 2, 10000, &n), NAQ_ERR_CLOSED);
    assert_int_equal(n, 0);
    assert_in_range(now_ms() - t0, 0, 1000);
    naq__bqueue_destroy(q);
}

struct delayed {
    naq__bqueue *q;
    int delay_ms;
    int close_instead; /* 0: push one record, 1: close the queue */
    naq_status st;
};

static void *delayed_action(void *arg)
{
    struct delayed *d = arg;
    usleep((useconds_t)d->delay_ms * 1000);
    if (d->close_instead) {
        naq__bqueue_close(d->q);
        d->st = NAQ_OK;
    } else {
        d->st = naq__bqueue_push(d->q, "wake", 4);
    }
    return NULL;
}

static void blocked_pop_wakes_when_a_record_is_pushed(void **state)
{
    (void)state;
    naq__bqueue *q = NULL;
    assert_int_equal(naq__bqueue_create(10, 100, &q), NAQ_OK);
    struct delayed d = {q, 50, 0, NAQ_ERR_INVALID_ARG};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, delayed_action, &d), 0);

    naq__bqueue_record *out[4];
    size_t n = 0;
    int64_t t0 = now_ms();
    /* Would wait 30 s if the pusher did not signal the waiting consumer. */
    assert_int_equal(naq__bqueue_pop_batch(q, out, 4, 30000, &n), NAQ_OK);
    int64_t waited = now_ms() - t0;
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(d.st, NAQ_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(out[0]->data, "wake", 4);
    assert_in_range(waited, 0, 10000);
    free_all(out, n);
    naq__bqueue_destroy(q);
}

static void close_wakes_blocked_pop(void **state)
{
    (void)state;
    naq__bqueue *q = NULL;
    assert_int_equal(naq__bqueue_create(10, 100, &q), NAQ_OK);
    struct delayed d = {q, 50, 1, NAQ_ERR_INVALID_ARG};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, delayed_action, &d), 0);

    naq__bqueue_record *out[4];
    size_t n = 7;
    int64_t t0 = now_ms();
    /* A negative timeout waits without limit: only close can end it. */
    assert_int_equal(naq__bqueue_pop_batch(q, out, 4, -1, &n), NAQ_ERR_CLOSED);
    assert_int_equal(n, 0);
    assert_in_range(now_ms() - t0, 0, 10000);
    assert_int_equal(pthread_join(t, NULL), 0);
    naq__bqueue_destroy(q);
}

#define PRODUCERS 4
#define PER_PRODUCER 50000

struct producer {
    naq__bqueue *q;
    uint32_t id;
    naq_status failure; /* first unexpected status; asserted in the main thread */
};

/* Payload: producer id, sequence number, then (seq % 17) filler bytes so the
 * byte bound is exercised with varying sizes. */
static void *produce(void *arg)
{
    struct producer *p = arg;
    unsigned char buf[8 + 16];
    p->failure = NAQ_OK;
    for (uint32_t seq = 0; seq < PER_PRODUCER; seq++) {
        size_t len = 8 + seq % 17;
        memcpy(buf, &p->id, 4);
        memcpy(buf + 4, &seq, 4);
        memset(buf + 8, (int)(seq & 0xff), len - 8);
        naq_status st;
        /* FULL is expected whenever the consumer lags: retry, as the logger
         * would spool instead. Anything else is a failure. */
        while ((st = naq__bqueue_push(p->q, buf, len)) == NAQ_ERR_FULL)
            sched_yield();
        if (st != NAQ_OK) {
            p->failure = st;
            return NULL;
        }
    }
    return NULL;
}

static void many_producers_one_consumer_deliver_every_record_once(void **state)
{
    (void)state;
    naq__bqueue *q = NULL;
    /* Small bounds so producers hit FULL often and the consumer often waits. */
    assert_int_equal(naq__bqueue_create(512, 8 * 1024, &q), NAQ_OK);

    struct producer prods[PRODUCERS];
    pthread_t threads[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        prods[i] = (struct producer){q, i, NAQ_OK};
        assert_int_equal(pthread_create(&threads[i], NULL, produce, &prods[i]), 0);
    }

    /* Consume in this thread (cmocka assertions are not thread-safe). Every
     * producer's records must arrive in its own order with no gap and no
     * repeat, which proves exactly-once delivery. */
    uint32_t next_seq[PRODUCERS] = {0};
    size_t total = 0, bad_payload = 0, out_of_order = 0;
    naq__bqueue_record *out[64];
    while (total < (size_t)PRODUCERS * PER_PRODUCER) {
        size_t n = 0;
        naq_status st = naq__bqueue_pop_batch(q, out, 64, 5000, &n);
        assert_int_equal(st, NAQ_OK);
        assert_true(n > 0); /* 5 s without a record means producers are stuck */
        for (size_t i = 0; i < n; i++) {
            uint32_t id, seq;
            memcpy(&id, out[i]->data, 4);
            memcpy(&seq, out[i]->data + 4, 4);
            if (id >= PRODUCERS || out[i]->len != 8 + seq % 17) {
                bad_payload++;
            } else {
                if (seq != next_seq[id])
                    out_of_order++;
                next_seq[id] = seq + 1;
                for (size_t b = 8; b < out[i]->len; b++)
                    if (out[i]->data[b] != (unsigned char)(seq & 0xff))
                        bad_payload++;
            }
            naq__bqueue_record_free(out[i]);
        }
        total += n;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(prods[i].failure, NAQ_OK);
        assert_int_equal(next_seq[i], PER_PRODUCER);
    }
    assert_int_equal(bad_payload, 0);
    assert_int_equal(out_of_order, 0);
    assert_int_equal(total, (size_t)PRODUCERS * PER_PRODUCER);

    /* Nothing extra is left behind. */
    naq__bqueue_close(q);
    size_t n = 0;
    assert_int_equal(naq__bqueue_pop_batch(q, out, 64, 0, &n), NAQ_ERR_CLOSED);
    assert_int_equal(n, 0);
    naq__bqueue_destroy(q);
}

static void destroy_frees_records_still_inside(void **state)
{
    (void)state;
    /* Run under ASan/LeakSanitizer: a leak here fails the sanitizer build. */
    naq__bqueue *q = NULL;
    assert_int_equal(naq__bqueue_create(100, 100000, &q), NAQ_OK);
    char buf[200];
    memset(buf, 'z', sizeof buf);
    for (int i = 0; i < 50; i++)
        assert_int_equal(naq__bqueue_push(q, buf, sizeof buf), NAQ_OK);
    naq__bqueue_destroy(q);

    /* Also after close, with records left unpopped. */
    assert_int_equal(naq__bqueue_create(100, 100000, &q), NAQ_OK);
    assert_int_equal(naq__bqueue_push(q, buf, 10), NAQ_OK);
    naq__bqueue_close(q);
    naq__bqueue_destroy(q);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(create_rejects_zero_bounds),
    cmocka_unit_test(pop_returns_records_in_push_order),
    cmocka_unit_test(push_beyond_record_bound_is_full),
    cmocka_unit_test(push_beyond_byte_bound_is_full),
    cmocka_unit_test(push_after_close_is_closed),
    cmocka_unit_test(pop_on_empty_queue_times_out_with_no_records),
    cmocka_unit_test(pop_after_close_hands_out_remaining_then_closed),
    cmocka_unit_test(blocked_pop_wakes_when_a_record_is_pushed),
    cmocka_unit_test(close_wakes_blocked_pop),
    cmocka_unit_test(many_producers_one_consumer_deliver_every_record_once),
    cmocka_unit_test(destroy_frees_records_still_inside),
};

NAQ_TEST_MAIN(tests)
