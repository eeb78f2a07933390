/*
 * bench_stats.c - how fast the rollup maintainer folds events, and how fast
 * `naq events stats` answers over 24 hours of a big event stream.
 *
 * Usage: bench_stats [M events, default 1000000] [Q queries, default 50]
 * against the NATS server in NAQ_URL (default nats://127.0.0.1:4222). It
 * publishes M realistic events (jobs enqueued, started, completed or failed
 * with durations and error types, on 20 queues and 50 workers, plus worker
 * heartbeats) whose timestamps are spread over the last 24 hours, into its
 * own streams (prefix "naqbst", event stream NAQ_BENCH_STATS_EVENTS, stats
 * bucket naq_stats_NAQ_BENCH_STATS_EVENTS), which it deletes at the start
 * and the end. Then it runs one maintainer until the rollups have caught up
 * (rollup_events_per_s), and times Q stats queries over 24 h, with and
 * without the per-queue and per-worker breakdown. Prints name=value lines;
 * times are milliseconds.
 *
 * Built by CMake as build/bench_stats (every bench/bench_*.c is a program).
 */
#include "naq/naq.h"
#include "naq/query.h"
#include "naq/stats.h"

#include <nats/nats.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NQUEUES 20
#define NWORKERS 50
#define NERRORS 8

static const char *const errors[NERRORS] = {"ExitStatus",   "Timeout",         "Signal",
                                            "HandlerError", "ConnectionReset", "OutOfMemory",
                                            "ValueError",   "KeyError"};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, int p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil((double)n * p / 100.0) - 1;
    return v[i < 0 ? 0 : i < n ? i : n - 1];
}

static void die(const char *what, naq_status s)
{
    fprintf(stderr, "bench_stats: %s: %s: %s\n", what, naq_status_str(s), naq_last_error());
    exit(1);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void cleanup(jsCtx *js, const naq_config *cfg)
{
    char bucket[128];
    snprintf(bucket, sizeof bucket, "%s_%s", NAQ_STATS_BUCKET, cfg->event_stream);
    js_DeleteKeyValue(js, bucket);
    js_DeleteStream(js, cfg->event_stream, NULL, NULL);
    js_DeleteStream(js, cfg->job_stream, NULL, NULL);
    js_DeleteStream(js, cfg->dlq_stream, NULL, NULL);
}

/* Event i: job i/3's enqueued, started or outcome (1 in 8 fails); every
 * 50th event is a worker heartbeat instead. Timestamps rise evenly over the
 * 24 hours before t_end. */
static natsStatus publish_event(jsCtx *js, int64_t i, int64_t m, double t_end)
{
    naq_event e;
    naq_event_type types[3] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_STARTED, NAQ_EVENT_COMPLETED};
    int64_t job = i / 3;
    naq_event_init(&e, types[i % 3]);
    snprintf(e.event_id, sizeof e.event_id, "bst-%012lld", (long long)i);
    snprintf(e.job_id, sizeof e.job_id, "bench-job-%012lld", (long long)job);
    snprintf(e.queue_name, sizeof e.queue_name, "queue-%02d", (int)(job % NQUEUES));
    e.timestamp = t_end - 86400.0 + 86400.0 * (double)i / (double)m;
    uint64_t r = rnd();
    if (i % 50 == 49) {
        e.type = NAQ_EVENT_WORKER_HEARTBEAT;
        e.job_id[0] = e.queue_name[0] = '\0';
    }
    if (e.type != NAQ_EVENT_ENQUEUED)
        snprintf(e.worker_id, sizeof e.worker_id, "worker-%02d-%d", (int)(r % NWORKERS), 4242);
    if (e.type == NAQ_EVENT_COMPLETED) {
        e.duration_ms = 2.0 * exp((double)(r >> 40) / (double)(1 << 24) * 7.0); /* 2 ms - 2 s */
        e.cpu_time_ms = e.duration_ms / 3;
        if ((r >> 8) % 8 == 0) {
            e.type = NAQ_EVENT_FAILED;
            e.error_type = (char *)errors[(r >> 16) % NERRORS];
            e.error_message = (char *)"command exited with status 3";
        }
    }
    char subject[256];
    char *json = NULL;
    size_t len = 0;
    if (naq_event_subject("naqbst", &e, subject, sizeof subject) != NAQ_OK ||
        naq_event_encode(&e, &json, &len) != NAQ_OK)
        return NATS_ERR;
    natsMsg *msg = NULL;
    natsStatus ns = natsMsg_Create(&msg, subject, NULL, json, (int)len);
    free(json);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Nats-Msg-Id", e.event_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Naq-Event-Type", naq_event_type_name(e.type));
    if (ns == NATS_OK && e.queue_name[0])
        ns = natsMsgHeader_Set(msg, "Naq-Queue", e.queue_name);
    if (ns == NATS_OK && e.worker_id[0])
        ns = natsMsgHeader_Set(msg, "Naq-Worker", e.worker_id);
    if (ns == NATS_OK)
        ns = js_PublishMsgAsync(js, &msg, NULL);
    natsMsg_Destroy(msg);
    return ns;
}

