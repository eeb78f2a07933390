/*
 * query.c - listing, counting and deleting events.
 *
 * Every read of more than one job goes through the one forward reader
 * (reader.c), on the caller's thread. A range read captures the stream's last sequence when it
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

/* ---- filters ---- */

naq_status naq_query_validate(const naq_query *q)
{
    naq_status s = naq__event_filter_validate(&q->filter);
    if (s != NAQ_OK)
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

    jsStreamState st;
    if ((s = naq__event_stream_state(c, &st)) != NAQ_OK)
        return s;
    uint64_t first = st.FirstSeq, last = st.LastSeq, msgs = st.Msgs;
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
            if ((s = naq__reader_exhausted(r, end, &done)) != NAQ_OK || done)
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
    if (x->out->count == x->cap &&
        naq__array_grow(&x->out->items, &x->cap, sizeof *x->out->items, 64) == NULL) {
        x->err = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing events");
        return 1;
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
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = naq__stream_info(c->ejs, c->cfg.event_stream, subject, &si, &jerr);
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
        jsStreamState st;
        if ((s = naq__event_stream_state(c, &st)) != NAQ_OK)
            return s;
        *out = st.Msgs;
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
        jsErrCode jerr = 0;
        natsStatus ns = naq__stream_purge(c->ejs, c->cfg.event_stream, subject, 0, &jerr);
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
    naq_status s = naq__event_stream_state(c, &before);
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
        if ((s = naq__reader_exhausted(r, before.LastSeq, &done)) != NAQ_OK || done)
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
        jsErrCode jerr = 0; /* removes everything below keep */
        natsStatus ns = naq__stream_purge(c->ejs, c->cfg.event_stream, NULL, keep, &jerr);
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                                  "cannot purge event stream %s below sequence %llu",
                                  c->cfg.event_stream, (unsigned long long)keep);
    }
    jsStreamState after;
    if ((s = naq__event_stream_state(c, &after)) != NAQ_OK)
        return s;
    /* Events stored meanwhile raise LastSeq and Msgs alike. */
    uint64_t added = after.LastSeq - before.LastSeq;
    if (deleted != NULL && before.Msgs + added > after.Msgs)
        *deleted = before.Msgs + added - after.Msgs;
    if (first_kept != NULL)
        *first_kept = keep > after.FirstSeq ? keep : after.FirstSeq;
    return NAQ_OK;
}
