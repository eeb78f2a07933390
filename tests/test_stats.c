/*
 * test_stats.c - rollups and stats: figures are exact against a generated
 * workload whose answers the test computes itself; folding is exactly-once
 * with two maintainers at once, after a crash between writing the rollups
 * and moving the cursor, and after a maintainer process is killed; the
 * histogram keeps its precision; the live window of `naq top`.
 */
#include "query_helpers.h"

#include "events/events.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a generated workload and its exact answers ---- */

#define NQ 3
#define NW 4
#define NERR 3
#define MAX_EVENTS 20000

static const char *const wq[NQ] = {"emails", "reports", "media"};
static const char *const ww[NW] = {"wk-1", "wk-2", "wk-3", "wk-4"};
static const char *const werr[NERR] = {"ExitStatus", "Timeout", "Boom"};

typedef struct {
    qspec ev[MAX_EVENTS];
    char jobs[MAX_EVENTS][24];
    size_t n;
    double now;
} workload;

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double rnd01(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

/* njobs jobs, timestamps spread over the last `span_h` hours before `now`
 * (offset_h further back): enqueued, started, then completed (70%) or
 * failed with an error type, a third of failures followed by
 * retry_scheduled; worker heartbeats in between. */
static void generate(workload *w, int njobs, double span_h, double offset_h, const char *tag)
{
    for (int j = 0; j < njobs && w->n + 5 < MAX_EVENTS; j++) {
        char *job = w->jobs[w->n];
        snprintf(job, sizeof w->jobs[0], "%s-%d", tag, j);
        const char *queue = wq[rnd() % NQ];
        const char *worker = ww[rnd() % NW];
        /* Rounded as the wire format writes them (microseconds, and
         * milliseconds to 3 decimals), so the test's sums are the stored
         * ones. */
        double ts = round((w->now - offset_h * 3600 - rnd01() * span_h * 3600) * 1e6) / 1e6;
        qspec en = {NAQ_EVENT_ENQUEUED, job, queue, NULL, ts, NULL, -1, NULL, 0};
        qspec st = {NAQ_EVENT_STARTED, job, queue, worker, ts + 0.001, NULL, -1, NULL, 0};
        w->ev[w->n++] = en;
        w->ev[w->n++] = st;
        /* Durations over four orders of magnitude. */
        double dur = round(500.0 * pow(10.0, rnd01() * 4.0)) / 1000.0;
        qspec out = {NAQ_EVENT_COMPLETED, job, queue, worker, ts + 0.002, NULL, dur, NULL, 0};
        if (rnd() % 10 < 3) {
            out.type = NAQ_EVENT_FAILED;
            out.error_type = werr[rnd() % NERR];
        }
        w->ev[w->n++] = out;
        if (out.type == NAQ_EVENT_FAILED && rnd() % 3 == 0) {
            qspec re = {
                NAQ_EVENT_RETRY_SCHEDULED, job, queue, worker, ts + 0.003, NULL, -1, NULL, 0};
            w->ev[w->n++] = re;
        }
        if (j % 7 == 0) {
            qspec hb = {NAQ_EVENT_WORKER_HEARTBEAT, NULL, NULL, worker, ts, NULL, -1, NULL, 0};
            w->ev[w->n++] = hb;
        }
    }
}

typedef struct {
    uint64_t counts[NAQ_EVENT_TYPE_COUNT];
    double durs[MAX_EVENTS];
    size_t ndur;
    double dur_sum;
    uint64_t errors[NERR];
} expected_group;

static int in_window(double ts, double now, int hours)
{
    int64_t h = (int64_t)floor(ts / 3600.0), last = (int64_t)floor(now / 3600.0);
    return h <= last && h > last - hours;
}

static void expect_add(expected_group *g, const qspec *sp, int full)
{
    g->counts[sp->type]++;
    if (full && sp->duration_ms >= 0) {
        g->durs[g->ndur++] = sp->duration_ms;
        g->dur_sum += sp->duration_ms;
    }
    for (int k = 0; full && sp->error_type && k < NERR; k++)
        if (strcmp(sp->error_type, werr[k]) == 0)
            g->errors[k]++;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double nearest_rank(double *sorted, size_t n, double p)
{
    size_t r = (size_t)ceil(p * (double)n);
    return sorted[(r < 1 ? 1 : r) - 1];
}

static void assert_close(const char *what, double got, double want, double rel)
{
    if (fabs(got - want) > rel * fabs(want) + 1e-9)
        fail_msg("%s: got %.6f, want %.6f (within %.1f%%)", what, got, want, rel * 100);
}

static void check_group(const char *name, const naq_stats_group *got, expected_group *want,
                        double window_s, int full)
{
    char what[128];
    for (int t = 0; t < NAQ_EVENT_TYPE_COUNT; t++) {
        if (got->counts[t] != want->counts[t])
            fail_msg("%s: %s count %llu, want %llu", name, naq_event_type_name(t),
                     (unsigned long long)got->counts[t], (unsigned long long)want->counts[t]);
    }
    uint64_t c = want->counts[NAQ_EVENT_COMPLETED], f = want->counts[NAQ_EVENT_FAILED];
    uint64_t r = want->counts[NAQ_EVENT_RETRY_SCHEDULED];
    uint64_t final_failed = f > r ? f - r : 0;
    assert_int_equal(got->runs, c + f);
    assert_int_equal(got->final_failed, final_failed);
    snprintf(what, sizeof what, "%s success rate", name);
    if (c + final_failed == 0) /* no job ended: an hour just begun, say */
        assert_close(what, got->success_rate, -1, 0);
    else
        assert_close(what, got->success_rate, (double)c / (double)(c + final_failed), 1e-12);
    snprintf(what, sizeof what, "%s throughput", name);
    assert_close(what, got->throughput_per_s, (double)c / window_s, 1e-12);
    if (!full) {
        assert_int_equal(got->duration_n, 0);
        return;
    }
    assert_int_equal(got->duration_n, want->ndur);
    if (want->ndur == 0) { /* documented as -1 (naq/stats.h) */
        assert_close("no runs: avg", got->duration_avg, -1, 0);
        assert_close("no runs: p50", got->p50, -1, 0);
        assert_close("no runs: p95", got->p95, -1, 0);
        assert_close("no runs: p99", got->p99, -1, 0);
        return;
    }
    qsort(want->durs, want->ndur, sizeof want->durs[0], dcmp);
    snprintf(what, sizeof what, "%s avg", name);
    assert_close(what, got->duration_avg, want->dur_sum / (double)want->ndur, 1e-9);
    snprintf(what, sizeof what, "%s p50", name);
    assert_close(what, got->p50, nearest_rank(want->durs, want->ndur, 0.50), NAQ_STATS_PRECISION);
    snprintf(what, sizeof what, "%s p95", name);
    assert_close(what, got->p95, nearest_rank(want->durs, want->ndur, 0.95), NAQ_STATS_PRECISION);
    snprintf(what, sizeof what, "%s p99", name);
    assert_close(what, got->p99, nearest_rank(want->durs, want->ndur, 0.99), NAQ_STATS_PRECISION);
    /* Error types, most frequent first. */
    size_t nerr = 0;
    for (int k = 0; k < NERR; k++)
        if (want->errors[k] > 0)
            nerr++;
    assert_int_equal(got->nerrors, nerr);
    for (size_t i = 0; i < got->nerrors; i++) {
        int k = 0;
        while (k < NERR && strcmp(werr[k], got->errors[i].name) != 0)
            k++;
        assert_true(k < NERR);
        assert_int_equal(got->errors[i].count, want->errors[k]);
        if (i > 0)
            assert_true(got->errors[i - 1].count >= got->errors[i].count);
    }
}

/* Checks naq_stats_query over `hours` against the workload, by queue and
 * by worker too. */
static void check_stats(qfixture *fx, const workload *w, int hours)
{
    expected_group *total = calloc(1, sizeof *total);
    expected_group *byq = calloc(NQ, sizeof *byq);
    expected_group *byw = calloc(NW, sizeof *byw);
    assert_true(total && byq && byw);
    for (size_t i = 0; i < w->n; i++) {
        const qspec *sp = &w->ev[i];
        if (!in_window(sp->ts, w->now, hours))
            continue;
        expect_add(total, sp, 1);
        for (int q = 0; sp->queue && q < NQ; q++)
            if (strcmp(sp->queue, wq[q]) == 0)
                expect_add(&byq[q], sp, 1);
        for (int k = 0; sp->worker && k < NW; k++)
            if (strcmp(sp->worker, ww[k]) == 0)
                expect_add(&byw[k], sp, 0);
    }
    naq_stats_opts o;
    naq_stats_opts_init(&o);
    o.hours = hours;
    o.by_queue = 1;
    o.by_worker = 1;
    o.now = w->now;
    naq_stats st;
    if (naq_stats_query(fx->c, &o, &st) != NAQ_OK)
        fail_msg("stats: %s", naq_last_error());
    assert_int_equal(st.hours, hours);
    assert_true(fabs(st.window_end - w->now) < 1e-9);
    /* Throughput is over the time the window really covers: from its
     * earliest event on. */
    double start = (floor(w->now / 3600) - hours + 1) * 3600, first = 0;
    for (size_t i = 0; i < w->n; i++)
        if (in_window(w->ev[i].ts, w->now, hours) && (first == 0 || w->ev[i].ts < first))
            first = w->ev[i].ts;
    double covered = first > start ? first : start;
    if (fabs(st.covered_start - covered) > 1e-6)
        fail_msg("covered_start %.6f, expected %.6f", st.covered_start, covered);
    assert_true(fabs(st.window_s - (w->now - covered)) < 1e-6);
    check_group("total", &st.total, total, st.window_s, 1);
    /* Every queue and worker with events in the window, and no other. */
    size_t nq = 0, nw = 0;
    for (int q = 0; q < NQ; q++)
        nq += byq[q].counts[NAQ_EVENT_ENQUEUED] > 0;
    for (int k = 0; k < NW; k++)
        nw += byw[k].counts[NAQ_EVENT_STARTED] > 0;
    assert_int_equal(st.nqueues, nq);
    for (size_t i = 0; i < st.nqueues; i++) {
        int q = 0;
        while (q < NQ && strcmp(wq[q], st.queues[i].name) != 0)
            q++;
        assert_true(q < NQ);
        check_group(st.queues[i].name, &st.queues[i], &byq[q], st.window_s, 1);
        if (i > 0)
            assert_true(strcmp(st.queues[i - 1].name, st.queues[i].name) < 0);
    }
    assert_int_equal(st.nworkers, nw);
    for (size_t i = 0; i < st.nworkers; i++) {
        int k = 0;
        while (k < NW && strcmp(ww[k], st.workers[i].name) != 0)
            k++;
        assert_true(k < NW);
        check_group(st.workers[i].name, &st.workers[i], &byw[k], st.window_s, 0);
    }
    assert_int_equal(st.rollup_lag, 0);
    naq_stats_free(&st);
    free(total);
    free(byq);
    free(byw);
}

/* Folds until the rollups have caught up with the stream. */
static size_t fold_all(qfixture *fx)
{
    size_t total = 0, folded = 0;
    do {
        naq_status s = naq_rollup_step(fx->c, 0, &folded);
        if (s != NAQ_OK)
            fail_msg("rollup step: %s", naq_last_error());
        total += folded;
    } while (folded > 0);
    uint64_t cursor = 0, lag = 99;
    assert_int_equal(naq_rollup_lag(fx->c, &cursor, &lag), NAQ_OK);
    assert_int_equal(lag, 0);
    return total;
}

static workload *workload_new(void)
{
    workload *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->now = qnow();
    return w;
}

/* ---- rollups and stats ---- */

static void stats_match_a_generated_workload_exactly(void **state)
{
    qfixture *fx = *state;
    workload *w = workload_new();
    generate(w, 1500, 20, 0, "a");  /* inside 24 h */
    generate(w, 200, 5, 30, "old"); /* 30-35 h ago: only in 48 h */
    qpublish_async(fx->js, w->ev, w->n);
    assert_int_equal(fold_all(fx), w->n);
    check_stats(fx, w, 24);
    check_stats(fx, w, 48);
    check_stats(fx, w, 1);
    free(w);
}

/* The current hour holds no run (as in the first seconds of an hour):
 * the 1-hour figures say "none" (-1), not 0. */
static void an_hour_without_runs_reports_no_rate_and_no_durations(void **state)
{
    qfixture *fx = *state;
    workload *w = workload_new();
    generate(w, 100, 3, 2, "past"); /* 2-5 h ago */
    qpublish_async(fx->js, w->ev, w->n);
    assert_int_equal(fold_all(fx), w->n);
    check_stats(fx, w, 1);
    check_stats(fx, w, 24);
    free(w);
}

static void stats_before_folding_report_the_rollup_lag(void **state)
{
    qfixture *fx = *state;
    workload *w = workload_new();
    generate(w, 50, 1, 0, "lag");
    qpublish_async(fx->js, w->ev, w->n);
    naq_stats_opts o;
    naq_stats_opts_init(&o);
    naq_stats st;
    assert_int_equal(naq_stats_query(fx->c, &o, &st), NAQ_OK);
    assert_int_equal(st.total.events, 0);
    assert_int_equal(st.rollup_cursor, 0);
    assert_int_equal(st.rollup_lag, w->n);
    assert_true(st.total.success_rate < 0);
    assert_true(st.total.p50 < 0);
    naq_stats_free(&st);
    /* Half folded: the lag is the other half. */
    size_t folded = 0;
    assert_int_equal(naq_rollup_step(fx->c, (int64_t)(w->n / 2), &folded), NAQ_OK);
    assert_int_equal(folded, w->n / 2);
    assert_int_equal(naq_stats_query(fx->c, &o, &st), NAQ_OK);
    assert_int_equal(st.total.events, w->n / 2);
    assert_int_equal(st.rollup_lag, w->n - w->n / 2);
    naq_stats_free(&st);
    free(w);
}

typedef struct {
    naq_test_server *srv;
    volatile int stop;
    naq_status result;
} maint_arg;

static void *maintainer_thread(void *p)
{
    maint_arg *a = p;
    naq_config cfg;
    naq_test_config(a->srv, &cfg);
    cfg.disable_logging = 1;
    naq_client *c = NULL;
    a->result = naq_client_connect(&cfg, &c);
    if (a->result == NAQ_OK)
        a->result = naq_rollup_run(c, &a->stop);
    naq_client_destroy(c);
    return NULL;
}

static int caught_up(void *ud)
{
    qfixture *fx = ud;
    uint64_t cursor = 0, lag = 1;
    return naq_rollup_lag(fx->c, &cursor, &lag) == NAQ_OK && lag == 0;
}

static void two_maintainers_fold_concurrently_without_double_counting(void **state)
{
    qfixture *fx = *state;
    maint_arg a = {&fx->srv, 0, NAQ_OK}, b = {&fx->srv, 0, NAQ_OK};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, maintainer_thread, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, maintainer_thread, &b), 0);
    workload *w = workload_new();
    /* Events arrive while both run, in several bursts, spanning hours. */
    for (int burst = 0; burst < 6; burst++) {
        size_t from = w->n;
        char tag[16];
        snprintf(tag, sizeof tag, "b%d", burst);
        generate(w, 400, 3, 0, tag);
        qpublish_async(fx->js, w->ev + from, w->n - from);
        qsleep_ms(150);
    }
    assert_true(naq_test_wait_for(caught_up, fx, 30000));
    a.stop = b.stop = 1;
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.result, NAQ_OK);
    assert_int_equal(b.result, NAQ_OK);
    check_stats(fx, w, 24);
    free(w);
}

