/*
 * job.c - the job wire format (docs/protocol.md, "Job JSON"): encoding,
 * decoding, building a job from its options, and its "enqueued" event.
 * The options and their validation are job_opts.c.
 *
 * The wire format stays at version 1: every field added by issue 3 is
 * optional, written only when it says something (a retry policy when the
 * job may be retried, ttl_ms when set, ...), and read with the default
 * when absent, so jobs written by older naq versions and by foreign
 * programs decode as before. Enqueueing is in enqueue.c.
 */
#include "core/crypt.h"
#include "core/jsonscan.h"
#include "core/jsonw.h"
#include "jobs.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- encode */

/* ["a", "b"] from "a, b" (spaces around names dropped). */
static json_t *names_array(const char *list)
{
    json_t *a = json_array();
    for (const char *p = list; a != NULL && p != NULL && *p != '\0';) {
        const char *name;
        size_t len;
        p = naq__names_next(p, &name, &len);
        if (len > 0)
            json_array_append_new(a, json_stringn(name, len));
    }
    return a;
}

static int policy_is_default(const naq_retry_policy *p)
{
    naq_retry_policy d;
    naq_retry_policy_init(&d);
    return p->kind == d.kind && p->delay_ms == d.delay_ms && p->max_delay_ms == d.max_delay_ms &&
           p->jitter == 0 && naq__names_empty(p->retry_on) && naq__names_empty(p->skip_on);
}

static json_t *policy_json(const naq_retry_policy *p)
{
    int kind = (int)p->kind >= 0 && p->kind <= NAQ_BACKOFF_LIST ? (int)p->kind : 0;
    json_t *o = json_pack("{s:s, s:I}", "backoff", naq__backoff_names[kind], "delay_ms",
                          (json_int_t)p->delay_ms);
    if (o == NULL)
        return NULL;
    if (p->kind == NAQ_BACKOFF_LIST) {
        json_t *list = json_array();
        int n = p->n_delays < 0                      ? 0
                : p->n_delays > NAQ_BACKOFF_LIST_MAX ? NAQ_BACKOFF_LIST_MAX
                                                     : p->n_delays;
        for (int i = 0; list != NULL && i < n; i++)
            json_array_append_new(list, json_integer(p->delays_ms[i]));
        json_object_set_new(o, "delays_ms", list);
    }
    /* Always written: a reader's default when it is absent is the 5 min cap. */
    json_object_set_new(o, "max_delay_ms", json_integer(p->max_delay_ms));
    if (p->jitter > 0)
        json_object_set_new(o, "jitter", json_real(p->jitter));
    if (!naq__names_empty(p->retry_on))
        json_object_set_new(o, "retry_on", names_array(p->retry_on));
    if (!naq__names_empty(p->skip_on))
        json_object_set_new(o, "skip_on", names_array(p->skip_on));
    return o;
}

