/*
 * schedule.c - the schedule model: its JSON codec, due-time arithmetic,
 * and the schedules bucket (add / get / list / modify / pause / resume /
 * remove) that the CLI drives.
 *
 * Invariant: every write of an existing schedule is a compare-and-set on
 * the revision it was read at (naq__kv_cas), never a blind put, because the
 * leader writes next_run / last_run / repeat after each trigger while an
 * operator may be editing the same schedule. A lost race re-reads and
 * re-applies only the caller's change.
 *
 * Due times are int64 milliseconds, so "<name>-<due_ms>" job ids and
 * interval arithmetic are exact; the JSON carries seconds like events do.
 */
#include "calendar.h"
#include "internal.h"
#include "core/jsonw.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(17))
#define EVERY_MIN_MS 100
#define MODIFY_ATTEMPTS 10

/* ---------------------------------------------------------------- names */

static const char *const kind_names[] = {"cron", "every", "at"};
static const char *const misfire_names[] = {"run_once", "run_all", "skip"};

const char *naq_schedule_kind_name(naq_schedule_kind k)
{
    return (int)k >= 0 && k <= NAQ_SCHEDULE_AT ? kind_names[k] : "unknown";
}

const char *naq_misfire_policy_name(naq_misfire_policy p)
{
    return (int)p >= 0 && p <= NAQ_MISFIRE_SKIP ? misfire_names[p] : "unknown";
}

naq_status naq_misfire_policy_parse(const char *text, naq_misfire_policy *out)
{
    for (int i = 0; i <= NAQ_MISFIRE_SKIP; i++) {
        if (text != NULL && strcmp(text, misfire_names[i]) == 0) {
            *out = (naq_misfire_policy)i;
            return NAQ_OK;
        }
    }
    return naq__fail(NAQ_ERR_INVALID_ARG,
                     "unknown misfire policy '%s'; use run_once, run_all or skip",
                     text ? text : "");
}

naq_status naq_schedule_name_validate(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG, "schedule name is empty");
    size_t n = strlen(name);
    if (n > NAQ_SCHEDULE_NAME_MAX)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "schedule name is %zu characters long; at most %d are allowed", n,
                         NAQ_SCHEDULE_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_';
        if (!ok)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "schedule name '%s' contains '%c' at position %zu; use letters, "
                             "digits, '-' or '_'",
                             name, ch, i + 1);
    }
    return NAQ_OK;
}

naq_status naq_schedule_job_id(const char *name, int64_t due_ms, char out[NAQ_ID_SIZE])
{
    naq_status s = naq_schedule_name_validate(name);
    if (s != NAQ_OK)
        return s;
    /* 100 name characters + '-' + at most 20 digits always fit 128. */
    snprintf(out, NAQ_ID_SIZE, "%s-%lld", name, (long long)due_ms);
    return NAQ_OK;
}

static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

void naq__derived_id(const char *tag, const char *key, char out[NAQ_ID_SIZE])
{
    size_t nt = strlen(tag), nk = strlen(key);
    if (nt + 1 + nk <= NAQ_ID_MAX) {
        memcpy(out, tag, nt);
        out[nt] = '-';
        memcpy(out + nt + 1, key, nk + 1);
        return;
    }
    /* Two independent 64-bit hashes: a collision inside the 2-minute
     * duplicate window is out of reach. */
    snprintf(out, NAQ_ID_SIZE, "%s-%016llx%016llx", tag,
             (unsigned long long)fnv1a(key, 0xcbf29ce484222325ULL),
             (unsigned long long)fnv1a(key, 0x84222325cbf29ce4ULL));
}

/* ---------------------------------------------------------------- model */

void naq_schedule_init(naq_schedule *s)
{
    memset(s, 0, sizeof *s);
    s->version = NAQ_SCHEDULE_VERSION;
    s->kind = NAQ_SCHEDULE_CRON;
    s->repeat = -1;
    snprintf(s->queue, sizeof s->queue, "default");
    s->priority = NAQ_PRIORITY_NORMAL;
    s->misfire = NAQ_MISFIRE_RUN_ONCE;
}

void naq_schedule_clear(naq_schedule *s)
{
    if (s == NULL)
        return;
    free(s->args_json);
    naq_schedule_init(s);
}

