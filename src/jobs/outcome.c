/*
 * outcome.c - the outcome stream: where a job's end is recorded, and who
 * waits for it (jobs.h).
 *
 * Stream NAQ_OUTCOMES (NAQ_OUTCOMES_<prefix> for a prefix other than naq),
 * subject "<prefix>.outcome.<job_id>", 7 days. Two
 * kinds of message share a job's subject (header Naq-Kind):
 *   "waiter"   {"dependent": "<id>"}: a job that waits for this one;
 *   "outcome"  the job's outcome record (docs/protocol.md, "Results"):
 *              its result and the fact that it finished, in one message.
 * Every write states the subject's last sequence it saw
 * (Nats-Expected-Last-Subject-Sequence, 0 = nothing yet), so the server
 * orders them: a waiter is only added while no outcome is there, and an
 * outcome is only written by someone who saw every waiter before it.
 * This is what lets a job that nobody waits for finish with one
 * asynchronous publish and no read (finish.c): it writes with "0"; only
 * when that fails did a waiter (or an earlier run's outcome) come first.
 *
 * Reads are direct gets (the stream allows them): the last message of a
 * subject tells at once whether the job finished.
 */
#include "jobs.h"
#include "core/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_ATTEMPTS 100

naq_status naq__outcome_subject(naq_client *c, const char *job_id, char *out, size_t cap)
{
    return naq__subject(c, out, cap, "outcome.%s", job_id);
}

static naq_status get(naq_client *c, jsDirectGetMsgOptions *dg, natsMsg **m)
{
    natsStatus ns = js_DirectGetMsg(m, c->js, c->outcome_stream, NULL, dg);
    if (ns == NATS_NOT_FOUND)
        return NAQ_ERR_NOT_FOUND;
    if (ns != NATS_OK)
        return naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, 0,
                              "cannot read the outcome stream %s", c->outcome_stream);
    return NAQ_OK;
}

int naq__outcome_is_record(natsMsg *m)
{
    const char *kind = NULL;
    return natsMsgHeader_Get(m, NAQ__OUTCOME_KIND_HEADER, &kind) == NATS_OK && kind != NULL &&
           strcmp(kind, "outcome") == 0;
}

/* The last message on the job's subject (from_seq 0), or the first at or
 * after from_seq. */
