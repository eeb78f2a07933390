/*
 * enqueue.c - putting one job into naq: its queue, or the dependency
 * store (deps.c) when it waits for other jobs, guarded by its unique key
 * (unique.c) when it has one.
 *
 * naq_enqueue validates everything before anything is sent, publishes
 * (one round trip for a plain job: the publish and its acknowledgement),
 * and only then logs "enqueued": the event log never shows a job that is
 * not queued, and a refused job leaves no trace anywhere.
 *
 * naq_enqueue_async publishes the same message without waiting; the
 * server's acknowledgement arrives on a nats.c thread (on_async_ack),
 * which logs "enqueued" and reports the job to the caller's callback.
 * The client's async context (c->ajs) finds the job of an
 * acknowledgement by the published message's address (msgmap.h).
 */
#include "jobs.h"
#include "core/msgmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Jobs published asynchronously and not yet acknowledged, per client; a
 * producer past it waits up to ASYNC_STALL_MS for room. */
#define ASYNC_MAX_PENDING 8192
#define ASYNC_STALL_MS 10000
#define ASYNC_ACK_WAIT_MS 10000

naq_status naq__enqueue_built(naq_client *c, const naq_job *j, const char *json, size_t len,
                              char job_id[NAQ_ID_SIZE], int *existing)
{
    char holder[NAQ_ID_SIZE] = "";
    int took = 0;
    uint64_t rev = 0;
    naq_status s;
    if (j->unique_key != NULL) {
        if ((s = naq__unique_claim(c, j, holder, &took, &rev)) != NAQ_OK)
            return s;
        if (holder[0] != '\0') {
            snprintf(job_id, NAQ_ID_SIZE, "%s", holder);
            if (existing != NULL)
                *existing = 1;
            return NAQ_OK;
        }
    }
    if (j->depends_on != NULL) {
        json_t *ended = json_array();
        s = ended ? naq__deps_enqueue(c, j, json, len, ended)
                  : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory enqueueing job %s", j->id);
        /* A dependency had failed already: the job ended at once. */
        if (s == NAQ_OK)
            s = naq__finish_unrun(c, ended);
        json_decref(ended);
    } else {
        s = naq__job_publish(c, c->js, j->id, j->queue, j->function, j->priority, json, len, NULL);
        /* Logged for a duplicate (same id within the window) too: the
         * first enqueue may have been stored with its reply lost, and
         * logged nothing. The event's id is the job's, so the event
         * stream keeps one copy. */
        if (s == NAQ_OK)
            naq__log_enqueued(c, j);
    }
    if (s != NAQ_OK) {
        if (took) {
            /* Nothing half-enqueued: give the key back (keeping the
             * message of the failure that matters). */
            char why[1024];
            snprintf(why, sizeof why, "%s", naq_last_error());
            naq__unique_unclaim(c, j, rev);
            s = naq__fail(s, "%s", why);
        }
        return s;
    }
    snprintf(job_id, NAQ_ID_SIZE, "%s", j->id);
    return NAQ_OK;
}

/* Checks the arguments of the enqueue call `who`, validates o and builds
 * its job and JSON (*json heap, the caller frees it; naq_job_clear j). On
 * failure nothing is left to free. */
static naq_status build(const char *who, naq_client *c, const naq_job_opts *o, const char *job_id,
                        naq_job *j, char **json, size_t *len)
{
    *json = NULL;
    *len = 0;
    if (c == NULL || o == NULL || job_id == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "%s needs a client, options and a buffer for the job id", who);
    naq_status s = naq_job_opts_validate(o);
    if (s != NAQ_OK)
        return s;
    if ((s = naq__job_from_opts(c->crypt, o, j)) != NAQ_OK)
        return s;
    if ((s = naq_job_encode(j, json, len)) == NAQ_OK)
        s = naq__check_payload(c, j->id, *len);
    if (s == NAQ_ERR_CODEC)
        s = NAQ_ERR_INVALID_ARG; /* validated, so only a bad string can get here */
    if (s != NAQ_OK) {
        free(*json);
        *json = NULL;
        naq_job_clear(j);
    }
    return s;
}

naq_status naq_enqueue_ex(naq_client *c, const naq_job_opts *o, char job_id[NAQ_ID_SIZE],
                          int *existing)
{
    if (job_id != NULL)
        job_id[0] = '\0';
    if (existing != NULL)
        *existing = 0;
    naq_job j;
    char *json;
    size_t len;
    naq_status s = build("naq_enqueue", c, o, job_id, &j, &json, &len);
    if (s != NAQ_OK)
        return s;
    s = naq__enqueue_built(c, &j, json, len, job_id, existing);
    free(json);
    naq_job_clear(&j);
    return s;
}

naq_status naq_enqueue(naq_client *c, const naq_job_opts *o, char job_id[NAQ_ID_SIZE])
{
    return naq_enqueue_ex(c, o, job_id, NULL);
}

/* ---------------------------------------------------------------- async */

typedef struct {
    naq_job job;
    naq_enqueue_done_fn done;
    void *user;
} async_job;

static void async_job_free(async_job *a)
{
    naq_job_clear(&a->job);
    free(a);
}

