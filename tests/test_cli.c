/*
 * test_cli.c - the naq binary as a user runs it: what it prints on stdout
 * and stderr, its exit codes (0 ok, 1 failure, 2 bad usage), and the
 * commands working together against a real nats-server.
 */
#include "harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "naq/health.h"

#define MAX_SPAWNED 4

/* A server, the environment that points the CLI at it, and the CLI
 * processes a test started (killed in teardown if the test failed). */
typedef struct {
    naq_test_server srv;
    char env_url[96];
    char env_spool[320];
    const char *env[3];
    pid_t spawned[MAX_SPAWNED];
    int nspawned;
    char data[64]; /* a temp dir for `naq server --data` */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    naq_test_server_start(&f->srv);
    snprintf(f->env_url, sizeof f->env_url, "NAQ_URL=%s", f->srv.url);
    snprintf(f->env_spool, sizeof f->env_spool, "NAQ_SPOOL_DIR=%s/spool", f->srv.dir);
    f->env[0] = f->env_url;
    f->env[1] = f->env_spool;
    f->env[2] = NULL;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < f->nspawned; i++) {
        if (f->spawned[i] > 0) {
            kill(f->spawned[i], SIGKILL);
            waitpid(f->spawned[i], NULL, 0);
        }
    }
    naq_test_server_destroy(&f->srv);
    if (f->data[0] != '\0')
        naq_test_rmtree(f->data);
    free(f);
    return 0;
}

static pid_t spawn(fixture *f, const char *const *argv, const char *const *env, const char *log)
{
    assert_true(f->nspawned < MAX_SPAWNED);
    pid_t pid = naq_test_spawn_cli(argv, env, log);
    f->spawned[f->nspawned++] = pid;
    return pid;
}

/* Sends sig and returns the exit code (128+signal if killed), waiting up to
 * 15 s; marks the process as reaped. */
