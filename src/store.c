/*
 * store.c - reading the event log: a job's history, its current state and
 * live, filtered streams of events.
 *
 * History is a chain of direct gets: first `last_by_subj` on the job's
 * literal subject, which gives the sequence L where the read ends, then
 * `next_by_subj` from sequence 0, then from each answer's sequence + 1, until
 * the answer is L. That is one request per event plus one, ~0.12 ms each.
 * Measured here (nats-server 2.9.10, 2 cores, 1M events for 200k jobs of 5,
 * right after publishing them): last + chain 1.7 ms p50 / 2.7 ms p99;
 * chaining until "not found" instead 2.3 / 43 ms p99, because a miss makes
 * the server look through every block after the job's last event; an
 * ordered consumer 1.9 / 3.0 ms, and it creates and deletes server state on
 * every read. Knowing L up front also makes the history a snapshot: events
 * stored while it is read are left for the next read. bench/bench_store.c
 * (1000 random jobs, settled server): history 1.4 ms p50 / 5.2 ms p99, state
 * 0.12 / 0.9 ms, unknown job 0.1 / 0.6 ms.
 *
 * The cost that no read method avoids on 2.9.10: after ~10 s without reads
 * the server drops its block caches and per-block subject indexes, and the
 * next read of an old job reloads them: 10-45 ms on 1M events (an ordered
 * consumer: 10-65 ms). Even a perfect starting sequence instead of 0 leaves
 * 8-13 ms (loading the 8 MB block that holds the events).
 *
 * A job's state is one direct get, `last_by_subj`. Server quirk (2.9.10):
 * when the newest message of a subject is deleted on its own (`nats stream
 * rmm`), `last_by_subj` answers "not found" until the subject gets a new
 * message; naq never does that (purges and age limits remove whole subjects
 * or oldest first), so no slower fallback is paid for it on every miss.
 *
 * Live streams use an ordered push consumer (nats.c recreates it from the
 * last sequence it delivered after a gap or a reconnect, so nothing is lost
 * or repeated) read with NextMsg on the caller's thread, polling the stop
 * flag between waits of POLL_MS. A job filter uses the job's literal
 * subject; any other filter reads the whole stream (a 2.9.10 consumer has
 * one filter subject, the stream holds only events, and nats.c needs a
 * subject, so it is ">") and judges each message by its Naq-* headers
 * before decoding it.
 *
 * The tail and the live part meet at one snapshot sequence, so no event is
 * lost or repeated between them:
 *   - job filter: the tail is the job's history up to L (its last event);
 *     the live consumer starts at L + 1;
 *   - otherwise: the snapshot S is the stream's last sequence. The start of
 *     the tail is found by scanning windows backwards from S (each window a
 *     short consumer, 4x larger than the one before, at most
 *     NAQ_STREAM_TAIL_SCAN_MAX + tail messages in all), keeping only the
 *     sequences of matches. Then ONE consumer starts at the oldest match and
 *     delivers the tail and, with follow, everything after it: there is no
 *     seam at all. Without follow it stops after S.
 * Scanning forward in windows instead of one direct get per message going
 * backwards costs one consumer (about a millisecond) per window and then
 * reads at consumer speed (~100k messages/s here): the last 10 events of a
 * type found once per 5000 events take 0.35-0.55 s, against ~0.12 ms per
 * message scanned with direct gets (6 s for the same 50k messages).
 *
 * Invariant: the same predicate (accept_msg) decides what the tail search
 * counts and what is delivered, so the tail is exactly the last `tail`
 * matches unless events are deleted meanwhile.
 */
#include "crypt.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often a waiting stream looks at *stop. */
#define POLL_MS 100
/* First tail-search window when a filter needs matching (per wanted event,
 * and at least this many messages); later windows are 4x larger. */
#define TAIL_WINDOW_PER_MATCH 16
#define TAIL_WINDOW_MIN 1024
#define TAIL_WINDOW_GROWTH 4

