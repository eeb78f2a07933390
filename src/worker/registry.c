/*
 * registry.c - what a worker tells the world about itself: its lifecycle
 * events, its entry in the live registry (KV bucket naq_workers) and its
 * heartbeats. The reads behind `naq workers` are registry_read.c.
 *
 * Writing. worker.c calls the naq__registry_* hooks (internal.h). The job
 * hooks run on executor threads, so they only update counters under one
 * mutex and log through the non-blocking event logger; every request to
 * the server (the KV put) is made by the registry's own heartbeat thread,
 * which a hook wakes through a condition variable when the entry changed.
 * Status events are logged while the mutex is held, so the order of
 * worker_busy / worker_idle / worker_status_changed in the event log is
 * the order in which the status changed.
 *
 * Status: starting -> idle <-> busy -> stopping -> stopped. busy -> idle is
 * debounced by IDLE_GRACE_MS: a worker fed a stream of jobs goes through
 * zero running jobs for a fraction of a millisecond between two of them,
 * and logging busy/idle around every job would add four events per job
 * without telling anyone anything. So "idle" means "no job for
 * IDLE_GRACE_MS"; the heartbeat thread makes that transition.
 *
 * Liveness. The bucket's TTL (per bucket in JetStream 2.9) is 3 heartbeat
 * intervals, so the entry of a worker that was killed expires by itself
 * within 3 intervals of its last heartbeat. The first worker to create the
 * bucket sets the TTL; a worker with a different interval keeps the
 * bucket's TTL, says so once (naq/log.h), and refreshes its entry at least 3
 * times per TTL so that it never expires while the worker lives.
 */
#include "core/kv.h"
#include "core/jsonw.h"
#include "worker.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long the first registry put waits for a stream leader (a fresh or
 * failing-over R3 bucket elects one in a few seconds). */
#define REGISTER_WAIT_MS 15000

/* A worker whose last job ended this long ago (and none started since) is
 * idle; see the top of the file. */
#define IDLE_GRACE_MS 100
/* Least time between two puts caused by a status change, and by a change
 * of the running jobs only (heartbeats are not delayed by either): the
 * registry shows a status within 0.1 s and the running jobs within 1 s,
 * and a worker busy with thousands of jobs a second writes it at most once
 * a second. */
#define STATUS_PUT_GAP_MS 100
#define JOBS_PUT_GAP_MS 1000

/* ---- names, bucket, string vectors ---- */

static const char *const status_names[] = {
#define NAQ_WORKER_STATUS_NAME(suffix, name) name,
    NAQ_WORKER_STATUS_TABLE(NAQ_WORKER_STATUS_NAME)
#undef NAQ_WORKER_STATUS_NAME
};

const char *naq_worker_status_name(naq_worker_status s)
{
    if ((int)s < 0 || s >= NAQ_WORKER_STATUS_COUNT)
        return "unknown";
    return status_names[s];
}

int naq_worker_status_parse(const char *name, naq_worker_status *out)
{
    for (int i = 0; name != NULL && i < NAQ_WORKER_STATUS_COUNT; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (naq_worker_status)i;
            return 1;
        }
    }
    return 0;
}

void naq__registry_bucket(const naq_client *c, char *buf, size_t cap)
{
    naq__prefixed_name(&c->cfg, NAQ_WORKERS_BUCKET, buf, cap);
}

void naq__strv_free(char **v)
{
    for (char **p = v; p != NULL && *p != NULL; p++)
        free(*p);
    free(v);
}

static json_t *strv_to_json(char *const *v, size_t max)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && v != NULL && v[i] != NULL && i < max; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static void local_hostname(char *buf, size_t cap)
{
    if (gethostname(buf, cap - 1) != 0 || buf[0] == '\0')
        snprintf(buf, cap, "unknown");
    buf[cap - 1] = '\0';
}

/* ---- the worker description (registry entry, event details) ---- */

/* What info_to_json writes. */
typedef enum {
    AS_DETAILS, /* an event's details: the worker's state (the event has its id) */
    AS_ENTRY,   /* the registry entry: all of it, versioned */
    AS_LISTING, /* naq_worker_info_encode: the entry, live or gone */
} json_form;

