/*
 * test_lifecycle.c - a job's life in a worker (issue 3, and the graceful
 * stop of issue 4), against a real nats-server: retries and their delays
 * (the backoff itself is test_retry.c's), retry_on / skip_on, dead letters,
 * results, timeouts, TTL, cancellation, and stopping with a grace period.
 *
 * What a history looks like, as these tests define it (registry events
 * worker_assigned / worker_released left out; attempt in parentheses):
 *   enqueued(0) dequeued(1) started(1) failed(1) retry_scheduled(1)
 *   dequeued(2) retry_started(2) started(2) ... completed(N)
 * retry_scheduled carries the attempt that failed and details
 * {"delay_ms", "next_attempt", "reason"}.
 */
#include "worker_support.h"

#include "internal.h"
#include "lifecycle_support.h"

#include "naq/dlq.h"
#include "naq/query.h"
#include "naq/results.h"
#include "worker/worker.h"

/* ---- handlers ---- */

static atomic_int calls;
static atomic_int saw_cancel;

static void reset_counters(void)
{
    atomic_store(&calls, 0);
    atomic_store(&saw_cancel, 0);
}

static json_t *args_of(const naq_job *job)
{
    json_t *a = json_loads(job->args_json, JSON_DECODE_ANY, NULL);
    assert_non_null(a);
    return a;
}

/* args [n, "Type"]: attempts 1..n fail with error type Type, later ones
 * succeed with result {"attempt": N}. */
static naq_status flaky_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)user;
    atomic_fetch_add(&calls, 1);
    json_t *a = args_of(job);
    int fails = (int)json_integer_value(json_array_get(a, 0));
    const char *type = json_string_value(json_array_get(a, 1));
    naq_status s = NAQ_OK;
    if (job->attempt <= fails) {
        naq_job_ctx_fail(ctx, type ? type : "ValueError", "attempt %d fails", job->attempt);
        s = NAQ_ERR_HANDLER;
    } else {
        char result[64];
        snprintf(result, sizeof result, "{\"attempt\": %d}", job->attempt);
        s = naq_job_ctx_set_result(ctx, result);
    }
    json_decref(a);
    return s;
}

/* args [ms]: sleeps, stopping (failed) when cancelled. */
static naq_status sleep_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)user;
    atomic_fetch_add(&calls, 1);
    json_t *a = args_of(job);
    int64_t end = mono_ms() + json_integer_value(json_array_get(a, 0));
    json_decref(a);
    while (mono_ms() < end) {
        if (naq_job_ctx_cancelled(ctx)) {
            atomic_fetch_add(&saw_cancel, 1);
            naq_job_ctx_fail(ctx, "Cancelled", "stopped early");
            return NAQ_ERR_HANDLER;
        }
        sleep_ms(10);
    }
    return NAQ_OK;
}

/* args [ms]: sleeps, ignoring cancellation (the hard limit of C handlers). */
static naq_status stubborn_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    (void)user;
    atomic_fetch_add(&calls, 1);
    json_t *a = args_of(job);
    sleep_ms((int)json_integer_value(json_array_get(a, 0)));
    json_decref(a);
    return NAQ_OK;
}

static naq_status count_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    (void)job;
    (void)user;
    atomic_fetch_add(&calls, 1);
    return NAQ_OK;
}

static naq_worker *make_worker_opts(naq_client *c, const char *queue, int concurrency,
                                    int64_t grace_ms)
{
    const char *queues[] = {queue, NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    wo.concurrency = concurrency;
    wo.grace_ms = grace_ms;
    naq_worker *w = NULL;
    if (naq_worker_create(c, &wo, &w) != NAQ_OK)
        fail_msg("worker: %s", naq_last_error());
    assert_int_equal(naq_worker_register(w, "flaky", flaky_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "sleep", sleep_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "stubborn", stubborn_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "count", count_handler, NULL), NAQ_OK);
    return w;
}

static naq_worker *make_worker(naq_client *c, const char *queue)
{
    return make_worker_opts(c, queue, 1, 30000);
}

/* Options for a job on `queue` running `function` with `args`, retried
 * max_retries times after a fixed delay. */
static naq_job_opts job(const char *queue, const char *function, const char *args, int max_retries,
                        int64_t delay_ms)
{
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = queue;
    o.function = function;
    o.args_json = args;
    o.max_retries = max_retries;
    o.retry.kind = NAQ_BACKOFF_FIXED;
    o.retry.delay_ms = delay_ms;
    o.retry.jitter = 0;
    return o;
}

static void enqueue_opts(naq_client *c, const naq_job_opts *o, char id[NAQ_ID_SIZE])
{
    if (naq_enqueue(c, o, id) != NAQ_OK)
        fail_msg("enqueue: %s", naq_last_error());
}

/* Asserts the job's history (bookkeeping left out) is exactly `types`
 * with `attempts`. */
static void expect_history(naq_client *c, const char *id, const naq_event_type *types,
                           const int *attempts, size_t n)
{
    naq_event_list l = history(c, id);
    int ok = l.count == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = l.items[i].type == types[i] && l.items[i].attempt == attempts[i];
    naq_event_list_free(&l);
    if (!ok)
        fail_with_history(c, id, "history differs from the expected one");
}

static int count_type(naq_client *c, const char *id, naq_event_type t)
{
    naq_event_list l = history(c, id);
    int n = 0;
    for (size_t i = 0; i < l.count; i++)
        n += l.items[i].type == t;
    naq_event_list_free(&l);
    return n;
}

/* The result record of a finished job (waits for it). */
static json_t *result_of(naq_client *c, const char *id)
{
    char *text = NULL;
    if (naq_job_result(c, id, 10000, &text) != NAQ_OK)
        fail_msg("result of %s: %s", id, naq_last_error());
    json_t *r = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(r);
    return r;
}

static const char *str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "(none)";
}

