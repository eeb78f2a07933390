/*
 * test_crypt.c - end-to-end payload encryption through real servers
 * (NAQ_ENCRYPTION_KEY_FILE; docs/security.md "Payload encryption"): a
 * producer seals args, a worker opens them and seals what the job gives
 * back, readers with the key see plaintext and the others "<encrypted>",
 * and a marker placed in args, result, output and an error message is found
 * nowhere on the server: neither in its files nor in any message it serves.
 * The key file and the envelope alone: test_crypt_keys.c.
 */
#define _GNU_SOURCE           /* memmem, nftw */
#include "security_support.h" /* tree_find */
#include "worker_support.h"

#include "core/crypt.h"

#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* No '-' in base64: the marker cannot appear inside a ciphertext. */
#define MARKER "naq-payload-marker-5e1f"

typedef struct {
    fixture fx;
    char dir[64];
    char a[96], b[96], ab[96]; /* key files: A, B, and A (encrypts) then B */
    char kid_a[NAQ_CRYPT_KID_MAX + 1], kid_b[NAQ_CRYPT_KID_MAX + 1];
} crypt_fx;

/* ---- keys and clients ---- */

static void key_line(const char *path, char *line, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    line[0] = '\0';
    char buf[256];
    while (fgets(buf, sizeof buf, f) != NULL)
        if (buf[0] != '#')
            snprintf(line, cap, "%s", buf);
    fclose(f);
}

static int crypt_setup(void **state)
{
    crypt_fx *cx = calloc(1, sizeof *cx);
    assert_non_null(cx);
    void *inner = NULL;
    setup(&inner);
    cx->fx = *(fixture *)inner;
    free(inner);
    snprintf(cx->dir, sizeof cx->dir, "/tmp/naq-crypt-XXXXXX");
    assert_non_null(mkdtemp(cx->dir));
    snprintf(cx->a, sizeof cx->a, "%s/a.key", cx->dir);
    snprintf(cx->b, sizeof cx->b, "%s/b.key", cx->dir);
    snprintf(cx->ab, sizeof cx->ab, "%s/ab.key", cx->dir);
    assert_int_equal(naq__crypt_keygen(cx->a, cx->kid_a), NAQ_OK);
    assert_int_equal(naq__crypt_keygen(cx->b, cx->kid_b), NAQ_OK);
    char la[256], lb[256];
    key_line(cx->a, la, sizeof la);
    key_line(cx->b, lb, sizeof lb);
    FILE *f = fopen(cx->ab, "w");
    assert_non_null(f);
    fprintf(f, "%s%s", la, lb);
    fclose(f);
    assert_int_equal(chmod(cx->ab, 0600), 0);
    *state = cx;
    return 0;
}

static int crypt_teardown(void **state)
{
    crypt_fx *cx = *state;
    fixture *fx = malloc(sizeof *fx);
    assert_non_null(fx);
    *fx = cx->fx;
    void *inner = fx;
    teardown(&inner);
    naq_test_rmtree(cx->dir);
    free(cx);
    return 0;
}

/* A client of srv with the key file (NULL: none). */
static naq_client *connect_keyed(const naq_test_server *srv, const char *key_file)
{
    naq_config cfg;
    naq_test_config(srv, &cfg);
    if (key_file != NULL)
        snprintf(cfg.encryption_key_file, sizeof cfg.encryption_key_file, "%s", key_file);
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK)
        fail_msg("connect with key file %s: %s", key_file ? key_file : "(none)", naq_last_error());
    return c;
}

/* ---- the handler: echoes its args as its result, fails on request ---- */

static char seen_args[1024]; /* the args the last job's handler received */

static naq_status echo_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)user;
    snprintf(seen_args, sizeof seen_args, "%s", job->args_json);
    if (strstr(job->args_json, "please-fail") != NULL) {
        naq_job_ctx_fail(ctx, "Boom", "failed on %s", job->args_json);
        return NAQ_ERR_HANDLER;
    }
    char result[1200];
    snprintf(result, sizeof result, "{\"got\":%s}", job->args_json);
    return naq_job_ctx_set_result(ctx, result);
}

