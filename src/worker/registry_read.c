/*
 * registry_read.c - the reads behind `naq workers`: the live registry and
 * the workers that are gone, from the entries and events registry.c
 * writes.
 *
 * The live list is one stream-info request for the bucket's keys
 * and one get per key (not a KV watch: see naq_workers_list). Gone workers
 * come from the event log: a consumer on "<prefix>.workers.events.>"
 * delivering the LAST message of each worker subject (deliver policy
 * last-per-subject), so the cost grows with the number of worker ids the
 * stream holds, not with their heartbeats (a worker heartbeating every 5 s
 * writes 17,280 events a day; reading a day of them for 20 workers by
 * start time would scan 345,600 messages to keep 20).
 */
#include "worker.h"
#include "core/kv.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A read of the event log that takes longer gives up. */
#define READ_DEADLINE_MS 60000
/* A reader that got nothing for this long asks the consumer whether
 * anything is left (normally the last message read says so). */
#define SILENCE_MS 200

/* A NULL-terminated heap copy of the strings of a JSON array (non-strings
 * are skipped); NULL only when out of memory. */
static char **strv_from_json(json_t *arr)
{
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    char **v = calloc(n + 1, sizeof *v);
    if (v == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s == NULL)
            continue;
        if ((v[k] = strdup(s)) == NULL) {
            naq__strv_free(v);
            return NULL;
        }
        k++;
    }
    return v;
}

static void info_clear(naq_worker_info *w)
{
    naq__strv_free(w->queues);
    naq__strv_free(w->current_job_ids);
    memset(w, 0, sizeof *w);
}

