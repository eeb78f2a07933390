/*
 * worker.h - what the worker's modules share, private to them:
 *   worker.c       options, handlers, consumers, the keeper, run and stop
 *   worker_pull.c  finding the next job (the fairness rule)
 *   worker_job.c   running one job and settling its message
 *   job_ctx.c      the handler's job context
 *   registry.c     the worker's registry entry, heartbeats, lifecycle events
 *   registry_read.c  the reads behind `naq workers`
 *
 * Locking: a slot (one per executor) is written by its executor and read
 * by the keeper and the cancel watch, all under naq_worker.slots_lock. The
 * slot's state is the one place where "who settles this message" is
 * decided: the executor settles it unless the keeper handed it back first
 * (SLOT_HANDED_BACK), and the keeper hands back only a SLOT_RUNNING job.
 */
#ifndef NAQ_WORKER_INT_H
#define NAQ_WORKER_INT_H

#include "core/autoscale.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

struct json_t;
typedef struct naq__registry naq__registry; /* registry.c, below */

typedef struct {
    char name[NAQ_ID_SIZE];
    naq_handler_fn fn;
    void *user;
} naq__handler_entry;

typedef struct {
    char name[NAQ_ID_SIZE];
    char consumer[NAQ_PRIORITY_LEVELS][NAQ_ID_SIZE + 16];
    char next_subject[NAQ_PRIORITY_LEVELS][NAQ_URL_MAX];
    /* Monotonic ms until which the level counts as empty (a hint); under
     * the fetcher's lock. */
    int64_t empty_until[NAQ_PRIORITY_LEVELS];
} naq__queue_state;

struct naq_job_ctx {
    /* Read by the handler (and exec_run) and written by the keeper and the
     * cancel watch; plain ints because naq__exec_opts.cancel is a
     * `const volatile int *`, accessed through __atomic builtins. */
    volatile int cancel;         /* what naq_job_ctx_cancelled() reads */
    volatile int timed_out;      /* past timeout_ms */
    volatile int user_cancelled; /* `naq job cancel` while it ran */
    volatile int handed_back;    /* the worker stopped; the message went back */
    int failed;
    char *error_type;       /* heap */
    char *error_message;    /* heap */
    struct json_t *details; /* object of the outcome event, or NULL */
    double cpu_time_ms, memory_mb;
};

void naq__flag_set(volatile int *f);
int naq__flag_get(const volatile int *f);
void naq__job_ctx_init(naq_job_ctx *ctx);
void naq__job_ctx_clear(naq_job_ctx *ctx);

typedef enum {
    SLOT_IDLE,
    SLOT_RUNNING,     /* the handler runs; the keeper may hand it back */
    SLOT_FINISHING,   /* the executor settles the message */
    SLOT_HANDED_BACK, /* the keeper nak'ed it; the executor only cleans up */
} naq__slot_state;

/* What the keeper and the cancel watch know of one executor's job. */
typedef struct {
    naq__slot_state state;
    char reply[NAQ_URL_MAX]; /* the message's ack subject */
    int64_t deadline_ms;     /* 0 = no timeout */
    int64_t next_wpi_ms;
    naq_job_ctx *ctx;
    const naq_job *job; /* the executor's, valid while state != SLOT_IDLE */
} naq__slot;

typedef struct {
    naq_worker *w;
    int index;
    pthread_t thread;
    int64_t taken_us; /* when it took its job (worker_pull.c: auto prefetch) */
} naq__executor;

/* The worker's job fetcher (worker_pull.c). */
typedef struct naq__fetcher naq__fetcher;

/* Where acks go once their job's outcome is confirmed (worker_job.c):
 * outlives the worker while confirmations are still on their way. */
typedef struct naq__ack_sink naq__ack_sink;

struct naq_worker {
    naq_client *client;
    natsConnection *nc;       /* while running: pull requests (sent at once) */
    natsConnection *ack_nc;   /* while running: acks and in-progress acks (batched) */
    naq__finisher *finisher;  /* while running */
    naq__cancel_watch *watch; /* while running; NULL when it could not start */
    naq__ack_sink *sink;      /* while running */
    naq__fetcher *fetcher;    /* while running */
    int prefetch;             /* jobs fetched beyond the free slots, or NAQ_PREFETCH_AUTO */
    char id[NAQ_ID_SIZE];
    int concurrency;      /* executor threads: autoscale's max, or concurrency */
    atomic_int slots_now; /* jobs at once now: concurrency, or autoscale's pick */
    int autoscale_min;    /* 0 = a fixed concurrency */
    naq__autoscale scale; /* the keeper's (worker_autoscale.c) */
    int64_t grace_ms;
    naq__queue_state *queues;
    int nqueues;
    naq__handler_entry *handlers;
    int nhandlers;

    naq__executor *execs;
    naq__slot *slots;
    pthread_mutex_t slots_lock;

    naq__registry *registry;  /* while running */
    atomic_int stop_requests; /* 1 = finish within grace_ms, >= 2 = hand back now */
    atomic_int running;
    atomic_int live_executors;
    atomic_int consumers_lost;
    atomic_int pull_failing; /* a worker_error was reported, not yet cleared */
    atomic_int handed_back;
    atomic_uint_least64_t processed, completed, failed, retried, dead_lettered, cancelled, expired;
    atomic_int active;
    atomic_int prefetch_now; /* as the fetcher last sized it */
};