static void start_worker(fixture *fx, running *r, naq_client *c, const char *queue)
{
    const char *queues[] = {queue, NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    naq_worker *w = NULL;
    if (naq_worker_create(c, &wo, &w) != NAQ_OK)
        fail_msg("worker: %s", naq_last_error());
    assert_int_equal(naq_worker_register(w, "echo", echo_handler, NULL), NAQ_OK);
    start(fx, r, w);
}

static void enqueue(naq_client *c, const char *queue, const char *function, const char *args,
                    int max_retries, char id[NAQ_ID_SIZE])
{
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = queue;
    o.function = function;
    o.args_json = args;
    o.max_retries = max_retries;
    if (naq_enqueue(c, &o, id) != NAQ_OK)
        fail_msg("enqueue on %s: %s", queue, naq_last_error());
}

/* The job's failed events (after waiting for its last outcome). */
static size_t count_events(naq_client *c, const char *id, naq_event_type t)
{
    naq_event_list l = raw_history(c, id);
    size_t n = 0;
    for (size_t i = 0; i < l.count; i++)
        n += l.items[i].type == t;
    naq_event_list_free(&l);
    return n;
}

static naq_event last_of(naq_client *c, const char *id, naq_event_type t)
{
    naq_event_list l = raw_history(c, id);
    naq_event e;
    memset(&e, 0, sizeof e);
    for (size_t i = l.count; i-- > 0;) {
        if (l.items[i].type == t) {
            e = l.items[i];
            memset(&l.items[i], 0, sizeof l.items[i]);
            break;
        }
    }
    naq_event_list_free(&l);
    if (e.job_id[0] == '\0')
        fail_with_history(c, id, "the event is missing");
    return e;
}

static char *run_cli(const naq_test_server *srv, const char *key_file, const char *const *argv)
{
    char url[96], key[160];
    snprintf(url, sizeof url, "NAQ_URL=%s", srv->url);
    snprintf(key, sizeof key, "NAQ_ENCRYPTION_KEY_FILE=%s", key_file ? key_file : "");
    const char *env[] = {url, "NAQ_SPOOL_DIR=none", key, NULL};
    char *out = NULL, *err = NULL;
    int rc = naq_test_run_cli(argv, env, &out, &err);
    if (rc != 0)
        fail_msg("naq %s %s: exit %d: %s", argv[0], argv[1], rc, err);
    free(err);
    return out;
}

/* ---- 1: round trip ---- */

static void a_keyed_worker_gets_plain_args_and_only_keyed_readers_see_the_result(void **state)
{
    crypt_fx *cx = *state;
    fixture *fx = &cx->fx;
    naq_client *prod = connect_keyed(&fx->srv, cx->a);
    naq_client *wc = connect_keyed(&fx->srv, cx->a);
    naq_client *plain = connect_keyed(&fx->srv, NULL);
    char ok_id[NAQ_ID_SIZE], bad_id[NAQ_ID_SIZE];
    enqueue(prod, "rt", "echo", "[\"" MARKER "\"]", 0, ok_id);
    enqueue(prod, "rt", "echo", "[\"please-fail\",\"" MARKER "\"]", 0, bad_id);
    running r;
    start_worker(fx, &r, wc, "rt");
    wait_event(prod, ok_id, NAQ_EVENT_COMPLETED, 15000);
    wait_event(prod, bad_id, NAQ_EVENT_MAX_RETRIES_EXCEEDED, 15000);
    stop(&r);
    assert_string_equal(seen_args, "[\"please-fail\",\"" MARKER "\"]");

    char *res = NULL;
    assert_int_equal(naq_job_result(prod, ok_id, 0, &res), NAQ_OK);
    assert_non_null(strstr(res, "{\"got\":[\"" MARKER "\"]}"));
    assert_null(strstr(res, "sealed"));
    free(res);
    assert_int_equal(naq_job_result(plain, ok_id, 0, &res), NAQ_OK);
    assert_null(strstr(res, MARKER));
    assert_non_null(strstr(res, "\"sealed\":{\"naq_enc\":1"));
    assert_non_null(strstr(res, "\"status\":\"completed\"")); /* metadata stays readable */
    free(res);

    naq_event keyed = last_of(prod, bad_id, NAQ_EVENT_FAILED);
    assert_string_equal(keyed.error_type, "Boom");
    assert_non_null(strstr(keyed.error_message, MARKER));
    naq_event_clear(&keyed);
    naq_event hidden = last_of(plain, bad_id, NAQ_EVENT_FAILED);
    assert_string_equal(hidden.error_type, "Boom");
    assert_string_equal(hidden.error_message, NAQ_CRYPT_HIDDEN);
    assert_string_equal(hidden.queue_name, "rt");
    assert_true(hidden.worker_id[0] != '\0');
    naq_event_clear(&hidden);

    /* The CLI: plaintext with the key, <encrypted> without. */
    const char *result[] = {"job", "result", ok_id, NULL};
    char *out = run_cli(&fx->srv, cx->a, result);
    assert_non_null(strstr(out, MARKER));
    free(out);
    out = run_cli(&fx->srv, NULL, result);
    assert_null(strstr(out, MARKER));
    assert_non_null(strstr(out, "<encrypted>"));
    free(out);
    const char *history[] = {"events", "history", bad_id, NULL};
    out = run_cli(&fx->srv, cx->a, history);
    assert_non_null(strstr(out, "Boom: failed on"));
    assert_non_null(strstr(out, MARKER));
    free(out);
    out = run_cli(&fx->srv, NULL, history);
    assert_non_null(strstr(out, "Boom: <encrypted>"));
    assert_null(strstr(out, MARKER));
    free(out);
    const char *show[] = {"dlq", "show", "--job", bad_id, NULL};
    out = run_cli(&fx->srv, cx->a, show);
    assert_non_null(strstr(out, "\"please-fail\""));
    free(out);
    out = run_cli(&fx->srv, NULL, show);
    assert_null(strstr(out, MARKER));
    assert_non_null(strstr(out, "<encrypted>"));
    free(out);
    naq_client_destroy(plain);
    naq_client_destroy(wc);
    naq_client_destroy(prod);
}

/* ---- 2: no plaintext anywhere ---- */

/* The first file under dir holding the marker, or NULL. */
static const char *disk_find(const char *dir)
{
    return tree_find(dir, MARKER);
}

/* Reads every message of every stream through the server (raw gets, KV
 * buckets included: they are streams); where names the first hit. */
static int server_find(const naq_test_server *srv, char *where, size_t cap)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, srv->url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsStreamNamesList *names = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_StreamNames(&names, js, NULL, &jerr), NATS_OK);
    int found = 0, streams = 0;
    for (int i = 0; names != NULL && i < names->Count && !found; i++) {
        jsStreamInfo *si = NULL;
        assert_int_equal(js_GetStreamInfo(&si, js, names->List[i], NULL, &jerr), NATS_OK);
        streams++;
        for (uint64_t seq = si->State.FirstSeq; seq > 0 && seq <= si->State.LastSeq && !found;
             seq++) {
            natsMsg *m = NULL;
            if (js_GetMsg(&m, js, names->List[i], seq, NULL, &jerr) != NATS_OK)
                continue; /* deleted */
            const char *data = natsMsg_GetData(m);
            found = data != NULL &&
                    memmem(data, (size_t)natsMsg_GetDataLength(m), MARKER, strlen(MARKER)) != NULL;
            if (found)
                snprintf(where, cap, "%s seq %llu (%s): %.*s", names->List[i],
                         (unsigned long long)seq, natsMsg_GetSubject(m), natsMsg_GetDataLength(m),
                         data);
            natsMsg_Destroy(m);
        }
        jsStreamInfo_Destroy(si);
    }
    assert_true(found || streams >= 5); /* the search saw naq's streams */
    jsStreamNamesList_Destroy(names);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return found;
}

