/*
 * handlers.c - a processor's handlers and plugins: who receives which event,
 * changed while events flow.
 *
 * Pool threads take a snapshot of the handlers for an event, each with a
 * reference, call them without the lock, and release them. Removing an
 * entry unlinks it at once (no new snapshot sees it) and frees it, calling
 * a plugin's on_stop, only once no pool thread holds it.
 *
 * Invariant: an entry's memory and user data stay valid while refs > 0;
 * refs only change under the lock.
 */
#include "events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { ENTRY_TYPE, ENTRY_GLOBAL, ENTRY_PLUGIN } entry_kind;

struct naq__handler {
    struct naq__handler *next;
    naq_handler_id id;
    entry_kind kind;
    naq_event_type type;
    naq_event_handler_fn fn;
    void *user;
    naq_plugin plugin;
    char name[NAQ_NAME_MAX];
    /* Under the table's lock: */
    int refs;     /* pool threads about to call it or calling it */
    int starting; /* plugin whose on_start has not returned: not called yet */
    int removed;
    int free_when_idle; /* removed without waiting: the last release frees it */
};

struct naq__handlers {
    pthread_mutex_t lock;
    pthread_cond_t idle; /* an entry's refs reached 0 */
    naq__handler *entries, **tail;
    naq_handler_id next_id;
};

naq_status naq__handlers_create(naq__handlers **out)
{
    naq__handlers *r = calloc(1, sizeof *r);
    *out = r;
    if (r == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating a processor");
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->idle, NULL);
    r->tail = &r->entries;
    return NAQ_OK;
}

/* The end of an entry: a plugin's on_stop, then the memory. No lock held. */
static void finish(naq__handler *h)
{
    if (h->kind == ENTRY_PLUGIN && h->plugin.on_stop != NULL)
        h->plugin.on_stop(h->plugin.user);
    free(h);
}

