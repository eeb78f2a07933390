/*
 * test_top.c - `naq top` in a real terminal: tmux runs it detached against
 * a test server, the test publishes events, reads the screen with
 * capture-pane and presses keys with send-keys.
 *
 * The binary is the build's naq (next to tests/). Every tmux call uses a private server socket, so
 * a developer's own tmux sessions are never touched.
 */
#include "query_helpers.h"

#include <libgen.h>
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    qfixture *fx;
    char sock[64];
    char exit_file[300];
    char screen[16384];
} tty;

/* The naq binary the harness runs too (NAQ_BIN): next to tests/. */
static void naq_bin(char *buf, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    /* build/tests/test_top -> build/naq */
    snprintf(buf, cap, "%s/naq", dirname(dirname(self)));
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void tty_start(tty *t, qfixture *fx, int cols, int lines, const char *args)
{
    memset(t, 0, sizeof *t);
    t->fx = fx;
    snprintf(t->sock, sizeof t->sock, "naq-test-top-%d", (int)getpid());
    snprintf(t->exit_file, sizeof t->exit_file, "%s/top.exit", fx->srv.dir);
    char bin[PATH_MAX];
    naq_bin(bin, sizeof bin);
    assert_int_equal(access(bin, X_OK), 0);
    int rc = sh("tmux -L %s new-session -d -x %d -y %d "
                "\"env TERM=xterm NAQ_URL=%s %s top %s; echo EXIT=\\$? > %s; sleep 30\"",
                t->sock, cols, lines, fx->srv.url, bin, args ? args : "", t->exit_file);
    assert_int_equal(rc, 0);
}

static void tty_stop(tty *t)
{
    sh("tmux -L %s kill-server >/dev/null 2>&1", t->sock);
}

static const char *tty_capture(tty *t)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "tmux -L %s capture-pane -p", t->sock);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(t->screen, 1, sizeof t->screen - 1, p);
    t->screen[n] = '\0';
    pclose(p);
    return t->screen;
}

static void tty_keys(tty *t, const char *keys)
{
    assert_int_equal(sh("tmux -L %s send-keys %s", t->sock, keys), 0);
}

typedef struct {
    tty *t;
    const char *const *want;
    const char *absent; /* must not be on screen (NULL = no check) */
} screen_cond;

static int screen_shows(void *ud)
{
    screen_cond *c = ud;
    const char *s = tty_capture(c->t);
    for (const char *const *w = c->want; *w != NULL; w++)
        if (strstr(s, *w) == NULL)
            return 0;
    return c->absent == NULL || strstr(s, c->absent) == NULL;
}

static void wait_screen(tty *t, const char *const *want, const char *absent)
{
    screen_cond c = {t, want, absent};
    if (!naq_test_wait_for(screen_shows, &c, 10000)) {
        tty_stop(t);
        fail_msg("the screen never showed what was expected; last screen:\n%s", t->screen);
    }
}

static int exited(void *ud)
{
    tty *t = ud;
    FILE *f = fopen(t->exit_file, "r");
    if (f == NULL)
        return 0;
    char line[64] = "";
    int ok = fgets(line, sizeof line, f) != NULL && strncmp(line, "EXIT=", 5) == 0;
    fclose(f);
    return ok;
}

static int exit_code(tty *t)
{
    assert_true(naq_test_wait_for(exited, t, 10000));
    FILE *f = fopen(t->exit_file, "r");
    int code = -1;
    assert_int_equal(fscanf(f, "EXIT=%d", &code), 1);
    fclose(f);
    return code;
}

/* Queues with workers' consumers and waiting jobs, and a worker that runs
 * jobs of both, one of which fails. */
static void make_activity(qfixture *fx)
{
    const char *queues[] = {"alpha", "beta"};
    for (int i = 0; i < 2; i++) {
        char name[64], filter[64];
        snprintf(name, sizeof name, "naq_%s_p2", queues[i]);
        snprintf(filter, sizeof filter, "naq.queue.%s.2", queues[i]);
        jsConsumerConfig cc;
        jsConsumerConfig_Init(&cc);
        cc.Durable = name;
        cc.FilterSubject = filter;
        cc.AckPolicy = js_AckExplicit;
        assert_int_equal(js_AddConsumer(NULL, fx->js, "NAQ_JOBS", &cc, NULL, NULL), NATS_OK);
        assert_int_equal(js_Publish(NULL, fx->js, filter, "{}", 2, NULL, NULL), NATS_OK);
    }
    qspec ev[] = {
        {NAQ_EVENT_WORKER_STARTED, NULL, NULL, "wk-top-1", 0, NULL, -1, NULL, 0},
        {NAQ_EVENT_ENQUEUED, "job-top-a", "alpha", NULL, 0, NULL, -1, NULL, 0},
        {NAQ_EVENT_STARTED, "job-top-a", "alpha", "wk-top-1", 0, NULL, -1, NULL, 0},
        {NAQ_EVENT_COMPLETED, "job-top-a", "alpha", "wk-top-1", 0, NULL, 12.5, NULL, 0},
        {NAQ_EVENT_ENQUEUED, "job-top-b", "beta", NULL, 0, NULL, -1, NULL, 0},
        {NAQ_EVENT_STARTED, "job-top-b", "beta", "wk-top-1", 0, NULL, -1, NULL, 0},
        {NAQ_EVENT_FAILED, "job-top-b", "beta", "wk-top-1", 0, NULL, 40, "DiskFullError", 0},
        /* The same failure told again: one row. */
        {NAQ_EVENT_MAX_RETRIES_EXCEEDED, "job-top-b", "beta", "wk-top-1", 0, NULL, -1,
         "DiskFullError", 0},
        {NAQ_EVENT_STARTED, "job-top-c", "alpha", "wk-top-1", 0, NULL, -1, NULL, 0},
    };
    qpublish_all(fx, ev, sizeof ev / sizeof ev[0]);
}

