/*
 * web_api.c - the read side of the JSON API (GET /api/...), which the
 * pages and scripts use alike; docs/web.md shows every answer.
 *
 * What each read costs is what makes the overview fast on a big event
 * stream: rates, latency and recent failures come from the in-memory live
 * window (web_live.c); totals and the hourly charts from the rollups (one
 * KV get per hour, closed hours cached for WEB_SERIES_TTL_S; for the
 * default 24 h read in the background, so a request copies them); depths from
 * one consumer list; workers from the registry. Nothing here scans the
 * event stream except a job's history (one literal read) and
 * /api/events, which is a bounded tail.
 *
 * Every string goes out as a JSON string (jansson escapes it); the page
 * puts it on screen with textContent, never as markup.
 */
#include "web_int.h"

#include "core/jsonw.h" /* naq__json_dumps: shortest reals */

#include "core/crypt.h" /* naq__crypt_show_args: a dead job's args, opened with the key */
#include "internal.h"   /* c->crypt */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 10000
#define NEXT_RUNS 5

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A number, or null for the "none" values the library uses (< 0). */
static json_t *num_or_null(double v)
{
    return v < 0 || isnan(v) ? json_null() : json_real(v);
}

/* Parses an integer query argument in [min, max]; 0 with a 400 in r. */
static int int_arg(const web_req *q, web_reply *r, const char *name, long long def, long long min,
                   long long max, long long *out)
{
    const char *v = web_arg(q, name);
    *out = def;
    if (v == NULL)
        return 1;
    long long n;
    if (!web_parse_int(v, min, max, &n)) {
        web_error(r, 400, "invalid_argument", "%s must be a whole number from %lld to %lld", name,
                  min, max);
        return 0;
    }
    *out = n;
    return 1;
}

/* Parses compact JSON text; a string holding it when it is not JSON. */
static json_t *json_or_text(const char *text)
{
    if (text == NULL)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v != NULL ? v : json_string(text);
}

json_t *web_event_json(const naq_event *e)
{
    char *text = NULL;
    size_t len = 0;
    if (naq_event_encode(e, &text, &len) != NAQ_OK)
        return NULL;
    json_t *o = json_loadb(text, len, 0, NULL);
    free(text);
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "nats_sequence", json_integer((json_int_t)e->nats_sequence));
    return o;
}

/* ---- /api/config ---- */

static void get_config(const web_req *q, web_reply *r)
{
    const naq_config *cfg = naq_client_config(q->w->c);
    r->json = json_pack("{s:i, s:b, s:s, s:s, s:i}", "api_version", NAQ_WEB_API_VERSION,
                        "allow_actions", q->w->allow_actions, "event_stream", cfg->event_stream,
                        "prefix", cfg->subject_prefix, "wire_version", NAQ_WIRE_VERSION);
}

/* ---- /api/overview ---- */

static json_t *depths_json(const naq_queue_depth *d, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *prio = json_array();
        for (int p = 0; p < 5; p++)
            json_array_append_new(prio, json_integer((json_int_t)d[i].by_priority[p]));
        json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:o}", "queue", d[i].queue, "pending",
                                           (json_int_t)d[i].pending, "in_flight",
                                           (json_int_t)d[i].in_flight, "by_priority", prio));
    }
    return a;
}

static json_t *live_json(naq_web *w, naq_live_snapshot *s)
{
    json_t *per_s = json_object();
    static const naq_event_type shown[] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_STARTED,
                                           NAQ_EVENT_COMPLETED, NAQ_EVENT_FAILED,
                                           NAQ_EVENT_RETRY_SCHEDULED};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        json_object_set_new(per_s, naq_event_type_name(shown[i]), json_real(s->per_s[shown[i]]));
    char err[520];
    pthread_mutex_lock(&w->lock);
    snprintf(err, sizeof err, "%s%s%s", w->live_error,
             w->live_error[0] && w->rollup_error[0] ? "; " : "", w->rollup_error);
    pthread_mutex_unlock(&w->lock);
    return json_pack("{s:f, s:o, s:{s:I, s:o, s:o, s:o}, s:i, s:i, s:o}", "events_per_s",
                     s->events_per_s, "per_s", per_s, "latency", "n", (json_int_t)s->latency_n,
                     "p50", num_or_null(s->p50), "p95", num_or_null(s->p95), "p99",
                     num_or_null(s->p99), "rate_window_s", 10, "latency_window_s", 60, "error",
                     web_str(err));
}