naq_status naq_schedule_copy(naq_schedule *dst, const naq_schedule *src)
{
    *dst = *src;
    dst->args_json = NULL;
    if (src->args_json != NULL && (dst->args_json = strdup(src->args_json)) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory copying a schedule");
    return NAQ_OK;
}

naq_status naq_schedule_validate(const naq_schedule *s)
{
    naq_status st;
    if ((st = naq_schedule_name_validate(s->name)) != NAQ_OK ||
        (st = naq_id_validate("queue name", s->queue)) != NAQ_OK ||
        (st = naq__function_validate(s->function)) != NAQ_OK)
        return st;
    switch (s->kind) {
    case NAQ_SCHEDULE_CRON: {
        naq_cron cr;
        int64_t next;
        if ((st = naq_cron_parse(s->cron, &cr)) != NAQ_OK)
            return st;
        /* Also proves the zone exists (and that the expression ever fires). */
        st = naq_cron_next(&cr, (int64_t)time(NULL), s->tz, &next);
        if (st == NAQ_ERR_NOT_FOUND)
            return naq__fail(NAQ_ERR_INVALID_ARG, "cron expression '%s' never fires", s->cron);
        if (st != NAQ_OK)
            return st;
        break;
    }
    case NAQ_SCHEDULE_EVERY:
        if (s->every_ms < EVERY_MIN_MS)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "interval of %lld ms is too short; use at least %d ms",
                             (long long)s->every_ms, EVERY_MIN_MS);
        break;
    case NAQ_SCHEDULE_AT:
        if (s->at_ms <= 0)
            return naq__fail(NAQ_ERR_INVALID_ARG, "a one-off schedule needs a time (--at)");
        break;
    default: return naq__fail(NAQ_ERR_INVALID_ARG, "unknown schedule kind %d", (int)s->kind);
    }
    if (s->kind != NAQ_SCHEDULE_CRON && s->tz[0] != '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "a time zone only applies to cron schedules (--every and --at are "
                         "absolute)");
    if (s->repeat < -1)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "repeat is %lld; use a positive count or -1 for no limit",
                         (long long)s->repeat);
    if (s->priority < NAQ_PRIORITY_LOWEST || s->priority > NAQ_PRIORITY_CRITICAL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "priority %d is out of range; use 0 to 4",
                         s->priority);
    if (s->max_retries < 0 || s->timeout_ms < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "retries and timeout cannot be negative");
    if ((int)s->misfire < 0 || s->misfire > NAQ_MISFIRE_SKIP)
        return naq__fail(NAQ_ERR_INVALID_ARG, "unknown misfire policy %d", (int)s->misfire);
    json_error_t e;
    json_t *v = json_loads(s->args_json ? s->args_json : "[]", JSON_DECODE_ANY, &e);
    if (v == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "args are not valid JSON: %s", e.text);
    /* As naq_job_opts_validate: every trigger would fail on the worker. */
    st = strcmp(s->function, NAQ_EXEC_FUNCTION) == 0 ? naq__exec_args_check(v) : NAQ_OK;
    json_decref(v);
    return st;
}

naq_status naq_schedule_next(const naq_schedule *s, int64_t after_ms, int64_t *next_ms)
{
    switch (s->kind) {
    case NAQ_SCHEDULE_CRON: {
        naq_cron cr;
        int64_t next;
        naq_status st = naq_cron_parse(s->cron, &cr);
        if (st != NAQ_OK)
            return st;
        /* Cron fires on whole seconds: the first one after the second that
         * holds after_ms is also strictly after after_ms. */
        if ((st = naq_cron_next(&cr, floor_div(after_ms, 1000), s->tz, &next)) != NAQ_OK)
            return st;
        *next_ms = next * 1000;
        return NAQ_OK;
    }
    case NAQ_SCHEDULE_EVERY: {
        if (s->every_ms <= 0)
            return naq__fail(NAQ_ERR_INVALID_ARG, "interval must be positive");
        /* Due times sit on the grid created_at + k * every (k >= 1), so
         * late triggers never shift the later ones. */
        int64_t k = floor_div(after_ms - s->created_at_ms, s->every_ms) + 1;
        if (k < 1)
            k = 1;
        *next_ms = s->created_at_ms + k * s->every_ms;
        return NAQ_OK;
    }
    case NAQ_SCHEDULE_AT:
        if (s->at_ms > after_ms) {
            *next_ms = s->at_ms;
            return NAQ_OK;
        }
        return NAQ_ERR_NOT_FOUND;
    }
    return naq__fail(NAQ_ERR_INVALID_ARG, "unknown schedule kind %d", (int)s->kind);
}

/* ---------------------------------------------------------------- codec */

