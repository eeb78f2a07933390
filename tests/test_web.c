/*
 * test_web.c - `naq web`'s JSON API against a real server: the real `naq
 * web` process (cli/web/) on a free port, asked over HTTP with libcurl,
 * after a known workload made with the real CLI. The pages themselves are
 * tested in a real browser by tests/web/test_web_browser.c.
 */
#include "web/web_support.h"

#include <jansson.h>
#include <sys/stat.h>

#define TOKEN "api-test-token-0123456789abcdef"
#define AUTH "Authorization: Bearer " TOKEN
#define JSON_TYPE "Content-Type: application/json"
#define PAYLOAD "<script>alert(\"x\")</script>'&"

typedef struct {
    naq_test_server s;
    naq_client *c;
    web_proc web;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    naq_test_server_start(&f->s);
    f->c = naq_test_connect(&f->s);
    web_env(&f->web, &f->s, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    /* naq web stops cleanly on SIGTERM: exit 0, and under the sanitizers
     * no leak or error report (those exit non-zero). */
    int rc = f->web.pid > 0 ? web_stop(&f->web) : 0;
    if (rc != 0)
        fprintf(stderr, "naq web exited with %d on SIGTERM (log: %s)\n", rc, f->web.log);
    web_stop_all(); /* workers a failed case left behind */
    naq_client_destroy(f->c);
    naq_test_server_destroy(&f->s);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void start_web(fixture *f, int actions)
{
    const char *env[] = {"NAQ_WEB_TOKEN=" TOKEN, NULL};
    const char *args[] = {actions ? "--allow-actions" : NULL, NULL};
    assert_true(web_start(&f->web, &f->s, args, env, NULL));
}

/* GET path, expecting code; the parsed body (json_decref). */
static json_t *get_json(fixture *f, const char *path, long code)
{
    char *body = NULL;
    long got = web_http(&f->web, "GET", path, NULL, NULL, &body);
    if (got != code)
        fail_msg("GET %s: HTTP %ld, expected %ld: %s", path, got, code, body);
    json_t *v = json_loads(body, 0, NULL);
    if (v == NULL)
        fail_msg("GET %s: not JSON: %s", path, body);
    free(body);
    return v;
}

static json_t *post_json(fixture *f, const char *path, const char *const *headers, const char *body,
                         long code)
{
    char *out = NULL;
    long got = web_http(&f->web, "POST", path, headers, body, &out);
    if (got != code)
        fail_msg("POST %s: HTTP %ld, expected %ld: %s", path, got, code, out);
    json_t *v = json_loads(out, 0, NULL);
    if (v == NULL)
        fail_msg("POST %s: not JSON: %s", path, out);
    free(out);
    return v;
}

static const char *jstr(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static json_int_t jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* A job that fails for good (no retries) with PAYLOAD in its args and
 * error; waits until it is a dead letter. */
static void dead_job(fixture *f, const char *queue, char id[NAQ_ID_SIZE])
{
    web_enqueue(&f->web,
                (const char *[]){"-q", queue, "--retries", "0", "--", "sh", "-c",
                                 "printf '%s\\n' \"$0\" >&2; exit 3", PAYLOAD, NULL},
                id);
    naq_dlq_filter df = {.job_id = id};
    naq_dlq_entry_list l = {0};
    for (int i = 0; i < 500; i++) {
        naq_dlq_entry_list_free(&l);
        if (naq_dlq_list(f->c, &df, &l) == NAQ_OK && l.count == 1)
            break;
        web_sleep_ms(20);
    }
    assert_int_equal(l.count, 1);
    naq_dlq_entry_list_free(&l);
    assert_true(web_wait_last_event(f->c, id, NAQ_EVENT_MAX_RETRIES_EXCEEDED));
}

/* ---- the command ---- */

static void help_bad_flags_and_unsafe_tokens_give_exit_codes_0_and_2(void **state)
{
    fixture *f = *state;
    char *out = NULL;
    assert_int_equal(web_cli(&f->web, (const char *[]){"web", "--help", NULL}, &out), 0);
    assert_non_null(strstr(out, "usage: naq web"));
    /* docs/cli.md: every help ends with its exit codes. */
    const char *codes = strstr(out, "exit codes:");
    assert_non_null(codes);
    const char *usage2 = strstr(codes, "2 bad usage");
    assert_non_null(usage2);
    assert_string_equal(strchr(usage2, '\n'), "\n");
    free(out);
    assert_int_equal(web_cli(&f->web, (const char *[]){"web", "--listen", "nowhere", NULL}, NULL),
                     2);
    assert_int_equal(web_cli(&f->web, (const char *[]){"web", "--allow-actions", NULL}, NULL), 2);
    assert_int_equal(web_cli(&f->web, (const char *[]){"web", "--token-file", "/x", NULL}, NULL),
                     2);
    char path[320];
    snprintf(path, sizeof path, "%s/token", f->s.dir);
    FILE *t = fopen(path, "w");
    assert_non_null(t);
    fputs(TOKEN "\n", t);
    fclose(t);
    chmod(path, 0644); /* others may read it: refused */
    char *err = NULL;
    assert_int_equal(
        naq_test_run_cli((const char *[]){"web", "--allow-actions", "--token-file", path, NULL},
                         f->web.env, NULL, &err),
        2);
    assert_non_null(strstr(err, "chmod 600"));
    free(err);
    const char *short_env[] = {f->web.env[0], f->web.env[1], "NAQ_WEB_TOKEN=short", NULL};
    assert_int_equal(
        naq_test_run_cli((const char *[]){"web", "--allow-actions", NULL}, short_env, NULL, NULL),
        2);
}

static void a_port_in_use_exits_1_saying_cannot_listen_and_which_flag(void **state)
{
    fixture *f = *state;
    start_web(f, 0);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", f->web.port);
    char *err = NULL;
    assert_int_equal(
        naq_test_run_cli((const char *[]){"web", "--listen", listen, NULL}, f->web.env, NULL, &err),
        1);
    /* The wording of the one daemon start (metrics_http.c), shared with
     * the metrics server: what could not listen, and the flag to change. */
    if (strstr(err, "cannot listen on 127.0.0.1:") == NULL || strstr(err, "--listen") == NULL)
        fail_msg("expected 'cannot listen ... --listen', got: %s", err);
    free(err);
}

/* ---- security ---- */

static void a_read_only_server_answers_every_post_with_403(void **state)
{
    fixture *f = *state;
    start_web(f, 0);
    const char *paths[] = {"/api/dlq/retry", "/api/dlq/purge", "/api/schedules/x/pause"};
    for (size_t i = 0; i < 3; i++) {
        json_t *r =
            post_json(f, paths[i], (const char *[]){AUTH, JSON_TYPE, NULL}, "{\"all\":true}", 403);
        assert_string_equal(jstr(r, "status"), "read_only");
        assert_non_null(strstr(jstr(r, "error"), "--allow-actions"));
        json_decref(r);
    }
    json_t *cfg = get_json(f, "/api/config", 200);
    assert_true(json_is_false(json_object_get(cfg, "allow_actions")));
    json_decref(cfg);
}

static void actions_need_the_bearer_token_json_and_this_origin(void **state)
{
    fixture *f = *state;
    start_web(f, 1);
    const char *body = "{\"queue\":\"nothing-here\"}";
    json_t *r = post_json(f, "/api/dlq/purge", (const char *[]){JSON_TYPE, NULL}, body, 401);
    json_decref(r);
    r = post_json(f, "/api/dlq/purge",
                  (const char *[]){"Authorization: Bearer wrong-token-0123456789", JSON_TYPE, NULL},
                  body, 401);
    json_decref(r);
    /* A form from another site: no JSON type, its own Origin. */
    r = post_json(f, "/api/dlq/purge",
                  (const char *[]){AUTH, "Content-Type: application/x-www-form-urlencoded", NULL},
                  body, 415);
    json_decref(r);
    r = post_json(f, "/api/dlq/purge",
                  (const char *[]){AUTH, JSON_TYPE, "Origin: http://evil.example", NULL}, body,
                  403);
    json_decref(r);
    r = post_json(f, "/api/dlq/purge",
                  (const char *[]){AUTH, JSON_TYPE, "Sec-Fetch-Site: cross-site", NULL}, body, 403);
    json_decref(r);
    char origin[128];
    snprintf(origin, sizeof origin, "Origin: http://127.0.0.1:%d", f->web.port);
    r = post_json(f, "/api/dlq/purge", (const char *[]){AUTH, JSON_TYPE, origin, NULL}, body, 200);
    assert_int_equal(jint(r, "purged"), 0);
    json_decref(r);
    /* An empty filter purges nothing unless it says all. */
    r = post_json(f, "/api/dlq/purge", (const char *[]){AUTH, JSON_TYPE, NULL}, "{}", 400);
    json_decref(r);
    r = post_json(f, "/api/dlq/purge", (const char *[]){AUTH, JSON_TYPE, NULL}, "not json", 400);
    json_decref(r);
}

static void a_request_naming_a_foreign_host_is_refused(void **state)
{
    fixture *f = *state;
    start_web(f, 0);
    /* DNS rebinding: a page of evil.example whose name now points at
     * 127.0.0.1 sends Host: evil.example. */
    char *body = NULL;
    assert_int_equal(web_http(&f->web, "GET", "/api/overview",
                              (const char *[]){"Host: evil.example", NULL}, NULL, &body),
                     403);
    assert_non_null(strstr(body, "loopback"));
    free(body);
    char host[64];
    snprintf(host, sizeof host, "Host: localhost:%d", f->web.port);
    assert_int_equal(
        web_http(&f->web, "GET", "/api/config", (const char *[]){host, NULL}, NULL, NULL), 200);
}

static void pages_and_assets_carry_a_content_security_policy(void **state)
{
    fixture *f = *state;
    start_web(f, 0);
    char *body = NULL;
    assert_int_equal(web_http(&f->web, "GET", "/", NULL, NULL, &body), 200);
    assert_non_null(strstr(body, "<!doctype html>"));
    assert_null(strstr(body, "http://")); /* nothing from another origin: no CDN */
    assert_null(strstr(body, "https://"));
    free(body);
    assert_int_equal(web_http(&f->web, "GET", "/app.js", NULL, NULL, &body), 200);
    assert_null(strstr(body, "innerHTML =")); /* the DOM is built from text nodes */
    free(body);
    assert_int_equal(web_http(&f->web, "GET", "/app.css", NULL, NULL, NULL), 200);
    json_t *r = get_json(f, "/nope", 404);
    json_decref(r);
    r = get_json(f, "/api/nope", 404);
    json_decref(r);
    assert_int_equal(web_http(&f->web, "DELETE", "/api/dlq", NULL, NULL, NULL), 405);

    /* The policy header on a page: no inline script, only this origin. */
    CURL *h = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/", f->web.base);
    web_buf hb = {calloc(1, 1), 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, web_collect);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hb);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    assert_non_null(strstr(hb.data, "Content-Security-Policy: default-src 'none'; script-src "
                                    "'self'"));
    assert_non_null(strstr(hb.data, "X-Content-Type-Options: nosniff"));
    free(hb.data);
}

/* ---- reads ---- */

static void the_overview_shows_the_queues_workers_and_failures_of_a_known_workload(void **state)
{
    fixture *f = *state;
    pid_t w = web_worker(&f->web, &f->s, "ov-dead");
    assert_true(web_worker_ready(f->c, "ov-dead"));
    pid_t w2 = web_worker(&f->web, &f->s, "ov-wait");
    assert_true(web_worker_ready(f->c, "ov-wait"));
    assert_int_equal(web_stop_pid(w2), 0);
    char id[NAQ_ID_SIZE], dead[NAQ_ID_SIZE];
    for (int i = 0; i < 4; i++)
        web_enqueue(&f->web, (const char *[]){"-q", "ov-wait", "--", "true", NULL}, id);
    web_enqueue(&f->web,
                (const char *[]){"-q", "ov-wait", "--priority", "critical", "--", "true", NULL},
                id);
    dead_job(f, "ov-dead", dead);
    start_web(f, 0);

    json_t *o = NULL;
    /* The rollups fold within a second or two (naq web runs a maintainer). */
    for (int i = 0; i < 100; i++) {
        json_decref(o);
        o = get_json(f, "/api/overview", 200);
        if (jint(json_object_get(o, "stats"), "failed") >= 1)
            break;
        web_sleep_ms(100);
    }
    json_t *queues = json_object_get(o, "queues");
    int seen = 0;
    for (size_t i = 0; i < json_array_size(queues); i++) {
        json_t *q = json_array_get(queues, i);
        if (strcmp(jstr(q, "queue"), "ov-wait") == 0) {
            seen = 1;
            assert_int_equal(jint(q, "pending"), 5);
            json_t *prio = json_object_get(q, "by_priority");
            assert_int_equal(json_integer_value(json_array_get(prio, 2)), 4);
            assert_int_equal(json_integer_value(json_array_get(prio, 4)), 1);
        }
    }
    assert_true(seen);
    assert_int_equal(jint(json_object_get(o, "workers"), "live"), 1);
    json_t *fails = json_object_get(o, "recent_failures");
    assert_true(json_array_size(fails) >= 1);
    json_t *fl = json_array_get(fails, 0);
    assert_string_equal(jstr(fl, "job_id"), dead);
    assert_non_null(strstr(jstr(fl, "error_message"), PAYLOAD)); /* as data, unchanged */
    json_t *stats = json_object_get(o, "stats");
    assert_int_equal(jint(stats, "failed"), 1);
    assert_int_equal(json_array_size(json_object_get(o, "series")), 24);
    json_decref(o);
    o = get_json(f, "/api/overview?hours=3", 200);
    assert_int_equal(json_array_size(json_object_get(o, "series")), 3);
    json_decref(o);
    o = get_json(f, "/api/overview?hours=0", 400);
    json_decref(o);
    /* Read from the rollups and the live window: fast (the 1M-event figure
     * is in docs/web.md, from bench_web). */
    o = get_json(f, "/api/overview", 200);
    double took = json_real_value(json_object_get(o, "took_ms"));
    if (took >= 50)
        fail_msg("the overview took %.1f ms", took);
    json_decref(o);
    assert_int_equal(web_stop_pid(w), 0);
}

static void a_job_shows_its_timeline_in_order_with_args_error_and_result(void **state)
{
    fixture *f = *state;
    pid_t w = web_worker(&f->web, &f->s, "jobs");
    assert_true(web_worker_ready(f->c, "jobs"));
    char dead[NAQ_ID_SIZE];
    dead_job(f, "jobs", dead);
    start_web(f, 0);
    char path[256];
    snprintf(path, sizeof path, "/api/jobs/%s", dead);
    json_t *j = get_json(f, path, 200);
    assert_string_equal(jstr(j, "state"), "max_retries_exceeded");
    naq_event_list h = {0};
    assert_int_equal(naq_job_history(f->c, dead, &h), NAQ_OK);
    json_t *events = json_object_get(j, "events");
    assert_int_equal(json_array_size(events), h.count);
    double prev = 0;
    for (size_t i = 0; i < h.count; i++) {
        json_t *e = json_array_get(events, i);
        assert_string_equal(jstr(e, "event_type"), naq_event_type_name(h.items[i].type));
        assert_int_equal(jint(e, "nats_sequence"), (json_int_t)h.items[i].nats_sequence);
        double since = json_real_value(json_object_get(e, "since_first_ms"));
        assert_true(json_real_value(json_object_get(e, "gap_ms")) >= 0 || i == 0);
        assert_true(since >= prev);
        prev = since;
    }
    naq_event_list_free(&h);
    /* Args from its dead letter; the error as it was, markup and all. */
    char *args = json_dumps(json_object_get(j, "args"), JSON_COMPACT);
    assert_non_null(strstr(args, "\"argv\""));
    free(args);
    json_t *argv = json_object_get(json_object_get(j, "args"), "argv");
    assert_string_equal(json_string_value(json_array_get(argv, 3)), PAYLOAD);
    assert_non_null(strstr(jstr(json_object_get(j, "dead_letter"), "error_message"), PAYLOAD));
    assert_string_equal(jstr(json_object_get(j, "result"), "status"), "failed");
    json_decref(j);
    j = get_json(f, "/api/jobs/no-such-job", 404);
    json_decref(j);
    j = get_json(f, "/api/jobs/bad.id", 400);
    json_decref(j);
    assert_int_equal(web_stop_pid(w), 0);
}

/* A payload key made with `naq keygen` in the test's directory; key_env
 * gets "NAQ_ENCRYPTION_KEY_FILE=<it>". */
static void make_key(fixture *f, char key_env[340])
{
    char key[300];
    snprintf(key, sizeof key, "%s/payload.key", f->s.dir);
    snprintf(key_env, 340, "NAQ_ENCRYPTION_KEY_FILE=%s", key);
    assert_int_equal(web_cli(&f->web, (const char *[]){"keygen", key, NULL}, NULL), 0);
}

/* GET /api/jobs/<id> of a job: its args (or NULL) and the reason. */
static json_t *job_args(fixture *f, const char *id, const char **source, const char **missing)
{
    char path[200];
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    json_t *j = get_json(f, path, 200);
    *source = json_string_value(json_object_get(j, "args_source"));
    *missing = json_string_value(json_object_get(j, "args_missing"));
    return j;
}

static void
a_waiting_job_shows_its_args_from_its_queue_and_a_done_one_says_they_are_gone(void **state)
{
    fixture *f = *state;
    char key_env[340];
    make_key(f, key_env);
    const char *env[] = {f->web.env[0], f->web.env[1], key_env, NULL};
    /* No worker on these queues: the jobs wait. One plain (behind another
     * job on its level, and moved to priority 4 after), one sealed. */
    char ahead[NAQ_ID_SIZE], plain[NAQ_ID_SIZE], sealed[NAQ_ID_SIZE];
    web_enqueue(&f->web, (const char *[]){"-q", "wait", "--", "true", NULL}, ahead);
    web_enqueue(&f->web, (const char *[]){"-q", "wait", "--", "echo", PAYLOAD, NULL}, plain);
    assert_int_equal(naq_job_set_priority(f->c, plain, 4), NAQ_OK);
    char *out = NULL;
    assert_int_equal(naq_test_run_cli((const char *[]){"enqueue", "-q", "wait-enc", "--", "echo",
                                                       "secret-arg", NULL},
                                      env, &out, NULL),
                     0);
    snprintf(sealed, sizeof sealed, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);

    start_web(f, 0); /* without the key */
    const char *source, *missing;
    json_t *j = job_args(f, plain, &source, &missing);
    json_t *argv = json_object_get(json_object_get(j, "args"), "argv");
    assert_string_equal(json_string_value(json_array_get(argv, 1)), PAYLOAD);
    assert_string_equal(source, "queue");
    assert_null(missing);
    json_decref(j);
    j = job_args(f, sealed, &source, &missing);
    char *text = json_dumps(j, JSON_COMPACT);
    if (strstr(text, "secret-arg") != NULL)
        fail_msg("sealed args shown without the key: %s", text);
    free(text);
    assert_string_equal(json_string_value(json_object_get(j, "args")), "<encrypted>");
    assert_string_equal(source, "queue");
    json_decref(j);
    assert_int_equal(web_stop(&f->web), 0);

    assert_true(web_start(&f->web, &f->s, NULL, (const char *[]){key_env, NULL}, NULL));
    j = job_args(f, sealed, &source, &missing);
    argv = json_object_get(json_object_get(j, "args"), "argv");
    assert_string_equal(json_string_value(json_array_get(argv, 1)), "secret-arg");
    json_decref(j);

    /* Once a worker acknowledged it, the message is gone: null, and why.
     * The ack follows the outcome event's confirmation, so the message
     * may outlive the event by a moment. */
    pid_t w = web_worker(&f->web, &f->s, "wait");
    assert_true(web_wait_last_event(f->c, plain, NAQ_EVENT_COMPLETED));
    j = job_args(f, plain, &source, &missing);
    for (int i = 0; i < 100 && !json_is_null(json_object_get(j, "args")); i++) {
        json_decref(j);
        web_sleep_ms(50);
        j = job_args(f, plain, &source, &missing);
    }
    assert_true(json_is_null(json_object_get(j, "args")));
    assert_null(source);
    assert_string_equal(missing, "not_in_queue");
    json_decref(j);
    assert_int_equal(web_stop_pid(w), 0);
}

static void a_running_job_shows_its_args_from_its_queue_until_it_is_acknowledged(void **state)
{
    fixture *f = *state;
    pid_t w = web_worker(&f->web, &f->s, "run");
    assert_true(web_worker_ready(f->c, "run"));
    char id[NAQ_ID_SIZE];
    web_enqueue(&f->web, (const char *[]){"-q", "run", "--", "sleep", "4", NULL}, id);
    assert_true(web_wait_last_event(f->c, id, NAQ_EVENT_STARTED));
    start_web(f, 0);
    const char *source, *missing;
    json_t *j = job_args(f, id, &source, &missing);
    /* Still running (4 s): the worker has not acknowledged the message. */
    assert_string_equal(jstr(j, "state"), "started");
    json_t *argv = json_object_get(json_object_get(j, "args"), "argv");
    assert_string_equal(json_string_value(json_array_get(argv, 1)), "4");
    assert_string_equal(source, "queue");
    assert_null(missing);
    json_decref(j);
    assert_true(web_wait_last_event(f->c, id, NAQ_EVENT_COMPLETED));
    assert_int_equal(web_stop_pid(w), 0);
}

static void workers_lists_the_live_registry_with_state_and_heartbeat(void **state)
{
    fixture *f = *state;
    pid_t w = web_worker(&f->web, &f->s, "wq");
    assert_true(web_worker_ready(f->c, "wq"));
    start_web(f, 0);
    json_t *o = get_json(f, "/api/workers?gone_hours=1", 200);
    json_t *list = json_object_get(o, "workers");
    assert_int_equal(json_array_size(list), 1);
    json_t *wk = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(wk, "queues"), 0)), "wq");
    assert_string_equal(jstr(wk, "status"), "idle");
    assert_true(json_real_value(json_object_get(wk, "last_heartbeat")) > 0);
    json_decref(o);
    assert_int_equal(web_stop_pid(w), 0);
    o = get_json(f, "/api/workers?gone_hours=1", 200);
    assert_int_equal(json_array_size(json_object_get(o, "workers")), 0);
    assert_int_equal(json_array_size(json_object_get(o, "gone")), 1);
    json_decref(o);
}

