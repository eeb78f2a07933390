/*
 * test_backup.c - backup and restore (naq/backup.h, `naq backup`, `naq
 * restore`) between two real nats-servers: a server filled through the
 * library (finished jobs with results, dead letters, pending jobs,
 * events, a schedule) is backed up and restored into a fresh one, which
 * then answers every question the same way and runs the pending jobs; a
 * damaged backup restores nothing; existing streams are replaced only
 * with --force; a 3-node cluster's backup restores into another 3-node
 * cluster with three replicas of every stream.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nats/nats.h>
#include <openssl/evp.h>

#define OK_JOBS 3
#define DEAD_JOBS 2
#define PENDING_JOBS 4

typedef struct {
    naq_test_server a, b; /* the source, the target */
    char dir[512];        /* the backup */
    char ok[OK_JOBS][NAQ_ID_SIZE], dead[DEAD_JOBS][NAQ_ID_SIZE], pending[PENDING_JOBS][NAQ_ID_SIZE];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    naq_test_server_start(&fx->a);
    naq_test_server_start(&fx->b);
    snprintf(fx->dir, sizeof fx->dir, "%s/backup", fx->a.dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    naq_test_server_destroy(&fx->a);
    naq_test_server_destroy(&fx->b);
    free(fx);
    return 0;
}

/* ---- handlers and a worker on its own thread ---- */

static naq_status succeed(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)job;
    (void)user;
    return naq_job_ctx_set_result(ctx, "{\"answer\":42}");
}

static naq_status explode(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)job;
    (void)user;
    naq_job_ctx_fail(ctx, "Boom", "it blew up on purpose");
    return NAQ_ERR_HANDLER;
}

typedef struct {
    naq_worker *w;
    pthread_t t;
} running_worker;

static void *run(void *arg)
{
    naq_worker_run(((running_worker *)arg)->w);
    return NULL;
}

static void worker_start(naq_client *c, const char *queue, running_worker *rw)
{
    const char *queues[] = {queue, NULL};
    naq_worker_opts o;
    naq_worker_opts_init(&o);
    o.queues = queues;
    o.concurrency = 2;
    if (naq_worker_create(c, &o, &rw->w) != NAQ_OK)
        fail_msg("worker: %s", naq_last_error());
    assert_int_equal(naq_worker_register(rw->w, "succeed", succeed, NULL), NAQ_OK);
    assert_int_equal(naq_worker_register(rw->w, "explode", explode, NULL), NAQ_OK);
    assert_int_equal(pthread_create(&rw->t, NULL, run, rw), 0);
}

static void worker_stop(running_worker *rw)
{
    naq_worker_stop(rw->w);
    pthread_join(rw->t, NULL);
    naq_worker_destroy(rw->w);
}

/* ---- filling the source ---- */

static void enqueue(naq_client *c, const char *queue, const char *function, char id[NAQ_ID_SIZE])
{
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = queue;
    o.function = function;
    o.args_json = "[1,2]";
    if (naq_enqueue(c, &o, id) != NAQ_OK)
        fail_msg("enqueue: %s", naq_last_error());
}

typedef struct {
    naq_client *c;
    const fixture *fx;
} finished_check;

static int has_result(naq_client *c, const char *id)
{
    char *json = NULL;
    int yes = naq_job_result(c, id, 0, &json) == NAQ_OK;
    free(json);
    return yes;
}

static size_t dlq_count(naq_client *c)
{
    naq_dlq_entry_list l;
    if (naq_dlq_list(c, NULL, &l) != NAQ_OK)
        return 0;
    size_t n = l.count;
    naq_dlq_entry_list_free(&l);
    return n;
}

static int first_jobs_finished(void *ud)
{
    finished_check *f = ud;
    for (int i = 0; i < OK_JOBS; i++)
        if (!has_result(f->c, f->fx->ok[i]))
            return 0;
    return dlq_count(f->c) == DEAD_JOBS;
}

