/*
 * metrics.c - Prometheus metrics in the text exposition format (0.0.4):
 * the exporter behind `naq metrics` and the figures of one process.
 *
 * The exporter keeps job counters by queue, counted from the event stream
 * by a reader thread that starts at the stream's first event: counters are
 * "events of this type stored for this queue", so they do not restart at 0
 * when the exporter does (as long as the stream keeps the events), and two
 * exporters agree. Durations come from completed/failed events; queue
 * wait = started - enqueued timestamp of a job's first attempt, matched
 * through a fixed table of the jobs enqueued and not yet started (a
 * collision forgets one sample, never counts a wrong one). Everything the
 * server holds now (depths, lag, DLQ, workers, streams, rollups) is read
 * at scrape time with naq_ops_read: a few requests, never a scan.
 */
#include "internal.h"
#include "naq/metrics.h"
#include "naq/ops.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the text writer ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->buf != NULL && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t ncap = t->cap ? t->cap * 2 : 8192;
        while (ncap < t->len + (size_t)n + 1)
            ncap *= 2;
        char *b = realloc(t->buf, ncap);
        if (b == NULL) {
            t->failed = 1;
            return;
        }
        t->buf = b;
        t->cap = ncap;
    }
}

/* A label value with \, " and newline escaped (into a static-size buffer:
 * names are ids, at most a few hundred bytes). */
static const char *esc(const char *v, char *buf, size_t cap)
{
    size_t k = 0;
    for (; *v != '\0' && k + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            buf[k++] = '\\';
            buf[k++] = *v;
        } else if (*v == '\n') {
            buf[k++] = '\\';
            buf[k++] = 'n';
        } else {
            buf[k++] = *v;
        }
    }
    buf[k] = '\0';
    return buf;
}

static void family(text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static naq_status finish(text *t, char **out, size_t *len)
{
    if (t->failed || t->buf == NULL) {
        free(t->buf);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory rendering metrics");
    }
    *out = t->buf;
    *len = t->len;
    return NAQ_OK;
}

/* ---- histograms ---- */

/* Seconds: from 5 ms (a no-op job) to 10 minutes (a report). */
static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                2.5,   5,    10,    30,   60,  120,  300, 600};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

typedef struct {
    uint64_t counts[NBOUNDS + 1]; /* per bucket, not cumulative; last = above all */
    uint64_t n;
    double sum;
} histogram;

static void observe(histogram *h, double v)
{
    size_t i = 0;
    while (i < NBOUNDS && v > bounds[i])
        i++;
    h->counts[i]++;
    h->n++;
    h->sum += v;
}

static void put_histogram(text *t, const char *name, const char *queue, const histogram *h)
{
    char q[2 * NAQ_ID_SIZE];
    esc(queue, q, sizeof q);
    uint64_t cum = 0;
    for (size_t i = 0; i < NBOUNDS; i++) {
        cum += h->counts[i];
        put(t, "%s_bucket{queue=\"%s\",le=\"%g\"} %llu\n", name, q, bounds[i],
            (unsigned long long)cum);
    }
    put(t, "%s_bucket{queue=\"%s\",le=\"+Inf\"} %llu\n", name, q, (unsigned long long)h->n);
    put(t, "%s_sum{queue=\"%s\"} %.6f\n%s_count{queue=\"%s\"} %llu\n", name, q, h->sum, name, q,
        (unsigned long long)h->n);
}

/* ---- the exporter ---- */

/* The job counters, in the order of their metric names. */
enum {
    C_ENQUEUED,
    C_STARTED,
    C_COMPLETED,
    C_FAILED,
    C_RETRIED,
    C_DEAD,
    C_CANCELLED,
    C_EXPIRED,
    NC
};
static const struct {
    const char *name, *help;
    naq_event_type type;
} counters[NC] = {
    {"naq_jobs_enqueued_total", "Jobs enqueued (enqueued events), by queue.", NAQ_EVENT_ENQUEUED},
    {"naq_jobs_started_total", "Job runs started (started events), by queue.", NAQ_EVENT_STARTED},
    {"naq_jobs_completed_total", "Job runs completed, by queue.", NAQ_EVENT_COMPLETED},
    {"naq_jobs_failed_total", "Job runs failed (retried or not), by queue.", NAQ_EVENT_FAILED},
    {"naq_jobs_retried_total", "Retries scheduled, by queue.", NAQ_EVENT_RETRY_SCHEDULED},
    {"naq_jobs_dead_lettered_total", "Jobs sent to the dead-letter queue, by queue.",
     NAQ_EVENT_MAX_RETRIES_EXCEEDED},
    {"naq_jobs_cancelled_total", "Jobs cancelled, by queue.", NAQ_EVENT_CANCELLED},
    {"naq_jobs_expired_total", "Jobs not run because their TTL passed, by queue.",
     NAQ_EVENT_TTL_EXPIRED},
};

