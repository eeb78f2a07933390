/*
 * bench_store.c - how fast the event store answers "history of a job" and
 * "state of a job" on a big event stream.
 *
 * Usage: bench_store [M events, default 1000000] [K reads, default 1000]
 * against the NATS server in NAQ_URL (default nats://127.0.0.1:4222). It
 * publishes M events for M/5 jobs (5 each, with 1000 jobs in flight at a
 * time so a job's events are spread through the stream like a busy queue's)
 * into its own streams (prefix "naqbs", streams NAQ_BENCH_STORE_*), which it
 * deletes at the start and the end, then reads K random jobs twice: the
 * first pass right after the burst (the *_burst_* figures), the second on
 * the settled server (the headline figures). Prints name=value lines; times
 * are milliseconds.
 *
 * Sizing (docs/deployment.md): with NAQ_BENCH_SERVER_PIDS=PID[,PID...] (the
 * nats-server processes, e.g. the three nodes of `naq server --cluster 3`)
 * it prints each one's resident memory before the burst, after it and after
 * the reads (server_rss_mb_<when>_<i>), and the event stream's stored bytes
 * per replica from stream info (event_stream_bytes, bytes_per_event). Run it
 * with NAQ_REPLICAS=3 against a cluster for the R3 figures.
 *
 * Not measured here, because it takes ~10 s of idling per sample: the first
 * read after the server has been idle. nats-server 2.9.10 then reloads the
 * block and the per-block subject indexes a read touches, which costs
 * 10-45 ms per history on 1M events whatever the read method (see src/events/history.c).
 */
#include "naq/naq.h"

#include <nats/nats.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVENTS_PER_JOB 5
#define JOBS_IN_FLIGHT 1000

static const naq_event_type lifecycle[EVENTS_PER_JOB] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_DEQUEUED,
                                                         NAQ_EVENT_STARTED, NAQ_EVENT_COMPLETED,
                                                         NAQ_EVENT_WORKER_RELEASED};

static void job_id(int64_t j, char out[NAQ_ID_SIZE])
{
    snprintf(out, NAQ_ID_SIZE, "bench-job-%012lld", (long long)j);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, int p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)((int64_t)n * p / 100);
    return v[i < n ? i : n - 1];
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Prints the resident memory of every process in NAQ_BENCH_SERVER_PIDS,
 * from /proc, as server_rss_mb_<when>_<i> lines. */
static void print_server_rss(const char *when)
{
    const char *pids = getenv("NAQ_BENCH_SERVER_PIDS");
    for (int i = 0; pids != NULL && *pids != '\0'; i++) {
        long pid = strtol(pids, NULL, 10);
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%ld/status", pid);
        FILE *f = fopen(path, "r");
        long kb = -1;
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
                break;
        if (f != NULL)
            fclose(f);
        printf("server_rss_mb_%s_%d=%.1f\n", when, i + 1, kb < 0 ? -1.0 : (double)kb / 1024.0);
        pids = strchr(pids, ',');
        pids = pids ? pids + 1 : "";
    }
    fflush(stdout);
}

/* The event stream's stored bytes (each replica stores them all). */
static void print_stream_bytes(jsCtx *js, const naq_config *cfg, int64_t events)
{
    jsStreamInfo *si = NULL;
    if (js_GetStreamInfo(&si, js, cfg->event_stream, NULL, NULL) != NATS_OK)
        return;
    printf("event_stream_bytes=%llu\n", (unsigned long long)si->State.Bytes);
    printf("bytes_per_event=%.0f\n", (double)si->State.Bytes / (double)events);
    printf("event_stream_replicas=%lld\n", (long long)si->Config->Replicas);
    jsStreamInfo_Destroy(si);
}

static void die(const char *what, naq_status s)
{
    fprintf(stderr, "bench_store: %s: %s: %s\n", what, naq_status_str(s), naq_last_error());
    exit(1);
}

static void delete_streams(jsCtx *js, const naq_config *cfg)
{
    js_DeleteStream(js, cfg->event_stream, NULL, NULL);
    js_DeleteStream(js, cfg->job_stream, NULL, NULL);
    js_DeleteStream(js, cfg->dlq_stream, NULL, NULL);
}

/* Event i of the stream: job (i / (5 * F)) * F + i % F, its (i / F) % 5-th
 * transition, F = JOBS_IN_FLIGHT. One in 1000 jobs times out instead of
 * completing, to give the tail search something rare to look for. */
