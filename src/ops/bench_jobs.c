/*
 * bench_jobs.c - `naq bench jobs`: job throughput of naq next to what the
 * server allows, measured the same way in the same run
 * (docs/benchmarks.md is the method; issue 8).
 *
 * One run of a side: fork the producer (it prepares: purges, or fills the
 * queue in prefilled mode) and wait until it is ready; fork W worker
 * processes and wait until each is connected and ready; tell the workers,
 * then the producer, to go; stop the workers once their handlers returned
 * N times; reap everyone with wait4() for their CPU. All timestamps are
 * CLOCK_MONOTONIC, which is one clock for every process on Linux, so
 *   jobs/s = N / (last handler return in any worker - first enqueue call)
 * (prefilled: from the moment the workers were told to go).
 *
 * naq and the ceiling alternate R times and each figure is the median of
 * its side, so that a noisy neighbour on this shared 2-core machine
 * penalises neither side alone. The ceiling publishes per job as many
 * events as naq's worker stored in the naq run just before (K).
 */
#include "bench_jobs.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A child that says nothing this long while it should be working fails
 * the run. */
#define SILENCE_MS 60000
/* How often progress is shown. */
#define PROGRESS_EVERY_NS 1000000000LL
/* Largest W: the producer and the workers share one poll() set of 64. */
#define MAX_WORKERS 63

void naq_bench_jobs_opts_init(naq_bench_jobs_opts *o)
{
    memset(o, 0, sizeof *o);
    o->count = 20000;
    o->workers = 2;
    o->concurrency = 1;
    o->mode = NAQ_BENCH_SYNC;
    o->events = 1;
    o->runs = 1;
    o->payload_bytes = 100;
    o->queue = "bench";
    o->prefetch = NAQ_PREFETCH_AUTO;
}

const char *naq_bench_mode_name(naq_bench_mode m)
{
    switch (m) {
    case NAQ_BENCH_SYNC: return "sync";
    case NAQ_BENCH_ASYNC: return "async";
    case NAQ_BENCH_PREFILLED: return "prefilled";
    }
    return "unknown";
}

typedef struct {
    const char *name;
    naq__bench_child_fn producer, worker;
} side_impl;

static const side_impl naq_side = {"naq", naq__bench_naq_producer, naq__bench_naq_worker};
static const side_impl ceiling_side = {"ceiling", naq__bench_ceiling_producer,
                                       naq__bench_ceiling_worker};

/* What one run of one side measured. */
typedef struct {
    double seconds, jobs_per_s, producer_cpu_ms, workers_cpu_ms, server_cpu_ms, p50_ms, p99_ms;
    double wakeups; /* voluntary context switches of the producer and workers */
    int64_t handled;
    int64_t events_added; /* messages the event stream gained; -1 = not measured */
} run_figures;

