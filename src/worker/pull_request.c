/*
 * pull_request.c - one request for jobs of the worker's fetcher; see
 * pull_request.h for how the server ends one.
 */
#include "pull_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The server refuses heartbeats more than half a poll's expiry. */
static int has_heartbeats(int64_t expires_ms)
{
    return expires_ms >= 2 * NAQ_PULL_HEARTBEAT_MS;
}

void naq__pull_req_subject(const char *inbox, int slot, unsigned gen, char *out, size_t cap)
{
    snprintf(out, cap, "%s.%d.%u", inbox, slot, gen);
}

void naq__pull_req_body(int n, int64_t expires_ms, char *out, size_t cap)
{
    if (expires_ms == 0) /* expires is in nanoseconds */
        snprintf(out, cap, "{\"batch\":%d,\"no_wait\":true}", n);
    else if (has_heartbeats(expires_ms))
        snprintf(out, cap, "{\"batch\":%d,\"expires\":%lld,\"idle_heartbeat\":%lld}", n,
                 (long long)expires_ms * 1000000LL, (long long)NAQ_PULL_HEARTBEAT_MS * 1000000LL);
    else
        snprintf(out, cap, "{\"batch\":%d,\"expires\":%lld}", n, (long long)expires_ms * 1000000LL);
}

int naq__pull_req_parse_reply(const char *inbox, const char *subject, int nslots, int *slot,
                              unsigned *gen)
{
    size_t n = strlen(inbox);
    if (strncmp(subject, inbox, n) != 0 || subject[n] != '.' || subject[n + 1] < '0' ||
        subject[n + 1] > '9')
        return 0;
    char *end = NULL;
    long i = strtol(subject + n + 1, &end, 10);
    if (*end != '.' || i >= nslots || end[1] < '0' || end[1] > '9')
        return 0;
    char *end_gen = NULL;
    unsigned long g = strtoul(end + 1, &end_gen, 10);
    if (*end_gen != '\0')
        return 0;
    *slot = (int)i;
    *gen = (unsigned)g;
    return 1;
}

void naq__pull_req_sent(naq__pull_req *r, unsigned gen, int n, int64_t expires_ms, int64_t now_ms,
                        int64_t now_us)
{
    r->open = 1;
    r->gen = gen;
    r->batch = n;
    r->delivered = 0;
    r->heard = 0;
    r->expires_ms = expires_ms;
    r->last_heard_ms = now_ms;
    r->sent_us = now_us;
}

void naq__pull_req_heard(naq__pull_req *r, int64_t now_ms)
{
    r->heard = 1;
    r->unanswered = 0;
    r->last_heard_ms = now_ms;
}

naq__pull_verdict naq__pull_req_due(naq__pull_req *r, int64_t now_ms, int64_t now_us)
{
    if (r->expires_ms > 0 &&
        now_us - r->sent_us >= (r->expires_ms + NAQ_PULL_EXPIRY_GRACE_MS) * 1000) {
        r->unanswered = r->heard ? 0 : r->unanswered + 1;
        if (r->unanswered < NAQ_PULL_UNANSWERED_LOST)
            return NAQ__PULL_OVER;
        r->unanswered = 0;
        return NAQ__PULL_LOST;
    }
    /* A poll with heartbeats hears one every NAQ_PULL_HEARTBEAT_MS; a
     * no-wait request is answered at once. */
    int64_t limit =
        has_heartbeats(r->expires_ms) ? 3 * NAQ_PULL_HEARTBEAT_MS : NAQ_PULL_NOWAIT_LOST_MS;
    return now_ms - r->last_heard_ms >= limit ? NAQ__PULL_LOST : NAQ__PULL_WAITING;
}
