/*
 * test_crash.c - crash-safety of the job lifecycle against real processes
 * and a real nats-server: a worker SIGKILLed mid-job, three worker
 * processes racing over 10,000 jobs, a server killed (-9) and restarted
 * while workers run, an empty server met by a producer and two workers at
 * once, and a worker killed between its outcome and its ack. In each, no job is lost, none runs
 * twice without a failure in between, and every history tells only what happened.
 *
 * Worker processes re-execute this test binary (a plain fork() of a
 * process in which nats.c already runs would leave the child without
 * nats.c's threads): the constructor below turns such a child into a
 * worker before main() runs, as the environment says.
 */
#include "worker_support.h"

#include "worker/worker.h"
#include "naq/query.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_URL_ENV "NAQ_TEST_CRASH_URL"
#define CHILD_SPOOL_ENV "NAQ_TEST_CRASH_SPOOL"
#define CHILD_ROLE_ENV "NAQ_TEST_CRASH_ROLE" /* "doomed", "racer" or "acker" */
#define CHILD_OUT_ENV "NAQ_TEST_CRASH_OUT"   /* racer: file of the job ids it ran */

#define RACE_JOBS 10000
#define RACERS 3
#define COLD_JOBS 20000

/* ---- handlers ---- */

static atomic_int calls;

/* args [ms]: sleeps (no cancellation needed: the process is killed). */
static naq_status slow_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    (void)user;
    atomic_fetch_add(&calls, 1);
    json_t *a = json_loads(job->args_json, JSON_DECODE_ANY, NULL);
    sleep_ms((int)json_integer_value(json_array_get(a, 0)));
    json_decref(a);
    return NAQ_OK;
}

static naq_status count_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    (void)job;
    (void)user;
    atomic_fetch_add(&calls, 1);
    return NAQ_OK;
}

/* Appends "<job id>\n" to the racer's file (one write on an O_APPEND fd:
 * lines from the racer's threads never mix). */
static naq_status mark_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)ctx;
    int fd = *(int *)user;
    char line[NAQ_ID_SIZE + 2];
    int n = snprintf(line, sizeof line, "%s\n", job->id);
    if (write(fd, line, (size_t)n) != n)
        return NAQ_ERR_IO;
    return NAQ_OK;
}

/* args [fails, sleep_ms]: attempts 1..fails fail, then success. */
static naq_status flaky_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)user;
    atomic_fetch_add(&calls, 1);
    json_t *a = json_loads(job->args_json, JSON_DECODE_ANY, NULL);
    int fails = (int)json_integer_value(json_array_get(a, 0));
    sleep_ms((int)json_integer_value(json_array_get(a, 1)));
    json_decref(a);
    if (job->attempt <= fails) {
        naq_job_ctx_fail(ctx, "IOError", "attempt %d fails", job->attempt);
        return NAQ_ERR_HANDLER;
    }
    return NAQ_OK;
}

/* ---- worker processes ---- */

static naq_worker *volatile child_worker_handle;

static void child_on_term(int sig)
{
    (void)sig;
    naq_worker *w = child_worker_handle;
    if (w != NULL)
        naq_worker_stop(w);
}

