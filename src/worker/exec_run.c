/*
 * exec_run.c - run one command as a job: fork/exec it in a process group of
 * its own, keep the tail of its stdout and stderr, stop it on timeout or
 * cancellation, and report how it ended and what it used.
 *
 * Invariants, and why:
 * - Everything the child needs (environment, PATH candidates, fds) is built
 *   before fork(). Between fork() and exec the child calls only
 *   async-signal-safe functions: other worker threads may have held
 *   malloc's or stdio's locks at the moment of the fork. For the same
 *   reason the PATH search is done here with execve() instead of execvp(),
 *   which POSIX does not list as async-signal-safe.
 * - Every fd opened here is O_CLOEXEC from birth (pipe2, F_DUPFD_CLOEXEC),
 *   so a command started at the same moment by another thread never
 *   inherits our pipes, which would delay our EOF until it exits.
 * - The child is reaped only at the very end. We notice its exit with
 *   waitid(WNOWAIT), which leaves it a zombie: its pid, which is also the
 *   process group id, then cannot be reused while we may still signal the
 *   group with kill(-pgid).
 * - Memory is bounded: each stream keeps a ring of tail_bytes, whatever
 *   the command writes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2(): both pipe ends O_CLOEXEC atomically */
#endif

#include "exec_run.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2) /* <linux/close_range.h>, Linux 5.11 */
#endif

/* Exit status of a child that could not exec, as in the shells. Only seen
 * by us: the parent turns the child's report into an error status. */
#define CANNOT_RUN_STATUS 127

/* PATH when the environment has none: glibc's confstr(_CS_PATH). */
#define DEFAULT_PATH "/bin:/usr/bin"

extern char **environ;

/* What the child sends through the report pipe when it cannot exec. The
 * pipe is O_CLOEXEC, so a successful exec closes it: EOF means started. */
enum { STEP_SETUP = 1, STEP_CHDIR, STEP_EXEC };
struct child_report {
    int step;
    int err;
};

/* Everything the child needs, prepared before fork(). */
struct launch {
    char *const *argv;
    char **envp;    /* heap array; strings borrowed from environ / opts */
    char **paths;   /* heap block: file names to try, NULL-terminated */
    char **sh_argv; /* heap: {"/bin/sh", <file>, argv[1..], NULL} */
    const char *cwd;
    int stdin_fd;  /* /dev/null */
    int out[2];    /* stdout pipe: [0] ours, [1] the child's */
    int err[2];    /* stderr pipe */
    int report[2]; /* child -> parent: struct child_report */
};

/* The tail of one output stream. */
struct stream {
    int fd;    /* read end, -1 once closed */
    char *buf; /* cap + 1 bytes: a ring while reading, then the tail */
    size_t cap;
    size_t pos; /* next write offset; the oldest byte once total > cap */
    size_t total;
};

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Moves fd to 3 or above. If the worker runs with stdin/stdout/stderr
 * closed, a new pipe can land on 0-2, and the child's dup2() onto 0-2 would
 * then clobber one of its own pipe ends. */
static int lift_fd(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    close(fd);
    errno = saved;
    return high;
}

static int make_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    p[0] = lift_fd(p[0]);
    p[1] = lift_fd(p[1]);
    if (p[0] >= 0 && p[1] >= 0)
        return 0;
    int saved = errno;
    close_fd(&p[0]);
    close_fd(&p[1]);
    errno = saved;
    return -1;
}

/* ---- preparing the launch (parent, before fork) ---- */

static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* Whether one of extra[from..to) sets the variable that entry sets. */
static int overridden(const char *entry, const char *const *extra, size_t from, size_t to)
{
    size_t len = name_len(entry);
    for (size_t i = from; i < to; i++)
        if (strncmp(extra[i], entry, len) == 0 && extra[i][len] == '=')
            return 1;
    return 0;
}

/* environ plus extra, each name once, the last assignment winning. */
static naq_status build_env(const char *const *extra, char ***out)
{
    size_t n_base = 0, n_extra = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++)
        n_base++;
    for (; extra != NULL && extra[n_extra] != NULL; n_extra++) {
        const char *eq = strchr(extra[n_extra], '=');
        if (eq == NULL || eq == extra[n_extra])
            return naq__fail(NAQ_ERR_INVALID_ARG, "exec: environment entry '%s' is not NAME=VALUE",
                             extra[n_extra]);
    }
    char **v = malloc((n_base + n_extra + 1) * sizeof *v);
    if (v == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "exec: out of memory for the environment");
    size_t n = 0;
    for (size_t i = 0; i < n_base; i++)
        if (!overridden(environ[i], extra, 0, n_extra))
            v[n++] = environ[i];
    for (size_t i = 0; i < n_extra; i++)
        if (!overridden(extra[i], extra, i + 1, n_extra))
            v[n++] = (char *)extra[i];
    v[n] = NULL;
    *out = v;
    return NAQ_OK;
}

