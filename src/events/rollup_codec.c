/*
 * rollup_codec.c - what one hour's rollup holds and how it is written
 * (docs/queries.md, "Rollup format"): counts per event type, duration
 * histograms and error types, for the total, each queue and each worker.
 *
 * Durations go into a log-scale histogram (the DDSketch mapping), so any
 * quantile over any window is read back within NAQ_STATS_PRECISION, and
 * hours add up by adding counts. Queue, worker and error tables are
 * bounded (NAQ__ROLLUP_MAX_*), the excess counted under "(other)", so a
 * flood of names cannot grow a key past what KV stores. The maintainer
 * that keeps rollups current is rollup.c; stats.c reads them.
 */
#include "events.h"
#include "core/jsonw.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROLLUP_VERSION 1

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
    return naq__fnv1a(s, strlen(s), NAQ__FNV_OFFSET);
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
    if (t->n == t->cap && naq__array_grow(&t->v, &t->cap, sizeof *t->v, 8) == NULL) {
        naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a rollup table");
        return NULL;
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
    *json = o ? naq__json_dumps(o, NAQ__JSON_FLAGS) : NULL;
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