/* ---- retries ---- */

static void job_failing_twice_then_succeeding_records_every_attempt_in_order(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running r;
    start(fx, &r, make_worker(fx->c, "retry"));
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("retry", "flaky", "[2, \"ValueError\"]", 2, 100);
    enqueue_opts(fx->c, &o, id);
    naq_event done = outcome(fx->c, id, NAQ_EVENT_COMPLETED);
    assert_int_equal(done.attempt, 3);
    naq_event_clear(&done);

    naq_event_type types[] = {
        NAQ_EVENT_ENQUEUED,        NAQ_EVENT_DEQUEUED,        NAQ_EVENT_STARTED,
        NAQ_EVENT_FAILED,          NAQ_EVENT_RETRY_SCHEDULED, NAQ_EVENT_DEQUEUED,
        NAQ_EVENT_RETRY_STARTED,   NAQ_EVENT_STARTED,         NAQ_EVENT_FAILED,
        NAQ_EVENT_RETRY_SCHEDULED, NAQ_EVENT_DEQUEUED,        NAQ_EVENT_RETRY_STARTED,
        NAQ_EVENT_STARTED,         NAQ_EVENT_COMPLETED};
    int attempts[] = {0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3};
    expect_history(fx->c, id, types, attempts, sizeof types / sizeof *types);

    naq_event_list l = history(fx->c, id);
    for (size_t i = 0; i < l.count; i++) {
        const naq_event *e = &l.items[i];
        if (e->type == NAQ_EVENT_FAILED)
            assert_string_equal(e->error_type, "ValueError");
        if (e->type != NAQ_EVENT_RETRY_SCHEDULED)
            continue;
        json_t *d = details(e);
        assert_int_equal(json_integer_value(json_object_get(d, "delay_ms")), 100);
        assert_int_equal(json_integer_value(json_object_get(d, "next_attempt")), e->attempt + 1);
        assert_string_equal(str(d, "reason"), "failed");
        assert_string_equal(e->error_type, "ValueError");
        json_decref(d);
    }
    naq_event_list_free(&l);

    json_t *res = result_of(fx->c, id);
    assert_string_equal(str(res, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(res, "attempt")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "result"), "attempt")),
                     3);
    json_decref(res);
    naq_worker_stats st;
    naq_worker_get_stats(r.w, &st);
    assert_int_equal(st.failed, 2);
    assert_int_equal(st.retried, 2);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.dead_lettered, 0);
    assert_int_equal(atomic_load(&calls), 3);
    stop(&r);
}

static void retry_waits_out_its_delay_on_the_server_with_no_worker_thread_busy(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running r;
    start(fx, &r, make_worker(fx->c, "later"));
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("later", "flaky", "[1]", 1, 1500);
    enqueue_opts(fx->c, &o, id);
    wait_event(fx->c, id, NAQ_EVENT_RETRY_SCHEDULED, 10000);
    /* While the server holds the message, the worker holds nothing. */
    for (int i = 0; i < 20; i++) {
        naq_worker_stats st;
        naq_worker_get_stats(r.w, &st);
        if (atomic_load(&calls) != 1)
            break; /* the retry came: checked below */
        assert_int_equal(st.active, 0);
        sleep_ms(25);
    }
    naq_event done = outcome(fx->c, id, NAQ_EVENT_COMPLETED);
    naq_event_clear(&done);
    naq_event scheduled = outcome(fx->c, id, NAQ_EVENT_RETRY_SCHEDULED);
    naq_event_list l = history(fx->c, id);
    double retried_at = 0;
    for (size_t i = 0; i < l.count; i++)
        if (l.items[i].type == NAQ_EVENT_RETRY_STARTED)
            retried_at = l.items[i].timestamp;
    naq_event_list_free(&l);
    /* The retry did not start before its delay (same process, same clock;
     * 10 ms for the server's timer granularity). */
    double waited_ms = (retried_at - scheduled.timestamp) * 1000.0;
    if (waited_ms < 1490)
        fail_msg("the retry started %.0f ms after it was scheduled with a 1500 ms delay",
                 waited_ms);
    naq_event_clear(&scheduled);
    assert_int_equal(atomic_load(&calls), 2);
    stop(&r);
}

