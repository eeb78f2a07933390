/*
 * publish.c - the job message: one JSON job (naq_job_encode) on the
 * literal subject "<prefix>.queue.<queue>.<priority>", with Nats-Msg-Id =
 * the job id (a re-sent job is stored once within the queue's duplicate
 * window) and the Naq-Queue / Naq-Function headers. Every path that puts
 * a job into a queue (enqueue, batch, delayed release, dependency
 * release, dead-letter retry, moves) builds it here.
 */
#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

naq_status naq__check_payload(naq_client *c, const char *job_id, size_t len)
{
    int64_t max_payload = natsConnection_GetMaxPayload(c->nc);
    if (max_payload > 0 && (int64_t)len > max_payload)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "job %s is %zu bytes but the server accepts messages of at most %lld "
                         "bytes; pass large data by reference (a path or URL) or raise the "
                         "server's max_payload",
                         job_id, len, (long long)max_payload);
    return NAQ_OK;
}

naq_status naq__job_msg_to(const char *subject, const char *job_id, const char *queue,
                           const char *function, const char *json, size_t len, const char *msg_id,
                           natsMsg **out)
{
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, subject, NULL, json, (int)len);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id ? msg_id : job_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Queue", queue);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Function", function);
    if (ns != NATS_OK) {
        natsMsg_Destroy(m);
        m = NULL;
    }
    *out = m;
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NO_MEMORY, ns, 0, "cannot build the message of job %s",
                              job_id);
    return NAQ_OK;
}

naq_status naq__job_msg(naq_client *c, const char *job_id, const char *queue, const char *function,
                        int priority, const char *json, size_t len, const char *msg_id,
                        natsMsg **out)
{
    char subject[NAQ_URL_MAX];
    *out = NULL;
    naq_status s = naq__subject(c, subject, sizeof subject, "queue.%s.%d", queue, priority);
    if (s != NAQ_OK)
        return s;
    return naq__job_msg_to(subject, job_id, queue, function, json, len, msg_id, out);
}

naq_status naq__job_publish(naq_client *c, jsCtx *js, const char *job_id, const char *queue,
                            const char *function, int priority, const char *json, size_t len,
                            const char *msg_id)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq__subject(c, subject, sizeof subject, "queue.%s.%d", queue, priority);
    if (s != NAQ_OK)
        return s;
    natsMsg *msg = NULL;
    jsPubAck *ack = NULL;
    if ((s = naq__job_msg_to(subject, job_id, queue, function, json, len, msg_id, &msg)) != NAQ_OK)
        return s;
    jsErrCode jerr = 0;
    natsStatus ns = js_PublishMsg(&ack, js, msg, NULL, &jerr);
    if (ns == NATS_NO_RESPONDERS)
        s = naq__fail(NAQ_ERR_NATS,
                      "no stream stores subject %s, so job %s was not queued; is the %s stream "
                      "there? (naq creates it when a client connects)",
                      subject, job_id, c->cfg.job_stream);
    else if (ns == NATS_TIMEOUT)
        s = naq__fail(NAQ_ERR_TIMEOUT,
                      "the server did not confirm job %s in time, so it may or may not be "
                      "queued; enqueue again with the same job id (stored once within 2 minutes)",
                      job_id);
    else if (ns != NATS_OK)
        s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "job %s was not queued on %s", job_id,
                           subject);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    return s;
}

/* The job is stored already, so a logging problem is not the caller's
 * failure (the logger spools or counts what it cannot send). */
void naq__log_enqueued(naq_client *c, const naq_job *j)
{
    naq_event e;
    if (naq__enqueued_event(j, &e) == NAQ_OK)
        naq_client_log(c, &e);
    naq_event_clear(&e);
}

/* ---------------------------------------------------------------- enqueue */
