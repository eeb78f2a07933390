/*
 * test_delay.c - delayed jobs (naq_enqueue_at / naq_enqueue_in) and their
 * release by the scheduler's leader, against a real nats-server: on time
 * and never early, stored once, validated like naq_enqueue, surviving
 * server and scheduler restarts, and cheap per tick with 20,000 pending.
 */
#include "schedule_support.h"

typedef struct {
    naq_test_server srv;
    naq_client *c;
    raw_conn raw;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    naq_test_server_start(&fx->srv);
    fx->c = naq_test_connect(&fx->srv);
    raw_open(&fx->raw, &fx->srv);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    raw_close(&fx->raw);
    naq_client_destroy(fx->c);
    naq_test_server_destroy(&fx->srv);
    free(fx);
    return 0;
}

static naq_job_opts job(const char *queue, const char *id)
{
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = queue;
    o.function = "noop";
    o.args_json = "{\"n\":1}";
    o.job_id = id;
    return o;
}

typedef struct {
    fixture *fx;
    const char *queue;
    const char *id;
} job_wait;

static int job_queued(void *ud)
{
    job_wait *w = ud;
    job_set js;
    queue_jobs(&w->fx->raw, w->queue, &js);
    return job_set_has(&js, w->id);
}

static void wait_queued(fixture *fx, const char *queue, const char *id, int64_t timeout_ms)
{
    job_wait w = {fx, queue, id};
    if (!naq_test_wait_for(job_queued, &w, timeout_ms))
        fail_msg("job %s not in queue %s after %lld ms", id, queue, (long long)timeout_ms);
}

/* The events stored for one job. */
static event_set *job_events(fixture *fx, const char *id)
{
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    event_set *es = calloc(1, sizeof *es);
    assert_non_null(es);
    char subject[256];
    snprintf(subject, sizeof subject, "naq.jobs.events.%s", id);
    subject_events(&fx->raw, subject, es);
    return es;
}

/* The counter moves after the purge that follows the queue's ack, so a
 * job can be visible in its queue a moment before it is counted. */
static naq_scheduler_stats stats_when_released(sched_runner *r, uint64_t released)
{
    double start = now_s();
    while (sched_stats(r).released < released && now_s() - start < 3.0)
        sleep_s(0.01);
    return sched_stats(r);
}

static void delayed_job_reaches_its_queue_between_2_and_3_seconds_later_not_before(void **state)
{
    fixture *fx = *state;
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    naq_job_opts o = job("later", NULL);
    char id[NAQ_ID_SIZE];
    double t0 = now_s();
    assert_int_equal(naq_enqueue_in(fx->c, &o, 2000, id), NAQ_OK);
    /* Watch the queue every 10 ms: the first time the job is seen there. */
    double seen = 0;
    while (seen == 0 && now_s() - t0 < 4.0) {
        job_set js;
        queue_jobs(&fx->raw, "later", &js);
        if (job_set_has(&js, id))
            seen = now_s();
        else
            sleep_s(0.01);
    }
    naq_scheduler_stats st = stats_when_released(&r, 1);
    sched_runner_stop(&r);
    assert_int_equal(st.released, 1);
    double after = seen - t0;
    if (seen == 0 || after < 2.0 || after > 3.0)
        fail_msg("the job reached its queue %.3f s after a 2 s delay", seen ? after : -1.0);

    /* Its history: scheduled (with run_at), then enqueued when released. */
    event_set *es = job_events(fx, id);
    assert_int_equal(es->n, 2);
    assert_int_equal(es->ev[0].type, NAQ_EVENT_SCHEDULED);
    double run_at = detail_number(&es->ev[0], "run_at");
    assert_true(run_at >= t0 + 2.0 - 0.001 && run_at <= t0 + 2.1);
    assert_int_equal(es->ev[1].type, NAQ_EVENT_ENQUEUED);
    assert_string_equal(es->ev[1].queue_name, "later");
    assert_true(es->ev[1].timestamp >= run_at);
    event_set_clear(es);
    free(es);
}