static json_t *seconds(int64_t ms)
{
    return json_real((double)ms / 1000.0);
}

naq_status naq_schedule_encode(const naq_schedule *s, char **json, size_t *len)
{
    *json = NULL;
    json_error_t e;
    json_t *args = json_loads(s->args_json ? s->args_json : "[]", JSON_DECODE_ANY, &e);
    if (args == NULL)
        return naq__fail(NAQ_ERR_CODEC, "schedule '%s' args are not JSON: %s", s->name, e.text);
    json_t *o = json_object();
    int err = o == NULL;
    if (!err) {
        err |= json_object_set_new(o, "version", json_integer(NAQ_SCHEDULE_VERSION));
        err |= json_object_set_new(o, "name", json_string(s->name));
        err |= json_object_set_new(o, "kind", json_string(naq_schedule_kind_name(s->kind)));
        if (s->kind == NAQ_SCHEDULE_CRON)
            err |= json_object_set_new(o, "cron", json_string(s->cron));
        if (s->tz[0] != '\0')
            err |= json_object_set_new(o, "tz", json_string(s->tz));
        if (s->kind == NAQ_SCHEDULE_EVERY)
            err |= json_object_set_new(o, "every_ms", json_integer(s->every_ms));
        if (s->kind == NAQ_SCHEDULE_AT)
            err |= json_object_set_new(o, "at", seconds(s->at_ms));
        err |= json_object_set_new(o, "repeat", json_integer(s->repeat));
        err |= json_object_set_new(o, "queue", json_string(s->queue));
        err |= json_object_set_new(o, "function", json_string(s->function));
        err |= json_object_set_new(o, "args", json_incref(args));
        err |= json_object_set_new(o, "max_retries", json_integer(s->max_retries));
        err |= json_object_set_new(o, "timeout_ms", json_integer(s->timeout_ms));
        err |= json_object_set_new(o, "priority", json_integer(s->priority));
        err |= json_object_set_new(o, "paused", json_boolean(s->paused));
        err |= json_object_set_new(o, "misfire", json_string(naq_misfire_policy_name(s->misfire)));
        if (s->next_run_ms != 0)
            err |= json_object_set_new(o, "next_run", seconds(s->next_run_ms));
        if (s->last_run_ms != 0)
            err |= json_object_set_new(o, "last_run", seconds(s->last_run_ms));
        err |= json_object_set_new(o, "created_at", seconds(s->created_at_ms));
    }
    *json = err ? NULL : naq__json_dumps(o, JSON_FLAGS);
    json_decref(o);
    json_decref(args);
    if (*json == NULL)
        return naq__fail(NAQ_ERR_CODEC,
                         "cannot encode schedule '%s' (a text is not valid UTF-8, or memory ran "
                         "out)",
                         s->name);
    *len = strlen(*json);
    return NAQ_OK;
}

static naq_status get_string(json_t *o, const char *key, int required, char *dst, size_t cap)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            return naq__fail(NAQ_ERR_CODEC, "schedule has no '%s'", key);
        return NAQ_OK;
    }
    const char *text = json_string_value(v);
    if (text == NULL || strlen(text) >= cap)
        return naq__fail(NAQ_ERR_CODEC, "schedule field '%s' must be a string of at most %zu bytes",
                         key, cap - 1);
    memcpy(dst, text, strlen(text) + 1);
    return NAQ_OK;
}

static naq_status get_integer(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return NAQ_OK; /* keep the default */
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return naq__fail(NAQ_ERR_CODEC, "schedule field '%s' must be an integer from %lld to %lld",
                         key, (long long)min, (long long)max);
    *out = (int64_t)json_integer_value(v);
    return NAQ_OK;
}

static naq_status get_time(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return NAQ_OK;
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0 ||
        json_number_value(v) > 1e12)
        return naq__fail(NAQ_ERR_CODEC, "schedule field '%s' must be seconds since the epoch", key);
    *out = llround(json_number_value(v) * 1000.0);
    return NAQ_OK;
}