/* The one JSON form of a worker (docs/workers.md); NULL when out of
 * memory. */
static json_t *info_to_json(const naq_worker_info *w, json_form form)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int bad = 0;
#define SET(key, value) bad |= json_object_set_new(o, key, value)
    if (form != AS_DETAILS) {
        SET("version", json_integer(NAQ_REGISTRY_VERSION));
        SET("worker_id", json_string(w->worker_id));
        SET("worker_type", json_string(w->worker_type));
    }
    SET("hostname", json_string(w->hostname));
    SET("pid", json_integer(w->pid));
    SET("queues", strv_to_json(w->queues, SIZE_MAX));
    SET("concurrency", json_integer(w->concurrency));
    SET("active_jobs", json_integer(w->active_jobs));
    SET("current_job_ids", strv_to_json(w->current_job_ids, NAQ_WORKER_JOB_IDS_MAX));
    SET("processed", json_integer((json_int_t)w->processed));
    SET("failed", json_integer((json_int_t)w->failed));
    SET("status", json_string(naq_worker_status_name(w->status)));
    SET("heartbeat_interval_ms", json_integer(w->heartbeat_interval_ms));
    if (form != AS_DETAILS) {
        SET("started_at", json_real(w->started_at));
        SET("last_heartbeat", json_real(w->last_heartbeat));
    }
    if (form == AS_LISTING) {
        SET("live", json_boolean(w->live));
        if (!w->live) {
            SET("last_seen", json_real(w->last_seen));
            SET("last_event", json_string(naq_event_type_name(w->last_event)));
        }
    }
#undef SET
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

