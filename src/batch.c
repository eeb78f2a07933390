/*
 * batch.c - naq_enqueue_batch: many jobs, one round of asynchronous
 * publishes, and an exact account of which were stored.
 *
 * Each call has its own JetStream context whose ack handler records the
 * server's answer per job: the handler finds the job by the message's
 * Nats-Msg-Id (the job id, unique within the batch - validation makes
 * sure) in a sorted index built before the first publish, so the
 * handler only reads shared data and writes its own job's slot. nats.c
 * counts a publish as pending until its handler returned, so once
 * js_PublishAsyncComplete says none is pending every handler is done;
 * messages still unanswered at the deadline are taken back with
 * js_PublishAsyncGetPendingList (their handlers will never run) and
 * reported as timeouts.
 *
 * Jobs with a unique key or dependencies need a KV round trip of their
 * own before (or instead of) their publish; they go one at a time through
 * naq_enqueue_ex's path after the asynchronous ones.
 */
#include "lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Publishes in flight at once, and how long to wait for the last ack. */
#define MAX_PENDING 4096
#define STALL_WAIT_MS 10000
#define COMPLETE_WAIT_MS 10000
/* Failures named in the message of a partly failed batch. */
#define NAMED_FAILURES 3

typedef struct {
    const char *id;
    size_t index;
} id_index;

typedef struct {
    id_index *by_id; /* sorted by id */
    size_t n;
    naq_status *statuses;
    int *duplicate;
    char (*errors)[160]; /* the server's text per failed job */
} batch;

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const id_index *)a)->id, ((const id_index *)b)->id);
}

static void on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    batch *b = closure;
    const char *id = NULL;
    natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
    id_index key = {id, 0};
    id_index *hit = id ? bsearch(&key, b->by_id, b->n, sizeof *b->by_id, cmp_id) : NULL;
    if (hit != NULL) {
        size_t i = hit->index;
        if (pa != NULL) {
            b->statuses[i] = NAQ_OK;
            b->duplicate[i] = pa->Duplicate;
        } else {
            b->statuses[i] = pae && pae->Err == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS;
            snprintf(b->errors[i], sizeof b->errors[i], "%s",
                     pae && pae->ErrText ? pae->ErrText : "no acknowledgement");
        }
    }
    natsMsg_Destroy(m);
}

static naq_status publish_async(naq_client *c, jsCtx *js, const naq_job *j, const char *json,
                                size_t len)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq__subject(c, subject, sizeof subject, "queue.%s.%d", j->queue, j->priority);
    if (s != NAQ_OK)
        return s;
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, subject, NULL, json, (int)len);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Nats-Msg-Id", j->id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Queue", j->queue);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Function", j->function);
    if (ns == NATS_OK)
        ns = js_PublishMsgAsync(js, &m, NULL);
    natsMsg_Destroy(m); /* NULL when the library took it */
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot send job %s", j->id);
    return NAQ_OK;
}

/* Validates every job and builds it: 0 when all are fine. */
static size_t prepare(naq_client *c, const naq_job_opts *jobs, size_t n, naq_job *built,
                      char **json, size_t *len, naq_status *statuses, char *first, size_t cap)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        naq_status s = naq_job_opts_validate(&jobs[i]);
        if (s == NAQ_OK && (s = naq__job_from_opts(&jobs[i], &built[i])) == NAQ_OK &&
            (s = naq_job_encode(&built[i], &json[i], &len[i])) == NAQ_OK)
            s = naq__check_payload(c, built[i].id, len[i]);
        if (s == NAQ_ERR_CODEC)
            s = NAQ_ERR_INVALID_ARG;
        statuses[i] = s;
        if (s != NAQ_OK && bad++ == 0)
            snprintf(first, cap, "job %zu of the batch: %s", i + 1, naq_last_error());
    }
    return bad;
}

/* Sorted id index; a job id given twice is a validation failure. */
static size_t index_ids(const naq_job *built, size_t n, id_index *by_id, naq_status *statuses,
                        char *first, size_t cap, size_t bad)
{
    for (size_t i = 0; i < n; i++)
        by_id[i] = (id_index){built[i].id, i};
    qsort(by_id, n, sizeof *by_id, cmp_id);
    for (size_t k = 1; k < n; k++) {
        if (strcmp(by_id[k].id, by_id[k - 1].id) != 0)
            continue;
        size_t i = by_id[k].index > by_id[k - 1].index ? by_id[k].index : by_id[k - 1].index;
        size_t other = by_id[k].index ^ by_id[k - 1].index ^ i;
        statuses[i] = NAQ_ERR_INVALID_ARG;
        if (bad++ == 0)
            snprintf(first, cap,
                     "job %zu of the batch has the id %s of job %zu; a batch "
                     "enqueues each job id once",
                     i + 1, by_id[k].id, other + 1);
    }
    return bad;
}

