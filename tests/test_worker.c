/*
 * test_worker.c - the worker runtime against a real nats-server: the events
 * a job goes through, C handlers and the built-in exec handler, timeouts,
 * concurrency, priorities, in-progress acks, stopping, a worker killed
 * mid-job, and a logger that cannot keep up.
 *
 * Job states are read back through the event store (naq_job_history /
 * naq_job_last_event), as a user would.
 */
#include "worker_support.h"
#include "internal.h" /* naq__enqueued_event: the enqueuer's copy, sent late */

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- handlers ---- */

static atomic_int calls;      /* handler invocations */
static atomic_int saw_cancel; /* handlers that observed cancellation */
static atomic_int order[64];  /* priorities in the order jobs ran */
static atomic_int order_len;

static void reset_counters(void)
{
    atomic_store(&calls, 0);
    atomic_store(&saw_cancel, 0);
    atomic_store(&order_len, 0);
}

/* args [a, b] -> result {"sum": a + b} */
static naq_status add_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)user;
    atomic_fetch_add(&calls, 1);
    json_t *a = json_loads(job->args_json, JSON_DECODE_ANY, NULL);
    char result[64];
    snprintf(result, sizeof result, "{\"sum\": %lld}",
             (long long)(json_integer_value(json_array_get(a, 0)) +
                         json_integer_value(json_array_get(a, 1))));
    json_decref(a);
    return naq_job_ctx_set_result(ctx, result);
}

static naq_status fail_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)job;
    (void)user;
    atomic_fetch_add(&calls, 1);
    naq_job_ctx_fail(ctx, "ValueError", "bad input %d", 7);
    return NAQ_ERR_HANDLER;
}

static naq_status silent_fail_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    (void)job;
    (void)user;
    return NAQ_ERR_IO;
}

/* Sleeps args[0] milliseconds, returning early (failed) when cancelled. */
static naq_status sleep_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)user;
    atomic_fetch_add(&calls, 1);
    json_t *a = json_loads(job->args_json, JSON_DECODE_ANY, NULL);
    int64_t ms = json_integer_value(json_array_get(a, 0));
    json_decref(a);
    int64_t end = mono_ms() + ms;
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

static naq_status order_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    (void)user;
    int i = atomic_fetch_add(&order_len, 1);
    if (i < 64)
        atomic_store(&order[i], job->priority);
    return NAQ_OK;
}

/* When the last job began, on the monotonic clock (ms). */
static atomic_llong began_ms;

static naq_status note_start_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    (void)job;
    (void)user;
    atomic_store(&began_ms, mono_ms());
    atomic_fetch_add(&calls, 1);
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

static naq_worker *make_worker(naq_client *c, const char *queue, int concurrency)
{
    const char *queues[] = {queue, NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    wo.concurrency = concurrency;
    naq_worker *w = NULL;
    naq_status s = naq_worker_create(c, &wo, &w);
    if (s != NAQ_OK)
        fail_msg("worker: %s", naq_last_error());
    assert_int_equal(naq_worker_register(w, "add", add_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "fail", fail_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "silent_fail", silent_fail_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "sleep", sleep_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "order", order_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "count", count_handler, NULL), NAQ_OK);
    return w;
}

static void enqueue(naq_client *c, const char *queue, const char *function, const char *args,
                    int64_t timeout_ms, int priority, char id[NAQ_ID_SIZE])
{
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = queue;
    o.function = function;
    o.args_json = args;
    o.timeout_ms = timeout_ms;
    o.priority = priority;
    naq_status s = naq_enqueue(c, &o, id);
    if (s != NAQ_OK)
        fail_msg("enqueue: %s", naq_last_error());
}

/* Queues a job the way a foreign program might, past naq_enqueue's
 * validation: its JSON published straight to the queue's subject. */
static void publish_raw_job(naq_client *c, const char *queue, const char *function,
                            const char *args, char id[NAQ_ID_SIZE])
{
    naq_job j;
    memset(&j, 0, sizeof j);
    j.version = 1;
    naq_id_new(id);
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.queue, sizeof j.queue, "%s", queue);
    snprintf(j.function, sizeof j.function, "%s", function);
    j.args_json = (char *)args;
    j.priority = NAQ_PRIORITY_NORMAL;
    j.enqueued_at = 1.0;
    naq_retry_policy_init(&j.retry);
    j.result_ttl_ms = NAQ_RESULTS_TTL_MS;
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_job_encode(&j, &json, &len), NAQ_OK);
    char subject[128];
    snprintf(subject, sizeof subject, "naq.queue.%s.%d", queue, NAQ_PRIORITY_NORMAL);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, json, (int)len), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(m, "Nats-Msg-Id", id), NATS_OK);
    jsPubAck *pa = NULL;
    assert_int_equal(js_PublishMsg(&pa, c->js, m, NULL, NULL), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    free(json);
}

/* ---- the tests ---- */

