/*
 * activity.c - what workers did, told by their events (naq_events_workers,
 * and naq_live's worker list through stats.c): a table of workers folded
 * in stream order, each with the ids of its jobs in progress so that a
 * job's dequeued and started events count once, bounded by dropping the
 * worker seen longest ago.
 */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* ---- worker activity ---- */

static naq__worker_entry *worker_entry(naq__worker_table *t, const char *id, double ts)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].a.worker_id, id) == 0)
            return &t->v[i];
    if (t->max > 0 && t->n >= t->max) {
        size_t oldest = 0;
        for (size_t i = 1; i < t->n; i++)
            if (t->v[i].a.last_seen < t->v[oldest].a.last_seen)
                oldest = i;
        free(t->v[oldest].jobs);
        t->v[oldest] = t->v[--t->n];
    }
    if (t->n == t->cap && naq__array_grow(&t->v, &t->cap, sizeof *t->v, 16) == NULL)
        return NULL;
    naq__worker_entry *w = &t->v[t->n++];
    memset(w, 0, sizeof *w);
    snprintf(w->a.worker_id, sizeof w->a.worker_id, "%s", id);
    w->a.first_seen = w->a.last_seen = ts;
    w->a.status = NAQ_WORKER_STATUS_IDLE;
    return w;
}

static void job_begin(naq__worker_entry *w, const char *job)
{
    if (!has(job))
        return;
    for (int i = 0; i < w->a.running; i++)
        if (strcmp(w->jobs[i], job) == 0)
            return;
    if (w->jobs == NULL && (w->jobs = calloc(NAQ__WORKER_JOBS, sizeof *w->jobs)) == NULL)
        return;
    if (w->a.running == NAQ__WORKER_JOBS) { /* forget the oldest */
        memmove(w->jobs, w->jobs + 1, (NAQ__WORKER_JOBS - 1) * sizeof *w->jobs);
        w->a.running--;
    }
    snprintf(w->jobs[w->a.running++], NAQ_ID_SIZE, "%s", job);
}

static void job_end(naq__worker_entry *w, const char *job)
{
    for (int i = 0; i < w->a.running; i++) {
        if (strcmp(w->jobs[i], job) == 0) {
            memmove(w->jobs + i, w->jobs + i + 1, (size_t)(w->a.running - i - 1) * sizeof *w->jobs);
            w->a.running--;
            return;
        }
    }
}

/* What a worker event says of its worker (docs/workers.md: every one
 * carries the worker's state in details): *status when it names one ("to"
 * of a worker_status_changed, else "status"), and the heartbeat interval.
 * Returns 1 when a status was read. */
static int worker_said(naq_worker_activity *a, const naq_event *e, naq_worker_status *status)
{
    if (e->details_json == NULL)
        return 0;
    json_t *d = json_loads(e->details_json, 0, NULL);
    if (d == NULL)
        return 0;
    json_t *iv = json_object_get(d, "heartbeat_interval_ms");
    if (json_is_integer(iv) && json_integer_value(iv) > 0)
        a->heartbeat_interval_ms = (int64_t)json_integer_value(iv);
    const char *name = json_string_value(json_object_get(d, "to"));
    if (name == NULL)
        name = json_string_value(json_object_get(d, "status"));
    int said = naq_worker_status_parse(name, status);
    json_decref(d);
    return said;
}

