/*
 * naq/event.h - the event model: every job, worker, scheduler and system
 * transition, its JSON codec and where it is published.
 *
 * Wire names: job events use the bare names of ARCHITECTURE.md
 * ("enqueued", "completed", ...); worker, scheduler and system events carry
 * their category as a prefix ("worker_started", "scheduler_leader_elected",
 * "system_startup") so one name never means two things. docs/protocol.md is
 * the specification.
 */
#ifndef NAQ_EVENT_H
#define NAQ_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "naq/config.h"
#include "naq/id.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Wire format versions of events and jobs. NAQ_WIRE_VERSION is the newest
 * this naq reads; a writer stamps the oldest version that describes what it
 * wrote, so that a fleet upgraded one program at a time keeps reading it:
 *   1  the first version (NAQ_WIRE_VERSION_PLAIN: every event, plain jobs)
 *   2  a job whose args are an encryption envelope (docs/protocol.md,
 *      "Encrypted payloads"): a version-1 worker refuses it rather than
 *      hand the envelope to a handler as its args
 * When the format changes: (1) bump this, (2) keep decoding every older
 * version (fill new fields with their defaults), (3) describe the change in
 * docs/protocol.md under "Versions", (4) add a round-trip test decoding the
 * old form. */
#define NAQ_WIRE_VERSION 2
#define NAQ_WIRE_VERSION_PLAIN 1

typedef enum {
    NAQ_CATEGORY_JOB,
    NAQ_CATEGORY_WORKER,
    NAQ_CATEGORY_SCHEDULER,
    NAQ_CATEGORY_SYSTEM,
} naq_event_category;

/* X(enum suffix, wire name, category) */
#define NAQ_EVENT_TABLE(X)                                                                         \
    X(ENQUEUED, "enqueued", JOB)                                                                   \
    X(DEQUEUED, "dequeued", JOB)                                                                   \
    X(STARTED, "started", JOB)                                                                     \
    X(COMPLETED, "completed", JOB)                                                                 \
    X(FAILED, "failed", JOB)                                                                       \
    X(CANCELLED, "cancelled", JOB)                                                                 \
    X(TIMEOUT, "timeout", JOB)                                                                     \
    X(RETRY_SCHEDULED, "retry_scheduled", JOB)                                                     \
    X(RETRY_STARTED, "retry_started", JOB)                                                         \
    X(MAX_RETRIES_EXCEEDED, "max_retries_exceeded", JOB)                                           \
    X(DEPENDENCY_SATISFIED, "dependency_satisfied", JOB)                                           \
    X(DEPENDENCY_FAILED, "dependency_failed", JOB)                                                 \
    X(WAITING_FOR_DEPENDENCIES, "waiting_for_dependencies", JOB)                                   \
    X(SCHEDULED, "scheduled", JOB)                                                                 \
    X(SCHEDULE_TRIGGERED, "schedule_triggered", JOB)                                               \
    X(SCHEDULE_PAUSED, "schedule_paused", JOB)                                                     \
    X(SCHEDULE_RESUMED, "schedule_resumed", JOB)                                                   \
    X(SCHEDULE_DEACTIVATED, "schedule_deactivated", JOB)                                           \
    X(WORKER_ASSIGNED, "worker_assigned", JOB)                                                     \
    X(WORKER_RELEASED, "worker_released", JOB)                                                     \
    X(QUEUE_PRIORITY_CHANGED, "queue_priority_changed", JOB)                                       \
    X(QUEUE_MOVED, "queue_moved", JOB)                                                             \
    X(TTL_EXPIRED, "ttl_expired", JOB)                                                             \
    X(TTL_EXTENDED, "ttl_extended", JOB)                                                           \
    X(WORKER_STARTED, "worker_started", WORKER)                                                    \
    X(WORKER_STOPPED, "worker_stopped", WORKER)                                                    \
    X(WORKER_IDLE, "worker_idle", WORKER)                                                          \
    X(WORKER_BUSY, "worker_busy", WORKER)                                                          \
    X(WORKER_HEARTBEAT, "worker_heartbeat", WORKER)                                                \
    X(WORKER_ERROR, "worker_error", WORKER)                                                        \
    X(WORKER_STATUS_CHANGED, "worker_status_changed", WORKER)                                      \
    X(SCHEDULER_CREATED, "scheduler_created", SCHEDULER)                                           \
    X(SCHEDULER_TRIGGERED, "scheduler_triggered", SCHEDULER)                                       \
    X(SCHEDULER_MODIFIED, "scheduler_modified", SCHEDULER)                                         \
    X(SCHEDULER_PAUSED, "scheduler_paused", SCHEDULER)                                             \
    X(SCHEDULER_RESUMED, "scheduler_resumed", SCHEDULER)                                           \
    X(SCHEDULER_CANCELLED, "scheduler_cancelled", SCHEDULER)                                       \
    X(SCHEDULER_LEADER_ELECTED, "scheduler_leader_elected", SCHEDULER)                             \
    X(SCHEDULER_LEADER_LOST, "scheduler_leader_lost", SCHEDULER)                                   \
    X(SCHEDULER_ERROR, "scheduler_error", SCHEDULER)                                               \
    X(SYSTEM_STARTUP, "system_startup", SYSTEM)                                                    \
    X(SYSTEM_SHUTDOWN, "system_shutdown", SYSTEM)                                                  \
    X(SYSTEM_CONFIG_CHANGED, "system_config_changed", SYSTEM)                                      \
    X(SYSTEM_METRICS, "system_metrics", SYSTEM)                                                    \
    X(SYSTEM_ERROR, "system_error", SYSTEM)                                                        \
    X(SYSTEM_RECOVERY, "system_recovery", SYSTEM)

