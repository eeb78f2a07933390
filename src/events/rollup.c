/*
 * rollup.c - per-hour rollups of the event stream: their format and the
 * maintainer that folds events into them, exactly once.
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
#include "internal.h"
#include "core/jsonw.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROLLUP_VERSION 1
#define BATCH_MAX 10000
#define LINGER_MS 1000 /* a running maintainer collects a batch for up to this long */
#define POLL_MS 250
#define CAS_ATTEMPTS 100
#define RETRY_SLEEP_MS 1000
#define CURSOR_KEY "cursor"
#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(17))

atomic_int naq__rollup_crash_before_cursor;

/* ---- histogram (DDSketch mapping, alpha = NAQ_STATS_PRECISION) ---- */

/* gamma = (1 + alpha) / (1 - alpha); bucket k holds (gamma^(k-1), gamma^k]
 * and reports 2 gamma^k / (gamma + 1), within alpha of anything in it. */
#define GAMMA ((1.0 + NAQ_STATS_PRECISION) / (1.0 - NAQ_STATS_PRECISION))
/* floor(log(NAQ__HIST_MIN_MS) / log(GAMMA)): bucket index 1 is k = K_MIN+1. */
#define K_MIN (-173)

int naq__hist_index(double ms)
{
    if (!(ms > NAQ__HIST_MIN_MS))
        return 0;
    double k = ceil(log(ms) / log(GAMMA));
    double i = k - K_MIN;
    if (i < 1)
        return 1;
    if (i > NAQ__HIST_BUCKETS - 1)
        return NAQ__HIST_BUCKETS - 1;
    return (int)i;
}

double naq__hist_value(int index)
{
    if (index <= 0)
        return 0;
    return 2.0 * pow(GAMMA, index + K_MIN) / (GAMMA + 1.0);
}

/* ---- groups ---- */

static naq__rollup_group *group_new(const char *name)
{
    naq__rollup_group *g = calloc(1, sizeof *g);
    if (g != NULL)
        snprintf(g->name, sizeof g->name, "%s", name);
    return g;
}

static void group_clear(naq__rollup_group *g)
{
    free(g->hist);
    free(g->errors);
    g->hist = NULL;
    g->errors = NULL;
    g->nerrors = 0;
}

