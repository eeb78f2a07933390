/*
 * test_group.c - consumer groups and the event dead-letter stream against a
 * real nats-server: members in separate processes share the events, one is
 * killed without losing any; a failing handler's event reaches NAQ_EVENT_DLQ
 * after max deliveries with its reason; list and replay, through the library
 * and the CLI.
 */
#include "harness.h"
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Publishes one event like the logger does; returns its stream sequence. */
static uint64_t publish(naq_client *c, naq_event_type type, const char *job, const char *queue)
{
    naq_event e;
    naq_event_init(&e, type);
    naq_id_new(e.event_id);
    snprintf(e.job_id, sizeof e.job_id, "%s", job);
    snprintf(e.queue_name, sizeof e.queue_name, "%s", queue);
    e.timestamp = naq__now();
    char subject[256], *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_event_subject("naq", &e, subject, sizeof subject), NAQ_OK);
    assert_int_equal(naq_event_encode(&e, &json, &len), NAQ_OK);
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, json, (int)len), NATS_OK);
    natsMsgHeader_Set(m, "Nats-Msg-Id", e.event_id);
    natsMsgHeader_Set(m, "Naq-Event-Type", naq_event_type_name(type));
    natsMsgHeader_Set(m, "Naq-Queue", queue);
    jsPubAck *pa = NULL;
    assert_int_equal(js_PublishMsg(&pa, c->ejs, m, NULL, NULL), NATS_OK);
    uint64_t seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    free(json);
    return seq;
}

/* ---- a group of three processes, one killed ---- */

#define MEMBERS 3
#define EVENTS 3000
#define VICTIM 0

static volatile sig_atomic_t member_stop;
static void on_term(int sig)
{
    (void)sig;
    member_stop = 1;
}

typedef struct {
    int fd;
} member_log;

/* "H <event_id>" when the handler starts on an event. */
static int member_handle(const naq_event *e, void *user, char *reason)
{
    (void)reason;
    member_log *l = user;
    char line[NAQ_ID_SIZE + 4];
    int n = snprintf(line, sizeof line, "H %s\n", e->event_id);
    if (write(l->fd, line, (size_t)n) != n)
        return 1;
    sleep_ms(3); /* long enough that the kill lands mid-way */
    return 0;
}

/* "A <event_id>" once the server confirmed the ack (ack_sync). */
static void member_outcome(const naq_event *e, const naq_outcome *o, void *user)
{
    member_log *l = user;
    char line[NAQ_ID_SIZE + 64];
    int n =
        o->kind == NAQ_OUTCOME_HANDLED
            ? snprintf(line, sizeof line, "A %s %d\n", e->event_id, o->deliveries)
            : snprintf(line, sizeof line, "O%d %s %d\n", (int)o->kind, e->event_id, o->deliveries);
    if (write(l->fd, line, (size_t)n) != n)
        _exit(3);
}