static json_t *failures_json(const naq_live_snapshot *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->nfailures; i++) {
        const naq_live_failure *f = &s->failures[i];
        json_array_append_new(a, json_pack("{s:f, s:s, s:i, s:s, s:s, s:o, s:o}", "timestamp",
                                           f->timestamp, "job_id", f->job_id, "attempt", f->attempt,
                                           "queue", f->queue, "worker_id", f->worker_id,
                                           "error_type", web_str(f->error_type), "error_message",
                                           web_str(f->error_message)));
    }
    return a;
}

static json_t *jobs_json(const naq_live_snapshot *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->njobs && i < 20; i++)
        json_array_append_new(a,
                              json_pack("{s:f, s:s, s:s, s:s}", "timestamp", s->jobs[i].timestamp,
                                        "job_id", s->jobs[i].job_id, "queue", s->jobs[i].queue,
                                        "state", naq_event_type_name(s->jobs[i].last_type)));
    return a;
}

static json_t *group_json(const naq_stats_group *g)
{
    json_t *errors = json_array();
    for (size_t i = 0; i < g->nerrors; i++)
        json_array_append_new(errors, json_pack("{s:s, s:I}", "error_type", g->errors[i].name,
                                                "count", (json_int_t)g->errors[i].count));
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:o, s:f, s:{s:I, s:o, s:o, s:o, s:o}, s:o}",
                     "events", (json_int_t)g->events, "runs", (json_int_t)g->runs, "completed",
                     (json_int_t)g->counts[NAQ_EVENT_COMPLETED], "failed",
                     (json_int_t)g->counts[NAQ_EVENT_FAILED], "final_failed",
                     (json_int_t)g->final_failed, "success_rate", num_or_null(g->success_rate),
                     "throughput_per_min", g->throughput_per_min, "duration_ms", "n",
                     (json_int_t)g->duration_n, "avg",
                     num_or_null(g->duration_n ? g->duration_avg : -1), "p50", num_or_null(g->p50),
                     "p95", num_or_null(g->p95), "p99", num_or_null(g->p99), "top_errors", errors);
}

/* One hour of the chart: from the cache when it is a closed hour read
 * less than WEB_SERIES_TTL_S ago, else one rollup read. */
static naq_status series_hour(naq_web *w, int64_t hour, int64_t current, double now, web_hour *out)
{
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->nseries; i++) {
        if (w->series[i].hour == hour && hour < current &&
            now - w->series[i].read_at < WEB_SERIES_TTL_S) {
            *out = w->series[i];
            pthread_mutex_unlock(&w->lock);
            return NAQ_OK;
        }
    }
    pthread_mutex_unlock(&w->lock);
    naq_stats_opts o;
    naq_stats_opts_init(&o);
    o.hours = 1;
    o.now = (double)hour * 3600.0 + 1.0;
    o.top_errors = 0;
    naq_stats st;
    naq_status s = naq_stats_query(w->c, &o, &st);
    if (s == NAQ_OK) {
        out->hour = hour;
        out->read_at = now;
        out->completed = st.total.counts[NAQ_EVENT_COMPLETED];
        out->failed = st.total.counts[NAQ_EVENT_FAILED];
        out->events = st.total.events;
    }
    naq_stats_free(&st);
    if (s != NAQ_OK || hour >= current)
        return s;
    pthread_mutex_lock(&w->lock);
    size_t slot = (size_t)(hour % WEB_SERIES_HOURS_MAX);
    w->series[slot] = *out;
    if (w->nseries < WEB_SERIES_HOURS_MAX)
        w->nseries = WEB_SERIES_HOURS_MAX; /* slots are by hour; empty ones never match */
    pthread_mutex_unlock(&w->lock);
    return NAQ_OK;
}

