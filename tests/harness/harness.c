/*
 * harness.c - real nats-server processes for tests, and CLI runs.
 */
#include "harness.h"

#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef NAQ_BIN
#define NAQ_BIN "naq"
#endif

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The low end of the kernel's ephemeral port range (32768 by default). */
static int ephemeral_low(void)
{
    int low = 32768, high = 0;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%d %d", &low, &high) != 2)
            low = 32768;
        fclose(f);
    }
    return low;
}

static int port_bindable(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* A free port below the ephemeral range: a port the kernel picks for
 * bind(0) is one it may give next to any outgoing connection (the tests
 * run in parallel and connect a lot), which then holds it before the
 * server binds it - seen as "address already in use" at start. Below the
 * range only another test picking the same random port can take it. */
int naq_test_free_port(void)
{
    static unsigned seed;
    if (seed == 0)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    /* Room above P for a cluster's route ports (P+2000..., naq server). */
    int low = 10000, high = ephemeral_low() - 2100;
    if (high < low + 1000) /* an unusual range: take any port */
        high = 65535 - 2100;
    for (int i = 0; i < 1000; i++) {
        int port = low + (int)(rand_r(&seed) % (unsigned)(high - low));
        if (port_bindable(port))
            return port;
    }
    fail_msg("no free port found below %d", ephemeral_low());
    return 0;
}

static int port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Whether the log at path says "Server is ready" after byte offset from. */
static int log_says_ready(const char *path, long from)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[512];
    int ready = 0;
    if (fseek(f, from, SEEK_SET) == 0)
        while (!ready && fgets(line, sizeof line, f) != NULL)
            ready = strstr(line, "Server is ready") != NULL;
    fclose(f);
    return ready;
}

/* Starts the server of s on s->port. 0 once it is ready; -1 when it
 * exited at start (the log says why: a port taken since it was picked).
 * The port answering is not enough: it may be another test's server. */
static int spawn_server(naq_test_server *s)
{
    char store[300], log[300], port[16];
    snprintf(store, sizeof store, "%s/store", s->dir);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    snprintf(port, sizeof port, "%d", s->port);
    struct stat before;
    long from = stat(log, &before) == 0 ? (long)before.st_size : 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* It dies with the test process (tests start servers from the main
         * thread): a test that fails or crashes before its teardown leaves
         * no server running. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        const char *args[10 + NAQ_TEST_SERVER_EXTRA_MAX] = {
            "nats-server", "-js", "-a", "127.0.0.1", "-p", port, "-sd", store};
        for (int i = 0, n = 8; s->extra[i] != NULL; i++)
            args[n++] = s->extra[i];
        execvp("nats-server", (char *const *)args);
        fprintf(stderr, "cannot run nats-server: %s (install it: scripts/install-deps.sh)\n",
                strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 500; i++) {
        if (log_says_ready(log, from) && port_accepts(s->port))
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    fail_msg("nats-server did not accept connections on port %d within 5 s", s->port);
    return -1;
}

void naq_test_server_start(naq_test_server *s)
{
    naq_test_server_start_with(s, NULL);
}

void naq_test_server_fail(const naq_test_server *s, const char *what)
{
    char path[300], tail[1025] = "";
    snprintf(path, sizeof path, "%s/server.log", s->dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fseek(f, -1024, SEEK_END) != 0)
            rewind(f);
        tail[fread(tail, 1, sizeof tail - 1, f)] = '\0';
        fclose(f);
    }
    fail_msg("%s; the end of its log:\n%s", what, tail);
}

int naq_test_server_try_start_with(naq_test_server *s, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
        assert_true(i < NAQ_TEST_SERVER_EXTRA_MAX);
        s->extra[i] = extra[i];
    }
    snprintf(s->dir, sizeof s->dir, "/tmp/naq-test-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    s->port = naq_test_free_port();
    snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
    return spawn_server(s);
}

void naq_test_server_start_with(naq_test_server *s, const char *const *extra)
{
    /* Another test may take the port between its pick and the bind: then
     * pick another (a cluster's ports are in its arguments: the cluster
     * retries with new ones, naq_test_cluster_start). */
    for (int attempt = 0;; attempt++) {
        if (naq_test_server_try_start_with(s, extra) == 0)
            return;
        if (extra != NULL || attempt == 4)
            naq_test_server_fail(s, "nats-server exited at start");
        naq_test_server_destroy(s);
    }
}

static void stop_with(naq_test_server *s, int sig)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, sig);
    for (int i = 0; i < 500; i++) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

void naq_test_server_stop(naq_test_server *s)
{
    stop_with(s, SIGTERM);
}
void naq_test_server_kill(naq_test_server *s)
{
    stop_with(s, SIGKILL);
}

void naq_test_server_restart(naq_test_server *s)
{
    naq_test_server_stop(s);
    if (spawn_server(s) != 0)
        naq_test_server_fail(s, "nats-server exited at its restart");
}

