/*
 * test_cancel.c - cancelling jobs (naq_job_cancel, the worker's side
 * naq__cancel_requested / naq__cancel_watch_*, `naq job cancel`), against
 * a real nats-server: a queued job's request is seen by the check and by
 * the watch; a job waiting for dependencies and a delayed job are
 * cancelled at once and logged; finished and unknown jobs are refused.
 */
#include "lifecycle_support.h"

#include "naq/schedule.h"

static void cancel(lc_fixture *fx, const char *id, naq_cancel_outcome want)
{
    naq_cancel_outcome how = (naq_cancel_outcome)-1;
    naq_status s = naq_job_cancel(fx->c, id, &how);
    if (s != NAQ_OK)
        fail_msg("cancel %s: %s", id, naq_last_error());
    assert_int_equal(how, want);
}

static void a_queued_job_s_cancel_request_is_seen_by_the_worker_s_check(void **state)
{
    lc_fixture *fx = *state;
    char a[NAQ_ID_SIZE], b[NAQ_ID_SIZE];
    naq_job_opts o = lc_job("q", NULL);
    lc_enqueue(fx, &o, a);
    lc_enqueue(fx, &o, b);
    assert_int_equal(naq__cancel_requested(fx->c, a), 0);
    cancel(fx, a, NAQ_CANCEL_REQUESTED);
    assert_int_equal(naq__cancel_requested(fx->c, a), 1);
    assert_int_equal(naq__cancel_requested(fx->c, b), 0);
    /* The worker logs "cancelled" when it meets the job, not the caller. */
    assert_events(fx, a, "enqueued");
    assert_int_equal(lc_queued(fx), 2);
}

typedef struct {
    pthread_mutex_t lock;
    char seen[8][NAQ_ID_SIZE];
    int n;
} seen_list;

static void on_cancel(const char *job_id, void *ud)
{
    seen_list *l = ud;
    pthread_mutex_lock(&l->lock);
    if (l->n < 8)
        snprintf(l->seen[l->n++], NAQ_ID_SIZE, "%s", job_id);
    pthread_mutex_unlock(&l->lock);
}

static int seen_two(void *ud)
{
    seen_list *l = ud;
    pthread_mutex_lock(&l->lock);
    int n = l->n;
    pthread_mutex_unlock(&l->lock);
    return n >= 3;
}

static void the_watch_knows_the_cancellations_made_before_it_and_follows_new_ones(void **state)
{
    lc_fixture *fx = *state;
    char before[NAQ_ID_SIZE], x[NAQ_ID_SIZE], y[NAQ_ID_SIZE];
    naq_job_opts o = lc_job("q", NULL);
    lc_enqueue(fx, &o, before);
    lc_enqueue(fx, &o, x);
    lc_enqueue(fx, &o, y);
    cancel(fx, before, NAQ_CANCEL_REQUESTED);

    seen_list l = {.n = 0};
    pthread_mutex_init(&l.lock, NULL);
    naq__cancel_watch *w = NULL;
    assert_int_equal(naq__cancel_watch_start(fx->c, on_cancel, &l, &w), NAQ_OK);
    /* In memory once start returns: no read per job. */
    assert_true(naq__cancel_watch_has(w, before));
    assert_false(naq__cancel_watch_has(w, x));
    cancel(fx, x, NAQ_CANCEL_REQUESTED);
    cancel(fx, y, NAQ_CANCEL_REQUESTED);
    int got = naq_test_wait_for(seen_two, &l, 5000);
    naq__cancel_watch_stop(w);
    if (!got)
        fail_msg("the watch saw %d cancellations", l.n);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.seen[0], before);
    assert_string_equal(l.seen[1], x);
    assert_string_equal(l.seen[2], y);

    /* After stop, no callback runs. */
    char z[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, z);
    cancel(fx, z, NAQ_CANCEL_REQUESTED);
    lc_sleep_ms(200);
    assert_int_equal(l.n, 3);
    pthread_mutex_destroy(&l.lock);
}

