/*
 * naq/processor.h - reacting to events: handlers per event type, global
 * handlers and custom processors (plugins), fed by a live stream or by a
 * consumer group; the event dead-letter stream; waiting for one job.
 *
 * A processor takes events from the event stream itself (never from the job
 * path), so a slow or failing handler cannot delay a job. Handlers run on
 * the processor's own threads, at most max_concurrent at once, never on a
 * nats.c delivery thread.
 *
 * Sources:
 *   - live (opts.group NULL): an ordered consumer from now, from a stream
 *     sequence or from a time. Nothing is acknowledged; a handler failure is
 *     reported (on_outcome, stats) and the event is not retried.
 *   - consumer group (opts.group "name"): the durable pull consumer
 *     "naq_group_<name>", shared by every member in any process; each event
 *     goes to one member. An event is acknowledged after its handlers
 *     succeed; a failure is negatively acknowledged with the next backoff
 *     delay; the delivery that reaches max_deliveries and fails again goes
 *     to the event dead-letter stream (NAQ_EVENT_DLQ) and is terminated. A
 *     member that dies loses nothing: what it held comes again to the
 *     others after the ack wait. Delivery is at least once: handlers must be
 *     idempotent (an event also comes again when one of several handlers
 *     failed, when a member died after the handlers but before the ack, and,
 *     rarely, through a nats-server 2.9 defect: docs/processors.md).
 *
 * Thread-safety: every naq_processor_* call may be made from any thread;
 * handlers may be added and removed while the processor runs. Handlers run
 * concurrently with each other (up to max_concurrent) and must be
 * thread-safe. naq_processor_destroy() must not race other calls on the
 * same processor and must not be called from a handler.
 * docs/processors.md has examples of every call.
 */
#ifndef NAQ_PROCESSOR_H
#define NAQ_PROCESSOR_H

#include <stddef.h>
#include <stdint.h>

#include "naq/client.h"
#include "naq/event.h"
#include "naq/status.h"
#include "naq/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct naq_processor naq_processor;

/* Identifies a registered handler or plugin; never 0. */
typedef uint64_t naq_handler_id;

/* Size of the `reason` buffer a handler may fill. */
#define NAQ_REASON_MAX 256

/* A handler. Return 0 when the event is handled; any other value fails it.
 * On failure write why into `reason` (NAQ_REASON_MAX bytes, "" on entry);
 * the text goes to on_outcome and into the dead-letter entry. The event is
 * only valid during the call. */
typedef int (*naq_event_handler_fn)(const naq_event *e, void *user, char *reason);

/* A custom processor: a named plugin that receives every event the
 * processor's filters let through. on_start runs once in
 * naq_processor_add_plugin() (return non-zero, with a reason, to refuse the
 * registration: the plugin is then not added and on_stop never runs);
 * on_stop runs once when the plugin is removed or the processor destroyed,
 * after its last on_event has returned. on_event is required, the others
 * optional. The struct and name are copied; user is the plugin's. */
typedef struct {
    const char *name; /* unique within the processor, 1 to NAQ_NAME_MAX-1 bytes */
    int (*on_start)(void *user, char *reason);
    int (*on_event)(const naq_event *e, void *user, char *reason);
    void (*on_stop)(void *user);
    void *user;
} naq_plugin;

/* Where a source starts. A consumer group uses it only when the group is
 * first created; afterwards the group resumes where it was. */
typedef enum {
    NAQ_START_NEW,      /* events stored from now on (default) */
    NAQ_START_ALL,      /* every event still in the stream */
    NAQ_START_SEQUENCE, /* from start_sequence */
    NAQ_START_TIME,     /* from start_time */
} naq_start;

/* What happened to one event, for on_outcome. */
typedef enum {
    NAQ_OUTCOME_HANDLED,       /* every matching handler succeeded (group: acknowledged) */
    NAQ_OUTCOME_FAILED,        /* live: a handler failed; the event is not retried */
    NAQ_OUTCOME_RETRY,         /* group: failed, delivered again after retry_in_ms */
    NAQ_OUTCOME_DEAD_LETTERED, /* group: failed on delivery max_deliveries: in NAQ_EVENT_DLQ */
    NAQ_OUTCOME_RELEASED,      /* group: not run, the processor stopped; handed back at once */
    NAQ_OUTCOME_ACK_FAILED,    /* group: handled, but the ack did not reach the server: it
                                  will be delivered again (handlers are idempotent) */
} naq_outcome_kind;

