/*
 * reader.c - the one forward reader of the event stream that every read of
 * more than one job goes through (queries, rollups, metrics): an ordered
 * consumer (nats.c re-creates it after a gap, so nothing is lost or
 * repeated) positioned at a sequence or at a stored time, read on the
 * caller's thread. Its consumer set-up, naq__event_subscribe, is also the
 * one every other ordered consumer on the event stream is opened with
 * (live scans, job watches, a processor's live source, the gone-workers
 * read). Also the stream's state in one request.
 */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the forward reader ---- */

struct naq__reader {
    naq_client *c;
    natsSubscription *sub;
    char subject[NAQ_URL_MAX];
    uint64_t start_seq; /* 0 when positioned by time or at the start */
    int64_t start_ns;   /* > 0 when positioned by stored time */
    int by_time;
    uint64_t last_seq; /* of the last message handed out, 0 = none yet */
    uint64_t seen_seq; /* of the last message received, skipped ones included */
    uint64_t cseq;     /* consumer sequence of the last message received, 0 = none */
};

naq_status naq__event_subscribe(naq_client *c, const char *subject, naq__event_start start,
                                natsSubscription **sub, const char *what)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->cfg.event_stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = start.policy;
    so.Config.OptStartSeq = start.seq;
    so.Config.OptStartTime = start.ns;
    jsErrCode jerr = 0;
    natsStatus ns = js_SubscribeSync(sub, c->ejs, subject, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "%s", what);
    return NAQ_OK;
}

/* Subscribes r's ordered consumer: after the last message handed out
 * when there is one, else where the read begins. */
static naq_status reader_subscribe(naq__reader *r)
{
    naq__event_start at = {js_DeliverAll, 0, 0};
    if (r->last_seq > 0) {
        at.seq = r->last_seq + 1;
    } else if (r->start_seq > 0) {
        at.seq = r->start_seq;
    } else if (r->by_time) {
        /* OptStartTime is nanoseconds since the epoch. nats.c 3.4.1 encodes
         * the fraction of a second without leading zeros (".057" goes out as
         * ".57"), so the server would start up to 0.9 s late: ask for the
         * whole second before, and skip what precedes start_ns on reading. */
        at.ns = r->start_ns - r->start_ns % 1000000000LL;
    }
    r->cseq = 0;
    char what[NAQ_NAME_MAX + 64];
    snprintf(what, sizeof what, "cannot open a consumer on event stream %s",
             r->c->cfg.event_stream);
    return naq__event_subscribe(r->c, r->subject, at, &r->sub, what);
}

/* nats.c drops messages a slow reader has no room for (its pending
 * limits) and its ordered consumer does not notice: it counts them as
 * delivered. Measured: folding a 150k-event backlog lost ~10% of them.
 * So on a slow-consumer report or a gap in the consumer sequence the
 * reader starts a fresh consumer after the last message it handed out. */
static naq_status reader_resubscribe(naq__reader *r)
{
    natsSubscription_Unsubscribe(r->sub);
    natsSubscription_Destroy(r->sub);
    r->sub = NULL;
    return reader_subscribe(r);
}

naq_status naq__reader_open(naq_client *c, const char *subject, uint64_t start_seq,
                            double start_time, naq__reader **out)
{
    *out = NULL;
    naq__reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory opening a reader");
    r->c = c;
    snprintf(r->subject, sizeof r->subject, "%s",
             subject != NULL && subject[0] != '\0' ? subject : ">");
    if (start_seq > 0) {
        r->start_seq = start_seq;
    } else if (start_time > 0) {
        r->start_ns = (int64_t)(start_time * 1e9);
        r->by_time = 1;
    }
    naq_status s = reader_subscribe(r);
    if (s != NAQ_OK) {
        free(r);
        return s;
    }
    *out = r;
    return NAQ_OK;
}

