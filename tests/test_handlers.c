/*
 * test_handlers.c - a processor's handler table (handlers.c): which
 * handlers an event reaches, plugin names and start-up, and removal while
 * pool threads hold a snapshot (freed, with on_stop, only after the last
 * release). No server needed: the processor's delivery is test_processor.
 */
#include "harness.h"
#include "events/events.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    atomic_int events, starts, stops;
    int refuse_start;
} counts;

static int on_event(const naq_event *e, void *user, char *reason)
{
    (void)e;
    (void)reason;
    atomic_fetch_add(&((counts *)user)->events, 1);
    return 0;
}

static int on_start(void *user, char *reason)
{
    counts *c = user;
    atomic_fetch_add(&c->starts, 1);
    if (c->refuse_start) {
        snprintf(reason, NAQ_REASON_MAX, "no database");
        return 1;
    }
    return 0;
}

static void on_stop(void *user)
{
    atomic_fetch_add(&((counts *)user)->stops, 1);
}

static naq_plugin plugin(const char *name, counts *c)
{
    naq_plugin p = {name, on_start, on_event, on_stop, c};
    return p;
}

/* Takes a snapshot for type, calls every handler in it, releases it. */
static size_t deliver(naq__handlers *r, naq_event_type type)
{
    naq__handler **snap = NULL;
    size_t cap = 0;
    size_t n = naq__handlers_take(r, type, &snap, &cap);
    naq_event e;
    naq_event_init(&e, type);
    for (size_t i = 0; i < n; i++) {
        char reason[NAQ_REASON_MAX] = "";
        assert_int_equal(naq__handler_call(snap[i], &e, reason), 0);
    }
    naq__handlers_release(r, snap, n);
    free(snap);
    naq_event_clear(&e);
    return n;
}

static void an_event_reaches_its_type_handlers_the_global_ones_and_plugins(void **state)
{
    (void)state;
    naq__handlers *r = NULL;
    assert_int_equal(naq__handlers_create(&r), NAQ_OK);
    counts typed = {0}, global = {0}, plug = {0};
    naq_handler_id id1 = 0, id2 = 0, id3 = 0;
    assert_int_equal(naq__handlers_add(r, 0, NAQ_EVENT_COMPLETED, on_event, &typed, &id1), NAQ_OK);
    assert_int_equal(naq__handlers_add(r, 1, NAQ_EVENT_ENQUEUED, on_event, &global, &id2), NAQ_OK);
    naq_plugin p = plugin("audit", &plug);
    assert_int_equal(naq__handlers_add_plugin(r, &p, &id3), NAQ_OK);
    assert_true(id1 != id2 && id2 != id3 && id1 != id3);

    assert_int_equal(deliver(r, NAQ_EVENT_COMPLETED), 3);
    assert_int_equal(deliver(r, NAQ_EVENT_FAILED), 2); /* not the COMPLETED handler */
    assert_int_equal(typed.events, 1);
    assert_int_equal(global.events, 2);
    assert_int_equal(plug.events, 2);

    assert_int_equal(naq__handlers_add(r, 0, NAQ_EVENT_TYPE_COUNT, on_event, &typed, NULL),
                     NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq__handlers_add(r, 0, NAQ_EVENT_FAILED, NULL, NULL, NULL),
                     NAQ_ERR_INVALID_ARG);
    naq__handlers_destroy(r); /* stops the plugin */
    assert_int_equal(plug.starts, 1);
    assert_int_equal(plug.stops, 1);
}

