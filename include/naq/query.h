/*
 * naq/query.h - questions about the event log: list and count events with
 * filters, delete a job's events, clean up old events, the event store's
 * health, worker activity, queue depths, and replay.
 *
 * What each read costs (docs/queries.md has the figures):
 *   - with a job filter: one literal read of the job's subject (a history);
 *   - with a time range (since): a consumer that starts at `since` and stops
 *     at `until` or at the stream's last sequence when the read began, so
 *     old events are never scanned;
 *   - otherwise: the whole stream, filtered by the Naq-* headers before any
 *     body is decoded. Totals over hours come from the rollups
 *     (naq/stats.h), never from counting here.
 *
 * Every call is thread-safe through a shared client; the structs filled
 * here belong to the caller's thread.
 */
#ifndef NAQ_QUERY_H
#define NAQ_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "naq/client.h"
#include "naq/event.h"
#include "naq/registry.h"
#include "naq/status.h"
#include "naq/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An event stored more than this many seconds after its timestamp (or
 * before it, by clock skew between hosts) may be missed by a time-range
 * read: the read is positioned by the time the server stored each event,
 * and filtered by the event's own timestamp. Events re-sent from a logger's
 * spool after an outage are the usual case; a read without a time range
 * finds them. */
#define NAQ_QUERY_SKEW_S 5.0

/* The filters shared by listing, counting and replay. All given fields must
 * match. Strings are borrowed for the call. Initialise with
 * naq_query_init(). */
typedef struct {
    naq_event_filter filter; /* job, type, queue, worker: NULL or "" = any */
    const char *const *tags; /* NULL-terminated "key=value" list: each tag must be on the event */
    double since;            /* event timestamp >= since (seconds since the epoch); 0 = no bound */
    double until;            /* event timestamp <= until; 0 = no bound */
    uint64_t from_seq;       /* start at this stream sequence (wins over since for positioning) */
    uint64_t until_seq; /* stop after this stream sequence; 0 = the last one when the read began */
    size_t offset;      /* skip this many matching events (oldest first) */
    size_t limit;       /* at most this many; 0 = all */
    const volatile int *stop; /* optional: a long read stops (NAQ_OK) when *stop becomes non-zero */
} naq_query;

/* Zero filters, no range, no limit. */
void naq_query_init(naq_query *q);

/* NAQ_OK when every filter is well formed (ids, type name, tags, ranges);
 * else NAQ_ERR_INVALID_ARG saying which. Every call below checks this
 * first; a CLI checks it before connecting. */
naq_status naq_query_validate(const naq_query *q);

/* Parses a point in time for --since / --until: a duration before now
 * ("90s", "1h", "7d", see naq_parse_duration_ms), an ISO-8601 time
 * ("2026-01-31T12:00:00Z"; the fraction is optional, and so is the Z: a
 * time without an offset is UTC; "2026-01-31T13:00:00+01:00" or "+0100" is
 * local time at that offset) or plain seconds since the epoch with a
 * leading '@' ("@1769860800.5"). */
naq_status naq_parse_time(const char *text, double now, double *out);

/* Matching events in stream order, oldest first, after skipping q->offset
 * and at most q->limit. *out is heap memory: free it with
 * naq_event_list_free() (also after a failure: it is then empty).
 * *more (may be NULL) is set when more events match beyond the limit.
 * NAQ_ERR_INVALID_ARG for a malformed filter (unknown type, bad id, a tag
 * without '='); undecodable events are skipped. */
naq_status naq_events_list(naq_client *c, const naq_query *q, naq_event_list *out, int *more);

/* The number of matching events (offset and limit are ignored): the
 * number naq_events_list() would return without them. Two cases cost one
 * stream-info request: no filter at all, and a job filter alone (these
 * also count messages that do not decode, which a listing skips);
 * anything else reads the range like a listing. */
naq_status naq_events_count(naq_client *c, const naq_query *q, uint64_t *out);

/* A job's events in stored order, skipping `offset` and at most `limit`
 * (0 = all): naq_job_history() sliced. NAQ_ERR_NOT_FOUND as there. */
naq_status naq_job_events(naq_client *c, const char *job_id, size_t limit, size_t offset,
                          naq_event_list *out);

/* Events of one type (wire name), oldest first, with limit and offset:
 * naq_events_list() with only a type filter. It reads the whole stream
 * until it has found enough: give q->since through naq_events_list() on a
 * large stream. */
naq_status naq_events_by_type(naq_client *c, const char *type, size_t limit, size_t offset,
                              naq_event_list *out);

/* Deletes every event of one job (a purge of its literal subject: exactly
 * its events and nothing else). *deleted (may be NULL) receives how many
 * there were. NAQ_OK with *deleted == 0 when the job has none. Rollups
 * already folded keep counting them. */
naq_status naq_job_events_delete(naq_client *c, const char *job_id, uint64_t *deleted);

/* Deletes every event the server stored more than older_than_ms ago (the
 * stream's own max age does this automatically; this is for doing it
 * sooner). The cut is by stored time, a prefix of the stream: one consumer
 * finds the first sequence stored at or after the cutoff and the stream is
 * purged up to it. *deleted (may be NULL) receives how many were removed
 * (exact unless something else deletes events at the same moment),
 * *first_kept (may be NULL) the sequence the stream now starts at. */
