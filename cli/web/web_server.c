/*
 * web_server.c - the HTTP side of `naq web`: a libmicrohttpd daemon with a
 * thread per connection (so a live feed that stays open for hours never
 * holds up another request), the embedded assets, and the security checks
 * every request passes before a handler sees it.
 *
 * The checks, in order (docs/web.md, "Security"):
 *   1. Host: bound to loopback, the Host header must name a loopback host,
 *      so a page on another site that rebinds its DNS name to 127.0.0.1
 *      cannot read the API through the victim's browser;
 *   2. method: GET and HEAD read, POST acts, nothing else;
 *   3. POST only: actions allowed (--allow-actions), else 403; then
 *      "Authorization: Bearer <token>" (compared in constant time), a JSON
 *      content type, and Origin / Sec-Fetch-Site naming this origin when
 *      the browser sends them. A cross-site form can set none of these, so
 *      the token header alone defeats CSRF; the rest is defence in depth.
 * Every response carries a Content-Security-Policy that allows only this
 * origin's own script and style: no inline script runs even if some value
 * ever reached the page unescaped.
 */
#include "web_int.h"

#include "internal.h"         /* naq__fail: errors through naq_last_error() */
#include "ops/metrics_http.h" /* naq__http_start: the one start of a daemon */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BODY_MAX (64 * 1024)
#define CONNECTIONS_MAX 128

static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

void naq_web_opts_init(naq_web_opts *o)
{
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:8080";
    o->live_tail = 2000;
    o->rollup = 1;
}

