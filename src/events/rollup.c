/*
 * rollup.c - per-hour rollups of the event stream: the maintainer that
 * folds events into them, exactly once. Their format (histogram, groups,
 * JSON codec) is rollup_codec.c.
 *
 * Bucket "naq_stats" (KV): "h.<unix_hour>" holds the counts of the events
 * whose *timestamp* falls in that hour (JSON, docs/queries.md), with
 * last_seq; "cursor" holds the highest stream sequence W such that every
 * event up to W is folded into its hour.
 *
 * A maintainer step: read W (the cursor), read the stream in order from W+1
 * (an ordered consumer, no server-side cursor to share), then for each hour
 * the batch touches: get the key, fold the batch's events of that hour whose
 * sequence is above the key's last_seq, set last_seq to the batch's last
 * sequence and write it back with compare-and-set on the key's revision
 * (re-read and redo on conflict); finally move the cursor forward, also by
 * compare-and-set. Invariant: for every hour key, every event of that hour
 * with a sequence <= last_seq is folded; every event <= W is folded.
 * Why that is exactly once:
 *   - a maintainer that dies after writing hour keys but before moving the
 *     cursor (or a second maintainer reading the same events) re-reads
 *     them, and the last_seq test skips what is already in;
 *   - every reader starts at a cursor value it read, so it never misses an
 *     event of an hour between that hour's last_seq and its own batch;
 *   - CAS on each key serialises concurrent writers; a loser recomputes from
 *     the fresh value.
 * A durable consumer shared by several maintainers (the first design) was
 * rejected: it hands them interleaved batches, and an older batch written
 * after a newer one would be skipped by the last_seq test (lost), while
 * ack-all could acknowledge another maintainer's unfolded messages.
 * Several maintainers at once therefore all read the whole stream; the
 * second one mostly skips, and one that finds the cursor ahead of it jumps
 * there. Their cost is reading, never correctness.
 *
 * If no maintainer runs, nothing is lost: the stream keeps the events (up
 * to its max age) and the next maintainer folds them from the cursor; stats
 * say how far behind the rollups are.
 */
#include "core/kv.h"
#include "events.h"
#include "core/jsonw.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_MAX 10000
#define LINGER_MS 1000 /* a running maintainer collects a batch for up to this long */
#define POLL_MS 250
/* A reader that gets nothing while the stream holds more is re-opened
 * after this long, and given up on after twice as long. */
#define STALL_MS 5000
#define CAS_ATTEMPTS 100
#define RETRY_SLEEP_MS 1000
#define CURSOR_KEY "cursor"

atomic_int naq__rollup_crash_before_cursor;

/* ---- the bucket ---- */

/* The stats bucket of the client's event stream: NAQ_STATS_BUCKET for the
 * default stream, "naq_stats_<stream>" for any other, so two naq
 * installations on one server never share a cursor. */
static void stats_bucket(const naq_client *c, char *buf, size_t cap)
{
    naq__suffixed_name(buf, cap, NAQ_STATS_BUCKET, c->cfg.event_stream, "NAQ_JOB_EVENTS");
}

naq_status naq__stats_kv(naq_client *c, int create, kvStore **out)
{
    *out = NULL;
    char bucket[NAQ_NAME_MAX + 16];
    stats_bucket(c, bucket, sizeof bucket);
    natsStatus ns;
    if (!create) {
        ns = js_KeyValue(out, c->ejs, bucket);
        if (ns == NATS_NOT_FOUND)
            return NAQ_ERR_NOT_FOUND;
    } else {
        /* Hour keys outlive the events they count by a day, so a cursor
         * lost with an idle bucket can never re-fold an event into an
         * expired key. A stream without max age keeps its rollups too. */
        int64_t ttl_ns = c->cfg.event_max_age_s > 0
                             ? (c->cfg.event_max_age_s + 86400) * 1000000000LL /* nanoseconds */
                             : 0;
        kvConfig kc;
        naq__kv_config_init(&kc, bucket, "naq per-hour event rollups (docs/queries.md)",
                            c->cfg.replicas, ttl_ns);
        ns = naq__kv_bind(c->ejs, &kc, out);
    }
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot open the stats bucket %s", bucket);
    return NAQ_OK;
}

