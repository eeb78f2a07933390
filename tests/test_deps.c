/*
 * test_deps.c - jobs with dependencies, against a real nats-server: a
 * dependent waits (not queued) until every dependency completed, then is
 * queued once; a dependency that finished before the dependent was
 * enqueued counts at once; a failed dependency cancels the dependent (or
 * not, with run_on_dependency_failure); several finishers at the same
 * moment, and an enqueue racing a finish, release the job exactly once
 * and never leave it stuck. The finishers are driven by calling
 * the finish protocol (naq__finish) as the worker does, and once by a real worker.
 */
#include "lifecycle_support.h"

static void enqueue_dependent(lc_fixture *fx, const char *id, const char *const *deps,
                              int run_on_failure)
{
    naq_job_opts o = lc_job("deps", id);
    o.depends_on = deps;
    o.run_on_dependency_failure = run_on_failure;
    char got[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, got);
    assert_string_equal(got, id);
}

static void finish(lc_fixture *fx, const char *id, int ok)
{
    lc_finish(fx, id, ok);
}

static void a_dependent_runs_only_after_all_its_dependencies_completed(void **state)
{
    lc_fixture *fx = *state;
    char a[NAQ_ID_SIZE], b[NAQ_ID_SIZE];
    naq_job_opts o = lc_job("deps", NULL);
    lc_enqueue(fx, &o, a);
    lc_enqueue(fx, &o, b);
    const char *deps[] = {a, b, NULL};
    enqueue_dependent(fx, "c", deps, 0);
    assert_int_equal(lc_queued_copies(fx, "c"), 0);
    assert_true(lc_kv_has(fx, "naq_deps", "c"));
    assert_events(fx, "c", "waiting_for_dependencies");
    json_t *d = lc_event_details(fx, "c", NAQ_EVENT_WAITING_FOR_DEPENDENCIES);
    assert_int_equal(json_array_size(json_object_get(d, "depends_on")), 2);
    json_decref(d);

    finish(fx, a, 1);
    assert_int_equal(lc_queued_copies(fx, "c"), 0);
    assert_events(fx, "c", "waiting_for_dependencies,dependency_satisfied");
    d = lc_event_details(fx, "c", NAQ_EVENT_DEPENDENCY_SATISFIED);
    assert_string_equal(json_string_value(json_object_get(d, "dependency")), a);
    json_decref(d);

    finish(fx, b, 1);
    assert_int_equal(lc_queued_copies(fx, "c"), 1);
    assert_events(fx, "c",
                  "waiting_for_dependencies,dependency_satisfied,dependency_satisfied,enqueued");
    assert_false(lc_kv_has(fx, "naq_deps", "c"));
    /* A finisher run again (a redelivered job) changes nothing. */
    finish(fx, b, 1);
    assert_int_equal(lc_queued_copies(fx, "c"), 1);
    naq_job j;
    lc_queued_job(fx, "c", &j, NULL, 0);
    assert_string_equal(j.depends_on[0], a);
    naq_job_clear(&j);
}

static void a_dependency_that_finished_before_the_enqueue_counts_at_once(void **state)
{
    lc_fixture *fx = *state;
    finish(fx, "done-early", 1);
    const char *deps[] = {"done-early", NULL};
    enqueue_dependent(fx, "late", deps, 0);
    assert_int_equal(lc_queued_copies(fx, "late"), 1);
    assert_events(fx, "late", "waiting_for_dependencies,dependency_satisfied,enqueued");
    assert_false(lc_kv_has(fx, "naq_deps", "late"));
}

static void a_dependency_known_only_from_its_events_counts_too(void **state)
{
    lc_fixture *fx = *state;
    /* A job that completed before naq kept finished markers. */
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_COMPLETED);
    snprintf(e.job_id, sizeof e.job_id, "old-job");
    naq_client_log(fx->c, &e);
    naq_event_init(&e, NAQ_EVENT_WORKER_RELEASED);
    snprintf(e.job_id, sizeof e.job_id, "old-job");
    naq_client_log(fx->c, &e);
    naq_event_init(&e, NAQ_EVENT_MAX_RETRIES_EXCEEDED);
    snprintf(e.job_id, sizeof e.job_id, "old-dead-job");
    naq_client_log(fx->c, &e);
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    const char *deps[] = {"old-job", NULL};
    enqueue_dependent(fx, "after-old", deps, 0);
    assert_int_equal(lc_queued_copies(fx, "after-old"), 1);
    const char *dead[] = {"old-dead-job", NULL};
    enqueue_dependent(fx, "after-dead", dead, 0);
    assert_int_equal(lc_queued_copies(fx, "after-dead"), 0);
    assert_events(fx, "after-dead", "waiting_for_dependencies,dependency_failed,cancelled");
}