json_t *web_str(const char *text)
{
    json_t *v = json_string(text != NULL ? text : "");
    if (v != NULL)
        return v;
    /* Not UTF-8 (a message cut mid-character): keep the ASCII. */
    char *copy = strdup(text);
    for (char *p = copy; p != NULL && *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = copy != NULL ? json_string(copy) : NULL;
    free(copy);
    return v != NULL ? v : json_string("");
}

void web_error(web_reply *r, unsigned code, const char *status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_decref(r->json);
    r->code = code;
    r->json = json_pack("{s:o, s:s}", "error", web_str(msg), "status", status);
}

void web_fail(web_reply *r, naq_status s)
{
    const char *msg = naq_last_error();
    if (msg == NULL || msg[0] == '\0')
        msg = naq_status_str(s);
    switch (s) {
    case NAQ_ERR_INVALID_ARG: web_error(r, 400, "invalid_argument", "%s", msg); break;
    case NAQ_ERR_NOT_FOUND: web_error(r, 404, "not_found", "%s", msg); break;
    case NAQ_ERR_EXISTS: web_error(r, 409, "exists", "%s", msg); break;
    default: web_error(r, 503, "unavailable", "%s", msg); break;
    }
}

const char *web_arg(const web_req *q, const char *name)
{
    const char *v = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* ---- responses ---- */

void web_add_headers(struct MHD_Response *r, const char *type, int cache)
{
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(r, "Cache-Control", cache ? "no-cache" : "no-store");
}

static enum MHD_Result send_buffer(struct MHD_Connection *conn, unsigned code, const char *type,
                                   void *body, size_t len, enum MHD_ResponseMemoryMode mode,
                                   int cache)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    web_add_headers(r, type, cache);
    enum MHD_Result ok = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ok;
}

/* Sends and frees r->json. */
static enum MHD_Result send_reply(struct MHD_Connection *conn, web_reply *r)
{
    char *text = r->json ? json_dumps(r->json, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(r->json);
    r->json = NULL;
    if (text == NULL) {
        static char oom[] = "{\"error\":\"out of memory\",\"status\":\"unavailable\"}";
        return send_buffer(conn, 503, "application/json", oom, sizeof oom - 1,
                           MHD_RESPMEM_PERSISTENT, 0);
    }
    return send_buffer(conn, r->code ? r->code : 200, "application/json; charset=utf-8", text,
                       strlen(text), MHD_RESPMEM_MUST_FREE, 0);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned code, const char *status,
                                  const char *msg)
{
    web_reply r = {0, NULL};
    web_error(&r, code, status, "%s", msg);
    return send_reply(conn, &r);
}

static const web_asset *find_asset(const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < naq_web_nassets; i++)
        if (strcmp(naq_web_assets[i].path, path) == 0)
            return &naq_web_assets[i];
    return NULL;
}

/* ---- security ---- */

static int token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* NULL when the POST may go on, else why not (and *code, *status). */
static const char *refuse_post(naq_web *w, struct MHD_Connection *conn, unsigned *code,
                               const char **status)
{
    *code = 403;
    *status = "forbidden";
    if (!w->allow_actions) {
        *status = "read_only";
        return "naq web is read-only: start it with --allow-actions (and a token) to retry, "
               "purge, pause or resume";
    }
    const char *auth = header(conn, "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0 || !token_equal(auth + 7, w->token)) {
        *code = 401;
        *status = "unauthorized";
        return "actions need the header 'Authorization: Bearer <token>' with the token naq web "
               "was started with (NAQ_WEB_TOKEN or --token-file)";
    }
    const char *host = header(conn, "Host");
    const char *origin = header(conn, "Origin");
    if (origin != NULL && !web_origin_is_host(origin, host))
        return "cross-origin request refused: the Origin header does not name this server";
    const char *site = header(conn, "Sec-Fetch-Site");
    if (site != NULL && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return "cross-site request refused (Sec-Fetch-Site)";
    const char *type = header(conn, "Content-Type");
    if (type == NULL || strncasecmp(type, "application/json", 16) != 0) {
        *code = 415;
        *status = "unsupported_media_type";
        return "actions take a JSON body: send 'Content-Type: application/json'";
    }
    return NULL;
}

/* ---- dispatch ---- */

typedef struct {
    char *body; /* heap, NUL-terminated */
    size_t len;
    int too_big;
} conn_state;

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    conn_state *st = *state;
    if (st != NULL) {
        free(st->body);
        free(st);
        *state = NULL;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    naq_web *w = cls;
    int is_post = strcmp(method, "POST") == 0;
    if (*state == NULL) {
        conn_state *st = calloc(1, sizeof *st);
        if (st == NULL)
            return MHD_NO;
        *state = st;
        if (is_post)
            return MHD_YES; /* the body comes in the next calls */
    }
    conn_state *st = *state;
    if (is_post && *upload_size > 0) {
        if (st->len + *upload_size > BODY_MAX) {
            st->too_big = 1;
        } else {
            char *grown = realloc(st->body, st->len + *upload_size + 1);
            if (grown == NULL)
                return MHD_NO;
            memcpy(grown + st->len, upload, *upload_size);
            st->body = grown;
            st->len += *upload_size;
            st->body[st->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }

    if (w->loopback && !web_host_is_loopback(header(conn, "Host")))
        return send_error(conn, 403, "forbidden",
                          "this server answers only requests addressed to a loopback host "
                          "(localhost, 127.0.0.1); see docs/web.md, Security");

    web_req q = {w, conn, method, url, {0}, st->body ? st->body : "", st->len};
    web_route_parse(is_post, url, &q.route);
    web_reply r = {200, NULL};
    if (is_post) {
        unsigned code;
        const char *status;
        const char *why = refuse_post(w, conn, &code, &status);
        if (why != NULL)
            return send_error(conn, code, status, why);
        if (st->too_big)
            return send_error(conn, 413, "too_large", "the request body is over 64 KiB");
        web_action(&q, &r);
        return send_reply(conn, &r);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_error(conn, 405, "method_not_allowed",
                          "only GET and HEAD (pages, /api reads) and POST (/api actions)");
    if (q.route.kind == WEB_ROUTE_ASSET) {
        const web_asset *a = find_asset(url);
        if (a == NULL)
            return send_error(conn, 404, "not_found", "no such page: the UI is at /");
        return send_buffer(conn, 200, a->type, (void *)a->data, a->len, MHD_RESPMEM_PERSISTENT, 1);
    }
    if (q.route.kind == WEB_ROUTE_EVENTS_STREAM) {
        int rc = web_sse_start(&q, &r);
        if (rc >= 0)
            return rc ? MHD_YES : MHD_NO;
        return send_reply(conn, &r);
    }
    web_api_get(&q, &r);
    return send_reply(conn, &r);
}

/* ---- start and stop ---- */

naq_status naq_web_opts_validate(const naq_web_opts *o)
{
    struct sockaddr_in sa;
    naq_status s = naq__http_parse_listen(o->listen, &sa);
    if (s != NAQ_OK)
        return s;
    if (o->allow_actions && (o->token == NULL || o->token[0] == '\0'))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "--allow-actions needs a token: set NAQ_WEB_TOKEN or give "
                         "--token-file FILE");
    return NAQ_OK;
}

naq_status naq_web_start(naq_client *c, const naq_web_opts *o, naq_web **out)
{
    *out = NULL;
    struct sockaddr_in sa;
    naq_status s = naq_web_opts_validate(o);
    if (s == NAQ_OK)
        s = naq__http_parse_listen(o->listen, &sa);
    if (s != NAQ_OK)
        return s;
    naq_web *w = calloc(1, sizeof *w);
    if (w == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for the web server");
    w->c = c;
    w->allow_actions = o->allow_actions;
    w->live_tail = o->live_tail;
    w->rollup = o->rollup;
    w->loopback = naq__http_is_loopback(&sa);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->sse_gone, NULL);
    if (o->allow_actions && (w->token = strdup(o->token)) == NULL) {
        naq_web_stop(w);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for the web server");
    }
    if ((s = web_live_start(w)) != NAQ_OK) {
        naq_web_stop(w);
        return s;
    }
    naq__http_opts h = {.listen = o->listen,
                        .flag = "--listen",
                        .what = "the web UI",
                        .thread_per_conn = 1,
                        .timeout_s = 120,
                        .max_conns = CONNECTIONS_MAX,
                        .handler = on_request,
                        .handler_cls = w,
                        .completed = on_completed,
                        .completed_cls = w};
    if ((s = naq__http_start(&h, &w->d, &w->port)) != NAQ_OK) {
        naq_web_stop(w);
        return s;
    }
    *out = w;
    return NAQ_OK;
}

int naq_web_port(const naq_web *w)
{
    return w != NULL ? w->port : 0;
}

void naq_web_stop(naq_web *w)
{
    if (w == NULL)
        return;
    w->stopping = 1; /* live feeds see it within a second and end */
    if (w->d != NULL)
        MHD_stop_daemon(w->d);
    web_live_stop(w);
    pthread_cond_destroy(&w->sse_gone);
    pthread_mutex_destroy(&w->lock);
    free(w->token);
    free(w);
}
