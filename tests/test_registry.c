/*
 * test_registry.c - the worker registry (worker/registry.c) against a real
 * nats-server: lifecycle and job events, the live entry in KV naq_workers,
 * heartbeats, a killed worker dropping out after its TTL, gone workers from
 * the event log, system events, and `naq workers`.
 *
 * The killed worker is a real process: this test binary run again with
 * NAQ_TEST_REGISTRY_CHILD set, which a constructor turns into a worker
 * registry that never stops (see child_main) before cmocka starts.
 */
#include "harness.h"
#include "worker/worker.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the child worker process ---- */

/* Connects with the NAQ_* environment, registers NAQ_TEST_WORKER_ID
 * running one job, and waits to be killed. */
static int child_main(void)
{
    naq_config cfg;
    naq_config_init(&cfg);
    if (naq_config_from_env(&cfg) != NAQ_OK)
        return 2;
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK)
        return 3;
    const char *queues[] = {"x", NULL};
    naq__registry_info info = {getenv("NAQ_TEST_WORKER_ID"), queues, 2};
    naq__registry *r = NULL;
    if (naq__registry_start(c, &info, &r) != NAQ_OK)
        return 4;
    naq__registry_job_started(r, "job-of-the-killed-worker", "x");
    for (;;)
        pause();
}

__attribute__((constructor)) static void maybe_child(void)
{
    if (getenv("NAQ_TEST_REGISTRY_CHILD") != NULL)
        _exit(child_main());
}

static pid_t spawn_child(const naq_test_server *s, const char *worker_id, const char *interval)
{
    char url[128], id[160], hb[64], spool[320];
    snprintf(url, sizeof url, "NAQ_URL=%s", s->url);
    snprintf(id, sizeof id, "NAQ_TEST_WORKER_ID=%s", worker_id);
    snprintf(hb, sizeof hb, "NAQ_HEARTBEAT_INTERVAL=%s", interval);
    snprintf(spool, sizeof spool, "NAQ_SPOOL_DIR=%s/child-spool", s->dir);
    const char *env[] = {"NAQ_TEST_REGISTRY_CHILD=1", url, id, hb, spool, NULL};
    return naq_test_spawn_self("test_registry", env, NULL);
}

/* ---- fixtures and helpers ---- */

typedef struct {
    naq_test_server srv;
    naq_client *c;
} fixture;

static naq_client *connect_with_interval(const naq_test_server *s, int64_t interval_ms)
{
    naq_config cfg;
    naq_test_config(s, &cfg);
    cfg.heartbeat_interval_ms = interval_ms;
    naq_client *c = NULL;
    naq_status st = naq_client_connect(&cfg, &c);
    if (st != NAQ_OK)
        fail_msg("connect: %s", naq_last_error());
    return c;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    naq_test_server_start(&f->srv);
    f->c = connect_with_interval(&f->srv, 200);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    naq_client_destroy(f->c);
    naq_test_server_destroy(&f->srv);
    free(f);
    return 0;
}

static const char *const QUEUES[] = {"emails", "reports", NULL};

static naq__registry *start(naq_client *c, const char *id)
{
    naq__registry_info info = {id, QUEUES, 3};
    naq__registry *r = NULL;
    naq_status st = naq__registry_start(c, &info, &r);
    if (st != NAQ_OK)
        fail_msg("registry start: %s", naq_last_error());
    return r;
}

static int copy_event(const naq_event *e, void *ud)
{
    naq_event_list *l = ud;
    l->items = realloc(l->items, (l->count + 1) * sizeof *l->items);
    assert_non_null(l->items);
    assert_int_equal(naq_event_copy(&l->items[l->count++], e), NAQ_OK);
    return 0;
}

typedef struct {
    naq_event_list l;
    const char *worker_id;
} worker_filter;

/* Keeps the events of one worker: those carrying its id, and system
 * events naming it in their details (where alone they name it). */
static int copy_worker_event(const naq_event *e, void *ud)
{
    worker_filter *f = ud;
    int mine = strcmp(e->worker_id, f->worker_id) == 0;
    if (!mine && naq_event_type_category(e->type) == NAQ_CATEGORY_SYSTEM && e->details_json) {
        assert_string_equal(e->worker_id, "");
        json_t *d = json_loads(e->details_json, 0, NULL);
        const char *id = json_string_value(json_object_get(d, "worker_id"));
        mine = id != NULL && strcmp(id, f->worker_id) == 0;
        json_decref(d);
    }
    return mine ? copy_event(e, &f->l) : 0;
}

/* Every event of this worker (its own, its jobs' worker_assigned /
 * released, and the system events of its process), in stream order, after
 * flushing the logger. */
static naq_event_list worker_events(naq_client *c, const char *worker_id)
{
    assert_int_equal(naq_client_flush_events(c, 5000), NAQ_OK);
    worker_filter f = {{0}, worker_id};
    naq_stream_opts o = {0};
    o.tail = 100000;
    assert_int_equal(naq_events_stream(c, &o, copy_worker_event, &f), NAQ_OK);
    return f.l;
}

/* Index of the n-th (0-based) event of type t at or after `from`, or -1. */
static int find(const naq_event_list *l, naq_event_type t, size_t from)
{
    for (size_t i = from; i < l->count; i++)
        if (l->items[i].type == t)
            return (int)i;
    return -1;
}

static int count_type(const naq_event_list *l, naq_event_type t)
{
    int n = 0;
    for (size_t i = 0; i < l->count; i++)
        n += l->items[i].type == t;
    return n;
}

static json_t *details(const naq_event *e)
{
    assert_non_null(e->details_json);
    json_t *d = json_loads(e->details_json, 0, NULL);
    assert_non_null(d);
    return d;
}

static void assert_detail_str(const naq_event *e, const char *key, const char *want)
{
    json_t *d = details(e);
    const char *got = json_string_value(json_object_get(d, key));
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: details.%s is '%s', want '%s' (%s)", naq_event_type_name(e->type), key,
                 got ? got : "(absent)", want, e->details_json);
    json_decref(d);
}

static long long detail_int(const naq_event *e, const char *key)
{
    json_t *d = details(e);
    json_t *v = json_object_get(d, key);
    if (!json_is_number(v))
        fail_msg("%s: details.%s is absent (%s)", naq_event_type_name(e->type), key,
                 e->details_json);
    long long n = (long long)json_number_value(v);
    json_decref(d);
    return n;
}