__attribute__((constructor)) static void child_worker(void)
{
    const char *url = getenv(CHILD_URL_ENV);
    const char *spool = getenv(CHILD_SPOOL_ENV);
    const char *role = getenv(CHILD_ROLE_ENV);
    if (url == NULL || spool == NULL || role == NULL)
        return;
    int racer = strcmp(role, "doomed") != 0; /* marks the jobs it runs in a file */
    /* "acker": dies once a job's outcome is confirmed, before the ack. */
    if (strcmp(role, "acker") == 0)
        atomic_store(&naq__worker_crash_before_ack, 1);
    int fd = -1;
    if (racer) {
        const char *out = getenv(CHILD_OUT_ENV);
        fd = out ? open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
        if (fd < 0) {
            fprintf(stderr, "racer: cannot open its output file\n");
            _exit(4);
        }
    }
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%s", url);
    snprintf(cfg.spool_dir, sizeof cfg.spool_dir, "%s", spool);
    cfg.ack_wait_ms = 2000; /* as naq_test_config */
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK) {
        fprintf(stderr, "child worker: %s\n", naq_last_error());
        _exit(2);
    }
    const char *queues[] = {strcmp(role, "racer") == 0    ? "race"
                            : strcmp(role, "doomed") == 0 ? "crash"
                                                          : role,
                            NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    wo.concurrency = strcmp(role, "racer") == 0 ? 2 : 1;
    wo.worker_id = strcmp(role, "doomed") == 0 ? "doomed" : NULL;
    naq_worker *w = NULL;
    if (naq_worker_create(c, &wo, &w) != NAQ_OK ||
        naq_worker_register(w, racer ? "mark" : "slow", racer ? mark_handler : slow_handler, &fd) !=
            NAQ_OK) {
        fprintf(stderr, "child worker: %s\n", naq_last_error());
        _exit(3);
    }
    child_worker_handle = w;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = child_on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    naq_status s = naq_worker_run(w);
    child_worker_handle = NULL;
    naq_worker_destroy(w);
    naq_client_destroy(c);
    _exit(s == NAQ_OK ? 0 : 5);
}

/* Starts this binary as a worker process of `role`; out: the racer's file;
 * log: where its output goes (NULL: the test's). */
static pid_t spawn_child_logged(const naq_test_server *srv, const char *role, const char *out,
                                const char *log)
{
    char url[128], spool[400], r[64], o[400];
    snprintf(url, sizeof url, CHILD_URL_ENV "=%s", srv->url);
    snprintf(spool, sizeof spool, CHILD_SPOOL_ENV "=%s/spool-%s-%d", srv->dir, role,
             naq_test_free_port());
    snprintf(r, sizeof r, CHILD_ROLE_ENV "=%s", role);
    if (snprintf(o, sizeof o, CHILD_OUT_ENV "=%s", out ? out : "") >= (int)sizeof o)
        fail_msg("the racer's file name %s is too long", out);
    const char *env[] = {url, spool, r, o, NULL};
    return naq_test_spawn_self("test_crash", env, log);
}

static pid_t spawn_child(const naq_test_server *srv, const char *role, const char *out)
{
    return spawn_child_logged(srv, role, out, NULL);
}

