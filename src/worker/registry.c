/*
 * worker_registry.c - what a worker tells the world about itself: its
 * lifecycle events, its entry in the live registry (KV bucket naq_workers)
 * and its heartbeats; and the reads behind `naq workers`.
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
 *
 * Reading. The live list is one stream-info request for the bucket's keys
 * and one get per key (not a KV watch: see naq_workers_list). Gone workers
 * come from the event log: a consumer on "<prefix>.workers.events.>"
 * delivering the LAST message of each worker subject (deliver policy
 * last-per-subject), so the cost grows with the number of worker ids the
 * stream holds, not with their heartbeats (a worker heartbeating every 5 s
 * writes 17,280 events a day; reading a day of them for 20 workers by
 * start time would scan 345,600 messages to keep 20).
 */
#include "internal.h"
#include "core/jsonw.h"

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
/* A read of the event log that takes longer gives up. */
#define READ_DEADLINE_MS 60000
/* A reader that got nothing for this long asks the consumer whether
 * anything is left (normally the last message read says so). */
#define SILENCE_MS 200
/* JetStream API error: "stream not found". */
#define JS_STREAM_NOT_FOUND 10059

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(17))

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

static void bucket_name(const naq_client *c, char *buf, size_t cap)
{
    const char *prefix = c->cfg.subject_prefix;
    if (strcmp(prefix, "naq") == 0) {
        snprintf(buf, cap, "%s", NAQ_WORKERS_BUCKET);
        return;
    }
    int n = snprintf(buf, cap, "%s_%s", NAQ_WORKERS_BUCKET, prefix);
    for (int i = (int)strlen(NAQ_WORKERS_BUCKET); i < n && (size_t)i < cap; i++) {
        char ch = buf[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            buf[i] = '_';
    }
}

static void strv_free(char **v)
{
    for (char **p = v; p != NULL && *p != NULL; p++)
        free(*p);
    free(v);
}

/* A NULL-terminated heap copy of the strings of a JSON array (non-strings
 * are skipped); NULL only when out of memory. */
static char **strv_from_json(json_t *arr)
{
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    char **v = calloc(n + 1, sizeof *v);
    if (v == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s == NULL)
            continue;
        if ((v[k] = strdup(s)) == NULL) {
            strv_free(v);
            return NULL;
        }
        k++;
    }
    return v;
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

static void info_clear(naq_worker_info *w)
{
    strv_free(w->queues);
    strv_free(w->current_job_ids);
    memset(w, 0, sizeof *w);
}

void naq_worker_info_list_free(naq_worker_info_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        info_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static double get_num(json_t *o, const char *key, double dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static void get_str(json_t *o, const char *key, char *dst, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v != NULL)
        snprintf(dst, cap, "%s", v);
}

/* Fills w (zeroed by the caller) from a registry entry or an event's
 * details; fields that are absent keep their zero. */
static naq_status info_from_json(json_t *o, naq_worker_info *w)
{
    get_str(o, "worker_id", w->worker_id, sizeof w->worker_id);
    get_str(o, "worker_type", w->worker_type, sizeof w->worker_type);
    get_str(o, "hostname", w->hostname, sizeof w->hostname);
    w->pid = (int64_t)get_num(o, "pid", 0);
    w->concurrency = (int)get_num(o, "concurrency", 0);
    w->active_jobs = (int)get_num(o, "active_jobs", 0);
    w->processed = (uint64_t)get_num(o, "processed", 0);
    w->failed = (uint64_t)get_num(o, "failed", 0);
    w->started_at = get_num(o, "started_at", 0);
    w->last_heartbeat = get_num(o, "last_heartbeat", 0);
    w->heartbeat_interval_ms = (int64_t)get_num(o, "heartbeat_interval_ms", 0);
    w->status = NAQ_WORKER_STATUS_IDLE;
    naq_worker_status_parse(json_string_value(json_object_get(o, "status")), &w->status);
    w->queues = strv_from_json(json_object_get(o, "queues"));
    w->current_job_ids = strv_from_json(json_object_get(o, "current_job_ids"));
    if (w->queues == NULL || w->current_job_ids == NULL) {
        info_clear(w);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading a worker");
    }
    return NAQ_OK;
}

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
    *json = o ? naq__json_dumps(o, JSON_FLAGS) : NULL;
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
    e.details_json = d ? naq__json_dumps(d, JSON_FLAGS) : NULL;
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
    e.details_json = d ? naq__json_dumps(d, JSON_FLAGS) : NULL;
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

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

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
            char *json = o ? naq__json_dumps(o, JSON_FLAGS) : NULL;
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
        struct timespec ts;
        deadline_after(&ts, wake > now ? wake - now : 1);
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
    kvConfig_Init(&kc);
    kc.Bucket = bucket;
    kc.Description = "naq live worker registry (docs/workers.md)";
    kc.History = 1;
    kc.StorageType = js_FileStorage;
    kc.Replicas = c->cfg.replicas;
    kc.TTL = ttl_ns; /* another worker may have made it with another TTL */
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
    strv_free(r->queues);
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
            strv_free(r->queues);
            r->queues = NULL;
        }
    if (r->queues == NULL) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory starting the worker registry");
        goto fail;
    }
    bucket_name(c, r->bucket, sizeof r->bucket);
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
    char *json = o ? naq__json_dumps(o, JSON_FLAGS) : NULL;
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
    if (r->njobs == r->jobs_cap) {
        size_t cap =
            r->jobs_cap ? r->jobs_cap * 2 : (size_t)(r->concurrency > 0 ? r->concurrency : 4);
        void *p = realloc(r->jobs, cap * sizeof *r->jobs);
        if (p != NULL) {
            r->jobs = p;
            r->jobs_cap = cap;
        }
    }
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

