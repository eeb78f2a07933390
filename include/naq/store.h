/*
 * naq/store.h - reading the event log: a job's history, its current state,
 * and live streams of events with filters.
 *
 * A job's events all live on the literal subject
 * "<prefix>.jobs.events.<job_id>", so its history is one literal read and
 * its state is its last event (a direct get), never a scan.
 */
#ifndef NAQ_STORE_H
#define NAQ_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "naq/client.h"
#include "naq/event.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A list of decoded events; free with naq_event_list_free(). */
typedef struct {
    naq_event *items;
    size_t count;
} naq_event_list;

/* Clears every event, frees the array and leaves l empty. Accepts NULL. */
void naq_event_list_free(naq_event_list *l);

/* Every event of a job in the order they were stored, up to the job's last
 * event at the time of the call, each with nats_subject and nats_sequence
 * filled. *out is heap memory: free it with naq_event_list_free(), which is
 * also safe after a failure (*out is then empty). NAQ_ERR_INVALID_ARG for a
 * malformed job id, NAQ_ERR_NOT_FOUND when the job has no events (never
 * existed, or its events expired with the stream's max age), NAQ_ERR_CODEC
 * when a stored event cannot be decoded (for instance written by a newer
 * naq). Costs one direct get per event plus one. */
naq_status naq_job_history(naq_client *c, const char *job_id, naq_event_list *out);

/* The job's last event (its current state): one direct get. NAQ_ERR_NOT_FOUND
 * when none. *out is initialised even on failure; clear it with
 * naq_event_clear. */
naq_status naq_job_last_event(naq_client *c, const char *job_id, naq_event *out);

/* Filters for streams; NULL or "" fields match everything. All given
 * fields must match. */
typedef struct {
    const char *job_id;
    const char *type; /* wire name, e.g. "failed" */
    const char *queue;
    const char *worker;
} naq_event_filter;

/* Called for each event; return non-zero to stop the stream. The event is
 * only valid during the call. */
typedef int (*naq_event_fn)(const naq_event *e, void *user);

/* Without a job filter, finding the last `tail` matching events scans the
 * stream backwards over at most this many messages more than `tail`; when
 * matches are rarer than that, fewer than `tail` events are delivered. */
#define NAQ_STREAM_TAIL_SCAN_MAX 100000

/* Zero-initialise (naq_stream_opts o = {0};) for: no filter, no tail, no
 * follow, no stop flag. */
typedef struct {
    naq_event_filter filter;
    int tail;   /* first deliver the last `tail` matching events (0 = none) */
    int follow; /* then keep delivering new events until fn returns non-zero or *stop is set */
    /* > 0: start at this stream sequence instead of a tail (tail is then
     * ignored): resuming a stream after the last sequence a reader saw, as
     * the web UI's live feed does after a reconnect. Without follow it
     * stops at the last event stored when the call began. */
    uint64_t from_seq;
    const volatile int *stop; /* optional flag polled every 100 ms */
} naq_stream_opts;

/* Streams events to fn, on the calling thread, in stream order. The tail
 * holds the last `tail` matching events stored before the call; with follow,
 * every matching event stored after them comes next, none lost or repeated
 * at the seam. Events that cannot be decoded are skipped (a live stream does
 * not stop on one bad message). Returns NAQ_OK when fn asked to stop, *stop
 * was set, or (follow == 0) the tail was delivered; at once when follow == 0
 * and tail == 0. NAQ_ERR_INVALID_ARG for a malformed filter (unknown type,
 * bad id) or tail < 0; then fn never runs. */
naq_status naq_events_stream(naq_client *c, const naq_stream_opts *o, naq_event_fn fn, void *user);

/* True when e passes filter f (a NULL f passes everything). The type is
 * compared by wire name. */
int naq_event_matches(const naq_event *e, const naq_event_filter *f);

#ifdef __cplusplus
}
#endif
#endif