static void a_crash_between_rollups_and_cursor_counts_nothing_twice(void **state)
{
    qfixture *fx = *state;
    workload *w = workload_new();
    generate(w, 300, 4, 0, "c1");
    qpublish_async(fx->js, w->ev, w->n);
    /* The hour keys are written, then the process "dies". */
    atomic_store(&naq__rollup_crash_before_cursor, 1);
    size_t folded = 0;
    assert_int_equal(naq_rollup_step(fx->c, 0, &folded), NAQ_ERR_CLOSED);
    atomic_store(&naq__rollup_crash_before_cursor, 0);
    uint64_t cursor = 99, lag = 0;
    assert_int_equal(naq_rollup_lag(fx->c, &cursor, &lag), NAQ_OK);
    assert_int_equal(cursor, 0);
    assert_int_equal(lag, w->n);
    /* The restarted maintainer reads the same events again and skips them
     * all: they are in already. */
    assert_int_equal(naq_rollup_step(fx->c, 0, &folded), NAQ_OK);
    assert_int_equal(folded, 0);
    assert_int_equal(naq_rollup_lag(fx->c, &cursor, &lag), NAQ_OK);
    assert_int_equal(lag, 0);
    check_stats(fx, w, 24);
    /* And new events after it count once. */
    size_t from = w->n;
    generate(w, 100, 2, 0, "c2");
    qpublish_async(fx->js, w->ev + from, w->n - from);
    assert_int_equal(fold_all(fx), w->n - from);
    check_stats(fx, w, 24);
    free(w);
}