static void skip_on_and_retry_on_decide_which_failures_are_retried(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running r;
    start(fx, &r, make_worker(fx->c, "pick"));
    char skipped[NAQ_ID_SIZE], not_listed[NAQ_ID_SIZE], listed[NAQ_ID_SIZE];
    naq_job_opts o = job("pick", "flaky", "[5, \"ValueError\"]", 2, 0);
    o.retry.skip_on = "ValueError";
    enqueue_opts(fx->c, &o, skipped);
    o.retry.skip_on = NULL;
    o.retry.retry_on = "Timeout,IOError";
    enqueue_opts(fx->c, &o, not_listed);
    o.retry.retry_on = "IOError, ValueError";
    enqueue_opts(fx->c, &o, listed);
    const char *ids[] = {skipped, not_listed, listed};
    int want_runs[] = {1, 1, 3};
    for (int i = 0; i < 3; i++) {
        naq_event e = outcome(fx->c, ids[i], NAQ_EVENT_MAX_RETRIES_EXCEEDED);
        naq_event_clear(&e);
        int runs = count_type(fx->c, ids[i], NAQ_EVENT_STARTED);
        if (runs != want_runs[i])
            fail_with_history(fx->c, ids[i], "wrong number of runs");
    }
    stop(&r);
}

static void exhausted_retries_dead_letter_the_whole_job(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running r;
    start(fx, &r, make_worker(fx->c, "doom"));
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("doom", "flaky", "[99, \"IOError\"]", 1, 50);
    o.tags_json = "{\"team\": \"ops\"}";
    enqueue_opts(fx->c, &o, id);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_MAX_RETRIES_EXCEEDED);
    naq_event_clear(&e);
    naq_event_type types[] = {NAQ_EVENT_ENQUEUED,        NAQ_EVENT_DEQUEUED,
                              NAQ_EVENT_STARTED,         NAQ_EVENT_FAILED,
                              NAQ_EVENT_RETRY_SCHEDULED, NAQ_EVENT_DEQUEUED,
                              NAQ_EVENT_RETRY_STARTED,   NAQ_EVENT_STARTED,
                              NAQ_EVENT_FAILED,          NAQ_EVENT_MAX_RETRIES_EXCEEDED};
    int attempts[] = {0, 1, 1, 1, 1, 2, 2, 2, 2, 2};
    /* max_retries_exceeded is dead-lettering's own event (dlq.c): its
     * attempt is the number of runs. */
    expect_history(fx->c, id, types, attempts, sizeof types / sizeof *types);

    naq_dlq_entry d;
    memset(&d, 0, sizeof d);
    if (naq_dlq_show(fx->c, 0, id, &d) != NAQ_OK)
        fail_msg("dead-letter entry of %s: %s", id, naq_last_error());
    assert_string_equal(d.job_id, id);
    assert_string_equal(d.queue, "doom");
    assert_string_equal(d.function, "flaky");
    assert_string_equal(d.error_type, "IOError");
    assert_int_equal(d.attempts, 2);
    naq_job j;
    assert_int_equal(naq_job_decode(d.job_json, strlen(d.job_json), &j), NAQ_OK);
    assert_string_equal(j.id, id);
    assert_string_equal(j.args_json, "[99,\"IOError\"]");
    assert_int_equal(j.max_retries, 1);
    naq_job_clear(&j);
    naq_dlq_entry_clear(&d);

    json_t *res = result_of(fx->c, id);
    assert_string_equal(str(res, "status"), "failed");
    assert_string_equal(str(res, "error_type"), "IOError");
    assert_int_equal(json_integer_value(json_object_get(res, "attempt")), 2);
    json_decref(res);
    naq_worker_stats st;
    naq_worker_get_stats(r.w, &st);
    assert_int_equal(st.dead_lettered, 1);
    assert_int_equal(st.retried, 1);
    stop(&r);
}

static void completed_exec_job_stores_its_exit_status_and_output_as_its_result(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "res"));
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("res", "exec", "[\"sh\", \"-c\", \"echo done\"]", 0, 0);
    enqueue_opts(fx->c, &o, id);
    json_t *res = result_of(fx->c, id);
    assert_string_equal(str(res, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(res, "exit_status")), 0);
    assert_string_equal(str(res, "stdout_tail"), "done\n");
    assert_int_equal(json_integer_value(json_object_get(res, "attempt")), 1);
    assert_null(json_object_get(res, "error_type"));
    json_decref(res);
    stop(&r);
}

/* ---- timeouts ---- */