naq_status naq_schedule_decode(const char *json, size_t len, naq_schedule *out)
{
    naq_schedule_init(out);
    json_error_t e;
    json_t *o = json_loadb(json, len, 0, &e);
    if (o == NULL)
        return naq__fail(NAQ_ERR_CODEC, "schedule is not JSON: %s", e.text);
    naq_status s = NAQ_OK;
    int64_t version = 0, repeat = -1, retries = 0, timeout = 0, priority = NAQ_PRIORITY_NORMAL;
    char kind[16] = "", misfire[16] = "run_once";
    if (!json_is_object(o)) {
        s = naq__fail(NAQ_ERR_CODEC, "schedule is not a JSON object");
        goto out;
    }
    if ((s = get_integer(o, "version", 0, INT32_MAX, &version)) != NAQ_OK)
        goto out;
    if (version < 1 || version > NAQ_SCHEDULE_VERSION) {
        s = naq__fail(NAQ_ERR_CODEC,
                      "schedule has version %lld; this naq reads versions 1 to %d (upgrade naq)",
                      (long long)version, NAQ_SCHEDULE_VERSION);
        goto out;
    }
    if ((s = get_string(o, "name", 1, out->name, sizeof out->name)) != NAQ_OK ||
        (s = get_string(o, "kind", 1, kind, sizeof kind)) != NAQ_OK ||
        (s = get_string(o, "cron", 0, out->cron, sizeof out->cron)) != NAQ_OK ||
        (s = get_string(o, "tz", 0, out->tz, sizeof out->tz)) != NAQ_OK ||
        (s = get_string(o, "queue", 1, out->queue, sizeof out->queue)) != NAQ_OK ||
        (s = get_string(o, "function", 1, out->function, sizeof out->function)) != NAQ_OK ||
        (s = get_string(o, "misfire", 0, misfire, sizeof misfire)) != NAQ_OK ||
        (s = get_integer(o, "every_ms", 0, INT64_MAX / 4, &out->every_ms)) != NAQ_OK ||
        (s = get_integer(o, "repeat", -1, INT64_MAX, &repeat)) != NAQ_OK ||
        (s = get_integer(o, "max_retries", 0, 1000000, &retries)) != NAQ_OK ||
        (s = get_integer(o, "timeout_ms", 0, INT64_MAX / 4, &timeout)) != NAQ_OK ||
        (s = get_integer(o, "priority", NAQ_PRIORITY_LOWEST, NAQ_PRIORITY_CRITICAL, &priority)) !=
            NAQ_OK ||
        (s = get_time(o, "at", &out->at_ms)) != NAQ_OK ||
        (s = get_time(o, "next_run", &out->next_run_ms)) != NAQ_OK ||
        (s = get_time(o, "last_run", &out->last_run_ms)) != NAQ_OK ||
        (s = get_time(o, "created_at", &out->created_at_ms)) != NAQ_OK)
        goto out;
    int k = -1;
    for (int i = 0; i <= NAQ_SCHEDULE_AT; i++)
        if (strcmp(kind, kind_names[i]) == 0)
            k = i;
    if (k < 0) {
        s = naq__fail(NAQ_ERR_CODEC, "schedule '%s' has unknown kind '%s'", out->name, kind);
        goto out;
    }
    out->kind = (naq_schedule_kind)k;
    if (naq_misfire_policy_parse(misfire, &out->misfire) != NAQ_OK) {
        s = naq__fail(NAQ_ERR_CODEC, "schedule '%s' has unknown misfire policy '%s'", out->name,
                      misfire);
        goto out;
    }
    out->repeat = repeat;
    out->max_retries = (int)retries;
    out->timeout_ms = timeout;
    out->priority = (int)priority;
    json_t *paused = json_object_get(o, "paused");
    out->paused = json_is_true(paused);
    json_t *args = json_object_get(o, "args");
    if (args != NULL && !json_is_null(args) &&
        (out->args_json = naq__json_dumps(args, JSON_FLAGS | JSON_ENCODE_ANY)) == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory decoding a schedule");
out:
    json_decref(o);
    return s;
}

/* ---------------------------------------------------------------- time */

naq_status naq_parse_time_ms(const char *text, int64_t now_ms, int64_t *out_ms)
{
    if (text == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "no time given");
    const char *rel = NULL;
    if (text[0] == '+')
        rel = text + 1;
    else if (strncmp(text, "in ", 3) == 0)
        rel = text + 3;
    if (rel != NULL) {
        while (*rel == ' ')
            rel++;
        int64_t d;
        if (naq_parse_duration_ms(rel, &d) != NAQ_OK || d < 0)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "'%s' is not a time: after '+' or 'in' give a duration like 30s, "
                             "5m or 2h",
                             text);
        *out_ms = now_ms + d;
        return NAQ_OK;
    }
    int y, mo, d, h, mi, sec, used = 0;
    char sep;
    if (sscanf(text, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &sec, &used) != 7 ||
        (sep != 'T' && sep != 't' && sep != ' '))
        goto bad;
    const char *p = text + used;
    int64_t frac_ms = 0;
    if (*p == '.') {
        int64_t scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            frac_ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || oh > 23 || om > 59)
            goto bad;
        offset_s = (*p == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
        p += 1 + n;
    } else {
        goto bad;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        goto bad;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    /* timegm normalises 2026-02-30 into March: refuse instead. */
    if (tm.tm_mday != d || tm.tm_mon != mo - 1)
        return naq__fail(NAQ_ERR_INVALID_ARG, "'%s': day %d does not exist in that month", text, d);
    *out_ms = ((int64_t)t - offset_s) * 1000 + frac_ms;
    return NAQ_OK;
bad:
    return naq__fail(NAQ_ERR_INVALID_ARG,
                     "'%s' is not a time: use ISO-8601 UTC like 2026-11-23T15:00:00Z, or a delay "
                     "like +30s or 'in 5m'",
                     text);
}

/* ---------------------------------------------------------------- events */

void naq__schedule_event(naq_client *c, naq_event_type t, const char *schedule_id,
                         const char *job_id, const char *queue, const char *event_id,
                         const char *message, json_t *details)
{
    naq_event e;
    naq_event_init(&e, t);
    if (schedule_id != NULL)
        snprintf(e.schedule_id, sizeof e.schedule_id, "%s", schedule_id);
    if (job_id != NULL)
        snprintf(e.job_id, sizeof e.job_id, "%s", job_id);
    if (queue != NULL)
        snprintf(e.queue_name, sizeof e.queue_name, "%s", queue);
    if (event_id != NULL)
        snprintf(e.event_id, sizeof e.event_id, "%s", event_id);
    if (message != NULL)
        e.message = strdup(message);
    if (details != NULL)
        e.details_json = naq__json_dumps(details, JSON_FLAGS);
    naq_client_log(c, &e);
    naq_event_clear(&e);
    json_decref(details);
}

void naq__schedule_job_event(naq_client *c, naq_event_type t, const naq_schedule *s,
                             const char *reason)
{
    int64_t due = s->next_run_ms != 0 ? s->next_run_ms : s->last_run_ms;
    char job_id[NAQ_ID_SIZE];
    if (due == 0 || naq_schedule_job_id(s->name, due, job_id) != NAQ_OK)
        return;
    json_t *d = json_pack("{s:s, s:f}", "schedule", s->name, "due", (double)due / 1000.0);
    if (d != NULL && reason != NULL)
        json_object_set_new(d, "reason", json_string(reason));
    /* Deactivation happens once per job: a deterministic id stores a
     * repeat once. Pauses and resumes may repeat for real. */
    char event_id[NAQ_ID_SIZE];
    if (t == NAQ_EVENT_SCHEDULE_DEACTIVATED)
        naq__derived_id("schedule_deactivated", job_id, event_id);
    naq__schedule_event(c, t, s->name, job_id, s->queue,
                        t == NAQ_EVENT_SCHEDULE_DEACTIVATED ? event_id : NULL, reason, d);
}

/* Details of a schedule's own events: what it runs and when next. */
static json_t *schedule_details(const naq_schedule *s)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:b, s:I}", "kind", naq_schedule_kind_name(s->kind),
                          "queue", s->queue, "function", s->function, "paused", s->paused, "repeat",
                          (json_int_t)s->repeat);
    if (d == NULL)
        return NULL;
    if (s->kind == NAQ_SCHEDULE_CRON)
        json_object_set_new(d, "cron", json_string(s->cron));
    if (s->kind == NAQ_SCHEDULE_EVERY)
        json_object_set_new(d, "every_ms", json_integer(s->every_ms));
    if (s->kind == NAQ_SCHEDULE_AT)
        json_object_set_new(d, "at", seconds(s->at_ms));
    if (s->next_run_ms != 0)
        json_object_set_new(d, "next_run", seconds(s->next_run_ms));
    return d;
}

