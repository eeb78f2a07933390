/*
 * test_web_browser.c - `naq web` in a real headless Chromium: this program
 * sets up a known workload on a real server, starts `naq web`, and runs
 * tests/web/browser.mjs (Node, over Chromium's DevTools pipe), which loads
 * the pages and checks what a person would see: the overview's queues and
 * counts, a job's timeline in order, a live event arriving, a dead letter
 * retried by a click and run again, markup in an error shown as text, the
 * pages at 1280x800 and 375 px wide, labels, contrast and keyboard use.
 * Screenshots go to NAQ_WEB_ARTIFACTS (under the build directory).
 *
 * Exit 77 (CTest: skipped) only when Chromium itself cannot start;
 * scripts/install-deps.sh installs it, so a set-up machine runs it.
 */
#include "web_support.h"

#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>

/* Markup and quotes in both the args and the error message of a job: the
 * pages must show them as text and run none of it. */
#define PAYLOAD "<script>window.__xss=1</script>\"'><img src=x onerror=window.__xss=2>"

static int skipped;
static naq_test_server server; /* here, so the teardown stops it after a failure too */
static int server_up;

static int run_driver(const char *spec_path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("node", "node", NAQ_WEB_DRIVER, "ui", spec_path, (char *)NULL);
        fprintf(stderr, "cannot run node (scripts/install-deps.sh installs nodejs): %s\n",
                strerror(errno));
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void the_pages_show_a_known_workload_and_act_in_a_real_browser(void **unused)
{
    (void)unused;
    naq_test_server_start(&server);
    server_up = 1;
    naq_test_server s = server; /* a copy for reading: teardown stops the server */
    naq_client *c = naq_test_connect(&s);
    web_proc w;
    web_env(&w, &s, NULL);

    /* Queues exist for the overview once a worker made their consumers. */
    pid_t wa = web_worker(&w, &s, "web-a"), wb = web_worker(&w, &s, "web-b");
    assert_true(web_worker_ready(c, "web-a"));
    assert_true(web_worker_ready(c, "web-b"));
    assert_int_equal(web_stop_pid(wa), 0);
    assert_int_equal(web_stop_pid(wb), 0);
    char id[NAQ_ID_SIZE];
    for (int i = 0; i < 5; i++)
        web_enqueue(&w, (const char *[]){"-q", "web-a", "--", "true", NULL}, id);
    for (int i = 0; i < 2; i++)
        web_enqueue(&w, (const char *[]){"-q", "web-a", "--priority", "high", "--", "true", NULL},
                    id);
    for (int i = 0; i < 3; i++)
        web_enqueue(&w, (const char *[]){"-q", "web-b", "--", "true", NULL}, id);

    /* A job that dies until the flag file exists. */
    char flag[320], dead[NAQ_ID_SIZE];
    snprintf(flag, sizeof flag, "%s/retry-succeeds", s.dir);
    pid_t wd = web_worker(&w, &s, "web-dead");
    assert_true(web_worker_ready(c, "web-dead"));
    web_enqueue(&w,
                (const char *[]){"-q", "web-dead", "--retries", "0", "--", "sh", "-c",
                                 "test -f \"$0\" || { printf '%s\\n' \"$1\" >&2; exit 3; }", flag,
                                 PAYLOAD, NULL},
                dead);
    naq_dlq_entry_list dl = {0};
    naq_dlq_filter f = {.job_id = dead};
    for (int i = 0; i < 500; i++) {
        naq_dlq_entry_list_free(&dl);
        if (naq_dlq_list(c, &f, &dl) == NAQ_OK && dl.count == 1)
            break;
        web_sleep_ms(20);
    }
    assert_int_equal(dl.count, 1);
    naq_dlq_entry_list_free(&dl);
    assert_true(web_wait_last_event(c, dead, NAQ_EVENT_MAX_RETRIES_EXCEEDED));
    /* A job that completed: its args left with its queue message. */
    char done[NAQ_ID_SIZE];
    web_enqueue(&w, (const char *[]){"-q", "web-dead", "--", "true", NULL}, done);
    assert_true(web_wait_last_event(c, done, NAQ_EVENT_COMPLETED));
    naq_event_list hist = {0};
    assert_int_equal(naq_job_history(c, dead, &hist), NAQ_OK);
    naq_worker_info_list wl = {0};
    assert_int_equal(naq_workers_list(c, &wl), NAQ_OK);

    assert_int_equal(
        naq_test_run_cli((const char *[]){"schedule", "add", "web-nightly", "--cron", "0 3 * * *",
                                          "-q", "web-b", "--", "true", NULL},
                         w.env, NULL, NULL),
        0);
    char token_file[320];
    snprintf(token_file, sizeof token_file, "%s/web-token", s.dir);
    FILE *tf = fopen(token_file, "w");
    assert_non_null(tf);
    fputs("browser-test-token-0123456789abcdef\n", tf);
    fclose(tf);
    chmod(token_file, 0600);
    web_proc web;
    assert_true(web_start(&web, &s,
                          (const char *[]){"--allow-actions", "--token-file", token_file, NULL},
                          NULL, NULL));

    json_t *types = json_array();
    for (size_t i = 0; i < hist.count; i++)
        json_array_append_new(types, json_string(naq_event_type_name(hist.items[i].type)));
    json_t *spec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:i, s:[{s:s, "
                             "s:i, s:[iiiii]}, {s:s, s:i, "
                             "s:[iiiii]}], s:{s:s, s:s}}",
                             "base", web.base, "token", "browser-test-token-0123456789abcdef",
                             "artifacts", NAQ_WEB_ARTIFACTS, "naq", NAQ_BIN, "payload", PAYLOAD,
                             "dead_job", dead, "dead_job_types", types, "flag_file", flag,
                             "live_queue", "web-live", "schedule", "web-nightly", "live_workers",
                             (int)wl.count, "queues", "queue", "web-a", "pending", 7, "by_priority",
                             0, 0, 5, 2, 0, "queue", "web-b", "pending", 3, "by_priority", 0, 0, 3,
                             0, 0, "env", "NAQ_URL", s.url, "NAQ_SPOOL_DIR", w.env_spool + 14);
    assert_non_null(spec);
    json_object_set_new(spec, "waiting_job", json_string(id)); /* the last of web-b */
    json_object_set_new(spec, "done_job", json_string(done));
    /* The driver stops this naq web mid-test and starts it again on the
     * same port (the live feed's reconnect), then stops its own. */
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", web.port);
    json_object_set_new(spec, "web_pid", json_integer(web.pid));
    json_object_set_new(spec, "web_argv",
                        json_pack("[s, s, s, s, s, s, s]", NAQ_BIN, "web", "--listen", listen,
                                  "--allow-actions", "--token-file", token_file));
    json_object_set_new(spec, "web_env", json_object());
    char spec_path[320];
    snprintf(spec_path, sizeof spec_path, "%s/browser-spec.json", s.dir);
    assert_int_equal(json_dump_file(spec, spec_path, JSON_INDENT(2)), 0);
    json_decref(spec);
    naq_event_list_free(&hist);
    naq_worker_info_list_free(&wl);

    int rc = run_driver(spec_path);
    if (rc == 77)
        skipped = 1;
    else
        assert_int_equal(rc, 0);
    assert_int_equal(web_stop(&web), 0); /* stopped by the driver: exit 0 */
    assert_int_equal(web_stop_pid(wd), 0);
    naq_client_destroy(c);
}

/* Also after a failed assertion: the workers, naq web and the server. */
static int stop_all(void **unused)
{
    (void)unused;
    web_stop_all();
    if (server_up)
        naq_test_server_destroy(&server);
    server_up = 0;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(the_pages_show_a_known_workload_and_act_in_a_real_browser,
                                  stop_all),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (failed == 0 && skipped) {
        fprintf(stderr, "test_web_browser: SKIPPED: chromium cannot start here (see above)\n");
        return 77;
    }
    return failed;
}