void naq_worker_info_list_free(naq_worker_info_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        info_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static double get_num(json_t *o, const char *key, double dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static void get_str(json_t *o, const char *key, char *dst, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v != NULL)
        snprintf(dst, cap, "%s", v);
}

/* Fills w (zeroed by the caller) from a registry entry or an event's
 * details; fields that are absent keep their zero. */
static naq_status info_from_json(json_t *o, naq_worker_info *w)
{
    get_str(o, "worker_id", w->worker_id, sizeof w->worker_id);
    get_str(o, "worker_type", w->worker_type, sizeof w->worker_type);
    get_str(o, "hostname", w->hostname, sizeof w->hostname);
    w->pid = (int64_t)get_num(o, "pid", 0);
    w->concurrency = (int)get_num(o, "concurrency", 0);
    w->active_jobs = (int)get_num(o, "active_jobs", 0);
    w->processed = (uint64_t)get_num(o, "processed", 0);
    w->failed = (uint64_t)get_num(o, "failed", 0);
    w->started_at = get_num(o, "started_at", 0);
    w->last_heartbeat = get_num(o, "last_heartbeat", 0);
    w->heartbeat_interval_ms = (int64_t)get_num(o, "heartbeat_interval_ms", 0);
    w->status = NAQ_WORKER_STATUS_IDLE;
    naq_worker_status_parse(json_string_value(json_object_get(o, "status")), &w->status);
    w->queues = strv_from_json(json_object_get(o, "queues"));
    w->current_job_ids = strv_from_json(json_object_get(o, "current_job_ids"));
    if (w->queues == NULL || w->current_job_ids == NULL) {
        info_clear(w);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading a worker");
    }
    return NAQ_OK;
}

/* ---- reading ---- */

/* What a read of the event log collects: every event it got, with its
 * stream sequence. A last-per-subject consumer delivers the last message of
 * each subject and then whatever is stored while it reads, so one worker
 * may come more than once: collect_dedupe keeps the latest of each. */
typedef struct {
    uint64_t seq;
    naq_worker_info w;
} item;

typedef struct {
    item *v;
    size_t n, cap;
} collection;

static item *collect_push(collection *col)
{
    if (col->n == col->cap && naq__array_grow(&col->v, &col->cap, sizeof *col->v, 16) == NULL)
        return NULL;
    item *it = &col->v[col->n];
    memset(it, 0, sizeof *it);
    return it;
}

static void collect_free(collection *col)
{
    for (size_t i = 0; i < col->n; i++)
        info_clear(&col->v[i].w);
    free(col->v);
    memset(col, 0, sizeof *col);
}

static int by_id_then_seq(const void *a, const void *b)
{
    const item *x = a, *y = b;
    int c = strcmp(x->w.worker_id, y->w.worker_id);
    return c != 0 ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int by_last_seen_desc(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->w.last_seen != y->w.last_seen)
        return x->w.last_seen < y->w.last_seen ? 1 : -1;
    return strcmp(x->w.worker_id, y->w.worker_id);
}

/* Keeps the latest item of each worker. */
static void collect_dedupe(collection *col)
{
    if (col->n == 0)
        return;
    qsort(col->v, col->n, sizeof *col->v, by_id_then_seq);
    size_t k = 0;
    for (size_t i = 0; i < col->n; i++) {
        int last = i + 1 == col->n || strcmp(col->v[i].w.worker_id, col->v[i + 1].w.worker_id) != 0;
        if (!last)
            info_clear(&col->v[i].w);
        else
            col->v[k++] = col->v[i];
    }
    col->n = k;
}

/* Keeps the `max` most recently seen items (sorted so), counting the rest. */
static void collect_trim(collection *col, size_t max, size_t *omitted)
{
    if (col->n == 0)
        return;
    qsort(col->v, col->n, sizeof *col->v, by_last_seen_desc);
    while (col->n > max) {
        info_clear(&col->v[--col->n].w);
        (*omitted)++;
    }
}

/* Moves the items into out (in their order). */
static naq_status collect_move(collection *col, naq_worker_info_list *out)
{
    if (col->n > 0 && (out->items = malloc(col->n * sizeof *out->items)) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing workers");
    for (size_t i = 0; i < col->n; i++)
        out->items[i] = col->v[i].w;
    out->count = col->n;
    free(col->v);
    memset(col, 0, sizeof *col);
    return NAQ_OK;
}

/* Has the consumer nothing more for us? A push consumer delivers at once,
 * so "nothing pending on the server" is not enough: what it delivered (up
 * to consumer sequence Delivered.Consumer) must have reached us too. */
static naq_status consumer_done(natsSubscription *sub, const char *stream, uint64_t got_cseq,
                                int *done)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot read the state of a consumer on stream %s", stream);
    *done = ci->NumPending == 0 && ci->Delivered.Consumer <= got_cseq;
    jsConsumerInfo_Destroy(ci);
    return NAQ_OK;
}

/* Called per message with its stream sequence. */
typedef naq_status (*last_msg_fn)(natsMsg *m, uint64_t seq, void *ud);

/* Calls fn with the last message of every subject of the event stream
 * matching `subject` (deliver policy last-per-subject, one ordered
 * consumer), and with what is stored there while it reads, until it has
 * seen `end`, the sequence of the newest matching message when it began.
 *
 * Why `end` and not the consumer's count of pending messages: on server
 * 2.9.10 a last-per-subject consumer whose starting messages are removed
 * before it delivers them (the stream trimming its oldest events) miscounts,
 * and its pending count reaches 0 while messages of other subjects are
 * still to come (seen on a KV bucket with history 1). The newest message
 * is never the one trimmed, and it is delivered in the starting set. */
static naq_status read_last_per_subject(naq_client *c, const char *subject, uint64_t end,
                                        last_msg_fn fn, void *ud)
{
    const char *stream = c->cfg.event_stream;
    char what[NAQ_NAME_MAX + 64];
    snprintf(what, sizeof what, "cannot open a consumer on stream %s", stream);
    natsSubscription *sub = NULL;
    naq__event_start at = {js_DeliverLastPerSubject, 0, 0};
    naq_status s = naq__event_subscribe(c, subject, at, &sub, what);
    if (s != NAQ_OK)
        return s;
    natsStatus ns;
    uint64_t got_cseq = 0; /* consumer sequence of the last message read */
    int64_t deadline = naq__mono_ms() + READ_DEADLINE_MS;
    int done = 0;
    while (s == NAQ_OK && !done) {
        if (naq__mono_ms() > deadline) {
            s = naq__fail(NAQ_ERR_TIMEOUT, "reading stream %s took longer than %d s", stream,
                          READ_DEADLINE_MS / 1000);
            break;
        }
        natsMsg *m = NULL;
        ns = natsSubscription_NextMsg(&m, sub, SILENCE_MS);
        if (ns == NATS_TIMEOUT) { /* nothing came: was `end` removed meanwhile? */
            s = consumer_done(sub, stream, got_cseq, &done);
            continue;
        }
        if (ns == NATS_SLOW_CONSUMER || ns == NATS_MISSED_HEARTBEAT)
            continue; /* the ordered consumer repairs itself */
        if (ns != NATS_OK) {
            s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "lost the consumer on stream %s", stream);
            break;
        }
        jsMsgMetaData *meta = NULL;
        uint64_t seq = 0;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            got_cseq = meta->Sequence.Consumer;
            seq = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
        }
        done = seq >= end;
        s = fn(m, seq, ud);
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return s;
}