static natsStatus publish_event(jsCtx *js, const char *prefix, int64_t i)
{
    int64_t j = (i / (EVENTS_PER_JOB * JOBS_IN_FLIGHT)) * JOBS_IN_FLIGHT + i % JOBS_IN_FLIGHT;
    int step = (int)((i / JOBS_IN_FLIGHT) % EVENTS_PER_JOB);
    naq_event e;
    naq_event_init(&e, lifecycle[step]);
    if (e.type == NAQ_EVENT_COMPLETED && j % 1000 == 999)
        e.type = NAQ_EVENT_TIMEOUT;
    job_id(j, e.job_id);
    naq_id_new(e.event_id);
    e.timestamp = 0; /* encoded as "now" */
    snprintf(e.queue_name, sizeof e.queue_name, "q%lld", (long long)(j % 4));
    snprintf(e.worker_id, sizeof e.worker_id, "bench-host-%lld", (long long)(j % 8));
    snprintf(e.worker_type, sizeof e.worker_type, "c");
    e.attempt = 1;
    e.duration_ms = 12.5;
    e.message = "a typical short message about this transition";
    char subject[NAQ_URL_MAX], *json = NULL;
    size_t len = 0;
    if (naq_event_subject(prefix, &e, subject, sizeof subject) != NAQ_OK ||
        naq_event_encode(&e, &json, &len) != NAQ_OK)
        return NATS_ERR;
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, subject, NULL, json, (int)len);
    free(json);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Nats-Msg-Id", e.event_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Event-Type", naq_event_type_name(e.type));
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Queue", e.queue_name);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Worker", e.worker_id);
    if (ns == NATS_OK)
        ns = js_PublishMsgAsync(js, &m, NULL);
    natsMsg_Destroy(m); /* NULL when the publish took it */
    return ns;
}

/* Reads k random jobs: history, state, and the history of a job that does
 * not exist. Times in milliseconds. */
static void read_pass(naq_client *c, int64_t jobs, int k, double *hist, double *state,
                      double *unknown)
{
    naq_status s;
    char id[NAQ_ID_SIZE];
    for (int r = 0; r < k; r++) {
        int64_t j = (int64_t)(((uint64_t)rand() << 16 ^ (uint64_t)rand()) % (uint64_t)jobs);
        job_id(j, id);
        naq_event_list l;
        double a = now_ms();
        if ((s = naq_job_history(c, id, &l)) != NAQ_OK)
            die("history", s);
        hist[r] = now_ms() - a;
        if (l.count != EVENTS_PER_JOB) {
            fprintf(stderr, "bench_store: job %s has %zu events, not %d\n", id, l.count,
                    EVENTS_PER_JOB);
            exit(1);
        }
        naq_event_list_free(&l);
        naq_event e;
        a = now_ms();
        if ((s = naq_job_last_event(c, id, &e)) != NAQ_OK)
            die("state", s);
        state[r] = now_ms() - a;
        naq_event_clear(&e);
        snprintf(id, sizeof id, "bench-nobody-%d", r);
        a = now_ms();
        if ((s = naq_job_history(c, id, &l)) != NAQ_ERR_NOT_FOUND)
            die("history of an unknown job", s);
        unknown[r] = now_ms() - a;
    }
}

static int count_event(const naq_event *e, void *user)
{
    (void)e;
    ++*(int *)user;
    return 0;
}