json_t *naq__job_json(const naq_job *j)
{
    json_error_t e;
    json_t *args = json_loads(j->args_json ? j->args_json : "[]", JSON_DECODE_ANY, &e);
    if (args == NULL) {
        naq__fail(NAQ_ERR_CODEC, "job '%s' args are not JSON: %s", j->id, e.text);
        return NULL;
    }
    json_t *tags = NULL;
    if (j->tags_json != NULL) {
        tags = json_loads(j->tags_json, 0, &e);
        naq_status s =
            tags ? naq__tags_check(tags, NAQ_ERR_CODEC)
                 : naq__fail(NAQ_ERR_CODEC, "job '%s' tags are not JSON: %s", j->id, e.text);
        if (s != NAQ_OK) {
            json_decref(args);
            json_decref(tags);
            return NULL;
        }
    }
    json_t *o = json_object();
    int err = o == NULL;
    if (!err) {
        err |= json_object_set_new(o, "version",
                                   json_integer(j->version ? j->version : NAQ_WIRE_VERSION_PLAIN));
        err |= json_object_set_new(o, "job_id", json_string(j->id));
        err |= json_object_set_new(o, "queue", json_string(j->queue));
        err |= json_object_set_new(o, "function", json_string(j->function));
        err |= json_object_set(o, "args", args);
        err |= json_object_set_new(o, "max_retries", json_integer(j->max_retries));
        err |= json_object_set_new(o, "timeout_ms", json_integer(j->timeout_ms));
        if (tags != NULL)
            err |= json_object_set(o, "tags", tags);
        err |= json_object_set_new(o, "priority", json_integer(j->priority));
        err |= json_object_set_new(o, "enqueued_at", json_real(j->enqueued_at));
        if (j->max_retries > 0 || !policy_is_default(&j->retry))
            err |= json_object_set_new(o, "retry", policy_json(&j->retry));
        if (j->ttl_ms > 0)
            err |= json_object_set_new(o, "ttl_ms", json_integer(j->ttl_ms));
        if (j->depends_on != NULL && j->depends_on[0] != NULL) {
            json_t *d = json_array();
            for (char **p = j->depends_on; d != NULL && *p != NULL; p++)
                err |= json_array_append_new(d, json_string(*p));
            err |= json_object_set_new(o, "depends_on", d);
            if (j->run_on_dependency_failure)
                err |= json_object_set_new(o, "run_on_dependency_failure", json_true());
        }
        if (j->unique_key != NULL)
            err |= json_object_set_new(o, "unique_key", json_string(j->unique_key));
        if (j->schedule_id[0] != '\0')
            err |= json_object_set_new(o, "schedule_id", json_string(j->schedule_id));
        if (j->result_ttl_ms > 0)
            err |= json_object_set_new(o, "result_ttl_ms", json_integer(j->result_ttl_ms));
        if (j->original_job_id != NULL)
            err |= json_object_set_new(o, "original_job_id", json_string(j->original_job_id));
    }
    json_decref(args);
    json_decref(tags);
    if (err) {
        json_decref(o);
        naq__fail(NAQ_ERR_CODEC,
                  "cannot encode job '%s' (a text field is not valid UTF-8, or memory ran out)",
                  j->id);
        return NULL;
    }
    return o;
}

