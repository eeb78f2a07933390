/*
 * worker_support.h - what the worker tests (test_worker.c, test_lifecycle.c,
 * test_crash.c) share: a fixture with a real server and a client, workers
 * run on their own threads, and reading a job's history back the way a
 * user would (naq_job_history). Header-only; every helper is static and
 * may go unused in one file.
 */
#ifndef NAQ_TEST_WORKER_SUPPORT_H
#define NAQ_TEST_WORKER_SUPPORT_H

#include "harness.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WS_UNUSED __attribute__((unused))

typedef struct running running;
typedef struct worker_thread worker_thread;

typedef struct {
    naq_test_server srv;
    naq_client *c;
    worker_thread *runs[8]; /* workers still running, stopped by teardown */
} fixture;

WS_UNUSED static void stop_all(fixture *fx);

WS_UNUSED static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    naq_test_server_start(&fx->srv);
    fx->c = naq_test_connect(&fx->srv);
    *state = fx;
    return 0;
}

WS_UNUSED static int teardown(void **state)
{
    fixture *fx = *state;
    stop_all(fx); /* after a failed assertion: workers before their client */
    naq_client_destroy(fx->c);
    naq_test_server_destroy(&fx->srv);
    free(fx);
    return 0;
}

WS_UNUSED static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

WS_UNUSED static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- workers in threads ---- */

/* A worker's thread and what it returned. On the heap, and listed in the
 * fixture until finished: after a failed assertion the test's frame is
 * gone (cmocka longjmps out of it), and teardown stops what is listed. */
struct worker_thread {
    fixture *fx;
    naq_worker *w;
    pthread_t thread;
    naq_status rc;
};

/* What a test keeps on its stack: the worker, to read, and its thread. */
struct running {
    naq_worker *w;
    worker_thread *t;
};

WS_UNUSED static void *run_main(void *arg)
{
    worker_thread *t = arg;
    t->rc = naq_worker_run(t->w);
    return NULL;
}

WS_UNUSED static void start(fixture *fx, running *r, naq_worker *w)
{
    int slot = 0;
    while (slot < 8 && fx->runs[slot] != NULL)
        slot++;
    if (slot == 8)
        fail_msg("too many workers in one test");
    worker_thread *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->fx = fx;
    t->w = w;
    assert_int_equal(pthread_create(&t->thread, NULL, run_main, t), 0);
    fx->runs[slot] = t;
    r->w = w;
    r->t = t;
}

/* Stops, joins, destroys and frees t; returns naq_worker_run's status. */
WS_UNUSED static naq_status finish_thread(worker_thread *t)
{
    fixture *fx = t->fx;
    for (int i = 0; i < 8; i++)
        if (fx->runs[i] == t)
            fx->runs[i] = NULL;
    naq_worker_stop(t->w);
    pthread_join(t->thread, NULL);
    naq_worker_destroy(t->w);
    naq_status rc = t->rc;
    free(t);
    return rc;
}

WS_UNUSED static naq_status finish(running *r)
{
    naq_status rc = finish_thread(r->t);
    r->w = NULL;
    r->t = NULL;
    return rc;
}

WS_UNUSED static void stop(running *r)
{
    assert_int_equal(finish(r), NAQ_OK);
}

WS_UNUSED static void stop_all(fixture *fx)
{
    for (int i = 0; i < 8; i++)
        if (fx->runs[i] != NULL)
            finish_thread(fx->runs[i]);
}

/* ---- reading outcomes ---- */

/* worker_assigned / worker_released are the registry's bookkeeping about
 * the worker (issue 4); these tests look at the job's own transitions. */
WS_UNUSED static int bookkeeping(naq_event_type t)
{
    return t == NAQ_EVENT_WORKER_ASSIGNED || t == NAQ_EVENT_WORKER_RELEASED;
}

typedef struct {
    naq_client *c;
    const char *id;
    naq_event_type type;
} wait_spec;

/* 1 when the job's history holds an event of w->type. */
WS_UNUSED static int has_event(void *ud)
{
    wait_spec *w = ud;
    naq_event_list l;
    if (naq_job_history(w->c, w->id, &l) != NAQ_OK)
        return 0;
    int found = 0;
    for (size_t i = 0; i < l.count && !found; i++)
        found = l.items[i].type == w->type;
    naq_event_list_free(&l);
    return found;
}

WS_UNUSED static void fail_with_history(naq_client *c, const char *id, const char *what)
{
    char text[2048] = "";
    size_t used = 0;
    naq_event_list l;
    if (naq_job_history(c, id, &l) == NAQ_OK) {
        for (size_t i = 0; i < l.count && used < sizeof text; i++) {
            int n = snprintf(text + used, sizeof text - used, " %s(%d%s%s)",
                             naq_event_type_name(l.items[i].type), l.items[i].attempt,
                             l.items[i].error_type ? " " : "",
                             l.items[i].error_type ? l.items[i].error_type : "");
            if (n > 0)
                used += (size_t)n;
        }
        naq_event_list_free(&l);
    }
    fail_msg("job %s: %s; history:%s", id, what, text);
}

/* Waits until the job's history holds an event of `type`. */
WS_UNUSED static void wait_event(naq_client *c, const char *id, naq_event_type type,
                                 int64_t timeout_ms)
{
    wait_spec w = {c, id, type};
    if (naq_test_wait_for(has_event, &w, timeout_ms))
        return;
    char what[128];
    snprintf(what, sizeof what, "no %s within %lld ms", naq_event_type_name(type),
             (long long)timeout_ms);
    fail_with_history(c, id, what);
}

WS_UNUSED static naq_event_list raw_history(naq_client *c, const char *id)
{
    naq_event_list l;
    naq_status s = naq_job_history(c, id, &l);
    if (s != NAQ_OK)
        fail_msg("history of %s: %s", id, naq_last_error());
    return l;
}

/* The job's history without the registry's bookkeeping events. */
WS_UNUSED static naq_event_list history(naq_client *c, const char *id)
{
    naq_event_list l = raw_history(c, id);
    size_t kept = 0;
    for (size_t i = 0; i < l.count; i++) {
        if (bookkeeping(l.items[i].type)) {
            naq_event_clear(&l.items[i]);
            continue;
        }
        if (kept != i)
            l.items[kept] = l.items[i];
        kept++;
    }
    l.count = kept;
    return l;
}

/* The job's latest event of `type` (waited for), as a copy to clear. */
WS_UNUSED static naq_event outcome(naq_client *c, const char *id, naq_event_type type)
{
    wait_event(c, id, type, 15000);
    naq_event_list l = history(c, id);
    naq_event e;
    naq_event_init(&e, type);
    for (size_t i = l.count; i-- > 0;) {
        if (l.items[i].type == type) {
            assert_int_equal(naq_event_copy(&e, &l.items[i]), NAQ_OK);
            break;
        }
    }
    naq_event_list_free(&l);
    return e;
}

WS_UNUSED static json_t *details(const naq_event *e)
{
    json_t *d = e->details_json ? json_loads(e->details_json, 0, NULL) : NULL;
    if (d == NULL)
        fail_msg("event %s has no details", naq_event_type_name(e->type));
    return d;
}

WS_UNUSED static void assert_contains(const char *text, const char *words)
{
    if (text == NULL || strstr(text, words) == NULL)
        fail_msg("'%s' does not contain '%s'", text ? text : "(null)", words);
}

#endif
