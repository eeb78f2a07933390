/*
 * pull_request.h - one request for jobs of the worker's fetcher
 * (worker_pull.c): what it asks the server, the reply subject its answers
 * come on, and when it is over or its consumer counts as lost.
 *
 * How nats-server 2.9.10 ends a request (measured with a probe program
 * and read in its consumer.go):
 *  - a no-wait request is answered at once: the messages available (up to
 *    the batch), then status 408 ends it (404 when there were none);
 *  - a request with "expires" (a poll) ends with 408 at its expiry, or
 *    without a word: a message that comes for the consumer after the
 *    expiry, before the server's own timer has swept the request, finds it
 *    expired and drops it silently (nextWaiting). In the benchmarks that
 *    was one poll in one or two thousand, and taken as lost it kept the
 *    worker from asking again for a second. So a poll is over once its expiry (and
 *    NAQ_PULL_EXPIRY_GRACE_MS) has passed, answered or not, and only a
 *    consumer that says nothing to NAQ_PULL_UNANSWERED_LOST polls in a row
 *    counts as lost;
 *  - with "idle_heartbeat" the server sends status 100 while a poll waits,
 *    so a poll whose server went away is noticed within a few heartbeats.
 * Each request has its own reply subject "<inbox>.<slot>.<generation>", so
 * that a late 408 of one request cannot end the next of the same slot.
 */
#ifndef NAQ_PULL_REQUEST_H
#define NAQ_PULL_REQUEST_H

#include <stddef.h>
#include <stdint.h>

/* Heartbeats of a poll; three missed ones and it counts as lost. */
#define NAQ_PULL_HEARTBEAT_MS 100
/* A no-wait request unanswered this long counts as lost (the server went
 * away, or the consumer is gone: a request to a missing consumer is never
 * answered). */
#define NAQ_PULL_NOWAIT_LOST_MS 1000
/* A poll this long past its expiry is over, whether or not its 408 came. */
#define NAQ_PULL_EXPIRY_GRACE_MS 50
/* Polls in a row that ended without a job or a status: the consumer is
 * taken as lost. */
#define NAQ_PULL_UNANSWERED_LOST 3

/* The request open on one consumer (queue q, level l: slot q*levels+l). */
typedef struct {
    int open;
    unsigned gen; /* the last token of its reply subject */
    int batch, delivered;
    int heard;          /* a job or a status came for it */
    int unanswered;     /* polls in a row of this slot that ended unheard */
    int64_t expires_ms; /* a poll's expiry; 0 for a no-wait request */
    int64_t last_heard_ms;
    int64_t sent_us;
} naq__pull_req;

typedef enum {
    NAQ__PULL_WAITING, /* still open */
    NAQ__PULL_OVER,    /* a poll past its expiry: ask again */
    NAQ__PULL_LOST     /* its consumer does not answer */
} naq__pull_verdict;

/* The request's reply subject and its JSON body (batch n, expires_ms 0 for
 * a no-wait request), into buffers of the given sizes. */
void naq__pull_req_subject(const char *inbox, int slot, unsigned gen, char *out, size_t cap);
void naq__pull_req_body(int n, int64_t expires_ms, char *out, size_t cap);

/* The slot and generation of a reply subject of inbox, for slots below
 * nslots; 0 when it is not one. */
int naq__pull_req_parse_reply(const char *inbox, const char *subject, int nslots, int *slot,
                              unsigned *gen);

/* r was sent now. Keeps r->unanswered, the slot's count. */
void naq__pull_req_sent(naq__pull_req *r, unsigned gen, int n, int64_t expires_ms, int64_t now_ms,
                        int64_t now_us);

/* A job or a status came for r. */
void naq__pull_req_heard(naq__pull_req *r, int64_t now_ms);

/* Whether the open request r is still waiting, over, or lost. A poll
 * found over counts toward NAQ_PULL_UNANSWERED_LOST when nothing was
 * heard of it; the caller ends r either way. */
naq__pull_verdict naq__pull_req_due(naq__pull_req *r, int64_t now_ms, int64_t now_us);

#endif
