/*
 * event.c - event type names and the JSON codec of naq_event.
 *
 * The codec is the wire format of docs/protocol.md: absent optional fields
 * are left out rather than written as null, and decoding ignores fields it
 * does not know so that newer writers stay readable.
 */
#include "events.h"

#include "core/jsonw.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const type_names[] = {
#define NAQ_EVENT_NAME(suffix, name, cat) name,
    NAQ_EVENT_TABLE(NAQ_EVENT_NAME)
#undef NAQ_EVENT_NAME
};

static const naq_event_category type_categories[] = {
#define NAQ_EVENT_CAT(suffix, name, cat) NAQ_CATEGORY_##cat,
    NAQ_EVENT_TABLE(NAQ_EVENT_CAT)
#undef NAQ_EVENT_CAT
};

const char *naq_event_type_name(naq_event_type t)
{
    if ((int)t < 0 || t >= NAQ_EVENT_TYPE_COUNT)
        return "unknown";
    return type_names[t];
}

naq_event_category naq_event_type_category(naq_event_type t)
{
    if ((int)t < 0 || t >= NAQ_EVENT_TYPE_COUNT)
        return NAQ_CATEGORY_SYSTEM;
    return type_categories[t];
}

naq_status naq_event_type_parse(const char *name, naq_event_type *out)
{
    for (int i = 0; i < NAQ_EVENT_TYPE_COUNT; i++) {
        if (strcmp(name, type_names[i]) == 0) {
            *out = (naq_event_type)i;
            return NAQ_OK;
        }
    }
    return naq__fail(NAQ_ERR_INVALID_ARG, "unknown event type '%s'; 'naq events types' lists them",
                     name);
}

void naq_event_init(naq_event *e, naq_event_type type)
{
    memset(e, 0, sizeof *e);
    e->version = NAQ_WIRE_VERSION_PLAIN;
    e->type = type;
    e->duration_ms = NAQ_UNSET;
    e->memory_mb = NAQ_UNSET;
    e->cpu_time_ms = NAQ_UNSET;
}

void naq_event_clear(naq_event *e)
{
    if (e == NULL)
        return;
    free(e->message);
    free(e->error_type);
    free(e->error_message);
    free(e->details_json);
    free(e->tags_json);
    free(e->metadata_json);
    naq_event_init(e, e->type);
}

static naq_status dup_field(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return NAQ_OK;
    *dst = strdup(src);
    return *dst ? NAQ_OK : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory copying an event");
}

naq_status naq_event_copy(naq_event *dst, const naq_event *src)
{
    *dst = *src;
    dst->message = dst->error_type = dst->error_message = NULL;
    dst->details_json = dst->tags_json = dst->metadata_json = NULL;
    naq_status s;
    if ((s = dup_field(&dst->message, src->message)) != NAQ_OK ||
        (s = dup_field(&dst->error_type, src->error_type)) != NAQ_OK ||
        (s = dup_field(&dst->error_message, src->error_message)) != NAQ_OK ||
        (s = dup_field(&dst->details_json, src->details_json)) != NAQ_OK ||
        (s = dup_field(&dst->tags_json, src->tags_json)) != NAQ_OK ||
        (s = dup_field(&dst->metadata_json, src->metadata_json)) != NAQ_OK)
        naq_event_clear(dst);
    return s;
}

static void put_str(naq__jsonw *w, const char *key, const char *v)
{
    if (v != NULL && v[0] != '\0')
        naq__jsonw_str(w, key, v);
}

/* Durations and sizes with 3 decimals: microseconds and kilobytes are as
 * fine as anything naq measures. */
static void put_num(naq__jsonw *w, const char *key, double v)
{
    if (v >= 0)
        naq__jsonw_fixed(w, key, v, 3);
}

/* A *_json field must be a JSON object (the protocol says so). It is
 * parsed to check that and re-printed compactly, so an event is always one
 * line; most events have none of these fields. */
static naq_status put_object(naq__jsonw *w, const char *key, const char *text)
{
    if (text == NULL || text[0] == '\0')
        return NAQ_OK;
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    char *compact = json_is_object(v) ? naq__json_dumps(v, NAQ__JSON_FLAGS) : NULL;
    json_decref(v);
    if (compact == NULL)
        return naq__fail(NAQ_ERR_CODEC, "event field '%s' must be a JSON object, got: %.60s", key,
                         text);
    naq__jsonw_raw(w, key, compact, strlen(compact));
    free(compact);
    return NAQ_OK;
}

naq_status naq_event_encode(const naq_event *e, char **json, size_t *len)
{
    return naq__event_encode_buf(e, NULL, 0, json, len);
}