static void dead_letters_list_filter_show_retry_and_purge(void **state)
{
    fixture *f = *state;
    pid_t wa = web_worker(&f->web, &f->s, "dl-a"), wb = web_worker(&f->web, &f->s, "dl-b");
    assert_true(web_worker_ready(f->c, "dl-a"));
    assert_true(web_worker_ready(f->c, "dl-b"));
    char a[NAQ_ID_SIZE], b[NAQ_ID_SIZE];
    dead_job(f, "dl-a", a);
    dead_job(f, "dl-b", b);
    start_web(f, 1);
    json_t *l = get_json(f, "/api/dlq", 200);
    assert_int_equal(jint(l, "total"), 2);
    json_decref(l);
    l = get_json(f, "/api/dlq?queue=dl-a", 200);
    json_t *entries = json_object_get(l, "entries");
    assert_int_equal(json_array_size(entries), 1);
    json_t *e = json_array_get(entries, 0);
    assert_string_equal(jstr(e, "job_id"), a);
    assert_non_null(strstr(jstr(e, "error_message"), PAYLOAD));
    json_int_t seq = jint(e, "seq");
    json_decref(l);
    char path[64], body[64];
    snprintf(path, sizeof path, "/api/dlq/%lld", (long long)seq);
    json_t *one = get_json(f, path, 200);
    assert_string_equal(jstr(json_object_get(one, "job"), "job_id"), a);
    json_decref(one);
    one = get_json(f, "/api/dlq/999999", 404);
    json_decref(one);

    snprintf(body, sizeof body, "{\"seqs\":[%lld]}", (long long)seq);
    json_t *r = post_json(f, "/api/dlq/retry", (const char *[]){AUTH, JSON_TYPE, NULL}, body, 200);
    json_t *done = json_object_get(r, "retried");
    assert_int_equal(json_array_size(done), 1);
    char again[NAQ_ID_SIZE];
    snprintf(again, sizeof again, "%s", jstr(json_array_get(done, 0), "new_job_id"));
    assert_non_null(strstr(again, a));
    json_decref(r);
    /* The retry is a new job that runs (and dies) again. */
    naq_event e2;
    int ran = 0;
    for (int i = 0; i < 500 && !ran; i++) {
        if (naq_job_last_event(f->c, again, &e2) == NAQ_OK)
            ran = e2.type == NAQ_EVENT_MAX_RETRIES_EXCEEDED;
        naq_event_clear(&e2);
        if (!ran)
            web_sleep_ms(20);
    }
    assert_true(ran);
    /* Retrying the same entry again: it is gone. */
    r = post_json(f, "/api/dlq/retry", (const char *[]){AUTH, JSON_TYPE, NULL}, body, 200);
    assert_int_equal(json_array_size(json_object_get(r, "retried")), 0);
    assert_int_equal(json_array_size(json_object_get(r, "errors")), 1);
    json_decref(r);
    r = post_json(f, "/api/dlq/purge", (const char *[]){AUTH, JSON_TYPE, NULL},
                  "{\"queue\":\"dl-b\"}", 200);
    assert_int_equal(jint(r, "purged"), 1);
    json_decref(r);
    l = get_json(f, "/api/dlq?queue=dl-b", 200);
    assert_int_equal(jint(l, "total"), 0);
    json_decref(l);
    assert_int_equal(web_stop_pid(wa), 0);
    assert_int_equal(web_stop_pid(wb), 0);
}

