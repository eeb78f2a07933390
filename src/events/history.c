/*
 * history.c - a job's history and its current state, read from the event
 * log by direct gets on the job's literal subject.
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
 * Stored order is the order things happened, except for an event the
 * logger published late (an election, an outage: header Naq-Late, see
 * logger.c), which may land after later events of its job. The history
 * places such an event by its timestamp, and a state whose last stored
 * event is late is taken from the history.
 *
 * A job's state is one direct get, `last_by_subj`. Server quirk (2.9.10):
 * when the newest message of a subject is deleted on its own (`nats stream
 * rmm`), `last_by_subj` answers "not found" until the subject gets a new
 * message; naq never does that (purges and age limits remove whole subjects
 * or oldest first), so no slower fallback is paid for it on every miss.
 */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
naq_status naq__event_direct_get(naq_client *c, const char *next_subject, uint64_t seq,
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
naq_status naq__event_decode_msg(const naq__crypt *k, natsMsg *m, uint64_t seq, naq_event *out)
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

naq_status naq__job_events_subject(naq_client *c, const char *job_id, char *buf, size_t cap)
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
    if (l->count == *cap && naq__array_grow(&l->items, cap, sizeof *l->items, 16) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading events");
    naq_event *e = &l->items[l->count];
    naq_status s = naq__event_decode_msg(k, m, seq, e);
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

void naq__history_place_late(naq_event *items, size_t n, const size_t *late_at, size_t n_late)
{
    naq_event *placed = n_late > 0 ? malloc(n * sizeof *placed) : NULL;
    if (placed == NULL)
        return;
    size_t k = 0;
    for (size_t i = 0, j = 0; i < n; i++) {
        if (j < n_late && late_at[j] == i)
            j++;
        else
            placed[k++] = items[i]; /* shallow moves: the heap fields go along */
    }
    for (size_t j = 0; j < n_late; j++) {
        const naq_event *e = &items[late_at[j]];
        size_t at = 0;
        while (at < k && placed[at].timestamp <= e->timestamp)
            at++;
        memmove(&placed[at + 1], &placed[at], (k - at) * sizeof *placed);
        placed[at] = *e;
        k++;
    }
    memcpy(items, placed, n * sizeof *items);
    free(placed);
}

/* 1 when m carries the late header. */
static int is_late(natsMsg *m)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, NAQ__LATE_HEADER, &v) == NATS_OK;
}

/* Appends index i to the list of late events (*n of *cap). */
static naq_status note_late(size_t **at, size_t *n, size_t *cap, size_t i)
{
    if (*n == *cap && naq__array_grow(at, cap, sizeof **at, 4) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading events");
    (*at)[(*n)++] = i;
    return NAQ_OK;
}

/* Reads the events on the literal `subject` up to its last one at the time
 * of the call, whose sequence goes to *last_seq (0 when the subject has
 * none), in the order they happened (naq__history_place_late). *out may be
 * empty with *last_seq > 0 when events were deleted meanwhile or skipped. */
naq_status naq__subject_history(naq_client *c, const char *subject, int skip_bad,
                                naq_event_list *out, uint64_t *last_seq)
{
    out->items = NULL;
    out->count = 0;
    *last_seq = 0;
    size_t *late_at = NULL, n_late = 0, late_cap = 0; /* indexes of late events (rare) */
    natsMsg *m = NULL;
    naq_status s = naq__event_direct_get(c, NULL, 0, subject, &m);
    if (s == NAQ_ERR_NOT_FOUND)
        return NAQ_OK;
    if (s != NAQ_OK)
        return s;
    uint64_t last = natsMsg_GetSequence(m);
    natsMsg_Destroy(m);
    size_t cap = 0;
    for (uint64_t next = 0; next <= last;) {
        m = NULL;
        s = naq__event_direct_get(c, subject, next, NULL, &m);
        if (s == NAQ_ERR_NOT_FOUND) { /* the rest was deleted meanwhile */
            s = NAQ_OK;
            break;
        }
        if (s != NAQ_OK)
            break;
        uint64_t seq = natsMsg_GetSequence(m);
        size_t before = out->count;
        if (seq <= last)
            s = list_append(c->crypt, out, &cap, m, seq, skip_bad);
        if (s == NAQ_OK && out->count > before && is_late(m))
            s = note_late(&late_at, &n_late, &late_cap, before);
        natsMsg_Destroy(m);
        if (s != NAQ_OK)
            break;
        next = seq + 1;
    }
    if (s == NAQ_OK)
        naq__history_place_late(out->items, out->count, late_at, n_late);
    free(late_at);
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
    naq_status s = naq__job_events_subject(c, job_id, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    uint64_t last = 0;
    if ((s = naq__subject_history(c, subject, 0, out, &last)) != NAQ_OK)
        return s;
    if (out->count == 0)
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "no events for job %s (is the id right? events expire after the "
                         "stream's max age)",
                         job_id);
    return NAQ_OK;
}

/* The last event of the job's history in the order things happened. */
static naq_status last_from_history(naq_client *c, const char *job_id, naq_event *out)
{
    naq_event_list l;
    naq_status s = naq_job_history(c, job_id, &l);
    if (s != NAQ_OK)
        return s;
    naq_event_clear(out);
    *out = l.items[--l.count]; /* moved out: the list no longer frees it */
    naq_event_list_free(&l);
    return NAQ_OK;
}

naq_status naq_job_last_event(naq_client *c, const char *job_id, naq_event *out)
{
    naq_event_init(out, NAQ_EVENT_ENQUEUED);
    char subject[NAQ_URL_MAX];
    naq_status s = naq__job_events_subject(c, job_id, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    natsMsg *m = NULL;
    s = naq__event_direct_get(c, NULL, 0, subject, &m);
    if (s == NAQ_ERR_NOT_FOUND)
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "no events for job %s (is the id right? events expire after the "
                         "stream's max age)",
                         job_id);
    if (s != NAQ_OK)
        return s;
    if (is_late(m)) { /* it may not be the last thing that happened */
        natsMsg_Destroy(m);
        return last_from_history(c, job_id, out);
    }
    uint64_t seq = natsMsg_GetSequence(m);
    s = naq__event_decode_msg(c->crypt, m, seq, out);
    natsMsg_Destroy(m);
    if (s != NAQ_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", naq_last_error());
        return naq__fail(NAQ_ERR_CODEC, "last event of job %s (sequence %llu) cannot be read: %s",
                         job_id, (unsigned long long)seq, why);
    }
    return NAQ_OK;
}