static void c_handler_job_records_enqueued_dequeued_started_completed_in_order(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running r;
    start(fx, &r, make_worker(fx->c, "math", 1));
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, "math", "add", "[1, 2]", 0, NAQ_PRIORITY_NORMAL, id);
    naq_event done = outcome(fx->c, id, NAQ_EVENT_COMPLETED);

    /* Stored in the order the transitions happened (see also
     * history_starts_with_enqueued_even_when_the_enqueuers_event_is_late). */
    naq_event_list l = history(fx->c, id);
    naq_event_type want[] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_DEQUEUED, NAQ_EVENT_STARTED,
                             NAQ_EVENT_COMPLETED};
    assert_int_equal(l.count, 4);
    for (size_t i = 0; i < l.count; i++) {
        const naq_event *e = &l.items[i];
        if (e->type != want[i])
            fail_msg("event %zu is %s, wanted %s", i, naq_event_type_name(e->type),
                     naq_event_type_name(want[i]));
        if (i > 0 && !(l.items[i - 1].timestamp <= e->timestamp))
            fail_msg("%s at %.6f is before %s at %.6f", naq_event_type_name(e->type), e->timestamp,
                     naq_event_type_name(want[i - 1]), l.items[i - 1].timestamp);
        assert_string_equal(e->queue_name, "math");
        if (e->type != NAQ_EVENT_ENQUEUED) {
            assert_string_equal(e->worker_id, naq_worker_id(r.w));
            assert_string_equal(e->worker_type, "c");
            assert_int_equal(e->attempt, 1);
        }
    }
    naq_event_list_free(&l);
    /* The registry's events bracket the run: assigned before started,
     * released before the outcome (so the outcome is the job's last event). */
    l = raw_history(fx->c, id);
    assert_int_equal(l.count, 6);
    assert_int_equal(l.items[2].type, NAQ_EVENT_WORKER_ASSIGNED);
    assert_int_equal(l.items[4].type, NAQ_EVENT_WORKER_RELEASED);
    assert_int_equal(l.items[5].type, NAQ_EVENT_COMPLETED);
    naq_event_list_free(&l);
    assert_true(done.duration_ms >= 0);
    assert_true(done.cpu_time_ms >= 0);
    json_t *d = details(&done);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "result"), "sum")), 3);
    json_decref(d);
    naq_event_clear(&done);

    naq_worker_stats st;
    naq_worker_get_stats(r.w, &st);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.processed, 1);
    assert_int_equal(st.failed, 0);
    assert_int_equal(atomic_load(&calls), 1);
    stop(&r);
}

/* The enqueuer logs "enqueued" only after the server stored the job, and
 * usually from another process, so a fast worker's events could be stored
 * first and the job's state (its last event) would read "enqueued" after
 * it completed. The worker logs the same event first (same event id); the
 * server keeps one copy. Here the enqueuer's copy is held back entirely. */
static void history_starts_with_enqueued_even_when_the_enqueuers_event_is_late(void **state)
{
    fixture *fx = *state;
    naq_config cfg;
    naq_test_config(&fx->srv, &cfg);
    cfg.disable_logging = 1; /* this enqueuer's events never leave */
    naq_client *silent = NULL;
    assert_int_equal(naq_client_connect(&cfg, &silent), NAQ_OK);
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "late";
    o.function = "add";
    o.args_json = "[2, 2]";
    o.tags_json = "{\"team\": \"a\"}";
    o.priority = NAQ_PRIORITY_HIGH;
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(silent, &o, id), NAQ_OK);
    running r;
    start(fx, &r, make_worker(fx->c, "late", 1));
    wait_event(fx->c, id, NAQ_EVENT_COMPLETED, 15000);

    /* Now the enqueuer's own copy arrives, late. */
    naq_job j = {0};
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.queue, sizeof j.queue, "late");
    snprintf(j.function, sizeof j.function, "add");
    j.priority = NAQ_PRIORITY_HIGH;
    j.tags_json = "{\"team\":\"a\"}";
    j.enqueued_at = 1.0;
    naq_event late;
    assert_int_equal(naq__enqueued_event(&j, &late), NAQ_OK);
    assert_int_equal(naq_client_log(fx->c, &late), NAQ_OK);
    naq_event_clear(&late);
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);

    naq_event_list l = history(fx->c, id);
    assert_int_equal(l.count, 4);
    assert_int_equal(l.items[0].type, NAQ_EVENT_ENQUEUED);
    assert_true(l.items[0].timestamp > 1.0); /* the worker's copy, kept */
    json_t *d = details(&l.items[0]);
    assert_string_equal(json_string_value(json_object_get(d, "function")), "add");
    assert_int_equal(json_integer_value(json_object_get(d, "priority")), NAQ_PRIORITY_HIGH);
    json_decref(d);
    assert_non_null(strstr(l.items[0].tags_json, "team"));
    assert_int_equal(l.items[3].type, NAQ_EVENT_COMPLETED);
    naq_event_list_free(&l);
    stop(&r);
    naq_client_destroy(silent);
}

