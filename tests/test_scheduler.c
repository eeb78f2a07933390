/*
 * test_scheduler.c - the leader-elected scheduler against a real
 * nats-server: schedules fire on time with new jobs, one-offs fire once,
 * repeat / pause / resume / misfire policies hold, exactly one of several
 * candidates leads, a SIGKILLed leader is replaced with no due time lost
 * or doubled, and 20,000 schedules cost no reads per tick.
 *
 * Schedulers run on threads (each with its own client), except where a
 * leader must die by SIGKILL: then they are child processes, this very
 * binary re-executed with NAQ_TEST_SCHEDULER_URL set (see child_main).
 */
#include "schedule_support.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- child */

static naq_scheduler *volatile child_scheduler;

static void child_on_term(int sig)
{
    (void)sig;
    if (child_scheduler != NULL)
        naq_scheduler_stop(child_scheduler);
}

/* When started as a child scheduler, run one and never reach cmocka. */
__attribute__((constructor)) static void child_main(void)
{
    const char *url = getenv("NAQ_TEST_SCHEDULER_URL");
    if (url == NULL)
        return;
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%s", url);
    snprintf(cfg.spool_dir, sizeof cfg.spool_dir, "none");
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK) {
        fprintf(stderr, "child: %s\n", naq_last_error());
        _exit(3);
    }
    naq_scheduler_opts o;
    naq_scheduler_opts_init(&o);
    o.scheduler_id = getenv("NAQ_TEST_SCHEDULER_ID");
    o.lease_ms = atoll(getenv("NAQ_TEST_SCHEDULER_LEASE_MS"));
    naq_scheduler *s = NULL;
    if (naq_scheduler_create(c, &o, &s) != NAQ_OK) {
        fprintf(stderr, "child: %s\n", naq_last_error());
        _exit(4);
    }
    child_scheduler = s;
    signal(SIGTERM, child_on_term);
    naq_scheduler_run(s);
    naq_scheduler_destroy(s);
    naq_client_destroy(c);
    _exit(0);
}

static pid_t spawn_child(const naq_test_server *srv, const char *id, int64_t lease_ms)
{
    char url[128], sid[128], lease[64], log[300];
    snprintf(url, sizeof url, "NAQ_TEST_SCHEDULER_URL=%s", srv->url);
    snprintf(sid, sizeof sid, "NAQ_TEST_SCHEDULER_ID=%s", id);
    snprintf(lease, sizeof lease, "NAQ_TEST_SCHEDULER_LEASE_MS=%lld", (long long)lease_ms);
    snprintf(log, sizeof log, "%s/%s.log", srv->dir, id);
    const char *env[] = {url, sid, lease, NULL};
    return naq_test_spawn_self("test_scheduler-child", env, log);
}

