/*
 * event_dlq.c - the event dead-letter stream: where a consumer group puts an
 * event whose handlers kept failing, and how an operator lists and replays
 * those entries.
 *
 * NAQ_EVENT_DLQ holds two kinds of message for each group G:
 *   "<p>.eventdlq.G"         entries: {"version":1,"group","reason",
 *                            "deliveries","original_subject",
 *                            "original_sequence","failed_at","event":{...}}
 *   "<p>.eventdlq.G.replay"  replays: the original event JSON, consumed by
 *                            G's members through their second consumer.
 * Replaying never writes the event log again (that would give a job a
 * second copy of a transition it went through once); it hands the event
 * back to the group only, then deletes the entry. The stream is created
 * the first time a group starts, with no age limit: a dead event waits for
 * a person.
 */
#include "events.h"
#include "core/jsonw.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DLQ_FORMAT_VERSION 1

naq_status naq__event_dlq_subject(const naq_client *c, const char *group, int replay, char *buf,
                                  size_t cap)
{
    return naq__subject(c, buf, cap, "eventdlq.%s%s", group, replay ? ".replay" : "");
}

/* ---- the stream ---- */

static int has_subject(const jsStreamConfig *sc, const char *subject)
{
    for (int i = 0; i < sc->SubjectsLen; i++)
        if (strcmp(sc->Subjects[i], subject) == 0)
            return 1;
    return 0;
}

/* Another prefix may share the stream: add our subjects to it. */
static naq_status add_subject(naq_client *c, const char *subject)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, c->ejs, NAQ_EVENT_DLQ_STREAM, NULL, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot read stream %s",
                              NAQ_EVENT_DLQ_STREAM);
    naq_status s = NAQ_OK;
    if (!has_subject(si->Config, subject)) {
        jsStreamConfig sc = *si->Config;
        const char **subjects = calloc((size_t)sc.SubjectsLen + 1, sizeof *subjects);
        if (subjects == NULL) {
            jsStreamInfo_Destroy(si);
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory");
        }
        for (int i = 0; i < sc.SubjectsLen; i++)
            subjects[i] = sc.Subjects[i];
        subjects[sc.SubjectsLen] = subject;
        sc.Subjects = subjects;
        sc.SubjectsLen++;
        ns = js_UpdateStream(NULL, c->ejs, &sc, NULL, &jerr);
        if (ns != NATS_OK)
            s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot add %s to stream %s", subject,
                               NAQ_EVENT_DLQ_STREAM);
        free(subjects);
    }
    jsStreamInfo_Destroy(si);
    return s;
}

naq_status naq__event_dlq_ensure(naq_client *c)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq__subject(c, subject, sizeof subject, "eventdlq.>");
    if (s != NAQ_OK)
        return s;
    const char *subjects[] = {subject};
    jsStreamConfig sc;
    /* Direct gets allowed: listing is a chain of them. */
    naq__stream_config_init(&sc, NAQ_EVENT_DLQ_STREAM, subjects, 1, c->cfg.replicas);
    /* A dead-letter write re-sent after a crash carries the same id. */
    sc.Duplicates = 120LL * 1000000000LL;
    jsErrCode jerr = 0;
    int existed;
    natsStatus ns = naq__stream_create(c->ejs, &sc, &existed, &jerr);
    if (ns == NATS_OK) /* one that exists (maybe another prefix's) is kept */
        return existed ? add_subject(c, subject) : NAQ_OK;
    return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                          "cannot create the event dead-letter stream %s", NAQ_EVENT_DLQ_STREAM);
}

/* ---- writing an entry ---- */

static void copy_header(natsMsg *dst, natsMsg *src, const char *name)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(src, name, &v) == NATS_OK && v != NULL && v[0] != '\0')
        natsMsgHeader_Set(dst, name, v);
}

