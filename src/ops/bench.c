/*
 * bench.c - the figures behind `naq bench`.
 *
 * bench events compares the logger with the ceiling it is built on: the same
 * messages (subject, headers, payload size) pushed straight through
 * js_PublishMsgAsync by one thread. Both sides run alternately on the same
 * server and stream, and the best of `runs` is kept for each, so a noisy
 * neighbour penalises neither side alone.
 *
 * bench jobs lives in bench_jobs.c.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

void naq_bench_events_opts_init(naq_bench_events_opts *o)
{
    o->events = 200000;
    o->runs = 3;
    o->payload_bytes = 300;
    o->rate = 0;
}

static double elapsed_s(int64_t start_ms)
{
    return (double)(naq__mono_ms() - start_ms) / 1000.0;
}

/* A realistic event: a completed job with a message padded so the JSON is
 * about payload_bytes long. A new job id every 5 events, as in real life. */
static void bench_event(naq_event *e, int64_t i, int payload_bytes, char *message)
{
    naq_event_init(e, NAQ_EVENT_COMPLETED);
    snprintf(e->job_id, sizeof e->job_id, "bench%08lld", (long long)(i / 5));
    snprintf(e->queue_name, sizeof e->queue_name, "bench");
    snprintf(e->worker_id, sizeof e->worker_id, "bench-worker-1");
    snprintf(e->worker_type, sizeof e->worker_type, "c");
    e->attempt = 1;
    e->duration_ms = 1.25;
    int pad = payload_bytes - 240;
    if (pad < 1)
        pad = 1;
    memset(message, 'x', (size_t)pad);
    message[pad] = '\0';
    e->message = message;
}

static void count_confirmed(void *ud, int ok)
{
    if (ok)
        atomic_fetch_add((atomic_int_least64_t *)ud, 1);
}

static naq_status logger_run(const naq_config *base, const naq_bench_events_opts *o,
                             naq_bench_events_result *r, double *per_s)
{
    naq_config cfg = *base;
    /* Room for the whole run in memory: the figure is about publishing, so
     * nothing may go to the spool. */
    cfg.logger_buffer_events = o->events + 1;
    cfg.logger_buffer_bytes = (int64_t)o->events * (o->payload_bytes + 256) + (1 << 20);
    cfg.disable_logging = 0;
    naq_client *c = NULL;
    naq_status s = naq_client_connect(&cfg, &c);
    if (s != NAQ_OK)
        return s;
    char *message = malloc((size_t)o->payload_bytes + 2);
    naq_event e;
    atomic_int_least64_t confirmed = 0;
    int64_t start = naq__mono_ms();
    for (int64_t i = 0; i < o->events; i++) {
        bench_event(&e, i, o->payload_bytes, message);
        /* Every fifth event is a job's outcome: a worker waits for the
         * server to confirm it before acking the job, as naq's do. */
        if (i % 5 == 4)
            naq__client_log_confirmed(c, &e, count_confirmed, &confirmed);
        else
            naq_client_log(c, &e);
    }
    s = naq_client_flush_events(c, 120000);
    if (s == NAQ_OK && atomic_load(&confirmed) != o->events / 5)
        s = naq__fail(NAQ_ERR_TIMEOUT, "only %lld of %lld confirmed events were confirmed",
                      (long long)atomic_load(&confirmed), (long long)(o->events / 5));
    double secs = elapsed_s(start);
    naq_logger_stats st;
    naq_client_logger_stats(c, &st);
    r->dropped += st.dropped;
    r->spooled += st.spooled;
    r->retried += st.retried;
    *per_s = (double)o->events / secs;
    naq_client_destroy(c);
    free(message);
    return s;
}

static void raw_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)pa;
    if (pae != NULL)
        atomic_fetch_add((atomic_int_least64_t *)closure, 1);
    natsMsg_Destroy(msg);
}

/* One paced event: when it was logged and when the server confirmed it. */
typedef struct {
    int64_t logged_us, acked_us;
} paced_event;