#define MAX_QUEUES 1000
#define WAIT_SLOTS 65536 /* jobs enqueued and not yet started whose wait is measured */

typedef struct {
    char name[NAQ_ID_SIZE];
    uint64_t c[NC];
    histogram duration, wait;
} queue_figures;

typedef struct {
    char job_id[NAQ_ID_SIZE];
    double enqueued_at;
} wait_slot;

struct naq_metrics_exporter {
    naq_client *c;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    queue_figures *queues;
    size_t nqueues;
    uint64_t events_read, last_seq, read_errors;
    wait_slot *waits;
};

static queue_figures *queue_of(naq_metrics_exporter *e, const char *name)
{
    for (size_t i = 0; i < e->nqueues; i++)
        if (strcmp(e->queues[i].name, name) == 0)
            return &e->queues[i];
    if (e->nqueues == MAX_QUEUES)
        return NULL;
    queue_figures *q = &e->queues[e->nqueues++];
    memset(q, 0, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
    return q;
}

static wait_slot *wait_slot_of(naq_metrics_exporter *e, const char *job_id)
{
    return &e->waits[naq__fnv1a(job_id, strlen(job_id), NAQ__FNV_OFFSET) % WAIT_SLOTS];
}

/* Folds one event (caller holds the lock). */
static void count_event(naq_metrics_exporter *e, const naq_event *ev)
{
    if (ev->queue_name[0] == '\0' || naq_event_type_category(ev->type) != NAQ_CATEGORY_JOB)
        return;
    queue_figures *q = queue_of(e, ev->queue_name);
    if (q == NULL)
        return;
    for (int i = 0; i < NC; i++)
        if (counters[i].type == ev->type)
            q->c[i]++;
    if ((ev->type == NAQ_EVENT_COMPLETED || ev->type == NAQ_EVENT_FAILED) && ev->duration_ms >= 0)
        observe(&q->duration, ev->duration_ms / 1000.0);
    if (ev->type == NAQ_EVENT_ENQUEUED && ev->job_id[0] != '\0') {
        wait_slot *w = wait_slot_of(e, ev->job_id);
        snprintf(w->job_id, sizeof w->job_id, "%s", ev->job_id);
        w->enqueued_at = ev->timestamp;
    } else if (ev->type == NAQ_EVENT_STARTED && ev->job_id[0] != '\0') {
        wait_slot *w = wait_slot_of(e, ev->job_id);
        if (strcmp(w->job_id, ev->job_id) == 0) {
            double wait = ev->timestamp - w->enqueued_at;
            observe(&q->wait, wait > 0 ? wait : 0);
            w->job_id[0] = '\0'; /* a retry's wait is its backoff, not the queue's */
        }
    }
}

static void *read_events(void *arg)
{
    naq_metrics_exporter *e = arg;
    naq__reader *r = NULL;
    while (!atomic_load(&e->stop)) {
        if (r == NULL && naq__reader_open(e->c, NULL, e->last_seq + 1, 0, &r) != NAQ_OK) {
            pthread_mutex_lock(&e->lock);
            e->read_errors++;
            pthread_mutex_unlock(&e->lock);
            naq__sleep_ms(1000);
            continue;
        }
        natsMsg *m = NULL;
        uint64_t seq = 0, pending = 0;
        int64_t stored = 0;
        naq_status s = naq__reader_next(r, 250, &m, &seq, &stored, &pending);
        if (s == NAQ_ERR_TIMEOUT)
            continue;
        if (s != NAQ_OK) { /* start again after the last event counted */
            naq__reader_close(r);
            r = NULL;
            pthread_mutex_lock(&e->lock);
            e->read_errors++;
            pthread_mutex_unlock(&e->lock);
            naq__sleep_ms(1000);
            continue;
        }
        naq_event ev;
        const char *data = natsMsg_GetData(m);
        int ok =
            naq_event_decode(data ? data : "", (size_t)natsMsg_GetDataLength(m), &ev) == NAQ_OK;
        pthread_mutex_lock(&e->lock);
        if (ok)
            count_event(e, &ev);
        e->events_read++;
        e->last_seq = seq;
        pthread_mutex_unlock(&e->lock);
        naq_event_clear(&ev);
        natsMsg_Destroy(m);
    }
    naq__reader_close(r);
    return NULL;
}

naq_status naq_metrics_exporter_create(naq_client *c, naq_metrics_exporter **out)
{
    *out = NULL;
    if (c == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_metrics_exporter_create needs a client");
    naq_metrics_exporter *e = calloc(1, sizeof *e);
    if (e != NULL) {
        e->queues = calloc(MAX_QUEUES, sizeof *e->queues);
        e->waits = calloc(WAIT_SLOTS, sizeof *e->waits);
    }
    if (e == NULL || e->queues == NULL || e->waits == NULL) {
        if (e != NULL) {
            free(e->queues);
            free(e->waits);
        }
        free(e);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for the metrics exporter");
    }
    e->c = c;
    pthread_mutex_init(&e->lock, NULL);
    if (pthread_create(&e->thread, NULL, read_events, e) != 0) {
        pthread_mutex_destroy(&e->lock);
        free(e->queues);
        free(e->waits);
        free(e);
        return naq__fail(NAQ_ERR_IO, "cannot start the metrics exporter's reader thread");
    }
    *out = e;
    return NAQ_OK;
}

void naq_metrics_exporter_destroy(naq_metrics_exporter *e)
{
    if (e == NULL)
        return;
    atomic_store(&e->stop, 1);
    pthread_join(e->thread, NULL);
    pthread_mutex_destroy(&e->lock);
    free(e->queues);
    free(e->waits);
    free(e);
}

naq_status naq_metrics_exporter_wait(naq_metrics_exporter *e, int64_t timeout_ms)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, e->c->ejs, e->c->cfg.event_stream, NULL, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot read the state of event "
                              "stream %s",
                              e->c->cfg.event_stream);
    uint64_t target = si->State.Msgs > 0 ? si->State.LastSeq : 0;
    jsStreamInfo_Destroy(si);
    int64_t deadline = naq__mono_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        uint64_t at = e->last_seq;
        pthread_mutex_unlock(&e->lock);
        if (at >= target)
            return NAQ_OK;
        if (naq__mono_ms() >= deadline)
            return naq__fail(NAQ_ERR_TIMEOUT,
                             "the metrics exporter read events up to %llu of "
                             "%llu within %lld ms",
                             (unsigned long long)at, (unsigned long long)target,
                             (long long)timeout_ms);
        naq__sleep_ms(20);
    }
}