naq_status naq__rollup_cursor_get(kvStore *kv, uint64_t *seq, uint64_t *rev)
{
    *seq = 0;
    *rev = 0;
    kvEntry *e = NULL;
    natsStatus ns = kvStore_Get(&e, kv, CURSOR_KEY);
    if (ns == NATS_NOT_FOUND)
        return NAQ_OK;
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read the rollup cursor in %s",
                              kvStore_Bucket(kv));
    *rev = kvEntry_Revision(e);
    json_t *o = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, NULL);
    json_t *v = json_object_get(o, "seq");
    *seq = json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    json_decref(o);
    kvEntry_Destroy(e);
    return NAQ_OK;
}

/* A compare-and-set write: create when rev == 0, else update at rev.
 * NAQ_ERR_EXISTS when someone wrote first (or, rarely, on a network error:
 * the caller re-reads either way). */
static naq_status kv_cas(kvStore *kv, const char *key, const char *data, size_t len, uint64_t rev)
{
    uint64_t nrev = 0;
    natsStatus ns = rev == 0 ? kvStore_Create(&nrev, kv, key, data, (int)len)
                             : kvStore_Update(&nrev, kv, key, data, (int)len, rev);
    if (ns == NATS_OK)
        return NAQ_OK;
    /* nats.c reports a lost compare-and-set as NATS_ERR. Anything else (a
     * timeout: a publish the server refuses for lack of permission is never
     * answered) is not a conflict, and trying again would not help. */
    if (ns == NATS_ERR)
        return naq__fail_nats(NAQ_ERR_EXISTS, ns, 0, "%s/%s changed meanwhile", kvStore_Bucket(kv),
                              key);
    return naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, 0,
                          "cannot write %s/%s (a role without write access to it cannot fold "
                          "events: docs/security.md)",
                          kvStore_Bucket(kv), key);
}

/* Between CAS attempts: a short random pause so two losers do not meet
 * again at once. */
static void cas_backoff(int attempt)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    naq__sleep_ms(1 + (int64_t)((uint64_t)ts.tv_nsec / 1000 % (uint64_t)(2 + attempt * 2)));
}

/* ---- the maintainer ---- */

typedef struct {
    naq_client *c;
    kvStore *kv;
    naq__reader *reader;
    uint64_t pos; /* last sequence the reader handed out */
    naq__rollup_rec *recs;
    size_t n, cap;
} maintainer;

static void maintainer_close(maintainer *m)
{
    naq__reader_close(m->reader);
    kvStore_Destroy(m->kv);
    free(m->recs);
    memset(m, 0, sizeof *m);
}

static naq_status keep_record(maintainer *m, natsMsg *msg, uint64_t seq)
{
    naq_event e;
    const char *data = natsMsg_GetData(msg);
    if (naq_event_decode(data ? data : "", (size_t)natsMsg_GetDataLength(msg), &e) != NAQ_OK) {
        naq_event_clear(&e); /* not an event: nothing to count */
        return NAQ_OK;
    }
    if (m->n == m->cap && naq__array_grow(&m->recs, &m->cap, sizeof *m->recs, 1024) == NULL) {
        naq_event_clear(&e);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory batching events");
    }
    naq__rollup_rec *r = &m->recs[m->n++];
    r->seq = seq;
    r->hour = (int64_t)floor(e.timestamp / 3600.0);
    r->ts = e.timestamp;
    r->type = e.type;
    r->duration_ms = e.duration_ms;
    snprintf(r->queue, sizeof r->queue, "%s", e.queue_name);
    snprintf(r->worker, sizeof r->worker, "%s", e.worker_id);
    snprintf(r->error_type, sizeof r->error_type, "%s", e.error_type ? e.error_type : "");
    naq_event_clear(&e);
    return NAQ_OK;
}

/* Folds the batch's events of `hour` above the key's last_seq into it and
 * writes it back with CAS; *added counts them. */