static void paced_confirmed(void *ud, int ok)
{
    if (ok)
        ((paced_event *)ud)->acked_us = naq__mono_us();
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The logger alone at o->rate events/s, every event confirmed: the
 * latency an event waits for the server, which is what the linger
 * (NAQ_EVENT_LINGER_US) trades against throughput. */
static naq_status paced_run(const naq_config *base, const naq_bench_events_opts *o, double *p50,
                            double *p99)
{
    naq_config cfg = *base;
    cfg.disable_logging = 0;
    naq_client *c = NULL;
    naq_status s = naq_client_connect(&cfg, &c);
    if (s != NAQ_OK)
        return s;
    paced_event *ev = calloc((size_t)o->events, sizeof *ev);
    double *lat = calloc((size_t)o->events, sizeof *lat);
    char *message = malloc((size_t)o->payload_bytes + 2);
    if (ev == NULL || lat == NULL || message == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for %lld events", (long long)o->events);
    naq_event e;
    int64_t start = naq__mono_us();
    for (int64_t i = 0; s == NAQ_OK && i < o->events; i++) {
        naq__sleep_us(start + i * 1000000 / o->rate - naq__mono_us());
        bench_event(&e, i, o->payload_bytes, message);
        ev[i].logged_us = naq__mono_us();
        naq__client_log_confirmed(c, &e, paced_confirmed, &ev[i]);
    }
    if (s == NAQ_OK)
        s = naq_client_flush_events(c, 120000);
    size_t n = 0;
    for (int64_t i = 0; s == NAQ_OK && i < o->events; i++)
        if (ev[i].acked_us > 0)
            lat[n++] = (double)(ev[i].acked_us - ev[i].logged_us) / 1000.0;
    if (s == NAQ_OK && n < (size_t)o->events)
        s = naq__fail(NAQ_ERR_TIMEOUT, "only %zu of %lld events were confirmed", n,
                      (long long)o->events);
    if (s == NAQ_OK) {
        qsort(lat, n, sizeof *lat, cmp_double);
        *p50 = lat[n / 2];
        *p99 = lat[n * 99 / 100];
    }
    naq_client_destroy(c);
    free(ev);
    free(lat);
    free(message);
    return s;
}

static naq_status raw_run(const naq_config *cfg, const naq_bench_events_opts *o,
                          naq_bench_events_result *r, double *per_s)
{
    naq_client *c = NULL;
    naq_config plain = *cfg;
    plain.disable_logging = 1;
    naq_status s = naq_client_connect(&plain, &c);
    if (s != NAQ_OK)
        return s;
    atomic_int_least64_t errors = 0;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 8192; /* as the logger */
    /* A full window waits for acks; nats.c's default (200 ms) failed the
     * run now and then when the server fell behind for a moment. */
    jo.PublishAsync.StallWait = 120000;
    jo.PublishAsync.AckHandler = raw_ack;
    jo.PublishAsync.AckHandlerClosure = &errors;
    jsCtx *js = NULL;
    natsStatus ns = natsConnection_JetStream(&js, c->enc, &jo);
    char *message = malloc((size_t)o->payload_bytes + 2);
    naq_event e;
    bench_event(&e, 0, o->payload_bytes, message);
    naq_id_new(e.event_id);
    e.timestamp = naq__now();
    char *json = NULL;
    size_t len = 0;
    if (ns == NATS_OK)
        s = naq_event_encode(&e, &json, &len);
    r->payload_bytes = (int)len;
    int64_t start = naq__mono_ms();
    for (int64_t i = 0; ns == NATS_OK && s == NAQ_OK && i < o->events; i++) {
        char subject[NAQ_URL_MAX], id[NAQ_ID_SIZE];
        bench_event(&e, i, o->payload_bytes, message);
        naq_event_subject(cfg->subject_prefix, &e, subject, sizeof subject);
        naq_id_new(id);
        natsMsg *m = NULL;
        ns = natsMsg_Create(&m, subject, NULL, json, (int)len);
        if (ns == NATS_OK)
            ns = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        if (ns == NATS_OK)
            ns = natsMsgHeader_Set(m, "Naq-Event-Type", "completed");
        if (ns == NATS_OK)
            ns = natsMsgHeader_Set(m, "Naq-Queue", e.queue_name);
        if (ns == NATS_OK)
            ns = natsMsgHeader_Set(m, "Naq-Worker", e.worker_id);
        if (ns == NATS_OK)
            ns = js_PublishMsgAsync(js, &m, NULL);
        natsMsg_Destroy(m);
    }
    if (ns == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 120000;
        ns = js_PublishAsyncComplete(js, &po);
    }
    *per_s = (double)o->events / elapsed_s(start);
    if (ns != NATS_OK && s == NAQ_OK)
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "raw publish failed");
    if (s == NAQ_OK && atomic_load(&errors) > 0)
        s = naq__fail(NAQ_ERR_NATS, "%lld raw publishes were not acknowledged",
                      (long long)atomic_load(&errors));
    free(json);
    free(message);
    jsCtx_Destroy(js);
    naq_client_destroy(c);
    return s;
}

/* CPU time this process has used so far, in microseconds. */
static double process_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Keeps the lowest CPU per event seen for one side. */
static void keep_lowest_cpu(double *best, double cpu_us, int64_t events)
{
    double per_event = cpu_us / (double)events;
    if (*best == 0 || per_event < *best)
        *best = per_event;
}

naq_status naq_bench_events(const naq_config *cfg, const naq_bench_events_opts *o,
                            naq_bench_events_result *out)
{
    memset(out, 0, sizeof *out);
    if (o->events <= 0 || o->runs <= 0 || o->payload_bytes < 100)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "bench events needs events > 0, runs > 0 and payload >= 100 bytes");
    naq_status s = NAQ_OK;
    if (o->rate < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "bench events needs a rate >= 0");
    for (int run = 0; o->rate > 0 && run < o->runs && s == NAQ_OK; run++) {
        double p50 = 0, p99 = 0;
        if ((s = paced_run(cfg, o, &p50, &p99)) == NAQ_OK &&
            (out->latency_p99_ms == 0 || p99 < out->latency_p99_ms)) {
            out->latency_p50_ms = p50;
            out->latency_p99_ms = p99;
        }
    }
    for (int run = 0; o->rate == 0 && run < o->runs && s == NAQ_OK; run++) {
        double raw = 0, logger = 0;
        double cpu = process_cpu_us();
        if ((s = raw_run(cfg, o, out, &raw)) != NAQ_OK)
            break;
        keep_lowest_cpu(&out->raw_cpu_us, process_cpu_us() - cpu, o->events);
        cpu = process_cpu_us();
        if ((s = logger_run(cfg, o, out, &logger)) != NAQ_OK)
            break;
        keep_lowest_cpu(&out->logger_cpu_us, process_cpu_us() - cpu, o->events);
        if (raw > out->raw_per_s)
            out->raw_per_s = raw;
        if (logger > out->logger_per_s)
            out->logger_per_s = logger;
    }
    if (out->raw_per_s > 0)
        out->ratio = out->logger_per_s / out->raw_per_s;
    return s;
}