/* Index of the status change from -> to, or -1. */
static int find_change(const naq_event_list *l, const char *from, const char *to)
{
    for (size_t i = 0; i < l->count; i++) {
        if (l->items[i].type != NAQ_EVENT_WORKER_STATUS_CHANGED)
            continue;
        json_t *d = details(&l->items[i]);
        int match = strcmp(json_string_value(json_object_get(d, "from")), from) == 0 &&
                    strcmp(json_string_value(json_object_get(d, "to")), to) == 0;
        json_decref(d);
        if (match)
            return (int)i;
    }
    return -1;
}

/* The live entry of worker id (filled into *out when given), or 0. */
static int live_entry(naq_client *c, const char *id, naq_worker_info *out)
{
    naq_worker_info_list l;
    assert_int_equal(naq_workers_list(c, &l), NAQ_OK);
    int found = 0;
    for (size_t i = 0; i < l.count; i++) {
        if (strcmp(l.items[i].worker_id, id) != 0)
            continue;
        found = 1;
        if (out != NULL) { /* steal it */
            *out = l.items[i];
            l.items[i].queues = l.items[i].current_job_ids = NULL;
        }
    }
    naq_worker_info_list_free(&l);
    return found;
}

/* Frees one entry taken out of a list by live_entry(). */
static void info_free(naq_worker_info *w)
{
    naq_worker_info_list l = {malloc(sizeof *w), 1, 0};
    assert_non_null(l.items);
    l.items[0] = *w;
    naq_worker_info_list_free(&l);
    memset(w, 0, sizeof *w);
}

static size_t strv_len(char **v)
{
    size_t n = 0;
    while (v != NULL && v[n] != NULL)
        n++;
    return n;
}

typedef struct {
    naq_client *c;
    const char *id;
    naq_event_type type;
    int at_least;
    const char *status; /* registry status, when set */
    int active;         /* registry active_jobs, when > 0 */
} wait_arg;

static int has_events(void *ud)
{
    wait_arg *a = ud;
    naq_event_list l = worker_events(a->c, a->id);
    int ok = count_type(&l, a->type) >= a->at_least;
    naq_event_list_free(&l);
    return ok;
}

static int entry_has_status(void *ud)
{
    wait_arg *a = ud;
    naq_worker_info w;
    if (!live_entry(a->c, a->id, &w))
        return 0;
    int ok = strcmp(naq_worker_status_name(w.status), a->status) == 0 &&
             (a->active <= 0 || w.active_jobs == a->active);
    info_free(&w);
    return ok;
}

static int entry_processed_one(void *ud)
{
    wait_arg *a = ud;
    naq_worker_info w;
    if (!live_entry(a->c, a->id, &w))
        return 0;
    int ok = w.processed == 1 && w.status == NAQ_WORKER_STATUS_IDLE;
    info_free(&w);
    return ok;
}

static int entry_processed_three(void *ud)
{
    wait_arg *a = ud;
    naq_worker_info w;
    if (!live_entry(a->c, a->id, &w))
        return 0;
    int ok = w.processed == 3 && w.status == NAQ_WORKER_STATUS_IDLE;
    info_free(&w);
    return ok;
}

static int entry_present(void *ud)
{
    wait_arg *a = ud;
    return live_entry(a->c, a->id, NULL);
}

