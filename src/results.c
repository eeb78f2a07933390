/*
 * results.c - job results in the KV bucket "naq_results" (naq/results.h).
 *
 * One record per job, written by the worker after the job's final
 * outcome. The bucket's TTL bounds how long any record lives; a job's
 * shorter result_ttl_ms is enforced on read through "expires_at", since
 * NATS 2.9 has no per-message TTL. Waiting for a result is a KV watch on
 * the one key: the watcher delivers the current value first, so a record
 * stored between a read and the watch is not missed.
 */
#include "lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

naq_status naq__result_store(naq_client *c, const naq_job *job, const char *result_json)
{
    if (c == NULL || job == NULL || result_json == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq__result_store needs a client, a job and a "
                                              "result");
    json_error_t e;
    json_t *o = json_loads(result_json, 0, &e);
    if (!json_is_object(o)) {
        json_decref(o);
        return naq__fail(NAQ_ERR_INVALID_ARG, "the result record of job %s is not a JSON object",
                         job->id);
    }
    int64_t ttl = job->result_ttl_ms > 0 ? job->result_ttl_ms : NAQ_RESULTS_TTL_MS;
    json_object_set_new(o, "job_id", json_string(job->id));
    json_object_set_new(o, "queue", json_string(job->queue));
    json_object_set_new(o, "function", json_string(job->function));
    json_object_set_new(o, "expires_at", json_real(naq__now() + (double)ttl / 1000.0));
    char *text = json_dumps(o, NAQ__JSON_FLAGS);
    json_decref(o);
    char key[NAQ__KV_KEY_MAX];
    naq_status s = text ? naq__kv_key(job->id, key, sizeof key)
                        : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory storing a result");
    if (s == NAQ_OK)
        s = naq__kv_put(c, NAQ__KV_RESULTS, key, text, strlen(text), NULL);
    if (s != NAQ_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", naq_last_error());
        s = naq__fail(s, "cannot store the result of job %s: %s", job->id, why);
    }
    free(text);
    return s;
}

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

/* Watches key until a record is stored or wait_ms passes. */
static naq_status wait_for(naq_client *c, const char *job_id, const char *key, int64_t wait_ms,
                           char **out)
{
    naq_status s = naq__kv_ensure(c, NAQ__KV_RESULTS);
    if (s != NAQ_OK)
        return s;
    kvStore *kv = NULL;
    kvWatcher *w = NULL;
    natsStatus ns = js_KeyValue(&kv, c->js, NAQ_RESULTS_BUCKET);
    if (ns == NATS_OK)
        ns = kvStore_Watch(&w, kv, key, NULL);
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot watch the result of job %s", job_id);
        goto out;
    }
    int64_t deadline = naq__mono_ms() + wait_ms;
    s = NAQ_ERR_TIMEOUT;
    for (;;) {
        int64_t left = deadline - naq__mono_ms();
        if (left <= 0)
            break;
        kvEntry *e = NULL;
        ns = kvWatcher_Next(&e, w, left);
        if (ns == NATS_TIMEOUT)
            break;
        if (ns != NATS_OK) {
            s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "watching the result of job %s failed", job_id);
            break;
        }
        /* NULL marks the end of the current values; deletes are not results. */
        naq_status t = NAQ_ERR_NOT_FOUND;
        if (e != NULL && kvEntry_Operation(e) == kvOp_Put)
            t = take(kvEntry_ValueString(e), (size_t)kvEntry_ValueLen(e), out);
        kvEntry_Destroy(e);
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
out:
    kvWatcher_Destroy(w);
    kvStore_Destroy(kv);
    return s;
}

naq_status naq_job_result(naq_client *c, const char *job_id, int64_t wait_ms, char **result_json)
{
    if (result_json != NULL)
        *result_json = NULL;
    if (c == NULL || result_json == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_job_result needs a client and an out-parameter");
    naq_status s = naq_id_validate("job id", job_id);
    if (s != NAQ_OK)
        return s;
    char key[NAQ__KV_KEY_MAX], *val = NULL;
    size_t len = 0;
    if ((s = naq__kv_key(job_id, key, sizeof key)) != NAQ_OK)
        return s;
    s = naq__kv_get(c, NAQ__KV_RESULTS, key, &val, &len, NULL);
    if (s == NAQ_OK) {
        s = take(val, len, result_json);
        free(val);
    }
    if (s == NAQ_ERR_NOT_FOUND && wait_ms > 0)
        return wait_for(c, job_id, key, wait_ms, result_json);
    if (s == NAQ_ERR_NOT_FOUND)
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "no result for job %s: it has not finished, its result expired, or "
                         "the id is wrong (see 'naq job status %s')",
                         job_id, job_id);
    return s;
}
