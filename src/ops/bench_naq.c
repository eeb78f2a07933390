/*
 * bench_naq.c - naq's side of `naq bench jobs`: a producer process calling
 * naq_enqueue (or naq_enqueue_async) once per job, and worker processes
 * running a naq_worker with a no-op handler. Only public libnaq calls are
 * on the measured path; the internals used here (the client's JetStream
 * context) serve the setup and the event count around it.
 *
 * K, the events naq's worker stores per job, is measured rather than
 * assumed: the producer notes the event stream's last sequence before the
 * run and again after every worker has exited (their loggers flushed), and
 * reports the difference; bench_jobs.c subtracts the producer's own
 * "enqueued" per job.
 */
#include "bench_jobs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prefill progress is reported every this many jobs. */
#define PREFILL_STEP 1000
/* How long the end of an async run may wait for the server's answers. */
#define FLUSH_TIMEOUT_MS 120000
/* How often a worker reports its count (and notices STOP). */
#define PROGRESS_MS 20

static naq_status noop_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    naq__bench_tally_job(user, naq__bench_mono_ns(), job->args_json);
    return NAQ_OK;
}

/* Jobs left by an interrupted run would be counted as ours. */
static naq_status purge_queue(naq_client *c, const char *queue)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq_id_validate("queue name", queue);
    if (s == NAQ_OK)
        s = naq__subject(c, subject, sizeof subject, "queue.%s.>", queue);
    if (s != NAQ_OK)
        return s;
    jsErrCode jerr = 0;
    natsStatus ns = naq__stream_purge(c->js, c->cfg.job_stream, subject, 0, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot purge queue %s", queue);
    return NAQ_OK;
}

static naq_status event_last_seq(naq_client *c, uint64_t *seq)
{
    jsStreamState st;
    naq_status s = naq__event_stream_state(c, &st);
    if (s == NAQ_OK)
        *seq = st.LastSeq;
    return s;
}

/* Counts what the server refused of the async enqueues. */
typedef struct {
    atomic_int_least64_t failed;
    char first_error[256];
    atomic_int error_taken;
} async_tally;

static void enqueue_done(const char *job_id, naq_status status, const char *error, void *user)
{
    async_tally *t = user;
    if (status == NAQ_OK)
        return;
    atomic_fetch_add(&t->failed, 1);
    if (atomic_exchange(&t->error_taken, 1) == 0)
        snprintf(t->first_error, sizeof t->first_error, "job %s: %s", job_id,
                 error ? error : naq_status_str(status));
}

static void job_opts(naq_job_opts *jo, const naq__bench_run *r, char *args)
{
    naq_job_opts_init(jo);
    jo->queue = r->o->queue;
    jo->function = "noop";
    jo->args_json = args;
}

/* One enqueue per job, as fast as they are answered or paced at o->rate;
 * async: naq_enqueue_async per job, then one flush. With progress set
 * (prefill) the count of jobs sent goes to it every PREFILL_STEP jobs. */