void naq__worker_table_add(naq__worker_table *t, const naq_event *e)
{
    if (!has(e->worker_id))
        return;
    naq__worker_entry *w = worker_entry(t, e->worker_id, e->timestamp);
    if (w == NULL)
        return;
    naq_worker_activity *a = &w->a;
    if (e->timestamp > a->last_seen)
        a->last_seen = e->timestamp;
    if (e->timestamp < a->first_seen)
        a->first_seen = e->timestamp;
    a->last_type = e->type;
    if (naq_event_type_category(e->type) == NAQ_CATEGORY_JOB && has(e->queue_name))
        snprintf(a->queue, sizeof a->queue, "%s", e->queue_name);
    naq_worker_status said = a->status;
    int has_said =
        naq_event_type_category(e->type) == NAQ_CATEGORY_WORKER && worker_said(a, e, &said);
    switch (e->type) {
    case NAQ_EVENT_WORKER_STOPPED:
        a->running = 0;
        said = NAQ_WORKER_STATUS_STOPPED;
        has_said = 1;
        break;
    case NAQ_EVENT_WORKER_STARTED:
    case NAQ_EVENT_WORKER_IDLE:
        a->running = 0;
        if (!has_said)
            said = NAQ_WORKER_STATUS_IDLE;
        has_said = 1;
        break;
    case NAQ_EVENT_WORKER_BUSY:
        job_begin(w, e->job_id);
        if (!has_said)
            said = NAQ_WORKER_STATUS_BUSY;
        has_said = 1;
        break;
    case NAQ_EVENT_DEQUEUED:
    case NAQ_EVENT_STARTED:
    case NAQ_EVENT_RETRY_STARTED:
    case NAQ_EVENT_WORKER_ASSIGNED: job_begin(w, e->job_id); break;
    case NAQ_EVENT_COMPLETED:
    case NAQ_EVENT_FAILED:
    case NAQ_EVENT_CANCELLED:
    case NAQ_EVENT_TTL_EXPIRED:
        /* One definition (docs/workers.md): every outcome a worker reached
         * is processed; all but completed count as failed. A cancel made
         * while the job waited carries no worker and counts for nobody. */
        if (has(e->worker_id)) {
            a->processed++;
            if (e->type != NAQ_EVENT_COMPLETED)
                a->failed++;
        }
        /* fall through */
    case NAQ_EVENT_TIMEOUT:
    case NAQ_EVENT_WORKER_RELEASED:
    case NAQ_EVENT_MAX_RETRIES_EXCEEDED:
        if (has(e->job_id))
            job_end(w, e->job_id);
        break;
    default: break;
    }
    if (has_said)
        a->status = said; /* the worker's own word */
    else if (a->status != NAQ_WORKER_STATUS_STOPPING && a->status != NAQ_WORKER_STATUS_STOPPED &&
             naq_event_type_category(e->type) == NAQ_CATEGORY_JOB)
        a->status = a->running > 0 ? NAQ_WORKER_STATUS_BUSY : NAQ_WORKER_STATUS_IDLE;
    snprintf(a->current_job, sizeof a->current_job, "%s",
             a->running > 0 ? w->jobs[a->running - 1] : "");
}

void naq__worker_table_free(naq__worker_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].jobs);
    free(t->v);
    memset(t, 0, sizeof *t);
}

static int activity_cmp(const void *a, const void *b)
{
    return strcmp(((const naq_worker_activity *)a)->worker_id,
                  ((const naq_worker_activity *)b)->worker_id);
}

naq_status naq__worker_table_export(const naq__worker_table *t, const char *queue, double now,
                                    int64_t default_interval_ms, naq_worker_activity **out,
                                    size_t *n)
{
    *out = NULL;
    *n = 0;
    if (t->n == 0)
        return NAQ_OK;
    naq_worker_activity *v = calloc(t->n, sizeof *v);
    if (v == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing workers");
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (has(queue) && strcmp(t->v[i].a.queue, queue) != 0)
            continue;
        naq_worker_activity *a = &v[k++];
        *a = t->v[i].a;
        /* Silence as long as the registry's TTL: the worker is gone without
         * saying, exactly when its registry entry has expired. */
        int64_t iv = a->heartbeat_interval_ms > 0 ? a->heartbeat_interval_ms : default_interval_ms;
        if (a->status != NAQ_WORKER_STATUS_STOPPED &&
            now - a->last_seen > (double)(NAQ_WORKER_LOST_AFTER * iv) / 1000.0)
            a->status = NAQ_WORKER_STATUS_LOST;
    }
    qsort(v, k, sizeof *v, activity_cmp);
    *out = v;
    *n = k;
    return NAQ_OK;
}

static int worker_one(const naq_event *e, int64_t stored_ns, void *ud)
{
    (void)stored_ns;
    naq__worker_table_add(ud, e);
    return 0;
}

naq_status naq_events_workers(naq_client *c, double since, naq_worker_activity **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    naq_query q;
    naq_query_init(&q);
    q.since = since;
    naq__worker_table t = {0};
    naq_status s = naq__query_read(c, &q, worker_one, &t, NULL);
    if (s == NAQ_OK)
        s = naq__worker_table_export(&t, NULL, naq__now(), c->cfg.heartbeat_interval_ms, out, n);
    naq__worker_table_free(&t);
    return s;
}