void naq__handlers_destroy(naq__handlers *r)
{
    if (r == NULL)
        return;
    for (naq__handler *h = r->entries, *next; h != NULL; h = next) {
        next = h->next;
        finish(h);
    }
    pthread_cond_destroy(&r->idle);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Appends h (taking it) and gives it an id. */
static naq_status add(naq__handlers *r, naq__handler *h, naq_handler_id *id)
{
    pthread_mutex_lock(&r->lock);
    if (h->kind == ENTRY_PLUGIN) {
        for (naq__handler *x = r->entries; x != NULL; x = x->next) {
            if (x->kind == ENTRY_PLUGIN && strcmp(x->name, h->name) == 0) {
                pthread_mutex_unlock(&r->lock);
                naq_status s = naq__fail(
                    NAQ_ERR_EXISTS, "a plugin named '%s' is registered already; remove it first",
                    h->name);
                free(h);
                return s;
            }
        }
    }
    h->id = ++r->next_id;
    *r->tail = h;
    r->tail = &h->next;
    pthread_mutex_unlock(&r->lock);
    if (id != NULL)
        *id = h->id;
    return NAQ_OK;
}

static naq__handler *new_entry(entry_kind kind, naq_event_type type)
{
    naq__handler *h = calloc(1, sizeof *h);
    if (h != NULL) {
        h->kind = kind;
        h->type = type;
    }
    return h;
}

naq_status naq__handlers_add(naq__handlers *r, int global, naq_event_type type,
                             naq_event_handler_fn fn, void *user, naq_handler_id *id)
{
    if (fn == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "handler function is NULL");
    if (!global && ((int)type < 0 || type >= NAQ_EVENT_TYPE_COUNT))
        return naq__fail(NAQ_ERR_INVALID_ARG, "%d is no event type", (int)type);
    naq__handler *h = new_entry(global ? ENTRY_GLOBAL : ENTRY_TYPE, type);
    if (h == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory adding a handler");
    h->fn = fn;
    h->user = user;
    return add(r, h, id);
}

static void unlink_entry(naq__handlers *r, naq__handler *h)
{
    for (naq__handler **pp = &r->entries; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            if (r->tail == &h->next)
                r->tail = pp;
            return;
        }
    }
}

naq_status naq__handlers_add_plugin(naq__handlers *r, const naq_plugin *plugin, naq_handler_id *id)
{
    if (plugin == NULL || plugin->on_event == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "a plugin needs an on_event callback");
    if (plugin->name == NULL || plugin->name[0] == '\0' || strlen(plugin->name) >= NAQ_NAME_MAX)
        return naq__fail(NAQ_ERR_INVALID_ARG, "a plugin needs a name of 1 to %d bytes",
                         NAQ_NAME_MAX - 1);
    naq__handler *h = new_entry(ENTRY_PLUGIN, NAQ_EVENT_ENQUEUED);
    if (h == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory adding a plugin");
    h->plugin = *plugin;
    snprintf(h->name, sizeof h->name, "%s", plugin->name);
    h->plugin.name = h->name;
    h->starting = 1; /* registered (the name is taken) but not called yet */
    naq_handler_id got = 0;
    naq_status s = add(r, h, &got);
    if (s != NAQ_OK)
        return s;
    char reason[NAQ_REASON_MAX] = "";
    int rc = plugin->on_start ? plugin->on_start(plugin->user, reason) : 0;
    pthread_mutex_lock(&r->lock);
    if (rc != 0)
        unlink_entry(r, h);
    else
        h->starting = 0;
    pthread_mutex_unlock(&r->lock);
    if (rc != 0) {
        free(h); /* never called: on_stop does not run */
        return naq__fail(NAQ_ERR_HANDLER, "plugin '%s' refused to start: %s", plugin->name,
                         reason[0] ? reason : "on_start returned non-zero");
    }
    if (id != NULL)
        *id = got;
    return NAQ_OK;
}

naq_status naq__handlers_remove(naq__handlers *r, naq_handler_id id, int wait)
{
    pthread_mutex_lock(&r->lock);
    naq__handler *h = r->entries;
    while (h != NULL && (h->id != id || h->starting))
        h = h->next;
    if (h == NULL) {
        pthread_mutex_unlock(&r->lock);
        return naq__fail(NAQ_ERR_NOT_FOUND, "no handler or plugin with id %llu in this processor",
                         (unsigned long long)id);
    }
    unlink_entry(r, h);
    h->removed = 1;
    while (wait && h->refs > 0)
        pthread_cond_wait(&r->idle, &r->lock);
    int now = h->refs == 0;
    if (!now)
        h->free_when_idle = 1;
    pthread_mutex_unlock(&r->lock);
    if (now)
        finish(h);
    return NAQ_OK;
}

size_t naq__handlers_take(naq__handlers *r, naq_event_type type, naq__handler ***snap, size_t *cap)
{
    size_t n = 0;
    pthread_mutex_lock(&r->lock);
    for (naq__handler *h = r->entries; h != NULL; h = h->next) {
        if (h->starting || (h->kind == ENTRY_TYPE && h->type != type))
            continue;
        if (n == *cap && naq__array_grow(snap, cap, sizeof **snap, 8) == NULL)
            break; /* run the ones we have; the rest miss this event */
        h->refs++;
        (*snap)[n++] = h;
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}

void naq__handlers_release(naq__handlers *r, naq__handler **snap, size_t n)
{
    naq__handler *idle = NULL; /* to free, linked through next (already unlinked) */
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < n; i++) {
        naq__handler *h = snap[i];
        if (--h->refs == 0 && h->removed) {
            pthread_cond_broadcast(&r->idle);
            if (h->free_when_idle) {
                h->next = idle;
                idle = h;
            }
        }
    }
    pthread_mutex_unlock(&r->lock);
    for (naq__handler *h = idle, *next; h != NULL; h = next) {
        next = h->next;
        finish(h);
    }
}

int naq__handler_call(const naq__handler *h, const naq_event *e, char *reason)
{
    return h->kind == ENTRY_PLUGIN ? h->plugin.on_event(e, h->plugin.user, reason)
                                   : h->fn(e, h->user, reason);
}

const char *naq__handler_plugin(const naq__handler *h)
{
    return h->kind == ENTRY_PLUGIN ? h->name : NULL;
}

void naq__handler_label(const naq__handler *h, char *buf, size_t cap)
{
    if (h->kind == ENTRY_PLUGIN)
        snprintf(buf, cap, "plugin '%s'", h->name);
    else
        snprintf(buf, cap, "handler %llu", (unsigned long long)h->id);
}