static void top_shows_queues_workers_and_failures_pauses_and_quits(void **state)
{
    qfixture *fx = *state;
    tty t;
    tty_start(&t, fx, 100, 30, NULL);
    /* Events before and after the start both show. */
    make_activity(fx);
    const char *want[] = {"alpha", "beta",      "wk-top-1", "DiskFullError",
                          "busy",  "job-top-c", "p50",      NULL};
    wait_screen(&t, want, NULL);
    /* failed and max_retries_exceeded of one attempt: one failure row. */
    int rows = 0;
    for (const char *p = t.screen; (p = strstr(p, "DiskFullError")) != NULL; p++)
        rows++;
    if (rows != 1)
        fail_msg("job-top-b's failure is listed %d times; screen:\n%s", rows, t.screen);
    tty_keys(&t, "p");
    const char *paused[] = {"PAUSED", NULL};
    wait_screen(&t, paused, NULL);
    tty_keys(&t, "p");
    wait_screen(&t, want, "PAUSED");
    tty_keys(&t, "q");
    assert_int_equal(exit_code(&t), 0);
    tty_stop(&t);
}

static void top_fits_80x24_and_filters_by_queue(void **state)
{
    qfixture *fx = *state;
    make_activity(fx);
    tty t;
    tty_start(&t, fx, 80, 24, NULL);
    const char *want[] = {"QUEUE", "WORKER", "RECENT FAILURES", "RECENT JOBS", "q quit",
                          "alpha", "beta",   "DiskFullError",   NULL};
    wait_screen(&t, want, NULL);
    /* Every line fits: the last one is the key help. */
    const char *s = tty_capture(&t);
    int lines = 0;
    for (const char *p = s; *p; p++)
        lines += *p == '\n';
    assert_true(lines <= 24);
    tty_keys(&t, "f");
    tty_keys(&t, "b e t a Enter");
    const char *beta[] = {"[queue: beta]", "DiskFullError", "job-top-b", NULL};
    wait_screen(&t, beta, "job-top-c");
    tty_keys(&t, "q");
    assert_int_equal(exit_code(&t), 0);
    tty_stop(&t);
}

static void top_opens_a_jobs_history_and_goes_back(void **state)
{
    qfixture *fx = *state;
    make_activity(fx);
    tty t;
    tty_start(&t, fx, 100, 30, "--queue beta");
    const char *want[] = {"job-top-b", NULL};
    wait_screen(&t, want, NULL);
    tty_keys(&t, "Enter");
    const char *hist[] = {"history of job job-top-b", "enqueued", "started", "failed",
                          "DiskFullError: it broke",  NULL};
    wait_screen(&t, hist, NULL);
    tty_keys(&t, "Escape");
    const char *back[] = {"RECENT JOBS", NULL};
    wait_screen(&t, back, "history of job");
    tty_keys(&t, "q");
    assert_int_equal(exit_code(&t), 0);
    tty_stop(&t);
}

static void top_help_describes_the_keys_and_exits_0(void **state)
{
    (void)state;
    char bin[PATH_MAX], cmd[PATH_MAX + 64];
    naq_bin(bin, sizeof bin);
    snprintf(cmd, sizeof cmd, "%s top --help", bin);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(strstr(out, "usage: naq top"));
    assert_non_null(strstr(out, "pause"));
    assert_non_null(strstr(out, "filter by queue"));
}

/* Whatever a failed test left running in its terminal goes too. */
static int top_teardown(void **state)
{
    sh("tmux -L naq-test-top-%d kill-server >/dev/null 2>&1", (int)getpid());
    return qteardown(state);
}

static const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, qsetup, top_teardown)
    T(top_shows_queues_workers_and_failures_pauses_and_quits),
    T(top_fits_80x24_and_filters_by_queue),
    T(top_opens_a_jobs_history_and_goes_back),
    cmocka_unit_test(top_help_describes_the_keys_and_exits_0),
#undef T
};

NAQ_TEST_MAIN(tests)