static void exec_job_past_its_timeout_logs_timeout_then_failed(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "slow"));
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("slow", "exec", "[\"sleep\", \"30\"]", 0, 0);
    o.timeout_ms = 300;
    enqueue_opts(fx->c, &o, id);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_MAX_RETRIES_EXCEEDED);
    naq_event_clear(&e);
    naq_event_type types[] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_DEQUEUED,
                              NAQ_EVENT_STARTED,  NAQ_EVENT_TIMEOUT,
                              NAQ_EVENT_FAILED,   NAQ_EVENT_MAX_RETRIES_EXCEEDED};
    int attempts[] = {0, 1, 1, 1, 1, 1};
    expect_history(fx->c, id, types, attempts, sizeof types / sizeof *types);
    e = outcome(fx->c, id, NAQ_EVENT_TIMEOUT);
    assert_string_equal(e.error_type, "Timeout");
    assert_true(e.duration_ms < 20000); /* killed, not waited out */
    json_t *d = details(&e);
    assert_int_equal(json_integer_value(json_object_get(d, "timeout_ms")), 300);
    json_decref(d);
    naq_event_clear(&e);
    stop(&r);
}

static void
c_handler_ignoring_its_timeout_keeps_its_message_and_logs_timeout_when_it_returns(void **state)
{
    fixture *fx = *state;
    reset_counters();
    naq_config cfg;
    naq_test_config(&fx->srv, &cfg);
    cfg.ack_wait_ms = 1000; /* the handler outlives two ack waits */
    naq_client *c = NULL;
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_OK);
    running a, b;
    start(fx, &a, make_worker(c, "stuck"));
    start(fx, &b, make_worker(c, "stuck")); /* would take a redelivery */
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("stuck", "stubborn", "[2500]", 0, 0);
    o.timeout_ms = 200;
    enqueue_opts(c, &o, id);
    naq_event e = outcome(c, id, NAQ_EVENT_TIMEOUT);
    assert_true(e.duration_ms >= 2500); /* logged when it returned */
    assert_string_equal(e.error_type, "Timeout");
    naq_event_clear(&e);
    wait_event(c, id, NAQ_EVENT_MAX_RETRIES_EXCEEDED, 10000);
    sleep_ms(1200); /* a redelivery would have started by now */
    assert_int_equal(atomic_load(&calls), 1);
    assert_int_equal(count_type(c, id, NAQ_EVENT_STARTED), 1);
    assert_int_equal(count_type(c, id, NAQ_EVENT_COMPLETED), 0);
    stop(&a);
    stop(&b);
    naq_client_destroy(c);
}

/* ---- TTL and cancellation ---- */

static void job_not_started_within_its_ttl_never_runs(void **state)
{
    fixture *fx = *state;
    reset_counters();
    char old[NAQ_ID_SIZE], fresh[NAQ_ID_SIZE];
    naq_job_opts o = job("ttl", "count", NULL, 3, 0);
    o.ttl_ms = 200;
    enqueue_opts(fx->c, &o, old);
    sleep_ms(500); /* no worker yet: it waits past its TTL */
    o.ttl_ms = 60000;
    enqueue_opts(fx->c, &o, fresh);
    running r;
    start(fx, &r, make_worker(fx->c, "ttl"));
    naq_event e = outcome(fx->c, old, NAQ_EVENT_TTL_EXPIRED);
    assert_string_equal(e.error_type, "TtlExpired");
    json_t *d = details(&e);
    assert_int_equal(json_integer_value(json_object_get(d, "ttl_ms")), 200);
    assert_true(json_number_value(json_object_get(d, "waited_ms")) >= 200);
    json_decref(d);
    naq_event_clear(&e);
    wait_event(fx->c, fresh, NAQ_EVENT_COMPLETED, 10000);
    assert_int_equal(atomic_load(&calls), 1); /* the fresh one only */
    assert_int_equal(count_type(fx->c, old, NAQ_EVENT_STARTED), 0);
    json_t *res = result_of(fx->c, old);
    assert_string_equal(str(res, "status"), "failed");
    assert_string_equal(str(res, "error_type"), "TtlExpired");
    json_decref(res);
    naq_worker_stats st;
    naq_worker_get_stats(r.w, &st);
    assert_int_equal(st.expired, 1);
    stop(&r);
}

static void cancelled_queued_job_never_runs(void **state)
{
    fixture *fx = *state;
    reset_counters();
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("cq", "count", NULL, 3, 0);
    enqueue_opts(fx->c, &o, id);
    /* naq_job_cancel knows a job by its events: let "enqueued" land. */
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    naq_cancel_outcome how;
    if (naq_job_cancel(fx->c, id, &how) != NAQ_OK)
        fail_msg("cancel: %s", naq_last_error());
    assert_int_equal(how, NAQ_CANCEL_REQUESTED);
    running r;
    start(fx, &r, make_worker(fx->c, "cq"));
    naq_event e = outcome(fx->c, id, NAQ_EVENT_CANCELLED);
    json_t *d = details(&e);
    assert_string_equal(str(d, "while"), "queued");
    json_decref(d);
    naq_event_clear(&e);
    json_t *res = result_of(fx->c, id);
    assert_string_equal(str(res, "status"), "cancelled");
    json_decref(res);
    assert_int_equal(atomic_load(&calls), 0);
    assert_int_equal(count_type(fx->c, id, NAQ_EVENT_STARTED), 0);
    stop(&r);
}