/* Puts the marker in args (a parked job, a job that completes), a result,
 * an error message and an exec job's output, and waits until every one is
 * recorded. key_file NULL: no encryption. */
static void place_marker(const naq_test_server *srv, fixture *fx, const char *key_file)
{
    naq_client *prod = connect_keyed(srv, key_file);
    naq_client *wc = connect_keyed(srv, key_file);
    char ok_id[NAQ_ID_SIZE], bad_id[NAQ_ID_SIZE], exec_id[NAQ_ID_SIZE], parked[NAQ_ID_SIZE];
    enqueue(prod, "m", "echo", "[\"" MARKER "\"]", 0, ok_id);
    enqueue(prod, "m", "echo", "[\"please-fail\",\"" MARKER "\"]", 0, bad_id);
    enqueue(prod, "m", "exec", "[\"sh\",\"-c\",\"echo " MARKER "; echo " MARKER " >&2; exit 3\"]",
            0, exec_id);
    enqueue(prod, "parked", "echo", "[\"" MARKER "\"]", 0, parked);
    running r;
    start_worker(fx, &r, wc, "m");
    wait_event(prod, ok_id, NAQ_EVENT_COMPLETED, 15000);
    wait_event(prod, bad_id, NAQ_EVENT_MAX_RETRIES_EXCEEDED, 15000);
    wait_event(prod, exec_id, NAQ_EVENT_MAX_RETRIES_EXCEEDED, 15000);
    stop(&r);
    /* The exec job's output is in its outcome: the marker was really there. */
    char *res = NULL;
    assert_int_equal(naq_job_result(prod, exec_id, 5000, &res), NAQ_OK);
    if (key_file != NULL && strstr(res, MARKER "\\n") == NULL)
        fail_msg("with the key the exec job's output should read back: %s", res);
    free(res);
    assert_int_equal(naq_client_flush_events(wc, 5000), NAQ_OK);
    assert_int_equal(naq_client_flush_events(prod, 5000), NAQ_OK);
    naq_client_destroy(wc);
    naq_client_destroy(prod);
}

