/*
 * job.c - the job wire format and enqueueing.
 *
 * A job is one JSON object (docs/protocol.md, "Job JSON") published to the
 * work-queue stream on "<prefix>.queue.<queue>.<priority>" with
 * Nats-Msg-Id = job id. naq_enqueue validates everything before anything is
 * sent, publishes synchronously (so a returned id is stored), and only then
 * logs "enqueued": the event log never shows a job that is not queued, and
 * a refused job leaves no trace anywhere.
 */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Doubles keep every digit, so enqueued_at survives a round trip. */
#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(17))

void naq_job_opts_init(naq_job_opts *o)
{
    memset(o, 0, sizeof *o);
    o->priority = NAQ_PRIORITY_NORMAL;
}

naq_status naq__function_validate(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "function name is empty; name the handler that runs the job, e.g. "
                         "\"exec\" or the name a worker registered with naq_worker_register");
    size_t n = strlen(name);
    if (n > NAQ_ID_MAX)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "function name is %zu characters long; at most %d are allowed", n,
                         NAQ_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= 0x20 || ch >= 0x7f)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "function name '%s' contains white space or a non-printable "
                             "character at position %zu; use letters, digits, '.', '-' or '_'",
                             name, i + 1);
    }
    return NAQ_OK;
}

/* NAQ_OK when v is a JSON object whose values are all strings. */
static naq_status check_tags(const json_t *v, naq_status bad)
{
    if (!json_is_object(v))
        return naq__fail(bad, "tags must be a JSON object of strings, like {\"team\":\"billing\"}");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        if (!json_is_string(val))
            return naq__fail(bad,
                             "tag '%s' is not a string; tags are a JSON object of strings, like "
                             "{\"team\":\"billing\"}",
                             key);
    }
    return NAQ_OK;
}

/* Builds the job JSON from j with args and tags already parsed; takes the
 * references to args and tags (tags may be NULL). */
static naq_status encode_parsed(const naq_job *j, json_t *args, json_t *tags, char **json,
                                size_t *len)
{
    json_t *o = json_object();
    if (o == NULL) {
        json_decref(args);
        json_decref(tags);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encoding a job");
    }
    int err = 0;
    err |=
        json_object_set_new(o, "version", json_integer(j->version ? j->version : NAQ_WIRE_VERSION));
    err |= json_object_set_new(o, "job_id", json_string(j->id));
    err |= json_object_set_new(o, "queue", json_string(j->queue));
    err |= json_object_set_new(o, "function", json_string(j->function));
    err |= json_object_set_new(o, "args", args);
    err |= json_object_set_new(o, "max_retries", json_integer(j->max_retries));
    err |= json_object_set_new(o, "timeout_ms", json_integer(j->timeout_ms));
    if (tags != NULL)
        err |= json_object_set_new(o, "tags", tags);
    err |= json_object_set_new(o, "priority", json_integer(j->priority));
    err |= json_object_set_new(o, "enqueued_at", json_real(j->enqueued_at));
    *json = err ? NULL : json_dumps(o, JSON_FLAGS);
    json_decref(o);
    if (*json == NULL)
        return naq__fail(NAQ_ERR_CODEC,
                         "cannot encode job '%s' (a text field is not valid UTF-8, or memory "
                         "ran out)",
                         j->id);
    *len = strlen(*json);
    return NAQ_OK;
}

naq_status naq_job_encode(const naq_job *j, char **json, size_t *len)
{
    json_error_t e;
    json_t *args = json_loads(j->args_json ? j->args_json : "[]", JSON_DECODE_ANY, &e);
    if (args == NULL)
        return naq__fail(NAQ_ERR_CODEC, "job '%s' args are not JSON: %s", j->id, e.text);
    json_t *tags = NULL;
    if (j->tags_json != NULL) {
        tags = json_loads(j->tags_json, 0, &e);
        naq_status s =
            tags ? check_tags(tags, NAQ_ERR_CODEC)
                 : naq__fail(NAQ_ERR_CODEC, "job '%s' tags are not JSON: %s", j->id, e.text);
        if (s != NAQ_OK) {
            json_decref(args);
            json_decref(tags);
            return s;
        }
    }
    return encode_parsed(j, args, tags, json, len);
}