json_t *web_rollups_read(naq_web *w, int hours, double now, naq_status *status)
{
    naq_stats_opts so;
    naq_stats_opts_init(&so);
    so.hours = hours;
    so.now = now;
    so.top_errors = 5;
    naq_stats st;
    naq_status s = naq_stats_query(w->c, &so, &st);
    if (s != NAQ_OK) {
        naq_stats_free(&st);
        *status = s;
        return NULL;
    }
    json_t *stats = group_json(&st.total);
    json_object_set_new(stats, "hours", json_integer(hours));
    json_object_set_new(stats, "window_s", json_real(st.window_s));
    json_object_set_new(stats, "rollup_lag", json_integer((json_int_t)st.rollup_lag));
    json_object_set_new(stats, "as_of", json_real(now));
    naq_stats_free(&st);

    json_t *series = json_array();
    int64_t current = (int64_t)(now / 3600.0);
    for (int64_t h = current - hours + 1; h <= current && s == NAQ_OK; h++) {
        web_hour wh;
        if ((s = series_hour(w, h, current, now, &wh)) == NAQ_OK)
            json_array_append_new(
                series, json_pack("{s:I, s:I, s:I, s:I}", "hour", (json_int_t)(h * 3600),
                                  "completed", (json_int_t)wh.completed, "failed",
                                  (json_int_t)wh.failed, "events", (json_int_t)wh.events));
    }
    *status = s;
    if (s != NAQ_OK) {
        json_decref(stats);
        json_decref(series);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "stats", stats, "series", series);
}

/* The default overview's rollup figures: from the cache web_live.c keeps
 * fresh (WEB_ROLLUPS_REFRESH_S) while someone looks, else read now (and
 * cached). Another window is always read now. */
static json_t *rollups(naq_web *w, int hours, double now, naq_status *status)
{
    if (hours != WEB_ROLLUPS_HOURS)
        return web_rollups_read(w, hours, now, status);
    char *text = NULL;
    pthread_mutex_lock(&w->lock);
    w->rollups_wanted_at = now;
    if (w->rollups_cache != NULL && now - w->rollups_cached_at < WEB_ROLLUPS_STALE_S)
        text = strdup(w->rollups_cache);
    pthread_mutex_unlock(&w->lock);
    json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (v != NULL) {
        *status = NAQ_OK;
        return v;
    }
    v = web_rollups_read(w, hours, now, status);
    web_rollups_store(w, v, now);
    return v;
}