static int stop_spawned(fixture *f, pid_t pid, int sig)
{
    kill(pid, sig);
    int st = 0;
    for (int i = 0; i < 1500; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            for (int j = 0; j < f->nspawned; j++)
                if (f->spawned[j] == pid)
                    f->spawned[j] = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    fail_msg("process %d did not exit within 15 s of signal %d", (int)pid, sig);
    return -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return strdup("");
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += n;
        if (len + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    fclose(fp);
    return buf;
}

/* The start of a file, for a failure message: a static buffer, because
 * fail_msg() never returns to free anything. */
static const char *show(const char *path)
{
    static char buf[8192];
    buf[0] = '\0';
    FILE *fp = fopen(path, "r");
    if (fp != NULL) {
        buf[fread(buf, 1, sizeof buf - 1, fp)] = '\0';
        fclose(fp);
    }
    return buf;
}

static int file_contains(const char *path, const char *needle)
{
    char *text = slurp(path);
    int found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

static int is_job_id_line(const char *out)
{
    if (strlen(out) != 33 || out[32] != '\n')
        return 0;
    for (int i = 0; i < 32; i++)
        if (!((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f')))
            return 0;
    return 1;
}

/* Runs `naq enqueue ARGS` against f's server and returns the id it printed. */
static void enqueue(fixture *f, const char *const *argv, char id[NAQ_ID_SIZE])
{
    char *out = NULL, *err = NULL;
    int rc = naq_test_run_cli(argv, f->env, &out, &err);
    if (rc != 0 || !is_job_id_line(out))
        fail_msg("naq enqueue: exit %d, stdout '%s', stderr '%s'", rc, out, err);
    snprintf(id, NAQ_ID_SIZE, "%.32s", out);
    free(out);
    free(err);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Polls until the last event of job `id` is of type `want` (10 s). */
typedef struct {
    naq_client *c;
    const char *id;
    naq_event_type want;
} last_is;

static int last_event_is(void *ud)
{
    last_is *l = ud;
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_ENQUEUED);
    int yes = naq_job_last_event(l->c, l->id, &e) == NAQ_OK && e.type == l->want;
    naq_event_clear(&e);
    return yes;
}

/* The first event of `type` in the job's history (copied into *out, which
 * the caller clears); fails the test when there is none. */
static void first_event_of(naq_client *c, const char *id, naq_event_type type, naq_event *out)
{
    naq_event_list l = {0};
    assert_int_equal(naq_job_history(c, id, &l), NAQ_OK);
    for (size_t i = 0; i < l.count; i++) {
        if (l.items[i].type == type) {
            *out = l.items[i];
            memset(&l.items[i], 0, sizeof l.items[i]);
            naq_event_list_free(&l);
            return;
        }
    }
    naq_event_list_free(&l);
    fail_msg("job %s has no %s event", id, naq_event_type_name(type));
}

/* ---- usage, help, exit codes (no server) ---- */

static void every_command_and_subcommand_has_help_exiting_0(void **state)
{
    (void)state;
    static const char *const cases[][4] = {
        {"--help"},
        {"-h"},
        {"help", "enqueue"},
        {"server", "--help"},
        {"enqueue", "--help"},
        {"worker", "--help"},
        {"job", "--help"},
        {"job", "status", "--help"},
        {"events", "--help"},
        {"events", "history", "--help"},
        {"events", "stream", "--help"},
        {"events", "types", "--help"},
        {"events", "dlq", "--help"},
        {"schedule", "--help"},
        {"scheduler", "--help"},
        {"health", "--help"},
        {"metrics", "--help"},
        {"bench", "--help"},
        {"workers", "--help"},
        {"top", "--help"},
        {"dlq", "--help"},
        {"job", "result", "--help"},
        {"job", "cancel", "--help"},
        {"job", "priority", "--help"},
        {"job", "move", "--help"},
        {"job", "extend-ttl", "--help"},
        {"events", "dlq", "list", "--help"},
        {"events", "webhook", "--help"},
        {"events", "dlq", "replay", "--help"},
        {"events", "list", "--help"},
        {"events", "count", "--help"},
        {"events", "replay", "--help"},
        {"events", "stats", "--help"},
        {"events", "workers", "--help"},
        {"events", "delete", "--help"},
        {"events", "cleanup", "--help"},
        {"events", "rollup", "--help"},
        {"schedule", "add", "--help"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = naq_test_run_cli(cases[i], NULL, &out, &err);
        if (rc != 0 || strstr(out, "usage:") == NULL || err[0] != '\0')
            fail_msg("naq %s %s: exit %d, stdout '%.80s', stderr '%s'", cases[i][0],
                     cases[i][1] ? cases[i][1] : "", rc, out, err);
        /* docs/cli.md: every help ends with its exit codes. */
        const char *codes = strstr(out, "exit codes:");
        if (codes == NULL || strstr(codes, "2 bad usage") == NULL ||
            strchr(strstr(codes, "2 bad usage"), '\n')[1] != '\0')
            fail_msg("naq %s %s %s: the help does not end with its exit codes:\n%s", cases[i][0],
                     cases[i][1] ? cases[i][1] : "", cases[i][1] && cases[i][2] ? cases[i][2] : "",
                     out);
        free(out);
        free(err);
    }
}

static void version_prints_the_version(void **state)
{
    (void)state;
    const char *argv[] = {"--version", NULL};
    char *out = NULL;
    assert_int_equal(naq_test_run_cli(argv, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "naq "));
    free(out);
}

static void unknown_command_exits_2_with_a_hint(void **state)
{
    (void)state;
    const char *argv[] = {"frobnicate", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(argv, NULL, &out, &err), 2);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "naq: unknown command 'frobnicate'"));
    assert_non_null(strstr(err, "naq --help"));
    free(out);
    free(err);
}

static void no_command_exits_2(void **state)
{
    (void)state;
    const char *argv[] = {NULL};
    assert_int_equal(naq_test_run_cli(argv, NULL, NULL, NULL), 2);
}

static void unknown_option_exits_2_and_names_the_command_help(void **state)
{
    (void)state;
    const char *argv[] = {"enqueue", "--bogus", NULL};
    char *err = NULL;
    assert_int_equal(naq_test_run_cli(argv, NULL, NULL, &err), 2);
    assert_non_null(strstr(err, "--bogus"));
    assert_non_null(strstr(err, "try 'naq enqueue --help'"));
    free(err);
}

static void bad_flag_values_exit_2(void **state)
{
    (void)state;
    static const char *const cases[][8] = {
        {"enqueue", "-q", "q", "-f", "f", "--priority", "urgent"},
        {"enqueue", "-q", "q", "-f", "f", "--timeout", "soon"},
        {"enqueue", "-q", "q", "-f", "f", "--retries", "-1"},
        {"enqueue", "-q", "q", "-f", "f", "--tag", "novalue"},
        {"enqueue", "-q", "q"},
        {"enqueue", "-f", "f"},
        {"enqueue", "-q", "q", "-f", "f", "--", "echo"},
        {"worker"},
        {"worker", "-q", "q", "-c", "0"},
        {"worker", "-q", "q", "--grace", "soon"},
        {"events", "stream", "--format", "xml"},
        {"events", "stream", "--no-follow"},
        {"events", "history"},
        {"events", "nope"},
        {"job", "status"},
        {"health", "--format", "raw"},
        {"server", "--port", "70000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = naq_test_run_cli(cases[i], NULL, &out, &err);
        if (rc != 2 || out[0] != '\0' || strstr(err, "--help") == NULL)
            fail_msg("naq %s %s %s %s ...: exit %d (want 2), stdout '%s', stderr '%s'", cases[i][0],
                     cases[i][1] ? cases[i][1] : "", cases[i][1] && cases[i][2] ? cases[i][2] : "",
                     cases[i][1] && cases[i][2] && cases[i][3] ? cases[i][3] : "", rc, out, err);
        free(out);
        free(err);
    }
}

/* docs/cli.md: a usage error names the command and ends with
 * "try 'naq CMD --help'", whether the CLI or the library found it. */
static void usage_errors_name_the_command_and_end_with_try_help(void **state)
{
    (void)state;
    static const struct {
        const char *cmd;
        const char *argv[10];
    } cases[] = {
        {"naq job status", {"job", "status", "a.b"}},
        {"naq job cancel", {"job", "cancel", "a b"}},
        {"naq enqueue", {"enqueue", "-q", "bad q", "--", "true"}},
        {"naq enqueue", {"enqueue", "-q", "x", "-f", ""}},
        {"naq enqueue", {"enqueue", "-q", "x", "-f", "exec", "--args", "42"}},
        {"naq enqueue", {"enqueue", "-q", "x", "-f", "exec", "--args", "{\"argv\":[]}"}},
        {"naq schedule add", {"schedule", "add", "x", "--every", "50ms", "--", "true"}},
        {"naq schedule add", {"schedule", "add", "x", "--cron", "61 * * * *", "--", "true"}},
        {"naq schedule add", {"schedule", "add", "x", "--cron", "* * *", "--", "true"}},
        {"naq events list", {"events", "list", "--queue", "a.b"}},
        /* Contradictory or meaningless options. */
        {"naq events replay", {"events", "replay", "--since", "1h", "--from-time", "2h"}},
        {"naq events replay", {"events", "replay", "--from-seq", "5", "--since", "1h"}},
        {"naq workers", {"workers", "--since", "1h"}},
        {"naq", {"--version", "extra"}},
        {"naq worker", {"worker", "-q", "a,,b"}},
        {"naq worker", {"worker", "-q", "a,"}},
        {"naq enqueue", {"enqueue", "-q", "q", "-f", "f", "--retries", "2", "--retry-on", ""}},
        {"naq enqueue", {"enqueue", "-q", "q", "-f", "f", "--retries", "2", "--skip-on", ","}},
        {"naq enqueue", {"enqueue", "-q", "q", "-f", "f", "--result-ttl", "8d"}},
        {"naq enqueue", {"enqueue", "-q", "q", "-f", "f", "--unique-key", ""}},
    };
    const char *env[] = {"NAQ_URL=nats://127.0.0.1:1", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = naq_test_run_cli(cases[i].argv, env, &out, &err);
        char head[64], tail[64];
        snprintf(head, sizeof head, "%s: ", cases[i].cmd);
        snprintf(tail, sizeof tail, "try '%s --help'\n", cases[i].cmd);
        size_t n = strlen(err), t = strlen(tail);
        /* Users of the command line do not write C: no NULL, no naq_ calls. */
        if (rc != 2 || out[0] != '\0' || strncmp(err, head, strlen(head)) != 0 || n < t ||
            strcmp(err + n - t, tail) != 0 || strstr(err, "NULL") != NULL ||
            strstr(err, "naq_") != NULL)
            fail_msg("case %zu (%s): exit %d (want 2), stdout '%s', stderr '%s'", i, cases[i].cmd,
                     rc, out, err);
        free(out);
        free(err);
    }
}

static void events_types_lists_every_type_with_its_category(void **state)
{
    (void)state;
    const char *argv[] = {"events", "types", NULL};
    char *out = NULL;
    assert_int_equal(naq_test_run_cli(argv, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "completed"));
    assert_non_null(strstr(out, "worker_heartbeat"));
    assert_non_null(strstr(out, "scheduler"));
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, NAQ_EVENT_TYPE_COUNT + 1); /* + the header */
    free(out);
}

static void events_stream_rejects_an_unknown_type_naming_the_list(void **state)
{
    (void)state;
    const char *argv[] = {"events", "stream", "--type", "finished", NULL};
    char *err = NULL;
    assert_int_equal(naq_test_run_cli(argv, NULL, NULL, &err), 2);
    assert_non_null(strstr(err, "finished"));
    assert_non_null(strstr(err, "naq events types"));
    free(err);
}

static void unreachable_server_fails_within_3_s_saying_how_to_start_one(void **state)
{
    (void)state;
    char url[96];
    snprintf(url, sizeof url, "NAQ_URL=nats://127.0.0.1:%d", naq_test_free_port());
    const char *env[] = {url, "NAQ_SPOOL_DIR=none", NULL};
    const char *const commands[][6] = {
        {"enqueue", "-q", "q", "-f", "f", NULL},
        {"health", NULL},
        {"job", "status", "0123456789abcdef0123456789abcdef", NULL},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char *out = NULL, *err = NULL;
        int64_t t0 = now_ms();
        int rc = naq_test_run_cli(commands[i], env, &out, &err);
        int64_t took = now_ms() - t0;
        if (rc != 1 || took >= 3000 || strstr(err, "naq: cannot reach NATS") == NULL ||
            strstr(err, "naq server") == NULL || strstr(err, "NAQ_URL") == NULL || out[0] != '\0')
            fail_msg("naq %s: exit %d after %lld ms, stdout '%s', stderr '%s'", commands[i][0], rc,
                     (long long)took, out, err);
        free(out);
        free(err);
    }
}

static void a_malformed_url_is_bad_usage_naming_the_variable_and_the_form(void **state)
{
    (void)state;
    static const char *const urls[] = {"NAQ_URL=bogus", "NAQ_URL=nats://127.0.0.1:notaport"};
    const char *argv[] = {"health", NULL};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        const char *env[] = {urls[i], NULL};
        char *out = NULL, *err = NULL;
        int rc = naq_test_run_cli(argv, env, &out, &err);
        if (rc != 2 || strstr(err, "NAQ_URL") == NULL || strstr(err, "nats://HOST:PORT") == NULL ||
            strstr(err, "cannot reach") != NULL || strstr(err, "try 'naq health --help'") == NULL)
            fail_msg("%s: exit %d (want 2), stderr '%s'", urls[i], rc, err);
        free(out);
        free(err);
    }
    const char *flag[] = {"health", "--url", "nats://h:99999", NULL};
    char *err = NULL;
    assert_int_equal(naq_test_run_cli(flag, NULL, NULL, &err), 2);
    if (strstr(err, "--url") == NULL || strstr(err, "port") == NULL)
        fail_msg("--url nats://h:99999: stderr '%s'", err);
    free(err);
}

/* ---- against a server ---- */

static void enqueue_prints_only_the_job_id(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"enqueue", "-q",    "default",   "-f",         "noop", "--args",
                          "[1,2]",   "--tag", "team=core", "--priority", "high", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(argv, f->env, &out, &err), 0);
    if (!is_job_id_line(out))
        fail_msg("stdout is not one 32-hex id line: '%s'", out);
    free(out);
    free(err);

    const char *cmd[] = {"enqueue", "-q", "default", "--", "sh", "-c", "echo hi", NULL};
    char id[NAQ_ID_SIZE];
    enqueue(f, cmd, id);
}

static void enqueue_with_a_bad_queue_name_exits_2_and_queues_nothing(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"enqueue", "-q", "bad.queue", "-f", "noop", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(argv, f->env, &out, &err), 2);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "bad.queue"));
    free(out);
    free(err);

    naq_client *c = naq_test_connect(&f->srv);
    naq_health_report r;
    assert_int_equal(naq_health(c, &r), NAQ_OK);
    assert_int_equal(r.streams[NAQ_HEALTH_JOBS].messages, 0);
    assert_int_equal(r.streams[NAQ_HEALTH_EVENTS].messages, 0);
    naq_client_destroy(c);
}

