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
    int64_t events;        /* events per run, default 200000 */
    int runs;              /* runs of each side (best is reported), default 3 */
    int payload_bytes;     /* approximate event JSON size, default 300 */
} naq_bench_events_opts;

typedef struct {
    double logger_per_s;   /* naq_client_log until every event is acknowledged */
    double raw_per_s;      /* js_PublishMsgAsync of the same messages, same headers */
    double ratio;          /* logger / raw */
    int payload_bytes;     /* measured JSON size of one event */
    uint64_t dropped, spooled, retried;
} naq_bench_events_result;

void naq_bench_events_opts_init(naq_bench_events_opts *o);
/* Runs on the server of cfg; each side uses its own connection. */
naq_status naq_bench_events(const naq_config *cfg, const naq_bench_events_opts *o,
                            naq_bench_events_result *out);

typedef struct {
    int64_t count;         /* jobs, default 20000 */
    int workers;           /* workers (each concurrency 1), default 2 */
    int enqueuers;         /* enqueueing threads, default 2 */
    int events;            /* 1 = event logging on */
    const char *queue;     /* default "bench" (purged first) */
} naq_bench_jobs_opts;

typedef struct {
    double jobs_per_s;     /* count / (first enqueue .. last completion) */
    double enqueue_per_s;  /* count / (first .. last enqueue) */
    double seconds;
    uint64_t completed;
} naq_bench_jobs_result;

void naq_bench_jobs_opts_init(naq_bench_jobs_opts *o);
naq_status naq_bench_jobs(const naq_config *cfg, const naq_bench_jobs_opts *o,
                          naq_bench_jobs_result *out);

#ifdef __cplusplus
}
#endif
#endif