static void a_plugin_name_is_taken_once_and_a_refusing_plugin_never_runs(void **state)
{
    (void)state;
    naq__handlers *r = NULL;
    assert_int_equal(naq__handlers_create(&r), NAQ_OK);
    counts a = {0}, b = {0}, refusing = {.refuse_start = 1};
    naq_plugin pa = plugin("audit", &a), pb = plugin("audit", &b);
    assert_int_equal(naq__handlers_add_plugin(r, &pa, NULL), NAQ_OK);
    assert_int_equal(naq__handlers_add_plugin(r, &pb, NULL), NAQ_ERR_EXISTS);
    assert_non_null(strstr(naq_last_error(), "'audit' is registered already"));
    assert_int_equal(b.starts, 0);

    naq_plugin pr = plugin("metrics", &refusing);
    assert_int_equal(naq__handlers_add_plugin(r, &pr, NULL), NAQ_ERR_HANDLER);
    assert_non_null(strstr(naq_last_error(), "no database"));
    assert_int_equal(deliver(r, NAQ_EVENT_COMPLETED), 1); /* only "audit" */
    assert_int_equal(refusing.events, 0);
    assert_int_equal(refusing.stops, 0); /* never started: never stopped */
    refusing.refuse_start = 0;
    assert_int_equal(naq__handlers_add_plugin(r, &pr, NULL), NAQ_OK); /* the name is free */
    naq__handlers_destroy(r);
}

static void removing_a_handler_in_use_frees_it_after_the_last_release(void **state)
{
    (void)state;
    naq__handlers *r = NULL;
    assert_int_equal(naq__handlers_create(&r), NAQ_OK);
    counts c = {0};
    naq_plugin p = plugin("audit", &c);
    naq_handler_id id = 0;
    assert_int_equal(naq__handlers_add_plugin(r, &p, &id), NAQ_OK);

    naq__handler **snap = NULL;
    size_t cap = 0;
    size_t n = naq__handlers_take(r, NAQ_EVENT_STARTED, &snap, &cap);
    assert_int_equal(n, 1);
    assert_string_equal(naq__handler_plugin(snap[0]), "audit");
    assert_int_equal(naq__handlers_remove(r, id, 0), NAQ_OK);
    assert_int_equal(c.stops, 0);                       /* a pool thread holds it */
    assert_int_equal(deliver(r, NAQ_EVENT_STARTED), 0); /* but no new event sees it */
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_STARTED);
    char reason[NAQ_REASON_MAX] = "";
    assert_int_equal(naq__handler_call(snap[0], &e, reason), 0); /* still valid */
    naq_event_clear(&e);
    naq__handlers_release(r, snap, n);
    assert_int_equal(c.stops, 1);
    free(snap);
    assert_int_equal(naq__handlers_remove(r, id, 0), NAQ_ERR_NOT_FOUND);
    naq__handlers_destroy(r);
}

typedef struct {
    naq__handlers *r;
    naq_handler_id id;
    atomic_int done;
} remover;

static void *remove_and_wait(void *arg)
{
    remover *m = arg;
    assert_int_equal(naq__handlers_remove(m->r, m->id, 1), NAQ_OK);
    atomic_store(&m->done, 1);
    return NULL;
}

static void removing_with_wait_returns_only_after_the_last_release(void **state)
{
    (void)state;
    naq__handlers *r = NULL;
    assert_int_equal(naq__handlers_create(&r), NAQ_OK);
    counts c = {0};
    remover m = {r, 0, 0};
    assert_int_equal(naq__handlers_add(r, 1, NAQ_EVENT_ENQUEUED, on_event, &c, &m.id), NAQ_OK);
    naq__handler **snap = NULL;
    size_t cap = 0;
    size_t n = naq__handlers_take(r, NAQ_EVENT_ENQUEUED, &snap, &cap);
    assert_int_equal(n, 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, remove_and_wait, &m), 0);
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(atomic_load(&m.done), 0); /* still held */
    naq__handlers_release(r, snap, n);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&m.done), 1);
    free(snap);
    naq__handlers_destroy(r);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(an_event_reaches_its_type_handlers_the_global_ones_and_plugins),
    cmocka_unit_test(a_plugin_name_is_taken_once_and_a_refusing_plugin_never_runs),
    cmocka_unit_test(removing_a_handler_in_use_frees_it_after_the_last_release),
    cmocka_unit_test(removing_with_wait_returns_only_after_the_last_release),
};

NAQ_TEST_MAIN(tests)
