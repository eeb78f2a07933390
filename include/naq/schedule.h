/*
 * naq/schedule.h - schedules (cron, interval, one-off), delayed jobs, and
 * the leader-elected scheduler that turns both into queued jobs.
 *
 * A schedule is a JSON document in the KV bucket "naq_schedules" (key =
 * schedule name). Any number of `naq scheduler` processes may run; one of
 * them holds a lease in the KV bucket "naq_scheduler_lock" and is the only
 * one that triggers schedules and releases delayed jobs. Every trigger
 * enqueues a new job whose id is made of the schedule name and the due time
 * ("<name>-<due_ms>"), so a trigger repeated by a new leader is stored once.
 * docs/scheduler.md explains the guarantees and the layout.
 *
 * Thread-safety: the naq_schedule_* calls, naq_enqueue_at and
 * naq_scheduler_get_stats are safe on a shared client from any thread. A
 * naq_schedule struct belongs to one thread at a time. naq_scheduler_run
 * blocks its thread; naq_scheduler_stop may be called from any thread or a
 * signal handler.
 */
#ifndef NAQ_SCHEDULE_H
#define NAQ_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "naq/client.h"
#include "naq/config.h"
#include "naq/id.h"
#include "naq/job.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the schedule JSON. When it changes: (1) bump this, (2) keep
 * decoding every older version (new fields get their defaults), (3) say
 * what changed in docs/scheduler.md under "Schedule JSON", (4) add a test
 * that decodes the old form. */
#define NAQ_SCHEDULE_VERSION 1

/* Schedule names: 1..NAQ_SCHEDULE_NAME_MAX letters, digits, '-' or '_'
 * (they are KV keys and subject tokens, and "<name>-<due_ms>" must stay a
 * valid job id). */
#define NAQ_SCHEDULE_NAME_MAX 100
#define NAQ_CRON_TEXT_MAX 128

/* run_all fires at most this many missed due times in one catch-up. */
#define NAQ_MISFIRE_RUN_ALL_MAX 1000

typedef enum {
    NAQ_SCHEDULE_CRON,  /* cron expression (naq/cron.h), in zone tz */
    NAQ_SCHEDULE_EVERY, /* every every_ms, the first one every_ms after creation */
    NAQ_SCHEDULE_AT,    /* once, at at_ms */
} naq_schedule_kind;

/* What the leader does with due times that are older than its misfire
 * grace (naq_scheduler_opts.misfire_grace_ms) when it sees them, i.e.
 * after all schedulers were down. Younger due times always fire, one job
 * each, whatever the policy: a leader handover loses no trigger. */
typedef enum {
    NAQ_MISFIRE_RUN_ONCE, /* one job for all missed due times (the oldest), then on schedule */
    NAQ_MISFIRE_RUN_ALL,  /* one job per missed due time, oldest first, at most
                             NAQ_MISFIRE_RUN_ALL_MAX */
    NAQ_MISFIRE_SKIP,     /* no job for missed due times; next one in the future */
} naq_misfire_policy;

/* A schedule. Times are milliseconds since the epoch, UTC (the JSON
 * carries seconds, like events). args_json is heap, owned by the struct:
 * naq_schedule_clear() frees it. */
typedef struct {
    int version; /* NAQ_SCHEDULE_VERSION when built here */
    char name[NAQ_ID_SIZE];
    naq_schedule_kind kind;
    char cron[NAQ_CRON_TEXT_MAX]; /* NAQ_SCHEDULE_CRON */
    char tz[NAQ_NAME_MAX];        /* zone of the cron expression; "" = UTC */
    int64_t every_ms;             /* NAQ_SCHEDULE_EVERY, >= 100 */
    int64_t at_ms;                /* NAQ_SCHEDULE_AT */
    int64_t repeat;               /* triggers left; -1 = no limit; 0 = finished */
    char queue[NAQ_ID_SIZE];      /* default "default" */
    char function[NAQ_ID_SIZE];
    char *args_json; /* heap; JSON value handed to the job; NULL = [] */
    int max_retries;
    int64_t timeout_ms;
    int priority; /* NAQ_PRIORITY_*, default normal */
    int paused;
    naq_misfire_policy misfire; /* default NAQ_MISFIRE_RUN_ONCE */
    int64_t next_run_ms;        /* next due time; 0 = finished (no further trigger) */
    int64_t last_run_ms;        /* due time of the last trigger; 0 = never */
    int64_t created_at_ms;
    /* KV revision the schedule was read at; filled on read, never encoded. */
    uint64_t revision;
} naq_schedule;

/* NAQ_OK when name is a valid schedule name, else NAQ_ERR_INVALID_ARG
 * saying which character is wrong. */
