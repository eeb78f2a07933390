/*
 * deps.c - jobs that wait for other jobs (depends_on).
 *
 * KV bucket "naq_deps" (no TTL; keys are KV-encoded job ids):
 *   "<job>"  the waiting job: {"version": 1, "job": {job JSON},
 *            "pending": [ids], "failed": [ids],
 *            "state": "waiting" | "releasing" | "cancelled"}
 * and, on each dependency's outcome subject (outcome.c), a "waiter"
 * message naming the job.
 *
 * Every change of a waiting job is a compare-and-set of its entry, so
 * the outcome of several dependencies finishing at the same moment (on
 * several workers) is serialised by the server: each finisher removes its
 * dependency from "pending" or loses the race, re-reads and tries again.
 * Exactly one of them empties the set, and it is the one that moves the
 * entry to "releasing" and publishes the job, with Nats-Msg-Id = job id:
 * should anyone publish it again (a finisher that died after the CAS and
 * is re-run), the queue stores it once.
 *
 * "Dependency finished before the dependent was enqueued" and "enqueued
 * while its dependency is finishing" are decided by the order of two
 * compare-and-set writes on the dependency's outcome subject (outcome.c):
 * either the waiter is written first, and the finisher (finish.c) tells
 * it, or the outcome is, and the enqueuer reads it and accounts for the
 * dependency itself. Never neither; accounting twice changes nothing.
 *
 * Crash safety: a finisher tells the waiters before it writes the
 * outcome and before the worker acks the job, so one that dies midway is
 * re-run by the job's redelivery: an entry left "releasing" is released
 * (again), one left "cancelled" is finished off by whoever meets it.
 * This module never finishes a job itself: jobs it cancels are handed
 * back in an `ended` list, which the caller finishes (finish.c), so the
 * dependency arrows point one way.
 */
#include "jobs.h"
#include "core/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_VERSION 1

static naq_status job_key(const char *job_id, char out[NAQ__KV_KEY_MAX])
{
    return naq__kv_key(job_id, out, NAQ__KV_KEY_MAX);
}

/* Reads a JSON object stored under key. NAQ_ERR_NOT_FOUND (no message)
 * when absent; *rev is its revision (or 0). */
static naq_status read_json(naq_client *c, naq__kv b, const char *key, json_t **out, uint64_t *rev)
{
    char *val = NULL;
    size_t len = 0;
    *out = NULL;
    naq_status s = naq__kv_get(c, b, key, &val, &len, rev);
    if (s != NAQ_OK)
        return s;
    json_error_t e;
    *out = json_loadb(val, len, 0, &e);
    free(val);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return naq__fail(NAQ_ERR_CODEC, "%s/%s is not a JSON object naq wrote", naq__kv_bucket(b),
                         key);
    }
    return NAQ_OK;
}

/* Writes o under key if its revision is still `last` (0 = absent). */
static naq_status write_json(naq_client *c, naq__kv b, const char *key, json_t *o, uint64_t last,
                             uint64_t *rev)
{
    char *text = naq__json_dumps(o, NAQ__JSON_FLAGS);
    if (text == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory writing %s/%s", naq__kv_bucket(b), key);
    naq_status s = last ? naq__kv_update(c, b, key, text, strlen(text), last, rev)
                        : naq__kv_create(c, b, key, text, strlen(text), rev);
    free(text);
    return s;
}

static int array_has(json_t *a, const char *id)
{
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x)
    {
        if (json_is_string(x) && strcmp(json_string_value(x), id) == 0)
            return 1;
    }
    return 0;
}

static void array_drop(json_t *a, const char *id)
{
    for (size_t i = json_array_size(a); i-- > 0;) {
        json_t *x = json_array_get(a, i);
        if (json_is_string(x) && strcmp(json_string_value(x), id) == 0)
            json_array_remove(a, i);
    }
}

/* ---------------------------------------------------------------- events */

/* Logs an event about a waiting job, stamped with the time its
 * compare-and-set was acknowledged. Finishers on other threads or
 * processes log theirs independently, so the stream order of several
 * dependency_satisfied events (and of the "enqueued" that follows the
 * last CAS) may differ from the order of the CASes; "pending" in the
 * details, and the timestamps, give the true order. Takes details. */
static void log_dep_event(naq_client *c, naq_event_type t, const char *job, const char *queue,
                          double at, const char *message, json_t *details)
{
    naq_event e;
    naq_event_init(&e, t);
    snprintf(e.job_id, sizeof e.job_id, "%s", job);
    if (queue != NULL)
        snprintf(e.queue_name, sizeof e.queue_name, "%s", queue);
    e.timestamp = at;
    e.message = message ? strdup(message) : NULL;
    e.details_json = details ? naq__json_dumps(details, NAQ__JSON_FLAGS) : NULL;
    naq_client_log(c, &e);
    naq_event_clear(&e);
    json_decref(details);
}