static void schedules_list_next_runs_pause_and_resume(void **state)
{
    fixture *f = *state;
    assert_int_equal(web_cli(&f->web,
                             (const char *[]){"schedule", "add", "web-every", "--every", "1h", "-q",
                                              "sq", "--", "true", NULL},
                             NULL),
                     0);
    start_web(f, 1);
    json_t *o = get_json(f, "/api/schedules", 200);
    json_t *s = json_array_get(json_object_get(o, "schedules"), 0);
    assert_string_equal(jstr(s, "name"), "web-every");
    json_t *next = json_object_get(s, "next_runs");
    assert_int_equal(json_array_size(next), 5);
    double gap =
        json_real_value(json_array_get(next, 1)) - json_real_value(json_array_get(next, 0));
    assert_true(gap > 3599.9 && gap < 3600.1);
    json_decref(o);
    json_t *r = post_json(f, "/api/schedules/web-every/pause",
                          (const char *[]){AUTH, JSON_TYPE, NULL}, "{}", 200);
    assert_true(json_is_true(json_object_get(r, "paused")));
    json_decref(r);
    o = get_json(f, "/api/schedules", 200);
    s = json_array_get(json_object_get(o, "schedules"), 0);
    assert_true(json_is_true(json_object_get(s, "paused")));
    assert_int_equal(json_array_size(json_object_get(s, "next_runs")), 0);
    json_decref(o);
    r = post_json(f, "/api/schedules/web-every/resume", (const char *[]){AUTH, JSON_TYPE, NULL},
                  "{}", 200);
    assert_true(json_is_false(json_object_get(r, "paused")));
    json_decref(r);
    r = post_json(f, "/api/schedules/none-such/pause", (const char *[]){AUTH, JSON_TYPE, NULL},
                  "{}", 404);
    json_decref(r);
}