naq_status naq__event_encode_buf(const naq_event *e, char *buf, size_t cap, char **json,
                                 size_t *len)
{
    *json = NULL;
    double ts = e->timestamp;
    if (ts <= 0)
        ts = naq__now();
    naq__jsonw w;
    if (buf != NULL)
        naq__jsonw_init_buf(&w, buf, cap);
    else
        naq__jsonw_init(&w, 512);
    naq__jsonw_begin(&w);
    naq__jsonw_int(&w, "version", e->version ? e->version : NAQ_WIRE_VERSION_PLAIN);
    naq__jsonw_str(&w, "event_type", naq_event_type_name(e->type));
    put_str(&w, "event_id", e->event_id);
    put_str(&w, "job_id", e->job_id);
    put_str(&w, "schedule_id", e->schedule_id);
    /* Microseconds: the resolution events are ordered and compared at. */
    naq__jsonw_fixed(&w, "timestamp", ts, 6);
    put_str(&w, "worker_id", e->worker_id);
    put_str(&w, "worker_type", e->worker_type);
    put_str(&w, "queue_name", e->queue_name);
    if (e->attempt > 0)
        naq__jsonw_int(&w, "attempt", e->attempt);
    put_str(&w, "message", e->message);
    put_str(&w, "error_type", e->error_type);
    put_str(&w, "error_message", e->error_message);
    put_num(&w, "duration_ms", e->duration_ms);
    put_num(&w, "memory_mb", e->memory_mb);
    put_num(&w, "cpu_time_ms", e->cpu_time_ms);
    naq_status s;
    if ((s = put_object(&w, "details", e->details_json)) != NAQ_OK ||
        (s = put_object(&w, "tags", e->tags_json)) != NAQ_OK ||
        (s = put_object(&w, "metadata", e->metadata_json)) != NAQ_OK) {
        naq__jsonw_discard(&w);
        return s;
    }
    *json = naq__jsonw_finish(&w, len);
    if (*json == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encoding an event");
    return NAQ_OK;
}

static void copy_str(char *dst, size_t cap, json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v != NULL)
        snprintf(dst, cap, "%s", v);
}

static char *heap_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? strdup(v) : NULL;
}

static char *heap_object(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_object(v))
        return NULL;
    return naq__json_dumps(v, NAQ__JSON_FLAGS);
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAQ_UNSET;
}

naq_status naq_event_decode(const char *json, size_t len, naq_event *out)
{
    naq_event_init(out, NAQ_EVENT_ENQUEUED);
    json_error_t err;
    json_t *o = json_loadb(json, len, 0, &err);
    if (o == NULL)
        return naq__fail(NAQ_ERR_CODEC, "event is not JSON: %s (line %d, column %d)", err.text,
                         err.line, err.column);
    naq_status s = NAQ_OK;
    json_int_t version = json_integer_value(json_object_get(o, "version"));
    const char *type = json_string_value(json_object_get(o, "event_type"));
    if (version < 1 || version > NAQ_WIRE_VERSION) {
        s = naq__fail(NAQ_ERR_CODEC, "event has version %lld; this naq reads versions 1 to %d",
                      (long long)version, NAQ_WIRE_VERSION);
        goto out;
    }
    if (type == NULL) {
        s = naq__fail(NAQ_ERR_CODEC, "event has no event_type");
        goto out;
    }
    if (naq_event_type_parse(type, &out->type) != NAQ_OK) {
        s = naq__fail(NAQ_ERR_CODEC, "event has unknown event_type '%s'", type);
        goto out;
    }
    out->version = (int)version;
    copy_str(out->event_id, sizeof out->event_id, o, "event_id");
    copy_str(out->job_id, sizeof out->job_id, o, "job_id");
    copy_str(out->schedule_id, sizeof out->schedule_id, o, "schedule_id");
    out->timestamp = num(o, "timestamp");
    if (out->timestamp < 0)
        out->timestamp = 0;
    copy_str(out->worker_id, sizeof out->worker_id, o, "worker_id");
    copy_str(out->worker_type, sizeof out->worker_type, o, "worker_type");
    copy_str(out->queue_name, sizeof out->queue_name, o, "queue_name");
    out->attempt = (int)json_integer_value(json_object_get(o, "attempt"));
    out->message = heap_str(o, "message");
    out->error_type = heap_str(o, "error_type");
    out->error_message = heap_str(o, "error_message");
    out->details_json = heap_object(o, "details");
    out->tags_json = heap_object(o, "tags");
    out->metadata_json = heap_object(o, "metadata");
    out->duration_ms = num(o, "duration_ms");
    out->memory_mb = num(o, "memory_mb");
    out->cpu_time_ms = num(o, "cpu_time_ms");
out:
    json_decref(o);
    return s;
}

naq_status naq_event_subject(const char *prefix, const naq_event *e, char *buf, size_t cap)
{
    const char *kind = NULL, *id = NULL, *what = NULL;
    switch (naq_event_type_category(e->type)) {
    case NAQ_CATEGORY_JOB:
        kind = "jobs";
        id = e->job_id;
        what = "job id";
        break;
    case NAQ_CATEGORY_WORKER:
        kind = "workers";
        id = e->worker_id;
        what = "worker id";
        break;
    case NAQ_CATEGORY_SCHEDULER:
        kind = "schedules";
        id = e->schedule_id;
        what = "schedule id";
        break;
    case NAQ_CATEGORY_SYSTEM: break;
    }
    int n;
    if (kind == NULL) {
        n = snprintf(buf, cap, "%s.system.events", prefix);
    } else {
        naq_status s = naq_id_validate(what, id);
        if (s != NAQ_OK)
            return s;
        n = snprintf(buf, cap, "%s.%s.events.%s", prefix, kind, id);
    }
    if (n < 0 || (size_t)n >= cap)
        return naq__fail(NAQ_ERR_INVALID_ARG, "subject for event is too long");
    return NAQ_OK;
}