static void say(const naq_bench_jobs_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const naq_bench_jobs_opts *o, const char *fmt, ...)
{
    if (o->progress == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->progress(line, o->progress_user);
}

static double ru_ms(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000.0 +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000.0;
}

/* CPU (user + system) a process has used so far, from /proc; -1 if unknown. */
static double proc_cpu_ms(long pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses and may hold
     * spaces: state is field 3, utime and stime are 14 and 15. */
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int exited_ok(const naq__bench_child *c)
{
    return WIFEXITED(c->exit_status) && WEXITSTATUS(c->exit_status) == 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The state of one run as frames come in. */
typedef struct {
    naq__bench_child cs[1 + MAX_WORKERS]; /* [0] the producer */
    int n;                                /* children spawned */
    int ready[1 + MAX_WORKERS];
    int64_t count[1 + MAX_WORKERS]; /* PROGRESS: worker jobs, or producer prefill */
    naq__bench_report report[1 + MAX_WORKERS];
    int reported[1 + MAX_WORKERS];
    naq__bench_produced produced;
    int got_produced;
    int64_t events_added;
    uint32_t *samples; /* heap, all workers' samples; freed by run_once */
    size_t nsamples;
    int stopping; /* STOP sent: workers may exit */
    int ending;   /* END sent: the producer may exit */
    int64_t last_word_ns;
} run_state;

/* Waits for and handles one frame (or a closed channel). NAQ_ERR_TIMEOUT
 * only when SILENCE_MS passed without any word. */
static naq_status pump(run_state *st, int64_t wait_ms)
{
    int which = -1, type = 0;
    void *data = NULL;
    size_t len = 0;
    naq_status s = naq__bench_recv(st->cs, st->n, wait_ms, &which, &type, &data, &len);
    int64_t now = naq__bench_mono_ns();
    if (s == NAQ_ERR_TIMEOUT) {
        if (now - st->last_word_ns > (int64_t)SILENCE_MS * 1000000LL)
            return naq__fail(NAQ_ERR_TIMEOUT,
                             "bench: no child made progress for %d s; the run is stuck",
                             SILENCE_MS / 1000);
        return NAQ_OK;
    }
    st->last_word_ns = now;
    if (s == NAQ_ERR_CLOSED && which >= 0) {
        naq__bench_child *c = &st->cs[which];
        if (!exited_ok(c))
            return NAQ_ERR_CLOSED; /* the reap said why */
        int expected = which == 0 ? st->ending : st->stopping && st->reported[which];
        if (!expected)
            return naq__fail(NAQ_ERR_CLOSED, "bench %s exited before the run was over", c->name);
        return NAQ_OK;
    }
    if (s != NAQ_OK)
        return s;
    switch (type) {
    case BENCH_MSG_READY: st->ready[which] = 1; break;
    case BENCH_MSG_PROGRESS:
        if (len == sizeof(int64_t))
            memcpy(&st->count[which], data, len);
        break;
    case BENCH_MSG_PRODUCED:
        if (len == sizeof st->produced) {
            memcpy(&st->produced, data, len);
            st->got_produced = 1;
        }
        break;
    case BENCH_MSG_EVENTS:
        if (len == sizeof(int64_t))
            memcpy(&st->events_added, data, len);
        break;
    case BENCH_MSG_REPORT:
        if (len == sizeof st->report[which]) {
            memcpy(&st->report[which], data, len);
            st->reported[which] = 1;
        }
        break;
    case BENCH_MSG_SAMPLES: {
        size_t k = len / sizeof(uint32_t);
        uint32_t *more = realloc(st->samples, (st->nsamples + k + 1) * sizeof *more);
        if (more == NULL) {
            s = naq__fail(NAQ_ERR_NO_MEMORY, "bench: out of memory for latency samples");
            break;
        }
        st->samples = more;
        if (k > 0)
            memcpy(st->samples + st->nsamples, data, k * sizeof(uint32_t));
        st->nsamples += k;
        break;
    }
    case BENCH_MSG_ERROR: break; /* kept in the child; reported when it exits */
    default: break;
    }
    free(data);
    return s;
}

static int64_t workers_done(const run_state *st)
{
    int64_t sum = 0;
    for (int i = 1; i < st->n; i++)
        sum += st->count[i];
    return sum;
}

static naq_status run_once(const naq__bench_run *r, const side_impl *side, int run, run_figures *f)
{
    const naq_bench_jobs_opts *o = r->o;
    run_state *st = calloc(1, sizeof *st); /* freed at the end of this function */
    if (st == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "bench: out of memory");
    st->events_added = -1;
    st->last_word_ns = naq__bench_mono_ns();
    char label[64];
    snprintf(label, sizeof label, "%s run %d/%d", side->name, run + 1, o->runs);
    char name[32];
    snprintf(name, sizeof name, "%s producer", side->name);
    naq_status s = naq__bench_spawn(&st->cs[0], name, side->producer, (void *)r);
    if (s == NAQ_OK)
        st->n = 1;
    int64_t next_say = naq__bench_mono_ns() + PROGRESS_EVERY_NS, said = 0;
    while (s == NAQ_OK && !st->ready[0]) {
        s = pump(st, 200);
        if (s == NAQ_OK && naq__bench_mono_ns() > next_say && st->count[0] > said) {
            said = st->count[0];
            say(o, "%s: prefilling, %lld/%lld jobs sent", label, (long long)said,
                (long long)o->count);
            next_say = naq__bench_mono_ns() + PROGRESS_EVERY_NS;
        }
    }
    for (int i = 0; s == NAQ_OK && i < o->workers; i++) {
        snprintf(name, sizeof name, "%s worker %d", side->name, i + 1);
        if ((s = naq__bench_spawn(&st->cs[1 + i], name, side->worker, (void *)r)) == NAQ_OK)
            st->n++;
    }
    for (int all = 0; s == NAQ_OK && !all;) {
        s = pump(st, 200);
        all = 1;
        for (int i = 1; i < st->n; i++)
            all &= st->ready[i];
    }
    /* Workers first, so that none of them misses the start. */
    double server0 = proc_cpu_ms(o->server_pid);
    int64_t go_ns = naq__bench_mono_ns();
    for (int i = 1; s == NAQ_OK && i < st->n; i++)
        s = naq__bench_command(&st->cs[i], BENCH_CMD_GO);
    if (s == NAQ_OK && o->mode != NAQ_BENCH_PREFILLED)
        s = naq__bench_command(&st->cs[0], BENCH_CMD_GO);
    if (s == NAQ_OK)
        say(o, "%s: %d workers ready, go", label, o->workers);
    int64_t last_done = 0, last_change = naq__bench_mono_ns();
    next_say = naq__bench_mono_ns() + PROGRESS_EVERY_NS;
    while (s == NAQ_OK && workers_done(st) < o->count) {
        s = pump(st, 200);
        int64_t now = naq__bench_mono_ns(), done = workers_done(st);
        if (done != last_done) {
            last_done = done;
            last_change = now;
        } else if (s == NAQ_OK && now - last_change > (int64_t)SILENCE_MS * 1000000LL) {
            s = naq__fail(NAQ_ERR_TIMEOUT, "bench %s: stuck at %lld of %lld jobs for %d s", label,
                          (long long)done, (long long)o->count, SILENCE_MS / 1000);
        }
        if (s == NAQ_OK && now > next_say) {
            say(o, "%s: %lld/%lld jobs done", label, (long long)done, (long long)o->count);
            next_say += PROGRESS_EVERY_NS;
        }
    }
    st->stopping = 1;
    for (int i = 1; s == NAQ_OK && i < st->n; i++)
        s = naq__bench_command(&st->cs[i], BENCH_CMD_STOP);
    for (int left = 1; s == NAQ_OK && left;) {
        s = pump(st, 200);
        left = !st->got_produced;
        for (int i = 1; i < st->n; i++)
            left |= st->cs[i].from >= 0 || st->cs[i].pid > 0;
    }
    double server1 = proc_cpu_ms(o->server_pid);
    st->ending = 1;
    if (s == NAQ_OK)
        s = naq__bench_command(&st->cs[0], BENCH_CMD_END);
    while (s == NAQ_OK && (st->cs[0].from >= 0 || st->cs[0].pid > 0))
        s = pump(st, 200);
    if (s != NAQ_OK) {
        naq__bench_kill_all(st->cs, st->n);
        free(st->samples);
        free(st);
        return s;
    }

    int64_t start = o->mode == NAQ_BENCH_PREFILLED ? go_ns : st->produced.first_ns;
    int64_t end = 0;
    memset(f, 0, sizeof *f);
    f->producer_cpu_ms = ru_ms(&st->cs[0].ru);
    f->wakeups = (double)st->cs[0].ru.ru_nvcsw;
    for (int i = 1; i < st->n; i++) {
        if (st->report[i].last_return_ns > end)
            end = st->report[i].last_return_ns;
        f->handled += st->report[i].handled;
        f->workers_cpu_ms += ru_ms(&st->cs[i].ru);
        f->wakeups += (double)st->cs[i].ru.ru_nvcsw;
    }
    f->seconds = (double)(end - start) / 1e9;
    f->jobs_per_s = f->seconds > 0 ? (double)o->count / f->seconds : 0;
    f->events_added = st->events_added;
    f->server_cpu_ms = server0 >= 0 && server1 >= 0 ? server1 - server0 : -1;
    if (st->nsamples > 0) {
        qsort(st->samples, st->nsamples, sizeof *st->samples, cmp_u32);
        f->p50_ms = st->samples[(size_t)((double)(st->nsamples - 1) * 0.50)] / 1000.0;
        f->p99_ms = st->samples[(size_t)((double)(st->nsamples - 1) * 0.99)] / 1000.0;
    }
    say(o,
        "%s: %.0f jobs/s, %.3f ms CPU per job, %.1f + %.1f wake-ups per job (producer + "
        "workers), latency p50 %.2f ms p99 %.2f ms",
        label, f->jobs_per_s, (f->producer_cpu_ms + f->workers_cpu_ms) / (double)o->count,
        (double)st->cs[0].ru.ru_nvcsw / (double)o->count,
        (f->wakeups - (double)st->cs[0].ru.ru_nvcsw) / (double)o->count, f->p50_ms, f->p99_ms);
    free(st->samples);
    free(st);
    return NAQ_OK;
}

/* The size of the message naq_enqueue publishes for one of our jobs,
 * which the ceiling's job body copies. Public calls only, no server. */
static naq_status naq_job_bytes(const naq_bench_jobs_opts *o, int *out)
{
    char args[4096];
    naq__bench_job_payload(args, sizeof args, o->payload_bytes, naq__bench_mono_ns(), o->count);
    naq_job j;
    memset(&j, 0, sizeof j);
    j.version = NAQ_WIRE_VERSION;
    naq_id_new(j.id);
    snprintf(j.queue, sizeof j.queue, "%s", o->queue);
    snprintf(j.function, sizeof j.function, "noop");
    j.args_json = args;
    j.priority = NAQ_PRIORITY_NORMAL;
    j.enqueued_at = naq__now();
    naq_retry_policy_init(&j.retry);
    j.result_ttl_ms = NAQ_RESULTS_TTL_MS;
    char *json = NULL;
    size_t len = 0;
    naq_status s = naq_job_encode(&j, &json, &len);
    free(json);
    *out = (int)len;
    return s;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void medians(const run_figures *f, int n, int64_t count, naq_bench_side *out)
{
    double v[9][n];
    for (int i = 0; i < n; i++) {
        v[0][i] = f[i].jobs_per_s;
        v[1][i] = f[i].seconds;
        v[2][i] = (f[i].producer_cpu_ms + f[i].workers_cpu_ms) / (double)count;
        v[3][i] = f[i].producer_cpu_ms / (double)count;
        v[4][i] = f[i].workers_cpu_ms / (double)count;
        v[5][i] = f[i].p50_ms;
        v[6][i] = f[i].p99_ms;
        v[7][i] = f[i].server_cpu_ms < 0 ? -1 : f[i].server_cpu_ms / (double)count;
        v[8][i] = f[i].wakeups / (double)count;
    }
    out->jobs_per_s = median(v[0], n);
    out->seconds = median(v[1], n);
    out->cpu_ms_per_job = median(v[2], n);
    out->producer_cpu_ms_per_job = median(v[3], n);
    out->workers_cpu_ms_per_job = median(v[4], n);
    out->latency_p50_ms = median(v[5], n);
    out->latency_p99_ms = median(v[6], n);
    out->server_cpu_ms_per_job = v[7][0] < 0 ? -1 : median(v[7], n);
    out->wakeups_per_job = median(v[8], n);
    out->handled = f[n - 1].handled;
}

naq_status naq_bench_jobs(const naq_config *cfg, const naq_bench_jobs_opts *o,
                          naq_bench_jobs_result *out)
{
    memset(out, 0, sizeof *out);
    if (o->count <= 0 || o->workers < 1 || o->workers > MAX_WORKERS || o->concurrency < 1 ||
        o->concurrency > 4096 || (o->prefetch < 0 && o->prefetch != NAQ_PREFETCH_AUTO) ||
        o->prefetch > 4096 || o->runs < 1 || o->runs > 99 || o->payload_bytes < 64 ||
        o->payload_bytes > 4000 || !(o->rate >= 0) || o->count > 100000000)
        return naq__fail(
            NAQ_ERR_INVALID_ARG,
            "bench jobs needs 1 <= count <= 1e8, 1 <= workers <= %d, 1 <= "
            "concurrency <= 4096, 0 <= prefetch <= 4096 or auto, 1 <= runs <= 99, 64 <= "
            "payload <= 4000 and a "
            "rate >= 0",
            MAX_WORKERS);
    if (o->rate > 0 && o->mode == NAQ_BENCH_PREFILLED)
        return naq__fail(NAQ_ERR_INVALID_ARG, "a paced producer (rate) cannot prefill the queue");
    naq_status s = naq_id_validate("queue name", o->queue);
    if (s != NAQ_OK)
        return s;
    naq__bench_run r;
    memset(&r, 0, sizeof r);
    r.cfg = *cfg;
    r.cfg.disable_logging = !o->events;
    r.o = o;
    if ((s = naq_job_bytes(o, &r.job_bytes)) != NAQ_OK)
        return s;
    out->job_bytes = r.job_bytes;
    run_figures *nf = calloc((size_t)o->runs, sizeof *nf); /* both freed below */
    run_figures *cf = calloc((size_t)o->runs, sizeof *cf);
    if (nf == NULL || cf == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "bench: out of memory");
    for (int run = 0; s == NAQ_OK && run < o->runs; run++) {
        if ((s = run_once(&r, &naq_side, run, &nf[run])) != NAQ_OK)
            break;
        if (o->events && nf[run].events_added >= 0) {
            /* The producer stores one "enqueued" per job; the rest is the
             * worker's (plus a few worker_started / stopped). */
            double k = (double)(nf[run].events_added - o->count) / (double)o->count;
            r.events_per_job = k > 0 ? (int)lround(k) : 0;
            say(o, "naq run %d/%d: %lld events stored, %.2f per job by the workers: K = %d",
                run + 1, o->runs, (long long)nf[run].events_added, k, r.events_per_job);
        }
        s = run_once(&r, &ceiling_side, run, &cf[run]);
    }
    if (s == NAQ_OK) {
        medians(nf, o->runs, o->count, &out->naq);
        medians(cf, o->runs, o->count, &out->ceiling);
        out->events_per_job = r.events_per_job;
        if (out->ceiling.jobs_per_s > 0)
            out->ratio = out->naq.jobs_per_s / out->ceiling.jobs_per_s;
    }
    free(nf);
    free(cf);
    return s;
}
