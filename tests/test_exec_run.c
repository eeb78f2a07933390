/*
 * test_exec_run.c - the process runner behind the `exec` job handler:
 * exit status, signals, timeout and cancellation of whole process groups,
 * bounded output tails, environment, working directory, resource usage,
 * commands that cannot run, and no fd leaks.
 *
 * The test process makes itself a child subreaper: background processes a
 * command leaves behind are re-parented to us instead of to PID 1, so we
 * can reap them and check with kill(-pgid, 0) that a stopped group is
 * really gone (a sandbox's PID 1 may never reap, leaving zombies that
 * still count as group members).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h" /* NAQ_TEST_MAIN */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "worker/exec_run.h"

#define ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

static naq__exec_opts opts_for(char *const *argv)
{
    naq__exec_opts o;
    memset(&o, 0, sizeof o);
    o.argv = argv;
    return o;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reaps processes re-parented to us (we are a subreaper). */
static void reap_orphans(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

/* Waits up to 2 s for every member of process group pgid to be gone. */
static int group_gone(pid_t pgid)
{
    for (int i = 0; i < 200; i++) {
        reap_orphans();
        if (kill(-pgid, 0) != 0 && errno == ESRCH)
            return 1;
        sleep_ms(10);
    }
    return 0;
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* "1\n2\n...n\n", what `seq 1 n` prints. Caller frees. */
static char *seq_output(int n)
{
    size_t cap = (size_t)n * 12 + 1, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    for (int i = 1; i <= n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%d\n", i);
    return s;
}

/* A temporary file holding text, with the given mode. Caller unlinks. */
static void make_file(char path[64], const char *text, mode_t mode)
{
    strcpy(path, "/tmp/naq-exec-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void runs_command_and_captures_stdout(void **state)
{
    (void)state;
    naq__exec_opts o = opts_for(ARGV("echo", "hello"));
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_int_equal(r.exited, 1);
    assert_int_equal(r.exit_status, 0);
    assert_int_equal(r.term_signal, 0);
    assert_int_equal(r.timed_out, 0);
    assert_int_equal(r.cancelled, 0);
    assert_string_equal(r.stdout_tail, "hello\n");
    assert_int_equal(r.stdout_total, 6);
    assert_string_equal(r.stderr_tail, "");
    assert_int_equal(r.stderr_total, 0);
    assert_true(r.duration_ms >= 0 && r.duration_ms < 2000);
    naq__exec_result_clear(&r);
    assert_null(r.stdout_tail);
    naq__exec_result_clear(&r); /* a cleared result may be cleared again */
    naq__exec_result_clear(NULL);
}

static void records_nonzero_exit_status(void **state)
{
    (void)state;
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "exit 3"));
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_int_equal(r.exited, 1);
    assert_int_equal(r.exit_status, 3);
    assert_int_equal(r.term_signal, 0);
    naq__exec_result_clear(&r);
}

static void records_signal_that_killed_command(void **state)
{
    (void)state;
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "kill -9 $$"));
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_int_equal(r.exited, 0);
    assert_int_equal(r.term_signal, SIGKILL);
    assert_int_equal(r.timed_out, 0);
    assert_int_equal(r.cancelled, 0);
    naq__exec_result_clear(&r);
}

static void timeout_kills_whole_process_group(void **state)
{
    (void)state;
    /* The shell prints its pid, which is the group id, then waits on a
     * foreground sleep while a background one also holds the pipes. */
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "echo $$; sleep 30 & sleep 30"));
    o.timeout_ms = 300;
    naq__exec_result r;
    int64_t t0 = now_ms();
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    int64_t elapsed = now_ms() - t0;
    assert_true(elapsed >= 300);
    assert_true(elapsed < 1500); /* SIGTERM reached the group: no grace wait */
    assert_int_equal(r.timed_out, 1);
    assert_int_equal(r.cancelled, 0);
    assert_int_equal(r.exited, 0);
    assert_int_equal(r.term_signal, SIGTERM);
    pid_t pgid = (pid_t)atoi(r.stdout_tail);
    assert_true(pgid > 1);
    assert_true(group_gone(pgid));
    naq__exec_result_clear(&r);
}