/* The child side of the kill test: a maintainer process. Runs before main
 * when NAQ_TEST_ROLLUP_CHILD names a server URL. */
__attribute__((constructor)) static void rollup_child(void)
{
    const char *url = getenv("NAQ_TEST_ROLLUP_CHILD");
    if (url == NULL)
        return;
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%s", url);
    cfg.disable_logging = 1;
    naq_client *c = NULL;
    static volatile int never = 0;
    if (naq_client_connect(&cfg, &c) == NAQ_OK)
        naq_rollup_run(c, &never);
    _exit(1);
}

static void a_maintainer_killed_mid_way_then_restarted_counts_exactly(void **state)
{
    qfixture *fx = *state;
    workload *w = workload_new();
    generate(w, 5000, 20, 0, "k");
    qpublish_async(fx->js, w->ev, w->n);
    char env[128];
    snprintf(env, sizeof env, "NAQ_TEST_ROLLUP_CHILD=%s", fx->srv.url);
    const char *envp[] = {env, NULL};
    pid_t pid = naq_test_spawn_self("test_stats", envp, NULL);
    /* Kill it once it has folded some but not all. */
    uint64_t cursor = 0, lag = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(naq_rollup_lag(fx->c, &cursor, &lag), NAQ_OK);
        if (cursor > 0)
            break;
        qsleep_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    assert_true(cursor > 0);
    if (cursor >= w->n) /* the stream holds only this workload */
        print_message("note: the maintainer finished before it was killed\n");
    fold_all(fx);
    check_stats(fx, w, 24);
    free(w);
}

