/*
 * naq/config.h - where naq connects and how it sizes its streams.
 *
 * naq_config_init() fills defaults, naq_config_from_env() applies the
 * NAQ_* environment variables on top (docs/configuration.md lists them),
 * and the CLI applies its flags last. All strings are fixed-size arrays so a
 * config can be copied by assignment and needs no freeing.
 */
#ifndef NAQ_CONFIG_H
#define NAQ_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NAQ_DEFAULT_URL "nats://127.0.0.1:4222"
#define NAQ_DEFAULT_HEARTBEAT_INTERVAL_MS 5000 /* NAQ_HEARTBEAT_INTERVAL */
#define NAQ_URL_MAX 512
#define NAQ_NAME_MAX 64

typedef enum {
    NAQ_LOG_DEBUG,
    NAQ_LOG_INFO,
    NAQ_LOG_WARN,
    NAQ_LOG_ERROR,
} naq_log_level;

typedef struct {
    char url[NAQ_URL_MAX]; /* job queue server (NAQ_URL, NAQ_JOB_QUEUE_URL) */
    char
        event_url[NAQ_URL_MAX]; /* event storage server; "" = same as url (NAQ_EVENT_STORAGE_URL) */
    char event_stream[NAQ_NAME_MAX];   /* NAQ_NATS_STREAM_NAME, default NAQ_JOB_EVENTS */
    char job_stream[NAQ_NAME_MAX];     /* NAQ_JOB_STREAM_NAME, default NAQ_JOBS */
    char dlq_stream[NAQ_NAME_MAX];     /* NAQ_DLQ_STREAM_NAME, default NAQ_DLQ */
    char subject_prefix[NAQ_NAME_MAX]; /* NAQ_NATS_SUBJECT_PREFIX, default "naq" */
    int64_t connect_timeout_ms; /* NAQ_NATS_CONNECTION_TIMEOUT (seconds in env), default 2000 */
    naq_log_level log_level;    /* NAQ_LOG_LEVEL: debug|info|warn|error */
    int disable_logging;        /* NAQ_DISABLE_LOGGING=1: no events are published */

    /* Event stream limits (applied when the stream is created or updated). */
    int64_t event_max_age_s;    /* NAQ_EVENT_MAX_AGE, default 7 days */
    int64_t event_max_msgs;     /* NAQ_EVENT_MAX_MSGS, default -1 (unlimited) */
    int64_t event_max_bytes;    /* NAQ_EVENT_MAX_BYTES, default -1 (unlimited) */
    int64_t event_dup_window_s; /* NAQ_EVENT_DUPLICATE_WINDOW, default 120 */
    int replicas;               /* NAQ_REPLICAS, default 1 */

    /* Event logger. */
    int64_t logger_buffer_events; /* NAQ_EVENT_BUFFER, max events held in memory, default 65536 */
    int64_t logger_buffer_bytes;  /* NAQ_EVENT_BUFFER_BYTES, default 32 MiB */
    int logger_batch;             /* NAQ_EVENT_BATCH, events published per batch, default 512 */
    int64_t logger_flush_ms;      /* NAQ_EVENT_FLUSH_INTERVAL, flush interval, default 100ms */
    /* NAQ_EVENT_LINGER_US: how long the logger, woken by a few events,
     * waits for the rest of a burst before publishing. -1 (default)
     * adapts it (logger.c); 0 never waits; N waits N microseconds. */
    int64_t logger_linger_us;
    char spool_dir[NAQ_URL_MAX]; /* NAQ_SPOOL_DIR, overflow spool, default $XDG_DATA_HOME/naq/spool;
                                    "none" = no spool (overflow is dropped and counted) */

    /* Workers. */
    int64_t ack_wait_ms; /* NAQ_ACK_WAIT, seconds in env: redelivery after a worker dies, default 30
                            s */
    int64_t heartbeat_interval_ms; /* NAQ_HEARTBEAT_INTERVAL: worker heartbeats; the registry entry
                                      lives 3 intervals, default 5 s */

    /* Connection security, for the job server and the event server alike
     * (docs/security.md). "" = not set. A tls:// URL or a set tls_ca turns
     * TLS on; the server's certificate is then verified, host name
     * included. At most one way of authenticating may be set. */
    char tls_ca[NAQ_URL_MAX]; /* NAQ_TLS_CA: CA bundle (PEM) the server's certificate must chain to
                               */
    char tls_cert[NAQ_URL_MAX];       /* NAQ_TLS_CERT: client certificate (PEM) for mutual TLS */
    char tls_key[NAQ_URL_MAX];        /* NAQ_TLS_KEY: its private key (PEM) */
    char user[NAQ_NAME_MAX * 2];      /* NAQ_USER */
    char password[NAQ_URL_MAX];       /* NAQ_PASSWORD (never printed) */
    char token[NAQ_URL_MAX];          /* NAQ_TOKEN (never printed) */
    char nkey_seed_file[NAQ_URL_MAX]; /* NAQ_NKEY_SEED_FILE: file holding an NKey user seed (SU...)
                                       */
    char creds_file[NAQ_URL_MAX]; /* NAQ_CREDS_FILE: a NATS .creds file (user JWT and NKey seed) */

    /* NAQ_ENCRYPTION_KEY_FILE: payload keys ('naq keygen FILE'); "" = off.
     * With it, producers encrypt job args and workers results and error
     * messages end to end (docs/security.md, "Payload encryption"). */
    char encryption_key_file[NAQ_URL_MAX];
} naq_config;

/* Fills defaults. Never fails. */
void naq_config_init(naq_config *c);

/* Applies NAQ_* environment variables. NAQ_ERR_INVALID_ARG, naming the
 * variable and what it accepts, when one is malformed; c is then partly
 * updated and should not be used. */
naq_status naq_config_from_env(naq_config *c);

/* NAQ_OK when url is a NATS URL naq can connect to: one or more servers
 * separated by commas, each nats://HOST[:PORT] or tls://HOST[:PORT]
 * (optionally with USER:PASS@ or TOKEN@). Else NAQ_ERR_INVALID_ARG naming
 * `what` (the variable or flag it came from) and the expected form.
 * naq_config_from_env and naq_client_connect check every URL with it. */
naq_status naq_url_validate(const char *what, const char *url);

/* Copies url into out (cap bytes) with the secret of every server
 * replaced by three asterisks: the password of USER:PASS@HOST (the user
 * stays) and the token of TOKEN@HOST. Every URL naq prints or puts in an
 * error message goes through it. Returns out. */
char *naq_url_redact(const char *url, char *out, size_t cap);

/* NAQ_OK when the connection security settings of c make sense together
 * (a client key with its certificate, one way of authenticating, files
 * that can be read); else NAQ_ERR_INVALID_ARG naming the variable and the
 * fix. naq_client_connect calls it. */
naq_status naq_config_security_validate(const naq_config *c);

/* Parses a duration like "500ms", "30s", "5m", "2h", "7d" or a plain
 * number of seconds into milliseconds. */
naq_status naq_parse_duration_ms(const char *text, int64_t *ms);

/* Parses "debug", "info", "warn" or "error". */
naq_status naq_parse_log_level(const char *text, naq_log_level *out);

/* Parses a size like "512", "64K", "10MB", "1G" (powers of 1024) into bytes. */
naq_status naq_parse_size(const char *text, int64_t *bytes);

#ifdef __cplusplus
}
#endif
#endif
