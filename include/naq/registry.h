/*
 * naq/registry.h - which workers exist: the live ones, from the worker
 * registry (KV bucket "naq_workers", one key per worker, refreshed by its
 * heartbeats and expiring 3 heartbeat intervals after the last one), and
 * the ones that are gone, from the last event each worker wrote to the
 * event log. docs/workers.md describes both.
 *
 * Every call is thread-safe through a shared client; the lists filled here
 * belong to the caller's thread.
 */
#ifndef NAQ_REGISTRY_H
#define NAQ_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "naq/client.h"
#include "naq/event.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The registry bucket with the default subject prefix "naq"; with another
 * prefix P it is "naq_workers_P" (characters a bucket name cannot hold
 * become '_'), so installations sharing a server keep separate registries. */
#define NAQ_WORKERS_BUCKET "naq_workers"

/* Version of the registry entry's JSON (docs/workers.md). When it changes:
 * bump it, keep reading older entries, document the change. */
#define NAQ_REGISTRY_VERSION 1

/* A worker lists at most this many of its running jobs' ids in its
 * registry entry and events; active_jobs always counts them all. */
#define NAQ_WORKER_JOB_IDS_MAX 64

/* naq_workers_seen() keeps at most this many gone workers (the most
 * recently seen); the rest are counted in naq_worker_info_list.omitted. */
#define NAQ_WORKERS_SEEN_MAX 10000

/* The one state model of a worker, the same in every view (naq workers,
 * its JSON, naq events workers, naq top):
 *   starting -> idle <-> busy -> stopping -> stopped
 * and "lost" for a worker that went without saying: it never logged
 * worker_stopped and nothing was heard from it for NAQ_WORKER_LOST_AFTER
 * heartbeat intervals (killed, crashed, its machine or network gone). A
 * worker never says "lost" of itself; readers conclude it. X(enum suffix,
 * name). */
#define NAQ_WORKER_STATUS_TABLE(X)                                                                 \
    X(STARTING, "starting")                                                                        \
    X(IDLE, "idle")                                                                                \
    X(BUSY, "busy")                                                                                \
    X(STOPPING, "stopping")                                                                        \
    X(STOPPED, "stopped")                                                                          \
    X(LOST, "lost")

/* Heartbeat intervals of silence after which a worker that did not stop
 * is lost; also the registry entry's TTL in intervals. */
#define NAQ_WORKER_LOST_AFTER 3

typedef enum {
#define NAQ_WORKER_STATUS_ENUM(suffix, name) NAQ_WORKER_STATUS_##suffix,
    NAQ_WORKER_STATUS_TABLE(NAQ_WORKER_STATUS_ENUM)
#undef NAQ_WORKER_STATUS_ENUM
        NAQ_WORKER_STATUS_COUNT
} naq_worker_status;

/* "idle", ...; "unknown" when out of range. */
const char *naq_worker_status_name(naq_worker_status s);
/* Parses a name of the table; 0 when it is none (*out unchanged). */
int naq_worker_status_parse(const char *name, naq_worker_status *out);

/* One worker. Strings marked heap are owned by the list that holds it. */
typedef struct {
    char worker_id[NAQ_ID_SIZE];
    char worker_type[NAQ_NAME_MAX]; /* "c" for libnaq workers */
    char hostname[256];
    int64_t pid;
    char **queues; /* heap, NULL-terminated (never NULL in a list) */
    int concurrency;
    int active_jobs;        /* jobs running */
    char **current_job_ids; /* heap, NULL-terminated: at most NAQ_WORKER_JOB_IDS_MAX of them */
    uint64_t processed;     /* jobs finished since the worker started */
    uint64_t failed;        /* of which failed */
    naq_worker_status status;
    double started_at;     /* seconds since the epoch, UTC */
    double last_heartbeat; /* when the worker last refreshed its entry / wrote an event */
    int64_t heartbeat_interval_ms;
    int live; /* 1: in the registry now; 0: gone, seen in the event log, and
               * then status is NAQ_WORKER_STATUS_STOPPED or _LOST */
    /* Gone workers only (live == 0): */
    double last_seen;          /* timestamp of the worker's last event */
    naq_event_type last_event; /* its type: NAQ_EVENT_WORKER_STOPPED after a clean stop,
                                * anything else means the worker died without saying */
} naq_worker_info;

/* Free with naq_worker_info_list_free(), also after a failure (the list
 * is then empty). */
typedef struct {
    naq_worker_info *items;
    size_t count;
    size_t omitted; /* gone workers left out beyond NAQ_WORKERS_SEEN_MAX */
} naq_worker_info_list;

/* Frees every item's heap fields and the array; leaves l empty. Accepts
 * NULL. */
void naq_worker_info_list_free(naq_worker_info_list *l);

/* The live workers: every entry of the registry, sorted by worker id. One
 * request lists the keys, then one get per key reads its entry (~0.2 ms
 * each). An empty list when no worker ever registered (the bucket does not
 * exist). Entries that cannot be decoded are skipped. */
naq_status naq_workers_list(naq_client *c, naq_worker_info_list *out);

/* The workers that are gone: they wrote worker events at or after
 * since_ms (milliseconds since the epoch, UTC; 0 = as far back as the
 * event stream keeps) but are not in the registry now, most recently seen
 * first, each described by its last event (live = 0, last_seen,
 * last_event; status stopped when that was worker_stopped, else lost).
 * Reads the last event of each worker subject, one consumer: the cost
 * grows with the number of worker ids in the event stream, not with their
 * heartbeats. */
naq_status naq_workers_seen(naq_client *c, int64_t since_ms, naq_worker_info_list *out);

/* Encodes w as one compact JSON object: the registry entry's fields
 * (docs/workers.md) plus "live", and "last_seen" / "last_event" for a gone
 * worker. *json is heap (free()). */
naq_status naq_worker_info_encode(const naq_worker_info *w, char **json, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