/* ---- the histogram and the codec (no server) ---- */

static void histogram_buckets_keep_two_percent_precision(void **state)
{
    (void)state;
    for (double v = 0.002; v < 1e8; v *= 1.0173) {
        double got = naq__hist_value(naq__hist_index(v));
        if (fabs(got - v) > NAQ_STATS_PRECISION * v * (1 + 1e-9))
            fail_msg("%.6f ms reads back as %.6f", v, got);
    }
    assert_int_equal(naq__hist_index(0), 0);
    assert_int_equal(naq__hist_index(-5), 0);
    assert_int_equal(naq__hist_index(1e30), NAQ__HIST_BUCKETS - 1);
    assert_true(naq__hist_index(1.0) < naq__hist_index(1.05));
}

static void rollup_json_round_trips_and_merges_by_name(void **state)
{
    (void)state;
    naq__rollup a, b;
    naq__rollup_init(&a, 490000);
    naq__rollup_rec r = {7,    490000, NAQ_EVENT_FAILED, 12.5,
                         "q1", "w1",   "Boom",           490000 * 3600.0 + 20};
    assert_int_equal(naq__rollup_add(&a, &r), NAQ_OK);
    naq__rollup_rec r2 = {9,    490000, NAQ_EVENT_COMPLETED, 3.0, "q2",
                          "w1", "",     490000 * 3600.0 + 10};
    assert_int_equal(naq__rollup_add(&a, &r2), NAQ_OK);
    a.last_seq = 9;
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq__rollup_encode(&a, &json, &len), NAQ_OK);
    naq__rollup_init(&b, 490000);
    assert_int_equal(naq__rollup_decode(json, len, &b), NAQ_OK);
    char *again = NULL;
    size_t len2 = 0;
    assert_int_equal(naq__rollup_encode(&b, &again, &len2), NAQ_OK);
    assert_string_equal(json, again);
    /* Decoding adds: twice the counts, last_seq the larger. */
    assert_int_equal(naq__rollup_decode(json, len, &b), NAQ_OK);
    assert_int_equal(b.total.types[NAQ_EVENT_FAILED], 2);
    assert_int_equal(b.total.dur_n, 4);
    assert_int_equal(b.queues.n, 2);
    assert_int_equal(b.workers.n, 1);
    assert_int_equal(b.workers.v[0]->types[NAQ_EVENT_COMPLETED], 2);
    assert_int_equal(b.total.errors[0].count, 2);
    assert_int_equal(b.last_seq, 9);
    /* The earliest event is kept (what throughput is measured from); a
     * rollup without first_ts (written by an older naq) stands for its
     * whole hour. */
    assert_true(b.first_ts == 490000 * 3600.0 + 10);
    const char old[] = "{\"v\":1,\"hour\":489999,\"last_seq\":3,\"total\":{\"types\":{}}}";
    assert_int_equal(naq__rollup_decode(old, sizeof old - 1, &b), NAQ_OK);
    assert_true(b.first_ts == 489999 * 3600.0);
    assert_int_equal(naq__rollup_decode("{\"v\":99}", 8, &b), NAQ_ERR_CODEC);
    free(json);
    free(again);
    naq__rollup_free(&a);
    naq__rollup_free(&b);
}