static void put_job_counters(text *t, naq_metrics_exporter *e)
{
    char q[2 * NAQ_ID_SIZE];
    for (int i = 0; i < NC; i++) {
        family(t, counters[i].name, "counter", counters[i].help);
        for (size_t k = 0; k < e->nqueues; k++)
            put(t, "%s{queue=\"%s\"} %llu\n", counters[i].name, esc(e->queues[k].name, q, sizeof q),
                (unsigned long long)e->queues[k].c[i]);
    }
    family(t, "naq_job_duration_seconds", "histogram",
           "Run time of completed and failed job runs, by queue.");
    for (size_t k = 0; k < e->nqueues; k++)
        put_histogram(t, "naq_job_duration_seconds", e->queues[k].name, &e->queues[k].duration);
    family(t, "naq_job_queue_wait_seconds", "histogram",
           "Time from enqueue to the first start of a job, by queue.");
    for (size_t k = 0; k < e->nqueues; k++)
        put_histogram(t, "naq_job_queue_wait_seconds", e->queues[k].name, &e->queues[k].wait);
    family(t, "naq_exporter_events_read_total", "counter",
           "Events this exporter has read from the event stream.");
    put(t, "naq_exporter_events_read_total %llu\n", (unsigned long long)e->events_read);
    family(t, "naq_exporter_read_errors_total", "counter",
           "Times the exporter's event reader failed and started again.");
    put(t, "naq_exporter_read_errors_total %llu\n", (unsigned long long)e->read_errors);
}

