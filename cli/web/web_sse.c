/*
 * web_sse.c - GET /api/events/stream: the live feed as Server-Sent Events,
 * with the filters of `naq events stream` (job, type, queue, worker).
 *
 * Each event goes out as
 *     id: <stream sequence>
 *     event: naq
 *     data: <the event's JSON, with nats_sequence>
 * so a browser's EventSource that reconnects sends Last-Event-ID = the
 * last sequence it saw, and the feed resumes at the next one
 * (naq_stream_opts.from_seq): nothing is missed or repeated across a
 * reconnect, as long as the stream still holds those events.
 *
 * With ?batch=1 (what the live page asks for) the events that go out in
 * one write form one SSE message, a "data:" line each, with the id of the
 * last: a browser then dispatches one message per write instead of one per
 * event, which is what lets a page keep up with thousands a second.
 *
 * One thread per feed follows the stream into a byte buffer; the
 * connection's own thread (libmicrohttpd, thread per connection) drains it
 * in blocks of up to 64 KiB, so at thousands of events a second many
 * events share one write. The buffer is bounded (SSE_BUF_MAX): a client
 * that reads slower than events come holds the follower back (it waits,
 * the stream keeps the events) instead of growing memory. A comment line
 * every SSE_PING_S keeps proxies and the connection timeout from closing
 * a quiet feed, and lets a gone client be noticed.
 */
#include "web_int.h"

#include "core/jsonw.h" /* naq__json_dumps: shortest reals */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SSE_BUF_MAX (1024 * 1024)
#define SSE_BLOCK (64 * 1024)
#define SSE_PING_S 10
#define SSE_TAIL_MAX 1000

typedef struct {
    naq_web *w;
    naq_stream_opts so;
    char job[NAQ_ID_SIZE], type[NAQ_NAME_MAX], queue[NAQ_ID_SIZE], worker[NAQ_ID_SIZE];
    pthread_t thread;
    int have_thread;
    volatile int stop; /* the client went away (or the server stops) */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* data came / data was drained / the feed ended */
    char *buf;           /* heap: bytes not yet sent are buf[off..len) */
    size_t len, off, cap;
    int ended;     /* the follower returned */
    char err[300]; /* why, when it failed */
    int err_sent;
    int hello_sent;
    int batch; /* ?batch=1: one SSE message per block, a data line per event */
} sse_feed;

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int feed_stopped(const sse_feed *f)
{
    return f->stop || f->w->stopping;
}

/* Appends text to the buffer, waiting while it is full. 0, or -1 when the
 * feed stops (or memory runs out). Called with f->lock held. */
static int append_locked(sse_feed *f, const char *text, size_t n)
{
    while (f->len - f->off + n > SSE_BUF_MAX && f->len > f->off && !feed_stopped(f)) {
        struct timespec ts;
        deadline_in(&ts, 200);
        pthread_cond_timedwait(&f->cond, &f->lock, &ts);
    }
    if (feed_stopped(f))
        return -1;
    if (f->off > 0 && f->off == f->len)
        f->off = f->len = 0;
    if (f->len + n > f->cap) {
        if (f->off > 0) { /* reuse the drained front first */
            memmove(f->buf, f->buf + f->off, f->len - f->off);
            f->len -= f->off;
            f->off = 0;
        }
        size_t cap = f->cap ? f->cap : 16384;
        while (cap < f->len + n)
            cap *= 2;
        if (cap != f->cap) {
            char *grown = realloc(f->buf, cap);
            if (grown == NULL)
                return -1;
            f->buf = grown;
            f->cap = cap;
        }
    }
    memcpy(f->buf + f->len, text, n);
    f->len += n;
    pthread_cond_broadcast(&f->cond);
    return 0;
}

