/*
 * job_jsonl.c - decodes one line of a JSONL job batch into naq_job_opts
 * (`naq enqueue --batch`; job_jsonl.h). It sits next to the job codec
 * (job.c) because it is a second reader of the same fields: a line is the
 * job JSON with shorthands for people who write batches by hand.
 *
 * Unknown fields are refused rather than ignored, so a misspelt
 * "max_retires" fails the batch instead of silently running the job with
 * the default. Every error names its line and the field, and nothing is
 * enqueued until every line decodes (the caller's rule).
 */
#include "job_jsonl.h"
#include "core/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_fields[] = {"queue",       "function",
                                           "args",        "argv",
                                           "max_retries", "retries",
                                           "timeout_ms",  "tags",
                                           "priority",    "job_id",
                                           "id",          "ttl_ms",
                                           "depends_on",  "run_on_dependency_failure",
                                           "unique_key",  "result_ttl_ms",
                                           "retry",       NULL};

/* NAQ_ERR_INVALID_ARG with "line N: " before the error the library
 * recorded (copied first: naq__fail writes over naq_last_error()). */
static naq_status at_line(int lineno)
{
    char was[1024];
    snprintf(was, sizeof was, "%s", naq_last_error());
    return naq__fail(NAQ_ERR_INVALID_ARG, "line %d: %s", lineno, was);
}

/* A whole number field into *out (unchanged when absent or null). */
static naq_status get_int(int lineno, json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return NAQ_OK;
    if (!json_is_integer(v))
        return naq__fail(NAQ_ERR_INVALID_ARG, "line %d: '%s' must be a whole number", lineno, key);
    *out = (int64_t)json_integer_value(v);
    return NAQ_OK;
}

/* A string field into *out, borrowed from o (unchanged when absent). */
static naq_status get_string(int lineno, json_t *o, const char *key, const char **out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return NAQ_OK;
    if (!json_is_string(v))
        return naq__fail(NAQ_ERR_INVALID_ARG, "line %d: '%s' must be a string", lineno, key);
    *out = json_string_value(v);
    return NAQ_OK;
}

static naq_status check_known(int lineno, json_t *o)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        int ok = 0;
        for (int i = 0; known_fields[i] != NULL; i++)
            ok |= strcmp(key, known_fields[i]) == 0;
        if (!ok)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "line %d: unknown field '%s' (see 'naq enqueue --help')", lineno, key);
    }
    return NAQ_OK;
}

/* "argv" (an exec job) or "args", and "tags": re-encoded, held by j. */
static naq_status decode_payload(int lineno, naq__jsonl_job *j)
{
    json_t *o = j->line;
    json_t *argv = json_object_get(o, "argv");
    json_t *args = json_object_get(o, "args");
    if (argv != NULL) {
        if (args != NULL || json_object_get(o, "function") != NULL)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "line %d: give either \"argv\" or \"function\"/\"args\"", lineno);
        json_t *wrap = json_pack("{s:O}", "argv", argv);
        j->args = wrap ? naq__json_dumps(wrap, JSON_COMPACT) : NULL;
        json_decref(wrap);
        j->opts.function = NAQ_EXEC_FUNCTION;
        j->opts.args_json = j->args;
    } else if (args != NULL) {
        j->args = naq__json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
        j->opts.args_json = j->args;
    }
    if ((argv != NULL || args != NULL) && j->args == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "line %d: out of memory", lineno);
    json_t *tags = json_object_get(o, "tags");
    if (tags != NULL) {
        if ((j->tags = naq__json_dumps(tags, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "line %d: out of memory", lineno);
        j->opts.tags_json = j->tags;
    }
    return NAQ_OK;
}

/* "retry": a policy text ("fixed:5s") or the wire object, which is read
 * the way a worker reads it, by decoding a job that carries it. */
static naq_status decode_retry(int lineno, json_t *retry, naq_retry_policy *p)
{
    if (json_is_string(retry))
        return naq_retry_policy_parse(json_string_value(retry), p) == NAQ_OK ? NAQ_OK
                                                                             : at_line(lineno);
    json_t *probe = json_pack("{s:i, s:s, s:s, s:s, s:O}", "version", 1, "job_id", "x", "queue",
                              "x", "function", "x", "retry", retry);
    char *text = probe ? naq__json_dumps(probe, JSON_COMPACT) : NULL;
    json_decref(probe);
    naq_job job;
    memset(&job, 0, sizeof job);
    naq_status s = text ? naq_job_decode(text, strlen(text), &job)
                        : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory");
    free(text);
    if (s == NAQ_OK) {
        /* retry_on / skip_on stay the defaults': the job's copies are freed below. */
        p->kind = job.retry.kind;
        p->delay_ms = job.retry.delay_ms;
        p->max_delay_ms = job.retry.max_delay_ms;
        p->jitter = job.retry.jitter;
        memcpy(p->delays_ms, job.retry.delays_ms, sizeof job.retry.delays_ms);
        p->n_delays = job.retry.n_delays;
    }
    naq_job_clear(&job);
    return s == NAQ_OK ? NAQ_OK : at_line(lineno);
}

/* "depends_on": an array of job ids, borrowed from the line. */
static naq_status decode_deps(int lineno, json_t *deps, naq__jsonl_job *j)
{
    if (!json_is_array(deps))
        return naq__fail(NAQ_ERR_INVALID_ARG, "line %d: 'depends_on' must be an array of job ids",
                         lineno);
    j->deps = calloc(json_array_size(deps) + 1, sizeof *j->deps);
    if (j->deps == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "line %d: out of memory", lineno);
    size_t i;
    json_t *d;
    json_array_foreach(deps, i, d)
    {
        if (!json_is_string(d))
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "line %d: 'depends_on' must be an array of job ids", lineno);
        j->deps[i] = json_string_value(d);
    }
    j->opts.depends_on = j->deps;
    return NAQ_OK;
}

