/*
 * health.c - naq_health(): connection state and the size of each stream.
 *
 * Read-only on purpose: a health probe that created missing streams would
 * hide the very fault it is there to report. Stream info is one JetStream
 * API request per stream, cheap enough to poll.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_up(natsConnection *nc)
{
    return nc != NULL && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
}

static void stream_health(jsCtx *js, const char *name, naq_stream_health *out)
{
    snprintf(out->name, sizeof out->name, "%s", name);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, js, name, NULL, &jerr);
    if (ns == NATS_OK && si != NULL) {
        out->ok = 1;
        out->messages = si->State.Msgs;
        out->bytes = si->State.Bytes;
        out->first_seq = si->State.FirstSeq;
        out->last_seq = si->State.LastSeq;
        out->consumers = si->State.Consumers;
    } else if (naq__stream_missing(ns, jerr)) {
        snprintf(out->error, sizeof out->error,
                 "stream %s does not exist (any naq command that connects creates it)", name);
    } else if (ns == NATS_NO_RESPONDERS || ns == NATS_TIMEOUT) {
        snprintf(out->error, sizeof out->error,
                 "no JetStream answer for stream %s (is JetStream enabled on the server?)", name);
    } else {
        const char *why = nats_GetLastError(NULL);
        snprintf(out->error, sizeof out->error, "stream %s: %s", name,
                 why != NULL && why[0] != '\0' ? why : natsStatus_GetText(ns));
    }
    jsStreamInfo_Destroy(si);
}

naq_status naq_health(naq_client *c, naq_health_report *out)
{
    if (c == NULL || out == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_health needs a client and a report");
    memset(out, 0, sizeof *out);
    out->rtt_us = -1;
    out->connected = is_up(c->nc) && is_up(c->enc);
    char url[sizeof out->url];
    if (natsConnection_GetConnectedUrl(c->nc, url, sizeof url) != NATS_OK || url[0] == '\0')
        snprintf(url, sizeof url, "%s", c->cfg.url);
    naq_url_redact(url, out->url, sizeof out->url); /* a report is printed: no secrets */
    if (natsConnection_GetConnectedUrl(c->enc, url, sizeof url) != NATS_OK || url[0] == '\0')
        snprintf(url, sizeof url, "%s", c->cfg.event_url[0] ? c->cfg.event_url : c->cfg.url);
    naq_url_redact(url, out->event_url, sizeof out->event_url);
    int64_t rtt_ns = 0;
    if (out->connected && natsConnection_GetRTT(c->nc, &rtt_ns) == NATS_OK)
        out->rtt_us = rtt_ns / 1000;

    stream_health(c->ejs, c->cfg.event_stream, &out->streams[NAQ_HEALTH_EVENTS]);
    stream_health(c->js, c->cfg.job_stream, &out->streams[NAQ_HEALTH_JOBS]);
    stream_health(c->js, c->cfg.dlq_stream, &out->streams[NAQ_HEALTH_DLQ]);

    out->healthy = out->connected;
    for (int i = 0; i < NAQ_HEALTH_STREAMS; i++)
        out->healthy = out->healthy && out->streams[i].ok;
    return NAQ_OK;
}

/* ---- checks ---- */

const char *naq_health_level_name(naq_health_level l)
{
    switch (l) {
    case NAQ_HEALTH_OK: return "ok";
    case NAQ_HEALTH_WARNING: return "warning";
    case NAQ_HEALTH_CRITICAL: return "critical";
    }
    return "unknown";
}

static const struct {
    const char *flag, *env, *help;
    uint64_t def;
} thresholds[NAQ_HEALTH_THRESHOLD_COUNT] = {
#define NAQ_HEALTH_THRESHOLD_ROW(suffix, flag, env, def, help) {flag, env, help, def},
    NAQ_HEALTH_THRESHOLD_TABLE(NAQ_HEALTH_THRESHOLD_ROW)
#undef NAQ_HEALTH_THRESHOLD_ROW
};

void naq_health_thresholds_init(naq_health_thresholds *t)
{
    for (int i = 0; i < NAQ_HEALTH_THRESHOLD_COUNT; i++)
        t->v[i] = thresholds[i].def;
}

naq_status naq_health_thresholds_from_env(naq_health_thresholds *t)
{
    for (int i = 0; i < NAQ_HEALTH_THRESHOLD_COUNT; i++) {
        const char *v = getenv(thresholds[i].env);
        if (v == NULL || v[0] == '\0')
            continue;
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno != 0 || *end != '\0' || v[0] == '-')
            return naq__fail(NAQ_ERR_INVALID_ARG, "%s='%s' is not a whole number >= 0",
                             thresholds[i].env, v);
        t->v[i] = n;
    }
    return NAQ_OK;
}

const char *naq_health_threshold_flag(naq_health_threshold k)
{
    return (int)k >= 0 && k < NAQ_HEALTH_THRESHOLD_COUNT ? thresholds[k].flag : NULL;
}

const char *naq_health_threshold_env(naq_health_threshold k)
{
    return (int)k >= 0 && k < NAQ_HEALTH_THRESHOLD_COUNT ? thresholds[k].env : NULL;
}