static void handler_failure_records_failed_with_error_type_and_message(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "q", 1));
    char id[NAQ_ID_SIZE], id2[NAQ_ID_SIZE];
    enqueue(fx->c, "q", "fail", NULL, 0, NAQ_PRIORITY_NORMAL, id);
    enqueue(fx->c, "q", "silent_fail", NULL, 0, NAQ_PRIORITY_NORMAL, id2);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_FAILED);
    assert_string_equal(e.error_type, "ValueError");
    assert_string_equal(e.error_message, "bad input 7");
    assert_int_equal(e.attempt, 1);
    assert_true(e.duration_ms >= 0);
    naq_event_clear(&e);
    /* A handler that fails without saying why still gets a reason. */
    e = outcome(fx->c, id2, NAQ_EVENT_FAILED);
    assert_string_equal(e.error_type, "HandlerError");
    assert_contains(e.error_message, "silent_fail");
    naq_event_clear(&e);
    naq_worker_stats st;
    naq_worker_get_stats(r.w, &st);
    assert_int_equal(st.failed, 2);
    stop(&r);
}

static void exec_job_success_records_stdout_tail_and_usage(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "cmds", 1));
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, "cmds", "exec", "{\"argv\": [\"sh\", \"-c\", \"echo hello; echo warn >&2\"]}", 0,
            NAQ_PRIORITY_NORMAL, id);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_COMPLETED);
    json_t *d = details(&e);
    assert_int_equal(json_integer_value(json_object_get(d, "exit_status")), 0);
    assert_string_equal(json_string_value(json_object_get(d, "stdout_tail")), "hello\n");
    assert_string_equal(json_string_value(json_object_get(d, "stderr_tail")), "warn\n");
    json_decref(d);
    assert_true(e.cpu_time_ms >= 0);
    assert_true(e.memory_mb > 0);
    naq_event_clear(&e);
    stop(&r);
}

static void exec_job_gets_its_env_and_cwd_and_accepts_a_bare_argv(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "cmds", 1));
    char id[NAQ_ID_SIZE], id2[NAQ_ID_SIZE];
    enqueue(fx->c, "cmds", "exec",
            "{\"argv\": [\"sh\", \"-c\", \"echo $GREETING; pwd\"], \"env\": {\"GREETING\": "
            "\"hi there\"}, \"cwd\": \"/\"}",
            0, NAQ_PRIORITY_NORMAL, id);
    enqueue(fx->c, "cmds", "exec", "[\"echo\", \"bare\"]", 0, NAQ_PRIORITY_NORMAL, id2);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_COMPLETED);
    json_t *d = details(&e);
    assert_string_equal(json_string_value(json_object_get(d, "stdout_tail")), "hi there\n/\n");
    json_decref(d);
    naq_event_clear(&e);
    e = outcome(fx->c, id2, NAQ_EVENT_COMPLETED);
    d = details(&e);
    assert_string_equal(json_string_value(json_object_get(d, "stdout_tail")), "bare\n");
    json_decref(d);
    naq_event_clear(&e);
    stop(&r);
}

static void exec_job_failure_records_its_exit_status_and_stderr(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "cmds", 1));
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, "cmds", "exec", "[\"sh\", \"-c\", \"echo boom >&2; exit 3\"]", 0,
            NAQ_PRIORITY_NORMAL, id);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_FAILED);
    assert_string_equal(e.error_type, "ExitStatus");
    assert_contains(e.error_message, "command exited with status 3");
    assert_contains(e.error_message, "boom");
    json_t *d = details(&e);
    assert_int_equal(json_integer_value(json_object_get(d, "exit_status")), 3);
    assert_string_equal(json_string_value(json_object_get(d, "stderr_tail")), "boom\n");
    json_decref(d);
    assert_true(e.cpu_time_ms >= 0);
    naq_event_clear(&e);
    stop(&r);
}

static void exec_job_killed_by_a_signal_records_the_signal(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "cmds", 1));
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, "cmds", "exec", "[\"sh\", \"-c\", \"kill -9 $$\"]", 0, NAQ_PRIORITY_NORMAL, id);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_FAILED);
    assert_string_equal(e.error_type, "Signal");
    assert_contains(e.error_message, "signal 9");
    json_t *d = details(&e);
    assert_int_equal(json_integer_value(json_object_get(d, "signal")), 9);
    json_decref(d);
    naq_event_clear(&e);
    stop(&r);
}

static void exec_job_past_its_timeout_is_stopped_and_recorded_as_timeout(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "cmds", 1));
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, "cmds", "exec", "[\"sleep\", \"30\"]", 300, NAQ_PRIORITY_NORMAL, id);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_FAILED);
    assert_string_equal(e.error_type, "Timeout");
    assert_contains(e.error_message, "300 ms");
    assert_true(e.duration_ms < 20000); /* stopped, not waited out */
    naq_event_clear(&e);
    stop(&r);
}

static void exec_job_that_cannot_start_records_exec_error_or_invalid_args(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "cmds", 1));
    char id[NAQ_ID_SIZE], id2[NAQ_ID_SIZE];
    enqueue(fx->c, "cmds", "exec", "[\"/nonexistent/naq-test-cmd\"]", 0, NAQ_PRIORITY_NORMAL, id);
    /* naq_enqueue refuses it (test_job); a foreign program might not. */
    publish_raw_job(fx->c, "cmds", "exec", "{\"argv\": []}", id2);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_FAILED);
    assert_string_equal(e.error_type, "ExecError");
    assert_contains(e.error_message, "/nonexistent/naq-test-cmd");
    naq_event_clear(&e);
    e = outcome(fx->c, id2, NAQ_EVENT_FAILED);
    assert_string_equal(e.error_type, "InvalidArgs");
    assert_contains(e.error_message, "argv");
    naq_event_clear(&e);
    stop(&r);
}