/* ---- reading ---- */

/* What a read of the event log collects: every event it got, with its
 * stream sequence. A last-per-subject consumer delivers the last message of
 * each subject and then whatever is stored while it reads, so one worker
 * may come more than once: collect_dedupe keeps the latest of each. */
typedef struct {
    uint64_t seq;
    naq_worker_info w;
} item;

typedef struct {
    item *v;
    size_t n, cap;
} collection;

static item *collect_push(collection *col)
{
    if (col->n == col->cap) {
        size_t ncap = col->cap ? col->cap * 2 : 16;
        item *v = realloc(col->v, ncap * sizeof *v);
        if (v == NULL)
            return NULL;
        col->v = v;
        col->cap = ncap;
    }
    item *it = &col->v[col->n];
    memset(it, 0, sizeof *it);
    return it;
}

static void collect_free(collection *col)
{
    for (size_t i = 0; i < col->n; i++)
        info_clear(&col->v[i].w);
    free(col->v);
    memset(col, 0, sizeof *col);
}

static int by_id_then_seq(const void *a, const void *b)
{
    const item *x = a, *y = b;
    int c = strcmp(x->w.worker_id, y->w.worker_id);
    return c != 0 ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int by_last_seen_desc(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->w.last_seen != y->w.last_seen)
        return x->w.last_seen < y->w.last_seen ? 1 : -1;
    return strcmp(x->w.worker_id, y->w.worker_id);
}

/* Keeps the latest item of each worker. */
static void collect_dedupe(collection *col)
{
    if (col->n == 0)
        return;
    qsort(col->v, col->n, sizeof *col->v, by_id_then_seq);
    size_t k = 0;
    for (size_t i = 0; i < col->n; i++) {
        int last = i + 1 == col->n || strcmp(col->v[i].w.worker_id, col->v[i + 1].w.worker_id) != 0;
        if (!last)
            info_clear(&col->v[i].w);
        else
            col->v[k++] = col->v[i];
    }
    col->n = k;
}

