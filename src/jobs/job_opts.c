/*
 * job_opts.c - what a caller may ask of a job: priorities by name, the
 * retry policy (its defaults and its text form, "exponential:1s..5m"),
 * naq_job_opts and their validation. Everything is checked here, before a
 * job is built, so that no enqueue path can queue a job a worker would
 * refuse; the wire codec (job.c) reuses the checks on what it decodes.
 */
#include "jobs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RETRY_DELAY_MS 1000
#define DEFAULT_RETRY_CAP_MS (5 * 60 * 1000)
/* Longest retry_on / skip_on list, and error type name in it. */
#define MAX_NAMES_LEN 1024
#define MAX_NAME_LEN 128

const char *const naq__backoff_names[NAQ_BACKOFF_LIST + 1] = {"fixed", "linear", "exponential",
                                                              "list"};

/* ---------------------------------------------------------------- options */

static const char *const priority_names[NAQ_PRIORITY_LEVELS] = {"lowest", "low", "normal", "high",
                                                                "critical"};

const char *naq_priority_name(int priority)
{
    return priority >= 0 && priority < NAQ_PRIORITY_LEVELS ? priority_names[priority] : "unknown";
}

naq_status naq_priority_parse(const char *text, int *out)
{
    for (int i = 0; text != NULL && i < NAQ_PRIORITY_LEVELS; i++) {
        if (strcmp(text, priority_names[i]) == 0 || (text[0] == '0' + i && text[1] == '\0')) {
            *out = i;
            return NAQ_OK;
        }
    }
    return naq__fail(NAQ_ERR_INVALID_ARG,
                     "unknown priority '%s': use lowest, low, normal, high, critical or 0-4",
                     text ? text : "");
}

void naq_retry_policy_init(naq_retry_policy *p)
{
    memset(p, 0, sizeof *p);
    p->kind = NAQ_BACKOFF_EXPONENTIAL;
    p->delay_ms = DEFAULT_RETRY_DELAY_MS;
    p->max_delay_ms = DEFAULT_RETRY_CAP_MS;
}

void naq_job_opts_init(naq_job_opts *o)
{
    memset(o, 0, sizeof *o);
    o->priority = NAQ_PRIORITY_NORMAL;
    naq_retry_policy_init(&o->retry);
    o->result_ttl_ms = NAQ_RESULTS_TTL_MS;
}

static naq_status check_delay(const char *what, int64_t ms)
{
    if (ms < 0 || ms > NAQ__MAX_DELAY_MS)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "%s is %lld ms; use 0 to %lld ms (a year); the unit is milliseconds", what,
                         (long long)ms, (long long)NAQ__MAX_DELAY_MS);
    return NAQ_OK;
}

/* A comma-separated list of error type names: each 1..MAX_NAME_LEN
 * printable characters (spaces around names are ignored). */
naq_status naq__retry_names_check(const char *what, const char *list)
{
    if (list == NULL)
        return NAQ_OK;
    if (strlen(list) > MAX_NAMES_LEN)
        return naq__fail(NAQ_ERR_INVALID_ARG, "retry policy %s is longer than %d bytes", what,
                         MAX_NAMES_LEN);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *name;
        size_t len;
        p = naq__names_next(p, &name, &len);
        if (len == 0)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "retry policy %s '%s' has an empty name; give error types "
                             "separated by commas, like \"Timeout,ExitStatus\"",
                             what, list);
        if (len > MAX_NAME_LEN)
            return naq__fail(NAQ_ERR_INVALID_ARG, "retry policy %s: a name is longer than %d bytes",
                             what, MAX_NAME_LEN);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
                return naq__fail(NAQ_ERR_INVALID_ARG,
                                 "retry policy %s contains a control character", what);
    }
    return NAQ_OK;
}