/* ---- the live feed ---- */

typedef struct {
    web_buf b;
    int want; /* stop after this many events */
    int got;  /* "event: naq" blocks seen */
} sse_read;

static size_t sse_take(char *p, size_t size, size_t n, void *ud)
{
    sse_read *r = ud;
    if (web_collect(p, size, n, &r->b) != size * n)
        return 0;
    r->got = 0;
    for (const char *q = r->b.data; (q = strstr(q, "event: naq\n")) != NULL; q++)
        r->got++;
    return r->got >= r->want ? 0 : size * n; /* 0 ends the transfer */
}

/* Reads the feed at path until `want` events came or timeout_ms passed;
 * *ids (heap) the "id:" values in order, *n how many. */
static void read_feed(fixture *f, const char *path, const char *last_id, int want, int timeout_ms,
                      long long **ids, size_t *n, char **text)
{
    CURL *h = curl_easy_init();
    char url[512], hdr[64];
    snprintf(url, sizeof url, "%s%s", f->web.base, path);
    struct curl_slist *hl = NULL;
    if (last_id != NULL) {
        snprintf(hdr, sizeof hdr, "Last-Event-ID: %s", last_id);
        hl = curl_slist_append(hl, hdr);
    }
    sse_read r = {{calloc(1, 1), 0}, want, 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sse_take);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_perform(h);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    *n = 0;
    *ids = calloc(1024, sizeof **ids);
    for (const char *q = r.b.data; (q = strstr(q, "\nid: ")) != NULL && *n < 1024; q++)
        (*ids)[(*n)++] = atoll(q + 5);
    if (strncmp(r.b.data, "id: ", 4) == 0) /* never: the feed opens with "retry:" */
        fail_msg("the feed did not open with its retry line");
    *text = r.b.data;
}