const char *naq_health_threshold_help(naq_health_threshold k)
{
    return (int)k >= 0 && k < NAQ_HEALTH_THRESHOLD_COUNT ? thresholds[k].help : NULL;
}

void naq_health_checks_free(naq_health_checks *c)
{
    if (c == NULL)
        return;
    free(c->items);
    memset(c, 0, sizeof *c);
}

/* Appends an item; NULL when out of memory. */
static naq_health_item *add_item(naq_health_checks *c, size_t *cap, const char *check,
                                 const char *subject, double value)
{
    if (c->n == *cap && naq__array_grow(&c->items, cap, sizeof *c->items, 32) == NULL)
        return NULL;
    naq_health_item *it = &c->items[c->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->check, sizeof it->check, "%s", check);
    /* A longer subject (a consumer group's name) is cut to fit: say so to
     * gcc, whose Release build warns about the truncation otherwise. */
    snprintf(it->subject, sizeof it->subject, "%.*s", (int)sizeof it->subject - 1,
             subject ? subject : "");
    it->value = value;
    return it;
}

static naq_health_level above(double v, uint64_t warning, uint64_t critical)
{
    return v > (double)critical  ? NAQ_HEALTH_CRITICAL
           : v > (double)warning ? NAQ_HEALTH_WARNING
                                 : NAQ_HEALTH_OK;
}

static const naq_ops_count *find_count(const naq_ops_count *v, size_t n, const char *name)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* One item per queue (or group) with dead letters, judged on size and on
 * growth since the previous check; one "none" item when there are none. */