static void
delayed_job_without_a_scheduler_waits_and_one_in_the_past_is_queued_at_once(void **state)
{
    fixture *fx = *state;
    naq_job_opts o = job("q", "soon");
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue_in(fx->c, &o, 300, id), NAQ_OK);
    assert_string_equal(id, "soon");
    naq_job_opts p = job("q", "past");
    assert_int_equal(naq_enqueue_at(fx->c, &p, now_s() - 10, id), NAQ_OK);
    sleep_s(0.8);
    job_set js;
    queue_jobs(&fx->raw, "q", &js);
    assert_true(job_set_has(&js, "past"));
    assert_false(job_set_has(&js, "soon")); /* no scheduler runs */
    event_set *es = job_events(fx, "past");
    assert_int_equal(es->n, 1);
    assert_int_equal(es->ev[0].type, NAQ_EVENT_ENQUEUED);
    event_set_clear(es);
    free(es);
}

static void enqueue_at_validates_like_enqueue_and_stores_nothing_on_error(void **state)
{
    fixture *fx = *state;
    char id[NAQ_ID_SIZE] = "x";
    double later = now_s() + 60;
    naq_job_opts o = job("bad queue", NULL);
    assert_int_equal(naq_enqueue_at(fx->c, &o, later, id), NAQ_ERR_INVALID_ARG);
    assert_string_equal(id, "");
    o = job("q", NULL);
    o.args_json = "{not json";
    assert_int_equal(naq_enqueue_at(fx->c, &o, later, id), NAQ_ERR_INVALID_ARG);
    o = job("q", NULL);
    o.priority = 9;
    assert_int_equal(naq_enqueue_at(fx->c, &o, later, id), NAQ_ERR_INVALID_ARG);
    o = job("q", NULL);
    o.tags_json = "{\"n\":1}";
    assert_int_equal(naq_enqueue_at(fx->c, &o, later, id), NAQ_ERR_INVALID_ARG);
    o = job("q", NULL);
    o.function = "";
    assert_int_equal(naq_enqueue_at(fx->c, &o, later, id), NAQ_ERR_INVALID_ARG);
    o = job("q", NULL);
    assert_int_equal(naq_enqueue_at(fx->c, &o, NAN, id), NAQ_ERR_INVALID_ARG);
    /* Nothing reached the due index. */
    jsStreamInfo *si = NULL;
    natsStatus ns = js_GetStreamInfo(&si, fx->raw.js, "NAQ_DELAYED", NULL, NULL);
    assert_true(ns == NATS_NOT_FOUND || (ns == NATS_OK && si->State.Msgs == 0));
    jsStreamInfo_Destroy(si);
}

static void delayed_job_keeps_every_option_and_refuses_what_it_cannot_honour(void **state)
{
    fixture *fx = *state;
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("q", NULL);
    o.max_retries = 2;
    o.ttl_ms = 90000;
    assert_int_equal(naq_retry_policy_parse("fixed:5s", &o.retry), NAQ_OK);
    assert_int_equal(naq_enqueue_at(fx->c, &o, now_s() + 60, id), NAQ_OK);
    /* The stored job carries the retry policy and TTL, not defaults. */
    jsDirectGetMsgOptions g;
    jsDirectGetMsgOptions_Init(&g);
    g.Sequence = 1;
    natsMsg *m = NULL;
    assert_int_equal(js_DirectGetMsg(&m, fx->raw.js, "NAQ_DELAYED", NULL, &g), NATS_OK);
    naq_job j;
    assert_int_equal(naq_job_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &j),
                     NAQ_OK);
    assert_string_equal(j.id, id);
    assert_int_equal(j.max_retries, 2);
    assert_int_equal(j.retry.kind, NAQ_BACKOFF_FIXED);
    assert_int_equal(j.retry.delay_ms, 5000);
    assert_int_equal(j.ttl_ms, 90000);
    naq_job_clear(&j);
    natsMsg_Destroy(m);

    o = job("q", NULL);
    o.unique_key = "once";
    assert_int_equal(naq_enqueue_at(fx->c, &o, now_s() + 60, id), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "unique key"));
}