static void the_live_feed_resumes_after_the_last_event_id_without_a_gap_or_repeat(void **state)
{
    fixture *f = *state;
    start_web(f, 0);
    char id[NAQ_ID_SIZE];
    for (int i = 0; i < 5; i++)
        web_enqueue(&f->web, (const char *[]){"-q", "feed", "--", "true", NULL}, id);
    long long *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    read_feed(f, "/api/events/stream?queue=feed&tail=3", NULL, 3, 10000, &ids, &n, &text);
    assert_int_equal(n, 3);
    assert_non_null(strstr(text, "retry: 1000"));
    free(text);
    long long first[3] = {ids[0], ids[1], ids[2]};
    free(ids);
    /* While the client is away, more events come. */
    char later[3][NAQ_ID_SIZE];
    for (int i = 0; i < 3; i++)
        web_enqueue(&f->web, (const char *[]){"-q", "feed", "--", "true", NULL}, later[i]);
    char last_text[32];
    snprintf(last_text, sizeof last_text, "%lld", first[2]);
    long long *resumed = NULL;
    read_feed(f, "/api/events/stream?queue=feed", last_text, 3, 10000, &resumed, &n, &text);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_non_null(strstr(text, later[i]));
    free(text);
    /* The two reads together are exactly the last 6 of all 8 events: no
     * gap at the reconnect, no event twice. */
    read_feed(f, "/api/events/stream?queue=feed&tail=100", NULL, 8, 10000, &ids, &n, &text);
    assert_int_equal(n, 8);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(first[i], ids[2 + i]);
        assert_int_equal(resumed[i], ids[5 + i]);
    }
    free(text);
    /* In batches (what the page asks for): a data line per event, and each
     * message's id is its last event's, so a resume starts after it. */
    long long *bids = NULL;
    size_t nb = 0;
    read_feed(f, "/api/events/stream?queue=feed&tail=100&batch=1", NULL, 1000, 1500, &bids, &nb,
              &text);
    size_t lines = 0;
    for (const char *p = text; (p = strstr(p, "\ndata: ")) != NULL; p++)
        lines++;
    assert_int_equal(lines, 8);
    assert_true(nb >= 1);
    assert_int_equal(bids[nb - 1], ids[7]);
    free(text);
    free(bids);
    free(ids);
    free(resumed);
}

