/*
 * naq/stats.h - totals over hours without scanning the event stream: the
 * rollup maintainer that folds events into per-hour rollups as they flow,
 * the stats query that reads those rollups, and a sliding window over live
 * events for second-by-second views (naq top).
 *
 * Rollups live in the KV bucket "naq_stats" (for an event stream other
 * than NAQ_JOB_EVENTS: "naq_stats_<stream>"): key "h.<unix_hour>" holds the
 * counts of the events whose timestamp falls in that hour (per type, per
 * queue, per worker, duration histograms per queue, error types) and
 * "cursor" the highest stream sequence folded everywhere. Folding is
 * exactly-once even with several maintainers running and crashing: see
 * src/rollup.c and docs/queries.md.
 *
 * Thread-safety: every call through a shared client is thread-safe;
 * a naq_live may be fed and read from different threads.
 */
#ifndef NAQ_STATS_H
#define NAQ_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "naq/client.h"
#include "naq/event.h"
#include "naq/query.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NAQ_STATS_BUCKET "naq_stats"

/* Relative error of a percentile read from a rollup histogram: the value
 * reported is within 2% of the exact nearest-rank percentile. */
#define NAQ_STATS_PRECISION 0.02

/* ---- the rollup maintainer ---- */

/* Runs the maintainer on the calling thread until *stop becomes non-zero
 * (polled at least every 250 ms): folds new events in batches of up to
 * 10,000 events or 1 s. Transient errors (server restart) are retried; it
 * returns NAQ_OK when stopped, or an error that retrying cannot fix (no
 * bucket can be made). Any number of maintainers may run at once, in any
 * processes: they never count an event twice. */
naq_status naq_rollup_run(naq_client *c, const volatile int *stop);

/* Folds one batch: the events after the cursor, at most max_events
 * (<= 0: 10,000), into the rollups, then moves the cursor. *folded (may be
 * NULL) receives how many events this call added to the rollups (events
 * another maintainer had already folded are not counted again, and not
 * here). Returns NAQ_OK with 0 when there was nothing to fold. */
naq_status naq_rollup_step(naq_client *c, int64_t max_events, size_t *folded);

/* Called by naq_rollup_catch_up after each batch: how many of the events
 * that were behind are now folded (done), out of total. */
typedef void (*naq_rollup_progress_fn)(uint64_t done, uint64_t total, void *ud);

/* Folds every event stored when the call starts and not yet in the
 * rollups (bounded: events arriving meanwhile are left to the running
 * maintainer), in batches of up to 10,000, calling progress (may be NULL)
 * after each; stops early when *stop (may be NULL) becomes non-zero.
 * Exactly-once like naq_rollup_run, so it is safe while maintainers run.
 * *folded (may be NULL) receives how many events this call added. What a
 * stats reader calls before naq_stats_query to answer with every event. */
naq_status naq_rollup_catch_up(naq_client *c, naq_rollup_progress_fn progress, void *ud,
                               const volatile int *stop, uint64_t *folded);

/* Where the rollups stand: the highest stream sequence folded (0 = none)
 * and about how many stored events come after it (exact unless events
 * after the cursor were deleted). */
naq_status naq_rollup_lag(naq_client *c, uint64_t *cursor, uint64_t *lag);

/* ---- stats over the rollups ---- */

typedef struct {
    int hours;      /* the current hour and the hours-1 before it (default 24, 1..8784) */
    int by_queue;   /* fill naq_stats.queues */
    int by_worker;  /* fill naq_stats.workers */
    double now;     /* 0 = the current time (tests set it) */
    int top_errors; /* error types kept per group, most frequent first (default 10) */
} naq_stats_opts;

void naq_stats_opts_init(naq_stats_opts *o);

typedef struct {
    char name[NAQ_NAME_MAX * 2]; /* error_type; "(other)" collects rare ones */
    uint64_t count;
} naq_stats_error;

/* Figures of one group (all events, one queue or one worker).
 *   runs          = completed + failed (each run of a job ends in one of them)
 *   final_failed  = failed - retry_scheduled, at least 0: failures after
 *                   which the job is not retried
 *   success_rate  = completed / (completed + final_failed); -1 when that
 *                   is 0 (no job ended)
 *   throughput    = completed / window seconds
 *   durations     = duration_ms of completed and failed events; the
 *                   percentiles are nearest-rank, within
 *                   NAQ_STATS_PRECISION of the exact value; -1 when
 *                   duration_n is 0 (and always for workers). */