naq_status naq__event_dlq_put(naq_client *c, const char *group, const char *reason, int deliveries,
                              const char *original_subject, uint64_t original_seq,
                              natsMsg *original, const char *msg_id)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq__event_dlq_subject(c, group, 0, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    json_t *o = json_object();
    if (o == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory");
    json_object_set_new(o, "version", json_integer(DLQ_FORMAT_VERSION));
    json_object_set_new(o, "group", json_string(group));
    json_object_set_new(o, "reason", json_string(reason));
    json_object_set_new(o, "deliveries", json_integer(deliveries));
    json_object_set_new(o, "original_subject", json_string(original_subject));
    json_object_set_new(o, "original_sequence", json_integer((json_int_t)original_seq));
    json_object_set_new(o, "failed_at", json_real(naq__now()));
    const char *data = natsMsg_GetData(original);
    size_t len = (size_t)natsMsg_GetDataLength(original);
    json_t *event = json_loadb(data ? data : "", len, 0, NULL);
    if (json_is_object(event))
        json_object_set_new(o, "event", event);
    else { /* not an event at all: keep the bytes so nothing is lost */
        json_decref(event);
        json_object_set_new(o, "event_raw", json_stringn(data ? data : "", len));
    }
    char *body = naq__json_dumps(o, NAQ__JSON_FLAGS);
    json_decref(o);
    if (body == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encoding a dead-letter entry");

    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, subject, NULL, body, (int)strlen(body));
    free(body);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Group", group);
    if (ns == NATS_OK) {
        copy_header(m, original, "Naq-Event-Type");
        copy_header(m, original, "Naq-Queue");
        copy_header(m, original, "Naq-Worker");
    }
    jsErrCode jerr = 0;
    if (ns == NATS_OK)
        ns = js_PublishMsg(NULL, c->ejs, m, NULL, &jerr);
    natsMsg_Destroy(m);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot write the dead event of group %s to %s", group,
                              NAQ_EVENT_DLQ_STREAM);
    return NAQ_OK;
}

/* ---- reading entries ---- */

static void entry_clear(naq_event_dlq_entry *e)
{
    free(e->reason);
    free(e->event_json);
    naq_event_clear(&e->event);
    memset(e, 0, sizeof *e);
}