static const char *entry_queue(json_t *entry)
{
    return json_string_value(json_object_get(json_object_get(entry, "job"), "queue"));
}

/* ---------------------------------------------------------------- release */

/* Queues the job of an entry in state "releasing" (revision rev), logs
 * "enqueued" unless the queue had it already, and removes the entry. */
static naq_status release(naq_client *c, const char *key, json_t *entry, uint64_t rev)
{
    json_t *job = json_object_get(entry, "job");
    /* The time it entered its queue: what "enqueued" says, and what the
     * worker's copy of the event (built from this JSON) says too. */
    json_object_set_new(job, "enqueued_at", json_real(naq__now()));
    char *text = naq__json_dumps(job, NAQ__JSON_FLAGS);
    if (text == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory releasing a job");
    naq_job j;
    naq_status s = naq_job_decode(text, strlen(text), &j);
    if (s == NAQ_OK)
        s = naq__job_publish(c, c->js, j.id, j.queue, j.function, j.priority, text, strlen(text),
                             NULL);
    if (s == NAQ_OK) /* a duplicate too: see naq__enqueue_built */
        naq__log_enqueued(c, &j);
    if (s == NAQ_OK)
        s = naq__kv_remove(c, NAQ__KV_DEPS, key, rev);
    naq_job_clear(&j);
    free(text);
    return s;
}

/* ---------------------------------------------------------------- changes */

/* What one compare-and-set of a waiting job's entry decided (the change
 * functions below run inside naq__kv_modify, possibly several times; the
 * events and the release happen after the write that won). */
typedef enum {
    KEEP,      /* nothing to do */
    RELEASE,   /* the entry is "releasing" (maybe left by a dead finisher) */
    CANCEL,    /* the entry was set to "cancelled" now */
    CANCELLED, /* it was "cancelled" already: finish it again */
    PROGRESS,  /* one dependency fewer pending */
} decision;

typedef struct {
    const char *job, *dep;
    int ok;
    decision what;
    json_t *entry; /* the entry as written (or found), for the side effects */
    size_t left;   /* PROGRESS: dependencies still pending */
} change;

/* Encodes o as the new value (*out heap). */
static naq_status put_entry(change *ch, json_t *o, char **out, size_t *out_len)
{
    json_decref(ch->entry);
    ch->entry = o;
    *out = naq__json_dumps(o, NAQ__JSON_FLAGS);
    if (*out == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory updating waiting job %s", ch->job);
    *out_len = strlen(*out);
    return NAQ_OK;
}

static naq_status parse_entry(change *ch, const char *val, size_t len, json_t **o)
{
    *o = json_loadb(val, len, 0, NULL);
    if (!json_is_object(*o)) {
        json_decref(*o);
        return naq__fail(NAQ_ERR_CODEC, "naq_deps/%s is not a JSON object naq wrote", ch->job);
    }
    return NAQ_OK;
}

/* Dependency dep of job ended (ch->ok = completed). */
static naq_status account_change(const char *val, size_t len, void *ud, char **out, size_t *out_len)
{
    change *ch = ud;
    ch->what = KEEP;
    if (val == NULL)
        return NAQ_ERR_CLOSED; /* released or cancelled already */
    json_t *entry = NULL;
    naq_status s = parse_entry(ch, val, len, &entry);
    if (s != NAQ_OK)
        return s;
    const char *state = json_string_value(json_object_get(entry, "state"));
    json_t *pending = json_object_get(entry, "pending");
    if (state != NULL && strcmp(state, "cancelled") == 0) {
        /* Its canceller finishes it (and a cycle of dependencies ends here). */
        json_decref(entry);
        return NAQ_ERR_CLOSED;
    }
    if (!array_has(pending, ch->dep)) {
        /* Accounted for already; finish a release a dead finisher left. */
        if (state != NULL && strcmp(state, "releasing") == 0) {
            ch->what = RELEASE;
            json_decref(ch->entry);
            ch->entry = entry;
        } else {
            json_decref(entry);
        }
        return NAQ_ERR_CLOSED;
    }
    array_drop(pending, ch->dep);
    if (!ch->ok) {
        json_t *failed = json_object_get(entry, "failed");
        if (!json_is_array(failed)) {
            failed = json_array();
            json_object_set_new(entry, "failed", failed);
        }
        json_array_append_new(failed, json_string(ch->dep));
    }
    int run_anyway =
        json_is_true(json_object_get(json_object_get(entry, "job"), "run_on_dependency_failure"));
    ch->left = json_array_size(pending);
    if (!ch->ok && !run_anyway) {
        ch->what = CANCEL;
        json_object_set_new(entry, "state", json_string("cancelled"));
    } else {
        ch->what = PROGRESS;
        if (ch->left == 0)
            json_object_set_new(entry, "state", json_string("releasing"));
    }
    return put_entry(ch, entry, out, out_len);
}

/* `naq job cancel` of a waiting job. */
static naq_status cancel_change(const char *val, size_t len, void *ud, char **out, size_t *out_len)
{
    change *ch = ud;
    ch->what = KEEP;
    if (val == NULL)
        return NAQ_ERR_CLOSED; /* not waiting (any more) */
    json_t *entry = NULL;
    naq_status s = parse_entry(ch, val, len, &entry);
    if (s != NAQ_OK)
        return s;
    const char *state = json_string_value(json_object_get(entry, "state"));
    if (state != NULL && strcmp(state, "releasing") == 0) {
        json_decref(entry); /* on its way to the queue: the worker cancels it */
        return NAQ_ERR_CLOSED;
    }
    if (state != NULL && strcmp(state, "cancelled") == 0) {
        ch->what = CANCELLED; /* a canceller died before finishing it */
        json_decref(ch->entry);
        ch->entry = entry;
        return NAQ_ERR_CLOSED;
    }
    ch->what = CANCEL;
    json_object_set_new(entry, "state", json_string("cancelled"));
    return put_entry(ch, entry, out, out_len);
}

/* ---------------------------------------------------------------- account */

naq_status naq__deps_account(naq_client *c, const char *job, const char *dep, int ok, json_t *ended)
{
    char key[NAQ__KV_KEY_MAX];
    naq_status s = job_key(job, key);
    if (s != NAQ_OK)
        return s;
    change ch = {job, dep, ok, KEEP, NULL, 0};
    uint64_t rev = 0;
    s = naq__kv_modify(c, NAQ__KV_DEPS, key, account_change, &ch, &rev);
    const char *queue = ch.entry ? entry_queue(ch.entry) : NULL;
    double at = naq__now();
    if (s != NAQ_OK || ch.what == KEEP) {
        /* nothing more */
    } else if (ch.what == RELEASE) {
        s = release(c, key, ch.entry, 0);
    } else if (ch.what == CANCEL) {
        char msg[NAQ_ID_SIZE + 64];
        snprintf(msg, sizeof msg, "dependency %s failed", dep);
        log_dep_event(c, NAQ_EVENT_DEPENDENCY_FAILED, job, queue, at, msg,
                      json_pack("{s:s, s:b}", "dependency", dep, "run_anyway", 0));
        char event_id[NAQ_ID_SIZE];
        naq__derived_id("cancelled", job, event_id);
        naq__schedule_event(c, NAQ_EVENT_CANCELLED, NULL, job, queue, event_id, msg,
                            json_pack("{s:s, s:s, s:s}", "while", "waiting_for_dependencies",
                                      "reason", "dependency_failed", "dependency", dep));
        s = naq__ended_add(ended, json_incref(json_object_get(ch.entry, "job")), "DependencyFailed",
                           msg);
    } else { /* PROGRESS */
        char msg[NAQ_ID_SIZE + 64];
        snprintf(msg, sizeof msg, "dependency %s %s", dep, ok ? "completed" : "failed");
        if (ok)
            log_dep_event(c, NAQ_EVENT_DEPENDENCY_SATISFIED, job, queue, at, msg,
                          json_pack("{s:s, s:i}", "dependency", dep, "pending", (int)ch.left));
        else
            log_dep_event(c, NAQ_EVENT_DEPENDENCY_FAILED, job, queue, at, msg,
                          json_pack("{s:s, s:b, s:i}", "dependency", dep, "run_anyway", 1,
                                    "pending", (int)ch.left));
        if (ch.left == 0)
            s = release(c, key, ch.entry, rev);
    }
    json_decref(ch.entry);
    return s;
}

/* ---------------------------------------------------------------- API */

naq_status naq__deps_enqueue(naq_client *c, const naq_job *j, const char *json, size_t len,
                             json_t *ended)
{
    char key[NAQ__KV_KEY_MAX];
    naq_status s = job_key(j->id, key);
    if (s != NAQ_OK)
        return s;
    json_t *job = json_loadb(json, len, 0, NULL);
    json_t *deps = json_array();
    for (char **p = j->depends_on; deps != NULL && *p != NULL; p++)
        if (!array_has(deps, *p))
            json_array_append_new(deps, json_string(*p));
    json_t *entry = job && deps
                        ? json_pack("{s:i, s:O, s:O, s:[], s:s}", "version", ENTRY_VERSION, "job",
                                    job, "pending", deps, "failed", "state", "waiting")
                        : NULL;
    if (entry == NULL) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory storing job %s", j->id);
        goto out;
    }
    uint64_t rev = 0;
    s = write_json(c, NAQ__KV_DEPS, key, entry, 0, &rev);
    int created = s == NAQ_OK;
    if (s == NAQ_ERR_EXISTS)
        s = NAQ_OK; /* the same job id again: it waits already (repair the index below) */
    if (s != NAQ_OK)
        goto out;
    /* Each dependency: wait for it, or learn that it has finished. */
    size_t ndeps = json_array_size(deps), i;
    int *outcomes = calloc(ndeps ? ndeps : 1, sizeof *outcomes);
    if (outcomes == NULL) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory storing job %s", j->id);
        goto out;
    }
    for (i = 0; i < ndeps; i++) {
        const char *dep = json_string_value(json_array_get(deps, i));
        if ((s = naq__outcome_wait_for(c, dep, j->id, &outcomes[i])) != NAQ_OK) {
            if (created) {
                /* Nothing half-enqueued: the job was never announced (a
                 * waiter already written finds no entry and is ignored). */
                char why[1024];
                snprintf(why, sizeof why, "%s", naq_last_error());
                naq__kv_remove(c, NAQ__KV_DEPS, key, rev);
                s = naq__fail(s, "job %s was not enqueued: %s", j->id, why);
            }
            free(outcomes);
            goto out;
        }
    }
    if (created) {
        char event_id[NAQ_ID_SIZE];
        naq__derived_id("waiting", j->id, event_id);
        naq_event e;
        naq_event_init(&e, NAQ_EVENT_WAITING_FOR_DEPENDENCIES);
        snprintf(e.job_id, sizeof e.job_id, "%s", j->id);
        snprintf(e.queue_name, sizeof e.queue_name, "%s", j->queue);
        snprintf(e.schedule_id, sizeof e.schedule_id, "%s", j->schedule_id);
        snprintf(e.event_id, sizeof e.event_id, "%s", event_id);
        e.timestamp = j->enqueued_at;
        json_t *det = json_pack("{s:O, s:b, s:s, s:i}", "depends_on", deps,
                                "run_on_dependency_failure", j->run_on_dependency_failure,
                                "function", j->function, "priority", j->priority);
        e.details_json = det ? naq__json_dumps(det, NAQ__JSON_FLAGS) : NULL;
        json_decref(det);
        e.tags_json = j->tags_json ? strdup(j->tags_json) : NULL;
        naq_client_log(c, &e);
        naq_event_clear(&e);
    }
    /* Dependencies that had ended already. */
    for (i = 0; i < ndeps && s == NAQ_OK; i++)
        if (outcomes[i] != 0)
            s = naq__deps_account(c, j->id, json_string_value(json_array_get(deps, i)),
                                  outcomes[i] > 0, ended);
    free(outcomes);
out:
    json_decref(entry);
    json_decref(job);
    json_decref(deps);
    return s;
}