static void enqueue_with_the_same_id_twice_prints_that_id(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"enqueue", "-q", "default", "-f", "noop", "--id", "my-job-1", NULL};
    char *out = NULL;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(naq_test_run_cli(argv, f->env, &out, NULL), 0);
        assert_string_equal(out, "my-job-1\n");
        free(out);
    }
}

static void health_reports_the_three_streams_and_exits_0(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"health", "--format", "json", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(argv, f->env, &out, &err), 0);
    json_error_t jerr;
    json_t *o = json_loads(out, 0, &jerr);
    if (o == NULL)
        fail_msg("not JSON: %s: '%s'", jerr.text, out);
    assert_true(json_is_true(json_object_get(o, "healthy")));
    assert_string_equal(json_string_value(json_object_get(o, "url")), f->srv.url);
    assert_int_equal(json_array_size(json_object_get(o, "streams")), 3);
    json_decref(o);
    free(out);
    free(err);

    const char *table[] = {"health", NULL};
    assert_int_equal(naq_test_run_cli(table, f->env, &out, NULL), 0);
    assert_non_null(strstr(out, "NAQ_JOB_EVENTS"));
    assert_non_null(strstr(out, "healthy"));
    free(out);
}

static void job_status_of_an_unknown_job_exits_1_saying_so(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"job", "status", "0123456789abcdef0123456789abcdef", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(argv, f->env, &out, &err), 1);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "no events for job 0123456789abcdef0123456789abcdef"));
    free(out);
    free(err);

    const char *hist[] = {"events", "history", "0123456789abcdef0123456789abcdef", NULL};
    assert_int_equal(naq_test_run_cli(hist, f->env, NULL, &err), 1);
    assert_non_null(strstr(err, "no events for job"));
    free(err);
}

