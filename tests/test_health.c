/*
 * test_health.c - `naq health` against a real server: every check (lag of
 * job queues and consumer groups, dead letters and their growth since the
 * last check, stream use against limits, rollup lag, workers, the local
 * spool) turns warning and critical at its thresholds, from flags and from
 * the environment, and the exit code says so (0 healthy, 1 not, 2 usage).
 */
#include "harness.h"

#include "internal.h"
#include "events/spool.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ENV 8

typedef struct {
    naq_test_server srv;
    char url[96], spool[320], state[320];
    const char *env[MAX_ENV];
    int nenv;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    naq_test_server_start(&f->srv);
    snprintf(f->url, sizeof f->url, "NAQ_URL=%s", f->srv.url);
    snprintf(f->spool, sizeof f->spool, "NAQ_SPOOL_DIR=%s/spool", f->srv.dir);
    snprintf(f->state, sizeof f->state, "NAQ_HEALTH_STATE=%s/health.json", f->srv.dir);
    f->env[f->nenv++] = f->url;
    f->env[f->nenv++] = f->spool;
    f->env[f->nenv++] = f->state;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    naq_test_server_destroy(&f->srv);
    free(f);
    return 0;
}

static void add_env(fixture *f, const char *kv)
{
    assert_true(f->nenv + 1 < MAX_ENV);
    f->env[f->nenv++] = kv;
    f->env[f->nenv] = NULL;
}

/* Runs `naq health --format json ARGS...`; returns the object, *rc the
 * exit code. */
static json_t *health(fixture *f, const char *const *args, int *rc)
{
    const char *argv[24] = {"health", "--format", "json"};
    int n = 3;
    for (int i = 0; args != NULL && args[i] != NULL; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    *rc = naq_test_run_cli(argv, f->env, &out, &err);
    json_error_t jerr;
    json_t *o = json_loads(out, 0, &jerr);
    if (o == NULL)
        fail_msg("health: not JSON (%s): '%s' stderr '%s'", jerr.text, out, err);
    free(out);
    free(err);
    return o;
}

/* The check (check, subject); fails the test when absent. */
static json_t *check(json_t *o, const char *name, const char *subject)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(o, "checks"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "check")), name) == 0 &&
            strcmp(json_string_value(json_object_get(c, "subject")), subject) == 0)
            return c;
    }
    char *all = json_dumps(json_object_get(o, "checks"), 0);
    fail_msg("no check %s/%s in %s", name, subject, all);
    return NULL;
}

static const char *status_of(json_t *o, const char *name, const char *subject)
{
    return json_string_value(json_object_get(check(o, name, subject), "status"));
}

static double value_of(json_t *o, const char *name, const char *subject)
{
    return json_number_value(json_object_get(check(o, name, subject), "value"));
}

static void enqueue(fixture *f, const char *queue, const char *cmd, int n)
{
    for (int i = 0; i < n; i++) {
        const char *argv[] = {"enqueue", "-q", queue, "--", "sh", "-c", cmd, NULL};
        char *out = NULL;
        assert_int_equal(naq_test_run_cli(argv, f->env, &out, NULL), 0);
        free(out);
    }
}

static void a_fresh_server_is_healthy_and_exits_0(void **state)
{
    fixture *f = *state;
    int rc = 0;
    json_t *o = health(f, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "ok");
    assert_true(json_is_true(json_object_get(o, "healthy")));
    const char *names[] = {"connection", "dlq", "event_dlq", "rollup", "workers", "spool"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *subject = strcmp(names[i], "connection") == 0 ? f->srv.url : "";
        assert_string_equal(status_of(o, names[i], subject), "ok");
    }
    assert_string_equal(status_of(o, "stream", "NAQ_JOB_EVENTS"), "ok");
    json_decref(o);
}

