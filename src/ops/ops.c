/*
 * ops.c - naq_ops_read(): the operator's figures in one read (naq/ops.h).
 *
 * Everything comes from what the server already keeps: consumer info
 * (NumPending, NumAckPending) for lag, stream info for sizes and limits,
 * stream info with a subjects filter for dead letters per queue or group
 * (one request, no consumer), the worker registry and the rollup cursor.
 * Only the spool is local: it counts the records waiting in this
 * machine's spool directory, which is where a logger that lost its server
 * keeps events.
 */
#include "ops.h"
#include "naq/ops.h"
#include "naq/stats.h"
#include "events/spool.h"

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void naq_ops_free(naq_ops *o)
{
    if (o == NULL)
        return;
    free(o->consumers);
    free(o->dlq);
    free(o->event_dlq);
    memset(o, 0, sizeof *o);
}

static int consumer_cmp(const void *a, const void *b)
{
    const naq_ops_consumer *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int q = strcmp(x->queue, y->queue);
    if (q != 0)
        return q;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int count_cmp(const void *a, const void *b)
{
    return strcmp(((const naq_ops_count *)a)->name, ((const naq_ops_count *)b)->name);
}

static double use_of(uint64_t have, int64_t max)
{
    return max > 0 ? (double)have / (double)max : -1;
}

/* Sizes and limits of one stream; with subject_filter, also the message
 * count per subject whose last token is a name (counts, heap). */
static naq_status read_stream(jsCtx *js, const char *name, const char *subject_filter,
                              naq_ops_stream *out, naq_ops_count **counts, size_t *ncounts)
{
    snprintf(out->name, sizeof out->name, "%s", name);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = naq__stream_info(js, name, subject_filter, &si, &jerr);
    if (naq__stream_missing(ns, jerr))
        return NAQ_OK;
    if (ns != NATS_OK || si == NULL) {
        const char *why = nats_GetLastError(NULL);
        snprintf(out->error, sizeof out->error, "stream %s: %s", name,
                 why != NULL && why[0] != '\0' ? why : natsStatus_GetText(ns));
        jsStreamInfo_Destroy(si);
        return NAQ_OK;
    }
    out->present = 1;
    out->msgs = si->State.Msgs;
    out->bytes = si->State.Bytes;
    out->max_msgs = si->Config && si->Config->MaxMsgs > 0 ? si->Config->MaxMsgs : -1;
    out->max_bytes = si->Config && si->Config->MaxBytes > 0 ? si->Config->MaxBytes : -1;
    double a = use_of(out->msgs, out->max_msgs), b = use_of(out->bytes, out->max_bytes);
    out->use = a > b ? a : b;
    naq_status s = NAQ_OK;
    jsStreamStateSubjects *subj = si->State.Subjects;
    if (counts != NULL && subj != NULL && subj->Count > 0) {
        *counts = calloc((size_t)subj->Count, sizeof **counts);
        if (*counts == NULL)
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading %s", name);
        for (int i = 0; s == NAQ_OK && i < subj->Count; i++) {
            const char *last = strrchr(subj->List[i].Subject, '.');
            if (last == NULL || strcmp(last, ".replay") == 0)
                continue; /* an event-DLQ replay subject, not an entry */
            snprintf((*counts)[*ncounts].name, sizeof(*counts)[0].name, "%s", last + 1);
            (*counts)[(*ncounts)++].count = subj->List[i].Msgs;
        }
        if (s == NAQ_OK)
            qsort(*counts, *ncounts, sizeof **counts, count_cmp);
    }
    jsStreamInfo_Destroy(si);
    return s;
}

/* Appends the consumers of one stream: job queues' consumers of the job
 * stream, or durables (groups) of the event stream. */
static naq_status read_consumers(jsCtx *js, const char *stream, naq_ops_consumer_kind kind,
                                 naq_ops *out)
{
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_Consumers(&list, js, stream, NULL, &jerr);
    if (naq__stream_missing(ns, jerr))
        return NAQ_OK;
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot list the consumers of %s",
                              stream);
    naq_status s = NAQ_OK;
    if (list != NULL && list->Count > 0) {
        naq_ops_consumer *v =
            realloc(out->consumers, (out->nconsumers + (size_t)list->Count) * sizeof *v);
        if (v == NULL)
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading consumers");
        else
            out->consumers = v;
    }
    for (int i = 0; s == NAQ_OK && list != NULL && i < list->Count; i++) {
        jsConsumerInfo *ci = list->List[i];
        naq_ops_consumer k;
        memset(&k, 0, sizeof k);
        k.kind = kind;
        k.priority = -1;
        if (ci->Name == NULL)
            continue;
        if (kind == NAQ_OPS_CONSUMER_QUEUE &&
            !naq__parse_queue_consumer(ci->Name, k.queue, sizeof k.queue, &k.priority))
            continue;
        if (kind == NAQ_OPS_CONSUMER_GROUP &&
            (ci->Config == NULL || ci->Config->Durable == NULL || ci->Config->Durable[0] == '\0'))
            continue; /* an ephemeral reader (naq events stream, a query), not a group */
        snprintf(k.name, sizeof k.name, "%s", ci->Name);
        k.pending = ci->NumPending;
        k.ack_pending = ci->NumAckPending;
        k.lag = ci->NumPending + (uint64_t)(ci->NumAckPending > 0 ? ci->NumAckPending : 0);
        k.redelivered = ci->NumRedelivered;
        k.exists = 1;
        out->consumers[out->nconsumers++] = k;
    }
    jsConsumerInfoList_Destroy(list);
    return s;
}

/* Jobs waiting on a queue no worker has served yet have no consumer to
 * report them: count them per subject ("<p>.queue.<queue>.<prio>") and
 * add them as consumers-to-be, so lag and "jobs wait, no worker" see
 * them. One stream-info request with a subjects filter. */