static int entry_gone(void *ud)
{
    return !entry_present(ud);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- start and stop ---- */

static void start_logs_startup_events_and_registers_the_worker(void **state)
{
    fixture *f = *state;
    naq__registry *r = start(f->c, "w-start");

    naq_worker_info w;
    assert_true(live_entry(f->c, "w-start", &w)); /* registered before start returns */
    assert_string_equal(w.worker_id, "w-start");
    assert_string_equal(naq_worker_status_name(w.status), "idle");
    assert_true(w.live);
    assert_int_equal(w.pid, getpid());
    assert_int_equal(w.concurrency, 3);
    assert_int_equal(strv_len(w.queues), 2);
    assert_string_equal(w.queues[0], "emails");
    assert_string_equal(w.queues[1], "reports");
    assert_int_equal(w.active_jobs, 0);
    assert_int_equal(strv_len(w.current_job_ids), 0);
    assert_int_equal(w.heartbeat_interval_ms, 200);
    assert_true(w.hostname[0] != '\0');
    assert_true(w.started_at > now_s() - 60 && w.started_at <= now_s());
    assert_true(w.last_heartbeat >= w.started_at);
    info_free(&w);

    naq_event_list l = worker_events(f->c, "w-start");
    int sys = find(&l, NAQ_EVENT_SYSTEM_STARTUP, 0);
    int started = find(&l, NAQ_EVENT_WORKER_STARTED, 0);
    int to_idle = find_change(&l, "starting", "idle");
    assert_true(sys >= 0 && started > sys && to_idle > started);
    assert_detail_str(&l.items[sys], "process", "worker");
    assert_detail_str(&l.items[sys], "worker_id", "w-start");
    assert_true(strstr(l.items[sys].nats_subject, "naq.system.events") != NULL);
    const naq_event *e = &l.items[started];
    assert_string_equal(e->nats_subject, "naq.workers.events.w-start");
    assert_string_equal(e->worker_type, "c");
    assert_int_equal(detail_int(e, "pid"), getpid());
    assert_int_equal(detail_int(e, "concurrency"), 3);
    assert_int_equal(detail_int(e, "active_jobs"), 0);
    assert_int_equal(detail_int(e, "processed"), 0);
    assert_int_equal(detail_int(e, "failed"), 0);
    json_t *d = details(e);
    assert_int_equal(json_array_size(json_object_get(d, "queues")), 2);
    assert_true(json_is_array(json_object_get(d, "current_job_ids")));
    assert_true(json_is_string(json_object_get(d, "hostname")));
    assert_true(json_is_number(json_object_get(d, "uptime_s")));
    json_decref(d);
    naq_event_list_free(&l);
    naq__registry_stop(r, "graceful", 0);
}

static void stop_logs_stopping_stopped_and_shutdown_and_removes_the_entry(void **state)
{
    fixture *f = *state;
    naq__registry *r = start(f->c, "w-stop");
    naq__registry_stop(r, "forced", 2);
    assert_false(live_entry(f->c, "w-stop", NULL));

    naq_event_list l = worker_events(f->c, "w-stop");
    int stopping = find_change(&l, "idle", "stopping");
    int stopped = find_change(&l, "stopping", "stopped");
    int ev = find(&l, NAQ_EVENT_WORKER_STOPPED, 0);
    int sys = find(&l, NAQ_EVENT_SYSTEM_SHUTDOWN, 0);
    assert_true(stopping >= 0 && stopped > stopping && ev > stopped && sys > ev);
    assert_detail_str(&l.items[ev], "how", "forced");
    assert_int_equal(detail_int(&l.items[ev], "handed_back"), 2);
    assert_detail_str(&l.items[ev], "status", "stopped");
    assert_detail_str(&l.items[sys], "process", "worker");
    naq_event_list_free(&l);
}

static void stopping_hook_marks_the_entry_stopping_before_stop(void **state)
{
    fixture *f = *state;
    naq__registry *r = start(f->c, "w-drain");
    naq__registry_job_started(r, "job-draining", "emails");
    naq__registry_stopping(r);
    wait_arg a = {f->c, "w-drain", 0, 0, "stopping", 0};
    assert_true(naq_test_wait_for(entry_has_status, &a, 5000));
    naq__registry_job_finished(r, "job-draining", "emails", 1);
    naq__registry_stop(r, "graceful", 0);

    naq_event_list l = worker_events(f->c, "w-drain");
    assert_true(find_change(&l, "busy", "stopping") >= 0);
    assert_true(find_change(&l, "stopping", "stopped") >= 0);
    assert_int_equal(find_change(&l, "busy", "idle"), -1); /* draining is not idle */
    assert_int_equal(count_type(&l, NAQ_EVENT_WORKER_STATUS_CHANGED), 4);
    naq_event_list_free(&l);
}

/* ---- jobs ---- */

static void jobs_log_assigned_and_released_on_the_job_and_busy_then_idle(void **state)
{
    fixture *f = *state;
    naq__registry *r = start(f->c, "w-jobs");
    naq__registry_job_started(r, "job-a", "emails");
    naq__registry_job_started(r, "job-b", "reports");

    wait_arg a = {f->c, "w-jobs", 0, 0, "busy", 2};
    assert_true(naq_test_wait_for(entry_has_status, &a, 5000));
    naq_worker_info w;
    assert_true(live_entry(f->c, "w-jobs", &w));
    assert_int_equal(w.active_jobs, 2);
    assert_int_equal(strv_len(w.current_job_ids), 2);
    assert_string_equal(w.current_job_ids[0], "job-a");
    assert_string_equal(w.current_job_ids[1], "job-b");
    info_free(&w);

    naq__registry_job_finished(r, "job-a", "emails", 1);
    naq__registry_job_finished(r, "job-b", "reports", 0);
    a.type = NAQ_EVENT_WORKER_IDLE;
    a.at_least = 1;
    assert_true(naq_test_wait_for(has_events, &a, 5000));
    a.status = "idle";
    a.active = 0;
    assert_true(naq_test_wait_for(entry_has_status, &a, 5000));
    assert_true(live_entry(f->c, "w-jobs", &w));
    assert_int_equal(w.active_jobs, 0);
    assert_int_equal(w.processed, 2);
    assert_int_equal(w.failed, 1);
    assert_int_equal(strv_len(w.current_job_ids), 0);
    info_free(&w);

    naq_event_list h;
    assert_int_equal(naq_client_flush_events(f->c, 5000), NAQ_OK);
    assert_int_equal(naq_job_history(f->c, "job-a", &h), NAQ_OK);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.items[0].type, NAQ_EVENT_WORKER_ASSIGNED);
    assert_int_equal(h.items[1].type, NAQ_EVENT_WORKER_RELEASED);
    assert_string_equal(h.items[0].worker_id, "w-jobs");
    assert_string_equal(h.items[0].queue_name, "emails");
    assert_string_equal(h.items[1].worker_id, "w-jobs");
    assert_string_equal(h.items[1].queue_name, "emails");
    assert_string_equal(h.items[1].details_json, "{\"succeeded\":true}");
    naq_event_list_free(&h);
    assert_int_equal(naq_job_history(f->c, "job-b", &h), NAQ_OK);
    assert_string_equal(h.items[1].details_json, "{\"succeeded\":false}");
    naq_event_list_free(&h);

    naq_event_list l = worker_events(f->c, "w-jobs");
    int to_busy = find_change(&l, "idle", "busy");
    int busy = find(&l, NAQ_EVENT_WORKER_BUSY, 0);
    int to_idle = find_change(&l, "busy", "idle");
    int idle = find(&l, NAQ_EVENT_WORKER_IDLE, 0);
    assert_true(to_busy >= 0 && busy > to_busy && to_idle > busy && idle > to_idle);
    assert_string_equal(l.items[busy].job_id, "job-a"); /* the job that made it busy */
    assert_int_equal(detail_int(&l.items[idle], "processed"), 2);
    assert_int_equal(detail_int(&l.items[idle], "failed"), 1);
    assert_int_equal(count_type(&l, NAQ_EVENT_WORKER_BUSY), 1);
    naq_event_list_free(&l);
    naq__registry_stop(r, "graceful", 0);
}

static void back_to_back_jobs_keep_the_worker_busy_without_flapping(void **state)
{
    fixture *f = *state;
    naq__registry *r = start(f->c, "w-stream");
    char id[32];
    for (int i = 0; i < 50; i++) { /* as a worker fed a stream of short jobs */
        snprintf(id, sizeof id, "job-%d", i);
        naq__registry_job_started(r, id, "emails");
        naq__registry_job_finished(r, id, "emails", 1);
    }
    wait_arg a = {f->c, "w-stream", NAQ_EVENT_WORKER_IDLE, 1, NULL, 0};
    assert_true(naq_test_wait_for(has_events, &a, 5000));
    naq_event_list l = worker_events(f->c, "w-stream");
    assert_int_equal(count_type(&l, NAQ_EVENT_WORKER_BUSY), 1);
    assert_int_equal(count_type(&l, NAQ_EVENT_WORKER_IDLE), 1);
    int idle = find(&l, NAQ_EVENT_WORKER_IDLE, 0);
    assert_int_equal(detail_int(&l.items[idle], "processed"), 50);
    naq_event_list_free(&l);
    naq__registry_stop(r, "graceful", 0);
}