static void put_consumers(text *t, const naq_ops *o)
{
    char a[2 * NAQ_ID_SIZE + 32];
    family(t, "naq_jobs_pending", "gauge", "Jobs waiting in a queue, by queue and priority.");
    for (size_t i = 0; i < o->nconsumers; i++)
        if (o->consumers[i].kind == NAQ_OPS_CONSUMER_QUEUE)
            put(t, "naq_jobs_pending{queue=\"%s\",priority=\"%d\"} %llu\n",
                esc(o->consumers[i].queue, a, sizeof a), o->consumers[i].priority,
                (unsigned long long)o->consumers[i].pending);
    family(t, "naq_jobs_in_flight", "gauge",
           "Jobs delivered to a worker and not yet settled, by queue and priority.");
    for (size_t i = 0; i < o->nconsumers; i++)
        if (o->consumers[i].kind == NAQ_OPS_CONSUMER_QUEUE)
            put(t, "naq_jobs_in_flight{queue=\"%s\",priority=\"%d\"} %lld\n",
                esc(o->consumers[i].queue, a, sizeof a), o->consumers[i].priority,
                (long long)o->consumers[i].ack_pending);
    family(t, "naq_consumer_group_lag", "gauge",
           "Events a consumer group has not finished (pending + unacknowledged).");
    for (size_t i = 0; i < o->nconsumers; i++)
        if (o->consumers[i].kind == NAQ_OPS_CONSUMER_GROUP)
            put(t, "naq_consumer_group_lag{group=\"%s\"} %llu\n",
                esc(o->consumers[i].name, a, sizeof a), (unsigned long long)o->consumers[i].lag);
    family(t, "naq_consumer_group_ack_pending", "gauge",
           "Events delivered to a consumer group and not yet acknowledged.");
    for (size_t i = 0; i < o->nconsumers; i++)
        if (o->consumers[i].kind == NAQ_OPS_CONSUMER_GROUP)
            put(t, "naq_consumer_group_ack_pending{group=\"%s\"} %lld\n",
                esc(o->consumers[i].name, a, sizeof a), (long long)o->consumers[i].ack_pending);
}

static const char *const stream_roles[NAQ_OPS_STREAMS] = {"events", "jobs", "dlq", "event_dlq"};

static void put_streams(text *t, const naq_ops *o)
{
    char a[2 * NAQ_ID_SIZE];
    family(t, "naq_dlq_jobs", "gauge", "Dead jobs in the dead-letter queue, by queue.");
    for (size_t i = 0; i < o->ndlq; i++)
        put(t, "naq_dlq_jobs{queue=\"%s\"} %llu\n", esc(o->dlq[i].name, a, sizeof a),
            (unsigned long long)o->dlq[i].count);
    family(t, "naq_event_dlq_events", "gauge",
           "Dead events in the event dead-letter stream, by group.");
    for (size_t i = 0; i < o->nevent_dlq; i++)
        put(t, "naq_event_dlq_events{group=\"%s\"} %llu\n", esc(o->event_dlq[i].name, a, sizeof a),
            (unsigned long long)o->event_dlq[i].count);
    const struct {
        const char *name, *help;
    } f[] = {
        {"naq_stream_messages", "Messages in a naq stream."},
        {"naq_stream_bytes", "Bytes in a naq stream."},
        {"naq_stream_max_messages", "Message limit of a naq stream (absent when unlimited)."},
        {"naq_stream_max_bytes", "Byte limit of a naq stream (absent when unlimited)."},
        {"naq_stream_limit_use_ratio",
         "The larger of messages/limit and bytes/limit, 0..1 (absent when unlimited)."},
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        family(t, f[k].name, "gauge", f[k].help);
        for (int i = 0; i < NAQ_OPS_STREAMS; i++) {
            const naq_ops_stream *s = &o->streams[i];
            if (!s->present)
                continue;
            double v = k == 0   ? (double)s->msgs
                       : k == 1 ? (double)s->bytes
                       : k == 2 ? (double)s->max_msgs
                       : k == 3 ? (double)s->max_bytes
                                : s->use;
            if (v < 0)
                continue;
            put(t, "%s{stream=\"%s\",role=\"%s\"} %.17g\n", f[k].name, esc(s->name, a, sizeof a),
                stream_roles[i], v);
        }
    }
}

