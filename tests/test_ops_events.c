/*
 * test_ops_events.c - the events the model declares and naq now emits:
 * schedule_paused, schedule_resumed and schedule_deactivated at a
 * schedule's transitions (on the subject of the job it makes next, or made
 * last), ttl_extended by `naq job extend-ttl`, and the periodic
 * system_metrics snapshot of workers and schedulers (off with 0). Real
 * server, the naq binary as a user runs it.
 */
#include "harness.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    naq_test_server srv;
    char url[96], spool[320];
    const char *env[3];
    pid_t child[3];
    int nchild;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    naq_test_server_start(&f->srv);
    snprintf(f->url, sizeof f->url, "NAQ_URL=%s", f->srv.url);
    snprintf(f->spool, sizeof f->spool, "NAQ_SPOOL_DIR=%s/spool", f->srv.dir);
    f->env[0] = f->url;
    f->env[1] = f->spool;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < f->nchild; i++) {
        kill(f->child[i], SIGKILL);
        waitpid(f->child[i], NULL, 0);
    }
    naq_test_server_destroy(&f->srv);
    free(f);
    return 0;
}

static pid_t spawn(fixture *f, const char *const *argv, const char *name)
{
    char log[320];
    snprintf(log, sizeof log, "%s/%s.log", f->srv.dir, name);
    pid_t pid = naq_test_spawn_cli(argv, f->env, log);
    f->child[f->nchild++] = pid;
    return pid;
}

static void stop(fixture *f, pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < f->nchild; i++)
        if (f->child[i] == pid)
            f->child[i] = f->child[--f->nchild];
}

static char *run(fixture *f, const char *const *argv, int want_rc)
{
    char *out = NULL, *err = NULL;
    int rc = naq_test_run_cli(argv, f->env, &out, &err);
    if (rc != want_rc)
        fail_msg("naq %s %s: exit %d, want %d; stderr: %s", argv[0], argv[1] ? argv[1] : "", rc,
                 want_rc, err);
    free(err);
    return out;
}

/* The events of one type, as a JSON array (decref it). */
static json_t *events_of(fixture *f, const char *type)
{
    const char *argv[] = {"events", "list", "--type", type, "--format", "json", NULL};
    char *out = run(f, argv, 0);
    json_t *a = json_array();
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        if (o == NULL)
            fail_msg("not JSON: '%s'", line);
        json_array_append_new(a, o);
    }
    free(out);
    return a;
}

/* Waits up to timeout_ms for at least n events of type; returns them. */
static json_t *wait_events(fixture *f, const char *type, size_t n, int timeout_ms)
{
    json_t *a = NULL;
    for (int waited = 0;; waited += 100) {
        json_decref(a);
        a = events_of(f, type);
        if (json_array_size(a) >= n || waited >= timeout_ms)
            return a;
        usleep(100000);
    }
}

static const char *str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static json_t *details(json_t *e)
{
    return json_object_get(e, "details");
}

static void pause_and_resume_are_told_on_the_next_job_of_the_schedule(void **state)
{
    fixture *f = *state;
    const char *add[] = {"schedule", "add", "nightly", "--every", "1h",
                         "-q",       "sq",  "--",      "true",    NULL};
    free(run(f, add, 0));
    const char *pause[] = {"schedule", "pause", "nightly", NULL};
    free(run(f, pause, 0));
    free(run(f, pause, 0)); /* already paused: no second event */
    json_t *paused = wait_events(f, "schedule_paused", 1, 5000);
    assert_int_equal(json_array_size(paused), 1);
    json_t *e = json_array_get(paused, 0);
    assert_string_equal(str(e, "schedule_id"), "nightly");
    assert_string_equal(str(e, "queue_name"), "sq");
    /* The job it makes next: NAME-<due time in ms>. */
    const char *job = str(e, "job_id");
    double due = json_number_value(json_object_get(details(e), "due"));
    char want[128];
    snprintf(want, sizeof want, "nightly-%lld", (long long)llround(due * 1000.0));
    assert_string_equal(job, want);

    const char *resume[] = {"schedule", "resume", "nightly", NULL};
    free(run(f, resume, 0));
    json_t *resumed = wait_events(f, "schedule_resumed", 1, 5000);
    assert_int_equal(json_array_size(resumed), 1);
    assert_string_equal(str(json_array_get(resumed, 0), "schedule_id"), "nightly");
    assert_true(strncmp(str(json_array_get(resumed, 0), "job_id"), "nightly-", 8) == 0);

    /* The next job's own history tells the pause. */
    const char *hist[] = {"events", "history", job, "--format", "json", NULL};
    char *out = run(f, hist, 0);
    assert_non_null(strstr(out, "\"schedule_paused\""));
    free(out);

    const char *rm[] = {"schedule", "rm", "nightly", NULL};
    free(run(f, rm, 0));
    json_t *gone = wait_events(f, "schedule_deactivated", 1, 5000);
    assert_int_equal(json_array_size(gone), 1);
    assert_string_equal(str(details(json_array_get(gone, 0)), "reason"), "removed");
    assert_string_equal(str(json_array_get(gone, 0), "schedule_id"), "nightly");
    json_decref(paused);
    json_decref(resumed);
    json_decref(gone);
}