static int has(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* ---- reading single messages ---- */

static naq_status read_fail(const naq_client *c, natsStatus ns, const char *what)
{
    if (ns == NATS_NO_RESPONDERS)
        return naq__fail(NAQ_ERR_NATS,
                         "cannot read %s: no server answers direct gets on event stream %s; does "
                         "the stream exist with allow_direct (naq creates it on connect)?",
                         what, c->cfg.event_stream);
    return naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, 0,
                          "cannot read %s from event stream %s", what, c->cfg.event_stream);
}

/* One direct get: the last message on `last_subject`, or else the first
 * message at or after `seq` on `next_subject`. NAQ_ERR_NOT_FOUND (without a
 * message: the caller words it) when there is none. */
static naq_status direct_get(naq_client *c, const char *next_subject, uint64_t seq,
                             const char *last_subject, natsMsg **out)
{
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.Sequence = seq;
    o.NextBySubject = next_subject;
    o.LastBySubject = last_subject;
    natsStatus ns = js_DirectGetMsg(out, c->ejs, c->cfg.event_stream, NULL, &o);
    if (ns == NATS_OK)
        return NAQ_OK;
    if (ns == NATS_NOT_FOUND)
        return NAQ_ERR_NOT_FOUND;
    return read_fail(c, ns, last_subject ? last_subject : next_subject);
}

/* Decodes m, its sealed payload opened with k (crypt.h). */
static naq_status decode_msg(const naq__crypt *k, natsMsg *m, uint64_t seq, naq_event *out)
{
    const char *data = natsMsg_GetData(m);
    naq_status s = naq_event_decode(data ? data : "", (size_t)natsMsg_GetDataLength(m), out);
    if (s != NAQ_OK)
        return s;
    naq__crypt_open_event(k, out);
    snprintf(out->nats_subject, sizeof out->nats_subject, "%s", natsMsg_GetSubject(m));
    out->nats_sequence = seq;
    return NAQ_OK;
}

static naq_status job_subject(naq_client *c, const char *job_id, char *buf, size_t cap)
{
    naq_status s = naq_id_validate("job id", job_id);
    if (s != NAQ_OK)
        return s;
    return naq__subject(c, buf, cap, "jobs.events.%s", job_id);
}

/* ---- history and state ---- */

