/*
 * stats.c - figures over time: stats over the hourly rollups (rollup.c
 * maintains them) and a live sliding window over the last seconds of
 * events (what `naq top` shows).
 *
 * A stats query reads at most `hours` keys plus the cursor, one KV get each
 * (~0.2 ms), and sums them into one rollup: its cost depends on the number
 * of queues and workers, never on the number of events.
 *
 * The live window keeps a ring of compact records (time, type, queue,
 * duration) of the newest events, so a snapshot can be filtered by queue
 * after the fact; workers, recent failures and recent jobs are kept apart,
 * bounded. One mutex: adds come from a reader thread, snapshots from the
 * UI thread, and a snapshot of the whole ring takes well under a
 * millisecond.
 */
#include "events.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOURS 8784 /* a leap year */

/* ---- stats over rollups ---- */

void naq_stats_opts_init(naq_stats_opts *o)
{
    memset(o, 0, sizeof *o);
    o->hours = 24;
    o->top_errors = 10;
}

static void group_free(naq_stats_group *g)
{
    free(g->errors);
    g->errors = NULL;
    g->nerrors = 0;
}

void naq_stats_free(naq_stats *s)
{
    if (s == NULL)
        return;
    group_free(&s->total);
    for (size_t i = 0; i < s->nqueues; i++)
        group_free(&s->queues[i]);
    for (size_t i = 0; i < s->nworkers; i++)
        group_free(&s->workers[i]);
    free(s->queues);
    free(s->workers);
    s->queues = s->workers = NULL;
    s->nqueues = s->nworkers = 0;
}

/* Nearest-rank percentile p (0..1) of the histogram: the value of the
 * bucket holding the ceil(p * n)-th smallest duration. */
static double hist_percentile(const uint64_t *hist, uint64_t n, double p)
{
    uint64_t rank = (uint64_t)ceil(p * (double)n);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < NAQ__HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= rank)
            return naq__hist_value(i);
    }
    return naq__hist_value(NAQ__HIST_BUCKETS - 1);
}

static int error_cmp(const void *a, const void *b)
{
    const naq_stats_error *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->name, y->name);
}

