/*
 * ack_subject.c - what a JetStream message's ack subject tells about it.
 * nats-server 2.9 gives every message of a consumer the reply subject
 *   $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
 * and naq reads two of its tokens without asking the server: the consumer
 * that delivered the message (the worker's fetcher shares one subscription
 * among all its consumers) and how many messages that consumer still has
 * pending after this one (a backlog figure the worker and the event
 * processors report). The worker also reads the message's stream
 * sequence, which its outcome record names (worker_job.c). Pure text work,
 * no server: tests/test_ack_subject.c.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define ACK_PREFIX "$JS.ACK."

int naq__ack_subject_parse(const char *reply, naq__ack_info *out)
{
    if (reply == NULL || strncmp(reply, ACK_PREFIX, sizeof ACK_PREFIX - 1) != 0)
        return 0;
    const char *consumer = strchr(reply + sizeof ACK_PREFIX - 1, '.'); /* after <stream> */
    if (consumer == NULL)
        return 0;
    consumer++;
    const char *end = strchr(consumer, '.');
    if (end == NULL)
        return 0;
    /* The last token, whatever comes between: the count is at the end. */
    const char *last = strrchr(reply, '.');
    out->consumer = consumer;
    out->consumer_len = (size_t)(end - consumer);
    out->pending = strtoll(last + 1, NULL, 10);
    return 1;
}

/* After "$JS.ACK." come 7 tokens (the format above), or, from newer
 * servers, 9 or more: <domain>.<account hash> first and a random token
 * last. The sequence is the 4th of 7 and the 6th of 9 or more, as nats.c
 * reads them. */
uint64_t naq__ack_subject_stream_seq(const char *reply)
{
    if (reply == NULL || strncmp(reply, ACK_PREFIX, sizeof ACK_PREFIX - 1) != 0)
        return 0;
    const char *tok[9];
    int n = 0;
    const char *p = reply + sizeof ACK_PREFIX - 1;
    tok[n++] = p;
    while (n < 9 && (p = strchr(p, '.')) != NULL)
        tok[n++] = ++p;
    int at = n == 7 ? 3 : n >= 9 ? 5 : -1;
    if (at < 0)
        return 0;
    char *end = NULL;
    unsigned long long seq = strtoull(tok[at], &end, 10);
    return end != tok[at] && *end == '.' ? (uint64_t)seq : 0;
}