naq_status naq_worker_info_encode(const naq_worker_info *w, char **json, size_t *len)
{
    json_t *o = info_to_json(w, AS_LISTING);
    *json = o ? naq__json_dumps(o, NAQ__JSON_FLAGS) : NULL;
    json_decref(o);
    if (*json == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encoding a worker");
    if (len != NULL)
        *len = strlen(*json);
    return NAQ_OK;
}

/* ---- the registry of one running worker ---- */

struct naq__registry {
    naq_client *c;
    kvStore *kv;
    char bucket[NAQ_NAME_MAX + 16];
    char id[NAQ_ID_SIZE];
    char hostname[256];
    int64_t pid;
    char **queues;
    int concurrency;
    int64_t interval_ms; /* heartbeat events */
    int64_t refresh_ms;  /* KV puts: interval_ms, or less when the bucket's TTL is shorter */
    double started_at;   /* wall clock, seconds */
    int64_t started_mono;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */

    /* Under mu. */
    naq_worker_status status;
    char (*jobs)[NAQ_ID_SIZE]; /* running jobs, oldest first */
    size_t njobs, jobs_cap;
    int active; /* == njobs unless an allocation failed */
    uint64_t processed, failed;
    int64_t idle_at_ms;      /* busy with no job since then (monotonic); 0 = not pending */
    int64_t dirty_gap;       /* the entry changed since the last put: the gap to keep, 0 = clean */
    int64_t last_put_ms;     /* heartbeat thread's last put (monotonic) */
    int64_t sleeps_until_ms; /* when the heartbeat thread wakes by itself; 0 = awake */
    int stop;
    int put_failing;
};

/* A snapshot of r as JSON: the registry entry (kv = 1) or event details. */
static json_t *snapshot_locked(naq__registry *r, int kv)
{
    char *jobs[NAQ_WORKER_JOB_IDS_MAX + 1];
    size_t n = 0;
    for (; n < r->njobs && n < NAQ_WORKER_JOB_IDS_MAX; n++)
        jobs[n] = r->jobs[n];
    jobs[n] = NULL;
    naq_worker_info w = {.pid = r->pid,
                         .queues = r->queues,
                         .concurrency = r->concurrency,
                         .active_jobs = r->active,
                         .current_job_ids = jobs,
                         .processed = r->processed,
                         .failed = r->failed,
                         .status = r->status,
                         .started_at = r->started_at,
                         .last_heartbeat = naq__now(),
                         .heartbeat_interval_ms = r->interval_ms,
                         .live = 1};
    memcpy(w.worker_id, r->id, sizeof w.worker_id);
    memcpy(w.worker_type, "c", 2);
    memcpy(w.hostname, r->hostname, sizeof w.hostname);
    json_t *o = info_to_json(&w, kv ? AS_ENTRY : AS_DETAILS);
    if (o != NULL && !kv)
        json_object_set_new(o, "uptime_s",
                            json_real((double)(naq__mono_ms() - r->started_mono) / 1000.0));
    return o;
}

/* Logs a worker event with the snapshot as details, plus `extra` (taken). */
static void log_worker_msg_locked(naq__registry *r, naq_event_type t, const char *job_id,
                                  json_t *extra, const char *error_type, const char *error_message,
                                  const char *message)
{
    json_t *d = snapshot_locked(r, 0);
    if (d != NULL && extra != NULL)
        json_object_update(d, extra);
    json_decref(extra);
    naq_event e;
    naq_event_init(&e, t);
    snprintf(e.worker_id, sizeof e.worker_id, "%s", r->id);
    snprintf(e.worker_type, sizeof e.worker_type, "c");
    if (job_id != NULL)
        snprintf(e.job_id, sizeof e.job_id, "%s", job_id);
    e.error_type = (char *)error_type;
    e.error_message = (char *)error_message;
    e.message = (char *)message;
    e.details_json = d ? naq__json_dumps(d, NAQ__JSON_FLAGS) : NULL;
    json_decref(d);
    naq_client_log(r->c, &e);
    free(e.details_json);
}

static void log_worker_locked(naq__registry *r, naq_event_type t, const char *job_id, json_t *extra,
                              const char *error_type, const char *error_message)
{
    log_worker_msg_locked(r, t, job_id, extra, error_type, error_message, NULL);
}

/* Wakes the heartbeat thread only if it would sleep past `due`: a worker
 * running a stream of short jobs changes its entry on every job, and one
 * wake-up per job would cost a context switch each. */
static void wake_by_locked(naq__registry *r, int64_t due)
{
    if (r->sleeps_until_ms > due)
        pthread_cond_signal(&r->cv);
}

/* The entry needs a put within `gap` ms of the last one. */
static void mark_dirty_locked(naq__registry *r, int64_t gap)
{
    if (r->dirty_gap == 0 || gap < r->dirty_gap) {
        r->dirty_gap = gap;
        wake_by_locked(r, r->last_put_ms + gap);
    }
}

/* Moves to `to`, logging worker_status_changed and, for idle / busy, the
 * event of that name. Wakes the heartbeat thread to put the entry. */
static void set_status_locked(naq__registry *r, naq_worker_status to, const char *job_id)
{
    naq_worker_status from = r->status;
    if (from == to)
        return;
    r->status = to;
    char msg[32]; /* shown by `naq events` */
    snprintf(msg, sizeof msg, "%s -> %s", naq_worker_status_name(from), naq_worker_status_name(to));
    log_worker_msg_locked(r, NAQ_EVENT_WORKER_STATUS_CHANGED, NULL,
                          json_pack("{s:s, s:s}", "from", naq_worker_status_name(from), "to",
                                    naq_worker_status_name(to)),
                          NULL, NULL, msg);
    if (to == NAQ_WORKER_STATUS_BUSY)
        log_worker_locked(r, NAQ_EVENT_WORKER_BUSY, job_id, NULL, NULL, NULL);
    else if (to == NAQ_WORKER_STATUS_IDLE && from == NAQ_WORKER_STATUS_BUSY)
        log_worker_locked(r, NAQ_EVENT_WORKER_IDLE, NULL, NULL, NULL, NULL);
    mark_dirty_locked(r, STATUS_PUT_GAP_MS);
}

/* worker_assigned / worker_released: job events, on the job's subject. */
static void log_job(naq__registry *r, naq_event_type t, const char *job_id, const char *queue,
                    const char *details)
{
    naq_event e;
    naq_event_init(&e, t);
    snprintf(e.job_id, sizeof e.job_id, "%s", job_id ? job_id : "");
    snprintf(e.queue_name, sizeof e.queue_name, "%s", queue ? queue : "");
    snprintf(e.worker_id, sizeof e.worker_id, "%s", r->id);
    snprintf(e.worker_type, sizeof e.worker_type, "c");
    e.details_json = (char *)details;
    naq_client_log(r->c, &e);
}

/* ---- system events ---- */

static void system_event(naq_client *c, naq_event_type t, const char *process,
                         const char *worker_id, const char *message)
{
    char host[256];
    local_hostname(host, sizeof host);
    json_t *d = json_pack("{s:s, s:I, s:s}", "process", process ? process : "client", "pid",
                          (json_int_t)getpid(), "hostname", host);
    /* The worker id goes in the details only: a system event is about the
     * process, and readers that follow a worker by its events' worker_id
     * (naq events workers) must not take system_shutdown for a sign of
     * life after worker_stopped. */
    if (worker_id != NULL && d != NULL)
        json_object_set_new(d, "worker_id", json_string(worker_id));
    naq_event e;
    naq_event_init(&e, t);
    e.message = (char *)message;
    e.details_json = d ? naq__json_dumps(d, NAQ__JSON_FLAGS) : NULL;
    json_decref(d);
    naq_client_log(c, &e);
    free(e.details_json);
}

void naq__system_event(naq_client *c, naq_event_type t, const char *process, const char *message)
{
    if (c == NULL || naq_event_type_category(t) != NAQ_CATEGORY_SYSTEM)
        return;
    system_event(c, t, process, NULL, message);
}

/* ---- the heartbeat thread ---- */

/* Puts the entry; called without the lock (it waits for the server). */
static void put_entry(naq__registry *r, const char *json)
{
    natsStatus ns = kvStore_PutString(NULL, r->kv, r->id, json);
    pthread_mutex_lock(&r->mu);
    if (ns != NATS_OK && !r->put_failing) {
        r->put_failing = 1;
        char why[256];
        snprintf(why, sizeof why, "cannot refresh the registry entry in KV %s: %s", r->bucket,
                 natsStatus_GetText(ns));
        naq__log(NAQ_LOG_WARN, "naq worker %s: %s; retrying at every heartbeat", r->id, why);
        log_worker_locked(r, NAQ_EVENT_WORKER_ERROR, NULL, NULL, "RegistryError", why);
    } else if (ns == NATS_OK && r->put_failing) {
        r->put_failing = 0;
        naq__log(NAQ_LOG_INFO, "naq worker %s: registry entry refreshed again", r->id);
    }
    pthread_mutex_unlock(&r->mu);
}

static void *heartbeat_main(void *arg)
{
    naq__registry *r = arg;
    int64_t now = naq__mono_ms();
    int64_t next_beat = now + r->interval_ms, next_refresh = now + r->refresh_ms;
    int64_t last_put = now;
    pthread_mutex_lock(&r->mu);
    r->last_put_ms = now;
    while (!r->stop) {
        now = naq__mono_ms();
        if (r->status == NAQ_WORKER_STATUS_BUSY && r->active == 0 && r->idle_at_ms > 0 &&
            now >= r->idle_at_ms + IDLE_GRACE_MS) {
            r->idle_at_ms = 0;
            set_status_locked(r, NAQ_WORKER_STATUS_IDLE, NULL);
        }
        int beat = now >= next_beat;
        if (beat || now >= next_refresh || (r->dirty_gap && now >= last_put + r->dirty_gap)) {
            if (beat) {
                log_worker_locked(r, NAQ_EVENT_WORKER_HEARTBEAT, NULL, NULL, NULL, NULL);
                next_beat = now + r->interval_ms;
            }
            json_t *o = snapshot_locked(r, 1);
            char *json = o ? naq__json_dumps(o, NAQ__JSON_FLAGS) : NULL;
            json_decref(o);
            r->dirty_gap = 0;
            pthread_mutex_unlock(&r->mu);
            if (json != NULL)
                put_entry(r, json);
            free(json);
            pthread_mutex_lock(&r->mu);
            last_put = r->last_put_ms = naq__mono_ms();
            next_refresh = last_put + r->refresh_ms;
            continue; /* re-check stop and the clock after waiting for the server */
        }
        int64_t wake = next_beat < next_refresh ? next_beat : next_refresh;
        if (r->dirty_gap && last_put + r->dirty_gap < wake)
            wake = last_put + r->dirty_gap;
        if (r->idle_at_ms > 0 && r->idle_at_ms + IDLE_GRACE_MS < wake)
            wake = r->idle_at_ms + IDLE_GRACE_MS;
        struct timespec ts = naq__deadline(CLOCK_MONOTONIC, wake > now ? wake - now : 1);
        r->sleeps_until_ms = wake;
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        r->sleeps_until_ms = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- start and stop ---- */

/* Binds the registry bucket, creating it with TTL ttl_ns when missing. */
static naq_status open_bucket(naq_client *c, const char *bucket, int64_t ttl_ns, kvStore **out)
{
    kvConfig kc;
    /* Another worker may have made it with another TTL. */
    naq__kv_config_init(&kc, bucket, "naq live worker registry (docs/workers.md)", c->cfg.replicas,
                        ttl_ns);
    natsStatus ns = naq__kv_bind(c->js, &kc, out);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot open the worker registry (KV %s)",
                              bucket);
    return NAQ_OK;
}

/* The bucket's TTL decides when entries expire; refresh often enough for
 * it. Says once per process when it is not the one this worker wants. */
static void adopt_bucket_ttl(naq__registry *r, int64_t want_ns)
{
    static atomic_int warned;
    kvStatus *st = NULL;
    if (kvStore_Status(&st, r->kv) != NATS_OK)
        return;
    int64_t ttl_ns = kvStatus_TTL(st);
    kvStatus_Destroy(st);
    if (ttl_ns == want_ns)
        return;
    int64_t ttl_ms = ttl_ns / 1000000;
    if (ttl_ms > 0 && ttl_ms / 3 < r->refresh_ms)
        r->refresh_ms = ttl_ms / 3 > 0 ? ttl_ms / 3 : 1;
    if (atomic_exchange(&warned, 1))
        return;
    if (ttl_ns == 0)
        naq__log(NAQ_LOG_WARN,
                 "naq worker %s: the worker registry (KV %s) has no TTL, so entries of killed "
                 "workers never expire; delete the bucket (nats kv del %s) to let naq recreate it "
                 "with a TTL of 3 heartbeat intervals\n",
                 r->id, r->bucket, r->bucket);
    else
        naq__log(NAQ_LOG_WARN,
                 "naq worker %s: the worker registry (KV %s) keeps entries for %lld ms, not the "
                 "%lld ms (3 x NAQ_HEARTBEAT_INTERVAL) this worker would use; using the bucket's "
                 "TTL (its entry is refreshed every %lld ms)\n",
                 r->id, r->bucket, (long long)ttl_ms, (long long)(want_ns / 1000000),
                 (long long)r->refresh_ms);
}

static void registry_free(naq__registry *r)
{
    kvStore_Destroy(r->kv);
    naq__strv_free(r->queues);
    free(r->jobs);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

naq_status naq__registry_start(naq_client *c, const naq__registry_info *info, naq__registry **out)
{
    *out = NULL;
    naq_status s = naq_id_validate("worker id", info->worker_id);
    if (s != NAQ_OK)
        return s;
    int64_t interval = c->cfg.heartbeat_interval_ms;
    if (interval < 1)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "heartbeat interval %lld ms is not positive; set NAQ_HEARTBEAT_INTERVAL "
                         "to e.g. 5s",
                         (long long)interval);
    naq__registry *r = calloc(1, sizeof *r);
    if (r == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory starting the worker registry");
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->c = c;
    snprintf(r->id, sizeof r->id, "%s", info->worker_id);
    local_hostname(r->hostname, sizeof r->hostname);
    r->pid = (int64_t)getpid();
    r->concurrency = info->concurrency;
    r->interval_ms = r->refresh_ms = interval;
    r->started_at = naq__now();
    r->started_mono = naq__mono_ms();
    r->status = NAQ_WORKER_STATUS_STARTING;
    size_t nq = 0;
    while (info->queues != NULL && info->queues[nq] != NULL)
        nq++;
    r->queues = calloc(nq + 1, sizeof *r->queues);
    for (size_t i = 0; r->queues != NULL && i < nq; i++)
        if ((r->queues[i] = strdup(info->queues[i])) == NULL) {
            naq__strv_free(r->queues);
            r->queues = NULL;
        }
    if (r->queues == NULL) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory starting the worker registry");
        goto fail;
    }
    naq__registry_bucket(c, r->bucket, sizeof r->bucket);
    int64_t ttl_ns = 3 * interval * 1000000LL; /* KV TTL is in nanoseconds */
    if ((s = open_bucket(c, r->bucket, ttl_ns, &r->kv)) != NAQ_OK)
        goto fail;
    adopt_bucket_ttl(r, ttl_ns);

    char msg[NAQ_ID_SIZE + 64], what[256];
    snprintf(msg, sizeof msg, "worker %s started", r->id);
    system_event(c, NAQ_EVENT_SYSTEM_STARTUP, "worker", r->id, msg);
    size_t len = (size_t)snprintf(what, sizeof what, "queues ");
    for (size_t i = 0; r->queues[i] != NULL && len < sizeof what; i++)
        len += (size_t)snprintf(what + len, sizeof what - len, "%s%s", i ? "," : "", r->queues[i]);
    if (len < sizeof what)
        snprintf(what + len, sizeof what - len, ", concurrency %d", r->concurrency);
    pthread_mutex_lock(&r->mu);
    log_worker_msg_locked(r, NAQ_EVENT_WORKER_STARTED, NULL, NULL, NULL, NULL, what);
    set_status_locked(r, NAQ_WORKER_STATUS_IDLE, NULL);
    json_t *o = snapshot_locked(r, 1);
    r->dirty_gap = 0;
    pthread_mutex_unlock(&r->mu);
    /* The first put is synchronous so that a worker that runs is listed. */
    char *json = o ? naq__json_dumps(o, NAQ__JSON_FLAGS) : NULL;
    json_decref(o);
    natsStatus ns = json ? kvStore_PutString(NULL, r->kv, r->id, json) : NATS_NO_MEMORY;
    /* On a cluster, a bucket just created (or whose leader just died) has
     * no stream leader for a moment: nobody answers the put. Measured: the
     * first worker on a fresh 3-node R3 cluster failed here. */
    for (int64_t end = naq__mono_ms() + REGISTER_WAIT_MS;
         (ns == NATS_NO_RESPONDERS || ns == NATS_TIMEOUT) && naq__mono_ms() < end;) {
        naq__sleep_ms(200);
        ns = kvStore_PutString(NULL, r->kv, r->id, json);
    }
    free(json);
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot register worker %s in KV %s", r->id,
                           r->bucket);
        goto fail;
    }
    if (pthread_create(&r->thread, NULL, heartbeat_main, r) != 0) {
        kvStore_Delete(r->kv, r->id);
        s = naq__fail(NAQ_ERR_NO_MEMORY, "cannot start the heartbeat thread of worker %s", r->id);
        goto fail;
    }
    *out = r;
    return NAQ_OK;
fail:
    registry_free(r);
    return s;
}

