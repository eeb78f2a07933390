/*
 * scheduler.c - `naq scheduler`: a candidate for the leader lease that,
 * while leader, triggers due schedules and releases due delayed jobs.
 *
 * One thread runs a loop of ticks (100 ms by default). Each tick first
 * steps the lease (lease.c), then, while the lease is valid:
 *   - takes in schedule changes from a KV watch of the schedules bucket
 *     (the whole bucket once at election, then only changes), kept in a
 *     hash table by name and a min-heap by next due time;
 *   - pops only the schedules that are due and triggers them;
 *   - lets the due index (delay.c) release due delayed jobs.
 * So a tick costs what is due, not what exists: 100,000 schedules are one
 * watch replay at election and then no reads per tick (the counters in
 * naq_scheduler_stats let tests check exactly that).
 *
 * A trigger enqueues the job "<name>-<due_ms>" (naq_enqueue, Nats-Msg-Id =
 * job id), logs schedule_triggered and scheduler_triggered with event ids
 * derived from that job id, and then records the trigger in the schedule
 * (last_run, next_run, repeat) by compare-and-set. A leader that dies
 * between the two leaves next_run at the old due time; its successor
 * triggers it again and the queue and event streams drop the repeats as
 * duplicates. Nothing is triggered without a valid lease, checked before
 * each trigger.
 *
 * Misfires: a due time older than misfire_grace_ms when the leader looks
 * at it was missed by a downtime of every scheduler; the schedule's policy
 * decides (naq/schedule.h). Younger ones always fire, one job each, which
 * is what makes a leader handover lose nothing whatever the policy.
 */
#include "core/crypt.h"
#include "core/heap.h"
#include "core/kv.h"
#include "lease.h"
#include "scheduler.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRIGGERS_PER_TICK 1000
#define WATCH_ENTRIES_PER_TICK 20000
/* The longest a tick spends on the watch before it looks at the lease. */
#define WATCH_BUDGET_MS 250
#define RETRY_AFTER_MS 1000
#define COMMIT_ATTEMPTS 3
#define TICK_BUDGET_MS 500
/* How long a scheduler keeps trying to make its lock bucket when the
 * server times out or does not serve the bucket yet (naq_scheduler_create). */
#define LEASE_CREATE_MS 20000

/* ---------------------------------------------------------------- state */

/* One schedule as the leader knows it. */
typedef struct entry {
    naq_schedule s;     /* latest value (s.revision = its KV revision) */
    size_t heap_index;  /* NAQ__HEAP_NONE when not waiting for a due time */
    int64_t misfired;   /* run_all: missed due times fired in this catch-up */
    int failing;        /* a scheduler_error was logged for the current failure */
    struct entry *next; /* hash chain */
} entry;

struct naq_scheduler {
    naq_client *c;
    jsCtx *js; /* our own context: short waits, so a lease step cannot stall a tick for long */
    naq__lease *lease;
    char id[NAQ_ID_SIZE];
    int64_t tick_ms, grace_ms;
    volatile sig_atomic_t stop;
    naq__sched_counters ctr;
    _Atomic uint64_t ticks, elections, triggers, trigger_errors, nschedules, ndelayed;

    /* Leader state: built at election, dropped when the lease goes. */
    int ready;
    kvStore *kv;
    kvWatcher *watch;
    naq__due_index *due;
    entry **slots;
    size_t nslots, count;
    naq__heap heap; /* item = entry, key = when to look at it next */

    /* Health, for system_error / system_recovery. */
    int unhealthy;
    uint64_t reconnects;
    natsStatistics *nstats;
};

static void entry_moved(void *item, size_t index)
{
    ((entry *)item)->heap_index = index;
}

static size_t slot_of(const naq_scheduler *s, const char *name)
{
    return (size_t)(naq__fnv1a(name, strlen(name), NAQ__FNV_OFFSET) & (s->nslots - 1));
}

static entry *find(const naq_scheduler *s, const char *name)
{
    if (s->nslots == 0)
        return NULL;
    for (entry *e = s->slots[slot_of(s, name)]; e != NULL; e = e->next)
        if (strcmp(e->s.name, name) == 0)
            return e;
    return NULL;
}

