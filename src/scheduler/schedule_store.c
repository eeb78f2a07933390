/*
 * schedule_store.c - the schedules bucket (KV naq_schedules): add / get /
 * list / modify / pause / resume / remove, which the CLI drives, and the
 * events that tell of those changes. The model and its codec are in
 * schedule.c.
 *
 * Invariant: every write of an existing schedule is a compare-and-set on
 * the revision it was read at (naq__kv_cas), never a blind put, because the
 * leader writes next_run / last_run / repeat after each trigger while an
 * operator may be editing the same schedule. A lost race re-reads and
 * re-applies only the caller's change.
 */
#include "core/crypt.h"
#include "core/kv.h"
#include "scheduler.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODIFY_ATTEMPTS 10

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
        json_object_set_new(d, "at", json_real((double)s->at_ms / 1000.0));
    if (s->next_run_ms != 0)
        json_object_set_new(d, "next_run", json_real((double)s->next_run_ms / 1000.0));
    return d;
}

/* ---------------------------------------------------------------- KV */

naq_status naq__schedules_kv(naq_client *c, jsCtx *js, kvStore **out)
{
    kvConfig kc;
    naq__kv_config_init(&kc, NAQ__SCHEDULES_BUCKET, "naq schedules (key = schedule name)",
                        c->cfg.replicas, 0);
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

/* The bucket's form of s: with a key (NAQ_ENCRYPTION_KEY_FILE) the args
 * are sealed for the schedule (crypt.h), and only a process with the key
 * can trigger it; s itself keeps its args. *json: heap. */
static naq_status encode_stored(naq_client *c, const naq_schedule *s, char **json, size_t *len)
{
    if (c->crypt == NULL)
        return naq_schedule_encode(s, json, len);
    naq_schedule sealed = *s; /* shallow: only args_json is replaced */
    sealed.args_json = s->args_json ? strdup(s->args_json) : NULL;
    naq_status st = s->args_json && sealed.args_json == NULL
                        ? naq__fail(NAQ_ERR_NO_MEMORY, "out of memory")
                        : naq__crypt_seal_schedule_args(c->crypt, s->name, &sealed.args_json);
    if (st == NAQ_OK)
        st = naq_schedule_encode(&sealed, json, len);
    free(sealed.args_json);
    return st;
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
    if ((st = encode_stored(c, s, &json, &len)) != NAQ_OK)
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
        if (out->count == cap &&
            naq__array_grow(&out->items, &cap, sizeof *out->items, 16) == NULL) {
            kvEntry_Destroy(e);
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing schedules");
            goto out;
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
            (s = encode_stored(c, &next, &new_json, &new_len)) != NAQ_OK)
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