void naq__registry_job_started(naq__registry *r, const char *job_id, const char *queue)
{
    if (r == NULL || job_id == NULL)
        return;
    log_job(r, NAQ_EVENT_WORKER_ASSIGNED, job_id, queue, NULL);
    pthread_mutex_lock(&r->mu);
    if (r->njobs == r->jobs_cap)
        naq__array_grow(&r->jobs, &r->jobs_cap, sizeof *r->jobs,
                        (size_t)(r->concurrency > 0 ? r->concurrency : 4));
    if (r->njobs < r->jobs_cap) /* else counted, not listed */
        snprintf(r->jobs[r->njobs++], NAQ_ID_SIZE, "%s", job_id);
    r->active++;
    r->idle_at_ms = 0;
    if (r->status == NAQ_WORKER_STATUS_IDLE || r->status == NAQ_WORKER_STATUS_STARTING)
        set_status_locked(r, NAQ_WORKER_STATUS_BUSY, job_id);
    else
        mark_dirty_locked(r, JOBS_PUT_GAP_MS);
    pthread_mutex_unlock(&r->mu);
}

void naq__registry_job_counted(naq__registry *r, int succeeded)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->processed++;
    if (!succeeded)
        r->failed++;
    mark_dirty_locked(r, JOBS_PUT_GAP_MS);
    pthread_mutex_unlock(&r->mu);
}