static naq_status check_policy(const naq_retry_policy *p)
{
    naq_status s;
    if ((int)p->kind < NAQ_BACKOFF_FIXED || p->kind > NAQ_BACKOFF_LIST)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "retry policy kind %d is unknown; use NAQ_BACKOFF_FIXED, _LINEAR, "
                         "_EXPONENTIAL or _LIST",
                         (int)p->kind);
    if ((s = check_delay("retry delay_ms", p->delay_ms)) != NAQ_OK ||
        (s = check_delay("retry max_delay_ms", p->max_delay_ms)) != NAQ_OK)
        return s;
    if ((p->kind == NAQ_BACKOFF_LINEAR || p->kind == NAQ_BACKOFF_EXPONENTIAL) &&
        p->max_delay_ms > 0 && p->delay_ms > p->max_delay_ms)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "retry delay %lld ms is longer than its cap (max_delay_ms) of %lld ms; "
                         "raise the cap or set it to 0 for none",
                         (long long)p->delay_ms, (long long)p->max_delay_ms);
    if (!(p->jitter >= 0.0 && p->jitter <= 1.0))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "retry jitter %g is out of range; use 0 (none) to 1 (delays vary by "
                         "up to 100%%)",
                         p->jitter);
    if (p->kind == NAQ_BACKOFF_LIST) {
        if (p->n_delays < 1 || p->n_delays > NAQ_BACKOFF_LIST_MAX)
            return naq__fail(NAQ_ERR_INVALID_ARG, "a retry delay list needs 1 to %d delays, not %d",
                             NAQ_BACKOFF_LIST_MAX, p->n_delays);
        for (int i = 0; i < p->n_delays; i++)
            if ((s = check_delay("a retry delay of the list", p->delays_ms[i])) != NAQ_OK)
                return s;
    }
    if ((s = naq__retry_names_check("retry_on", p->retry_on)) != NAQ_OK ||
        (s = naq__retry_names_check("skip_on", p->skip_on)) != NAQ_OK)
        return s;
    return NAQ_OK;
}

static naq_status parse_delay(const char *spec, const char *part, int64_t *ms)
{
    if (naq_parse_duration_ms(part, ms) != NAQ_OK)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "retry policy '%s': '%s' is not a duration; use e.g. 500ms, 5s, 2m", spec,
                         part);
    return NAQ_OK;
}

static naq_status parse_jitter(const char *spec, const char *part, double *out)
{
    char *end = NULL;
    double v = strtod(part, &end);
    if (end != part && *end == '%' && end[1] == '\0')
        v /= 100.0;
    else if (end == part || *end != '\0')
        v = -1;
    if (!(v >= 0.0 && v <= 1.0))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "retry policy '%s': jitter '%s' must be 0 to 1 (or 0%% to 100%%)", spec,
                         part);
    *out = v;
    return NAQ_OK;
}

