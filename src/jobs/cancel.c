/*
 * cancel.c - cancelling jobs.
 *
 * A cancellation is a key in the KV bucket "naq_cancel" (key = job id,
 * bucket TTL 7 days: long enough for any queued job to be met). Workers
 * do not read it per job: each keeps a watch (naq__cancel_watch_*) that
 * starts with every cancellation already made (start returns once those
 * are in memory) and then follows new ones, so "is this job cancelled?"
 * is a lookup in memory, and a running job is flagged the moment its
 * cancellation arrives. A cancellation written while a worker is taking
 * that very job may reach the worker's memory a moment after its check:
 * the watch then flags the job as it runs (cancelled while running), as
 * if the cancel had come a little later. Jobs no worker will meet soon
 * are cancelled here, and logged here: one waiting for dependencies is
 * removed from "naq_deps" (deps.c), a delayed one from the NAQ_DELAYED
 * stream. The key is written first in every case, so a job released to
 * its queue at that very moment is still stopped by the worker.
 */
#include "jobs.h"
#include "core/jsonw.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WATCH_STOP_WAIT_MS 5000
/* How long start waits for the cancellations made before it. */
#define WATCH_SEED_WAIT_MS 10000
#define SET_BUCKETS 1024
#define SETTLE_FLUSH_MS 1000

int naq__cancel_requested(naq_client *c, const char *job_id)
{
    char key[NAQ__KV_KEY_MAX];
    if (c == NULL || job_id == NULL || naq__kv_key(job_id, key, sizeof key) != NAQ_OK)
        return 0;
    return naq__kv_get(c, NAQ__KV_CANCEL, key, NULL, NULL, NULL) == NAQ_OK;
}

/* ---------------------------------------------------------------- watch */

/* A job id seen cancelled (chained hash set). */
typedef struct seen {
    struct seen *next;
    char id[NAQ_ID_SIZE];
} seen;

struct naq__cancel_watch {
    natsSubscription *sub;
    void (*on_cancel)(const char *job_id, void *ud);
    void *ud;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopped;            /* under lock: no on_cancel call starts after it is set */
    int completed;          /* under lock: nats.c will not call us again */
    int seeded;             /* under lock: the cancellations made before start are in */
    int refs;               /* under lock: the owner and the subscription */
    seen *set[SET_BUCKETS]; /* under lock */
};

static size_t set_slot(const char *id)
{
    return naq__fnv1a(id, strlen(id), NAQ__FNV_OFFSET) % SET_BUCKETS;
}

/* Lock held. */
static int set_has(naq__cancel_watch *w, const char *id)
{
    for (seen *e = w->set[set_slot(id)]; e != NULL; e = e->next)
        if (strcmp(e->id, id) == 0)
            return 1;
    return 0;
}

/* Lock held. A job whose id cannot be kept (out of memory) is flagged
 * when it runs, through on_cancel, all the same. */
static void set_add(naq__cancel_watch *w, const char *id)
{
    if (set_has(w, id))
        return;
    seen *e = malloc(sizeof *e);
    if (e == NULL)
        return;
    snprintf(e->id, sizeof e->id, "%s", id);
    size_t i = set_slot(id);
    e->next = w->set[i];
    w->set[i] = e;
}

int naq__cancel_watch_has(naq__cancel_watch *w, const char *job_id)
{
    if (w == NULL)
        return 0;
    pthread_mutex_lock(&w->lock);
    int yes = set_has(w, job_id);
    pthread_mutex_unlock(&w->lock);
    return yes;
}

