/*
 * bench_group.c - consumer group throughput and live-stream latency.
 *
 *   group: N events are published first; then a group of 2 members
 *          (threads, each with its own client and processor) handles them
 *          with explicit acks. Reports events/s from the members' start to
 *          the last handled event, once with plain acks and once with acks
 *          the server confirms (ack_sync).
 *   live:  a live processor; a publisher sends events at a fixed rate with
 *          js_PublishMsgAsync, each stamped with the time of the publish
 *          call; the handler records now - stamp. Reports p50/p99/max, and
 *          the same for a bare nats.c ordered consumer reading the same
 *          events at the same time (live_raw_*), the floor the processor's
 *          own threads add to.
 *
 * Prints name=value lines. Uses NAQ_URL when set, else starts its own
 * nats-server (JetStream, temporary store) on a free port.
 *
 *   bench_group [events] [live_rate] [live_seconds]
 *   defaults:    100000   1000        5
 *
 * Build against the library, e.g.:
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude \
 *      bench/bench_group.c build/libnaq.a -lnats -ljansson -lpthread -lm
 */
#include "naq/naq.h"
#include "naq/processor.h"

#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_group: %s: %s\n", what, naq_last_error());
    exit(1);
}

/* ---- a private server when NAQ_URL is not set ---- */

static pid_t server_pid;
static char server_dir[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bench_group: free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void start_server(char *url, size_t cap)
{
    snprintf(server_dir, sizeof server_dir, "/tmp/naq-bench-XXXXXX");
    if (mkdtemp(server_dir) == NULL) {
        perror("bench_group: mkdtemp");
        exit(1);
    }
    int port = free_port();
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(url, cap, "nats://127.0.0.1:%d", port);
    server_pid = fork();
    if (server_pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL)
            _exit(127);
        execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port_s, "-sd",
               server_dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        natsConnection *nc = NULL;
        if (natsConnection_ConnectTo(&nc, url) == NATS_OK) {
            natsConnection_Destroy(nc);
            return;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "bench_group: nats-server did not start\n");
    exit(1);
}

static void stop_server(void)
{
    if (server_pid <= 0)
        return;
    kill(server_pid, SIGTERM);
    waitpid(server_pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", server_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_group: could not remove %s\n", server_dir);
}

static naq_client *connect_to(const char *url, int logging)
{
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%s", url);
    snprintf(cfg.spool_dir, sizeof cfg.spool_dir, "none");
    cfg.disable_logging = !logging;
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK)
        die("connect");
    return c;
}

/* ---- group throughput ---- */

static atomic_long handled_total;

static int count_handler(const naq_event *e, void *user, char *reason)
{
    (void)e;
    (void)reason;
    atomic_fetch_add((atomic_long *)user, 1);
    atomic_fetch_add(&handled_total, 1);
    return 0;
}

static void publish_events(const char *url, long n)
{
    naq_client *c = connect_to(url, 1);
    for (long i = 0; i < n; i++) {
        naq_event e;
        naq_event_init(&e, i % 3 == 2 ? NAQ_EVENT_COMPLETED : NAQ_EVENT_STARTED);
        snprintf(e.job_id, sizeof e.job_id, "job-%ld", i / 3);
        snprintf(e.queue_name, sizeof e.queue_name, "bench");
        snprintf(e.worker_id, sizeof e.worker_id, "w-1");
        e.attempt = 1;
        e.duration_ms = 12.5;
        naq_client_log(c, &e);
        /* Stay inside the logger's memory buffer: with no spool, overflow
         * would be dropped. */
        if (i % 20000 == 19999 && naq_client_flush_events(c, 120000) != NAQ_OK)
            die("publish");
    }
    if (naq_client_flush_events(c, 120000) != NAQ_OK)
        die("publish");
    naq_logger_stats st;
    naq_client_logger_stats(c, &st);
    if (st.dropped > 0) {
        fprintf(stderr, "bench_group: the logger dropped %llu events\n",
                (unsigned long long)st.dropped);
        exit(1);
    }
    naq_client_destroy(c);
}