typedef struct {
    naq_outcome_kind kind;
    int timed_out;       /* a handler ran past handler_timeout_ms */
    int deliveries;      /* group: this delivery's number, 1 for the first; live: 1 */
    int64_t retry_in_ms; /* NAQ_OUTCOME_RETRY: delay before the next delivery */
    const char *reason;  /* why it failed; "" when handled */
} naq_outcome;

/* Called once per event the processor settles, on a processor thread
 * (several may run at once). For an event that cannot be decoded (it is
 * dead-lettered at once in a group, skipped live) e carries only
 * nats_subject and nats_sequence. */
typedef void (*naq_outcome_fn)(const naq_event *e, const naq_outcome *o, void *user);

#define NAQ_BACKOFF_MAX 8

/* Options; naq_processor_create() copies them (strings and the types array
 * included), so later edits have no effect. */
typedef struct {
    /* ---- source ---- */
    const char *group;       /* NULL or "" = live; else the group name (a subject token
                                without '/' or '\\', at most 40 bytes) */
    naq_start start;         /* default NAQ_START_NEW */
    uint64_t start_sequence; /* NAQ_START_SEQUENCE */
    double start_time;       /* NAQ_START_TIME: seconds since the epoch, UTC */

    /* ---- filters: an event must match every one given ----
     * job_id reads only the job's literal subject (a consumer has one filter
     * subject on nats-server 2.9); types, queue and worker are judged on the
     * Naq-* headers before the event is decoded. In a group they are part of
     * the group's definition: every member must give the same ones. */
    const naq_event_type *types; /* NULL = every type */
    size_t ntypes;
    const char *queue;  /* NULL = any */
    const char *worker; /* NULL = any */
    const char *job_id; /* NULL = any */

    /* ---- execution ---- */
    int max_concurrent;         /* handler executions at once; default 4 */
    int autoscale_min;          /* autoscaling: with autoscale_max > 0 the pool runs */
    int autoscale_max;          /* between autoscale_min (>= 1) and autoscale_max (<= 1024)
                                   handlers at once and max_concurrent is ignored. It starts
                                   at min, doubles (up to max) once every slot has been busy
                                   for NAQ_AUTOSCALE_GROW_MS while events wait (taken, or
                                   pending in the source), reason "lag", and halves (down to
                                   min, never below the most it ran at once in the window)
                                   after NAQ_AUTOSCALE_SHRINK_MS with a slot to spare, reason
                                   "idle"; a running handler is never cut. Each change is a
                                   worker_status_changed event whose worker_id is the member
                                   ("<group or live>-<host>-<pid>-<hex>", worker_type
                                   "processor"), details old_concurrency, new_concurrency,
                                   reason, group. Default 0 = off */
    int max_pending;            /* events taken from the source and not yet settled
                                   (queued + running); default 256 */
    int64_t handler_timeout_ms; /* 0 = none (default). A handler that runs past it makes
                                   the event fail at that moment (group: retried per
                                   backoff, or dead-lettered); its thread cannot be killed,
                                   so it keeps its slot until it returns, and its result is
                                   then ignored */

    /* ---- consumer groups only ---- */
    int max_deliveries;                  /* default 5 */
    int64_t backoff_ms[NAQ_BACKOFF_MAX]; /* delay before delivery n+1 after failed delivery
                                            n: backoff_ms[min(n, backoff_len) - 1];
                                            default 1000, 5000, 30000 */
    int backoff_len;                     /* 0 = redeliver at once */
    int64_t ack_wait_ms; /* a silent member's events go to others after this; 0 = the
                            client's ack_wait_ms. Running events are kept alive with
                            in-progress acks, so it need not exceed handler run times */
    int max_ack_pending; /* unacknowledged events of the whole group; default 4096 */
    int ack_sync;        /* 1 = wait for the server to confirm each ack (then
                            NAQ_OUTCOME_HANDLED means it will not come again); default 0 */

    /* ---- reports ---- */
    naq_outcome_fn on_outcome; /* optional */
    void *outcome_user;
} naq_processor_opts;