static void the_live_feed_filters_by_type_queue_and_job(void **state)
{
    fixture *f = *state;
    pid_t w = web_worker(&f->web, &f->s, "ff");
    assert_true(web_worker_ready(f->c, "ff"));
    char dead[NAQ_ID_SIZE], ok[NAQ_ID_SIZE];
    dead_job(f, "ff", dead);
    web_enqueue(&f->web, (const char *[]){"-q", "other", "--", "true", NULL}, ok);
    start_web(f, 0);
    long long *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    read_feed(f, "/api/events/stream?type=failed&tail=10", NULL, 1, 3000, &ids, &n, &text);
    assert_int_equal(n, 1);
    assert_non_null(strstr(text, dead));
    assert_null(strstr(text, "\"event_type\":\"enqueued\""));
    free(text);
    free(ids);
    char path[200];
    snprintf(path, sizeof path, "/api/events/stream?job=%s&tail=100", ok);
    read_feed(f, path, NULL, 1, 3000, &ids, &n, &text);
    assert_int_equal(n, 1);
    assert_null(strstr(text, dead));
    free(text);
    free(ids);
    json_t *r = get_json(f, "/api/events/stream?type=nonsense", 400);
    json_decref(r);
    r = get_json(f, "/api/events?queue=ff&limit=100", 200);
    assert_true(json_array_size(json_object_get(r, "events")) >= 5);
    json_decref(r);
    assert_int_equal(web_stop_pid(w), 0);
}

