/*
 * naq/metrics.h - Prometheus metrics: an HTTP endpoint (libmicrohttpd)
 * serving the text exposition format, the cluster-wide exporter behind
 * `naq metrics` and the process figures of a worker or a scheduler.
 *
 * The exporter counts job events by queue from the event stream (it reads
 * the stream from its start, so its counters hold every stored event and
 * survive a restart of the exporter while the events are kept), and on
 * each scrape adds what the server keeps now (naq/ops.h): pending and
 * in-flight jobs, consumer-group lag, dead letters, workers, stream use,
 * rollup lag. docs/monitoring.md lists every metric.
 *
 * Thread-safety: render calls may come from any thread (the HTTP server
 * calls them from its own).
 */
#ifndef NAQ_METRICS_H
#define NAQ_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "naq/client.h"
#include "naq/processor.h"
#include "naq/schedule.h"
#include "naq/status.h"
#include "naq/worker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the HTTP endpoint ---- */

/* Produces one scrape's text: *text is heap (the server frees it). */
typedef naq_status (*naq_metrics_render_fn)(void *user, char **text, size_t *len);

typedef struct naq_metrics_server naq_metrics_server;

/* Serves GET /metrics (and GET /) on addr, "HOST:PORT" or ":PORT" (all
 * interfaces; port 0 picks a free one), calling render for each scrape on
 * the server's thread. NAQ_ERR_INVALID_ARG for a malformed address,
 * NAQ_ERR_IO when it cannot listen (port in use). Stop with
 * naq_metrics_server_stop(). */
naq_status naq_metrics_server_start(const char *addr, naq_metrics_render_fn render, void *user,
                                    naq_metrics_server **out);
/* The port it listens on (the one picked for port 0). */
int naq_metrics_server_port(const naq_metrics_server *s);
/* Stops serving and frees; accepts NULL. */
void naq_metrics_server_stop(naq_metrics_server *s);

/* ---- the exporter (`naq metrics`) ---- */

typedef struct naq_metrics_exporter naq_metrics_exporter;

/* Starts a thread that reads the event stream from its first event and
 * counts job events by queue. Destroy with naq_metrics_exporter_destroy. */
naq_status naq_metrics_exporter_create(naq_client *c, naq_metrics_exporter **out);
void naq_metrics_exporter_destroy(naq_metrics_exporter *e);
/* Waits until the exporter has counted every event the stream held when
 * called, up to timeout_ms (NAQ_ERR_TIMEOUT then). */
naq_status naq_metrics_exporter_wait(naq_metrics_exporter *e, int64_t timeout_ms);
/* One scrape: the counted events and the server's figures now. A
 * naq_metrics_render_fn (user = the exporter). */
naq_status naq_metrics_exporter_render(void *exporter, char **text, size_t *len);

/* ---- process figures ---- */

/* What one process exports about itself: a worker, a scheduler, an event
 * processor (any of them, or none: then only its client's logger). */
typedef struct {
    naq_client *client;       /* its logger counters */
    naq_worker *worker;       /* NULL: none */
    naq_scheduler *scheduler; /* NULL: none */
    naq_processor *processor; /* NULL: none */
} naq_metrics_process;

/* A naq_metrics_render_fn (user = a naq_metrics_process that outlives the
 * server): the worker's job counters and running jobs, the scheduler's
 * leadership, triggers and released delayed jobs, the logger's counters. */
naq_status naq_metrics_render_process(void *process, char **text, size_t *len);

/* ---- system_metrics events ---- */

/* Default interval of the snapshots (NAQ_METRICS_INTERVAL overrides it). */
#define NAQ_DEFAULT_METRICS_INTERVAL_MS 60000

typedef struct naq_metrics_reporter naq_metrics_reporter;

/* Logs a "system_metrics" event every interval_ms on p's client: the
 * worker's and the scheduler's counters, the logger's, and the process's
 * resident memory (memory_mb) and CPU time (cpu_time_ms), in details
 * (docs/monitoring.md). interval_ms <= 0: nothing is started, *out NULL.
 * p must outlive the reporter. */
naq_status naq_metrics_reporter_start(const naq_metrics_process *p, int64_t interval_ms,
                                      naq_metrics_reporter **out);
/* Stops (at once, without a last snapshot) and frees; accepts NULL. */
void naq_metrics_reporter_stop(naq_metrics_reporter *r);

/* The interval from NAQ_METRICS_INTERVAL (a duration; "0" = off), else
 * the default. NAQ_ERR_INVALID_ARG naming the variable when malformed. */
naq_status naq_metrics_interval_from_env(int64_t *interval_ms);

#ifdef __cplusplus
}
#endif
#endif
