/*
 * naq/client.h - a connection to naq: the job queue server, the event store
 * and the event logger behind them.
 *
 * A client may be shared by all threads of a process; every call through it
 * is thread-safe. naq_client_connect() creates or updates the streams and
 * buckets it needs (ARCHITECTURE.md) with the configured limits.
 */
#ifndef NAQ_CLIENT_H
#define NAQ_CLIENT_H

#include <stdint.h>

#include "naq/config.h"
#include "naq/event.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct naq_client naq_client;

/* Connects to cfg->url (and cfg->event_url when set), fails within
 * cfg->connect_timeout_ms with NAQ_ERR_CONNECT and a message that says how
 * to start a server when nothing answers. cfg is copied. Destroy the client
 * with naq_client_destroy(). */
naq_status naq_client_connect(const naq_config *cfg, naq_client **out);

/* Flushes the event logger (waiting up to the configured flush timeout),
 * closes the connections and frees the client. Accepts NULL. */
void naq_client_destroy(naq_client *c);

/* The configuration the client runs with (owned by the client). */
const naq_config *naq_client_config(const naq_client *c);

/* ---- Event logging (never blocks, never fails the caller's job) ---- */

/* Logs an event: encodes it, copies it into the logger's bounded buffer and
 * returns. A background thread publishes it. When logging is disabled this
 * does nothing. When the buffer is full the event goes to the disk spool
 * (or, with no spool or a full one, is dropped and counted). Returns
 * NAQ_ERR_INVALID_ARG only for an event that can never be published (bad
 * id); the caller may ignore the result. Thread-safe. */
naq_status naq_client_log(naq_client *c, const naq_event *e);

typedef struct {
    uint64_t logged;        /* accepted by naq_client_log */
    uint64_t published;     /* acknowledged by the server */
    uint64_t retried;       /* publish attempts repeated after an error */
    uint64_t spooled;       /* written to the disk spool because the buffer was full */
    uint64_t dropped;       /* lost: buffer and spool full, or spool disabled */
    uint64_t buffered;      /* in memory now, not yet acknowledged */
    uint64_t spool_pending; /* on disk now, not yet re-sent */
} naq_logger_stats;

void naq_client_logger_stats(naq_client *c, naq_logger_stats *out);

/* Waits until every event logged so far is acknowledged (or spooled), up to
 * timeout_ms. NAQ_ERR_TIMEOUT otherwise. */
naq_status naq_client_flush_events(naq_client *c, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