static naq_status dead_letters(naq_health_checks *c, size_t *cap, const char *check,
                               const naq_ops_count *now, size_t n, const naq_ops_count *before,
                               size_t nbefore, int known, const naq_health_thresholds *t)
{
    const char *what = strcmp(check, "dlq") == 0 ? "dead jobs" : "dead events";
    if (n == 0) {
        naq_health_item *it = add_item(c, cap, check, "", 0);
        if (it == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for health checks");
        it->has_growth = known;
        snprintf(it->message, sizeof it->message, "no %s", what);
        return NAQ_OK;
    }
    for (size_t i = 0; i < n; i++) {
        naq_health_item *it = add_item(c, cap, check, now[i].name, (double)now[i].count);
        if (it == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for health checks");
        it->level = above(it->value, t->v[NAQ_HEALTH_DLQ_WARNING], t->v[NAQ_HEALTH_DLQ_CRITICAL]);
        int len = snprintf(it->message, sizeof it->message, "%llu %s",
                           (unsigned long long)now[i].count, what);
        if (known) {
            const naq_ops_count *b = find_count(before, nbefore, now[i].name);
            it->has_growth = 1;
            it->growth = (int64_t)now[i].count - (int64_t)(b ? b->count : 0);
            if (it->growth > 0 && (uint64_t)it->growth > t->v[NAQ_HEALTH_DLQ_GROWTH] &&
                it->level < NAQ_HEALTH_WARNING)
                it->level = NAQ_HEALTH_WARNING;
            snprintf(it->message + len, sizeof it->message - (size_t)len,
                     ", %+lld since the last check", (long long)it->growth);
        }
    }
    return NAQ_OK;
}

static naq_status stream_items(naq_health_checks *c, size_t *cap, const naq_health_report *r,
                               const naq_ops *ops, const naq_health_thresholds *t)
{
    for (int i = 0; i < NAQ_OPS_STREAMS; i++) {
        const naq_ops_stream *st = &ops->streams[i];
        /* The event DLQ is made at its first dead event: absent is fine. */
        if (i == NAQ_OPS_EVENT_DLQ && !st->present && st->error[0] == '\0')
            continue;
        naq_health_item *it =
            add_item(c, cap, "stream", st->name, st->use >= 0 ? st->use * 100.0 : 0);
        if (it == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for health checks");
        if (!st->present) {
            it->level = NAQ_HEALTH_CRITICAL;
            const char *why = i < NAQ_HEALTH_STREAMS && r->streams[i].error[0] != '\0'
                                  ? r->streams[i].error
                                  : st->error;
            snprintf(it->message, sizeof it->message, "%s",
                     why[0] != '\0' ? why : "stream does not exist");
        } else if (st->use < 0) {
            snprintf(it->message, sizeof it->message, "%llu messages, %llu bytes, no limit",
                     (unsigned long long)st->msgs, (unsigned long long)st->bytes);
        } else {
            it->level =
                above(it->value, t->v[NAQ_HEALTH_STREAM_WARNING], t->v[NAQ_HEALTH_STREAM_CRITICAL]);
            snprintf(it->message, sizeof it->message,
                     "%.1f%% of its limit (%llu messages, %llu bytes)", it->value,
                     (unsigned long long)st->msgs, (unsigned long long)st->bytes);
        }
    }
    return NAQ_OK;
}

static naq_status lag_items(naq_health_checks *c, size_t *cap, const naq_ops *ops,
                            const naq_health_thresholds *t, uint64_t *waiting)
{
    for (size_t i = 0; i < ops->nconsumers; i++) {
        const naq_ops_consumer *k = &ops->consumers[i];
        naq_health_item *it = add_item(c, cap, "lag", k->name, (double)k->lag);
        if (it == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for health checks");
        if (k->kind == NAQ_OPS_CONSUMER_QUEUE)
            *waiting += k->pending;
        it->level = above(it->value, t->v[NAQ_HEALTH_LAG_WARNING], t->v[NAQ_HEALTH_LAG_CRITICAL]);
        snprintf(it->message, sizeof it->message, "%s %s: %llu pending, %lld unacknowledged%s",
                 k->kind == NAQ_OPS_CONSUMER_QUEUE ? "queue" : "group",
                 k->kind == NAQ_OPS_CONSUMER_QUEUE ? k->queue : k->name,
                 (unsigned long long)k->pending, (long long)k->ack_pending,
                 k->exists ? "" : " (no worker has served this queue yet)");
    }
    return NAQ_OK;
}

static naq_status other_items(naq_health_checks *c, size_t *cap, const naq_ops *ops,
                              const naq_health_thresholds *t, uint64_t waiting)
{
    naq_health_item *it = add_item(c, cap, "rollup", "", (double)ops->rollup_lag);
    if (it == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for health checks");
    it->level = above(it->value, t->v[NAQ_HEALTH_ROLLUP_WARNING], t->v[NAQ_HEALTH_ROLLUP_CRITICAL]);
    snprintf(it->message, sizeof it->message,
             "%llu events not yet in the stats rollups (a scheduler or 'naq events rollup' "
             "folds them)",
             (unsigned long long)ops->rollup_lag);

    if ((it = add_item(c, cap, "workers", "", (double)ops->live_workers)) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for health checks");
    /* Too few workers: critical while jobs wait, a warning once queues
     * exist (workers served them and are gone); a fresh installation
     * with no queue yet has nothing to be short of. */
    size_t queues = 0;
    for (size_t i = 0; i < ops->nconsumers; i++)
        queues += ops->consumers[i].kind == NAQ_OPS_CONSUMER_QUEUE;
    if (ops->live_workers < t->v[NAQ_HEALTH_MIN_WORKERS])
        it->level = waiting > 0  ? NAQ_HEALTH_CRITICAL
                    : queues > 0 ? NAQ_HEALTH_WARNING
                                 : NAQ_HEALTH_OK;
    snprintf(it->message, sizeof it->message, "%zu live (%zu busy, %zu idle); %llu jobs waiting",
             ops->live_workers, ops->workers_by_status[NAQ_WORKER_STATUS_BUSY],
             ops->workers_by_status[NAQ_WORKER_STATUS_IDLE], (unsigned long long)waiting);

    if ((it = add_item(c, cap, "spool", "", (double)ops->spool_pending)) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for health checks");
    it->level = above(it->value, t->v[NAQ_HEALTH_SPOOL_WARNING], t->v[NAQ_HEALTH_SPOOL_CRITICAL]);
    snprintf(it->message, sizeof it->message,
             "%llu events waiting in %zu local spool file%s (re-sent when the server answers)",
             (unsigned long long)ops->spool_pending, ops->spool_files,
             ops->spool_files == 1 ? "" : "s");
    return NAQ_OK;
}

naq_status naq_health_evaluate(const naq_health_report *r, const naq_ops *ops,
                               const naq_health_thresholds *t, const naq_health_previous *prev,
                               naq_health_checks *out)
{
    memset(out, 0, sizeof *out);
    if (r == NULL || ops == NULL || t == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_health_evaluate needs a report, figures and "
                                              "thresholds");
    naq_health_previous none;
    memset(&none, 0, sizeof none);
    if (prev == NULL)
        prev = &none;
    size_t cap = 0;
    uint64_t waiting = 0;
    naq_status s = NAQ_OK;
    naq_health_item *it = add_item(out, &cap, "connection", r->url, r->connected);
    if (it == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for health checks");
    else {
        it->level = r->connected ? NAQ_HEALTH_OK : NAQ_HEALTH_CRITICAL;
        snprintf(it->message, sizeof it->message, "%s",
                 r->connected ? "connected" : "not connected");
    }
    if (s == NAQ_OK)
        s = stream_items(out, &cap, r, ops, t);
    if (s == NAQ_OK)
        s = lag_items(out, &cap, ops, t, &waiting);
    if (s == NAQ_OK)
        s = dead_letters(out, &cap, "dlq", ops->dlq, ops->ndlq, prev->dlq, prev->ndlq, prev->known,
                         t);
    if (s == NAQ_OK)
        s = dead_letters(out, &cap, "event_dlq", ops->event_dlq, ops->nevent_dlq, prev->event_dlq,
                         prev->nevent_dlq, prev->known, t);
    if (s == NAQ_OK)
        s = other_items(out, &cap, ops, t, waiting);
    for (size_t i = 0; s == NAQ_OK && i < out->n; i++)
        if (out->items[i].level > out->level)
            out->level = out->items[i].level;
    if (s != NAQ_OK)
        naq_health_checks_free(out);
    return s;
}