/* ---- the live window (no server) ---- */

static void live_add_attempt(naq_live *l, naq_event_type t, const char *job, const char *queue,
                             const char *worker, double ts, double dur, const char *err,
                             int attempt)
{
    naq_event e;
    naq_event_init(&e, t);
    e.attempt = attempt;
    snprintf(e.job_id, sizeof e.job_id, "%s", job ? job : "");
    snprintf(e.queue_name, sizeof e.queue_name, "%s", queue ? queue : "");
    snprintf(e.worker_id, sizeof e.worker_id, "%s", worker ? worker : "");
    e.timestamp = ts;
    e.duration_ms = dur;
    e.error_type = (char *)err;
    e.error_message = err ? (char *)"it broke" : NULL;
    naq_live_add(l, &e);
}

static void live_add(naq_live *l, naq_event_type t, const char *job, const char *queue,
                     const char *worker, double ts, double dur, const char *err)
{
    live_add_attempt(l, t, job, queue, worker, ts, dur, err, 0);
}

static void live_window_rates_latency_workers_failures_and_queue_filter(void **state)
{
    (void)state;
    naq_live *l = NULL;
    assert_int_equal(naq_live_create(&l), NAQ_OK);
    double now = qnow();
    /* 20 completions in the last 10 s on "a", durations 1..20 ms; 5 on "b"
     * long ago (outside the rate window, inside the latency window). */
    for (int i = 0; i < 20; i++) {
        char job[16];
        snprintf(job, sizeof job, "a%d", i);
        live_add(l, NAQ_EVENT_STARTED, job, "a", "w1", now - 9 + i * 0.4, NAQ_UNSET, NULL);
        live_add(l, NAQ_EVENT_COMPLETED, job, "a", "w1", now - 9 + i * 0.4 + 0.1, i + 1, NULL);
    }
    for (int i = 0; i < 5; i++)
        live_add_attempt(l, NAQ_EVENT_FAILED, "b1", "b", "w2", now - 30, 100, "Boom", i + 1);
    live_add(l, NAQ_EVENT_STARTED, "b2", "b", "w2", now - 1, NAQ_UNSET, NULL);

    naq_live_query q;
    naq_live_query_init(&q);
    q.now = now;
    naq_live_snapshot s;
    assert_int_equal(naq_live_snapshot_take(l, &q, &s), NAQ_OK);
    assert_int_equal(s.total_events, 46);
    assert_true(fabs(s.per_s[NAQ_EVENT_COMPLETED] - 2.0) < 1e-9);
    assert_true(fabs(s.per_s[NAQ_EVENT_STARTED] - 2.1) < 1e-9);
    assert_true(fabs(s.events_per_s - 4.1) < 1e-9);
    assert_int_equal(s.latency_n, 25);
    assert_true(fabs(s.p50 - 13) < 1e-9); /* 1..20 and five 100s: rank 13 */
    assert_true(fabs(s.p99 - 100) < 1e-9);
    assert_int_equal(s.nworkers, 2);
    assert_string_equal(s.workers[0].worker_id, "w1");
    assert_int_equal(s.workers[0].status, NAQ_WORKER_STATUS_IDLE);
    assert_int_equal(s.workers[0].processed, 20);
    assert_string_equal(s.workers[1].worker_id, "w2");
    assert_int_equal(s.workers[1].status, NAQ_WORKER_STATUS_BUSY);
    assert_string_equal(s.workers[1].current_job, "b2");
    assert_int_equal(s.nfailures, 5);
    assert_string_equal(s.failures[0].error_type, "Boom");
    assert_string_equal(s.failures[0].error_message, "it broke");
    assert_string_equal(s.jobs[0].job_id, "b2");
    assert_string_equal(s.jobs[1].job_id, "b1");
    assert_int_equal(s.njobs, 22);
    naq_live_snapshot_free(&s);

    q.queue = "b";
    assert_int_equal(naq_live_snapshot_take(l, &q, &s), NAQ_OK);
    assert_true(fabs(s.events_per_s - 0.1) < 1e-9);
    assert_int_equal(s.latency_n, 5);
    assert_int_equal(s.nworkers, 1);
    assert_string_equal(s.workers[0].worker_id, "w2");
    assert_int_equal(s.nfailures, 5);
    assert_int_equal(s.njobs, 2);
    naq_live_snapshot_free(&s);

    q.queue = "nowhere";
    assert_int_equal(naq_live_snapshot_take(l, &q, &s), NAQ_OK);
    assert_int_equal(s.latency_n, 0);
    assert_true(s.p50 < 0);
    assert_int_equal(s.nworkers + s.nfailures + s.njobs, 0);
    naq_live_snapshot_free(&s);
    naq_live_destroy(l);
}