static void job_status_shows_an_enqueued_job(void **state)
{
    fixture *f = *state;
    const char *argv[] = {"enqueue", "-q", "waiting", "-f", "noop", NULL};
    char id[NAQ_ID_SIZE];
    enqueue(f, argv, id);

    /* The enqueued event is logged asynchronously after the job is stored. */
    naq_client *c = naq_test_connect(&f->srv);
    naq_event last;
    int seen = 0;
    for (int i = 0; i < 250 && !seen; i++) {
        naq_event_init(&last, NAQ_EVENT_ENQUEUED);
        seen = naq_job_last_event(c, id, &last) == NAQ_OK;
        naq_event_clear(&last);
        if (!seen)
            usleep(20000);
    }
    naq_client_destroy(c);
    assert_true(seen);

    const char *status[] = {"job", "status", id, NULL};
    char *out = NULL;
    assert_int_equal(naq_test_run_cli(status, f->env, &out, NULL), 0);
    char want[256];
    snprintf(want, sizeof want, "JOB %s  state=enqueued  queue=waiting", id);
    if (strstr(out, want) == NULL)
        fail_msg("want '%s' in '%s'", want, out);
    free(out);

    const char *json[] = {"job", "status", id, "--format", "json", NULL};
    assert_int_equal(naq_test_run_cli(json, f->env, &out, NULL), 0);
    json_t *o = json_loads(out, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "event_type")), "enqueued");
    assert_string_equal(json_string_value(json_object_get(o, "job_id")), id);
    json_decref(o);
    free(out);
}

