/*
 * deps.c - jobs that wait for other jobs (depends_on).
 *
 * Layout, KV bucket "naq_deps" (no TTL; keys are KV-encoded job ids):
 *   "<job>"    the waiting job: {"version": 1, "job": {job JSON},
 *              "pending": [ids], "failed": [ids],
 *              "state": "waiting" | "releasing" | "cancelled"}
 *   "r.<dep>"  who waits for dep: {"dependents": [ids]}
 * and KV bucket "naq_finished" (TTL 7 days): "<job>" -> "completed" or
 * "failed", written by naq__deps_on_finished for every job that ends.
 *
 * Every change of a waiting job is a compare-and-set of its entry, so
 * the outcome of several dependencies finishing at the same moment (on
 * several workers) is serialised by the server: each finisher removes its
 * dependency from "pending" or loses the race, re-reads and tries again.
 * Exactly one of them empties the set, and it is the one that moves the
 * entry to "releasing" and publishes the job, with Nats-Msg-Id = job id:
 * should anyone publish it again (a finisher that died after the CAS and
 * is re-run, see below), the queue stores it once.
 *
 * "Dependency finished before the dependent was enqueued" and "enqueued
 * while its dependency is finishing" are one race between two writers:
 *   enqueuer:  add itself to "r.<dep>"  ->  read the finished marker
 *   finisher:  write the finished marker ->  read "r.<dep>"
 * Each writes before it reads, so at least one of them sees the other and
 * accounts for the dependency (both may: a dependency already gone from
 * "pending" is not counted twice). The marker, not the event log, is what
 * the enqueuer reads, because events reach the server asynchronously and
 * could still be in the finisher's buffer; the event log is only the
 * fallback for jobs whose marker expired (older than 7 days).
 *
 * Crash safety: the worker calls naq__deps_on_finished before it acks the
 * job, and "r.<dep>" is removed only after every dependent was handled,
 * so a finisher that dies midway is re-run by the job's redelivery and
 * finishes the work: an entry left "releasing" is released (again), one
 * left "cancelled" is finished off.
 */
#include "lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compare-and-set attempts before giving up (each one lost means another
 * writer made progress). */
#define CAS_ATTEMPTS 100
#define ENTRY_VERSION 1

static naq_status job_key(const char *job_id, char out[NAQ__KV_KEY_MAX])
{
    return naq__kv_key(job_id, out, NAQ__KV_KEY_MAX);
}