static void live_window_lists_a_failed_attempt_once_whatever_events_tell_it(void **state)
{
    (void)state;
    naq_live *l = NULL;
    assert_int_equal(naq_live_create(&l), NAQ_OK);
    double now = qnow();
    /* Attempt 1 timed out and will be retried; attempt 2 timed out for
     * good: timeout, failed and max_retries_exceeded each time. */
    for (int attempt = 1; attempt <= 2; attempt++) {
        double t = now - 5 + attempt;
        live_add_attempt(l, NAQ_EVENT_TIMEOUT, "j1", "q", "w", t, NAQ_UNSET, "Timeout", attempt);
        live_add_attempt(l, NAQ_EVENT_FAILED, "j1", "q", "w", t, 30000, "Timeout", attempt);
        if (attempt == 2)
            live_add_attempt(l, NAQ_EVENT_MAX_RETRIES_EXCEEDED, "j1", "q", "w", t, NAQ_UNSET,
                             "Timeout", attempt);
    }
    live_add_attempt(l, NAQ_EVENT_FAILED, "j2", "q", "w", now, 5, "Boom", 1);
    naq_live_query q;
    naq_live_query_init(&q);
    q.now = now;
    naq_live_snapshot s;
    assert_int_equal(naq_live_snapshot_take(l, &q, &s), NAQ_OK);
    assert_int_equal(s.nfailures, 3);
    assert_string_equal(s.failures[0].job_id, "j2");
    assert_string_equal(s.failures[1].job_id, "j1");
    assert_int_equal(s.failures[1].attempt, 2);
    assert_string_equal(s.failures[1].error_type, "Timeout");
    assert_string_equal(s.failures[2].job_id, "j1");
    assert_int_equal(s.failures[2].attempt, 1);
    /* Rates still count every event. */
    assert_true(s.per_s[NAQ_EVENT_FAILED] > 0);
    naq_live_snapshot_free(&s);
    naq_live_destroy(l);
}

static void live_workers_share_the_registry_states_and_are_lost_when_silent(void **state)
{
    (void)state;
    naq_live *l = NULL;
    assert_int_equal(naq_live_create(&l), NAQ_OK);
    double now = qnow();
    naq_event e;
    /* w-quiet heartbeats every second, then falls silent: lost after 3 s. */
    naq_event_init(&e, NAQ_EVENT_WORKER_HEARTBEAT);
    snprintf(e.worker_id, sizeof e.worker_id, "w-quiet");
    e.timestamp = now - 10;
    e.details_json = (char *)"{\"status\":\"idle\",\"heartbeat_interval_ms\":1000}";
    naq_live_add(l, &e);
    /* w-draining said it is stopping, w-done that it stopped (long ago). */
    naq_event_init(&e, NAQ_EVENT_WORKER_STATUS_CHANGED);
    snprintf(e.worker_id, sizeof e.worker_id, "w-draining");
    e.timestamp = now - 1;
    e.details_json = (char *)"{\"from\":\"busy\",\"to\":\"stopping\"}";
    naq_live_add(l, &e);
    naq_event_init(&e, NAQ_EVENT_WORKER_STOPPED);
    snprintf(e.worker_id, sizeof e.worker_id, "w-done");
    e.timestamp = now - 600;
    naq_live_add(l, &e);

    naq_live_query q;
    naq_live_query_init(&q);
    q.now = now - 9; /* a second after w-quiet's heartbeat */
    naq_live_snapshot s;
    assert_int_equal(naq_live_snapshot_take(l, &q, &s), NAQ_OK);
    assert_string_equal(s.workers[2].worker_id, "w-quiet");
    assert_string_equal(naq_worker_status_name(s.workers[2].status), "idle");
    naq_live_snapshot_free(&s);
    q.now = now;
    assert_int_equal(naq_live_snapshot_take(l, &q, &s), NAQ_OK);
    assert_int_equal(s.nworkers, 3);
    assert_string_equal(s.workers[0].worker_id, "w-done");
    assert_string_equal(naq_worker_status_name(s.workers[0].status), "stopped");
    assert_string_equal(s.workers[1].worker_id, "w-draining");
    assert_string_equal(naq_worker_status_name(s.workers[1].status), "stopping");
    assert_string_equal(naq_worker_status_name(s.workers[2].status), "lost");
    naq_live_snapshot_free(&s);
    naq_live_destroy(l);
}

/* ---- the CLI ---- */

static int cli(qfixture *fx, const char *const *args, char **out, char **err)
{
    char env0[128];
    snprintf(env0, sizeof env0, "NAQ_URL=%s", fx->srv.url);
    const char *env[] = {env0, NULL};
    return naq_test_run_cli(args, env, out, err);
}