static void a_failed_dependency_cancels_the_dependent_and_its_dependents(void **state)
{
    lc_fixture *fx = *state;
    const char *on_a[] = {"a", NULL}, *on_b[] = {"b", NULL};
    enqueue_dependent(fx, "b", on_a, 0);
    enqueue_dependent(fx, "c", on_b, 0);
    finish(fx, "a", 0);
    assert_events(fx, "b", "waiting_for_dependencies,dependency_failed,cancelled");
    assert_events(fx, "c", "waiting_for_dependencies,dependency_failed,cancelled");
    json_t *d = lc_event_details(fx, "b", NAQ_EVENT_DEPENDENCY_FAILED);
    assert_string_equal(json_string_value(json_object_get(d, "dependency")), "a");
    json_decref(d);
    assert_int_equal(lc_queued(fx), 0);
    assert_false(lc_kv_has(fx, "naq_deps", "b"));
    assert_false(lc_kv_has(fx, "naq_deps", "c"));
    /* Both count as failed for anyone who depends on them later, and have
     * a result that says why. */
    assert_int_equal(naq__job_finished(fx->c, "b"), -1);
    assert_int_equal(naq__job_finished(fx->c, "c"), -1);
    char *r = NULL;
    assert_int_equal(naq_job_result(fx->c, "b", 0, &r), NAQ_OK);
    json_t *o = json_loads(r, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "cancelled");
    assert_string_equal(json_string_value(json_object_get(o, "error_type")), "DependencyFailed");
    json_decref(o);
    free(r);
}

static void a_dependent_that_runs_on_failure_is_queued_after_a_failed_dependency(void **state)
{
    lc_fixture *fx = *state;
    const char *deps[] = {"x", "y", NULL};
    enqueue_dependent(fx, "cleanup", deps, 1);
    finish(fx, "x", 0);
    assert_int_equal(lc_queued_copies(fx, "cleanup"), 0);
    finish(fx, "y", 1);
    assert_int_equal(lc_queued_copies(fx, "cleanup"), 1);
    assert_events(fx, "cleanup",
                  "waiting_for_dependencies,dependency_failed,dependency_satisfied,enqueued");
    json_t *d = lc_event_details(fx, "cleanup", NAQ_EVENT_DEPENDENCY_FAILED);
    assert_true(json_is_true(json_object_get(d, "run_anyway")));
    json_decref(d);
}

static void enqueueing_a_dependent_twice_stores_it_once(void **state)
{
    lc_fixture *fx = *state;
    const char *deps[] = {"p", NULL};
    enqueue_dependent(fx, "twice", deps, 0);
    enqueue_dependent(fx, "twice", deps, 0);
    assert_events(fx, "twice", "waiting_for_dependencies");
    finish(fx, "p", 1);
    assert_int_equal(lc_queued_copies(fx, "twice"), 1);
}

typedef struct {
    lc_fixture *fx;
    pthread_barrier_t *go;
    char id[NAQ_ID_SIZE];
    naq_status s;
} finisher;

static void *finish_main(void *arg)
{
    finisher *f = arg;
    pthread_barrier_wait(f->go);
    naq_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "%s", f->id);
    snprintf(j.queue, sizeof j.queue, "deps");
    char *record = naq__outcome_record(NULL, &j, 0, "completed", NULL, NULL, NULL);
    f->s = naq__finish(f->fx->c, &j, record, 1);
    free(record);
    return NULL;
}

static void four_finishers_at_the_same_moment_release_the_dependent_exactly_once(void **state)
{
    lc_fixture *fx = *state;
    enum { DEPS = 4, ROUNDS = 6 };
    for (int round = 0; round < ROUNDS; round++) {
        finisher f[DEPS];
        const char *deps[DEPS + 1];
        char dependent[NAQ_ID_SIZE];
        snprintf(dependent, sizeof dependent, "joined-%d", round);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, DEPS);
        for (int i = 0; i < DEPS; i++) {
            f[i] = (finisher){.fx = fx, .go = &go};
            snprintf(f[i].id, sizeof f[i].id, "part-%d-%d", round, i);
            deps[i] = f[i].id;
        }
        deps[DEPS] = NULL;
        enqueue_dependent(fx, dependent, deps, 0);
        pthread_t t[DEPS];
        for (int i = 0; i < DEPS; i++)
            assert_int_equal(pthread_create(&t[i], NULL, finish_main, &f[i]), 0);
        for (int i = 0; i < DEPS; i++) {
            pthread_join(t[i], NULL);
            if (f[i].s != NAQ_OK)
                fail_msg("finisher %d: %s", i, naq_status_str(f[i].s));
        }
        pthread_barrier_destroy(&go);
        assert_int_equal(lc_queued_copies(fx, dependent), 1);
        assert_false(lc_kv_has(fx, "naq_deps", dependent));
        /* One dependency_satisfied per finisher, each with its own count
         * of what was left (the stream order of the finishers' events is
         * theirs, not the order of their compare-and-sets), one enqueued. */
        assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
        naq_event_list l;
        assert_int_equal(naq_job_history(fx->c, dependent, &l), NAQ_OK);
        int satisfied = 0, enqueued = 0, left_seen = 0;
        for (size_t k = 0; k < l.count; k++) {
            if (l.items[k].type == NAQ_EVENT_ENQUEUED)
                enqueued++;
            if (l.items[k].type != NAQ_EVENT_DEPENDENCY_SATISFIED)
                continue;
            satisfied++;
            json_t *d = json_loads(l.items[k].details_json, 0, NULL);
            left_seen |= 1 << json_integer_value(json_object_get(d, "pending"));
            json_decref(d);
        }
        assert_int_equal(l.items[0].type, NAQ_EVENT_WAITING_FOR_DEPENDENCIES);
        naq_event_list_free(&l);
        assert_int_equal(satisfied, DEPS);
        assert_int_equal(enqueued, 1);
        assert_int_equal(left_seen, 0xf); /* pending 3, 2, 1 and 0 */
    }
    assert_int_equal(lc_queued(fx), ROUNDS);
}