void naq_event_list_free(naq_event_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        naq_event_clear(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Appends the decoded m to l. A message that does not decode fails the
 * read, or with skip_bad is left out. */
static naq_status list_append(const naq__crypt *k, naq_event_list *l, size_t *cap, natsMsg *m,
                              uint64_t seq, int skip_bad)
{
    if (l->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        naq_event *items = realloc(l->items, ncap * sizeof *items);
        if (items == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading events");
        l->items = items;
        *cap = ncap;
    }
    naq_event *e = &l->items[l->count];
    naq_status s = decode_msg(k, m, seq, e);
    if (s != NAQ_OK) {
        naq_event_clear(e);
        if (skip_bad)
            return NAQ_OK;
        char why[256]; /* naq__fail writes where naq_last_error() points */
        snprintf(why, sizeof why, "%s", naq_last_error());
        return naq__fail(NAQ_ERR_CODEC, "event %llu on %s cannot be read: %s",
                         (unsigned long long)seq, natsMsg_GetSubject(m), why);
    }
    l->count++;
    return NAQ_OK;
}

/* Reads the events on the literal `subject` up to its last one at the time
 * of the call, whose sequence goes to *last_seq (0 when the subject has
 * none). *out may be empty with *last_seq > 0 when events were deleted
 * meanwhile or skipped. */
static naq_status read_subject(naq_client *c, const char *subject, int skip_bad,
                               naq_event_list *out, uint64_t *last_seq)
{
    out->items = NULL;
    out->count = 0;
    *last_seq = 0;
    natsMsg *m = NULL;
    naq_status s = direct_get(c, NULL, 0, subject, &m);
    if (s == NAQ_ERR_NOT_FOUND)
        return NAQ_OK;
    if (s != NAQ_OK)
        return s;
    uint64_t last = natsMsg_GetSequence(m);
    natsMsg_Destroy(m);
    size_t cap = 0;
    for (uint64_t next = 0; next <= last;) {
        m = NULL;
        s = direct_get(c, subject, next, NULL, &m);
        if (s == NAQ_ERR_NOT_FOUND) { /* the rest was deleted meanwhile */
            s = NAQ_OK;
            break;
        }
        if (s != NAQ_OK)
            break;
        uint64_t seq = natsMsg_GetSequence(m);
        if (seq <= last)
            s = list_append(c->crypt, out, &cap, m, seq, skip_bad);
        natsMsg_Destroy(m);
        if (s != NAQ_OK)
            break;
        next = seq + 1;
    }
    if (s != NAQ_OK) {
        naq_event_list_free(out);
        return s;
    }
    *last_seq = last;
    return NAQ_OK;
}

naq_status naq_job_history(naq_client *c, const char *job_id, naq_event_list *out)
{
    out->items = NULL;
    out->count = 0;
    char subject[NAQ_URL_MAX];
    naq_status s = job_subject(c, job_id, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    uint64_t last = 0;
    if ((s = read_subject(c, subject, 0, out, &last)) != NAQ_OK)
        return s;
    if (out->count == 0)
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "no events for job %s (is the id right? events expire after the "
                         "stream's max age)",
                         job_id);
    return NAQ_OK;
}

naq_status naq_job_last_event(naq_client *c, const char *job_id, naq_event *out)
{
    naq_event_init(out, NAQ_EVENT_ENQUEUED);
    char subject[NAQ_URL_MAX];
    naq_status s = job_subject(c, job_id, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    natsMsg *m = NULL;
    s = direct_get(c, NULL, 0, subject, &m);
    if (s == NAQ_ERR_NOT_FOUND)
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "no events for job %s (is the id right? events expire after the "
                         "stream's max age)",
                         job_id);
    if (s != NAQ_OK)
        return s;
    uint64_t seq = natsMsg_GetSequence(m);
    s = decode_msg(c->crypt, m, seq, out);
    natsMsg_Destroy(m);
    if (s != NAQ_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", naq_last_error());
        return naq__fail(NAQ_ERR_CODEC, "last event of job %s (sequence %llu) cannot be read: %s",
                         job_id, (unsigned long long)seq, why);
    }
    return NAQ_OK;
}

/* ---- filters ---- */

int naq_event_matches(const naq_event *e, const naq_event_filter *f)
{
    if (f == NULL)
        return 1;
    if (has(f->job_id) && strcmp(e->job_id, f->job_id) != 0)
        return 0;
    if (has(f->type) && strcmp(naq_event_type_name(e->type), f->type) != 0)
        return 0;
    if (has(f->queue) && strcmp(e->queue_name, f->queue) != 0)
        return 0;
    if (has(f->worker) && strcmp(e->worker_id, f->worker) != 0)
        return 0;
    return 1;
}

static int header_is(natsMsg *m, const char *name, const char *want)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, name, &v) != NATS_OK || v == NULL)
        v = "";
    return strcmp(v, want) == 0;
}

/* 0 when the headers show that m cannot pass f, without decoding it. naq
 * writers always set Naq-Event-Type, and Naq-Queue / Naq-Worker exactly when
 * the event has a queue / worker (docs/protocol.md), so for them a missing
 * header is an empty field. A message without Naq-Event-Type comes from some
 * other writer and is left to its body. */
int naq__headers_may_match(natsMsg *m, const naq_event_filter *f)
{
    if (!has(f->type) && !has(f->queue) && !has(f->worker))
        return 1;
    const char *type = NULL;
    if (natsMsgHeader_Get(m, "Naq-Event-Type", &type) != NATS_OK || type == NULL)
        return 1;
    if (has(f->type) && strcmp(type, f->type) != 0)
        return 0;
    if (has(f->queue) && !header_is(m, "Naq-Queue", f->queue))
        return 0;
    if (has(f->worker) && !header_is(m, "Naq-Worker", f->worker))
        return 0;
    return 1;
}