naq_status naq__reader_next(naq__reader *r, int64_t timeout_ms, natsMsg **m, uint64_t *seq,
                            int64_t *stored_ns, uint64_t *pending)
{
    int64_t deadline = naq__mono_ms() + timeout_ms;
    for (;;) {
        *m = NULL;
        int64_t left = deadline - naq__mono_ms();
        natsStatus ns = natsSubscription_NextMsg(m, r->sub, left > 0 ? left : 1);
        if (ns == NATS_SLOW_CONSUMER) { /* messages were dropped: read them again */
            naq_status s = reader_resubscribe(r);
            if (s != NAQ_OK)
                return s;
            continue;
        }
        /* Missed heartbeats are repaired by the ordered consumer itself (it
         * resumes after the last message delivered). */
        if (ns == NATS_TIMEOUT || ns == NATS_MISSED_HEARTBEAT) {
            if (ns != NATS_TIMEOUT && naq__mono_ms() < deadline)
                continue;
            return NAQ_ERR_TIMEOUT;
        }
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "lost the consumer on event stream %s",
                                  r->c->cfg.event_stream);
        jsMsgMetaData *meta = NULL;
        if ((ns = natsMsg_GetMetaData(&meta, *m)) != NATS_OK) {
            natsMsg_Destroy(*m);
            *m = NULL;
            return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "event without JetStream metadata");
        }
        *seq = meta->Sequence.Stream;
        *stored_ns = meta->Timestamp;
        *pending = meta->NumPending;
        uint64_t cseq = meta->Sequence.Consumer;
        jsMsgMetaData_Destroy(meta);
        /* A consumer sequence that jumps (not a restart at 1 by nats.c)
         * means messages in between were dropped. */
        int gap = r->cseq > 0 && cseq != r->cseq + 1 && cseq != 1;
        r->cseq = cseq;
        if (gap) {
            natsMsg_Destroy(*m);
            *m = NULL;
            naq_status s = reader_resubscribe(r);
            if (s != NAQ_OK)
                return s;
            continue;
        }
        r->seen_seq = *seq;
        /* nats.c re-creates an ordered consumer after a reconnect or missed
         * heartbeats from the last sequence it delivered, which is the
         * stream's start when it delivered none yet: skip what lies before
         * where this read begins. */
        if (r->last_seq == 0 && ((r->start_seq > 0 && *seq < r->start_seq) ||
                                 (r->start_ns > 0 && *stored_ns < r->start_ns))) {
            natsMsg_Destroy(*m);
            *m = NULL;
            continue;
        }
        r->last_seq = *seq;
        return NAQ_OK;
    }
}

/* After a quiet wait: is anything left to deliver up to `end`? Asking the
 * consumer alone cannot tell "deleted" from "on its way", so once a
 * position is known a direct get looks for the next stored message. */
naq_status naq__reader_exhausted(naq__reader *r, uint64_t end, int *done)
{
    *done = 0;
    if (r->last_seq == 0 && r->by_time) {
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        natsStatus ns = natsSubscription_GetConsumerInfo(&ci, r->sub, NULL, &jerr);
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                                  "cannot read the state of a consumer on event stream %s",
                                  r->c->cfg.event_stream);
        /* Nothing left, and nothing on its way (all it delivered, if
         * anything, were messages before the start that we skipped). */
        *done = ci->NumPending == 0 &&
                (ci->Delivered.Consumer == 0 || ci->Delivered.Stream <= r->seen_seq);
        jsConsumerInfo_Destroy(ci);
        return NAQ_OK;
    }
    uint64_t from = r->last_seq ? r->last_seq + 1 : r->start_seq;
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.Sequence = from;
    o.NextBySubject = r->subject;
    natsMsg *m = NULL;
    natsStatus ns = js_DirectGetMsg(&m, r->c->ejs, r->c->cfg.event_stream, NULL, &o);
    if (ns == NATS_NOT_FOUND) {
        *done = 1;
        return NAQ_OK;
    }
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read event stream %s",
                              r->c->cfg.event_stream);
    *done = natsMsg_GetSequence(m) > end;
    natsMsg_Destroy(m);
    return NAQ_OK;
}

void naq__reader_close(naq__reader *r)
{
    if (r == NULL)
        return;
    natsSubscription_Unsubscribe(r->sub);
    natsSubscription_Destroy(r->sub);
    free(r);
}

naq_status naq__event_stream_state(naq_client *c, jsStreamState *st)
{
    memset(st, 0, sizeof *st);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, c->ejs, c->cfg.event_stream, NULL, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot read the state of event stream %s", c->cfg.event_stream);
    *st = si->State;
    st->Deleted = NULL;
    st->Lost = NULL;
    st->Subjects = NULL;
    jsStreamInfo_Destroy(si);
    return NAQ_OK;
}
