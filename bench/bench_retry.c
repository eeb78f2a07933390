/*
 * bench_retry.c - end-to-end job throughput of the worker with events on.
 *
 *   noop:  N no-op jobs are enqueued (batch publish), then 2 workers (each
 *          its own client, concurrency 1) run them. jobs/s from the
 *          workers' start to the last job settled.
 *   retry: N jobs that fail on their first attempt and succeed on the
 *          second (max_retries 1, fixed delay 0: the retry is a plain nak,
 *          so the figure is the cost of the retry path, not of waiting).
 *          jobs/s counts jobs, each of which ran twice.
 * Every job goes through the whole lifecycle: its events (enqueued,
 * dequeued, worker_assigned, started, failed / retry_scheduled,
 * retry_started, worker_released, completed), the cancel check, its
 * result, its dependents and its unique key.
 *
 * Prints name=value lines. Uses NAQ_URL when set (and NAQ_REPLICAS, for a
 * cluster), else starts its own nats-server (JetStream, temporary store)
 * on a free port.
 *
 *   bench_retry [jobs]      default 20000
 *
 * Build against the library, e.g.:
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude \
 *      bench/bench_retry.c build/libnaq.a -lnats -ljansson -lpthread -lm
 */
#include "naq/naq.h"

#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 2
#define BATCH 1000

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
    fprintf(stderr, "bench_retry: %s: %s\n", what, naq_last_error());
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
        perror("bench_retry: free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void start_server(char *url, size_t cap)
{
    snprintf(server_dir, sizeof server_dir, "/tmp/naq-bench-XXXXXX");
    if (mkdtemp(server_dir) == NULL) {
        perror("bench_retry: mkdtemp");
        exit(1);
    }
    char port_s[16];
    int port = free_port();
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(url, cap, "nats://127.0.0.1:%d", port);
    server_pid = fork();
    if (server_pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL)
            _exit(126);
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
    fprintf(stderr, "bench_retry: nats-server did not start\n");
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
        fprintf(stderr, "bench_retry: could not remove %s\n", server_dir);
}

static naq_client *connect_to(const char *url)
{
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%s", url);
    snprintf(cfg.spool_dir, sizeof cfg.spool_dir, "none");
    /* On a cluster: NAQ_REPLICAS=3 measures R3 (docs/deployment.md). */
    const char *replicas = getenv("NAQ_REPLICAS");
    if (replicas != NULL)
        cfg.replicas = atoi(replicas);
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK)
        die("connect");
    return c;
}

/* ---- handlers and workers ---- */

static naq_status noop(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    (void)job;
    (void)user;
    return NAQ_OK;
}

static naq_status fail_once(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)user;
    if (job->attempt == 1) {
        naq_job_ctx_fail(ctx, "Flaky", "first attempt fails");
        return NAQ_ERR_HANDLER;
    }
    return NAQ_OK;
}

typedef struct {
    naq_client *c;
    naq_worker *w;
    pthread_t thread;
} bench_worker;

static void *run_main(void *arg)
{
    bench_worker *b = arg;
    if (naq_worker_run(b->w) != NAQ_OK)
        die("worker run");
    return NULL;
}

static void enqueue_all(naq_client *c, const char *queue, const char *function, int max_retries,
                        long n)
{
    static naq_job_opts batch[BATCH];
    static char ids[BATCH][NAQ_ID_SIZE];
    static naq_status st[BATCH];
    for (int i = 0; i < BATCH; i++) {
        naq_job_opts_init(&batch[i]);
        batch[i].queue = queue;
        batch[i].function = function;
        batch[i].max_retries = max_retries;
        batch[i].retry.kind = NAQ_BACKOFF_FIXED;
        batch[i].retry.delay_ms = 0;
    }
    for (long k = 0; k < n; k += BATCH) {
        size_t m = (size_t)(n - k < BATCH ? n - k : BATCH), stored = 0;
        if (naq_enqueue_batch(c, batch, m, ids, st, &stored) != NAQ_OK || stored != m)
            die("enqueue");
    }
}

/* Runs n jobs of `function` on `queue` with WORKERS workers; jobs/s. */
static double run(const char *url, const char *queue, const char *function, int max_retries, long n,
                  uint64_t *runs)
{
    naq_client *enq = connect_to(url);
    enqueue_all(enq, queue, function, max_retries, n);
    bench_worker bw[WORKERS];
    const char *queues[] = {queue, NULL};
    for (int i = 0; i < WORKERS; i++) {
        bw[i].c = connect_to(url);
        naq_worker_opts wo;
        naq_worker_opts_init(&wo);
        wo.queues = queues;
        wo.concurrency = 1;
        if (naq_worker_create(bw[i].c, &wo, &bw[i].w) != NAQ_OK ||
            naq_worker_register(bw[i].w, function, strcmp(function, "noop") == 0 ? noop : fail_once,
                                NULL) != NAQ_OK)
            die("worker");
    }
    double t0 = mono_s();
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&bw[i].thread, NULL, run_main, &bw[i]);
    uint64_t done = 0;
    while (done < (uint64_t)n) {
        sleep_ms(2);
        done = 0;
        for (int i = 0; i < WORKERS; i++) {
            naq_worker_stats st;
            naq_worker_get_stats(bw[i].w, &st);
            done += st.completed;
        }
    }
    double took = mono_s() - t0;
    *runs = 0;
    for (int i = 0; i < WORKERS; i++) {
        naq_worker_stop(bw[i].w);
        pthread_join(bw[i].thread, NULL);
        naq_worker_stats st;
        naq_worker_get_stats(bw[i].w, &st);
        *runs += st.processed;
        naq_worker_destroy(bw[i].w);
        naq_client_destroy(bw[i].c);
    }
    naq_client_destroy(enq);
    return (double)n / took;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    if (n < 1) {
        fprintf(stderr, "usage: bench_retry [jobs]\n");
        return 2;
    }
    char url[128];
    const char *env = getenv("NAQ_URL");
    if (env != NULL && env[0] != '\0')
        snprintf(url, sizeof url, "%s", env);
    else
        start_server(url, sizeof url);
    uint64_t runs = 0;
    printf("workers=%d\njobs=%ld\n", WORKERS, n);
    double noop_rate = run(url, "bench_noop", "noop", 0, n, &runs);
    printf("noop_jobs_per_s=%.0f\n", noop_rate);
    fflush(stdout);
    double retry_rate = run(url, "bench_retry", "fail_once", 1, n, &runs);
    printf("retry_jobs_per_s=%.0f\nretry_runs=%llu\n", retry_rate, (unsigned long long)runs);
    stop_server();
    return 0;
}