/* 1 when m passes f, with *e holding it decoded (clear it); 0 when it does
 * not, or does not decode (skipped). */
static int accept_msg(const naq__crypt *k, natsMsg *m, uint64_t seq, const naq_event_filter *f,
                      naq_event *e)
{
    if (!naq__headers_may_match(m, f))
        return 0;
    if (decode_msg(k, m, seq, e) != NAQ_OK || !naq_event_matches(e, f)) {
        naq_event_clear(e);
        return 0;
    }
    return 1;
}

static naq_status validate_filter(const naq_event_filter *f)
{
    naq_status s;
    naq_event_type t;
    if (has(f->job_id) && (s = naq_id_validate("job id", f->job_id)) != NAQ_OK)
        return s;
    if (has(f->type) && (s = naq_event_type_parse(f->type, &t)) != NAQ_OK)
        return s;
    if (has(f->queue) && (s = naq_id_validate("queue name", f->queue)) != NAQ_OK)
        return s;
    if (has(f->worker) && (s = naq_id_validate("worker id", f->worker)) != NAQ_OK)
        return s;
    return NAQ_OK;
}

/* ---- consumer scans ---- */

/* Called per message with its stream sequence; non-zero stops the scan. */
typedef int (*scan_fn)(natsMsg *m, uint64_t seq, void *ud);

typedef struct {
    const char *subject;      /* a job's literal subject, or ">" for the whole stream */
    uint64_t first;           /* first sequence to read, 0 = from the start */
    uint64_t last;            /* last sequence to read, 0 = no end (follow) */
    const volatile int *stop; /* may be NULL */
} scan_range;

/* True when nothing is left to read in [from, r->last]: no message on the
 * subject at or after `from`, or only after r->last. Asked only when the
 * consumer has been quiet for POLL_MS, i.e. when the rest of the range was
 * deleted; a consumer alone cannot tell "deleted" from "not sent yet". */
static naq_status range_exhausted(naq_client *c, const scan_range *r, uint64_t from, int *done)
{
    natsMsg *m = NULL;
    naq_status s = direct_get(c, r->subject, from, NULL, &m);
    *done = s == NAQ_ERR_NOT_FOUND || (s == NAQ_OK && natsMsg_GetSequence(m) > r->last);
    natsMsg_Destroy(m);
    return s == NAQ_ERR_NOT_FOUND ? NAQ_OK : s;
}

/* Reads r through an ordered consumer, calling fn per message in sequence
 * order. *stopped is set when fn or *r->stop ended the scan. */
static naq_status scan(naq_client *c, const scan_range *r, scan_fn fn, void *ud, int *stopped)
{
    *stopped = 0;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->cfg.event_stream;
    so.Ordered = true;
    if (r->first > 0) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = r->first;
    } else {
        so.Config.DeliverPolicy = js_DeliverAll;
    }
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_SubscribeSync(&sub, c->ejs, r->subject, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot open a consumer on event stream %s", c->cfg.event_stream);
    naq_status s = NAQ_OK;
    uint64_t next = r->first; /* the next sequence we could see */
    for (;;) {
        if (r->stop != NULL && *r->stop) {
            *stopped = 1;
            break;
        }
        natsMsg *m = NULL;
        ns = natsSubscription_NextMsg(&m, sub, POLL_MS);
        /* A slow consumer or missed heartbeats are repaired by the ordered
         * consumer (it restarts after the last message it delivered). */
        if (ns == NATS_TIMEOUT || ns == NATS_SLOW_CONSUMER || ns == NATS_MISSED_HEARTBEAT) {
            if (r->last > 0) {
                int done = 0;
                if ((s = range_exhausted(c, r, next, &done)) != NAQ_OK || done)
                    break;
            }
            continue;
        }
        if (ns != NATS_OK) {
            s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "lost the consumer on event stream %s",
                               c->cfg.event_stream);
            break;
        }
        jsMsgMetaData *meta = NULL;
        if ((ns = natsMsg_GetMetaData(&meta, m)) != NATS_OK) {
            natsMsg_Destroy(m);
            s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "event without JetStream metadata");
            break;
        }
        uint64_t seq = meta->Sequence.Stream;
        uint64_t pending = meta->NumPending;
        jsMsgMetaData_Destroy(meta);
        if (r->last > 0 && seq > r->last) {
            natsMsg_Destroy(m);
            break;
        }
        next = seq + 1;
        int rc = fn(m, seq, ud);
        natsMsg_Destroy(m);
        if (rc) {
            *stopped = 1;
            break;
        }
        /* pending == 0 before r->last: the rest of the range was deleted. */
        if (r->last > 0 && (seq >= r->last || pending == 0))
            break;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return s;
}