static void unknown_function_fails_with_a_message_saying_how_to_register(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "q", 1));
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, "q", "no_such_function", NULL, 0, NAQ_PRIORITY_NORMAL, id);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_FAILED);
    assert_string_equal(e.error_type, "UnknownFunction");
    assert_contains(e.error_message, "no_such_function");
    assert_contains(e.error_message, "naq_worker_register");
    assert_contains(e.error_message, "exec");
    naq_event_clear(&e);
    stop(&r);
}

static void c_handler_past_its_timeout_sees_cancel_and_is_recorded_as_timeout(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running r;
    start(fx, &r, make_worker(fx->c, "q", 1));
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, "q", "sleep", "[20000]", 200, NAQ_PRIORITY_NORMAL, id);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_FAILED);
    assert_string_equal(e.error_type, "Timeout");
    assert_contains(e.error_message, "200 ms");
    assert_int_equal(atomic_load(&saw_cancel), 1);
    naq_event_clear(&e);
    stop(&r);
}

static void concurrency_4_runs_4_sleeping_jobs_at_once(void **state)
{
    fixture *fx = *state;
    char ids[4][NAQ_ID_SIZE];
    for (int i = 0; i < 4; i++)
        enqueue(fx->c, "par", "sleep", "[800]", 0, NAQ_PRIORITY_NORMAL, ids[i]);
    running r;
    start(fx, &r, make_worker(fx->c, "par", 4));
    double last_start = 0, first_end = 1e300;
    for (int i = 0; i < 4; i++) {
        wait_event(fx->c, ids[i], NAQ_EVENT_COMPLETED, 15000);
        naq_event_list l = history(fx->c, ids[i]);
        for (size_t k = 0; k < l.count; k++) {
            if (l.items[k].type == NAQ_EVENT_STARTED && l.items[k].timestamp > last_start)
                last_start = l.items[k].timestamp;
            if (l.items[k].type == NAQ_EVENT_COMPLETED && l.items[k].timestamp < first_end)
                first_end = l.items[k].timestamp;
        }
        naq_event_list_free(&l);
    }
    /* Every job started before any finished: all four ran together. */
    if (!(last_start < first_end))
        fail_msg("last start %.3f is not before first completion %.3f", last_start, first_end);
    stop(&r);
}

static void waiting_jobs_run_highest_priority_first(void **state)
{
    fixture *fx = *state;
    reset_counters();
    char id[NAQ_ID_SIZE];
    int prios[] = {0, 2, 4, 1, 3, 0, 4, 2, 3, 1};
    for (int i = 0; i < 10; i++)
        enqueue(fx->c, "prio", "order", NULL, 0, prios[i], id);
    running r;
    start(fx, &r, make_worker(fx->c, "prio", 1));
    int64_t deadline = mono_ms() + 15000;
    while (atomic_load(&order_len) < 10 && mono_ms() < deadline)
        sleep_ms(10);
    assert_int_equal(atomic_load(&order_len), 10);
    for (int i = 0; i < 10; i++)
        if (atomic_load(&order[i]) != 4 - i / 2)
            fail_msg("job %d ran at priority %d, wanted %d", i, atomic_load(&order[i]), 4 - i / 2);
    stop(&r);
}

/* Jobs that come one at a time fill a poll that asks beyond the free
 * slots; a job at a higher level waits only for that poll's end
 * (PREFETCH_PULL_MS, worker_pull.c), not for an idle worker's long one. */
static void a_higher_priority_job_overtakes_a_trickle_of_normal_ones(void **state)
{
    fixture *fx = *state;
    reset_counters();
    const char *queues[] = {"trickle", NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    wo.prefetch = 16;
    naq_worker *w = NULL;
    assert_int_equal(naq_worker_create(fx->c, &wo, &w), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "order", order_handler, NULL), NAQ_OK);
    running r;
    start(fx, &r, w);
    char id[NAQ_ID_SIZE];
    for (int i = 0; i < 40; i++) {
        enqueue(fx->c, "trickle", "order", NULL, 0, NAQ_PRIORITY_NORMAL, id);
        sleep_ms(2);
    }
    enqueue(fx->c, "trickle", "order", NULL, 0, NAQ_PRIORITY_CRITICAL, id);
    sleep_ms(300); /* well past a prefetch poll's end, short of an idle poll's */
    for (int i = 0; i < 5; i++)
        enqueue(fx->c, "trickle", "order", NULL, 0, NAQ_PRIORITY_NORMAL, id);
    int64_t deadline = mono_ms() + 15000;
    while (atomic_load(&order_len) < 46 && mono_ms() < deadline)
        sleep_ms(10);
    assert_int_equal(atomic_load(&order_len), 46);
    int at = -1;
    for (int i = 0; i < 46; i++)
        if (atomic_load(&order[i]) == NAQ_PRIORITY_CRITICAL)
            at = i;
    if (at < 0 || at > 40)
        fail_msg("the high-priority job ran as job %d of 46; it should run before the 5 normal "
                 "jobs enqueued 300 ms after it",
                 at + 1);
    stop(&r);
}

