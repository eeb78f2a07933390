/*
 * events.h - what the event log's modules (src/events/) share, private to
 * them. What other folders use of the event log is in internal.h.
 */
#ifndef NAQ_SRC_EVENTS_H
#define NAQ_SRC_EVENTS_H

#include "core/crypt.h"
#include "internal.h"

#include <stdatomic.h>

#include "naq/processor.h"
#include "naq/query.h"
#include "naq/stats.h"

/* ---- history.c: reading single messages of the event stream ---- */

/* One direct get: the last message on `last_subject`, or else the first
 * message at or after `seq` on `next_subject`. NAQ_ERR_NOT_FOUND (without a
 * message: the caller words it) when there is none. */
naq_status naq__event_direct_get(naq_client *c, const char *next_subject, uint64_t seq,
                                 const char *last_subject, natsMsg **out);
/* Decodes m (stored at seq) into out, its sealed payload opened with k
 * (crypt.h), with nats_subject and nats_sequence set. */
naq_status naq__event_decode_msg(const naq__crypt *k, natsMsg *m, uint64_t seq, naq_event *out);
/* "<prefix>.jobs.events.<job_id>" after validating the id. */
naq_status naq__job_events_subject(naq_client *c, const char *job_id, char *buf, size_t cap);
/* Reads the events on the literal `subject` up to its last one at the time
 * of the call, whose sequence goes to *last_seq (0 when the subject has
 * none). *out may be empty with *last_seq > 0 when events were deleted
 * meanwhile or skipped; skip_bad leaves out what does not decode instead
 * of failing. */
naq_status naq__subject_history(naq_client *c, const char *subject, int skip_bad,
                                naq_event_list *out, uint64_t *last_seq);
/* The header of an event the logger published late (logger.c): it may be
 * stored after events that happened after it. */
#define NAQ__LATE_HEADER "Naq-Late"
/* Puts the n events (in stored order) in the order they happened: events
 * not late keep their stored order, and each late one (its index in
 * late_at, n_late of them, ascending) goes before the first event whose
 * timestamp is later than its own. Out of memory leaves the stored order. */
void naq__history_place_late(naq_event *items, size_t n, const size_t *late_at, size_t n_late);

/* ---- event.c, live.c ---- */

/* event.c: naq_event_encode into buf when it fits (then *json == buf),
 * else into heap memory the caller frees (*json != buf). */
naq_status naq__event_encode_buf(const naq_event *e, char *buf, size_t cap, char **json,
                                 size_t *len);

/* live.c: NAQ_ERR_INVALID_ARG unless f's job id, type, queue and worker
 * (those set) are valid. */
naq_status naq__event_filter_validate(const naq_event_filter *f);
/* live.c: 0 when the Naq-* headers show that m cannot pass f (so it need
 * not be decoded); 1 when it may (the decoded event decides). */
int naq__headers_may_match(natsMsg *m, const naq_event_filter *f);

/* ---- query.c, reader.c ---- */

/* After a quiet wait: is anything left to deliver up to sequence `end`?
 * *done = 1 when not. */
naq_status naq__reader_exhausted(naq__reader *r, uint64_t end, int *done);
/* Called per matching, decoded event (valid during the call) with its
 * stored time; non-zero stops the read. */
typedef int (*naq__query_fn)(const naq_event *e, int64_t stored_ns, void *ud);
/* Reads the range of q (positioned by from_seq / since, ended by until_seq
 * / until / the last sequence when the read began) and calls fn for each
 * matching event in stream order. offset and limit are NOT applied.
 * *stopped (may be NULL) tells whether fn or *q->stop ended it. */
naq_status naq__query_read(naq_client *c, const naq_query *q, naq__query_fn fn, void *ud,
                           int *stopped);

/* ---- activity.c ---- */

/* Worker activity from events, in stream order (naq_events_workers; naq_live uses it
 * too). Each worker keeps the ids of its jobs in progress (at most
 * NAQ__WORKER_JOBS), so a job's dequeued and started events count once. At
 * most `max` workers are kept: the least recently seen is dropped. */
#define NAQ__WORKER_JOBS 32
typedef struct {
    naq_worker_activity a;
    char (*jobs)[NAQ_ID_SIZE]; /* heap, NAQ__WORKER_JOBS, NULL until needed */
} naq__worker_entry;
typedef struct {
    naq__worker_entry *v;
    size_t n, cap;
    size_t max; /* 0 = no bound */
} naq__worker_table;
void naq__worker_table_add(naq__worker_table *t, const naq_event *e);
void naq__worker_table_free(naq__worker_table *t);
/* Copies the activities out, sorted by worker id, keeping those whose
 * latest queue is `queue` (NULL = all); a worker silent for
 * NAQ_WORKER_LOST_AFTER heartbeat intervals before `now` (its own, else
 * default_interval_ms) that did not stop is NAQ_WORKER_STATUS_LOST. *out
 * is heap (free()). */