static naq_worker *make_worker(naq_client *c, const char *queue, int concurrency)
{
    const char *queues[] = {queue, NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    wo.concurrency = concurrency;
    naq_worker *w = NULL;
    if (naq_worker_create(c, &wo, &w) != NAQ_OK)
        fail_msg("worker: %s", naq_last_error());
    assert_int_equal(naq_worker_register(w, "slow", count_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "count", count_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "mark", count_handler, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(w, "flaky", flaky_handler, NULL), NAQ_OK);
    return w;
}

static naq_job_opts job(const char *queue, const char *function, const char *args)
{
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = queue;
    o.function = function;
    o.args_json = args;
    return o;
}

/* Messages left in the job stream (queued, waiting for a retry, or
 * delivered and not yet acknowledged). */
static uint64_t jobs_left(naq_client *c)
{
    naq_queue_depth *d = NULL;
    size_t n = 0;
    if (naq_queue_depths(c, &d, &n) != NAQ_OK)
        return UINT64_MAX;
    uint64_t left = 0;
    for (size_t i = 0; i < n; i++)
        left += d[i].pending + (uint64_t)(d[i].in_flight > 0 ? d[i].in_flight : 0);
    free(d);
    return left;
}

/* ---- the tests ---- */

static void
worker_killed_mid_job_runs_it_again_and_history_shows_both_attempts_truthfully(void **state)
{
    fixture *fx = *state;
    atomic_store(&calls, 0);
    pid_t pid = spawn_child(&fx->srv, "doomed", NULL);
    char id[NAQ_ID_SIZE];
    naq_job_opts o = job("crash", "slow", "[60000]");
    if (naq_enqueue(fx->c, &o, id) != NAQ_OK)
        fail_msg("enqueue: %s", naq_last_error());
    wait_event(fx->c, id, NAQ_EVENT_STARTED, 15000);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));

    /* The ack wait (2 s) passes, then the server delivers it again. */
    running r;
    naq_worker *w = make_worker(fx->c, "crash", 1);
    start(fx, &r, w);
    naq_event e = outcome(fx->c, id, NAQ_EVENT_COMPLETED);
    assert_int_equal(e.attempt, 2);
    naq_event_clear(&e);
    assert_int_equal(atomic_load(&calls), 1);

    /* Attempt 1: taken and started by "doomed", and nothing else: no
     * outcome that did not happen. Attempt 2 says it is a second one. */
    naq_event_type types[] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_DEQUEUED,      NAQ_EVENT_STARTED,
                              NAQ_EVENT_DEQUEUED, NAQ_EVENT_RETRY_STARTED, NAQ_EVENT_STARTED,
                              NAQ_EVENT_COMPLETED};
    int attempts[] = {0, 1, 1, 2, 2, 2, 2};
    naq_event_list l = history(fx->c, id);
    int ok = l.count == sizeof types / sizeof *types;
    for (size_t i = 0; ok && i < l.count; i++) {
        ok = l.items[i].type == types[i] && l.items[i].attempt == attempts[i];
        if (ok && l.items[i].attempt > 0)
            ok = strcmp(l.items[i].worker_id, attempts[i] == 1 ? "doomed" : naq_worker_id(w)) == 0;
    }
    naq_event_list_free(&l);
    if (!ok)
        fail_with_history(fx->c, id, "not the history of a killed attempt and a retry");
    stop(&r);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static size_t count_lines(const char *path)
{
    size_t len = 0, lines = 0;
    char *text = read_file(path, &len);
    for (size_t i = 0; text && i < len; i++)
        lines += text[i] == '\n';
    free(text);
    return lines;
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void
three_worker_processes_racing_on_one_queue_run_each_of_10000_jobs_exactly_once(void **state)
{
    fixture *fx = *state;
    char files[RACERS][400];
    pid_t pids[RACERS];
    for (int i = 0; i < RACERS; i++) {
        snprintf(files[i], sizeof files[i], "%s/racer-%d.ids", fx->srv.dir, i);
        pids[i] = spawn_child(&fx->srv, "racer", files[i]);
    }

    /* Enqueued while the racers already pull, in batches. */
    static char ids[RACE_JOBS][NAQ_ID_SIZE];
    static naq_status st[1000];
    naq_job_opts batch[1000];
    for (int i = 0; i < 1000; i++)
        batch[i] = job("race", "mark", NULL);
    for (int k = 0; k < RACE_JOBS; k += 1000) {
        size_t stored = 0;
        if (naq_enqueue_batch(fx->c, batch, 1000, &ids[k], st, &stored) != NAQ_OK)
            fail_msg("batch enqueue: %s", naq_last_error());
        assert_int_equal(stored, 1000);
    }

    int64_t t0 = mono_ms(), deadline = t0 + 100000;
    size_t seen = 0;
    do {
        sleep_ms(100);
        seen = 0;
        for (int i = 0; i < RACERS; i++)
            seen += count_lines(files[i]);
    } while (seen < RACE_JOBS && mono_ms() < deadline);
    /* Every message acknowledged: nothing can be delivered again. */
    while (jobs_left(fx->c) != 0 && mono_ms() < deadline)
        sleep_ms(50);
    int64_t took = mono_ms() - t0;
    assert_int_equal(jobs_left(fx->c), 0);
    for (int i = 0; i < RACERS; i++) {
        kill(pids[i], SIGTERM);
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("racer %d ended with status 0x%x", i, status);
    }

    /* Every id exactly once across the three files. */
    char(*ran)[NAQ_ID_SIZE] = calloc(RACE_JOBS + 1, NAQ_ID_SIZE);
    assert_non_null(ran);
    size_t n = 0;
    size_t per[RACERS] = {0};
    for (int i = 0; i < RACERS; i++) {
        size_t len = 0;
        char *text = read_file(files[i], &len);
        char *save = NULL;
        for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            if (n > RACE_JOBS)
                fail_msg("more than %d runs", RACE_JOBS);
            snprintf(ran[n++], NAQ_ID_SIZE, "%s", line);
            per[i]++;
        }
        free(text);
    }
    qsort(ran, n, NAQ_ID_SIZE, cmp_ids);
    for (size_t i = 1; i < n; i++)
        if (strcmp(ran[i - 1], ran[i]) == 0)
            fail_msg("job %s ran twice", ran[i]);
    qsort(ids, RACE_JOBS, NAQ_ID_SIZE, cmp_ids);
    assert_int_equal(n, RACE_JOBS);
    for (size_t i = 0; i < n; i++)
        if (strcmp(ran[i], ids[i]) != 0)
            fail_msg("job %s was enqueued and never ran (or %s ran and was never enqueued)", ids[i],
                     ran[i]);
    free(ran);
    print_message("10000 jobs over 3 worker processes (concurrency 2, events on) in %lld ms: "
                  "%zu / %zu / %zu per process\n",
                  (long long)took, per[0], per[1], per[2]);
}