static void watch_release(naq__cancel_watch *w)
{
    pthread_mutex_lock(&w->lock);
    int last = --w->refs == 0;
    pthread_mutex_unlock(&w->lock);
    if (last) {
        for (size_t i = 0; i < SET_BUCKETS; i++) {
            for (seen *e = w->set[i], *next; e != NULL; e = next) {
                next = e->next;
                free(e);
            }
        }
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
    }
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc;
    (void)sub;
    naq__cancel_watch *w = closure;
    const char *op = NULL, *subject = natsMsg_GetSubject(m);
    natsMsgHeader_Get(m, "KV-Operation", &op);
    const char *key = strchr(subject + 4, '.'); /* "$KV.<bucket>.<key>" */
    char job_id[NAQ_ID_SIZE];
    jsMsgMetaData *meta = NULL;
    int caught_up = natsMsg_GetMetaData(&meta, m) == NATS_OK && meta->NumPending == 0;
    jsMsgMetaData_Destroy(meta);
    pthread_mutex_lock(&w->lock);
    if (op == NULL && key != NULL && naq__kv_unkey(key + 1, job_id, sizeof job_id) == NAQ_OK) {
        set_add(w, job_id);
        if (!w->stopped)
            w->on_cancel(job_id, w->ud);
    }
    if (caught_up && !w->seeded) {
        w->seeded = 1;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    natsMsg_Destroy(m);
}

static void on_complete(void *closure)
{
    naq__cancel_watch *w = closure;
    pthread_mutex_lock(&w->lock);
    w->completed = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    watch_release(w);
}

naq_status naq__cancel_watch_start(naq_client *c, void (*on_cancel)(const char *job_id, void *ud),
                                   void *ud, naq__cancel_watch **out)
{
    *out = NULL;
    if (c == NULL || on_cancel == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "a cancel watch needs a client and a callback");
    naq_status s = naq__kv_ensure(c, NAQ__KV_CANCEL);
    if (s != NAQ_OK)
        return s;
    naq__cancel_watch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory starting a cancel watch");
    w->on_cancel = on_cancel;
    w->ud = ud;
    w->refs = 1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    char subject[NAQ_URL_MAX], stream[NAQ_NAME_MAX + 8];
    snprintf(subject, sizeof subject, "$KV.%s.>", naq__kv_bucket(NAQ__KV_CANCEL));
    snprintf(stream, sizeof stream, "KV_%s", naq__kv_bucket(NAQ__KV_CANCEL));
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll; /* those made already, then new ones */
    so.Config.HeadersOnly = true;            /* the key is in the subject */
    /* An empty bucket has nothing to seed: no message will say so. */
    jsStreamInfo *si = NULL;
    if (js_GetStreamInfo(&si, c->js, stream, NULL, NULL) == NATS_OK && si->State.Msgs == 0)
        w->seeded = 1;
    jsStreamInfo_Destroy(si);
    jsErrCode jerr = 0;
    natsStatus ns = js_Subscribe(&w->sub, c->js, subject, on_msg, w, NULL, &so, &jerr);
    if (ns == NATS_OK) {
        w->refs++; /* the subscription's, dropped by on_complete */
        ns = natsSubscription_SetOnCompleteCB(w->sub, on_complete, w);
        if (ns != NATS_OK)
            w->refs--;
    }
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot watch cancellations in %s",
                           naq__kv_bucket(NAQ__KV_CANCEL));
        pthread_mutex_lock(&w->lock);
        w->stopped = 1;
        pthread_mutex_unlock(&w->lock);
        if (w->sub != NULL)
            natsSubscription_Unsubscribe(w->sub);
        natsSubscription_Destroy(w->sub);
        watch_release(w);
        return s;
    }
    /* Seeded before the first job is taken: a job cancelled while queued
     * must not slip through because its key had not arrived yet. */
    struct timespec until = naq__deadline(CLOCK_REALTIME, WATCH_SEED_WAIT_MS);
    pthread_mutex_lock(&w->lock);
    while (!w->seeded && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
        ;
    int seeded = w->seeded;
    pthread_mutex_unlock(&w->lock);
    if (!seeded) {
        naq__cancel_watch_stop(w);
        return naq__fail(NAQ_ERR_TIMEOUT, "cannot read the cancellations in %s within %d s",
                         naq__kv_bucket(NAQ__KV_CANCEL), WATCH_SEED_WAIT_MS / 1000);
    }
    *out = w;
    return NAQ_OK;
}

void naq__cancel_watch_stop(naq__cancel_watch *w)
{
    if (w == NULL)
        return;
    /* After this no callback starts, and one that runs has returned. */
    pthread_mutex_lock(&w->lock);
    w->stopped = 1;
    pthread_mutex_unlock(&w->lock);
    natsSubscription_Unsubscribe(w->sub);
    /* Let nats.c finish with the subscription before it is destroyed; if
     * it does not say so in time (connection gone), the subscription's
     * reference keeps w alive for on_complete. */
    struct timespec until = naq__deadline(CLOCK_REALTIME, WATCH_STOP_WAIT_MS);
    pthread_mutex_lock(&w->lock);
    while (!w->completed && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&w->lock);
    natsSubscription_Destroy(w->sub);
    watch_release(w);
}

/* ---------------------------------------------------------------- cancel */

/* Removes a delayed job from NAQ_DELAYED: *removed = 1 when this call
 * deleted it, so it is never released. The bucket subject comes from the
 * run_at of its "scheduled" event, as delay.c computes it. */