static void timeout_escalates_to_sigkill_when_command_ignores_sigterm(void **state)
{
    (void)state;
    /* SIG_IGN is inherited by the sleep, so nothing in the group dies on
     * SIGTERM; only the SIGKILL after the grace period ends it. */
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "trap '' TERM; echo $$; sleep 30"));
    o.timeout_ms = 200;
    naq__exec_result r;
    int64_t t0 = now_ms();
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    int64_t elapsed = now_ms() - t0;
    assert_true(elapsed >= 200 + NAQ__EXEC_KILL_GRACE_MS);
    assert_true(elapsed < 200 + NAQ__EXEC_KILL_GRACE_MS + 1000);
    assert_int_equal(r.timed_out, 1);
    assert_int_equal(r.term_signal, SIGKILL);
    assert_true(group_gone((pid_t)atoi(r.stdout_tail)));
    naq__exec_result_clear(&r);
}

static void stopped_command_leaves_no_member_that_ignores_sigterm(void **state)
{
    (void)state;
    /* The leader dies on SIGTERM at once; a member that ignores SIGTERM and
     * holds no pipe must not outlive the call. */
    naq__exec_opts o = opts_for(
        ARGV("sh", "-c", "echo $$; (trap '' TERM; exec sleep 30) >/dev/null 2>&1 & sleep 30"));
    o.timeout_ms = 300;
    naq__exec_result r;
    int64_t t0 = now_ms();
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_true(now_ms() - t0 < 1500);
    assert_int_equal(r.timed_out, 1);
    assert_int_equal(r.term_signal, SIGTERM);
    assert_true(group_gone((pid_t)atoi(r.stdout_tail)));
    naq__exec_result_clear(&r);
}

static void timeout_stops_command_even_when_caller_blocks_sigterm(void **state)
{
    (void)state;
    /* Worker threads often block SIGTERM to sigwait() for it; the command
     * must not inherit that mask or it would only die at SIGKILL. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    naq__exec_opts o = opts_for(ARGV("sleep", "30"));
    o.timeout_ms = 200;
    naq__exec_result r;
    int64_t t0 = now_ms();
    naq_status st = naq__exec_run(&o, &r);
    int64_t elapsed = now_ms() - t0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    assert_int_equal(st, NAQ_OK);
    assert_int_equal(r.term_signal, SIGTERM);
    assert_true(elapsed < 200 + NAQ__EXEC_KILL_GRACE_MS);
    naq__exec_result_clear(&r);
}

struct canceller {
    volatile int flag;
    long after_ms;
};

static void *cancel_later(void *arg)
{
    struct canceller *c = arg;
    sleep_ms(c->after_ms);
    c->flag = 1;
    return NULL;
}

static void cancel_flag_set_from_another_thread_kills_command(void **state)
{
    (void)state;
    struct canceller c = {0, 200};
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "echo $$; sleep 30 & sleep 30"));
    o.cancel = &c.flag;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &c), 0);
    naq__exec_result r;
    int64_t t0 = now_ms();
    naq_status st = naq__exec_run(&o, &r);
    int64_t elapsed = now_ms() - t0;
    pthread_join(t, NULL);
    assert_int_equal(st, NAQ_OK);
    assert_int_equal(r.cancelled, 1);
    assert_int_equal(r.timed_out, 0);
    assert_int_equal(r.term_signal, SIGTERM);
    assert_true(elapsed >= 200);
    assert_true(elapsed < 1500);
    assert_true(group_gone((pid_t)atoi(r.stdout_tail)));
    naq__exec_result_clear(&r);
}

static void cancel_flag_already_set_stops_command_at_once(void **state)
{
    (void)state;
    volatile int flag = 1;
    naq__exec_opts o = opts_for(ARGV("sleep", "30"));
    o.cancel = &flag;
    naq__exec_result r;
    int64_t t0 = now_ms();
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_true(now_ms() - t0 < 1000);
    assert_int_equal(r.cancelled, 1);
    assert_int_equal(r.term_signal, SIGTERM);
    naq__exec_result_clear(&r);
}

/* Runs `seq 1 200000` on stdout and stderr at once, keeping tail bytes. */
static void check_seq_tail(size_t tail)
{
    const char *expected = seq_output(200000);
    size_t total = strlen(expected);
    size_t keep = tail == 0 ? NAQ__EXEC_DEFAULT_TAIL : tail;
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "seq 1 200000 >&2 & seq 1 200000; wait"));
    o.tail_bytes = tail;
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_int_equal(r.exit_status, 0);
    assert_int_equal(r.stdout_total, total);
    assert_int_equal(r.stderr_total, total);
    assert_int_equal(strlen(r.stdout_tail), keep);
    assert_int_equal(strlen(r.stderr_tail), keep);
    assert_string_equal(r.stdout_tail, expected + total - keep);
    assert_string_equal(r.stderr_tail, expected + total - keep);
    naq__exec_result_clear(&r);
    free((char *)expected);
}