int main(int argc, char **argv)
{
    int64_t m = argc > 1 ? atoll(argv[1]) : 1000000;
    int k = argc > 2 ? atoi(argv[2]) : 1000;
    if (m < EVENTS_PER_JOB * JOBS_IN_FLIGHT || k < 1) {
        fprintf(stderr, "usage: bench_store [events >= %d] [reads >= 1]\n",
                EVENTS_PER_JOB * JOBS_IN_FLIGHT);
        return 2;
    }
    m -= m % (EVENTS_PER_JOB * JOBS_IN_FLIGHT); /* whole jobs only */
    int64_t jobs = m / EVENTS_PER_JOB;

    naq_config cfg;
    naq_config_init(&cfg);
    naq_status s = naq_config_from_env(&cfg);
    if (s != NAQ_OK)
        die("configuration", s);
    snprintf(cfg.subject_prefix, sizeof cfg.subject_prefix, "naqbs");
    snprintf(cfg.event_stream, sizeof cfg.event_stream, "NAQ_BENCH_STORE_EVENTS");
    snprintf(cfg.job_stream, sizeof cfg.job_stream, "NAQ_BENCH_STORE_JOBS");
    snprintf(cfg.dlq_stream, sizeof cfg.dlq_stream, "NAQ_BENCH_STORE_DLQ");
    cfg.event_url[0] = '\0';
    cfg.disable_logging = 1;

    /* The publisher is a plain nats.c connection, as any writer could be. */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 8192;
    jo.PublishAsync.StallWait = 60000; /* a busy server (R3, big store) slows acks */
    if (natsConnection_ConnectTo(&nc, cfg.url) != NATS_OK ||
        natsConnection_JetStream(&js, nc, &jo) != NATS_OK) {
        fprintf(stderr,
                "bench_store: cannot reach NATS at %s; start one (nats-server -js) or set "
                "NAQ_URL\n",
                cfg.url);
        return 1;
    }
    delete_streams(js, &cfg);
    naq_client *c = NULL;
    if ((s = naq_client_connect(&cfg, &c)) != NAQ_OK)
        die("connect", s);

    print_server_rss("before");
    double t0 = now_ms();
    for (int64_t i = 0; i < m; i++) {
        natsStatus ns = publish_event(js, cfg.subject_prefix, i);
        if (ns != NATS_OK) {
            fprintf(stderr, "bench_store: publish: %s\n", natsStatus_GetText(ns));
            return 1;
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK) {
        fprintf(stderr, "bench_store: not every publish was acknowledged\n");
        return 1;
    }
    double publish_s = (now_ms() - t0) / 1000.0;
    print_server_rss("after_burst");

    /* Pass 0 reads while the server still digests the burst (it flushes
     * blocks and holds a duplicate-window entry per event); pass 1, the
     * headline figures, reads a settled server whose per-block subject
     * indexes are loaded. */
    double *hist[2], *state[2], *unknown[2];
    srand(42);
    for (int pass = 0; pass < 2; pass++) {
        hist[pass] = calloc((size_t)k, sizeof(double));
        state[pass] = calloc((size_t)k, sizeof(double));
        unknown[pass] = calloc((size_t)k, sizeof(double));
        if (hist[pass] == NULL || state[pass] == NULL || unknown[pass] == NULL)
            return 1;
        read_pass(c, jobs, k, hist[pass], state[pass], unknown[pass]);
    }

    /* Tail of a rare type (one job in 1000 times out): the window search. */
    naq_stream_opts o = {0};
    o.filter.type = "timeout";
    o.tail = 10;
    int got = 0;
    double a = now_ms();
    if ((s = naq_events_stream(c, &o, count_event, &got)) != NAQ_OK)
        die("tail", s);
    double tail_rare = now_ms() - a;
    o.filter.type = NULL;
    o.tail = 100;
    int got_all = 0;
    a = now_ms();
    if ((s = naq_events_stream(c, &o, count_event, &got_all)) != NAQ_OK)
        die("tail", s);
    double tail_all = now_ms() - a;

    printf("events=%lld\n", (long long)m);
    printf("jobs=%lld\n", (long long)jobs);
    printf("reads=%d\n", k);
    printf("publish_per_s=%.0f\n", (double)m / publish_s);
    printf("history_p50_ms=%.3f\n", pct(hist[1], k, 50));
    printf("history_p99_ms=%.3f\n", pct(hist[1], k, 99));
    printf("history_max_ms=%.3f\n", pct(hist[1], k, 100));
    printf("state_p50_ms=%.3f\n", pct(state[1], k, 50));
    printf("state_p99_ms=%.3f\n", pct(state[1], k, 99));
    printf("state_max_ms=%.3f\n", pct(state[1], k, 100));
    printf("history_unknown_p50_ms=%.3f\n", pct(unknown[1], k, 50));
    printf("history_unknown_p99_ms=%.3f\n", pct(unknown[1], k, 99));
    printf("history_burst_p50_ms=%.3f\n", pct(hist[0], k, 50));
    printf("history_burst_p99_ms=%.3f\n", pct(hist[0], k, 99));
    printf("state_burst_p99_ms=%.3f\n", pct(state[0], k, 99));
    printf("tail10_rare_type_ms=%.3f\n", tail_rare);
    printf("tail10_rare_type_events=%d\n", got);
    printf("tail100_unfiltered_ms=%.3f\n", tail_all);
    print_server_rss("after_reads");
    print_stream_bytes(js, &cfg, m);

    for (int pass = 0; pass < 2; pass++) {
        free(hist[pass]);
        free(state[pass]);
        free(unknown[pass]);
    }
    naq_client_destroy(c);
    delete_streams(js, &cfg);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}