/* Keeps the `max` most recently seen items (sorted so), counting the rest. */
static void collect_trim(collection *col, size_t max, size_t *omitted)
{
    if (col->n == 0)
        return;
    qsort(col->v, col->n, sizeof *col->v, by_last_seen_desc);
    while (col->n > max) {
        info_clear(&col->v[--col->n].w);
        (*omitted)++;
    }
}

/* Moves the items into out (in their order). */
static naq_status collect_move(collection *col, naq_worker_info_list *out)
{
    if (col->n > 0 && (out->items = malloc(col->n * sizeof *out->items)) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing workers");
    for (size_t i = 0; i < col->n; i++)
        out->items[i] = col->v[i].w;
    out->count = col->n;
    free(col->v);
    memset(col, 0, sizeof *col);
    return NAQ_OK;
}

/* Has the consumer nothing more for us? A push consumer delivers at once,
 * so "nothing pending on the server" is not enough: what it delivered (up
 * to consumer sequence Delivered.Consumer) must have reached us too. */
static naq_status consumer_done(natsSubscription *sub, const char *stream, uint64_t got_cseq,
                                int *done)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot read the state of a consumer on stream %s", stream);
    *done = ci->NumPending == 0 && ci->Delivered.Consumer <= got_cseq;
    jsConsumerInfo_Destroy(ci);
    return NAQ_OK;
}

/* Called per message with its stream sequence. */
typedef naq_status (*last_msg_fn)(natsMsg *m, uint64_t seq, void *ud);

/* Calls fn with the last message of every subject of the event stream
 * matching `subject` (deliver policy last-per-subject, one ordered
 * consumer), and with what is stored there while it reads, until it has
 * seen `end`, the sequence of the newest matching message when it began.
 *
 * Why `end` and not the consumer's count of pending messages: on server
 * 2.9.10 a last-per-subject consumer whose starting messages are removed
 * before it delivers them (the stream trimming its oldest events) miscounts,
 * and its pending count reaches 0 while messages of other subjects are
 * still to come (seen on a KV bucket with history 1). The newest message
 * is never the one trimmed, and it is delivered in the starting set. */
static naq_status read_last_per_subject(naq_client *c, const char *subject, uint64_t end,
                                        last_msg_fn fn, void *ud)
{
    const char *stream = c->cfg.event_stream;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverLastPerSubject;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_SubscribeSync(&sub, c->ejs, subject, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot open a consumer on stream %s",
                              stream);
    uint64_t got_cseq = 0; /* consumer sequence of the last message read */
    int64_t deadline = naq__mono_ms() + READ_DEADLINE_MS;
    int done = 0;
    naq_status s = NAQ_OK;
    while (s == NAQ_OK && !done) {
        if (naq__mono_ms() > deadline) {
            s = naq__fail(NAQ_ERR_TIMEOUT, "reading stream %s took longer than %d s", stream,
                          READ_DEADLINE_MS / 1000);
            break;
        }
        natsMsg *m = NULL;
        ns = natsSubscription_NextMsg(&m, sub, SILENCE_MS);
        if (ns == NATS_TIMEOUT) { /* nothing came: was `end` removed meanwhile? */
            s = consumer_done(sub, stream, got_cseq, &done);
            continue;
        }
        if (ns == NATS_SLOW_CONSUMER || ns == NATS_MISSED_HEARTBEAT)
            continue; /* the ordered consumer repairs itself */
        if (ns != NATS_OK) {
            s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "lost the consumer on stream %s", stream);
            break;
        }
        jsMsgMetaData *meta = NULL;
        uint64_t seq = 0;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            got_cseq = meta->Sequence.Consumer;
            seq = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
        }
        done = seq >= end;
        s = fn(m, seq, ud);
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return s;
}

/* ---- reading: live workers ---- */

/* The entry of one key (subject "$KV.<bucket>.<key>") into *it; *found = 0
 * when it expired or was deleted meanwhile, or is not ours. */
