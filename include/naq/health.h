/*
 * naq/health.h - is naq usable right now: the connections are up and the
 * event, job and dead-letter streams exist, with their sizes.
 *
 * `naq health` prints this and judges the figures of naq/ops.h (lag, dead
 * letters, stream use, rollup lag, workers, spool) against thresholds; a
 * program may call it for its own readiness probe. It only reads: it never
 * creates or changes a stream.
 */
#ifndef NAQ_HEALTH_H
#define NAQ_HEALTH_H

#include <stdint.h>

#include "naq/client.h"
#include "naq/config.h"
#include "naq/ops.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which stream a naq_stream_health describes (index into the report). */
typedef enum {
    NAQ_HEALTH_EVENTS, /* cfg.event_stream, on the event server */
    NAQ_HEALTH_JOBS,   /* cfg.job_stream */
    NAQ_HEALTH_DLQ,    /* cfg.dlq_stream */
    NAQ_HEALTH_STREAMS
} naq_health_stream;

typedef struct {
    char name[NAQ_NAME_MAX]; /* stream name */
    int ok;                  /* the stream exists and answered */
    uint64_t messages;
    uint64_t bytes;
    uint64_t first_seq;
    uint64_t last_seq;
    int64_t consumers;
    char error[256]; /* why not ok; "" when ok */
} naq_stream_health;

typedef struct {
    int healthy;           /* connected and every stream ok */
    int connected;         /* job-queue (and event) connections are up */
    char url[NAQ_URL_MAX]; /* server the client is connected to now (password or token redacted) */
    char event_url[NAQ_URL_MAX]; /* event server connected to now (== url when shared) */
    int64_t rtt_us;              /* round trip to the job-queue server; -1 if unknown */
    naq_stream_health streams[NAQ_HEALTH_STREAMS];
} naq_health_report;

/* Fills *out. Returns NAQ_OK whenever the report could be made, healthy or
 * not: read out->healthy, and each stream's error. Thread-safe. */
naq_status naq_health(naq_client *c, naq_health_report *out);

/* ---- checks: each figure of naq/ops.h judged against thresholds ---- */

typedef enum { NAQ_HEALTH_OK, NAQ_HEALTH_WARNING, NAQ_HEALTH_CRITICAL } naq_health_level;

/* "ok", "warning", "critical". */
const char *naq_health_level_name(naq_health_level l);

/* Thresholds: (suffix, flag, environment variable, default, meaning). A
 * figure above the warning value is a warning, above the critical value
 * critical. Lag and DLQ defaults are the usual alerting levels (lag > 100
 * warning, > 1000 critical; more than 10 dead jobs). */
/* One row per threshold (a table: clang-format would fold the rows). */
// clang-format off
#define NAQ_HEALTH_THRESHOLD_TABLE(X) \
    X(LAG_WARNING, "lag-warning", "NAQ_HEALTH_LAG_WARNING", 100, \
      "consumer lag (pending + unacked) above this is a warning") \
    X(LAG_CRITICAL, "lag-critical", "NAQ_HEALTH_LAG_CRITICAL", 1000, \
      "... critical") \
    X(DLQ_WARNING, "dlq-warning", "NAQ_HEALTH_DLQ_WARNING", 10, \
      "dead jobs (per queue) or dead events (per group) above this: warning") \
    X(DLQ_CRITICAL, "dlq-critical", "NAQ_HEALTH_DLQ_CRITICAL", 100, \
      "... critical") \
    X(DLQ_GROWTH, "dlq-growth", "NAQ_HEALTH_DLQ_GROWTH", 0, \
      "DLQ growth since the last check above this: warning") \
    X(STREAM_WARNING, "stream-warning", "NAQ_HEALTH_STREAM_WARNING", 80, \
      "stream use above this percent of its message or byte limit: warning") \
    X(STREAM_CRITICAL, "stream-critical", "NAQ_HEALTH_STREAM_CRITICAL", 95, \
      "... critical") \
    X(ROLLUP_WARNING, "rollup-warning", "NAQ_HEALTH_ROLLUP_WARNING", 10000, \
      "events not yet folded into the stats rollups above this: warning") \
    X(ROLLUP_CRITICAL, "rollup-critical", "NAQ_HEALTH_ROLLUP_CRITICAL", 100000, \
      "... critical") \
    X(MIN_WORKERS, "min-workers", "NAQ_HEALTH_MIN_WORKERS", 1, \
      "fewer live workers: warning; critical while jobs wait") \
    X(SPOOL_WARNING, "spool-warning", "NAQ_HEALTH_SPOOL_WARNING", 0, \
      "events waiting in the local logger spool above this: warning") \
    X(SPOOL_CRITICAL, "spool-critical", "NAQ_HEALTH_SPOOL_CRITICAL", 100000, \
      "... critical")
// clang-format on

typedef enum {
#define NAQ_HEALTH_THRESHOLD_ENUM(suffix, flag, env, def, help) NAQ_HEALTH_##suffix,
    NAQ_HEALTH_THRESHOLD_TABLE(NAQ_HEALTH_THRESHOLD_ENUM)
#undef NAQ_HEALTH_THRESHOLD_ENUM
        NAQ_HEALTH_THRESHOLD_COUNT
} naq_health_threshold;

typedef struct {
    uint64_t v[NAQ_HEALTH_THRESHOLD_COUNT];
} naq_health_thresholds;

/* The defaults of the table. */
void naq_health_thresholds_init(naq_health_thresholds *t);
/* Overrides from the environment variables of the table that are set.
 * NAQ_ERR_INVALID_ARG naming the variable when one is not a number. */
naq_status naq_health_thresholds_from_env(naq_health_thresholds *t);
/* Flag name ("lag-warning"), variable name, meaning; NULL out of range. */
const char *naq_health_threshold_flag(naq_health_threshold k);
const char *naq_health_threshold_env(naq_health_threshold k);
const char *naq_health_threshold_help(naq_health_threshold k);

/* One judged figure. */
typedef struct {
    char check[16];    /* "connection", "stream", "lag", "dlq", "event_dlq", "rollup", "workers",
                          "spool" */
    char subject[128]; /* what it is about: a stream, consumer, queue, group; "" for a whole */
    double value;      /* the figure (stream: percent of its limit) */
    int has_growth;    /* dlq, event_dlq: 1 when a previous check is known */
    int64_t growth;    /* change since then */
    naq_health_level level;
    char message[256]; /* one line for a person */
} naq_health_item;

typedef struct {
    naq_health_item *items; /* heap */
    size_t n;
    naq_health_level level; /* the worst item */
} naq_health_checks;

/* Dead-letter counts of the previous check, for growth (all may be 0/NULL:
 * no previous check). */
typedef struct {
    int known;
    double at; /* seconds since the epoch */
    const naq_ops_count *dlq, *event_dlq;
    size_t ndlq, nevent_dlq;
} naq_health_previous;

/* Judges the report and the figures. Pure: no I/O. Free *out with
 * naq_health_checks_free() (also after a failure). */
naq_status naq_health_evaluate(const naq_health_report *r, const naq_ops *ops,
                               const naq_health_thresholds *t, const naq_health_previous *prev,
                               naq_health_checks *out);
void naq_health_checks_free(naq_health_checks *c);

#ifdef __cplusplus
}
#endif
#endif