static void stop_child(pid_t pid, int sig)
{
    kill(pid, sig);
    int st = 0;
    waitpid(pid, &st, 0);
    if (sig == SIGTERM && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fail_msg("child scheduler %d ended badly (status %d)", (int)pid, st);
}

/* ---------------------------------------------------------------- fixture */

typedef struct {
    naq_test_server srv;
    naq_client *c;
    raw_conn raw;
    event_set *es;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    naq_test_server_start(&fx->srv);
    fx->c = naq_test_connect(&fx->srv);
    raw_open(&fx->raw, &fx->srv);
    fx->es = calloc(1, sizeof *fx->es);
    assert_non_null(fx->es);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    event_set_clear(fx->es);
    free(fx->es);
    raw_close(&fx->raw);
    naq_client_destroy(fx->c);
    naq_test_server_destroy(&fx->srv);
    free(fx);
    return 0;
}

/* The events stored on naq.schedules.events.<id> (into fx->es). */
static event_set *events_of(fixture *fx, const char *id)
{
    char subject[256];
    snprintf(subject, sizeof subject, "naq.schedules.events.%s", id);
    event_set_clear(fx->es);
    subject_events(&fx->raw, subject, fx->es);
    return fx->es;
}

/* The due time (ms) in a job id "<name>-<due_ms>". */
static int64_t due_of(const char *job_id)
{
    const char *dash = strrchr(job_id, '-');
    assert_non_null(dash);
    return atoll(dash + 1);
}

typedef struct {
    fixture *fx;
    const char *queue;
    size_t want;
} queue_wait;

static int queue_has(void *ud)
{
    queue_wait *w = ud;
    job_set js;
    queue_jobs(&w->fx->raw, w->queue, &js);
    return js.n >= w->want;
}

static void wait_jobs(fixture *fx, const char *queue, size_t want, int64_t timeout_ms)
{
    queue_wait w = {fx, queue, want};
    if (!naq_test_wait_for(queue_has, &w, timeout_ms)) {
        job_set js;
        queue_jobs(&fx->raw, queue, &js);
        fail_msg("queue %s holds %zu jobs after %lld ms, expected %zu", queue, js.n,
                 (long long)timeout_ms, want);
    }
}

static naq_schedule get(fixture *fx, const char *name)
{
    naq_schedule s;
    if (naq_schedule_get(fx->c, name, &s) != NAQ_OK)
        fail_msg("get %s: %s", name, naq_last_error());
    return s;
}

/* ---------------------------------------------------------------- firing */

static void interval_schedule_fires_each_due_time_within_a_second_with_new_job_ids(void **state)
{
    fixture *fx = *state;
    naq_schedule s;
    add_every(fx->c, "every1s", "iv", 1000, -1, NAQ_MISFIRE_RUN_ONCE, &s);
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    wait_jobs(fx, "iv", 3, 6000);
    sched_runner_stop(&r);

    job_set js;
    queue_jobs(&fx->raw, "iv", &js);
    assert_true(js.n >= 3);
    for (size_t i = 0; i < js.n; i++) {
        int64_t due = due_of(js.id[i]);
        /* Each due time is one of the schedule's: creation + k seconds. */
        assert_int_equal((due - s.created_at_ms) % 1000, 0);
        assert_true(due > s.created_at_ms);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(js.id[i], js.id[k]);
        /* On time: the job was enqueued within 1 s of its due time, and
         * never before it. The 0.1 s of slack is one tick: the scheduler
         * looks for due work every 100 ms. */
        double late = js.enqueued_at[i] - (double)due / 1000.0;
        if (late < 0 || late > 1.1)
            fail_msg("job %s enqueued %.3f s after its due time", js.id[i], late);
        if (i > 0)
            assert_int_equal(due - due_of(js.id[i - 1]), 1000); /* none skipped */
    }
    /* The schedule's own events name each job. */
    event_set *es = events_of(fx, "every1s");
    assert_int_equal(count_type(es, NAQ_EVENT_SCHEDULER_TRIGGERED), js.n);
    for (size_t i = 0; i < es->n; i++) {
        if (es->ev[i].type == NAQ_EVENT_SCHEDULER_TRIGGERED)
            assert_true(job_set_has(&js, es->ev[i].job_id));
    }
    naq_schedule_clear(&s);
}

static void at_schedule_fires_once_and_then_is_finished(void **state)
{
    fixture *fx = *state;
    naq_schedule s;
    naq_schedule_init(&s);
    snprintf(s.name, sizeof s.name, "once");
    snprintf(s.queue, sizeof s.queue, "at");
    snprintf(s.function, sizeof s.function, "noop");
    s.kind = NAQ_SCHEDULE_AT;
    s.at_ms = (int64_t)(now_s() * 1000) + 1200;
    assert_int_equal(naq_schedule_add(fx->c, &s), NAQ_OK);
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    wait_jobs(fx, "at", 1, 4000);
    sleep_s(1.0); /* a second trigger would have happened by now */
    sched_runner_stop(&r);
    job_set js;
    queue_jobs(&fx->raw, "at", &js);
    assert_int_equal(js.n, 1);
    char want[NAQ_ID_SIZE];
    naq_schedule_job_id("once", s.at_ms, want);
    assert_string_equal(js.id[0], want);
    double late = js.enqueued_at[0] - (double)s.at_ms / 1000.0;
    if (late < 0 || late > 1.1)
        fail_msg("one-off job enqueued %.3f s after its time", late);
    naq_schedule after = get(fx, "once");
    assert_int_equal(after.next_run_ms, 0);
    assert_int_equal(after.last_run_ms, s.at_ms);
    naq_schedule_clear(&after);
    naq_schedule_clear(&s);
}

static void repeat_n_stops_after_n_triggers(void **state)
{
    fixture *fx = *state;
    add_every(fx->c, "thrice", "rep", 300, 3, NAQ_MISFIRE_RUN_ONCE, NULL);
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    wait_jobs(fx, "rep", 3, 4000);
    sleep_s(1.0); /* three more due times pass */
    sched_runner_stop(&r);
    job_set js;
    queue_jobs(&fx->raw, "rep", &js);
    assert_int_equal(js.n, 3);
    naq_schedule s = get(fx, "thrice");
    assert_int_equal(s.repeat, 0);
    assert_int_equal(s.next_run_ms, 0);
    assert_int_equal(s.last_run_ms, due_of(js.id[2]));
    naq_schedule_clear(&s);
}

static void paused_schedule_does_not_fire_and_a_resumed_one_does(void **state)
{
    fixture *fx = *state;
    add_every(fx->c, "nap", "pz", 300, -1, NAQ_MISFIRE_RUN_ALL, NULL);
    assert_int_equal(naq_schedule_pause(fx->c, "nap"), NAQ_OK);
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    sleep_s(1.5); /* five due times pass while paused */
    job_set js;
    queue_jobs(&fx->raw, "pz", &js);
    assert_int_equal(js.n, 0);
    assert_true(sched_stats(&r).ticks > 5);
    double resumed = now_s();
    assert_int_equal(naq_schedule_resume(fx->c, "nap"), NAQ_OK);
    wait_jobs(fx, "pz", 2, 3000);
    sched_runner_stop(&r);
    queue_jobs(&fx->raw, "pz", &js);
    /* Nothing is caught up from the paused time. */
    for (size_t i = 0; i < js.n; i++)
        assert_true((double)due_of(js.id[i]) / 1000.0 > resumed);
}

static naq_status move_and_speed_up(naq_schedule *s, void *user)
{
    (void)user;
    snprintf(s->queue, sizeof s->queue, "new");
    s->every_ms = 300;
    return NAQ_OK;
}

static void modified_schedule_fires_with_its_new_settings(void **state)
{
    fixture *fx = *state;
    add_every(fx->c, "mover", "old", 60000, -1, NAQ_MISFIRE_RUN_ONCE, NULL);
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    double start = now_s();
    while (sched_stats(&r).schedules < 1 && now_s() - start < 5)
        sleep_s(0.02); /* the leader holds it with the old settings */
    assert_int_equal(sched_stats(&r).schedules, 1);
    assert_int_equal(naq_schedule_modify(fx->c, "mover", move_and_speed_up, NULL, NULL), NAQ_OK);
    wait_jobs(fx, "new", 2, 3000);
    sched_runner_stop(&r);
    job_set js;
    queue_jobs(&fx->raw, "old", &js);
    assert_int_equal(js.n, 0);
}

static void schedules_keep_firing_and_changing_across_a_server_restart(void **state)
{
    fixture *fx = *state;
    add_every(fx->c, "sturdy", "old", 300, -1, NAQ_MISFIRE_RUN_ONCE, NULL);
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    wait_jobs(fx, "old", 2, 3000);
    naq_test_server_restart(&fx->srv);
    /* A change made after the restart reaches the leader (its watch of the
     * schedules survived), and triggers go on. */
    naq_status st = NAQ_ERR_CONNECT;
    for (int i = 0; i < 50 && st != NAQ_OK; i++) {
        st = naq_schedule_modify(fx->c, "sturdy", move_and_speed_up, NULL, NULL);
        if (st != NAQ_OK)
            sleep_s(0.1); /* our own client may still be reconnecting */
    }
    assert_int_equal(st, NAQ_OK);
    wait_jobs(fx, "new", 2, 8000);
    sched_runner_stop(&r);
}

/* ---------------------------------------------------------------- leaders */

typedef struct {
    sched_runner *r;
    int n;
    int max_leaders; /* most candidates seen leading at the same time */
    int samples_with_one;
} leader_watch;

static void sample_leaders(leader_watch *w, double seconds)
{
    double end = now_s() + seconds;
    while (now_s() < end) {
        int leaders = 0;
        for (int i = 0; i < w->n; i++)
            leaders += sched_stats(&w->r[i]).leader;
        if (leaders > w->max_leaders)
            w->max_leaders = leaders;
        w->samples_with_one += leaders == 1;
        sleep_s(0.01);
    }
}

static int leader_index(sched_runner *r, int n)
{
    for (int i = 0; i < n; i++)
        if (r[i].s != NULL && sched_stats(&r[i]).leader)
            return i;
    return -1;
}

/* n candidates: exactly one leads; when it stops, another takes over. */
static void elect_among(fixture *fx, int n)
{
    sched_runner r[3];
    char ids[3][16];
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "cand-%d", i);
        sched_runner_start(&r[i], &fx->srv, ids[i], 0, 0); /* 6 s lease */
    }
    leader_watch w = {r, n, 0, 0};
    sample_leaders(&w, 3.0);
    assert_int_equal(w.max_leaders, 1);
    assert_true(w.samples_with_one > 100);
    int first = leader_index(r, n);
    assert_true(first >= 0);
    char holder[NAQ_ID_SIZE];
    lock_holder(&fx->raw, holder);
    assert_string_equal(holder, ids[first]);

    /* A graceful stop releases the lease: another leads within about a
     * second (candidates try every second), not after the 6 s lease. */
    double stopped = now_s();
    sched_runner_stop(&r[first]);
    int next = -1;
    while (next < 0 && now_s() - stopped < 2.5) {
        next = leader_index(r, n);
        sleep_s(0.01);
    }
    assert_true(next >= 0 && next != first);
    lock_holder(&fx->raw, holder);
    assert_string_equal(holder, ids[next]);
    for (int i = 0; i < n; i++)
        sched_runner_stop(&r[i]);

    /* The leader events tell the same story: one election per leader, and
     * the first one lost the lead at its shutdown. */
    event_set *es = events_of(fx, ids[first]);
    assert_int_equal(count_type(es, NAQ_EVENT_SCHEDULER_LEADER_ELECTED), 1);
    assert_int_equal(count_type(es, NAQ_EVENT_SCHEDULER_LEADER_LOST), 1);
    es = events_of(fx, ids[next]);
    assert_int_equal(count_type(es, NAQ_EVENT_SCHEDULER_LEADER_ELECTED), 1);
    for (int i = 0; i < n; i++) {
        if (i == first || i == next)
            continue;
        es = events_of(fx, ids[i]);
        assert_int_equal(count_type(es, NAQ_EVENT_SCHEDULER_LEADER_ELECTED), 0);
    }
}

