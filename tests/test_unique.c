/*
 * test_unique.c - unique jobs (naq_enqueue_ex with unique_key), against a
 * real nats-server: a second enqueue while the first job is pending
 * returns the first id and enqueues nothing, the key is free again once
 * the job finished, concurrent enqueues make exactly one job, and a
 * failed enqueue leaves the key free.
 */
#include "lifecycle_support.h"

static naq_job_opts unique_job(const char *queue, const char *key)
{
    naq_job_opts o = lc_job(queue, NULL);
    o.unique_key = key;
    return o;
}

/* The job as the worker would hand it to naq__unique_release. */
static void queued_job(lc_fixture *fx, const char *id, naq_job *j)
{
    lc_queued_job(fx, id, j, NULL, 0);
}

static void second_enqueue_with_the_same_key_returns_the_first_id_and_enqueues_nothing(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = unique_job("sync", "user-42");
    char first[NAQ_ID_SIZE], second[NAQ_ID_SIZE];
    int existing = -1;
    assert_int_equal(naq_enqueue_ex(fx->c, &o, first, &existing), NAQ_OK);
    assert_int_equal(existing, 0);
    naq_logger_stats before;
    naq_client_logger_stats(fx->c, &before);
    assert_int_equal(naq_enqueue_ex(fx->c, &o, second, &existing), NAQ_OK);
    assert_int_equal(existing, 1);
    assert_string_equal(second, first);
    assert_int_equal(lc_queued(fx), 1);
    naq_logger_stats after;
    naq_client_logger_stats(fx->c, &after);
    assert_int_equal(after.logged, before.logged); /* nothing logged for the second */
    assert_events(fx, first, "enqueued");
    /* naq_enqueue (no out flag) behaves the same. */
    assert_int_equal(naq_enqueue(fx->c, &o, second), NAQ_OK);
    assert_string_equal(second, first);
    assert_int_equal(lc_queued(fx), 1);
}

static void the_same_key_on_another_queue_is_another_job(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts a = unique_job("a", "k"), b = unique_job("b", "k");
    char ida[NAQ_ID_SIZE], idb[NAQ_ID_SIZE];
    lc_enqueue(fx, &a, ida);
    lc_enqueue(fx, &b, idb);
    assert_string_not_equal(ida, idb);
    assert_int_equal(lc_queued(fx), 2);
}

static void the_key_is_free_again_once_the_job_finished(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = unique_job("sync", "report/2026-01");
    char first[NAQ_ID_SIZE], again[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, first);
    naq_job j;
    queued_job(fx, first, &j);
    assert_string_equal(j.unique_key, "report/2026-01");
    /* What the worker does after the final outcome. */
    naq__unique_release(fx->c, j.queue, j.unique_key, j.id);
    naq_job_clear(&j);
    int existing = -1;
    assert_int_equal(naq_enqueue_ex(fx->c, &o, again, &existing), NAQ_OK);
    assert_int_equal(existing, 0);
    assert_string_not_equal(again, first);
    assert_int_equal(lc_queued(fx), 2);
}

static void a_release_by_another_job_leaves_the_key_to_its_holder(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = unique_job("sync", "k1");
    char holder[NAQ_ID_SIZE], got[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, holder);
    naq_job other = {0};
    snprintf(other.id, sizeof other.id, "someone-else");
    snprintf(other.queue, sizeof other.queue, "sync");
    other.unique_key = "k1";
    naq__unique_release(fx->c, other.queue, other.unique_key, other.id);
    lc_enqueue(fx, &o, got);
    assert_string_equal(got, holder);
    assert_int_equal(lc_queued(fx), 1);
}

static void a_holder_that_finished_without_releasing_is_replaced(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = unique_job("sync", "k2");
    char holder[NAQ_ID_SIZE], got[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, holder);
    /* The worker recorded the outcome, then died before releasing. */
    lc_finish(fx, holder, 1);
    int existing = -1;
    assert_int_equal(naq_enqueue_ex(fx->c, &o, got, &existing), NAQ_OK);
    assert_int_equal(existing, 0);
    assert_string_not_equal(got, holder);
    /* The new job holds the key now. */
    char third[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, third);
    assert_string_equal(third, got);
}

/* Issue 14: a job that ended for any reason releases its key - also one
 * cancelled, or past its TTL, while no worker has met it yet. */
static void a_holder_cancelled_while_queued_no_longer_holds_the_key(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = unique_job("sync", "k-cancel");
    char holder[NAQ_ID_SIZE], got[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, holder);
    naq_cancel_outcome how;
    assert_int_equal(naq_job_cancel(fx->c, holder, &how), NAQ_OK);
    assert_int_equal(how, NAQ_CANCEL_REQUESTED); /* queued: a worker will stop it */
    int existing = -1;
    assert_int_equal(naq_enqueue_ex(fx->c, &o, got, &existing), NAQ_OK);
    assert_int_equal(existing, 0);
    assert_string_not_equal(got, holder);
    assert_int_equal(lc_queued(fx), 2);
}

static void a_holder_past_its_ttl_no_longer_holds_the_key(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = unique_job("sync", "k-ttl");
    o.ttl_ms = 100;
    char holder[NAQ_ID_SIZE], got[NAQ_ID_SIZE];
    lc_enqueue(fx, &o, holder);
    int existing = -1;
    assert_int_equal(naq_enqueue_ex(fx->c, &o, got, &existing), NAQ_OK);
    assert_int_equal(existing, 1); /* still within its TTL */
    lc_sleep_ms(200);
    assert_int_equal(naq_enqueue_ex(fx->c, &o, got, &existing), NAQ_OK);
    assert_int_equal(existing, 0);
    assert_string_not_equal(got, holder);
}