static void on_async_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    naq_client *c = closure;
    async_job *a = naq__msgmap_take(c->async_jobs, msg);
    natsMsg_Destroy(msg);
    if (a == NULL)
        return;
    naq_status s = NAQ_OK;
    char why[512] = "";
    if (pa != NULL || pae == NULL) {
        naq__log_enqueued(c, &a->job); /* a duplicate too, as naq_enqueue */
    } else {
        s = pae->Err == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS;
        snprintf(why, sizeof why,
                 s == NAQ_ERR_TIMEOUT
                     ? "the server did not confirm job %s in time, so it may or may not be "
                       "queued; enqueue again with the same job id (stored once within 2 minutes)"
                     : "job %s was not queued: %s",
                 a->job.id, pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    }
    if (a->done != NULL)
        a->done(a->job.id, s, why, a->user);
    async_job_free(a);
}

naq_status naq__enqueue_async_init(naq_client *c)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = ASYNC_MAX_PENDING;
    jo.PublishAsync.StallWait = ASYNC_STALL_MS;
    jo.PublishAsync.AckHandler = on_async_ack;
    jo.PublishAsync.AckHandlerClosure = c;
    naq_status s = naq__msgmap_create(&c->async_jobs);
    if (s != NAQ_OK)
        return s;
    natsStatus ns = natsConnection_JetStream(&c->ajs, c->nc, &jo);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0,
                              "cannot create the JetStream context of "
                              "asynchronous enqueues");
    return NAQ_OK;
}

void naq__enqueue_async_destroy(naq_client *c)
{
    if (c->ajs != NULL && naq__msgmap_count(c->async_jobs) > 0) {
        naq_enqueue_async_flush(c, ASYNC_ACK_WAIT_MS);
        natsMsgList pending = {0};
        if (js_PublishAsyncGetPendingList(&pending, c->ajs) == NATS_OK) {
            for (int i = 0; i < pending.Count; i++) {
                async_job *a = naq__msgmap_take(c->async_jobs, pending.Msgs[i]);
                if (a != NULL && a->done != NULL)
                    a->done(a->job.id, NAQ_ERR_TIMEOUT,
                            "the client closed before the server confirmed the job", a->user);
                if (a != NULL)
                    async_job_free(a);
            }
            natsMsgList_Destroy(&pending);
        }
    }
    jsCtx_Destroy(c->ajs);
    naq__msgmap_destroy(c->async_jobs);
}

naq_status naq__enqueue_async_built(naq_client *c, naq_job *j, const char *json, size_t len,
                                    naq_enqueue_done_fn done, void *user)
{
    async_job *a = calloc(1, sizeof *a);
    if (a == NULL) {
        naq_job_clear(j);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory enqueueing a job");
    }
    a->job = *j; /* taken */
    memset(j, 0, sizeof *j);
    a->done = done;
    a->user = user;
    natsMsg *m = NULL;
    naq_status s;
    if ((s = naq__job_msg(c, a->job.id, a->job.queue, a->job.function, a->job.priority, json, len,
                          NULL, &m)) != NAQ_OK ||
        (s = naq__msgmap_put(c->async_jobs, m, a)) != NAQ_OK)
        goto out;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = ASYNC_ACK_WAIT_MS;
    natsMsg *sent = m;
    natsStatus ns = js_PublishMsgAsync(c->ajs, &m, &po);
    if (ns == NATS_OK) {
        a = NULL; /* the ack handler's now */
    } else {
        naq__msgmap_take(c->async_jobs, sent);
        s = naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, 0,
                           "job %s was not sent (%s)", a->job.id,
                           ns == NATS_TIMEOUT ? "too many jobs wait for the server's answer"
                                              : "the connection refused it");
    }
out:
    natsMsg_Destroy(m);
    if (a != NULL)
        async_job_free(a);
    return s;
}

naq_status naq_enqueue_async(naq_client *c, const naq_job_opts *o, char job_id[NAQ_ID_SIZE],
                             naq_enqueue_done_fn done, void *user)
{
    if (job_id != NULL)
        job_id[0] = '\0';
    naq_job j;
    char *json;
    size_t len;
    naq_status s = build("naq_enqueue_async", c, o, job_id, &j, &json, &len);
    if (s != NAQ_OK)
        return s;
    snprintf(job_id, NAQ_ID_SIZE, "%s", j.id);
    if (j.unique_key != NULL || j.depends_on != NULL) {
        /* Reads of their own first: naq_enqueue's path, done before return. */
        s = naq__enqueue_built(c, &j, json, len, job_id, NULL);
        if (done != NULL) /* job_id: the holder's, when a unique key was held */
            done(s == NAQ_OK ? job_id : j.id, s, s == NAQ_OK ? "" : naq_last_error(), user);
        naq_job_clear(&j);
    } else {
        s = naq__enqueue_async_built(c, &j, json, len, done, user);
    }
    if (s != NAQ_OK)
        job_id[0] = '\0';
    free(json);
    return s;
}

naq_status naq_enqueue_async_flush(naq_client *c, int64_t timeout_ms)
{
    if (c == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_enqueue_async_flush needs a client");
    if (naq__msgmap_count(c->async_jobs) == 0)
        return NAQ_OK;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = timeout_ms;
    natsStatus ns = js_PublishAsyncComplete(c->ajs, &po);
    if (ns == NATS_TIMEOUT)
        return naq__fail(NAQ_ERR_TIMEOUT,
                         "%zu jobs still wait for the server's answer after %lld ms",
                         naq__msgmap_count(c->async_jobs), (long long)timeout_ms);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "waiting for enqueued jobs failed");
    return NAQ_OK;
}