static naq_status read_unserved(naq_client *c, naq_ops *out)
{
    char filter[NAQ_NAME_MAX + 16];
    naq_status s = naq__subject(c, filter, sizeof filter, "queue.>");
    if (s != NAQ_OK)
        return s;
    size_t skip = strlen(filter) - 1; /* "<p>.queue." */
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = naq__stream_info(c->js, c->cfg.job_stream, filter, &si, &jerr);
    if (ns != NATS_OK || si == NULL || si->State.Subjects == NULL) {
        jsStreamInfo_Destroy(si);
        return NAQ_OK; /* no stream (reported elsewhere) or no jobs */
    }
    const jsStreamStateSubjects *subj = si->State.Subjects;
    for (int i = 0; s == NAQ_OK && i < subj->Count; i++) {
        const char *sub = subj->List[i].Subject;
        const char *dot = strrchr(sub, '.');
        if (strlen(sub) <= skip || dot == NULL || dot - sub <= (ptrdiff_t)skip || dot[1] < '0' ||
            dot[1] > '4' || dot[2] != '\0')
            continue;
        naq_ops_consumer k;
        memset(&k, 0, sizeof k);
        k.kind = NAQ_OPS_CONSUMER_QUEUE;
        k.priority = dot[1] - '0';
        snprintf(k.queue, sizeof k.queue, "%.*s", (int)(dot - sub - (ptrdiff_t)skip), sub + skip);
        snprintf(k.name, sizeof k.name, "naq_%s_p%d", k.queue, k.priority);
        int known = 0;
        for (size_t j = 0; j < out->nconsumers && !known; j++)
            known = strcmp(out->consumers[j].name, k.name) == 0;
        if (known)
            continue;
        k.pending = k.lag = subj->List[i].Msgs;
        naq_ops_consumer *v = realloc(out->consumers, (out->nconsumers + 1) * sizeof *v);
        if (v == NULL) {
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading queues");
            break;
        }
        out->consumers = v;
        out->consumers[out->nconsumers++] = k;
    }
    jsStreamInfo_Destroy(si);
    return s;
}

/* Records waiting in the *.spool files of the spool directory. */
static void read_spool(const naq_client *c, naq_ops *out)
{
    const char *dir = c->cfg.spool_dir;
    if (dir[0] == '\0' || strcmp(dir, "none") == 0)
        return;
    DIR *d = opendir(dir);
    if (d == NULL)
        return; /* no spool yet: nothing waits */
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 7 || strcmp(de->d_name + n - 6, ".spool") != 0)
            continue;
        char path[NAQ_URL_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t pending = naq__spool_pending_path(path);
        out->spool_files++;
        if (pending != (size_t)-1)
            out->spool_pending += pending;
    }
    closedir(d);
}

static naq_status read_workers(naq_client *c, naq_ops *out)
{
    naq_worker_info_list l;
    memset(&l, 0, sizeof l);
    naq_status s = naq_workers_list(c, &l);
    if (s == NAQ_OK) {
        out->live_workers = l.count;
        for (size_t i = 0; i < l.count; i++)
            if ((int)l.items[i].status >= 0 && l.items[i].status < NAQ_WORKER_STATUS_COUNT)
                out->workers_by_status[l.items[i].status]++;
    }
    naq_worker_info_list_free(&l);
    return s;
}

naq_status naq_ops_read(naq_client *c, naq_ops *out)
{
    memset(out, 0, sizeof *out);
    if (c == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_ops_read needs a client");
    out->read_at = naq__now();
    char dlq_filter[NAQ_NAME_MAX + 16], edlq_filter[NAQ_NAME_MAX + 16];
    naq_status s = naq__subject(c, dlq_filter, sizeof dlq_filter, "dlq.>");
    if (s == NAQ_OK)
        s = naq__subject(c, edlq_filter, sizeof edlq_filter, "eventdlq.>");
    if (s == NAQ_OK)
        s = read_stream(c->ejs, c->cfg.event_stream, NULL, &out->streams[NAQ_OPS_EVENTS], NULL,
                        NULL);
    if (s == NAQ_OK)
        s = read_stream(c->js, c->cfg.job_stream, NULL, &out->streams[NAQ_OPS_JOBS], NULL, NULL);
    if (s == NAQ_OK)
        s = read_stream(c->js, c->cfg.dlq_stream, dlq_filter, &out->streams[NAQ_OPS_DLQ], &out->dlq,
                        &out->ndlq);
    if (s == NAQ_OK)
        s = read_stream(c->ejs, NAQ_EVENT_DLQ_STREAM, edlq_filter, &out->streams[NAQ_OPS_EVENT_DLQ],
                        &out->event_dlq, &out->nevent_dlq);
    if (s == NAQ_OK)
        s = read_consumers(c->js, c->cfg.job_stream, NAQ_OPS_CONSUMER_QUEUE, out);
    if (s == NAQ_OK)
        s = read_unserved(c, out);
    if (s == NAQ_OK)
        s = read_consumers(c->ejs, c->cfg.event_stream, NAQ_OPS_CONSUMER_GROUP, out);
    if (s == NAQ_OK && out->nconsumers > 1)
        qsort(out->consumers, out->nconsumers, sizeof *out->consumers, consumer_cmp);
    if (s == NAQ_OK && out->streams[NAQ_OPS_EVENTS].present)
        s = naq_rollup_lag(c, &out->rollup_cursor, &out->rollup_lag);
    if (s == NAQ_OK)
        s = read_workers(c, out);
    if (s == NAQ_OK)
        read_spool(c, out);
    if (s != NAQ_OK)
        naq_ops_free(out);
    return s;
}