static void a_job_handed_back_at_a_stop_is_released_but_not_counted(void **state)
{
    fixture *f = *state;
    naq__registry *r = start(f->c, "w-handback");
    naq__registry_job_started(r, "job-back", "emails");
    naq__registry_stopping(r);
    naq__registry_job_finished(r, "job-back", "emails", -1);
    naq__registry_stop(r, "forced", 1);
    assert_int_equal(naq_client_flush_events(f->c, 5000), NAQ_OK);

    naq_event_list h;
    assert_int_equal(naq_job_history(f->c, "job-back", &h), NAQ_OK);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.items[1].type, NAQ_EVENT_WORKER_RELEASED);
    assert_string_equal(h.items[1].details_json, "{\"succeeded\":false,\"handed_back\":true}");
    naq_event_list_free(&h);
    naq_event_list l = worker_events(f->c, "w-handback");
    int ev = find(&l, NAQ_EVENT_WORKER_STOPPED, 0);
    assert_true(ev >= 0);
    assert_int_equal(detail_int(&l.items[ev], "processed"), 0);
    assert_int_equal(detail_int(&l.items[ev], "failed"), 0);
    assert_int_equal(detail_int(&l.items[ev], "active_jobs"), 0);
    assert_int_equal(detail_int(&l.items[ev], "handed_back"), 1);
    naq_event_list_free(&l);
}

static void error_logs_worker_error_with_type_and_message(void **state)
{
    fixture *f = *state;
    naq__registry *r = start(f->c, "w-err");
    naq__registry_error(r, "ConsumerLost", "consumer naq_emails_p2 was deleted; re-creating it");
    naq_event_list l = worker_events(f->c, "w-err");
    int i = find(&l, NAQ_EVENT_WORKER_ERROR, 0);
    assert_true(i >= 0);
    assert_string_equal(l.items[i].error_type, "ConsumerLost");
    assert_string_equal(l.items[i].error_message,
                        "consumer naq_emails_p2 was deleted; re-creating it");
    assert_detail_str(&l.items[i], "status", "idle");
    naq_event_list_free(&l);
    naq__registry_stop(r, "graceful", 0);
}

/* ---- heartbeats and the TTL ---- */

static void heartbeats_refresh_the_entry_past_its_ttl_and_log_worker_heartbeat(void **state)
{
    fixture *f = *state; /* interval 200 ms: the entry lives 600 ms without one */
    naq__registry *r = start(f->c, "w-beat");
    naq_worker_info w;
    assert_true(live_entry(f->c, "w-beat", &w));
    double first = w.last_heartbeat;
    info_free(&w);

    wait_arg a = {f->c, "w-beat", NAQ_EVENT_WORKER_HEARTBEAT, 5, NULL, 0};
    assert_true(naq_test_wait_for(has_events, &a, 10000)); /* 1 s of heartbeats: > the TTL */
    assert_true(live_entry(f->c, "w-beat", &w));
    assert_true(w.last_heartbeat > first + 0.5);
    info_free(&w);

    naq_event_list l = worker_events(f->c, "w-beat");
    int i = find(&l, NAQ_EVENT_WORKER_HEARTBEAT, 0);
    int j = find(&l, NAQ_EVENT_WORKER_HEARTBEAT, (size_t)i + 1);
    assert_true(i >= 0 && j > i);
    json_t *di = details(&l.items[i]), *dj = details(&l.items[j]);
    assert_true(json_number_value(json_object_get(dj, "uptime_s")) >
                json_number_value(json_object_get(di, "uptime_s")));
    json_decref(di);
    json_decref(dj);
    assert_detail_str(&l.items[j], "status", "idle");
    naq_event_list_free(&l);
    naq__registry_stop(r, "graceful", 0);
}

/* What the library said through naq_log_set_handler. */
typedef struct {
    pthread_mutex_t mu;
    char text[2048];
    int warnings;
} heard;

static void hear(naq_log_level level, const char *msg, void *user)
{
    heard *h = user;
    pthread_mutex_lock(&h->mu);
    size_t len = strlen(h->text);
    snprintf(h->text + len, sizeof h->text - len, "%s|", msg);
    if (level == NAQ_LOG_WARN)
        h->warnings++;
    pthread_mutex_unlock(&h->mu);
}

static void a_bucket_made_with_another_ttl_is_kept(void **state)
{
    fixture *f = *state;
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = NAQ_WORKERS_BUCKET;
    kc.TTL = 60 * 1000000000LL; /* 60 s, in nanoseconds */
    kvStore *kv = NULL;
    assert_int_equal(js_CreateKeyValue(&kv, f->c->js, &kc), NATS_OK);

    /* The note goes to the program's log handler, and nothing to stderr. */
    heard h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    naq_log_set_handler(hear, &h);
    char path[] = "/tmp/naq-test-reg-stderr-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    naq__registry *r = start(f->c, "w-ttl");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    naq_log_set_handler(NULL, NULL);
    char said[1024] = "";
    ssize_t n = pread(fd, said, sizeof said - 1, 0);
    close(fd);
    unlink(path);
    said[n > 0 ? n : 0] = '\0';
    if (said[0] != '\0')
        fail_msg("the library wrote to stderr: '%s'", said);
    if (strstr(h.text, "keeps entries for 60000 ms") == NULL || strstr(h.text, "600 ms") == NULL)
        fail_msg("expected a note about the bucket's TTL in the log handler, got: '%s'", h.text);
    assert_int_equal(h.warnings, 1);
    assert_null(strchr(h.text, '\n')); /* one line per message */

    kvStatus *st = NULL;
    assert_int_equal(kvStore_Status(&st, kv), NATS_OK);
    assert_int_equal(kvStatus_TTL(st), 60 * 1000000000LL);
    kvStatus_Destroy(st);
    kvStore_Destroy(kv);
    assert_true(live_entry(f->c, "w-ttl", NULL));
    naq__registry_stop(r, "graceful", 0);
}

