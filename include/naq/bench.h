/*
 * naq/bench.h - benchmarks that print figures (`naq bench`). They measure
 * against a running server and never assert anything; tests do that.
 */
#ifndef NAQ_BENCH_H
#define NAQ_BENCH_H

#include <stdint.h>

#include "naq/config.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t events;    /* events per run, default 200000 */
    int runs;          /* runs of each side (best is reported), default 3 */
    int payload_bytes; /* approximate event JSON size, default 300 */
    /* 0 (default): as fast as possible, against the raw ceiling. N: the
     * logger alone at N events/s, every event confirmed, for the latency
     * from naq_client_log to the server's acknowledgement. */
    int rate;
} naq_bench_events_opts;

typedef struct {
    double logger_per_s; /* naq_client_log until every event is acknowledged */
    double raw_per_s;    /* js_PublishMsgAsync of the same messages, same headers */
    double ratio;        /* logger / raw */
    int payload_bytes;   /* measured JSON size of one event */
    double latency_p50_ms, latency_p99_ms; /* with rate: log call to ack, best run */
    uint64_t dropped, spooled, retried;
    /* CPU time of this process per event (all its threads: the caller,
     * the logger's publisher, nats.c's), lowest of the runs: what each side
     * costs, which load on the machine skews far less than the rates. */
    double raw_cpu_us, logger_cpu_us;
} naq_bench_events_result;

void naq_bench_events_opts_init(naq_bench_events_opts *o);
/* Runs on the server of cfg; each side uses its own connection. */
naq_status naq_bench_events(const naq_config *cfg, const naq_bench_events_opts *o,
                            naq_bench_events_result *out);

/* How the producer of `naq bench jobs` hands jobs to the server. */
typedef enum {
    NAQ_BENCH_SYNC,      /* naq_enqueue per job: waits for the server's ack */
    NAQ_BENCH_ASYNC,     /* naq_enqueue_async per job, then one flush */
    NAQ_BENCH_PREFILLED, /* the queue is filled first; the clock starts with the
                            workers (the workers alone are measured) */
} naq_bench_mode;

/* "sync", "async", "prefilled". */
const char *naq_bench_mode_name(naq_bench_mode m);

typedef struct {
    int64_t count;       /* N jobs per run, default 20000 */
    int workers;         /* W worker processes, default 2 */
    int concurrency;     /* C: jobs at once in each worker, default 1 */
    int prefetch;        /* jobs each worker fetches beyond its free slots
                          * (naq_worker_opts.prefetch; the ceiling pulls as
                          * many more), default NAQ_PREFETCH_AUTO (the
                          * ceiling then pulls NAQ_PREFETCH_AUTO_MAX more) */
    naq_bench_mode mode; /* default NAQ_BENCH_SYNC */
    int events;          /* 1 = event logging on (producer and workers), default 1 */
    int runs;            /* R: naq and the ceiling alternate R times, default 1 */
    double rate;         /* > 0: a paced producer at this many jobs/s (sync
                          * enqueues), for latency at a fixed rate; default 0 */
    int payload_bytes;   /* size of each job's args JSON, default 100 (>= 64) */
    const char *queue;   /* naq's queue, default "bench" (purged first) */
    long server_pid;     /* > 0: the local nats-server's pid, whose CPU during
                          * each run is read from /proc (Linux); default 0 */
    /* Progress lines ("naq run 1/3: 1200/5000 jobs"), called on the calling
     * thread; NULL = silent. The line lives only for the call. */
    void (*progress)(const char *line, void *user);
    void *progress_user;
} naq_bench_jobs_opts;

/* The figures of one side, each the median over the runs. */
typedef struct {
    double jobs_per_s;     /* N / (last handler return - first enqueue call);
                            * prefilled: from the moment the workers are told to go */
    double seconds;        /* that interval */
    double cpu_ms_per_job; /* user + system CPU of the producer and worker
                            * processes (their whole lives: connect, work,
                            * flush, exit) / N; the server's CPU is not in it */
    double producer_cpu_ms_per_job, workers_cpu_ms_per_job; /* the two parts */
    double server_cpu_ms_per_job; /* the server's CPU from go to the last worker's
                                   * exit / N; -1 when server_pid is not set */
    double wakeups_per_job;       /* voluntary context switches (a thread slept and was
                                   * woken) of the producer and workers / N: the
                                   * hand-offs between threads, which load does not skew */
    double latency_p50_ms;        /* enqueue call -> handler entry, over every job */
    double latency_p99_ms;
    int64_t handled; /* handler returns (> N when a job ran twice) */
} naq_bench_side;

typedef struct {
    naq_bench_side naq;     /* libnaq: naq_enqueue*, naq_worker */
    naq_bench_side ceiling; /* plain nats.c, same messages (docs/benchmarks.md) */
    double ratio;           /* naq.jobs_per_s / ceiling.jobs_per_s */
    int events_per_job;     /* K: events naq's worker stored per job (measured in
                             * the naq runs; 0 with events off); the ceiling
                             * publishes as many */
    int job_bytes;          /* size of one naq job message (JSON) */
} naq_bench_jobs_result;

void naq_bench_jobs_opts_init(naq_bench_jobs_opts *o);
/* Runs R alternating pairs (naq, then the ceiling) of one job-throughput
 * measurement against the server of cfg; docs/benchmarks.md is the method.
 * Every producer and worker is a child process (fork): the caller must not
 * have started threads or NATS connections (call it from a plain main
 * thread). The ceiling uses its own streams CEIL_JOBS, CEIL_EVENTS and
 * CEIL_OUTCOMES (created, then deleted). NAQ_ERR_INVALID_ARG for bad
 * options; any failure of a child is returned with its message. */
naq_status naq_bench_jobs(const naq_config *cfg, const naq_bench_jobs_opts *o,
                          naq_bench_jobs_result *out);

#ifdef __cplusplus
}
#endif
#endif