static naq_status commit_hour(maintainer *m, int64_t hour, uint64_t batch_end, size_t *added)
{
    char key[64];
    snprintf(key, sizeof key, "h.%lld", (long long)hour);
    naq_status s = NAQ_OK;
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        *added = 0;
        naq__rollup r;
        naq__rollup_init(&r, hour);
        uint64_t rev = 0;
        kvEntry *e = NULL;
        natsStatus ns = kvStore_Get(&e, m->kv, key);
        if (ns == NATS_OK) {
            rev = kvEntry_Revision(e);
            s = naq__rollup_decode(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &r);
            kvEntry_Destroy(e);
            if (s != NAQ_OK) {
                naq__rollup_free(&r);
                return s;
            }
        } else if (ns != NATS_NOT_FOUND) {
            return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read %s/%s", kvStore_Bucket(m->kv),
                                  key);
        }
        uint64_t last = r.last_seq;
        for (size_t i = 0; i < m->n && s == NAQ_OK; i++) {
            if (m->recs[i].hour == hour && m->recs[i].seq > last) {
                s = naq__rollup_add(&r, &m->recs[i]);
                (*added)++;
            }
        }
        if (s == NAQ_OK && *added == 0) { /* another maintainer folded them */
            naq__rollup_free(&r);
            return NAQ_OK;
        }
        char *json = NULL;
        size_t len = 0;
        r.hour = hour;
        if (r.last_seq < batch_end)
            r.last_seq = batch_end;
        if (s == NAQ_OK)
            s = naq__rollup_encode(&r, &json, &len);
        naq__rollup_free(&r);
        if (s == NAQ_OK)
            s = kv_cas(m->kv, key, json, len, rev);
        free(json);
        if (s != NAQ_ERR_EXISTS)
            return s;
        cas_backoff(attempt);
    }
    return naq__fail(NAQ_ERR_TIMEOUT, "gave up writing %s/%s after %d conflicting writes",
                     kvStore_Bucket(m->kv), key, CAS_ATTEMPTS);
}

static naq_status commit_cursor(maintainer *m, uint64_t batch_end)
{
    char json[64];
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        uint64_t seq = 0, rev = 0;
        naq_status s = naq__rollup_cursor_get(m->kv, &seq, &rev);
        if (s != NAQ_OK)
            return s;
        if (seq >= batch_end) /* someone is ahead: never move it back */
            return NAQ_OK;
        int n =
            snprintf(json, sizeof json, "{\"v\":1,\"seq\":%llu}", (unsigned long long)batch_end);
        s = kv_cas(m->kv, CURSOR_KEY, json, (size_t)n, rev);
        if (s != NAQ_ERR_EXISTS)
            return s;
        cas_backoff(attempt);
    }
    return naq__fail(NAQ_ERR_TIMEOUT,
                     "gave up moving the rollup cursor after %d conflicting "
                     "writes",
                     CAS_ATTEMPTS);
}

static int hour_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Writes the batch (records up to batch_end) into its hour keys, then the
 * cursor. */
static naq_status commit(maintainer *m, uint64_t batch_end, size_t *folded)
{
    *folded = 0;
    naq_status s = NAQ_OK;
    int64_t *hours = NULL;
    size_t nh = 0;
    if (m->n > 0) {
        if ((hours = malloc(m->n * sizeof *hours)) == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory committing rollups");
        for (size_t i = 0; i < m->n; i++)
            hours[i] = m->recs[i].hour;
        qsort(hours, m->n, sizeof *hours, hour_cmp);
        for (size_t i = 0; i < m->n; i++)
            if (nh == 0 || hours[nh - 1] != hours[i])
                hours[nh++] = hours[i];
    }
    for (size_t i = 0; i < nh && s == NAQ_OK; i++) {
        size_t added = 0;
        s = commit_hour(m, hours[i], batch_end, &added);
        *folded += added;
    }
    free(hours);
    if (s != NAQ_OK)
        return s;
    if (atomic_load(&naq__rollup_crash_before_cursor))
        return naq__fail(NAQ_ERR_CLOSED, "rollup maintainer stopped before moving the cursor "
                                         "(test seam)");
    return commit_cursor(m, batch_end);
}

static naq_status maintainer_open(naq_client *c, maintainer *m)
{
    memset(m, 0, sizeof *m);
    m->c = c;
    return naq__stats_kv(c, 1, &m->kv);
}

/* *more = 1 when the stream holds an event after sequence `seq` (one
 * direct get). */
static naq_status stored_after(naq_client *c, uint64_t seq, int *more)
{
    *more = 0;
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.Sequence = seq + 1;
    o.NextBySubject = ">";
    natsMsg *next = NULL;
    natsStatus ns = js_DirectGetMsg(&next, c->ejs, c->cfg.event_stream, NULL, &o);
    natsMsg_Destroy(next);
    if (ns == NATS_NOT_FOUND)
        return NAQ_OK;
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read event stream %s",
                              c->cfg.event_stream);
    *more = 1;
    return NAQ_OK;
}