static void queue_lag_and_no_workers_turn_warning_then_critical(void **state)
{
    fixture *f = *state;
    enqueue(f, "lagq", "exit 0", 5);
    int rc = 0;
    const char *warn[] = {"--lag-warning", "2", "--lag-critical", "10", "--min-workers", "0", NULL};
    json_t *o = health(f, warn, &rc);
    assert_int_equal(rc, 1);
    assert_string_equal(status_of(o, "lag", "naq_lagq_p2"), "warning");
    assert_int_equal((int)value_of(o, "lag", "naq_lagq_p2"), 5);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "warning");
    json_decref(o);

    const char *crit[] = {"--lag-warning", "2", "--lag-critical", "4", "--min-workers", "0", NULL};
    o = health(f, crit, &rc);
    assert_int_equal(rc, 1);
    assert_string_equal(status_of(o, "lag", "naq_lagq_p2"), "critical");
    json_decref(o);

    /* Defaults (lag > 100): the lag is fine, but jobs wait and no worker
     * runs: critical. */
    o = health(f, NULL, &rc);
    assert_int_equal(rc, 1);
    assert_string_equal(status_of(o, "lag", "naq_lagq_p2"), "ok");
    assert_string_equal(status_of(o, "workers", ""), "critical");
    json_decref(o);

    /* The environment sets thresholds; a flag beats it. */
    add_env(f, "NAQ_HEALTH_MIN_WORKERS=0");
    add_env(f, "NAQ_HEALTH_LAG_WARNING=3");
    o = health(f, NULL, &rc);
    assert_int_equal(rc, 1);
    assert_string_equal(status_of(o, "lag", "naq_lagq_p2"), "warning");
    assert_string_equal(status_of(o, "workers", ""), "ok");
    json_decref(o);
    const char *flag[] = {"--lag-warning", "5", NULL};
    o = health(f, flag, &rc);
    assert_string_equal(status_of(o, "lag", "naq_lagq_p2"), "ok");
    json_decref(o);
}

static int dlq_has(fixture *f, int n)
{
    int rc = 0;
    const char *none[] = {"--no-state", NULL};
    json_t *o = health(f, none, &rc);
    json_t *c = NULL;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(o, "checks"), i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "subject")), "deadq") == 0)
            c = x;
    }
    int have = c != NULL && (int)json_number_value(json_object_get(c, "value")) == n;
    json_decref(o);
    return have;
}