typedef struct {
    lc_fixture *fx;
    pthread_barrier_t *go;
    char dep[NAQ_ID_SIZE], job[NAQ_ID_SIZE];
    naq_status s;
} enqueuer;

static void *enqueue_main(void *arg)
{
    enqueuer *e = arg;
    naq_job_opts o = lc_job("deps", e->job);
    const char *deps[] = {e->dep, NULL};
    o.depends_on = deps;
    char id[NAQ_ID_SIZE];
    pthread_barrier_wait(e->go);
    e->s = naq_enqueue(e->fx->c, &o, id);
    return NULL;
}

static void a_dependent_enqueued_while_its_dependency_finishes_is_never_stuck(void **state)
{
    lc_fixture *fx = *state;
    enum { ROUNDS = 20 };
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        enqueuer e = {.fx = fx, .go = &go};
        finisher f = {.fx = fx, .go = &go};
        snprintf(e.dep, sizeof e.dep, "racing-dep-%d", round);
        snprintf(e.job, sizeof e.job, "racing-job-%d", round);
        snprintf(f.id, sizeof f.id, "%s", e.dep);
        pthread_t te, tf;
        assert_int_equal(pthread_create(&te, NULL, enqueue_main, &e), 0);
        assert_int_equal(pthread_create(&tf, NULL, finish_main, &f), 0);
        pthread_join(te, NULL);
        pthread_join(tf, NULL);
        pthread_barrier_destroy(&go);
        assert_int_equal(e.s, NAQ_OK);
        assert_int_equal(f.s, NAQ_OK);
        if (lc_queued_copies(fx, e.job) != 1)
            fail_msg("round %d: job %s queued %d times", round, e.job, lc_queued_copies(fx, e.job));
    }
}

/* ---- with a real worker ---- */

static naq_status noop(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    (void)job;
    (void)user;
    return NAQ_OK;
}

static void *worker_main(void *arg)
{
    naq_worker_run(arg);
    return NULL;
}

typedef struct {
    lc_fixture *fx;
    const char *id;
} result_wait;

static int has_result(void *ud)
{
    result_wait *w = ud;
    char *r = NULL;
    naq_status s = naq_job_result(w->fx->c, w->id, 0, &r);
    free(r);
    return s == NAQ_OK;
}

static void a_real_worker_runs_the_dependent_after_its_dependency(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = lc_job("deps", "first");
    char id[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, id);
    const char *deps[] = {"first", NULL};
    enqueue_dependent(fx, "second", deps, 0);
    /* The worker's events come from another client: let ours be stored
     * first, as they would be for an enqueue that happened well before. */
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);

    naq_client *wc = naq_test_connect(&fx->srv);
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    const char *queues[] = {"deps", NULL};
    wo.queues = queues;
    naq_worker *w = NULL;
    assert_int_equal(naq_worker_create(wc, &wo, &w), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "noop", noop, NULL), NAQ_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, worker_main, w), 0);
    result_wait rw = {fx, "second"};
    int done = naq_test_wait_for(has_result, &rw, 10000);
    naq_worker_stop(w);
    pthread_join(t, NULL);
    naq_worker_destroy(w);
    naq_client_destroy(wc);
    if (!done)
        fail_msg("the dependent never ran");
    assert_int_equal(naq__job_finished(fx->c, "first"), 1);
    assert_int_equal(naq__job_finished(fx->c, "second"), 1);
    char *types = lc_event_types(fx, "second");
    if (strncmp(types, "waiting_for_dependencies,dependency_satisfied,enqueued,dequeued", 63) !=
            0 ||
        strstr(types, "completed") == NULL)
        fail_msg("history of the dependent: %s", types);
    free(types);
}

#define T(f) cmocka_unit_test_setup_teardown(f, lc_setup, lc_teardown)
static const struct CMUnitTest tests[] = {
    T(a_dependent_runs_only_after_all_its_dependencies_completed),
    T(a_dependency_that_finished_before_the_enqueue_counts_at_once),
    T(a_dependency_known_only_from_its_events_counts_too),
    T(a_failed_dependency_cancels_the_dependent_and_its_dependents),
    T(a_dependent_that_runs_on_failure_is_queued_after_a_failed_dependency),
    T(enqueueing_a_dependent_twice_stores_it_once),
    T(four_finishers_at_the_same_moment_release_the_dependent_exactly_once),
    T(a_dependent_enqueued_while_its_dependency_finishes_is_never_stuck),
    T(a_real_worker_runs_the_dependent_after_its_dependency),
};

NAQ_TEST_MAIN(tests)