static naq_status get_on_subject(naq_client *c, const char *job_id, uint64_t from_seq,
                                 natsMsg **out)
{
    char subject[NAQ_URL_MAX];
    *out = NULL;
    naq_status s = naq__outcome_subject(c, job_id, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    jsDirectGetMsgOptions dg;
    jsDirectGetMsgOptions_Init(&dg);
    if (from_seq == 0) {
        dg.LastBySubject = subject;
    } else {
        dg.Sequence = from_seq;
        dg.NextBySubject = subject;
    }
    return get(c, &dg, out);
}

naq_status naq__outcome_last(naq_client *c, const char *job_id, natsMsg **out)
{
    return get_on_subject(c, job_id, 0, out);
}

naq_status naq__outcome_next(naq_client *c, const char *job_id, uint64_t from_seq, natsMsg **out)
{
    return get_on_subject(c, job_id, from_seq > 0 ? from_seq : 1, out);
}

int naq__outcome_status(natsMsg *record)
{
    json_t *o = json_loadb(natsMsg_GetData(record), (size_t)natsMsg_GetDataLength(record), 0, NULL);
    const char *status = json_string_value(json_object_get(o, "status"));
    int r = status != NULL && strcmp(status, "completed") == 0 ? 1 : -1;
    json_decref(o);
    return r;
}

naq_status naq__outcome_msg(naq_client *c, const char *job_id, const char *kind, const char *body,
                            size_t len, natsMsg **out)
{
    char subject[NAQ_URL_MAX];
    *out = NULL;
    naq_status s = naq__outcome_subject(c, job_id, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    natsStatus ns = natsMsg_Create(out, subject, NULL, body, (int)len);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*out, NAQ__OUTCOME_KIND_HEADER, kind);
    if (ns != NATS_OK) {
        natsMsg_Destroy(*out);
        *out = NULL;
        return naq__fail_nats(NAQ_ERR_NO_MEMORY, ns, 0, "cannot build the %s message of job %s",
                              kind, job_id);
    }
    return NAQ_OK;
}

naq_status naq__outcome_write(naq_client *c, natsMsg *m, uint64_t last_seq)
{
    char what[NAQ_URL_MAX + 8];
    snprintf(what, sizeof what, "to %s", natsMsg_GetSubject(m));
    return naq__js_publish_cas(c->js, m, last_seq, NULL, NULL, what);
}

naq_status naq__outcome_wait_for(naq_client *c, const char *dep, const char *dependent,
                                 int *outcome)
{
    *outcome = 0;
    json_t *w = json_pack("{s:s}", "dependent", dependent);
    char *body = w ? naq__json_dumps(w, NAQ__JSON_FLAGS) : NULL;
    json_decref(w);
    if (body == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory registering a dependent");
    naq_status s = NAQ_ERR_EXISTS;
    for (int attempt = 0; attempt < WAIT_ATTEMPTS && s == NAQ_ERR_EXISTS; attempt++) {
        natsMsg *last = NULL;
        uint64_t last_seq = 0;
        s = naq__outcome_last(c, dep, &last);
        if (s == NAQ_OK && naq__outcome_is_record(last)) {
            *outcome = naq__outcome_status(last);
            natsMsg_Destroy(last);
            break;
        }
        if (s == NAQ_OK)
            last_seq = natsMsg_GetSequence(last);
        else if (s != NAQ_ERR_NOT_FOUND)
            break;
        natsMsg_Destroy(last);
        if (last_seq == 0) {
            /* Nothing recorded: finished long ago (the record expired), or
             * not yet. The events tell the first apart. */
            *outcome = naq__job_finished_by_events(c, dep);
            if (*outcome != 0) {
                s = NAQ_OK;
                break;
            }
        }
        natsMsg *m = NULL;
        if ((s = naq__outcome_msg(c, dep, "waiter", body, strlen(body), &m)) == NAQ_OK)
            s = naq__outcome_write(c, m, last_seq);
        natsMsg_Destroy(m);
    }
    free(body);
    if (s == NAQ_ERR_EXISTS)
        s = naq__fail(NAQ_ERR_TIMEOUT, "too much contention on the outcome of job %s", dep);
    return s;
}

int naq__outcome_settled(naq_client *c, const char *job_id, uint64_t message_seq)
{
    natsMsg *last = NULL;
    int settled = 0;
    if (message_seq > 0 && naq__outcome_last(c, job_id, &last) == NAQ_OK &&
        naq__outcome_is_record(last)) {
        json_t *o = json_loadb(natsMsg_GetData(last), (size_t)natsMsg_GetDataLength(last), 0, NULL);
        json_t *seq = json_object_get(o, "message_seq");
        settled = json_is_integer(seq) && (uint64_t)json_integer_value(seq) == message_seq;
        json_decref(o);
    }
    natsMsg_Destroy(last);
    naq__clear_error();
    return settled;
}

int naq__job_finished(naq_client *c, const char *job_id)
{
    natsMsg *last = NULL;
    naq_status s = naq__outcome_last(c, job_id, &last);
    int r = 0;
    if (s == NAQ_OK && naq__outcome_is_record(last))
        r = naq__outcome_status(last);
    natsMsg_Destroy(last);
    if (s == NAQ_ERR_NOT_FOUND)
        r = naq__job_finished_by_events(c, job_id);
    naq__clear_error();
    return r;
}

/* 1 completed, -1 failed for good, 0 not a final outcome. */
static int event_outcome(naq_event_type t)
{
    switch (t) {
    case NAQ_EVENT_COMPLETED: return 1;
    case NAQ_EVENT_CANCELLED:
    case NAQ_EVENT_MAX_RETRIES_EXCEEDED:
    case NAQ_EVENT_TTL_EXPIRED: return -1;
    default: return 0;
    }
}

/* Events that say nothing about a job's state (the worker logs
 * worker_released next to the outcome). */
static int bookkeeping(naq_event_type t)
{
    return t == NAQ_EVENT_WORKER_RELEASED || t == NAQ_EVENT_WORKER_ASSIGNED ||
           t == NAQ_EVENT_TTL_EXTENDED;
}

int naq__job_finished_by_events(naq_client *c, const char *job_id)
{
    naq_event last;
    naq_status s = naq_job_last_event(c, job_id, &last);
    int r = s == NAQ_OK ? event_outcome(last.type) : 0;
    int look_back = s == NAQ_OK && bookkeeping(last.type);
    naq_event_clear(&last);
    if (look_back) {
        naq_event_list l;
        if (naq_job_history(c, job_id, &l) == NAQ_OK) {
            for (size_t i = l.count; i-- > 0;) {
                if (!bookkeeping(l.items[i].type)) {
                    r = event_outcome(l.items[i].type);
                    break;
                }
            }
        }
        naq_event_list_free(&l);
    }
    naq__clear_error();
    return r;
}
