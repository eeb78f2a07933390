/*
 * naq/auth.h - least-privilege roles: what each kind of naq program may
 * publish and subscribe to on the NATS server (docs/security.md).
 *
 *   producer  enqueue jobs, log its own events; read
 *   worker    take jobs from its queues, log events, write results,
 *             finished markers, dead letters and the worker registry; read
 *   reader    history, stream, stats, top: read only
 *   admin     everything (dlq retry/purge, events delete/cleanup,
 *             schedules, creating and changing streams)
 *
 * Every role may read (JetStream info, direct gets, ordered consumers on
 * every stream but the job queue itself). Keeping job arguments from a
 * reader is payload encryption's work, not the permissions'.
 */
#ifndef NAQ_AUTH_H
#define NAQ_AUTH_H

#include <stddef.h>

#include "naq/config.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    NAQ_ROLE_PRODUCER,
    NAQ_ROLE_WORKER,
    NAQ_ROLE_READER,
    NAQ_ROLE_ADMIN,
    NAQ_ROLE_COUNT
} naq_role;

/* "producer", "worker", "reader", "admin". */
const char *naq_role_name(naq_role r);
/* Parses a role name; NAQ_ERR_INVALID_ARG naming the four otherwise. */
naq_status naq_role_parse(const char *name, naq_role *out);

/* The nats-server `permissions { ... }` block of role r for the streams,
 * buckets and subject prefix of cfg, indented by `indent` spaces. For a
 * worker, queues (NULL-terminated, may be NULL) limits the queues whose
 * jobs it may take; NULL or empty = every queue. Other roles ignore it.
 * *out is heap memory: free() it. */
naq_status naq_role_permissions(const naq_config *cfg, naq_role r, const char *const *queues,
                                int indent, char **out);

#ifdef __cplusplus
}
#endif
#endif
