/*
 * schedule.c - the schedule model: names, validation, its JSON codec and
 * due-time arithmetic. Where schedules are kept is schedule_store.c.
 *
 * Due times are int64 milliseconds, so "<name>-<due_ms>" job ids and
 * interval arithmetic are exact; the JSON carries seconds like events do.
 */
#include "calendar.h"
#include "internal.h"
#include "core/crypt.h"
#include "core/jsonw.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVERY_MIN_MS 100

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
    return naq__name_validate("schedule name", name, NAQ_SCHEDULE_NAME_MAX, NAQ__NAME_WORD);
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
    /* As naq_job_opts_validate: every trigger would fail on the worker.
     * Sealed args (crypt.h) were checked before they were sealed. */
    st = strcmp(s->function, NAQ_EXEC_FUNCTION) == 0 && !naq__crypt_is_sealed_text(s->args_json)
             ? naq__exec_args_check(v)
             : NAQ_OK;
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
    *json = err ? NULL : naq__json_dumps(o, NAQ__JSON_FLAGS);
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
        (out->args_json = naq__json_dumps(args, NAQ__JSON_FLAGS | JSON_ENCODE_ANY)) == NULL)
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