static void a_marker_in_args_results_and_errors_is_nowhere_on_the_server(void **state)
{
    crypt_fx *cx = *state;
    fixture *fx = &cx->fx;
    char where[512];

    /* The control: without a key the same search finds the marker, through
     * the server and on disk, so the search can fail. */
    naq_test_server plain;
    naq_test_server_start(&plain);
    place_marker(&plain, fx, NULL);
    if (!server_find(&plain, where, sizeof where))
        fail_msg("control: no stream message holds the marker; the search is broken");
    naq_test_server_stop(&plain);
    if (disk_find(plain.dir) == NULL)
        fail_msg("control: no file under %s holds the marker; the search is broken", plain.dir);
    naq_test_server_destroy(&plain);

    place_marker(&fx->srv, fx, cx->a);
    if (server_find(&fx->srv, where, sizeof where))
        fail_msg("the server serves the marker in plaintext: %s", where);
    naq_client_destroy(fx->c); /* the fixture's client, before its server stops */
    fx->c = NULL;
    naq_test_server_stop(&fx->srv);
    const char *hit = disk_find(fx->srv.dir);
    if (hit != NULL)
        fail_msg("the marker is in plaintext in %s", hit);
    naq_test_server_restart(&fx->srv);
    fx->c = naq_test_connect(&fx->srv);
}

/* ---- 3: a worker without the key ---- */