static int job_completed(void *ud)
{
    void **args = ud;
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_ENQUEUED);
    int done = naq_job_last_event(args[0], args[1], &e) == NAQ_OK && e.type == NAQ_EVENT_COMPLETED;
    naq_event_clear(&e);
    return done;
}

static void cli_worker_runs_a_cli_job_and_history_shows_it_as_jsonl(void **state)
{
    fixture *f = *state;
    const char *enq[] = {"enqueue", "-q", "clijobs", "--", "sh", "-c", "exit 0", NULL};
    char id[NAQ_ID_SIZE];
    enqueue(f, enq, id);

    char log[320];
    snprintf(log, sizeof log, "%s/worker.log", f->srv.dir);
    const char *work[] = {"worker", "-q", "clijobs", "--id", "cli-worker", NULL};
    pid_t w = spawn(f, work, f->env, log);

    naq_client *c = naq_test_connect(&f->srv);
    void *args[] = {c, id};
    int completed = naq_test_wait_for(job_completed, args, 30000);
    naq_client_destroy(c);
    if (!completed)
        fail_msg("job %s not completed within 30 s; worker log:\n%s", id, show(log));
    assert_int_equal(stop_spawned(f, w, SIGTERM), 0);
    assert_true(file_contains(log, "naq worker cli-worker on queues clijobs with concurrency 1"));
    assert_true(file_contains(log, "processed 1 (completed 1, failed 0)"));

    const char *hist[] = {"events", "history", id, "--format", "json", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(hist, f->env, &out, &err), 0);
    int lines = 0;
    char first[32] = "", last[32] = "";
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        if (o == NULL || !json_is_object(o))
            fail_msg("line %d is not a JSON object (%s): '%s'", lines + 1, jerr.text, line);
        assert_string_equal(json_string_value(json_object_get(o, "job_id")), id);
        assert_true(json_integer_value(json_object_get(o, "nats_sequence")) > 0);
        assert_non_null(json_string_value(json_object_get(o, "nats_subject")));
        const char *type = json_string_value(json_object_get(o, "event_type"));
        assert_non_null(type);
        snprintf(last, sizeof last, "%s", type);
        if (lines++ == 0)
            snprintf(first, sizeof first, "%s", type);
        json_decref(o);
    }
    assert_true(lines >= 2);
    assert_string_equal(first, "enqueued");
    assert_string_equal(last, "completed");
    free(out);
    free(err);

    const char *table[] = {"events", "history", id, NULL};
    assert_int_equal(naq_test_run_cli(table, f->env, &out, NULL), 0);
    assert_non_null(strstr(out, "TIME"));
    assert_non_null(strstr(out, "completed"));
    free(out);

    const char *status[] = {"job", "status", id, NULL};
    assert_int_equal(naq_test_run_cli(status, f->env, &out, NULL), 0);
    assert_non_null(strstr(out, "state=completed"));
    free(out);
}

