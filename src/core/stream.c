/*
 * stream.c - the stream requests several modules make: a stream's info
 * with its per-subject message counts, and a purge of one subject or of
 * what lies below a sequence, and a create that tolerates another
 * process's create of the same stream. They hand back nats.c's status and the
 * JetStream error code rather than a naq_status, because what a failure
 * means is the caller's to say: a missing stream is "nothing yet" to a
 * listing and an error to a delete.
 */
#include "internal.h"

natsStatus naq__stream_info(jsCtx *js, const char *stream, const char *filter, jsStreamInfo **si,
                            jsErrCode *jerr)
{
    *si = NULL;
    *jerr = 0;
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = filter;
    return js_GetStreamInfo(si, js, stream, filter != NULL ? &o : NULL, jerr);
}

natsStatus naq__stream_purge(jsCtx *js, const char *stream, const char *subject, uint64_t below,
                             jsErrCode *jerr)
{
    *jerr = 0;
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Subject = subject;
    o.Stream.Purge.Sequence = below;
    return js_PurgeStream(js, stream, &o, jerr);
}

int naq__stream_missing(natsStatus ns, jsErrCode jerr)
{
    return ns == NATS_NOT_FOUND || jerr == NAQ__JS_STREAM_NOT_FOUND;
}

/* JetStream API errors a create gets when another process's create of the
 * same stream came first: "stream name already in use" when the configs
 * differ, and on 2.9.10 "subjects overlap with an existing stream" even
 * when they do not (the overlap test meets the new stream first). */
#define JS_STREAM_NAME_EXISTS 10058
#define JS_STREAM_SUBJECT_OVERLAP 10065

/* "no suitable peers for placement": in a cluster that has just formed, or
 * whose node has just come back, the meta leader has not yet heard from
 * enough peers (seen from a client right after `naq server --cluster 3`
 * said ready). Asked again for a while before it counts as a real shortage
 * of servers. */
#define JS_CLUSTER_NO_PEERS 10005
#define NO_PEERS_WAIT_MS 5000

natsStatus naq__stream_create(jsCtx *js, jsStreamConfig *sc, int *existed, jsErrCode *jerr)
{
    *existed = 0;
    *jerr = 0;
    natsStatus ns;
    for (int64_t deadline = naq__mono_ms() + NO_PEERS_WAIT_MS;; naq__sleep_ms(200)) {
        ns = js_AddStream(NULL, js, sc, NULL, jerr);
        if (*jerr != JS_CLUSTER_NO_PEERS || naq__mono_ms() >= deadline)
            break;
    }
    if (ns == NATS_OK || (*jerr != JS_STREAM_NAME_EXISTS && *jerr != JS_STREAM_SUBJECT_OVERLAP))
        return ns;
    /* An overlap with a stream of another name is a real conflict: the
     * create's own error says so. */
    jsStreamInfo *si = NULL;
    jsErrCode ignored = 0;
    natsStatus found = naq__stream_info(js, sc->Name, NULL, &si, &ignored);
    jsStreamInfo_Destroy(si);
    if (found != NATS_OK)
        return ns;
    *existed = 1;
    *jerr = 0;
    return NATS_OK;
}