static void a_schedule_that_made_its_last_job_is_deactivated_on_that_job(void **state)
{
    fixture *f = *state;
    const char *add[] = {"schedule", "add", "once", "--at", "+1s", "-q", "oq", "--", "true", NULL};
    free(run(f, add, 0));
    const char *sched[] = {"scheduler", "--no-rollup", "--metrics-interval", "0", NULL};
    pid_t s = spawn(f, sched, "scheduler");
    json_t *gone = wait_events(f, "schedule_deactivated", 1, 15000);
    stop(f, s);
    assert_int_equal(json_array_size(gone), 1);
    json_t *e = json_array_get(gone, 0);
    assert_string_equal(str(details(e), "reason"), "finished");
    /* On the job it triggered: that job's history has both. */
    json_t *trig = events_of(f, "schedule_triggered");
    assert_int_equal(json_array_size(trig), 1);
    assert_string_equal(str(e, "job_id"), str(json_array_get(trig, 0), "job_id"));
    json_decref(trig);
    json_decref(gone);
}

static void extend_ttl_keeps_a_waiting_job_alive_and_logs_ttl_extended(void **state)
{
    fixture *f = *state;
    const char *a[] = {"enqueue", "-q", "tq", "--ttl", "2s", "--", "true", NULL};
    char *kept = run(f, a, 0), *lapsed = run(f, a, 0);
    kept[strcspn(kept, "\n")] = '\0';
    lapsed[strcspn(lapsed, "\n")] = '\0';
    const char *extend[] = {"job", "extend-ttl", kept, "30s", NULL};
    char *out = run(f, extend, 0);
    assert_non_null(strstr(out, "30s more"));
    free(out);
    json_t *ext = wait_events(f, "ttl_extended", 1, 5000);
    assert_int_equal(json_array_size(ext), 1);
    json_t *d = details(json_array_get(ext, 0));
    assert_string_equal(str(json_array_get(ext, 0), "job_id"), kept);
    assert_int_equal(json_integer_value(json_object_get(d, "extended_by_ms")), 30000);
    assert_int_equal(json_integer_value(json_object_get(d, "previous_ttl_ms")), 2000);
    /* What is left of 2 s plus 30 s, counted from the re-publish. */
    json_int_t ttl = json_integer_value(json_object_get(d, "ttl_ms"));
    assert_true(ttl > 29000 && ttl <= 32000);
    json_decref(ext);

    sleep(3); /* past the original TTL */
    const char *work[] = {"worker", "-q", "tq", "--metrics-interval", "0", NULL};
    pid_t w = spawn(f, work, "worker");
    json_t *done = wait_events(f, "completed", 1, 15000);
    json_t *expired = wait_events(f, "ttl_expired", 1, 15000);
    stop(f, w);
    assert_int_equal(json_array_size(done), 1);
    assert_string_equal(str(json_array_get(done, 0), "job_id"), kept);
    assert_int_equal(json_array_size(expired), 1);
    assert_string_equal(str(json_array_get(expired, 0), "job_id"), lapsed);
    json_decref(done);
    json_decref(expired);

    /* Usage errors and jobs that cannot be extended. */
    const char *bad[] = {"job", "extend-ttl", kept, "soon", NULL};
    free(run(f, bad, 2));
    const char *finished[] = {"job", "extend-ttl", kept, "10s", NULL};
    free(run(f, finished, 1));
    const char *nottl[] = {"enqueue", "-q", "tq2", "--", "true", NULL};
    char *id = run(f, nottl, 0);
    id[strcspn(id, "\n")] = '\0';
    const char *none[] = {"job", "extend-ttl", id, "10s", NULL};
    char *err = NULL, *o2 = NULL;
    assert_int_equal(naq_test_run_cli(none, f->env, &o2, &err), 1);
    assert_non_null(strstr(err, "has no TTL"));
    free(o2);
    free(err);
    free(id);
    free(kept);
    free(lapsed);
}

