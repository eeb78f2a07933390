/*
 * query.c - listing, counting and deleting events, the event store's health,
 * queue depths and worker activity.
 *
 * Every read of more than one job goes through one forward reader: an
 * ordered consumer (nats.c re-creates it after a gap, so nothing is lost or
 * repeated) positioned at a sequence or at a stored time, read on the
 * caller's thread. A range read captures the stream's last sequence when it
 * begins and stops there (or at until_seq, or at the first event stored
 * after `until` + NAQ_QUERY_SKEW_S), so it never waits for events that do
 * not exist and never runs on into events stored while it reads.
 *
 * A time range selects by the event's own timestamp but positions the read
 * by the time the server stored the event (JetStream can only start a
 * consumer at a stored time): the read starts NAQ_QUERY_SKEW_S before
 * `since` and ends NAQ_QUERY_SKEW_S after `until`. So `--since 1h` reads
 * the last hour of the stream, not the stream.
 *
 * A job filter never scans: the job's literal subject is its history.
 * Filters by type, queue and worker are judged on the Naq-* headers before
 * a body is decoded (docs/protocol.md guarantees them for naq writers).
 */
#include "events.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a range read waits for the next message before it asks the
 * server whether anything is left in the range. */
#define WAIT_MS 200
/* A cleanup waits this long at most for the consumer to show the first
 * event it keeps. */
#define CLEANUP_WAIT_MS 10000
/* JetStream API error: "stream not found". */
#define JS_STREAM_NOT_FOUND 10059

static int has(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* ---- options and times ---- */

void naq_query_init(naq_query *q)
{
    memset(q, 0, sizeof *q);
}

static naq_status parse_iso(const char *text, double *out)
{
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, n = 0;
    double sec = 0;
    const char *p = text;
    if (sscanf(p, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        return NAQ_ERR_INVALID_ARG;
    p += n;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        n = 0;
        if (sscanf(p, "%2d:%2d%n", &h, &mi, &n) != 2)
            return NAQ_ERR_INVALID_ARG;
        p += n;
        if (*p == ':') {
            char *end = NULL;
            sec = strtod(p + 1, &end);
            if (end == p + 1)
                return NAQ_ERR_INVALID_ARG;
            p = end;
        }
    }
    int offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        /* An offset from UTC, "+01:00" or "-0530": the time is local there. */
        int oh = 0, om = 0;
        n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 &&
            sscanf(p + 1, "%2d%2d%n", &oh, &om, &n) != 2)
            return NAQ_ERR_INVALID_ARG;
        if (oh > 23 || om > 59 || n < 4)
            return NAQ_ERR_INVALID_ARG;
        offset_s = (*p == '+' ? 1 : -1) * (oh * 3600 + om * 60);
        p += 1 + n;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec < 0 ||
        sec >= 61)
        return NAQ_ERR_INVALID_ARG;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return NAQ_ERR_INVALID_ARG;
    *out = (double)t - offset_s + sec;
    return NAQ_OK;
}

naq_status naq_parse_time(const char *text, double now, double *out)
{
    if (!has(text))
        return naq__fail(NAQ_ERR_INVALID_ARG, "empty time");
    if (text[0] == '@') {
        char *end = NULL;
        double v = strtod(text + 1, &end);
        if (end != text + 1 && *end == '\0' && v >= 0 && isfinite(v)) {
            *out = v;
            return NAQ_OK;
        }
    } else if (strlen(text) >= 10 && text[4] == '-') {
        if (parse_iso(text, out) == NAQ_OK && isfinite(*out)) /* seconds may say "nan" */
            return NAQ_OK;
    } else {
        int64_t ms = 0;
        if (naq_parse_duration_ms(text, &ms) == NAQ_OK) {
            *out = now - (double)ms / 1000.0;
            return NAQ_OK;
        }
    }
    return naq__fail(NAQ_ERR_INVALID_ARG,
                     "bad time '%s': give a duration before now (90s, 1h, 7d), an ISO-8601 "
                     "time (2026-01-31T12:00:00Z, or with an offset: 2026-01-31T13:00:00+01:00) "
                     "or @SECONDS since the epoch",
                     text);
}

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

/* Subscribes r's ordered consumer: after the last message handed out
 * when there is one, else where the read begins. */