/* What a job of the restart test is expected to end with. */
typedef struct {
    char id[NAQ_ID_SIZE];
    naq_event_type final;
} expected_end;

/* Enqueues `count` always-succeeding jobs into jobs[], keeping only those
 * the server acknowledged (a refused enqueue may still be stored when the
 * server comes back; it is not counted, as a user would not count it). */
typedef struct {
    naq_client *c;
    expected_end *jobs;
    int count, acked, refused;
} outage_enqueuer;

static void *enqueue_during_outage(void *arg)
{
    outage_enqueuer *oe = arg;
    for (int i = 0; i < oe->count; i++) {
        naq_job_opts o = job("survive", "flaky", "[0, 5]");
        if (naq_enqueue(oe->c, &o, oe->jobs[oe->acked].id) == NAQ_OK)
            oe->jobs[oe->acked++].final = NAQ_EVENT_COMPLETED;
        else
            oe->refused++;
    }
    return NULL;
}

static void server_killed_mid_run_loses_no_job_and_every_history_ends_in_its_outcome(void **state)
{
    fixture *fx = *state;
    atomic_store(&calls, 0);
    enum { QUEUED = 240, DURING = 60 };
    static expected_end jobs[QUEUED + DURING];
    int n = 0;
    /* A third succeed, a third fail once and succeed on retry, a third
     * fail for good and are dead-lettered. */
    for (int i = 0; i < QUEUED; i++) {
        naq_job_opts o = job("survive", "flaky",
                             i % 3 == 0   ? "[0, 20]"
                             : i % 3 == 1 ? "[1, 20]"
                                          : "[99, 20]");
        o.max_retries = i % 3 == 1 ? 2 : 0;
        o.retry.kind = NAQ_BACKOFF_FIXED;
        o.retry.delay_ms = 100;
        if (naq_enqueue(fx->c, &o, jobs[n].id) != NAQ_OK)
            fail_msg("enqueue: %s", naq_last_error());
        jobs[n++].final = i % 3 == 2 ? NAQ_EVENT_MAX_RETRIES_EXCEEDED : NAQ_EVENT_COMPLETED;
    }
    running a, b;
    start(fx, &a, make_worker(fx->c, "survive", 2));
    start(fx, &b, make_worker(fx->c, "survive", 2));
    while (atomic_load(&calls) < QUEUED / 4)
        sleep_ms(5);

    /* A real outage, kill -9 under load: the workers' pulls fail, their
     * acks wait in the client's reconnect buffer, their events go to the
     * spool; meanwhile more jobs are enqueued (each waits for the server's
     * confirmation). The server comes back on the same store. */
    naq_test_server_kill(&fx->srv);
    outage_enqueuer oe = {fx->c, &jobs[n], DURING, 0, 0};
    pthread_t enqueuer;
    assert_int_equal(pthread_create(&enqueuer, NULL, enqueue_during_outage, &oe), 0);
    sleep_ms(1000);
    naq_test_server_restart(&fx->srv);
    pthread_join(enqueuer, NULL);
    n += oe.acked;
    int refused = oe.refused;

    /* Every job reaches its outcome, and its history says so. */
    for (int i = 0; i < n; i++)
        wait_event(fx->c, jobs[i].id, jobs[i].final, 60000);
    int64_t deadline = mono_ms() + 30000;
    while (jobs_left(fx->c) != 0 && mono_ms() < deadline)
        sleep_ms(50);
    assert_int_equal(jobs_left(fx->c), 0);
    for (int i = 0; i < n; i++) {
        naq_event_list l = history(fx->c, jobs[i].id);
        /* Never "completed" for a job that fails for good, never "failed"
         * for one that always succeeds. */
        for (size_t k = 0; k < l.count; k++) {
            naq_event_type t = l.items[k].type;
            if (jobs[i].final == NAQ_EVENT_MAX_RETRIES_EXCEEDED && t == NAQ_EVENT_COMPLETED)
                fail_with_history(fx->c, jobs[i].id, "a failing job completed");
        }
        naq_event_list_free(&l);
    }
    print_message("%d jobs ended as expected across a server restart (%d enqueues refused "
                  "during it)\n",
                  n, refused);
    stop(&a);
    stop(&b);
}