naq_status naq__deps_cancel(naq_client *c, const char *job_id, int *cancelled, json_t *ended)
{
    char key[NAQ__KV_KEY_MAX];
    *cancelled = 0;
    naq_status s = job_key(job_id, key);
    if (s != NAQ_OK)
        return s;
    change ch = {job_id, NULL, 0, KEEP, NULL, 0};
    s = naq__kv_modify(c, NAQ__KV_DEPS, key, cancel_change, &ch, NULL);
    const char *message = "cancelled while waiting for dependencies";
    if (s == NAQ_OK && ch.what == CANCEL) {
        char event_id[NAQ_ID_SIZE];
        naq__derived_id("cancelled", job_id, event_id);
        naq__schedule_event(c, NAQ_EVENT_CANCELLED, NULL, job_id, entry_queue(ch.entry), event_id,
                            message, json_pack("{s:s}", "while", "waiting_for_dependencies"));
    }
    if (s == NAQ_OK && (ch.what == CANCEL || ch.what == CANCELLED)) {
        s = naq__ended_add(ended, json_incref(json_object_get(ch.entry, "job")), "Cancelled",
                           message);
        *cancelled = s == NAQ_OK;
    }
    json_decref(ch.entry);
    return s;
}

void naq__deps_forget(naq_client *c, const char *job_id)
{
    char key[NAQ__KV_KEY_MAX];
    if (job_key(job_id, key) == NAQ_OK)
        naq__kv_remove(c, NAQ__KV_DEPS, key, 0);
}

naq_status naq__deps_waiting_job(naq_client *c, const char *job_id, char **json)
{
    char key[NAQ__KV_KEY_MAX];
    *json = NULL;
    naq_status s = job_key(job_id, key);
    json_t *entry = NULL;
    if (s == NAQ_OK)
        s = read_json(c, NAQ__KV_DEPS, key, &entry, NULL);
    if (s != NAQ_OK)
        return s;
    *json = naq__json_dumps(json_object_get(entry, "job"), NAQ__JSON_FLAGS);
    json_decref(entry);
    return *json ? NAQ_OK : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading job %s", job_id);
}
