/*
 * naq/log.h - where the library's own messages go.
 *
 * libnaq never writes to stderr or stdout: a program embeds it and owns its
 * terminal. What long-running parts have to say (a worker that cannot ack a
 * job, a registry entry that cannot be refreshed, a rollup maintainer that
 * retries, an event spool that cannot be opened) goes to one process-wide
 * handler; with none set (the default) it is dropped. These messages are
 * notes for an operator: what a program must act on comes back as a
 * naq_status, and what happened to jobs and workers is in the events.
 * The naq CLI sets a handler that prints each message on stderr.
 */
#ifndef NAQ_LOG_H
#define NAQ_LOG_H

#include "naq/config.h" /* naq_log_level */

#ifdef __cplusplus
extern "C" {
#endif

/* Receives one message: a single line without a trailing newline, starting
 * with what speaks ("naq worker ID: ...", "naq rollup: ..."). msg is valid
 * during the call only. It may be called from any of the library's threads,
 * at the same time from several, so it must be thread-safe; it must not
 * call naq_log_set_handler. */
typedef void (*naq_log_fn)(naq_log_level level, const char *msg, void *user);

/* Sets the process-wide handler (NULL: drop messages, the default). Safe to
 * call from any thread; a message being delivered at that moment may still
 * reach the previous handler. */
void naq_log_set_handler(naq_log_fn fn, void *user);

#ifdef __cplusplus
}
#endif

#endif
