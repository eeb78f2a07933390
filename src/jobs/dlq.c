/*
 * dlq.c - the dead-letter queue of jobs (naq/dlq.h).
 *
 * An entry is one message on "<p>.dlq.<queue>" in the NAQ_DLQ stream
 * (limits retention, so entries stay until retried or purged): the job
 * JSON exactly as it was queued, with its last error and attempts
 * (docs/protocol.md, "Dead-letter entries"). Headers Naq-Job-Id,
 * Naq-Queue and Naq-Error-Type let a reader filter without decoding.
 * Reads walk the stream with direct gets (next by subject, a literal
 * queue subject or "<p>.dlq.>"), which need no consumer; an operator
 * command, not a hot path.
 */
#include "core/crypt.h"
#include "jobs.h"
#include "core/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DLQ_TOKEN "dlq"

/* ---------------------------------------------------------------- put */

/* With keys, seals the heap-owning event's error message (crypt.h); out
 * of memory drops it rather than log it in plaintext. */
static void seal_event(naq_client *c, naq_event *ev)
{
    if (c->crypt == NULL)
        return;
    char *message = ev->error_message, *details = ev->details_json, *sealed = NULL;
    if (naq__crypt_seal_event(c->crypt, ev, &sealed) != NAQ_OK)
        ev->details_json = NULL;
    ev->error_message = NULL;
    free(message);
    free(details);
}

naq_status naq__dlq_put(naq_client *c, const naq_job *job, const char *job_json, size_t len,
                        const char *error_type, const char *error_message, int attempts)
{
    if (c == NULL || job == NULL || job_json == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq__dlq_put needs a client and a job");
    char subject[NAQ_URL_MAX];
    naq_status s = naq__subject(c, subject, sizeof subject, DLQ_TOKEN ".%s", job->queue);
    if (s != NAQ_OK)
        return s;
    double now = naq__now();
    json_t *jo = json_loadb(job_json, len, 0, NULL);
    json_t *e =
        json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:f}", "version", NAQ_DLQ_VERSION, "job_id",
                  job->id, "queue", job->queue, "function", job->function, "error_type",
                  error_type ? error_type : "", "error_message", error_message ? error_message : "",
                  "attempts", attempts, "failed_at", now);
    if (e != NULL)
        json_object_set_new(e, "job",
                            json_is_object(jo) ? json_incref(jo) : json_stringn(job_json, len));
    json_decref(jo);
    static const char *const sealed[] = {"error_message", NULL};
    if (e != NULL && c->crypt != NULL &&
        naq__crypt_seal_members(c->crypt, NAQ_CRYPT_DLQ, job->id, e, sealed) != NAQ_OK) {
        json_decref(e); /* never the plaintext instead */
        e = NULL;
    }
    char *text = e ? naq__json_dumps(e, NAQ__JSON_FLAGS) : NULL;
    json_decref(e);
    if (text == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory dead-lettering job %s", job->id);

    /* One entry per job and attempt count: a worker that dead-letters the
     * same failure twice (it died before its ack) stores it once. */
    char msg_id[NAQ_ID_SIZE], tagged[NAQ_ID_SIZE + 16];
    snprintf(tagged, sizeof tagged, "%s-%d", job->id, attempts);
    naq__derived_id("dlq", tagged, msg_id);
    natsMsg *m = NULL;
    jsPubAck *ack = NULL;
    natsStatus ns = natsMsg_Create(&m, subject, NULL, text, (int)strlen(text));
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Job-Id", job->id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Queue", job->queue);
    if (ns == NATS_OK && error_type != NULL && error_type[0] != '\0')
        ns = natsMsgHeader_Set(m, "Naq-Error-Type", error_type);
    jsErrCode jerr = 0;
    if (ns == NATS_OK)
        ns = js_PublishMsg(&ack, c->js, m, NULL, &jerr);
    if (ns != NATS_OK) {
        s = naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, (int)jerr,
                           "cannot store job %s in the dead-letter stream %s", job->id,
                           c->cfg.dlq_stream);
    } else {
        /* Logged on a duplicate too: the first put may have been stored
         * with its reply lost (a server killed or away), so nothing logged
         * it then. The event's id comes from the entry's, and the event
         * stream keeps one copy. */
        naq_event ev;
        naq_event_init(&ev, NAQ_EVENT_MAX_RETRIES_EXCEEDED);
        naq__derived_id("max_retries_exceeded", tagged, ev.event_id);
        snprintf(ev.job_id, sizeof ev.job_id, "%s", job->id);
        snprintf(ev.queue_name, sizeof ev.queue_name, "%s", job->queue);
        snprintf(ev.schedule_id, sizeof ev.schedule_id, "%s", job->schedule_id);
        ev.attempt = attempts;
        ev.error_type = error_type ? strdup(error_type) : NULL;
        ev.error_message = error_message ? strdup(error_message) : NULL;
        char msg[128];
        snprintf(msg, sizeof msg, "dead-lettered after %d attempt%s", attempts,
                 attempts == 1 ? "" : "s");
        ev.message = strdup(msg);
        json_t *d = json_pack("{s:i, s:s, s:i, s:I}", "attempts", attempts, "error_type",
                              error_type ? error_type : "", "max_retries", job->max_retries,
                              "dlq_sequence", (json_int_t)ack->Sequence);
        ev.details_json = d ? naq__json_dumps(d, NAQ__JSON_FLAGS) : NULL;
        json_decref(d);
        ev.tags_json = job->tags_json ? strdup(job->tags_json) : NULL;
        seal_event(c, &ev);
        naq_client_log(c, &ev);
        naq_event_clear(&ev);
    }
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(m);
    free(text);
    return s;
}