static void same_delayed_job_id_twice_is_stored_and_released_once(void **state)
{
    fixture *fx = *state;
    naq_job_opts o = job("dup", "the-one");
    char id[NAQ_ID_SIZE];
    double at = now_s() + 0.5;
    assert_int_equal(naq_enqueue_at(fx->c, &o, at, id), NAQ_OK);
    assert_int_equal(naq_enqueue_at(fx->c, &o, at, id), NAQ_OK);
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    wait_queued(fx, "dup", "the-one", 3000);
    sleep_s(0.3); /* time for a second release, if there were one */
    naq_scheduler_stats st = stats_when_released(&r, 1);
    sched_runner_stop(&r);
    assert_int_equal(st.released, 1);
    job_set js;
    queue_jobs(&fx->raw, "dup", &js);
    assert_int_equal(js.n, 1);
    event_set *es = job_events(fx, "the-one");
    assert_int_equal(count_type(es, NAQ_EVENT_SCHEDULED), 1);
    assert_int_equal(count_type(es, NAQ_EVENT_ENQUEUED), 1);
    event_set_clear(es);
    free(es);
}

static void delayed_jobs_survive_a_server_restart_under_a_running_scheduler(void **state)
{
    fixture *fx = *state;
    naq_job_opts a = job("r", "before-restart");
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue_in(fx->c, &a, 2500, id), NAQ_OK);
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    sleep_s(0.5);
    double t_restart = now_s();
    naq_test_server_restart(&fx->srv);
    /* The scheduler's client reconnects by itself; the job is still due
     * 2.5 s after it was enqueued, and is released after its time. */
    wait_queued(fx, "r", "before-restart", 8000);
    /* A job enqueued after the restart is released too (the leader
     * rebuilt its view of the index after reconnecting). */
    naq_job_opts b = job("r", "after-restart");
    assert_int_equal(naq_enqueue_in(fx->c, &b, 500, id), NAQ_OK);
    wait_queued(fx, "r", "after-restart", 5000);
    sched_runner_stop(&r);
    job_set js;
    queue_jobs(&fx->raw, "r", &js);
    assert_int_equal(js.n, 2);
    assert_true(now_s() - t_restart >= 2.0);
    /* The scheduler said it recovered after the restart. */
    event_set *es = calloc(1, sizeof *es);
    assert_non_null(es);
    subject_events(&fx->raw, "naq.system.events", es);
    size_t recovered = 0;
    for (size_t i = 0; i < es->n; i++)
        recovered += es->ev[i].type == NAQ_EVENT_SYSTEM_RECOVERY &&
                     strcmp(es->ev[i].schedule_id, "sched-a") == 0;
    assert_true(recovered >= 1);
    event_set_clear(es);
    free(es);
}

static void delayed_jobs_survive_a_scheduler_restart(void **state)
{
    fixture *fx = *state;
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    naq_job_opts o = job("s", "across");
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue_in(fx->c, &o, 1000, id), NAQ_OK);
    sleep_s(0.3);
    sched_runner_stop(&r); /* down while the job becomes due */
    sleep_s(1.5);
    job_set js;
    queue_jobs(&fx->raw, "s", &js);
    assert_int_equal(js.n, 0);
    sched_runner r2;
    sched_runner_start(&r2, &fx->srv, "sched-b", 0, 0);
    wait_queued(fx, "s", "across", 3000);
    sched_runner_stop(&r2);
}

/* Publishes a job straight into the due index, bucket b (tenths of a
 * second), as naq_enqueue_at would store it. */
static void publish_due(fixture *fx, const char *queue, const char *id, int64_t bucket)
{
    naq_job j = {0};
    j.version = NAQ_WIRE_VERSION;
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.queue, sizeof j.queue, "%s", queue);
    snprintf(j.function, sizeof j.function, "noop");
    j.priority = NAQ_PRIORITY_NORMAL;
    j.enqueued_at = now_s();
    char *json = NULL, subject[128];
    size_t len = 0;
    assert_int_equal(naq_job_encode(&j, &json, &len), NAQ_OK);
    snprintf(subject, sizeof subject, "naq.due.%lld", (long long)bucket);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, json, (int)len), NATS_OK);
    natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    assert_int_equal(js_PublishMsgAsync(fx->raw.js, &m, NULL), NATS_OK);
    natsMsg_Destroy(m);
    free(json);
}

static void flush_publishes(fixture *fx)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    assert_int_equal(js_PublishAsyncComplete(fx->raw.js, &po), NATS_OK);
}

