/*
 * job_watch.c - waiting for one job: naq_wait_for_event and
 * naq_monitor_job.
 *
 * Both read the job's history first (history.c: direct gets, no server
 * state) and only then, when what they wait for has not happened, follow
 * the job's literal subject with an ordered consumer that starts at the
 * sequence after the history's last event. The history's last sequence is
 * the seam: an event stored after the history was read has a higher
 * sequence, so it is delivered, and none is delivered twice. A job with no
 * events yet is followed from its first.
 */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* How often a waiting follow looks at the stop flag and the clock. */
#define POLL_MS 100

typedef int (*visit_fn)(const naq_event *e, void *ud);

/* Sequence and subject of a message delivered by a consumer. */
static uint64_t stream_seq(natsMsg *m)
{
    jsMsgMetaData *md = NULL;
    uint64_t seq = 0;
    if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
        seq = md->Sequence.Stream;
        jsMsgMetaData_Destroy(md);
    }
    return seq;
}

/* Visits job_id's events, history then live, until visit returns non-zero
 * (NAQ_OK), *stop is set (NAQ_OK) or the deadline passes (NAQ_ERR_TIMEOUT).
 * deadline_ms < 0: none. */
static naq_status follow_job(naq_client *c, const char *job_id, int64_t deadline_ms,
                             const volatile int *stop, visit_fn visit, void *ud)
{
    naq_event_list hist = {0};
    naq_status s = naq_job_history(c, job_id, &hist);
    if (s != NAQ_OK && s != NAQ_ERR_NOT_FOUND)
        return s;
    uint64_t last = 0;
    for (size_t i = 0; i < hist.count; i++) {
        last = hist.items[i].nats_sequence;
        if (visit(&hist.items[i], ud)) {
            naq_event_list_free(&hist);
            return NAQ_OK;
        }
    }
    naq_event_list_free(&hist);

    char subject[NAQ_URL_MAX];
    if ((s = naq__subject(c, subject, sizeof subject, "jobs.events.%s", job_id)) != NAQ_OK)
        return s;
    char what[NAQ_ID_SIZE + 64];
    snprintf(what, sizeof what, "cannot follow the events of job %s", job_id);
    natsSubscription *sub = NULL;
    /* After the history's last event: the seam, see the top of the file. */
    naq__event_start at = {js_DeliverAll, last > 0 ? last + 1 : 0, 0};
    if ((s = naq__event_subscribe(c, subject, at, &sub, what)) != NAQ_OK)
        return s;
    natsStatus ns;
    for (;;) {
        if (stop != NULL && *stop)
            break;
        int64_t wait = POLL_MS;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - naq__mono_ms();
            if (left <= 0) {
                s = naq__fail(NAQ_ERR_TIMEOUT, "job %s: what was waited for did not happen in time",
                              job_id);
                break;
            }
            if (left < wait)
                wait = left;
        }
        natsMsg *m = NULL;
        ns = natsSubscription_NextMsg(&m, sub, wait);
        if (ns == NATS_TIMEOUT)
            continue;
        if (ns != NATS_OK) {
            s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "lost the events of job %s", job_id);
            break;
        }
        naq_event e;
        const char *data = natsMsg_GetData(m);
        int done = 0;
        /* A message that does not decode is skipped, as live streams do. */
        if (naq_event_decode(data ? data : "", (size_t)natsMsg_GetDataLength(m), &e) == NAQ_OK) {
            snprintf(e.nats_subject, sizeof e.nats_subject, "%s", natsMsg_GetSubject(m));
            e.nats_sequence = stream_seq(m);
            done = visit(&e, ud);
        }
        naq_event_clear(&e);
        natsMsg_Destroy(m);
        if (done)
            break;
    }
    natsSubscription_Unsubscribe(sub); /* deletes the ephemeral consumer now */
    natsSubscription_Destroy(sub);
    return s;
}

/* ---- wait_for_event ---- */

typedef struct {
    naq_event_type type;
    naq_event *out;
    naq_status copied;
    int found;
} wait_ctx;

static int wait_visit(const naq_event *e, void *ud)
{
    wait_ctx *w = ud;
    if (e->type != w->type)
        return 0;
    w->found = 1;
    naq_event_clear(w->out);
    w->copied = naq_event_copy(w->out, e);
    return 1;
}

naq_status naq_wait_for_event(naq_client *c, const char *job_id, naq_event_type type,
                              int64_t timeout_ms, naq_event *out)
{
    naq_event_init(out, type);
    naq_status s = naq_id_validate("job id", job_id);
    if (s != NAQ_OK)
        return s;
    if ((int)type < 0 || type >= NAQ_EVENT_TYPE_COUNT)
        return naq__fail(NAQ_ERR_INVALID_ARG, "%d is no event type", (int)type);
    int64_t deadline = timeout_ms < 0 ? -1 : naq__mono_ms() + timeout_ms;
    wait_ctx w = {type, out, NAQ_OK, 0};
    s = follow_job(c, job_id, deadline, NULL, wait_visit, &w);
    if (s == NAQ_ERR_TIMEOUT)
        return naq__fail(NAQ_ERR_TIMEOUT, "job %s had no '%s' event within %lld ms", job_id,
                         naq_event_type_name(type), (long long)timeout_ms);
    if (s == NAQ_OK && w.found)
        s = w.copied;
    return s;
}

/* ---- monitor_job ---- */

int naq_event_is_terminal(const naq_event *e)
{
    switch (e->type) {
    case NAQ_EVENT_COMPLETED:
    case NAQ_EVENT_CANCELLED:
    case NAQ_EVENT_MAX_RETRIES_EXCEEDED:
    case NAQ_EVENT_TTL_EXPIRED:
    case NAQ_EVENT_DEPENDENCY_FAILED: return 1;
    case NAQ_EVENT_FAILED: break;
    default: return 0;
    }
    if (e->details_json == NULL)
        return 1;
    json_t *d = json_loads(e->details_json, 0, NULL);
    int retry = json_is_true(json_object_get(d, "will_retry"));
    json_decref(d);
    return !retry;
}

typedef struct {
    naq_event_fn fn;
    void *user;
} monitor_ctx;

static int monitor_visit(const naq_event *e, void *ud)
{
    monitor_ctx *m = ud;
    return m->fn(e, m->user) != 0 || naq_event_is_terminal(e);
}

naq_status naq_monitor_job(naq_client *c, const char *job_id, naq_event_fn fn, void *user,
                           const naq_monitor_opts *o)
{
    naq_status s = naq_id_validate("job id", job_id);
    if (s != NAQ_OK)
        return s;
    if (fn == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "monitor callback is NULL");
    naq_monitor_opts none = {0};
    if (o == NULL)
        o = &none;
    int64_t deadline = o->timeout_ms > 0 ? naq__mono_ms() + o->timeout_ms : -1;
    monitor_ctx m = {fn, user};
    s = follow_job(c, job_id, deadline, o->stop, monitor_visit, &m);
    if (s == NAQ_ERR_TIMEOUT)
        return naq__fail(NAQ_ERR_TIMEOUT, "job %s did not finish within %lld ms", job_id,
                         (long long)o->timeout_ms);
    return s;
}