/* The job enqueued at one level and the time it took to begin (ms). */
static int64_t time_to_begin(naq_client *c, const char *queue, int priority)
{
    int before = atomic_load(&calls);
    int64_t t0 = mono_ms();
    char id[NAQ_ID_SIZE];
    enqueue(c, queue, "note", NULL, 0, priority, id);
    while (atomic_load(&calls) == before && mono_ms() - t0 < 10000)
        sleep_ms(1);
    assert_int_equal(atomic_load(&calls), before + 1);
    return atomic_load(&began_ms) - t0;
}

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void an_idle_worker_takes_a_job_at_another_level_without_waiting_out_its_poll(void **state)
{
    fixture *fx = *state;
    reset_counters();
    naq_worker *w = make_worker(fx->c, "bells", 1);
    assert_int_equal(naq_worker_register(w, "note", note_start_handler, NULL), NAQ_OK);
    running r;
    start(fx, &r, w);
    /* Each round: a normal job makes the normal level the one the idle
     * worker then polls (for 500 ms); a critical job comes 100 ms into
     * that poll. Without doorbells it waits for the poll to end (about
     * 400 ms every time). */
    int64_t waits[3];
    for (int i = 0; i < 3; i++) {
        time_to_begin(fx->c, "bells", NAQ_PRIORITY_NORMAL);
        sleep_ms(100);
        waits[i] = time_to_begin(fx->c, "bells", NAQ_PRIORITY_CRITICAL);
    }
    qsort(waits, 3, sizeof *waits, cmp_int64);
    if (waits[1] >= 250)
        fail_msg("a critical job waited %lld ms (median of 3) for an idle worker polling the "
                 "normal level; it should not wait for the poll to end",
                 (long long)waits[1]);
    stop(&r);
}

static void in_progress_acks_keep_a_long_job_from_running_twice(void **state)
{
    fixture *fx = *state;
    reset_counters();
    naq_config cfg;
    naq_test_config(&fx->srv, &cfg);
    cfg.ack_wait_ms = 1500;
    naq_client *c = NULL;
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_OK);
    running a, b;
    start(fx, &a, make_worker(c, "long", 1));
    start(fx, &b, make_worker(c, "long", 1));
    char id[NAQ_ID_SIZE];
    /* Runs for more than three ack waits. */
    enqueue(c, "long", "sleep", "[5000]", 0, NAQ_PRIORITY_NORMAL, id);
    wait_event(c, id, NAQ_EVENT_COMPLETED, 20000);
    sleep_ms(2000); /* a redelivery would have started by now */
    assert_int_equal(atomic_load(&calls), 1);
    naq_event_list l = history(c, id);
    int started = 0;
    for (size_t i = 0; i < l.count; i++)
        started += l.items[i].type == NAQ_EVENT_STARTED;
    assert_int_equal(started, 1);
    naq_event_list_free(&l);
    stop(&a);
    stop(&b);
    naq_client_destroy(c);
}

static void stop_lets_the_running_job_finish_then_run_returns(void **state)
{
    fixture *fx = *state;
    running r;
    start(fx, &r, make_worker(fx->c, "q", 1));
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, "q", "sleep", "[700]", 0, NAQ_PRIORITY_NORMAL, id);
    wait_event(fx->c, id, NAQ_EVENT_STARTED, 10000);
    assert_int_equal(finish(&r), NAQ_OK); /* stop, and wait for run to return */
    wait_event(fx->c, id, NAQ_EVENT_COMPLETED, 5000);

    /* An idle worker notices a stop promptly. */
    start(fx, &r, make_worker(fx->c, "q", 3));
    sleep_ms(300);
    int64_t t0 = mono_ms();
    stop(&r);
    int64_t took = mono_ms() - t0;
    if (took > 2000)
        fail_msg("an idle worker took %lld ms to stop", (long long)took);
}