static naq_status reader_subscribe(naq__reader *r)
{
    naq_client *c = r->c;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->cfg.event_stream;
    so.Ordered = true;
    if (r->last_seq > 0) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = r->last_seq + 1;
    } else if (r->start_seq > 0) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = r->start_seq;
    } else if (r->by_time) {
        /* OptStartTime is nanoseconds since the epoch. nats.c 3.4.1 encodes
         * the fraction of a second without leading zeros (".057" goes out as
         * ".57"), so the server would start up to 0.9 s late: ask for the
         * whole second before, and skip what precedes start_ns on reading. */
        so.Config.DeliverPolicy = js_DeliverByStartTime;
        so.Config.OptStartTime = r->start_ns - r->start_ns % 1000000000LL;
    } else {
        so.Config.DeliverPolicy = js_DeliverAll;
    }
    r->cseq = 0;
    jsErrCode jerr = 0;
    natsStatus ns = js_SubscribeSync(&r->sub, c->ejs, r->subject, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot open a consumer on event stream %s", c->cfg.event_stream);
    return NAQ_OK;
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
    snprintf(r->subject, sizeof r->subject, "%s", has(subject) ? subject : ">");
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
static naq_status reader_exhausted(naq__reader *r, uint64_t end, int *done)
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

/* ---- filters ---- */

naq_status naq_query_validate(const naq_query *q)
{
    naq_status s;
    naq_event_type t;
    const naq_event_filter *f = &q->filter;
    if (has(f->job_id) && (s = naq_id_validate("job id", f->job_id)) != NAQ_OK)
        return s;
    if (has(f->type) && (s = naq_event_type_parse(f->type, &t)) != NAQ_OK)
        return s;
    if (has(f->queue) && (s = naq_id_validate("queue name", f->queue)) != NAQ_OK)
        return s;
    if (has(f->worker) && (s = naq_id_validate("worker id", f->worker)) != NAQ_OK)
        return s;
    for (const char *const *tag = q->tags; tag != NULL && *tag != NULL; tag++) {
        const char *eq = strchr(*tag, '=');
        if (eq == NULL || eq == *tag)
            return naq__fail(NAQ_ERR_INVALID_ARG, "bad tag filter '%s': use key=value", *tag);
    }
    if (q->since > 0 && q->until > 0 && q->until < q->since)
        return naq__fail(NAQ_ERR_INVALID_ARG, "the time range ends before it starts (until < "
                                              "since)");
    if (q->from_seq > 0 && q->until_seq > 0 && q->until_seq < q->from_seq)
        return naq__fail(NAQ_ERR_INVALID_ARG, "the sequence range ends before it starts");
    return NAQ_OK;
}

static int tags_match(const naq_event *e, const char *const *tags)
{
    if (tags == NULL || tags[0] == NULL)
        return 1;
    if (e->tags_json == NULL)
        return 0;
    json_t *o = json_loads(e->tags_json, 0, NULL);
    int ok = json_is_object(o);
    for (const char *const *tag = tags; ok && *tag != NULL; tag++) {
        const char *eq = strchr(*tag, '=');
        char key[256];
        size_t klen = (size_t)(eq - *tag);
        if (klen >= sizeof key) {
            ok = 0;
            break;
        }
        memcpy(key, *tag, klen);
        key[klen] = '\0';
        json_t *v = json_object_get(o, key);
        ok = json_is_string(v) && strcmp(json_string_value(v), eq + 1) == 0;
    }
    json_decref(o);
    return ok;
}

/* 1 when the decoded e matches every filter of q (time range included). */
static int query_matches(const naq_event *e, const naq_query *q)
{
    if (!naq_event_matches(e, &q->filter))
        return 0;
    if (q->since > 0 && e->timestamp < q->since)
        return 0;
    if (q->until > 0 && e->timestamp > q->until)
        return 0;
    if (q->from_seq > 0 && e->nats_sequence > 0 && e->nats_sequence < q->from_seq)
        return 0;
    if (q->until_seq > 0 && e->nats_sequence > q->until_seq)
        return 0;
    return tags_match(e, q->tags);
}

/* ---- range reads ---- */

/* A job filter: the job's history is the whole candidate set. */
static naq_status read_job(naq_client *c, const naq_query *q, naq__query_fn fn, void *ud,
                           int *stopped)
{
    naq_event_list l = {0};
    naq_status s = naq_job_history(c, q->filter.job_id, &l);
    if (s == NAQ_ERR_NOT_FOUND) {
        naq__clear_error();
        return NAQ_OK;
    }
    if (s != NAQ_OK)
        return s;
    for (size_t i = 0; i < l.count; i++) {
        if (q->stop != NULL && *q->stop) {
            *stopped = 1;
            break;
        }
        if (query_matches(&l.items[i], q) && fn(&l.items[i], 0, ud)) {
            *stopped = 1;
            break;
        }
    }
    naq_event_list_free(&l);
    return NAQ_OK;
}

naq_status naq__query_read(naq_client *c, const naq_query *q, naq__query_fn fn, void *ud,
                           int *stopped)
{
    int local_stopped = 0;
    if (stopped == NULL)
        stopped = &local_stopped;
    *stopped = 0;
    naq_status s = naq_query_validate(q);
    if (s != NAQ_OK)
        return s;
    if (has(q->filter.job_id))
        return read_job(c, q, fn, ud, stopped);

    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, c->ejs, c->cfg.event_stream, NULL, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot read the state of event stream %s", c->cfg.event_stream);
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq, msgs = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    uint64_t end = last;
    if (q->until_seq > 0 && q->until_seq < end)
        end = q->until_seq;
    uint64_t start = q->from_seq;
    if (msgs == 0 || end < first || (start > 0 && start > end))
        return NAQ_OK;
    double start_time = 0;
    if (start == 0 && q->since > 0)
        start_time = q->since - NAQ_QUERY_SKEW_S;
    int64_t stop_ns = q->until > 0 ? (int64_t)((q->until + NAQ_QUERY_SKEW_S) * 1e9) : 0;

    naq__reader *r = NULL;
    if ((s = naq__reader_open(c, NULL, start, start_time, &r)) != NAQ_OK)
        return s;
    for (;;) {
        if (q->stop != NULL && *q->stop) {
            *stopped = 1;
            break;
        }
        natsMsg *m = NULL;
        uint64_t seq = 0, pending = 0;
        int64_t stored = 0;
        s = naq__reader_next(r, WAIT_MS, &m, &seq, &stored, &pending);
        if (s == NAQ_ERR_TIMEOUT) {
            int done = 0;
            if ((s = reader_exhausted(r, end, &done)) != NAQ_OK || done)
                break;
            continue;
        }
        if (s != NAQ_OK)
            break;
        if (seq > end || (stop_ns > 0 && stored > stop_ns)) {
            natsMsg_Destroy(m);
            break;
        }
        int rc = 0;
        if (naq__headers_may_match(m, &q->filter)) {
            naq_event e;
            if (naq__event_decode_msg(c->crypt, m, seq, &e) == NAQ_OK && query_matches(&e, q))
                rc = fn(&e, stored, ud);
            naq_event_clear(&e);
        }
        natsMsg_Destroy(m);
        if (rc) {
            *stopped = 1;
            break;
        }
        /* pending == 0 before `end`: the rest of the range was deleted. */
        if (seq >= end || pending == 0)
            break;
    }
    naq__reader_close(r);
    return s;
}

/* ---- list and count ---- */

typedef struct {
    naq_event_list *out;
    size_t cap;
    size_t skip, limit; /* limit 0 = all */
    int more;
    naq_status err;
} list_ctx;

static int list_one(const naq_event *e, int64_t stored_ns, void *ud)
{
    (void)stored_ns;
    list_ctx *x = ud;
    if (x->skip > 0) {
        x->skip--;
        return 0;
    }
    if (x->limit > 0 && x->out->count == x->limit) {
        x->more = 1;
        return 1;
    }
    if (x->out->count == x->cap) {
        size_t ncap = x->cap ? x->cap * 2 : 64;
        naq_event *items = realloc(x->out->items, ncap * sizeof *items);
        if (items == NULL) {
            x->err = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing events");
            return 1;
        }
        x->out->items = items;
        x->cap = ncap;
    }
    naq_event *dst = &x->out->items[x->out->count];
    naq_event_init(dst, e->type);
    if (naq_event_copy(dst, e) != NAQ_OK) {
        naq_event_clear(dst);
        x->err = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing events");
        return 1;
    }
    x->out->count++;
    return 0;
}

naq_status naq_events_list(naq_client *c, const naq_query *q, naq_event_list *out, int *more)
{
    out->items = NULL;
    out->count = 0;
    if (more != NULL)
        *more = 0;
    if (c == NULL || q == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_events_list needs a client and a query");
    list_ctx x = {out, 0, q->offset, q->limit, 0, NAQ_OK};
    naq_status s = naq__query_read(c, q, list_one, &x, NULL);
    if (s == NAQ_OK)
        s = x.err;
    if (s != NAQ_OK) {
        naq_event_list_free(out);
        return s;
    }
    if (more != NULL)
        *more = x.more;
    return NAQ_OK;
}

static int count_one(const naq_event *e, int64_t stored_ns, void *ud)
{
    (void)e;
    (void)stored_ns;
    (*(uint64_t *)ud)++;
    return 0;
}

/* Messages stored on one literal subject: one stream-info request. */
static naq_status subject_count(naq_client *c, const char *subject, uint64_t *out)
{
    *out = 0;
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = subject;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, c->ejs, c->cfg.event_stream, &o, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot read the state of event stream %s", c->cfg.event_stream);
    jsStreamStateSubjects *subs = si->State.Subjects;
    for (int i = 0; subs != NULL && i < subs->Count; i++)
        if (strcmp(subs->List[i].Subject, subject) == 0)
            *out += subs->List[i].Msgs;
    jsStreamInfo_Destroy(si);
    return NAQ_OK;
}

static int only_job_filter(const naq_query *q)
{
    const naq_event_filter *f = &q->filter;
    return has(f->job_id) && !has(f->type) && !has(f->queue) && !has(f->worker) &&
           (q->tags == NULL || q->tags[0] == NULL) && q->since <= 0 && q->until <= 0 &&
           q->from_seq == 0 && q->until_seq == 0;
}

static int no_filter(const naq_query *q)
{
    const naq_event_filter *f = &q->filter;
    return !has(f->job_id) && !has(f->type) && !has(f->queue) && !has(f->worker) &&
           (q->tags == NULL || q->tags[0] == NULL) && q->since <= 0 && q->until <= 0 &&
           q->from_seq == 0 && q->until_seq == 0;
}

naq_status naq_events_count(naq_client *c, const naq_query *q, uint64_t *out)
{
    *out = 0;
    if (c == NULL || q == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_events_count needs a client and a query");
    naq_status s = naq_query_validate(q);
    if (s != NAQ_OK)
        return s;
    if (only_job_filter(q)) {
        char subject[NAQ_URL_MAX];
        if ((s = naq__job_events_subject(c, q->filter.job_id, subject, sizeof subject)) != NAQ_OK)
            return s;
        return subject_count(c, subject, out);
    }
    if (no_filter(q)) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus ns = js_GetStreamInfo(&si, c->ejs, c->cfg.event_stream, NULL, &jerr);
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                                  "cannot read the state of event stream %s", c->cfg.event_stream);
        *out = si->State.Msgs;
        jsStreamInfo_Destroy(si);
        return NAQ_OK;
    }
    return naq__query_read(c, q, count_one, out, NULL);
}

naq_status naq_job_events(naq_client *c, const char *job_id, size_t limit, size_t offset,
                          naq_event_list *out)
{
    naq_status s = naq_job_history(c, job_id, out);
    if (s != NAQ_OK)
        return s;
    size_t from = offset < out->count ? offset : out->count;
    size_t to = limit > 0 && from + limit < out->count ? from + limit : out->count;
    for (size_t i = 0; i < from; i++)
        naq_event_clear(&out->items[i]);
    for (size_t i = to; i < out->count; i++)
        naq_event_clear(&out->items[i]);
    memmove(out->items, out->items + from, (to - from) * sizeof *out->items);
    out->count = to - from;
    return NAQ_OK;
}

naq_status naq_events_by_type(naq_client *c, const char *type, size_t limit, size_t offset,
                              naq_event_list *out)
{
    out->items = NULL;
    out->count = 0;
    if (!has(type))
        return naq__fail(NAQ_ERR_INVALID_ARG, "which event type? 'naq events types' lists them");
    naq_query q;
    naq_query_init(&q);
    q.filter.type = type;
    q.limit = limit;
    q.offset = offset;
    return naq_events_list(c, &q, out, NULL);
}

/* ---- deleting ---- */

naq_status naq_job_events_delete(naq_client *c, const char *job_id, uint64_t *deleted)
{
    if (deleted != NULL)
        *deleted = 0;
    char subject[NAQ_URL_MAX];
    naq_status s = naq__job_events_subject(c, job_id, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    uint64_t n = 0;
    if ((s = subject_count(c, subject, &n)) != NAQ_OK)
        return s;
    if (n > 0) {
        /* A purge filtered on the job's literal subject removes exactly its
         * events, wherever they sit in the stream. */
        jsOptions o;
        jsOptions_Init(&o);
        o.Stream.Purge.Subject = subject;
        jsErrCode jerr = 0;
        natsStatus ns = js_PurgeStream(c->ejs, c->cfg.event_stream, &o, &jerr);
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                                  "cannot delete the events of job %s from stream %s", job_id,
                                  c->cfg.event_stream);
    }
    if (deleted != NULL)
        *deleted = n;
    return NAQ_OK;
}

/* *st is zeroed first, so it is defined on every path: gcc -O3 cannot see
 * that naq__fail_nats never returns NAQ_OK and warned on the callers. */
static naq_status stream_state(naq_client *c, jsStreamState *st)
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

naq_status naq_events_cleanup(naq_client *c, int64_t older_than_ms, uint64_t *deleted,
                              uint64_t *first_kept)
{
    if (deleted != NULL)
        *deleted = 0;
    if (first_kept != NULL)
        *first_kept = 0;
    if (older_than_ms < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "cleanup needs an age of 0 or more");
    jsStreamState before;
    naq_status s = stream_state(c, &before);
    if (s != NAQ_OK)
        return s;
    if (before.Msgs == 0) {
        if (first_kept != NULL)
            *first_kept = before.FirstSeq;
        return NAQ_OK;
    }
    double cutoff = naq__now() - (double)older_than_ms / 1000.0;
    /* The first event stored at or after the cutoff: a consumer started at
     * the cutoff time delivers it first. None means every event stored up
     * to `before.LastSeq` is older. */
    naq__reader *r = NULL;
    if ((s = naq__reader_open(c, NULL, 0, cutoff, &r)) != NAQ_OK)
        return s;
    uint64_t keep = before.LastSeq + 1;
    int64_t deadline = naq__mono_ms() + CLEANUP_WAIT_MS;
    for (;;) {
        natsMsg *m = NULL;
        uint64_t seq = 0, pending = 0;
        int64_t stored = 0;
        s = naq__reader_next(r, WAIT_MS, &m, &seq, &stored, &pending);
        if (s == NAQ_OK) {
            natsMsg_Destroy(m);
            if (seq < keep)
                keep = seq;
            break;
        }
        if (s != NAQ_ERR_TIMEOUT)
            break;
        int done = 0;
        if ((s = reader_exhausted(r, before.LastSeq, &done)) != NAQ_OK || done)
            break;
        if (naq__mono_ms() > deadline) {
            s = naq__fail(NAQ_ERR_TIMEOUT,
                          "the event stream did not deliver the first event to "
                          "keep within %d s; nothing was deleted",
                          CLEANUP_WAIT_MS / 1000);
            break;
        }
    }
    naq__reader_close(r);
    if (s != NAQ_OK)
        return s;
    if (keep > before.FirstSeq) {
        jsOptions o;
        jsOptions_Init(&o);
        o.Stream.Purge.Sequence = keep; /* removes everything below it */
        jsErrCode jerr = 0;
        natsStatus ns = js_PurgeStream(c->ejs, c->cfg.event_stream, &o, &jerr);
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                                  "cannot purge event stream %s below sequence %llu",
                                  c->cfg.event_stream, (unsigned long long)keep);
    }
    jsStreamState after;
    if ((s = stream_state(c, &after)) != NAQ_OK)
        return s;
    /* Events stored meanwhile raise LastSeq and Msgs alike. */
    uint64_t added = after.LastSeq - before.LastSeq;
    if (deleted != NULL && before.Msgs + added > after.Msgs)
        *deleted = before.Msgs + added - after.Msgs;
    if (first_kept != NULL)
        *first_kept = keep > after.FirstSeq ? keep : after.FirstSeq;
    return NAQ_OK;
}

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
    naq_status s = stream_state(c, &st);
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
            if (ci->Config == NULL || !has(ci->Config->Durable))
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
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        naq__worker_entry *v = realloc(t->v, ncap * sizeof *v);
        if (v == NULL)
            return NULL;
        t->v = v;
        t->cap = ncap;
    }
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