void web_rollups_store(naq_web *w, const json_t *v, double at)
{
    char *text = v != NULL ? naq__json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    if (text == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    if (at >= w->rollups_cached_at) {
        free(w->rollups_cache);
        w->rollups_cache = text;
        w->rollups_cached_at = at;
        text = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    free(text);
}

static void get_overview(const web_req *q, web_reply *r)
{
    naq_web *w = q->w;
    double t0 = mono_ms();
    long long hours;
    if (!int_arg(q, r, "hours", WEB_ROLLUPS_HOURS, 1, WEB_SERIES_HOURS_MAX, &hours))
        return;
    double now = wall_now();
    naq_status s = NAQ_OK;
    json_t *roll = rollups(w, (int)hours, now, &s);
    naq_queue_depth *d = NULL;
    size_t nd = 0;
    if (s == NAQ_OK)
        s = naq_queue_depths(w->c, &d, &nd);
    naq_worker_info_list wl = {0};
    if (s == NAQ_OK)
        s = naq_workers_list(w->c, &wl);
    naq_live_snapshot snap;
    memset(&snap, 0, sizeof snap);
    naq_live_query lq;
    naq_live_query_init(&lq);
    lq.now = now;
    if (s == NAQ_OK)
        s = naq_live_snapshot_take(w->live, &lq, &snap);
    if (s != NAQ_OK) {
        web_fail(r, s);
    } else {
        int busy = 0, idle = 0;
        for (size_t i = 0; i < wl.count; i++) {
            busy += wl.items[i].status == NAQ_WORKER_STATUS_BUSY;
            idle += wl.items[i].status == NAQ_WORKER_STATUS_IDLE;
        }
        r->json =
            json_pack("{s:f, s:o, s:O, s:O, s:o, s:{s:i, s:i, s:i}, s:o, s:o}", "now", now, "live",
                      live_json(w, &snap), "stats", json_object_get(roll, "stats"), "series",
                      json_object_get(roll, "series"), "queues", depths_json(d, nd), "workers",
                      "live", (int)wl.count, "busy", busy, "idle", idle, "recent_failures",
                      failures_json(&snap), "recent_jobs", jobs_json(&snap));
        if (r->json != NULL)
            json_object_set_new(r->json, "took_ms", json_real(mono_ms() - t0));
    }
    json_decref(roll);
    free(d);
    naq_worker_info_list_free(&wl);
    naq_live_snapshot_free(&snap);
}

/* ---- /api/queues ---- */

static void get_queues(const web_req *q, web_reply *r)
{
    naq_queue_depth *d = NULL;
    size_t nd = 0;
    naq_status s = naq_queue_depths(q->w->c, &d, &nd);
    naq_event_store_health h;
    memset(&h, 0, sizeof h);
    if (s == NAQ_OK)
        s = naq_events_health(q->w->c, &h);
    if (s != NAQ_OK) {
        web_fail(r, s);
    } else {
        json_t *consumers = json_array();
        for (size_t i = 0; i < h.ndurables; i++) {
            const naq_consumer_lag *l = &h.durables[i];
            json_array_append_new(
                consumers,
                json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "name", l->name, "num_pending",
                          (json_int_t)l->num_pending, "ack_pending", (json_int_t)l->ack_pending,
                          "lag", (json_int_t)l->lag, "redelivered", (json_int_t)l->redelivered,
                          "waiting", (json_int_t)l->waiting, "delivered_seq",
                          (json_int_t)l->delivered_seq));
        }
        r->json = json_pack(
            "{s:o, s:o, s:{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "queues", depths_json(d, nd),
            "event_consumers", consumers, "event_stream", "name", h.stream, "messages",
            (json_int_t)h.msgs, "bytes", (json_int_t)h.bytes, "first_seq", (json_int_t)h.first_seq,
            "last_seq", (json_int_t)h.last_seq, "consumers", (json_int_t)h.consumers,
            "rollup_cursor", (json_int_t)h.rollup_cursor, "rollup_lag", (json_int_t)h.rollup_lag);
    }
    free(d);
    naq_event_store_health_free(&h);
}

/* ---- /api/jobs/<id> ---- */

/* A dead job's JSON with its args shown (opened with the key, or
 * "<encrypted>" without it). New reference, or NULL. */
static json_t *dead_job_json(naq_client *c, const naq_dlq_entry *e)
{
    json_t *job = e->job_json ? json_loads(e->job_json, 0, NULL) : NULL;
    if (job != NULL)
        naq__crypt_show_args(c->crypt, job);
    return job;
}

static void get_job(const web_req *q, web_reply *r, const char *id)
{
    naq_client *c = q->w->c;
    naq_event_list l = {0};
    naq_status s = naq_job_history(c, id, &l);
    if (s != NAQ_OK) {
        naq_event_list_free(&l);
        web_fail(r, s);
        return;
    }
    json_t *events = json_array();
    for (size_t i = 0; i < l.count; i++) {
        json_t *e = web_event_json(&l.items[i]);
        if (e == NULL)
            continue;
        double gap = i > 0 ? (l.items[i].timestamp - l.items[i - 1].timestamp) * 1000.0 : 0;
        json_object_set_new(e, "gap_ms", json_real(gap));
        json_object_set_new(e, "since_first_ms",
                            json_real((l.items[i].timestamp - l.items[0].timestamp) * 1000.0));
        json_array_append_new(events, e);
    }
    const naq_event *last = &l.items[l.count - 1];
    char *result_text = NULL;
    json_t *result = json_null();
    if (naq_job_result(c, id, 0, &result_text) == NAQ_OK)
        result = json_or_text(result_text);
    free(result_text);
    /* Args live with the job while it waits or runs (its queue message)
     * and in its dead-letter entry after it died; the entry is what can be
     * read by id, so it goes first. */
    naq_dlq_entry de;
    memset(&de, 0, sizeof de);
    json_t *args = json_null(), *dead = json_null();
    const char *source = NULL, *missing = NULL;
    if (naq_dlq_show(c, 0, id, &de) == NAQ_OK) {
        json_t *job = dead_job_json(c, &de);
        json_t *a = job != NULL ? json_object_get(job, "args") : NULL;
        if (a != NULL) {
            json_decref(args);
            args = json_incref(a);
            source = "dead_letter";
        }
        json_decref(job);
        json_decref(dead);
        dead = json_pack("{s:I, s:o, s:o, s:i, s:f}", "seq", (json_int_t)de.seq, "error_type",
                         web_str(de.error_type), "error_message", web_str(de.error_message),
                         "attempts", de.attempts, "failed_at", de.failed_at);
    }
    naq_dlq_entry_clear(&de);
    if (source == NULL) {
        json_t *job = web_queued_job(c, id, &l, &missing);
        json_t *a = job != NULL ? json_object_get(job, "args") : NULL;
        if (a != NULL) {
            json_decref(args);
            args = json_incref(a);
            source = "queue";
            missing = NULL;
        }
        json_decref(job);
    }
    r->json = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s?, s:s?}", "job_id", id, "state",
                        naq_event_type_name(last->type), "queue", last->queue_name, "events",
                        events, "result", result, "args", args, "dead_letter", dead, "args_source",
                        source, "args_missing", missing);
    naq_event_list_free(&l);
}