static naq_status grow(naq_scheduler *s)
{
    size_t nslots = s->nslots ? s->nslots * 2 : 1024;
    entry **slots = calloc(nslots, sizeof *slots);
    if (slots == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for %zu schedules", s->count);
    entry **old = s->slots;
    size_t nold = s->nslots;
    s->slots = slots;
    s->nslots = nslots;
    for (size_t i = 0; i < nold; i++) {
        for (entry *e = old[i], *next; e != NULL; e = next) {
            next = e->next;
            size_t k = slot_of(s, e->s.name);
            e->next = slots[k];
            slots[k] = e;
        }
    }
    free(old);
    return NAQ_OK;
}

/* Puts e in the heap at its next due time, or takes it out when it has
 * none (paused, finished). */
static naq_status place(naq_scheduler *s, entry *e, int64_t when)
{
    int waiting = !e->s.paused && e->s.next_run_ms != 0;
    if (!waiting) {
        if (e->heap_index != NAQ__HEAP_NONE)
            naq__heap_remove(&s->heap, e->heap_index);
        return NAQ_OK;
    }
    if (e->heap_index != NAQ__HEAP_NONE) {
        naq__heap_rekey(&s->heap, e->heap_index, when);
        return NAQ_OK;
    }
    return naq__heap_push(&s->heap, when, e);
}

static void drop(naq_scheduler *s, entry *e)
{
    if (e->heap_index != NAQ__HEAP_NONE)
        naq__heap_remove(&s->heap, e->heap_index);
    entry **p = &s->slots[slot_of(s, e->s.name)];
    while (*p != e)
        p = &(*p)->next;
    *p = e->next;
    naq_schedule_clear(&e->s);
    free(e);
    s->count--;
}

/* Takes a newer value of a schedule (from the watch or a re-read); `v` is
 * moved into the table. Older revisions than the one known are ignored. */
static naq_status upsert(naq_scheduler *s, naq_schedule *v)
{
    entry *e = find(s, v->name);
    if (e != NULL && e->s.revision >= v->revision) {
        naq_schedule_clear(v);
        return NAQ_OK;
    }
    if (e == NULL) {
        if (s->count >= s->nslots && grow(s) != NAQ_OK) {
            naq_schedule_clear(v);
            return NAQ_ERR_NO_MEMORY;
        }
        if ((e = calloc(1, sizeof *e)) == NULL) {
            naq_schedule_clear(v);
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for schedule '%s'", v->name);
        }
        e->heap_index = NAQ__HEAP_NONE;
        size_t k = slot_of(s, v->name);
        e->next = s->slots[k];
        s->slots[k] = e;
        s->count++;
    } else {
        naq_schedule_clear(&e->s);
    }
    e->s = *v;
    naq_schedule_init(v);
    e->failing = 0;
    return place(s, e, e->s.next_run_ms);
}

/* ---------------------------------------------------------------- events */

static void log_scheduler(naq_scheduler *s, naq_event_type t, const char *message, json_t *details)
{
    naq__schedule_event(s->c, t, s->id, NULL, NULL, NULL, message, details);
}

static void log_system(naq_scheduler *s, naq_event_type t, const char *message)
{
    json_t *d = json_pack("{s:s, s:s, s:I}", "component", "scheduler", "scheduler_id", s->id, "pid",
                          (json_int_t)getpid());
    naq__schedule_event(s->c, t, s->id, NULL, NULL, NULL, message, d);
}

/* A server call failed (io_error = 1) or succeeded (0): system_error once
 * when things go wrong, system_recovery once when they work again. */
static void health(naq_scheduler *s, int io_error)
{
    if (io_error && !s->unhealthy) {
        s->unhealthy = 1;
        char msg[600];
        snprintf(msg, sizeof msg, "scheduler %s: %s", s->id, naq_last_error());
        log_system(s, NAQ_EVENT_SYSTEM_ERROR, msg);
    } else if (!io_error && s->unhealthy) {
        s->unhealthy = 0;
        log_system(s, NAQ_EVENT_SYSTEM_RECOVERY, "scheduler can reach NATS again");
    }
}

/* ---------------------------------------------------------------- leading */

static int still_leader(void *ud)
{
    naq_scheduler *s = ud;
    return naq__lease_valid(s->lease, naq__mono_ms());
}

static void stop_leading(naq_scheduler *s)
{
    s->ready = 0;
    kvWatcher_Destroy(s->watch);
    s->watch = NULL;
    kvStore_Destroy(s->kv);
    s->kv = NULL;
    naq__due_index_close(s->due);
    s->due = NULL;
    for (size_t i = 0; i < s->nslots; i++) {
        for (entry *e = s->slots[i], *next; e != NULL; e = next) {
            next = e->next;
            naq_schedule_clear(&e->s);
            free(e);
        }
    }
    free(s->slots);
    s->slots = NULL;
    s->nslots = s->count = 0;
    naq__heap_free(&s->heap);
    atomic_store(&s->nschedules, 0);
    atomic_store(&s->ndelayed, 0);
}

static naq_status start_leading(naq_scheduler *s)
{
    naq_status st = naq__schedules_kv(s->c, s->js, &s->kv);
    if (st != NAQ_OK)
        return st;
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    natsStatus ns = kvStore_WatchAll(&s->watch, s->kv, &wo);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot watch the schedules bucket");
    if ((st = naq__due_index_open(s->c, &s->ctr, &s->due)) != NAQ_OK)
        return st;
    s->ready = 1;
    return NAQ_OK;
}

/* Applies what the watch has for us: puts, deletes, and the end-of-replay
 * marker. NAQ_ERR_CLOSED when the watch broke. */
static naq_status take_changes(naq_scheduler *s)
{
    /* Bounded in time too: a leader replaying a large bucket on a slow or
     * busy machine must still get back to renewing its lease (seen: 20,000
     * schedules under the sanitizers at load 8 took longer than the lease,
     * the leader fenced itself and replayed everything twice more). */
    int64_t until = naq__mono_ms() + WATCH_BUDGET_MS;
    for (int i = 0; i < WATCH_ENTRIES_PER_TICK && naq__mono_ms() < until; i++) {
        kvEntry *ke = NULL;
        /* 1 ms is the shortest wait kvWatcher_Next accepts. */
        natsStatus ns = kvWatcher_Next(&ke, s->watch, 1);
        if (ns == NATS_TIMEOUT)
            return NAQ_OK;
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_CLOSED, ns, 0, "the schedules watch stopped");
        if (ke == NULL)
            continue; /* end of the initial replay */
        atomic_fetch_add(&s->ctr.watch_entries, 1);
        if (kvEntry_Operation(ke) != kvOp_Put) {
            entry *e = find(s, kvEntry_Key(ke));
            if (e != NULL)
                drop(s, e);
        } else {
            naq_schedule v;
            if (naq__schedule_from_entry(ke, &v) == NAQ_OK) {
                upsert(s, &v);
            } else {
                /* Someone stored something we cannot run: say so once per
                 * revision, and keep going with the others. */
                naq__schedule_event(
                    s->c, NAQ_EVENT_SCHEDULER_ERROR,
                    naq_schedule_name_validate(kvEntry_Key(ke)) == NAQ_OK ? kvEntry_Key(ke) : s->id,
                    NULL, NULL, NULL, naq_last_error(), NULL);
                naq_schedule_clear(&v);
            }
        }
        kvEntry_Destroy(ke);
    }
    return NAQ_OK;
}