static void a_worker_without_the_key_fails_the_job_once_with_DecryptError(void **state)
{
    crypt_fx *cx = *state;
    fixture *fx = &cx->fx;
    naq_client *prod = connect_keyed(&fx->srv, cx->a);
    naq_client *none = connect_keyed(&fx->srv, NULL);
    naq_client *other = connect_keyed(&fx->srv, cx->b);
    char id[NAQ_ID_SIZE], id2[NAQ_ID_SIZE], plain_id[NAQ_ID_SIZE];
    enqueue(prod, "nokey", "echo", "[\"" MARKER "\"]", 3, id);
    enqueue(prod, "otherkey", "echo", "[\"" MARKER "\"]", 3, id2);
    seen_args[0] = '\0';
    running r1, r2;
    start_worker(fx, &r1, none, "nokey");
    start_worker(fx, &r2, other, "otherkey");
    wait_event(prod, id, NAQ_EVENT_MAX_RETRIES_EXCEEDED, 15000);
    wait_event(prod, id2, NAQ_EVENT_MAX_RETRIES_EXCEEDED, 15000);
    assert_string_equal(seen_args, ""); /* no handler saw the envelope */
    const char *ids[] = {id, id2};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(count_events(prod, ids[i], NAQ_EVENT_FAILED), 1);
        assert_int_equal(count_events(prod, ids[i], NAQ_EVENT_RETRY_SCHEDULED), 0);
        naq_event f = last_of(prod, ids[i], NAQ_EVENT_FAILED);
        assert_string_equal(f.error_type, "DecryptError");
        assert_int_equal(f.attempt, 1);
        naq_event_clear(&f);
    }
    /* The message names the key it lacks; that worker sealed it with its
     * own key, so it is for readers holding that one. */
    naq_event f = last_of(other, id2, NAQ_EVENT_FAILED);
    assert_non_null(strstr(f.error_message, cx->kid_a));
    naq_event_clear(&f);

    /* It keeps running: a plain job on the same worker completes. */
    enqueue(none, "nokey", "echo", "[1]", 0, plain_id);
    wait_event(none, plain_id, NAQ_EVENT_COMPLETED, 15000);
    stop(&r1);
    stop(&r2);

    /* The dead job waits for a worker with the key: retried from the
     * dead-letter queue (a new job id, the same envelope), it runs. */
    naq_dlq_filter flt;
    memset(&flt, 0, sizeof flt);
    flt.job_id = id;
    naq_dlq_retried *done = NULL;
    size_t n = 0;
    assert_int_equal(naq_dlq_retry(prod, &flt, &done, &n), NAQ_OK);
    assert_int_equal(n, 1);
    running r3;
    start_worker(fx, &r3, prod, "nokey");
    wait_event(prod, done[0].new_job_id, NAQ_EVENT_COMPLETED, 15000);
    stop(&r3);
    assert_string_equal(seen_args, "[\"" MARKER "\"]");
    free(done);
    naq_client_destroy(other);
    naq_client_destroy(none);
    naq_client_destroy(prod);
}

/* ---- 4: rotation ---- */

/* The kid in the args of the last job queued on "<queue>" at priority 2. */
static void queued_kid(naq_client *c, const char *queue, char *kid, size_t cap)
{
    const naq_config *cfg = naq_client_config(c);
    char subject[128];
    snprintf(subject, sizeof subject, "%s.queue.%s.2", cfg->subject_prefix, queue);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, cfg->url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetLastMsg(&m, js, cfg->job_stream, subject, NULL, &jerr), NATS_OK);
    json_t *job = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    assert_non_null(job);
    /* Version 2: a version-1 worker refuses it instead of running it. */
    assert_int_equal(json_integer_value(json_object_get(job, "version")), 2);
    const char *k = json_string_value(json_object_get(json_object_get(job, "args"), "kid"));
    assert_non_null(k);
    snprintf(kid, cap, "%s", k);
    json_decref(job);
    natsMsg_Destroy(m);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void after_rotation_old_jobs_decrypt_and_new_jobs_use_the_new_key(void **state)
{
    crypt_fx *cx = *state;
    fixture *fx = &cx->fx;
    naq_client *old = connect_keyed(&fx->srv, cx->b);
    naq_client *rotated = connect_keyed(&fx->srv, cx->ab);
    char old_id[NAQ_ID_SIZE], new_id[NAQ_ID_SIZE], kid[64];
    enqueue(old, "rot", "echo", "[\"old\"]", 0, old_id);
    queued_kid(old, "rot", kid, sizeof kid);
    assert_string_equal(kid, cx->kid_b);
    enqueue(rotated, "rot", "echo", "[\"new\"]", 0, new_id);
    queued_kid(rotated, "rot", kid, sizeof kid);
    assert_string_equal(kid, cx->kid_a);
    running r;
    start_worker(fx, &r, rotated, "rot");
    wait_event(rotated, old_id, NAQ_EVENT_COMPLETED, 15000);
    wait_event(rotated, new_id, NAQ_EVENT_COMPLETED, 15000);
    stop(&r);
    char *res = NULL;
    assert_int_equal(naq_job_result(rotated, old_id, 0, &res), NAQ_OK);
    assert_non_null(strstr(res, "{\"got\":[\"old\"]}"));
    free(res);
    /* Results are sealed with the new key: the old key alone cannot read. */
    assert_int_equal(naq_job_result(old, new_id, 0, &res), NAQ_OK);
    assert_null(strstr(res, "\"new\""));
    assert_non_null(strstr(res, cx->kid_a));
    free(res);
    naq_client_destroy(rotated);
    naq_client_destroy(old);
}