static naq_status read_entry(naq_client *c, const char *stream, const char *subject,
                             const char *key, naq_worker_info *w, int *found)
{
    *found = 0;
    natsMsg *m = NULL;
    /* A direct get: nats-server 2.9.10 crashes on a MSG.GET request that
     * meets a stream still being created (KV buckets are made on first
     * use), while direct gets are served safely. nats.c creates KV
     * streams with allow_direct. */
    jsDirectGetMsgOptions dg;
    jsDirectGetMsgOptions_Init(&dg);
    dg.LastBySubject = subject;
    natsStatus ns = js_DirectGetMsg(&m, c->js, stream, NULL, &dg);
    if (ns == NATS_NOT_FOUND)
        return NAQ_OK;
    if (ns != NATS_OK)
        return naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, 0,
                              "cannot read the worker registry (stream %s)", stream);
    const char *op = NULL; /* only deletions carry KV-Operation (DEL or PURGE) */
    json_t *o = natsMsgHeader_Get(m, "KV-Operation", &op) == NATS_OK
                    ? NULL
                    : json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    natsMsg_Destroy(m);
    naq_status s = NAQ_OK;
    if (json_is_object(o) && (s = info_from_json(o, w)) == NAQ_OK) {
        snprintf(w->worker_id, sizeof w->worker_id, "%s", key);
        w->live = 1;
        w->last_seen = w->last_heartbeat;
        *found = 1;
    }
    json_decref(o);
    return s;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const naq_worker_info *)a)->worker_id, ((const naq_worker_info *)b)->worker_id);
}

/* One stream-info request lists the keys, then one get per key reads its
 * entry. Not a KV watch nor a last-per-subject consumer: on server 2.9.10
 * such a consumer skips a key whose entry is rewritten while it reads (a
 * heartbeat) and may deliver another key twice, and nats.c's watcher can
 * wait forever for an entry that expires after it was counted. */
naq_status naq_workers_list(naq_client *c, naq_worker_info_list *out)
{
    memset(out, 0, sizeof *out);
    char bucket[NAQ_NAME_MAX + 16], stream[NAQ_NAME_MAX + 32], filter[NAQ_NAME_MAX + 32];
    bucket_name(c, bucket, sizeof bucket);
    snprintf(stream, sizeof stream, "KV_%s", bucket);
    int n = snprintf(filter, sizeof filter, "$KV.%s.>", bucket);
    size_t key_at = (size_t)n - 1;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = filter;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, c->js, stream, &jo, &jerr);
    if (ns == NATS_NOT_FOUND || jerr == JS_STREAM_NOT_FOUND)
        return NAQ_OK; /* no worker ever registered */
    if (ns != NATS_OK)
        return naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot read the worker registry (stream %s)", stream);
    naq_status s = NAQ_OK;
    int nsubjects = si->State.Subjects != NULL ? si->State.Subjects->Count : 0;
    if (nsubjects > 0 && (out->items = calloc((size_t)nsubjects, sizeof *out->items)) == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing workers");
    for (int i = 0; s == NAQ_OK && i < nsubjects; i++) {
        const char *subject = si->State.Subjects->List[i].Subject;
        if (subject == NULL || strlen(subject) <= key_at)
            continue;
        int found = 0;
        s = read_entry(c, stream, subject, subject + key_at, &out->items[out->count], &found);
        if (found)
            out->count++;
    }
    jsStreamInfo_Destroy(si);
    if (s != NAQ_OK) {
        naq_worker_info_list_free(out);
        return s;
    }
    if (out->count > 0)
        qsort(out->items, out->count, sizeof *out->items, by_id);
    return NAQ_OK;
}

/* ---- reading: gone workers, from the event log ---- */

typedef struct {
    collection col;
    const naq_worker_info_list *live; /* sorted by id */
    int64_t since_ms;
    size_t omitted;
} seen_read;