static void args_and_errors_are_opened_only_where_naq_web_has_the_key(void **state)
{
    fixture *f = *state;
    char key_env[340];
    make_key(f, key_env);
    const char *env[] = {f->web.env[0], f->web.env[1], key_env, NULL};
    char log[320];
    snprintf(log, sizeof log, "%s/worker-enc.log", f->s.dir);
    pid_t w =
        web_track(naq_test_spawn_cli((const char *[]){"worker", "-q", "enc", NULL}, env, log));
    assert_true(web_worker_ready(f->c, "enc"));
    char *out = NULL;
    assert_int_equal(
        naq_test_run_cli((const char *[]){"enqueue", "-q", "enc", "--retries", "0", "--", "sh",
                                          "-c", "echo secret-error >&2; exit 3", "secret-arg",
                                          NULL},
                         env, &out, NULL),
        0);
    char id[NAQ_ID_SIZE];
    snprintf(id, sizeof id, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    assert_true(web_wait_last_event(f->c, id, NAQ_EVENT_MAX_RETRIES_EXCEEDED));
    char path[200];
    snprintf(path, sizeof path, "/api/jobs/%s", id);

    start_web(f, 0); /* without the key */
    json_t *j = get_json(f, path, 200);
    char *text = json_dumps(j, JSON_COMPACT);
    assert_null(strstr(text, "secret-arg"));
    assert_null(strstr(text, "secret-error"));
    assert_string_equal(json_string_value(json_object_get(j, "args")), "<encrypted>");
    free(text);
    json_decref(j);
    assert_int_equal(web_stop(&f->web), 0);

    assert_true(web_start(&f->web, &f->s, NULL, (const char *[]){key_env, NULL}, NULL));
    j = get_json(f, path, 200);
    json_t *argv = json_object_get(json_object_get(j, "args"), "argv");
    assert_string_equal(json_string_value(json_array_get(argv, 3)), "secret-arg");
    assert_non_null(
        strstr(jstr(json_object_get(j, "dead_letter"), "error_message"), "secret-error"));
    json_decref(j);
    assert_int_equal(web_stop_pid(w), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(help_bad_flags_and_unsafe_tokens_give_exit_codes_0_and_2, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(a_port_in_use_exits_1_saying_cannot_listen_and_which_flag,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(a_read_only_server_answers_every_post_with_403, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(actions_need_the_bearer_token_json_and_this_origin, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(a_request_naming_a_foreign_host_is_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(pages_and_assets_carry_a_content_security_policy, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(
        the_overview_shows_the_queues_workers_and_failures_of_a_known_workload, setup, teardown),
    cmocka_unit_test_setup_teardown(a_job_shows_its_timeline_in_order_with_args_error_and_result,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(args_and_errors_are_opened_only_where_naq_web_has_the_key,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(
        a_waiting_job_shows_its_args_from_its_queue_and_a_done_one_says_they_are_gone, setup,
        teardown),
    cmocka_unit_test_setup_teardown(
        a_running_job_shows_its_args_from_its_queue_until_it_is_acknowledged, setup, teardown),
    cmocka_unit_test_setup_teardown(workers_lists_the_live_registry_with_state_and_heartbeat, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(dead_letters_list_filter_show_retry_and_purge, setup, teardown),
    cmocka_unit_test_setup_teardown(schedules_list_next_runs_pause_and_resume, setup, teardown),
    cmocka_unit_test_setup_teardown(
        the_live_feed_resumes_after_the_last_event_id_without_a_gap_or_repeat, setup, teardown),
    cmocka_unit_test_setup_teardown(the_live_feed_filters_by_type_queue_and_job, setup, teardown),
};

NAQ_TEST_MAIN(tests)