static naq_status decode_fields(int lineno, naq__jsonl_job *j)
{
    json_t *o = j->line;
    naq_job_opts *jo = &j->opts;
    naq_status s;
    int64_t n = jo->max_retries;
    if ((s = check_known(lineno, o)) != NAQ_OK ||
        (s = get_string(lineno, o, "queue", &jo->queue)) != NAQ_OK ||
        (s = get_string(lineno, o, "function", &jo->function)) != NAQ_OK ||
        (s = get_string(lineno, o, "job_id", &jo->job_id)) != NAQ_OK ||
        (s = get_string(lineno, o, "id", &jo->job_id)) != NAQ_OK ||
        (s = get_string(lineno, o, "unique_key", &jo->unique_key)) != NAQ_OK ||
        (s = get_int(lineno, o, "timeout_ms", &jo->timeout_ms)) != NAQ_OK ||
        (s = get_int(lineno, o, "ttl_ms", &jo->ttl_ms)) != NAQ_OK ||
        (s = get_int(lineno, o, "result_ttl_ms", &jo->result_ttl_ms)) != NAQ_OK ||
        (s = get_int(lineno, o, "retries", &n)) != NAQ_OK ||
        (s = get_int(lineno, o, "max_retries", &n)) != NAQ_OK)
        return s;
    if (n < 0 || n > 1000000)
        return naq__fail(NAQ_ERR_INVALID_ARG, "line %d: max_retries must be 0 to 1000000", lineno);
    jo->max_retries = (int)n;
    if ((s = decode_payload(lineno, j)) != NAQ_OK)
        return s;
    json_t *prio = json_object_get(o, "priority");
    if (json_is_integer(prio))
        jo->priority = (int)json_integer_value(prio);
    else if (json_is_string(prio) &&
             naq_priority_parse(json_string_value(prio), &jo->priority) != NAQ_OK)
        return at_line(lineno);
    else if (prio != NULL && !json_is_string(prio))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "line %d: 'priority' must be 0-4 or a name like \"high\"", lineno);
    json_t *retry = json_object_get(o, "retry");
    if (retry != NULL && (s = decode_retry(lineno, retry, &jo->retry)) != NAQ_OK)
        return s;
    json_t *deps = json_object_get(o, "depends_on");
    if (deps != NULL && (s = decode_deps(lineno, deps, j)) != NAQ_OK)
        return s;
    json_t *run = json_object_get(o, "run_on_dependency_failure");
    if (run != NULL) {
        if (!json_is_boolean(run))
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "line %d: 'run_on_dependency_failure' must be true or false", lineno);
        jo->run_on_dependency_failure = json_is_true(run);
    }
    return NAQ_OK;
}

naq_status naq__jsonl_job_decode(const char *text, size_t len, int lineno,
                                 const naq_job_opts *defaults, naq__jsonl_job *j)
{
    memset(j, 0, sizeof *j);
    j->opts = *defaults;
    json_error_t err;
    j->line = json_loadb(text, len, 0, &err);
    if (j->line == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "line %d: %s", lineno, err.text);
    if (!json_is_object(j->line))
        return naq__fail(NAQ_ERR_INVALID_ARG, "line %d: not a JSON object", lineno);
    naq_status s = decode_fields(lineno, j);
    if (s == NAQ_OK && naq_job_opts_validate(&j->opts) != NAQ_OK)
        s = at_line(lineno);
    return s;
}

void naq__jsonl_job_clear(naq__jsonl_job *j)
{
    json_decref(j->line);
    free(j->args);
    free(j->tags);
    free(j->deps);
    memset(j, 0, sizeof *j);
}