static void cancelling_a_running_exec_job_kills_it_and_logs_cancelled_not_failed(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "cr"));
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("cr", "exec", "[\"sleep\", \"30\"]", 3, 0);
    enqueue_opts(fx->c, &o, id);
    wait_event(fx->c, id, NAQ_EVENT_STARTED, 10000);
    sleep_ms(100); /* the command is running */
    if (naq_job_cancel(fx->c, id, NULL) != NAQ_OK)
        fail_msg("cancel: %s", naq_last_error());
    naq_event e = outcome(fx->c, id, NAQ_EVENT_CANCELLED);
    json_t *d = details(&e);
    assert_string_equal(str(d, "while"), "running");
    json_decref(d);
    assert_true(e.duration_ms < 20000); /* killed, not waited out */
    assert_int_equal(e.attempt, 1);
    naq_event_clear(&e);
    sleep_ms(300); /* a retry would have been scheduled by now */
    assert_int_equal(count_type(fx->c, id, NAQ_EVENT_FAILED), 0);
    assert_int_equal(count_type(fx->c, id, NAQ_EVENT_RETRY_SCHEDULED), 0);
    assert_int_equal(count_type(fx->c, id, NAQ_EVENT_STARTED), 1);
    json_t *res = result_of(fx->c, id);
    assert_string_equal(str(res, "status"), "cancelled");
    json_decref(res);
    stop(&r);
}

/* ---- stopping ---- */

/* The worker_stopped event of worker_id (waited for), as a copy. */
static naq_event worker_stopped(naq_client *c, const char *worker_id)
{
    naq_query q;
    memset(&q, 0, sizeof q);
    q.filter.worker = worker_id;
    q.filter.type = "worker_stopped";
    int64_t deadline = mono_ms() + 10000;
    for (;;) {
        naq_event_list l;
        if (naq_events_list(c, &q, &l, NULL) == NAQ_OK && l.count > 0) {
            naq_event e;
            naq_event_init(&e, NAQ_EVENT_WORKER_STOPPED);
            assert_int_equal(naq_event_copy(&e, &l.items[l.count - 1]), NAQ_OK);
            naq_event_list_free(&l);
            return e;
        }
        naq_event_list_free(&l);
        if (mono_ms() > deadline)
            fail_msg("no worker_stopped for %s", worker_id);
        sleep_ms(50);
    }
}

static void
first_stop_hands_back_after_the_grace_period_and_another_worker_completes_the_job(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running a;
    naq_worker *wa = make_worker_opts(fx->c, "grace", 1, 500);
    char worker_a[NAQ_ID_SIZE];
    snprintf(worker_a, sizeof worker_a, "%s", naq_worker_id(wa));
    start(fx, &a, wa);
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("grace", "sleep", "[30000]", 0, 0);
    enqueue_opts(fx->c, &o, id);
    wait_event(fx->c, id, NAQ_EVENT_STARTED, 10000);
    assert_int_equal(finish(&a), NAQ_OK); /* one stop; returns after the hand-back */
    assert_int_equal(atomic_load(&saw_cancel), 1);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_RETRY_SCHEDULED);
    assert_string_equal(e.error_type, "WorkerStopped");
    assert_string_equal(e.worker_id, worker_a);
    naq_event_clear(&e);

    running b;
    naq_worker *wb = make_worker(fx->c, "grace");
    assert_int_equal(naq_worker_register(wb, "sleep", count_handler, NULL), NAQ_OK);
    start(fx, &b, wb);
    e = outcome(fx->c, id, NAQ_EVENT_COMPLETED);
    assert_int_equal(e.attempt, 2);
    naq_event_clear(&e);
    /* Attempt 1 has no outcome of its own: it was handed back, not failed. */
    assert_int_equal(count_type(fx->c, id, NAQ_EVENT_FAILED), 0);
    stop(&b);

    e = worker_stopped(fx->c, worker_a);
    json_t *d = details(&e);
    assert_string_equal(str(d, "how"), "graceful");
    assert_int_equal(json_integer_value(json_object_get(d, "handed_back")), 1);
    json_decref(d);
    naq_event_clear(&e);
}

/* The sequence of the last job message queued on `queue` (normal
 * priority), read back from the job stream. */
static uint64_t last_queued_seq(fixture *fx, const char *queue)
{
    char subject[NAQ_URL_MAX];
    assert_int_equal(
        naq__subject(fx->c, subject, sizeof subject, "queue.%s.%d", queue, NAQ_PRIORITY_NORMAL),
        NAQ_OK);
    natsMsg *m = NULL;
    natsStatus ns = js_GetLastMsg(&m, fx->c->js, fx->c->cfg.job_stream, subject, NULL, NULL);
    if (ns != NATS_OK)
        fail_msg("last message on %s: %s", subject, natsStatus_GetText(ns));
    uint64_t seq = natsMsg_GetSequence(m);
    natsMsg_Destroy(m);
    return seq;
}