/* Enqueues the job of (schedule, due) and logs the trigger. */
static naq_status trigger(naq_scheduler *s, const naq_schedule *sc, int64_t due, int misfire)
{
    char job_id[NAQ_ID_SIZE], got[NAQ_ID_SIZE], event_id[NAQ_ID_SIZE], tags[NAQ_ID_SIZE + 32];
    naq_status st = naq_schedule_job_id(sc->name, due, job_id);
    if (st != NAQ_OK)
        return st;
    /* The tag links the job's own events (enqueued, started, ...) back to
     * the schedule. */
    snprintf(tags, sizeof tags, "{\"naq_schedule\":\"%s\"}", sc->name);
    char *args = NULL; /* opened when sealed (crypt.h): the job seals them for itself */
    if ((st = naq__crypt_open_schedule_args(s->c->crypt, sc->name, sc->args_json, &args)) != NAQ_OK)
        return st;
    naq_job_opts jo;
    naq_job_opts_init(&jo);
    jo.queue = sc->queue;
    jo.function = sc->function;
    jo.args_json = args;
    jo.max_retries = sc->max_retries;
    jo.timeout_ms = sc->timeout_ms;
    jo.priority = sc->priority;
    jo.job_id = job_id;
    jo.tags_json = tags;
    st = naq_enqueue(s->c, &jo, got);
    if (args != NULL)
        sodium_memzero(args, strlen(args));
    free(args);
    if (st != NAQ_OK)
        return st;
    double due_s = (double)due / 1000.0;
    naq__derived_id("schedule_triggered", job_id, event_id);
    naq__schedule_event(s->c, NAQ_EVENT_SCHEDULE_TRIGGERED, sc->name, job_id, sc->queue, event_id,
                        NULL, json_pack("{s:s, s:f}", "schedule", sc->name, "due", due_s));
    naq__derived_id("scheduler_triggered", job_id, event_id);
    naq__schedule_event(s->c, NAQ_EVENT_SCHEDULER_TRIGGERED, sc->name, job_id, sc->queue, event_id,
                        NULL,
                        json_pack("{s:s, s:f, s:b, s:s}", "job_id", job_id, "due", due_s, "misfire",
                                  misfire, "scheduler_id", s->id));
    atomic_fetch_add(&s->triggers, 1);
    return NAQ_OK;
}