static void two_schedulers_elect_exactly_one_leader(void **state)
{
    elect_among(*state, 2);
}
static void three_schedulers_elect_exactly_one_leader(void **state)
{
    elect_among(*state, 3);
}

typedef struct {
    fixture *fx;
    char holder[NAQ_ID_SIZE];
    const char * not ;
} holder_wait;

static int someone_else_holds(void *ud)
{
    holder_wait *w = ud;
    lock_holder(&w->fx->raw, w->holder);
    return w->holder[0] != '\0' && (w->not == NULL || strcmp(w->holder, w->not ) != 0);
}

static void killed_leader_is_replaced_and_no_due_time_is_lost_or_doubled(void **state)
{
    fixture *fx = *state;
    const int64_t lease_ms = 3000;
    naq_schedule s;
    add_every(fx->c, "steady", "ha", 1000, -1, NAQ_MISFIRE_RUN_ONCE, &s);
    pid_t pids[2] = {spawn_child(&fx->srv, "child-0", lease_ms),
                     spawn_child(&fx->srv, "child-1", lease_ms)};
    holder_wait w = {fx, "", NULL};
    assert_true(naq_test_wait_for(someone_else_holds, &w, 5000));
    int leader = strcmp(w.holder, "child-0") == 0 ? 0 : 1;
    wait_jobs(fx, "ha", 3, 6000);

    /* Kill it between two due times (the trigger and its events of the
     * previous second are stored by then: the logger publishes within
     * 100 ms). */
    double now = now_s();
    double phase = fmod(now * 1000.0 - (double)s.created_at_ms, 1000.0) / 1000.0;
    sleep_s(phase < 0.5 ? 0.5 - phase : 1.5 - phase);
    double killed = now_s();
    stop_child(pids[leader], SIGKILL);
    w.not = leader == 0 ? "child-0" : "child-1";
    assert_true(naq_test_wait_for(someone_else_holds, &w, lease_ms + 3000));
    double took_over = now_s() - killed;
    if (took_over > (double)lease_ms / 1000.0 + 2.0)
        fail_msg("takeover after %.2f s", took_over);

    /* Let the new leader work, catching up what fell into the handover. */
    job_set before;
    queue_jobs(&fx->raw, "ha", &before);
    wait_jobs(fx, "ha", before.n + 3, 8000);
    stop_child(pids[1 - leader], SIGTERM);

    /* Every due time from the first to the last has exactly one job... */
    job_set js;
    queue_jobs(&fx->raw, "ha", &js);
    int64_t lo = INT64_MAX, hi = 0;
    for (size_t i = 0; i < js.n; i++) {
        int64_t due = due_of(js.id[i]);
        lo = due < lo ? due : lo;
        hi = due > hi ? due : hi;
    }
    assert_int_equal(lo, s.created_at_ms + 1000);
    assert_int_equal((size_t)((hi - lo) / 1000 + 1), js.n);
    for (size_t i = 0; i < js.n; i++)
        for (size_t k = 0; k < i; k++)
            assert_true(due_of(js.id[i]) != due_of(js.id[k]));
    assert_true(killed * 1000.0 > (double)lo && killed * 1000.0 < (double)hi);
    /* ...and exactly one scheduler_triggered event, whichever leader
     * triggered it. */
    event_set *es = events_of(fx, "steady");
    assert_int_equal(count_type(es, NAQ_EVENT_SCHEDULER_TRIGGERED), js.n);
    for (size_t i = 0; i < js.n; i++) {
        int seen = 0;
        for (size_t k = 0; k < es->n; k++)
            seen += es->ev[k].type == NAQ_EVENT_SCHEDULER_TRIGGERED &&
                    strcmp(es->ev[k].job_id, js.id[i]) == 0;
        if (seen != 1)
            fail_msg("due time of %s was triggered %d times", js.id[i], seen);
    }
    naq_schedule_clear(&s);
}