/* ---------------------------------------------------------------- KV */

naq_status naq__schedules_kv(naq_client *c, jsCtx *js, kvStore **out)
{
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = NAQ__SCHEDULES_BUCKET;
    kc.Description = "naq schedules (key = schedule name)";
    kc.History = 1;
    kc.StorageType = js_FileStorage;
    kc.Replicas = c->cfg.replicas;
    natsStatus ns = naq__kv_bind(js, &kc, out);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot open the schedules bucket %s",
                              NAQ__SCHEDULES_BUCKET);
    return NAQ_OK;
}

naq_status naq__schedule_from_entry(kvEntry *e, naq_schedule *out)
{
    naq_status s = naq_schedule_decode(kvEntry_ValueString(e), (size_t)kvEntry_ValueLen(e), out);
    out->revision = kvEntry_Revision(e);
    if (s != NAQ_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", naq_last_error());
        return naq__fail(s, "schedule '%s' in bucket %s cannot be read: %s", kvEntry_Key(e),
                         NAQ__SCHEDULES_BUCKET, why);
    }
    return NAQ_OK;
}

naq_status naq__kv_cas(jsCtx *js, const char *bucket, const char *key, const void *data, size_t len,
                       uint64_t last, int del, uint64_t *rev)
{
    char subject[NAQ_URL_MAX];
    snprintf(subject, sizeof subject, "$KV.%s.%s", bucket, key);
    natsMsg *m = NULL;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.ExpectLastSubjectSeq = last;
    natsStatus ns = natsMsg_Create(&m, subject, NULL, del ? NULL : data, del ? 0 : (int)len);
    if (ns == NATS_OK && del)
        ns = natsMsgHeader_Set(m, "KV-Operation", "DEL");
    if (ns == NATS_OK)
        ns = js_PublishMsg(&ack, js, m, &po, &jerr);
    if (ns == NATS_OK && rev != NULL)
        *rev = ack->Sequence;
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(m);
    if (ns == NATS_OK)
        return NAQ_OK;
    if (jerr == NAQ__JS_WRONG_LAST_SEQUENCE)
        return naq__fail(NAQ_ERR_EXISTS, "%s/%s changed since revision %llu", bucket, key,
                         (unsigned long long)last);
    return naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, (int)jerr,
                          "cannot write %s/%s", bucket, key);
}