naq_status naq_schedule_name_validate(const char *name);

/* Zeroes s and sets the defaults: version, queue "default", repeat -1,
 * normal priority, run_once. */
void naq_schedule_init(naq_schedule *s);
/* Frees args_json and re-initialises s. Accepts NULL. */
void naq_schedule_clear(naq_schedule *s);
/* Deep copy into dst (which holds no heap memory: init or clear it first). */
naq_status naq_schedule_copy(naq_schedule *dst, const naq_schedule *src);

/* NAQ_OK when s can be stored: valid name, queue and function, a
 * parseable cron expression in a known zone, every_ms >= 100, repeat -1 or
 * >= 0, ranges of the job options. NAQ_ERR_INVALID_ARG says what is wrong. */
naq_status naq_schedule_validate(const naq_schedule *s);

/* JSON codec (docs/scheduler.md, "Schedule JSON"). *json is heap, freed
 * with free(). Decode initialises out; clear it even on failure. Unknown
 * fields are ignored; a newer version is NAQ_ERR_CODEC. */
naq_status naq_schedule_encode(const naq_schedule *s, char **json, size_t *len);
naq_status naq_schedule_decode(const char *json, size_t len, naq_schedule *out);

/* The first due time of s strictly after after_ms, by its kind alone
 * (repeat and paused are not looked at). NAQ_ERR_NOT_FOUND when there is
 * none (an `at` time already passed, a cron expression that never fires). */
naq_status naq_schedule_next(const naq_schedule *s, int64_t after_ms, int64_t *next_ms);

/* The id of the job that the trigger of `name` due at due_ms enqueues:
 * "<name>-<due_ms>". Every leader derives the same id, which is what makes
 * a repeated trigger a no-op. */
naq_status naq_schedule_job_id(const char *name, int64_t due_ms, char out[NAQ_ID_SIZE]);

/* Names used on the command line and in the JSON. */
const char *naq_schedule_kind_name(naq_schedule_kind k);   /* "cron", "every", "at" */
const char *naq_misfire_policy_name(naq_misfire_policy p); /* "run_once", "run_all", "skip" */
naq_status naq_misfire_policy_parse(const char *text, naq_misfire_policy *out);

/* Parses a point in time into ms since the epoch: ISO-8601 with Z or an
 * offset ("2026-11-23T15:00:00Z", "2026-11-23T16:00:00.5+01:00"; a time
 * without either is refused rather than guessed), or a duration from now_ms
 * ("+30s", "in 5m", durations as naq_parse_duration_ms). */
naq_status naq_parse_time_ms(const char *text, int64_t now_ms, int64_t *out_ms);

/* ---- Schedules in KV (each call logs its scheduler_* event) ---- */

/* Stores a new schedule. Sets created_at_ms (if 0) and next_run_ms (the
 * first due time after now) in *s, validates, and creates the key only if
 * it is absent: NAQ_ERR_EXISTS when a schedule of that name exists. Fills
 * s->revision. Logs scheduler_created. An `at` time in the past is
 * NAQ_ERR_INVALID_ARG. */
naq_status naq_schedule_add(naq_client *c, naq_schedule *s);

/* Reads one schedule into out (initialised here; clear it even on
 * failure). NAQ_ERR_NOT_FOUND when there is none. */
naq_status naq_schedule_get(naq_client *c, const char *name, naq_schedule *out);

typedef struct {
    naq_schedule *items;
    size_t count;
} naq_schedule_list;

/* Every schedule, sorted by name. Free with naq_schedule_list_free (also
 * after a failure). One read of the whole bucket. */
naq_status naq_schedules_list(naq_client *c, naq_schedule_list *out);
void naq_schedule_list_free(naq_schedule_list *l);

/* Changes a schedule by compare-and-set: reads it, lets fn edit a copy,
 * validates and writes it back only if nobody wrote in between; on a
 * conflict (the leader recorded a trigger meanwhile) it re-reads and calls
 * fn again, so fn must only apply the caller's changes. The name cannot be
 * changed. When the timing (kind, cron, tz, every, at) changed or a
 * finished schedule got triggers back (repeat != 0), next_run is
 * recomputed from now. fn returns NAQ_OK to write, anything else to abort
 * with that status. Logs scheduler_modified. *out (optional, may be NULL;
 * initialise it first) receives the stored schedule. */
typedef naq_status (*naq_schedule_edit_fn)(naq_schedule *s, void *user);
naq_status naq_schedule_modify(naq_client *c, const char *name, naq_schedule_edit_fn fn, void *user,
                               naq_schedule *out);