static void cli_counts_read_in_the_singular_for_one(void **state)
{
    qfixture *fx = *state;
    qspec one = {NAQ_EVENT_COMPLETED, "j1", "q", "w", 0, NULL, 5, NULL, 0};
    qpublish(fx, &one);
    char *out = NULL, *err = NULL;
    const char *stats[] = {"events", "stats", "--no-fold", NULL};
    assert_int_equal(cli(fx, stats, &out, &err), 0);
    if (strstr(out, "rollups are 1 event behind") == NULL)
        fail_msg("stats:\n%s", out);
    free(out);
    free(err);
    const char *once[] = {"events", "rollup", "--once", NULL};
    assert_int_equal(cli(fx, once, &out, &err), 0);
    if (strstr(out, "folded 1 event\n") == NULL)
        fail_msg("rollup --once: '%s'", out);
    free(out);
    free(err);
    assert_int_equal(cli(fx, stats, &out, &err), 0);
    if (strstr(out, "duration (1 run)") == NULL)
        fail_msg("stats:\n%s", out);
    free(out);
    free(err);
}

/* The defect this guards against: with no maintainer running, stats
 * printed zeros on stdout (only stderr said the rollups were behind). Now
 * stats fold the tail first, exactly once: a rollup afterwards finds
 * nothing left, and asking again gives the same figures. */
static void cli_stats_fold_the_missing_tail_and_count_every_event(void **state)
{
    qfixture *fx = *state;
    workload *w = workload_new();
    generate(w, 100, 2, 0, "cli");
    qpublish_async(fx->js, w->ev, w->n);
    char *out = NULL, *err = NULL;
    const char *nofold[] = {"events", "stats", "--no-fold", NULL};
    assert_int_equal(cli(fx, nofold, &out, &err), 0);
    char want[160];
    snprintf(want, sizeof want, "rollups are %zu events behind", w->n);
    if (strstr(out, want) == NULL)
        fail_msg("want '%s' in:\n%s", want, out);
    free(out);
    free(err);
    uint64_t completed = 0, failed = 0;
    for (size_t i = 0; i < w->n; i++) {
        completed += w->ev[i].type == NAQ_EVENT_COMPLETED;
        failed += w->ev[i].type == NAQ_EVENT_FAILED;
    }
    const char *json[] = {"events", "stats", "--by-queue", "--by-worker", "--format", "json", NULL};
    for (int round = 0; round < 2; round++) {
        assert_int_equal(cli(fx, json, &out, &err), 0);
        json_error_t jerr;
        json_t *o = json_loads(out, 0, &jerr);
        if (o == NULL)
            fail_msg("not JSON (%s): '%s'", jerr.text, out);
        json_t *counts = json_object_get(json_object_get(o, "total"), "counts");
        assert_int_equal(json_integer_value(json_object_get(counts, "completed")), completed);
        assert_int_equal(json_integer_value(json_object_get(counts, "failed")), failed);
        assert_int_equal(json_integer_value(json_object_get(o, "rollup_lag")), 0);
        assert_int_equal(json_array_size(json_object_get(o, "queues")), NQ);
        assert_int_equal(json_array_size(json_object_get(o, "workers")), NW);
        assert_true(json_is_real(
            json_object_get(json_object_get(json_object_get(o, "total"), "duration"), "p99_ms")));
        json_decref(o);
        assert_null(strstr(err, "behind"));
        free(out);
        free(err);
    }
    const char *once[] = {"events", "rollup", "--once", NULL};
    assert_int_equal(cli(fx, once, &out, &err), 0);
    assert_string_equal(out, "folded 0 events\n");
    free(out);
    free(err);
    const char *table[] = {"events", "stats", "--by-queue", NULL};
    assert_int_equal(cli(fx, table, &out, &err), 0);
    assert_non_null(strstr(out, "success rate"));
    assert_non_null(strstr(out, "emails"));
    assert_null(strstr(out, "behind"));
    free(out);
    free(err);
    free(w);
}

/* A fold that takes more than a second says so on stderr, never stdout. */
static void cli_stats_show_fold_progress_on_stderr_when_it_is_slow(void **state)
{
    qfixture *fx = *state;
    /* Enough events that folding them takes over a second here (about
     * 20-40k events/s on this 2-core machine); checked below, not assumed. */
    size_t n = 0;
    workload *w = workload_new();
    double t0 = 0;
    struct timespec ts;
    for (int round = 0; round < 12; round++) {
        char tag[16];
        snprintf(tag, sizeof tag, "slow%d", round);
        w->n = 0;
        generate(w, 4000, 1, 0, tag);
        qpublish_async(fx->js, w->ev, w->n);
        n += w->n;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    char *out = NULL, *err = NULL;
    const char *json[] = {"events", "stats", "--format", "json", NULL};
    assert_int_equal(cli(fx, json, &out, &err), 0);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double took = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0;
    json_t *o = json_loads(out, 0, NULL);
    if (o == NULL)
        fail_msg("stdout is not one JSON object: '%.300s'", out);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "total"), "events")), n);
    json_decref(o);
    if (took > 2.0 && strstr(err, "naq: folding events into the stats rollups: ") == NULL)
        fail_msg("stats took %.1f s without progress on stderr: '%s'", took, err);
    if (took > 2.0)
        assert_non_null(strstr(err, "naq: folded in "));
    if (took < 1.0)
        assert_null(strstr(err, "folding"));
    free(out);
    free(err);
    free(w);
}

/* The issue's own case: real jobs run by a real `naq worker`, no scheduler
 * and no rollup maintainer anywhere, then stats count them exactly and
 * measure throughput over the minutes that really hold events. */
