/*
 * ack_subject.c - what a JetStream message's ack subject tells about it.
 * nats-server 2.9 gives every message of a consumer the reply subject
 *   $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
 * and naq reads two of its tokens without asking the server: the consumer
 * that delivered the message (the worker's fetcher shares one subscription
 * among all its consumers) and how many messages that consumer still has
 * pending after this one (a backlog figure the worker and the event
 * processors report). Pure text work, no server: tests/test_ack_subject.c.
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