static void the_registry_drops_a_killed_worker_after_its_ttl(void **state)
{
    fixture *f = *state;
    pid_t pid = spawn_child(&f->srv, "w-killed", "300ms"); /* TTL 900 ms */
    wait_arg a = {f->c, "w-killed", 0, 0, "busy", 0};
    if (!naq_test_wait_for(entry_has_status, &a, 10000)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the child worker did not register");
    }
    naq_worker_info w;
    assert_true(live_entry(f->c, "w-killed", &w));
    assert_int_equal(w.pid, pid);
    assert_int_equal(w.active_jobs, 1);
    assert_string_equal(w.current_job_ids[0], "job-of-the-killed-worker");
    info_free(&w);

    /* `naq workers` lists it while it lives. */
    const char *argv[] = {"workers", "--url", f->srv.url, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(argv, NULL, &out, &err), 0);
    if (strstr(out, "w-killed") == NULL || strstr(out, "busy") == NULL ||
        strstr(out, "job-of-the-killed-worker") == NULL)
        fail_msg("naq workers: '%s' (stderr '%s')", out, err);
    free(out);
    free(err);

    assert_int_equal(kill(pid, SIGKILL), 0);
    waitpid(pid, NULL, 0);
    int64_t killed = mono_ms();
    assert_true(naq_test_wait_for(entry_gone, &a, 3 * 300 + 3000));
    int64_t took = mono_ms() - killed;
    if (took > 3 * 300 + 3000)
        fail_msg("the entry went after %lld ms", (long long)took);

    /* The event log still knows it: gone, never said goodbye. */
    naq_worker_info_list seen;
    assert_int_equal(naq_workers_seen(f->c, (int64_t)((now_s() - 60) * 1000), &seen), NAQ_OK);
    int found = 0;
    for (size_t i = 0; i < seen.count; i++) {
        if (strcmp(seen.items[i].worker_id, "w-killed") != 0)
            continue;
        found = 1;
        assert_false(seen.items[i].live);
        assert_true(seen.items[i].last_event != NAQ_EVENT_WORKER_STOPPED);
        assert_int_equal(seen.items[i].status, NAQ_WORKER_STATUS_LOST);
        assert_int_equal(seen.items[i].pid, pid);
        assert_true(seen.items[i].last_seen > now_s() - 60);
    }
    assert_true(found);
    naq_worker_info_list_free(&seen);

    const char *argv2[] = {"workers", "--show-inactive", "--url", f->srv.url, NULL};
    assert_int_equal(naq_test_run_cli(argv2, NULL, &out, &err), 0);
    char *line = strstr(out, "w-killed");
    if (line == NULL || strstr(line, "lost") == NULL || strstr(line, "gone, last seen") == NULL)
        fail_msg("naq workers --show-inactive: '%s' (stderr '%s')", out, err);
    free(out);
    free(err);

    /* The JSON says the same as the table: one state model. */
    const char *json[] = {"workers", "--show-inactive", "--format", "json",
                          "--url",   f->srv.url,        NULL};
    assert_int_equal(naq_test_run_cli(json, NULL, &out, &err), 0);
    line = strstr(out, "\"worker_id\":\"w-killed\"");
    char *eol = line ? strchr(line, '\n') : NULL;
    if (eol != NULL)
        *eol = '\0';
    if (line == NULL || strstr(line, "\"status\":\"lost\"") == NULL ||
        strstr(line, "\"live\":false") == NULL)
        fail_msg("naq workers --show-inactive --format json: '%s'", out);
    free(out);
    free(err);

    /* And so do the events, which naq top and naq events workers read. */
    naq_worker_activity *act = NULL;
    size_t nact = 0;
    assert_int_equal(naq_events_workers(f->c, now_s() - 60, &act, &nact), NAQ_OK);
    int in_events = 0;
    for (size_t i = 0; i < nact; i++) {
        if (strcmp(act[i].worker_id, "w-killed") == 0) {
            in_events = 1;
            assert_string_equal(naq_worker_status_name(act[i].status), "lost");
        }
    }
    assert_true(in_events);
    free(act);
}

/* ---- a real worker ---- */

typedef struct {
    naq_client *c;
    const char *job_id;
} job_wait;

static int job_released(void *ud)
{
    job_wait *j = ud;
    naq_event_list h;
    naq_status st = naq_job_history(j->c, j->job_id, &h);
    int done = st == NAQ_OK && find(&h, NAQ_EVENT_WORKER_RELEASED, 0) >= 0;
    naq_event_list_free(&h);
    return done;
}

/* A whole (small) file as a string, or NULL. */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    char *buf = calloc(1, 65536);
    if (buf != NULL)
        buf[fread(buf, 1, 65535, fp)] = '\0';
    fclose(fp);
    return buf;
}

/* Issue 14: the exit summary said "failed 0" after a cancelled and an
 * expired job while `naq workers` said otherwise. One definition: failed =
 * processed but not completed, in every view. */
static void every_view_counts_a_cancelled_and_an_expired_job_as_failed(void **state)
{
    fixture *f = *state;
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "sum";
    o.function = NAQ_EXEC_FUNCTION;
    o.args_json = "{\"argv\":[\"true\"]}";
    char expired[NAQ_ID_SIZE], cancelled[NAQ_ID_SIZE], done[NAQ_ID_SIZE];
    o.ttl_ms = 50;
    assert_int_equal(naq_enqueue(f->c, &o, expired), NAQ_OK);
    o.ttl_ms = 0;
    assert_int_equal(naq_enqueue(f->c, &o, cancelled), NAQ_OK);
    assert_int_equal(naq_job_cancel(f->c, cancelled, NULL), NAQ_OK);
    assert_int_equal(naq_enqueue(f->c, &o, done), NAQ_OK);
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL); /* the first one's TTL passes in its queue */

    char url[128], spool[320], log[320];
    snprintf(url, sizeof url, "NAQ_URL=%s", f->srv.url);
    snprintf(spool, sizeof spool, "NAQ_SPOOL_DIR=%s/sum-spool", f->srv.dir);
    snprintf(log, sizeof log, "%s/sum.log", f->srv.dir);
    const char *env[] = {url, spool, NULL};
    const char *argv[] = {"worker", "-q", "sum", "--id", "w-sum", NULL};
    pid_t pid = naq_test_spawn_cli(argv, env, log);
    wait_arg a = {f->c, "w-sum", 0, 0, "idle", 0};
    int counted = naq_test_wait_for(entry_processed_three, &a, 10000);
    naq_worker_info w;
    int live = live_entry(f->c, "w-sum", &w);
    kill(pid, SIGTERM);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!counted || !live)
        fail_msg("the registry did not count 3 jobs (see %s)", log);
    assert_int_equal(w.processed, 3);
    assert_int_equal(w.failed, 2);
    info_free(&w);

    char *text = slurp(log);
    if (text == NULL || strstr(text, "stopped: processed 3 (completed 1, failed 2)") == NULL)
        fail_msg("naq worker's summary: %s", text ? text : "(no output)");
    free(text);

    const char *events[] = {"events", "workers", "--since",  "10m", "--format",
                            "json",   "--url",   f->srv.url, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(events, NULL, &out, &err), 0);
    char *line = strstr(out, "\"w-sum\"");
    if (line == NULL || strstr(line, "\"processed\":3") == NULL ||
        strstr(line, "\"failed\":2") == NULL)
        fail_msg("naq events workers: '%s' (stderr '%s')", out, err);
    free(out);
    free(err);
}