static int is_live(const naq_worker_info_list *live, const char *id)
{
    for (size_t lo = 0, hi = live->count; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(id, live->items[mid].worker_id);
        if (c == 0)
            return 1;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

/* A worker described by its event e (its last, unless a later one comes). */
static naq_status seen_item(item *it, const naq_event *e)
{
    json_t *d = e->details_json ? json_loads(e->details_json, 0, NULL) : NULL;
    if (d == NULL)
        d = json_object();
    naq_status s = info_from_json(d, &it->w);
    double uptime = get_num(d, "uptime_s", -1);
    json_decref(d);
    if (s != NAQ_OK)
        return s;
    naq_worker_info *w = &it->w;
    snprintf(w->worker_id, sizeof w->worker_id, "%s", e->worker_id);
    snprintf(w->worker_type, sizeof w->worker_type, "%s", e->worker_type);
    w->live = 0;
    w->last_seen = e->timestamp;
    w->last_heartbeat = e->timestamp;
    w->last_event = e->type;
    if (w->started_at == 0 && uptime >= 0)
        w->started_at = e->timestamp - uptime;
    /* Gone from the registry: it stopped, or it is lost (its last event
     * says whatever it was doing then, "busy" or "idle"). */
    w->status =
        e->type == NAQ_EVENT_WORKER_STOPPED ? NAQ_WORKER_STATUS_STOPPED : NAQ_WORKER_STATUS_LOST;
    return NAQ_OK;
}

static naq_status add_event(natsMsg *m, uint64_t seq, void *ud)
{
    seen_read *sr = ud;
    naq_event e;
    const char *data = natsMsg_GetData(m);
    naq_status s = NAQ_OK;
    if (naq_event_decode(data ? data : "", (size_t)natsMsg_GetDataLength(m), &e) == NAQ_OK &&
        e.worker_id[0] != '\0' && naq_event_type_category(e.type) == NAQ_CATEGORY_WORKER &&
        e.timestamp * 1000.0 >= (double)sr->since_ms && !is_live(sr->live, e.worker_id)) {
        item *it = collect_push(&sr->col);
        if (it == NULL)
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing workers");
        else if ((s = seen_item(it, &e)) == NAQ_OK) {
            it->seq = seq;
            sr->col.n++;
        }
    }
    naq_event_clear(&e); /* undecodable events are skipped */
    /* Bound the memory: at twice the limit, keep the newest half. */
    if (s == NAQ_OK && sr->col.n >= 2 * NAQ_WORKERS_SEEN_MAX) {
        collect_dedupe(&sr->col);
        collect_trim(&sr->col, NAQ_WORKERS_SEEN_MAX, &sr->omitted);
    }
    return s;
}

naq_status naq_workers_seen(naq_client *c, int64_t since_ms, naq_worker_info_list *out)
{
    memset(out, 0, sizeof *out);
    char subject[NAQ_URL_MAX];
    naq_status s = naq__subject(c, subject, sizeof subject, "workers.events.>");
    if (s != NAQ_OK)
        return s;
    naq_worker_info_list live;
    if ((s = naq_workers_list(c, &live)) != NAQ_OK)
        return s;
    seen_read sr = {{0}, &live, since_ms, 0};
    /* The newest worker event: where the read ends (none: nothing to read). */
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.LastBySubject = subject;
    natsMsg *last = NULL;
    natsStatus ns = js_DirectGetMsg(&last, c->ejs, c->cfg.event_stream, NULL, &o);
    if (ns == NATS_OK) {
        uint64_t end = natsMsg_GetSequence(last);
        natsMsg_Destroy(last);
        s = read_last_per_subject(c, subject, end, add_event, &sr);
    } else if (ns != NATS_NOT_FOUND) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read event stream %s", c->cfg.event_stream);
    }
    naq_worker_info_list_free(&live);
    if (s == NAQ_OK) {
        collect_dedupe(&sr.col);
        collect_trim(&sr.col, NAQ_WORKERS_SEEN_MAX, &sr.omitted);
        s = collect_move(&sr.col, out);
        out->omitted = sr.omitted;
    }
    collect_free(&sr.col);
    return s;
}