/* The schedule after a trigger (fired) or a skip of due time `due`, with
 * next due time `next` (0 = none). */
static void advance(naq_schedule *v, int64_t due, int fired, int64_t next)
{
    if (fired) {
        v->last_run_ms = due;
        if (v->repeat > 0)
            v->repeat--;
    }
    v->next_run_ms = (fired && v->kind == NAQ_SCHEDULE_AT) || v->repeat == 0 ? 0 : next;
}

/* Records the trigger (or skip) of e's due time `due` in KV. Retries the
 * compare-and-set on a fresh read when someone wrote in between, unless
 * that write already moved past `due`. */
static naq_status commit(naq_scheduler *s, entry *e, int64_t due, int fired, int64_t next)
{
    naq_schedule v;
    naq_schedule_init(&v);
    naq_status st = naq_schedule_copy(&v, &e->s);
    for (int attempt = 0; st == NAQ_OK && attempt < COMMIT_ATTEMPTS; attempt++) {
        char *json = NULL;
        size_t len = 0;
        advance(&v, due, fired, next);
        if ((st = naq_schedule_encode(&v, &json, &len)) != NAQ_OK)
            break;
        atomic_fetch_add(&s->ctr.kv_writes, 1);
        uint64_t rev = 0;
        st = naq__kv_cas(s->js, NAQ__SCHEDULES_BUCKET, v.name, json, len, v.revision, 0, &rev);
        free(json);
        if (st == NAQ_OK) {
            v.revision = rev;
            /* Its last trigger: the schedule makes no more jobs. */
            if (e->s.next_run_ms != 0 && v.next_run_ms == 0)
                naq__schedule_job_event(s->c, NAQ_EVENT_SCHEDULE_DEACTIVATED, &v, "finished");
            return upsert(s, &v);
        }
        if (st != NAQ_ERR_EXISTS)
            break;
        /* Someone wrote the schedule since we read it: an operator (modify,
         * pause, rm) or an earlier leader recording this very trigger. */
        naq_schedule_clear(&v);
        kvEntry *ke = NULL;
        atomic_fetch_add(&s->ctr.kv_reads, 1);
        natsStatus ns = kvStore_Get(&ke, s->kv, e->s.name);
        if (ns == NATS_NOT_FOUND) {
            drop(s, e);
            return NAQ_OK;
        }
        if (ns != NATS_OK) {
            st = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot re-read schedule '%s'", e->s.name);
            break;
        }
        st = naq__schedule_from_entry(ke, &v);
        kvEntry_Destroy(ke);
        if (st == NAQ_OK && (v.next_run_ms != due || v.paused))
            return upsert(s, &v); /* already past this due time, or changed: take it as it is */
    }
    naq_schedule_clear(&v);
    return st;
}