static int job_stream_is_empty(void *ud)
{
    fixture *fx = ud;
    jsStreamInfo *si = NULL;
    int empty = js_GetStreamInfo(&si, fx->c->js, fx->c->cfg.job_stream, NULL, NULL) == NATS_OK &&
                si->State.Msgs == 0;
    jsStreamInfo_Destroy(si);
    return empty;
}

/* A run ended and its record was stored, but the ack was lost or came after
 * the ack wait: the message comes again. The worker that gets it sees its
 * own message named in the record, acks it and does not run it a second
 * time. A record naming another message (an earlier run of the job, say
 * one retried from the dead-letter queue) does not stop a run. The lost
 * ack is made here by handing both jobs back at a stop after their records
 * were written. */
static void a_message_delivered_again_after_its_run_was_recorded_is_acked_not_run(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running a;
    start(fx, &a, make_worker_opts(fx->c, "again", 2, 100));
    char ran[NAQ_ID_SIZE], other[NAQ_ID_SIZE];
    naq_job_opts o = job("again", "sleep", "[30000]", 0, 0);
    enqueue_opts(fx->c, &o, ran);
    wait_event(fx->c, ran, NAQ_EVENT_STARTED, 10000);
    uint64_t ran_seq = last_queued_seq(fx, "again");
    enqueue_opts(fx->c, &o, other);
    wait_event(fx->c, other, NAQ_EVENT_STARTED, 10000);
    assert_true(last_queued_seq(fx, "again") > ran_seq);
    lc_finish_message(fx->c, ran, ran_seq, 1);
    lc_finish_message(fx->c, other, ran_seq, 1); /* not its message */
    assert_int_equal(finish(&a), NAQ_OK);        /* both handed back */

    atomic_store(&calls, 0);
    running b;
    naq_worker *wb = make_worker(fx->c, "again");
    assert_int_equal(naq_worker_register(wb, "sleep", count_handler, NULL), NAQ_OK);
    start(fx, &b, wb);
    naq_event e = outcome(fx->c, other, NAQ_EVENT_COMPLETED);
    assert_int_equal(e.attempt, 2);
    naq_event_clear(&e);
    if (!naq_test_wait_for(job_stream_is_empty, fx, 10000))
        fail_msg("the message of job %s was not acknowledged", ran);
    stop(&b);
    assert_int_equal(atomic_load(&calls), 1);
    assert_int_equal(count_type(fx->c, ran, NAQ_EVENT_STARTED), 1);
    assert_int_equal(count_type(fx->c, other, NAQ_EVENT_STARTED), 2);
}

/* The worker_error events of worker_id that report job id's outcome as
 * unconfirmed (FinishFailed, naming the job). */
static int finish_failures_naming(naq_client *c, const char *worker_id, const char *id)
{
    naq_query q;
    memset(&q, 0, sizeof q);
    q.filter.worker = worker_id;
    q.filter.type = "worker_error";
    naq_event_list l;
    assert_int_equal(naq_events_list(c, &q, &l, NULL), NAQ_OK);
    int named = 0;
    for (size_t i = 0; i < l.count; i++)
        named += l.items[i].error_type != NULL &&
                 strcmp(l.items[i].error_type, "FinishFailed") == 0 &&
                 l.items[i].error_message != NULL && strstr(l.items[i].error_message, id) != NULL;
    naq_event_list_free(&l);
    return named;
}

/* An outcome the server stored but did not confirm in time (its reply
 * lost in an outage): the worker gives up on the settlement, says so in a
 * worker_error naming the job, and naks it. The redelivery finds the
 * record and acks without a run, so the history ends in the outcome and
 * holds no verdict that did not come true ("the job will run again"). */
static void an_outcome_stored_but_not_confirmed_stands_and_the_job_does_not_run_again(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running a;
    naq_worker *w = make_worker(fx->c, "unconfirmed");
    char worker_id[NAQ_ID_SIZE];
    snprintf(worker_id, sizeof worker_id, "%s", naq_worker_id(w));
    atomic_store(&naq__worker_unconfirm_next, 1);
    start(fx, &a, w);
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("unconfirmed", "count", NULL, 0, 0);
    enqueue_opts(fx->c, &o, id);
    wait_event(fx->c, id, NAQ_EVENT_COMPLETED, 10000);
    if (!naq_test_wait_for(job_stream_is_empty, fx, 15000)) /* nak 2 s, then the ack */
        fail_msg("the message of job %s was not acknowledged", id);
    stop(&a);
    assert_int_equal(atomic_load(&naq__worker_unconfirm_next), 0);
    assert_int_equal(atomic_load(&calls), 1);
    naq_event_type types[] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_DEQUEUED, NAQ_EVENT_STARTED,
                              NAQ_EVENT_COMPLETED};
    int attempts[] = {0, 1, 1, 1};
    expect_history(fx->c, id, types, attempts, 4);
    assert_int_equal(finish_failures_naming(fx->c, worker_id, id), 1);
}

