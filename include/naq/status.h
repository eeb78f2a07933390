/*
 * naq/status.h - the one error convention of libnaq.
 *
 * Every fallible call returns a naq_status (NAQ_OK is 0) and hands results
 * back through out-parameters. When a call fails it also records, for the
 * calling thread only, a human-readable message and the underlying nats.c
 * status / JetStream error code, readable with naq_last_error_*().
 * The status names and their strings come from one X-macro table so they
 * can never drift apart.
 */
#ifndef NAQ_STATUS_H
#define NAQ_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#define NAQ_STATUS_TABLE(X)                                                                        \
    X(NAQ_OK, "ok")                                                                                \
    X(NAQ_ERR_INVALID_ARG, "invalid argument")                                                     \
    X(NAQ_ERR_NO_MEMORY, "out of memory")                                                          \
    X(NAQ_ERR_CONNECT, "cannot connect")                                                           \
    X(NAQ_ERR_NATS, "NATS error")                                                                  \
    X(NAQ_ERR_NOT_FOUND, "not found")                                                              \
    X(NAQ_ERR_TIMEOUT, "timed out")                                                                \
    X(NAQ_ERR_CODEC, "malformed data")                                                             \
    X(NAQ_ERR_IO, "I/O error")                                                                     \
    X(NAQ_ERR_FULL, "buffer full")                                                                 \
    X(NAQ_ERR_CLOSED, "closed")                                                                    \
    X(NAQ_ERR_EXISTS, "already exists")                                                            \
    X(NAQ_ERR_HANDLER, "handler failed")

typedef enum {
#define NAQ_STATUS_ENUM(name, str) name,
    NAQ_STATUS_TABLE(NAQ_STATUS_ENUM)
#undef NAQ_STATUS_ENUM
        NAQ_STATUS_COUNT
} naq_status;

/* Short static string for a status ("not found"); never NULL. */
const char *naq_status_str(naq_status s);

/* The message of the last failed call on this thread, or "" if none.
 * Points into thread-local storage, valid until the next naq call on
 * this thread. */
const char *naq_last_error(void);

/* The nats.c natsStatus (as int) behind the last failure on this thread,
 * 0 (NATS_OK) when the failure did not come from nats.c. */
int naq_last_error_nats_status(void);

/* The JetStream API error code (e.g. 10059 stream not found) behind the
 * last failure on this thread, 0 if none. */
int naq_last_error_js_code(void);

#ifdef __cplusplus
}
#endif
#endif
