/*
 * beanstalk_jobs.c - the beanstalkd side of the job-throughput comparison
 * (bench/compare-beanstalkd.sh, docs/benchmarks.md): the method of
 * `naq bench jobs --mode sync` with beanstalkd's own protocol, over plain
 * POSIX sockets (no libnaq, no client library).
 *
 * W worker processes are forked first; each connects, watches the tube and
 * says ready through a pipe, then runs `reserve` / no-op handler /
 * `delete` until it reserves a stop job. The parent is the one producer:
 * `put` per job, waiting for INSERTED, each job's body ~BYTES long and
 * carrying its enqueue time (CLOCK_MONOTONIC, one clock for all processes).
 * After the N jobs it puts W stop jobs at the lowest priority, which no
 * worker reserves while a real job is ready. Workers report their handler
 * count, last handler return and latencies (enqueue -> handler entry)
 * through their pipes; CPU is the producer's own rusage plus each worker's
 * from wait4().
 *
 *   jobs_per_s = N / (last handler return - first put)
 *
 * usage: beanstalk_jobs [--addr HOST:PORT] [--count N] [--workers W]
 *                       [--payload BYTES] [--server-pid PID]
 * With --server-pid it also prints beanstalkd's CPU from the first put to
 * the last worker's exit, per job (server_cpu_ms_per_job, from /proc).
 * Prints name=value lines; progress goes to stderr. Exit 0 ok, 1 failure,
 * 2 bad usage.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define STOP_BODY "stop"
#define TTR_S 60

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- one connection: a socket and a read buffer ---- */

typedef struct {
    int fd;
    char buf[65536];
    size_t have, off;
} conn;

static int bs_connect(conn *c, const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    for (struct addrinfo *a = res; a != NULL && c->fd < 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            c->fd = fd;
        else
            close(fd);
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Fills the buffer until it holds `want` bytes from off; -1 on EOF/error. */
static int fill(conn *c, size_t want)
{
    if (c->off > 0 && c->have - c->off < want) {
        memmove(c->buf, c->buf + c->off, c->have - c->off);
        c->have -= c->off;
        c->off = 0;
    }
    while (c->have - c->off < want) {
        if (c->have == sizeof c->buf)
            return -1;
        ssize_t r = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->have += (size_t)r;
    }
    return 0;
}

/* One reply line without its "\r\n" into line (NUL-terminated). */
static int read_line(conn *c, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->buf + c->off, '\n', c->have - c->off);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (c->buf + c->off));
            if (n > 0 && nl[-1] == '\r')
                n--;
            if (n >= cap)
                n = cap - 1;
            memcpy(line, c->buf + c->off, n);
            line[n] = '\0';
            c->off = (size_t)(nl - c->buf) + 1;
            return 0;
        }
        if (fill(c, c->have - c->off + 1) != 0)
            return -1;
    }
}

/* A command whose reply line must start with `expect`. */
static int command(conn *c, const char *cmd, const char *expect)
{
    char line[256];
    if (send_all(c->fd, cmd, strlen(cmd)) != 0 || read_line(c, line, sizeof line) != 0)
        return -1;
    if (strncmp(line, expect, strlen(expect)) != 0) {
        fprintf(stderr, "beanstalk_jobs: '%.*s' got '%s'\n", (int)strcspn(cmd, "\r"), cmd, line);
        return -1;
    }
    return 0;
}

/* ---- the job body: {"t":<enqueue ns>,"i":<i>,"p":"xx..."} ---- */

static int job_body(char *buf, size_t cap, int bytes, int64_t t, long i)
{
    int n = snprintf(buf, cap, "{\"t\":%lld,\"i\":%ld,\"p\":\"", (long long)t, i);
    int pad = bytes - n - 2;
    if (pad < 1)
        pad = 1;
    memset(buf + n, 'x', (size_t)pad);
    n += pad;
    buf[n++] = '"';
    buf[n++] = '}';
    buf[n] = '\0';
    return n;
}

/* ---- a worker process ---- */

typedef struct {
    int64_t handled, last_return_ns, nsamples;
} report;