/* ---- /api/workers ---- */

static json_t *workers_json(const naq_worker_info_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->count; i++) {
        char *text = NULL;
        size_t len = 0;
        if (naq_worker_info_encode(&l->items[i], &text, &len) != NAQ_OK)
            continue;
        json_t *o = json_loadb(text, len, 0, NULL);
        free(text);
        if (o != NULL)
            json_array_append_new(a, o);
    }
    return a;
}

static void get_workers(const web_req *q, web_reply *r)
{
    long long gone_h;
    if (!int_arg(q, r, "gone_hours", 0, 0, 24 * 7, &gone_h))
        return;
    naq_worker_info_list live = {0}, gone = {0};
    naq_status s = naq_workers_list(q->w->c, &live);
    if (s == NAQ_OK && gone_h > 0)
        s = naq_workers_seen(q->w->c, (int64_t)((wall_now() - (double)gone_h * 3600.0) * 1000.0),
                             &gone);
    if (s != NAQ_OK)
        web_fail(r, s);
    else
        r->json = json_pack("{s:f, s:o, s:o}", "now", wall_now(), "workers", workers_json(&live),
                            "gone", workers_json(&gone));
    naq_worker_info_list_free(&live);
    naq_worker_info_list_free(&gone);
}

/* ---- /api/dlq ---- */

static json_t *entry_json(const naq_dlq_entry *e)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:i, s:f}", "seq", (json_int_t)e->seq,
                     "job_id", e->job_id, "queue", e->queue, "function", e->function, "error_type",
                     web_str(e->error_type), "error_message", web_str(e->error_message), "attempts",
                     e->attempts, "failed_at", e->failed_at);
}

static void get_dlq(const web_req *q, web_reply *r)
{
    long long limit;
    if (!int_arg(q, r, "limit", LIST_LIMIT_DEFAULT, 1, LIST_LIMIT_MAX, &limit))
        return;
    naq_dlq_filter f;
    memset(&f, 0, sizeof f);
    f.queue = web_arg(q, "queue");
    f.error_type = web_arg(q, "error_type");
    f.job_id = web_arg(q, "job");
    naq_dlq_entry_list l = {0};
    naq_status s = naq_dlq_list(q->w->c, &f, &l);
    if (s != NAQ_OK) {
        web_fail(r, s);
    } else {
        /* The newest first, as a person looks for what just died. */
        json_t *a = json_array();
        for (size_t i = l.count; i > 0 && json_array_size(a) < (size_t)limit; i--)
            json_array_append_new(a, entry_json(&l.items[i - 1]));
        r->json = json_pack("{s:o, s:I, s:b}", "entries", a, "total", (json_int_t)l.count, "more",
                            l.count > (size_t)limit);
    }
    naq_dlq_entry_list_free(&l);
}

static void get_dlq_entry(const web_req *q, web_reply *r, const char *seq_text)
{
    long long seq;
    if (!web_parse_int(seq_text, 1, INT64_MAX, &seq)) {
        web_error(r, 400, "invalid_argument",
                  "a dead letter is named by its sequence number, "
                  "not '%s'",
                  seq_text);
        return;
    }
    naq_dlq_entry e;
    memset(&e, 0, sizeof e);
    naq_status s = naq_dlq_show(q->w->c, (uint64_t)seq, NULL, &e);
    if (s != NAQ_OK) {
        web_fail(r, s);
    } else {
        r->json = entry_json(&e);
        json_t *job = dead_job_json(q->w->c, &e);
        json_object_set_new(r->json, "job", job ? job : json_null());
    }
    naq_dlq_entry_clear(&e);
}

