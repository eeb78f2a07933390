/*
 * web_int.h - what the files of the web server share: the server struct,
 * the request passed to each handler, and the JSON reply helpers.
 *
 * A handler builds its whole answer as a jansson tree and hands it back
 * through a web_reply; web_server.c turns that into the HTTP response
 * (status, headers, body), so security headers and error shapes are set in
 * one place. Handlers run on libmicrohttpd's connection threads, several at
 * once: everything they touch is either the thread-safe client or guarded
 * by w->lock.
 */
#ifndef NAQ_WEB_INT_H
#define NAQ_WEB_INT_H

#include "web.h"
#include "web_parse.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "naq/stats.h"

/* Version of the JSON API (docs/web.md). When an answer changes in a way
 * a script would notice (a field removed or retyped): bump it and say what
 * changed in docs/web.md. Added fields do not bump it. */
#define NAQ_WEB_API_VERSION 1

/* The overview's hourly series: closed hours do not change once folded,
 * so they are read once and kept this long (a rollup that was behind is
 * re-read after it). */
#define WEB_SERIES_TTL_S 60.0
#define WEB_SERIES_HOURS_MAX 168

/* The overview's rollup figures for its default window (24 h) are read in
 * the background from the start, every WEB_ROLLUPS_REFRESH_S while someone
 * looked in the last WEB_ROLLUPS_IDLE_S and every WEB_ROLLUPS_IDLE_REFRESH_S
 * otherwise, so a request only copies them: a 24 h read decodes ~750 KB
 * of rollups (p50 20-25 ms, p99 over 100 ms on a busy 2-core machine,
 * docs/queries.md), which alone would eat the overview's 50 ms. A cache
 * older than WEB_ROLLUPS_STALE_S (the background read kept failing) is
 * read again on the request. Other windows are always read on the request. */
#define WEB_ROLLUPS_HOURS 24
#define WEB_ROLLUPS_REFRESH_S 5.0
#define WEB_ROLLUPS_IDLE_S 60.0
#define WEB_ROLLUPS_IDLE_REFRESH_S 60.0
#define WEB_ROLLUPS_STALE_S 90.0

typedef struct {
    int64_t hour; /* unix hour */
    double read_at;
    uint64_t completed, failed, events;
} web_hour;

struct naq_web {
    naq_client *c;
    struct MHD_Daemon *d;
    int port;
    int loopback; /* bound to a loopback address: Host must name loopback too */
    int allow_actions;
    char *token; /* heap; NULL without actions */
    volatile int stopping;
    /* The live window behind rates, latency and recent failures. */
    naq_live *live;
    pthread_t live_thread;
    int have_live_thread;
    int live_tail;
    int rollup;
    pthread_t rollup_thread;
    int have_rollup_thread;
    pthread_mutex_t lock;   /* guards what follows */
    char live_error[256];   /* the live feed's last error, "" when it runs */
    char rollup_error[256]; /* why the rollup maintainer stopped, "" when it runs */
    web_hour series[WEB_SERIES_HOURS_MAX];
    size_t nseries;
    char *rollups_cache;      /* heap: {"stats", "series"} of the default window, JSON */
    double rollups_cached_at; /* when it was read (wall clock), 0 = never */
    double rollups_wanted_at; /* when an overview last asked for it */
    pthread_t rollups_thread;
    int have_rollups_thread;
    /* Open live feeds (SSE), for the figures and the shutdown. */
    int sse_open;
    pthread_cond_t sse_gone;
};

/* One request as handlers see it. */
typedef struct {
    naq_web *w;
    struct MHD_Connection *conn;
    const char *method;
    const char *path; /* URL path without the query */
    web_route route;  /* what path names (web_parse.c) */
    const char *body; /* POST body (NUL-terminated), "" when none */
    size_t body_len;
} web_req;

/* A handler's answer: a JSON document with a status code. */
typedef struct {
    unsigned code;
    json_t *json; /* owned; web_server.c sends and frees it */
} web_reply;

/* A JSON string of text ("" for NULL); text that is not UTF-8 keeps its
 * ASCII and shows '?' for the rest. Never NULL unless memory runs out. */
json_t *web_str(const char *text);
/* {"error": message, "status": name}: message printf-formatted. */
void web_error(web_reply *r, unsigned code, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The reply for a failed library call: 400 for NAQ_ERR_INVALID_ARG, 404
 * for NAQ_ERR_NOT_FOUND, 409 for NAQ_ERR_EXISTS, 503 for the rest, with
 * naq_last_error() as the message. */
void web_fail(web_reply *r, naq_status s);
/* Content-Type, the Content-Security-Policy and the other security
 * headers every response carries; cache = 0 adds no-store. */
void web_add_headers(struct MHD_Response *r, const char *type, int cache);
/* A query-string argument, or NULL when absent or empty. */
const char *web_arg(const web_req *q, const char *name);

/* ---- web_api.c: GET /api/... ---- */

/* Answers a GET of an API route (q->route), 404 for one it does not know. */
void web_api_get(const web_req *q, web_reply *r);
/* An event as JSON: its wire fields plus nats_sequence and, where it
 * applies, "gap_ms" is added by the caller. New reference. */
json_t *web_event_json(const naq_event *e);

/* {"stats", "series"} of the rollups over `hours` as of now (new
 * reference), or NULL with *status set. */
json_t *web_rollups_read(naq_web *w, int hours, double now, naq_status *status);
/* Keeps v (the default window's figures, read at `at`) as the cache,
 * unless a newer one is there. */
void web_rollups_store(naq_web *w, const json_t *v, double at);

/* ---- web_job.c: a job's args from its queue ---- */

/* The most messages of one queue subject read to find a job (web_job.c
 * says why a bound). */
#define WEB_JOB_SCAN_MAX 1000

/* The message of job_id (history h) while it waits or runs in its queue,
 * as JSON with its args shown (opened with the key, or "<encrypted>"
 * without it); a new reference. NULL when it is not there, with *missing
 * saying why (static text, docs/web.md): "not_enqueued" (the history has
 * no enqueue: delayed or waiting for dependencies), "not_in_queue" (a
 * worker acknowledged it: completed, dead-lettered or cancelled),
 * "scan_limit" (over WEB_JOB_SCAN_MAX jobs ahead of it), "unreadable",
 * "unavailable" (the server did not answer). */
json_t *web_queued_job(naq_client *c, const char *job_id, const naq_event_list *h,
                       const char **missing);

/* ---- web_actions.c: POST /api/... ---- */

/* Answers an authorised POST (security checked by the caller). */
void web_action(const web_req *q, web_reply *r);

/* ---- web_sse.c: GET /api/events/stream ---- */

/* Queues the live feed's response on q->conn; MHD_YES / MHD_NO as
 * libmicrohttpd wants. Errors in the arguments answer JSON 400 through
 * *r instead (returns -1 then). */
int web_sse_start(const web_req *q, web_reply *r);

/* ---- web_live.c: the live window and the rollup maintainer ---- */

naq_status web_live_start(naq_web *w);
void web_live_stop(naq_web *w);

/* ---- assets (generated at build time from cli/web/assets/) ---- */

typedef struct {
    const char *path; /* "/index.html" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} web_asset;

extern const web_asset naq_web_assets[];
extern const size_t naq_web_nassets;

#endif