/* ---- 5: tampering ---- */

static void a_changed_ciphertext_byte_fails_the_job_with_DecryptError(void **state)
{
    crypt_fx *cx = *state;
    fixture *fx = &cx->fx;
    naq_client *prod = connect_keyed(&fx->srv, cx->a);
    char id[NAQ_ID_SIZE];
    enqueue(prod, "tamper", "echo", "[\"" MARKER "\"]", 2, id);
    /* Take the stored job, flip one ciphertext character, queue it again
     * under another message id. */
    const naq_config *cfg = naq_client_config(prod);
    char subject[128];
    snprintf(subject, sizeof subject, "%s.queue.tamper.2", cfg->subject_prefix);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, cfg->url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(js_GetLastMsg(&m, js, cfg->job_stream, subject, NULL, &jerr), NATS_OK);
    json_t *job = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    uint64_t seq = natsMsg_GetSequence(m);
    natsMsg_Destroy(m);
    json_t *args = json_object_get(job, "args");
    char ct[512];
    snprintf(ct, sizeof ct, "%s", json_string_value(json_object_get(args, "ct")));
    ct[5] = ct[5] == 'A' ? 'B' : 'A';
    json_object_set_new(args, "ct", json_string(ct));
    char *text = json_dumps(job, JSON_COMPACT);
    json_decref(job);
    assert_int_equal(js_DeleteMsg(js, cfg->job_stream, seq, NULL, &jerr), NATS_OK);
    natsMsg *t = NULL;
    assert_int_equal(natsMsg_Create(&t, subject, NULL, text, (int)strlen(text)), NATS_OK);
    natsMsgHeader_Set(t, "Nats-Msg-Id", "tampered-1");
    jsPubAck *ack = NULL;
    assert_int_equal(js_PublishMsg(&ack, js, t, NULL, &jerr), NATS_OK);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(t);
    free(text);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    seen_args[0] = '\0';
    running r;
    start_worker(fx, &r, prod, "tamper");
    wait_event(prod, id, NAQ_EVENT_MAX_RETRIES_EXCEEDED, 15000);
    stop(&r);
    assert_string_equal(seen_args, "");
    assert_int_equal(count_events(prod, id, NAQ_EVENT_FAILED), 1);
    naq_event f = last_of(prod, id, NAQ_EVENT_FAILED);
    assert_string_equal(f.error_type, "DecryptError");
    assert_non_null(strstr(f.error_message, "ciphertext was changed"));
    naq_event_clear(&f);
    naq_client_destroy(prod);
}

/* ---- 6: a schedule's args ---- */

typedef struct {
    naq_scheduler *s;
    pthread_t t;
} sched_thread;

static void *sched_main(void *arg)
{
    naq_scheduler_run(((sched_thread *)arg)->s);
    return NULL;
}

static void sched_start(sched_thread *st, naq_client *c, const char *id)
{
    naq_scheduler_opts o;
    naq_scheduler_opts_init(&o);
    o.scheduler_id = id;
    assert_int_equal(naq_scheduler_create(c, &o, &st->s), NAQ_OK);
    assert_int_equal(pthread_create(&st->t, NULL, sched_main, st), 0);
}

static naq_scheduler_stats sched_stop(sched_thread *st)
{
    naq_scheduler_stop(st->s);
    pthread_join(st->t, NULL);
    naq_scheduler_stats stats;
    naq_scheduler_get_stats(st->s, &stats);
    naq_scheduler_destroy(st->s);
    return stats;
}

