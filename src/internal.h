/*
 * internal.h - declarations shared by libnaq's modules and private to them.
 * Internal non-static functions are named naq__<module>_<verb>.
 */
#ifndef NAQ_INTERNAL_H
#define NAQ_INTERNAL_H

#include "naq/naq.h"

#include <nats/nats.h>

/* Record a failure for naq_last_error() and return s. printf-style. */
naq_status naq__fail(naq_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, appending nats.c's last error text for ns. */
naq_status naq__fail_nats(naq_status s, natsStatus ns, int js_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void naq__clear_error(void);
/* Hands a message to the naq_log_set_handler handler (log.c); never prints.
 * printf-style; a trailing newline is dropped. */
void naq__log(naq_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdint.h>

/* ---- crypt.c: secret files ---- */

/* NAQ_OK when path is a regular file that no other user may open: a key
 * others can read protects nothing. fd >= 0 checks the open descriptor (so
 * the file checked is the file read); fd < 0 stats path. Otherwise
 * NAQ_ERR_INVALID_ARG (NAQ_ERR_IO when it cannot be stat'ed) with a
 * message naming `what` (a flag or variable, "--tls-key") and path, and
 * the chmod that fixes it. The one check of every secret naq reads: the
 * encryption key file, and `naq server`'s TLS key, auth file and store
 * key. */
naq_status naq__check_private_file(const char *what, const char *path, int fd);

/* ---- client.c ---- */

typedef struct naq__logger naq__logger;

struct naq_client {
    naq_config cfg;
    natsConnection *nc; /* job queue server */
    jsCtx *js;
    natsConnection *enc;            /* event store server; == nc when the URLs agree */
    jsCtx *ejs;                     /* == js when enc == nc */
    naq__logger *logger;            /* NULL when logging is disabled */
    jsCtx *ajs;                     /* naq_enqueue_async's context (enqueue.c) */
    struct naq__msgmap *async_jobs; /* its published message -> the job */
    struct naq__crypt *crypt;       /* payload keys (crypt.h); NULL = no encryption */
};

/* A connection to the job server (events = 0) or to the event server
 * (events = 1: cfg->event_url, or cfg->url when that is empty), TLS and
 * credentials from cfg, that creates no stream and starts no logger: for
 * backup and restore, which must find a server as it is. cfg is
 * validated first. *nc, *js: the caller destroys both (js first). */
naq_status naq__connect_bare(const naq_config *cfg, int events, natsConnection **nc, jsCtx **js);

/* A second connection to the job server whose publishes are sent at once
 * (the worker's pulls and acks). *out: natsConnection_Destroy it. */
naq_status naq__client_open_latency_conn(naq_client *c, natsConnection **out);

/* enqueue.c: the client's naq_enqueue_async machinery; destroy flushes
 * and reports what is still open. */
naq_status naq__enqueue_async_init(naq_client *c);
void naq__enqueue_async_destroy(naq_client *c);

/* Formats "<prefix>.<rest...>" into buf. NAQ_ERR_INVALID_ARG if it does not fit. */
naq_status naq__subject(const naq_client *c, char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "$XDG_DATA_HOME/naq/<leaf>" (or ~/.local/share/naq/<leaf>). */
void naq__default_data_dir(char *buf, size_t cap, const char *leaf);

/* Seconds since the epoch, UTC, as the events carry it. */
double naq__now(void);
/* Milliseconds of CLOCK_MONOTONIC, for timeouts and durations. */
int64_t naq__mono_ms(void);
int64_t naq__mono_us(void);
/* Sleeps about that long (clock.c). */
void naq__sleep_ms(int64_t ms);
void naq__sleep_us(int64_t us);
/* Sets o's servers from a NATS URL or a comma-separated list of them (a
 * cluster's nodes): natsOptions_SetURL takes one URL only. */
natsStatus naq__nats_set_urls(natsOptions *o, const char *url);

/* replicas.c: whether a stream is one of naq's (the four main streams,
 * NAQ_DELAYED, NAQ_EVENT_DLQ, and every KV bucket, whose names all start
 * with "naq_"): the one list that replicas and backups go by. */
int naq__stream_is_ours(const naq_config *cfg, const char *name);
/* Moves every naq stream and KV bucket on js whose replica
 * count differs from cfg.replicas to it (at connect). */
naq_status naq__replicas_align(naq_client *c, jsCtx *js);
/* Fails with the server's reason for refusing `what`, and what to do about
 * NAQ_REPLICAS when the count is the cause. */
/* Updates the stream to sc; more than one replica only on a cluster. On
 * failure, says what to do about NAQ_REPLICAS. */
naq_status naq__replicas_update(jsCtx *js, const naq_config *cfg, jsStreamConfig *sc,
                                const char *what);
naq_status naq__replicas_fail(const naq_config *cfg, natsStatus ns, int js_code, const char *what);

/* event.c: naq_event_encode into buf when it fits (then *json == buf),
 * else into heap memory the caller frees (*json != buf). */
naq_status naq__event_encode_buf(const naq_event *e, char *buf, size_t cap, char **json,
                                 size_t *len);

/* store.c: 0 when the Naq-* headers show that m cannot pass f (so it need
 * not be decoded); 1 when it may (the decoded event decides). */
int naq__headers_may_match(natsMsg *m, const naq_event_filter *f);

/* ---- logger.c: the non-blocking event logger (see logger.c) ---- */

naq_status naq__logger_create(naq_client *c, naq__logger **out);
/* Stops the background thread after publishing or spooling what is
 * buffered (bounded by a few seconds). Accepts NULL. */
void naq__logger_destroy(naq__logger *l);
naq_status naq__logger_log(naq__logger *l, const naq_event *e);
/* Called once when a confirmed event is settled: ok = 1 when the server
 * acknowledged it, 0 when it could only be spooled or was dropped (then
 * it is not confirmed, though a spooled event is still sent later). Runs
 * on a nats.c or logger thread: it must not block. */
typedef void (*naq__confirm_fn)(void *ud, int ok);
/* naq__logger_log, then confirm(ud, ok) exactly once, also when this call
 * fails (ok = 0). */
naq_status naq__logger_log_confirmed(naq__logger *l, const naq_event *e, naq__confirm_fn confirm,
                                     void *ud);
void naq__logger_stats(naq__logger *l, naq_logger_stats *out);
/* naq_client_log with a confirmation (naq__logger_log_confirmed); with
 * logging off, confirm(ud, 1) at once. */
naq_status naq__client_log_confirmed(naq_client *c, const naq_event *e, naq__confirm_fn confirm,
                                     void *ud);
naq_status naq__logger_flush(naq__logger *l, int64_t timeout_ms);

/* ---- job.c / worker.c ---- */

struct json_t; /* jansson's, for modules that build event details */

/* NAQ_OK when name may be a job's function: 1..NAQ_ID_MAX printable ASCII
 * characters without white space ('.' is allowed: it never becomes a
 * subject token). Otherwise NAQ_ERR_INVALID_ARG saying what is wrong. */
naq_status naq__function_validate(const char *name);

/* The "enqueued" event of a job has a fixed event id (its Nats-Msg-Id),
 * "enq-<job_id>" (a hash of the id when that is too long), so the copy a
 * worker logs before "dequeued" and the enqueuer's copy are stored once,
 * whichever arrives first: the job's history then always starts with
 * "enqueued", even when the enqueuer's logger is slower than the worker. */
void naq__enqueued_event_id(const char *job_id, char out[NAQ_ID_SIZE]);
/* Fills e (initialised here; naq_event_clear it) with j's "enqueued". */
naq_status naq__enqueued_event(const naq_job *j, naq_event *e);

/* What built-in handlers (exec_handler.c) need from a job context beyond
 * the public calls. The context belongs to the handler's thread. */

/* The flag naq_job_ctx_cancelled() reads, for naq__exec_opts.cancel. */
const volatile int *naq__job_ctx_cancel_flag(naq_job_ctx *ctx);
/* Non-zero once the job has run past its timeout_ms. */
int naq__job_ctx_timed_out(const naq_job_ctx *ctx);
/* Resource usage of the run, carried by the completed / failed event
 * (NAQ_UNSET for unknown). Overrides what the worker measured. */
void naq__job_ctx_set_usage(naq_job_ctx *ctx, double cpu_time_ms, double memory_mb);
/* Sets details[key] of the outcome event; takes the reference to value. */
naq_status naq__job_ctx_set_detail(naq_job_ctx *ctx, const char *key, struct json_t *value);

/* exec_handler.c: the built-in "exec" handler (NAQ_EXEC_FUNCTION). */
naq_status naq__exec_handler(naq_job_ctx *ctx, const naq_job *job, void *user);
/* NAQ_OK when args (the JSON of a job's args) can be run by the exec
 * handler: {"argv": ["cmd", ...], "env": {...}, "cwd": "..."} or a bare
 * argv array, with a non-empty command. Else NAQ_ERR_INVALID_ARG naming
 * the problem and the shape to send. naq_job_opts_validate calls it for
 * every exec job, so a job the handler would refuse is never queued. */
naq_status naq__exec_args_check(const struct json_t *args);

/* ---- scheduler ---- */
/* schedule.c (schedules in KV), delay.c (due-time index), lease.c (the
 * leader lease, see lease.h), scheduler.c (the runner, and the heap both
 * the runner and the due index use). */

#include <stdatomic.h>

#include "naq/schedule.h"

#define NAQ__SCHEDULES_BUCKET "naq_schedules"
#define NAQ__LOCK_BUCKET "naq_scheduler_lock"
#define NAQ__DELAYED_STREAM "NAQ_DELAYED"
/* delay.c: creates the delayed-jobs stream when missing (at connect). */
naq_status naq__delayed_stream_ensure(naq_client *c, jsCtx *js);
/* JetStream API error: "wrong last sequence" (a compare-and-set lost). */
#define NAQ__JS_WRONG_LAST_SEQUENCE 10071

/* Counters of what the leader asks the server (naq_scheduler_stats). */
typedef struct {
    _Atomic uint64_t kv_reads, kv_writes, watch_entries, index_reads, index_feed, released;
} naq__sched_counters;

/* Binds the schedules bucket through js, creating it when missing. */
naq_status naq__schedules_kv(naq_client *c, jsCtx *js, kvStore **out);
/* Decodes a KV entry (a put) into out, with its revision. */
naq_status naq__schedule_from_entry(kvEntry *e, naq_schedule *out);
/* Binds KV bucket kc->Bucket into *out (the caller destroys it), creating
 * it with kc when it is missing. A bucket another process made meanwhile
 * is used as it is; a request the cluster did not answer in time (it is
 * electing a leader, or busy) is tried again, three times in all. */
natsStatus naq__kv_bind(jsCtx *js, kvConfig *kc, kvStore **out);
/* Compare-and-set write of key in bucket: stored only if the key's last
 * revision is `last`. NAQ_ERR_EXISTS when it is not (someone wrote in
 * between), NAQ_ERR_NATS / NAQ_ERR_TIMEOUT otherwise. *rev (may be NULL)
 * receives the new revision. del != 0 writes a delete marker instead. */
naq_status naq__kv_cas(jsCtx *js, const char *bucket, const char *key, const void *data, size_t len,
                       uint64_t last, int del, uint64_t *rev);
/* A deterministic event id "<tag>-<key>", or "<tag>-<32 hex digits of a
 * hash of key>" when that is too long: a re-sent event gets the same id, so
 * the event stream (duplicate window) stores it once. */
void naq__derived_id(const char *tag, const char *key, char out[NAQ_ID_SIZE]);
/* Logs a scheduler / job / system event about a schedule or scheduler.
 * Takes the reference to details (may be NULL). Strings may be NULL. */
void naq__schedule_event(naq_client *c, naq_event_type t, const char *schedule_id,
                         const char *job_id, const char *queue, const char *event_id,
                         const char *message, struct json_t *details);
/* The job-level echo of a schedule's transition (schedule_paused,
 * schedule_resumed, schedule_deactivated with a reason): logged on the
 * subject of the job the schedule makes next, or, when it makes no more,
 * the one it made last (schedule.c); nothing when it never ran and never
 * will. */
void naq__schedule_job_event(naq_client *c, naq_event_type t, const naq_schedule *s,
                             const char *reason);

/* scheduler.c: a binary min-heap of (key, item). When `moved` is set it is
 * told every item's new index, so an item can be re-keyed or removed. */
typedef struct {
    int64_t key;
    void *item;
} naq__heap_node;
typedef struct {
    naq__heap_node *v;
    size_t n, cap;
    void (*moved)(void *item, size_t index);
} naq__heap;
#define NAQ__HEAP_NONE ((size_t)-1)
naq_status naq__heap_push(naq__heap *h, int64_t key, void *item);
/* Removes and returns the smallest node; h->n must be > 0. */
naq__heap_node naq__heap_pop(naq__heap *h);
void naq__heap_remove(naq__heap *h, size_t index);
void naq__heap_rekey(naq__heap *h, size_t index, int64_t key);
void naq__heap_free(naq__heap *h);

/* delay.c: the due-time index as the leader reads it. */
typedef struct naq__due_index naq__due_index;
/* Creates the NAQ_DELAYED stream when missing and starts following its
 * arrivals (headers only, from the first stored message). The index has
 * its own JetStream context (its async publishes report to it). */
naq_status naq__due_index_open(naq_client *c, naq__sched_counters *ctr, naq__due_index **out);
void naq__due_index_close(naq__due_index *d);
/* Takes in new arrivals, then releases the jobs of every bucket due at
 * now_ms into their queues (at most a bounded number per call), checking
 * still_leader(ud) before each bucket. NAQ_ERR_CLOSED means the arrival
 * feed broke and the index must be rebuilt; other errors are retried by
 * the next call. */
naq_status naq__due_index_tick(naq__due_index *d, int64_t now_ms, int (*still_leader)(void *),
                               void *ud);
/* Buckets the index knows of (a bucket counts once per arrival). */
size_t naq__due_index_pending(const naq__due_index *d);

/* ---- processor ---- */
/* processor.c (handlers, pool, watchdog), group.c (consumer groups),
 * event_dlq.c (the event dead-letter stream), job_watch.c (one job). */

#include "naq/processor.h"

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

/* ---- query/stats ---- */
/* query.c (reading ranges of the event stream, listing, counting, deleting,
 * health, workers), replay.c, rollup.c (the rollup codec and maintainer),
 * stats.c (stats over rollups, the live window). */
#ifndef NAQ_INTERNAL_QUERY_STATS
#define NAQ_INTERNAL_QUERY_STATS

#include <stdatomic.h>

#include "naq/query.h"
#include "naq/stats.h"

/* A forward read of the event stream through an ordered consumer. */
typedef struct naq__reader naq__reader;

/* Where a read starts: at start_seq when > 0, else at the first event
 * stored at or after start_time (seconds) when > 0, else at the start.
 * subject NULL = the whole stream, else one literal subject. */
naq_status naq__reader_open(naq_client *c, const char *subject, uint64_t start_seq,
                            double start_time, naq__reader **out);
/* The next message within timeout_ms. NAQ_OK with *m (the caller destroys
 * it), *seq, *stored_ns (server time) and *pending (messages after it now);
 * NAQ_ERR_TIMEOUT when none came (then *pending holds the consumer's count
 * of messages not yet delivered, so 0 means "nothing more stored"). */
naq_status naq__reader_next(naq__reader *r, int64_t timeout_ms, natsMsg **m, uint64_t *seq,
                            int64_t *stored_ns, uint64_t *pending);
/* Accepts NULL. */
void naq__reader_close(naq__reader *r);

/* Called per matching, decoded event (valid during the call) with its
 * stored time; non-zero stops the read. */
typedef int (*naq__query_fn)(const naq_event *e, int64_t stored_ns, void *ud);
/* Reads the range of q (positioned by from_seq / since, ended by until_seq
 * / until / the last sequence when the read began) and calls fn for each
 * matching event in stream order. offset and limit are NOT applied.
 * *stopped (may be NULL) tells whether fn or *q->stop ended it. */
naq_status naq__query_read(naq_client *c, const naq_query *q, naq__query_fn fn, void *ud,
                           int *stopped);

/* Worker activity from events, in stream order (query.c; naq_live uses it
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

/* "naq_<queue>_p<digit>" -> queue, priority; 0 when the name is not a
 * job queue's consumer (query.c). */
int naq__parse_queue_consumer(const char *name, char *queue, size_t cap, int *prio);

/* ---- rollups (rollup.c) ---- */

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

/* Binds the stats bucket. With create, makes it when missing; without,
 * a missing bucket is NAQ_ERR_NOT_FOUND (no message recorded). */
naq_status naq__stats_kv(naq_client *c, int create, kvStore **out);
/* Reads the cursor key: *seq (0 when missing) and *rev (0 when missing). */
naq_status naq__rollup_cursor_get(kvStore *kv, uint64_t *seq, uint64_t *rev);

/* Events stored after sequence `cursor` (naq_rollup_lag without the
 * cursor read): one stream-info request. */
naq_status naq__rollup_lag_after(naq_client *c, uint64_t cursor, uint64_t *lag);

/* Test seam: when non-zero, naq_rollup_step() stops right after writing the
 * hour keys, before moving the cursor, and returns NAQ_ERR_CLOSED: what a
 * maintainer killed at that instant leaves behind. */
extern atomic_int naq__rollup_crash_before_cursor;

#endif

/* ---- job lifecycle (issue 3): the contract between the worker (worker.c)
 * and the lifecycle modules (dlq.c, results.c, cancel.c, deps.c, unique in
 * job.c). Each function logs its own events. ---- */

/* dlq.c: stores the whole job (its JSON as received, the last error and the
 * attempts) on "<p>.dlq.<queue>" and logs max_retries_exceeded. */
naq_status naq__dlq_put(naq_client *c, const naq_job *job, const char *job_json, size_t len,
                        const char *error_type, const char *error_message, int attempts);

/* cancel.c: cancellations as this process sees them. The watch calls
 * on_cancel(job_id, ud) from a nats.c thread for every cancellation
 * request, those already made (before naq__cancel_watch_start returns) and
 * those made later; naq__cancel_watch_has answers from memory whether a
 * job's cancellation was seen. */
typedef struct naq__cancel_watch naq__cancel_watch;
naq_status naq__cancel_watch_start(naq_client *c, void (*on_cancel)(const char *job_id, void *ud),
                                   void *ud, naq__cancel_watch **out);
int naq__cancel_watch_has(naq__cancel_watch *w, const char *job_id);
void naq__cancel_watch_stop(naq__cancel_watch *w); /* accepts NULL */
/* One read: non-zero when `naq job cancel` was asked for this job. */
int naq__cancel_requested(naq_client *c, const char *job_id);

/* finish.c: the job-finish protocol (see finish.c). The outcome record
 * (heap JSON, docs/protocol.md "Results") of job j ending with status
 * ("completed" | "failed" | "cancelled"); details (may be NULL) gives the
 * result and exec fields. With keys (k, may be NULL) the result, output
 * tails and error message are sealed into "sealed" (crypt.h). NULL when out
 * of memory. */
char *naq__outcome_record(const struct naq__crypt *k, const naq_job *j, const char *status,
                          const struct json_t *details, const char *error_type,
                          const char *error_message);
/* Records j's end synchronously: its outcome record (taken from record),
 * its dependents told, its unique key released. */
naq_status naq__finish(naq_client *c, const naq_job *j, const char *record, int succeeded);
/* The worker's side: the same protocol in the background, on the worker's
 * connection nc. done(ud, ok) is called once, from another thread, when all
 * of it is stored (ok = 1) or could not be (ok = 0: the job must not be
 * acknowledged). A job without dependents or a unique key costs one
 * asynchronous publish. */
typedef struct naq__finisher naq__finisher;
/* Test seam (worker_job.c): when set, a worker process kills itself with
 * SIGKILL once a job's outcome is confirmed, just before its ack. */
extern _Atomic int naq__worker_crash_before_ack;

naq_status naq__finisher_create(naq_client *c, natsConnection *nc, naq__finisher **out);
void naq__finisher_submit(naq__finisher *f, const naq_job *j, char *record, int succeeded,
                          naq__confirm_fn done, void *ud);
/* Waits up to timeout_ms for what was submitted, then frees everything;
 * what is still open is reported done(ud, 0). Accepts NULL. */
void naq__finisher_destroy(naq__finisher *f, int64_t timeout_ms);

/* ---- worker_registry.c (issue 4): worker lifecycle events, the live
 * registry in KV naq_workers, heartbeats. worker.c calls these. ---- */
typedef struct naq__registry naq__registry;
typedef struct {
    const char *worker_id;
    const char *const *queues; /* NULL-terminated */
    int concurrency;
} naq__registry_info;
/* Logs worker_started (+ system_startup), registers the worker in KV and
 * starts the heartbeat thread (interval NAQ_HEARTBEAT_INTERVAL, default 5 s;
 * KV entry TTL = 3 intervals). */
naq_status naq__registry_start(naq_client *c, const naq__registry_info *info, naq__registry **out);
/* Logs worker_assigned on the job, and worker_busy / status_changed when
 * the worker goes from idle to busy. */
void naq__registry_job_started(naq__registry *r, const char *job_id, const char *queue);
/* Logs worker_released on the job, counts it, and worker_idle when no job
 * is left running. */
/* Counts an outcome reached without running the job (expired, cancelled
 * while queued, not a job): processed, and failed unless succeeded. */
void naq__registry_job_counted(naq__registry *r, int succeeded);
void naq__registry_job_finished(naq__registry *r, const char *job_id, const char *queue,
                                int succeeded);
/* Logs worker_error. */
void naq__registry_error(naq__registry *r, const char *error_type, const char *message);
/* Logs worker_stopped with details {"how": "graceful"|"forced",
 * "handed_back": n} (+ system_shutdown), removes the KV entry, stops the
 * heartbeat thread and frees r. Accepts NULL. */
void naq__registry_stop(naq__registry *r, const char *how, int handed_back);

/* ---- system events ---- */
/* worker_registry.c: logs a system event (t: NAQ_EVENT_SYSTEM_*; others are
 * ignored) on "<prefix>.system.events" with message and details
 * {"process": process (NULL = "client"), "pid", "hostname"}. Never blocks
 * (the event logger's rule), so it may be called from nats.c callbacks such
 * as the reconnected handler. */
void naq__system_event(naq_client *c, naq_event_type t, const char *process, const char *message);

/* ---- worker_registry.c: an optional hook beside the contract above ---- */
/* The worker stops taking jobs (its first stop request): status ->
 * stopping (worker_status_changed, registry entry) while running jobs
 * finish. naq__registry_stop() does it if not done. Thread-safe. */
void naq__registry_stopping(naq__registry *r);
/* The worker now runs `to` jobs at once instead of `from` (autoscaling):
 * logs worker_status_changed with old_concurrency, new_concurrency and
 * reason, and puts the entry. */
void naq__registry_concurrency(naq__registry *r, int from, int to, const char *reason);
/* naq__registry_job_finished() with succeeded < 0: the job was handed back
 * to the queue (a stop), not settled here: worker_released says
 * {"handed_back": true} and processed / failed do not count it. */

/* ---- processor (continued) ---- */

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

/* ---- security.c, nkey.c, roles.c: connection security (docs/security.md) ---- */

/* Applies cfg's TLS and authentication settings to o for url, and the
 * handler that records permission violations. cfg must outlive the
 * connection (it is the handler's closure). */
naq_status naq__conn_secure(natsOptions *o, const naq_config *cfg, const char *url);
/* When the server reported a permission violation in the last seconds,
 * writes "permission denied: <who> may not publish to "<subject>"; ..."
 * into buf, forgets it and returns 1; else 0. status.c appends it to the
 * errors of calls that failed on a server request. */
int naq__permission_denied_take(char *buf, size_t cap);
/* Why a TLS handshake with the single server of url failed, found by
 * looking at its certificate; *names gets the names it is valid for. */
typedef enum { NAQ__TLS_OTHER, NAQ__TLS_UNTRUSTED, NAQ__TLS_HOSTNAME } naq_tls_problem;
naq_tls_problem naq__tls_diagnose(const naq_config *cfg, const char *url, char *names, size_t cap);

#define NAQ_NKEY_SIZE 64 /* an NKey in text (56 or 58 characters) and its NUL */
/* The public key ("U...") of a user seed ("SU..."). */
naq_status naq__nkey_public(const char *seed, char pub[NAQ_NKEY_SIZE]);
/* The public key of the seed in a seed file (NAQ_NKEY_SEED_FILE). */
naq_status naq__nkey_seed_file_public(const char *path, char pub[NAQ_NKEY_SIZE]);
/* A new random user key pair. */
naq_status naq__nkey_create(char seed[NAQ_NKEY_SIZE], char pub[NAQ_NKEY_SIZE]);

/* roles.c: the least privileged naq role that may use subject (publish or
 * subscribe) under the subject prefix, or NULL when none does. */
const char *naq__role_for_subject(const char *prefix, const char *subject);
/* roles.c: creates the KV buckets other modules create on first use
 * (schedules, stats rollups) when they are missing, so that the first
 * connect of an admin leaves nothing for a role without management rights
 * to create (docs/security.md). The worker registry stays the first
 * worker's to create (its interval sets the TTL). */
naq_status naq__provision_buckets(naq_client *c);

#endif /* NAQ_INTERNAL_H */
