/*
 * metrics_report.c - "system_metrics" events: a thread that logs a
 * snapshot of one process's figures (a worker's job counters, a
 * scheduler's, the event logger's, memory and CPU time) at a fixed
 * interval, so the event log itself tells how each process fared, with no
 * Prometheus around. A condition variable waits out the interval, so a
 * stop is immediate.
 */
#include "internal.h"
#include "core/jsonw.h"
#include "naq/metrics.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct naq_metrics_reporter {
    naq_metrics_process p;
    int64_t interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
};

naq_status naq_metrics_interval_from_env(int64_t *interval_ms)
{
    *interval_ms = NAQ_DEFAULT_METRICS_INTERVAL_MS;
    const char *v = getenv("NAQ_METRICS_INTERVAL");
    if (v == NULL || v[0] == '\0')
        return NAQ_OK;
    if (strcmp(v, "0") == 0) {
        *interval_ms = 0;
        return NAQ_OK;
    }
    if (naq_parse_duration_ms(v, interval_ms) != NAQ_OK || *interval_ms < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "NAQ_METRICS_INTERVAL='%s' is not a duration (60s, 5m; 0 = off)", v);
    return NAQ_OK;
}

/* Resident set size from /proc/self/statm (pages), in MB; -1 unknown. */
static double rss_mb(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    long pages = -1, size = 0;
    if (fp != NULL) {
        if (fscanf(fp, "%ld %ld", &size, &pages) != 2)
            pages = -1;
        fclose(fp);
    }
    return pages < 0 ? -1 : (double)pages * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static double cpu_ms(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

static json_t *worker_json(naq_worker *w)
{
    naq_worker_stats st;
    naq_worker_get_stats(w, &st);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}", "processed",
                     (json_int_t)st.processed, "completed", (json_int_t)st.completed, "failed",
                     (json_int_t)st.failed, "retried", (json_int_t)st.retried, "dead_lettered",
                     (json_int_t)st.dead_lettered, "cancelled", (json_int_t)st.cancelled, "expired",
                     (json_int_t)st.expired, "handed_back", (json_int_t)st.handed_back, "active",
                     st.active);
}

static json_t *scheduler_json(naq_scheduler *s)
{
    naq_scheduler_stats st;
    naq_scheduler_get_stats(s, &st);
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "leader", st.leader, "ticks",
                     (json_int_t)st.ticks, "elections", (json_int_t)st.elections, "triggers",
                     (json_int_t)st.triggers, "trigger_errors", (json_int_t)st.trigger_errors,
                     "released", (json_int_t)st.released, "schedules", (json_int_t)st.schedules,
                     "delayed_pending", (json_int_t)st.delayed_pending);
}

static json_t *processor_json(naq_processor *p)
{
    naq_processor_stats st;
    naq_processor_get_stats(p, &st);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "handled", (json_int_t)st.handled, "failed",
                     (json_int_t)st.failed, "retried", (json_int_t)st.retried, "dead_lettered",
                     (json_int_t)st.dead_lettered, "pending", (json_int_t)st.pending, "concurrency",
                     (json_int_t)st.concurrency);
}

static json_t *logger_json(naq_client *c)
{
    naq_logger_stats l;
    naq_client_logger_stats(c, &l);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "logged", (json_int_t)l.logged,
                     "published", (json_int_t)l.published, "retried", (json_int_t)l.retried,
                     "spooled", (json_int_t)l.spooled, "dropped", (json_int_t)l.dropped, "buffered",
                     (json_int_t)l.buffered, "spool_pending", (json_int_t)l.spool_pending);
}

/* One snapshot event. */
static void report(const naq_metrics_reporter *r)
{
    const naq_metrics_process *p = &r->p;
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_SYSTEM_METRICS);
    const char *component = p->worker      ? "worker"
                            : p->scheduler ? "scheduler"
                            : p->processor ? "processor"
                                           : "process";
    json_t *d = json_pack("{s:s, s:I, s:I}", "component", component, "pid", (json_int_t)getpid(),
                          "interval_ms", (json_int_t)r->interval_ms);
    if (d != NULL && p->worker != NULL) {
        /* In details only, as system_startup does: a system event is about
         * the process, not the worker's own word (naq events workers). */
        json_object_set_new(d, "worker_id", json_string(naq_worker_id(p->worker)));
        json_object_set_new(d, "worker", worker_json(p->worker));
    }
    if (d != NULL && p->scheduler != NULL) {
        json_object_set_new(d, "scheduler_id", json_string(naq_scheduler_id(p->scheduler)));
        json_object_set_new(d, "scheduler", scheduler_json(p->scheduler));
    }
    if (d != NULL && p->processor != NULL) {
        json_object_set_new(d, "member_id", json_string(naq_processor_member_id(p->processor)));
        json_object_set_new(d, "processor", processor_json(p->processor));
    }
    if (d != NULL)
        json_object_set_new(d, "logger", logger_json(p->client));
    double mem = rss_mb(), cpu = cpu_ms();
    if (mem >= 0)
        e.memory_mb = mem;
    if (cpu >= 0)
        e.cpu_time_ms = cpu;
    e.details_json = d ? naq__json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    naq_client_log(p->client, &e);
    naq_event_clear(&e);
}

static void *run(void *arg)
{
    naq_metrics_reporter *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        struct timespec until = naq__deadline(CLOCK_MONOTONIC, r->interval_ms);
        int rc = 0;
        while (!r->stop && rc == 0)
            rc = pthread_cond_timedwait(&r->cond, &r->lock, &until);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->lock);
        report(r);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

naq_status naq_metrics_reporter_start(const naq_metrics_process *p, int64_t interval_ms,
                                      naq_metrics_reporter **out)
{
    *out = NULL;
    if (interval_ms <= 0)
        return NAQ_OK;
    if (p == NULL || p->client == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_metrics_reporter_start needs a client");
    naq_metrics_reporter *r = calloc(1, sizeof *r);
    if (r == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for the metrics reporter");
    r->p = *p;
    r->interval_ms = interval_ms;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->lock, NULL);
    if (pthread_create(&r->thread, NULL, run, r) != 0) {
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return naq__fail(NAQ_ERR_IO, "cannot start the metrics reporter thread");
    }
    *out = r;
    return NAQ_OK;
}

void naq_metrics_reporter_stop(naq_metrics_reporter *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
