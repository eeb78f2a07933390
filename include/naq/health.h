/*
 * naq/health.h - is naq usable right now: the connections are up and the
 * event, job and dead-letter streams exist, with their sizes.
 *
 * `naq health` prints this; a program may call it for its own readiness
 * probe. It only reads: it never creates or changes a stream.
 */
#ifndef NAQ_HEALTH_H
#define NAQ_HEALTH_H

#include <stdint.h>

#include "naq/client.h"
#include "naq/config.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which stream a naq_stream_health describes (index into the report). */
typedef enum {
    NAQ_HEALTH_EVENTS, /* cfg.event_stream, on the event server */
    NAQ_HEALTH_JOBS,   /* cfg.job_stream */
    NAQ_HEALTH_DLQ,    /* cfg.dlq_stream */
    NAQ_HEALTH_STREAMS
} naq_health_stream;

typedef struct {
    char name[NAQ_NAME_MAX]; /* stream name */
    int ok;                  /* the stream exists and answered */
    uint64_t messages;
    uint64_t bytes;
    uint64_t first_seq;
    uint64_t last_seq;
    int64_t consumers;
    char error[256]; /* why not ok; "" when ok */
} naq_stream_health;

typedef struct {
    int healthy;                 /* connected and every stream ok */
    int connected;               /* job-queue (and event) connections are up */
    char url[NAQ_URL_MAX];       /* server the client is connected to now (password or token redacted) */
    char event_url[NAQ_URL_MAX]; /* event server connected to now (== url when shared) */
    int64_t rtt_us;              /* round trip to the job-queue server; -1 if unknown */
    naq_stream_health streams[NAQ_HEALTH_STREAMS];
} naq_health_report;

/* Fills *out. Returns NAQ_OK whenever the report could be made, healthy or
 * not: read out->healthy, and each stream's error. Thread-safe. */
naq_status naq_health(naq_client *c, naq_health_report *out);

#ifdef __cplusplus
}
#endif
#endif