/* The file names execvp() would try for name: name itself if it holds a
 * '/', else "<dir>/name" for each PATH entry ("" meaning "."), PATH taken
 * from the child's environment. One block: pointers, then the strings. */
static naq_status build_paths(const char *name, char *const *envp, char ***out)
{
    const char *path = DEFAULT_PATH;
    for (char *const *e = envp; *e != NULL; e++)
        if (strncmp(*e, "PATH=", 5) == 0) {
            path = *e + 5;
            break;
        }
    if (strchr(name, '/') != NULL)
        path = NULL;

    size_t nlen = strlen(name), k = 1;
    for (const char *c = path; c != NULL && *c != '\0'; c++)
        k += *c == ':';
    /* Per entry at most: the dir (or "."), '/', name, NUL. */
    size_t bytes = path ? strlen(path) + k * (nlen + 3) : nlen + 1;
    char **v = malloc((k + 1) * sizeof *v + bytes);
    if (v == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "exec: out of memory for the PATH search");
    char *w = (char *)(v + k + 1);
    if (path == NULL) {
        memcpy(w, name, nlen + 1);
        v[0] = w;
    } else {
        const char *c = path;
        for (size_t i = 0; i < k; i++) {
            const char *end = strchr(c, ':');
            if (end == NULL)
                end = c + strlen(c);
            v[i] = w;
            if (end == c) {
                *w++ = '.';
            } else {
                memcpy(w, c, (size_t)(end - c));
                w += end - c;
            }
            *w++ = '/';
            memcpy(w, name, nlen + 1);
            w += nlen + 1;
            c = *end ? end + 1 : end;
        }
    }
    v[k] = NULL;
    *out = v;
    return NAQ_OK;
}

/* argv for running a file without "#!" through /bin/sh, as execvp() does;
 * slot 1 receives the file name in the child. */
static naq_status build_sh_argv(char *const *argv, char ***out)
{
    size_t argc = 0;
    while (argv[argc] != NULL)
        argc++;
    char **v = malloc((argc + 2) * sizeof *v);
    if (v == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "exec: out of memory for argv");
    v[0] = (char *)"/bin/sh";
    v[1] = NULL;
    for (size_t i = 1; i <= argc; i++)
        v[i + 1] = argv[i];
    *out = v;
    return NAQ_OK;
}

static naq_status open_fds(struct launch *l, const char *name)
{
    l->stdin_fd = lift_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (l->stdin_fd < 0 || make_pipe(l->out) != 0 || make_pipe(l->err) != 0 ||
        make_pipe(l->report) != 0)
        return naq__fail(NAQ_ERR_IO, "cannot run '%s': cannot open pipes: %s", name,
                         strerror(errno));
    /* Only our read ends: O_NONBLOCK lives on the open file description, so
     * on the child's ends it would turn its writes into EAGAIN errors. */
    if (fcntl(l->out[0], F_SETFL, O_NONBLOCK) != 0 || fcntl(l->err[0], F_SETFL, O_NONBLOCK) != 0)
        return naq__fail(NAQ_ERR_IO, "cannot run '%s': fcntl: %s", name, strerror(errno));
    return NAQ_OK;
}

/* ---- the child (async-signal-safe calls only) ---- */

static _Noreturn void child_fail(int fd, int step)
{
    struct child_report rep = {step, errno};
    /* Smaller than PIPE_BUF, so atomic. If it fails the parent sees EOF and
     * then exit status 127, which is still an honest answer. */
    ssize_t ignored = write(fd, &rep, sizeof rep);
    (void)ignored;
    _exit(CANNOT_RUN_STATUS);
}

/* Tries the candidates like glibc's execvpe(); returns only on failure,
 * with errno saying why. */
