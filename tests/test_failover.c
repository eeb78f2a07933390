/*
 * test_failover.c - naq under load on a real 3-node JetStream cluster
 * (R3) while nodes die: a producer, two worker processes and two
 * scheduler processes run while the test kills (-9) the node leading
 * NAQ_JOBS (the server's own answer: stream info cluster.leader), later
 * the JetStream meta leader among the survivors - one node of three is
 * left, so JetStream has no quorum until the test brings both back.
 *
 * Then, from what the servers stored and what the handlers wrote down:
 * every job ran at least once and its history ends in "completed"; the
 * jobs run twice are counted and printed (an ack lost in an election makes
 * a re-run, which at-least-once delivery allows), but no job ever ran on
 * two workers at the same time; no event was lost (completed events =
 * distinct jobs + re-runs); every due time of each schedule was triggered
 * exactly once; and the restarted nodes caught up (caught_up: current
 * replicas, and their own copies of the streams end where they should).
 * The final counts are read once the event stream has caught up, since a
 * direct get may be answered by a replica still behind.
 *
 * Workers and schedulers are this binary re-executed (see child_main), so
 * they are separate processes with their own connections, as in a
 * deployment.
 */
#include "harness.h"

#include "internal.h"

#include <fcntl.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ENV_URL "NAQ_TEST_FO_URL"
#define ENV_SPOOL "NAQ_TEST_FO_SPOOL"
#define ENV_ROLE "NAQ_TEST_FO_ROLE" /* "worker" or "scheduler" */
#define ENV_ID "NAQ_TEST_FO_ID"
#define ENV_OUT "NAQ_TEST_FO_OUT" /* worker: its run log */

#define QUEUE "fo"
#define SCHED_QUEUE "fo-sched" /* scheduled jobs wait here: their due times are the check */
#define JOBS 1500
#define JOBS_PER_S 50
#define LEASE_MS 3000
#define HANDLER_MS 10

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---------------------------------------------------------------- children */

typedef struct {
    int fd;
    const char *id;
} run_log;

/* Writes "S|E <job id> <worker> <attempt> <wall us>" around a short sleep:
 * one write() per line on an O_APPEND fd, so lines never mix. */
static naq_status mark_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    run_log *l = user;
    char line[256];
    int n = snprintf(line, sizeof line, "S %s %s %d %lld\n", job->id, l->id, job->attempt,
                     (long long)wall_us());
    if (write(l->fd, line, (size_t)n) != n)
        return NAQ_ERR_IO;
    pause_ms(HANDLER_MS);
    n = snprintf(line, sizeof line, "E %s %s %d %lld\n", job->id, l->id, job->attempt,
                 (long long)wall_us());
    if (write(l->fd, line, (size_t)n) != n)
        return NAQ_ERR_IO;
    return NAQ_OK;
}

static naq_worker *volatile child_worker;
static naq_scheduler *volatile child_scheduler;

static volatile sig_atomic_t stop_asked;

static void child_on_term(int sig)
{
    (void)sig;
    stop_asked = 1;
    if (child_worker != NULL)
        naq_worker_stop(child_worker);
    if (child_scheduler != NULL)
        naq_scheduler_stop(child_scheduler);
}

/* Runs the worker; like a supervisor (systemd's Restart=), starts it again
 * when it fails to start - a worker that cannot create its consumers or
 * registry entry while the cluster elects a leader returns an error. */