/* Called when a step's reader timed out although events follow m->pos.
 * Its ordered consumer should recover by itself; if it gets nothing for
 * STALL_MS, the reader is opened again at m->pos, and if that one gets
 * nothing for as long, the step fails instead of waiting for ever. (A
 * guard only: the test hang of `naq events stats` that prompted it was
 * the test harness's fork, tests/harness/harness.c.) *since: when the
 * stall (or the wait after re-opening) began, 0 = not stalled;
 * *reopened: the reader was opened again in this stall. */
static naq_status unstall(maintainer *m, int64_t *since, int *reopened)
{
    int64_t now = naq__mono_ms();
    if (*since == 0)
        *since = now;
    if (now - *since < STALL_MS)
        return NAQ_OK;
    if (*reopened)
        return naq__fail(NAQ_ERR_TIMEOUT,
                         "event stream %s holds events after sequence %llu, but none came in "
                         "%d s; is the server overloaded? Try again",
                         m->c->cfg.event_stream, (unsigned long long)m->pos, 2 * STALL_MS / 1000);
    naq__reader_close(m->reader);
    m->reader = NULL;
    *reopened = 1;
    *since = now;
    return naq__reader_open(m->c, NULL, m->pos + 1, 0, &m->reader);
}

/* One batch: from the cursor (re-positioning the reader when the cursor is
 * not where it stands), up to max events. linger_ms > 0: keep collecting
 * for that long after the first event (a running maintainer); 0: stop as
 * soon as the stream has nothing more (a step). */
static naq_status fold_batch(maintainer *m, int64_t max, int64_t linger_ms,
                             const volatile int *stop, size_t *folded)
{
    *folded = 0;
    m->n = 0;
    uint64_t cursor = 0, rev = 0;
    naq_status s = naq__rollup_cursor_get(m->kv, &cursor, &rev);
    if (s != NAQ_OK)
        return s;
    if (linger_ms == 0) {
        int more = 0;
        if ((s = stored_after(m->c, cursor, &more)) != NAQ_OK || !more)
            return s;
    }
    if (m->reader == NULL || m->pos != cursor) {
        naq__reader_close(m->reader);
        m->reader = NULL;
        m->pos = cursor;
        if ((s = naq__reader_open(m->c, NULL, cursor + 1, 0, &m->reader)) != NAQ_OK)
            return s;
    }
    uint64_t batch_end = 0;
    int64_t first_at = 0, stalled_since = 0;
    int reopened = 0;
    int64_t count = 0;
    while (count < max) {
        if (stop != NULL && *stop)
            break;
        int64_t wait = POLL_MS;
        if (first_at > 0 && linger_ms > 0) {
            int64_t left = first_at + linger_ms - naq__mono_ms();
            if (left <= 0)
                break;
            if (left < wait)
                wait = left;
        }
        natsMsg *msg = NULL;
        uint64_t seq = 0, pending = 0;
        int64_t stored = 0;
        s = naq__reader_next(m->reader, wait, &msg, &seq, &stored, &pending);
        if (s == NAQ_ERR_TIMEOUT) {
            s = NAQ_OK;
            if (linger_ms == 0) { /* a step ends when the stream holds nothing more */
                int more = 0;
                if ((s = stored_after(m->c, m->pos, &more)) != NAQ_OK || !more ||
                    (s = unstall(m, &stalled_since, &reopened)) != NAQ_OK)
                    break;
            }
            continue;
        }
        if (s != NAQ_OK)
            break;
        stalled_since = 0;
        reopened = 0;
        if (first_at == 0)
            first_at = naq__mono_ms();
        m->pos = batch_end = seq;
        count++;
        s = keep_record(m, msg, seq);
        natsMsg_Destroy(msg);
        if (s != NAQ_OK)
            break;
        if (linger_ms == 0 && pending == 0)
            break;
    }
    if (s == NAQ_OK && batch_end > 0)
        s = commit(m, batch_end, folded);
    if (s != NAQ_OK) {
        /* Start again from the cursor next time. */
        naq__reader_close(m->reader);
        m->reader = NULL;
    }
    return s;
}