void naq_test_rmtree(const char *dir)
{
    if (dir == NULL || dir[0] != '/' || strlen(dir) < 6)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

void naq_test_server_destroy(naq_test_server *s)
{
    naq_test_server_stop(s);
    naq_test_rmtree(s->dir);
}

void naq_test_config(const naq_test_server *s, naq_config *cfg)
{
    naq_config_init(cfg);
    snprintf(cfg->url, sizeof cfg->url, "%s", s->url);
    snprintf(cfg->spool_dir, sizeof cfg->spool_dir, "%s/spool", s->dir);
    cfg->ack_wait_ms = 2000;
}

naq_client *naq_test_connect(const naq_test_server *s)
{
    naq_config cfg;
    naq_test_config(s, &cfg);
    naq_client *c = NULL;
    naq_status st = naq_client_connect(&cfg, &c);
    if (st != NAQ_OK)
        fail_msg("connect to %s: %s: %s", s->url, naq_status_str(st), naq_last_error());
    return c;
}

/* A CLI run by a test that has not exited after this long is killed and
 * the test fails with its stderr, before ctest's own timeout (300 s)
 * would kill the test and lose what the command said. */
#define CLI_LIMIT_MS 240000

/* Reads fd to its end; with deadline_ms > 0 (monotonic) stops there and
 * sets *timed_out. */
static char *read_until(int fd, int64_t deadline_ms, int *timed_out)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        if (deadline_ms > 0) {
            int64_t left = deadline_ms - naq__mono_ms();
            struct pollfd pfd = {fd, POLLIN, 0};
            int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
            if (r < 0 && errno == EINTR)
                continue;
            if (r == 0) {
                *timed_out = 1;
                break;
            }
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

static char *read_all(int fd)
{
    return read_until(fd, 0, NULL);
}

extern char **environ;

/* The environment of a child: env's entries first (getenv finds the first
 * of a name), then this process's. Built before the fork: the child of a
 * process with threads (nats.c's, the sanitizer's) may make only
 * async-signal-safe calls before its exec, since an allocation there can
 * wait for ever on a lock that another thread held at the fork (putenv in
 * the child did, under ASan, once in a few dozen runs). Free the array,
 * not its strings. */
static char **child_envp(const char *const *env)
{
    size_t extra = 0, inherited = 0;
    while (env && env[extra])
        extra++;
    while (environ[inherited])
        inherited++;
    char **envp = calloc(extra + inherited + 1, sizeof *envp);
    assert_non_null(envp);
    for (size_t i = 0; i < extra; i++) /* env may be NULL */
        envp[i] = (char *)env[i];
    memcpy(envp + extra, environ, inherited * sizeof *envp);
    return envp;
}

/* NAQ_BIN followed by argv, for execve; free the array, not its strings. */
static char **cli_argv(const char *const *argv)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **full = calloc(n + 2, sizeof *full);
    assert_non_null(full);
    full[0] = (char *)NAQ_BIN;
    memcpy(full + 1, argv, n * sizeof *full);
    return full;
}

/* In the child: only async-signal-safe calls (see child_envp). */
static void exec_cli(char **argv, char **envp)
{
    execve(NAQ_BIN, argv, envp);
    static const char msg[] = "cannot run " NAQ_BIN "\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

int naq_test_run_cli(const char *const *argv, const char *const *env, char **out, char **err)
{
    /* stderr goes to a temp file so that reading stdout cannot deadlock on a
     * full stderr pipe. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    char errpath[] = "/tmp/naq-test-stderr-XXXXXX";
    int efd = mkstemp(errpath);
    assert_true(efd >= 0);
    char **full = cli_argv(argv), **envp = child_envp(env);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 1);
        dup2(efd, 2);
        close(p[1]);
        close(efd);
        exec_cli(full, envp);
    }
    free(full);
    free(envp);
    close(p[1]);
    int timed_out = 0;
    char *o = read_until(p[0], naq__mono_ms() + CLI_LIMIT_MS, &timed_out);
    close(p[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    lseek(efd, 0, SEEK_SET);
    char *e = read_all(efd);
    close(efd);
    unlink(errpath);
    if (timed_out) {
        char cmd[512] = "naq";
        for (const char *const *a = argv; *a != NULL; a++)
            snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s", *a);
        fail_msg("'%s' did not exit within %d s and was killed; its stdout:\n%s\nits "
                 "stderr:\n%s",
                 cmd, CLI_LIMIT_MS / 1000, o, e);
    }
    if (out)
        *out = o;
    else
        free(o);
    if (err)
        *err = e;
    else
        free(e);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

pid_t naq_test_spawn_cli(const char *const *argv, const char *const *env, const char *log_path)
{
    char **full = cli_argv(argv), **envp = child_envp(env);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        exec_cli(full, envp);
    }
    free(full);
    free(envp);
    return pid;
}

extern char *program_invocation_name; /* glibc: argv[0] as started */

pid_t naq_test_spawn_self(const char *argv0, const char *const *env, const char *log_path)
{
    char **envp = child_envp(env);
    char *argv[] = {(char *)argv0, NULL};
    int fd = -1;
    if (log_path != NULL) {
        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
    }
    /* By the path it was started with: under valgrind /proc/self/exe is
     * valgrind itself. */
    const char *self =
        strchr(program_invocation_name, '/') != NULL ? program_invocation_name : "/proc/self/exe";
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execve(self, argv, envp);
        _exit(127);
    }
    if (fd >= 0)
        close(fd);
    free(envp);
    return pid;
}

int naq_test_wait_for(int (*cond)(void *ud), void *ud, int64_t timeout_ms)
{
    for (int64_t waited = 0; waited <= timeout_ms; waited += 20) {
        if (cond(ud))
            return 1;
        sleep_ms(20);
    }
    return cond(ud);
}

int naq_test_select_case(const struct CMUnitTest *tests, size_t n, const char *arg)
{
    int list = strcmp(arg, "--list") == 0;
    for (size_t i = 0; i < n; i++) {
        if (list)
            printf("%s\n", tests[i].name);
        else if (strcmp(tests[i].name, arg) == 0)
            return 1;
    }
    if (!list)
        fprintf(stderr, "no test case named '%s' (--list lists them)\n", arg);
    return 0;
}