static int run_worker_child(naq_client *c, const char *id)
{
    run_log l = {open(getenv(ENV_OUT), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644), id};
    if (l.fd < 0)
        return 4;
    const char *queues[] = {QUEUE, NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    wo.concurrency = 2;
    wo.worker_id = id;
    for (int attempt = 1;; attempt++) {
        naq_worker *w = NULL;
        if (naq_worker_create(c, &wo, &w) != NAQ_OK ||
            naq_worker_register(w, "mark", mark_handler, &l) != NAQ_OK) {
            fprintf(stderr, "%s: %s\n", id, naq_last_error());
            return 5;
        }
        child_worker = w;
        naq_status s = naq_worker_run(w);
        child_worker = NULL;
        naq_worker_destroy(w);
        if (s == NAQ_OK || stop_asked)
            return s == NAQ_OK ? 0 : 6;
        fprintf(stderr, "%s: run %d: %s; starting it again\n", id, attempt, naq_last_error());
        if (attempt == 20)
            return 6;
        pause_ms(1000);
    }
}

static int run_scheduler_child(naq_client *c, const char *id)
{
    naq_scheduler_opts o;
    naq_scheduler_opts_init(&o);
    o.scheduler_id = id;
    o.lease_ms = LEASE_MS;
    naq_scheduler *s = NULL;
    if (naq_scheduler_create(c, &o, &s) != NAQ_OK) {
        fprintf(stderr, "%s: %s\n", id, naq_last_error());
        return 5;
    }
    child_scheduler = s;
    naq_status st = naq_scheduler_run(s);
    child_scheduler = NULL;
    naq_scheduler_destroy(s);
    return st == NAQ_OK ? 0 : 6;
}

__attribute__((constructor)) static void child_main(void)
{
    const char *url = getenv(ENV_URL);
    if (url == NULL)
        return;
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%s", url);
    snprintf(cfg.spool_dir, sizeof cfg.spool_dir, "%s", getenv(ENV_SPOOL));
    cfg.replicas = 3;
    cfg.ack_wait_ms = 2000;
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK) {
        fprintf(stderr, "child: %s\n", naq_last_error());
        _exit(3);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = child_on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    const char *id = getenv(ENV_ID);
    int rc = strcmp(getenv(ENV_ROLE), "worker") == 0 ? run_worker_child(c, id)
                                                     : run_scheduler_child(c, id);
    /* Whatever the logger still holds is published (or spooled) first. */
    naq_client_flush_events(c, 10000);
    naq_client_destroy(c);
    _exit(rc);
}

static pid_t spawn_child(const naq_test_cluster *cl, const char *role, const char *id,
                         const char *out)
{
    char url[sizeof cl->url + 32], spool[400], r[64], i[64], o[400], log[400];
    snprintf(url, sizeof url, ENV_URL "=%s", cl->url);
    snprintf(spool, sizeof spool, ENV_SPOOL "=%s/spool-%s", cl->node[0].dir, id);
    snprintf(r, sizeof r, ENV_ROLE "=%s", role);
    snprintf(i, sizeof i, ENV_ID "=%s", id);
    snprintf(o, sizeof o, ENV_OUT "=%s", out ? out : "");
    snprintf(log, sizeof log, "%s/%s.log", cl->node[0].dir, id);
    const char *env[] = {url, spool, r, i, o, NULL};
    return naq_test_spawn_self("test_failover-child", env, log);
}

/* Stops a child; when it ended badly, its log (the reason) is printed
 * before the test fails, since the cluster's directory is removed. */
static void stop_child(const naq_test_cluster *cl, pid_t pid, const char *id)
{
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return;
    char log[400], line[512];
    snprintf(log, sizeof log, "%s/%s.log", cl->node[0].dir, id);
    FILE *f = fopen(log, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        fprintf(stderr, "%s: %s", id, line);
    if (f != NULL)
        fclose(f);
    fail_msg("%s ended badly (status 0x%x)", id, st);
}

/* ---------------------------------------------------------------- producer */

typedef struct {
    naq_client *c;
    char (*ids)[NAQ_ID_SIZE];
    atomic_int acked;
    int retries;
    pthread_t t;
} producer;

/* Enqueues JOBS jobs at JOBS_PER_S. A job the server did not confirm is
 * enqueued again with the same id (stored once: the id is the
 * Nats-Msg-Id), as the API says to, until it is confirmed. */
static void *produce(void *arg)
{
    producer *p = arg;
    int64_t start = naq__mono_ms();
    for (int i = 0; i < JOBS; i++) {
        int64_t due = start + (int64_t)i * 1000 / JOBS_PER_S;
        int64_t wait = due - naq__mono_ms();
        if (wait > 0)
            pause_ms((int)wait);
        naq_id_new(p->ids[i]);
        naq_job_opts o;
        naq_job_opts_init(&o);
        o.queue = QUEUE;
        o.function = "mark";
        o.job_id = p->ids[i];
        char id[NAQ_ID_SIZE];
        while (naq_enqueue(p->c, &o, id) != NAQ_OK) {
            p->retries++;
            pause_ms(200);
        }
        atomic_fetch_add(&p->acked, 1);
    }
    return NULL;
}

/* ---------------------------------------------------------------- checks */

typedef struct {
    char id[NAQ_ID_SIZE];
    char worker[32];
    int64_t start_us, end_us;
} run;

static int cmp_run(const void *a, const void *b)
{
    const run *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c != 0 ? c : (x->start_us > y->start_us) - (x->start_us < y->start_us);
}

/* Reads the workers' run logs into runs (heap, free()); returns how many.
 * Once the workers have stopped (final), every "S" has its "E": they
 * were never killed. */
static size_t read_runs(char files[][400], int nfiles, int final, run **out)
{
    size_t cap = 4096, n = 0;
    run *runs = malloc(cap * sizeof *runs);
    assert_non_null(runs);
    for (int f = 0; f < nfiles; f++) {
        FILE *fp = fopen(files[f], "r");
        assert_non_null(fp);
        char kind, id[NAQ_ID_SIZE], worker[32];
        int attempt;
        long long us;
        while (fscanf(fp, " %c %32s %31s %d %lld", &kind, id, worker, &attempt, &us) == 5) {
            if (kind == 'S') {
                if (n == cap) {
                    cap *= 2;
                    runs = realloc(runs, cap * sizeof *runs);
                    assert_non_null(runs);
                }
                snprintf(runs[n].id, sizeof runs[n].id, "%s", id);
                snprintf(runs[n].worker, sizeof runs[n].worker, "%s", worker);
                runs[n].start_us = us;
                runs[n].end_us = -1;
                n++;
                continue;
            }
            /* The latest unfinished run of this job by this worker. */
            for (size_t k = n; k-- > 0;)
                if (runs[k].end_us < 0 && strcmp(runs[k].id, id) == 0 &&
                    strcmp(runs[k].worker, worker) == 0) {
                    runs[k].end_us = us;
                    break;
                }
        }
        fclose(fp);
    }
    for (size_t k = 0; final && k < n; k++)
        if (runs[k].end_us < 0)
            fail_msg("job %s started on %s and never ended", runs[k].id, runs[k].worker);
    qsort(runs, n, sizeof *runs, cmp_run);
    *out = runs;
    return n;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The events on one subject of NAQ_JOB_EVENTS, read straight from the
 * stream (next-by-subject direct gets). Calls fn for each. */
static void each_event(jsCtx *js, const char *subject, void (*fn)(const naq_event *, void *),
                       void *ud)
{
    uint64_t seq = 0;
    for (;;) {
        jsDirectGetMsgOptions dg;
        jsDirectGetMsgOptions_Init(&dg);
        dg.NextBySubject = subject;
        dg.Sequence = seq;
        natsMsg *m = NULL;
        natsStatus ns = js_DirectGetMsg(&m, js, "NAQ_JOB_EVENTS", NULL, &dg);
        if (ns == NATS_NOT_FOUND)
            return;
        if (ns != NATS_OK)
            fail_msg("direct get on %s: %s", subject, natsStatus_GetText(ns));
        seq = natsMsg_GetSequence(m) + 1;
        naq_event e;
        if (naq_event_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &e) == NAQ_OK) {
            fn(&e, ud);
            naq_event_clear(&e);
        }
        natsMsg_Destroy(m);
    }
}

typedef struct {
    int64_t due[4096];
    int n;
} dues;

static void collect_trigger(const naq_event *e, void *ud)
{
    dues *d = ud;
    if (e->type != NAQ_EVENT_SCHEDULER_TRIGGERED || d->n == 4096)
        return;
    const char *dash = strrchr(e->job_id, '-');
    assert_non_null(dash);
    d->due[d->n++] = atoll(dash + 1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every due time of the schedule from its first trigger to its last was
 * triggered exactly once (one scheduler_triggered event each). */
static int check_schedule(jsCtx *js, const char *name, int64_t every_ms)
{
    char subject[128];
    snprintf(subject, sizeof subject, "naq.schedules.events.%s", name);
    dues *d = calloc(1, sizeof *d);
    assert_non_null(d);
    each_event(js, subject, collect_trigger, d);
    qsort(d->due, (size_t)d->n, sizeof *d->due, cmp_i64);
    if (d->n < 10)
        fail_msg("schedule %s was triggered only %d times", name, d->n);
    for (int i = 1; i < d->n; i++) {
        if (d->due[i] == d->due[i - 1])
            fail_msg("schedule %s: due time %lld triggered twice", name, (long long)d->due[i]);
        if (d->due[i] - d->due[i - 1] != every_ms)
            fail_msg("schedule %s: no trigger between due times %lld and %lld", name,
                     (long long)d->due[i - 1], (long long)d->due[i]);
    }
    int n = d->n;
    free(d);
    return n;
}

/* Whether the nodes caught up with a stream after the outage: its leader
 * sees every other node as a current replica with no Raft lag, and the
 * nodes' own copies (/jsz) end at last sequences at most `spread` apart.
 *
 * Why a spread: nats-server 2.9.10 decides duplicates (Nats-Msg-Id) on
 * each replica from that replica's memory, and a restarted node rebuilds
 * that memory only from the messages it still stores. A job that was run
 * and acknowledged is deleted from NAQ_JOBS, so when the producer retries
 * its enqueue after the restart, the restarted node stores the retry as a
 * new message while the others refuse it as a duplicate (docs/deployment.md,
 * "Known limits"). So each job the producer enqueued again, and each
 * scheduled job (a scheduler enqueues a due time again after an outage),
 * can leave at most one such message on a node. */
typedef struct {
    naq_test_cluster *cl;
    const char *stream;
    int64_t spread;
    int current;
    int64_t seq[NAQ_TEST_CLUSTER_MAX];
} catch_up;

static int64_t seq_spread(const catch_up *cu)
{
    int64_t lo = cu->seq[0], hi = cu->seq[0];
    for (int i = 1; i < cu->cl->n; i++) {
        lo = cu->seq[i] < lo ? cu->seq[i] : lo;
        hi = cu->seq[i] > hi ? cu->seq[i] : hi;
    }
    return lo > 0 ? hi - lo : -1;
}

static int caught_up(void *ud)
{
    catch_up *cu = ud;
    cu->current = naq_test_cluster_replicas_current(cu->cl, cu->stream);
    for (int i = 0; i < cu->cl->n; i++)
        cu->seq[i] = naq_test_cluster_node_last_seq(cu->cl, i, cu->stream);
    int64_t spread = seq_spread(cu);
    return cu->current && spread >= 0 && spread <= cu->spread;
}

static void fail_caught_up(const catch_up *cu)
{
    fail_msg("%s: replicas %s; last sequence n1 %lld, n2 %lld, n3 %lld (at most %lld apart)",
             cu->stream, cu->current ? "current" : "not current", (long long)cu->seq[0],
             (long long)cu->seq[1], (long long)cu->seq[2], (long long)cu->spread);
}

/* ---------------------------------------------------------------- the test */

/* Every job's history ends in completed: the last event (by its own
 * time) of the job's highest attempt. Older attempts may report late: an
 * outcome event the logger re-sent after a later attempt's is placed by
 * time in the history (it carries Naq-Late), and a worker whose outcome
 * was not confirmed in the outage reports that in a worker_error, not in
 * the job's history. Histories whose last stored event is not completed
 * are counted in *late. NULL when all are
 * complete, else what is wrong (static). *completed counts the
 * completed events. */
static const char *check_histories(naq_client *c, producer *p, size_t *completed, size_t *late)
{
    static char why[256];
    *completed = *late = 0;
    for (int i = 0; i < JOBS; i++) {
        naq_event_list l;
        if (naq_job_history(c, p->ids[i], &l) != NAQ_OK) {
            snprintf(why, sizeof why, "history of %s: %s", p->ids[i], naq_last_error());
            return why;
        }
        int top = 0;
        for (size_t k = 0; k < l.count; k++)
            top = l.items[k].attempt > top ? l.items[k].attempt : top;
        naq_event_type last = NAQ_EVENT_ENQUEUED, history_last = NAQ_EVENT_ENQUEUED;
        double last_ts = 0;
        for (size_t k = 0; k < l.count; k++) {
            const naq_event *e = &l.items[k];
            *completed += e->type == NAQ_EVENT_COMPLETED;
            if (naq_event_type_category(e->type) != NAQ_CATEGORY_JOB ||
                e->type == NAQ_EVENT_WORKER_ASSIGNED || e->type == NAQ_EVENT_WORKER_RELEASED)
                continue;
            history_last = e->type;
            if (e->attempt == top && e->timestamp >= last_ts) {
                last_ts = e->timestamp;
                last = e->type;
            }
        }
        naq_event_list_free(&l);
        if (last != NAQ_EVENT_COMPLETED) {
            snprintf(why, sizeof why, "the history of %s ends in %s (attempt %d), not completed",
                     p->ids[i], naq_event_type_name(last), top);
            return why;
        }
        *late += history_last != NAQ_EVENT_COMPLETED;
    }
    return NULL;
}

static naq_test_cluster *live; /* the test's cluster, for the teardown */

static void add_schedule(naq_client *c, const char *name, int64_t every_ms)
{
    naq_schedule s;
    naq_schedule_init(&s);
    snprintf(s.name, sizeof s.name, "%s", name);
    s.kind = NAQ_SCHEDULE_EVERY;
    s.every_ms = every_ms;
    s.misfire = NAQ_MISFIRE_RUN_ALL;
    snprintf(s.queue, sizeof s.queue, SCHED_QUEUE);
    snprintf(s.function, sizeof s.function, "mark");
    if (naq_schedule_add(c, &s) != NAQ_OK)
        fail_msg("schedule %s: %s", name, naq_last_error());
    naq_schedule_clear(&s);
}

static void wait_acked(producer *p, int n, int64_t timeout_ms)
{
    int64_t end = naq__mono_ms() + timeout_ms;
    while (atomic_load(&p->acked) < n && naq__mono_ms() < end)
        pause_ms(50);
    if (atomic_load(&p->acked) < n)
        fail_msg("only %d jobs enqueued after %lld ms", atomic_load(&p->acked),
                 (long long)timeout_ms);
}

static void
jobs_and_schedules_survive_killing_the_queue_leader_and_the_meta_leader_of_a_3_node_cluster(
    void **state)
{
    (void)state;
    int64_t t0 = naq__mono_ms();
    naq_test_cluster *cl = live = calloc(1, sizeof *cl);
    assert_non_null(cl);
    naq_test_cluster_start(cl, 3);
    naq_config cfg;
    naq_test_cluster_config(cl, &cfg);
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK)
        fail_msg("connect: %s", naq_last_error());
    add_schedule(c, "fo-1s", 1000);
    add_schedule(c, "fo-700ms", 700);

    char files[2][400];
    pid_t workers[2], schedulers[2];
    for (int i = 0; i < 2; i++) {
        char id[32];
        snprintf(files[i], sizeof files[i], "%s/worker-%d.runs", cl->node[0].dir, i);
        snprintf(id, sizeof id, "fo-worker-%d", i);
        workers[i] = spawn_child(cl, "worker", id, files[i]);
        snprintf(id, sizeof id, "fo-scheduler-%d", i);
        schedulers[i] = spawn_child(cl, "scheduler", id, NULL);
    }

    /* Load starts once both workers run (their consumers exist): a worker
     * that cannot create its consumers at start exits, for its supervisor
     * to restart it. */
    int64_t ready_by = naq__mono_ms() + 60000;
    size_t registered = 0;
    for (; registered < 2 && naq__mono_ms() < ready_by; pause_ms(200)) {
        naq_worker_info_list wl;
        if (naq_workers_list(c, &wl) == NAQ_OK) {
            registered = wl.count;
            naq_worker_info_list_free(&wl);
        }
    }
    if (registered < 2)
        fail_msg("%zu of 2 workers registered within 60 s (logs in %s)", registered,
                 cl->node[0].dir);
    producer p = {.c = c};
    p.ids = calloc(JOBS, NAQ_ID_SIZE);
    assert_non_null(p.ids);
    assert_int_equal(pthread_create(&p.t, NULL, produce, &p), 0);

    /* 1. The node leading the queue stream, as the server says. */
    wait_acked(&p, JOBS / 6, 30000);
    int jobs_leader = naq_test_cluster_stream_leader(cl, "NAQ_JOBS", 10000);
    assert_true(jobs_leader >= 0);
    naq_test_cluster_kill(cl, jobs_leader);
    int64_t t_kill1 = naq__mono_ms();
    int new_leader = naq_test_cluster_stream_leader(cl, "NAQ_JOBS", 20000);
    int64_t elected_after = naq__mono_ms() - t_kill1;
    if (new_leader < 0 || new_leader == jobs_leader)
        fail_msg("no new NAQ_JOBS leader within 20 s of killing n%d", jobs_leader + 1);

    /* 2. Later, the meta leader among the two left: one node of three
     * remains, JetStream has no quorum, everybody waits. */
    wait_acked(&p, JOBS / 2, 60000);
    int meta = naq_test_cluster_meta_leader(cl, 10000);
    assert_true(meta >= 0 && meta != jobs_leader);
    naq_test_cluster_kill(cl, meta);
    pause_ms(5000);

    /* 3. Both back. */
    naq_test_cluster_restart(cl, jobs_leader);
    naq_test_cluster_restart(cl, meta);
    assert_true(naq_test_cluster_wait_ready(cl, 30000));
    int64_t t_back = naq__mono_ms();

    assert_int_equal(pthread_join(p.t, NULL), 0);
    int64_t produced_ms = naq__mono_ms() - t0;

    /* Every job ran: wait until the workers' logs name all of them. */
    qsort(p.ids, JOBS, NAQ_ID_SIZE, cmp_id);
    run *runs = NULL;
    size_t nruns = 0, distinct = 0;
    for (int64_t end = naq__mono_ms() + 60000;; pause_ms(500)) {
        free(runs);
        nruns = read_runs(files, 2, 0, &runs);
        distinct = 0;
        for (size_t k = 0; k < nruns; k++)
            distinct += k == 0 || strcmp(runs[k].id, runs[k - 1].id) != 0;
        if (distinct >= JOBS || naq__mono_ms() > end)
            break;
    }
    if (distinct != JOBS)
        fail_msg("%zu of %d jobs ran", distinct, JOBS);
    /* A job whose outcome could not be stored in the outage is retried:
     * wait (and let the schedulers go on meanwhile) until every history
     * ends in completed. */
    size_t completed = 0, late = 0;
    const char *unfinished = NULL;
    for (int64_t end = naq__mono_ms() + 60000;; pause_ms(1000)) {
        unfinished = check_histories(c, &p, &completed, &late);
        if (unfinished == NULL || naq__mono_ms() > end)
            break;
    }
    if (unfinished != NULL)
        fail_msg("after 60 s: %s", unfinished);
    pause_ms(2000);
    for (int i = 0; i < 2; i++) {
        char id[32];
        snprintf(id, sizeof id, "fo-scheduler-%d", i);
        stop_child(cl, schedulers[i], id);
        snprintf(id, sizeof id, "fo-worker-%d", i);
        stop_child(cl, workers[i], id);
    }
    free(runs);
    nruns = read_runs(files, 2, 1, &runs); /* runs finished while stopping */

    /* No job on two workers at once; re-runs counted. */
    size_t reruns = 0;
    for (size_t k = 1; k < nruns; k++) {
        if (strcmp(runs[k].id, runs[k - 1].id) != 0)
            continue;
        reruns++;
        if (runs[k].start_us < runs[k - 1].end_us)
            fail_msg("job %s ran on %s and %s at once", runs[k].id, runs[k - 1].worker,
                     runs[k].worker);
    }
    /* Every ran job is one the producer enqueued. */
    for (size_t k = 0; k < nruns; k++)
        if (bsearch(runs[k].id, p.ids, JOBS, NAQ_ID_SIZE, cmp_id) == NULL)
            fail_msg("job %s ran but was never enqueued", runs[k].id);

    /* Reads below are direct gets, which any replica may answer: first
     * let the restarted nodes catch up with the event stream, so that a
     * replica still behind cannot hide events (caught_up). */
    assert_int_equal(naq_client_flush_events(c, 10000), NAQ_OK);
    catch_up events = {cl, "NAQ_JOB_EVENTS", 0, 0, {0}};
    if (!naq_test_wait_for(caught_up, &events, 30000))
        fail_caught_up(&events);

    /* Again, with the workers stopped: completed events = runs. */
    unfinished = check_histories(c, &p, &completed, &late);
    if (unfinished != NULL)
        fail_msg("%s", unfinished);
    if (completed != JOBS + reruns)
        fail_msg("%zu completed events for %d jobs and %zu re-runs: events were lost", completed,
                 JOBS, reruns);

    /* Schedules: every due time once. */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsOptions *o = NULL;
    assert_int_equal(natsOptions_Create(&o), NATS_OK);
    assert_int_equal(naq__nats_set_urls(o, cl->url), NATS_OK);
    assert_int_equal(natsConnection_Connect(&nc, o), NATS_OK);
    natsOptions_Destroy(o);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    int t1 = check_schedule(js, "fo-1s", 1000);
    int t2 = check_schedule(js, "fo-700ms", 700);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    /* And with the job stream. */
    catch_up jobs = {cl, "NAQ_JOBS", p.retries + t1 + t2, 0, {0}};
    if (!naq_test_wait_for(caught_up, &jobs, 30000))
        fail_caught_up(&jobs);
    /* `late`: histories whose last event is not the outcome, because an
     * older attempt's verdict was logged after the re-run completed.
     * Reported, not asserted: a known limit (docs/deployment.md). */
    print_message("failover: %d jobs (%d enqueue retries), %zu runs, %zu re-runs, %zu histories "
                  "ending in an older attempt's late verdict; NAQ_JOBS copies end %lld "
                  "apart; NAQ_JOBS leader "
                  "n%d killed, new leader after %lld ms; meta leader n%d killed; schedules "
                  "triggered %d + %d times, each due time once; all back %lld ms before the "
                  "last job was enqueued; %lld ms in all\n",
                  JOBS, p.retries, nruns, reruns, late, (long long)seq_spread(&jobs),
                  jobs_leader + 1, (long long)elected_after, meta + 1, t1, t2,
                  (long long)(produced_ms - (t_back - t0)), (long long)(naq__mono_ms() - t0));
    free(runs);
    free(p.ids);
    naq_client_destroy(c);
    naq_test_cluster_destroy(cl);
    free(cl);
    live = NULL;
}

/* After a failure: the nodes are no children that die with the test.
 * NAQ_TEST_KEEP=1 keeps them running for a look (stop them yourself). */
static int destroy_live_cluster(void **state)
{
    (void)state;
    if (live != NULL && getenv("NAQ_TEST_KEEP") != NULL) {
        print_message("kept the cluster for a look: %s\n", live->url);
        return 0;
    }
    if (live != NULL) {
        naq_test_cluster_destroy(live);
        free(live);
        live = NULL;
    }
    return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(
        jobs_and_schedules_survive_killing_the_queue_leader_and_the_meta_leader_of_a_3_node_cluster,
        destroy_live_cluster),
};

NAQ_TEST_MAIN(tests)