naq_status naq_retry_policy_parse(const char *text, naq_retry_policy *out)
{
    static const char usage[] = "use fixed:5s, linear:1s[:CAP], exponential:1s[:CAP[:JITTER]] "
                                "or list:1s,5s,30s";
    if (text == NULL || out == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "no retry policy given; %s", usage);
    const char *colon = strchr(text, ':');
    if (colon == NULL || colon[1] == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG, "retry policy '%s' has no delay; %s", text, usage);
    naq_retry_policy p = *out;
    memset(p.delays_ms, 0, sizeof p.delays_ms);
    p.n_delays = 0;
    p.jitter = 0;
    p.max_delay_ms = 0;
    size_t klen = (size_t)(colon - text);
    int kind = -1;
    for (int i = 0; i <= NAQ_BACKOFF_LIST; i++)
        if (strlen(naq__backoff_names[i]) == klen &&
            strncmp(text, naq__backoff_names[i], klen) == 0)
            kind = i;
    if (kind < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "retry policy '%s' has an unknown kind; %s", text,
                         usage);
    p.kind = (naq_backoff_kind)kind;

    /* Split the rest on ':' (',' for a list) into at most 16 parts. */
    char rest[256];
    if (strlen(colon + 1) >= sizeof rest)
        return naq__fail(NAQ_ERR_INVALID_ARG, "retry policy '%.40s...' is too long", text);
    snprintf(rest, sizeof rest, "%s", colon + 1);
    const char *sep = p.kind == NAQ_BACKOFF_LIST ? "," : ":";
    char *parts[NAQ_BACKOFF_LIST_MAX + 1];
    int n = 0;
    for (char *q = rest;;) {
        if (n == NAQ_BACKOFF_LIST_MAX + 1)
            return naq__fail(NAQ_ERR_INVALID_ARG, "retry policy '%s' has too many parts; %s", text,
                             usage);
        parts[n++] = q;
        char *e = strpbrk(q, sep);
        if (e == NULL)
            break;
        *e = '\0';
        q = e + 1;
    }
    static const int max_parts[] = {1, 2, 3, NAQ_BACKOFF_LIST_MAX};
    if (n > max_parts[p.kind])
        return naq__fail(NAQ_ERR_INVALID_ARG, "retry policy '%s' has too many parts; %s", text,
                         usage);
    naq_status s;
    if (p.kind == NAQ_BACKOFF_LIST) {
        for (int i = 0; i < n; i++)
            if ((s = parse_delay(text, parts[i], &p.delays_ms[i])) != NAQ_OK)
                return s;
        p.n_delays = n;
        p.delay_ms = p.delays_ms[0];
    } else {
        if ((s = parse_delay(text, parts[0], &p.delay_ms)) != NAQ_OK)
            return s;
        if (p.kind != NAQ_BACKOFF_FIXED)
            p.max_delay_ms = DEFAULT_RETRY_CAP_MS;
        if (n > 1 && (s = parse_delay(text, parts[1], &p.max_delay_ms)) != NAQ_OK)
            return s;
        if (n > 2 && (s = parse_jitter(text, parts[2], &p.jitter)) != NAQ_OK)
            return s;
    }
    if ((s = check_policy(&p)) != NAQ_OK)
        return s;
    *out = p;
    return NAQ_OK;
}

naq_status naq__function_validate(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "function name is empty; name the handler that runs the job: "
                         "\"exec\" for a command, or the name a worker program registered");
    /* '.' is allowed: a function name never becomes a subject token. */
    return naq__name_validate("function name", name, NAQ_ID_MAX, NAQ__NAME_PRINTABLE);
}

/* NAQ_OK when v is a JSON object whose values are all strings. */
naq_status naq__tags_check(const json_t *v, naq_status bad)
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

static naq_status check_depends_on(const naq_job_opts *o)
{
    naq_status s;
    int n = 0;
    for (; o->depends_on[n] != NULL; n++) {
        if (n == NAQ_DEPENDS_ON_MAX)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "depends_on lists more than %d jobs; chain them through an "
                             "intermediate job instead",
                             NAQ_DEPENDS_ON_MAX);
        const char *d = o->depends_on[n];
        if ((s = naq_id_validate("job id in depends_on", d)) != NAQ_OK)
            return s;
        if (o->job_id != NULL && strcmp(d, o->job_id) == 0)
            return naq__fail(NAQ_ERR_INVALID_ARG, "job %s cannot depend on itself", d);
        for (int k = 0; k < n; k++)
            if (strcmp(o->depends_on[k], d) == 0)
                return naq__fail(NAQ_ERR_INVALID_ARG, "depends_on lists job %s twice", d);
    }
    return NAQ_OK;
}

/* The shape of an exec job's args (NAQ_EXEC_FUNCTION): checked here for
 * every exec job enqueued, and again by the exec handler (worker/) for
 * jobs that foreign programs queued. */
#define EXEC_SHAPE                                                                                 \
    "exec args are {\"argv\": [\"cmd\", \"arg\", ...], \"env\": {\"NAME\": \"value\"}, "           \
    "\"cwd\": \"/dir\"} (env and cwd optional) or [\"cmd\", \"arg\", ...]"