static void add_schedule(naq_client *c)
{
    naq_schedule s;
    naq_schedule_init(&s);
    snprintf(s.name, sizeof s.name, "hourly-report");
    s.kind = NAQ_SCHEDULE_EVERY;
    s.every_ms = 3600 * 1000;
    snprintf(s.queue, sizeof s.queue, "later");
    snprintf(s.function, sizeof s.function, "succeed");
    if (naq_schedule_add(c, &s) != NAQ_OK)
        fail_msg("schedule: %s", naq_last_error());
    naq_schedule_clear(&s);
}

/* Jobs that succeed (results), jobs that die (DLQ), jobs left pending on
 * queue "later", a schedule; then everything quiet, as a backup wants. */
static void fill(fixture *fx)
{
    naq_client *c = naq_test_connect(&fx->a);
    for (int i = 0; i < OK_JOBS; i++)
        enqueue(c, "work", "succeed", fx->ok[i]);
    for (int i = 0; i < DEAD_JOBS; i++)
        enqueue(c, "work", "explode", fx->dead[i]);
    running_worker rw;
    worker_start(c, "work", &rw);
    finished_check f = {c, fx};
    int done = naq_test_wait_for(first_jobs_finished, &f, 20000);
    worker_stop(&rw);
    if (!done)
        fail_msg("the worker did not finish the first jobs within 20 s");
    for (int i = 0; i < PENDING_JOBS; i++)
        enqueue(c, "later", "succeed", fx->pending[i]);
    add_schedule(c);
    assert_int_equal(naq_client_flush_events(c, 10000), NAQ_OK);
    naq_client_destroy(c);
}

/* ---- looking at a server without a naq client (which would create streams) ---- */

typedef struct {
    natsConnection *nc;
    jsCtx *js;
} raw;

static void raw_open(const naq_test_server *s, raw *r)
{
    assert_int_equal(natsConnection_ConnectTo(&r->nc, s->url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&r->js, r->nc, NULL), NATS_OK);
}

static void raw_close(raw *r)
{
    jsCtx_Destroy(r->js);
    natsConnection_Destroy(r->nc);
}

static int stream_count(const naq_test_server *s)
{
    raw r;
    raw_open(s, &r);
    jsStreamNamesList *l = NULL;
    natsStatus ns = js_StreamNames(&l, r.js, NULL, NULL);
    int n = ns == NATS_OK ? l->Count : 0;
    jsStreamNamesList_Destroy(l);
    raw_close(&r);
    return n;
}

static uint64_t stream_msgs(const naq_test_server *s, const char *stream)
{
    raw r;
    raw_open(s, &r);
    jsStreamInfo *si = NULL;
    if (js_GetStreamInfo(&si, r.js, stream, NULL, NULL) != NATS_OK)
        fail_msg("stream %s is missing on %s", stream, s->url);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    raw_close(&r);
    return n;
}

/* ---- comparing the two servers ---- */

static void backup_a(fixture *fx, naq_backup_summary *sum)
{
    naq_config cfg;
    naq_test_config(&fx->a, &cfg);
    naq_status s = naq_backup_write(&cfg, fx->dir, NULL, sum);
    if (s != NAQ_OK)
        fail_msg("backup: %s", naq_last_error());
}

/* The main test sends small chunks: a stream then travels in many, and the
 * chunk order check and flow control are exercised. */
static void backup_a_chunked(fixture *fx, size_t chunk_size, naq_backup_summary *sum)
{
    naq_config cfg;
    naq_test_config(&fx->a, &cfg);
    naq_backup_opts o;
    naq_backup_opts_init(&o);
    o.chunk_size = chunk_size;
    naq_status s = naq_backup_write(&cfg, fx->dir, &o, sum);
    if (s != NAQ_OK)
        fail_msg("backup: %s", naq_last_error());
}

static naq_status restore_b(fixture *fx, int force, naq_backup_summary *sum)
{
    naq_config cfg;
    naq_test_config(&fx->b, &cfg);
    naq_backup_opts o;
    naq_backup_opts_init(&o);
    o.force = force;
    return naq_backup_restore(&cfg, fx->dir, &o, sum);
}

/* "type@seq type@seq ..." of a job's history. */
static void history_text(naq_client *c, const char *id, char *buf, size_t cap)
{
    naq_event_list l;
    if (naq_job_history(c, id, &l) != NAQ_OK)
        fail_msg("history of %s: %s", id, naq_last_error());
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l.count; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s@%llu ", naq_event_type_name(l.items[i].type),
                              (unsigned long long)l.items[i].nats_sequence);
    naq_event_list_free(&l);
}

