/*
 * internal.h - what crosses the folders of src/, private to libnaq.
 *
 * src/ is grouped by the data flow (docs/architecture.md, "Layout"): core/
 * (connection, config, errors, KV, ids), jobs/, worker/, scheduler/,
 * events/ and ops/. Each folder has its own header for what only its files
 * share (core/core.h, jobs/jobs.h, worker/worker.h, scheduler/scheduler.h,
 * events/events.h, ops/ops.h), and a few concepts used across folders have
 * a header of their own (core/kv.h, core/heap.h, core/jsonw.h,
 * core/crypt.h, events/spool.h, ...). This file holds the rest: core's
 * services every folder uses, and the few contracts between folders.
 * Internal non-static functions are named naq__<module>_<verb>.
 */
#ifndef NAQ_INTERNAL_H
#define NAQ_INTERNAL_H

#include "naq/naq.h"

#include <nats/nats.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* ---- errors and logging (status.c, log.c) ---- */

/* Record a failure for naq_last_error() and return s. printf-style. */
naq_status naq__fail(naq_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, appending nats.c's last error text for ns. */
naq_status naq__fail_nats(naq_status s, natsStatus ns, int js_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void naq__clear_error(void);
/* Hands a message to the naq_log_set_handler handler (log.c); never prints.
 * printf-style; a trailing newline is dropped. */
void naq__log(naq_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

/* ---- the client (client.c) ---- */

typedef struct naq__logger naq__logger;
struct json_t; /* jansson's, for modules that build event details */

/* Called once when a confirmed event is settled: ok = 1 when the server
 * acknowledged it, 0 when it could only be spooled or was dropped (then
 * it is not confirmed, though a spooled event is still sent later). Runs
 * on a nats.c or logger thread: it must not block. */
typedef void (*naq__confirm_fn)(void *ud, int ok);

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
    /* NAQ_OUTCOMES and NAQ_DELAYED of this subject prefix (naq__prefixed_name) */
    char outcome_stream[NAQ_NAME_MAX * 2], delayed_stream[NAQ_NAME_MAX * 2];
};

/* A connection to the job server (events = 0) or to the event server
 * (events = 1: cfg->event_url, or cfg->url when that is empty), TLS and
 * credentials from cfg, that creates no stream and starts no logger: for
 * backup and restore, which must find a server as it is. cfg is
 * validated first. *nc, *js: the caller destroys both (js first). */
naq_status naq__connect_bare(const naq_config *cfg, int events, natsConnection **nc, jsCtx **js);

/* Flags of naq__client_open_conn. */
enum {
    /* Publishes are written at once instead of by nats.c's flusher (the
     * worker's pulls). */
    NAQ__CONN_SEND_ASAP = 1,
    /* Its asynchronous subscriptions share nats.c's delivery thread instead
     * of a thread each: for callbacks that only take a lock and publish. */
    NAQ__CONN_SHARED_DELIVERY = 2
};

/* Another connection to the job server, configured as the client's, with
 * the NAQ__CONN_* flags. *out: natsConnection_Destroy it. */
naq_status naq__client_open_conn(naq_client *c, int flags, natsConnection **out);

/* Formats "<prefix>.<rest...>" into buf. NAQ_ERR_INVALID_ARG if it does not fit. */
naq_status naq__subject(const naq_client *c, char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets o's servers from a NATS URL or a comma-separated list of them (a
 * cluster's nodes): natsOptions_SetURL takes one URL only. */
natsStatus naq__nats_set_urls(natsOptions *o, const char *url);

/* Applies cfg's TLS and authentication settings to o for url, and the
 * handler that records permission violations. cfg must outlive the
 * connection (it is the handler's closure). */
naq_status naq__conn_secure(natsOptions *o, const naq_config *cfg, const char *url);
/* naq_client_log with a confirmation (naq__logger_log_confirmed); with
 * logging off, confirm(ud, 1) at once. */
naq_status naq__client_log_confirmed(naq_client *c, const naq_event *e, naq__confirm_fn confirm,
                                     void *ud);
/* Logs an event with these fields through the client's logger (a
 * convenience over naq_client_log for jobs' and schedules' own events).
 * Takes the reference to details (may be NULL). Strings may be NULL. */
void naq__schedule_event(naq_client *c, naq_event_type t, const char *schedule_id,
                         const char *job_id, const char *queue, const char *event_id,
                         const char *message, struct json_t *details);
/* replicas.c: whether a stream is one of naq's (the four main streams,
 * NAQ_DELAYED, NAQ_EVENT_DLQ, and every KV bucket, whose names all start
 * with "naq_"): the one list that replicas and backups go by. */
int naq__stream_is_ours(const naq_config *cfg, const char *name);
/* client.c: fills sc as naq makes every stream of its own: on disk, with
 * limits retention, `replicas` copies and direct gets allowed (readers
 * take "last / next message on a subject" by direct get). Callers add
 * their limits and duplicate window. subjects is not copied: it must
 * outlive sc's use. */
void naq__stream_config_init(jsStreamConfig *sc, const char *name, const char **subjects,
                             int nsubjects, int replicas);

/* Names every part agrees on: streams and buckets besides those of
 * naq_config (the client creates them all when it connects). Several
 * installations share a server by their subject prefix, so the streams
 * whose subjects carry it are named after it too (naq__prefixed_name). */
#define NAQ__OUTCOME_STREAM "NAQ_OUTCOMES"
#define NAQ__DELAYED_STREAM "NAQ_DELAYED"
#define NAQ__SCHEDULES_BUCKET "naq_schedules"
#define NAQ__LOCK_BUCKET "naq_scheduler_lock"

/* client.c: base when suffix is default_suffix, else "<base>_<suffix>"
 * with the characters a stream or bucket name cannot hold turned into
 * '_': the name of one installation's stream or bucket. */
void naq__suffixed_name(char *buf, size_t cap, const char *base, const char *suffix,
                        const char *default_suffix);
/* naq__suffixed_name of cfg's subject prefix ("naq" is the default). */
void naq__prefixed_name(const naq_config *cfg, const char *base, char *buf, size_t cap);

/* ---- stream requests (stream.c) ---- */

/* JetStream API error: "stream not found". */
#define NAQ__JS_STREAM_NOT_FOUND 10059
/* The info of stream into *si (jsStreamInfo_Destroy it; it may be set on
 * failure too), with the message count of each subject matching filter in
 * si->State.Subjects (filter NULL: no list). *jerr: the JetStream error. */
natsStatus naq__stream_info(jsCtx *js, const char *stream, const char *filter, jsStreamInfo **si,
                            jsErrCode *jerr);
/* Purges stream: only messages on subject (NULL: every subject), and only
 * those below sequence `below` (0: all of them). *jerr: the JetStream error. */
natsStatus naq__stream_purge(jsCtx *js, const char *stream, const char *subject, uint64_t below,
                             jsErrCode *jerr);
/* Whether a request failed because the stream does not exist. */
int naq__stream_missing(natsStatus ns, jsErrCode jerr);
/* Creates the stream sc describes. Several processes connecting to a fresh
 * server at once all create it; the losers' creates fail, and NATS_OK with
 * *existed = 1 is returned when a stream of that name is there now (maybe
 * with another configuration: the caller decides what to do about that).
 * *jerr: the JetStream error of a create that failed otherwise. */
natsStatus naq__stream_create(jsCtx *js, jsStreamConfig *sc, int *existed, jsErrCode *jerr);

/* ---- clocks (clock.c) ---- */

/* Seconds since the epoch, UTC, as the events carry it. */
double naq__now(void);
/* Milliseconds of CLOCK_MONOTONIC, for timeouts and durations. */
int64_t naq__mono_ms(void);
int64_t naq__mono_us(void);
/* Milliseconds of `clock`, to the nanosecond: for durations and CPU time
 * (CLOCK_THREAD_CPUTIME_ID) that events report with fractions. */
double naq__clock_ms(clockid_t clock);
/* Sleeps about that long (clock.c). */
void naq__sleep_ms(int64_t ms);
void naq__sleep_us(int64_t us);
/* Sleeps ms, or less: it looks at *stop (stop may be NULL) every 50 ms and
 * returns once it is set. For background threads that retry or poll. */
void naq__nap(int64_t ms, const volatile int *stop);
/* The absolute time ms from now on `clock`, for pthread_cond_timedwait
 * (whose clock is the condition variable's: CLOCK_REALTIME unless the
 * variable was made with another). */
struct timespec naq__deadline(clockid_t clock, int64_t ms);

/* ---- growable arrays (array.c) ---- */

/* Doubles the capacity *cap (first when 0) of the array *arrayp, whose
 * elements are elem bytes: arrayp is the address of a T * (heap, or NULL
 * when *cap is 0), which the caller keeps and frees with free(). Returns
 * the grown array, also stored in *arrayp; NULL when out of memory, the
 * array and *cap unchanged. Call it when the array is full. */
void *naq__array_grow(void *arrayp, size_t *cap, size_t elem, size_t first);

/* ---- JetStream ack subjects (ack_subject.c) ---- */

/* What naq reads from a message's ack subject
 * "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>". */
typedef struct naq__ack_info {
    const char *consumer; /* points into the subject; not NUL-terminated */
    size_t consumer_len;
    long long pending; /* messages the consumer still has after this one */
} naq__ack_info;
/* Fills *out and returns 1 when reply (may be NULL) is an ack subject
 * naming a consumer; returns 0 and leaves *out alone otherwise. */
int naq__ack_subject_parse(const char *reply, naq__ack_info *out);
/* The stream sequence of the message whose ack subject reply is (either
 * of the server's two formats); 0 when reply is not an ack subject. */
uint64_t naq__ack_subject_stream_seq(const char *reply);

/* ---- ids, names and hashes (id.c, config.c) ---- */

/* The characters a name may hold (naq__name_validate). */
typedef enum {
    NAQ__NAME_TOKEN,     /* a subject token: printable ASCII but white space, '.', '*', '>' */
    NAQ__NAME_PRINTABLE, /* printable ASCII without white space ('.' allowed) */
    NAQ__NAME_WORD,      /* letters, digits, '-' and '_' only */
} naq__name_alphabet;
/* NAQ_OK when name is 1..max characters of the alphabet; otherwise
 * NAQ_ERR_INVALID_ARG with a message naming `what` ("queue name"), the
 * first character refused and its position, and what to use instead. The
 * one check behind naq_id_validate, naq__function_validate and
 * naq_schedule_name_validate. */
naq_status naq__name_validate(const char *what, const char *name, size_t max,
                              naq__name_alphabet alphabet);
/* Writes "<a><sep><b>" into out (room for max + 1 bytes) and returns 1
 * when it is at most max characters long; else returns 0 and leaves out
 * alone (callers then hash instead). */
int naq__join_if_fits(char *out, size_t max, const char *a, char sep, const char *b);

/* id.c: FNV-1a (64 bits) of len bytes, continuing from h: NAQ__FNV_OFFSET
 * to start, NAQ__FNV_OFFSET2 for a second hash independent of the first. */
#define NAQ__FNV_OFFSET 0xcbf29ce484222325ULL
#define NAQ__FNV_OFFSET2 0x84222325cbf29ce4ULL
uint64_t naq__fnv1a(const void *data, size_t len, uint64_t h);
/* "<host>-<pid>-<4 hex>" (host up to its first '.'): the default id of a
 * worker or processor member of this process. */
void naq__host_pid_id(char out[NAQ_ID_SIZE]);
/* A deterministic event id "<tag>-<key>", or "<tag>-<32 hex digits of a
 * hash of key>" when that is too long: a re-sent event gets the same id, so
 * the event stream (duplicate window) stores it once. */
void naq__derived_id(const char *tag, const char *key, char out[NAQ_ID_SIZE]);
/* Writes "$XDG_DATA_HOME/naq/<leaf>" (or ~/.local/share/naq/<leaf>). */
void naq__default_data_dir(char *buf, size_t cap, const char *leaf);

#define NAQ_NKEY_SIZE 64 /* an NKey in text (56 or 58 characters) and its NUL */
/* The public key ("U...") of a user seed ("SU..."). */
naq_status naq__nkey_public(const char *seed, char pub[NAQ_NKEY_SIZE]);
/* A new random user key pair. */
naq_status naq__nkey_create(char seed[NAQ_NKEY_SIZE], char pub[NAQ_NKEY_SIZE]);

/* ---- what connecting creates in the other folders (client.c calls
 * these: connecting makes every stream and bucket, so that no first
 * write races another process's creation) ---- */

/* events/logger.c: the non-blocking event logger (see logger.c). */
naq_status naq__logger_create(naq_client *c, naq__logger **out);
/* Stops the background thread after publishing or spooling what is
 * buffered (bounded by a few seconds). Accepts NULL. */
void naq__logger_destroy(naq__logger *l);
naq_status naq__logger_log(naq__logger *l, const naq_event *e);
/* naq__logger_log, then confirm(ud, ok) exactly once, also when this call
 * fails (ok = 0). */
naq_status naq__logger_log_confirmed(naq__logger *l, const naq_event *e, naq__confirm_fn confirm,
                                     void *ud);
void naq__logger_stats(naq__logger *l, naq_logger_stats *out);
naq_status naq__logger_flush(naq__logger *l, int64_t timeout_ms);

/* jobs/enqueue.c: the client's naq_enqueue_async machinery; destroy flushes
 * and reports what is still open. */
naq_status naq__enqueue_async_init(naq_client *c);
void naq__enqueue_async_destroy(naq_client *c);

/* jobs/delay.c: creates the delayed-jobs stream when missing (at connect). */
naq_status naq__delayed_stream_ensure(naq_client *c, jsCtx *js);
/* scheduler/schedule_store.c: binds the schedules bucket through js, creating it when missing. */
naq_status naq__schedules_kv(naq_client *c, jsCtx *js, kvStore **out);
/* events/rollup.c: binds the stats bucket. With create, makes it when missing; without,
 * a missing bucket is NAQ_ERR_NOT_FOUND (no message recorded). */
naq_status naq__stats_kv(naq_client *c, int create, kvStore **out);

/* ---- jobs <-> worker: the job lifecycle contract (issue 3). The worker
 * (worker/) calls these; each logs its own events. ---- */

/* jobs/job_opts.c: NAQ_OK when name may be a job's function: 1..NAQ_ID_MAX printable ASCII
 * characters without white space ('.' is allowed: it never becomes a
 * subject token). Otherwise NAQ_ERR_INVALID_ARG saying what is wrong. */
naq_status naq__function_validate(const char *name);

/* jobs/job.c: the "enqueued" event of a job has a fixed event id (its Nats-Msg-Id),
 * "enq-<job_id>" (a hash of the id when that is too long), so the copy a
 * worker logs before "dequeued" and the enqueuer's copy are stored once,
 * whichever arrives first: the job's history then always starts with
 * "enqueued", even when the enqueuer's logger is slower than the worker. */
void naq__enqueued_event_id(const char *job_id, char out[NAQ_ID_SIZE]);
/* Fills e (initialised here; naq_event_clear it) with j's "enqueued". */
naq_status naq__enqueued_event(const naq_job *j, naq_event *e);

/* jobs/job_opts.c: NAQ_OK when args (the JSON of a job's args) can be run by the exec
 * handler: {"argv": ["cmd", ...], "env": {...}, "cwd": "..."} or a bare
 * argv array, with a non-empty command. Else NAQ_ERR_INVALID_ARG naming
 * the problem and the shape to send. naq_job_opts_validate calls it for
 * every exec job, so a job the handler would refuse is never queued. */
naq_status naq__exec_args_check(const struct json_t *args);

/* jobs/dlq.c: stores the whole job (its JSON as received, the last error and the
 * attempts) on "<p>.dlq.<queue>" and logs max_retries_exceeded. */
naq_status naq__dlq_put(naq_client *c, const naq_job *job, const char *job_json, size_t len,
                        const char *error_type, const char *error_message, int attempts);

/* jobs/cancel.c: cancellations as this process sees them. The watch calls
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

/* jobs/finish.c: the job-finish protocol (see finish.c). The outcome record
 * (heap JSON, docs/protocol.md "Outcomes") of job j ending with status
 * ("completed" | "failed" | "cancelled"); details (may be NULL) gives the
 * result and exec fields. message_seq (0: none) is the sequence of the
 * queue message the record settles. With keys (k, may be NULL) the result,
 * output tails and error message are sealed into "sealed" (crypt.h). NULL
 * when out of memory. */
char *naq__outcome_record(const struct naq__crypt *k, const naq_job *j, uint64_t message_seq,
                          const char *status, const struct json_t *details, const char *error_type,
                          const char *error_message);
/* 1 when job_id's outcome record says it settled the queue message of
 * sequence message_seq: that message ran to its end already. 0 otherwise,
 * also when the record cannot be read (one direct get). */
int naq__outcome_settled(naq_client *c, const char *job_id, uint64_t message_seq);
/* Records j's end synchronously: its outcome record (taken from record),
 * its dependents told, its unique key released. */
naq_status naq__finish(naq_client *c, const naq_job *j, const char *record, int succeeded);
/* The worker's side: the same protocol in the background, on the worker's
 * connection nc. done(ud, ok) is called once, from another thread, when all
 * of it is stored (ok = 1) or could not be (ok = 0: the job must not be
 * acknowledged). A job without dependents or a unique key costs one
 * asynchronous publish. */
typedef struct naq__finisher naq__finisher;
naq_status naq__finisher_create(naq_client *c, natsConnection *nc, naq__finisher **out);
void naq__finisher_submit(naq__finisher *f, const naq_job *j, char *record, int succeeded,
                          naq__confirm_fn done, void *ud);
/* Waits up to timeout_ms for what was submitted, then frees everything;
 * what is still open is reported done(ud, 0). Accepts NULL. */
void naq__finisher_destroy(naq__finisher *f, int64_t timeout_ms);

/* ---- jobs <-> scheduler: the due-time index of delayed jobs (jobs/delay.c),
 * which the leading scheduler ticks ---- */

/* Counters of what the leader asks the server (naq_scheduler_stats). */
typedef struct {
    _Atomic uint64_t kv_reads, kv_writes, watch_entries, index_reads, index_feed, released;
} naq__sched_counters;

/* The due-time index as the leader reads it. */
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

/* ---- events -> ops: the forward reader of the event stream
 * (events/reader.c), which queries, rollups and metrics share ---- */

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
/* Where an ordered consumer on the event stream starts: at stream
 * sequence seq when > 0, else at the first event stored at or after ns
 * (nanoseconds since the epoch) when > 0, else by policy (js_DeliverAll,
 * the zero value, or js_DeliverNew, js_DeliverLastPerSubject). nats.c
 * turns a start sequence or time into its policy itself. */
typedef struct {
    jsDeliverPolicy policy;
    uint64_t seq;
    int64_t ns;
} naq__event_start;
/* events/reader.c: opens an ordered consumer (nats.c re-creates it after
 * a gap, so nothing is lost or repeated) on subject of the event stream,
 * read on the caller's thread with natsSubscription_NextMsg. *sub: the
 * caller unsubscribes it (which deletes the consumer at once) and
 * destroys it. On failure NAQ_ERR_NATS, recorded as `what` and the
 * server's reason. */
naq_status naq__event_subscribe(naq_client *c, const char *subject, naq__event_start start,
                                natsSubscription **sub, const char *what);
/* The event stream's state in one request (without its lists). */
naq_status naq__event_stream_state(naq_client *c, jsStreamState *st);

/* ---- events -> cli: the live window's feed (events/stats.c) ---- */

/* Feeds live from the event stream until *stop is set, on the caller's
 * thread (`naq top`'s and `naq web`'s reader): the last `tail` events,
 * then each new one as it is stored. When the read ends or fails,
 * on_break(why, ud) is told (why: the error, or "ended"), and after a
 * second it follows again, without a tail: the window already holds what
 * came before. */
void naq__live_follow(naq_client *c, naq_live *live, int tail, const volatile int *stop,
                      void (*on_break)(const char *why, void *ud), void *ud);

#endif /* NAQ_INTERNAL_H */