static int on_event(const naq_event *e, void *user)
{
    sse_feed *f = user;
    json_t *o = web_event_json(e);
    char *data = o ? naq__json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    if (data == NULL)
        return 0; /* an event that cannot be encoded is skipped, like an undecodable one */
    char head[64];
    int hn = f->batch
                 ? snprintf(head, sizeof head, "data: ")
                 : snprintf(head, sizeof head,
                            "id: %llu\nevent: naq\ndata: ", (unsigned long long)e->nats_sequence);
    pthread_mutex_lock(&f->lock);
    int rc = append_locked(f, head, (size_t)hn);
    if (rc == 0)
        rc = append_locked(f, data, strlen(data));
    if (rc == 0) /* batch: copy_batch ends the message */
        rc = f->batch ? append_locked(f, "\n", 1) : append_locked(f, "\n\n", 2);
    pthread_mutex_unlock(&f->lock);
    free(data);
    return rc != 0;
}

static void *follow_main(void *arg)
{
    sse_feed *f = arg;
    naq_status s = naq_events_stream(f->w->c, &f->so, on_event, f);
    pthread_mutex_lock(&f->lock);
    if (s != NAQ_OK)
        snprintf(f->err, sizeof f->err, "%s", naq_last_error());
    f->ended = 1;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

static ssize_t copy_text(char *out, size_t max, const char *text)
{
    size_t n = strlen(text);
    if (n > max)
        n = max;
    memcpy(out, text, n);
    return (ssize_t)n;
}

#define BATCH_TRAILER_MAX 64

/* Batch mode: copies whole "data: <event>" lines, as many as fit, and
 * ends the SSE message after them with the id of its last event (its
 * nats_sequence, the last member of each event's JSON), so Last-Event-ID
 * resumes after the batch. A line longer than a block goes out in pieces;
 * its message ends with the piece that ends it. Called with f->lock held. */
static size_t copy_batch(sse_feed *f, char *out, size_t max)
{
    size_t room = max > BATCH_TRAILER_MAX * 2 ? max - BATCH_TRAILER_MAX : max / 2;
    size_t k = f->len - f->off;
    if (k > room) {
        size_t cut = room;
        while (cut > 0 && f->buf[f->off + cut - 1] != '\n')
            cut--;
        k = cut > 0 ? cut : room; /* 0: one line longer than a block, in pieces */
    }
    memcpy(out, f->buf + f->off, k);
    f->off += k;
    if (out[k - 1] != '\n')
        return k;
    /* The last line ends ...,"nats_sequence":123}\n (jansson keeps the
     * order members were added in; web_event_json adds it last). */
    size_t p = k >= 2 ? k - 2 : 0;
    while (p > 0 && out[p - 1] >= '0' && out[p - 1] <= '9')
        p--;
    int tn = snprintf(out + k, max - k, "id: %llu\nevent: naq\n\n", strtoull(out + p, NULL, 10));
    return k + (size_t)(tn > 0 ? tn : 0);
}

static ssize_t on_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    sse_feed *f = cls;
    if (!f->hello_sent) {
        /* The reconnect delay, and a first byte so the browser knows the
         * feed is open. */
        f->hello_sent = 1;
        return copy_text(out, max, "retry: 1000\n: naq live events\n\n");
    }
    pthread_mutex_lock(&f->lock);
    int waited_ms = 0;
    while (f->len == f->off && !f->ended && !feed_stopped(f) && waited_ms < SSE_PING_S * 1000) {
        struct timespec ts;
        deadline_in(&ts, 500);
        if (pthread_cond_timedwait(&f->cond, &f->lock, &ts) == ETIMEDOUT)
            waited_ms += 500;
    }
    ssize_t n;
    if (f->len > f->off && f->batch) {
        n = (ssize_t)copy_batch(f, out, max);
        pthread_cond_broadcast(&f->cond);
    } else if (f->len > f->off) {
        size_t k = f->len - f->off;
        if (k > max)
            k = max;
        memcpy(out, f->buf + f->off, k);
        f->off += k;
        pthread_cond_broadcast(&f->cond);
        n = (ssize_t)k;
    } else if (f->ended && f->err[0] && !f->err_sent) {
        f->err_sent = 1;
        json_t *o = json_pack("{s:s}", "error", f->err);
        char *data = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        char text[512];
        snprintf(text, sizeof text, "event: error\ndata: %s\n\n", data ? data : "{}");
        free(data);
        n = copy_text(out, max, text);
    } else if (f->ended || feed_stopped(f)) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        n = copy_text(out, max, ": ping\n\n");
    }
    pthread_mutex_unlock(&f->lock);
    return n;
}