/* ---- /api/schedules ---- */

static json_t *schedule_json(const naq_schedule *sc)
{
    char *text = NULL;
    size_t len = 0;
    if (naq_schedule_encode(sc, &text, &len) != NAQ_OK)
        return NULL;
    json_t *o = json_loadb(text, len, 0, NULL);
    free(text);
    if (o == NULL)
        return NULL;
    /* The next due times by the schedule's timing alone, from its next
     * run (what the leader will fire first). */
    json_t *next = json_array();
    int64_t t = sc->next_run_ms;
    int64_t left = sc->repeat < 0 ? NEXT_RUNS : sc->repeat;
    for (int i = 0; i < NEXT_RUNS && t > 0 && left > 0 && !sc->paused; i++, left--) {
        json_array_append_new(next, json_real((double)t / 1000.0));
        int64_t after = 0;
        if (naq_schedule_next(sc, t, &after) != NAQ_OK)
            break;
        t = after;
    }
    json_object_set_new(o, "next_runs", next);
    return o;
}

static void get_schedules(const web_req *q, web_reply *r)
{
    naq_schedule_list l = {0};
    naq_status s = naq_schedules_list(q->w->c, &l);
    if (s != NAQ_OK) {
        web_fail(r, s);
    } else {
        double now = wall_now();
        json_t *a = json_array();
        for (size_t i = 0; i < l.count; i++) {
            json_t *o = schedule_json(&l.items[i]);
            if (o != NULL)
                json_array_append_new(a, o);
        }
        r->json = json_pack("{s:f, s:o}", "now", now, "schedules", a);
    }
    naq_schedule_list_free(&l);
}

/* ---- /api/events: the last events matching the filters ---- */

typedef struct {
    json_t *a;
} collect_ctx;

static int collect(const naq_event *e, void *user)
{
    json_t *o = web_event_json(e);
    if (o != NULL)
        json_array_append_new(((collect_ctx *)user)->a, o);
    return 0;
}

static void get_events(const web_req *q, web_reply *r)
{
    long long limit;
    if (!int_arg(q, r, "limit", 50, 1, LIST_LIMIT_MAX, &limit))
        return;
    naq_stream_opts so;
    memset(&so, 0, sizeof so);
    so.filter.job_id = web_arg(q, "job");
    so.filter.type = web_arg(q, "type");
    so.filter.queue = web_arg(q, "queue");
    so.filter.worker = web_arg(q, "worker");
    so.tail = (int)limit;
    so.stop = &q->w->stopping;
    collect_ctx x = {json_array()};
    naq_status s = naq_events_stream(q->w->c, &so, collect, &x);
    if (s != NAQ_OK) {
        json_decref(x.a);
        web_fail(r, s);
        return;
    }
    r->json = json_pack("{s:o}", "events", x.a);
}

void web_api_get(const web_req *q, web_reply *r)
{
    switch (q->route.kind) {
    case WEB_ROUTE_CONFIG: get_config(q, r); break;
    case WEB_ROUTE_OVERVIEW: get_overview(q, r); break;
    case WEB_ROUTE_QUEUES: get_queues(q, r); break;
    case WEB_ROUTE_JOB: get_job(q, r, q->route.id); break;
    case WEB_ROUTE_WORKERS: get_workers(q, r); break;
    case WEB_ROUTE_DLQ: get_dlq(q, r); break;
    case WEB_ROUTE_DLQ_ENTRY: get_dlq_entry(q, r, q->route.id); break;
    case WEB_ROUTE_SCHEDULES: get_schedules(q, r); break;
    case WEB_ROUTE_EVENTS: get_events(q, r); break;
    default:
        web_error(r, 404, "not_found", "no such API endpoint: %s (docs/web.md lists them)",
                  q->path);
        break;
    }
    if (r->json == NULL)
        web_error(r, 503, "unavailable", "out of memory building the answer");
}
