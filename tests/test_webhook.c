/*
 * test_webhook.c - `naq events webhook` against a real local HTTP receiver
 * (libmicrohttpd in this process): every event arrives, signed, even when
 * the receiver is killed mid-run and brought back (a repeat is told by its
 * X-Naq-Event-Id); a receiver that keeps failing sends the event to the
 * event dead-letter stream after --max-deliveries.
 */
#include "harness.h"

#include "naq/webhook.h"

#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_GOT 1000
#define SECRET "s3cret-key"

/* ---- the receiver ---- */

typedef struct {
    struct MHD_Daemon *d;
    int port;
    int status; /* what it answers */
    pthread_mutex_t lock;
    char ids[MAX_GOT][NAQ_ID_SIZE]; /* X-Naq-Event-Id of each request, in order */
    int nrequests;
    int bad_signatures, id_mismatches;
} receiver;

typedef struct {
    char *body;
    size_t len;
} upload;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    (void)url;
    (void)method;
    (void)version;
    receiver *r = cls;
    upload *u = *state;
    if (u == NULL) {
        *state = calloc(1, sizeof(upload));
        return MHD_YES;
    }
    if (*size > 0) {
        u->body = realloc(u->body, u->len + *size + 1);
        memcpy(u->body + u->len, data, *size);
        u->len += *size;
        u->body[u->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Naq-Event-Id");
    const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Naq-Signature");
    char want[80] = "sha256=";
    naq_webhook_sign(SECRET, strlen(SECRET), u->body ? u->body : "", u->len, want + 7);
    json_t *o = json_loadb(u->body ? u->body : "", u->len, 0, NULL);
    const char *body_id = json_string_value(json_object_get(o, "event_id"));
    pthread_mutex_lock(&r->lock);
    if (sig == NULL || strcmp(sig, want) != 0)
        r->bad_signatures++;
    if (id == NULL || body_id == NULL || strcmp(id, body_id) != 0)
        r->id_mismatches++;
    if (r->nrequests < MAX_GOT && r->status == 200)
        snprintf(r->ids[r->nrequests++], NAQ_ID_SIZE, "%s", id ? id : "");
    int status = r->status;
    pthread_mutex_unlock(&r->lock);
    json_decref(o);
    static char ok[] = "ok\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof ok - 1, ok, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result res = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return res;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **state,
                    enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    upload *u = *state;
    if (u != NULL) {
        free(u->body);
        free(u);
    }
    *state = NULL;
}

static void receiver_start(receiver *r)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)r->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 100 && r->d == NULL; i++) {
        r->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, r,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
                                MHD_OPTION_NOTIFY_COMPLETED, on_done, r, MHD_OPTION_END);
        if (r->d == NULL)
            usleep(50000);
    }
    assert_non_null(r->d);
}

static void receiver_kill(receiver *r)
{
    MHD_stop_daemon(r->d);
    r->d = NULL;
}

/* Distinct ids received; *repeats gets requests beyond the first per id. */
static int distinct(receiver *r, int *repeats)
{
    pthread_mutex_lock(&r->lock);
    int n = 0;
    for (int i = 0; i < r->nrequests; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(r->ids[i], r->ids[j]) == 0;
        n += !seen;
    }
    *repeats = r->nrequests - n;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static int received(receiver *r, const char *id)
{
    pthread_mutex_lock(&r->lock);
    int got = 0;
    for (int i = 0; i < r->nrequests && !got; i++)
        got = strcmp(r->ids[i], id) == 0;
    pthread_mutex_unlock(&r->lock);
    return got;
}

/* ---- fixture ---- */

typedef struct {
    naq_test_server srv;
    char url[96], spool[320];
    const char *env[3];
    pid_t hook;
    receiver r;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    naq_test_server_start(&f->srv);
    snprintf(f->url, sizeof f->url, "NAQ_URL=%s", f->srv.url);
    snprintf(f->spool, sizeof f->spool, "NAQ_SPOOL_DIR=%s/spool", f->srv.dir);
    f->env[0] = f->url;
    f->env[1] = f->spool;
    pthread_mutex_init(&f->r.lock, NULL);
    f->r.port = naq_test_free_port();
    f->r.status = 200;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->hook > 0) {
        kill(f->hook, SIGKILL);
        waitpid(f->hook, NULL, 0);
    }
    if (f->r.d != NULL)
        receiver_kill(&f->r);
    pthread_mutex_destroy(&f->r.lock);
    naq_test_server_destroy(&f->srv);
    free(f);
    return 0;
}

static void enqueue(fixture *f, const char *queue, int n)
{
    for (int i = 0; i < n; i++) {
        const char *argv[] = {"enqueue", "-q", queue, "--", "true", NULL};
        char *out = NULL;
        assert_int_equal(naq_test_run_cli(argv, f->env, &out, NULL), 0);
        free(out);
    }
}

static int file_has(const char *path, const char *text)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return strstr(buf, text) != NULL;
}

