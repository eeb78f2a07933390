/*
 * events.h - what the event log's modules (src/events/) share, private to
 * them. What other folders use of the event log is in internal.h.
 */
#ifndef NAQ_EVENTS_H
#define NAQ_EVENTS_H

#include "core/crypt.h"
#include "internal.h"

/* ---- history.c: reading single messages of the event stream ---- */

/* One direct get: the last message on `last_subject`, or else the first
 * message at or after `seq` on `next_subject`. NAQ_ERR_NOT_FOUND (without a
 * message: the caller words it) when there is none. */
naq_status naq__event_direct_get(naq_client *c, const char *next_subject, uint64_t seq,
                                 const char *last_subject, natsMsg **out);
/* Decodes m (stored at seq) into out, its sealed payload opened with k
 * (crypt.h), with nats_subject and nats_sequence set. */
naq_status naq__event_decode_msg(const naq__crypt *k, natsMsg *m, uint64_t seq, naq_event *out);
/* "<prefix>.jobs.events.<job_id>" after validating the id. */
naq_status naq__job_events_subject(naq_client *c, const char *job_id, char *buf, size_t cap);
/* Reads the events on the literal `subject` up to its last one at the time
 * of the call, whose sequence goes to *last_seq (0 when the subject has
 * none). *out may be empty with *last_seq > 0 when events were deleted
 * meanwhile or skipped; skip_bad leaves out what does not decode instead
 * of failing. */
naq_status naq__subject_history(naq_client *c, const char *subject, int skip_bad,
                                naq_event_list *out, uint64_t *last_seq);

#endif /* NAQ_EVENTS_H */