/* ---- reading: live workers ---- */

/* The entry of one key (subject "$KV.<bucket>.<key>") into *it; *found = 0
 * when it expired or was deleted meanwhile, or is not ours. */
static naq_status read_entry(naq_client *c, const char *stream, const char *subject,
                             const char *key, naq_worker_info *w, int *found)
{
    *found = 0;
    natsMsg *m = NULL;
    int deleted = 0;
    natsStatus ns = naq__kv_read_last(c->js, stream, subject, &m, &deleted);
    if (ns == NATS_NOT_FOUND)
        return NAQ_OK;
    if (ns != NATS_OK)
        return naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, 0,
                              "cannot read the worker registry (stream %s)", stream);
    json_t *o =
        deleted ? NULL : json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    natsMsg_Destroy(m);
    naq_status s = NAQ_OK;
    if (json_is_object(o) && (s = info_from_json(o, w)) == NAQ_OK) {
        snprintf(w->worker_id, sizeof w->worker_id, "%s", key);
        w->live = 1;
        w->last_seen = w->last_heartbeat;
        *found = 1;
    }
    json_decref(o);
    return s;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const naq_worker_info *)a)->worker_id, ((const naq_worker_info *)b)->worker_id);
}

/* One stream-info request lists the keys, then one get per key reads its
 * entry. Not a KV watch nor a last-per-subject consumer: on server 2.9.10
 * such a consumer skips a key whose entry is rewritten while it reads (a
 * heartbeat) and may deliver another key twice, and nats.c's watcher can
 * wait forever for an entry that expires after it was counted. */
