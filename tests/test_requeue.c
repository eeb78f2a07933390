/*
 * test_requeue.c - changing the priority of a queued job and moving it to
 * another queue (naq_job_set_priority, naq_job_move, `naq job priority`,
 * `naq job move`), against a real nats-server: the message moves and the
 * event is logged; a job a worker took, a missing job and a job that is
 * not queued yet are refused with a message that says why.
 */
#include "lifecycle_support.h"

static void queued(lc_fixture *fx, const char *id, naq_job *j, char *subject)
{
    lc_queued_job(fx, id, j, subject, 128);
}

static void a_priority_change_moves_the_message_to_the_new_level_and_is_logged(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = lc_job("emails", "p1");
    o.args_json = "{\"to\":\"a@b.c\"}";
    char id[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, id);
    naq_status s = naq_job_set_priority(fx->c, "p1", NAQ_PRIORITY_CRITICAL);
    if (s != NAQ_OK)
        fail_msg("set priority: %s", naq_last_error());
    naq_job j;
    char subject[128];
    queued(fx, "p1", &j, subject);
    assert_string_equal(subject, "naq.queue.emails.4");
    assert_int_equal(j.priority, 4);
    assert_string_equal(j.args_json, "{\"to\":\"a@b.c\"}");
    naq_job_clear(&j);
    assert_int_equal(lc_queued(fx), 1);
    assert_events(fx, "p1", "enqueued,queue_priority_changed");
    json_t *d = lc_event_details(fx, "p1", NAQ_EVENT_QUEUE_PRIORITY_CHANGED);
    assert_int_equal(json_integer_value(json_object_get(d, "from")), 2);
    assert_int_equal(json_integer_value(json_object_get(d, "to")), 4);
    json_decref(d);
    /* Again, right away (inside the duplicate window of the first move). */
    assert_int_equal(naq_job_set_priority(fx->c, "p1", NAQ_PRIORITY_LOW), NAQ_OK);
    queued(fx, "p1", &j, subject);
    assert_string_equal(subject, "naq.queue.emails.1");
    naq_job_clear(&j);
    /* The same level: nothing changes, nothing is logged. */
    assert_int_equal(naq_job_set_priority(fx->c, "p1", NAQ_PRIORITY_LOW), NAQ_OK);
    assert_events(fx, "p1", "enqueued,queue_priority_changed,queue_priority_changed");
}

static void a_move_puts_the_job_on_the_other_queue_and_is_logged(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = lc_job("slow", "m1");
    o.priority = NAQ_PRIORITY_HIGH;
    char id[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, id);
    naq_status s = naq_job_move(fx->c, "m1", "fast");
    if (s != NAQ_OK)
        fail_msg("move: %s", naq_last_error());
    naq_job j;
    char subject[128];
    queued(fx, "m1", &j, subject);
    assert_string_equal(subject, "naq.queue.fast.3");
    assert_string_equal(j.queue, "fast");
    naq_job_clear(&j);
    assert_events(fx, "m1", "enqueued,queue_moved");
    json_t *d = lc_event_details(fx, "m1", NAQ_EVENT_QUEUE_MOVED);
    assert_string_equal(json_string_value(json_object_get(d, "from")), "slow");
    assert_string_equal(json_string_value(json_object_get(d, "to")), "fast");
    json_decref(d);
    /* The move is found again from its new queue. */
    assert_int_equal(naq_job_set_priority(fx->c, "m1", NAQ_PRIORITY_LOWEST), NAQ_OK);
    queued(fx, "m1", &j, subject);
    assert_string_equal(subject, "naq.queue.fast.0");
    naq_job_clear(&j);
}

