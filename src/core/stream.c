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

natsStatus naq__stream_create(jsCtx *js, jsStreamConfig *sc, int *existed, jsErrCode *jerr)
{
    *existed = 0;
    *jerr = 0;
    natsStatus ns = js_AddStream(NULL, js, sc, NULL, jerr);
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