static char *result_of(naq_client *c, const char *id)
{
    char *json = NULL;
    if (naq_job_result(c, id, 0, &json) != NAQ_OK)
        fail_msg("result of %s: %s", id, naq_last_error());
    return json;
}

/* "job:error_type job:error_type ..." of the DLQ. */
static void dlq_text(naq_client *c, char *buf, size_t cap)
{
    naq_dlq_entry_list l;
    assert_int_equal(naq_dlq_list(c, NULL, &l), NAQ_OK);
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l.count; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s:%s ", l.items[i].job_id, l.items[i].error_type);
    naq_dlq_entry_list_free(&l);
}

static void schedules_text(naq_client *c, char *buf, size_t cap)
{
    naq_schedule_list l;
    assert_int_equal(naq_schedules_list(c, &l), NAQ_OK);
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l.count; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s:%s:%lld:%lld ", l.items[i].name,
                              l.items[i].queue, (long long)l.items[i].every_ms,
                              (long long)l.items[i].next_run_ms);
    naq_schedule_list_free(&l);
}

static void assert_same_text(const char *what, const char *a, const char *b)
{
    if (strcmp(a, b) != 0 || a[0] == '\0')
        fail_msg("%s differ (or are empty):\n  source: %s\n  target: %s", what, a, b);
}

typedef struct {
    naq_client *c;
    const fixture *fx;
} pending_check;

static int pending_jobs_ran(void *ud)
{
    pending_check *p = ud;
    for (int i = 0; i < PENDING_JOBS; i++)
        if (!has_result(p->c, p->fx->pending[i]))
            return 0;
    return 1;
}

static double secs_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---- the tests ---- */

static void a_restored_server_answers_like_the_source_and_runs_the_pending_jobs(void **state)
{
    fixture *fx = *state;
    fill(fx);
    uint64_t events = stream_msgs(&fx->a, "NAQ_JOB_EVENTS");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    naq_backup_summary saved, restored;
    backup_a_chunked(fx, 1024, &saved);
    double backup_s = secs_since(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (restore_b(fx, 0, &restored) != NAQ_OK)
        fail_msg("restore: %s", naq_last_error());
    double restore_s = secs_since(&t0);
    fprintf(stderr,
            "backup: %zu streams, %llu messages, %llu bytes stored, %llu snapshot bytes, %zu "
            "consumers in %.3f s; restore: %zu streams, %llu messages in %.3f s\n",
            saved.streams, (unsigned long long)saved.messages, (unsigned long long)saved.bytes,
            (unsigned long long)saved.file_bytes, saved.consumers, backup_s, restored.streams,
            (unsigned long long)restored.messages, restore_s);
    assert_int_equal(restored.streams, saved.streams);
    assert_int_equal(restored.messages, saved.messages);
    assert_int_equal(restored.consumers, saved.consumers);
    assert_true(saved.consumers >= 1); /* the queue's consumer, with its position */
    assert_int_equal(stream_msgs(&fx->b, "NAQ_JOB_EVENTS"), events);
    assert_int_equal(stream_msgs(&fx->b, "NAQ_JOBS"), PENDING_JOBS);

    naq_client *ca = naq_test_connect(&fx->a), *cb = naq_test_connect(&fx->b);
    char ta[4096], tb[4096];
    history_text(ca, fx->ok[0], ta, sizeof ta);
    history_text(cb, fx->ok[0], tb, sizeof tb);
    assert_same_text("a finished job's histories", ta, tb);
    history_text(ca, fx->dead[0], ta, sizeof ta);
    history_text(cb, fx->dead[0], tb, sizeof tb);
    assert_same_text("a dead job's histories", ta, tb);
    char *ra = result_of(ca, fx->ok[1]), *rb = result_of(cb, fx->ok[1]);
    assert_same_text("results", ra, rb);
    free(ra);
    free(rb);
    dlq_text(ca, ta, sizeof ta);
    dlq_text(cb, tb, sizeof tb);
    assert_same_text("dead-letter queues", ta, tb);
    schedules_text(ca, ta, sizeof ta);
    schedules_text(cb, tb, sizeof tb);
    assert_same_text("schedules", ta, tb);
    naq_client_destroy(ca);

    running_worker rw;
    worker_start(cb, "later", &rw);
    pending_check p = {cb, fx};
    int ran = naq_test_wait_for(pending_jobs_ran, &p, 20000);
    worker_stop(&rw);
    naq_client_destroy(cb);
    if (!ran)
        fail_msg("a worker on the restored server did not run the %d pending jobs", PENDING_JOBS);
}

/* A small backup of a source with a few jobs (no worker needed). */
static void small_backup(fixture *fx)
{
    naq_client *c = naq_test_connect(&fx->a);
    for (int i = 0; i < PENDING_JOBS; i++)
        enqueue(c, "later", "succeed", fx->pending[i]);
    assert_int_equal(naq_client_flush_events(c, 10000), NAQ_OK);
    naq_client_destroy(c);
    backup_a(fx, NULL);
}

static void damage(const fixture *fx, const char *file, int truncate_it)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", fx->dir, file);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if (truncate_it) {
        assert_int_equal(truncate(path, st.st_size / 2), 0);
        return;
    }
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, st.st_size / 2, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, st.st_size / 2, SEEK_SET);
    fputc(ch ^ 0x20, f);
    fclose(f);
}