static void second_stop_hands_running_jobs_back_at_once_and_another_worker_runs_them(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running r;
    start(fx, &r, make_worker(fx->c, "q", 1)); /* default grace: 30 s */
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, "q", "sleep", "[30000]", 0, NAQ_PRIORITY_NORMAL, id);
    wait_event(fx->c, id, NAQ_EVENT_STARTED, 10000);
    naq_worker_stop(r.w); /* the second stop (in finish) hands it back now */
    int64_t t0 = mono_ms();
    assert_int_equal(finish(&r), NAQ_OK);
    if (mono_ms() - t0 > 10000)
        fail_msg("a forced stop took %lld ms", (long long)(mono_ms() - t0));
    assert_int_equal(atomic_load(&saw_cancel), 1);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_RETRY_SCHEDULED);
    assert_string_equal(e.error_type, "WorkerStopped");
    json_t *d = details(&e);
    assert_string_equal(json_string_value(json_object_get(d, "reason")), "worker_stopped");
    assert_int_equal(json_integer_value(json_object_get(d, "delay_ms")), 0);
    json_decref(d);
    naq_event_clear(&e);

    /* It went back to the queue at once: the next worker runs it, and the
     * first attempt has no outcome of its own (the handler's "Cancelled"
     * failure after the hand-back is not recorded). */
    running r2;
    naq_worker *w = make_worker(fx->c, "q", 1);
    assert_int_equal(naq_worker_register(w, "sleep", count_handler, NULL), NAQ_OK);
    start(fx, &r2, w);
    e = outcome(fx->c, id, NAQ_EVENT_COMPLETED);
    assert_int_equal(e.attempt, 2);
    naq_event_clear(&e);
    naq_event_list l = history(fx->c, id);
    for (size_t i = 0; i < l.count; i++)
        if (l.items[i].type == NAQ_EVENT_FAILED || l.items[i].type == NAQ_EVENT_COMPLETED)
            assert_int_equal(l.items[i].attempt, 2);
    naq_event_list_free(&l);
    stop(&r2);
}

static void malformed_job_messages_are_terminated_and_recorded(void **state)
{
    fixture *fx = *state;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, fx->srv.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    const char *no_function = "{\"version\":1,\"job_id\":\"broken-1\",\"queue\":\"q\"}";
    assert_int_equal(
        js_Publish(NULL, js, "naq.queue.q.2", no_function, (int)strlen(no_function), NULL, NULL),
        NATS_OK);
    assert_int_equal(js_Publish(NULL, js, "naq.queue.q.2", "garbage", 7, NULL, NULL), NATS_OK);
    running r;
    start(fx, &r, make_worker(fx->c, "q", 1));
    naq_event e = outcome(fx->c, "broken-1", NAQ_EVENT_FAILED);
    assert_string_equal(e.error_type, "MalformedJob");
    assert_contains(e.error_message, "function");
    naq_event_clear(&e);
    /* Both messages are gone from the queue (terminated, never retried). */
    int64_t deadline = mono_ms() + 5000;
    uint64_t left = 1;
    while (left > 0 && mono_ms() < deadline) {
        jsStreamInfo *si = NULL;
        assert_int_equal(js_GetStreamInfo(&si, js, "NAQ_JOBS", NULL, NULL), NATS_OK);
        left = si->State.Msgs;
        jsStreamInfo_Destroy(si);
        sleep_ms(20);
    }
    assert_int_equal(left, 0);
    naq_worker_stats st;
    naq_worker_get_stats(r.w, &st);
    assert_int_equal(st.failed, 2);
    stop(&r);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/*
 * The killed worker runs in a child process that re-executes this test
 * binary: a plain fork() of a process in which nats.c already runs (earlier
 * tests) would leave the child without nats.c's library threads. The
 * constructor below turns such a child into a worker before main() runs.
 */
#define CHILD_URL_ENV "NAQ_TEST_CHILD_WORKER_URL"
#define CHILD_SPOOL_ENV "NAQ_TEST_CHILD_WORKER_SPOOL"

__attribute__((constructor)) static void child_worker(void)
{
    const char *url = getenv(CHILD_URL_ENV);
    const char *spool = getenv(CHILD_SPOOL_ENV);
    if (url == NULL || spool == NULL)
        return;
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%s", url);
    snprintf(cfg.spool_dir, sizeof cfg.spool_dir, "%s", spool);
    cfg.ack_wait_ms = 2000; /* as naq_test_config */
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK) {
        fprintf(stderr, "child worker: %s\n", naq_last_error());
        _exit(2);
    }
    const char *queues[] = {"crash", NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    wo.worker_id = "doomed";
    naq_worker *w = NULL;
    if (naq_worker_create(c, &wo, &w) != NAQ_OK ||
        naq_worker_register(w, "slow", sleep_handler, NULL) != NAQ_OK) {
        fprintf(stderr, "child worker: %s\n", naq_last_error());
        _exit(3);
    }
    naq_worker_run(w);
    _exit(0);
}

static pid_t spawn_child_worker(const naq_test_server *srv)
{
    char url[128], spool[400];
    snprintf(url, sizeof url, CHILD_URL_ENV "=%s", srv->url);
    snprintf(spool, sizeof spool, CHILD_SPOOL_ENV "=%s/child-spool", srv->dir);
    const char *env[] = {url, spool, NULL};
    return naq_test_spawn_self("test_worker", env, NULL);
}

static void killed_workers_job_is_run_again_by_another_worker(void **state)
{
    fixture *fx = *state;
    pid_t pid = spawn_child_worker(&fx->srv);
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, "crash", "slow", "[60000]", 0, NAQ_PRIORITY_NORMAL, id);
    wait_event(fx->c, id, NAQ_EVENT_STARTED, 15000);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));

    /* The test config's ack wait is 2 s: then the server delivers it again. */
    naq_worker *w = make_worker(fx->c, "crash", 1);
    assert_int_equal(naq_worker_register(w, "slow", count_handler, NULL), NAQ_OK);
    running r;
    start(fx, &r, w);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_COMPLETED);
    assert_int_equal(e.attempt, 2);
    assert_string_equal(e.worker_id, naq_worker_id(w));
    naq_event_clear(&e);

    naq_event_list l = history(fx->c, id);
    int started = 0;
    for (size_t i = 0; i < l.count; i++) {
        if (l.items[i].type != NAQ_EVENT_STARTED)
            continue;
        started++;
        assert_int_equal(l.items[i].attempt, started);
        assert_string_equal(l.items[i].worker_id, started == 1 ? "doomed" : naq_worker_id(w));
    }
    assert_int_equal(started, 2);
    naq_event_list_free(&l);
    stop(&r);
}