/* Starts the webhook with extra flags and waits until it runs. */
static void start_hook(fixture *f, const char *group, const char *const *extra)
{
    char url[96], secret[320], log[320];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", f->r.port);
    snprintf(secret, sizeof secret, "%s/secret", f->srv.dir);
    snprintf(log, sizeof log, "%s/hook-%s.log", f->srv.dir, group);
    FILE *fp = fopen(secret, "w");
    assert_non_null(fp);
    fputs(SECRET "\n", fp); /* the trailing newline is not part of the key */
    fclose(fp);
    const char *argv[32] = {"events", "webhook",  "--url",         url,    "--group",   group,
                            "--type", "enqueued", "--secret-file", secret, "--timeout", "1s"};
    int n = 12;
    for (int i = 0; extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    f->hook = naq_test_spawn_cli(argv, f->env, log);
    for (int i = 0; i < 200 && !file_has(log, "posting to"); i++)
        usleep(50000);
    assert_true(file_has(log, "posting to"));
}

/* The event ids of the enqueued events of a queue. */
static json_t *enqueued_ids(fixture *f, const char *queue)
{
    const char *argv[] = {"events", "list",     "--type", "enqueued", "--queue",
                          queue,    "--format", "json",   NULL};
    char *out = NULL;
    assert_int_equal(naq_test_run_cli(argv, f->env, &out, NULL), 0);
    json_t *ids = json_array();
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(l, 0, NULL);
        json_array_append_new(ids, json_string(json_string_value(json_object_get(o, "event_id"))));
        json_decref(o);
    }
    free(out);
    return ids;
}

static void signature_is_hmac_sha256_of_the_body(void **state)
{
    (void)state;
    /* RFC 4231, test case 2. */
    char out[65];
    naq_webhook_sign("Jefe", 4, "what do ya want for nothing?", 28, out);
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void every_event_arrives_though_the_receiver_dies_and_comes_back(void **state)
{
    fixture *f = *state;
    receiver_start(&f->r);
    const char *extra[] = {"--backoff", "200ms", "--max-deliveries", "1000", NULL};
    start_hook(f, "hooks", extra);
    enqueue(f, "wq", 10);
    int repeats = 0;
    for (int i = 0; i < 200 && distinct(&f->r, &repeats) < 10; i++)
        usleep(50000);
    assert_int_equal(distinct(&f->r, &repeats), 10);

    receiver_kill(&f->r); /* mid-run: the next events find nobody */
    enqueue(f, "wq", 15);
    sleep(1);
    receiver_start(&f->r);

    json_t *ids = enqueued_ids(f, "wq");
    assert_int_equal(json_array_size(ids), 25);
    size_t i;
    json_t *v;
    for (int k = 0; k < 300; k++) {
        int all = 1;
        json_array_foreach(ids, i, v) all = all && received(&f->r, json_string_value(v));
        if (all)
            break;
        usleep(100000);
    }
    json_array_foreach(ids, i, v)
    {
        if (!received(&f->r, json_string_value(v)))
            fail_msg("event %s never arrived", json_string_value(v));
    }
    /* Exactly these, each recognisable: header id == body id, signed. */
    assert_int_equal(distinct(&f->r, &repeats), 25);
    assert_int_equal(f->r.bad_signatures, 0);
    assert_int_equal(f->r.id_mismatches, 0);
    json_decref(ids);
    kill(f->hook, SIGTERM);
    int st = 0;
    waitpid(f->hook, &st, 0);
    f->hook = 0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* The outage was real: deliveries failed and were retried. */
    char log[320], buf[8192] = "";
    snprintf(log, sizeof log, "%s/hook-hooks.log", f->srv.dir);
    FILE *fp = fopen(log, "r");
    assert_non_null(fp);
    buf[fread(buf, 1, sizeof buf - 1, fp)] = '\0';
    fclose(fp);
    const char *p = strstr(buf, "delivered, ");
    assert_non_null(p);
    assert_true(atoi(p + strlen("delivered, ")) > 0);
}

static void a_receiver_that_keeps_failing_gets_the_event_dead_lettered(void **state)
{
    fixture *f = *state;
    f->r.status = 503;
    receiver_start(&f->r);
    const char *extra[] = {"--backoff", "100ms", "--max-deliveries", "2", NULL};
    start_hook(f, "failing", extra);
    enqueue(f, "dq", 1);
    const char *argv[] = {"events", "dlq", "list", "--group", "failing", "--format", "json", NULL};
    char *out = NULL;
    for (int i = 0; i < 100; i++) {
        free(out);
        out = NULL;
        assert_int_equal(naq_test_run_cli(argv, f->env, &out, NULL), 0);
        if (strstr(out, "HTTP 503") != NULL)
            break;
        usleep(100000);
    }
    if (strstr(out, "HTTP 503") == NULL)
        fail_msg("no dead-letter entry saying HTTP 503: '%s'", out);
    assert_non_null(strstr(out, "\"enqueued\""));
    free(out);
}

static void bad_usage_exits_2(void **state)
{
    fixture *f = *state;
    const char *nourl[] = {"events", "webhook", NULL};
    const char *ftp[] = {"events", "webhook", "--url", "ftp://x/", NULL};
    const char *type[] = {"events", "webhook", "--url", "http://x/", "--type", "nope", NULL};
    const char *const *cases[] = {nourl, ftp, type};
    for (size_t i = 0; i < 3; i++) {
        char *out = NULL, *err = NULL;
        assert_int_equal(naq_test_run_cli(cases[i], f->env, &out, &err), 2);
        free(out);
        free(err);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(signature_is_hmac_sha256_of_the_body),
    cmocka_unit_test_setup_teardown(every_event_arrives_though_the_receiver_dies_and_comes_back,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(a_receiver_that_keeps_failing_gets_the_event_dead_lettered,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(bad_usage_exits_2, setup, teardown),
};

NAQ_TEST_MAIN(tests)