/* Reads an optional integer field in [min, max] (dflt when absent or
 * null); accepts an integral real too, since some JSON writers emit 30000.0. */
static naq_status get_int(json_t *o, const char *key, int64_t dflt, int64_t min, int64_t max,
                          int64_t *out)
{
    json_t *v = json_object_get(o, key);
    int64_t i = dflt;
    int ok = 1;
    if (json_is_integer(v)) {
        i = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        ok = d >= (double)min && d <= (double)max && (double)(int64_t)d == d;
        i = ok ? (int64_t)d : 0;
    } else if (v != NULL && !json_is_null(v)) {
        ok = 0;
    }
    if (!ok || i < min || i > max)
        return naq__fail(NAQ_ERR_CODEC, "job field '%s' must be an integer from %lld to %lld", key,
                         (long long)min, (long long)max);
    *out = i;
    return NAQ_OK;
}

/* Copies a required string field after check(); errors name the field. */
static naq_status get_token(json_t *o, const char *key, naq_status (*check)(const char *),
                            char *dst, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v == NULL)
        return naq__fail(NAQ_ERR_CODEC, "job has no '%s' string", key);
    if (check(v) != NAQ_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", naq_last_error());
        return naq__fail(NAQ_ERR_CODEC, "job has a bad '%s': %s", key, why);
    }
    snprintf(dst, cap, "%s", v);
    return NAQ_OK;
}

static naq_status check_job_id(const char *v)
{
    return naq_id_validate("job id", v);
}
static naq_status check_queue(const char *v)
{
    return naq_id_validate("queue name", v);
}