static void cli_scheduler_leads_until_sigterm_then_hands_the_lease_over(void **state)
{
    fixture *fx = *state;
    char log[300];
    snprintf(log, sizeof log, "%s/cli-scheduler.log", fx->srv.dir);
    const char *argv[] = {"scheduler", "--id", "cli-a", "--url", fx->srv.url, NULL};
    const char *env[] = {"NAQ_SPOOL_DIR=none", NULL};
    pid_t pid = naq_test_spawn_cli(argv, env, log);
    holder_wait w = {fx, "", NULL};
    assert_true(naq_test_wait_for(someone_else_holds, &w, 5000));
    assert_string_equal(w.holder, "cli-a");
    kill(pid, SIGTERM);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* Released, not left to expire. */
    char holder[NAQ_ID_SIZE];
    lock_holder(&fx->raw, holder);
    assert_string_equal(holder, "");
    event_set *es = events_of(fx, "cli-a");
    assert_int_equal(count_type(es, NAQ_EVENT_SCHEDULER_LEADER_ELECTED), 1);
    assert_int_equal(count_type(es, NAQ_EVENT_SCHEDULER_LEADER_LOST), 1);
}

/* ---------------------------------------------------------------- misfires */

static int has_due(const job_set *js, int64_t due)
{
    for (size_t i = 0; i < js->n; i++)
        if (due_of(js->id[i]) == due)
            return 1;
    return 0;
}