static void tail_keeps_only_last_bytes_of_large_output(void **state)
{
    (void)state;
    check_seq_tail(0);      /* default 4096 */
    check_seq_tail(7);      /* "200000\n" exactly, smaller than any read */
    check_seq_tail(100000); /* larger than one read: the ring wraps */
}

static void tail_holds_whole_output_when_it_fits(void **state)
{
    (void)state;
    naq__exec_opts o = opts_for(ARGV("seq", "1", "3"));
    o.tail_bytes = 6; /* exactly the output */
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_string_equal(r.stdout_tail, "1\n2\n3\n");
    assert_int_equal(r.stdout_total, 6);
    naq__exec_result_clear(&r);
}

static void captures_stderr_separately(void **state)
{
    (void)state;
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "echo out; echo err >&2; exit 1"));
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_int_equal(r.exit_status, 1);
    assert_string_equal(r.stdout_tail, "out\n");
    assert_string_equal(r.stderr_tail, "err\n");
    assert_int_equal(r.stdout_total, 4);
    assert_int_equal(r.stderr_total, 4);
    naq__exec_result_clear(&r);
}

static void extra_env_is_visible_to_command(void **state)
{
    (void)state;
    const char *env[] = {"NAQ_EXEC_TEST=hello world", NULL};
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "printf %s \"$NAQ_EXEC_TEST\""));
    o.env = env;
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_string_equal(r.stdout_tail, "hello world");
    naq__exec_result_clear(&r);
}

static void extra_env_replaces_inherited_variable_last_entry_wins(void **state)
{
    (void)state;
    assert_int_equal(setenv("NAQ_EXEC_TEST_OVR", "parent", 1), 0);
    const char *env[] = {"NAQ_EXEC_TEST_OVR=first", "NAQ_EXEC_TEST_OVR=second", NULL};
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "env | grep '^NAQ_EXEC_TEST_OVR='"));
    o.env = env;
    naq__exec_result r;
    naq_status st = naq__exec_run(&o, &r);
    unsetenv("NAQ_EXEC_TEST_OVR");
    assert_int_equal(st, NAQ_OK);
    assert_string_equal(r.stdout_tail, "NAQ_EXEC_TEST_OVR=second\n");
    naq__exec_result_clear(&r);
}

static void path_search_uses_commands_environment(void **state)
{
    (void)state;
    const char *env[] = {"PATH=/nonexistent-naq-dir", NULL};
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "true"));
    o.env = env;
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_ERR_INVALID_ARG);
    assert_string_equal(naq_last_error(), "cannot run 'sh': No such file or directory");
}