naq_status naq_events_cleanup(naq_client *c, int64_t older_than_ms, uint64_t *deleted,
                              uint64_t *first_kept);

/* ---- health of the event store ---- */

typedef struct {
    char name[NAQ_NAME_MAX];
    uint64_t num_pending; /* stored, not yet delivered to it */
    int64_t ack_pending;  /* delivered, not yet acknowledged */
    uint64_t lag;         /* num_pending + ack_pending */
    int64_t redelivered;
    int64_t waiting;        /* pull requests waiting */
    uint64_t delivered_seq; /* last stream sequence delivered */
} naq_consumer_lag;

typedef struct {
    char stream[NAQ_NAME_MAX];
    uint64_t msgs, bytes;
    uint64_t first_seq, last_seq;
    double first_time, last_time; /* stored times, seconds since the epoch; 0 when empty */
    int64_t consumers;            /* all, ephemeral ones (live readers) included */
    naq_consumer_lag *durables;   /* heap: each durable consumer, by name */
    size_t ndurables;
    uint64_t rollup_cursor; /* highest sequence folded into the stats rollups */
    uint64_t rollup_lag;    /* events stored after it (naq/stats.h) */
} naq_event_store_health;

/* Fills *out (free with naq_event_store_health_free(), also after a
 * failure). One stream-info, one consumer-list and one KV request. */
naq_status naq_events_health(naq_client *c, naq_event_store_health *out);
void naq_event_store_health_free(naq_event_store_health *h);

/* ---- queue depths (the job stream's work-queue consumers) ---- */

typedef struct {
    char queue[NAQ_ID_SIZE];
    uint64_t pending;  /* jobs waiting, all priorities */
    int64_t in_flight; /* delivered to a worker, not yet acknowledged */
    uint64_t by_priority[5];
} naq_queue_depth;

/* One entry per queue that has workers' consumers ("naq_<queue>_p<prio>"),
 * sorted by name. *out is heap memory (free()). */
naq_status naq_queue_depths(naq_client *c, naq_queue_depth **out, size_t *n);

/* ---- worker activity from recent events ---- */

/* A worker as its events show it. Its status is the registry's model
 * (naq_worker_status, naq/registry.h): the status its last worker event
 * carried (idle, busy, stopping, stopped), busy or idle by its job events
 * in between, and lost when it did not stop and wrote nothing for
 * NAQ_WORKER_LOST_AFTER heartbeat intervals (its own, from its events;
 * the client's NAQ_HEARTBEAT_INTERVAL when they did not say) before the
 * time of the read. */
typedef struct {
    char worker_id[NAQ_ID_SIZE];
    char queue[NAQ_ID_SIZE]; /* queue of its latest job event */
    naq_worker_status status;
    char current_job[NAQ_ID_SIZE]; /* the newest job in progress, "" when none */
    int running;                   /* jobs in progress */
    uint64_t processed;            /* completed + failed seen */
    uint64_t failed;
    double first_seen, last_seen; /* event timestamps */
    naq_event_type last_type;
    int64_t heartbeat_interval_ms; /* from its worker events; 0 = they did not say */
} naq_worker_activity;

/* Workers that wrote events (worker_* events, or job events carrying their
 * worker_id) with a timestamp at or after `since`, by worker id, with their
 * state from those events and counts within the window. *out is heap
 * memory (free()). Reads only the window. */
naq_status naq_events_workers(naq_client *c, double since, naq_worker_activity **out, size_t *n);

/* ---- replay ---- */

typedef enum {
    NAQ_REPLAY_FAST,     /* as fast as the handler takes them */
    NAQ_REPLAY_ORIGINAL, /* sleep the recorded gap between events, divided by speed */
} naq_replay_timing;

typedef struct {
    naq_query query; /* where to start (from_seq, or since), filters, until, limit */
    naq_replay_timing timing;
    double speed;     /* > 0: 2 = twice as fast as recorded (default 1) */
    double max_gap_s; /* > 0: never sleep longer than this between two events */
} naq_replay_opts;

/* NAQ_REPLAY_FAST, speed 1, no gap cap, naq_query_init'ed. */
void naq_replay_opts_init(naq_replay_opts *o);

/* Delivers the matching events to fn on the calling thread, in stream
 * order, from opts->query.from_seq (or since, or the start of the stream)
 * up to until / until_seq / the stream's last sequence when the replay
 * began. With NAQ_REPLAY_ORIGINAL the gap between two delivered events'
 * timestamps, divided by speed, is slept before the second (negative gaps,
 * from clock skew, are not slept). fn returning non-zero, or *stop, ends
 * the replay with NAQ_OK. *delivered (may be NULL) counts the events given
 * to fn. If the options are invalid fn never runs. */
naq_status naq_events_replay(naq_client *c, const naq_replay_opts *o, naq_event_fn fn, void *user,
                             uint64_t *delivered);

#ifdef __cplusplus
}
#endif
#endif