naq_status naq_job_decode(const char *json, size_t len, naq_job *out)
{
    memset(out, 0, sizeof *out);
    out->priority = NAQ_PRIORITY_NORMAL;
    json_error_t e;
    json_t *o = json_loadb(json, len, 0, &e);
    if (o == NULL)
        return naq__fail(NAQ_ERR_CODEC, "job is not JSON: %s (line %d, column %d)", e.text, e.line,
                         e.column);
    naq_status s = NAQ_OK;
    int64_t version = 0, retries = 0, timeout = 0, priority = 0;
    if (!json_is_object(o)) {
        s = naq__fail(NAQ_ERR_CODEC, "job is not a JSON object");
        goto out;
    }
    /* The id and queue first: a worker that cannot decode the rest still
     * records the failure against the right job. */
    if ((s = get_token(o, "job_id", check_job_id, out->id, sizeof out->id)) != NAQ_OK)
        goto out;
    if ((s = get_token(o, "queue", check_queue, out->queue, sizeof out->queue)) != NAQ_OK)
        goto out;
    if (get_int(o, "version", 0, 0, INT64_MAX, &version) != NAQ_OK || version < 1 ||
        version > NAQ_WIRE_VERSION) {
        s = naq__fail(NAQ_ERR_CODEC,
                      "job %s has no version or version %lld; this naq reads versions 1 to %d",
                      out->id, (long long)version, NAQ_WIRE_VERSION);
        goto out;
    }
    out->version = (int)version;
    if ((s = get_token(o, "function", naq__function_validate, out->function,
                       sizeof out->function)) != NAQ_OK)
        goto out;
    if ((s = get_int(o, "max_retries", 0, 0, 1000000, &retries)) != NAQ_OK ||
        (s = get_int(o, "timeout_ms", 0, 0, INT64_MAX / 2, &timeout)) != NAQ_OK ||
        (s = get_int(o, "priority", NAQ_PRIORITY_NORMAL, NAQ_PRIORITY_LOWEST, NAQ_PRIORITY_CRITICAL,
                     &priority)) != NAQ_OK)
        goto out;
    out->max_retries = (int)retries;
    out->timeout_ms = timeout;
    out->priority = (int)priority;
    json_t *at = json_object_get(o, "enqueued_at");
    out->enqueued_at = json_is_number(at) ? json_number_value(at) : 0;
    json_t *args = json_object_get(o, "args");
    out->args_json =
        args && !json_is_null(args) ? json_dumps(args, JSON_FLAGS | JSON_ENCODE_ANY) : strdup("[]");
    json_t *tags = json_object_get(o, "tags");
    if (tags != NULL && !json_is_null(tags)) {
        if ((s = check_tags(tags, NAQ_ERR_CODEC)) != NAQ_OK)
            goto out;
        out->tags_json = json_dumps(tags, JSON_FLAGS);
        if (out->tags_json == NULL)
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory decoding a job");
    }
    if (out->args_json == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory decoding a job");
out:
    json_decref(o);
    return s;
}

void naq_job_clear(naq_job *j)
{
    if (j == NULL)
        return;
    free(j->args_json);
    free(j->tags_json);
    memset(j, 0, sizeof *j);
}

/* ---- enqueue ---- */

/* Everything a publish needs, checked before anything is sent. */
static naq_status validate(const naq_job_opts *o, json_t **args, json_t **tags)
{
    naq_status s;
    *args = *tags = NULL;
    if ((s = naq_id_validate("queue name", o->queue)) != NAQ_OK)
        return s;
    if (o->job_id != NULL && (s = naq_id_validate("job id", o->job_id)) != NAQ_OK)
        return s;
    if ((s = naq__function_validate(o->function)) != NAQ_OK)
        return s;
    if (o->priority < NAQ_PRIORITY_LOWEST || o->priority > NAQ_PRIORITY_CRITICAL)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "priority %d is out of range; use 0 (lowest) to 4 (critical), "
                         "2 is normal",
                         o->priority);
    if (o->max_retries < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "max_retries is %d; use 0 (no retry) or a positive number",
                         o->max_retries);
    if (o->timeout_ms < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "timeout_ms is %lld; use 0 (no timeout) or a positive number of "
                         "milliseconds",
                         (long long)o->timeout_ms);
    json_error_t e;
    *args = json_loads(o->args_json ? o->args_json : "[]", JSON_DECODE_ANY, &e);
    if (*args == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "args are not valid JSON: %s (line %d, column %d); pass a JSON value "
                         "such as [1, 2] or {\"to\": \"a@b.c\"}",
                         e.text, e.line, e.column);
    if (o->tags_json != NULL) {
        *tags = json_loads(o->tags_json, 0, &e);
        if (*tags == NULL)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "tags are not valid JSON: %s; pass an object of strings like "
                             "{\"team\":\"billing\"}",
                             e.text);
        if ((s = check_tags(*tags, NAQ_ERR_INVALID_ARG)) != NAQ_OK)
            return s;
    }
    return NAQ_OK;
}

void naq__enqueued_event_id(const char *job_id, char out[NAQ_ID_SIZE])
{
    if (strlen(job_id) + 4 <= NAQ_ID_MAX) {
        snprintf(out, NAQ_ID_SIZE, "enq-%s", job_id);
        return;
    }
    /* Too long to prefix: two FNV-1a 64 hashes with different offsets. */
    uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
    for (const unsigned char *p = (const unsigned char *)job_id; *p; p++) {
        h1 = (h1 ^ *p) * 0x100000001b3ULL;
        h2 = (h2 ^ *p) * 0x100000001b3ULL;
    }
    snprintf(out, NAQ_ID_SIZE, "enq-h%016llx%016llx", (unsigned long long)h1,
             (unsigned long long)h2);
}

naq_status naq__enqueued_event(const naq_job *j, naq_event *e)
{
    naq_event_init(e, NAQ_EVENT_ENQUEUED);
    naq__enqueued_event_id(j->id, e->event_id);
    snprintf(e->job_id, sizeof e->job_id, "%s", j->id);
    snprintf(e->queue_name, sizeof e->queue_name, "%s", j->queue);
    e->timestamp = j->enqueued_at;
    json_t *d = json_pack("{s:s, s:i, s:i}", "function", j->function, "priority", j->priority,
                          "max_retries", j->max_retries);
    e->details_json = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    e->tags_json = j->tags_json ? strdup(j->tags_json) : NULL;
    if (e->details_json == NULL || (j->tags_json != NULL && e->tags_json == NULL)) {
        naq_event_clear(e);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory building an event");
    }
    return NAQ_OK;
}