/* ---------------------------------------------------------------- read */

void naq_dlq_entry_clear(naq_dlq_entry *e)
{
    if (e == NULL)
        return;
    free(e->error_type);
    free(e->error_message);
    free(e->job_json);
    free(e->entry_json);
    memset(e, 0, sizeof *e);
}

void naq_dlq_entry_list_free(naq_dlq_entry_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        naq_dlq_entry_clear(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int filter_empty(const naq_dlq_filter *f)
{
    return f == NULL || (!set(f->queue) && !set(f->error_type) && !set(f->job_id) && f->seq == 0);
}

/* A string field of o, or "". */
static const char *text_of(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

static naq_status entry_decode(const naq__crypt *k, natsMsg *m, naq_dlq_entry *out)
{
    memset(out, 0, sizeof *out);
    out->seq = natsMsg_GetSequence(m);
    out->entry_json = strndup(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    json_t *o = out->entry_json ? json_loads(out->entry_json, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return naq__fail(NAQ_ERR_CODEC, "dead-letter entry %llu is not JSON naq wrote",
                         (unsigned long long)out->seq);
    }
    const char *jid = json_string_value(json_object_get(o, "job_id"));
    if (json_object_get(o, "sealed") != NULL &&
        (jid == NULL || naq__crypt_open_members(k, NAQ_CRYPT_DLQ, jid, o) != NAQ_OK)) {
        json_object_set_new(o, "error_message", json_string(NAQ_CRYPT_HIDDEN));
        naq__clear_error();
    }
    snprintf(out->job_id, sizeof out->job_id, "%s", text_of(o, "job_id"));
    snprintf(out->queue, sizeof out->queue, "%s", text_of(o, "queue"));
    snprintf(out->function, sizeof out->function, "%s", text_of(o, "function"));
    out->error_type = strdup(text_of(o, "error_type"));
    out->error_message = strdup(text_of(o, "error_message"));
    out->attempts = (int)json_integer_value(json_object_get(o, "attempts"));
    out->failed_at = json_number_value(json_object_get(o, "failed_at"));
    json_t *job = json_object_get(o, "job");
    out->job_json = json_is_string(job) ? strdup(json_string_value(job))
                                        : naq__json_dumps(job, NAQ__JSON_FLAGS);
    json_decref(o);
    if (out->error_type == NULL || out->error_message == NULL || out->job_json == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading the dead-letter queue");
    return NAQ_OK;
}

static int entry_matches(const naq_dlq_entry *e, const naq_dlq_filter *f)
{
    if (f == NULL)
        return 1;
    return (!set(f->queue) || strcmp(e->queue, f->queue) == 0) &&
           (!set(f->error_type) || strcmp(e->error_type, f->error_type) == 0) &&
           (!set(f->job_id) || strcmp(e->job_id, f->job_id) == 0) &&
           (f->seq == 0 || e->seq == f->seq);
}

static naq_status list_push(naq_dlq_entry_list *l, naq_dlq_entry *e, size_t *cap)
{
    if (l->count == *cap && naq__array_grow(&l->items, cap, sizeof *l->items, 16) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing the dead-letter queue");
    l->items[l->count++] = *e;
    memset(e, 0, sizeof *e);
    return NAQ_OK;
}

naq_status naq_dlq_list(naq_client *c, const naq_dlq_filter *f, naq_dlq_entry_list *out)
{
    out->items = NULL;
    out->count = 0;
    if (c == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_dlq_list needs a client");
    naq_status s;
    if (f != NULL && ((set(f->queue) && (s = naq_id_validate("queue name", f->queue)) != NAQ_OK) ||
                      (set(f->job_id) && (s = naq_id_validate("job id", f->job_id)) != NAQ_OK)))
        return s;
    char subject[NAQ_URL_MAX];
    if (f != NULL && set(f->queue))
        s = naq__subject(c, subject, sizeof subject, DLQ_TOKEN ".%s", f->queue);
    else
        s = naq__subject(c, subject, sizeof subject, DLQ_TOKEN ".>");
    if (s != NAQ_OK)
        return s;
    size_t cap = 0;
    uint64_t seq = f != NULL && f->seq > 0 ? f->seq : 0;
    for (;;) {
        if (f != NULL && f->limit > 0 && out->count >= f->limit)
            break;
        natsMsg *m = NULL;
        natsStatus ns;
        /* Direct gets only (kv.c says why); the stream exists from connect. */
        jsDirectGetMsgOptions dg;
        jsDirectGetMsgOptions_Init(&dg);
        dg.Sequence = seq;
        if (f == NULL || f->seq == 0)
            dg.NextBySubject = subject;
        ns = js_DirectGetMsg(&m, c->js, c->cfg.dlq_stream, NULL, &dg);
        if (ns == NATS_NOT_FOUND)
            break;
        if (ns != NATS_OK) {
            s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read the dead-letter stream %s",
                               c->cfg.dlq_stream);
            break;
        }
        seq = natsMsg_GetSequence(m) + 1;
        const char *et = NULL, *jid = NULL;
        natsMsgHeader_Get(m, "Naq-Error-Type", &et);
        natsMsgHeader_Get(m, "Naq-Job-Id", &jid);
        /* Headers first: most entries of a big queue are skipped undecoded. */
        int maybe = f == NULL || ((!set(f->error_type) || (et && !strcmp(et, f->error_type))) &&
                                  (!set(f->job_id) || (jid && !strcmp(jid, f->job_id))));
        naq_dlq_entry e;
        memset(&e, 0, sizeof e);
        if (maybe && entry_decode(c->crypt, m, &e) == NAQ_OK && entry_matches(&e, f))
            s = list_push(out, &e, &cap);
        naq_dlq_entry_clear(&e);
        natsMsg_Destroy(m);
        if (s != NAQ_OK || (f != NULL && f->seq > 0))
            break;
    }
    return s;
}

naq_status naq_dlq_show(naq_client *c, uint64_t seq, const char *job_id, naq_dlq_entry *out)
{
    memset(out, 0, sizeof *out);
    naq_dlq_filter f = {0};
    f.seq = seq;
    f.job_id = seq == 0 ? job_id : NULL;
    if (seq == 0 && !set(job_id))
        return naq__fail(NAQ_ERR_INVALID_ARG, "which dead job? give its sequence or its job id");
    naq_dlq_entry_list l;
    naq_status s = naq_dlq_list(c, &f, &l);
    if (s == NAQ_OK && l.count == 0)
        s = seq ? naq__fail(NAQ_ERR_NOT_FOUND, "no dead-letter entry has sequence %llu",
                            (unsigned long long)seq)
                : naq__fail(NAQ_ERR_NOT_FOUND, "job %s is not in the dead-letter queue", job_id);
    if (s == NAQ_OK) {
        *out = l.items[l.count - 1]; /* the newest */
        memset(&l.items[l.count - 1], 0, sizeof *out);
    }
    naq_dlq_entry_list_free(&l);
    return s;
}

/* ---------------------------------------------------------------- retry */

/* "<old>-r<seq>", or a hash when that is too long. */
static void retry_id(const char *old, uint64_t seq, char out[NAQ_ID_SIZE])
{
    char id[NAQ_ID_SIZE + 32];
    snprintf(id, sizeof id, "%s-r%llu", old, (unsigned long long)seq);
    size_t n = strlen(id);
    if (n <= NAQ_ID_MAX)
        memcpy(out, id, n + 1);
    else
        naq__derived_id("retry", id, out);
}

static naq_status retry_one(naq_client *c, const naq_dlq_entry *e, naq_dlq_retried *r)
{
    r->seq = e->seq;
    snprintf(r->job_id, sizeof r->job_id, "%s", e->job_id);
    retry_id(e->job_id, e->seq, r->new_job_id);
    json_t *job = json_loads(e->job_json, 0, NULL);
    if (!json_is_object(job)) {
        json_decref(job);
        return naq__fail(NAQ_ERR_CODEC,
                         "dead-letter entry %llu of job %s holds no job JSON; purge it",
                         (unsigned long long)e->seq, e->job_id);
    }
    json_object_set_new(job, "job_id", json_string(r->new_job_id));
    json_object_set_new(job, "original_job_id", json_string(e->job_id));
    json_object_set_new(job, "enqueued_at", json_real(naq__now()));
    char *text = naq__json_dumps(job, NAQ__JSON_FLAGS);
    json_decref(job);
    naq_job j;
    naq_status s = text ? naq_job_decode(text, strlen(text), &j)
                        : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory retrying a dead job");
    if (s == NAQ_OK)
        s = naq__job_publish(c, c->js, j.id, j.queue, j.function, j.priority, text, strlen(text),
                             NULL);
    if (s == NAQ_OK) {
        /* A duplicate too (a retry repeated after a lost reply): both
         * events have ids derived from the new job's, kept once. */
        naq__log_enqueued(c, &j);
        char msg[NAQ_ID_SIZE + 64], event_id[NAQ_ID_SIZE];
        snprintf(msg, sizeof msg, "retried from the dead-letter queue as job %s", j.id);
        naq__derived_id("dlq_retry", j.id, event_id);
        naq__schedule_event(c, NAQ_EVENT_RETRY_SCHEDULED, NULL, e->job_id, e->queue, event_id, msg,
                            json_pack("{s:s, s:s, s:I}", "new_job_id", j.id, "from", "dlq",
                                      "dlq_sequence", (json_int_t)e->seq));
    }
    if (s == NAQ_OK) {
        jsErrCode jerr = 0;
        natsStatus ns = js_DeleteMsg(c->js, c->cfg.dlq_stream, e->seq, NULL, &jerr);
        if (ns != NATS_OK && ns != NATS_NOT_FOUND && jerr != 10037)
            s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                               "job %s was retried as %s but its dead-letter entry %llu could not "
                               "be deleted; purge it with 'naq dlq purge %llu'",
                               e->job_id, j.id, (unsigned long long)e->seq,
                               (unsigned long long)e->seq);
    }
    if (s == NAQ_ERR_CODEC)
        s = naq__fail(NAQ_ERR_CODEC, "dead-letter entry %llu of job %s cannot be retried: %s",
                      (unsigned long long)e->seq, e->job_id, naq_last_error());
    naq_job_clear(&j);
    free(text);
    return s;
}

static naq_status need_filter(const naq_dlq_filter *f, const char *what)
{
    if (filter_empty(f) && (f == NULL || !f->all))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "%s which dead jobs? give a sequence, a job id, a queue or an error "
                         "type, or ask for all of them",
                         what);
    return NAQ_OK;
}

naq_status naq_dlq_retry(naq_client *c, const naq_dlq_filter *f, naq_dlq_retried **out, size_t *n)
{
    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    naq_status s = need_filter(f, "retry");
    if (s != NAQ_OK)
        return s;
    naq_dlq_entry_list l;
    if ((s = naq_dlq_list(c, f, &l)) != NAQ_OK) {
        naq_dlq_entry_list_free(&l);
        return s;
    }
    if (l.count == 0) {
        naq_dlq_entry_list_free(&l);
        return naq__fail(NAQ_ERR_NOT_FOUND, "no dead job matches; nothing was retried");
    }
    naq_dlq_retried *done = calloc(l.count, sizeof *done);
    size_t k = 0;
    if (done == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory retrying dead jobs");
    for (size_t i = 0; s == NAQ_OK && i < l.count; i++)
        if ((s = retry_one(c, &l.items[i], &done[k])) == NAQ_OK)
            k++;
    naq_dlq_entry_list_free(&l);
    if (n != NULL)
        *n = k;
    if (out != NULL)
        *out = done;
    else
        free(done);
    return s;
}

naq_status naq_dlq_purge(naq_client *c, const naq_dlq_filter *f, size_t *purged)
{
    if (purged != NULL)
        *purged = 0;
    naq_status s = need_filter(f, "purge");
    if (s != NAQ_OK)
        return s;
    naq_dlq_entry_list l;
    s = naq_dlq_list(c, f, &l);
    size_t k = 0;
    for (size_t i = 0; s == NAQ_OK && i < l.count; i++) {
        jsErrCode jerr = 0;
        natsStatus ns = js_DeleteMsg(c->js, c->cfg.dlq_stream, l.items[i].seq, NULL, &jerr);
        if (ns == NATS_OK)
            k++;
        else if (ns != NATS_NOT_FOUND && jerr != 10037)
            s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                               "cannot delete dead-letter entry %llu (%zu purged before it)",
                               (unsigned long long)l.items[i].seq, k);
    }
    naq_dlq_entry_list_free(&l);
    if (purged != NULL)
        *purged = k;
    return s;
}