naq_status naq__worker_table_export(const naq__worker_table *t, const char *queue, double now,
                                    int64_t default_interval_ms, naq_worker_activity **out,
                                    size_t *n);

/* ---- processors: processor.c (handlers, pool, watchdog), group.c
 * (consumer groups), event_dlq.c (the event dead-letter stream),
 * handlers.c (handlers and plugins) ---- */

/* One member's side of a consumer group (group.c). */
typedef struct naq__group naq__group;

/* What a group member needs; strings are borrowed for the call. */
typedef struct {
    const char *name;
    const char *filter_subject; /* "" = the whole event stream */
    const char *identity;       /* canonical header filters; every member must agree */
    naq_start start;
    uint64_t start_sequence;
    double start_time;
    int64_t ack_wait_ms;
    int max_ack_pending;
    int max_deliveries;
    const int64_t *backoff_ms;
    int backoff_len;
    int ack_sync;
} naq__group_cfg;

/* Where a message came from, read once before it is handled. */
typedef struct {
    int deliveries;                         /* 1 for the first */
    uint64_t stream_seq;                    /* of this message in its stream */
    int replay;                             /* from the group's replay subject (NAQ_EVENT_DLQ) */
    char original_subject[2 * NAQ_ID_SIZE]; /* as naq_event.nats_subject */
    uint64_t original_seq;                  /* in the event stream */
} naq__group_msg;

/* NAQ_ERR_INVALID_ARG unless name can be a group name. */
naq_status naq__group_validate_name(const char *name);
/* Ensures the DLQ stream and the group's consumers, binds to them. */
naq_status naq__group_join(naq_client *c, const naq__group_cfg *cfg, naq__group **out);
/* Unbinds (the consumers stay for the other members). Accepts NULL. */
void naq__group_leave(naq__group *g);
/* Up to max messages (caller owns them) within about timeout_ms; *n = 0
 * on timeout. Replays are polled between fetches. */
naq_status naq__group_fetch(naq__group *g, natsMsg **msgs, int max, int64_t timeout_ms, int *n);
/* Fills gm from m's JetStream metadata and headers. Works for any
 * JetStream-delivered message (live ones too; then replay is 0). */
void naq__group_msg_info(const naq__group *g, natsMsg *m, naq__group_msg *gm);
/* Acks a handled message, or naks it with the backoff delay, or (at
 * max_deliveries, or when final) dead-letters and terminates it. Fills
 * o->kind, o->retry_in_ms. Not thread-safe for one message. */
void naq__group_settle(naq__group *g, natsMsg *m, const naq__group_msg *gm, int ok, int final,
                       const char *reason, naq_outcome *o);
/* Nak without delay: another member takes it now. */
void naq__group_release(natsMsg *m);
/* In-progress ack: the member still holds it. */
void naq__group_keepalive(natsMsg *m);
/* Ack without handling (filtered out); replays are also deleted. */
void naq__group_skip(naq__group *g, natsMsg *m);

/* Creates NAQ_EVENT_DLQ when missing, or adds this prefix's subjects. */
naq_status naq__event_dlq_ensure(naq_client *c);
/* "<prefix>.eventdlq.<group>" or, with replay, "<...>.replay". */
naq_status naq__event_dlq_subject(const naq_client *c, const char *group, int replay, char *buf,
                                  size_t cap);
/* Stores one dead event (payload = the event's JSON as stored) and waits
 * for the server's ack. msg_id makes a re-sent entry a no-op. */
naq_status naq__event_dlq_put(naq_client *c, const char *group, const char *reason, int deliveries,
                              const char *original_subject, uint64_t original_seq,
                              natsMsg *original, const char *msg_id);

/* handlers.c: a processor's handlers and plugins. An entry taken with
 * naq__handlers_take stays valid until naq__handlers_release. */
typedef struct naq__handlers naq__handlers;
typedef struct naq__handler naq__handler;

naq_status naq__handlers_create(naq__handlers **out);
/* Frees every entry, calling plugins' on_stop. No entry may be taken. Accepts NULL. */
void naq__handlers_destroy(naq__handlers *r);
/* A handler for one type, or (global) for every event. */
naq_status naq__handlers_add(naq__handlers *r, int global, naq_event_type type,
                             naq_event_handler_fn fn, void *user, naq_handler_id *id);
naq_status naq__handlers_add_plugin(naq__handlers *r, const naq_plugin *plugin, naq_handler_id *id);
/* Unlinks the entry; with wait, returns once no call of it runs (and frees
 * it), else the last release frees it. */
