/*
 * web_parse.c - the parsers of web_parse.h: everything `naq web` reads
 * from a request before it calls the library, kept apart from the
 * handlers so the route table is one list and a fuzzer can reach every
 * parser (fuzz/fuzz_web.c) without a server or a connection.
 */
#include "web_parse.h"

#include "internal.h" /* naq__fail: errors through naq_last_error() */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The routes with no parameter. */
static const struct {
    int post;
    const char *path;
    web_route_kind kind;
} fixed[] = {
    {0, "/api/config", WEB_ROUTE_CONFIG},
    {0, "/api/overview", WEB_ROUTE_OVERVIEW},
    {0, "/api/queues", WEB_ROUTE_QUEUES},
    {0, "/api/workers", WEB_ROUTE_WORKERS},
    {0, "/api/dlq", WEB_ROUTE_DLQ},
    {0, "/api/schedules", WEB_ROUTE_SCHEDULES},
    {0, "/api/events", WEB_ROUTE_EVENTS},
    {0, "/api/events/stream", WEB_ROUTE_EVENTS_STREAM},
    {1, "/api/dlq/retry", WEB_ROUTE_DLQ_RETRY},
    {1, "/api/dlq/purge", WEB_ROUTE_DLQ_PURGE},
};

/* "/api/schedules/<name>/pause" or "/resume" (rest: after the prefix). */
static void schedule_route(const char *rest, web_route *out)
{
    const char *slash = strrchr(rest, '/');
    if (slash == NULL || slash == rest || (size_t)(slash - rest) >= sizeof out->name)
        return;
    if (strcmp(slash, "/pause") == 0)
        out->kind = WEB_ROUTE_SCHEDULE_PAUSE;
    else if (strcmp(slash, "/resume") == 0)
        out->kind = WEB_ROUTE_SCHEDULE_RESUME;
    else
        return;
    memcpy(out->name, rest, (size_t)(slash - rest));
    out->name[slash - rest] = '\0';
}

void web_route_parse(int post, const char *path, web_route *out)
{
    memset(out, 0, sizeof *out);
    if (strncmp(path, "/api/", 5) != 0) {
        out->kind = post ? WEB_ROUTE_NONE : WEB_ROUTE_ASSET;
        return;
    }
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (fixed[i].post == post && strcmp(path, fixed[i].path) == 0) {
            out->kind = fixed[i].kind;
            return;
        }
    if (post) {
        if (strncmp(path, "/api/schedules/", 15) == 0)
            schedule_route(path + 15, out);
    } else if (strncmp(path, "/api/jobs/", 10) == 0 && path[10] != '\0') {
        out->kind = WEB_ROUTE_JOB;
        out->id = path + 10;
    } else if (strncmp(path, "/api/dlq/", 9) == 0 && path[9] != '\0') {
        out->kind = WEB_ROUTE_DLQ_ENTRY;
        out->id = path + 9;
    }
}

int web_parse_int(const char *text, long long min, long long max, long long *out)
{
    if (text == NULL || text[0] == '\0')
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || n < min || n > max)
        return 0;
    *out = n;
    return 1;
}

int web_host_is_loopback(const char *host)
{
    if (host == NULL)
        return 0;
    char h[256];
    size_t n = strlen(host);
    if (n >= sizeof h)
        return 0;
    memcpy(h, host, n + 1);
    if (h[0] == '[') { /* [::1]:8080 */
        char *end = strchr(h, ']');
        if (end == NULL)
            return 0;
        *end = '\0';
        return strcmp(h + 1, "::1") == 0;
    }
    char *colon = strchr(h, ':');
    if (colon != NULL)
        *colon = '\0';
    if (strcasecmp(h, "localhost") == 0)
        return 1;
    struct in_addr a;
    return inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int web_origin_is_host(const char *origin, const char *host)
{
    if (origin == NULL || host == NULL)
        return 0;
    /* https:// too: behind a TLS proxy that keeps Host. */
    const char *rest = strncmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncmp(origin, "https://", 8) == 0 ? origin + 8
                                                             : NULL;
    return rest != NULL && strcasecmp(rest, host) == 0;
}

static const char *str_member(json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));
    return v != NULL && v[0] != '\0' ? v : NULL;
}

naq_status web_dlq_body_parse(const char *body, size_t len, web_dlq_body *b)
{
    memset(b, 0, sizeof *b);
    json_error_t err;
    b->body = json_loadb(body, len, 0, &err);
    if (b->body == NULL || !json_is_object(b->body))
        return naq__fail(NAQ_ERR_INVALID_ARG, "the body must be a JSON object (%s)",
                         len == 0          ? "it is empty"
                         : b->body == NULL ? err.text
                                           : "it is not one");
    b->filter.queue = str_member(b->body, "queue");
    b->filter.error_type = str_member(b->body, "error_type");
    b->filter.job_id = str_member(b->body, "job");
    json_t *all = json_object_get(b->body, "all");
    if (all != NULL && !json_is_boolean(all))
        return naq__fail(NAQ_ERR_INVALID_ARG, "\"all\" must be true or false");
    b->filter.all = json_is_true(all);
    json_t *seqs = json_object_get(b->body, "seqs");
    if (seqs == NULL)
        return NAQ_OK;
    size_t n = json_array_size(seqs);
    if (!json_is_array(seqs) || n == 0 || n > WEB_SEQS_MAX)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "\"seqs\" must be a list of 1 to %d dead-letter sequence numbers",
                         WEB_SEQS_MAX);
    if ((b->seqs = calloc(n, sizeof b->seqs[0])) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading the body");
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(seqs, i);
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "\"seqs\" must hold dead-letter sequence numbers (whole numbers > 0)");
        b->seqs[i] = (uint64_t)json_integer_value(v);
    }
    b->nseqs = n;
    return NAQ_OK;
}

void web_dlq_body_clear(web_dlq_body *b)
{
    json_decref(b->body);
    free(b->seqs);
    memset(b, 0, sizeof *b);
}