/* Defaults as documented above; never fails. */
void naq_processor_opts_init(naq_processor_opts *o);

/* Creates a processor on client c (which must outlive it) without starting
 * it. NAQ_ERR_INVALID_ARG for a bad option (named in the message). Destroy
 * with naq_processor_destroy(). */
naq_status naq_processor_create(naq_client *c, const naq_processor_opts *o, naq_processor **out);

/* Stops the processor (naq_processor_stop), calls every plugin's on_stop
 * and frees it. Accepts NULL. */
void naq_processor_destroy(naq_processor *p);

/* Registers fn for events of one type, or (global) for every event. Events
 * that no handler matches are settled as handled. All matching handlers of
 * an event run in registration order on one thread; the first failure
 * stops the rest. *id (optional) receives the id for naq_processor_remove.
 * Callable before or after start. */
naq_status naq_processor_add_handler(naq_processor *p, naq_event_type type, naq_event_handler_fn fn,
                                     void *user, naq_handler_id *id);
naq_status naq_processor_add_global_handler(naq_processor *p, naq_event_handler_fn fn, void *user,
                                            naq_handler_id *id);

/* Registers a custom processor (see naq_plugin). NAQ_ERR_EXISTS for a name
 * already registered, NAQ_ERR_HANDLER when on_start refused. */
naq_status naq_processor_add_plugin(naq_processor *p, const naq_plugin *plugin, naq_handler_id *id);

/* Unregisters a handler or plugin. When it returns, the handler runs no
 * more and no call of it is in progress, so its user data may be freed;
 * a plugin's on_stop has run. Called from inside one of this processor's
 * handlers it does not wait for calls on other threads (they may still be
 * finishing). NAQ_ERR_NOT_FOUND for an unknown id. */
naq_status naq_processor_remove(naq_processor *p, naq_handler_id id);

/* Opens the source (creating the group's consumer and the event DLQ stream
 * when needed) and starts the threads. A group whose consumer exists with
 * other filters is refused with NAQ_ERR_EXISTS. On failure nothing runs.
 * A processor starts once. */
naq_status naq_processor_start(naq_processor *p);

/* Stops taking events; a group hands the events it queued but had not
 * started back at once (NAQ_OUTCOME_RELEASED); waits for running handlers
 * to return (a handler that never returns makes it wait forever), settles
 * them and stops the threads. An idle group member notices within a second
 * (its pull request runs that long), a live processor within 0.2 s.
 * Idempotent; does nothing before start. */
void naq_processor_stop(naq_processor *p);

typedef struct {
    uint64_t received; /* taken from the source that passed the filters */
    uint64_t filtered; /* taken from the source and skipped by the filters */
    uint64_t handled;  /* NAQ_OUTCOME_HANDLED */
    uint64_t failed;   /* failures of any kind (includes timed_out) */
    uint64_t timed_out;
    uint64_t retried; /* NAQ_OUTCOME_RETRY */
    uint64_t dead_lettered;
    uint64_t released;
    uint64_t ack_failed;
    uint64_t undecodable; /* events whose JSON could not be decoded */
    uint64_t running;     /* handler executions now (including overdue ones) */
    uint64_t max_running; /* most handler executions at once so far */
    uint64_t pending;     /* taken and not yet settled now */
    uint64_t concurrency; /* handlers it may run at once now (max_concurrent, or what
                             autoscaling chose) */
} naq_processor_stats;

void naq_processor_get_stats(naq_processor *p, naq_processor_stats *out);

/* This member's id ("<group or live>-<host>-<pid>-<hex>"): the worker_id of
 * its worker_status_changed events and the member_id label of its metrics.
 * Lives as long as p. */
const char *naq_processor_member_id(const naq_processor *p);

/* ---- one job ---- */