naq_status naq__exec_args_check(const json_t *cargs)
{
    json_t *args = (json_t *)cargs; /* jansson's getters take non-const */
    json_t *argv = json_is_array(args) ? args : json_object_get(args, "argv");
    json_t *env = json_is_object(args) ? json_object_get(args, "env") : NULL;
    json_t *cwd = json_is_object(args) ? json_object_get(args, "cwd") : NULL;
    if (!json_is_array(argv) || json_array_size(argv) == 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "the exec job has no command to run; %s (on the command line: naq "
                         "enqueue -q QUEUE -- COMMAND ARG...)",
                         EXEC_SHAPE);
    if ((env != NULL && !json_is_null(env) && !json_is_object(env)) ||
        (cwd != NULL && !json_is_null(cwd) && !json_is_string(cwd)))
        return naq__fail(NAQ_ERR_INVALID_ARG, "exec env must be an object and cwd a string; %s",
                         EXEC_SHAPE);
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a)
    {
        const char *text = json_string_value(a);
        if (text == NULL || (i == 0 && text[0] == '\0'))
            return naq__fail(NAQ_ERR_INVALID_ARG, "exec argv[%zu] is not a %sstring; %s", i,
                             i == 0 ? "non-empty " : "", EXEC_SHAPE);
    }
    const char *key;
    json_t *val;
    json_object_foreach(env, key, val)
    {
        if (!json_is_string(val) || key[0] == '\0' || strchr(key, '=') != NULL)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "exec env entry '%s' needs a name without '=' and a string value; %s",
                             key, EXEC_SHAPE);
    }
    return NAQ_OK;
}

naq_status naq_job_opts_validate(const naq_job_opts *o)
{
    naq_status s;
    if (o == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "no job options given");
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
    json_t *v = json_loads(o->args_json ? o->args_json : "[]", JSON_DECODE_ANY, &e);
    if (v == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "args are not valid JSON: %s (line %d, column %d); pass a JSON value "
                         "such as [1, 2] or {\"to\": \"a@b.c\"}",
                         e.text, e.line, e.column);
    /* An exec job the handler would refuse fails here, not on a worker. */
    s = strcmp(o->function, NAQ_EXEC_FUNCTION) == 0 ? naq__exec_args_check(v) : NAQ_OK;
    json_decref(v);
    if (s != NAQ_OK)
        return s;
    if (o->tags_json != NULL) {
        v = json_loads(o->tags_json, 0, &e);
        if (v == NULL)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "tags are not valid JSON: %s; pass an object of strings like "
                             "{\"team\":\"billing\"}",
                             e.text);
        s = naq__tags_check(v, NAQ_ERR_INVALID_ARG);
        json_decref(v);
        if (s != NAQ_OK)
            return s;
    }
    if ((s = check_policy(&o->retry)) != NAQ_OK)
        return s;
    if (o->ttl_ms < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "ttl_ms is %lld; use 0 (no TTL) or a positive number of milliseconds",
                         (long long)o->ttl_ms);
    if (o->depends_on != NULL && (s = check_depends_on(o)) != NAQ_OK)
        return s;
    if (o->unique_key != NULL) {
        size_t n = strlen(o->unique_key);
        if (n == 0 || n > NAQ_UNIQUE_KEY_MAX)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "unique_key is %zu bytes long; use 1 to %d bytes, or give none", n,
                             NAQ_UNIQUE_KEY_MAX);
    }
    if (o->schedule_id != NULL && (s = naq_id_validate("schedule id", o->schedule_id)) != NAQ_OK)
        return s;
    if (o->result_ttl_ms < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "result_ttl_ms is %lld; use a positive number of milliseconds (0 = "
                         "the default, 24 h)",
                         (long long)o->result_ttl_ms);
    if (o->result_ttl_ms > NAQ_RESULTS_MAX_TTL_MS)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "a result can be kept 7 days at most (the outcome stream keeps records "
                         "that long); ask for a result TTL of 7d or less");
    return NAQ_OK;
}