static void cwd_is_honoured(void **state)
{
    (void)state;
    naq__exec_opts o = opts_for(ARGV("pwd", "-P"));
    o.cwd = "/";
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_string_equal(r.stdout_tail, "/\n");
    naq__exec_result_clear(&r);
}

static void missing_cwd_fails_with_invalid_arg(void **state)
{
    (void)state;
    naq__exec_opts o = opts_for(ARGV("pwd"));
    o.cwd = "/nonexistent-naq-dir";
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_ERR_INVALID_ARG);
    assert_string_equal(naq_last_error(), "cannot run 'pwd': cannot change to directory "
                                          "'/nonexistent-naq-dir': No such file or directory");
    assert_null(r.stdout_tail);
}

static void reports_cpu_time_and_peak_memory(void **state)
{
    (void)state;
    naq__exec_opts o =
        opts_for(ARGV("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"));
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_int_equal(r.exit_status, 0);
    assert_true(r.cpu_time_ms > 0);
    assert_true(r.cpu_time_ms <= r.duration_ms + 50);
    assert_true(r.peak_memory_mb > 0.0);
    assert_true(r.peak_memory_mb < 1024.0);
    naq__exec_result_clear(&r);
}

static void command_not_found_fails_with_invalid_arg(void **state)
{
    (void)state;
    naq__exec_opts o = opts_for(ARGV("naq-no-such-command-xyz", "arg"));
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_ERR_INVALID_ARG);
    assert_string_equal(naq_last_error(),
                        "cannot run 'naq-no-such-command-xyz': No such file or directory");
    assert_int_equal(r.exited, 0);
    assert_null(r.stdout_tail);
    assert_null(r.stderr_tail);
}

static void non_executable_file_fails_with_permission_denied(void **state)
{
    (void)state;
    char path[64], want[128];
    make_file(path, "#!/bin/sh\necho hi\n", 0644);
    naq__exec_opts o = opts_for(ARGV(path));
    naq__exec_result r;
    naq_status st = naq__exec_run(&o, &r);
    unlink(path);
    assert_int_equal(st, NAQ_ERR_INVALID_ARG);
    snprintf(want, sizeof want, "cannot run '%s': Permission denied", path);
    assert_string_equal(naq_last_error(), want);
}

static void script_without_shebang_runs_under_sh(void **state)
{
    (void)state;
    char path[64];
    make_file(path, "echo \"from script $1\"\n", 0755);
    naq__exec_opts o = opts_for(ARGV(path, "arg1"));
    naq__exec_result r;
    naq_status st = naq__exec_run(&o, &r);
    unlink(path);
    assert_int_equal(st, NAQ_OK);
    assert_int_equal(r.exit_status, 0);
    assert_string_equal(r.stdout_tail, "from script arg1\n");
    naq__exec_result_clear(&r);
}

static void command_stdin_is_dev_null(void **state)
{
    (void)state;
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "cat; echo done"));
    o.timeout_ms = 5000;
    naq__exec_result r;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_int_equal(r.timed_out, 0);
    assert_string_equal(r.stdout_tail, "done\n");
    naq__exec_result_clear(&r);
}

static void works_when_callers_standard_fds_are_closed(void **state)
{
    (void)state;
    /* New pipes then land on fds 0-2; the child must still get them right. */
    int saved[3];
    for (int i = 0; i < 3; i++)
        saved[i] = dup(i);
    for (int i = 0; i < 3; i++)
        close(i);
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "cat; echo out; echo err >&2"));
    o.timeout_ms = 5000;
    naq__exec_result r;
    naq_status st = naq__exec_run(&o, &r);
    for (int i = 0; i < 3; i++) {
        dup2(saved[i], i);
        close(saved[i]);
    }
    assert_int_equal(st, NAQ_OK);
    assert_int_equal(r.timed_out, 0);
    assert_string_equal(r.stdout_tail, "out\n");
    assert_string_equal(r.stderr_tail, "err\n");
    naq__exec_result_clear(&r);
}