void naq__registry_job_finished(naq__registry *r, const char *job_id, const char *queue,
                                int succeeded)
{
    if (r == NULL || job_id == NULL)
        return;
    /* succeeded < 0: handed back at a stop, not settled here (internal.h) */
    log_job(r, NAQ_EVENT_WORKER_RELEASED, job_id, queue,
            succeeded < 0 ? "{\"succeeded\":false,\"handed_back\":true}"
            : succeeded   ? "{\"succeeded\":true}"
                          : "{\"succeeded\":false}");
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->njobs; i++) {
        if (strcmp(r->jobs[i], job_id) == 0) {
            memmove(r->jobs + i, r->jobs + i + 1, (r->njobs - i - 1) * sizeof *r->jobs);
            r->njobs--;
            break;
        }
    }
    if (r->active > 0)
        r->active--;
    if (succeeded >= 0)
        r->processed++;
    if (succeeded == 0)
        r->failed++;
    mark_dirty_locked(r, JOBS_PUT_GAP_MS);
    if (r->active == 0 && r->status == NAQ_WORKER_STATUS_BUSY) {
        r->idle_at_ms = naq__mono_ms();
        wake_by_locked(r, r->idle_at_ms + IDLE_GRACE_MS);
    }
    pthread_mutex_unlock(&r->mu);
}