static void a_real_worker_reports_its_jobs_and_leaves_the_registry_when_stopped(void **state)
{
    fixture *f = *state;
    char url[128], hb[] = "NAQ_HEARTBEAT_INTERVAL=300ms", spool[320], log[320];
    snprintf(url, sizeof url, "NAQ_URL=%s", f->srv.url);
    snprintf(spool, sizeof spool, "NAQ_SPOOL_DIR=%s/worker-spool", f->srv.dir);
    snprintf(log, sizeof log, "%s/worker.log", f->srv.dir);
    const char *env[] = {url, hb, spool, NULL};
    const char *argv[] = {"worker", "-q", "e2e", "--id", "w-real", NULL};
    pid_t pid = naq_test_spawn_cli(argv, env, log);
    wait_arg a = {f->c, "w-real", 0, 0, "idle", 0};
    if (!naq_test_wait_for(entry_has_status, &a, 10000)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("naq worker did not register (see %s)", log);
    }

    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "e2e";
    o.function = NAQ_EXEC_FUNCTION;
    o.args_json = "{\"argv\":[\"true\"]}";
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(f->c, &o, id), NAQ_OK);
    job_wait jw = {f->c, id};
    assert_true(naq_test_wait_for(job_released, &jw, 10000));
    naq_event_list h;
    assert_int_equal(naq_job_history(f->c, id, &h), NAQ_OK);
    int assigned = find(&h, NAQ_EVENT_WORKER_ASSIGNED, 0);
    int started = find(&h, NAQ_EVENT_STARTED, 0);
    int completed = find(&h, NAQ_EVENT_COMPLETED, 0);
    int released = find(&h, NAQ_EVENT_WORKER_RELEASED, 0);
    /* released before the outcome: a finished job's last event is its outcome */
    assert_true(assigned >= 0 && started > assigned && released > started && completed > released);
    assert_string_equal(h.items[assigned].worker_id, "w-real");
    assert_string_equal(h.items[assigned].queue_name, "e2e");
    assert_string_equal(h.items[released].details_json, "{\"succeeded\":true}");
    naq_event_list_free(&h);

    assert_true(naq_test_wait_for(entry_processed_one, &a, 5000));
    naq_worker_info w;
    assert_true(live_entry(f->c, "w-real", &w));
    assert_int_equal(w.pid, pid);
    assert_int_equal(w.processed, 1);
    assert_int_equal(w.heartbeat_interval_ms, 300);
    info_free(&w);

    assert_int_equal(kill(pid, SIGTERM), 0); /* a graceful stop */
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_false(live_entry(f->c, "w-real", NULL)); /* removed, not left to expire */
    naq_event_list l = worker_events(f->c, "w-real");
    int stopped = find(&l, NAQ_EVENT_WORKER_STOPPED, 0);
    assert_true(stopped >= 0);
    assert_detail_str(&l.items[stopped], "how", "graceful");
    assert_int_equal(detail_int(&l.items[stopped], "handed_back"), 0);
    assert_true(find_change(&l, "idle", "stopping") >= 0);
    assert_true(find(&l, NAQ_EVENT_SYSTEM_SHUTDOWN, 0) > stopped);
    naq_event_list_free(&l);

    const char *show[] = {"workers", "--show-inactive", "--url", f->srv.url, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(show, NULL, &out, &err), 0);
    char *line = strstr(out, "w-real");
    if (line == NULL || strstr(line, "stopped") == NULL || strstr(line, "gone, last seen") == NULL)
        fail_msg("naq workers --show-inactive: '%s' (stderr '%s')", out, err);
    free(out);
    free(err);
}

/* ---- reading ---- */

static void seen_lists_stopped_workers_but_not_live_or_older_ones(void **state)
{
    fixture *f = *state;
    naq__registry *gone = start(f->c, "w-gone");
    naq__registry_job_started(gone, "job-1", "emails");
    naq__registry_job_finished(gone, "job-1", "emails", 1);
    naq__registry_stop(gone, "graceful", 0);
    naq__registry *live = start(f->c, "w-live");
    assert_int_equal(naq_client_flush_events(f->c, 5000), NAQ_OK);

    naq_worker_info_list l;
    assert_int_equal(naq_workers_seen(f->c, 0, &l), NAQ_OK);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.items[0].worker_id, "w-gone");
    assert_false(l.items[0].live);
    assert_int_equal(l.items[0].last_event, NAQ_EVENT_WORKER_STOPPED);
    assert_string_equal(naq_worker_status_name(l.items[0].status), "stopped");
    assert_int_equal(l.items[0].processed, 1);
    assert_int_equal(l.items[0].concurrency, 3);
    assert_int_equal(strv_len(l.items[0].queues), 2);
    assert_true(l.items[0].started_at > 0 && l.items[0].started_at <= l.items[0].last_seen);
    char *json = NULL;
    assert_int_equal(naq_worker_info_encode(&l.items[0], &json, NULL), NAQ_OK);
    assert_non_null(strstr(json, "\"last_event\":\"worker_stopped\""));
    assert_non_null(strstr(json, "\"live\":false"));
    free(json);
    naq_worker_info_list_free(&l);

    int64_t later = (int64_t)((now_s() + 60) * 1000);
    assert_int_equal(naq_workers_seen(f->c, later, &l), NAQ_OK);
    assert_int_equal(l.count, 0);
    naq_worker_info_list_free(&l);

    assert_int_equal(naq_workers_list(f->c, &l), NAQ_OK);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.items[0].worker_id, "w-live");
    naq_worker_info_list_free(&l);
    naq__registry_stop(live, "graceful", 0);
}