static void command_inherits_only_stdin_stdout_stderr(void **state)
{
    (void)state;
    /* An fd the caller left without O_CLOEXEC (a socket opened by some
     * library, say) must not reach the command either. */
    int stray = open("/dev/null", O_RDONLY);
    assert_true(stray > 2);
    naq__exec_opts o = opts_for(ARGV("ls", "/proc/self/fd"));
    naq__exec_result r;
    naq_status st = naq__exec_run(&o, &r);
    close(stray);
    assert_int_equal(st, NAQ_OK);
    /* 3 is the directory ls itself is reading. */
    assert_string_equal(r.stdout_tail, "0\n1\n2\n3\n");
    naq__exec_result_clear(&r);
}

static void command_starts_with_default_signal_dispositions(void **state)
{
    (void)state;
    /* With SIGPIPE ignored (as network programs do), `yes` would get EPIPE
     * and complain on stderr instead of dying quietly of SIGPIPE. */
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "yes | head -n 1"));
    naq__exec_result r;
    naq_status st = naq__exec_run(&o, &r);
    sigaction(SIGPIPE, &old, NULL);
    assert_int_equal(st, NAQ_OK);
    assert_string_equal(r.stdout_tail, "y\n");
    assert_string_equal(r.stderr_tail, "");
    naq__exec_result_clear(&r);
}

static void returns_when_command_exits_even_if_background_child_holds_pipes(void **state)
{
    (void)state;
    naq__exec_opts o = opts_for(ARGV("sh", "-c", "sleep 30 & echo $!"));
    naq__exec_result r;
    int64_t t0 = now_ms();
    assert_int_equal(naq__exec_run(&o, &r), NAQ_OK);
    assert_true(now_ms() - t0 < 1000);
    assert_int_equal(r.exited, 1);
    assert_int_equal(r.exit_status, 0);
    pid_t bg = (pid_t)atoi(r.stdout_tail);
    assert_true(bg > 1);
    /* Not stopped, so its leftovers live on; clean up after ourselves. */
    assert_int_equal(kill(bg, 0), 0);
    kill(bg, SIGKILL);
    sleep_ms(50);
    reap_orphans();
    naq__exec_result_clear(&r);
}

static void rejects_invalid_options(void **state)
{
    (void)state;
    naq__exec_result r;
    assert_int_equal(naq__exec_run(NULL, &r), NAQ_ERR_INVALID_ARG);
    naq__exec_opts o = opts_for(NULL);
    assert_int_equal(naq__exec_run(&o, &r), NAQ_ERR_INVALID_ARG);
    o = opts_for(ARGV(""));
    assert_int_equal(naq__exec_run(&o, &r), NAQ_ERR_INVALID_ARG);
    o = opts_for(ARGV("true"));
    assert_int_equal(naq__exec_run(&o, NULL), NAQ_ERR_INVALID_ARG);
    o.timeout_ms = -1;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_ERR_INVALID_ARG);
    const char *env[] = {"NO_EQUALS_SIGN", NULL};
    o = opts_for(ARGV("true"));
    o.env = env;
    assert_int_equal(naq__exec_run(&o, &r), NAQ_ERR_INVALID_ARG);
    assert_string_equal(naq_last_error(),
                        "exec: environment entry 'NO_EQUALS_SIGN' is not NAME=VALUE");
}

static void does_not_leak_fds_across_runs(void **state)
{
    (void)state;
    int before = count_open_fds();
    /* Success, not found, bad cwd and timeout: every exit path. */
    char *const *argvs[] = {ARGV("echo", "x"), ARGV("naq-no-such-command-xyz"), ARGV("pwd"),
                            ARGV("sleep", "30")};
    for (int i = 0; i < 20; i++) {
        naq__exec_opts o = opts_for(argvs[i % 4]);
        if (i % 4 == 2)
            o.cwd = "/nonexistent-naq-dir";
        if (i % 4 == 3)
            o.timeout_ms = 20;
        naq__exec_result r;
        naq__exec_run(&o, &r);
        naq__exec_result_clear(&r);
    }
    assert_int_equal(count_open_fds(), before);
}