static void put_ops(text *t, const naq_ops *o)
{
    put_consumers(t, o);
    put_streams(t, o);
    family(t, "naq_workers", "gauge", "Live workers in the registry, by state.");
    for (int i = 0; i < NAQ_WORKER_STATUS_COUNT; i++)
        put(t, "naq_workers{state=\"%s\"} %zu\n", naq_worker_status_name((naq_worker_status)i),
            o->workers_by_status[i]);
    family(t, "naq_rollup_lag_events", "gauge",
           "Events stored but not yet folded into the stats rollups.");
    put(t, "naq_rollup_lag_events %llu\n", (unsigned long long)o->rollup_lag);
    family(t, "naq_logger_spool_pending_events", "gauge",
           "Events waiting in the logger spool files of the exporter's machine.");
    put(t, "naq_logger_spool_pending_events %llu\n", (unsigned long long)o->spool_pending);
}

naq_status naq_metrics_exporter_render(void *exporter, char **out, size_t *len)
{
    naq_metrics_exporter *e = exporter;
    text t = {0};
    naq_ops o;
    naq_status s = naq_ops_read(e->c, &o);
    if (s != NAQ_OK)
        return s;
    pthread_mutex_lock(&e->lock);
    put_job_counters(&t, e);
    pthread_mutex_unlock(&e->lock);
    put_ops(&t, &o);
    naq_ops_free(&o);
    return finish(&t, out, len);
}

/* ---- one process ---- */

/* One family with one sample: a figure of this process. */
typedef struct {
    const char *name, *help;
    uint64_t v;
} figure;

#define NFIGURES(f) (sizeof(f) / sizeof(f)[0])

/* Puts each of f[0..n) as a family of `type`, its sample labelled
 * label="value" when label is not NULL (value escaped already). */
static void put_figures(text *t, const char *type, const figure *f, size_t n, const char *label,
                        const char *value)
{
    for (size_t i = 0; i < n; i++) {
        family(t, f[i].name, type, f[i].help);
        if (label != NULL)
            put(t, "%s{%s=\"%s\"} %llu\n", f[i].name, label, value, (unsigned long long)f[i].v);
        else
            put(t, "%s %llu\n", f[i].name, (unsigned long long)f[i].v);
    }
}

static void put_logger(text *t, naq_client *c)
{
    naq_logger_stats l;
    naq_client_logger_stats(c, &l);
    const figure totals[] = {
        {"naq_logger_logged_total", "Events handed to this process's event logger.", l.logged},
        {"naq_logger_published_total", "Events the server acknowledged.", l.published},
        {"naq_logger_retried_total", "Publish attempts repeated after an error.", l.retried},
        {"naq_logger_spooled_total", "Events written to the disk spool.", l.spooled},
        {"naq_logger_dropped_total", "Events lost: buffer and spool full.", l.dropped},
    };
    const figure gauges[] = {
        {"naq_logger_buffered_events", "Events in memory, not yet acknowledged.", l.buffered},
        {"naq_logger_spool_pending_events", "Events on disk, not yet re-sent.", l.spool_pending},
    };
    put_figures(t, "counter", totals, NFIGURES(totals), NULL, NULL);
    put_figures(t, "gauge", gauges, NFIGURES(gauges), NULL, NULL);
}

