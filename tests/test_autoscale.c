/*
 * test_autoscale.c - naq_worker_opts.autoscale_min/max (`naq worker
 * --autoscale`), against a real nats-server: a burst of slow jobs makes
 * the worker grow to its maximum, every job runs once and none is cut, and
 * once the queue is empty it shrinks back to its minimum; each change is
 * a worker_status_changed event with the old and new concurrency and the
 * reason.
 */
#include "worker_support.h"

#define JOBS 24
#define JOB_MS 150

typedef struct {
    pthread_mutex_t mu;
    char ids[JOBS * 2][NAQ_ID_SIZE];
    int runs;
    int inside, most_inside; /* handlers running at once */
} slow_log;

static naq_status slow_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    slow_log *l = user;
    pthread_mutex_lock(&l->mu);
    if (l->runs < JOBS * 2)
        snprintf(l->ids[l->runs], NAQ_ID_SIZE, "%s", job->id);
    l->runs++;
    if (++l->inside > l->most_inside)
        l->most_inside = l->inside;
    pthread_mutex_unlock(&l->mu);
    sleep_ms(JOB_MS);
    pthread_mutex_lock(&l->mu);
    l->inside--;
    pthread_mutex_unlock(&l->mu);
    return NAQ_OK;
}

static naq_worker *autoscaling_worker(fixture *fx, const char *id, int lo, int hi, slow_log *l)
{
    static const char *const queues[] = {"burst", NULL};
    naq_worker_opts o;
    naq_worker_opts_init(&o);
    o.queues = queues;
    o.worker_id = id;
    o.autoscale_min = lo;
    o.autoscale_max = hi;
    naq_worker *w = NULL;
    if (naq_worker_create(fx->c, &o, &w) != NAQ_OK)
        fail_msg("worker: %s", naq_last_error());
    assert_int_equal(naq_worker_register(w, "slow", slow_handler, l), NAQ_OK);
    return w;
}

static int concurrency_of(naq_worker *w)
{
    naq_worker_stats st;
    naq_worker_get_stats(w, &st);
    return st.concurrency;
}

typedef struct {
    naq_event_list l;
    const char *worker_id;
} changes;

static int copy_change(const naq_event *e, void *ud)
{
    changes *c = ud;
    if (e->type != NAQ_EVENT_WORKER_STATUS_CHANGED || strcmp(e->worker_id, c->worker_id) != 0 ||
        e->details_json == NULL || strstr(e->details_json, "new_concurrency") == NULL)
        return 0;
    c->l.items = realloc(c->l.items, (c->l.count + 1) * sizeof *c->l.items);
    assert_non_null(c->l.items);
    assert_int_equal(naq_event_copy(&c->l.items[c->l.count++], e), NAQ_OK);
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void a_burst_grows_the_worker_to_its_max_and_idleness_shrinks_it_back(void **state)
{
    fixture *fx = *state;
    slow_log l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    naq_worker *w = autoscaling_worker(fx, "w-scale", 1, 4, &l);
    assert_int_equal(concurrency_of(w), 1);
    running r;
    start(fx, &r, w);

    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "burst";
    o.function = "slow";
    for (int i = 0; i < JOBS; i++) {
        char id[NAQ_ID_SIZE];
        assert_int_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
    }
    int most = 0, runs = 0;
    for (int64_t end = mono_ms() + 30000; mono_ms() < end; sleep_ms(10)) {
        int now = concurrency_of(w);
        most = now > most ? now : most;
        pthread_mutex_lock(&l.mu);
        runs = l.runs;
        int busy = l.inside;
        pthread_mutex_unlock(&l.mu);
        if (runs >= JOBS && busy == 0)
            break;
    }
    assert_int_equal(runs, JOBS);
    /* 24 jobs of 150 ms: at one at a time they would take 3.6 s; the
     * backlog doubles the slots after 200 ms of lag each: 1, 2, 4. */
    assert_int_equal(most, 4);
    assert_int_equal(l.most_inside, 4); /* never more than the maximum */
    qsort(l.ids, JOBS, NAQ_ID_SIZE, cmp_id);
    for (int i = 1; i < JOBS; i++)
        assert_string_not_equal(l.ids[i - 1], l.ids[i]); /* each job ran once */

    /* Idle: halves every 2 s, down to the minimum. */
    int64_t end = mono_ms() + 10000;
    while (concurrency_of(w) != 1 && mono_ms() < end)
        sleep_ms(50);
    assert_int_equal(concurrency_of(w), 1);
    naq_worker_stats st;
    naq_worker_get_stats(w, &st);
    assert_int_equal((int)st.completed, JOBS);
    stop(&r);

    /* Each change is an event: 1 -> 2 -> 4 for lag, then back for idle. */
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    changes c = {{0}, "w-scale"};
    naq_stream_opts so = {0};
    so.tail = 100000;
    assert_int_equal(naq_events_stream(fx->c, &so, copy_change, &c), NAQ_OK);
    const char *want[] = {"\"old_concurrency\":1,\"new_concurrency\":2,\"reason\":\"lag\"",
                          "\"old_concurrency\":2,\"new_concurrency\":4,\"reason\":\"lag\"",
                          "\"reason\":\"idle\""};
    size_t next = 0;
    for (size_t i = 0; i < c.l.count && next < 3; i++)
        if (strstr(c.l.items[i].details_json, want[next]) != NULL)
            next++;
    if (next < 3)
        fail_msg("no event with %s among %zu concurrency changes", want[next], c.l.count);
    naq_event_list_free(&c.l);
}

static void a_bad_range_is_refused(void **state)
{
    fixture *fx = *state;
    static const char *const queues[] = {"burst", NULL};
    const int ranges[][2] = {{0, 4}, {5, 4}, {1, 5000}};
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        naq_worker_opts o;
        naq_worker_opts_init(&o);
        o.queues = queues;
        o.autoscale_min = ranges[i][0];
        o.autoscale_max = ranges[i][1];
        naq_worker *w = NULL;
        assert_int_equal(naq_worker_create(fx->c, &o, &w), NAQ_ERR_INVALID_ARG);
        assert_null(w);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(
        a_burst_grows_the_worker_to_its_max_and_idleness_shrinks_it_back, setup, teardown),
    cmocka_unit_test_setup_teardown(a_bad_range_is_refused, setup, teardown),
};

NAQ_TEST_MAIN(tests)