static void exec_candidates(struct launch *l)
{
    int saw_eacces = 0;
    for (char **p = l->paths; *p != NULL; p++) {
        execve(*p, l->argv, l->envp);
        switch (errno) {
        case ENOEXEC:
            l->sh_argv[1] = *p;
            execve(l->sh_argv[0], l->sh_argv, l->envp);
            errno = ENOEXEC;
            return;
        case EACCES:
            /* Keep looking, but report this rather than "not found". */
            saw_eacces = 1;
            break;
        case ENOENT:
        case ENOTDIR:
        case ENODEV:
        case ESTALE:
        case ETIMEDOUT: break;
        default: return;
        }
    }
    if (saw_eacces)
        errno = EACCES;
}

static _Noreturn void child_main(struct launch *l)
{
    /* Default dispositions: a handler of the worker must not run in this
     * copy of it, and signals the worker ignores (SIGPIPE, typically) must
     * not stay ignored in the command, since exec keeps SIG_IGN. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &dfl, NULL);

    /* Its own group, so that a timeout can stop everything it started. */
    if (setpgid(0, 0) != 0)
        child_fail(l->report[1], STEP_SETUP);
    /* dup2() clears FD_CLOEXEC on 0-2; every other fd of ours stays CLOEXEC
     * and vanishes at exec. */
    if (dup2(l->stdin_fd, 0) < 0 || dup2(l->out[1], 1) < 0 || dup2(l->err[1], 2) < 0)
        child_fail(l->report[1], STEP_SETUP);
    if (l->cwd != NULL && chdir(l->cwd) != 0)
        child_fail(l->report[1], STEP_CHDIR);
#ifdef SYS_close_range
    /* Best effort: fds the worker (or a library) opened without O_CLOEXEC,
     * such as a NATS socket, must not live on in the command. Old kernels
     * answer ENOSYS and we proceed without it. */
    (void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
#endif
    /* Unblock everything: the parent blocked all signals around fork(), and
     * a worker thread may block SIGTERM for sigwait(); the command must
     * still die on our SIGTERM. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    exec_candidates(l);
    child_fail(l->report[1], STEP_EXEC);
}

/* ---- output tails ---- */

static naq_status stream_init(struct stream *s, size_t cap)
{
    if (cap == SIZE_MAX || (s->buf = malloc(cap + 1)) == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "exec: out of memory for a %zu-byte output tail", cap);
    s->cap = cap;
    return NAQ_OK;
}

static void stream_append(struct stream *s, const char *p, size_t n)
{
    s->total += n;
    if (n >= s->cap) {
        memcpy(s->buf, p + n - s->cap, s->cap);
        s->pos = 0;
        return;
    }
    size_t first = s->cap - s->pos < n ? s->cap - s->pos : n;
    memcpy(s->buf + s->pos, p, first);
    memcpy(s->buf, p + first, n - first);
    s->pos = (s->pos + n) % s->cap;
}

/* One read per wake-up, not until EAGAIN: a command that writes without
 * pause must not keep us from checking the timeout and the cancel flag. */
static void stream_read(struct stream *s)
{
    char chunk[16384];
    ssize_t n = read(s->fd, chunk, sizeof chunk);
    if (n > 0) {
        stream_append(s, chunk, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    /* EOF, or an error that will not go away: stop watching this stream. */
    close_fd(&s->fd);
}

static void reverse(char *a, size_t n)
{
    for (; n > 1; a++, n -= 2) {
        char t = a[0];
        a[0] = a[n - 1];
        a[n - 1] = t;
    }
}

/* Rotates the ring into order in place (three reversals, no allocation,
 * so nothing can fail once the command has run) and hands the buffer
 * over as a NUL-terminated string. */
static char *stream_take(struct stream *s)
{
    size_t len = s->total < s->cap ? s->total : s->cap;
    if (s->total > s->cap && s->pos != 0) {
        reverse(s->buf, s->pos);
        reverse(s->buf + s->pos, s->cap - s->pos);
        reverse(s->buf, s->cap);
    }
    s->buf[len] = '\0';
    char *b = s->buf;
    s->buf = NULL;
    return b;
}

/* ---- the parent after fork ---- */

/* Blocks until the child has exec'd (EOF) or reported why it cannot. */
static naq_status await_exec(const struct launch *l, pid_t pid)
{
    const char *name = l->argv[0];
    struct child_report rep;
    ssize_t n;
    do
        n = read(l->report[0], &rep, sizeof rep);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return NAQ_OK;
    if (n != (ssize_t)sizeof rep) {
        /* Cannot happen with a pipe; make sure the caller's reap returns. */
        int saved = n < 0 ? errno : EIO;
        kill(pid, SIGKILL);
        return naq__fail(NAQ_ERR_IO, "cannot run '%s': reading the start-up report: %s", name,
                         strerror(saved));
    }
    switch (rep.step) {
    case STEP_EXEC:
        return naq__fail(NAQ_ERR_INVALID_ARG, "cannot run '%s': %s", name, strerror(rep.err));
    case STEP_CHDIR:
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "cannot run '%s': cannot change to directory '%s': %s", name, l->cwd,
                         strerror(rep.err));
    default:
        return naq__fail(NAQ_ERR_IO, "cannot run '%s': setting up the child: %s", name,
                         strerror(rep.err));
    }
}

static naq_status lost_child(const char *name)
{
    return naq__fail(NAQ_ERR_IO,
                     "lost track of the child running '%s': it was reaped elsewhere "
                     "(is SIGCHLD ignored, or does another thread call waitpid(-1)?)",
                     name);
}

/* Reads output until the child has exited and its pipes are closed (or
 * NAQ__EXEC_DRAIN_MS later), stopping it on timeout or cancellation. On
 * NAQ_OK the child is left a zombie for the caller to reap. On error the
 * child is dead or being killed, so reaping it does not hang. */
static naq_status supervise(pid_t pid, const naq__exec_opts *o, struct stream s[2], int64_t start,
                            naq__exec_result *r)
{
    const int64_t deadline = o->timeout_ms > 0 ? start + o->timeout_ms : -1;
    int64_t kill_at = -1, linger_until = -1, backoff = 1;
    int stopping = 0; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
    int exited = 0;

    for (;;) {
        int64_t now = naq__mono_ms();
        if (!exited) {
            siginfo_t si;
            si.si_pid = 0;
            if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
                if (errno == EINTR)
                    continue;
                return lost_child(o->argv[0]);
            }
            if (si.si_pid == pid) {
                exited = 1;
                r->duration_ms = now - start;
            }
        }
        int nopen = (s[0].fd >= 0) + (s[1].fd >= 0);

        if (!exited && stopping == 0) {
            if (o->cancel != NULL && *o->cancel)
                r->cancelled = 1;
            else if (deadline >= 0 && now >= deadline)
                r->timed_out = 1;
            if (r->cancelled || r->timed_out) {
                kill(-pid, SIGTERM);
                /* A stopped member would only see SIGTERM once continued. */
                kill(-pid, SIGCONT);
                stopping = 1;
                kill_at = now + NAQ__EXEC_KILL_GRACE_MS;
            }
        }
        /* Once stopping, the leader's end ends the grace: whatever is left
         * of the group has had its SIGTERM, and a stopped job promises that
         * nothing of it survives the call. */
        if (stopping == 1 && (now >= kill_at || (exited && nopen == 0))) {
            kill(-pid, SIGKILL);
            stopping = 2;
        }
        if (exited && nopen == 0)
            return NAQ_OK;
        /* Exited, but something it started still holds the pipes. While
         * stopping, the SIGKILL above will close them; otherwise give up on
         * that output after a short drain. */
        if (exited && stopping != 1) {
            if (linger_until < 0)
                linger_until = now + NAQ__EXEC_DRAIN_MS;
            if (now >= linger_until)
                return NAQ_OK;
        }

        /* No SIGCHLD handler (it would be process-wide), so the exit is
         * noticed by polling. Pipes usually reach EOF just before the exit,
         * so then back off from 1 ms instead of sleeping a whole tick. */
        int64_t wait = NAQ__EXEC_TICK_MS;
        if (nopen == 0) {
            wait = backoff;
            backoff = min64(backoff * 2, NAQ__EXEC_TICK_MS);
        }
        if (!exited && stopping == 0 && deadline >= 0)
            wait = min64(wait, deadline - now);
        if (stopping == 1)
            wait = min64(wait, kill_at - now);
        if (linger_until >= 0)
            wait = min64(wait, linger_until - now);
        if (wait < 0)
            wait = 0;

        struct pollfd pfd[2];
        struct stream *who[2];
        nfds_t n = 0;
        for (int i = 0; i < 2; i++)
            if (s[i].fd >= 0) {
                pfd[n] = (struct pollfd){.fd = s[i].fd, .events = POLLIN};
                who[n++] = &s[i];
            }
        if (poll(pfd, n, (int)wait) < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            if (!exited)
                kill(-pid, SIGKILL);
            return naq__fail(NAQ_ERR_IO, "exec: poll failed while running '%s': %s", o->argv[0],
                             strerror(saved));
        }
        for (nfds_t k = 0; k < n; k++)
            if (pfd[k].revents != 0)
                stream_read(who[k]);
    }
}

static int64_t tv_ms(struct timeval tv)
{
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

naq_status naq__exec_run(const naq__exec_opts *opts, naq__exec_result *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (opts == NULL || out == NULL || opts->argv == NULL || opts->argv[0] == NULL ||
        opts->argv[0][0] == '\0' || opts->timeout_ms < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "exec: needs options, a result, a command (argv[0]) and a "
                         "timeout >= 0");

    const char *name = opts->argv[0];
    size_t cap = opts->tail_bytes ? opts->tail_bytes : NAQ__EXEC_DEFAULT_TAIL;
    struct launch l = {.argv = opts->argv,
                       .cwd = opts->cwd,
                       .stdin_fd = -1,
                       .out = {-1, -1},
                       .err = {-1, -1},
                       .report = {-1, -1}};
    struct stream s[2] = {{.fd = -1}, {.fd = -1}};

    naq_status st = build_env(opts->env, &l.envp);
    if (st == NAQ_OK)
        st = build_paths(name, l.envp, &l.paths);
    if (st == NAQ_OK)
        st = build_sh_argv(opts->argv, &l.sh_argv);
    if (st == NAQ_OK)
        st = stream_init(&s[0], cap);
    if (st == NAQ_OK)
        st = stream_init(&s[1], cap);
    if (st == NAQ_OK)
        st = open_fds(&l, name);
    if (st != NAQ_OK)
        goto done;

    /* Block every signal across fork() so that no handler of the worker can
     * run in the child before it has reset the dispositions. */
    sigset_t all, saved_mask;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved_mask);
    const int64_t start = naq__mono_ms();
    pid_t pid = fork();
    if (pid == 0)
        child_main(&l);
    int fork_err = errno;
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);

    /* Our copies of the child's ends must go now, or EOF never comes. */
    close_fd(&l.stdin_fd);
    close_fd(&l.out[1]);
    close_fd(&l.err[1]);
    close_fd(&l.report[1]);
    if (pid < 0) {
        st = naq__fail(NAQ_ERR_IO, "cannot run '%s': fork: %s", name, strerror(fork_err));
        goto done;
    }
    s[0].fd = l.out[0];
    l.out[0] = -1;
    s[1].fd = l.err[0];
    l.err[0] = -1;

    st = await_exec(&l, pid);
    if (st == NAQ_OK)
        st = supervise(pid, opts, s, start, out);

    /* Reap on every path: a child that could not exec exits 127 by itself,
     * a supervised one is a zombie, a failed supervision killed it. */
    int wstatus = 0;
    struct rusage ru;
    pid_t got;
    do
        got = wait4(pid, &wstatus, 0, &ru);
    while (got < 0 && errno == EINTR);
    if (got != pid && st == NAQ_OK)
        st = lost_child(name);
    if (st != NAQ_OK)
        goto done;

    if (WIFEXITED(wstatus)) {
        out->exited = 1;
        out->exit_status = WEXITSTATUS(wstatus);
    } else if (WIFSIGNALED(wstatus)) {
        out->term_signal = WTERMSIG(wstatus);
    }
    /* wait4() reports the child plus the descendants it waited for. */
    out->cpu_time_ms = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
    out->peak_memory_mb = (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
    out->stdout_total = s[0].total;
    out->stderr_total = s[1].total;
    out->stdout_tail = stream_take(&s[0]);
    out->stderr_tail = stream_take(&s[1]);

done:
    for (int i = 0; i < 2; i++) {
        close_fd(&s[i].fd);
        free(s[i].buf);
    }
    close_fd(&l.stdin_fd);
    for (int i = 0; i < 2; i++) {
        close_fd(&l.out[i]);
        close_fd(&l.err[i]);
        close_fd(&l.report[i]);
    }
    free(l.sh_argv);
    free(l.paths);
    free(l.envp);
    if (st != NAQ_OK)
        memset(out, 0, sizeof *out);
    return st;
}

void naq__exec_result_clear(naq__exec_result *r)
{
    if (r == NULL)
        return;
    free(r->stdout_tail);
    free(r->stderr_tail);
    memset(r, 0, sizeof *r);
}