static void after_a_long_downtime_only_buckets_holding_jobs_are_read(void **state)
{
    fixture *fx = *state;
    /* Make the stream exist, then store five jobs that fell due at
     * scattered times during the last hour: 36,000 tenths of a second. */
    naq_job_opts o = job("down", "seed");
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue_in(fx->c, &o, 3600 * 1000, id), NAQ_OK);
    int64_t now_b = (int64_t)(now_s() * 10);
    for (int i = 0; i < 5; i++) {
        char jid[32];
        snprintf(jid, sizeof jid, "missed-%d", i);
        publish_due(fx, "down", jid, now_b - 36000 + i * 7000);
    }
    flush_publishes(fx);
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    wait_queued(fx, "down", "missed-4", 3000);
    naq_scheduler_stats st = stats_when_released(&r, 5);
    sched_runner_stop(&r);
    job_set js;
    queue_jobs(&fx->raw, "down", &js);
    assert_int_equal(js.n, 5);
    /* One read per job plus one "no more" read per bucket. */
    assert_int_equal(st.released, 5);
    if (st.index_reads > 10)
        fail_msg("%llu reads of the due index for 5 jobs in 5 buckets",
                 (unsigned long long)st.index_reads);
}

static void twenty_thousand_pending_delayed_jobs_cost_no_reads_per_tick(void **state)
{
    fixture *fx = *state;
    const int n = 20000;
    naq_job_opts o = job("many", "first");
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue_in(fx->c, &o, 3600 * 1000, id), NAQ_OK);
    /* 20,000 jobs due over the next hour, each in its own bucket. */
    int64_t now_b = (int64_t)(now_s() * 10);
    for (int i = 1; i < n; i++) {
        char jid[32];
        snprintf(jid, sizeof jid, "later-%05d", i);
        publish_due(fx, "many", jid, now_b + 600 + i);
    }
    flush_publishes(fx);
    /* One due soon among them. */
    naq_job_opts s = job("many", "soon");
    assert_int_equal(naq_enqueue_in(fx->c, &s, 800, id), NAQ_OK);

    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    wait_queued(fx, "many", "soon", 5000);
    /* The pending count moves at the tick after the release is confirmed,
     * a moment after the job shows in its queue. */
    naq_scheduler_stats a = stats_when_released(&r, 1);
    for (double start = now_s(); a.delayed_pending > (uint64_t)n && now_s() - start < 3.0;
         a = sched_stats(&r))
        sleep_s(0.01);
    assert_true(a.index_feed >= (uint64_t)n + 1); /* every pending job seen once */
    assert_int_equal(a.delayed_pending, n);
    sleep_s(2.0);
    naq_scheduler_stats b = sched_stats(&r);
    sched_runner_stop(&r);
    assert_true(b.ticks - a.ticks >= 10);
    /* Nothing else is due: no tick read the index or took in arrivals. */
    assert_int_equal(b.index_reads - a.index_reads, 0);
    assert_int_equal(b.index_feed - a.index_feed, 0);
    assert_int_equal(b.released, 1);
    job_set js;
    queue_jobs(&fx->raw, "many", &js);
    assert_int_equal(js.n, 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(
        delayed_job_reaches_its_queue_between_2_and_3_seconds_later_not_before, setup, teardown),
    cmocka_unit_test_setup_teardown(
        delayed_job_without_a_scheduler_waits_and_one_in_the_past_is_queued_at_once, setup,
        teardown),
    cmocka_unit_test_setup_teardown(enqueue_at_validates_like_enqueue_and_stores_nothing_on_error,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(
        delayed_job_keeps_every_option_and_refuses_what_it_cannot_honour, setup, teardown),
    cmocka_unit_test_setup_teardown(same_delayed_job_id_twice_is_stored_and_released_once, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(delayed_jobs_survive_a_server_restart_under_a_running_scheduler,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(delayed_jobs_survive_a_scheduler_restart, setup, teardown),
    cmocka_unit_test_setup_teardown(after_a_long_downtime_only_buckets_holding_jobs_are_read, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(twenty_thousand_pending_delayed_jobs_cost_no_reads_per_tick,
                                    setup, teardown),
};

NAQ_TEST_MAIN(tests)