static void a_job_waiting_for_dependencies_is_cancelled_at_once(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = lc_job("q", "waiter");
    const char *deps[] = {"slow", NULL};
    o.depends_on = deps;
    char id[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, id);
    naq_job_opts d = lc_job("q", "after-waiter");
    const char *on_waiter[] = {"waiter", NULL};
    d.depends_on = on_waiter;
    lc_enqueue(fx, &d, id);

    cancel(fx, "waiter", NAQ_CANCEL_DONE);
    assert_events(fx, "waiter", "waiting_for_dependencies,cancelled");
    json_t *det = lc_event_details(fx, "waiter", NAQ_EVENT_CANCELLED);
    assert_string_equal(json_string_value(json_object_get(det, "while")),
                        "waiting_for_dependencies");
    json_decref(det);
    assert_false(lc_kv_has(fx, "naq_deps", "waiter"));
    /* Its dependent goes with it; the dependency finishing later queues
     * nothing. */
    assert_events(fx, "after-waiter", "waiting_for_dependencies,dependency_failed,cancelled");
    lc_finish(fx, "slow", 1);
    assert_int_equal(lc_queued(fx), 0);
    /* Cancelling it again: it is finished now. */
    assert_int_equal(naq_job_cancel(fx->c, "waiter", NULL), NAQ_ERR_CLOSED);
}

static void a_delayed_job_is_cancelled_before_its_time_comes(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = lc_job("q", "later");
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue_in(fx->c, &o, 60000, id), NAQ_OK);
    assert_int_equal(lc_stream_msgs(fx, "NAQ_DELAYED"), 1);
    cancel(fx, "later", NAQ_CANCEL_DONE);
    assert_int_equal(lc_stream_msgs(fx, "NAQ_DELAYED"), 0);
    assert_events(fx, "later", "scheduled,cancelled");
    assert_int_equal(naq__job_finished(fx->c, "later"), -1);
}

static void finished_and_unknown_jobs_cannot_be_cancelled(void **state)
{
    lc_fixture *fx = *state;
    char id[NAQ_ID_SIZE];
    naq_job_opts o = lc_job("q", NULL);
    lc_enqueue(fx, &o, id);
    lc_finish(fx, id, 1);
    assert_int_equal(naq_job_cancel(fx->c, id, NULL), NAQ_ERR_CLOSED);
    if (strstr(naq_last_error(), "already finished") == NULL)
        fail_msg("message: %s", naq_last_error());
    assert_int_equal(naq__cancel_requested(fx->c, id), 0);
    assert_int_equal(naq_job_cancel(fx->c, "ghost", NULL), NAQ_ERR_NOT_FOUND);
    if (strstr(naq_last_error(), "no job ghost") == NULL)
        fail_msg("message: %s", naq_last_error());
    assert_int_equal(naq_job_cancel(fx->c, "a.b", NULL), NAQ_ERR_INVALID_ARG);
}

static void cli_job_cancel_says_what_happened(void **state)
{
    lc_fixture *fx = *state;
    char id[NAQ_ID_SIZE];
    naq_job_opts o = lc_job("q", NULL);
    lc_enqueue(fx, &o, id);
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    char *out = NULL, *err = NULL;
    const char *argv[] = {"job", "cancel", id, NULL};
    assert_int_equal(lc_cli(fx, argv, &out, NULL), 0);
    if (strstr(out, "requested") == NULL)
        fail_msg("stdout: %s", out);
    free(out);
    assert_int_equal(naq__cancel_requested(fx->c, id), 1);
    const char *ghost[] = {"job", "cancel", "ghost", NULL};
    assert_int_equal(lc_cli(fx, ghost, NULL, &err), 1);
    if (strstr(err, "no job ghost") == NULL)
        fail_msg("stderr: %s", err);
    free(err);
    const char *usage[] = {"job", "cancel", NULL};
    assert_int_equal(lc_cli(fx, usage, NULL, NULL), 2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, lc_setup, lc_teardown)
static const struct CMUnitTest tests[] = {
    T(a_queued_job_s_cancel_request_is_seen_by_the_worker_s_check),
    T(the_watch_knows_the_cancellations_made_before_it_and_follows_new_ones),
    T(a_job_waiting_for_dependencies_is_cancelled_at_once),
    T(a_delayed_job_is_cancelled_before_its_time_comes),
    T(finished_and_unknown_jobs_cannot_be_cancelled),
    T(cli_job_cancel_says_what_happened),
};

NAQ_TEST_MAIN(tests)