/* ---- streams ---- */

typedef struct {
    const naq_event_filter *filter;
    naq_event_fn fn;
    void *user;
    const naq__crypt *keys;
} deliver_ctx;

static int deliver_one(natsMsg *m, uint64_t seq, void *ud)
{
    deliver_ctx *d = ud;
    naq_event e;
    if (!accept_msg(d->keys, m, seq, d->filter, &e))
        return 0;
    int rc = d->fn(&e, d->user);
    naq_event_clear(&e);
    return rc;
}

/* The last `cap` matching sequences seen, in a ring; n counts all matches. */
typedef struct {
    const naq_event_filter *filter;
    uint64_t *ring;
    uint64_t cap, n;
} count_ctx;

static int count_one(natsMsg *m, uint64_t seq, void *ud)
{
    count_ctx *x = ud;
    naq_event e;
    if (accept_msg(NULL, m, seq, x->filter, &e)) {
        naq_event_clear(&e);
        x->ring[x->n % x->cap] = seq;
        x->n++;
    }
    return 0;
}

/* Finds the sequence of the tail-th last event in [first, last] that passes
 * the filter, searching backwards window by window (see the top of the
 * file). *from is the oldest match found, 0 when none. */
static naq_status find_tail_start(naq_client *c, const naq_stream_opts *o, uint64_t first,
                                  uint64_t last, uint64_t *from, int *stopped)
{
    *from = 0;
    *stopped = 0;
    const naq_event_filter *f = &o->filter;
    uint64_t need = (uint64_t)o->tail;
    if (need > last - first + 1)
        need = last - first + 1;
    uint64_t budget = (uint64_t)NAQ_STREAM_TAIL_SCAN_MAX + need;
    /* Unfiltered, the last `need` messages are the answer unless some fail
     * to decode; filtered, guess generously to keep the windows few. */
    uint64_t window = need;
    if (has(f->type) || has(f->queue) || has(f->worker)) {
        window = need * TAIL_WINDOW_PER_MATCH;
        if (window < TAIL_WINDOW_MIN)
            window = TAIL_WINDOW_MIN;
    }
    uint64_t *ring = malloc(need * sizeof *ring);
    if (ring == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a tail of %d events", o->tail);
    naq_status s = NAQ_OK;
    uint64_t hi = last;
    while (need > 0 && budget > 0 && hi >= first) {
        uint64_t span = window;
        if (span > budget)
            span = budget;
        if (span > hi - first + 1)
            span = hi - first + 1;
        scan_range r = {">", hi - span + 1, hi, o->stop};
        count_ctx x = {f, ring, need, 0};
        if ((s = scan(c, &r, count_one, &x, stopped)) != NAQ_OK || *stopped)
            break;
        if (x.n >= need) {
            *from = ring[x.n % need]; /* the oldest of the last `need` */
            need = 0;
        } else if (x.n > 0) {
            *from = ring[0];
            need -= x.n;
        }
        budget -= span;
        if (r.first == first)
            break;
        hi = r.first - 1;
        window = span * TAIL_WINDOW_GROWTH;
    }
    free(ring);
    return s;
}

/* Job filter: the tail from the job's history, then its literal subject. */
static naq_status stream_job(naq_client *c, const naq_stream_opts *o, naq_event_fn fn, void *user)
{
    char subject[NAQ_URL_MAX];
    naq_status s = job_subject(c, o->filter.job_id, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    uint64_t last = 0;
    if (o->tail > 0) {
        naq_event_list l;
        if ((s = read_subject(c, subject, 1, &l, &last)) != NAQ_OK)
            return s;
        size_t start = l.count, want = (size_t)o->tail;
        while (start > 0 && want > 0)
            if (naq_event_matches(&l.items[--start], &o->filter))
                want--;
        int stop = o->stop != NULL && *o->stop;
        for (size_t i = start; i < l.count && !stop; i++)
            if (naq_event_matches(&l.items[i], &o->filter))
                stop = fn(&l.items[i], user) != 0 || (o->stop != NULL && *o->stop);
        naq_event_list_free(&l);
        if (stop)
            return NAQ_OK;
    } else {
        natsMsg *m = NULL;
        s = direct_get(c, NULL, 0, subject, &m);
        if (s == NAQ_OK)
            last = natsMsg_GetSequence(m);
        natsMsg_Destroy(m);
        if (s != NAQ_OK && s != NAQ_ERR_NOT_FOUND)
            return s;
    }
    if (!o->follow)
        return NAQ_OK;
    /* last == 0: the job had no events; deliver all it gets from now on. */
    scan_range r = {subject, last ? last + 1 : 0, 0, o->stop};
    deliver_ctx d = {&o->filter, fn, user, c->crypt};
    int stopped = 0;
    return scan(c, &r, deliver_one, &d, &stopped);
}

/* from_seq: one scan from that sequence, on the job's literal subject when
 * there is a job filter, else the whole stream; no tail to find. */
static naq_status stream_from(naq_client *c, const naq_stream_opts *o, naq_event_fn fn, void *user)
{
    char subject[NAQ_URL_MAX] = ">";
    naq_status s = NAQ_OK;
    if (has(o->filter.job_id) &&
        (s = job_subject(c, o->filter.job_id, subject, sizeof subject)) != NAQ_OK)
        return s;
    uint64_t last = 0;
    if (!o->follow) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus ns = js_GetStreamInfo(&si, c->ejs, c->cfg.event_stream, NULL, &jerr);
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                                  "cannot read the state of event stream %s", c->cfg.event_stream);
        last = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
        if (last < o->from_seq)
            return NAQ_OK;
    }
    scan_range r = {subject, o->from_seq, last, o->stop};
    deliver_ctx d = {&o->filter, fn, user, c->crypt};
    int stopped = 0;
    return scan(c, &r, deliver_one, &d, &stopped);
}