static void group_run(const char *url, const char *group, long n, int ack_sync)
{
    naq_client *clients[2];
    naq_processor *members[2];
    atomic_long per_member[2] = {0, 0};
    atomic_store(&handled_total, 0);
    for (int k = 0; k < 2; k++)
        clients[k] = connect_to(url, 0);
    double t0 = mono_s();
    for (int k = 0; k < 2; k++) {
        naq_processor_opts o;
        naq_processor_opts_init(&o);
        o.group = group;
        o.start = NAQ_START_ALL;
        o.max_concurrent = 4;
        o.max_pending = 512;
        o.max_ack_pending = 4096;
        o.ack_sync = ack_sync;
        if (naq_processor_create(clients[k], &o, &members[k]) != NAQ_OK ||
            naq_processor_add_global_handler(members[k], count_handler, &per_member[k], NULL) !=
                NAQ_OK ||
            naq_processor_start(members[k]) != NAQ_OK)
            die("group member");
    }
    /* Until all are handled, or nothing moved for 5 s (then the figure says
     * how many were handled). */
    long seen = 0;
    double last_progress = mono_s(), last_event = t0;
    while (atomic_load(&handled_total) < n && mono_s() - last_progress < 5) {
        sleep_ms(1);
        long now = atomic_load(&handled_total);
        if (now != seen) {
            seen = now;
            last_progress = last_event = mono_s();
        }
    }
    double elapsed = (atomic_load(&handled_total) >= n ? mono_s() : last_event) - t0;
    long done = atomic_load(&handled_total);
    for (int k = 0; k < 2; k++) {
        naq_processor_destroy(members[k]);
        naq_client_destroy(clients[k]);
    }
    const char *tag = ack_sync ? "group_ack_sync" : "group";
    printf("%s_members=2\n", tag);
    printf("%s_events=%ld\n", tag, done);
    printf("%s_seconds=%.3f\n", tag, elapsed);
    printf("%s_events_per_s=%.0f\n", tag, (double)done / elapsed);
    printf("%s_member_shares=%ld,%ld\n", tag, atomic_load(&per_member[0]),
           atomic_load(&per_member[1]));
}

/* ---- live latency ---- */

typedef struct {
    double *lat_ms;
    atomic_long n;
    long cap;
} latencies;

static int latency_handler(const naq_event *e, void *user, char *reason)
{
    (void)reason;
    latencies *l = user;
    double ms = (now_s() - e->timestamp) * 1000.0;
    long i = atomic_fetch_add(&l->n, 1);
    if (i < l->cap)
        l->lat_ms[i] = ms;
    return 0;
}

/* The baseline: a bare ordered consumer on its own connection and thread. */
typedef struct {
    const char *url;
    latencies *l;
    atomic_int ready, stop;
} raw_reader;

static void *raw_main(void *arg)
{
    raw_reader *r = arg;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverNew;
    if (natsConnection_ConnectTo(&nc, r->url) != NATS_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK ||
        js_SubscribeSync(&sub, js, "naq.jobs.events.>", NULL, &so, NULL) != NATS_OK) {
        fprintf(stderr, "bench_group: raw reader cannot subscribe\n");
        exit(1);
    }
    atomic_store(&r->ready, 1);
    while (!atomic_load(&r->stop)) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 100) != NATS_OK)
            continue;
        naq_event e;
        if (naq_event_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &e) == NAQ_OK)
            latency_handler(&e, r->l, NULL);
        naq_event_clear(&e);
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *tag, latencies *l)
{
    long n = atomic_load(&l->n) < l->cap ? atomic_load(&l->n) : l->cap;
    qsort(l->lat_ms, (size_t)n, sizeof(double), cmp_double);
    printf("%s_events=%ld\n", tag, n);
    if (n > 0) {
        printf("%s_latency_p50_ms=%.3f\n", tag, l->lat_ms[n / 2]);
        printf("%s_latency_p99_ms=%.3f\n", tag, l->lat_ms[(long)((double)n * 0.99)]);
        printf("%s_latency_max_ms=%.3f\n", tag, l->lat_ms[n - 1]);
    }
    free(l->lat_ms);
}

