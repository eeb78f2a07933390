/*
 * test_processor.c - event processors on a live source, against a real
 * nats-server: which handlers receive what, removing them, the limit on
 * concurrent handlers, handler timeouts, plugins, filters, and waiting for
 * or monitoring one job. Consumer groups and the event DLQ are in
 * test_group.c.
 *
 * Events are published here the way the logger publishes them: JSON from
 * naq_event_encode on naq_event_subject with the same headers, with a
 * synchronous JetStream publish so each test knows they are stored.
 */
#include "harness.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Publishes one event like the logger does; returns its stream sequence. */
static uint64_t publish(naq_client *c, naq_event_type type, const char *job, const char *queue,
                        const char *worker, const char *details)
{
    naq_event e;
    naq_event_init(&e, type);
    naq_id_new(e.event_id);
    snprintf(e.job_id, sizeof e.job_id, "%s", job);
    snprintf(e.queue_name, sizeof e.queue_name, "%s", queue ? queue : "");
    snprintf(e.worker_id, sizeof e.worker_id, "%s", worker ? worker : "");
    e.details_json = (char *)details;
    e.timestamp = naq__now();
    char subject[256], *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_event_subject("naq", &e, subject, sizeof subject), NAQ_OK);
    assert_int_equal(naq_event_encode(&e, &json, &len), NAQ_OK);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, json, (int)len), NATS_OK);
    natsMsgHeader_Set(m, "Nats-Msg-Id", e.event_id);
    natsMsgHeader_Set(m, "Naq-Event-Type", naq_event_type_name(type));
    if (queue)
        natsMsgHeader_Set(m, "Naq-Queue", queue);
    if (worker)
        natsMsgHeader_Set(m, "Naq-Worker", worker);
    jsPubAck *pa = NULL;
    assert_int_equal(js_PublishMsg(&pa, c->ejs, m, NULL, NULL), NATS_OK);
    uint64_t seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    free(json);
    return seq;
}

/* A counter a handler bumps, with the last event's type and job. */
typedef struct {
    atomic_int n;
    atomic_int types[NAQ_EVENT_TYPE_COUNT];
    atomic_int last_seq;
} counter;

static int count_event(const naq_event *e, void *user, char *reason)
{
    (void)reason;
    counter *k = user;
    atomic_fetch_add(&k->types[e->type], 1);
    atomic_store(&k->last_seq, (int)e->nats_sequence);
    atomic_fetch_add(&k->n, 1);
    return 0;
}

typedef struct {
    counter *k;
    int want;
} reach;

static int reached(void *ud)
{
    reach *r = ud;
    return atomic_load(&r->k->n) >= r->want;
}

static void wait_count(counter *k, int want)
{
    reach r = {k, want};
    if (!naq_test_wait_for(reached, &r, 10000))
        fail_msg("handler saw %d events, expected %d", atomic_load(&k->n), want);
}

static naq_processor *live(naq_client *c, naq_processor_opts *o)
{
    naq_processor *p = NULL;
    naq_status s = naq_processor_create(c, o, &p);
    if (s != NAQ_OK)
        fail_msg("create: %s", naq_last_error());
    return p;
}

static void start(naq_processor *p)
{
    naq_status s = naq_processor_start(p);
    if (s != NAQ_OK)
        fail_msg("start: %s: %s", naq_status_str(s), naq_last_error());
}

/* ---- handlers ---- */

