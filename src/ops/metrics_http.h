/*
 * metrics_http.h - the one place naq starts a libmicrohttpd daemon: the
 * metrics server (metrics_http.c) and `naq web` (cli/web/web_server.c)
 * both go through naq__http_start, so the listen address, the daemon's
 * threads and the wording of "cannot listen" are the same for both.
 * Internal: not part of the public API.
 */
#ifndef NAQ_METRICS_HTTP_H
#define NAQ_METRICS_HTTP_H

#include "naq/status.h"

#include <microhttpd.h>
#include <netinet/in.h>

typedef struct {
    const char *listen;  /* "HOST:PORT" or ":PORT" (all interfaces); port 0 = any free */
    const char *flag;    /* the flag that names it, for the error: "--listen" */
    const char *what;    /* what listens, for the error: "metrics", "the web UI" */
    int thread_per_conn; /* a thread per connection (long-lived ones: SSE), else one
                          * polling thread for all */
    unsigned timeout_s;  /* idle connections close after this */
    unsigned max_conns;  /* 0: libmicrohttpd's default */
    MHD_AccessHandlerCallback handler;
    void *handler_cls;
    MHD_RequestCompletedCallback completed; /* NULL: none */
    void *completed_cls;
} naq__http_opts;

/* "HOST:PORT" or ":PORT" -> an IPv4 address: HOST is an IPv4 address,
 * localhost, 0.0.0.0, * or empty (all interfaces). NAQ_ERR_INVALID_ARG
 * saying what is wrong. No network. */
naq_status naq__http_parse_listen(const char *listen, struct sockaddr_in *sa);

/* 1 when sa is a loopback address (127.0.0.0/8). */
int naq__http_is_loopback(const struct sockaddr_in *sa);

/* Starts a daemon as o says; *out is stopped with MHD_stop_daemon by the
 * caller, *port is the port it listens on (the one picked for port 0).
 * NAQ_ERR_INVALID_ARG for a bad address, NAQ_ERR_IO when it cannot
 * listen (*out NULL then). */
naq_status naq__http_start(const naq__http_opts *o, struct MHD_Daemon **out, int *port);

#endif