void naq__registry_error(naq__registry *r, const char *error_type, const char *message)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    log_worker_locked(r, NAQ_EVENT_WORKER_ERROR, NULL, NULL,
                      error_type && *error_type ? error_type : "Error", message);
    pthread_mutex_unlock(&r->mu);
}

void naq__registry_concurrency(naq__registry *r, int from, int to, const char *reason)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->concurrency = to;
    const char *status = naq_worker_status_name(r->status);
    char msg[96]; /* shown by `naq events` */
    snprintf(msg, sizeof msg, "concurrency %d -> %d (%s)", from, to, reason);
    log_worker_msg_locked(r, NAQ_EVENT_WORKER_STATUS_CHANGED, NULL,
                          json_pack("{s:s, s:s, s:i, s:i, s:s}", "from", status, "to", status,
                                    "old_concurrency", from, "new_concurrency", to, "reason",
                                    reason),
                          NULL, NULL, msg);
    mark_dirty_locked(r, STATUS_PUT_GAP_MS);
    pthread_mutex_unlock(&r->mu);
}

void naq__registry_stopping(naq__registry *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    if (r->status != NAQ_WORKER_STATUS_STOPPING && r->status != NAQ_WORKER_STATUS_STOPPED)
        set_status_locked(r, NAQ_WORKER_STATUS_STOPPING, NULL);
    pthread_mutex_unlock(&r->mu);
}