/* Handles e, whose due time has come (or whose retry time has). */
static naq_status run_due(naq_scheduler *s, entry *e, int64_t now)
{
    int64_t due = e->s.next_run_ms;
    if (due > now)
        return place(s, e, due); /* a retry time came before the due time */
    int misfire = now - due > s->grace_ms;
    int fire = 1;
    /* The next due time is the first one after `from`. Past the misfires,
     * due times inside the grace are not misfires: they fire one by one. */
    int64_t from = due;
    if (misfire && e->s.misfire != NAQ_MISFIRE_RUN_ALL) {
        fire = e->s.misfire == NAQ_MISFIRE_RUN_ONCE;
        from = now - s->grace_ms;
    } else if (misfire && e->misfired >= NAQ_MISFIRE_RUN_ALL_MAX) {
        fire = 0;
        from = now - s->grace_ms;
        char msg[200];
        snprintf(msg, sizeof msg,
                 "run_all fired %d missed due times; the rest up to now are skipped",
                 NAQ_MISFIRE_RUN_ALL_MAX);
        naq__schedule_event(s->c, NAQ_EVENT_SCHEDULER_ERROR, e->s.name, NULL, e->s.queue, NULL, msg,
                            NULL);
    }
    e->misfired = misfire && fire ? e->misfired + 1 : 0;
    int64_t next = 0;
    naq_status st = naq_schedule_next(&e->s, from, &next);
    if (st == NAQ_ERR_NOT_FOUND)
        next = 0;
    else if (st != NAQ_OK)
        goto failed;
    if (fire && (st = trigger(s, &e->s, due, misfire)) != NAQ_OK)
        goto failed;
    if ((st = commit(s, e, due, fire, next)) != NAQ_OK)
        goto failed;
    return NAQ_OK;
failed:
    /* Retried later; a repeated trigger is a no-op for the streams. */
    atomic_fetch_add(&s->trigger_errors, 1);
    if (!e->failing) {
        e->failing = 1;
        char msg[700];
        snprintf(msg, sizeof msg, "trigger of due time %.3f failed (retrying): %s",
                 (double)due / 1000.0, naq_last_error());
        naq__schedule_event(
            s->c, NAQ_EVENT_SCHEDULER_ERROR, e->s.name, NULL, e->s.queue, NULL, msg,
            json_pack("{s:f, s:s}", "due", (double)due / 1000.0, "scheduler_id", s->id));
    }
    place(s, e, now + RETRY_AFTER_MS);
    return st;
}

static int64_t now_ms(void)
{
    return (int64_t)llround(naq__now() * 1000.0);
}

/* One leader tick. Returns non-zero when the leader state must be rebuilt. */
static int lead(naq_scheduler *s)
{
    naq_status st = take_changes(s);
    if (st == NAQ_ERR_CLOSED)
        return 1;
    int64_t now = now_ms(), started = naq__mono_ms();
    int io_error = 0;
    for (int n = 0; n < TRIGGERS_PER_TICK && s->heap.n > 0 && s->heap.v[0].key <= now; n++) {
        /* A backlog is worked off over several ticks, so the lease is
         * renewed in between. */
        if (!still_leader(s) || naq__mono_ms() - started > TICK_BUDGET_MS)
            break;
        if (run_due(s, s->heap.v[0].item, now) != NAQ_OK)
            io_error = 1;
    }
    st = naq__due_index_tick(s->due, now_ms(), still_leader, s);
    if (st == NAQ_ERR_CLOSED)
        return 1;
    if (st != NAQ_OK)
        io_error = 1;
    health(s, io_error);
    atomic_store(&s->nschedules, s->count);
    atomic_store(&s->ndelayed, naq__due_index_pending(s->due));
    atomic_fetch_add(&s->ticks, 1);
    return 0;
}

