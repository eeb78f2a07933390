/*
 * web_parse.h - what `naq web` reads from a request, parsed without a
 * server: the route a method and URL path name, whole-number query
 * arguments, the Host and Origin checks and the JSON body of a
 * dead-letter action. Pure functions (no libmicrohttpd, no connection),
 * so fuzz/fuzz_web.c runs them on any input.
 */
#ifndef NAQ_WEB_PARSE_H
#define NAQ_WEB_PARSE_H

#include <jansson.h>
#include <stddef.h>

#include "naq/naq.h"

typedef enum {
    WEB_ROUTE_NONE = 0,       /* under /api/ but no such endpoint: 404 */
    WEB_ROUTE_ASSET,          /* a page or asset (not under /api/) */
    WEB_ROUTE_CONFIG,         /* GET /api/config */
    WEB_ROUTE_OVERVIEW,       /* GET /api/overview */
    WEB_ROUTE_QUEUES,         /* GET /api/queues */
    WEB_ROUTE_JOB,            /* GET /api/jobs/<id> */
    WEB_ROUTE_WORKERS,        /* GET /api/workers */
    WEB_ROUTE_DLQ,            /* GET /api/dlq */
    WEB_ROUTE_DLQ_ENTRY,      /* GET /api/dlq/<seq> */
    WEB_ROUTE_SCHEDULES,      /* GET /api/schedules */
    WEB_ROUTE_EVENTS,         /* GET /api/events */
    WEB_ROUTE_EVENTS_STREAM,  /* GET /api/events/stream */
    WEB_ROUTE_DLQ_RETRY,      /* POST /api/dlq/retry */
    WEB_ROUTE_DLQ_PURGE,      /* POST /api/dlq/purge */
    WEB_ROUTE_SCHEDULE_PAUSE, /* POST /api/schedules/<name>/pause */
    WEB_ROUTE_SCHEDULE_RESUME /* POST /api/schedules/<name>/resume */
} web_route_kind;

typedef struct {
    web_route_kind kind;
    const char *id;         /* JOB: the job id, DLQ_ENTRY: the sequence text (into path) */
    char name[NAQ_ID_SIZE]; /* SCHEDULE_*: the schedule's name (not yet validated) */
} web_route;

/* The route that (post ? POST : GET or HEAD) path names; path is the URL
 * path without the query and must outlive out->id. */
void web_route_parse(int post, const char *path, web_route *out);

/* A whole number in [min, max] from text (a query argument or header):
 * 1 with *out set, 0 when text is not one (empty, junk after the digits,
 * out of range). */
int web_parse_int(const char *text, long long min, long long max, long long *out);

/* 1 when a Host header ("127.0.0.1:8080", "localhost", "[::1]:80") names
 * a loopback host; 0 for NULL and anything else. */
int web_host_is_loopback(const char *host);

/* 1 when an Origin header ("http://127.0.0.1:8080", https:// too) names
 * the host of the Host header; 0 for NULL and anything else. */
int web_origin_is_host(const char *origin, const char *host);

/* The most dead letters one action may name by sequence. */
#define WEB_SEQS_MAX 1000

/* A dead-letter action's body, parsed: a filter or a list of sequences.
 * The strings in filter point into the parsed JSON: keep it until done. */
typedef struct {
    json_t *body;          /* owned: web_dlq_body_clear frees it */
    naq_dlq_filter filter; /* queue, error_type, job, all */
    uint64_t *seqs;        /* heap (web_dlq_body_clear), NULL when the body names no "seqs" */
    size_t nseqs;
} web_dlq_body;

/* Parses the body of POST /api/dlq/retry or /purge into b. NAQ_OK, or
 * NAQ_ERR_INVALID_ARG with why (naq_last_error()); b is to be cleared
 * either way. */
naq_status web_dlq_body_parse(const char *body, size_t len, web_dlq_body *b);
/* Frees what b holds; accepts a zeroed b. */
void web_dlq_body_clear(web_dlq_body *b);

#endif