naq_status naq_schedule_add(naq_client *c, naq_schedule *s)
{
    kvStore *kv = NULL;
    char *json = NULL;
    size_t len = 0;
    int64_t now = (int64_t)llround(naq__now() * 1000.0);
    naq_status st;
    if (s->created_at_ms == 0)
        s->created_at_ms = now;
    s->version = NAQ_SCHEDULE_VERSION;
    if ((st = naq_schedule_validate(s)) != NAQ_OK)
        return st;
    if (s->repeat == 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "repeat 0 would never fire; give a count >= 1");
    st = naq_schedule_next(s, now, &s->next_run_ms);
    if (st == NAQ_ERR_NOT_FOUND)
        return naq__fail(NAQ_ERR_INVALID_ARG, "schedule '%s': that time is in the past", s->name);
    if (st != NAQ_OK)
        return st;
    if ((st = naq_schedule_encode(s, &json, &len)) != NAQ_OK)
        return st;
    if ((st = naq__schedules_kv(c, c->js, &kv)) != NAQ_OK)
        goto out;
    uint64_t rev = 0;
    natsStatus ns = kvStore_Create(&rev, kv, s->name, json, (int)len);
    if (ns != NATS_OK) {
        kvEntry *e = NULL;
        /* Create fails when the key exists; tell that apart from a network
         * problem by looking. */
        if (kvStore_Get(&e, kv, s->name) == NATS_OK) {
            kvEntry_Destroy(e);
            st = naq__fail(NAQ_ERR_EXISTS,
                           "schedule '%s' exists already; change it with 'naq schedule modify' "
                           "or remove it first",
                           s->name);
        } else {
            st = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot store schedule '%s'", s->name);
        }
        goto out;
    }
    s->revision = rev;
    naq__schedule_event(c, NAQ_EVENT_SCHEDULER_CREATED, s->name, NULL, s->queue, NULL, NULL,
                        schedule_details(s));
out:
    kvStore_Destroy(kv);
    free(json);
    return st;
}

static naq_status get_with(kvStore *kv, const char *name, naq_schedule *out)
{
    kvEntry *e = NULL;
    natsStatus ns = kvStore_Get(&e, kv, name);
    if (ns == NATS_NOT_FOUND)
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "no schedule named '%s' ('naq schedule list' shows "
                         "them)",
                         name);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read schedule '%s'", name);
    naq_status s = naq__schedule_from_entry(e, out);
    kvEntry_Destroy(e);
    return s;
}