static void time_queries(naq_client *c, int q, int breakdown, const char *name)
{
    double *t = calloc((size_t)q, sizeof *t);
    naq_stats_opts o;
    naq_stats_opts_init(&o);
    o.hours = 24;
    o.by_queue = o.by_worker = breakdown;
    uint64_t events = 0;
    for (int i = 0; i < q; i++) {
        naq_stats st;
        double t0 = now_ms();
        naq_status s = naq_stats_query(c, &o, &st);
        t[i] = now_ms() - t0;
        if (s != NAQ_OK)
            die("stats", s);
        events = st.total.events;
        naq_stats_free(&st);
    }
    printf("%s_events=%llu\n", name, (unsigned long long)events);
    printf("%s_p50_ms=%.2f\n", name, pct(t, q, 50));
    printf("%s_p99_ms=%.2f\n", name, pct(t, q, 99));
    free(t);
}

int main(int argc, char **argv)
{
    int64_t m = argc > 1 ? atoll(argv[1]) : 1000000;
    int q = argc > 2 ? atoi(argv[2]) : 50;
    naq_config cfg;
    naq_config_init(&cfg);
    naq_status s = naq_config_from_env(&cfg);
    if (s != NAQ_OK)
        die("config", s);
    snprintf(cfg.subject_prefix, sizeof cfg.subject_prefix, "naqbst");
    snprintf(cfg.event_stream, sizeof cfg.event_stream, "NAQ_BENCH_STATS_EVENTS");
    snprintf(cfg.job_stream, sizeof cfg.job_stream, "NAQ_BENCH_STATS_JOBS");
    snprintf(cfg.dlq_stream, sizeof cfg.dlq_stream, "NAQ_BENCH_STATS_DLQ");
    cfg.disable_logging = 1;

    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 8192;
    jo.PublishAsync.StallWait = 30000; /* ms: wait out the server's slower moments */
    if (natsConnection_ConnectTo(&nc, cfg.url) != NATS_OK ||
        natsConnection_JetStream(&js, nc, &jo) != NATS_OK) {
        fprintf(stderr, "bench_stats: cannot reach %s (set NAQ_URL)\n", cfg.url);
        return 1;
    }
    cleanup(js, &cfg);
    naq_client *c = NULL;
    if ((s = naq_client_connect(&cfg, &c)) != NAQ_OK)
        die("connect", s);

    double t_end = wall_s();
    double t0 = now_ms();
    for (int64_t i = 0; i < m; i++) {
        if (publish_event(js, i, m, t_end) != NATS_OK) {
            fprintf(stderr, "bench_stats: publish %lld failed\n", (long long)i);
            return 1;
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK) {
        fprintf(stderr, "bench_stats: publishing did not complete\n");
        return 1;
    }
    double pub_ms = now_ms() - t0;
    printf("events=%lld\n", (long long)m);
    printf("publish_events_per_s=%.0f\n", (double)m / (pub_ms / 1000.0));

    naq_stats st;
    naq_stats_opts o;
    naq_stats_opts_init(&o);
    if ((s = naq_stats_query(c, &o, &st)) != NAQ_OK)
        die("stats before folding", s);
    printf("lag_before_rollup=%llu\n", (unsigned long long)st.rollup_lag);
    naq_stats_free(&st);

    t0 = now_ms();
    size_t total = 0, folded = 0;
    do {
        if ((s = naq_rollup_step(c, 0, &folded)) != NAQ_OK)
            die("rollup", s);
        total += folded;
    } while (folded > 0);
    double roll_ms = now_ms() - t0;
    printf("rollup_events=%zu\n", total);
    printf("rollup_ms=%.0f\n", roll_ms);
    printf("rollup_events_per_s=%.0f\n", (double)total / (roll_ms / 1000.0));

    time_queries(c, q, 0, "stats_24h");
    time_queries(c, q, 1, "stats_24h_by_queue_worker");
    if ((s = naq_stats_query(c, &o, &st)) != NAQ_OK)
        die("stats", s);
    printf("success_rate=%.4f\n", st.total.success_rate);
    printf("duration_p50_ms=%.2f\n", st.total.p50);
    printf("duration_p99_ms=%.2f\n", st.total.p99);
    printf("lag_after_rollup=%llu\n", (unsigned long long)st.rollup_lag);
    naq_stats_free(&st);

    naq_client_destroy(c);
    cleanup(js, &cfg);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}