static void events_stream_follows_matching_events_until_sigint(void **state)
{
    fixture *f = *state;
    const char *first[] = {"enqueue", "-q", "watched", "-f", "noop", NULL};
    char a[NAQ_ID_SIZE], b[NAQ_ID_SIZE], other[NAQ_ID_SIZE];
    enqueue(f, first, a);

    /* --tail 1 shows job a once the stream is running, so the events enqueued
     * after that must arrive live. */
    char log[320];
    snprintf(log, sizeof log, "%s/stream.log", f->srv.dir);
    const char *argv[] = {"events", "stream", "--queue",  "watched", "--type", "enqueued",
                          "--tail", "1",      "--format", "json",    NULL};
    pid_t s = spawn(f, argv, f->env, log);
    int shown = 0;
    for (int i = 0; i < 1000 && !shown; i++) {
        shown = file_contains(log, a);
        if (!shown)
            usleep(10000);
    }
    if (!shown)
        fail_msg("stream did not show job %s; log:\n%s", a, show(log));
    const char *elsewhere[] = {"enqueue", "-q", "unwatched", "-f", "noop", NULL};
    enqueue(f, elsewhere, other);
    enqueue(f, first, b);
    for (int i = 0; i < 1000 && !(shown = file_contains(log, b)); i++)
        usleep(10000);
    assert_true(shown);
    assert_int_equal(stop_spawned(f, s, SIGINT), 0);
    assert_false(file_contains(log, other));
}

static int server_reachable(void *ud)
{
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%s", (const char *)ud);
    cfg.disable_logging = 1;
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK)
        return 0;
    naq_client_destroy(c);
    return 1;
}

static void server_command_serves_jetstream_and_stops_on_sigterm_with_0(void **state)
{
    fixture *f = *state;
    snprintf(f->data, sizeof f->data, "/tmp/naq-test-server-XXXXXX");
    assert_non_null(mkdtemp(f->data));
    char port[16], url[64], env_url[96], log[320];
    int p = naq_test_free_port();
    snprintf(port, sizeof port, "%d", p);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", p);
    snprintf(env_url, sizeof env_url, "NAQ_URL=%s", url);
    snprintf(log, sizeof log, "%s/cli.log", f->srv.dir);

    const char *argv[] = {"server", "--port", port, "--data", f->data, NULL};
    pid_t pid = spawn(f, argv, NULL, log);
    char want[512];
    snprintf(want, sizeof want, "naq server ready at %s (data in %s)", url, f->data);
    int ready = 0;
    for (int i = 0; i < 1000 && !ready; i++) {
        ready = file_contains(log, want);
        if (!ready)
            usleep(10000);
    }
    if (!ready)
        fail_msg("no '%s' within 10 s; the output of naq server:\n%s", want, show(log));
    /* Ready means reachable, with JetStream. */
    assert_true(server_reachable(url));
    const char *env[] = {env_url, "NAQ_SPOOL_DIR=none", NULL};
    const char *health[] = {"health", NULL};
    assert_int_equal(naq_test_run_cli(health, env, NULL, NULL), 0);

    assert_int_equal(stop_spawned(f, pid, SIGTERM), 0);
    assert_true(file_contains(log, "export NAQ_URL="));
    assert_true(file_contains(log, "naq server stopped"));
    assert_false(server_reachable(url));
}

static void server_command_refuses_a_port_in_use_leaving_no_data_directory(void **state)
{
    fixture *f = *state;
    snprintf(f->data, sizeof f->data, "/tmp/naq-test-server-XXXXXX");
    assert_non_null(mkdtemp(f->data));
    char port[16], dir[96];
    snprintf(port, sizeof port, "%d", f->srv.port);
    snprintf(dir, sizeof dir, "%s/new/data", f->data);
    const char *argv[] = {"server", "--port", port, "--data", dir, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(argv, NULL, &out, &err), 1);
    char want[96];
    snprintf(want, sizeof want, "port %d is in use", f->srv.port);
    if (strstr(err, want) == NULL || strstr(err, "--port") == NULL)
        fail_msg("want '%s' in stderr '%s'", want, err);
    char parent[96];
    snprintf(parent, sizeof parent, "%s/new", f->data);
    if (access(parent, F_OK) == 0)
        fail_msg("naq server left %s behind", parent);
    free(out);
    free(err);
}

