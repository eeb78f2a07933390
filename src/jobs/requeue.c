/*
 * requeue.c - changing the priority of a queued job, moving it to another
 * queue, or extending its TTL (naq_job_set_priority, naq_job_move,
 * naq_job_extend_ttl): each re-publishes the job's message changed.
 *
 * A queued job is one message in the work-queue stream. Its message is
 * found among the messages of its queue (all five levels) by its
 * Nats-Msg-Id header - the job id, or "<job id>:mv<seq>" after an earlier
 * move - with direct gets, which need no consumer (a work-queue stream
 * allows no second consumer overlapping the workers' ones).
 *
 * Who wins against a worker taking the job meanwhile: a message is
 * delivered (in order) only to the level's durable consumer
 * "naq_<queue>_p<level>" (worker.c), so "its sequence is above the
 * consumer's last delivered stream sequence" means "never delivered".
 * That is checked, the message deleted, and checked again: a delivery
 * before the delete shows in the second check (then the worker has the
 * job and nothing is re-published), none can come after it. Only then is
 * the job re-published with a new Nats-Msg-Id - the job id itself may
 * still be inside the stream's 2-minute duplicate window and would be
 * dropped as a duplicate.
 */
#include "jobs.h"
#include "core/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when msg id is the job id or one of its moves. */
static int is_job_msg(const char *msg_id, const char *job_id)
{
    size_t n = strlen(job_id);
    return msg_id != NULL && strncmp(msg_id, job_id, n) == 0 &&
           (msg_id[n] == '\0' || strncmp(msg_id + n, ":mv", 3) == 0);
}

/* Looks for job_id's message on one priority level of queue. */
static naq_status find_on_level(naq_client *c, const char *job_id, const char *queue, int level,
                                int max_scan, naq__queued_msg *f, int *cut)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq__subject(c, subject, sizeof subject, "queue.%s.%d", queue, level);
    if (s != NAQ_OK)
        return s;
    uint64_t seq = 0;
    for (int n = 0; max_scan <= 0 || n < max_scan; n++) {
        jsDirectGetMsgOptions dg;
        jsDirectGetMsgOptions_Init(&dg);
        dg.NextBySubject = subject;
        dg.Sequence = seq;
        natsMsg *m = NULL;
        natsStatus ns = js_DirectGetMsg(&m, c->js, c->cfg.job_stream, NULL, &dg);
        if (ns == NATS_NOT_FOUND)
            return NAQ_ERR_NOT_FOUND;
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read queue %s", queue);
        seq = natsMsg_GetSequence(m) + 1;
        const char *id = NULL;
        natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
        if (is_job_msg(id, job_id)) {
            f->m = m;
            f->seq = seq - 1;
            f->level = level;
            return NAQ_OK;
        }
        natsMsg_Destroy(m);
    }
    *cut = 1;
    return NAQ_ERR_NOT_FOUND;
}

naq_status naq__job_find_queued(naq_client *c, const char *job_id, const char *queue, int level,
                                int max_scan, naq__queued_msg *f, int *cut)
{
    memset(f, 0, sizeof *f);
    *cut = 0;
    for (int l = NAQ_PRIORITY_LEVELS - 1; l >= 0; l--) {
        if (level >= 0 && l != level)
            continue;
        naq_status s = find_on_level(c, job_id, queue, l, max_scan, f, cut);
        if (s != NAQ_ERR_NOT_FOUND)
            return s;
    }
    return NAQ_ERR_NOT_FOUND;
}

/* 1 when the level's consumer delivered the message at seq already. */
static naq_status delivered(naq_client *c, const char *queue, int level, uint64_t seq, int *yes)
{
    char consumer[NAQ_ID_SIZE + 16];
    snprintf(consumer, sizeof consumer, "naq_%s_p%d", queue, level);
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetConsumerInfo(&ci, c->js, c->cfg.job_stream, consumer, NULL, &jerr);
    *yes = 0;
    if (ns == NATS_NOT_FOUND) /* no worker ever served that level */
        return NAQ_OK;
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot read consumer %s", consumer);
    *yes = ci->Delivered.Stream >= seq;
    jsConsumerInfo_Destroy(ci);
    return NAQ_OK;
}

