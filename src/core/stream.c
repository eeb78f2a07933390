/*
 * stream.c - the stream requests several modules make: a stream's info
 * with its per-subject message counts, and a purge of one subject or of
 * what lies below a sequence. They hand back nats.c's status and the
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