static void misfire_policies_decide_what_runs_after_a_downtime(void **state)
{
    fixture *fx = *state;
    naq_schedule once, all, skip;
    add_every(fx->c, "once", "mf-once", 2000, -1, NAQ_MISFIRE_RUN_ONCE, &once);
    add_every(fx->c, "all", "mf-all", 2000, -1, NAQ_MISFIRE_RUN_ALL, &all);
    add_every(fx->c, "skip", "mf-skip", 2000, -1, NAQ_MISFIRE_SKIP, &skip);
    /* No scheduler until 5.2 s after creation, then one with a grace of
     * 1 s: due times +2 s and +4 s are misfires (only more so if the
     * leader is slow to start), +6 s is still ahead. It stays a normal
     * trigger unless the leader needs more than 1.8 s to look at it. */
    int64_t t0 = once.created_at_ms;
    sleep_s((double)(t0 + 5200) / 1000.0 - now_s());
    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 1000);
    wait_jobs(fx, "mf-skip", 1, 4000);
    wait_jobs(fx, "mf-all", 3, 4000);
    sched_runner_stop(&r);

    job_set js;
    queue_jobs(&fx->raw, "mf-all", &js); /* every missed due time */
    assert_true(has_due(&js, all.created_at_ms + 2000));
    assert_true(has_due(&js, all.created_at_ms + 4000));
    assert_true(has_due(&js, all.created_at_ms + 6000));
    queue_jobs(&fx->raw, "mf-once", &js); /* one job for the misfires: the oldest */
    assert_true(has_due(&js, once.created_at_ms + 2000));
    assert_false(has_due(&js, once.created_at_ms + 4000));
    assert_true(has_due(&js, once.created_at_ms + 6000));
    queue_jobs(&fx->raw, "mf-skip", &js); /* none for the misfires */
    assert_false(has_due(&js, skip.created_at_ms + 2000));
    assert_false(has_due(&js, skip.created_at_ms + 4000));
    assert_true(has_due(&js, skip.created_at_ms + 6000));
    event_set *es = events_of(fx, "once");
    int misfired = 0;
    for (size_t i = 0; i < es->n; i++)
        if (es->ev[i].type == NAQ_EVENT_SCHEDULER_TRIGGERED && es->ev[i].details_json &&
            strstr(es->ev[i].details_json, "\"misfire\":true"))
            misfired++;
    assert_int_equal(misfired, 1);
    naq_schedule_clear(&once);
    naq_schedule_clear(&all);
    naq_schedule_clear(&skip);
}