static naq_status group_error_add(naq__rollup_group *g, const char *name, uint64_t n)
{
    for (size_t i = 0; i < g->nerrors; i++) {
        if (strcmp(g->errors[i].name, name) == 0) {
            g->errors[i].count += n;
            return NAQ_OK;
        }
    }
    if (g->nerrors >= NAQ__ROLLUP_MAX_ERRORS && strcmp(name, NAQ__ROLLUP_OTHER) != 0)
        return group_error_add(g, NAQ__ROLLUP_OTHER, n);
    naq__named_count *v = realloc(g->errors, (g->nerrors + 1) * sizeof *v);
    if (v == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory folding error types");
    g->errors = v;
    snprintf(v[g->nerrors].name, sizeof v[0].name, "%s", name);
    v[g->nerrors++].count = n;
    return NAQ_OK;
}

static naq_status group_dur_add(naq__rollup_group *g, int bucket, uint64_t n)
{
    if (g->hist == NULL && (g->hist = calloc(NAQ__HIST_BUCKETS, sizeof *g->hist)) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory folding durations");
    g->hist[bucket] += n;
    return NAQ_OK;
}

/* ---- name -> group tables ---- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static naq_status table_rehash(naq__group_table *t, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (slots == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a rollup table");
    for (size_t i = 0; i < t->n; i++) {
        size_t k = hash_name(t->v[i]->name) & (nslots - 1);
        while (slots[k] != 0)
            k = (k + 1) & (nslots - 1);
        slots[k] = (uint32_t)(i + 1);
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return NAQ_OK;
}

/* The group called name, made when missing; past `max` groups new names
 * go to NAQ__ROLLUP_OTHER. NULL when out of memory (error recorded). */
static naq__rollup_group *table_get(naq__group_table *t, const char *name, size_t max)
{
    if (t->nslots > 0) {
        size_t k = hash_name(name) & (t->nslots - 1);
        while (t->slots[k] != 0) {
            naq__rollup_group *g = t->v[t->slots[k] - 1];
            if (strcmp(g->name, name) == 0)
                return g;
            k = (k + 1) & (t->nslots - 1);
        }
    }
    if (t->n >= max && strcmp(name, NAQ__ROLLUP_OTHER) != 0)
        return table_get(t, NAQ__ROLLUP_OTHER, max + 1);
    if ((t->n + 1) * 2 > t->nslots && table_rehash(t, t->nslots ? t->nslots * 2 : 16) != NAQ_OK)
        return NULL;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        naq__rollup_group **v = realloc(t->v, ncap * sizeof *v);
        if (v == NULL) {
            naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a rollup table");
            return NULL;
        }
        t->v = v;
        t->cap = ncap;
    }
    naq__rollup_group *g = group_new(name);
    if (g == NULL) {
        naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a rollup group");
        return NULL;
    }
    t->v[t->n++] = g;
    size_t k = hash_name(name) & (t->nslots - 1);
    while (t->slots[k] != 0)
        k = (k + 1) & (t->nslots - 1);
    t->slots[k] = (uint32_t)t->n;
    return g;
}

static void table_free(naq__group_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        group_clear(t->v[i]);
        free(t->v[i]);
    }
    free(t->v);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* ---- rollups ---- */

void naq__rollup_init(naq__rollup *r, int64_t hour)
{
    memset(r, 0, sizeof *r);
    r->hour = hour;
}

void naq__rollup_free(naq__rollup *r)
{
    if (r == NULL)
        return;
    group_clear(&r->total);
    table_free(&r->queues);
    table_free(&r->workers);
    naq__rollup_init(r, r->hour);
}

static int has_duration(const naq__rollup_rec *e)
{
    return (e->type == NAQ_EVENT_COMPLETED || e->type == NAQ_EVENT_FAILED) && e->duration_ms >= 0;
}

/* Types and, for the total and queues, durations and error types. */
static naq_status group_add(naq__rollup_group *g, const naq__rollup_rec *e, int full)
{
    g->types[e->type]++;
    naq_status s = NAQ_OK;
    if (full && has_duration(e)) {
        g->dur_n++;
        g->dur_sum += e->duration_ms;
        s = group_dur_add(g, naq__hist_index(e->duration_ms), 1);
    }
    if (full && s == NAQ_OK && e->error_type[0] != '\0')
        s = group_error_add(g, e->error_type, 1);
    return s;
}

naq_status naq__rollup_add(naq__rollup *r, const naq__rollup_rec *e)
{
    if ((int)e->type < 0 || e->type >= NAQ_EVENT_TYPE_COUNT)
        return NAQ_OK;
    if (e->ts > 0 && (r->first_ts == 0 || e->ts < r->first_ts))
        r->first_ts = e->ts;
    naq_status s = group_add(&r->total, e, 1);
    if (s == NAQ_OK && e->queue[0] != '\0') {
        naq__rollup_group *g = table_get(&r->queues, e->queue, NAQ__ROLLUP_MAX_QUEUES);
        s = g ? group_add(g, e, 1) : NAQ_ERR_NO_MEMORY;
    }
    if (s == NAQ_OK && e->worker[0] != '\0') {
        naq__rollup_group *g = table_get(&r->workers, e->worker, NAQ__ROLLUP_MAX_WORKERS);
        s = g ? group_add(g, e, 0) : NAQ_ERR_NO_MEMORY;
    }
    return s;
}

/* ---- JSON codec (docs/queries.md, "Rollup format") ---- */

static json_t *group_json(const naq__rollup_group *g)
{
    json_t *o = json_object(), *types = json_object();
    for (int t = 0; t < NAQ_EVENT_TYPE_COUNT; t++)
        if (g->types[t] > 0)
            json_object_set_new(types, naq_event_type_name((naq_event_type)t),
                                json_integer((json_int_t)g->types[t]));
    json_object_set_new(o, "types", types);
    if (g->dur_n > 0) {
        /* "index:count,index:count,..." in one string: a stats query decodes
         * dozens of these, and one string costs one allocation where an
         * array of pairs costs three per bucket (measured: 50 ms -> see
         * docs/queries.md for a 24 h query on 1M events). */
        size_t cap = 32, len = 0;
        char *hist = malloc(cap);
        for (int i = 0; hist != NULL && g->hist != NULL && i < NAQ__HIST_BUCKETS; i++) {
            if (g->hist[i] == 0)
                continue;
            if (cap - len < 48) {
                char *bigger = realloc(hist, cap * 2);
                if (bigger == NULL) {
                    free(hist);
                    hist = NULL;
                    break;
                }
                hist = bigger;
                cap *= 2;
            }
            len += (size_t)snprintf(hist + len, cap - len, "%s%d:%llu", len ? "," : "", i,
                                    (unsigned long long)g->hist[i]);
        }
        if (hist == NULL) {
            json_decref(o);
            return NULL;
        }
        hist[len] = '\0';
        json_object_set_new(
            o, "dur",
            json_pack("{sIsfss}", "n", (json_int_t)g->dur_n, "sum", g->dur_sum, "hist", hist));
        free(hist);
    }
    if (g->nerrors > 0) {
        json_t *errors = json_object();
        for (size_t i = 0; i < g->nerrors; i++)
            json_object_set_new(errors, g->errors[i].name,
                                json_integer((json_int_t)g->errors[i].count));
        json_object_set_new(o, "errors", errors);
    }
    return o;
}

static json_t *table_json(const naq__group_table *t)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < t->n; i++) {
        if (json_object_set_new(o, t->v[i]->name, group_json(t->v[i])) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

naq_status naq__rollup_encode(const naq__rollup *r, char **json, size_t *len)
{
    json_t *o = json_pack("{sisIsIsososo}", "v", ROLLUP_VERSION, "hour", (json_int_t)r->hour,
                          "last_seq", (json_int_t)r->last_seq, "total", group_json(&r->total),
                          "queues", table_json(&r->queues), "workers", table_json(&r->workers));
    /* first_ts came after format 1 without a version step: older readers
     * ignore it, and a rollup without it reads as "earliest unknown". */
    if (o != NULL && r->first_ts > 0)
        json_object_set_new(o, "first_ts", json_real(r->first_ts));
    *json = o ? naq__json_dumps(o, JSON_FLAGS) : NULL;
    json_decref(o);
    if (*json == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encoding a rollup");
    *len = strlen(*json);
    return NAQ_OK;
}

static uint64_t count_of(json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* Reads a group; unknown event types (from a newer naq) are ignored. */
static naq_status group_from_json(json_t *o, naq__rollup_group *g)
{
    if (!json_is_object(o))
        return naq__fail(NAQ_ERR_CODEC, "a rollup group is not an object");
    const char *key;
    json_t *v;
    naq_status s = NAQ_OK;
    json_object_foreach(json_object_get(o, "types"), key, v)
    {
        naq_event_type t;
        for (t = 0; t < NAQ_EVENT_TYPE_COUNT; t++)
            if (strcmp(naq_event_type_name(t), key) == 0)
                break;
        if (t < NAQ_EVENT_TYPE_COUNT)
            g->types[t] += count_of(v);
    }
    json_t *dur = json_object_get(o, "dur");
    if (json_is_object(dur)) {
        g->dur_n += count_of(json_object_get(dur, "n"));
        g->dur_sum += json_number_value(json_object_get(dur, "sum"));
        const char *p = json_string_value(json_object_get(dur, "hist"));
        while (p != NULL && *p != '\0') {
            char *end = NULL;
            unsigned long b = strtoul(p, &end, 10);
            if (end == p || *end != ':')
                return naq__fail(NAQ_ERR_CODEC, "a rollup histogram is malformed near '%.20s'", p);
            p = end + 1;
            unsigned long long n = strtoull(p, &end, 10);
            if (end == p || (*end != ',' && *end != '\0'))
                return naq__fail(NAQ_ERR_CODEC, "a rollup histogram is malformed near '%.20s'", p);
            p = *end == ',' ? end + 1 : end;
            if (b < NAQ__HIST_BUCKETS && n > 0 && (s = group_dur_add(g, (int)b, n)) != NAQ_OK)
                return s;
        }
    }
    json_object_foreach(json_object_get(o, "errors"), key, v)
    {
        if ((s = group_error_add(g, key, count_of(v))) != NAQ_OK)
            return s;
    }
    return NAQ_OK;
}

static naq_status table_from_json(json_t *o, naq__group_table *t, size_t max)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        naq__rollup_group *g = table_get(t, key, max);
        if (g == NULL)
            return NAQ_ERR_NO_MEMORY;
        naq_status s = group_from_json(v, g);
        if (s != NAQ_OK)
            return s;
    }
    return NAQ_OK;
}

naq_status naq__rollup_decode(const char *json, size_t len, naq__rollup *r)
{
    json_error_t err;
    json_t *o = json_loadb(json, len, 0, &err);
    if (!json_is_object(o)) {
        json_decref(o);
        return naq__fail(NAQ_ERR_CODEC, "a rollup is not JSON: %s", err.text);
    }
    naq_status s = NAQ_OK;
    json_int_t v = json_integer_value(json_object_get(o, "v"));
    if (v < 1 || v > ROLLUP_VERSION)
        s = naq__fail(NAQ_ERR_CODEC, "rollup format %lld is not one this naq reads (1..%d)",
                      (long long)v, ROLLUP_VERSION);
    if (s == NAQ_OK) {
        uint64_t last = count_of(json_object_get(o, "last_seq"));
        if (last > r->last_seq)
            r->last_seq = last;
        /* A rollup written before first_ts existed: its events may start
         * anywhere in its hour, so assume the hour's start. */
        json_t *ft = json_object_get(o, "first_ts");
        double first = ft != NULL ? json_number_value(ft)
                                  : 3600.0 * (double)json_integer_value(json_object_get(o, "hour"));
        if (first > 0 && (r->first_ts == 0 || first < r->first_ts))
            r->first_ts = first;
        s = group_from_json(json_object_get(o, "total"), &r->total);
    }
    if (s == NAQ_OK)
        s = table_from_json(json_object_get(o, "queues"), &r->queues, NAQ__ROLLUP_MAX_QUEUES);
    if (s == NAQ_OK)
        s = table_from_json(json_object_get(o, "workers"), &r->workers, NAQ__ROLLUP_MAX_WORKERS);
    json_decref(o);
    return s;
}

/* ---- the bucket ---- */

/* The stats bucket of the client's event stream: NAQ_STATS_BUCKET for the
 * default stream, "naq_stats_<stream>" for any other, so two naq
 * installations on one server never share a cursor. */
static void stats_bucket(const naq_client *c, char *buf, size_t cap)
{
    if (strcmp(c->cfg.event_stream, "NAQ_JOB_EVENTS") == 0) {
        snprintf(buf, cap, "%s", NAQ_STATS_BUCKET);
        return;
    }
    int n = snprintf(buf, cap, "%s_%s", NAQ_STATS_BUCKET, c->cfg.event_stream);
    for (int i = (int)strlen(NAQ_STATS_BUCKET); i < n && (size_t)i < cap; i++) {
        char ch = buf[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            buf[i] = '_';
    }
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
        kvConfig kc;
        kvConfig_Init(&kc);
        kc.Bucket = bucket;
        kc.Description = "naq per-hour event rollups (docs/queries.md)";
        kc.History = 1;
        kc.StorageType = js_FileStorage;
        kc.Replicas = c->cfg.replicas;
        /* Hour keys outlive the events they count by a day, so a cursor
         * lost with an idle bucket can never re-fold an event into an
         * expired key. A stream without max age keeps its rollups too. */
        if (c->cfg.event_max_age_s > 0)
            kc.TTL = (c->cfg.event_max_age_s + 86400) * 1000000000LL; /* nanoseconds */
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
    *seq = count_of(json_object_get(o, "seq"));
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
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        naq__rollup_rec *v = realloc(m->recs, ncap * sizeof *v);
        if (v == NULL) {
            naq_event_clear(&e);
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory batching events");
        }
        m->recs = v;
        m->cap = ncap;
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
    int64_t first_at = 0;
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
                if ((s = stored_after(m->c, m->pos, &more)) != NAQ_OK || !more)
                    break;
            }
            continue;
        }
        if (s != NAQ_OK)
            break;
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
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus ns = js_GetStreamInfo(&si, c->ejs, c->cfg.event_stream, NULL, &jerr);
        if (ns != NATS_OK)
            s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                               "cannot read the state of event "
                               "stream %s",
                               c->cfg.event_stream);
        else
            target = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
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
        for (int64_t waited = 0; waited < RETRY_SLEEP_MS && !*stop; waited += 100)
            naq__sleep_ms(100);
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
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, c->ejs, c->cfg.event_stream, NULL, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot read the state of event stream %s", c->cfg.event_stream);
    uint64_t from = cursor;
    if (si->State.FirstSeq > 0 && from < si->State.FirstSeq - 1)
        from = si->State.FirstSeq - 1; /* older events are gone: nothing to fold there */
    if (si->State.Msgs > 0 && si->State.LastSeq > from)
        *lag = si->State.LastSeq - from;
    jsStreamInfo_Destroy(si);
    return NAQ_OK;
}