typedef enum {
#define NAQ_EVENT_ENUM(suffix, name, cat) NAQ_EVENT_##suffix,
    NAQ_EVENT_TABLE(NAQ_EVENT_ENUM)
#undef NAQ_EVENT_ENUM
        NAQ_EVENT_TYPE_COUNT
} naq_event_type;

/* Wire name of a type ("completed"); "unknown" when out of range. */
const char *naq_event_type_name(naq_event_type t);
/* Type by wire name; NAQ_ERR_INVALID_ARG listing nothing when unknown
 * (the message says how to list the names: `naq events types`). */
naq_status naq_event_type_parse(const char *name, naq_event_type *out);
naq_event_category naq_event_type_category(naq_event_type t);

/* Optional numeric fields hold NAQ_UNSET when absent (encoded as absent). */
#define NAQ_UNSET (-1.0)

/*
 * One event. Text fields marked "heap" are owned by the event: set them with
 * strdup() or naq_event_set(), and naq_event_clear() frees them. The JSON
 * fields hold compact JSON text of an object (or NULL for none).
 */
typedef struct {
    int version; /* NAQ_WIRE_VERSION when built here */
    naq_event_type type;
    char event_id[NAQ_ID_SIZE]; /* unique per event, the Nats-Msg-Id; "" = assigned when logged */
    char job_id[NAQ_ID_SIZE];   /* job events */
    char schedule_id[NAQ_ID_SIZE]; /* scheduler events, and jobs a schedule made */
    double timestamp;              /* seconds since the epoch, UTC; 0 = now when logged */
    char worker_id[NAQ_ID_SIZE];
    char worker_type[NAQ_NAME_MAX];
    char queue_name[NAQ_ID_SIZE];
    int attempt;         /* 1 for the first run; 0 = not about a run */
    char *message;       /* heap */
    char *error_type;    /* heap */
    char *error_message; /* heap */
    char *details_json;  /* heap, JSON object */
    char *tags_json;     /* heap, JSON object of string values */
    char *metadata_json; /* heap, JSON object */
    double duration_ms;  /* NAQ_UNSET when absent */
    double memory_mb;    /* NAQ_UNSET when absent */
    double cpu_time_ms;  /* NAQ_UNSET when absent */
    /* Filled on read from the stream, never encoded. */
    char nats_subject[2 * NAQ_ID_SIZE];
    uint64_t nats_sequence;
} naq_event;

/* Zeroes e, sets version, type and every optional number to NAQ_UNSET. */
void naq_event_init(naq_event *e, naq_event_type type);
/* Frees the heap fields and re-initialises e as an event of the same type.
 * Accepts NULL. */
void naq_event_clear(naq_event *e);
/* Deep copy into dst (which must not hold heap fields: init it first). */
naq_status naq_event_copy(naq_event *dst, const naq_event *src);

/* Encodes e as one line of compact JSON (no newline). *json is heap memory
 * the caller frees with free(). NAQ_ERR_CODEC if a *_json field is not a
 * JSON object. */
naq_status naq_event_encode(const naq_event *e, char **json, size_t *len);
/* Decodes JSON into out (initialised here; clear it with naq_event_clear
 * even on failure). Unknown fields are ignored, so newer writers can add
 * fields; an unknown event_type or a version newer than NAQ_WIRE_VERSION is
 * NAQ_ERR_CODEC. */
naq_status naq_event_decode(const char *json, size_t len, naq_event *out);

/* Writes the subject this event is published on, e.g.
 * "naq.jobs.events.<job_id>", "naq.workers.events.<worker_id>",
 * "naq.schedules.events.<schedule_id>", "naq.system.events". Validates the
 * id the subject needs. */
naq_status naq_event_subject(const char *prefix, const naq_event *e, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