static void enqueueing_the_holder_s_own_id_again_is_not_a_conflict(void **state)
{
    lc_fixture *fx = *state;
    naq_job_opts o = unique_job("sync", "k3");
    o.job_id = "fixed-id";
    char a[NAQ_ID_SIZE], b[NAQ_ID_SIZE];
    int existing = -1;
    lc_enqueue(fx, &o, a);
    assert_int_equal(naq_enqueue_ex(fx->c, &o, b, &existing), NAQ_OK);
    assert_string_equal(b, "fixed-id");
    assert_int_equal(lc_queued(fx), 1);
}

typedef struct {
    lc_fixture *fx;
    pthread_barrier_t *go;
    char id[NAQ_ID_SIZE];
    int existing;
    naq_status s;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    naq_job_opts o = unique_job("race", "only-one");
    pthread_barrier_wait(r->go);
    r->s = naq_enqueue_ex(r->fx->c, &o, r->id, &r->existing);
    return NULL;
}

static void eight_threads_racing_with_one_key_make_exactly_one_job(void **state)
{
    lc_fixture *fx = *state;
    enum { N = 8 };
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    racer r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racer){.fx = fx, .go = &go};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int created = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (r[i].s != NAQ_OK)
            fail_msg("racer %d: %s", i, naq_status_str(r[i].s));
        created += !r[i].existing;
        assert_string_equal(r[i].id, r[0].id);
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(created, 1);
    assert_int_equal(lc_queued(fx), 1);
    assert_events(fx, r[0].id, "enqueued");
}

static void a_failed_enqueue_gives_the_key_back(void **state)
{
    lc_fixture *fx = *state;
    assert_int_equal(js_DeleteStream(fx->js, "NAQ_JOBS", NULL, NULL), NATS_OK);
    naq_job_opts o = unique_job("sync", "k4");
    char id[NAQ_ID_SIZE];
    assert_int_not_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
    if (strstr(naq_last_error(), "not queued") == NULL)
        fail_msg("the message '%s' lost the publish failure", naq_last_error());
    assert_false(lc_kv_has(fx, "naq_unique", "sync/k4"));
    /* With the stream back, the key is free for a new job. */
    naq_client *c2 = naq_test_connect(&fx->srv); /* re-creates the streams */
    naq_client_destroy(c2);
    int existing = -1;
    assert_int_equal(naq_enqueue_ex(fx->c, &o, id, &existing), NAQ_OK);
    assert_int_equal(existing, 0);
    assert_true(lc_kv_has(fx, "naq_unique", "sync/k4"));
}

static void keys_with_any_characters_and_long_keys_work(void **state)
{
    lc_fixture *fx = *state;
    char longkey[NAQ_UNIQUE_KEY_MAX + 1];
    memset(longkey, 'x', NAQ_UNIQUE_KEY_MAX);
    longkey[NAQ_UNIQUE_KEY_MAX] = '\0';
    const char *keys[] = {"a.b c/d=e*>", "\xc3\xa9t\xc3\xa9", longkey, "a.b c/d=e*>x"};
    char ids[4][NAQ_ID_SIZE], again[NAQ_ID_SIZE];
    for (int i = 0; i < 4; i++) {
        naq_job_opts o = unique_job("odd", keys[i]);
        lc_enqueue(fx, &o, ids[i]);
        lc_enqueue(fx, &o, again);
        assert_string_equal(again, ids[i]);
    }
    assert_int_equal(lc_queued(fx), 4);
}

static void cli_enqueue_with_a_pending_unique_key_prints_the_first_id(void **state)
{
    lc_fixture *fx = *state;
    const char *argv[] = {"enqueue", "-q", "sync", "--unique-key", "nightly", "--", "true", NULL};
    char *out1 = NULL, *out2 = NULL, *err = NULL;
    assert_int_equal(lc_cli(fx, argv, &out1, NULL), 0);
    assert_int_equal(lc_cli(fx, argv, &out2, &err), 0);
    assert_string_equal(out1, out2);
    if (strstr(err, "still pending") == NULL)
        fail_msg("stderr '%s' does not say the job is pending", err);
    assert_int_equal(lc_queued(fx), 1);
    free(out1);
    free(out2);
    free(err);
}

#define T(f) cmocka_unit_test_setup_teardown(f, lc_setup, lc_teardown)
static const struct CMUnitTest tests[] = {
    T(second_enqueue_with_the_same_key_returns_the_first_id_and_enqueues_nothing),
    T(the_same_key_on_another_queue_is_another_job),
    T(the_key_is_free_again_once_the_job_finished),
    T(a_release_by_another_job_leaves_the_key_to_its_holder),
    T(a_holder_that_finished_without_releasing_is_replaced),
    T(a_holder_cancelled_while_queued_no_longer_holds_the_key),
    T(a_holder_past_its_ttl_no_longer_holds_the_key),
    T(enqueueing_the_holder_s_own_id_again_is_not_a_conflict),
    T(eight_threads_racing_with_one_key_make_exactly_one_job),
    T(a_failed_enqueue_gives_the_key_back),
    T(keys_with_any_characters_and_long_keys_work),
    T(cli_enqueue_with_a_pending_unique_key_prints_the_first_id),
};

NAQ_TEST_MAIN(tests)