/* A member process: its own client and processor; no cmocka in here. */
static void run_member(const char *url, const char *dir, int k)
{
    signal(SIGTERM, on_term);
    /* A failed assertion in the parent must not leave members running. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    char path[512];
    snprintf(path, sizeof path, "%s/member-%d.log", dir, k);
    member_log l = {open(path, O_WRONLY | O_CREAT | O_APPEND, 0644)};
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%s", url);
    cfg.disable_logging = 1;
    naq_client *c = NULL;
    if (l.fd < 0 || naq_client_connect(&cfg, &c) != NAQ_OK) {
        fprintf(stderr, "member %d cannot connect: %s\n", k, naq_last_error());
        _exit(10);
    }
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    o.group = "share";
    o.start = NAQ_START_ALL;
    o.max_concurrent = 4;
    o.max_pending = 32;
    o.ack_wait_ms = 2000;
    o.ack_sync = 1;
    o.on_outcome = member_outcome;
    o.outcome_user = &l;
    naq_processor *p = NULL;
    if (naq_processor_create(c, &o, &p) != NAQ_OK ||
        naq_processor_add_global_handler(p, member_handle, &l, NULL) != NAQ_OK ||
        naq_processor_start(p) != NAQ_OK) {
        fprintf(stderr, "member %d: %s\n", k, naq_last_error());
        _exit(11);
    }
    snprintf(path, sizeof path, "%s/ready-%d", dir, k);
    close(open(path, O_WRONLY | O_CREAT, 0644));
    while (!member_stop)
        sleep_ms(20);
    naq_processor_destroy(p);
    naq_client_destroy(c);
    close(l.fd);
    _exit(0);
}

/* Per event id (e<i>): handlings and confirmed acks per member, and how
 * many of those acks were of the event's first delivery. */
typedef struct {
    unsigned char handled[MEMBERS][EVENTS];
    unsigned char acked[MEMBERS][EVENTS];
    unsigned char acked_first[MEMBERS][EVENTS];
} tally;

static void read_logs(const char *dir, tally *t)
{
    memset(t, 0, sizeof *t);
    for (int k = 0; k < MEMBERS; k++) {
        char path[512], line[256];
        snprintf(path, sizeof path, "%s/member-%d.log", dir, k);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof line, f) != NULL) {
            char kind;
            int id, deliveries = 0;
            if (sscanf(line, "%c e%d %d", &kind, &id, &deliveries) < 2 || id < 0 || id >= EVENTS)
                continue;
            if (kind == 'H' && t->handled[k][id] < 255)
                t->handled[k][id]++;
            if (kind == 'A' && t->acked[k][id] < 255) {
                t->acked[k][id]++;
                t->acked_first[k][id] += deliveries == 1;
            }
        }
        fclose(f);
    }
}

static int count_acked_ids(const tally *t)
{
    int n = 0;
    for (int i = 0; i < EVENTS; i++) {
        int any = 0;
        for (int k = 0; k < MEMBERS; k++)
            any |= t->acked[k][i] > 0;
        n += any;
    }
    return n;
}

static int member_handled(const tally *t, int k)
{
    int n = 0;
    for (int i = 0; i < EVENTS; i++)
        n += t->handled[k][i];
    return n;
}