static naq_status figures(const naq__rollup_group *g, double window_s, int top_errors,
                          naq_stats_group *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", g->name);
    for (int t = 0; t < NAQ_EVENT_TYPE_COUNT; t++) {
        out->counts[t] = g->types[t];
        out->events += g->types[t];
    }
    uint64_t completed = g->types[NAQ_EVENT_COMPLETED], failed = g->types[NAQ_EVENT_FAILED];
    uint64_t retried = g->types[NAQ_EVENT_RETRY_SCHEDULED];
    out->runs = completed + failed;
    out->final_failed = failed > retried ? failed - retried : 0;
    out->success_rate = completed + out->final_failed > 0
                            ? (double)completed / (double)(completed + out->final_failed)
                            : -1;
    out->throughput_per_s = window_s > 0 ? (double)completed / window_s : 0;
    out->throughput_per_min = out->throughput_per_s * 60.0;
    out->duration_n = g->dur_n;
    out->duration_avg = out->p50 = out->p95 = out->p99 = -1;
    if (g->dur_n > 0 && g->hist != NULL) {
        out->duration_avg = g->dur_sum / (double)g->dur_n;
        out->p50 = hist_percentile(g->hist, g->dur_n, 0.50);
        out->p95 = hist_percentile(g->hist, g->dur_n, 0.95);
        out->p99 = hist_percentile(g->hist, g->dur_n, 0.99);
    }
    if (g->nerrors > 0 && top_errors > 0) {
        naq_stats_error *v = calloc(g->nerrors, sizeof *v);
        if (v == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for error types");
        for (size_t i = 0; i < g->nerrors; i++) {
            snprintf(v[i].name, sizeof v[i].name, "%s", g->errors[i].name);
            v[i].count = g->errors[i].count;
        }
        qsort(v, g->nerrors, sizeof *v, error_cmp);
        out->errors = v;
        out->nerrors = g->nerrors < (size_t)top_errors ? g->nerrors : (size_t)top_errors;
    }
    return NAQ_OK;
}

static int stats_group_cmp(const void *a, const void *b)
{
    return strcmp(((const naq_stats_group *)a)->name, ((const naq_stats_group *)b)->name);
}

static naq_status table_figures(const naq__group_table *t, double window_s, int top_errors,
                                naq_stats_group **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (t->n == 0)
        return NAQ_OK;
    naq_stats_group *v = calloc(t->n, sizeof *v);
    if (v == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for stats groups");
    naq_status s = NAQ_OK;
    size_t k = 0;
    for (; k < t->n && s == NAQ_OK; k++)
        s = figures(t->v[k], window_s, top_errors, &v[k]);
    *out = v;
    *n = k;
    qsort(v, k, sizeof *v, stats_group_cmp);
    return s;
}

naq_status naq_stats_query(naq_client *c, const naq_stats_opts *o, naq_stats *out)
{
    memset(out, 0, sizeof *out);
    if (c == NULL || o == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_stats_query needs a client and options");
    if (o->hours < 1 || o->hours > MAX_HOURS)
        return naq__fail(NAQ_ERR_INVALID_ARG, "hours must be 1 to %d, not %d", MAX_HOURS, o->hours);
    double now = o->now > 0 ? o->now : naq__now();
    int64_t last_hour = (int64_t)floor(now / 3600.0);
    int64_t first_hour = last_hour - o->hours + 1;
    out->hours = o->hours;
    out->window_start = (double)first_hour * 3600.0;
    out->window_end = now;

    naq__rollup acc;
    naq__rollup_init(&acc, first_hour);
    kvStore *kv = NULL;
    naq_status s = naq__stats_kv(c, 0, &kv);
    if (s == NAQ_ERR_NOT_FOUND) { /* no maintainer ever ran: empty figures */
        s = NAQ_OK;
    } else if (s == NAQ_OK) {
        for (int64_t h = first_hour; h <= last_hour && s == NAQ_OK; h++) {
            char key[64];
            snprintf(key, sizeof key, "h.%lld", (long long)h);
            kvEntry *e = NULL;
            natsStatus ns = kvStore_Get(&e, kv, key);
            if (ns == NATS_NOT_FOUND)
                continue;
            if (ns != NATS_OK) {
                s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read %s/%s", kvStore_Bucket(kv),
                                   key);
                break;
            }
            s = naq__rollup_decode(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &acc);
            kvEntry_Destroy(e);
            out->hours_found++;
        }
        uint64_t rev = 0;
        if (s == NAQ_OK)
            s = naq__rollup_cursor_get(kv, &out->rollup_cursor, &rev);
    }
    kvStore_Destroy(kv);
    /* Throughput over the time the window covers, not the hours before
     * the first event in it. */
    out->covered_start = out->window_start;
    if (acc.first_ts > out->covered_start && acc.first_ts <= now)
        out->covered_start = acc.first_ts;
    out->window_s = now - out->covered_start;
    int top = o->top_errors > 0 ? o->top_errors : 10;
    if (s == NAQ_OK)
        s = figures(&acc.total, out->window_s, top, &out->total);
    if (s == NAQ_OK && o->by_queue)
        s = table_figures(&acc.queues, out->window_s, top, &out->queues, &out->nqueues);
    if (s == NAQ_OK && o->by_worker)
        s = table_figures(&acc.workers, out->window_s, top, &out->workers, &out->nworkers);
    naq__rollup_free(&acc);
    if (s == NAQ_OK)
        s = naq__rollup_lag_after(c, out->rollup_cursor, &out->rollup_lag);
    if (s != NAQ_OK)
        naq_stats_free(out);
    return s;
}

/* ---- the live window ---- */

#define RING_SIZE 131072 /* records; 2 MiB */
#define MAX_QUEUES 1024
#define NO_QUEUE 0xffff
#define MAX_FAILURES 50
#define MAX_JOBS 100
#define MAX_LIVE_WORKERS 1000

typedef struct {
    double ts;
    float duration_ms; /* < 0 when absent */
    uint16_t queue;    /* index into queues, NO_QUEUE when none or too many */
    uint8_t type;
} live_rec;

struct naq_live {
    pthread_mutex_t lock;
    live_rec *ring;
    uint64_t total;
    char (*queues)[NAQ_ID_SIZE];
    size_t nqueues;
    naq__worker_table workers;
    naq_live_failure failures[MAX_FAILURES]; /* ring, newest at (nfail - 1) % MAX */
    uint64_t nfail;
    naq_live_job jobs[MAX_JOBS]; /* newest first */
    size_t njobs;
};

naq_status naq_live_create(naq_live **out)
{
    *out = NULL;
    naq_live *l = calloc(1, sizeof *l);
    if (l == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a live window");
    l->ring = calloc(RING_SIZE, sizeof *l->ring);
    l->queues = calloc(MAX_QUEUES, sizeof *l->queues);
    if (l->ring == NULL || l->queues == NULL) {
        free(l->ring);
        free(l->queues);
        free(l);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a live window");
    }
    pthread_mutex_init(&l->lock, NULL);
    l->workers.max = MAX_LIVE_WORKERS;
    *out = l;
    return NAQ_OK;
}

void naq_live_destroy(naq_live *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->lock);
    naq__worker_table_free(&l->workers);
    free(l->ring);
    free(l->queues);
    free(l);
}

static uint16_t queue_index(naq_live *l, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return NO_QUEUE;
    for (size_t i = 0; i < l->nqueues; i++)
        if (strcmp(l->queues[i], name) == 0)
            return (uint16_t)i;
    if (l->nqueues == MAX_QUEUES)
        return NO_QUEUE;
    snprintf(l->queues[l->nqueues], NAQ_ID_SIZE, "%s", name);
    return (uint16_t)l->nqueues++;
}

static int is_failure(const naq_event *e)
{
    return e->type == NAQ_EVENT_FAILED || e->type == NAQ_EVENT_TIMEOUT ||
           e->type == NAQ_EVENT_DEPENDENCY_FAILED || e->type == NAQ_EVENT_WORKER_ERROR ||
           e->type == NAQ_EVENT_MAX_RETRIES_EXCEEDED;
}

/* One failure of a job's attempt is told by up to three events (timeout,
 * failed, max_retries_exceeded): the first one, which carries the real
 * error, stands for all of them, so a failure is listed once. */
static int failure_known(const naq_live *l, const naq_event *e)
{
    if (e->job_id[0] == '\0')
        return 0;
    uint64_t n = l->nfail < MAX_FAILURES ? l->nfail : MAX_FAILURES;
    for (uint64_t i = 0; i < n; i++) {
        const naq_live_failure *f = &l->failures[(l->nfail - 1 - i) % MAX_FAILURES];
        if (f->attempt == e->attempt && strcmp(f->job_id, e->job_id) == 0)
            return 1;
    }
    return 0;
}

static void note_job(naq_live *l, const naq_event *e)
{
    size_t i = 0;
    while (i < l->njobs && strcmp(l->jobs[i].job_id, e->job_id) != 0)
        i++;
    naq_live_job j;
    if (i < l->njobs) {
        j = l->jobs[i];
    } else { /* new: takes the oldest's place when full */
        if (l->njobs < MAX_JOBS)
            l->njobs++;
        i = l->njobs - 1;
        memset(&j, 0, sizeof j);
    }
    if (j.queue[0] == '\0' || e->queue_name[0] != '\0')
        snprintf(j.queue, sizeof j.queue, "%s", e->queue_name);
    snprintf(j.job_id, sizeof j.job_id, "%s", e->job_id);
    j.timestamp = e->timestamp;
    j.last_type = e->type;
    memmove(&l->jobs[1], &l->jobs[0], i * sizeof l->jobs[0]);
    l->jobs[0] = j;
}

void naq_live_add(naq_live *l, const naq_event *e)
{
    pthread_mutex_lock(&l->lock);
    live_rec *r = &l->ring[l->total % RING_SIZE];
    r->ts = e->timestamp;
    r->duration_ms = e->duration_ms >= 0 ? (float)e->duration_ms : -1.0f;
    r->type = (uint8_t)e->type;
    r->queue = queue_index(l, e->queue_name);
    l->total++;
    naq__worker_table_add(&l->workers, e);
    if (is_failure(e) && !failure_known(l, e)) {
        naq_live_failure *f = &l->failures[l->nfail++ % MAX_FAILURES];
        memset(f, 0, sizeof *f);
        f->timestamp = e->timestamp;
        f->attempt = e->attempt;
        snprintf(f->job_id, sizeof f->job_id, "%s", e->job_id);
        snprintf(f->queue, sizeof f->queue, "%s", e->queue_name);
        snprintf(f->worker_id, sizeof f->worker_id, "%s", e->worker_id);
        snprintf(f->error_type, sizeof f->error_type, "%s",
                 e->error_type ? e->error_type : naq_event_type_name(e->type));
        snprintf(f->error_message, sizeof f->error_message, "%s",
                 e->error_message ? e->error_message : "");
    }
    if (naq_event_type_category(e->type) == NAQ_CATEGORY_JOB && e->job_id[0] != '\0')
        note_job(l, e);
    pthread_mutex_unlock(&l->lock);
}

static int live_take(const naq_event *e, void *live)
{
    naq_live_add(live, e);
    return 0;
}

void naq__live_follow(naq_client *c, naq_live *live, int tail, const volatile int *stop,
                      void (*on_break)(const char *why, void *ud), void *ud)
{
    while (!*stop) {
        naq_stream_opts so;
        memset(&so, 0, sizeof so);
        so.tail = tail;
        so.follow = 1;
        so.stop = stop;
        naq_status s = naq_events_stream(c, &so, live_take, live);
        if (*stop)
            break;
        on_break(s != NAQ_OK ? naq_last_error() : "ended", ud);
        tail = 0; /* the window already holds what came before */
        naq__nap(1000, stop);
    }
}

void naq_live_query_init(naq_live_query *q)
{
    memset(q, 0, sizeof *q);
    q->rate_window_s = 10;
    q->latency_window_s = 60;
}

void naq_live_snapshot_free(naq_live_snapshot *s)
{
    if (s == NULL)
        return;
    free(s->workers);
    free(s->failures);
    free(s->jobs);
    s->workers = NULL;
    s->failures = NULL;
    s->jobs = NULL;
    s->nworkers = s->nfailures = s->njobs = 0;
}

static int double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double exact_percentile(const double *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

/* Rates and latency from the ring (caller holds the lock). */
static naq_status ring_figures(naq_live *l, const naq_live_query *q, double now, int qi,
                               naq_live_snapshot *out)
{
    double rate_w = q->rate_window_s > 0 ? q->rate_window_s : 10;
    double lat_w = q->latency_window_s > 0 ? q->latency_window_s : 60;
    uint64_t n = l->total < RING_SIZE ? l->total : RING_SIZE;
    double *durs = malloc((size_t)(n ? n : 1) * sizeof *durs);
    if (durs == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a live snapshot");
    size_t nd = 0;
    uint64_t counts[NAQ_EVENT_TYPE_COUNT] = {0}, all = 0;
    for (uint64_t i = 0; i < n; i++) {
        const live_rec *r = &l->ring[(l->total - 1 - i) % RING_SIZE];
        if (qi >= 0 && (int)r->queue != qi)
            continue;
        if (r->ts > now - rate_w && r->ts <= now + 1) {
            counts[r->type]++;
            all++;
        }
        if (r->ts > now - lat_w && r->duration_ms >= 0 &&
            (r->type == NAQ_EVENT_COMPLETED || r->type == NAQ_EVENT_FAILED))
            durs[nd++] = r->duration_ms;
    }
    out->events_per_s = (double)all / rate_w;
    for (int t = 0; t < NAQ_EVENT_TYPE_COUNT; t++)
        out->per_s[t] = (double)counts[t] / rate_w;
    out->latency_n = nd;
    out->p50 = out->p95 = out->p99 = -1;
    if (nd > 0) {
        qsort(durs, nd, sizeof *durs, double_cmp);
        out->p50 = exact_percentile(durs, nd, 0.50);
        out->p95 = exact_percentile(durs, nd, 0.95);
        out->p99 = exact_percentile(durs, nd, 0.99);
    }
    free(durs);
    return NAQ_OK;
}

naq_status naq_live_snapshot_take(naq_live *l, const naq_live_query *q, naq_live_snapshot *out)
{
    memset(out, 0, sizeof *out);
    naq_live_query defaults;
    if (q == NULL) {
        naq_live_query_init(&defaults);
        q = &defaults;
    }
    const char *queue = q->queue != NULL && q->queue[0] != '\0' ? q->queue : NULL;
    double now = q->now > 0 ? q->now : naq__now();
    pthread_mutex_lock(&l->lock);
    out->total_events = l->total;
    int qi = -1;
    if (queue != NULL) {
        qi = NO_QUEUE + 1; /* a queue never seen matches no record */
        for (size_t i = 0; i < l->nqueues; i++)
            if (strcmp(l->queues[i], queue) == 0)
                qi = (int)i;
    }
    naq_status s = ring_figures(l, q, now, qi, out);
    if (s == NAQ_OK)
        s = naq__worker_table_export(&l->workers, queue, now, NAQ_DEFAULT_HEARTBEAT_INTERVAL_MS,
                                     &out->workers, &out->nworkers);
    if (s == NAQ_OK) {
        out->failures = calloc(MAX_FAILURES, sizeof *out->failures);
        out->jobs = calloc(MAX_JOBS, sizeof *out->jobs);
        if (out->failures == NULL || out->jobs == NULL)
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a live snapshot");
    }
    if (s == NAQ_OK) {
        uint64_t nf = l->nfail < MAX_FAILURES ? l->nfail : MAX_FAILURES;
        for (uint64_t i = 0; i < nf; i++) {
            const naq_live_failure *f = &l->failures[(l->nfail - 1 - i) % MAX_FAILURES];
            if (queue == NULL || strcmp(f->queue, queue) == 0)
                out->failures[out->nfailures++] = *f;
        }
        for (size_t i = 0; i < l->njobs; i++)
            if (queue == NULL || strcmp(l->jobs[i].queue, queue) == 0)
                out->jobs[out->njobs++] = l->jobs[i];
    }
    pthread_mutex_unlock(&l->lock);
    if (s != NAQ_OK)
        naq_live_snapshot_free(out);
    return s;
}