void naq_event_dlq_entries_free(naq_event_dlq_entries *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        entry_clear(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static void copy_json_str(char *dst, size_t cap, json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(dst, cap, "%s", v ? v : "");
}

/* Decodes entry message m (sequence seq) into *e (zeroed by the caller). */
static naq_status parse_entry(natsMsg *m, uint64_t seq, naq_event_dlq_entry *e)
{
    naq_event_init(&e->event, NAQ_EVENT_ENQUEUED);
    e->sequence = seq;
    const char *data = natsMsg_GetData(m);
    json_error_t err;
    json_t *o = json_loadb(data ? data : "", (size_t)natsMsg_GetDataLength(m), 0, &err);
    if (!json_is_object(o)) {
        json_decref(o);
        return naq__fail(NAQ_ERR_CODEC, "dead-letter entry %llu in %s is not a JSON object",
                         (unsigned long long)seq, NAQ_EVENT_DLQ_STREAM);
    }
    copy_json_str(e->group, sizeof e->group, o, "group");
    copy_json_str(e->original_subject, sizeof e->original_subject, o, "original_subject");
    const char *reason = json_string_value(json_object_get(o, "reason"));
    e->reason = strdup(reason ? reason : "");
    e->deliveries = (int)json_integer_value(json_object_get(o, "deliveries"));
    e->original_sequence = (uint64_t)json_integer_value(json_object_get(o, "original_sequence"));
    e->failed_at = json_number_value(json_object_get(o, "failed_at"));
    json_t *event = json_object_get(o, "event");
    if (json_is_object(event))
        e->event_json = naq__json_dumps(event, NAQ__JSON_FLAGS);
    else {
        const char *raw = json_string_value(json_object_get(o, "event_raw"));
        e->event_json = strdup(raw ? raw : "");
    }
    json_decref(o);
    if (e->reason == NULL || e->event_json == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading a dead-letter entry");
    e->event_decoded = naq_event_decode(e->event_json, strlen(e->event_json), &e->event) == NAQ_OK;
    if (!e->event_decoded)
        naq_event_clear(&e->event);
    snprintf(e->event.nats_subject, sizeof e->event.nats_subject, "%s", e->original_subject);
    e->event.nats_sequence = e->original_sequence;
    return NAQ_OK;
}

/* 1 when the stream exists, 0 when not; a failure otherwise. */
static naq_status dlq_exists(naq_client *c, int *exists)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, c->ejs, NAQ_EVENT_DLQ_STREAM, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    *exists = ns == NATS_OK;
    if (ns == NATS_OK || naq__stream_missing(ns, jerr))
        return NAQ_OK;
    return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot read stream %s",
                          NAQ_EVENT_DLQ_STREAM);
}

static naq_status direct_get(naq_client *c, uint64_t seq, const char *next_subject, natsMsg **m)
{
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.Sequence = seq;
    o.NextBySubject = next_subject;
    natsStatus ns = js_DirectGetMsg(m, c->ejs, NAQ_EVENT_DLQ_STREAM, NULL, &o);
    if (ns == NATS_OK)
        return NAQ_OK;
    if (ns == NATS_NOT_FOUND)
        return NAQ_ERR_NOT_FOUND;
    return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read stream %s", NAQ_EVENT_DLQ_STREAM);
}

static naq_status validate_filter(const naq_event_dlq_filter *f)
{
    naq_status s = NAQ_OK;
    naq_event_type t;
    if (f->group != NULL && f->group[0] != '\0' && (s = naq__group_validate_name(f->group)))
        return s;
    if (f->type != NULL && f->type[0] != '\0' && (s = naq_event_type_parse(f->type, &t)))
        return s;
    return NAQ_OK;
}

static int entry_matches(const naq_event_dlq_entry *e, const naq_event_dlq_filter *f)
{
    if (f->type == NULL || f->type[0] == '\0')
        return 1;
    return e->event_decoded && strcmp(naq_event_type_name(e->event.type), f->type) == 0;
}

naq_status naq_event_dlq_list(naq_client *c, const naq_event_dlq_filter *f,
                              naq_event_dlq_entries *out)
{
    out->items = NULL;
    out->count = 0;
    naq_event_dlq_filter none = {0};
    if (f == NULL)
        f = &none;
    naq_status s = validate_filter(f);
    int exists = 0;
    if (s != NAQ_OK || (s = dlq_exists(c, &exists)) != NAQ_OK || !exists)
        return s;
    /* One token after "eventdlq": entries only, never the ".replay" subjects. */
    char subject[NAQ_URL_MAX];
    int one_group = f->group != NULL && f->group[0] != '\0';
    if ((s = naq__event_dlq_subject(c, one_group ? f->group : "*", 0, subject, sizeof subject)))
        return s;
    size_t cap = 0;
    for (uint64_t next = 1;;) {
        if (f->limit > 0 && out->count >= f->limit)
            break;
        natsMsg *m = NULL;
        s = direct_get(c, next, subject, &m);
        if (s == NAQ_ERR_NOT_FOUND) {
            s = NAQ_OK;
            break;
        }
        if (s != NAQ_OK)
            break;
        uint64_t seq = natsMsg_GetSequence(m);
        next = seq + 1;
        if (out->count == cap &&
            naq__array_grow(&out->items, &cap, sizeof *out->items, 16) == NULL) {
            natsMsg_Destroy(m);
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing dead events");
            break;
        }
        naq_event_dlq_entry *e = &out->items[out->count];
        memset(e, 0, sizeof *e);
        s = parse_entry(m, seq, e);
        natsMsg_Destroy(m);
        /* Counted even when it fails, so naq_event_dlq_entries_free frees it. */
        out->count++;
        if (s != NAQ_OK)
            break;
        if (!entry_matches(e, f)) {
            out->count--;
            entry_clear(e);
        }
    }
    if (s != NAQ_OK)
        naq_event_dlq_entries_free(out);
    return s;
}

/* ---- replay ---- */

static naq_status replay_entry(naq_client *c, const naq_event_dlq_entry *e)
{
    char subject[NAQ_URL_MAX], msg_id[64], seq[32];
    naq_status s = naq__event_dlq_subject(c, e->group, 1, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    /* Replaying one entry twice within the duplicate window stores it once. */
    snprintf(msg_id, sizeof msg_id, "replay-%llu", (unsigned long long)e->sequence);
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)e->original_sequence);
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, subject, NULL, e->event_json, (int)strlen(e->event_json));
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Original-Subject", e->original_subject);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Original-Sequence", seq);
    /* The same headers as the logger's, so members filter replays alike. */
    if (ns == NATS_OK && e->event_decoded) {
        ns = natsMsgHeader_Set(m, "Naq-Event-Type", naq_event_type_name(e->event.type));
        if (ns == NATS_OK && e->event.queue_name[0])
            ns = natsMsgHeader_Set(m, "Naq-Queue", e->event.queue_name);
        if (ns == NATS_OK && e->event.worker_id[0])
            ns = natsMsgHeader_Set(m, "Naq-Worker", e->event.worker_id);
    }
    jsErrCode jerr = 0;
    if (ns == NATS_OK)
        ns = js_PublishMsg(NULL, c->ejs, m, NULL, &jerr);
    natsMsg_Destroy(m);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot replay dead event %llu",
                              (unsigned long long)e->sequence);
    ns = js_DeleteMsg(c->ejs, NAQ_EVENT_DLQ_STREAM, e->sequence, NULL, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "replayed dead event %llu but cannot delete its entry; a second "
                              "replay after two minutes would deliver it again",
                              (unsigned long long)e->sequence);
    return NAQ_OK;
}