static void put_worker(text *t, naq_worker *w)
{
    naq_worker_stats st;
    naq_worker_get_stats(w, &st);
    char id[2 * NAQ_ID_SIZE];
    esc(naq_worker_id(w), id, sizeof id);
    const figure f[] = {
        {"naq_worker_jobs_processed_total", "Deliveries this worker settled.", st.processed},
        {"naq_worker_jobs_completed_total", "Job runs completed here.", st.completed},
        {"naq_worker_jobs_failed_total", "Job runs failed here (retried or not).", st.failed},
        {"naq_worker_jobs_retried_total", "Failed runs scheduled for another attempt.", st.retried},
        {"naq_worker_jobs_dead_lettered_total", "Failed runs sent to the DLQ.", st.dead_lettered},
        {"naq_worker_jobs_cancelled_total", "Jobs cancelled here.", st.cancelled},
        {"naq_worker_jobs_expired_total", "Jobs not run here because their TTL passed.",
         st.expired},
        {"naq_worker_jobs_handed_back_total", "Jobs cut short by a stop and given back.",
         st.handed_back},
    };
    put_figures(t, "counter", f, NFIGURES(f), "worker_id", id);
    /* ints, printed as such */
    family(t, "naq_worker_jobs_active", "gauge", "Jobs taken and not yet settled, now.");
    put(t, "naq_worker_jobs_active{worker_id=\"%s\"} %d\n", id, st.active);
    family(t, "naq_worker_concurrency", "gauge",
           "Jobs this worker runs at once, now (--autoscale moves it).");
    put(t, "naq_worker_concurrency{worker_id=\"%s\"} %d\n", id, st.concurrency);
}

static void put_scheduler(text *t, naq_scheduler *s)
{
    naq_scheduler_stats st;
    naq_scheduler_get_stats(s, &st);
    family(t, "naq_scheduler_leader", "gauge", "1 while this scheduler holds the leader lease.");
    put(t, "naq_scheduler_leader %d\n", st.leader ? 1 : 0);
    const figure totals[] = {
        {"naq_scheduler_ticks_total", "Leader ticks run.", st.ticks},
        {"naq_scheduler_elections_total", "Times this scheduler became leader.", st.elections},
        {"naq_scheduler_triggers_total", "Schedule triggers.", st.triggers},
        {"naq_scheduler_trigger_errors_total", "Triggers that failed (retried).",
         st.trigger_errors},
        {"naq_scheduler_released_total", "Delayed jobs moved to their queue.", st.released},
    };
    const figure gauges[] = {
        {"naq_scheduler_schedules", "Schedules the leader keeps in memory.", st.schedules},
        {"naq_scheduler_delayed_pending", "Delayed jobs the leader knows of.", st.delayed_pending},
    };
    put_figures(t, "counter", totals, NFIGURES(totals), NULL, NULL);
    put_figures(t, "gauge", gauges, NFIGURES(gauges), NULL, NULL);
}

static void put_processor(text *t, naq_processor *p)
{
    naq_processor_stats st;
    naq_processor_get_stats(p, &st);
    char id[2 * NAQ_ID_SIZE];
    esc(naq_processor_member_id(p), id, sizeof id);
    const figure totals[] = {
        {"naq_processor_events_handled_total", "Events whose handlers succeeded.", st.handled},
        {"naq_processor_events_failed_total", "Handler failures (timeouts included).", st.failed},
        {"naq_processor_events_retried_total", "Failed events delivered again later.", st.retried},
        {"naq_processor_events_dead_lettered_total", "Events sent to the event DLQ.",
         st.dead_lettered},
    };
    const figure gauges[] = {
        {"naq_processor_events_pending", "Events taken and not yet settled, now.", st.pending},
        {"naq_processor_concurrency",
         "Handlers this member runs at once, now (--autoscale moves it).", st.concurrency},
    };
    put_figures(t, "counter", totals, NFIGURES(totals), "member_id", id);
    put_figures(t, "gauge", gauges, NFIGURES(gauges), "member_id", id);
}

naq_status naq_metrics_render_process(void *process, char **out, size_t *len)
{
    naq_metrics_process *p = process;
    text t = {0};
    if (p->worker != NULL)
        put_worker(&t, p->worker);
    if (p->scheduler != NULL)
        put_scheduler(&t, p->scheduler);
    if (p->processor != NULL)
        put_processor(&t, p->processor);
    if (p->client != NULL)
        put_logger(&t, p->client);
    return finish(&t, out, len);
}