naq_status naq_schedule_get(naq_client *c, const char *name, naq_schedule *out)
{
    naq_schedule_init(out);
    naq_status s = naq_schedule_name_validate(name);
    kvStore *kv = NULL;
    if (s == NAQ_OK && (s = naq__schedules_kv(c, c->js, &kv)) == NAQ_OK)
        s = get_with(kv, name, out);
    kvStore_Destroy(kv);
    return s;
}

void naq_schedule_list_free(naq_schedule_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        naq_schedule_clear(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const naq_schedule *)a)->name, ((const naq_schedule *)b)->name);
}

naq_status naq_schedules_list(naq_client *c, naq_schedule_list *out)
{
    out->items = NULL;
    out->count = 0;
    kvStore *kv = NULL;
    kvWatcher *w = NULL;
    size_t cap = 0;
    naq_status s = naq__schedules_kv(c, c->js, &kv);
    if (s != NAQ_OK)
        return s;
    /* One watch delivers every current value and then a NULL marker: one
     * pass over the bucket instead of a read per key. */
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    wo.IgnoreDeletes = true;
    natsStatus ns = kvStore_WatchAll(&w, kv, &wo);
    while (ns == NATS_OK) {
        kvEntry *e = NULL;
        ns = kvWatcher_Next(&e, w, 5000);
        if (ns != NATS_OK || e == NULL)
            break;
        if (out->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            naq_schedule *items = realloc(out->items, ncap * sizeof *items);
            if (items == NULL) {
                kvEntry_Destroy(e);
                s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing schedules");
                goto out;
            }
            out->items = items;
            cap = ncap;
        }
        naq_schedule *it = &out->items[out->count];
        s = naq__schedule_from_entry(e, it);
        kvEntry_Destroy(e);
        if (s != NAQ_OK) {
            naq_schedule_clear(it);
            goto out;
        }
        out->count++;
    }
    if (ns != NATS_OK) {
        s = naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, 0,
                           "cannot list the schedules bucket %s", NAQ__SCHEDULES_BUCKET);
        goto out;
    }
    if (out->count > 1)
        qsort(out->items, out->count, sizeof *out->items, by_name);
out:
    if (s != NAQ_OK)
        naq_schedule_list_free(out);
    kvWatcher_Destroy(w);
    kvStore_Destroy(kv);
    return s;
}

static int same_timing(const naq_schedule *a, const naq_schedule *b)
{
    return a->kind == b->kind && strcmp(a->cron, b->cron) == 0 && strcmp(a->tz, b->tz) == 0 &&
           a->every_ms == b->every_ms && a->at_ms == b->at_ms;
}

/* The read-modify-CAS loop behind modify, pause and resume. `event` is
 * what a real change logs. */