static naq_status rev_key(const char *dep_id, char out[NAQ__KV_KEY_MAX])
{
    out[0] = 'r';
    out[1] = '.';
    return naq__kv_key(dep_id, out + 2, NAQ__KV_KEY_MAX - 2);
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
    char *text = json_dumps(o, NAQ__JSON_FLAGS);
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

/* ---------------------------------------------------------------- state */

/* 1 completed, -1 failed for good, 0 not a final outcome. */
static int event_outcome(naq_event_type t)
{
    switch (t) {
    case NAQ_EVENT_COMPLETED: return 1;
    case NAQ_EVENT_CANCELLED:
    case NAQ_EVENT_MAX_RETRIES_EXCEEDED:
    case NAQ_EVENT_TTL_EXPIRED: return -1;
    default: return 0;
    }
}

/* Events that say nothing about a job's state (the worker logs
 * worker_released after the outcome). */
static int bookkeeping(naq_event_type t)
{
    return t == NAQ_EVENT_WORKER_RELEASED || t == NAQ_EVENT_WORKER_ASSIGNED ||
           t == NAQ_EVENT_TTL_EXTENDED;
}

int naq__job_finished(naq_client *c, const char *job_id)
{
    char key[NAQ__KV_KEY_MAX], *val = NULL;
    if (job_key(job_id, key) != NAQ_OK)
        return 0;
    if (naq__kv_get(c, NAQ__KV_FINISHED, key, &val, NULL, NULL) == NAQ_OK) {
        int r = strcmp(val, "completed") == 0 ? 1 : -1;
        free(val);
        return r;
    }
    /* No marker (expired, or written before naq had them): the events. */
    naq_event last;
    naq_status s = naq_job_last_event(c, job_id, &last);
    int r = s == NAQ_OK ? event_outcome(last.type) : 0;
    int look_back = s == NAQ_OK && bookkeeping(last.type);
    naq_event_clear(&last);
    if (look_back) {
        naq_event_list l;
        if (naq_job_history(c, job_id, &l) == NAQ_OK) {
            for (size_t i = l.count; i-- > 0;) {
                if (!bookkeeping(l.items[i].type)) {
                    r = event_outcome(l.items[i].type);
                    break;
                }
            }
        }
        naq_event_list_free(&l);
    }
    naq__clear_error();
    return r;
}

/* ---------------------------------------------------------------- index */

/* Adds job to the dependents of dep ("r.<dep>"). */
static naq_status index_add(naq_client *c, const char *dep, const char *job)
{
    char key[NAQ__KV_KEY_MAX];
    naq_status s = rev_key(dep, key);
    for (int attempt = 0; s == NAQ_OK && attempt < CAS_ATTEMPTS; attempt++) {
        json_t *o = NULL;
        uint64_t rev = 0;
        s = read_json(c, NAQ__KV_DEPS, key, &o, &rev);
        if (s == NAQ_ERR_NOT_FOUND)
            o = json_pack("{s:[]}", "dependents");
        else if (s != NAQ_OK)
            return s;
        json_t *list = json_object_get(o, "dependents");
        if (!json_is_array(list)) {
            json_object_set_new(o, "dependents", json_array());
            list = json_object_get(o, "dependents");
        }
        if (array_has(list, job)) {
            json_decref(o);
            return NAQ_OK;
        }
        json_array_append_new(list, json_string(job));
        s = write_json(c, NAQ__KV_DEPS, key, o, s == NAQ_OK ? rev : 0, NULL);
        json_decref(o);
        if (s != NAQ_ERR_EXISTS)
            return s;
        s = NAQ_OK;
    }
    return s == NAQ_OK
               ? naq__fail(NAQ_ERR_TIMEOUT, "too much contention on the dependents of %s", dep)
               : s;
}

/* Removes job from the dependents of dep (the key goes with the last
 * one). Best effort: a stale entry only costs the finisher a lookup. */
static void index_drop(naq_client *c, const char *dep, const char *job)
{
    char key[NAQ__KV_KEY_MAX];
    if (rev_key(dep, key) != NAQ_OK)
        return;
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        json_t *o = NULL;
        uint64_t rev = 0;
        if (read_json(c, NAQ__KV_DEPS, key, &o, &rev) != NAQ_OK)
            return;
        json_t *list = json_object_get(o, "dependents");
        array_drop(list, job);
        naq_status s = json_array_size(list) == 0 ? naq__kv_remove(c, NAQ__KV_DEPS, key, rev)
                                                  : write_json(c, NAQ__KV_DEPS, key, o, rev, NULL);
        json_decref(o);
        if (s != NAQ_ERR_EXISTS)
            return;
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
    e.details_json = details ? json_dumps(details, NAQ__JSON_FLAGS) : NULL;
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
    char *text = json_dumps(job, NAQ__JSON_FLAGS);
    if (text == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory releasing a job");
    naq_job j;
    naq_status s = naq_job_decode(text, strlen(text), &j);
    int dup = 0;
    if (s == NAQ_OK)
        s = naq__job_publish(c, c->js, j.id, j.queue, j.function, j.priority, text, strlen(text),
                             NULL, &dup, NULL);
    if (s == NAQ_OK && !dup)
        naq__log_enqueued(c, &j);
    if (s == NAQ_OK)
        s = naq__kv_remove(c, NAQ__KV_DEPS, key, rev);
    naq_job_clear(&j);
    free(text);
    return s;
}

/* ---------------------------------------------------------------- unrun */

naq_status naq__job_finish_unrun(naq_client *c, json_t *job, const char *error_type,
                                 const char *message)
{
    char *text = json_dumps(job, NAQ__JSON_FLAGS);
    if (text == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory finishing a job");
    naq_job j;
    naq_status s = naq_job_decode(text, strlen(text), &j);
    free(text);
    if (s == NAQ_OK) {
        json_t *r = json_pack("{s:s, s:i, s:f, s:s, s:s}", "status", "cancelled", "attempt", 0,
                              "finished_at", naq__now(), "error_type", error_type, "error_message",
                              message);
        char *rj = r ? json_dumps(r, NAQ__JSON_FLAGS) : NULL;
        json_decref(r);
        s = rj ? naq__result_store(c, &j, rj)
               : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory finishing a job");
        free(rj);
    }
    if (s == NAQ_OK)
        s = naq__deps_on_finished(c, j.id, 0);
    if (s == NAQ_OK)
        naq__unique_release(c, &j);
    naq_job_clear(&j);
    return s;
}

/* Cancels an entry read at revision rev: state "cancelled" by CAS (which
 * decides against a concurrent release), then the events, the job's own
 * end, and the entry's removal. NAQ_ERR_EXISTS when the CAS lost. */
static naq_status cancel_entry(naq_client *c, const char *job_id, const char *key, json_t *entry,
                               uint64_t rev, const char *error_type, const char *message,
                               json_t *details)
{
    uint64_t nrev = rev;
    naq_status s = NAQ_OK;
    const char *state = json_string_value(json_object_get(entry, "state"));
    int fresh = state == NULL || strcmp(state, "cancelled") != 0;
    if (fresh) {
        json_object_set_new(entry, "state", json_string("cancelled"));
        s = write_json(c, NAQ__KV_DEPS, key, entry, rev, &nrev);
        if (s != NAQ_OK) {
            json_decref(details);
            return s;
        }
        char event_id[NAQ_ID_SIZE];
        naq__derived_id("cancelled", job_id, event_id);
        naq__schedule_event(c, NAQ_EVENT_CANCELLED, NULL, job_id, entry_queue(entry), event_id,
                            message, details);
    } else {
        json_decref(details);
    }
    s = naq__job_finish_unrun(c, json_object_get(entry, "job"), error_type, message);
    if (s == NAQ_OK)
        s = naq__kv_remove(c, NAQ__KV_DEPS, key, nrev);
    return s;
}

/* ---------------------------------------------------------------- account */

/* Records that dep ended (ok = completed) for the waiting job `job`.
 * Idempotent: a dependency accounted for already changes nothing. */
static naq_status account(naq_client *c, const char *job, const char *dep, int ok)
{
    char key[NAQ__KV_KEY_MAX];
    naq_status s = job_key(job, key);
    for (int attempt = 0; s == NAQ_OK && attempt < CAS_ATTEMPTS; attempt++) {
        json_t *entry = NULL;
        uint64_t rev = 0;
        s = read_json(c, NAQ__KV_DEPS, key, &entry, &rev);
        if (s == NAQ_ERR_NOT_FOUND)
            return NAQ_OK; /* released or cancelled already */
        if (s != NAQ_OK)
            return s;
        const char *state = json_string_value(json_object_get(entry, "state"));
        json_t *pending = json_object_get(entry, "pending");
        json_t *failed = json_object_get(entry, "failed");
        int run_anyway = json_is_true(
            json_object_get(json_object_get(entry, "job"), "run_on_dependency_failure"));
        const char *queue = entry_queue(entry);
        if (state != NULL && strcmp(state, "cancelled") == 0) {
            /* Its canceller is finishing it (and a cycle of dependencies
             * ends here). */
            json_decref(entry);
            return NAQ_OK;
        }
        if (!array_has(pending, dep)) {
            /* Accounted for already; finish a release a dead finisher left. */
            if (state != NULL && strcmp(state, "releasing") == 0)
                s = release(c, key, entry, rev);
            json_decref(entry);
            return s;
        }
        array_drop(pending, dep);
        if (!ok) {
            if (!json_is_array(failed)) {
                json_object_set_new(entry, "failed", json_array());
                failed = json_object_get(entry, "failed");
            }
            json_array_append_new(failed, json_string(dep));
        }
        if (!ok && !run_anyway) {
            char msg[NAQ_ID_SIZE + 64];
            snprintf(msg, sizeof msg, "dependency %s failed", dep);
            json_t *entry_copy = json_deep_copy(entry);
            /* dependency_failed first, then the cancellation (if the CAS
             * below wins; a lost CAS logs nothing and retries). */
            json_object_set_new(entry_copy, "state", json_string("cancelled"));
            uint64_t nrev = 0;
            s = write_json(c, NAQ__KV_DEPS, key, entry_copy, rev, &nrev);
            if (s == NAQ_OK) {
                log_dep_event(c, NAQ_EVENT_DEPENDENCY_FAILED, job, queue, naq__now(), msg,
                              json_pack("{s:s, s:b}", "dependency", dep, "run_anyway", 0));
                char event_id[NAQ_ID_SIZE];
                naq__derived_id("cancelled", job, event_id);
                naq__schedule_event(c, NAQ_EVENT_CANCELLED, NULL, job, queue, event_id, msg,
                                    json_pack("{s:s, s:s, s:s}", "while",
                                              "waiting_for_dependencies", "reason",
                                              "dependency_failed", "dependency", dep));
                s = cancel_entry(c, job, key, entry_copy, nrev, "DependencyFailed", msg, NULL);
            }
            json_decref(entry_copy);
            json_decref(entry);
            if (s == NAQ_ERR_EXISTS) {
                s = NAQ_OK;
                continue;
            }
            return s;
        }
        size_t left = json_array_size(pending);
        if (left == 0)
            json_object_set_new(entry, "state", json_string("releasing"));
        uint64_t nrev = 0;
        s = write_json(c, NAQ__KV_DEPS, key, entry, rev, &nrev);
        double at = naq__now();
        if (s == NAQ_ERR_EXISTS) {
            json_decref(entry);
            s = NAQ_OK;
            continue;
        }
        if (s == NAQ_OK) {
            if (ok)
                log_dep_event(c, NAQ_EVENT_DEPENDENCY_SATISFIED, job, queue, at, NULL,
                              json_pack("{s:s, s:i}", "dependency", dep, "pending", (int)left));
            else
                log_dep_event(c, NAQ_EVENT_DEPENDENCY_FAILED, job, queue, at, NULL,
                              json_pack("{s:s, s:b, s:i}", "dependency", dep, "run_anyway", 1,
                                        "pending", (int)left));
            if (left == 0)
                s = release(c, key, entry, nrev);
        }
        json_decref(entry);
        return s;
    }
    return s == NAQ_OK ? naq__fail(NAQ_ERR_TIMEOUT, "too much contention on waiting job %s", job)
                       : s;
}

/* ---------------------------------------------------------------- API */

naq_status naq__deps_enqueue(naq_client *c, const naq_job *j, const char *json, size_t len)
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
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d)
    {
        if ((s = index_add(c, json_string_value(d), j->id)) != NAQ_OK) {
            if (created) {
                /* Nothing half-enqueued: the job was never announced. */
                char why[1024];
                snprintf(why, sizeof why, "%s", naq_last_error());
                naq__kv_remove(c, NAQ__KV_DEPS, key, rev);
                for (size_t k = 0; k < i; k++)
                    index_drop(c, json_string_value(json_array_get(deps, k)), j->id);
                s = naq__fail(s, "job %s was not enqueued: %s", j->id, why);
            }
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
        e.details_json = det ? json_dumps(det, NAQ__JSON_FLAGS) : NULL;
        json_decref(det);
        e.tags_json = j->tags_json ? strdup(j->tags_json) : NULL;
        naq_client_log(c, &e);
        naq_event_clear(&e);
    }
    /* Dependencies that ended before we were in their index. */
    json_array_foreach(deps, i, d)
    {
        const char *dep = json_string_value(d);
        int outcome = naq__job_finished(c, dep);
        if (outcome == 0)
            continue;
        if ((s = account(c, j->id, dep, outcome > 0)) != NAQ_OK)
            goto out;
        index_drop(c, dep, j->id);
    }
out:
    json_decref(entry);
    json_decref(job);
    json_decref(deps);
    return s;
}

naq_status naq__deps_on_finished(naq_client *c, const char *job_id, int succeeded)
{
    naq_status s;
    if (c == NULL || (s = naq_id_validate("job id", job_id)) != NAQ_OK)
        return c == NULL ? naq__fail(NAQ_ERR_INVALID_ARG, "no client") : s;
    char key[NAQ__KV_KEY_MAX], rkey[NAQ__KV_KEY_MAX];
    if ((s = job_key(job_id, key)) != NAQ_OK || (s = rev_key(job_id, rkey)) != NAQ_OK)
        return s;
    /* The marker first (see the top of this file). */
    const char *mark = succeeded ? "completed" : "failed";
    if ((s = naq__kv_put(c, NAQ__KV_FINISHED, key, mark, strlen(mark), NULL)) != NAQ_OK)
        return s;
    json_t *o = NULL;
    uint64_t rev = 0;
    s = read_json(c, NAQ__KV_DEPS, rkey, &o, &rev);
    if (s == NAQ_ERR_NOT_FOUND)
        return NAQ_OK; /* the common case: nobody waits for this job */
    if (s != NAQ_OK)
        return s;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(o, "dependents"), i, d)
    {
        if (json_is_string(d) &&
            (s = account(c, json_string_value(d), job_id, succeeded)) != NAQ_OK)
            break;
    }
    /* Kept until every dependent is handled, so a re-run finishes the job;
     * a dependent added after our read (a newer revision) stays, and it
     * saw our marker itself. */
    if (s == NAQ_OK)
        s = naq__kv_remove(c, NAQ__KV_DEPS, rkey, rev);
    json_decref(o);
    return s;
}

naq_status naq__deps_cancel(naq_client *c, const char *job_id, int *cancelled)
{
    char key[NAQ__KV_KEY_MAX];
    *cancelled = 0;
    naq_status s = job_key(job_id, key);
    for (int attempt = 0; s == NAQ_OK && attempt < CAS_ATTEMPTS; attempt++) {
        json_t *entry = NULL;
        uint64_t rev = 0;
        s = read_json(c, NAQ__KV_DEPS, key, &entry, &rev);
        if (s == NAQ_ERR_NOT_FOUND)
            return NAQ_OK;
        if (s != NAQ_OK)
            return s;
        const char *state = json_string_value(json_object_get(entry, "state"));
        if (state != NULL && strcmp(state, "releasing") == 0) {
            json_decref(entry); /* on its way to the queue: the worker cancels it */
            return NAQ_OK;
        }
        s = cancel_entry(c, job_id, key, entry, rev, "Cancelled",
                         "cancelled while waiting for dependencies",
                         json_pack("{s:s}", "while", "waiting_for_dependencies"));
        json_decref(entry);
        if (s == NAQ_OK)
            *cancelled = 1;
        if (s != NAQ_ERR_EXISTS)
            return s;
        s = NAQ_OK;
    }
    return s == NAQ_OK ? naq__fail(NAQ_ERR_TIMEOUT, "too much contention on waiting job %s", job_id)
                       : s;
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
    *json = json_dumps(json_object_get(entry, "job"), NAQ__JSON_FLAGS);
    json_decref(entry);
    return *json ? NAQ_OK : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading job %s", job_id);
}
