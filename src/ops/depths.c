/*
 * depths.c - how far behind the readers are: the event store's health
 * (its size, its durable consumers' lag and the rollups' lag:
 * naq_events_health) and the job queues' depths (pending and in flight per
 * queue and priority, from the queue consumers: naq_queue_depths). Each is
 * one consumer listing, never a scan.
 */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- health ---- */

void naq_event_store_health_free(naq_event_store_health *h)
{
    if (h == NULL)
        return;
    free(h->durables);
    h->durables = NULL;
    h->ndurables = 0;
}

static int lag_cmp(const void *a, const void *b)
{
    return strcmp(((const naq_consumer_lag *)a)->name, ((const naq_consumer_lag *)b)->name);
}

naq_status naq_events_health(naq_client *c, naq_event_store_health *out)
{
    memset(out, 0, sizeof *out);
    if (c == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_events_health needs a client");
    snprintf(out->stream, sizeof out->stream, "%s", c->cfg.event_stream);
    jsStreamState st;
    naq_status s = naq__event_stream_state(c, &st);
    if (s != NAQ_OK)
        return s;
    out->msgs = st.Msgs;
    out->bytes = st.Bytes;
    out->first_seq = st.FirstSeq;
    out->last_seq = st.LastSeq;
    out->first_time = st.Msgs ? (double)st.FirstTime / 1e9 : 0;
    out->last_time = st.Msgs ? (double)st.LastTime / 1e9 : 0;
    out->consumers = st.Consumers;

    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_Consumers(&list, c->ejs, c->cfg.event_stream, NULL, &jerr);
    if (ns != NATS_OK && ns != NATS_NOT_FOUND)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot list the consumers of %s",
                              c->cfg.event_stream);
    if (list != NULL && list->Count > 0) {
        out->durables = calloc((size_t)list->Count, sizeof *out->durables);
        if (out->durables == NULL) {
            jsConsumerInfoList_Destroy(list);
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading consumers");
        }
        for (int i = 0; i < list->Count; i++) {
            jsConsumerInfo *ci = list->List[i];
            if (ci->Config == NULL || ci->Config->Durable == NULL || ci->Config->Durable[0] == '\0')
                continue; /* an ephemeral reader: counted, not listed */
            naq_consumer_lag *l = &out->durables[out->ndurables++];
            snprintf(l->name, sizeof l->name, "%s", ci->Name);
            l->num_pending = ci->NumPending;
            l->ack_pending = ci->NumAckPending;
            l->lag = ci->NumPending + (uint64_t)(ci->NumAckPending > 0 ? ci->NumAckPending : 0);
            l->redelivered = ci->NumRedelivered;
            l->waiting = ci->NumWaiting;
            l->delivered_seq = ci->Delivered.Stream;
        }
        qsort(out->durables, out->ndurables, sizeof *out->durables, lag_cmp);
    }
    jsConsumerInfoList_Destroy(list);
    return naq_rollup_lag(c, &out->rollup_cursor, &out->rollup_lag);
}

/* ---- queue depths ---- */

static int depth_cmp(const void *a, const void *b)
{
    return strcmp(((const naq_queue_depth *)a)->queue, ((const naq_queue_depth *)b)->queue);
}

int naq__parse_queue_consumer(const char *name, char *queue, size_t cap, int *prio)
{
    size_t n = strlen(name);
    if (n < 8 || strncmp(name, "naq_", 4) != 0 || name[n - 3] != '_' || name[n - 2] != 'p' ||
        name[n - 1] < '0' || name[n - 1] > '4')
        return 0;
    size_t qlen = n - 7;
    if (qlen >= cap)
        return 0;
    memcpy(queue, name + 4, qlen);
    queue[qlen] = '\0';
    *prio = name[n - 1] - '0';
    return 1;
}

naq_status naq_queue_depths(naq_client *c, naq_queue_depth **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_Consumers(&list, c->js, c->cfg.job_stream, NULL, &jerr);
    if (ns == NATS_NOT_FOUND)
        return NAQ_OK;
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot list the consumers of %s",
                              c->cfg.job_stream);
    naq_queue_depth *v = calloc((size_t)list->Count + 1, sizeof *v);
    if (v == NULL) {
        jsConsumerInfoList_Destroy(list);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading queue depths");
    }
    size_t count = 0;
    for (int i = 0; i < list->Count; i++) {
        jsConsumerInfo *ci = list->List[i];
        char queue[NAQ_ID_SIZE];
        int prio = 0;
        if (ci->Name == NULL || !naq__parse_queue_consumer(ci->Name, queue, sizeof queue, &prio))
            continue;
        size_t k = 0;
        while (k < count && strcmp(v[k].queue, queue) != 0)
            k++;
        if (k == count)
            snprintf(v[count++].queue, sizeof v[0].queue, "%s", queue);
        v[k].pending += ci->NumPending;
        v[k].by_priority[prio] += ci->NumPending;
        v[k].in_flight += ci->NumAckPending;
    }
    jsConsumerInfoList_Destroy(list);
    qsort(v, count, sizeof *v, depth_cmp);
    *out = v;
    *n = count;
    return NAQ_OK;
}
