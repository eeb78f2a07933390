/*
 * web_job.c - a job's args while it is still in its queue, for
 * GET /api/jobs/<id> (web_api.c): read from the job message itself.
 *
 * The job stream is a work queue (docs/protocol.md): a job's message stays
 * on "<prefix>.queue.<queue>.<priority>" from its enqueue until a worker
 * acknowledges it (it completed, or failed for good and went to the
 * dead-letter stream), so a waiting or running job can be read there and
 * a finished one cannot. Nothing records the message's stream sequence
 * (the `enqueued` event is logged before the message is stored), so the
 * message is found by its Nats-Msg-Id: the job id, or "<id>:mv<seq>"
 * after a move. The history says which one subject to look on (the queue
 * and priority of the enqueue, then of each move), and the scan walks that
 * subject with direct gets, oldest first. The subject holds only the jobs
 * not yet acknowledged at that level, and the scan stops after
 * WEB_JOB_SCAN_MAX of them, so a page of a job deep in a long backlog
 * costs at most that many round trips (about 0.1 ms each on loopback).
 */
#include "web_int.h"

#include "core/crypt.h" /* naq__crypt_show_args: args opened with the key */
#include "jobs/jobs.h"  /* naq__job_find_queued */

#include <stdio.h>
#include <string.h>

/* The queue and priority h says the job's message is on now: the
 * enqueue's, then each move's. 0 when the history has no enqueue. */
static int where_queued(const naq_event_list *h, char *queue, size_t cap, int *priority)
{
    int found = 0;
    for (size_t i = 0; i < h->count; i++) {
        const naq_event *e = &h->items[i];
        json_t *d = e->details_json ? json_loads(e->details_json, 0, NULL) : NULL;
        json_t *p = NULL;
        if (e->type == NAQ_EVENT_ENQUEUED)
            p = json_object_get(d, "priority");
        else if (e->type == NAQ_EVENT_QUEUE_PRIORITY_CHANGED)
            p = json_object_get(d, "to");
        if (e->type == NAQ_EVENT_ENQUEUED || e->type == NAQ_EVENT_QUEUE_MOVED) {
            snprintf(queue, cap, "%s", e->queue_name);
            found = 1;
        }
        if (json_is_integer(p))
            *priority = (int)json_integer_value(p);
        json_decref(d);
    }
    return found;
}

json_t *web_queued_job(naq_client *c, const char *job_id, const naq_event_list *h,
                       const char **missing)
{
    char queue[NAQ_ID_SIZE];
    int priority = NAQ_PRIORITY_NORMAL;
    *missing = "not_enqueued";
    if (!where_queued(h, queue, sizeof queue, &priority))
        return NULL;
    naq__queued_msg f;
    int cut = 0;
    naq_status s = naq__job_find_queued(c, job_id, queue, priority, WEB_JOB_SCAN_MAX, &f, &cut);
    if (s != NAQ_OK) {
        *missing = s != NAQ_ERR_NOT_FOUND ? "unavailable" : cut ? "scan_limit" : "not_in_queue";
        return NULL;
    }
    json_t *job = json_loadb(natsMsg_GetData(f.m), (size_t)natsMsg_GetDataLength(f.m), 0, NULL);
    natsMsg_Destroy(f.m);
    if (job == NULL) {
        *missing = "unreadable";
        return NULL;
    }
    naq__crypt_show_args(c->crypt, job);
    *missing = NULL;
    return job;
}
