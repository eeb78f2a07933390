/*
 * bench_proc.c - children and their pipes for `naq bench jobs` (see
 * bench_proc.h for why every producer and worker is a process of its own),
 * and what both sides' children share: the job payload that carries its
 * enqueue time, and a worker's tally of handler returns and latencies.
 *
 * A frame is a 4-byte type, a 4-byte length and the payload. Each child
 * has its own pipe, so frames never interleave; the parent reads a whole
 * frame once poll() says its first byte is there (a child writes a frame
 * in one go, so the blocking read that follows is short).
 */
#include "bench_proc.h"

#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t naq__bench_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void naq__bench_sleep_until_ns(int64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000LL), (long)(t % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ; /* a signal woke it early: the deadline is absolute, sleep on */
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* 1 = read all, 0 = EOF before anything, -1 = error or EOF mid-way. */
static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, p + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return got == 0 && r == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

naq_status naq__bench_spawn(naq__bench_child *c, const char *name, naq__bench_child_fn fn,
                            void *arg)
{
    memset(c, 0, sizeof *c);
    c->from = c->to = -1;
    snprintf(c->name, sizeof c->name, "%s", name);
    int up[2], down[2];
    if (pipe(up) != 0)
        return naq__fail(NAQ_ERR_IO, "bench: pipe: %s", strerror(errno));
    if (pipe(down) != 0) {
        close(up[0]);
        close(up[1]);
        return naq__fail(NAQ_ERR_IO, "bench: pipe: %s", strerror(errno));
    }
    pid_t parent = getpid();
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        close(up[0]), close(up[1]), close(down[0]), close(down[1]);
        return naq__fail(NAQ_ERR_IO, "bench: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* The child: die with the parent, even if it is killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        signal(SIGINT, SIG_IGN); /* Ctrl-C is the parent's to handle */
        signal(SIGPIPE, SIG_IGN);
        close(up[0]);
        close(down[1]);
        naq__bench_chan ch = {up[1], down[0]};
        _exit(fn(&ch, arg));
    }
    close(up[1]);
    close(down[0]);
    c->pid = pid;
    c->from = up[0];
    c->to = down[1];
    return NAQ_OK;
}

naq_status naq__bench_command(naq__bench_child *c, char cmd)
{
    if (c->to < 0 || write_all(c->to, &cmd, 1) != 0)
        return naq__fail(NAQ_ERR_CLOSED, "bench: %s is gone", c->name);
    return NAQ_OK;
}

naq_status naq__bench_reap(naq__bench_child *c)
{
    if (c->from >= 0)
        close(c->from);
    if (c->to >= 0)
        close(c->to);
    c->from = c->to = -1;
    pid_t pid = c->pid;
    if (c->pid > 0) {
        while (wait4(c->pid, &c->exit_status, 0, &c->ru) < 0 && errno == EINTR)
            ;
        c->pid = 0;
    }
    if (WIFEXITED(c->exit_status) && WEXITSTATUS(c->exit_status) == 0)
        return NAQ_OK;
    if (c->error[0] != '\0')
        return naq__fail(NAQ_ERR_IO, "bench %s failed: %s", c->name, c->error);
    if (WIFSIGNALED(c->exit_status))
        return naq__fail(NAQ_ERR_IO, "bench %s (pid %ld) was killed by signal %d (%s)", c->name,
                         (long)pid, WTERMSIG(c->exit_status), strsignal(WTERMSIG(c->exit_status)));
    return naq__fail(NAQ_ERR_IO, "bench %s (pid %ld) exited with status %d and said nothing",
                     c->name, (long)pid, WEXITSTATUS(c->exit_status));
}