/* Non-zero once per reconnect of the client. Only reported
 * (system_recovery): nats.c re-creates the ordered consumers behind the
 * schedules watch and the due-index feed by itself after a reconnect, from
 * where they were. Tearing them down here as well races with that
 * re-creation inside nats.c 3.4.1 (a use-after-free of the consumer name,
 * found by AddressSanitizer), so we do not. */
static int reconnected(naq_scheduler *s)
{
    uint64_t n = 0;
    if (natsConnection_GetStats(s->c->nc, s->nstats) != NATS_OK ||
        natsStatistics_GetCounts(s->nstats, NULL, NULL, NULL, NULL, &n) != NATS_OK ||
        n == s->reconnects)
        return 0;
    s->reconnects = n;
    return 1;
}

naq_status naq_scheduler_run(naq_scheduler *s)
{
    char msg[300];
    snprintf(msg, sizeof msg, "scheduler %s started (lease %lld ms)", s->id,
             (long long)naq__lease_ms(s->lease));
    log_system(s, NAQ_EVENT_SYSTEM_STARTUP, msg);
    while (!s->stop) {
        int64_t start = naq__mono_ms();
        if (reconnected(s)) {
            s->unhealthy = 0;
            log_system(s, NAQ_EVENT_SYSTEM_RECOVERY, "scheduler reconnected to NATS");
        }
        int io_error = -1;
        naq__lease_change ch = naq__lease_step(s->lease, start, &io_error);
        if (io_error >= 0)
            health(s, io_error);
        if (ch == NAQ__LEASE_ACQUIRED) {
            atomic_fetch_add(&s->elections, 1);
            snprintf(msg, sizeof msg, "scheduler %s is the leader", s->id);
            log_scheduler(s, NAQ_EVENT_SCHEDULER_LEADER_ELECTED, msg,
                          json_pack("{s:s, s:I}", "scheduler_id", s->id, "lease_ms",
                                    (json_int_t)naq__lease_ms(s->lease)));
        } else if (ch == NAQ__LEASE_LOST) {
            stop_leading(s);
            log_scheduler(s, NAQ_EVENT_SCHEDULER_LEADER_LOST, naq__lease_why(s->lease),
                          json_pack("{s:s}", "scheduler_id", s->id));
        }
        if (still_leader(s)) {
            if (!s->ready) {
                naq_status st = start_leading(s);
                health(s, st != NAQ_OK);
                if (st != NAQ_OK)
                    stop_leading(s);
            }
            if (s->ready && lead(s))
                stop_leading(s);
        } else if (s->ready) {
            stop_leading(s);
        }
        naq__sleep_ms(s->tick_ms - (naq__mono_ms() - start));
    }
    stop_leading(s);
    if (still_leader(s)) {
        naq__lease_release(s->lease);
        log_scheduler(s, NAQ_EVENT_SCHEDULER_LEADER_LOST, naq__lease_why(s->lease),
                      json_pack("{s:s}", "scheduler_id", s->id));
    }
    snprintf(msg, sizeof msg, "scheduler %s stopped", s->id);
    log_system(s, NAQ_EVENT_SYSTEM_SHUTDOWN, msg);
    return NAQ_OK;
}

void naq_scheduler_stop(naq_scheduler *s)
{
    s->stop = 1;
}

/* ---------------------------------------------------------------- setup */

void naq_scheduler_opts_init(naq_scheduler_opts *o)
{
    memset(o, 0, sizeof *o);
    o->lease_ms = 6000;
    o->tick_ms = 100;
    o->misfire_grace_ms = 30000;
}

/* "<host>-<pid>-<4 hex>", with the host's dots (not allowed in a subject
 * token) turned into '-'. */
static void default_id(char out[NAQ_ID_SIZE])
{
    char host[64], rnd[NAQ_ID_SIZE];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '.' || *p == '*' || *p == '>' || (unsigned char)*p <= 0x20 || *p == 0x7f)
            *p = '-';
    naq_id_new(rnd);
    snprintf(out, NAQ_ID_SIZE, "%s-%d-%.4s", host, (int)getpid(), rnd + 28);
}