/* Sorted ids of the racers' files, with their count in *n (heap). */
static char (*read_ids(char files[][400], int nfiles, size_t expect, size_t *n))[NAQ_ID_SIZE]
{
    char(*all)[NAQ_ID_SIZE] = calloc(expect + 16, NAQ_ID_SIZE);
    assert_non_null(all);
    *n = 0;
    for (int i = 0; i < nfiles; i++) {
        size_t len = 0;
        char *text = read_file(files[i], &len);
        for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
            if (*n < expect + 16)
                snprintf(all[(*n)++], NAQ_ID_SIZE, "%s", line);
        free(text);
    }
    qsort(all, *n, NAQ_ID_SIZE, cmp_ids);
    return all;
}

static atomic_int cold_refused;

static void on_cold_done(const char *job_id, naq_status s, const char *error, void *user)
{
    (void)job_id;
    (void)user;
    if (s != NAQ_OK) {
        fprintf(stderr, "enqueue refused: %s\n", error);
        atomic_fetch_add(&cold_refused, 1);
    }
}

/* Issue 8: buckets and streams used to be created on first write, and two
 * workers' first writes raced (one job ran twice, an error was printed).
 * Here nothing exists on the server when the producer and both workers
 * start, all at the same moment. */
static void
on_an_empty_server_a_producer_and_two_workers_starting_together_run_each_job_once(void **state)
{
    fixture *fx = *state;
    naq_test_server cold;
    naq_test_server_start(&cold); /* nobody has connected to it */
    char files[2][400], logs[2][400];
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        snprintf(files[i], sizeof files[i], "%s/cold-%d.ids", fx->srv.dir, i);
        snprintf(logs[i], sizeof logs[i], "%s/cold-%d.log", fx->srv.dir, i);
        pids[i] = spawn_child_logged(&cold, "cold", files[i], logs[i]);
    }
    naq_client *c = naq_test_connect(&cold);
    naq_job_opts o = job("cold", "mark", NULL);
    char id[NAQ_ID_SIZE];
    for (int i = 0; i < COLD_JOBS; i++)
        if (naq_enqueue_async(c, &o, id, on_cold_done, NULL) != NAQ_OK)
            fail_msg("enqueue %d: %s", i, naq_last_error());
    assert_int_equal(naq_enqueue_async_flush(c, 30000), NAQ_OK);
    assert_int_equal(atomic_load(&cold_refused), 0);

    int64_t deadline = mono_ms() + 120000;
    size_t seen = 0;
    do {
        sleep_ms(100);
        seen = count_lines(files[0]) + count_lines(files[1]);
    } while (seen < COLD_JOBS && mono_ms() < deadline);
    while (jobs_left(c) != 0 && mono_ms() < deadline)
        sleep_ms(50);
    assert_int_equal(jobs_left(c), 0);
    for (int i = 0; i < 2; i++) {
        kill(pids[i], SIGTERM);
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("worker %d ended with status 0x%x", i, status);
    }
    size_t n = 0;
    char(*all)[NAQ_ID_SIZE] = read_ids(files, 2, COLD_JOBS, &n);
    for (size_t i = 1; i < n; i++)
        if (strcmp(all[i - 1], all[i]) == 0)
            fail_msg("job %s ran twice", all[i]);
    assert_int_equal(n, COLD_JOBS);
    free(all);
    /* Nothing printed: no error, no "delivered again". */
    for (int i = 0; i < 2; i++) {
        size_t len = 0;
        char *text = read_file(logs[i], &len);
        if (text != NULL && len > 0)
            fail_msg("worker %d printed: %s", i, text);
        free(text);
    }
    naq_client_destroy(c);
    naq_test_server_destroy(&cold);
}