naq_status naq_enqueue_batch(naq_client *c, const naq_job_opts *jobs, size_t n,
                             char (*ids)[NAQ_ID_SIZE], naq_status *statuses, size_t *enqueued)
{
    if (enqueued != NULL)
        *enqueued = 0;
    if (c == NULL || (n > 0 && (jobs == NULL || ids == NULL || statuses == NULL)))
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_enqueue_batch needs a client, the jobs, and "
                                              "arrays for their ids and statuses");
    if (n == 0)
        return NAQ_OK;
    naq_status s = NAQ_OK;
    char first[1024] = "";
    naq_job *built = calloc(n, sizeof *built);
    char **json = calloc(n, sizeof *json);
    size_t *len = calloc(n, sizeof *len);
    batch b = {calloc(n, sizeof *b.by_id), n, statuses, calloc(n, sizeof(int)),
               calloc(n, sizeof *b.errors)};
    jsCtx *js = NULL;
    if (built == NULL || json == NULL || len == NULL || b.by_id == NULL || b.duplicate == NULL ||
        b.errors == NULL) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a batch of %zu jobs", n);
        for (size_t i = 0; i < n; i++)
            statuses[i] = NAQ_ERR_NO_MEMORY;
        goto out;
    }

    size_t bad = prepare(c, jobs, n, built, json, len, statuses, first, sizeof first);
    bad = index_ids(built, n, b.by_id, statuses, first, sizeof first, bad);
    for (size_t i = 0; i < n; i++)
        snprintf(ids[i], NAQ_ID_SIZE, "%s", built[i].id);
    if (bad > 0) {
        for (size_t i = 0; i < n; i++)
            if (statuses[i] == NAQ_OK)
                statuses[i] = NAQ_ERR_CLOSED; /* not attempted */
        s = naq__fail(NAQ_ERR_INVALID_ARG, "%s (%zu invalid job%s; nothing was enqueued)", first,
                      bad, bad == 1 ? "" : "s");
        goto out;
    }

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = MAX_PENDING;
    jo.PublishAsync.StallWait = STALL_WAIT_MS;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &b;
    natsStatus ns = natsConnection_JetStream(&js, c->nc, &jo);
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot open JetStream for a batch");
        for (size_t i = 0; i < n; i++)
            statuses[i] = NAQ_ERR_NATS;
        goto out;
    }
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (built[i].unique_key != NULL || built[i].depends_on != NULL)
            continue;
        /* Until its ack says otherwise. */
        statuses[i] = NAQ_ERR_TIMEOUT;
        snprintf(b.errors[i], sizeof b.errors[i], "no acknowledgement in time");
        if (publish_async(c, js, &built[i], json[i], len[i]) != NAQ_OK) {
            statuses[i] = NAQ_ERR_NATS;
            snprintf(b.errors[i], sizeof b.errors[i], "%s", naq_last_error());
        } else {
            sent++;
        }
    }
    if (sent > 0) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = COMPLETE_WAIT_MS;
        if (js_PublishAsyncComplete(js, &po) != NATS_OK) {
            /* Take back what is unanswered (its handler will never run,
             * so it stays a timeout), then let running handlers end. */
            natsMsgList pending = {0};
            if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK)
                natsMsgList_Destroy(&pending);
            po.MaxWait = COMPLETE_WAIT_MS;
            js_PublishAsyncComplete(js, &po);
        }
    }
    /* The one-at-a-time jobs, after the others. */
    for (size_t i = 0; i < n; i++) {
        if (built[i].unique_key == NULL && built[i].depends_on == NULL)
            continue;
        int existing = 0;
        statuses[i] = naq__enqueue_built(c, &built[i], json[i], len[i], ids[i], &existing);
        if (statuses[i] != NAQ_OK)
            snprintf(b.errors[i], sizeof b.errors[i], "%s", naq_last_error());
        b.duplicate[i] = 1; /* logged (or not) by that path already */
    }

    size_t ok = 0, failed = 0;
    char named[600] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (statuses[i] == NAQ_OK) {
            ok++;
            if (!b.duplicate[i])
                naq__log_enqueued(c, &built[i]);
            continue;
        }
        if (failed++ == 0)
            s = statuses[i];
        if (failed <= NAMED_FAILURES && used < sizeof named) {
            int w = snprintf(named + used, sizeof named - used, "%sjob %zu (%s): %s",
                             failed > 1 ? "; " : "", i + 1, built[i].id, b.errors[i]);
            if (w > 0)
                used += (size_t)w;
        }
    }
    if (enqueued != NULL)
        *enqueued = ok;
    if (failed > 0)
        s = naq__fail(s, "%zu of %zu jobs were not enqueued: %s%s", failed, n, named,
                      failed > NAMED_FAILURES ? "; ..." : "");
out:
    jsCtx_Destroy(js);
    for (size_t i = 0; built != NULL && i < n; i++) {
        naq_job_clear(&built[i]);
        if (json != NULL)
            free(json[i]);
    }
    free(built);
    free(json);
    free(len);
    free(b.by_id);
    free(b.duplicate);
    free(b.errors);
    return s;
}