static void worker_keeps_running_jobs_when_its_logger_buffer_is_full(void **state)
{
    fixture *fx = *state;
    reset_counters();
    naq_config cfg;
    naq_test_config(&fx->srv, &cfg);
    cfg.logger_buffer_events = 1;
    snprintf(cfg.spool_dir, sizeof cfg.spool_dir, "none");
    naq_client *tiny = NULL;
    assert_int_equal(naq_client_connect(&cfg, &tiny), NAQ_OK);
    char id[NAQ_ID_SIZE];
    for (int i = 0; i < 200; i++)
        enqueue(fx->c, "flood", "count", NULL, 0, NAQ_PRIORITY_NORMAL, id);
    running r;
    start(fx, &r, make_worker(tiny, "flood", 2));
    int64_t deadline = mono_ms() + 30000;
    naq_worker_stats st;
    do {
        sleep_ms(20);
        naq_worker_get_stats(r.w, &st);
    } while (st.processed < 200 && mono_ms() < deadline);
    assert_int_equal(atomic_load(&calls), 200);
    assert_int_equal(st.completed, 200);
    stop(&r);

    /* The logger accounts for every event the worker logged. */
    assert_int_equal(naq_client_flush_events(tiny, 10000), NAQ_OK);
    naq_logger_stats ls;
    naq_client_logger_stats(tiny, &ls);
    assert_true(ls.logged >= 3 * 200);
    assert_int_equal(ls.spooled, 0);
    assert_int_equal(ls.published + ls.dropped, ls.logged);
    print_message("logger: logged %llu, published %llu, dropped %llu\n",
                  (unsigned long long)ls.logged, (unsigned long long)ls.published,
                  (unsigned long long)ls.dropped);
    naq_client_destroy(tiny);
}

static void worker_serves_a_queue_whose_name_is_the_longest_allowed(void **state)
{
    fixture *fx = *state;
    char queue[NAQ_ID_SIZE];
    memset(queue, 'q', NAQ_ID_MAX);
    queue[NAQ_ID_MAX] = '\0';
    running r;
    start(fx, &r, make_worker(fx->c, queue, 1));
    char id[NAQ_ID_SIZE];
    enqueue(fx->c, queue, "add", "[20, 22]", 0, NAQ_PRIORITY_LOWEST, id);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_COMPLETED);
    assert_string_equal(e.queue_name, queue);
    naq_event_clear(&e);
    stop(&r);
}

static void worker_create_validates_options_and_defaults_its_id(void **state)
{
    fixture *fx = *state;
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    naq_worker *w = NULL;
    assert_int_equal(naq_worker_create(fx->c, &wo, &w), NAQ_ERR_INVALID_ARG);
    assert_contains(naq_last_error(), "queue");
    const char *bad_queue[] = {"ok", "not.ok", NULL};
    wo.queues = bad_queue;
    assert_int_equal(naq_worker_create(fx->c, &wo, &w), NAQ_ERR_INVALID_ARG);
    assert_contains(naq_last_error(), "not.ok");
    const char *queues[] = {"ok", NULL};
    wo.queues = queues;
    wo.worker_id = "bad id";
    assert_int_equal(naq_worker_create(fx->c, &wo, &w), NAQ_ERR_INVALID_ARG);
    assert_contains(naq_last_error(), "worker id");
    wo.worker_id = NULL;
    wo.concurrency = -1;
    assert_int_equal(naq_worker_create(fx->c, &wo, &w), NAQ_ERR_INVALID_ARG);
    assert_contains(naq_last_error(), "concurrency");
    assert_null(w);

    wo.concurrency = 2;
    assert_int_equal(naq_worker_create(fx->c, &wo, &w), NAQ_OK);
    const char *wid = naq_worker_id(w);
    assert_int_equal(naq_id_validate("worker id", wid), NAQ_OK);
    char pid[32];
    snprintf(pid, sizeof pid, "-%ld-", (long)getpid());
    assert_contains(wid, pid);
    assert_int_equal(strlen(strrchr(wid, '-') + 1), 4);
    assert_int_equal(naq_worker_register(w, "", count_handler, NULL), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_worker_register(w, "x", NULL, NULL), NAQ_ERR_INVALID_ARG);
    naq_worker_destroy(w);
}