static int saw_marker(void *ud)
{
    (void)ud;
    return strstr(seen_args, MARKER) != NULL;
}

static void
a_schedules_args_are_sealed_in_its_bucket_and_only_a_keyed_scheduler_triggers_it(void **state)
{
    crypt_fx *cx = *state;
    fixture *fx = &cx->fx;
    naq_client *keyed = connect_keyed(&fx->srv, cx->a);
    naq_schedule sc;
    naq_schedule_init(&sc);
    snprintf(sc.name, sizeof sc.name, "sealed-every");
    sc.kind = NAQ_SCHEDULE_EVERY;
    sc.every_ms = 1000;
    snprintf(sc.queue, sizeof sc.queue, "sq");
    snprintf(sc.function, sizeof sc.function, "echo");
    sc.args_json = strdup("[\"" MARKER "\"]");
    assert_int_equal(naq_schedule_add(keyed, &sc), NAQ_OK);
    assert_string_equal(sc.args_json, "[\"" MARKER "\"]"); /* the caller's copy stays plain */
    naq_schedule_clear(&sc);

    /* The bucket holds the envelope, not the args. */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    kvEntry *e = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, fx->srv.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(js_KeyValue(&kv, js, NAQ__SCHEDULES_BUCKET), NATS_OK);
    assert_int_equal(kvStore_Get(&e, kv, "sealed-every"), NATS_OK);
    const char *stored = kvEntry_ValueString(e);
    if (strstr(stored, MARKER) != NULL || strstr(stored, "\"naq_enc\"") == NULL)
        fail_msg("the schedule's args are stored in plaintext: %s", stored);
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    /* A scheduler without the key cannot open them: its triggers fail
     * (and are retried), no job is made. */
    naq_client *plain = connect_keyed(&fx->srv, NULL);
    sched_thread st;
    sched_start(&st, plain, "no-key");
    sleep_ms(2500);
    naq_scheduler_stats stats = sched_stop(&st);
    assert_int_equal(stats.triggers, 0);
    assert_true(stats.trigger_errors > 0);

    /* With the key it triggers, and a keyed worker gets the args. */
    seen_args[0] = '\0';
    running r;
    naq_client *wc = connect_keyed(&fx->srv, cx->a);
    start_worker(fx, &r, wc, "sq");
    sched_start(&st, keyed, "keyed");
    int ran = naq_test_wait_for(saw_marker, NULL, 15000);
    stats = sched_stop(&st);
    stop(&r);
    if (!ran)
        fail_msg("no job of the schedule reached the worker with its args (triggers %llu, "
                 "errors %llu)",
                 (unsigned long long)stats.triggers, (unsigned long long)stats.trigger_errors);
    assert_string_equal(seen_args, "[\"" MARKER "\"]");
    naq_client_destroy(wc);
    naq_client_destroy(plain);
    naq_client_destroy(keyed);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(
        a_keyed_worker_gets_plain_args_and_only_keyed_readers_see_the_result, crypt_setup,
        crypt_teardown),
    cmocka_unit_test_setup_teardown(a_marker_in_args_results_and_errors_is_nowhere_on_the_server,
                                    crypt_setup, crypt_teardown),
    cmocka_unit_test_setup_teardown(a_worker_without_the_key_fails_the_job_once_with_DecryptError,
                                    crypt_setup, crypt_teardown),
    cmocka_unit_test_setup_teardown(after_rotation_old_jobs_decrypt_and_new_jobs_use_the_new_key,
                                    crypt_setup, crypt_teardown),
    cmocka_unit_test_setup_teardown(a_changed_ciphertext_byte_fails_the_job_with_DecryptError,
                                    crypt_setup, crypt_teardown),
    cmocka_unit_test_setup_teardown(
        a_schedules_args_are_sealed_in_its_bucket_and_only_a_keyed_scheduler_triggers_it,
        crypt_setup, crypt_teardown),
};

NAQ_TEST_MAIN(tests)