static int worker(const char *host, const char *port, const char *tube, long count, int out, int in)
{
    conn *c = malloc(sizeof *c); /* freed at exit */
    uint32_t *samples = malloc((size_t)count * sizeof *samples);
    char cmd[256], line[256];
    report r = {0, 0, 0};
    if (c == NULL || samples == NULL || bs_connect(c, host, port) != 0)
        return 1;
    snprintf(cmd, sizeof cmd, "watch %s\r\n", tube);
    if (command(c, cmd, "WATCHING") != 0 || command(c, "ignore default\r\n", "WATCHING") != 0)
        return 1;
    char ready = 'R', go = 0;
    if (send_all(out, &ready, 1) != 0 || read(in, &go, 1) != 1)
        return 1;
    for (;;) {
        unsigned long long id = 0;
        size_t bytes = 0;
        if (send_all(c->fd, "reserve\r\n", 9) != 0 || read_line(c, line, sizeof line) != 0 ||
            sscanf(line, "RESERVED %llu %zu", &id, &bytes) != 2 || fill(c, bytes + 2) != 0) {
            fprintf(stderr, "beanstalk_jobs: worker: reserve failed ('%s')\n", line);
            return 1;
        }
        const char *body = c->buf + c->off;
        int stop = bytes == strlen(STOP_BODY) && memcmp(body, STOP_BODY, bytes) == 0;
        if (!stop) { /* the no-op handler: note when it started and returned */
            int64_t entry = mono_ns();
            int64_t sent = strncmp(body, "{\"t\":", 5) == 0 ? strtoll(body + 5, NULL, 10) : -1;
            if (sent > 0 && r.nsamples < count) {
                int64_t us = (entry - sent) / 1000;
                samples[r.nsamples++] = us < 0 ? 0 : (uint32_t)us;
            }
            r.last_return_ns = mono_ns();
            r.handled++;
        }
        c->off += bytes + 2;
        snprintf(cmd, sizeof cmd, "delete %llu\r\n", id);
        if (command(c, cmd, "DELETED") != 0)
            return 1;
        if (stop)
            break;
    }
    if (send_all(out, &r, sizeof r) != 0 ||
        send_all(out, samples, (size_t)r.nsamples * sizeof *samples) != 0)
        return 1;
    close(c->fd);
    free(c);
    free(samples);
    return 0;
}

/* ---- the parent: workers, then the producer ---- */

static double ru_ms(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000.0 +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000.0;
}