static void workers_and_schedulers_log_system_metrics_at_their_interval(void **state)
{
    fixture *f = *state;
    const char *enq[] = {"enqueue", "-q", "mq", "--", "true", NULL};
    free(run(f, enq, 0));
    const char *work[] = {"worker", "-q", "mq", "--id", "wk-metrics", "--metrics-interval",
                          "200ms",  NULL};
    const char *sched[] = {"scheduler",          "--no-rollup", "--id", "sc-metrics",
                           "--metrics-interval", "200ms",       NULL};
    pid_t w = spawn(f, work, "worker");
    pid_t s = spawn(f, sched, "scheduler");
    json_t *all = NULL;
    int worker_seen = 0, scheduler_seen = 0, processed = 0;
    for (int i = 0; i < 100 && !(worker_seen >= 2 && scheduler_seen >= 2 && processed); i++) {
        usleep(100000);
        json_decref(all);
        all = events_of(f, "system_metrics");
        worker_seen = scheduler_seen = processed = 0;
        size_t k;
        json_t *e;
        json_array_foreach(all, k, e)
        {
            json_t *d = details(e);
            if (strcmp(str(d, "component"), "worker") == 0) {
                worker_seen++;
                assert_string_equal(str(d, "worker_id"), "wk-metrics");
                assert_string_equal(str(e, "worker_id"), "");
                assert_true(json_is_object(json_object_get(d, "logger")));
                assert_true(json_number_value(json_object_get(e, "memory_mb")) > 0);
                if (json_integer_value(
                        json_object_get(json_object_get(d, "worker"), "completed")) == 1)
                    processed = 1;
            } else if (strcmp(str(d, "component"), "scheduler") == 0) {
                scheduler_seen++;
                assert_string_equal(str(d, "scheduler_id"), "sc-metrics");
                assert_true(json_is_object(json_object_get(d, "scheduler")));
            }
        }
    }
    stop(f, w);
    stop(f, s);
    json_decref(all);
    assert_true(worker_seen >= 2);
    assert_true(scheduler_seen >= 2);
    assert_true(processed);

    /* 0 turns them off. */
    const char *quiet[] = {"worker", "-q", "mq", "--id", "wk-quiet", "--metrics-interval",
                           "0",      NULL};
    pid_t q = spawn(f, quiet, "quiet");
    sleep(1);
    stop(f, q);
    all = events_of(f, "system_metrics");
    size_t k;
    json_t *e;
    json_array_foreach(all, k, e) assert_string_not_equal(str(details(e), "worker_id"), "wk-quiet");
    json_decref(all);
    /* A malformed interval is bad usage. */
    const char *bad[] = {"worker", "-q", "mq", "--metrics-interval", "often", NULL};
    free(run(f, bad, 2));
}

static const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    T(pause_and_resume_are_told_on_the_next_job_of_the_schedule),
    T(a_schedule_that_made_its_last_job_is_deactivated_on_that_job),
    T(extend_ttl_keeps_a_waiting_job_alive_and_logs_ttl_extended),
    T(workers_and_schedulers_log_system_metrics_at_their_interval),
#undef T
};

NAQ_TEST_MAIN(tests)
