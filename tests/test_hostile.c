/*
 * test_hostile.c - a worker fed hostile job messages, published straight
 * to its queue as anyone allowed to publish there could: not JSON, binary
 * garbage, nesting deeper than the parser allows, a job missing fields, a
 * job of a wire version from the future, and one as large as the server
 * lets through. Each is recorded (a failed event with MalformedJob against
 * the job, or the worker's own worker_error event when there is no job id),
 * and the worker keeps running and completes the next good job.
 */
#include "harness.h"
#include "internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void publish(jsCtx *js, const char *subject, const void *data, size_t len)
{
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_Publish(&ack, js, subject, data, (int)len, NULL, &jerr);
    if (ns != NATS_OK)
        fail_msg("publish to %s: %s (%d)", subject, natsStatus_GetText(ns), (int)jerr);
    jsPubAck_Destroy(ack);
}

/* The job's last event, as `naq job status --format json` prints it. */
static char *status_of(const naq_test_server *srv, const char *id)
{
    char env_url[120];
    snprintf(env_url, sizeof env_url, "NAQ_URL=%s", srv->url);
    const char *env[] = {env_url, NULL};
    const char *argv[] = {"job", "status", id, "--format", "json", NULL};
    char *out = NULL;
    naq_test_run_cli(argv, env, &out, NULL);
    return out;
}

typedef struct {
    const naq_test_server *srv;
    const char *id;
    const char *want;
} wait_status;

static int has_status(void *ud)
{
    wait_status *w = ud;
    char *s = status_of(w->srv, w->id);
    int ok = strstr(s, w->want) != NULL;
    free(s);
    return ok;
}

static void expect_status(const naq_test_server *srv, const char *id, const char *a, const char *b)
{
    wait_status w = {srv, id, a};
    if (!naq_test_wait_for(has_status, &w, 15000)) {
        char *s = status_of(srv, id);
        fail_msg("job %s: wanted '%s', status is %s", id, a, s);
    }
    char *s = status_of(srv, id);
    if (b != NULL && strstr(s, b) == NULL)
        fail_msg("job %s: wanted '%s' in %s", id, b, s);
    free(s);
}

/* The worker's worker_error events that say MalformedJob. */
static int malformed_worker_errors(naq_client *c)
{
    int n = 0;
    for (uint64_t seq = 1;;) {
        jsDirectGetMsgOptions g;
        jsDirectGetMsgOptions_Init(&g);
        g.Sequence = seq;
        g.NextBySubject = "naq.workers.events.>";
        natsMsg *m = NULL;
        if (js_DirectGetMsg(&m, c->ejs, "NAQ_JOB_EVENTS", NULL, &g) != NATS_OK)
            break;
        const char *data = natsMsg_GetData(m);
        int len = natsMsg_GetDataLength(m);
        char *copy = strndup(data, (size_t)len);
        n += strstr(copy, "worker_error") != NULL && strstr(copy, "MalformedJob") != NULL;
        free(copy);
        const char *sq = NULL;
        natsMsgHeader_Get(m, "Nats-Sequence", &sq);
        seq = sq ? strtoull(sq, NULL, 10) + 1 : seq + 1;
        natsMsg_Destroy(m);
    }
    return n;
}

static int two_worker_errors(void *ud)
{
    return malformed_worker_errors(ud) >= 2;
}

static void a_worker_survives_hostile_job_messages(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);

    char log[300], env_url[120];
    snprintf(log, sizeof log, "%s/worker.log", srv.dir);
    snprintf(env_url, sizeof env_url, "NAQ_URL=%s", srv.url);
    const char *env[] = {env_url, "NAQ_ACK_WAIT=2s", NULL};
    const char *worker[] = {"worker", "-q", "h", "-c", "2", NULL};
    pid_t w = naq_test_spawn_cli(worker, env, log);

    const char *subject = "naq.queue.h.2";
    /* No job at all: not JSON, binary, too deeply nested. */
    publish(c->js, subject, "this is not a job", 17);
    const char binary[] = {'\x00', '\xff', '{', '"', '\x01', '\x7f', '\xc3'};
    publish(c->js, subject, binary, sizeof binary);
    size_t depth = 100000;
    char *deep = malloc(2 * depth);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    publish(c->js, subject, deep, 2 * depth);
    free(deep);

    /* Jobs that say who they are but nothing more, or too new a version. */
    const char *missing = "{\"job_id\":\"hostile-missing\",\"queue\":\"h\"}";
    publish(c->js, subject, missing, strlen(missing));
    const char *future = "{\"version\":999,\"job_id\":\"hostile-future\",\"queue\":\"h\","
                         "\"function\":\"exec\",\"args\":[\"true\"],\"enqueued_at\":1}";
    publish(c->js, subject, future, strlen(future));
    const char *wrong_types = "{\"version\":1,\"job_id\":\"hostile-types\",\"queue\":\"h\","
                              "\"function\":[1,2],\"args\":{\"argv\":7},\"max_retries\":\"x\"}";
    publish(c->js, subject, wrong_types, strlen(wrong_types));

    /* As large as the server lets through: an exec job whose one argument
     * is larger than any argument the kernel accepts. */
    size_t big = (size_t)natsConnection_GetMaxPayload(c->nc) - 4096;
    char *huge = malloc(big + 1);
    int head = snprintf(huge, big,
                        "{\"version\":1,\"job_id\":\"hostile-huge\",\"queue\":\"h\","
                        "\"function\":\"exec\",\"max_retries\":0,\"args\":"
                        "[\"echo\",\"");
    memset(huge + head, 'x', big - (size_t)head - 3);
    memcpy(huge + big - 3, "\"]}", 3);
    huge[big] = '\0';
    publish(c->js, subject, huge, big);
    free(huge);

    /* Then a good job. */
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "h";
    o.function = NAQ_EXEC_FUNCTION;
    o.args_json = "[\"true\"]";
    o.job_id = "good-after-hostile";
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(c, &o, id), NAQ_OK);

    expect_status(&srv, "good-after-hostile", "completed", NULL);
    expect_status(&srv, "hostile-missing", "failed", "MalformedJob");
    expect_status(&srv, "hostile-future", "MalformedJob", "999");
    expect_status(&srv, "hostile-types", "MalformedJob", NULL);
    expect_status(&srv, "hostile-huge", "\"job_id\":\"hostile-huge\"", NULL);
    char *s = status_of(&srv, "hostile-huge");
    if (getenv("NAQ_TEST_VERBOSE"))
        fprintf(stderr, "huge: %.300s\n", s);
    if (strstr(s, "failed") == NULL && strstr(s, "max_retries_exceeded") == NULL &&
        strstr(s, "completed") == NULL)
        fail_msg("the huge job did not end: %s", s);
    free(s);
    /* Not JSON and binary: no job to blame, so the worker says so in its
     * own events (the deep nesting too, as not JSON). */
    assert_true(naq_test_wait_for(two_worker_errors, c, 10000));

    /* Still running, still working. */
    assert_int_equal(kill(w, 0), 0);
    o.job_id = "good-at-the-end";
    assert_int_equal(naq_enqueue(c, &o, id), NAQ_OK);
    expect_status(&srv, "good-at-the-end", "completed", NULL);
    kill(w, SIGINT);
    int st = 0;
    waitpid(w, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_worker_survives_hostile_job_messages),
};

NAQ_TEST_MAIN(tests)