/* Why a job is not in its queue, as the error of the call. */
static naq_status not_queued(naq_client *c, const char *job_id, const naq_event *last, int have)
{
    char *waiting = NULL;
    if (naq__deps_waiting_job(c, job_id, &waiting) == NAQ_OK) {
        free(waiting);
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "job %s is waiting for its dependencies, not in a queue yet; cancel it "
                         "and enqueue it again with the priority or queue you want",
                         job_id);
    }
    if (!have)
        return naq__fail(NAQ_ERR_NOT_FOUND, "naq knows no job %s (no events)", job_id);
    if (last->type == NAQ_EVENT_SCHEDULED)
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "job %s is delayed, not in a queue yet; it can be changed once it is "
                         "queued",
                         job_id);
    if (naq__job_finished(c, job_id) != 0)
        return naq__fail(NAQ_ERR_NOT_FOUND, "job %s has finished (%s); it is in no queue", job_id,
                         naq_event_type_name(last->type));
    return naq__fail(NAQ_ERR_CLOSED, "job %s is no longer queued (its last event is %s)", job_id,
                     naq_event_type_name(last->type));
}

/* The new ttl_ms of a job re-published now whose TTL is extended by
 * extend_ms. A worker counts the TTL from when the server stored the
 * message, which a re-publish resets: so the new value is what is left of
 * the old deadline, plus the extension. */
static naq_status extended_ttl(const char *job_id, json_t *job, natsMsg *m, int64_t extend_ms,
                               int64_t *old_ttl, int64_t *new_ttl, double *expires_at)
{
    *old_ttl = json_integer_value(json_object_get(job, "ttl_ms"));
    if (*old_ttl <= 0)
        return naq__fail(NAQ_ERR_CLOSED, "job %s has no TTL (it never expires): nothing to extend",
                         job_id);
    double now = naq__now(), stored = 0;
    const char *ts = NULL;
    if (natsMsgHeader_Get(m, "Nats-Time-Stamp", &ts) != NATS_OK || ts == NULL ||
        naq_parse_time(ts, now, &stored) != NAQ_OK)
        stored = json_number_value(json_object_get(job, "enqueued_at"));
    *expires_at = stored + (double)(*old_ttl + extend_ms) / 1000.0;
    double left_ms = (*expires_at - now) * 1000.0;
    if (left_ms < 1)
        return naq__fail(NAQ_ERR_CLOSED,
                         "job %s would still be past its TTL after %lld ms more (it ran out "
                         "%.0f ms ago); extend it by more",
                         job_id, (long long)extend_ms, -left_ms + (double)extend_ms);
    *new_ttl = (int64_t)(left_ms + 0.5);
    return NAQ_OK;
}