static naq_status edit(naq_client *c, const char *name, naq_schedule_edit_fn fn, void *user,
                       naq_event_type event, naq_schedule *out)
{
    kvStore *kv = NULL;
    naq_schedule cur, next;
    naq_schedule_init(&cur);
    naq_schedule_init(&next);
    char *old_json = NULL, *new_json = NULL;
    size_t old_len = 0, new_len = 0;
    int wrote_maybe = 0;
    naq_status s = naq_schedule_name_validate(name);
    if (s != NAQ_OK || (s = naq__schedules_kv(c, c->js, &kv)) != NAQ_OK)
        goto out;
    for (int attempt = 0;; attempt++) {
        naq_schedule_clear(&cur);
        naq_schedule_clear(&next);
        free(old_json);
        free(new_json);
        old_json = new_json = NULL;
        if ((s = get_with(kv, name, &cur)) != NAQ_OK ||
            (s = naq_schedule_copy(&next, &cur)) != NAQ_OK || (s = fn(&next, user)) != NAQ_OK)
            goto out;
        if (strcmp(next.name, cur.name) != 0) {
            s = naq__fail(NAQ_ERR_INVALID_ARG,
                          "a schedule cannot be renamed; add a new one and "
                          "remove '%s'",
                          cur.name);
            goto out;
        }
        int64_t now = (int64_t)llround(naq__now() * 1000.0);
        int rearmed = cur.next_run_ms == 0 && next.next_run_ms == 0 && next.repeat != 0;
        int resumed = cur.paused && !next.paused;
        if (!same_timing(&cur, &next) || rearmed || (resumed && next.next_run_ms <= now)) {
            s = naq_schedule_next(&next, now, &next.next_run_ms);
            if (s == NAQ_ERR_NOT_FOUND && !same_timing(&cur, &next)) {
                s = naq__fail(NAQ_ERR_INVALID_ARG, "schedule '%s': that time is in the past", name);
                goto out;
            }
            if (s == NAQ_ERR_NOT_FOUND) /* a one-off whose time passed while paused */
                next.next_run_ms = 0;
            else if (s != NAQ_OK)
                goto out;
        }
        if (next.repeat == 0)
            next.next_run_ms = 0;
        if ((s = naq_schedule_validate(&next)) != NAQ_OK ||
            (s = naq_schedule_encode(&cur, &old_json, &old_len)) != NAQ_OK ||
            (s = naq_schedule_encode(&next, &new_json, &new_len)) != NAQ_OK)
            goto out;
        if (old_len == new_len && memcmp(old_json, new_json, new_len) == 0) {
            /* Nothing to change; after an unconfirmed write this is our
             * own write, which still deserves its event. */
            if (wrote_maybe)
                break;
            goto done;
        }
        s = naq__kv_cas(c->js, NAQ__SCHEDULES_BUCKET, name, new_json, new_len, cur.revision, 0,
                        &next.revision);
        if (s == NAQ_OK)
            break;
        if (s == NAQ_ERR_TIMEOUT)
            wrote_maybe = 1;
        else if (s != NAQ_ERR_EXISTS)
            goto out;
        if (attempt + 1 >= MODIFY_ATTEMPTS) {
            s = naq__fail(NAQ_ERR_TIMEOUT,
                          "schedule '%s' kept changing under %d attempts to "
                          "modify it; try again",
                          name, MODIFY_ATTEMPTS);
            goto out;
        }
    }
    naq__schedule_event(c, event, name, NULL, next.queue, NULL, NULL, schedule_details(&next));
    if (!cur.paused && next.paused)
        naq__schedule_job_event(c, NAQ_EVENT_SCHEDULE_PAUSED, &next, NULL);
    else if (cur.paused && !next.paused)
        naq__schedule_job_event(c, NAQ_EVENT_SCHEDULE_RESUMED, &next, NULL);
    if (cur.next_run_ms != 0 && next.next_run_ms == 0) /* e.g. a one-off that passed while paused */
        naq__schedule_job_event(c, NAQ_EVENT_SCHEDULE_DEACTIVATED, &next, "finished");
done:
    s = NAQ_OK;
    if (out != NULL) {
        naq_schedule_clear(out);
        *out = next;
        naq_schedule_init(&next);
    }
out:
    free(old_json);
    free(new_json);
    naq_schedule_clear(&cur);
    naq_schedule_clear(&next);
    kvStore_Destroy(kv);
    return s;
}

naq_status naq_schedule_modify(naq_client *c, const char *name, naq_schedule_edit_fn fn, void *user,
                               naq_schedule *out)
{
    if (fn == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_schedule_modify needs an edit function");
    return edit(c, name, fn, user, NAQ_EVENT_SCHEDULER_MODIFIED, out);
}

static naq_status set_paused(naq_schedule *s, void *user)
{
    s->paused = *(const int *)user;
    return NAQ_OK;
}

naq_status naq_schedule_pause(naq_client *c, const char *name)
{
    int paused = 1;
    return edit(c, name, set_paused, &paused, NAQ_EVENT_SCHEDULER_PAUSED, NULL);
}

naq_status naq_schedule_resume(naq_client *c, const char *name)
{
    int paused = 0;
    return edit(c, name, set_paused, &paused, NAQ_EVENT_SCHEDULER_RESUMED, NULL);
}

naq_status naq_schedule_remove(naq_client *c, const char *name)
{
    kvStore *kv = NULL;
    naq_schedule cur;
    naq_schedule_init(&cur);
    naq_status s = naq_schedule_name_validate(name);
    if (s != NAQ_OK || (s = naq__schedules_kv(c, c->js, &kv)) != NAQ_OK ||
        (s = get_with(kv, name, &cur)) != NAQ_OK)
        goto out;
    natsStatus ns = kvStore_Delete(kv, name);
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot remove schedule '%s'", name);
        goto out;
    }
    naq__schedule_event(c, NAQ_EVENT_SCHEDULER_CANCELLED, name, NULL, cur.queue, NULL,
                        "schedule removed", NULL);
    naq__schedule_job_event(c, NAQ_EVENT_SCHEDULE_DEACTIVATED, &cur, "removed");
out:
    naq_schedule_clear(&cur);
    kvStore_Destroy(kv);
    return s;
}