/* Issue 8: the ack goes only after the server confirmed the outcome event
 * and the outcome record. A worker killed right between them and the ack
 * leaves a job whose history has its outcome; its message comes again,
 * and the worker that gets it finds the run recorded and acks it without
 * running it a second time (worker_job.c). */
static void
a_worker_killed_between_its_outcome_and_its_ack_leaves_the_outcome_in_history(void **state)
{
    fixture *fx = *state;
    char file[400];
    snprintf(file, sizeof file, "%s/acker.ids", fx->srv.dir);
    pid_t pid = spawn_child(&fx->srv, "acker", file);
    naq_job_opts o = job("acker", "mark", NULL);
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        fail_msg("the worker was to kill itself before the ack; status 0x%x", status);
    assert_int_equal(count_lines(file), 1);
    /* Its history already has the outcome: confirmed before the ack. */
    naq_event_list l = history(fx->c, id);
    int completed = 0;
    for (size_t i = 0; i < l.count; i++)
        completed += l.items[i].type == NAQ_EVENT_COMPLETED;
    naq_event_list_free(&l);
    if (completed != 1)
        fail_with_history(fx->c, id, "the killed worker's outcome is not in the history");
    /* Not acknowledged: delivered again, to a worker that lives, which
     * settles it without a second run. */
    atomic_store(&calls, 0);
    running r;
    start(fx, &r, make_worker(fx->c, "acker", 1));
    int64_t deadline = mono_ms() + 15000;
    while (jobs_left(fx->c) != 0 && mono_ms() < deadline)
        sleep_ms(20);
    assert_int_equal(jobs_left(fx->c), 0);
    stop(&r);
    assert_int_equal(atomic_load(&calls), 0);
    naq_event last;
    assert_int_equal(naq_job_last_event(fx->c, id, &last), NAQ_OK);
    if (last.type != NAQ_EVENT_COMPLETED)
        fail_with_history(fx->c, id, "the history does not end in the outcome");
    naq_event_clear(&last);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
static const struct CMUnitTest tests[] = {
    T(worker_killed_mid_job_runs_it_again_and_history_shows_both_attempts_truthfully),
    T(three_worker_processes_racing_on_one_queue_run_each_of_10000_jobs_exactly_once),
    T(on_an_empty_server_a_producer_and_two_workers_starting_together_run_each_job_once),
    T(a_worker_killed_between_its_outcome_and_its_ack_leaves_the_outcome_in_history),
    T(server_killed_mid_run_loses_no_job_and_every_history_ends_in_its_outcome),
};

NAQ_TEST_MAIN(tests)