/* Logs "enqueued"; the job is stored already, so a logging problem is not
 * the caller's failure (the logger spools or counts what it cannot send). */
static void log_enqueued(naq_client *c, naq_job *j, const json_t *tags)
{
    j->tags_json = tags ? json_dumps(tags, JSON_COMPACT) : NULL;
    naq_event e;
    if (naq__enqueued_event(j, &e) == NAQ_OK)
        naq_client_log(c, &e);
    naq_event_clear(&e);
    free(j->tags_json);
    j->tags_json = NULL;
}

naq_status naq_enqueue(naq_client *c, const naq_job_opts *o, char job_id[NAQ_ID_SIZE])
{
    if (job_id != NULL)
        job_id[0] = '\0';
    if (c == NULL || o == NULL || job_id == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_enqueue needs a client, options and a buffer "
                                              "for the job id");
    json_t *args = NULL, *tags = NULL;
    char *json = NULL;
    size_t len = 0;
    natsMsg *msg = NULL;
    jsPubAck *ack = NULL;
    char subject[NAQ_URL_MAX];
    naq_status s = validate(o, &args, &tags);
    if (s != NAQ_OK)
        goto out;
    if ((s = naq__subject(c, subject, sizeof subject, "queue.%s.%d", o->queue, o->priority)) !=
        NAQ_OK)
        goto out;

    naq_job j = {0};
    j.version = NAQ_WIRE_VERSION;
    if (o->job_id != NULL)
        snprintf(j.id, sizeof j.id, "%s", o->job_id);
    else
        naq_id_new(j.id);
    snprintf(j.queue, sizeof j.queue, "%s", o->queue);
    snprintf(j.function, sizeof j.function, "%s", o->function);
    j.max_retries = o->max_retries;
    j.timeout_ms = o->timeout_ms;
    j.priority = o->priority;
    j.enqueued_at = naq__now();
    json_incref(tags); /* encode_parsed takes one reference; the event needs tags after */
    s = encode_parsed(&j, args, tags, &json, &len);
    args = NULL;
    if (s != NAQ_OK)
        goto out;

    int64_t max_payload = natsConnection_GetMaxPayload(c->nc);
    if (max_payload > 0 && (int64_t)len > max_payload) {
        s = naq__fail(NAQ_ERR_INVALID_ARG,
                      "job is %zu bytes but the server accepts messages of at most %lld bytes; "
                      "pass large data by reference (a path or URL) or raise the server's "
                      "max_payload",
                      len, (long long)max_payload);
        goto out;
    }

    natsStatus ns = natsMsg_Create(&msg, subject, NULL, json, (int)len);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Nats-Msg-Id", j.id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Naq-Queue", j.queue);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Naq-Function", j.function);
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NO_MEMORY, ns, 0, "cannot build the message of job %s", j.id);
        goto out;
    }
    jsErrCode jerr = 0;
    ns = js_PublishMsg(&ack, c->js, msg, NULL, &jerr);
    if (ns == NATS_NO_RESPONDERS) {
        s = naq__fail(NAQ_ERR_NATS,
                      "no stream stores subject %s, so job %s was not queued; is the %s stream "
                      "there? (naq creates it when a client connects)",
                      subject, j.id, c->cfg.job_stream);
        goto out;
    }
    if (ns == NATS_TIMEOUT) {
        s = naq__fail(NAQ_ERR_TIMEOUT,
                      "the server did not confirm job %s in time, so it may or may not be "
                      "queued; enqueue again with the same job id (stored once within 2 minutes)",
                      j.id);
        goto out;
    }
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "job %s was not queued on %s", j.id,
                           subject);
        goto out;
    }
    snprintf(job_id, NAQ_ID_SIZE, "%s", j.id);
    /* A duplicate (same id within the window) is stored once, and its
     * "enqueued" event was logged by the first enqueue. */
    if (!ack->Duplicate)
        log_enqueued(c, &j, tags);
out:
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    free(json);
    json_decref(args);
    json_decref(tags);
    return s;
}