/* Waits until job_id has an event of `type` and copies the first such event
 * into *out (initialised even on failure; clear it with naq_event_clear).
 * The job's history is read first, then its subject is followed from the
 * sequence after the history's last event, so an event stored between the
 * two is not missed. NAQ_ERR_TIMEOUT after timeout_ms (< 0: no limit),
 * NAQ_ERR_INVALID_ARG for a malformed job id. Runs on the calling thread. */
naq_status naq_wait_for_event(naq_client *c, const char *job_id, naq_event_type type,
                              int64_t timeout_ms, naq_event *out);

/* Zero-initialise (naq_monitor_opts o = {0};) for no time limit and no stop flag. */
typedef struct {
    int64_t timeout_ms;       /* 0 = no limit */
    const volatile int *stop; /* optional flag, looked at every 100 ms */
} naq_monitor_opts;

/* Calls fn, on the calling thread, for every event of job_id in stream
 * order: its history, then new events as they are stored, until a
 * terminal event (naq_event_is_terminal) has been delivered, fn returns
 * non-zero or *stop is set (NAQ_OK), or timeout_ms passes (NAQ_ERR_TIMEOUT).
 * o may be NULL. */
naq_status naq_monitor_job(naq_client *c, const char *job_id, naq_event_fn fn, void *user,
                           const naq_monitor_opts *o);

/* True for an event after which the job has no further transitions:
 * completed, cancelled, max_retries_exceeded, ttl_expired,
 * dependency_failed, and failed when no retry follows. A failed event that
 * will be retried says so with "will_retry": true in its details; without
 * it a failure is final. */
int naq_event_is_terminal(const naq_event *e);

/* ---- the event dead-letter stream ---- */

/* Stream of dead events, created at first use: subjects
 * "<prefix>.eventdlq.<group>" (entries) and "<prefix>.eventdlq.<group>.replay"
 * (replays the group's members consume). Entries have no age limit. */
#define NAQ_EVENT_DLQ_STREAM "NAQ_EVENT_DLQ"

/* One entry: the stored JSON is {"version":1,"group","reason","deliveries",
 * "original_subject","original_sequence","failed_at","event":{...}}
 * (docs/processors.md). */
typedef struct {
    uint64_t sequence; /* in NAQ_EVENT_DLQ; what replay takes */
    char group[NAQ_ID_SIZE];
    char *reason; /* heap */
    int deliveries;
    char original_subject[2 * NAQ_ID_SIZE];
    uint64_t original_sequence; /* in the event stream */
    double failed_at;           /* seconds since the epoch, UTC */
    char *event_json;           /* heap: the original event as compact JSON */
    int event_decoded;          /* 1 when `event` holds it decoded */
    naq_event event;            /* owns its heap fields */
} naq_event_dlq_entry;

typedef struct {
    naq_event_dlq_entry *items;
    size_t count;
} naq_event_dlq_entries;

/* Zero-initialise for everything. */
typedef struct {
    const char *group; /* NULL = every group */
    const char *type;  /* event type wire name; NULL = every type */
    size_t limit;      /* 0 = no limit: the oldest `limit` entries */
} naq_event_dlq_filter;

/* Entries oldest first. *out is heap memory: free it with
 * naq_event_dlq_entries_free (also safe after a failure). No stream yet means
 * no entries. NAQ_ERR_INVALID_ARG for a malformed group or unknown type. */
naq_status naq_event_dlq_list(naq_client *c, const naq_event_dlq_filter *f,
                              naq_event_dlq_entries *out);
void naq_event_dlq_entries_free(naq_event_dlq_entries *l);

/* Hands entry `sequence` back to its group: the original event is published
 * to "<prefix>.eventdlq.<group>.replay", which the group's members consume
 * (and handle like any event, with fresh deliveries), then the entry is
 * deleted. The event log itself is never written again, so history stays
 * true. NAQ_ERR_NOT_FOUND for no such entry. */
naq_status naq_event_dlq_replay(naq_client *c, uint64_t sequence);

/* Replays every entry matching f (limit ignored); *replayed (optional)
 * counts them. Stops at the first failure. */
naq_status naq_event_dlq_replay_all(naq_client *c, const naq_event_dlq_filter *f, size_t *replayed);

#ifdef __cplusplus
}
#endif
#endif