/* Every row's value of column `title` starts where the header's title
 * does, and is `want`. */
static void assert_column(const char *table, const char *title, const char *want)
{
    const char *nl = strchr(table, '\n');
    const char *at = strstr(table, title);
    if (nl == NULL || at == NULL || at > nl)
        fail_msg("no column %s in:\n%s", title, table);
    size_t col = (size_t)(at - table);
    int rows = 0;
    for (const char *row = nl + 1; *row != '\0'; rows++) {
        const char *end = strchr(row, '\n');
        size_t len = end ? (size_t)(end - row) : strlen(row);
        if (len < col + strlen(want) || strncmp(row + col, want, strlen(want)) != 0)
            fail_msg("row %d does not have %s under %s:\n%s", rows + 1, want, title, table);
        row += len + (end != NULL);
    }
    assert_true(rows > 0);
}

static void a_long_job_id_does_not_push_the_columns_out_of_line(void **state)
{
    fixture *f = *state;
    char long_id[101];
    memset(long_id, 'x', 100);
    long_id[100] = '\0';
    const char *a[] = {"enqueue", "-q", "wide", "-f", "noop", "--id", long_id, NULL};
    const char *b[] = {"enqueue", "-q", "wide", "-f", "noop", "--id", "short", NULL};
    assert_int_equal(naq_test_run_cli(a, f->env, NULL, NULL), 0);
    assert_int_equal(naq_test_run_cli(b, f->env, NULL, NULL), 0);
    naq_client *c = naq_test_connect(&f->srv);
    last_is logged = {c, "short", NAQ_EVENT_ENQUEUED};
    assert_true(naq_test_wait_for(last_event_is, &logged, 10000));
    logged.id = long_id;
    assert_true(naq_test_wait_for(last_event_is, &logged, 10000));
    naq_client_destroy(c);
    const char *list[] = {"events", "list", "--queue", "wide", NULL};
    char *out = NULL;
    assert_int_equal(naq_test_run_cli(list, f->env, &out, NULL), 0);
    assert_column(out, "QUEUE", "wide ");
    assert_column(out, "ATTEMPT", "- ");
    free(out);
}

/* ---- delayed jobs ---- */

static void enqueue_in_runs_the_job_no_earlier_than_the_delay(void **state)
{
    fixture *f = *state;
    char log[320];
    snprintf(log, sizeof log, "%s/procs.log", f->srv.dir);
    const char *sched[] = {"scheduler", "--no-rollup", NULL};
    const char *work[] = {"worker", "-q", "later", NULL};
    pid_t scheduler = spawn(f, sched, f->env, log);
    spawn(f, work, f->env, log);

    double t0 = wall_now();
    const char *argv[] = {"enqueue", "-q", "later", "--in", "3s", "--", "true", NULL};
    char id[NAQ_ID_SIZE];
    enqueue(f, argv, id);

    naq_client *c = naq_test_connect(&f->srv);
    last_is scheduled = {c, id, NAQ_EVENT_SCHEDULED};
    assert_true(naq_test_wait_for(last_event_is, &scheduled, 10000));
    last_is done = {c, id, NAQ_EVENT_COMPLETED};
    if (!naq_test_wait_for(last_event_is, &done, 20000))
        fail_msg("job %s did not complete within 20 s; log:\n%s", id, show(log));
    naq_event started;
    first_event_of(c, id, NAQ_EVENT_STARTED, &started);
    if (started.timestamp < t0 + 3.0)
        fail_msg("the job started %.3f s after the enqueue, before its 3 s delay",
                 started.timestamp - t0);
    naq_event_clear(&started);
    naq_client_destroy(c);
    /* Its summary counts in the singular for one. */
    assert_int_equal(stop_spawned(f, scheduler, SIGTERM), 0);
    if (!file_contains(log, "0 triggers, 1 delayed job released"))
        fail_msg("scheduler summary; log:\n%s", show(log));
}

