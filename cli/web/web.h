/*
 * web.h - `naq web`: the web UI and JSON API server (cli/web/). The command
 * (cmd_web.c) parses its flags and calls naq_web_start; the server
 * (web_server.c) answers on its own libmicrohttpd threads until
 * naq_web_stop. docs/web.md describes the pages, the API and the security
 * model.
 */
#ifndef NAQ_WEB_H
#define NAQ_WEB_H

#include "naq/naq.h"

typedef struct naq_web naq_web;

typedef struct {
    const char *listen; /* "HOST:PORT" (port 0 = any free one); default 127.0.0.1:8080 */
    int allow_actions;  /* POST /api/... may change things (retry, purge, pause, resume) */
    const char *token;  /* the bearer token actions need; required with allow_actions */
    int live_tail;      /* events read back at start for the live rates (default 2000) */
    int rollup;         /* run a rollup maintainer (naq/stats.h) so the charts are current
                         * without a scheduler (default 1; exactly-once beside others) */
} naq_web_opts;

void naq_web_opts_init(naq_web_opts *o);

/* NAQ_OK when o can be served (a well-formed listen address, a token when
 * actions are allowed); else NAQ_ERR_INVALID_ARG saying what is wrong.
 * No network: the command checks it before connecting. */
naq_status naq_web_opts_validate(const naq_web_opts *o);

/* Starts serving through c (which must outlive the server); copies what
 * it needs of o. NAQ_ERR_INVALID_ARG for a bad listen address or actions
 * without a token, NAQ_ERR_IO when it cannot listen. Stop with
 * naq_web_stop. */
naq_status naq_web_start(naq_client *c, const naq_web_opts *o, naq_web **out);
/* The port it listens on (the one picked for port 0). */
int naq_web_port(const naq_web *w);
/* Stops serving (open live feeds end), joins every thread and frees w.
 * Accepts NULL. */
void naq_web_stop(naq_web *w);

/* The `naq web` command (cmd_web.c). */
int naq_cmd_web(int argc, char **argv);

#endif
