/*
 * naq/ops.h - one read of the figures an operator watches: consumer lag of
 * every job queue and every consumer group, dead-letter sizes, stream use
 * against their limits, rollup lag, live workers and the local logger
 * spool. `naq health` judges them against thresholds (naq/health.h) and
 * `naq metrics` exports them to Prometheus.
 *
 * Read-only: it never creates a stream, bucket or consumer. Cost: one
 * stream-info per stream, one consumer list per stream, one registry
 * listing and a scan of the spool directory; independent of the number of
 * jobs or events.
 *
 * Thread-safety: naq_ops_read may be called from any thread with a shared
 * client.
 */
#ifndef NAQ_OPS_H
#define NAQ_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "naq/client.h"
#include "naq/registry.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    NAQ_OPS_CONSUMER_QUEUE, /* a job queue's consumer "naq_<queue>_p<priority>" on the job stream */
    NAQ_OPS_CONSUMER_GROUP, /* a durable consumer (consumer group) on the event stream */
} naq_ops_consumer_kind;

typedef struct {
    naq_ops_consumer_kind kind;
    char name[NAQ_ID_SIZE + 16]; /* consumer name */
    char queue[NAQ_ID_SIZE];     /* queues: the queue; groups: "" */
    int priority;                /* queues: 0..4; groups: -1 */
    uint64_t pending;            /* stored, not yet delivered */
    int64_t ack_pending;         /* delivered, not yet acknowledged (running jobs) */
    uint64_t lag;                /* pending + ack_pending: messages not yet done */
    int64_t redelivered;
    int exists; /* 0: jobs wait on the queue's subject but no worker made its consumer yet */
} naq_ops_consumer;

/* Which stream a naq_ops_stream describes (index into naq_ops.streams). */
typedef enum {
    NAQ_OPS_EVENTS,    /* cfg.event_stream */
    NAQ_OPS_JOBS,      /* cfg.job_stream */
    NAQ_OPS_DLQ,       /* cfg.dlq_stream */
    NAQ_OPS_EVENT_DLQ, /* NAQ_EVENT_DLQ (made at first use: absent is fine) */
    NAQ_OPS_STREAMS
} naq_ops_stream_role;

typedef struct {
    char name[NAQ_NAME_MAX];
    int present; /* the stream exists */
    uint64_t msgs, bytes;
    int64_t max_msgs, max_bytes; /* -1 = unlimited */
    double use;      /* the larger of msgs/max_msgs and bytes/max_bytes, 0..1; -1 = no limit */
    char error[256]; /* set when the stream could not be read (absent is not an error) */
} naq_ops_stream;

typedef struct {
    char name[NAQ_ID_SIZE]; /* a queue (job DLQ) or a group (event DLQ) */
    uint64_t count;
} naq_ops_count;

typedef struct {
    naq_ops_consumer
        *consumers; /* heap: queues first (by queue, priority), then groups (by name) */
    size_t nconsumers;
    naq_ops_stream streams[NAQ_OPS_STREAMS];
    naq_ops_count *dlq; /* heap: dead jobs per queue, by name */
    size_t ndlq;
    naq_ops_count *event_dlq; /* heap: dead events per group, by name */
    size_t nevent_dlq;
    uint64_t rollup_cursor, rollup_lag; /* naq_rollup_lag */
    size_t live_workers;                /* entries in the worker registry */
    size_t workers_by_status[NAQ_WORKER_STATUS_COUNT];
    uint64_t spool_pending; /* events waiting in this machine's logger spools (cfg.spool_dir) */
    size_t spool_files;     /* spool files found there */
    double read_at;         /* when this was read, seconds since the epoch */
} naq_ops;

/* Fills *out. Free with naq_ops_free() (also after a failure). A stream
 * that is missing is reported in out->streams, not as an error; an error
 * means the server could not be asked at all. */
naq_status naq_ops_read(naq_client *c, naq_ops *out);
void naq_ops_free(naq_ops *o);

#ifdef __cplusplus
}
#endif
#endif