void naq__registry_stop(naq__registry *r, const char *how, int handed_back)
{
    if (r == NULL)
        return;
    naq__registry_stopping(r);
    pthread_mutex_lock(&r->mu);
    set_status_locked(r, NAQ_WORKER_STATUS_STOPPED, NULL);
    char msg[NAQ_ID_SIZE + 64];
    snprintf(msg, sizeof msg, "%s stop, %d job%s handed back", how ? how : "graceful", handed_back,
             handed_back == 1 ? "" : "s");
    log_worker_msg_locked(
        r, NAQ_EVENT_WORKER_STOPPED, NULL,
        json_pack("{s:s, s:i}", "how", how ? how : "graceful", "handed_back", handed_back), NULL,
        NULL, msg);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    /* After the join: no heartbeat can put the entry back. */
    natsStatus ns = kvStore_Delete(r->kv, r->id);
    if (ns != NATS_OK)
        naq__log(NAQ_LOG_WARN,
                 "naq worker %s: cannot remove its registry entry (%s); it expires by itself\n",
                 r->id, natsStatus_GetText(ns));
    snprintf(msg, sizeof msg, "worker %s stopped (%s)", r->id, how ? how : "graceful");
    system_event(r->c, NAQ_EVENT_SYSTEM_SHUTDOWN, "worker", r->id, msg);
    registry_free(r);
}