static naq_status produce(naq_client *c, const naq__bench_run *r, int async,
                          naq__bench_chan *progress, naq__bench_produced *p)
{
    const naq_bench_jobs_opts *o = r->o;
    size_t cap = (size_t)o->payload_bytes + 64;
    char *args = malloc(cap); /* freed below */
    if (args == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory");
    async_tally at;
    memset(&at, 0, sizeof at);
    naq_job_opts jo;
    job_opts(&jo, r, args);
    char id[NAQ_ID_SIZE];
    naq_status s = NAQ_OK;
    int64_t period = o->rate > 0 ? (int64_t)(1e9 / o->rate) : 0;
    p->first_ns = naq__bench_mono_ns();
    for (int64_t i = 0; s == NAQ_OK && i < o->count; i++) {
        if (period > 0)
            naq__bench_sleep_until_ns(p->first_ns + i * period);
        naq__bench_job_payload(args, cap, o->payload_bytes, naq__bench_mono_ns(), i);
        s = async ? naq_enqueue_async(c, &jo, id, enqueue_done, &at) : naq_enqueue(c, &jo, id);
        if (progress != NULL && s == NAQ_OK && (i + 1) % PREFILL_STEP == 0) {
            int64_t sent = i + 1;
            if (naq__bench_send(progress, BENCH_MSG_PROGRESS, &sent, sizeof sent) != 0)
                s = naq__fail(NAQ_ERR_CLOSED, "the parent is gone");
        }
    }
    if (s == NAQ_OK && async)
        s = naq_enqueue_async_flush(c, FLUSH_TIMEOUT_MS);
    if (s == NAQ_OK && atomic_load(&at.failed) > 0)
        s = naq__fail(NAQ_ERR_NATS, "%lld async enqueues were not stored (first: %s)",
                      (long long)atomic_load(&at.failed), at.first_error);
    p->last_ns = naq__bench_mono_ns();
    free(args);
    return s;
}

int naq__bench_naq_producer(naq__bench_chan *ch, void *arg)
{
    const naq__bench_run *r = arg;
    naq_client *c = NULL;
    uint64_t seq0 = 0, seq1 = 0;
    int events = !r->cfg.disable_logging;
    if (naq_client_connect(&r->cfg, &c) != NAQ_OK)
        return naq__bench_fail(ch, "producer cannot connect");
    int rc = 1;
    naq__bench_produced p = {0, 0};
    if (purge_queue(c, r->o->queue) != NAQ_OK || (events && event_last_seq(c, &seq0) != NAQ_OK)) {
        rc = naq__bench_fail(ch, "producer");
        goto out;
    }
    if (r->o->mode == NAQ_BENCH_PREFILLED) {
        /* The "enqueued" events are stored before the clock starts. */
        if (produce(c, r, 1, ch, &p) != NAQ_OK ||
            (events && naq_client_flush_events(c, FLUSH_TIMEOUT_MS) != NAQ_OK)) {
            rc = naq__bench_fail(ch, "prefill");
            goto out;
        }
    }
    if (naq__bench_send(ch, BENCH_MSG_READY, NULL, 0) != 0)
        goto out;
    if (r->o->mode != NAQ_BENCH_PREFILLED) {
        if (naq__bench_wait(ch, -1) != BENCH_CMD_GO)
            goto out;
        int async = r->o->mode == NAQ_BENCH_ASYNC && r->o->rate <= 0;
        if (produce(c, r, async, NULL, &p) != NAQ_OK) {
            rc = naq__bench_fail(ch, "enqueue");
            goto out;
        }
    }
    if (naq__bench_send(ch, BENCH_MSG_PRODUCED, &p, sizeof p) != 0 ||
        naq__bench_wait(ch, -1) != BENCH_CMD_END)
        goto out;
    if (events) {
        if (naq_client_flush_events(c, FLUSH_TIMEOUT_MS) != NAQ_OK ||
            event_last_seq(c, &seq1) != NAQ_OK) {
            rc = naq__bench_fail(ch, "counting the events of the run");
            goto out;
        }
        int64_t added = (int64_t)(seq1 - seq0);
        naq__bench_send(ch, BENCH_MSG_EVENTS, &added, sizeof added);
    }
    rc = 0;
out:
    naq_client_destroy(c);
    return rc;
}

typedef struct {
    naq_worker *w;
    naq_status status;
    atomic_int done;
} runner;

static void *run_worker(void *arg)
{
    runner *x = arg;
    x->status = naq_worker_run(x->w);
    atomic_store(&x->done, 1);
    return NULL;
}

int naq__bench_naq_worker(naq__bench_chan *ch, void *arg)
{
    const naq__bench_run *r = arg;
    naq_client *c = NULL;
    runner x = {NULL, NAQ_OK, 0};
    naq__bench_tally t = {0};
    int rc = 1;
    const char *queues[] = {r->o->queue, NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    wo.concurrency = r->o->concurrency;
    wo.prefetch = r->o->prefetch;
    if (naq__bench_tally_init(&t, r->o->count) != NAQ_OK ||
        naq_client_connect(&r->cfg, &c) != NAQ_OK || naq_worker_create(c, &wo, &x.w) != NAQ_OK ||
        naq_worker_register(x.w, "noop", noop_handler, &t) != NAQ_OK) {
        rc = naq__bench_fail(ch, "worker");
        goto out;
    }
    if (naq__bench_send(ch, BENCH_MSG_READY, NULL, 0) != 0 ||
        naq__bench_wait(ch, -1) != BENCH_CMD_GO)
        goto out;
    pthread_t th;
    if (pthread_create(&th, NULL, run_worker, &x) != 0) {
        naq__fail(NAQ_ERR_NO_MEMORY, "cannot start a thread");
        rc = naq__bench_fail(ch, "worker");
        goto out;
    }
    int64_t reported = -1;
    int cmd = 0;
    while (cmd == 0 && !atomic_load(&x.done)) {
        cmd = naq__bench_wait(ch, PROGRESS_MS);
        int64_t n = atomic_load(&t.handled);
        if (n != reported && naq__bench_send(ch, BENCH_MSG_PROGRESS, &n, sizeof n) == 0)
            reported = n;
    }
    naq_worker_stop(x.w);
    pthread_join(th, NULL);
    if (x.status != NAQ_OK) {
        rc = naq__bench_fail(ch, "worker run");
        goto out;
    }
    if (cmd != BENCH_CMD_STOP) { /* the run ended by itself, or the parent went away */
        naq__fail(NAQ_ERR_CLOSED, "naq_worker_run returned before the run was over");
        rc = naq__bench_fail(ch, "worker");
        goto out;
    }
    naq_worker_destroy(x.w); /* then the client: its logger publishes what is buffered */
    x.w = NULL;
    naq_client_destroy(c);
    c = NULL;
    rc = naq__bench_tally_report(&t, ch) == 0 ? 0 : 1;
out:
    naq_worker_destroy(x.w);
    naq_client_destroy(c);
    free(t.samples);
    return rc;
}