/* worker.c */
int naq__worker_stopping(naq_worker *w);
/* How often a message the worker holds gets an in-progress ack (+WPI):
 * a third of the ack wait. */
int64_t naq__worker_wpi_ms(const naq_worker *w);
/* Sends an ack body ("+ACK", "+TERM", "-NAK", "-NAK {...}", "+WPI") on a
 * message's reply subject; 0 on success. A lost ack only means the job
 * is delivered again. */
int naq__worker_ack(naq_worker *w, const char *reply, const char *body);
/* The same, sent at once on the pull connection instead of batched: for an
 * ack nothing else is settled with (worker_job.c, settlement_confirm). */
int naq__worker_ack_now(naq_worker *w, const char *reply, const char *body);
naq_status naq__worker_ensure_consumers(naq_worker *w);
const naq__handler_entry *naq__worker_find_handler(const naq_worker *w, const char *name);
/* An event about job j run by w; its heap fields are left for the caller
 * to point at borrowed strings (never clear such an event). */
void naq__worker_job_event(naq_event *e, naq_event_type type, const naq_worker *w,
                           const naq_job *j);
/* Reports a worker-level error (worker_error) once until it clears:
 * a server away makes every pull fail, and one event says so. */
void naq__worker_error(naq_worker *w, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void naq__worker_error_cleared(naq_worker *w);

/* worker_pull.c */
naq_status naq__fetcher_start(naq_worker *w, naq__fetcher **out);
/* Stops fetching and hands back (nak) what was fetched and not started.
 * Accepts NULL. */
void naq__fetcher_stop(naq__fetcher *f);
/* The next job by the fairness rule, waiting for one; NULL now and then
 * (the caller checks for a stop) and when stopping. Counts it running. */
natsMsg *naq__worker_next_job(naq__executor *x);
/* The executor is done with its job: its slot asks for the next one. */
void naq__worker_job_done(naq__executor *x);
/* What autoscaling looks at: jobs running, and jobs waiting (fetched, or
 * pending on the server as the last job message said). */
void naq__fetcher_load(naq__fetcher *f, int *running, long long *waiting);
/* +WPI for fetched jobs that have waited older_than_ms to start. */
void naq__fetcher_in_progress(naq__fetcher *f, int64_t older_than_ms);

/* worker_autoscale.c: one keeper tick; changes slots_now when due. */
void naq__autoscale_tick(naq_worker *w, int64_t now_ms);

/* worker_job.c */
naq_status naq__ack_sink_create(naq_worker *w, naq__ack_sink **out);
/* Waits up to timeout_ms for the settlements still on their way, then
 * closes the sink: later confirmations settle nothing (the messages are
 * delivered again after the ack wait). Accepts NULL. */
void naq__ack_sink_close(naq__ack_sink *s, int64_t timeout_ms);
/* +WPI, every interval_ms, for the outcomes still waiting for their
 * confirmations: a slow server must not make a finished job run again. */
void naq__ack_sink_in_progress(naq__ack_sink *s, int64_t interval_ms);
void naq__worker_run_message(naq__executor *x, natsMsg *m);
/* Hands the job of slot i back to the queue (nak without delay), once,
 * logging why; slots_lock held. 1 when it did. */
int naq__worker_hand_back(naq_worker *w, int i);
/* Cancel watch callback: flags the running job job_id. */
void naq__worker_on_cancel(const char *job_id, void *ud);

/* registry.c: the registry bucket of c's subject prefix ("naq_workers",
 * or "naq_workers_<prefix>" with characters a bucket name cannot hold
 * replaced by '_'). */
void naq__registry_bucket(const naq_client *c, char *buf, size_t cap);
/* Frees a NULL-terminated heap string vector (naq_worker_info.queues,
 * current_job_ids). Accepts NULL. */
void naq__strv_free(char **v);

/* ---- registry.c (issue 4): worker lifecycle events, the live registry in
 * KV naq_workers, heartbeats. worker.c calls these. ---- */
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

/* registry.c: logs a system event (t: NAQ_EVENT_SYSTEM_*; others are
 * ignored) on "<prefix>.system.events" with message and details
 * {"process": process (NULL = "client"), "pid", "hostname"}. Never blocks
 * (the event logger's rule), so it may be called from nats.c callbacks such
 * as the reconnected handler. */
void naq__system_event(naq_client *c, naq_event_type t, const char *process, const char *message);

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

/* ---- job_ctx.c: what built-in handlers (exec_handler.c) need from a job
 * context beyond the public calls. The context belongs to the handler's
 * thread. ---- */

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

/* Test seam (worker_job.c): when set, a worker process kills itself with
 * SIGKILL once a job's outcome is confirmed, just before its ack. */
extern _Atomic int naq__worker_crash_before_ack;
/* Test seam (worker_job.c): when set, the next confirmation of an outcome
 * counts as failed although the server has it (a reply lost in an
 * outage), and the seam clears itself. */
extern _Atomic int naq__worker_unconfirm_next;

#endif