naq_status naq_job_encode(const naq_job *j, char **json, size_t *len)
{
    *json = NULL;
    json_t *o = naq__job_json(j);
    if (o == NULL)
        return NAQ_ERR_CODEC;
    *json = naq__json_dumps(o, NAQ__JSON_FLAGS);
    json_decref(o);
    if (*json == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encoding job '%s'", j->id);
    *len = strlen(*json);
    return NAQ_OK;
}

/* ---------------------------------------------------------------- decode */

/* Reads an optional integer field in [min, max] (dflt when absent or
 * null); accepts an integral real too, since some JSON writers emit 30000.0. */
static naq_status get_int(json_t *o, const char *key, const char *name, int64_t dflt, int64_t min,
                          int64_t max, int64_t *out)
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
        return naq__fail(NAQ_ERR_CODEC, "job field '%s' must be an integer from %lld to %lld",
                         name ? name : key, (long long)min, (long long)max);
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
static naq_status check_schedule_id(const char *v)
{
    return naq_id_validate("schedule id", v);
}

/* An optional string field: heap copy in *out (NULL when absent). */
static naq_status get_string(json_t *o, const char *key, size_t max, char **out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return NAQ_OK;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
        return naq__fail(NAQ_ERR_CODEC, "job field '%s' must be a string of 1 to %zu bytes", key,
                         max);
    if ((*out = strdup(json_string_value(v))) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory decoding a job");
    return NAQ_OK;
}

/* retry_on / skip_on: an array of names (or one comma-separated string)
 * into a heap comma-separated string. */
static naq_status get_names(json_t *o, const char *key, char **out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return NAQ_OK;
    if (json_is_string(v)) {
        *out = strdup(json_string_value(v));
    } else if (json_is_array(v)) {
        size_t total = 1, i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (!json_is_string(x) || strchr(json_string_value(x), ',') != NULL)
                return naq__fail(NAQ_ERR_CODEC,
                                 "job field 'retry.%s' must be an array of error type names", key);
            total += json_string_length(x) + 1;
        }
        if ((*out = malloc(total)) != NULL) {
            size_t used = 0;
            json_array_foreach(v, i, x)
            {
                used += (size_t)snprintf(*out + used, total - used, "%s%s", i ? "," : "",
                                         json_string_value(x));
            }
            (*out)[used] = '\0';
        }
    } else {
        return naq__fail(NAQ_ERR_CODEC, "job field 'retry.%s' must be an array of names", key);
    }
    if (*out == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory decoding a job");
    if (naq__retry_names_check(key, *out) != NAQ_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", naq_last_error());
        return naq__fail(NAQ_ERR_CODEC, "job field 'retry.%s': %s", key, why);
    }
    return NAQ_OK;
}

static naq_status decode_policy(json_t *r, naq_retry_policy *p)
{
    naq_retry_policy_init(p);
    if (r == NULL || json_is_null(r))
        return NAQ_OK;
    if (!json_is_object(r))
        return naq__fail(NAQ_ERR_CODEC, "job field 'retry' must be an object");
    const char *kind = json_string_value(json_object_get(r, "backoff"));
    if (json_object_get(r, "backoff") != NULL) {
        int k = -1;
        for (int i = 0; kind != NULL && i <= NAQ_BACKOFF_LIST; i++)
            if (strcmp(kind, naq__backoff_names[i]) == 0)
                k = i;
        if (k < 0)
            return naq__fail(NAQ_ERR_CODEC,
                             "job field 'retry.backoff' must be fixed, linear, exponential or "
                             "list");
        p->kind = (naq_backoff_kind)k;
    }
    naq_status s;
    if ((s = get_int(r, "delay_ms", "retry.delay_ms", p->delay_ms, 0, NAQ__MAX_DELAY_MS,
                     &p->delay_ms)) != NAQ_OK ||
        (s = get_int(r, "max_delay_ms", "retry.max_delay_ms", p->max_delay_ms, 0, NAQ__MAX_DELAY_MS,
                     &p->max_delay_ms)) != NAQ_OK)
        return s;
    json_t *jit = json_object_get(r, "jitter");
    if (jit != NULL && !json_is_null(jit)) {
        if (!json_is_number(jit) || !(json_number_value(jit) >= 0 && json_number_value(jit) <= 1))
            return naq__fail(NAQ_ERR_CODEC, "job field 'retry.jitter' must be a number 0..1");
        p->jitter = json_number_value(jit);
    }
    json_t *list = json_object_get(r, "delays_ms");
    if (list != NULL && !json_is_null(list)) {
        if (!json_is_array(list) || json_array_size(list) > NAQ_BACKOFF_LIST_MAX)
            return naq__fail(NAQ_ERR_CODEC, "job field 'retry.delays_ms' must be an array of at "
                                            "most 16 integers");
        size_t i;
        json_t *x;
        json_array_foreach(list, i, x)
        {
            if (!json_is_integer(x) || json_integer_value(x) < 0 ||
                json_integer_value(x) > NAQ__MAX_DELAY_MS)
                return naq__fail(NAQ_ERR_CODEC,
                                 "job field 'retry.delays_ms' must hold delays in milliseconds");
            p->delays_ms[i] = (int64_t)json_integer_value(x);
        }
        p->n_delays = (int)json_array_size(list);
    }
    if ((s = get_names(r, "retry_on", &p->retry_on)) != NAQ_OK ||
        (s = get_names(r, "skip_on", &p->skip_on)) != NAQ_OK)
        return s;
    return NAQ_OK;
}

static naq_status decode_depends_on(json_t *d, naq_job *out)
{
    if (d == NULL || json_is_null(d))
        return NAQ_OK;
    if (!json_is_array(d) || json_array_size(d) > NAQ_DEPENDS_ON_MAX)
        return naq__fail(NAQ_ERR_CODEC,
                         "job field 'depends_on' must be an array of at most %d "
                         "job ids",
                         NAQ_DEPENDS_ON_MAX);
    if (json_array_size(d) == 0)
        return NAQ_OK;
    out->depends_on = calloc(json_array_size(d) + 1, sizeof *out->depends_on);
    if (out->depends_on == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory decoding a job");
    size_t i;
    json_t *x;
    json_array_foreach(d, i, x)
    {
        const char *id = json_string_value(x);
        if (id == NULL || naq_id_validate("job id", id) != NAQ_OK)
            return naq__fail(NAQ_ERR_CODEC, "job field 'depends_on' holds a bad job id");
        if ((out->depends_on[i] = strdup(id)) == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory decoding a job");
    }
    return NAQ_OK;
}

/* What a job holds before its fields are read. */
static void job_defaults(naq_job *out)
{
    memset(out, 0, sizeof *out);
    out->priority = NAQ_PRIORITY_NORMAL;
    naq_retry_policy_init(&out->retry);
    out->result_ttl_ms = NAQ_RESULTS_TTL_MS;
}

naq_status naq__job_decode_tree(const char *json, size_t len, naq_job *out)
{
    job_defaults(out);
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
    if (get_int(o, "version", NULL, 0, 0, INT64_MAX, &version) != NAQ_OK || version < 1 ||
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
    if ((s = get_int(o, "max_retries", NULL, 0, 0, 1000000, &retries)) != NAQ_OK ||
        (s = get_int(o, "timeout_ms", NULL, 0, 0, INT64_MAX / 2, &timeout)) != NAQ_OK ||
        (s = get_int(o, "priority", NULL, NAQ_PRIORITY_NORMAL, NAQ_PRIORITY_LOWEST,
                     NAQ_PRIORITY_CRITICAL, &priority)) != NAQ_OK)
        goto out;
    out->max_retries = (int)retries;
    out->timeout_ms = timeout;
    out->priority = (int)priority;
    json_t *at = json_object_get(o, "enqueued_at");
    out->enqueued_at = json_is_number(at) ? json_number_value(at) : 0;
    json_t *args = json_object_get(o, "args");
    out->args_json = args && !json_is_null(args)
                         ? naq__json_dumps(args, NAQ__JSON_FLAGS | JSON_ENCODE_ANY)
                         : strdup("[]");
    if (out->args_json == NULL) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory decoding a job");
        goto out;
    }
    json_t *tags = json_object_get(o, "tags");
    if (tags != NULL && !json_is_null(tags)) {
        if ((s = naq__tags_check(tags, NAQ_ERR_CODEC)) != NAQ_OK)
            goto out;
        out->tags_json = naq__json_dumps(tags, NAQ__JSON_FLAGS);
        if (out->tags_json == NULL) {
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory decoding a job");
            goto out;
        }
    }
    json_t *run = json_object_get(o, "run_on_dependency_failure");
    if (run != NULL && !json_is_null(run) && !json_is_boolean(run)) {
        s = naq__fail(NAQ_ERR_CODEC, "job field 'run_on_dependency_failure' must be true or false");
        goto out;
    }
    out->run_on_dependency_failure = json_is_true(run);
    int64_t result_ttl = 0;
    if ((s = decode_policy(json_object_get(o, "retry"), &out->retry)) != NAQ_OK ||
        (s = get_int(o, "ttl_ms", NULL, 0, 0, INT64_MAX / 2, &out->ttl_ms)) != NAQ_OK ||
        (s = get_int(o, "result_ttl_ms", NULL, 0, 0, INT64_MAX / 2, &result_ttl)) != NAQ_OK ||
        (s = decode_depends_on(json_object_get(o, "depends_on"), out)) != NAQ_OK ||
        (s = get_string(o, "unique_key", NAQ_UNIQUE_KEY_MAX, &out->unique_key)) != NAQ_OK ||
        (s = get_string(o, "original_job_id", NAQ_ID_MAX, &out->original_job_id)) != NAQ_OK)
        goto out;
    if (result_ttl > 0)
        out->result_ttl_ms = result_ttl;
    if (json_object_get(o, "schedule_id") != NULL &&
        (s = get_token(o, "schedule_id", check_schedule_id, out->schedule_id,
                       sizeof out->schedule_id)) != NAQ_OK)
        goto out;
    if (out->original_job_id != NULL && naq_id_validate("job id", out->original_job_id) != NAQ_OK)
        s = naq__fail(NAQ_ERR_CODEC, "job field 'original_job_id' is not a job id");
out:
    json_decref(o);
    return s;
}

/* ---- the fast path: the scanner's members (jsonscan.h), no tree ----
 * Each reader returns 0 where it is not sure the tree decoder would take
 * the value as it is; naq_job_decode then hands the job to that decoder,
 * which accepts it or says what is wrong in its own words. */

/* A string member without escapes, NUL-terminated into dst. */
static int fast_string(const naq__jv *v, char *dst, size_t cap)
{
    if (v == NULL || v->type != NAQ__JV_STRING || v->escaped || v->len - 2 >= cap)
        return 0;
    memcpy(dst, v->text + 1, v->len - 2);
    dst[v->len - 2] = '\0';
    return 1;
}

static int fast_token(const naq__jv *v, naq_status (*check)(const char *), char *dst, size_t cap)
{
    return fast_string(v, dst, cap) && check(dst) == NAQ_OK;
}

/* An optional string member (1..max bytes) into *out (heap, NULL when
 * absent or null). */
static int fast_optional_string(const naq__jv *v, size_t max, char **out)
{
    if (v == NULL || v->type == NAQ__JV_NULL)
        return 1;
    if (v->type != NAQ__JV_STRING || v->escaped || v->len - 2 == 0 || v->len - 2 > max)
        return 0;
    *out = strndup(v->text + 1, v->len - 2);
    return *out != NULL;
}

/* An integer member in [min, max]; dflt when absent or null. */
static int fast_int(const naq__jv *v, int64_t dflt, int64_t min, int64_t max, int64_t *out)
{
    int64_t i = dflt;
    if (v != NULL && v->type != NAQ__JV_NULL) {
        char text[24]; /* the scanner saw an integer within 64 bits */
        if (v->type != NAQ__JV_INTEGER || v->len >= sizeof text)
            return 0;
        memcpy(text, v->text, v->len);
        text[v->len] = '\0';
        i = strtoll(text, NULL, 10);
    }
    *out = i;
    return i >= min && i <= max;
}

/* A number member as a double (0 when it is not a number). jansson reads
 * reals with the C locale's '.', whatever the program's locale is. */
static int fast_number(const naq__jv *v, double *out)
{
    *out = 0;
    if (v == NULL || (v->type != NAQ__JV_INTEGER && v->type != NAQ__JV_REAL))
        return 1;
    char text[64];
    if (v->len >= sizeof text || localeconv()->decimal_point[0] != '.')
        return 0;
    memcpy(text, v->text, v->len);
    text[v->len] = '\0';
    *out = v->type == NAQ__JV_INTEGER ? (double)strtoll(text, NULL, 10) : strtod(text, NULL);
    return 1;
}

/* A member that the tree decoder's code reads, as a tree; NULL when absent
 * or null. *ok is 0 if it could not be loaded. */
static json_t *fast_tree(const naq__jv *v, int *ok)
{
    if (v == NULL || v->type == NAQ__JV_NULL)
        return NULL;
    json_t *t = json_loadb(v->text, v->len, JSON_DECODE_ANY, NULL);
    *ok &= t != NULL;
    return t;
}

/* args as compact text: the member's own text when it has no white
 * space and no escapes (what naq writes), else as the tree decoder
 * prints it. */
static int fast_args(const naq__jv *v, char **out)
{
    if (v == NULL || v->type == NAQ__JV_NULL)
        *out = strdup("[]");
    else if (!v->escaped && !v->spaced)
        *out = strndup(v->text, v->len);
    else {
        int ok = 1;
        json_t *t = fast_tree(v, &ok);
        *out = t ? naq__json_dumps(t, NAQ__JSON_FLAGS | JSON_ENCODE_ANY) : NULL;
        json_decref(t);
    }
    return *out != NULL;
}

/* tags, retry, run_on_dependency_failure and depends_on: rarer members,
 * read by the tree decoder's own code from a tree of each. */
static int fast_options(const naq__jmember *m, int n, naq_job *out)
{
    int ok = 1;
    json_t *tags = fast_tree(naq__jscan_get(m, n, "tags"), &ok);
    json_t *retry = fast_tree(naq__jscan_get(m, n, "retry"), &ok);
    json_t *deps = fast_tree(naq__jscan_get(m, n, "depends_on"), &ok);
    const naq__jv *run = naq__jscan_get(m, n, "run_on_dependency_failure");
    ok = ok && (run == NULL || run->type == NAQ__JV_NULL || run->type == NAQ__JV_TRUE ||
                run->type == NAQ__JV_FALSE);
    out->run_on_dependency_failure = ok && run != NULL && run->type == NAQ__JV_TRUE;
    if (ok && tags != NULL) {
        ok = naq__tags_check(tags, NAQ_ERR_CODEC) == NAQ_OK &&
             (out->tags_json = naq__json_dumps(tags, NAQ__JSON_FLAGS)) != NULL;
    }
    ok =
        ok && decode_policy(retry, &out->retry) == NAQ_OK && decode_depends_on(deps, out) == NAQ_OK;
    json_decref(tags);
    json_decref(retry);
    json_decref(deps);
    return ok;
}

/* 1 when the job was decoded without a tree; 0 when the tree decoder
 * must decide (out is then cleared). */
static int decode_fast(const char *json, size_t len, naq_job *out)
{
    naq__jmember m[NAQ__JSCAN_MEMBERS];
    int n = naq__jscan_object(json, len, m);
    if (n < 0)
        return 0;
    job_defaults(out);
    int64_t version, retries, timeout, priority, result_ttl;
    const naq__jv *schedule = naq__jscan_get(m, n, "schedule_id");
    int ok =
        fast_token(naq__jscan_get(m, n, "job_id"), check_job_id, out->id, sizeof out->id) &&
        fast_token(naq__jscan_get(m, n, "queue"), check_queue, out->queue, sizeof out->queue) &&
        fast_int(naq__jscan_get(m, n, "version"), 0, 1, NAQ_WIRE_VERSION, &version) &&
        fast_token(naq__jscan_get(m, n, "function"), naq__function_validate, out->function,
                   sizeof out->function) &&
        fast_int(naq__jscan_get(m, n, "max_retries"), 0, 0, 1000000, &retries) &&
        fast_int(naq__jscan_get(m, n, "timeout_ms"), 0, 0, INT64_MAX / 2, &timeout) &&
        fast_int(naq__jscan_get(m, n, "priority"), NAQ_PRIORITY_NORMAL, NAQ_PRIORITY_LOWEST,
                 NAQ_PRIORITY_CRITICAL, &priority) &&
        fast_number(naq__jscan_get(m, n, "enqueued_at"), &out->enqueued_at) &&
        fast_args(naq__jscan_get(m, n, "args"), &out->args_json) && fast_options(m, n, out) &&
        fast_int(naq__jscan_get(m, n, "ttl_ms"), 0, 0, INT64_MAX / 2, &out->ttl_ms) &&
        fast_int(naq__jscan_get(m, n, "result_ttl_ms"), 0, 0, INT64_MAX / 2, &result_ttl) &&
        fast_optional_string(naq__jscan_get(m, n, "unique_key"), NAQ_UNIQUE_KEY_MAX,
                             &out->unique_key) &&
        fast_optional_string(naq__jscan_get(m, n, "original_job_id"), NAQ_ID_MAX,
                             &out->original_job_id) &&
        (out->original_job_id == NULL ||
         naq_id_validate("job id", out->original_job_id) == NAQ_OK) &&
        (schedule == NULL ||
         fast_token(schedule, check_schedule_id, out->schedule_id, sizeof out->schedule_id));
    if (!ok) {
        naq_job_clear(out);
        return 0;
    }
    out->version = (int)version;
    out->max_retries = (int)retries;
    out->timeout_ms = timeout;
    out->priority = (int)priority;
    if (result_ttl > 0)
        out->result_ttl_ms = result_ttl;
    return 1;
}

naq_status naq_job_decode(const char *json, size_t len, naq_job *out)
{
    if (decode_fast(json, len, out))
        return NAQ_OK;
    return naq__job_decode_tree(json, len, out);
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Equal as JSON (the fast path keeps the sender's compact text of args,
 * the tree decoder reprints it). */
static int same_json(const char *a, const char *b)
{
    json_t *x = json_loads(a, JSON_DECODE_ANY, NULL), *y = json_loads(b, JSON_DECODE_ANY, NULL);
    int same = x != NULL && y != NULL && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

static int same_policy(const naq_retry_policy *a, const naq_retry_policy *b)
{
    if (a->kind != b->kind || a->delay_ms != b->delay_ms || a->max_delay_ms != b->max_delay_ms ||
        a->jitter != b->jitter || a->n_delays != b->n_delays ||
        !same_str(a->retry_on, b->retry_on) || !same_str(a->skip_on, b->skip_on))
        return 0;
    for (int i = 0; i < a->n_delays && i < NAQ_BACKOFF_LIST_MAX; i++)
        if (a->delays_ms[i] != b->delays_ms[i])
            return 0;
    return 1;
}

static int same_job(const naq_job *a, const naq_job *b)
{
    int same = strcmp(a->id, b->id) == 0 && strcmp(a->queue, b->queue) == 0 &&
               strcmp(a->function, b->function) == 0 &&
               strcmp(a->schedule_id, b->schedule_id) == 0 && a->version == b->version &&
               a->max_retries == b->max_retries && a->timeout_ms == b->timeout_ms &&
               a->priority == b->priority && a->enqueued_at == b->enqueued_at &&
               a->ttl_ms == b->ttl_ms && a->result_ttl_ms == b->result_ttl_ms &&
               a->run_on_dependency_failure == b->run_on_dependency_failure &&
               same_json(a->args_json, b->args_json) && same_str(a->tags_json, b->tags_json) &&
               same_str(a->unique_key, b->unique_key) &&
               same_str(a->original_job_id, b->original_job_id) &&
               same_policy(&a->retry, &b->retry);
    for (int i = 0; same; i++) {
        const char *x = a->depends_on ? a->depends_on[i] : NULL;
        const char *y = b->depends_on ? b->depends_on[i] : NULL;
        if (!same_str(x, y))
            return 0;
        if (x == NULL)
            break;
    }
    return same;
}

int naq__job_decoders_agree(const char *json, size_t len, int *fast)
{
    naq_job a, b;
    *fast = decode_fast(json, len, &a);
    if (!*fast)
        return 1;
    int agree = naq__job_decode_tree(json, len, &b) == NAQ_OK && same_job(&a, &b);
    naq_job_clear(&a);
    naq_job_clear(&b);
    return agree;
}

void naq_job_clear(naq_job *j)
{
    if (j == NULL)
        return;
    free(j->args_json);
    free(j->tags_json);
    free(j->retry.retry_on);
    free(j->retry.skip_on);
    for (char **p = j->depends_on; p != NULL && *p != NULL; p++)
        free(*p);
    free(j->depends_on);
    free(j->unique_key);
    free(j->original_job_id);
    memset(j, 0, sizeof *j);
}

/* ---------------------------------------------------------------- build */

static char *dup_or_null(const char *s, int *oom)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = 1;
    return d;
}

naq_status naq__job_from_opts(const naq__crypt *k, const naq_job_opts *o, naq_job *j)
{
    memset(j, 0, sizeof *j);
    j->version = NAQ_WIRE_VERSION_PLAIN;
    if (o->job_id != NULL)
        snprintf(j->id, sizeof j->id, "%s", o->job_id);
    else
        naq_id_new(j->id);
    snprintf(j->queue, sizeof j->queue, "%s", o->queue);
    snprintf(j->function, sizeof j->function, "%s", o->function);
    int oom = 0;
    j->args_json = dup_or_null(o->args_json ? o->args_json : "[]", &oom);
    j->tags_json = dup_or_null(o->tags_json, &oom);
    j->max_retries = o->max_retries;
    j->timeout_ms = o->timeout_ms;
    j->priority = o->priority;
    j->enqueued_at = naq__now();
    j->retry = o->retry;
    j->retry.retry_on =
        naq__names_empty(o->retry.retry_on) ? NULL : dup_or_null(o->retry.retry_on, &oom);
    j->retry.skip_on =
        naq__names_empty(o->retry.skip_on) ? NULL : dup_or_null(o->retry.skip_on, &oom);
    j->ttl_ms = o->ttl_ms;
    if (o->depends_on != NULL && o->depends_on[0] != NULL) {
        size_t n = 0;
        while (o->depends_on[n] != NULL)
            n++;
        j->depends_on = calloc(n + 1, sizeof *j->depends_on);
        if (j->depends_on == NULL)
            oom = 1;
        for (size_t i = 0; j->depends_on != NULL && i < n; i++)
            j->depends_on[i] = dup_or_null(o->depends_on[i], &oom);
        j->run_on_dependency_failure = o->run_on_dependency_failure != 0;
    }
    j->unique_key = dup_or_null(o->unique_key, &oom);
    if (o->schedule_id != NULL)
        snprintf(j->schedule_id, sizeof j->schedule_id, "%s", o->schedule_id);
    j->result_ttl_ms = o->result_ttl_ms > 0 ? o->result_ttl_ms : NAQ_RESULTS_TTL_MS;
    if (oom) {
        naq_job_clear(j);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory building a job");
    }
    if (k == NULL)
        return NAQ_OK;
    naq_status s = naq__crypt_seal_args(k, j);
    if (s != NAQ_OK) {
        naq_job_clear(j);
        return s;
    }
    j->version = 2; /* args are an envelope: event.h */
    return NAQ_OK;
}

/* ---------------------------------------------------------------- "enqueued" */

void naq__enqueued_event_id(const char *job_id, char out[NAQ_ID_SIZE])
{
    if (strlen(job_id) + 4 <= NAQ_ID_MAX) {
        snprintf(out, NAQ_ID_SIZE, "enq-%s", job_id);
        return;
    }
    /* Too long to prefix: two FNV-1a 64 hashes with different offsets. */
    size_t n = strlen(job_id);
    uint64_t h1 = naq__fnv1a(job_id, n, NAQ__FNV_OFFSET);
    uint64_t h2 = naq__fnv1a(job_id, n, NAQ__FNV_OFFSET2);
    snprintf(out, NAQ_ID_SIZE, "enq-h%016llx%016llx", (unsigned long long)h1,
             (unsigned long long)h2);
}

/* Both copies of the event (the enqueuer's and the worker's) are built
 * here from the job alone, so they are identical whichever is stored. */
naq_status naq__enqueued_event(const naq_job *j, naq_event *e)
{
    naq_event_init(e, NAQ_EVENT_ENQUEUED);
    naq__enqueued_event_id(j->id, e->event_id);
    snprintf(e->job_id, sizeof e->job_id, "%s", j->id);
    snprintf(e->queue_name, sizeof e->queue_name, "%s", j->queue);
    snprintf(e->schedule_id, sizeof e->schedule_id, "%s", j->schedule_id);
    e->timestamp = j->enqueued_at;
    json_t *d = json_pack("{s:s, s:i, s:i}", "function", j->function, "priority", j->priority,
                          "max_retries", j->max_retries);
    if (d != NULL && j->original_job_id != NULL)
        json_object_set_new(d, "original_job_id", json_string(j->original_job_id));
    if (d != NULL && j->depends_on != NULL) {
        json_t *deps = json_array();
        for (char **p = j->depends_on; deps != NULL && *p != NULL; p++)
            json_array_append_new(deps, json_string(*p));
        json_object_set_new(d, "depends_on", deps);
    }
    if (d != NULL && j->unique_key != NULL)
        json_object_set_new(d, "unique_key", json_string(j->unique_key));
    e->details_json = d ? naq__json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    e->tags_json = j->tags_json ? strdup(j->tags_json) : NULL;
    if (e->details_json == NULL || (j->tags_json != NULL && e->tags_json == NULL)) {
        naq_event_clear(e);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory building an event");
    }
    return NAQ_OK;
}