/* A listing counts entries when it starts; one that expires before it is
 * delivered must not leave the listing waiting for it (nats.c's KV watcher
 * does: it never signals "initial values done" then). Lists in a tight
 * loop across the moment an entry expires, a few times. */
static void listing_while_entries_expire_returns_at_once(void **state)
{
    fixture *f = *state;
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = NAQ_WORKERS_BUCKET;
    kc.TTL = 200 * 1000000LL; /* 200 ms, in nanoseconds */
    kvStore *kv = NULL;
    assert_int_equal(js_CreateKeyValue(&kv, f->c->js, &kc), NATS_OK);
    int listings = 0;
    for (int round = 0; round < 5; round++) {
        assert_int_equal(kvStore_PutString(NULL, kv, "w-expiring", "{\"status\":\"idle\"}"),
                         NATS_OK);
        for (size_t count = 1; count > 0; listings++) {
            naq_worker_info_list l;
            int64_t t0 = mono_ms();
            naq_status st = naq_workers_list(f->c, &l);
            if (st != NAQ_OK || mono_ms() - t0 > 1500)
                fail_msg("listing %d: %s after %lld ms: %s", listings, naq_status_str(st),
                         (long long)(mono_ms() - t0), naq_last_error());
            count = l.count;
            naq_worker_info_list_free(&l);
        }
    }
    kvStore_Destroy(kv);
}

typedef struct {
    kvStore *kv;
    atomic_int stop;
} writer_arg;

static void *keep_writing(void *ud)
{
    writer_arg *w = ud;
    char value[64];
    for (int i = 0; !atomic_load(&w->stop); i++) {
        snprintf(value, sizeof value, "{\"status\":\"busy\",\"processed\":%d}", i);
        kvStore_PutString(NULL, w->kv, "w-hot", value);
        kvStore_PutString(NULL, w->kv, "w-other", value);
    }
    return NULL;
}

/* A reader gets the last entry of each worker and then whatever is written
 * while it reads: a worker is still listed once, with its latest entry. */
static void a_worker_written_while_it_is_listed_is_listed_once(void **state)
{
    fixture *f = *state;
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = NAQ_WORKERS_BUCKET;
    kc.TTL = 60 * 1000000000LL;
    writer_arg w = {NULL, 0};
    assert_int_equal(js_CreateKeyValue(&w.kv, f->c->js, &kc), NATS_OK);
    assert_int_equal(kvStore_PutString(NULL, w.kv, "w-gone", "{\"status\":\"idle\"}"), NATS_OK);
    assert_int_equal(kvStore_Delete(w.kv, "w-gone"), NATS_OK);
    assert_int_equal(kvStore_PutString(NULL, w.kv, "w-hot", "{}"), NATS_OK);
    assert_int_equal(kvStore_PutString(NULL, w.kv, "w-other", "{}"), NATS_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, keep_writing, &w), 0);
    for (int i = 0; i < 50; i++) {
        naq_worker_info_list l;
        assert_int_equal(naq_workers_list(f->c, &l), NAQ_OK);
        if (l.count != 2 || strcmp(l.items[0].worker_id, "w-hot") != 0 ||
            strcmp(l.items[1].worker_id, "w-other") != 0)
            fail_msg("listing %d has %zu workers, want w-hot and w-other", i, l.count);
        naq_worker_info_list_free(&l);
    }
    atomic_store(&w.stop, 1);
    pthread_join(t, NULL);
    kvStore_Destroy(w.kv);
}

static void lists_are_empty_before_any_worker_ran(void **state)
{
    fixture *f = *state;
    naq_worker_info_list l;
    assert_int_equal(naq_workers_list(f->c, &l), NAQ_OK);
    assert_int_equal(l.count, 0);
    naq_worker_info_list_free(&l);
    assert_int_equal(naq_workers_seen(f->c, 0, &l), NAQ_OK);
    assert_int_equal(l.count, 0);
    naq_worker_info_list_free(&l);
}

static void installations_with_other_prefixes_keep_separate_registries(void **state)
{
    fixture *f = *state;
    naq_config cfg;
    naq_test_config(&f->srv, &cfg);
    snprintf(cfg.subject_prefix, sizeof cfg.subject_prefix, "other");
    snprintf(cfg.event_stream, sizeof cfg.event_stream, "OTHER_EVENTS");
    snprintf(cfg.job_stream, sizeof cfg.job_stream, "OTHER_JOBS");
    snprintf(cfg.dlq_stream, sizeof cfg.dlq_stream, "OTHER_DLQ");
    naq_client *other = NULL;
    assert_int_equal(naq_client_connect(&cfg, &other), NAQ_OK);
    naq__registry *mine = start(f->c, "w-mine");
    naq__registry *theirs = start(other, "w-theirs");

    assert_true(live_entry(f->c, "w-mine", NULL));
    assert_false(live_entry(f->c, "w-theirs", NULL));
    assert_true(live_entry(other, "w-theirs", NULL));
    assert_false(live_entry(other, "w-mine", NULL));
    kvStore *kv = NULL;
    assert_int_equal(js_KeyValue(&kv, f->c->js, "naq_workers_other"), NATS_OK);
    kvStore_Destroy(kv);

    naq__registry_stop(theirs, "graceful", 0);
    naq__registry_stop(mine, "graceful", 0);
    naq_client_destroy(other);
}

/* ---- system events ---- */