static void on_free(void *cls)
{
    sse_feed *f = cls;
    f->stop = 1;
    if (f->have_thread)
        pthread_join(f->thread, NULL);
    pthread_mutex_lock(&f->w->lock);
    f->w->sse_open--;
    pthread_mutex_unlock(&f->w->lock);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f->buf);
    free(f);
}

/* Copies a filter argument into dst; 0 with a 400 when it is too long. */
static int copy_arg(const web_req *q, web_reply *r, const char *name, char *dst, size_t cap,
                    const char **field)
{
    const char *v = web_arg(q, name);
    *field = NULL;
    if (v == NULL)
        return 1;
    if (strlen(v) >= cap) {
        web_error(r, 400, "invalid_argument", "%s is too long", name);
        return 0;
    }
    memcpy(dst, v, strlen(v) + 1);
    *field = dst;
    return 1;
}

/* A whole number argument or header in [0, max], 0 when absent; -1 when
 * malformed. */
static long long parse_count(const char *v, long long max)
{
    long long n = 0;
    if (v != NULL && v[0] != '\0' && !web_parse_int(v, 0, max, &n))
        return -1;
    return n;
}

int web_sse_start(const web_req *q, web_reply *r)
{
    sse_feed *f = calloc(1, sizeof *f);
    if (f == NULL) {
        web_error(r, 503, "unavailable", "out of memory for a live feed");
        return -1;
    }
    f->w = q->w;
    const char *last_id = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (last_id == NULL)
        last_id = web_arg(q, "last_event_id");
    long long last = parse_count(last_id, 1LL << 62);
    long long tail = parse_count(web_arg(q, "tail"), SSE_TAIL_MAX);
    int ok = copy_arg(q, r, "job", f->job, sizeof f->job, &f->so.filter.job_id) &&
             copy_arg(q, r, "type", f->type, sizeof f->type, &f->so.filter.type) &&
             copy_arg(q, r, "queue", f->queue, sizeof f->queue, &f->so.filter.queue) &&
             copy_arg(q, r, "worker", f->worker, sizeof f->worker, &f->so.filter.worker);
    if (ok && (last < 0 || tail < 0)) {
        web_error(r, 400, "invalid_argument",
                  last < 0 ? "Last-Event-ID must be an event sequence number"
                           : "tail must be a whole number from 0 to 1000");
        ok = 0;
    }
    naq_query qv;
    naq_query_init(&qv);
    qv.filter = f->so.filter;
    naq_status s = ok ? naq_query_validate(&qv) : NAQ_OK;
    if (s != NAQ_OK) {
        web_fail(r, s);
        ok = 0;
    }
    if (!ok) {
        free(f);
        return -1;
    }
    const char *batch = web_arg(q, "batch");
    f->batch = batch != NULL && strcmp(batch, "0") != 0;
    f->so.follow = 1;
    f->so.tail = (int)tail;
    f->so.from_seq = last > 0 ? (uint64_t)last + 1 : 0;
    f->so.stop = &f->stop;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    pthread_mutex_lock(&q->w->lock);
    q->w->sse_open++;
    pthread_mutex_unlock(&q->w->lock);
    f->have_thread = pthread_create(&f->thread, NULL, follow_main, f) == 0;
    if (!f->have_thread) {
        f->ended = 1;
        snprintf(f->err, sizeof f->err, "cannot start the live feed's thread");
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, on_read, f, on_free);
    if (resp == NULL) {
        on_free(f);
        return 0;
    }
    web_add_headers(resp, "text/event-stream; charset=utf-8", 0);
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result rc = MHD_queue_response(q->conn, 200, resp);
    MHD_destroy_response(resp); /* on_free runs when the connection is done with it */
    return rc == MHD_YES;
}