naq_status naq_rollup_step(naq_client *c, int64_t max_events, size_t *folded)
{
    size_t local = 0;
    if (folded == NULL)
        folded = &local;
    *folded = 0;
    if (c == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_rollup_step needs a client");
    maintainer m;
    naq_status s = maintainer_open(c, &m);
    if (s == NAQ_OK)
        s = fold_batch(&m, max_events > 0 ? max_events : BATCH_MAX, 0, NULL, folded);
    maintainer_close(&m);
    return s;
}

naq_status naq_rollup_catch_up(naq_client *c, naq_rollup_progress_fn progress, void *ud,
                               const volatile int *stop, uint64_t *folded)
{
    uint64_t local = 0;
    if (folded == NULL)
        folded = &local;
    *folded = 0;
    if (c == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_rollup_catch_up needs a client");
    maintainer m;
    naq_status s = maintainer_open(c, &m);
    uint64_t cursor = 0, rev = 0, lag = 0;
    if (s == NAQ_OK)
        s = naq__rollup_cursor_get(m.kv, &cursor, &rev);
    if (s == NAQ_OK)
        s = naq__rollup_lag_after(c, cursor, &lag);
    /* Bounded: only what is stored when the call starts (target); events
     * that keep arriving are for the running maintainer. Progress counts
     * from target - lag, since events purged before they were folded are
     * not behind. */
    uint64_t target = 0, from = 0;
    if (s == NAQ_OK && lag > 0) {
        jsStreamState st;
        if ((s = naq__event_stream_state(c, &st)) == NAQ_OK)
            target = st.LastSeq;
        from = target > lag ? target - lag : 0;
    }
    while (s == NAQ_OK && cursor < target && (stop == NULL || !*stop)) {
        size_t n = 0;
        uint64_t before = cursor;
        s = fold_batch(&m, BATCH_MAX, 0, stop, &n);
        *folded += n;
        if (s == NAQ_OK)
            s = naq__rollup_cursor_get(m.kv, &cursor, &rev);
        uint64_t at = cursor < target ? cursor : target;
        if (s == NAQ_OK && progress != NULL)
            progress(at > from ? at - from : 0, target - from, ud);
        if (s == NAQ_OK && cursor <= before) /* nothing more stored: the tail was purged */
            break;
    }
    maintainer_close(&m);
    return s;
}

naq_status naq_rollup_run(naq_client *c, const volatile int *stop)
{
    if (c == NULL || stop == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_rollup_run needs a client and a stop flag");
    maintainer m;
    naq_status s = maintainer_open(c, &m);
    if (s != NAQ_OK) {
        maintainer_close(&m);
        return s;
    }
    int failing = 0;
    while (!*stop) {
        size_t folded = 0;
        s = fold_batch(&m, BATCH_MAX, LINGER_MS, stop, &folded);
        if (s == NAQ_OK) {
            failing = 0;
            continue;
        }
        if (s == NAQ_ERR_CLOSED) /* the test seam: behave like a dead process */
            break;
        if (!failing)
            naq__log(NAQ_LOG_WARN, "naq rollup: %s; retrying every %d s\n", naq_last_error(),
                     RETRY_SLEEP_MS / 1000);
        failing = 1;
        naq__nap(RETRY_SLEEP_MS, stop);
    }
    maintainer_close(&m);
    return s == NAQ_ERR_CLOSED ? s : NAQ_OK;
}

naq_status naq_rollup_lag(naq_client *c, uint64_t *cursor, uint64_t *lag)
{
    *cursor = 0;
    *lag = 0;
    kvStore *kv = NULL;
    uint64_t rev = 0;
    naq_status s = naq__stats_kv(c, 0, &kv);
    if (s == NAQ_OK)
        s = naq__rollup_cursor_get(kv, cursor, &rev);
    kvStore_Destroy(kv);
    if (s != NAQ_OK && s != NAQ_ERR_NOT_FOUND)
        return s;
    return naq__rollup_lag_after(c, *cursor, lag);
}

naq_status naq__rollup_lag_after(naq_client *c, uint64_t cursor, uint64_t *lag)
{
    *lag = 0;
    jsStreamState st;
    naq_status s = naq__event_stream_state(c, &st);
    if (s != NAQ_OK)
        return s;
    uint64_t from = cursor;
    if (st.FirstSeq > 0 && from < st.FirstSeq - 1)
        from = st.FirstSeq - 1; /* older events are gone: nothing to fold there */
    if (st.Msgs > 0 && st.LastSeq > from)
        *lag = st.LastSeq - from;
    return NAQ_OK;
}