/* nats.c's MaxWait is not used for outcome records (finish.c): the
 * finisher keeps the deadline itself. A record the server never answers
 * (here a plain subscriber takes it while the outcome stream is gone) is
 * given up after it, the worker says so naming the job and naks it, and
 * the redelivery runs it again once the stream is back. */
static void an_outcome_record_never_answered_hands_the_job_back_after_the_deadline(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running a;
    naq_worker *w = make_worker(fx->c, "unanswered");
    char worker_id[NAQ_ID_SIZE];
    snprintf(worker_id, sizeof worker_id, "%s", naq_worker_id(w));
    start(fx, &a, w);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    natsSubscription *hole = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, fx->srv.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(js_GetStreamInfo(&si, js, "NAQ_OUTCOMES", NULL, NULL), NATS_OK);
    assert_int_equal(js_DeleteStream(js, "NAQ_OUTCOMES", NULL, NULL), NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&hole, nc, "naq.outcome.>"), NATS_OK);
    assert_int_equal(natsConnection_Flush(nc), NATS_OK);

    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("unanswered", "count", NULL, 0, 0);
    enqueue_opts(fx->c, &o, id);
    natsMsg *m = NULL;
    assert_int_equal(natsSubscription_NextMsg(&m, hole, 10000), NATS_OK); /* its record */
    natsMsg_Destroy(m);
    int named = 0;
    for (int64_t until = mono_ms() + 15000; named == 0 && mono_ms() < until;) {
        naq__sleep_ms(200);
        named = finish_failures_naming(fx->c, worker_id, id);
    }
    assert_int_equal(named, 1);
    assert_int_equal(atomic_load(&calls), 1);

    natsSubscription_Destroy(hole);
    assert_int_equal(js_AddStream(NULL, js, si->Config, NULL, NULL), NATS_OK);
    if (!naq_test_wait_for(job_stream_is_empty, fx, 15000)) /* nak 2 s, the run, the ack */
        fail_msg("the message of job %s was not acknowledged", id);
    stop(&a);
    assert_int_equal(atomic_load(&calls), 2);
    char *record = NULL;
    assert_int_equal(naq_job_result(fx->c, id, 0, &record), NAQ_OK);
    assert_non_null(strstr(record, "\"status\":\"completed\""));
    free(record);
    assert_int_equal(count_type(fx->c, id, NAQ_EVENT_STARTED), 2);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}
static void
a_job_that_finishes_within_the_grace_period_completes_and_nothing_is_handed_back(void **state)
{
    fixture *fx = *state;
    running a;
    naq_worker *w = make_worker_opts(fx->c, "calm", 1, 10000);
    char worker_id[NAQ_ID_SIZE];
    snprintf(worker_id, sizeof worker_id, "%s", naq_worker_id(w));
    start(fx, &a, w);
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("calm", "sleep", "[600]", 0, 0);
    enqueue_opts(fx->c, &o, id);
    wait_event(fx->c, id, NAQ_EVENT_STARTED, 10000);
    assert_int_equal(finish(&a), NAQ_OK);
    wait_event(fx->c, id, NAQ_EVENT_COMPLETED, 5000);
    assert_int_equal(count_type(fx->c, id, NAQ_EVENT_RETRY_SCHEDULED), 0);
    naq_event e = worker_stopped(fx->c, worker_id);
    json_t *d = details(&e);
    assert_string_equal(str(d, "how"), "graceful");
    assert_int_equal(json_integer_value(json_object_get(d, "handed_back")), 0);
    json_decref(d);
    naq_event_clear(&e);
}

static void second_stop_hands_back_at_once_and_worker_stopped_says_forced(void **state)
{
    fixture *fx = *state;
    running a;
    naq_worker *w = make_worker_opts(fx->c, "hard", 2, 60000);
    char worker_id[NAQ_ID_SIZE];
    snprintf(worker_id, sizeof worker_id, "%s", naq_worker_id(w));
    start(fx, &a, w);
    char ids[2][NAQ_ID_SIZE];
    naq_job_opts o = job("hard", "sleep", "[30000]", 0, 0);
    enqueue_opts(fx->c, &o, ids[0]);
    enqueue_opts(fx->c, &o, ids[1]);
    wait_event(fx->c, ids[0], NAQ_EVENT_STARTED, 10000);
    wait_event(fx->c, ids[1], NAQ_EVENT_STARTED, 10000);
    naq_worker_stop(w);
    int64_t t0 = mono_ms();
    assert_int_equal(finish(&a), NAQ_OK); /* the second stop */
    if (mono_ms() - t0 > 10000)           /* not the 60 s grace */
        fail_msg("a forced stop took %lld ms", (long long)(mono_ms() - t0));
    for (int i = 0; i < 2; i++)
        wait_event(fx->c, ids[i], NAQ_EVENT_RETRY_SCHEDULED, 5000);
    naq_event e = worker_stopped(fx->c, worker_id);
    json_t *d = details(&e);
    assert_string_equal(str(d, "how"), "forced");
    assert_int_equal(json_integer_value(json_object_get(d, "handed_back")), 2);
    json_decref(d);
    naq_event_clear(&e);
}