/* Enqueues n "count" jobs on queue q in one batch. */
static void enqueue_counts(naq_client *c, const char *q, size_t n)
{
    naq_job_opts *jobs = calloc(n, sizeof *jobs);
    char(*ids)[NAQ_ID_SIZE] = calloc(n, NAQ_ID_SIZE);
    naq_status *st = calloc(n, sizeof *st);
    assert_true(jobs && ids && st);
    for (size_t i = 0; i < n; i++) {
        naq_job_opts_init(&jobs[i]);
        jobs[i].queue = q;
        jobs[i].function = "count";
    }
    size_t stored = 0;
    if (naq_enqueue_batch(c, jobs, n, ids, st, &stored) != NAQ_OK)
        fail_msg("batch enqueue: %s", naq_last_error());
    assert_int_equal(stored, n);
    free(jobs);
    free(ids);
    free(st);
}

/* Waits until `calls` reaches n; the largest prefetch w reported meanwhile. */
static int wait_calls_watching_prefetch(naq_worker *w, int n)
{
    int most = 0;
    int64_t deadline = mono_ms() + 30000;
    while (atomic_load(&calls) < n && mono_ms() < deadline) {
        naq_worker_stats st;
        naq_worker_get_stats(w, &st);
        if (st.prefetch > most)
            most = st.prefetch;
        sleep_ms(1);
    }
    assert_int_equal(atomic_load(&calls), n);
    return most;
}

static void auto_prefetch_fetches_short_jobs_ahead_and_runs_each_once(void **state)
{
    fixture *fx = *state;
    reset_counters();
    enqueue_counts(fx->c, "short", 3000);
    running r;
    naq_worker *w = make_worker(fx->c, "short", 1); /* naq_worker_opts_init: auto */
    start(fx, &r, w);
    int most = wait_calls_watching_prefetch(w, 3000);
    if (most < 2)
        fail_msg("no-op jobs were fetched at most %d ahead; auto prefetch should fetch several",
                 most);
    stop(&r);
    assert_int_equal(atomic_load(&calls), 3000); /* none ran twice */
}

/* After short jobs, long ones: a worker that fetched ahead while jobs were
 * short must not keep the long ones from an idle worker. */
static void auto_prefetch_spreads_long_jobs_that_follow_short_ones_over_workers(void **state)
{
    fixture *fx = *state;
    reset_counters();
    running a, b;
    naq_worker *wa = make_worker(fx->c, "mixed", 1), *wb = make_worker(fx->c, "mixed", 1);
    start(fx, &a, wa);
    start(fx, &b, wb);
    enqueue_counts(fx->c, "mixed", 1000);
    wait_calls_watching_prefetch(wa, 1000);

    char ids[4][NAQ_ID_SIZE];
    for (int i = 0; i < 4; i++)
        enqueue(fx->c, "mixed", "sleep", "[600]", 0, NAQ_PRIORITY_NORMAL, ids[i]);
    int ran_by_a = 0;
    for (int i = 0; i < 4; i++) {
        naq_event e = outcome(fx->c, ids[i], NAQ_EVENT_COMPLETED);
        ran_by_a += strcmp(e.worker_id, naq_worker_id(wa)) == 0;
        naq_event_clear(&e);
    }
    if (ran_by_a != 2)
        fail_msg("worker a ran %d of the 4 long jobs and worker b %d; each should run 2", ran_by_a,
                 4 - ran_by_a);
    stop(&a);
    stop(&b);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
static const struct CMUnitTest tests[] = {
    T(c_handler_job_records_enqueued_dequeued_started_completed_in_order),
    T(history_starts_with_enqueued_even_when_the_enqueuers_event_is_late),
    T(handler_failure_records_failed_with_error_type_and_message),
    T(exec_job_success_records_stdout_tail_and_usage),
    T(exec_job_gets_its_env_and_cwd_and_accepts_a_bare_argv),
    T(exec_job_failure_records_its_exit_status_and_stderr),
    T(exec_job_killed_by_a_signal_records_the_signal),
    T(exec_job_past_its_timeout_is_stopped_and_recorded_as_timeout),
    T(exec_job_that_cannot_start_records_exec_error_or_invalid_args),
    T(unknown_function_fails_with_a_message_saying_how_to_register),
    T(c_handler_past_its_timeout_sees_cancel_and_is_recorded_as_timeout),
    T(concurrency_4_runs_4_sleeping_jobs_at_once),
    T(waiting_jobs_run_highest_priority_first),
    T(a_higher_priority_job_overtakes_a_trickle_of_normal_ones),
    T(an_idle_worker_takes_a_job_at_another_level_without_waiting_out_its_poll),
    T(auto_prefetch_fetches_short_jobs_ahead_and_runs_each_once),
    T(auto_prefetch_spreads_long_jobs_that_follow_short_ones_over_workers),
    T(in_progress_acks_keep_a_long_job_from_running_twice),
    T(stop_lets_the_running_job_finish_then_run_returns),
    T(second_stop_hands_running_jobs_back_at_once_and_another_worker_runs_them),
    T(malformed_job_messages_are_terminated_and_recorded),
    T(killed_workers_job_is_run_again_by_another_worker),
    T(worker_keeps_running_jobs_when_its_logger_buffer_is_full),
    T(worker_serves_a_queue_whose_name_is_the_longest_allowed),
    T(worker_create_validates_options_and_defaults_its_id),
};

NAQ_TEST_MAIN(tests)