/* CPU (user + system) a process has used so far, from /proc; -1 if unknown. */
static double proc_cpu_ms(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* utime and stime are fields 14 and 15 */
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int read_all(int fd, void *p, size_t n)
{
    char *s = p;
    while (n > 0) {
        ssize_t r = read(fd, s, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        s += r;
        n -= (size_t)r;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: beanstalk_jobs [--addr HOST:PORT] [--count N] [--workers W] "
                    "[--payload BYTES] [--server-pid PID]\n");
    return 2;
}

int main(int argc, char **argv)
{
    char host[256] = "127.0.0.1", port[16] = "11300";
    long count = 20000;
    int workers = 2, payload = 100;
    long server_pid = 0;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(argv[i], "--addr") && v) {
            const char *colon = strrchr(v, ':');
            if (colon == NULL || colon == v)
                return usage();
            snprintf(host, sizeof host, "%.*s", (int)(colon - v), v);
            snprintf(port, sizeof port, "%s", colon + 1);
        } else if (!strcmp(argv[i], "--count") && v) {
            count = strtol(v, &end, 10);
            if (*end || count < 1)
                return usage();
        } else if (!strcmp(argv[i], "--workers") && v) {
            workers = (int)strtol(v, &end, 10);
            if (*end || workers < 1 || workers > MAX_WORKERS)
                return usage();
        } else if (!strcmp(argv[i], "--server-pid") && v) {
            server_pid = strtol(v, &end, 10);
            if (*end || server_pid < 1)
                return usage();
        } else if (!strcmp(argv[i], "--payload") && v) {
            payload = (int)strtol(v, &end, 10);
            if (*end || payload < 64 || payload > 60000)
                return usage();
        } else {
            return usage();
        }
    }
    char tube[64]; /* a tube of this run: nothing an earlier run left counts */
    snprintf(tube, sizeof tube, "naqbench-%ld", (long)getpid());
    signal(SIGPIPE, SIG_IGN);

    pid_t pids[MAX_WORKERS];
    int from[MAX_WORKERS], to[MAX_WORKERS];
    pid_t self = getpid();
    for (int w = 0; w < workers; w++) {
        int up[2], down[2];
        if (pipe(up) != 0 || pipe(down) != 0) {
            perror("beanstalk_jobs: pipe");
            return 1;
        }
        fflush(NULL);
        pids[w] = fork();
        if (pids[w] < 0) {
            perror("beanstalk_jobs: fork");
            return 1;
        }
        if (pids[w] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the producer */
            if (getppid() != self)
                _exit(1);
            close(up[0]);
            close(down[1]);
            _exit(worker(host, port, tube, count, up[1], down[0]));
        }
        close(up[1]);
        close(down[0]);
        from[w] = up[0];
        to[w] = down[1];
    }
    int rc = 0;
    for (int w = 0; w < workers && rc == 0; w++) {
        char ready;
        if (read(from[w], &ready, 1) != 1) {
            fprintf(stderr, "beanstalk_jobs: worker %d failed to start (is beanstalkd at %s:%s?)\n",
                    w + 1, host, port);
            rc = 1;
        }
    }
    conn *c = malloc(sizeof *c); /* freed below */
    if (c != NULL)
        c->fd = -1;
    char cmd[256], *body = malloc((size_t)payload + 64);
    if (rc == 0 && (c == NULL || body == NULL || bs_connect(c, host, port) != 0)) {
        fprintf(stderr, "beanstalk_jobs: cannot connect to beanstalkd at %s:%s\n", host, port);
        rc = 1;
    }
    snprintf(cmd, sizeof cmd, "use %s\r\n", tube);
    if (rc == 0 && command(c, cmd, "USING") != 0)
        rc = 1;
    for (int w = 0; w < workers && rc == 0; w++)
        if (send_all(to[w], "G", 1) != 0)
            rc = 1;
    fprintf(stderr, "beanstalk_jobs: %ld jobs of %d bytes, %d workers, beanstalkd at %s:%s ...\n",
            count, payload, workers, host, port);
    double server0 = proc_cpu_ms(server_pid);
    int64_t first = mono_ns(), next_say = first + 1000000000LL;
    for (long i = 0; i < count && rc == 0; i++) {
        int n = job_body(body, (size_t)payload + 64, payload, mono_ns(), i);
        int h = snprintf(cmd, sizeof cmd, "put 1024 0 %d %d\r\n", TTR_S, n);
        if (send_all(c->fd, cmd, (size_t)h) != 0 || send_all(c->fd, body, (size_t)n) != 0 ||
            command(c, "\r\n", "INSERTED") != 0) {
            fprintf(stderr, "beanstalk_jobs: put %ld failed\n", i);
            rc = 1;
        }
        if (mono_ns() > next_say) {
            fprintf(stderr, "beanstalk_jobs: %ld/%ld jobs put\n", i + 1, count);
            next_say += 1000000000LL;
        }
    }
    /* Stop jobs at the lowest priority: reserved only when no job is left. */
    for (int w = 0; w < workers && rc == 0; w++) {
        int h = snprintf(cmd, sizeof cmd, "put 4294967295 0 %d %zu\r\n%s", TTR_S, strlen(STOP_BODY),
                         STOP_BODY);
        if (send_all(c->fd, cmd, (size_t)h) != 0 || command(c, "\r\n", "INSERTED") != 0)
            rc = 1;
    }
    report total = {0, 0, 0};
    uint32_t *samples = malloc((size_t)count * sizeof *samples); /* freed below */
    double workers_cpu = 0;
    for (int w = 0; w < workers; w++) {
        report r;
        if (rc == 0 && read_all(from[w], &r, sizeof r) == 0 &&
            total.nsamples + r.nsamples <= count &&
            read_all(from[w], samples + total.nsamples, (size_t)r.nsamples * sizeof *samples) ==
                0) {
            total.handled += r.handled;
            total.nsamples += r.nsamples;
            if (r.last_return_ns > total.last_return_ns)
                total.last_return_ns = r.last_return_ns;
        } else if (rc == 0) {
            fprintf(stderr, "beanstalk_jobs: worker %d did not report\n", w + 1);
            rc = 1;
        }
        if (rc != 0)
            kill(pids[w], SIGKILL);
        int status = 0;
        struct rusage ru;
        while (wait4(pids[w], &status, 0, &ru) < 0 && errno == EINTR)
            ;
        workers_cpu += ru_ms(&ru);
        if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            fprintf(stderr, "beanstalk_jobs: worker %d failed\n", w + 1);
            rc = 1;
        }
        close(from[w]);
        close(to[w]);
    }
    double server1 = proc_cpu_ms(server_pid);
    if (rc == 0 && total.handled != count) {
        fprintf(stderr, "beanstalk_jobs: the workers ran %lld jobs, not %ld\n",
                (long long)total.handled, count);
        rc = 1;
    }
    if (rc == 0) {
        struct rusage self_ru;
        getrusage(RUSAGE_SELF, &self_ru);
        double secs = (double)(total.last_return_ns - first) / 1e9;
        double producer_cpu = ru_ms(&self_ru);
        qsort(samples, (size_t)total.nsamples, sizeof *samples, cmp_u32);
        double p50 = total.nsamples ? samples[(size_t)((total.nsamples - 1) * 0.50)] / 1000.0 : 0;
        double p99 = total.nsamples ? samples[(size_t)((total.nsamples - 1) * 0.99)] / 1000.0 : 0;
        printf("count=%ld\nworkers=%d\npayload_bytes=%d\njobs_per_s=%.0f\nseconds=%.3f\n"
               "cpu_ms_per_job=%.4f\nproducer_cpu_ms_per_job=%.4f\nworkers_cpu_ms_per_job=%.4f\n"
               "latency_p50_ms=%.3f\nlatency_p99_ms=%.3f\nhandled=%lld\n",
               count, workers, payload, secs > 0 ? (double)count / secs : 0, secs,
               (producer_cpu + workers_cpu) / (double)count, producer_cpu / (double)count,
               workers_cpu / (double)count, p50, p99, (long long)total.handled);
        if (server0 >= 0 && server1 >= 0)
            printf("server_cpu_ms_per_job=%.4f\n", (server1 - server0) / (double)count);
    }
    if (c != NULL && c->fd >= 0)
        close(c->fd);
    free(c);
    free(body);
    free(samples);
    return rc;
}