naq_status naq_scheduler_create(naq_client *c, const naq_scheduler_opts *o, naq_scheduler **out)
{
    *out = NULL;
    naq_status st;
    if (o->scheduler_id != NULL &&
        (st = naq_id_validate("scheduler id", o->scheduler_id)) != NAQ_OK)
        return st;
    if (o->lease_ms < 300 || o->tick_ms < 10 || o->tick_ms > 1000 || o->misfire_grace_ms < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "scheduler options out of range: the lease needs at least 300 ms, the "
                         "tick 10 to 1000 ms, the misfire grace at least 0");
    naq_scheduler *s = calloc(1, sizeof *s);
    if (s == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating a scheduler");
    s->c = c;
    s->tick_ms = o->tick_ms;
    s->grace_ms = o->misfire_grace_ms;
    s->heap.moved = entry_moved;
    if (o->scheduler_id != NULL)
        snprintf(s->id, sizeof s->id, "%s", o->scheduler_id);
    else
        default_id(s->id);
    /* KV and lease calls must answer well within the lease margin. */
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = o->lease_ms / 6 < 200 ? 200 : o->lease_ms / 6 > 2000 ? 2000 : o->lease_ms / 6;
    natsStatus ns = natsConnection_JetStream(&s->js, c->nc, &jo);
    if (ns == NATS_OK)
        ns = natsStatistics_Create(&s->nstats);
    if (ns != NATS_OK) {
        st = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot set up the scheduler");
        goto fail;
    }
    /* Making the lock bucket on a cluster that is busy or still settling
     * (replicated streams being created at the same moment) can outlast one
     * short Wait, and a bucket another scheduler is making meanwhile can be
     * "not found" until its stream has a leader: both seen in a failover
     * test whose schedulers started with its 3-node cluster. These are
     * tried again for up to LEASE_CREATE_MS; any other failure is reported
     * at once. */
    int64_t give_up = naq__mono_ms() + LEASE_CREATE_MS;
    while ((st = naq__lease_create(s->js, c->cfg.replicas, s->id, o->lease_ms, &s->ctr,
                                   &s->lease)) != NAQ_OK &&
           (naq_last_error_nats_status() == NATS_TIMEOUT ||
            naq_last_error_nats_status() == NATS_NOT_FOUND) &&
           naq__mono_ms() < give_up)
        naq__sleep_ms(250);
    if (st != NAQ_OK)
        goto fail;
    reconnected(s); /* remember the current count */
    *out = s;
    return NAQ_OK;
fail:
    naq_scheduler_destroy(s);
    return st;
}

void naq_scheduler_destroy(naq_scheduler *s)
{
    if (s == NULL)
        return;
    stop_leading(s);
    naq__lease_destroy(s->lease);
    natsStatistics_Destroy(s->nstats);
    jsCtx_Destroy(s->js);
    free(s);
}

const char *naq_scheduler_id(const naq_scheduler *s)
{
    return s->id;
}
int64_t naq_scheduler_lease_ms(const naq_scheduler *s)
{
    return naq__lease_ms(s->lease);
}

void naq_scheduler_get_stats(naq_scheduler *s, naq_scheduler_stats *out)
{
    memset(out, 0, sizeof *out);
    out->leader = naq__lease_valid(s->lease, naq__mono_ms());
    out->ticks = atomic_load(&s->ticks);
    out->elections = atomic_load(&s->elections);
    out->triggers = atomic_load(&s->triggers);
    out->trigger_errors = atomic_load(&s->trigger_errors);
    out->released = atomic_load(&s->ctr.released);
    out->schedules = atomic_load(&s->nschedules);
    out->delayed_pending = atomic_load(&s->ndelayed);
    out->kv_reads = atomic_load(&s->ctr.kv_reads);
    out->kv_writes = atomic_load(&s->ctr.kv_writes);
    out->watch_entries = atomic_load(&s->ctr.watch_entries);
    out->index_reads = atomic_load(&s->ctr.index_reads);
    out->index_feed = atomic_load(&s->ctr.index_feed);
}