naq_status naq__handlers_remove(naq__handlers *r, naq_handler_id id, int wait);
/* Puts the entries for an event of `type` into *snap (grown as needed; the
 * caller frees it), in registration order, each referenced. Returns how many. */
size_t naq__handlers_take(naq__handlers *r, naq_event_type type, naq__handler ***snap, size_t *cap);
void naq__handlers_release(naq__handlers *r, naq__handler **snap, size_t n);
int naq__handler_call(const naq__handler *h, const naq_event *e, char *reason);
/* The plugin's name, or NULL for a handler. */
const char *naq__handler_plugin(const naq__handler *h);
/* "plugin 'audit'" or "handler 3", for messages. */
void naq__handler_label(const naq__handler *h, char *buf, size_t cap);

/* ---- rollups: rollup_codec.c (the format), rollup.c (the maintainer and
 * its bucket), read by stats.c ---- */

/* Duration histogram: log-scale buckets with relative error
 * NAQ_STATS_PRECISION (the DDSketch mapping, gamma = 1.02 / 0.98).
 * Bucket 0 holds durations <= NAQ__HIST_MIN_MS. */
#define NAQ__HIST_BUCKETS 700
#define NAQ__HIST_MIN_MS 0.001
int naq__hist_index(double ms);
double naq__hist_value(int index);

typedef struct {
    char name[2 * NAQ_NAME_MAX];
    uint64_t count;
} naq__named_count;

/* One group of a rollup: the total, a queue or a worker. */
typedef struct {
    char name[NAQ_ID_SIZE];
    uint64_t types[NAQ_EVENT_TYPE_COUNT];
    uint64_t dur_n;
    double dur_sum;
    uint64_t *hist;           /* NAQ__HIST_BUCKETS counts; NULL while dur_n == 0 */
    naq__named_count *errors; /* heap; at most NAQ__ROLLUP_MAX_ERRORS + 1 ("(other)") */
    size_t nerrors;
} naq__rollup_group;

/* A name -> group table (open addressing). */
typedef struct {
    naq__rollup_group **v;
    size_t n, cap;
    uint32_t *slots; /* index + 1; 0 = empty */
    size_t nslots;
} naq__group_table;

#define NAQ__ROLLUP_MAX_QUEUES 1000
#define NAQ__ROLLUP_MAX_WORKERS 2000
#define NAQ__ROLLUP_MAX_ERRORS 64
#define NAQ__ROLLUP_OTHER "(other)"

/* The rollup of one hour (or, summed, of a window). */
typedef struct {
    int64_t hour;      /* unix hour: floor(timestamp / 3600) */
    uint64_t last_seq; /* every event of this hour with a sequence <= last_seq is folded */
    double first_ts;   /* timestamp of the earliest event folded in (0 = none yet) */
    naq__rollup_group total;
    naq__group_table queues, workers;
} naq__rollup;

/* What the maintainer keeps of one event to fold it. */
typedef struct {
    uint64_t seq;
    int64_t hour;
    naq_event_type type;
    double duration_ms; /* NAQ_UNSET when absent */
    char queue[NAQ_ID_SIZE];
    char worker[NAQ_ID_SIZE];
    char error_type[2 * NAQ_NAME_MAX];
    double ts; /* 0 when unknown */
} naq__rollup_rec;

void naq__rollup_init(naq__rollup *r, int64_t hour);
void naq__rollup_free(naq__rollup *r);
naq_status naq__rollup_add(naq__rollup *r, const naq__rollup_rec *e);
/* JSON of docs/queries.md. *json is heap (free()). */
naq_status naq__rollup_encode(const naq__rollup *r, char **json, size_t *len);
/* Adds the counts of the JSON into r (initialised; groups by name,
 * last_seq the larger): decoding several hours into one rollup sums them. */
naq_status naq__rollup_decode(const char *json, size_t len, naq__rollup *r);

/* Reads the cursor key: *seq (0 when missing) and *rev (0 when missing). */
naq_status naq__rollup_cursor_get(kvStore *kv, uint64_t *seq, uint64_t *rev);

/* Events stored after sequence `cursor` (naq_rollup_lag without the
 * cursor read): one stream-info request. */
naq_status naq__rollup_lag_after(naq_client *c, uint64_t cursor, uint64_t *lag);

/* Test seam: when non-zero, naq_rollup_step() stops right after writing the
 * hour keys, before moving the cursor, and returns NAQ_ERR_CLOSED: what a
 * maintainer killed at that instant leaves behind. */
extern atomic_int naq__rollup_crash_before_cursor;

#endif /* NAQ_SRC_EVENTS_H */