static void assert_refused_and_nothing_created(fixture *fx, const char *file, const char *why)
{
    naq_status s = restore_b(fx, 0, NULL);
    if (s != NAQ_ERR_CODEC || strstr(naq_last_error(), file) == NULL ||
        strstr(naq_last_error(), why) == NULL ||
        strstr(naq_last_error(), "nothing was restored") == NULL)
        fail_msg("restore of a damaged backup: %s: %s", naq_status_str(s), naq_last_error());
    assert_int_equal(stream_count(&fx->b), 0);
    /* The CLI says the same and exits 1. */
    char url[128], *err = NULL;
    snprintf(url, sizeof url, "NAQ_URL=%s", fx->b.url);
    const char *argv[] = {"restore", fx->dir, NULL}, *env[] = {url, NULL};
    assert_int_equal(naq_test_run_cli(argv, env, NULL, &err), 1);
    if (strstr(err, why) == NULL)
        fail_msg("naq restore said: %s", err);
    free(err);
    assert_int_equal(stream_count(&fx->b), 0);
}

static void a_truncated_backup_is_refused_and_no_stream_is_created(void **state)
{
    fixture *fx = *state;
    small_backup(fx);
    damage(fx, "NAQ_JOBS.tar.s2", 1);
    assert_refused_and_nothing_created(fx, "NAQ_JOBS.tar.s2", "truncated");
}

static void a_corrupted_byte_is_refused_and_no_stream_is_created(void **state)
{
    fixture *fx = *state;
    small_backup(fx);
    /* The last stream restored: every other one would pass its own check. */
    damage(fx, "NAQ_OUTCOMES.tar.s2", 0);
    assert_refused_and_nothing_created(fx, "NAQ_OUTCOMES.tar.s2", "SHA-256");
}

static void restoring_over_existing_streams_needs_force_and_then_replaces_them(void **state)
{
    fixture *fx = *state;
    small_backup(fx);
    /* The target has naq's streams already (a client made them), and a
     * job of its own that the backup does not have. */
    naq_client *c = naq_test_connect(&fx->b);
    char own[NAQ_ID_SIZE];
    enqueue(c, "later", "succeed", own);
    naq_client_destroy(c);

    char url[128], *out = NULL, *err = NULL;
    snprintf(url, sizeof url, "NAQ_URL=%s", fx->b.url);
    const char *env[] = {url, NULL};
    const char *plain[] = {"restore", "--quiet", fx->dir, NULL};
    assert_int_equal(naq_test_run_cli(plain, env, NULL, &err), 1);
    if (strstr(err, "already has streams") == NULL || strstr(err, "NAQ_JOBS") == NULL ||
        strstr(err, "--force") == NULL)
        fail_msg("naq restore over existing streams said: %s", err);
    free(err);
    assert_int_equal(stream_msgs(&fx->b, "NAQ_JOBS"), 1); /* untouched */

    const char *forced[] = {"restore", "--force", fx->dir, NULL};
    int rc = naq_test_run_cli(forced, env, &out, &err);
    if (rc != 0 || strstr(out, "restored") == NULL || strstr(err, "restoring NAQ_JOBS") == NULL)
        fail_msg("naq restore --force: exit %d\nstdout: %s\nstderr: %s", rc, out, err);
    free(out);
    free(err);
    assert_int_equal(stream_msgs(&fx->b, "NAQ_JOBS"), PENDING_JOBS); /* the backup's, not its own */
}