static void a_job_a_worker_took_is_no_longer_queued(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = lc_job("busy", "taken");
    char id[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, id);
    /* A worker's consumer delivers it (and does not ack it yet). */
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "naq_busy_p2";
    cc.FilterSubject = "naq.queue.busy.2";
    cc.AckPolicy = js_AckExplicit;
    assert_int_equal(js_AddConsumer(NULL, fx->js, "NAQ_JOBS", &cc, NULL, NULL), NATS_OK);
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "NAQ_JOBS";
    so.Consumer = "naq_busy_p2";
    assert_int_equal(
        js_PullSubscribe(&sub, fx->js, "naq.queue.busy.2", "naq_busy_p2", NULL, &so, NULL),
        NATS_OK);
    natsMsgList l = {0};
    assert_int_equal(natsSubscription_Fetch(&l, sub, 1, 2000, NULL), NATS_OK);
    assert_int_equal(l.Count, 1);

    assert_int_equal(naq_job_set_priority(fx->c, "taken", NAQ_PRIORITY_HIGH), NAQ_ERR_CLOSED);
    if (strstr(naq_last_error(), "no longer queued") == NULL)
        fail_msg("message: %s", naq_last_error());
    assert_int_equal(naq_job_move(fx->c, "taken", "elsewhere"), NAQ_ERR_CLOSED);
    /* Untouched: still the one message, at its old level. */
    naq_job j;
    char subject[128];
    queued(fx, "taken", &j, subject);
    assert_string_equal(subject, "naq.queue.busy.2");
    naq_job_clear(&j);
    assert_events(fx, "taken", "enqueued");
    natsMsgList_Destroy(&l);
    natsSubscription_Destroy(sub);
}

static void a_missing_or_waiting_job_is_refused_with_the_reason(void **state)
{
    lc_fixture *fx = *state;
    assert_int_equal(naq_job_set_priority(fx->c, "ghost", 3), NAQ_ERR_NOT_FOUND);
    if (strstr(naq_last_error(), "no job ghost") == NULL)
        fail_msg("message: %s", naq_last_error());

    naq_job_opts o = lc_job("q", "dependent");
    const char *deps[] = {"other", NULL};
    o.depends_on = deps;
    char id[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, id);
    assert_int_equal(naq_job_move(fx->c, "dependent", "q2"), NAQ_ERR_NOT_FOUND);
    if (strstr(naq_last_error(), "waiting for its dependencies") == NULL)
        fail_msg("message: %s", naq_last_error());

    naq_job_opts p = lc_job("q", "finished");
    lc_enqueue(fx, &p, id);
    /* Acked by a worker (removed from the stream) and recorded. */
    assert_int_equal(js_PurgeStream(fx->js, "NAQ_JOBS", NULL, NULL), NATS_OK);
    lc_finish(fx, "finished", 1);
    assert_int_equal(naq_job_set_priority(fx->c, "finished", 0), NAQ_ERR_NOT_FOUND);
    if (strstr(naq_last_error(), "has finished") == NULL)
        fail_msg("message: %s", naq_last_error());

    assert_int_equal(naq_job_set_priority(fx->c, "x", 7), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_job_move(fx->c, "x", "a.b"), NAQ_ERR_INVALID_ARG);
}

static void cli_job_priority_and_move(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = lc_job("q", "c1");
    char id[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, id);
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    char *out = NULL, *err = NULL;
    const char *prio[] = {"job", "priority", "c1", "high", NULL};
    assert_int_equal(lc_cli(fx, prio, &out, NULL), 0);
    assert_string_equal(out, "job c1 has priority high\n");
    free(out);
    const char *move[] = {"job", "move", "c1", "other", NULL};
    assert_int_equal(lc_cli(fx, move, &out, NULL), 0);
    assert_string_equal(out, "job c1 is in queue other\n");
    free(out);
    naq_job j;
    char subject[128];
    queued(fx, "c1", &j, subject);
    assert_string_equal(subject, "naq.queue.other.3");
    naq_job_clear(&j);
    const char *ghost[] = {"job", "move", "ghost", "other", NULL};
    assert_int_equal(lc_cli(fx, ghost, NULL, &err), 1);
    if (strstr(err, "no job ghost") == NULL)
        fail_msg("stderr: %s", err);
    free(err);
    const char *bad[] = {"job", "priority", "c1", "urgent", NULL};
    assert_int_equal(lc_cli(fx, bad, NULL, NULL), 2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, lc_setup, lc_teardown)
static const struct CMUnitTest tests[] = {
    T(a_priority_change_moves_the_message_to_the_new_level_and_is_logged),
    T(a_move_puts_the_job_on_the_other_queue_and_is_logged),
    T(a_job_a_worker_took_is_no_longer_queued),
    T(a_missing_or_waiting_job_is_refused_with_the_reason),
    T(cli_job_priority_and_move),
};

NAQ_TEST_MAIN(tests)