struct concurrent_job {
    char tag[16];
    int failures;
};

static void *run_tagged(void *arg)
{
    struct concurrent_job *j = arg;
    char want[32];
    snprintf(want, sizeof want, "%s\n", j->tag);
    for (int i = 0; i < 5; i++) {
        naq__exec_opts o = opts_for(ARGV("sh", "-c", "echo \"$1\"; echo \"$1\" >&2", "sh", j->tag));
        o.timeout_ms = 10000;
        naq__exec_result r;
        if (naq__exec_run(&o, &r) != NAQ_OK || r.exit_status != 0 ||
            strcmp(r.stdout_tail, want) != 0 || strcmp(r.stderr_tail, want) != 0)
            j->failures++;
        naq__exec_result_clear(&r);
    }
    return NULL;
}

static void concurrent_runs_from_several_threads_keep_outputs_apart(void **state)
{
    (void)state;
    enum { N = 8 };
    struct concurrent_job jobs[N] = {0};
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        snprintf(jobs[i].tag, sizeof jobs[i].tag, "job-%d", i);
        assert_int_equal(pthread_create(&t[i], NULL, run_tagged, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++)
        assert_int_equal(jobs[i].failures, 0);
}

static int become_subreaper(void **state)
{
    (void)state;
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : -1;
}

static int reap_leftovers(void **state)
{
    (void)state;
    reap_orphans();
    return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(runs_command_and_captures_stdout),
    cmocka_unit_test(records_nonzero_exit_status),
    cmocka_unit_test(records_signal_that_killed_command),
    cmocka_unit_test(timeout_kills_whole_process_group),
    cmocka_unit_test(timeout_escalates_to_sigkill_when_command_ignores_sigterm),
    cmocka_unit_test(stopped_command_leaves_no_member_that_ignores_sigterm),
    cmocka_unit_test(timeout_stops_command_even_when_caller_blocks_sigterm),
    cmocka_unit_test(cancel_flag_set_from_another_thread_kills_command),
    cmocka_unit_test(cancel_flag_already_set_stops_command_at_once),
    cmocka_unit_test(tail_keeps_only_last_bytes_of_large_output),
    cmocka_unit_test(tail_holds_whole_output_when_it_fits),
    cmocka_unit_test(captures_stderr_separately),
    cmocka_unit_test(extra_env_is_visible_to_command),
    cmocka_unit_test(extra_env_replaces_inherited_variable_last_entry_wins),
    cmocka_unit_test(path_search_uses_commands_environment),
    cmocka_unit_test(cwd_is_honoured),
    cmocka_unit_test(missing_cwd_fails_with_invalid_arg),
    cmocka_unit_test(reports_cpu_time_and_peak_memory),
    cmocka_unit_test(command_not_found_fails_with_invalid_arg),
    cmocka_unit_test(non_executable_file_fails_with_permission_denied),
    cmocka_unit_test(script_without_shebang_runs_under_sh),
    cmocka_unit_test(command_stdin_is_dev_null),
    cmocka_unit_test(works_when_callers_standard_fds_are_closed),
    cmocka_unit_test(command_inherits_only_stdin_stdout_stderr),
    cmocka_unit_test(command_starts_with_default_signal_dispositions),
    cmocka_unit_test(returns_when_command_exits_even_if_background_child_holds_pipes),
    cmocka_unit_test(rejects_invalid_options),
    cmocka_unit_test(does_not_leak_fds_across_runs),
    cmocka_unit_test(concurrent_runs_from_several_threads_keep_outputs_apart),
};

NAQ_TEST_MAIN_GROUP(tests, become_subreaper, reap_leftovers)