typedef struct {
    char name[NAQ_ID_SIZE]; /* queue or worker; "" for the total */
    uint64_t counts[NAQ_EVENT_TYPE_COUNT];
    uint64_t events;
    uint64_t runs, final_failed;
    double success_rate;
    double throughput_per_s, throughput_per_min;
    uint64_t duration_n;
    double duration_avg, p50, p95, p99;
    naq_stats_error *errors; /* heap, most frequent first */
    size_t nerrors;
} naq_stats_group;

typedef struct {
    int hours;
    double window_start, window_end; /* window_end = now */
    /* The time the figures really cover: from the earliest event in the
     * window (window_start when there is none, or for rollups written
     * before naq recorded it) to now, so a server that started 5 minutes
     * ago is not averaged over an hour. throughput = completed / window_s,
     * window_s = window_end - covered_start. */
    double covered_start;
    double window_s;
    naq_stats_group total;
    naq_stats_group *queues; /* heap, by name; with by_queue */
    size_t nqueues;
    naq_stats_group *workers; /* heap, by name; with by_worker */
    size_t nworkers;
    size_t hours_found;     /* hour keys that held a rollup */
    uint64_t rollup_cursor; /* see naq_rollup_lag */
    uint64_t rollup_lag;
} naq_stats;

/* Reads at most o->hours rollup keys (one KV get each) and the cursor.
 * Nothing scans the event stream: figures are as of the cursor; when
 * rollup_lag > 0 the newest events are not in them yet. Free *out with
 * naq_stats_free() (also after a failure). */
naq_status naq_stats_query(naq_client *c, const naq_stats_opts *o, naq_stats *out);
void naq_stats_free(naq_stats *s);

/* ---- a live sliding window (naq top) ---- */

typedef struct naq_live naq_live;

/* An empty window. Destroy with naq_live_destroy(). */
naq_status naq_live_create(naq_live **out);
void naq_live_destroy(naq_live *l);
/* Takes one event in (copied what it needs). Thread-safe. */
void naq_live_add(naq_live *l, const naq_event *e);

typedef struct {
    const char *queue;    /* only events of this queue (and workers that served it); NULL = all */
    double now;           /* 0 = the current time */
    double rate_window_s; /* rates over this many seconds before now (default 10) */
    double latency_window_s; /* percentiles over this many seconds (default 60) */
} naq_live_query;

/* One failed attempt of a job: the events that tell it (timeout, failed,
 * max_retries_exceeded of the same job and attempt) make one entry, with
 * the error of the first. */
typedef struct {
    double timestamp;
    char job_id[NAQ_ID_SIZE];
    int attempt; /* 0 when the events did not say */
    char queue[NAQ_ID_SIZE];
    char worker_id[NAQ_ID_SIZE];
    char error_type[NAQ_NAME_MAX];
    char error_message[256];
} naq_live_failure;

typedef struct {
    double timestamp; /* of its latest event */
    char job_id[NAQ_ID_SIZE];
    char queue[NAQ_ID_SIZE];
    naq_event_type last_type;
} naq_live_job;

typedef struct {
    uint64_t total_events; /* taken in since creation (all queues) */
    double events_per_s;   /* matching events with a timestamp in the rate window, per second */
    double per_s[NAQ_EVENT_TYPE_COUNT];
    uint64_t latency_n;
    double p50, p95, p99;         /* duration_ms over the latency window, exact; -1 when none */
    naq_worker_activity *workers; /* by worker id */
    size_t nworkers;
    naq_live_failure *failures; /* newest first, one per job and attempt, at most 50 */
    size_t nfailures;
    naq_live_job *jobs; /* distinct jobs by their latest event, newest first, at most 100 */
    size_t njobs;
} naq_live_snapshot;

void naq_live_query_init(naq_live_query *q);
/* Computes a snapshot (heap arrays; free with naq_live_snapshot_free(),
 * also after a failure). Thread-safe. */
naq_status naq_live_snapshot_take(naq_live *l, const naq_live_query *q, naq_live_snapshot *out);
void naq_live_snapshot_free(naq_live_snapshot *s);

#ifdef __cplusplus
}
#endif
#endif