static void run_worker_until_dead(fixture *f, int n)
{
    char log[320];
    snprintf(log, sizeof log, "%s/worker.log", f->srv.dir);
    const char *argv[] = {"worker", "-q", "deadq", NULL};
    pid_t pid = naq_test_spawn_cli(argv, f->env, log);
    int ok = 0;
    for (int i = 0; i < 300 && !ok; i++) {
        ok = dlq_has(f, n);
        if (!ok)
            usleep(100000);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (!ok)
        fail_msg("the DLQ of deadq did not reach %d within 30 s", n);
}

static void dlq_size_and_growth_since_the_last_check(void **state)
{
    fixture *f = *state;
    enqueue(f, "deadq", "exit 3", 3);
    run_worker_until_dead(f, 3);
    int rc = 0;
    const char *args[] = {"--dlq-warning", "2", "--dlq-critical", "5", NULL};
    /* First check: no previous counts, so no growth figure. */
    json_t *o = health(f, args, &rc);
    assert_string_equal(status_of(o, "dlq", "deadq"), "warning");
    assert_null(json_object_get(check(o, "dlq", "deadq"), "growth"));
    json_decref(o);
    /* Unchanged since: growth 0. */
    const char *loose[] = {"--dlq-warning", "10", NULL};
    o = health(f, loose, &rc);
    assert_int_equal(json_integer_value(json_object_get(check(o, "dlq", "deadq"), "growth")), 0);
    assert_string_equal(status_of(o, "dlq", "deadq"), "ok");
    json_decref(o);
    /* Three more dead jobs: growth +3 warns even under the size threshold,
     * and the size is now critical with the tight thresholds. */
    enqueue(f, "deadq", "exit 3", 3);
    run_worker_until_dead(f, 6);
    o = health(f, loose, &rc);
    assert_int_equal(json_integer_value(json_object_get(check(o, "dlq", "deadq"), "growth")), 3);
    assert_string_equal(status_of(o, "dlq", "deadq"), "warning");
    json_decref(o);
    o = health(f, args, &rc);
    assert_string_equal(status_of(o, "dlq", "deadq"), "critical");
    assert_int_equal(rc, 1);
    json_decref(o);
    /* A growth threshold tolerates some. */
    enqueue(f, "deadq", "exit 3", 1);
    run_worker_until_dead(f, 7);
    const char *tolerant[] = {"--dlq-warning", "10", "--dlq-growth", "1", NULL};
    o = health(f, tolerant, &rc);
    assert_string_equal(status_of(o, "dlq", "deadq"), "ok");
    json_decref(o);
}

static void a_consumer_group_lag_is_checked(void **state)
{
    fixture *f = *state;
    enqueue(f, "gq", "exit 0", 4); /* 4 events on the stream, and the streams made */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, f->srv.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "billing";
    cc.AckPolicy = js_AckExplicit;
    assert_int_equal(js_AddConsumer(NULL, js, "NAQ_JOB_EVENTS", &cc, NULL, NULL), NATS_OK);
    int rc = 0;
    const char *args[] = {"--lag-warning", "3", "--min-workers", "0", NULL};
    json_t *o = health(f, args, &rc);
    assert_int_equal((int)value_of(o, "lag", "billing"), 4);
    assert_string_equal(status_of(o, "lag", "billing"), "warning");
    json_decref(o);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void stream_use_against_its_limit(void **state)
{
    fixture *f = *state;
    add_env(f, "NAQ_EVENT_MAX_MSGS=20"); /* the first command makes the stream so */
    enqueue(f, "fullq", "exit 0", 17);
    int rc = 0;
    const char *args[] = {"--min-workers", "0", NULL};
    json_t *o = health(f, args, &rc);
    assert_int_equal((int)value_of(o, "stream", "NAQ_JOB_EVENTS"), 85);
    assert_string_equal(status_of(o, "stream", "NAQ_JOB_EVENTS"), "warning");
    json_decref(o);
    enqueue(f, "fullq", "exit 0", 3); /* 20 of 20: above 95% */
    o = health(f, args, &rc);
    assert_string_equal(status_of(o, "stream", "NAQ_JOB_EVENTS"), "critical");
    json_decref(o);
}

static void rollup_lag_and_the_local_spool_are_checked(void **state)
{
    fixture *f = *state;
    enqueue(f, "rq", "exit 0", 3);
    char dir[300], path[360];
    snprintf(dir, sizeof dir, "%s/spool", f->srv.dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/999-deadbeef.spool", dir);
    naq__spool *sp = NULL;
    assert_int_equal(naq__spool_open(path, 1 << 20, &sp), NAQ_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(naq__spool_append(sp, "record", 6), NAQ_OK);
    naq__spool_close(sp);
    int rc = 0;
    const char *args[] = {"--rollup-warning",
                          "2",
                          "--rollup-critical",
                          "100",
                          "--spool-critical",
                          "2",
                          "--min-workers",
                          "0",
                          NULL};
    json_t *o = health(f, args, &rc);
    assert_int_equal((int)value_of(o, "rollup", ""), 3);
    assert_string_equal(status_of(o, "rollup", ""), "warning");
    assert_int_equal((int)value_of(o, "spool", ""), 3);
    assert_string_equal(status_of(o, "spool", ""), "critical");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "critical");
    assert_int_equal(rc, 1);
    json_decref(o);
}

static void bad_thresholds_are_usage_errors_and_help_states_exit_codes(void **state)
{
    fixture *f = *state;
    const char *bad[] = {"health", "--lag-warning", "lots", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(bad, f->env, &out, &err), 2);
    assert_non_null(strstr(err, "--lag-warning"));
    free(out);
    free(err);
    add_env(f, "NAQ_HEALTH_DLQ_WARNING=ten");
    const char *plain[] = {"health", NULL};
    assert_int_equal(naq_test_run_cli(plain, f->env, &out, &err), 2);
    assert_non_null(strstr(err, "NAQ_HEALTH_DLQ_WARNING"));
    free(out);
    free(err);
    const char *help[] = {"health", "--help", NULL};
    assert_int_equal(naq_test_run_cli(help, f->env, &out, NULL), 0);
    assert_non_null(strstr(out, "exit codes: 0 healthy"));
    assert_non_null(strstr(out, "NAQ_HEALTH_LAG_CRITICAL"));
    free(out);
}

static const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    T(a_fresh_server_is_healthy_and_exits_0),
    T(queue_lag_and_no_workers_turn_warning_then_critical),
    T(dlq_size_and_growth_since_the_last_check),
    T(a_consumer_group_lag_is_checked),
    T(stream_use_against_its_limit),
    T(rollup_lag_and_the_local_spool_are_checked),
    T(bad_thresholds_are_usage_errors_and_help_states_exit_codes),
#undef T
};

NAQ_TEST_MAIN(tests)