/* Rewrites a stream's saved configuration with a name the snapshot does
 * not carry - the server takes every chunk and refuses at the end - and
 * fixes the manifest's checksum, so only the server can notice. */
static void rename_in_config(const fixture *fx, const char *stream, const char *new_name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.stream.json", fx->dir, stream);
    json_t *req = json_load_file(path, 0, NULL);
    assert_non_null(req);
    json_object_set_new(json_object_get(req, "config"), "name", json_string(new_name));
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    char hex[65];
    EVP_Digest(text, strlen(text), d, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    snprintf(path, sizeof path, "%s/manifest.json", fx->dir);
    json_t *m = json_load_file(path, 0, NULL);
    json_t *streams = json_object_get(m, "streams");
    for (size_t i = 0; i < json_array_size(streams); i++) {
        json_t *e = json_array_get(streams, i);
        if (strcmp(json_string_value(json_object_get(e, "name")), stream) != 0)
            continue;
        json_t *desc = json_object_get(e, "config");
        json_object_set_new(desc, "size", json_integer((json_int_t)strlen(text)));
        json_object_set_new(desc, "sha256", json_string(hex));
    }
    assert_int_equal(json_dump_file(m, path, JSON_INDENT(2)), 0);
    json_decref(m);
    free(text);
}

static void a_stream_refused_midway_takes_back_the_streams_restored_before_it(void **state)
{
    fixture *fx = *state;
    small_backup(fx);
    /* The last stream of the manifest: every other one is restored first. */
    rename_in_config(fx, "NAQ_OUTCOMES", "NAQ_OUTCOMEX");
    naq_status s = restore_b(fx, 0, NULL);
    if (s == NAQ_OK || strstr(naq_last_error(), "cannot restore stream NAQ_OUTCOMES") == NULL ||
        strstr(naq_last_error(), "deleted again") == NULL)
        fail_msg("restore refused midway: %s: %s", naq_status_str(s), naq_last_error());
    assert_int_equal(stream_count(&fx->b), 0);
}

/* Thousands of jobs: the job stream's snapshot is several chunks of the
 * default size, and the figures say what a restore of some size costs. */
static void a_large_job_stream_travels_in_many_chunks_and_arrives_whole(void **state)
{
    fixture *fx = *state;
    enum { JOBS = 20000, BATCH = 500 };
    naq_client *c = naq_test_connect(&fx->a);
    naq_job_opts *v = calloc(BATCH, sizeof *v);
    char(*ids)[NAQ_ID_SIZE] = calloc(BATCH, sizeof *ids);
    naq_status *statuses = calloc(BATCH, sizeof *statuses);
    char args[256];
    snprintf(args, sizeof args, "[\"%0200d\"]", 7); /* a 200-byte argument */
    for (int i = 0; i < BATCH; i++) {
        naq_job_opts_init(&v[i]);
        v[i].queue = "bulk";
        v[i].function = "succeed";
        v[i].args_json = args;
    }
    for (int done = 0; done < JOBS; done += BATCH) {
        naq_status s = naq_enqueue_batch(c, v, BATCH, ids, statuses, NULL);
        if (s != NAQ_OK)
            fail_msg("batch: %s", naq_last_error());
    }
    free(v);
    free(ids);
    free(statuses);
    assert_int_equal(naq_client_flush_events(c, 30000), NAQ_OK);
    naq_client_destroy(c);
    uint64_t events = stream_msgs(&fx->a, "NAQ_JOB_EVENTS");

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    naq_backup_summary saved, restored;
    backup_a(fx, &saved);
    double backup_s = secs_since(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (restore_b(fx, 0, &restored) != NAQ_OK)
        fail_msg("restore: %s", naq_last_error());
    double restore_s = secs_since(&t0);
    fprintf(stderr,
            "large: %llu messages (%.1f MiB stored, %.1f MiB of snapshots) backed up in %.2f s, "
            "restored in %.2f s\n",
            (unsigned long long)saved.messages, (double)saved.bytes / 1048576,
            (double)saved.file_bytes / 1048576, backup_s, restore_s);
    assert_true(saved.file_bytes > 4 * 128 * 1024); /* several default chunks */
    assert_int_equal(restored.messages, saved.messages);
    assert_int_equal(stream_msgs(&fx->b, "NAQ_JOBS"), JOBS);
    assert_int_equal(stream_msgs(&fx->b, "NAQ_JOB_EVENTS"), events);
}

static void
backup_refuses_a_directory_that_is_not_empty_and_restore_one_without_manifest(void **state)
{
    fixture *fx = *state;
    naq_client *c = naq_test_connect(&fx->a);
    naq_client_destroy(c);
    assert_int_equal(mkdir(fx->dir, 0700), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/notes.txt", fx->dir);
    FILE *f = fopen(path, "w");
    fputs("keep me\n", f);
    fclose(f);
    naq_config cfg;
    naq_test_config(&fx->a, &cfg);
    assert_int_equal(naq_backup_write(&cfg, fx->dir, NULL, NULL), NAQ_ERR_EXISTS);
    if (strstr(naq_last_error(), "not empty") == NULL)
        fail_msg("message: %s", naq_last_error());
    assert_int_equal(restore_b(fx, 0, NULL), NAQ_ERR_IO);
    if (strstr(naq_last_error(), "no manifest.json") == NULL)
        fail_msg("message: %s", naq_last_error());
    assert_int_equal(stream_count(&fx->b), 0);
}

static void the_commands_answer_help_and_bad_usage_with_their_exit_codes(void **state)
{
    (void)state;
    char *out = NULL;
    const char *help[] = {"backup", "--help", NULL};
    assert_int_equal(naq_test_run_cli(help, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "exit codes: 0"));
    free(out);
    const char *rhelp[] = {"restore", "--help", NULL};
    assert_int_equal(naq_test_run_cli(rhelp, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "--force"));
    free(out);
    const char *no_dir[] = {"backup", NULL};
    assert_int_equal(naq_test_run_cli(no_dir, NULL, NULL, NULL), 2);
    const char *force_on_backup[] = {"backup", "--force", "x", NULL};
    assert_int_equal(naq_test_run_cli(force_on_backup, NULL, NULL, NULL), 2);
}

/* ---- between clusters ---- */

static naq_client *cluster_client(const naq_test_cluster *cl)
{
    naq_config cfg;
    naq_test_cluster_config(cl, &cfg);
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK)
        fail_msg("connect to the cluster: %s", naq_last_error());
    return c;
}

/* Every node of cl holds `stream` up to the same last sequence, within
 * timeout_ms: the replicas have caught up. */
static int replicas_agree(const naq_test_cluster *cl, const char *stream, int64_t timeout_ms)
{
    for (int64_t waited = 0; waited < timeout_ms; waited += 100) {
        int64_t first = naq_test_cluster_node_last_seq(cl, 0, stream);
        int same = first > 0;
        for (int i = 1; same && i < cl->n; i++)
            same = naq_test_cluster_node_last_seq(cl, i, stream) == first;
        if (same)
            return 1;
        usleep(100000);
    }
    return 0;
}

static void a_cluster_backup_restores_into_another_cluster_with_every_replica(void **state)
{
    fixture *fx = *state;
    naq_test_cluster *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    naq_test_cluster_start(a, 3);
    naq_test_cluster_start(b, 3);

    naq_client *ca = cluster_client(a);
    for (int i = 0; i < OK_JOBS; i++)
        enqueue(ca, "work", "succeed", fx->ok[i]);
    for (int i = 0; i < DEAD_JOBS; i++)
        enqueue(ca, "work", "explode", fx->dead[i]);
    running_worker rw;
    worker_start(ca, "work", &rw);
    finished_check f = {ca, fx};
    int done = naq_test_wait_for(first_jobs_finished, &f, 30000);
    worker_stop(&rw);
    if (!done)
        fail_msg("the worker did not finish the first jobs within 30 s");
    for (int i = 0; i < PENDING_JOBS; i++)
        enqueue(ca, "later", "succeed", fx->pending[i]);
    assert_int_equal(naq_client_flush_events(ca, 10000), NAQ_OK);

    naq_config cfg_a, cfg_b;
    naq_test_cluster_config(a, &cfg_a);
    naq_test_cluster_config(b, &cfg_b);
    naq_backup_summary saved, restored;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (naq_backup_write(&cfg_a, fx->dir, NULL, &saved) != NAQ_OK)
        fail_msg("backup of the cluster: %s", naq_last_error());
    double backup_s = secs_since(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (naq_backup_restore(&cfg_b, fx->dir, NULL, &restored) != NAQ_OK)
        fail_msg("restore into the cluster: %s", naq_last_error());
    double restore_s = secs_since(&t0);
    fprintf(stderr,
            "cluster backup: %zu streams, %llu messages in %.3f s; restore into 3 nodes: %zu "
            "streams, %llu messages in %.3f s\n",
            saved.streams, (unsigned long long)saved.messages, backup_s, restored.streams,
            (unsigned long long)restored.messages, restore_s);
    assert_int_equal(restored.streams, saved.streams);
    assert_int_equal(restored.messages, saved.messages);
    assert_int_equal(restored.consumers, saved.consumers);

    /* Restored with three replicas each, and every node caught up. */
    raw r;
    raw_open(&b->node[0], &r);
    const char *streams[] = {"NAQ_JOBS", "NAQ_JOB_EVENTS"};
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        jsStreamInfo *si = NULL;
        if (js_GetStreamInfo(&si, r.js, streams[i], NULL, NULL) != NATS_OK)
            fail_msg("stream %s is missing on the restored cluster", streams[i]);
        assert_int_equal(si->Config->Replicas, 3);
        jsStreamInfo_Destroy(si);
        if (!replicas_agree(b, streams[i], 20000))
            fail_msg("the nodes of the restored cluster disagree on %s's last sequence",
                     streams[i]);
    }
    raw_close(&r);
    assert_int_equal(stream_msgs(&b->node[1], "NAQ_JOBS"), PENDING_JOBS);

    naq_client *cb = cluster_client(b);
    char ta[4096], tb[4096];
    history_text(ca, fx->dead[0], ta, sizeof ta);
    history_text(cb, fx->dead[0], tb, sizeof tb);
    assert_same_text("a dead job's histories", ta, tb);
    naq_client_destroy(ca);
    worker_start(cb, "later", &rw);
    pending_check p = {cb, fx};
    int ran = naq_test_wait_for(pending_jobs_ran, &p, 30000);
    worker_stop(&rw);
    naq_client_destroy(cb);
    naq_test_cluster_destroy(b);
    naq_test_cluster_destroy(a);
    free(b);
    free(a);
    if (!ran)
        fail_msg("a worker on the restored cluster did not run the %d pending jobs", PENDING_JOBS);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
static const struct CMUnitTest tests[] = {
    T(a_restored_server_answers_like_the_source_and_runs_the_pending_jobs),
    T(a_truncated_backup_is_refused_and_no_stream_is_created),
    T(a_corrupted_byte_is_refused_and_no_stream_is_created),
    T(restoring_over_existing_streams_needs_force_and_then_replaces_them),
    T(a_stream_refused_midway_takes_back_the_streams_restored_before_it),
    T(a_large_job_stream_travels_in_many_chunks_and_arrives_whole),
    T(backup_refuses_a_directory_that_is_not_empty_and_restore_one_without_manifest),
    T(a_cluster_backup_restores_into_another_cluster_with_every_replica),
    cmocka_unit_test(the_commands_answer_help_and_bad_usage_with_their_exit_codes),
};

NAQ_TEST_MAIN(tests)