static void cli_stats_count_a_real_workload_without_a_scheduler(void **state)
{
    qfixture *fx = *state;
    enum { NJOBS = 25 };
    char env0[128], env1[320], log[300];
    snprintf(env0, sizeof env0, "NAQ_URL=%s", fx->srv.url);
    snprintf(env1, sizeof env1, "NAQ_SPOOL_DIR=%s/spool", fx->srv.dir);
    const char *env[] = {env0, env1, NULL};
    char ids[NJOBS][NAQ_ID_SIZE];
    for (int i = 0; i < NJOBS; i++) {
        const char *enq[] = {"enqueue", "-q", "statsjobs", "--", "true", NULL};
        char *out = NULL;
        assert_int_equal(naq_test_run_cli(enq, env, &out, NULL), 0);
        out[strcspn(out, "\n")] = '\0';
        snprintf(ids[i], sizeof ids[i], "%s", out);
        free(out);
    }
    snprintf(log, sizeof log, "%s/worker.log", fx->srv.dir);
    const char *work[] = {"worker", "-q", "statsjobs", "-c", "4", NULL};
    pid_t pid = naq_test_spawn_cli(work, env, log);
    for (int i = 0; i < NJOBS; i++) {
        int done = 0;
        for (int k = 0; k < 3000 && !done; k++) {
            naq_event e;
            naq_event_init(&e, NAQ_EVENT_ENQUEUED);
            done = naq_job_last_event(fx->c, ids[i], &e) == NAQ_OK && e.type == NAQ_EVENT_COMPLETED;
            naq_event_clear(&e);
            if (!done)
                usleep(10000);
        }
        if (!done)
            fail_msg("job %s did not complete within 30 s", ids[i]);
    }
    kill(pid, SIGTERM);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    const char *stats[] = {"events",     "stats",    "--hours", "2",
                           "--by-queue", "--format", "json",    NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(stats, env, &out, &err), 0);
    json_t *o = json_loads(out, 0, NULL);
    if (o == NULL)
        fail_msg("not JSON: '%s'", out);
    json_t *q = json_array_get(json_object_get(o, "queues"), 0);
    assert_string_equal(json_string_value(json_object_get(q, "name")), "statsjobs");
    json_t *counts = json_object_get(q, "counts");
    assert_int_equal(json_integer_value(json_object_get(counts, "enqueued")), NJOBS);
    assert_int_equal(json_integer_value(json_object_get(counts, "started")), NJOBS);
    assert_int_equal(json_integer_value(json_object_get(counts, "completed")), NJOBS);
    assert_null(json_object_get(counts, "failed"));
    assert_int_equal(json_integer_value(json_object_get(o, "rollup_lag")), 0);
    /* The window covers from the first enqueue to now: seconds, not hours. */
    double window_s = json_real_value(json_object_get(o, "window_s"));
    if (window_s <= 0 || window_s > 120)
        fail_msg("window_s %.1f: the window should start at the first event", window_s);
    double tput = json_real_value(json_object_get(q, "throughput_per_s"));
    assert_true(fabs(tput - NJOBS / window_s) < 1e-9);
    json_decref(o);
    free(out);
    free(err);
}

static void cli_rollup_daemon_folds_new_events_and_stops_on_sigterm(void **state)
{
    qfixture *fx = *state;
    char env0[128], log[300];
    snprintf(env0, sizeof env0, "NAQ_URL=%s", fx->srv.url);
    snprintf(log, sizeof log, "%s/rollup.log", fx->srv.dir);
    const char *env[] = {env0, NULL};
    const char *args[] = {"events", "rollup", NULL};
    pid_t pid = naq_test_spawn_cli(args, env, log);
    workload *w = workload_new();
    generate(w, 200, 3, 0, "daemon");
    qpublish_async(fx->js, w->ev, w->n);
    assert_true(naq_test_wait_for(caught_up, fx, 15000));
    kill(pid, SIGTERM);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    check_stats(fx, w, 24);
    free(w);
}

static const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, qsetup, qteardown)
    T(stats_match_a_generated_workload_exactly),
    T(an_hour_without_runs_reports_no_rate_and_no_durations),
    T(stats_before_folding_report_the_rollup_lag),
    T(two_maintainers_fold_concurrently_without_double_counting),
    T(a_crash_between_rollups_and_cursor_counts_nothing_twice),
    T(a_maintainer_killed_mid_way_then_restarted_counts_exactly),
    T(cli_stats_fold_the_missing_tail_and_count_every_event),
    T(cli_stats_show_fold_progress_on_stderr_when_it_is_slow),
    T(cli_stats_count_a_real_workload_without_a_scheduler),
    T(cli_counts_read_in_the_singular_for_one),
    T(cli_rollup_daemon_folds_new_events_and_stops_on_sigterm),
    cmocka_unit_test(histogram_buckets_keep_two_percent_precision),
    cmocka_unit_test(rollup_json_round_trips_and_merges_by_name),
    cmocka_unit_test(live_window_rates_latency_workers_failures_and_queue_filter),
    cmocka_unit_test(live_window_lists_a_failed_attempt_once_whatever_events_tell_it),
    cmocka_unit_test(live_workers_share_the_registry_states_and_are_lost_when_silent),
#undef T
};

NAQ_TEST_MAIN(tests)