static void live_run(const char *url, int rate, int seconds)
{
    naq_client *c = connect_to(url, 0);
    long total = (long)rate * seconds;
    latencies l = {calloc((size_t)total, sizeof(double)), 0, total};
    latencies raw = {calloc((size_t)total, sizeof(double)), 0, total};
    raw_reader rr = {url, &raw, 0, 0};
    pthread_t raw_thread;
    pthread_create(&raw_thread, NULL, raw_main, &rr);
    while (!atomic_load(&rr.ready))
        sleep_ms(1);
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    naq_processor *p = NULL;
    if (naq_processor_create(c, &o, &p) != NAQ_OK ||
        naq_processor_add_global_handler(p, latency_handler, &l, NULL) != NAQ_OK ||
        naq_processor_start(p) != NAQ_OK)
        die("live processor");

    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    if (natsConnection_ConnectTo(&nc, url) != NATS_OK ||
        natsConnection_JetStream(&js, nc, &jo) != NATS_OK) {
        fprintf(stderr, "bench_group: publisher cannot connect\n");
        exit(1);
    }
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long interval_ns = 1000000000L / rate;
    for (long i = 0; i < total; i++) {
        naq_event e;
        naq_event_init(&e, NAQ_EVENT_STARTED);
        naq_id_new(e.event_id);
        snprintf(e.job_id, sizeof e.job_id, "live-%ld", i);
        snprintf(e.queue_name, sizeof e.queue_name, "bench");
        e.timestamp = now_s(); /* the publish time */
        char subject[256], *json = NULL;
        size_t len = 0;
        naq_event_subject("naq", &e, subject, sizeof subject);
        naq_event_encode(&e, &json, &len);
        natsMsg *m = NULL;
        natsMsg_Create(&m, subject, NULL, json, (int)len);
        natsMsgHeader_Set(m, "Nats-Msg-Id", e.event_id);
        natsMsgHeader_Set(m, "Naq-Event-Type", "started");
        natsMsgHeader_Set(m, "Naq-Queue", "bench");
        if (js_PublishMsgAsync(js, &m, NULL) != NATS_OK)
            natsMsg_Destroy(m);
        free(json);
        next.tv_nsec += interval_ns;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    js_PublishAsyncComplete(js, NULL);
    double t0 = mono_s();
    while ((atomic_load(&l.n) < total || atomic_load(&raw.n) < total) && mono_s() - t0 < 10)
        sleep_ms(5);
    naq_processor_destroy(p);
    atomic_store(&rr.stop, 1);
    pthread_join(raw_thread, NULL);
    printf("live_rate_per_s=%d\n", rate);
    report("live", &l);
    report("live_raw", &raw);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    naq_client_destroy(c);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int rate = argc > 2 ? atoi(argv[2]) : 1000;
    int seconds = argc > 3 ? atoi(argv[3]) : 5;
    if (n < 1 || rate < 1 || seconds < 1) {
        fprintf(stderr, "usage: bench_group [events] [live_rate] [live_seconds]\n");
        return 2;
    }
    char url[128];
    const char *env = getenv("NAQ_URL");
    if (env != NULL && env[0] != '\0')
        snprintf(url, sizeof url, "%s", env);
    else
        start_server(url, sizeof url);
    publish_events(url, n);
    group_run(url, "bench", n, 0);
    group_run(url, "bench_sync", n, 1);
    live_run(url, rate, seconds);
    stop_server();
    return 0;
}