/* True once the group's consumer has an ack for each of the n events. */
static int group_settled(naq_client *c, uint64_t n)
{
    jsConsumerInfo *ci = NULL;
    if (js_GetConsumerInfo(&ci, c->ejs, "NAQ_JOB_EVENTS", "naq_group_share", NULL, NULL) != NATS_OK)
        return 0;
    int done = ci->NumPending == 0 && ci->NumAckPending == 0 && ci->AckFloor.Stream >= n;
    jsConsumerInfo_Destroy(ci);
    return done;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void
group_of_three_processes_loses_nothing_and_acks_nothing_twice_when_one_is_killed(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    /* Fork before any client exists in this process (nats.c's threads do
     * not survive a fork). */
    pid_t pids[MEMBERS];
    for (int k = 0; k < MEMBERS; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0)
            run_member(srv.url, srv.dir, k);
    }
    for (int k = 0; k < MEMBERS; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/ready-%d", srv.dir, k);
        int st = 0;
        for (int i = 0; i < 500 && !exists(path); i++) {
            if (waitpid(pids[k], &st, WNOHANG) == pids[k])
                fail_msg("member %d exited with status %d before it was ready", k,
                         WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            sleep_ms(20);
        }
        if (!exists(path))
            fail_msg("member %d was not ready within 10 s", k);
    }
    naq_client *c = naq_test_connect(&srv);
    for (int i = 0; i < EVENTS; i++) {
        naq_event e;
        naq_event_init(&e, NAQ_EVENT_STARTED);
        snprintf(e.event_id, sizeof e.event_id, "e%d", i);
        snprintf(e.job_id, sizeof e.job_id, "job-%d", i % 100);
        snprintf(e.queue_name, sizeof e.queue_name, "q");
        assert_int_equal(naq_client_log(c, &e), NAQ_OK);
    }
    assert_int_equal(naq_client_flush_events(c, 10000), NAQ_OK);

    /* Kill one member once it has handled a share, while work remains. */
    tally *t = calloc(1, sizeof *t);
    assert_non_null(t);
    for (int i = 0; i < 1000; i++) {
        read_logs(srv.dir, t);
        if (member_handled(t, VICTIM) >= 150)
            break;
        sleep_ms(5);
    }
    assert_true(member_handled(t, VICTIM) >= 150);
    assert_true(count_acked_ids(t) < EVENTS); /* mid-way */
    kill(pids[VICTIM], SIGKILL);
    waitpid(pids[VICTIM], NULL, 0);

    /* The survivors get everything, including what the victim held: wait
     * until the server has an ack for every event of the group. */
    int settled = 0;
    for (int i = 0; i < 750 && !settled; i++) {
        sleep_ms(20);
        settled = group_settled(c, EVENTS);
    }
    assert_true(settled);
    for (int k = 0; k < MEMBERS; k++) {
        if (k == VICTIM)
            continue;
        kill(pids[k], SIGTERM);
        int st = 0;
        waitpid(pids[k], &st, 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    read_logs(srv.dir, t);

    /* The assertion, stated honestly. Delivery is at least once, so an
     * event the victim had started but not acknowledged is handled again
     * by a survivor: that is the point of the group. What must never
     * happen is an event whose ack the server CONFIRMED (ack_sync: "A" is
     * logged only after that) being handled and acknowledged again.
     *   - none lost: the server holds an ack for every event (above), and
     *     every event was handled by some member;
     *   - none handled twice: no event has two confirmed acks, across all
     *     three members, the victim included;
     *   - an event handled more than once was handled by the victim
     *     without a logged ack;
     *   - an event without any logged ack was handled by the victim, and
     *     there are at most max_concurrent (4) of them: the victim was
     *     killed after the server confirmed their acks and before it wrote
     *     the line (the server has their acks, so nobody got them again).
     * One exception is the server's, not naq's: nats-server 2.9 (issue
     * nats-io/nats-server#4460, fixed in 2.10) can hand one message to two
     * members, both as delivery 1, when a redelivery meets an expiring
     * pull request; delivery counts never say 1 twice otherwise. Such
     * events are counted apart, printed, and must stay rare. */
    int unhandled = 0, twice = 0, redelivered = 0, stray = 0, unlogged = 0, unexplained = 0;
    int server_dups = 0;
    for (int i = 0; i < EVENTS; i++) {
        int acks = 0, first_acks = 0, handlings = 0, members_acking = 0;
        for (int k = 0; k < MEMBERS; k++) {
            acks += t->acked[k][i];
            first_acks += t->acked_first[k][i];
            members_acking += t->acked[k][i] == 1;
            handlings += t->handled[k][i];
        }
        int victim_unacked = t->handled[VICTIM][i] > 0 && t->acked[VICTIM][i] == 0;
        int server_dup = acks > 1 && first_acks == acks && members_acking == acks;
        unhandled += handlings == 0;
        server_dups += server_dup;
        twice += acks > 1 && !server_dup;
        if (acks == 0) {
            unlogged++;
            unexplained += !victim_unacked;
        }
        if (handlings > 1) {
            redelivered += victim_unacked;
            stray += !victim_unacked && !server_dup;
        }
        if ((handlings > 1 && !victim_unacked) || acks > 1 || (acks == 0 && !victim_unacked))
            print_message("event e%d: handled %d/%d/%d acked %d/%d/%d\n", i, t->handled[0][i],
                          t->handled[1][i], t->handled[2][i], t->acked[0][i], t->acked[1][i],
                          t->acked[2][i]);
    }
    print_message("victim handled %d; handled again by survivors: %d; victim acks not logged: "
                  "%d; server duplicates: %d\n",
                  member_handled(t, VICTIM), redelivered, unlogged, server_dups);
    assert_int_equal(unhandled, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(stray, 0);
    assert_int_equal(unexplained, 0);
    assert_true(unlogged <= 4);
    assert_true(server_dups <= 2);
    /* Every member took part. */
    for (int k = 0; k < MEMBERS; k++)
        assert_true(member_handled(t, k) > 0);
    free(t);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

/* ---- the event dead-letter stream ---- */

typedef struct {
    atomic_int calls;
    atomic_int succeed; /* 0: fail every time */
    atomic_int dead, handled;
    naq_outcome_kind last_kind;
    int last_deliveries;
    int64_t retry_in_ms;
} flaky;

static int flaky_handler(const naq_event *e, void *user, char *reason)
{
    flaky *f = user;
    atomic_fetch_add(&f->calls, 1);
    if (atomic_load(&f->succeed))
        return 0;
    snprintf(reason, NAQ_REASON_MAX, "smtp refused job %s", e->job_id);
    return 1;
}

static void flaky_outcome(const naq_event *e, const naq_outcome *o, void *user)
{
    (void)e;
    flaky *f = user;
    f->last_kind = o->kind;
    f->last_deliveries = o->deliveries;
    if (o->kind == NAQ_OUTCOME_RETRY)
        f->retry_in_ms = o->retry_in_ms;
    if (o->kind == NAQ_OUTCOME_DEAD_LETTERED)
        atomic_fetch_add(&f->dead, 1);
    if (o->kind == NAQ_OUTCOME_HANDLED)
        atomic_fetch_add(&f->handled, 1);
}

static int flaky_dead(void *ud)
{
    return atomic_load(&((flaky *)ud)->dead) > 0;
}
static int flaky_handled(void *ud)
{
    return atomic_load(&((flaky *)ud)->handled) > 0;
}

static naq_processor *flaky_member(naq_client *c, flaky *f, const char *group)
{
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    o.group = group;
    o.max_deliveries = 3;
    o.backoff_ms[0] = 50;
    o.backoff_ms[1] = 100;
    o.backoff_len = 2;
    o.on_outcome = flaky_outcome;
    o.outcome_user = f;
    naq_processor *p = NULL;
    assert_int_equal(naq_processor_create(c, &o, &p), NAQ_OK);
    assert_int_equal(naq_processor_add_global_handler(p, flaky_handler, f, NULL), NAQ_OK);
    naq_status s = naq_processor_start(p);
    if (s != NAQ_OK)
        fail_msg("start: %s", naq_last_error());
    return p;
}

static void failing_event_goes_to_the_dlq_after_max_deliveries_and_replay_delivers_it(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    flaky f = {0};
    naq_processor *p = flaky_member(c, &f, "mailer");
    double t0 = naq__now();
    uint64_t seq = publish(c, NAQ_EVENT_FAILED, "job-dead", "emails");
    assert_true(naq_test_wait_for(flaky_dead, &f, 10000));
    double t1 = naq__now();
    assert_int_equal(atomic_load(&f.calls), 3);
    assert_int_equal(f.last_deliveries, 3);
    assert_int_equal(f.retry_in_ms, 100); /* the second backoff before the third delivery */

    naq_event_dlq_entries l;
    assert_int_equal(naq_event_dlq_list(c, NULL, &l), NAQ_OK);
    assert_int_equal(l.count, 1);
    naq_event_dlq_entry *e = &l.items[0];
    assert_string_equal(e->group, "mailer");
    assert_string_equal(e->reason, "smtp refused job job-dead");
    assert_int_equal(e->deliveries, 3);
    assert_string_equal(e->original_subject, "naq.jobs.events.job-dead");
    assert_int_equal(e->original_sequence, seq);
    assert_true(e->failed_at >= t0 && e->failed_at <= t1);
    assert_true(e->event_decoded);
    assert_int_equal(e->event.type, NAQ_EVENT_FAILED);
    assert_string_equal(e->event.job_id, "job-dead");
    uint64_t entry = e->sequence;
    naq_event_dlq_entries_free(&l);

    /* Filters: another group or type lists nothing. */
    naq_event_dlq_filter other = {"billing", NULL, 0};
    assert_int_equal(naq_event_dlq_list(c, &other, &l), NAQ_OK);
    assert_int_equal(l.count, 0);
    naq_event_dlq_entries_free(&l);
    naq_event_dlq_filter completed = {"mailer", "completed", 0};
    assert_int_equal(naq_event_dlq_list(c, &completed, &l), NAQ_OK);
    assert_int_equal(l.count, 0);
    naq_event_dlq_entries_free(&l);
    naq_event_dlq_filter failed = {"mailer", "failed", 0};
    assert_int_equal(naq_event_dlq_list(c, &failed, &l), NAQ_OK);
    assert_int_equal(l.count, 1);
    naq_event_dlq_entries_free(&l);

    /* Replay: the group gets the event again (fresh deliveries), the entry
     * is gone, and the event log is untouched. */
    jsStreamInfo *si = NULL;
    assert_int_equal(js_GetStreamInfo(&si, c->ejs, "NAQ_JOB_EVENTS", NULL, NULL), NATS_OK);
    uint64_t log_msgs = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    atomic_store(&f.succeed, 1);
    assert_int_equal(naq_event_dlq_replay(c, entry), NAQ_OK);
    assert_true(naq_test_wait_for(flaky_handled, &f, 10000));
    assert_int_equal(f.last_deliveries, 1);
    assert_int_equal(naq_event_dlq_list(c, NULL, &l), NAQ_OK);
    assert_int_equal(l.count, 0);
    naq_event_dlq_entries_free(&l);
    assert_int_equal(naq_event_dlq_replay(c, entry), NAQ_ERR_NOT_FOUND);
    assert_int_equal(js_GetStreamInfo(&si, c->ejs, "NAQ_JOB_EVENTS", NULL, NULL), NATS_OK);
    assert_int_equal(si->State.Msgs, log_msgs);
    jsStreamInfo_Destroy(si);

    naq_processor_destroy(p);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void dlq_cli_lists_and_replays_entries(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    flaky f = {0};
    naq_processor *p = flaky_member(c, &f, "cli-group");
    publish(c, NAQ_EVENT_TIMEOUT, "job-cli", "emails");
    assert_true(naq_test_wait_for(flaky_dead, &f, 10000));

    char env_url[128];
    snprintf(env_url, sizeof env_url, "NAQ_URL=%s", srv.url);
    const char *env[] = {env_url, NULL};
    char *out = NULL, *err = NULL;
    const char *list_json[] = {"events",    "dlq",      "list", "--group",
                               "cli-group", "--format", "json", NULL};
    assert_int_equal(naq_test_run_cli(list_json, env, &out, &err), 0);
    assert_non_null(strstr(out, "\"group\":\"cli-group\""));
    assert_non_null(strstr(out, "\"reason\":\"smtp refused job job-cli\""));
    assert_non_null(strstr(out, "\"deliveries\":3"));
    assert_non_null(strstr(out, "\"original_subject\":\"naq.jobs.events.job-cli\""));
    unsigned long long seq = 0;
    const char *at = strstr(out, "\"sequence\":");
    assert_non_null(at);
    seq = strtoull(at + strlen("\"sequence\":"), NULL, 10);
    assert_true(seq > 0);
    free(out);
    free(err);

    const char *list_table[] = {"events", "dlq", "list", NULL};
    assert_int_equal(naq_test_run_cli(list_table, env, &out, &err), 0);
    assert_non_null(strstr(out, "REASON"));
    assert_non_null(strstr(out, "DELIVERIES")); /* the column its help names */
    assert_non_null(strstr(out, "job-cli"));
    assert_non_null(strstr(out, "timeout"));
    free(out);
    free(err);

    /* Usage errors exit 2 with a hint; a missing entry exits 1. */
    const char *no_target[] = {"events", "dlq", "replay", NULL};
    assert_int_equal(naq_test_run_cli(no_target, env, &out, &err), 2);
    assert_non_null(strstr(err, "--seq N, --group G or --all"));
    free(out);
    free(err);
    const char *bad_format[] = {"events", "dlq", "list", "--format", "xml", NULL};
    assert_int_equal(naq_test_run_cli(bad_format, env, &out, &err), 2);
    free(out);
    free(err);
    const char *missing[] = {"events", "dlq", "replay", "--seq", "999999", NULL};
    assert_int_equal(naq_test_run_cli(missing, env, &out, &err), 1);
    assert_non_null(strstr(err, "naq: no dead-letter entry 999999"));
    free(out);
    free(err);

    atomic_store(&f.succeed, 1);
    char seq_text[32];
    snprintf(seq_text, sizeof seq_text, "%llu", seq);
    const char *replay[] = {"events", "dlq", "replay", "--seq", seq_text, NULL};
    assert_int_equal(naq_test_run_cli(replay, env, &out, &err), 0);
    assert_non_null(strstr(out, "replayed 1 dead event"));
    free(out);
    free(err);
    assert_true(naq_test_wait_for(flaky_handled, &f, 10000));
    const char *help[] = {"events", "dlq", "list", "--help", NULL};
    assert_int_equal(naq_test_run_cli(help, env, &out, &err), 0);
    assert_non_null(strstr(out, "usage: naq events dlq list"));
    free(out);
    free(err);

    naq_processor_destroy(p);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void member_with_other_filters_is_refused(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    naq_event_type failed[] = {NAQ_EVENT_FAILED};
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    o.group = "alerts";
    o.types = failed;
    o.ntypes = 1;
    naq_processor *a = NULL, *b = NULL, *same = NULL;
    assert_int_equal(naq_processor_create(c, &o, &a), NAQ_OK);
    assert_int_equal(naq_processor_start(a), NAQ_OK);
    assert_int_equal(naq_processor_create(c, &o, &same), NAQ_OK);
    assert_int_equal(naq_processor_start(same), NAQ_OK); /* same filters: a second member */
    o.types = NULL;
    o.ntypes = 0;
    assert_int_equal(naq_processor_create(c, &o, &b), NAQ_OK);
    assert_int_equal(naq_processor_start(b), NAQ_ERR_EXISTS);
    assert_non_null(strstr(naq_last_error(), "other filters"));
    naq_processor_destroy(b);
    naq_processor_destroy(same);
    naq_processor_destroy(a);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

/* A stopping member hands back what it queued; another member runs it. */
typedef struct {
    atomic_int n;
} tick;

static int slow_tick(const naq_event *e, void *user, char *reason)
{
    (void)e;
    (void)reason;
    sleep_ms(20);
    atomic_fetch_add(&((tick *)user)->n, 1);
    return 0;
}

static int ticked_1(void *ud)
{
    return atomic_load(&((tick *)ud)->n) >= 1;
}

static void stopping_member_hands_queued_events_to_the_others(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    naq_processor_opts o;
    naq_processor_opts_init(&o);
    o.group = "handoff";
    o.start = NAQ_START_ALL;
    o.max_concurrent = 1;
    o.max_pending = 50;
    o.ack_wait_ms = 10000;
    for (int i = 0; i < 20; i++)
        publish(c, NAQ_EVENT_STARTED, "job-h", "q");
    naq_processor *first = NULL, *second = NULL;
    tick a = {0}, b = {0};
    assert_int_equal(naq_processor_create(c, &o, &first), NAQ_OK);
    assert_int_equal(naq_processor_add_global_handler(first, slow_tick, &a, NULL), NAQ_OK);
    assert_int_equal(naq_processor_start(first), NAQ_OK);
    assert_true(naq_test_wait_for(ticked_1, &a, 5000));
    naq_processor_stop(first); /* it holds the rest: they go back at once */
    naq_processor_stats st;
    naq_processor_get_stats(first, &st);
    assert_true(st.released > 0);
    assert_int_equal(st.pending, 0);
    assert_int_equal(naq_processor_create(c, &o, &second), NAQ_OK);
    assert_int_equal(naq_processor_add_global_handler(second, slow_tick, &b, NULL), NAQ_OK);
    assert_int_equal(naq_processor_start(second), NAQ_OK);
    /* Released events come at once, not after the 10 s ack wait. */
    tick *counts[] = {&a, &b};
    int64_t t0 = naq__mono_ms();
    while (atomic_load(&counts[0]->n) + atomic_load(&counts[1]->n) < 20 &&
           naq__mono_ms() - t0 < 5000)
        sleep_ms(10);
    assert_int_equal(atomic_load(&a.n) + atomic_load(&b.n), 20);
    naq_processor_destroy(second);
    naq_processor_destroy(first);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

/* ---- autoscaling a member's handler pool ---- */

#define BURST 200

typedef struct {
    pthread_mutex_t mu;
    char seen[BURST][NAQ_ID_SIZE];
    int nseen, repeats;
    atomic_int running, peak;
} burst_log;

static int burst_handle(const naq_event *e, void *user, char *reason)
{
    (void)reason;
    burst_log *l = user;
    int now = atomic_fetch_add(&l->running, 1) + 1;
    int peak = atomic_load(&l->peak);
    while (now > peak && !atomic_compare_exchange_weak(&l->peak, &peak, now))
        ;
    pthread_mutex_lock(&l->mu);
    int repeat = 0;
    for (int i = 0; i < l->nseen; i++)
        repeat |= strcmp(l->seen[i], e->event_id) == 0;
    if (repeat)
        l->repeats++;
    else if (l->nseen < BURST)
        snprintf(l->seen[l->nseen++], NAQ_ID_SIZE, "%s", e->event_id);
    pthread_mutex_unlock(&l->mu);
    sleep_ms(20);
    atomic_fetch_sub(&l->running, 1);
    return 0;
}

typedef struct {
    pthread_mutex_t mu;
    int lag, idle, other;
    char member[NAQ_ID_SIZE];
} scale_log;

/* The member's worker_status_changed events, seen by a live processor. */
static int scale_event(const naq_event *e, void *user, char *reason)
{
    (void)reason;
    scale_log *l = user;
    if (strcmp(e->worker_type, "processor") != 0 || e->details_json == NULL)
        return 0;
    pthread_mutex_lock(&l->mu);
    snprintf(l->member, sizeof l->member, "%s", e->worker_id);
    if (strstr(e->details_json, "\"reason\":\"lag\"") != NULL &&
        strstr(e->details_json, "\"old_concurrency\"") != NULL)
        l->lag++;
    else if (strstr(e->details_json, "\"reason\":\"idle\"") != NULL)
        l->idle++;
    else
        l->other++;
    pthread_mutex_unlock(&l->mu);
    return 0;
}

static int all_handled(void *ud)
{
    burst_log *l = ud;
    pthread_mutex_lock(&l->mu);
    int n = l->nseen;
    pthread_mutex_unlock(&l->mu);
    return n >= BURST;
}

static int back_to_one(void *ud)
{
    naq_processor_stats st;
    naq_processor_get_stats(ud, &st);
    return st.concurrency == 1;
}

static void
autoscaled_member_grows_for_a_burst_and_shrinks_back_running_each_event_once(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);

    scale_log sl = {.mu = PTHREAD_MUTEX_INITIALIZER};
    naq_event_type changed[] = {NAQ_EVENT_WORKER_STATUS_CHANGED};
    naq_processor_opts lo;
    naq_processor_opts_init(&lo);
    lo.types = changed;
    lo.ntypes = 1;
    naq_processor *watch = NULL;
    assert_int_equal(naq_processor_create(c, &lo, &watch), NAQ_OK);
    assert_int_equal(naq_processor_add_global_handler(watch, scale_event, &sl, NULL), NAQ_OK);
    assert_int_equal(naq_processor_start(watch), NAQ_OK);

    naq_processor_opts o;
    naq_processor_opts_init(&o);
    o.group = "scaled";
    o.start = NAQ_START_ALL;
    naq_event_type started[] = {NAQ_EVENT_STARTED};
    o.types = started;
    o.ntypes = 1;
    o.autoscale_min = 1;
    o.autoscale_max = 8;
    o.max_concurrent = 100; /* ignored while autoscaling */
    burst_log *bl = calloc(1, sizeof *bl);
    assert_non_null(bl);
    pthread_mutex_init(&bl->mu, NULL);
    for (int i = 0; i < BURST; i++)
        publish(c, NAQ_EVENT_STARTED, "job-burst", "q");
    naq_processor *p = NULL;
    assert_int_equal(naq_processor_create(c, &o, &p), NAQ_OK);
    naq_processor_stats st;
    naq_processor_get_stats(p, &st);
    assert_int_equal(st.concurrency, 1);
    assert_int_equal(naq_processor_add_global_handler(p, burst_handle, bl, NULL), NAQ_OK);
    assert_int_equal(naq_processor_start(p), NAQ_OK);

    /* At one slot the burst takes 4 s; grown, well under. */
    assert_true(naq_test_wait_for(all_handled, bl, 20000));
    int peak = atomic_load(&bl->peak);
    assert_true(peak > 1);
    assert_true(peak <= 8);
    /* Idle now: back to min within a few shrink windows. */
    assert_true(naq_test_wait_for(back_to_one, p, 6 * NAQ_AUTOSCALE_SHRINK_MS));
    naq_processor_get_stats(p, &st);
    assert_int_equal(st.handled, BURST);
    assert_int_equal(bl->repeats, 0);
    assert_int_equal(bl->nseen, BURST);

    /* Every change was an event of the member, with its reason. */
    naq_client_flush_events(c, 5000);
    int64_t t0 = naq__mono_ms();
    int lag = 0, idle = 0;
    while (naq__mono_ms() - t0 < 5000) {
        pthread_mutex_lock(&sl.mu);
        lag = sl.lag;
        idle = sl.idle;
        pthread_mutex_unlock(&sl.mu);
        if (lag >= 1 && idle >= 1)
            break;
        sleep_ms(50);
    }
    assert_true(lag >= 1);
    assert_true(idle >= 1);
    assert_int_equal(sl.other, 0);
    assert_non_null(strstr(sl.member, "scaled-"));
    assert_string_equal(sl.member, naq_processor_member_id(p));
    /* ... and its Prometheus figures show the pool's size now. */
    naq_metrics_process mp = {c, NULL, NULL, p};
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(naq_metrics_render_process(&mp, &text, &len), NAQ_OK);
    char want[256];
    snprintf(want, sizeof want, "naq_processor_concurrency{member_id=\"%s\"} 1\n",
             naq_processor_member_id(p));
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "naq_processor_events_handled_total{member_id=\"%s\"} %d\n",
             naq_processor_member_id(p), BURST);
    assert_non_null(strstr(text, want));
    free(text);

    naq_processor_destroy(p);
    naq_processor_destroy(watch);
    pthread_mutex_destroy(&bl->mu);
    free(bl);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(
        group_of_three_processes_loses_nothing_and_acks_nothing_twice_when_one_is_killed),
    cmocka_unit_test(failing_event_goes_to_the_dlq_after_max_deliveries_and_replay_delivers_it),
    cmocka_unit_test(dlq_cli_lists_and_replays_entries),
    cmocka_unit_test(member_with_other_filters_is_refused),
    cmocka_unit_test(stopping_member_hands_queued_events_to_the_others),
    cmocka_unit_test(autoscaled_member_grows_for_a_burst_and_shrinks_back_running_each_event_once),
};

NAQ_TEST_MAIN(tests)