static void type_and_global_handlers_both_receive_their_events(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    naq_processor *p = live(c, &o);
    counter completed = {0}, all = {0};
    naq_handler_id a = 0, b = 0;
    assert_int_equal(naq_processor_add_handler(p, NAQ_EVENT_COMPLETED, count_event, &completed, &a),
                     NAQ_OK);
    assert_int_equal(naq_processor_add_global_handler(p, count_event, &all, &b), NAQ_OK);
    assert_true(a != 0 && b != 0 && a != b);
    start(p);
    for (int i = 0; i < 5; i++)
        publish(c, NAQ_EVENT_STARTED, "job-a", "q", NULL, NULL);
    for (int i = 0; i < 3; i++)
        publish(c, NAQ_EVENT_COMPLETED, "job-a", "q", NULL, NULL);
    wait_count(&all, 8);
    wait_count(&completed, 3);
    sleep_ms(100); /* nothing more may arrive */
    assert_int_equal(atomic_load(&completed.n), 3);
    assert_int_equal(atomic_load(&completed.types[NAQ_EVENT_COMPLETED]), 3);
    assert_int_equal(atomic_load(&all.n), 8);
    assert_int_equal(atomic_load(&all.types[NAQ_EVENT_STARTED]), 5);
    naq_processor_stats st;
    naq_processor_get_stats(p, &st);
    assert_int_equal(st.received, 8);
    assert_int_equal(st.handled, 8);
    assert_int_equal(st.failed, 0);
    naq_processor_destroy(p);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void removed_handler_receives_nothing_more(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    naq_processor *p = live(c, &o);
    counter removed = {0}, kept = {0};
    naq_handler_id id = 0;
    assert_int_equal(naq_processor_add_global_handler(p, count_event, &removed, &id), NAQ_OK);
    assert_int_equal(naq_processor_add_global_handler(p, count_event, &kept, NULL), NAQ_OK);
    start(p);
    publish(c, NAQ_EVENT_STARTED, "job-r", NULL, NULL, NULL);
    wait_count(&removed, 1);
    assert_int_equal(naq_processor_remove(p, id), NAQ_OK);
    assert_int_equal(naq_processor_remove(p, id), NAQ_ERR_NOT_FOUND);
    for (int i = 0; i < 4; i++)
        publish(c, NAQ_EVENT_STARTED, "job-r", NULL, NULL, NULL);
    wait_count(&kept, 5);
    assert_int_equal(atomic_load(&removed.n), 1);
    /* Added while running: receives what comes next. */
    counter late = {0};
    assert_int_equal(naq_processor_add_handler(p, NAQ_EVENT_FAILED, count_event, &late, NULL),
                     NAQ_OK);
    publish(c, NAQ_EVENT_FAILED, "job-r", NULL, NULL, NULL);
    wait_count(&late, 1);
    naq_processor_destroy(p);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

/* ---- concurrency ---- */

typedef struct {
    atomic_int now, max, done;
} gauge;

static int slow_handler(const naq_event *e, void *user, char *reason)
{
    (void)e;
    (void)reason;
    gauge *g = user;
    int n = atomic_fetch_add(&g->now, 1) + 1;
    int m = atomic_load(&g->max);
    while (n > m && !atomic_compare_exchange_weak(&g->max, &m, n))
        ;
    sleep_ms(40);
    atomic_fetch_sub(&g->now, 1);
    atomic_fetch_add(&g->done, 1);
    return 0;
}

static int gauge_done(void *ud)
{
    gauge *g = ud;
    return atomic_load(&g->done) >= 24;
}

static void concurrent_handlers_never_exceed_the_limit(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    for (int i = 0; i < 24; i++)
        publish(c, NAQ_EVENT_STARTED, "job-c", NULL, NULL, NULL);
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    o.start = NAQ_START_ALL;
    o.max_concurrent = 3;
    naq_processor *p = live(c, &o);
    gauge g = {0};
    assert_int_equal(naq_processor_add_global_handler(p, slow_handler, &g, NULL), NAQ_OK);
    start(p);
    assert_true(naq_test_wait_for(gauge_done, &g, 10000));
    /* 24 events of 40 ms each are waiting from the start: the pool fills up
     * to its limit and never beyond it. */
    assert_int_equal(atomic_load(&g.max), 3);
    naq_processor_stats st;
    naq_processor_get_stats(p, &st);
    assert_int_equal(st.max_running, 3);
    assert_int_equal(st.handled, 24);
    naq_processor_destroy(p);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

/* ---- timeouts ---- */

typedef struct {
    atomic_int returned; /* the slow handler has returned */
    atomic_int outcomes;
    atomic_int returned_at_outcome; /* `returned` when the outcome came */
    naq_outcome_kind kind;
    int timed_out;
    char reason[NAQ_REASON_MAX];
} timeout_probe;

static int overrunning_handler(const naq_event *e, void *user, char *reason)
{
    (void)e;
    (void)reason;
    timeout_probe *t = user;
    sleep_ms(600);
    atomic_store(&t->returned, 1);
    return 0; /* a success that comes too late */
}

static void record_outcome(const naq_event *e, const naq_outcome *o, void *user)
{
    (void)e;
    timeout_probe *t = user;
    t->kind = o->kind;
    t->timed_out = o->timed_out;
    snprintf(t->reason, sizeof t->reason, "%s", o->reason);
    atomic_store(&t->returned_at_outcome, atomic_load(&t->returned));
    atomic_fetch_add(&t->outcomes, 1);
}

static int probe_returned(void *ud)
{
    return atomic_load(&((timeout_probe *)ud)->returned);
}
static int probe_reported(void *ud)
{
    return atomic_load(&((timeout_probe *)ud)->outcomes) > 0;
}

static void handler_past_its_timeout_is_reported_failed_and_its_late_result_ignored(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    timeout_probe t = {0};
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    o.handler_timeout_ms = 100;
    o.on_outcome = record_outcome;
    o.outcome_user = &t;
    naq_processor *p = live(c, &o);
    assert_int_equal(naq_processor_add_global_handler(p, overrunning_handler, &t, NULL), NAQ_OK);
    start(p);
    publish(c, NAQ_EVENT_STARTED, "job-t", NULL, NULL, NULL);
    assert_true(naq_test_wait_for(probe_reported, &t, 5000));
    /* Reported while the handler still ran. */
    assert_int_equal(atomic_load(&t.returned_at_outcome), 0);
    assert_int_equal(t.kind, NAQ_OUTCOME_FAILED);
    assert_int_equal(t.timed_out, 1);
    assert_non_null(strstr(t.reason, "timed out after 100 ms"));
    assert_true(naq_test_wait_for(probe_returned, &t, 5000));
    sleep_ms(50);
    /* Its success afterwards changed nothing. */
    assert_int_equal(atomic_load(&t.outcomes), 1);
    naq_processor_stats st;
    naq_processor_get_stats(p, &st);
    assert_int_equal(st.timed_out, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.handled, 0);
    naq_processor_destroy(p);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

/* ---- plugins ---- */

typedef struct {
    atomic_int starts, events, stops;
    int refuse;
} plugin_state;

static int plugin_start(void *user, char *reason)
{
    plugin_state *s = user;
    atomic_fetch_add(&s->starts, 1);
    if (s->refuse) {
        snprintf(reason, NAQ_REASON_MAX, "no database");
        return 1;
    }
    return 0;
}

static int plugin_event(const naq_event *e, void *user, char *reason)
{
    (void)e;
    (void)reason;
    atomic_fetch_add(&((plugin_state *)user)->events, 1);
    return 0;
}

static void plugin_stop(void *user)
{
    atomic_fetch_add(&((plugin_state *)user)->stops, 1);
}

static int plugin_saw_three(void *ud)
{
    return atomic_load(&((plugin_state *)ud)->events) >= 3;
}

static void plugin_receives_every_event_between_start_and_stop(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    naq_processor *p = live(c, &o);
    plugin_state ps = {0}, refused = {0}, kept = {0};
    refused.refuse = 1;
    naq_plugin pl = {"audit", plugin_start, plugin_event, plugin_stop, &ps};
    naq_handler_id id = 0;
    assert_int_equal(naq_processor_add_plugin(p, &pl, &id), NAQ_OK);
    assert_int_equal(atomic_load(&ps.starts), 1);
    /* Names are unique. */
    naq_plugin twin = {"audit", NULL, plugin_event, NULL, &ps};
    assert_int_equal(naq_processor_add_plugin(p, &twin, NULL), NAQ_ERR_EXISTS);
    /* A plugin whose on_start refuses is not added and never stopped. */
    naq_plugin bad = {"refuses", plugin_start, plugin_event, plugin_stop, &refused};
    assert_int_equal(naq_processor_add_plugin(p, &bad, NULL), NAQ_ERR_HANDLER);
    assert_non_null(strstr(naq_last_error(), "no database"));
    naq_plugin other = {"metrics", NULL, plugin_event, plugin_stop, &kept};
    assert_int_equal(naq_processor_add_plugin(p, &other, NULL), NAQ_OK);
    start(p);
    publish(c, NAQ_EVENT_ENQUEUED, "job-p", NULL, NULL, NULL);
    publish(c, NAQ_EVENT_WORKER_HEARTBEAT, "", NULL, "w-1", NULL);
    publish(c, NAQ_EVENT_SYSTEM_STARTUP, "", NULL, NULL, NULL);
    assert_true(naq_test_wait_for(plugin_saw_three, &ps, 5000));
    assert_int_equal(naq_processor_remove(p, id), NAQ_OK);
    assert_int_equal(atomic_load(&ps.stops), 1);
    publish(c, NAQ_EVENT_COMPLETED, "job-p", NULL, NULL, NULL);
    assert_true(naq_test_wait_for(plugin_saw_three, &kept, 5000));
    sleep_ms(100);
    assert_int_equal(atomic_load(&ps.events), 3);
    naq_processor_destroy(p);
    assert_int_equal(atomic_load(&kept.stops), 1); /* destroy stops the rest */
    assert_int_equal(atomic_load(&refused.stops), 0);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

/* ---- filters ---- */

static void filters_let_through_only_matching_events(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    naq_event_type types[] = {NAQ_EVENT_FAILED, NAQ_EVENT_TIMEOUT};
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    o.types = types;
    o.ntypes = 2;
    o.queue = "billing";
    naq_processor *by_headers = live(c, &o);
    naq_processor_opts_init(&o);
    o.job_id = "job-f1";
    naq_processor *by_job = live(c, &o);
    counter h = {0}, j = {0};
    assert_int_equal(naq_processor_add_global_handler(by_headers, count_event, &h, NULL), NAQ_OK);
    assert_int_equal(naq_processor_add_global_handler(by_job, count_event, &j, NULL), NAQ_OK);
    start(by_headers);
    start(by_job);
    publish(c, NAQ_EVENT_FAILED, "job-f1", "billing", NULL, NULL);    /* both */
    publish(c, NAQ_EVENT_FAILED, "job-f2", "emails", NULL, NULL);     /* neither */
    publish(c, NAQ_EVENT_COMPLETED, "job-f1", "billing", NULL, NULL); /* job only */
    publish(c, NAQ_EVENT_TIMEOUT, "job-f2", "billing", NULL, NULL);   /* headers only */
    wait_count(&h, 2);
    wait_count(&j, 2);
    sleep_ms(100);
    assert_int_equal(atomic_load(&h.n), 2);
    assert_int_equal(atomic_load(&h.types[NAQ_EVENT_FAILED]), 1);
    assert_int_equal(atomic_load(&h.types[NAQ_EVENT_TIMEOUT]), 1);
    assert_int_equal(atomic_load(&j.n), 2);
    assert_int_equal(atomic_load(&j.types[NAQ_EVENT_COMPLETED]), 1);
    naq_processor_stats st;
    naq_processor_get_stats(by_headers, &st);
    assert_int_equal(st.filtered, 2);
    naq_processor_destroy(by_headers);
    naq_processor_destroy(by_job);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void live_processor_can_start_from_a_sequence(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    publish(c, NAQ_EVENT_STARTED, "job-s", NULL, NULL, NULL);
    uint64_t second = publish(c, NAQ_EVENT_COMPLETED, "job-s", NULL, NULL, NULL);
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    o.start = NAQ_START_SEQUENCE;
    o.start_sequence = second;
    naq_processor *p = live(c, &o);
    counter k = {0};
    assert_int_equal(naq_processor_add_global_handler(p, count_event, &k, NULL), NAQ_OK);
    start(p);
    wait_count(&k, 1);
    sleep_ms(100);
    assert_int_equal(atomic_load(&k.n), 1);
    assert_int_equal(atomic_load(&k.last_seq), (int)second);
    naq_processor_destroy(p);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void bad_options_are_refused_with_their_name(void **state)
{
    (void)state;
    naq_processor_opts o;
    naq_processor *p = NULL;
    naq_processor_opts_init(&o);
    o.max_concurrent = 0;
    assert_int_equal(naq_processor_create(NULL, &o, &p), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "max_concurrent"));
    naq_processor_opts_init(&o);
    o.group = "a.b";
    assert_int_equal(naq_processor_create(NULL, &o, &p), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "group name"));
    naq_processor_opts_init(&o);
    o.queue = "has space";
    assert_int_equal(naq_processor_create(NULL, &o, &p), NAQ_ERR_INVALID_ARG);
    naq_processor_opts_init(&o);
    o.start = NAQ_START_SEQUENCE;
    assert_int_equal(naq_processor_create(NULL, &o, &p), NAQ_ERR_INVALID_ARG);
    assert_null(p);
}

/* ---- one job ---- */

static void wait_for_event_returns_an_event_that_already_happened(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    publish(c, NAQ_EVENT_STARTED, "job-w1", "q", NULL, NULL);
    uint64_t seq = publish(c, NAQ_EVENT_COMPLETED, "job-w1", "q", NULL, NULL);
    publish(c, NAQ_EVENT_WORKER_RELEASED, "job-w1", "q", NULL, NULL);
    naq_event e;
    assert_int_equal(naq_wait_for_event(c, "job-w1", NAQ_EVENT_COMPLETED, 2000, &e), NAQ_OK);
    assert_int_equal(e.type, NAQ_EVENT_COMPLETED);
    assert_string_equal(e.job_id, "job-w1");
    assert_int_equal(e.nats_sequence, seq);
    naq_event_clear(&e);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

typedef struct {
    naq_client *c;
    const char *job;
    int delay_ms;
    naq_event_type types[4];
    int ntypes;
} later;

static void *publish_later(void *arg)
{
    later *l = arg;
    sleep_ms(l->delay_ms);
    for (int i = 0; i < l->ntypes; i++)
        publish(l->c, l->types[i], l->job, "q", NULL,
                l->types[i] == NAQ_EVENT_FAILED ? "{\"will_retry\":true}" : NULL);
    return NULL;
}

static void wait_for_event_returns_an_event_that_happens_later(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    publish(c, NAQ_EVENT_ENQUEUED, "job-w2", "q", NULL, NULL);
    later l = {c, "job-w2", 300, {NAQ_EVENT_STARTED, NAQ_EVENT_COMPLETED}, 2};
    pthread_t t;
    pthread_create(&t, NULL, publish_later, &l);
    naq_event e;
    assert_int_equal(naq_wait_for_event(c, "job-w2", NAQ_EVENT_COMPLETED, 5000, &e), NAQ_OK);
    assert_int_equal(e.type, NAQ_EVENT_COMPLETED);
    assert_string_equal(e.job_id, "job-w2");
    naq_event_clear(&e);
    pthread_join(t, NULL);
    /* A job with no events at all is followed from its first. */
    later l2 = {c, "job-w3", 200, {NAQ_EVENT_ENQUEUED}, 1};
    pthread_create(&t, NULL, publish_later, &l2);
    assert_int_equal(naq_wait_for_event(c, "job-w3", NAQ_EVENT_ENQUEUED, 5000, &e), NAQ_OK);
    naq_event_clear(&e);
    pthread_join(t, NULL);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void wait_for_event_times_out_when_the_event_never_comes(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    publish(c, NAQ_EVENT_STARTED, "job-w4", "q", NULL, NULL);
    naq_event e;
    assert_int_equal(naq_wait_for_event(c, "job-w4", NAQ_EVENT_COMPLETED, 300, &e),
                     NAQ_ERR_TIMEOUT);
    assert_non_null(strstr(naq_last_error(), "completed"));
    naq_event_clear(&e);
    assert_int_equal(naq_wait_for_event(c, "no-such-job", NAQ_EVENT_COMPLETED, 200, &e),
                     NAQ_ERR_TIMEOUT);
    naq_event_clear(&e);
    assert_int_equal(naq_wait_for_event(c, "bad.id", NAQ_EVENT_COMPLETED, 200, &e),
                     NAQ_ERR_INVALID_ARG);
    naq_event_clear(&e);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

typedef struct {
    naq_event_type seen[16];
    int n;
    int stop_after; /* return non-zero after this many; 0 = never */
} monitor_log;

static int log_monitored(const naq_event *e, void *user)
{
    monitor_log *m = user;
    if (m->n < 16)
        m->seen[m->n++] = e->type;
    return m->stop_after > 0 && m->n >= m->stop_after;
}

static void monitor_job_delivers_history_then_live_and_stops_at_a_terminal_event(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    publish(c, NAQ_EVENT_ENQUEUED, "job-m", "q", NULL, NULL);
    publish(c, NAQ_EVENT_STARTED, "job-m", "q", NULL, NULL);
    /* A failure that will be retried is not the end; completed is; the
     * event after it is never delivered. */
    later l = {
        c,
        "job-m",
        200,
        {NAQ_EVENT_FAILED, NAQ_EVENT_RETRY_STARTED, NAQ_EVENT_COMPLETED, NAQ_EVENT_WORKER_RELEASED},
        4};
    pthread_t t;
    pthread_create(&t, NULL, publish_later, &l);
    monitor_log m = {{0}, 0, 0};
    naq_monitor_opts mo = {10000, NULL};
    assert_int_equal(naq_monitor_job(c, "job-m", log_monitored, &m, &mo), NAQ_OK);
    pthread_join(t, NULL);
    assert_int_equal(m.n, 5);
    assert_int_equal(m.seen[0], NAQ_EVENT_ENQUEUED);
    assert_int_equal(m.seen[1], NAQ_EVENT_STARTED);
    assert_int_equal(m.seen[2], NAQ_EVENT_FAILED);
    assert_int_equal(m.seen[3], NAQ_EVENT_RETRY_STARTED);
    assert_int_equal(m.seen[4], NAQ_EVENT_COMPLETED);
    /* Over already: returns from the history alone. */
    monitor_log again = {{0}, 0, 0};
    assert_int_equal(naq_monitor_job(c, "job-m", log_monitored, &again, NULL), NAQ_OK);
    assert_int_equal(again.n, 5);
    /* The callback stops it; an unfinished job times out. */
    monitor_log first = {{0}, 0, 1};
    assert_int_equal(naq_monitor_job(c, "job-m", log_monitored, &first, NULL), NAQ_OK);
    assert_int_equal(first.n, 1);
    publish(c, NAQ_EVENT_STARTED, "job-open", "q", NULL, NULL);
    monitor_log open = {{0}, 0, 0};
    naq_monitor_opts brief = {300, NULL};
    assert_int_equal(naq_monitor_job(c, "job-open", log_monitored, &open, &brief), NAQ_ERR_TIMEOUT);
    assert_int_equal(open.n, 1);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void terminal_events_are_the_ends_of_a_job(void **state)
{
    (void)state;
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_COMPLETED);
    assert_true(naq_event_is_terminal(&e));
    e.type = NAQ_EVENT_DEPENDENCY_FAILED;
    assert_true(naq_event_is_terminal(&e));
    e.type = NAQ_EVENT_STARTED;
    assert_false(naq_event_is_terminal(&e));
    e.type = NAQ_EVENT_FAILED;
    assert_true(naq_event_is_terminal(&e)); /* no retry said: final */
    e.details_json = "{\"will_retry\":true}";
    assert_false(naq_event_is_terminal(&e));
    e.details_json = "{\"will_retry\":false,\"exit_status\":3}";
    assert_true(naq_event_is_terminal(&e));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(type_and_global_handlers_both_receive_their_events),
    cmocka_unit_test(removed_handler_receives_nothing_more),
    cmocka_unit_test(concurrent_handlers_never_exceed_the_limit),
    cmocka_unit_test(handler_past_its_timeout_is_reported_failed_and_its_late_result_ignored),
    cmocka_unit_test(plugin_receives_every_event_between_start_and_stop),
    cmocka_unit_test(filters_let_through_only_matching_events),
    cmocka_unit_test(live_processor_can_start_from_a_sequence),
    cmocka_unit_test(bad_options_are_refused_with_their_name),
    cmocka_unit_test(wait_for_event_returns_an_event_that_already_happened),
    cmocka_unit_test(wait_for_event_returns_an_event_that_happens_later),
    cmocka_unit_test(wait_for_event_times_out_when_the_event_never_comes),
    cmocka_unit_test(monitor_job_delivers_history_then_live_and_stops_at_a_terminal_event),
    cmocka_unit_test(terminal_events_are_the_ends_of_a_job),
};

NAQ_TEST_MAIN(tests)