naq_status naq_workers_list(naq_client *c, naq_worker_info_list *out)
{
    memset(out, 0, sizeof *out);
    char bucket[NAQ_NAME_MAX + 16], stream[NAQ_NAME_MAX + 32], filter[NAQ_NAME_MAX + 32];
    naq__registry_bucket(c, bucket, sizeof bucket);
    snprintf(stream, sizeof stream, "KV_%s", bucket);
    int n = snprintf(filter, sizeof filter, "$KV.%s.>", bucket);
    size_t key_at = (size_t)n - 1;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = naq__stream_info(c->js, stream, filter, &si, &jerr);
    if (naq__stream_missing(ns, jerr))
        return NAQ_OK; /* no worker ever registered */
    if (ns != NATS_OK)
        return naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot read the worker registry (stream %s)", stream);
    naq_status s = NAQ_OK;
    int nsubjects = si->State.Subjects != NULL ? si->State.Subjects->Count : 0;
    if (nsubjects > 0 && (out->items = calloc((size_t)nsubjects, sizeof *out->items)) == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing workers");
    for (int i = 0; s == NAQ_OK && i < nsubjects; i++) {
        const char *subject = si->State.Subjects->List[i].Subject;
        if (subject == NULL || strlen(subject) <= key_at)
            continue;
        int found = 0;
        s = read_entry(c, stream, subject, subject + key_at, &out->items[out->count], &found);
        if (found)
            out->count++;
    }
    jsStreamInfo_Destroy(si);
    if (s != NAQ_OK) {
        naq_worker_info_list_free(out);
        return s;
    }
    if (out->count > 0)
        qsort(out->items, out->count, sizeof *out->items, by_id);
    return NAQ_OK;
}

/* ---- reading: gone workers, from the event log ---- */

typedef struct {
    collection col;
    const naq_worker_info_list *live; /* sorted by id */
    int64_t since_ms;
    size_t omitted;
} seen_read;

static int is_live(const naq_worker_info_list *live, const char *id)
{
    for (size_t lo = 0, hi = live->count; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(id, live->items[mid].worker_id);
        if (c == 0)
            return 1;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

/* A worker described by its event e (its last, unless a later one comes). */
static naq_status seen_item(item *it, const naq_event *e)
{
    json_t *d = e->details_json ? json_loads(e->details_json, 0, NULL) : NULL;
    if (d == NULL)
        d = json_object();
    naq_status s = info_from_json(d, &it->w);
    double uptime = get_num(d, "uptime_s", -1);
    json_decref(d);
    if (s != NAQ_OK)
        return s;
    naq_worker_info *w = &it->w;
    snprintf(w->worker_id, sizeof w->worker_id, "%s", e->worker_id);
    snprintf(w->worker_type, sizeof w->worker_type, "%s", e->worker_type);
    w->live = 0;
    w->last_seen = e->timestamp;
    w->last_heartbeat = e->timestamp;
    w->last_event = e->type;
    if (w->started_at == 0 && uptime >= 0)
        w->started_at = e->timestamp - uptime;
    /* Gone from the registry: it stopped, or it is lost (its last event
     * says whatever it was doing then, "busy" or "idle"). */
    w->status =
        e->type == NAQ_EVENT_WORKER_STOPPED ? NAQ_WORKER_STATUS_STOPPED : NAQ_WORKER_STATUS_LOST;
    return NAQ_OK;
}

static naq_status add_event(natsMsg *m, uint64_t seq, void *ud)
{
    seen_read *sr = ud;
    naq_event e;
    const char *data = natsMsg_GetData(m);
    naq_status s = NAQ_OK;
    if (naq_event_decode(data ? data : "", (size_t)natsMsg_GetDataLength(m), &e) == NAQ_OK &&
        e.worker_id[0] != '\0' && naq_event_type_category(e.type) == NAQ_CATEGORY_WORKER &&
        e.timestamp * 1000.0 >= (double)sr->since_ms && !is_live(sr->live, e.worker_id)) {
        item *it = collect_push(&sr->col);
        if (it == NULL)
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing workers");
        else if ((s = seen_item(it, &e)) == NAQ_OK) {
            it->seq = seq;
            sr->col.n++;
        }
    }
    naq_event_clear(&e); /* undecodable events are skipped */
    /* Bound the memory: at twice the limit, keep the newest half. */
    if (s == NAQ_OK && sr->col.n >= 2 * NAQ_WORKERS_SEEN_MAX) {
        collect_dedupe(&sr->col);
        collect_trim(&sr->col, NAQ_WORKERS_SEEN_MAX, &sr->omitted);
    }
    return s;
}

naq_status naq_workers_seen(naq_client *c, int64_t since_ms, naq_worker_info_list *out)
{
    memset(out, 0, sizeof *out);
    char subject[NAQ_URL_MAX];
    naq_status s = naq__subject(c, subject, sizeof subject, "workers.events.>");
    if (s != NAQ_OK)
        return s;
    naq_worker_info_list live;
    if ((s = naq_workers_list(c, &live)) != NAQ_OK)
        return s;
    seen_read sr = {{0}, &live, since_ms, 0};
    /* The newest worker event: where the read ends (none: nothing to read). */
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.LastBySubject = subject;
    natsMsg *last = NULL;
    natsStatus ns = js_DirectGetMsg(&last, c->ejs, c->cfg.event_stream, NULL, &o);
    if (ns == NATS_OK) {
        uint64_t end = natsMsg_GetSequence(last);
        natsMsg_Destroy(last);
        s = read_last_per_subject(c, subject, end, add_event, &sr);
    } else if (ns != NATS_NOT_FOUND) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read event stream %s", c->cfg.event_stream);
    }
    naq_worker_info_list_free(&live);
    if (s == NAQ_OK) {
        collect_dedupe(&sr.col);
        collect_trim(&sr.col, NAQ_WORKERS_SEEN_MAX, &sr.omitted);
        s = collect_move(&sr.col, out);
        out->omitted = sr.omitted;
    }
    collect_free(&sr.col);
    return s;
}