naq_status naq_event_dlq_replay(naq_client *c, uint64_t sequence)
{
    int exists = 0;
    naq_status s = dlq_exists(c, &exists);
    if (s != NAQ_OK)
        return s;
    natsMsg *m = NULL;
    if (!exists || (s = direct_get(c, sequence, NULL, &m)) == NAQ_ERR_NOT_FOUND)
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "no dead-letter entry %llu ('naq events dlq list' shows them)",
                         (unsigned long long)sequence);
    if (s != NAQ_OK)
        return s;
    /* Only entries, never a pending replay: "<p>.eventdlq.<group>". */
    char prefix[NAQ_URL_MAX];
    naq__subject(c, prefix, sizeof prefix, "eventdlq.");
    const char *subj = natsMsg_GetSubject(m);
    if (subj == NULL || strncmp(subj, prefix, strlen(prefix)) != 0 ||
        strchr(subj + strlen(prefix), '.') != NULL) {
        natsMsg_Destroy(m);
        return naq__fail(NAQ_ERR_NOT_FOUND,
                         "message %llu of %s is not a dead-letter entry (it is a replay "
                         "waiting for its group)",
                         (unsigned long long)sequence, NAQ_EVENT_DLQ_STREAM);
    }
    naq_event_dlq_entry e;
    memset(&e, 0, sizeof e);
    s = parse_entry(m, sequence, &e);
    natsMsg_Destroy(m);
    if (s == NAQ_OK)
        s = replay_entry(c, &e);
    entry_clear(&e);
    return s;
}

naq_status naq_event_dlq_replay_all(naq_client *c, const naq_event_dlq_filter *f, size_t *replayed)
{
    if (replayed != NULL)
        *replayed = 0;
    naq_event_dlq_filter all = f ? *f : (naq_event_dlq_filter){0};
    all.limit = 0;
    naq_event_dlq_entries l;
    naq_status s = naq_event_dlq_list(c, &all, &l);
    for (size_t i = 0; s == NAQ_OK && i < l.count; i++) {
        s = replay_entry(c, &l.items[i]);
        if (s == NAQ_OK && replayed != NULL)
            (*replayed)++;
    }
    naq_event_dlq_entries_free(&l);
    return s;
}
