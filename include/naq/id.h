/*
 * naq/id.h - job ids, and validation of every name that becomes a subject
 * token (queue, worker, job, schedule ids).
 *
 * Ids travel inside NATS subjects (naq.jobs.events.<job_id>), so a bad one is
 * refused with a clear error, never mangled into something else.
 */
#ifndef NAQ_ID_H
#define NAQ_ID_H

#include <stddef.h>

#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest id or name accepted as a subject token, without the NUL. */
#define NAQ_ID_MAX 128
/* Size of a buffer that holds any valid id. */
#define NAQ_ID_SIZE (NAQ_ID_MAX + 1)

/* Writes a new job id: 32 lowercase hex digits, a UUIDv7 without dashes, so
 * ids sort by creation time (millisecond resolution) and are unique across
 * processes (74 random bits). Thread-safe. */
void naq_id_new(char out[NAQ_ID_SIZE]);

/* NAQ_OK when `id` may be used as one subject token: 1..NAQ_ID_MAX bytes of
 * printable ASCII other than '.', '*', '>' and white space. Otherwise
 * NAQ_ERR_INVALID_ARG with a message that names `what` ("queue name",
 * "job id", ...) and the offending character. */
naq_status naq_id_validate(const char *what, const char *id);

#ifdef __cplusplus
}
#endif
#endif