/* ---- installations sharing a server ---- */

/* A client of another installation: its own subject prefix and streams. */
static naq_client *connect_installation(fixture *fx, const char *prefix, const char *streams)
{
    naq_config cfg;
    naq_test_config(&fx->srv, &cfg);
    snprintf(cfg.subject_prefix, sizeof cfg.subject_prefix, "%s", prefix);
    if (streams != NULL) {
        snprintf(cfg.event_stream, sizeof cfg.event_stream, "%s_EVENTS", streams);
        snprintf(cfg.job_stream, sizeof cfg.job_stream, "%s_JOBS", streams);
        snprintf(cfg.dlq_stream, sizeof cfg.dlq_stream, "%s_DLQ", streams);
    }
    naq_client *c = NULL;
    naq_status s = naq_client_connect(&cfg, &c);
    return s == NAQ_OK ? c : NULL;
}

static void installations_with_other_prefixes_run_their_jobs_side_by_side(void **state)
{
    /* The outcome record and the delayed retry live in streams named after
     * the prefix (NAQ_OUTCOMES_other, NAQ_DELAYED_other): with one
     * NAQ_OUTCOMES for both, the second installation's jobs never
     * finished (FinishFailed, run again and again). */
    fixture *fx = *state;
    reset_counters();
    naq_client *other = connect_installation(fx, "other", "OTHER");
    if (other == NULL)
        fail_msg("second installation: %s", naq_last_error());
    running mine, theirs;
    start(fx, &mine, make_worker(fx->c, "shared"));
    start(fx, &theirs, make_worker(other, "shared"));
    char id_mine[NAQ_ID_SIZE], id_theirs[NAQ_ID_SIZE];
    naq_job_opts o = job("shared", "flaky", "[1, \"ValueError\"]", 1, 100);
    enqueue_opts(fx->c, &o, id_mine);
    enqueue_opts(other, &o, id_theirs);
    json_t *r1 = result_of(fx->c, id_mine);
    json_t *r2 = result_of(other, id_theirs);
    assert_string_equal(str(r1, "status"), "completed");
    assert_string_equal(str(r2, "status"), "completed");
    json_decref(r1);
    json_decref(r2);
    /* Each saw its own job only: two attempts each. */
    assert_int_equal(atomic_load(&calls), 4);
    char *text = NULL;
    assert_int_equal(naq_job_result(other, id_mine, 0, &text), NAQ_ERR_NOT_FOUND);
    stop(&theirs);
    stop(&mine);
    naq_client_destroy(other);

    /* A prefix of its own with the first installation's streams would take
     * them over: refused, saying why and what to do. */
    assert_null(connect_installation(fx, "third", NULL));
    assert_non_null(strstr(naq_last_error(), "another naq installation"));
    assert_non_null(strstr(naq_last_error(), "NATS account"));
    assert_non_null(strstr(naq_last_error(), "set NAQ_NATS_STREAM_NAME"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
static const struct CMUnitTest tests[] = {
    T(job_failing_twice_then_succeeding_records_every_attempt_in_order),
    T(retry_waits_out_its_delay_on_the_server_with_no_worker_thread_busy),
    T(skip_on_and_retry_on_decide_which_failures_are_retried),
    T(exhausted_retries_dead_letter_the_whole_job),
    T(completed_exec_job_stores_its_exit_status_and_output_as_its_result),
    T(exec_job_past_its_timeout_logs_timeout_then_failed),
    T(c_handler_ignoring_its_timeout_keeps_its_message_and_logs_timeout_when_it_returns),
    T(job_not_started_within_its_ttl_never_runs),
    T(cancelled_queued_job_never_runs),
    T(cancelling_a_running_exec_job_kills_it_and_logs_cancelled_not_failed),
    T(first_stop_hands_back_after_the_grace_period_and_another_worker_completes_the_job),
    T(a_message_delivered_again_after_its_run_was_recorded_is_acked_not_run),
    T(an_outcome_stored_but_not_confirmed_stands_and_the_job_does_not_run_again),
    T(an_outcome_record_never_answered_hands_the_job_back_after_the_deadline),
    T(a_job_that_finishes_within_the_grace_period_completes_and_nothing_is_handed_back),
    T(second_stop_hands_back_at_once_and_worker_stopped_says_forced),
    T(installations_with_other_prefixes_run_their_jobs_side_by_side),
};

NAQ_TEST_MAIN(tests)