static naq_status requeue(naq_client *c, const char *job_id, int priority, const char *queue,
                          int64_t extend_ms)
{
    naq_status s;
    if (c == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "no client given");
    if ((s = naq_id_validate("job id", job_id)) != NAQ_OK)
        return s;
    if (queue != NULL && (s = naq_id_validate("queue name", queue)) != NAQ_OK)
        return s;
    if (extend_ms <= 0 && queue == NULL &&
        (priority < NAQ_PRIORITY_LOWEST || priority > NAQ_PRIORITY_CRITICAL))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "priority %d is out of range; use 0 (lowest) to 4 (critical), 2 is "
                         "normal",
                         priority);
    naq_event last;
    int have = naq__last_event_settled(c, job_id, &last) == NAQ_OK;
    naq__queued_msg f = {0};
    int cut = 0;
    json_t *job = NULL;
    char *text = NULL;
    /* Its queue is the one its last event names (a move logs the new one). */
    s = have && last.queue_name[0]
            ? naq__job_find_queued(c, job_id, last.queue_name, -1, 0, &f, &cut)
            : NAQ_ERR_NOT_FOUND;
    if (s == NAQ_ERR_NOT_FOUND)
        s = not_queued(c, job_id, &last, have);
    if (s != NAQ_OK)
        goto out;
    job = json_loadb(natsMsg_GetData(f.m), (size_t)natsMsg_GetDataLength(f.m), 0, NULL);
    const char *q = json_string_value(json_object_get(job, "queue"));
    const char *fn = json_string_value(json_object_get(job, "function"));
    if (q == NULL || fn == NULL) {
        s = naq__fail(NAQ_ERR_CODEC, "the queued message of job %s is not a job", job_id);
        goto out;
    }
    /* Copies: the JSON's own strings are replaced below. */
    char from_queue[NAQ_ID_SIZE], function[NAQ_ID_SIZE];
    snprintf(from_queue, sizeof from_queue, "%s", q);
    snprintf(function, sizeof function, "%s", fn);
    int to_level = queue == NULL && extend_ms <= 0 ? priority : f.level;
    const char *to_queue = queue != NULL ? queue : from_queue;
    int64_t old_ttl = 0, new_ttl = 0;
    double expires_at = 0;
    if (extend_ms > 0 &&
        (s = extended_ttl(job_id, job, f.m, extend_ms, &old_ttl, &new_ttl, &expires_at)) != NAQ_OK)
        goto out;
    if (extend_ms <= 0 && to_level == f.level && strcmp(to_queue, from_queue) == 0)
        goto out; /* nothing to change */

    int yes = 0;
    if ((s = delivered(c, from_queue, f.level, f.seq, &yes)) != NAQ_OK)
        goto out;
    if (!yes) {
        jsErrCode jerr = 0;
        natsStatus ns = js_DeleteMsg(c->js, c->cfg.job_stream, f.seq, NULL, &jerr);
        if (ns != NATS_OK)
            yes = 1; /* acknowledged (and so removed) meanwhile */
        else if ((s = delivered(c, from_queue, f.level, f.seq, &yes)) != NAQ_OK)
            goto out;
    }
    if (yes) {
        s = naq__fail(NAQ_ERR_CLOSED,
                      "job %s is no longer queued: a worker took it (nothing was changed)", job_id);
        goto out;
    }
    json_object_set_new(job, "priority", json_integer(to_level));
    json_object_set_new(job, "queue", json_string(to_queue));
    if (extend_ms > 0)
        json_object_set_new(job, "ttl_ms", json_integer((json_int_t)new_ttl));
    text = naq__json_dumps(job, NAQ__JSON_FLAGS);
    char msg_id[NAQ_ID_SIZE + 32];
    snprintf(msg_id, sizeof msg_id, "%s:mv%llu", job_id, (unsigned long long)f.seq);
    s = text ? naq__job_publish(c, c->js, job_id, to_queue, function, to_level, text, strlen(text),
                                msg_id)
             : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory moving job %s", job_id);
    if (s != NAQ_OK) {
        /* Put it back where it was, so the job is not lost. */
        char why[1024];
        snprintf(why, sizeof why, "%s", naq_last_error());
        snprintf(msg_id, sizeof msg_id, "%s:mv%llu:back", job_id, (unsigned long long)f.seq);
        naq_status b =
            naq__job_publish(c, c->js, job_id, from_queue, function, f.level, natsMsg_GetData(f.m),
                             (size_t)natsMsg_GetDataLength(f.m), msg_id);
        s = naq__fail(s, "job %s was not changed: %s%s", job_id, why,
                      b == NAQ_OK ? " (it is back in its queue)"
                                  : "; putting it back failed too: enqueue it again");
        goto out;
    }
    if (extend_ms > 0)
        naq__schedule_event(c, NAQ_EVENT_TTL_EXTENDED, NULL, job_id, from_queue, NULL, NULL,
                            json_pack("{s:I, s:I, s:I, s:f}", "extended_by_ms",
                                      (json_int_t)extend_ms, "previous_ttl_ms", (json_int_t)old_ttl,
                                      "ttl_ms", (json_int_t)new_ttl, "expires_at", expires_at));
    else if (queue == NULL)
        naq__schedule_event(c, NAQ_EVENT_QUEUE_PRIORITY_CHANGED, NULL, job_id, from_queue, NULL,
                            NULL, json_pack("{s:i, s:i}", "from", f.level, "to", to_level));
    else
        naq__schedule_event(c, NAQ_EVENT_QUEUE_MOVED, NULL, job_id, to_queue, NULL, NULL,
                            json_pack("{s:s, s:s}", "from", from_queue, "to", to_queue));
out:
    free(text);
    json_decref(job);
    natsMsg_Destroy(f.m);
    naq_event_clear(&last);
    return s;
}

naq_status naq_job_set_priority(naq_client *c, const char *job_id, int priority)
{
    return requeue(c, job_id, priority, NULL, 0);
}

naq_status naq_job_move(naq_client *c, const char *job_id, const char *queue)
{
    return requeue(c, job_id, 0, queue, 0);
}

naq_status naq_job_extend_ttl(naq_client *c, const char *job_id, int64_t extend_ms)
{
    if (extend_ms <= 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "extend a TTL by a positive duration, not %lld ms",
                         (long long)extend_ms);
    return requeue(c, job_id, 0, NULL, extend_ms);
}