/* Pausing stops triggers; resuming sets next_run to the first due time
 * after now (due times that passed while paused are not caught up). Both
 * are no-ops (NAQ_OK, no event) when the schedule is already in that
 * state. Log scheduler_paused / scheduler_resumed. */
naq_status naq_schedule_pause(naq_client *c, const char *name);
naq_status naq_schedule_resume(naq_client *c, const char *name);

/* Deletes a schedule; jobs it enqueued stay. NAQ_ERR_NOT_FOUND when there
 * is none. Logs scheduler_cancelled. */
naq_status naq_schedule_remove(naq_client *c, const char *name);

/* ---- Delayed jobs ---- */

/* Like naq_enqueue (same validation, same options, same job JSON), but
 * the job reaches its queue at run_at_unix (seconds since the epoch, UTC)
 * instead of now: it is stored in the due-time index (stream NAQ_DELAYED)
 * and a running `naq scheduler` releases it within a second of that time,
 * never before. Logs "scheduled" with details {"run_at": ...}. A time
 * that is not in the future enqueues at once (naq_enqueue). Enqueueing the
 * same job id again within 2 minutes stores it once. */
naq_status naq_enqueue_at(naq_client *c, const naq_job_opts *o, double run_at_unix,
                          char job_id[NAQ_ID_SIZE]);
/* naq_enqueue_at(now + delay_ms). */
naq_status naq_enqueue_in(naq_client *c, const naq_job_opts *o, int64_t delay_ms,
                          char job_id[NAQ_ID_SIZE]);

/* ---- The scheduler ---- */

typedef struct naq_scheduler naq_scheduler;

typedef struct {
    const char *scheduler_id; /* NULL = "<host>-<pid>-<random>"; a subject token */
    int64_t
        lease_ms; /* lease (lock bucket TTL) when this scheduler creates the bucket; default 6000 */
    int64_t tick_ms;          /* how often the leader looks for due work; default 100 */
    int64_t misfire_grace_ms; /* due times older than this are misfires; default 30000 */
} naq_scheduler_opts;

void naq_scheduler_opts_init(naq_scheduler_opts *o);

/* Creates a scheduler candidate on c (which must outlive it); it does
 * nothing until naq_scheduler_run. Binds or creates the lock bucket; when
 * the bucket exists its TTL is the lease, whatever o->lease_ms says (see
 * naq_scheduler_lease_ms). Destroy with naq_scheduler_destroy. */
naq_status naq_scheduler_create(naq_client *c, const naq_scheduler_opts *o, naq_scheduler **out);
/* Frees the scheduler; call it once naq_scheduler_run has returned.
 * Accepts NULL. */
void naq_scheduler_destroy(naq_scheduler *s);

/* Runs until naq_scheduler_stop: competes for the lease every second and,
 * while leader, triggers due schedules and releases due delayed jobs every
 * tick. On stop it releases the lease (so another candidate takes over at
 * once) and returns NAQ_OK. Logs system_startup / system_shutdown,
 * scheduler_leader_elected / scheduler_leader_lost (schedule_id = the
 * scheduler id), system_error / system_recovery. */
naq_status naq_scheduler_run(naq_scheduler *s);
/* Asks naq_scheduler_run to return. Async-signal-safe. */
void naq_scheduler_stop(naq_scheduler *s);

const char *naq_scheduler_id(const naq_scheduler *s);
/* The lease in force: the lock bucket's TTL. */
int64_t naq_scheduler_lease_ms(const naq_scheduler *s);

typedef struct {
    int leader;               /* holds a lease valid right now */
    uint64_t ticks;           /* leader ticks run */
    uint64_t elections;       /* times this candidate became leader */
    uint64_t triggers;        /* schedule triggers (jobs enqueued or found already enqueued) */
    uint64_t trigger_errors;  /* triggers that failed and will be retried */
    uint64_t released;        /* delayed jobs moved to their queue */
    uint64_t schedules;       /* schedules the leader keeps in memory */
    uint64_t delayed_pending; /* due-index entries the leader knows of (>= pending delayed jobs) */
    /* Cost counters: what the leader asked the server. */
    uint64_t kv_reads;      /* single-key KV reads (kvStore_Get) */
    uint64_t kv_writes;     /* KV writes (schedule updates, lease) */
    uint64_t watch_entries; /* schedule values received through the KV watch */
    uint64_t index_reads;   /* direct gets on the due-time index */
    uint64_t index_feed;    /* due-index arrivals seen (headers only) */
} naq_scheduler_stats;

/* A snapshot of the counters. Thread-safe. */
void naq_scheduler_get_stats(naq_scheduler *s, naq_scheduler_stats *out);

#ifdef __cplusplus
}
#endif
#endif
