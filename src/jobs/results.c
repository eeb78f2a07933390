/*
 * results.c - reading job results (naq/results.h).
 *
 * A result is the job's outcome record: the last message on its outcome
 * subject, when that is a record rather than a waiter (outcome.c). The
 * stream keeps records 7 days; a job's shorter result_ttl_ms is enforced
 * on read through "expires_at", since NATS 2.9 has no per-message TTL.
 * Waiting for a result is an ordered consumer on the one subject that
 * starts at its last message, so a record stored between a read and the
 * wait is not missed.
 */
#include "core/crypt.h"
#include "core/jsonw.h"
#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stored record, unless it expired: *out = heap copy. */
static naq_status take(const char *val, size_t len, char **out)
{
    json_t *o = json_loadb(val, len, 0, NULL);
    json_t *exp = json_object_get(o, "expires_at");
    int expired = json_is_number(exp) && json_number_value(exp) < naq__now();
    json_decref(o);
    if (expired)
        return NAQ_ERR_NOT_FOUND;
    *out = malloc(len + 1);
    if (*out == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading a result");
    memcpy(*out, val, len);
    (*out)[len] = '\0';
    return NAQ_OK;
}

/* Follows the job's outcome subject until a record is stored or wait_ms
 * passes. */
static naq_status wait_for(naq_client *c, const char *job_id, int64_t wait_ms, char **out)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq__outcome_subject(c, job_id, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->outcome_stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverLastPerSubject;
    jsErrCode jerr = 0;
    natsStatus ns = js_SubscribeSync(&sub, c->js, subject, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot watch the result of job %s",
                              job_id);
    int64_t deadline = naq__mono_ms() + wait_ms;
    s = NAQ_ERR_TIMEOUT;
    for (;;) {
        int64_t left = deadline - naq__mono_ms();
        if (left <= 0)
            break;
        natsMsg *m = NULL;
        ns = natsSubscription_NextMsg(&m, sub, left);
        if (ns == NATS_TIMEOUT)
            break;
        if (ns != NATS_OK) {
            s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "watching the result of job %s failed", job_id);
            break;
        }
        naq_status t = NAQ_ERR_NOT_FOUND;
        if (naq__outcome_is_record(m))
            t = take(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), out);
        natsMsg_Destroy(m);
        if (t != NAQ_ERR_NOT_FOUND) {
            s = t;
            break;
        }
    }
    if (s == NAQ_ERR_TIMEOUT)
        s = naq__fail(NAQ_ERR_TIMEOUT,
                      "no result for job %s within %lld ms: it has not finished yet (see 'naq "
                      "job status %s')",
                      job_id, (long long)wait_ms, job_id);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return s;
}

/* With the key, puts the record's sealed members back (crypt.h). Without
 * it (or with a record that does not open) the record keeps its envelope,
 * which readers show as encrypted, as they do events. */
static void open_record(naq_client *c, const char *job_id, char **json)
{
    if (c->crypt == NULL || strstr(*json, "\"sealed\"") == NULL)
        return;
    json_t *o = json_loads(*json, 0, NULL);
    char *text = NULL;
    if (o != NULL && naq__crypt_open_members(c->crypt, NAQ_CRYPT_OUTCOME, job_id, o) == NAQ_OK)
        text = naq__json_dumps(o, NAQ__JSON_FLAGS);
    json_decref(o);
    naq__clear_error();
    if (text != NULL) {
        free(*json);
        *json = text;
    }
}

static naq_status read_result(naq_client *c, const char *job_id, int64_t wait_ms,
                              char **result_json)
{
    if (result_json != NULL)
        *result_json = NULL;
    if (c == NULL || result_json == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_job_result needs a client and an out-parameter");
    naq_status s = naq_id_validate("job id", job_id);
    if (s != NAQ_OK)
        return s;
    natsMsg *m = NULL;
    s = naq__outcome_last(c, job_id, &m);
    if (s == NAQ_OK)
        s = naq__outcome_is_record(m)
                ? take(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), result_json)
                : NAQ_ERR_NOT_FOUND;
    natsMsg_Destroy(m);
    if (s == NAQ_ERR_NOT_FOUND && wait_ms > 0)
        return wait_for(c, job_id, wait_ms, result_json);
    if (s == NAQ_ERR_NOT_FOUND)
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "no result for job %s: it has not finished, its result expired, or "
                         "the id is wrong (see 'naq job status %s')",
                         job_id, job_id);
    return s;
}

naq_status naq_job_result(naq_client *c, const char *job_id, int64_t wait_ms, char **result_json)
{
    naq_status s = read_result(c, job_id, wait_ms, result_json);
    if (s == NAQ_OK)
        open_record(c, job_id, result_json);
    return s;
}
