/*
 * metrics_http.c - the HTTP side of naq/metrics.h: a libmicrohttpd daemon
 * with its own polling thread that answers GET /metrics (and /) with what
 * the render callback produces, as Prometheus' text format 0.0.4.
 *
 * libmicrohttpd (Debian libmicrohttpd-dev) over a hand-written server: it
 * gets HTTP/1.1, keep-alive and slow clients right, and runs its own
 * thread, so a worker's job path never waits on a scrape.
 *
 * naq__http_start (metrics_http.h) is the one start of a libmicrohttpd
 * daemon in naq: `naq web` calls it too, so both parse the listen address
 * and word "cannot listen" alike.
 */
#include "internal.h"
#include "metrics_http.h"
#include "naq/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct naq_metrics_server {
    struct MHD_Daemon *d;
    naq_metrics_render_fn render;
    void *user;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ok = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    naq_metrics_server *s = cls;
    static char not_found[] = "not found: the metrics are at /metrics\n";
    static char bad_method[] = "only GET is served\n";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, 405, "text/plain", bad_method, sizeof bad_method - 1,
                     MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0)
        return reply(conn, 404, "text/plain", not_found, sizeof not_found - 1,
                     MHD_RESPMEM_PERSISTENT);
    char *body = NULL;
    size_t len = 0;
    if (s->render(s->user, &body, &len) != NAQ_OK) {
        char msg[600];
        int n = snprintf(msg, sizeof msg, "naq: cannot read the figures: %s\n", naq_last_error());
        char *copy = strdup(msg);
        if (copy == NULL)
            return MHD_NO;
        return reply(conn, 503, "text/plain", copy,
                     (size_t)n < sizeof msg ? (size_t)n : strlen(copy), MHD_RESPMEM_MUST_FREE);
    }
    return reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", body, len,
                 MHD_RESPMEM_MUST_FREE);
}

naq_status naq__http_parse_listen(const char *listen, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    const char *colon = listen != NULL ? strrchr(listen, ':') : NULL;
    char *end = NULL;
    long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "bad listen address '%s': give HOST:PORT or :PORT, e.g. 127.0.0.1:8080 "
                         "or :9464",
                         listen ? listen : "");
    sa->sin_port = htons((uint16_t)port);
    char host[256];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host)
        return naq__fail(NAQ_ERR_INVALID_ARG, "bad listen address '%s': host too long", listen);
    memcpy(host, listen, hl);
    host[hl] = '\0';
    if (hl == 0 || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "bad listen address '%s': the host must be an IPv4 address, localhost "
                         "or empty (all interfaces)",
                         listen);
    return NAQ_OK;
}

int naq__http_is_loopback(const struct sockaddr_in *sa)
{
    return (ntohl(sa->sin_addr.s_addr) >> 24) == 127;
}

naq_status naq__http_start(const naq__http_opts *o, struct MHD_Daemon **out, int *port)
{
    *out = NULL;
    *port = 0;
    struct sockaddr_in sa;
    naq_status st = naq__http_parse_listen(o->listen, &sa);
    if (st != NAQ_OK)
        return st;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (o->thread_per_conn)
        flags |= MHD_USE_THREAD_PER_CONNECTION;
    /* MHD_OPTION_CONNECTION_LIMIT 0 would refuse every connection: the
     * default limit is given as an option that changes nothing instead. */
    struct MHD_OptionItem limit[] = {
        {o->max_conns ? MHD_OPTION_CONNECTION_LIMIT : MHD_OPTION_END, o->max_conns, NULL},
        {MHD_OPTION_END, 0, NULL}};
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, 0, NULL, NULL, o->handler, o->handler_cls, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s,
                         MHD_OPTION_NOTIFY_COMPLETED, o->completed, o->completed_cls,
                         MHD_OPTION_ARRAY, limit, MHD_OPTION_END);
    if (d == NULL)
        return naq__fail(NAQ_ERR_IO,
                         "cannot listen on %s for %s (is the port in use? pick another with "
                         "%s HOST:PORT)",
                         o->listen, o->what, o->flag);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info != NULL ? info->port : ntohs(sa.sin_port);
    *out = d;
    return NAQ_OK;
}

naq_status naq_metrics_server_start(const char *addr, naq_metrics_render_fn render, void *user,
                                    naq_metrics_server **out)
{
    *out = NULL;
    if (render == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_metrics_server_start needs a render function");
    naq_metrics_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for the metrics server");
    s->render = render;
    s->user = user;
    naq__http_opts o = {.listen = addr,
                        .flag = "--metrics/--listen",
                        .what = "metrics",
                        .timeout_s = 30,
                        .handler = on_request,
                        .handler_cls = s};
    naq_status st = naq__http_start(&o, &s->d, &s->port);
    if (st != NAQ_OK) {
        free(s); /* s->d is NULL: nothing started */
        return st;
    }
    *out = s;
    return NAQ_OK;
}

int naq_metrics_server_port(const naq_metrics_server *s)
{
    return s != NULL ? s->port : 0;
}

void naq_metrics_server_stop(naq_metrics_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->d);
    free(s);
}
