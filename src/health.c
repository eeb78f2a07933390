/*
 * health.c - naq_health(): connection state and the size of each stream.
 *
 * Read-only on purpose: a health probe that created missing streams would
 * hide the very fault it is there to report. Stream info is one JetStream
 * API request per stream, cheap enough to poll.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* JetStream API error code: "stream not found". */
#define JS_STREAM_NOT_FOUND 10059

static int is_up(natsConnection *nc)
{
    return nc != NULL && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
}

static void stream_health(jsCtx *js, const char *name, naq_stream_health *out)
{
    snprintf(out->name, sizeof out->name, "%s", name);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, js, name, NULL, &jerr);
    if (ns == NATS_OK && si != NULL) {
        out->ok = 1;
        out->messages = si->State.Msgs;
        out->bytes = si->State.Bytes;
        out->first_seq = si->State.FirstSeq;
        out->last_seq = si->State.LastSeq;
        out->consumers = si->State.Consumers;
    } else if (ns == NATS_NOT_FOUND || jerr == JS_STREAM_NOT_FOUND) {
        snprintf(out->error, sizeof out->error,
                 "stream %s does not exist (any naq command that connects creates it)", name);
    } else if (ns == NATS_NO_RESPONDERS || ns == NATS_TIMEOUT) {
        snprintf(out->error, sizeof out->error,
                 "no JetStream answer for stream %s (is JetStream enabled on the server?)", name);
    } else {
        const char *why = nats_GetLastError(NULL);
        snprintf(out->error, sizeof out->error, "stream %s: %s", name,
                 why != NULL && why[0] != '\0' ? why : natsStatus_GetText(ns));
    }
    jsStreamInfo_Destroy(si);
}

naq_status naq_health(naq_client *c, naq_health_report *out)
{
    if (c == NULL || out == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_health needs a client and a report");
    memset(out, 0, sizeof *out);
    out->rtt_us = -1;
    out->connected = is_up(c->nc) && is_up(c->enc);
    char url[sizeof out->url];
    if (natsConnection_GetConnectedUrl(c->nc, url, sizeof url) != NATS_OK || url[0] == '\0')
        snprintf(url, sizeof url, "%s", c->cfg.url);
    naq_url_redact(url, out->url, sizeof out->url); /* a report is printed: no secrets */
    if (natsConnection_GetConnectedUrl(c->enc, url, sizeof url) != NATS_OK || url[0] == '\0')
        snprintf(url, sizeof url, "%s", c->cfg.event_url[0] ? c->cfg.event_url : c->cfg.url);
    naq_url_redact(url, out->event_url, sizeof out->event_url);
    int64_t rtt_ns = 0;
    if (out->connected && natsConnection_GetRTT(c->nc, &rtt_ns) == NATS_OK)
        out->rtt_us = rtt_ns / 1000;

    stream_health(c->ejs, c->cfg.event_stream, &out->streams[NAQ_HEALTH_EVENTS]);
    stream_health(c->js, c->cfg.job_stream, &out->streams[NAQ_HEALTH_JOBS]);
    stream_health(c->js, c->cfg.dlq_stream, &out->streams[NAQ_HEALTH_DLQ]);

    out->healthy = out->connected;
    for (int i = 0; i < NAQ_HEALTH_STREAMS; i++)
        out->healthy = out->healthy && out->streams[i].ok;
    return NAQ_OK;
}