naq_status naq_events_stream(naq_client *c, const naq_stream_opts *o, naq_event_fn fn, void *user)
{
    if (c == NULL || o == NULL || fn == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_events_stream needs a client, options and a "
                                              "callback");
    if (o->tail < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "tail must be 0 or more, not %d", o->tail);
    naq_status s = validate_filter(&o->filter);
    if (s != NAQ_OK)
        return s;
    if (!o->follow && o->tail == 0 && o->from_seq == 0)
        return NAQ_OK;
    if (o->from_seq > 0)
        return stream_from(c, o, fn, user);
    if (has(o->filter.job_id))
        return stream_job(c, o, fn, user);

    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, c->ejs, c->cfg.event_stream, NULL, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot read the state of event stream %s", c->cfg.event_stream);
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq, msgs = si->State.Msgs;
    jsStreamInfo_Destroy(si);

    uint64_t from = 0;
    int stopped = 0;
    if (o->tail > 0 && msgs > 0 && last >= first) {
        if ((s = find_tail_start(c, o, first, last, &from, &stopped)) != NAQ_OK || stopped)
            return s;
    }
    if (from == 0) { /* no tail to deliver */
        if (!o->follow)
            return NAQ_OK;
        from = last + 1;
    }
    scan_range r = {">", from, o->follow ? 0 : last, o->stop};
    deliver_ctx d = {&o->filter, fn, user, c->crypt};
    return scan(c, &r, deliver_one, &d, &stopped);
}