/* ---------------------------------------------------------------- scale */

static void twenty_thousand_schedules_cost_no_reads_per_tick(void **state)
{
    fixture *fx = *state;
    const int n = 20000;
    /* Written straight into the bucket (as naq_schedule_add would store
     * them) to keep the set-up fast: 20,000 hourly schedules... */
    kvStore *kv = NULL;
    naq_client *c2 = fx->c;
    add_every(c2, "warmup", "scale", 3600 * 1000, -1, NAQ_MISFIRE_RUN_ONCE, NULL);
    assert_int_equal(js_KeyValue(&kv, fx->raw.js, "naq_schedules"), NATS_OK);
    naq_schedule s;
    naq_schedule_init(&s);
    snprintf(s.queue, sizeof s.queue, "scale");
    snprintf(s.function, sizeof s.function, "noop");
    s.kind = NAQ_SCHEDULE_EVERY;
    s.every_ms = 3600 * 1000;
    s.created_at_ms = (int64_t)(now_s() * 1000);
    s.next_run_ms = s.created_at_ms + s.every_ms;
    for (int i = 1; i < n; i++) {
        snprintf(s.name, sizeof s.name, "hourly-%05d", i);
        char *json = NULL, subject[200];
        size_t len = 0;
        assert_int_equal(naq_schedule_encode(&s, &json, &len), NAQ_OK);
        snprintf(subject, sizeof subject, "$KV.naq_schedules.%s", s.name);
        assert_int_equal(js_PublishAsync(fx->raw.js, subject, json, (int)len, NULL), NATS_OK);
        free(json);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    assert_int_equal(js_PublishAsyncComplete(fx->raw.js, &po), NATS_OK);
    kvStore_Destroy(kv);
    naq_schedule_clear(&s);
    /* ...and one that fires every 200 ms among them. */
    add_every(fx->c, "busy", "scale", 200, -1, NAQ_MISFIRE_RUN_ONCE, NULL);

    sched_runner r;
    sched_runner_start(&r, &fx->srv, "sched-a", 0, 0);
    double start = now_s();
    while (sched_stats(&r).schedules < (uint64_t)n + 1 && now_s() - start < 20)
        sleep_s(0.05);
    naq_scheduler_stats a = sched_stats(&r);
    assert_int_equal(a.schedules, n + 1);
    sleep_s(2.0);
    naq_scheduler_stats b = sched_stats(&r);
    sched_runner_stop(&r);

    uint64_t ticks = b.ticks - a.ticks, triggers = b.triggers - a.triggers;
    assert_true(ticks >= 10);
    assert_true(triggers >= 5);
    /* The whole bucket came through the watch at election... */
    assert_true(a.watch_entries >= (uint64_t)n + 1);
    /* ...and a tick reads nothing: no single-key read at all, and the only
     * writes are the busy schedule's triggers and the lease renewals. */
    assert_int_equal(b.kv_reads - a.kv_reads, 0);
    if (b.kv_writes - a.kv_writes > triggers + 3)
        fail_msg("%llu KV writes in %llu ticks for %llu triggers",
                 (unsigned long long)(b.kv_writes - a.kv_writes), (unsigned long long)ticks,
                 (unsigned long long)triggers);
    /* Over the whole run the watch brought each schedule once plus, for
     * the busy one, the echo of each update the leader wrote itself. */
    if (b.watch_entries > (uint64_t)n + 1 + b.triggers)
        fail_msg("%llu watch entries for %d schedules and %llu triggers",
                 (unsigned long long)b.watch_entries, n + 1, (unsigned long long)b.triggers);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(
        interval_schedule_fires_each_due_time_within_a_second_with_new_job_ids, setup, teardown),
    cmocka_unit_test_setup_teardown(at_schedule_fires_once_and_then_is_finished, setup, teardown),
    cmocka_unit_test_setup_teardown(repeat_n_stops_after_n_triggers, setup, teardown),
    cmocka_unit_test_setup_teardown(paused_schedule_does_not_fire_and_a_resumed_one_does, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(modified_schedule_fires_with_its_new_settings, setup, teardown),
    cmocka_unit_test_setup_teardown(schedules_keep_firing_and_changing_across_a_server_restart,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(two_schedulers_elect_exactly_one_leader, setup, teardown),
    cmocka_unit_test_setup_teardown(three_schedulers_elect_exactly_one_leader, setup, teardown),
    cmocka_unit_test_setup_teardown(killed_leader_is_replaced_and_no_due_time_is_lost_or_doubled,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(cli_scheduler_leads_until_sigterm_then_hands_the_lease_over,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(misfire_policies_decide_what_runs_after_a_downtime, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(twenty_thousand_schedules_cost_no_reads_per_tick, setup,
                                    teardown),
};

NAQ_TEST_MAIN(tests)