static void system_event_is_logged_on_the_system_subject_with_the_process(void **state)
{
    fixture *f = *state;
    naq__system_event(f->c, NAQ_EVENT_SYSTEM_RECOVERY, "scheduler", "reconnected to NATS");
    naq__system_event(f->c, NAQ_EVENT_SYSTEM_ERROR, NULL, "lost NATS");
    naq__system_event(f->c, NAQ_EVENT_COMPLETED, NULL, "not a system event: ignored");
    assert_int_equal(naq_client_flush_events(f->c, 5000), NAQ_OK);
    naq_event_list l = {0};
    naq_stream_opts o = {0};
    o.tail = 1000;
    assert_int_equal(naq_events_stream(f->c, &o, copy_event, &l), NAQ_OK);
    int rec = -1, err = -1, other = 0;
    for (size_t i = 0; i < l.count; i++) {
        const naq_event *e = &l.items[i];
        if (e->type == NAQ_EVENT_SYSTEM_RECOVERY && e->message &&
            strcmp(e->message, "reconnected to NATS") == 0)
            rec = (int)i;
        else if (e->type == NAQ_EVENT_SYSTEM_ERROR && e->message &&
                 strcmp(e->message, "lost NATS") == 0)
            err = (int)i;
        else if (e->type == NAQ_EVENT_COMPLETED)
            other++;
    }
    assert_true(rec >= 0 && err > rec);
    assert_int_equal(other, 0);
    assert_string_equal(l.items[rec].nats_subject, "naq.system.events");
    assert_detail_str(&l.items[rec], "process", "scheduler");
    assert_detail_str(&l.items[err], "process", "client");
    assert_int_equal(detail_int(&l.items[rec], "pid"), getpid());
    naq_event_list_free(&l);
}

/* ---- the CLI ---- */

static void cli_workers_prints_a_table_and_json_lines(void **state)
{
    fixture *f = *state;
    naq__registry *r = start(f->c, "w-cli");
    naq__registry_job_started(r, "job-cli", "emails");
    wait_arg a = {f->c, "w-cli", 0, 0, "busy", 0};
    assert_true(naq_test_wait_for(entry_has_status, &a, 5000));

    const char *table[] = {"workers", "--url", f->srv.url, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(table, NULL, &out, &err), 0);
    if (strncmp(out, "WORKER", 6) != 0 || strstr(out, "LAST HEARTBEAT") == NULL ||
        strstr(out, "w-cli") == NULL || strstr(out, "emails,reports") == NULL ||
        strstr(out, "job-cli") == NULL || strstr(out, " ago") == NULL)
        fail_msg("table: '%s' (stderr '%s')", out, err);
    free(out);
    free(err);

    const char *json[] = {"workers", "--format", "json", "--url", f->srv.url, NULL};
    assert_int_equal(naq_test_run_cli(json, NULL, &out, &err), 0);
    json_t *o = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "worker_id")), "w-cli");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "busy");
    assert_true(json_is_true(json_object_get(o, "live")));
    assert_int_equal(json_integer_value(json_object_get(o, "active_jobs")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), getpid());
    json_decref(o);
    free(out);
    free(err);
    naq__registry_stop(r, "graceful", 0);
}

static void cli_workers_refuses_bad_usage_with_exit_code_2(void **state)
{
    fixture *f = *state;
    const char *bad_format[] = {"workers", "--format", "raw", "--url", f->srv.url, NULL};
    const char *bad_since[] = {"workers", "--show-inactive", "--since", "yesterday", NULL};
    const char *extra[] = {"workers", "surplus", NULL};
    const char *help[] = {"workers", "--help", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(bad_format, NULL, NULL, &err), 2);
    assert_non_null(strstr(err, "unknown format 'raw'"));
    free(err);
    assert_int_equal(naq_test_run_cli(bad_since, NULL, NULL, &err), 2);
    assert_non_null(strstr(err, "--since"));
    free(err);
    assert_int_equal(naq_test_run_cli(extra, NULL, NULL, &err), 2);
    free(err);
    assert_int_equal(naq_test_run_cli(help, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "--show-inactive"));
    free(out);
    const char *nowhere[] = {"workers", "--url", "nats://127.0.0.1:1", NULL};
    assert_int_equal(naq_test_run_cli(nowhere, NULL, NULL, &err), 1);
    assert_true(strncmp(err, "naq: cannot reach NATS", 22) == 0);
    free(err);
}

/* ---- configuration ---- */

static void heartbeat_interval_comes_from_the_environment(void **state)
{
    (void)state;
    naq_config cfg;
    naq_config_init(&cfg);
    assert_int_equal(cfg.heartbeat_interval_ms, 5000);
    setenv("NAQ_HEARTBEAT_INTERVAL", "300ms", 1);
    assert_int_equal(naq_config_from_env(&cfg), NAQ_OK);
    assert_int_equal(cfg.heartbeat_interval_ms, 300);
    setenv("NAQ_HEARTBEAT_INTERVAL", "0", 1);
    naq_config_init(&cfg);
    assert_int_equal(naq_config_from_env(&cfg), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "NAQ_HEARTBEAT_INTERVAL"));
    setenv("NAQ_HEARTBEAT_INTERVAL", "soon", 1);
    naq_config_init(&cfg);
    assert_int_equal(naq_config_from_env(&cfg), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "NAQ_HEARTBEAT_INTERVAL"));
}

/* Also after a failure: the CLI runs of later tests inherit the variable. */
static int unset_heartbeat_env(void **state)
{
    (void)state;
    unsetenv("NAQ_HEARTBEAT_INTERVAL");
    return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
static const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(heartbeat_interval_comes_from_the_environment, unset_heartbeat_env),
    T(start_logs_startup_events_and_registers_the_worker),
    T(stop_logs_stopping_stopped_and_shutdown_and_removes_the_entry),
    T(stopping_hook_marks_the_entry_stopping_before_stop),
    T(jobs_log_assigned_and_released_on_the_job_and_busy_then_idle),
    T(back_to_back_jobs_keep_the_worker_busy_without_flapping),
    T(a_job_handed_back_at_a_stop_is_released_but_not_counted),
    T(error_logs_worker_error_with_type_and_message),
    T(heartbeats_refresh_the_entry_past_its_ttl_and_log_worker_heartbeat),
    T(a_bucket_made_with_another_ttl_is_kept),
    T(the_registry_drops_a_killed_worker_after_its_ttl),
    T(a_real_worker_reports_its_jobs_and_leaves_the_registry_when_stopped),
    T(every_view_counts_a_cancelled_and_an_expired_job_as_failed),
    T(seen_lists_stopped_workers_but_not_live_or_older_ones),
    T(lists_are_empty_before_any_worker_ran),
    T(listing_while_entries_expire_returns_at_once),
    T(a_worker_written_while_it_is_listed_is_listed_once),
    T(installations_with_other_prefixes_keep_separate_registries),
    T(system_event_is_logged_on_the_system_subject_with_the_process),
    T(cli_workers_prints_a_table_and_json_lines),
    T(cli_workers_refuses_bad_usage_with_exit_code_2),
};

NAQ_TEST_MAIN(tests)