static void enqueue_at_reads_an_offset_as_local_time_there(void **state)
{
    fixture *f = *state;
    /* An hour from now, written as local time at +01:00: the wall clock
     * there reads two hours ahead of UTC's now. */
    time_t at = (time_t)wall_now() + 3600;
    time_t there = at + 3600;
    struct tm tm;
    gmtime_r(&there, &tm);
    char text[64];
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S+01:00", &tm);
    const char *argv[] = {"enqueue", "-q", "later", "--at", text, "-f", "noop", NULL};
    char id[NAQ_ID_SIZE];
    enqueue(f, argv, id);

    naq_client *c = naq_test_connect(&f->srv);
    last_is scheduled = {c, id, NAQ_EVENT_SCHEDULED};
    assert_true(naq_test_wait_for(last_event_is, &scheduled, 10000));
    naq_event e;
    first_event_of(c, id, NAQ_EVENT_SCHEDULED, &e);
    json_t *d = json_loads(e.details_json ? e.details_json : "", 0, NULL);
    double run_at = json_number_value(json_object_get(d, "run_at"));
    if (run_at != (double)at)
        fail_msg("--at %s: run_at %.3f, want %lld", text, run_at, (long long)at);
    json_decref(d);
    naq_event_clear(&e);
    naq_client_destroy(c);

    /* docs/jobs.md: a delayed job is cancelled at once and never runs. */
    const char *cancel[] = {"job", "cancel", id, NULL};
    char *out = NULL;
    assert_int_equal(naq_test_run_cli(cancel, f->env, &out, NULL), 0);
    if (strstr(out, "will not run") == NULL)
        fail_msg("naq job cancel of a delayed job printed '%s'", out);
    free(out);
}

static void enqueue_refuses_contradictory_delays(void **state)
{
    (void)state;
    static const char *const cases[][10] = {
        {"enqueue", "-q", "q", "--in", "5s", "--at", "2030-01-01T00:00:00Z", "-f", "f"},
        {"enqueue", "-q", "q", "--at", "30s", "-f", "f"},
        {"enqueue", "-q", "q", "--in", "soon", "-f", "f"},
        {"enqueue", "-q", "q", "--in", "5s", "--unique-key", "k", "-f", "f"},
        {"enqueue", "-q", "q", "--in", "5s", "--batch", "-"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = naq_test_run_cli(cases[i], NULL, &out, &err);
        if (rc != 2 || out[0] != '\0' || strstr(err, "try 'naq enqueue --help'") == NULL)
            fail_msg("case %zu: exit %d (want 2), stdout '%s', stderr '%s'", i, rc, out, err);
        free(out);
        free(err);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_command_and_subcommand_has_help_exiting_0),
    cmocka_unit_test(version_prints_the_version),
    cmocka_unit_test(unknown_command_exits_2_with_a_hint),
    cmocka_unit_test(no_command_exits_2),
    cmocka_unit_test(unknown_option_exits_2_and_names_the_command_help),
    cmocka_unit_test(bad_flag_values_exit_2),
    cmocka_unit_test(usage_errors_name_the_command_and_end_with_try_help),
    cmocka_unit_test(events_types_lists_every_type_with_its_category),
    cmocka_unit_test(events_stream_rejects_an_unknown_type_naming_the_list),
    cmocka_unit_test(unreachable_server_fails_within_3_s_saying_how_to_start_one),
    cmocka_unit_test(a_malformed_url_is_bad_usage_naming_the_variable_and_the_form),
    cmocka_unit_test_setup_teardown(enqueue_prints_only_the_job_id, setup, teardown),
    cmocka_unit_test_setup_teardown(enqueue_with_a_bad_queue_name_exits_2_and_queues_nothing, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(enqueue_with_the_same_id_twice_prints_that_id, setup, teardown),
    cmocka_unit_test_setup_teardown(health_reports_the_three_streams_and_exits_0, setup, teardown),
    cmocka_unit_test_setup_teardown(job_status_of_an_unknown_job_exits_1_saying_so, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(job_status_shows_an_enqueued_job, setup, teardown),
    cmocka_unit_test_setup_teardown(cli_worker_runs_a_cli_job_and_history_shows_it_as_jsonl, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(events_stream_follows_matching_events_until_sigint, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(server_command_serves_jetstream_and_stops_on_sigterm_with_0,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(server_command_refuses_a_port_in_use_leaving_no_data_directory,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(enqueue_in_runs_the_job_no_earlier_than_the_delay, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(enqueue_at_reads_an_offset_as_local_time_there, setup,
                                    teardown),
    cmocka_unit_test(enqueue_refuses_contradictory_delays),
    cmocka_unit_test_setup_teardown(a_long_job_id_does_not_push_the_columns_out_of_line, setup,
                                    teardown),
};

NAQ_TEST_MAIN(tests)