static naq_status remove_delayed(naq_client *c, const char *job_id, const naq_event *scheduled,
                                 char **job_json, int *removed)
{
    *removed = 0;
    *job_json = NULL;
    json_t *d = json_loads(scheduled->details_json ? scheduled->details_json : "{}", 0, NULL);
    double run_at = json_number_value(json_object_get(d, "run_at"));
    json_decref(d);
    if (run_at <= 0)
        return NAQ_OK;
    int64_t run_at_ms = llround(run_at * 1000.0);
    char subject[NAQ_URL_MAX];
    naq_status s =
        naq__subject(c, subject, sizeof subject, "due.%lld", (long long)((run_at_ms + 99) / 100));
    if (s != NAQ_OK)
        return s;
    uint64_t seq = 0;
    for (;;) {
        jsDirectGetMsgOptions dg;
        jsDirectGetMsgOptions_Init(&dg);
        dg.NextBySubject = subject;
        dg.Sequence = seq;
        natsMsg *m = NULL;
        natsStatus ns = js_DirectGetMsg(&m, c->js, c->delayed_stream, NULL, &dg);
        if (ns == NATS_NOT_FOUND)
            return NAQ_OK; /* released already: it is queued */
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read the delayed jobs of %s",
                                  subject);
        seq = natsMsg_GetSequence(m) + 1;
        const char *id = NULL;
        natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
        if (id == NULL || strcmp(id, job_id) != 0) {
            natsMsg_Destroy(m);
            continue;
        }
        jsErrCode jerr = 0;
        ns = js_DeleteMsg(c->js, c->delayed_stream, seq - 1, NULL, &jerr);
        if (ns == NATS_OK) {
            *removed = 1;
            *job_json = strndup(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
        }
        natsMsg_Destroy(m);
        if (ns == NATS_OK && *job_json == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory cancelling job %s", job_id);
        return NAQ_OK; /* deleted, or released meanwhile (the worker cancels it) */
    }
}

naq_status naq__last_event_settled(naq_client *c, const char *job_id, naq_event *out)
{
    naq_client_flush_events(c, SETTLE_FLUSH_MS);
    naq_status s = naq_job_last_event(c, job_id, out);
    if (s != NAQ_ERR_NOT_FOUND)
        return s;
    int64_t ms = c->cfg.logger_flush_ms > 0 ? 2 * c->cfg.logger_flush_ms : 200;
    naq__sleep_ms(ms);
    naq_event_clear(out);
    return naq_job_last_event(c, job_id, out);
}

naq_status naq_job_cancel(naq_client *c, const char *job_id, naq_cancel_outcome *out)
{
    if (out != NULL)
        *out = NAQ_CANCEL_REQUESTED;
    if (c == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_job_cancel needs a client");
    naq_status s = naq_id_validate("job id", job_id);
    if (s != NAQ_OK)
        return s;
    char *waiting = NULL;
    int is_waiting = naq__deps_waiting_job(c, job_id, &waiting) == NAQ_OK;
    naq_event last;
    naq_status ls = is_waiting ? naq_job_last_event(c, job_id, &last)
                               : naq__last_event_settled(c, job_id, &last);
    free(waiting);
    int finished = naq__job_finished(c, job_id);
    char key[NAQ__KV_KEY_MAX], *val = NULL;
    if (finished != 0) {
        s = naq__fail(NAQ_ERR_CLOSED,
                      "job %s has already finished (%s); there is nothing to cancel", job_id,
                      ls == NAQ_OK   ? naq_event_type_name(last.type)
                      : finished > 0 ? "completed"
                                     : "failed");
        goto out;
    }
    if (ls != NAQ_OK && !is_waiting) {
        s = naq__fail(NAQ_ERR_NOT_FOUND,
                      "naq knows no job %s: it has no events and is not waiting for "
                      "dependencies (wrong id, or its events expired)",
                      job_id);
        goto out;
    }
    json_t *v = json_pack("{s:s, s:f}", "job_id", job_id, "requested_at", naq__now());
    val = v ? naq__json_dumps(v, NAQ__JSON_FLAGS) : NULL;
    json_decref(v);
    if (val == NULL) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory cancelling job %s", job_id);
        goto out;
    }
    if ((s = naq__kv_key(job_id, key, sizeof key)) != NAQ_OK ||
        (s = naq__kv_put(c, NAQ__KV_CANCEL, key, val, strlen(val), NULL)) != NAQ_OK)
        goto out;
    int done = 0;
    json_t *ended = json_array();
    if (ended == NULL) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory cancelling job %s", job_id);
        goto out;
    }
    if (is_waiting) {
        if ((s = naq__deps_cancel(c, job_id, &done, ended)) == NAQ_OK)
            s = naq__finish_unrun(c, ended);
    } else if (ls == NAQ_OK && last.type == NAQ_EVENT_SCHEDULED) {
        char *json = NULL;
        s = remove_delayed(c, job_id, &last, &json, &done);
        if (s == NAQ_OK && done) {
            char event_id[NAQ_ID_SIZE];
            naq__derived_id("cancelled", job_id, event_id);
            naq__schedule_event(c, NAQ_EVENT_CANCELLED, NULL, job_id, last.queue_name, event_id,
                                "cancelled before its time came",
                                json_pack("{s:s}", "while", "delayed"));
            json_t *job = json_loads(json, 0, NULL);
            s = job ? naq__ended_add(ended, job, "Cancelled", "cancelled while delayed")
                    : naq__fail(NAQ_ERR_CODEC, "delayed job %s is not JSON", job_id);
            if (s == NAQ_OK)
                s = naq__finish_unrun(c, ended);
        }
        free(json);
    }
    json_decref(ended);
    if (s == NAQ_OK && out != NULL)
        *out = done ? NAQ_CANCEL_DONE : NAQ_CANCEL_REQUESTED;
out:
    free(val);
    naq_event_clear(&last);
    return s;
}
