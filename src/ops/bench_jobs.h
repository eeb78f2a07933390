/*
 * bench_jobs.h - what the parts of `naq bench jobs` share, private to them:
 *   bench_jobs.c     the orchestrator: runs, timing, CPU, medians, K
 *   bench_naq.c      naq's producer and worker children (libnaq)
 *   bench_ceiling.c  the ceiling's producer and worker children (plain nats.c)
 *   bench_proc.c     children, pipes and frames (bench_proc.h)
 */
#ifndef NAQ_BENCH_JOBS_H
#define NAQ_BENCH_JOBS_H

#include "bench_proc.h"
#include "internal.h"

/* One run's parameters, as every child of both sides reads them (the
 * children are forked, so this is a copy-on-write snapshot). */
typedef struct {
    naq_config cfg; /* the naq side's config; cfg.url is the server of both */
    const naq_bench_jobs_opts *o;
    int events_per_job; /* K: events a ceiling worker publishes per job */
    int job_bytes;      /* the ceiling's job body, as large as naq's job message */
} naq__bench_run;

/* Child functions (naq__bench_child_fn); arg is a naq__bench_run.
 *
 * Producers: connect, prepare (naq: purge the queue, note the event
 * stream's last sequence; ceiling: re-create the CEIL_* streams and the
 * consumer; prefilled: fill the queue), send READY, wait for GO, produce,
 * send PRODUCED, wait for END, then (naq, events on) send EVENTS, and exit
 * (the ceiling deletes its streams first).
 *
 * Workers: connect, send READY, wait for GO, run jobs sending PROGRESS,
 * and on STOP finish (settle what is in flight), send REPORT and SAMPLES,
 * and exit. */
int naq__bench_naq_producer(naq__bench_chan *ch, void *arg);
int naq__bench_naq_worker(naq__bench_chan *ch, void *arg);
int naq__bench_ceiling_producer(naq__bench_chan *ch, void *arg);
int naq__bench_ceiling_worker(naq__bench_chan *ch, void *arg);

/* Worker side: the latencies of the jobs a worker ran, and its totals.
 * Written by handlers on any thread; samples beyond cap are not kept. */
typedef struct {
    atomic_int_least64_t handled;
    atomic_int_least64_t last_return_ns;
    atomic_int_least64_t nsamples;
    uint32_t *samples; /* heap (cap entries), freed by naq__bench_tally_report */
    int64_t cap;
} naq__bench_tally;

/* Allocates samples for cap jobs. NAQ_ERR_NO_MEMORY when it cannot. */
naq_status naq__bench_tally_init(naq__bench_tally *t, int64_t cap);
/* A job's handler entered at entry_ns with the payload text (which holds
 * the enqueue time), and returns now. */
void naq__bench_tally_job(naq__bench_tally *t, int64_t entry_ns, const char *payload);
/* Sends REPORT and SAMPLES and frees the samples; -1 when the parent is
 * gone. */
int naq__bench_tally_report(naq__bench_tally *t, naq__bench_chan *ch);

#endif