naq_status naq__bench_recv(naq__bench_child *cs, int n, int64_t timeout_ms, int *which, int *type,
                           void **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    struct pollfd pf[64];
    int idx[64], m = 0;
    for (int i = 0; i < n && m < 64; i++) {
        if (cs[i].from >= 0) {
            pf[m] = (struct pollfd){.fd = cs[i].from, .events = POLLIN};
            idx[m++] = i;
        }
    }
    if (m == 0)
        return naq__fail(NAQ_ERR_CLOSED, "bench: no child left to hear from");
    int r;
    while ((r = poll(pf, (nfds_t)m, (int)timeout_ms)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return naq__fail(NAQ_ERR_TIMEOUT, "bench: no word from any child in %lld ms",
                         (long long)timeout_ms);
    for (int k = 0; k < m; k++) {
        if (pf[k].revents == 0)
            continue;
        naq__bench_child *c = &cs[idx[k]];
        *which = idx[k];
        uint32_t hdr[2];
        int got = read_all(c->from, hdr, sizeof hdr);
        if (got == 1 && hdr[1] > 0) {
            *data = malloc(hdr[1] + 1); /* the caller frees it; +1 for a text's NUL */
            if (*data == NULL)
                return naq__fail(NAQ_ERR_NO_MEMORY, "bench: out of memory");
            got = read_all(c->from, *data, hdr[1]);
            ((char *)*data)[hdr[1]] = '\0';
        }
        if (got != 1) {
            free(*data);
            *data = NULL;
            naq_status s = naq__bench_reap(c);
            if (s == NAQ_OK)
                return naq__fail(NAQ_ERR_CLOSED, "bench %s has finished", c->name);
            return NAQ_ERR_CLOSED; /* the reap's message says why */
        }
        *type = (int)hdr[0];
        *len = hdr[1];
        if (*type == BENCH_MSG_ERROR)
            snprintf(c->error, sizeof c->error, "%s", (char *)*data);
        return NAQ_OK;
    }
    return naq__fail(NAQ_ERR_TIMEOUT, "bench: poll woke with nothing to read");
}

void naq__bench_kill_all(naq__bench_child *cs, int n)
{
    for (int i = 0; i < n; i++)
        if (cs[i].pid > 0)
            kill(cs[i].pid, SIGKILL);
    /* Reaped quietly: the error being reported is the one that came first. */
    for (int i = 0; i < n; i++) {
        if (cs[i].from >= 0)
            close(cs[i].from);
        if (cs[i].to >= 0)
            close(cs[i].to);
        cs[i].from = cs[i].to = -1;
        while (cs[i].pid > 0 && wait4(cs[i].pid, &cs[i].exit_status, 0, &cs[i].ru) < 0 &&
               errno == EINTR)
            ;
        cs[i].pid = 0;
    }
}

int naq__bench_send(naq__bench_chan *ch, int type, const void *data, size_t len)
{
    uint32_t hdr[2] = {(uint32_t)type, (uint32_t)len};
    if (write_all(ch->out, hdr, sizeof hdr) != 0)
        return -1;
    return len > 0 ? write_all(ch->out, data, len) : 0;
}

int naq__bench_fail(naq__bench_chan *ch, const char *what)
{
    char text[512];
    snprintf(text, sizeof text, "%s: %s", what, naq_last_error());
    naq__bench_send(ch, BENCH_MSG_ERROR, text, strlen(text));
    return 1;
}

int naq__bench_wait(naq__bench_chan *ch, int64_t timeout_ms)
{
    struct pollfd pf = {.fd = ch->in, .events = POLLIN};
    int r;
    while ((r = poll(&pf, 1, timeout_ms < 0 ? -1 : (int)timeout_ms)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return 0;
    char cmd;
    return read_all(ch->in, &cmd, 1) == 1 ? (unsigned char)cmd : -1;
}

int naq__bench_job_payload(char *buf, size_t cap, int bytes, int64_t t_ns, int64_t i)
{
    char fields[64];
    snprintf(fields, sizeof fields, "\"t\":%lld,\"i\":%lld", (long long)t_ns, (long long)i);
    return naq__bench_padded_json(buf, cap, bytes, fields);
}

int naq__bench_padded_json(char *buf, size_t cap, int bytes, const char *fields)
{
    int n = snprintf(buf, cap, "{%s,\"pad\":\"", fields);
    int pad = bytes - n - 2; /* the closing quote and brace */
    if (pad < 1)
        pad = 1;
    if ((size_t)(n + pad + 3) > cap)
        pad = (int)cap - n - 3;
    memset(buf + n, 'x', (size_t)pad);
    n += pad;
    buf[n++] = '"';
    buf[n++] = '}';
    buf[n] = '\0';
    return n;
}

int64_t naq__bench_payload_time(const char *text)
{
    const char *p = text ? strstr(text, "{\"t\":") : NULL;
    return p ? strtoll(p + 5, NULL, 10) : -1;
}

/* ---- the worker's tally (bench_jobs.h) ---- */

#include "bench_jobs.h"

naq_status naq__bench_tally_init(naq__bench_tally *t, int64_t cap)
{
    atomic_init(&t->handled, 0);
    atomic_init(&t->last_return_ns, 0);
    atomic_init(&t->nsamples, 0);
    t->cap = cap;
    t->samples = malloc((size_t)cap * sizeof *t->samples); /* freed by tally_report */
    if (t->samples == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "bench: out of memory for %lld latency samples",
                         (long long)cap);
    return NAQ_OK;
}

void naq__bench_tally_job(naq__bench_tally *t, int64_t entry_ns, const char *payload)
{
    int64_t sent = naq__bench_payload_time(payload);
    if (sent > 0) {
        int64_t k = atomic_fetch_add(&t->nsamples, 1);
        int64_t us = (entry_ns - sent) / 1000;
        if (k < t->cap)
            t->samples[k] = us < 0 ? 0 : us > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    }
    /* The handler's return: everything above is the handler. */
    int64_t now = naq__bench_mono_ns();
    int64_t last = atomic_load(&t->last_return_ns);
    while (now > last && !atomic_compare_exchange_weak(&t->last_return_ns, &last, now))
        ;
    atomic_fetch_add(&t->handled, 1);
}

int naq__bench_tally_report(naq__bench_tally *t, naq__bench_chan *ch)
{
    naq__bench_report r = {atomic_load(&t->handled), atomic_load(&t->last_return_ns)};
    int64_t n = atomic_load(&t->nsamples);
    if (n > t->cap)
        n = t->cap;
    int rc = naq__bench_send(ch, BENCH_MSG_REPORT, &r, sizeof r);
    if (rc == 0)
        rc = naq__bench_send(ch, BENCH_MSG_SAMPLES, t->samples, (size_t)n * sizeof *t->samples);
    free(t->samples);
    t->samples = NULL;
    return rc;
}
