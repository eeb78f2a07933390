/*
 * test_job.c - the job wire format and naq_enqueue, against a real
 * nats-server: what is stored, with which headers, what is refused, and
 * that a refused job leaves no trace (nothing queued, no event logged);
 * the lifecycle fields of issue 3 and the retry policy's text form.
 */
#include "harness.h"

#include "jobs/jobs.h"

#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    naq_test_server srv;
    naq_client *c;
    natsConnection *nc; /* the tests' own view of the server */
    jsCtx *js;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    naq_test_server_start(&fx->srv);
    fx->c = naq_test_connect(&fx->srv);
    assert_int_equal(natsConnection_ConnectTo(&fx->nc, fx->srv.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&fx->js, fx->nc, NULL), NATS_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    jsCtx_Destroy(fx->js);
    natsConnection_Destroy(fx->nc);
    naq_client_destroy(fx->c);
    naq_test_server_destroy(&fx->srv);
    free(fx);
    return 0;
}

static uint64_t queued_messages(fixture *fx)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, fx->js, "NAQ_JOBS", NULL, &jerr);
    if (ns != NATS_OK)
        fail_msg("stream info: %s (%d)", natsStatus_GetText(ns), (int)jerr);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

static uint64_t events_logged(fixture *fx)
{
    naq_logger_stats st;
    naq_client_logger_stats(fx->c, &st);
    return st.logged;
}

/* The last message stored on a subject of the job stream. */
static natsMsg *last_job_msg(fixture *fx, const char *subject)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetLastMsg(&m, fx->js, "NAQ_JOBS", subject, NULL, &jerr);
    if (ns != NATS_OK)
        fail_msg("no job on %s: %s (%d)", subject, natsStatus_GetText(ns), (int)jerr);
    return m;
}

static void assert_json_equal(const char *a, const char *b)
{
    json_t *ja = json_loads(a, JSON_DECODE_ANY, NULL);
    json_t *jb = json_loads(b, JSON_DECODE_ANY, NULL);
    if (ja == NULL || jb == NULL || !json_equal(ja, jb))
        fail_msg("JSON differs: %s vs %s", a, b);
    json_decref(ja);
    json_decref(jb);
}

/* ---- codec ---- */

static void job_codec_round_trips_every_field(void **state)
{
    (void)state;
    naq_job j = {0};
    j.version = NAQ_WIRE_VERSION;
    snprintf(j.id, sizeof j.id, "job-1");
    snprintf(j.queue, sizeof j.queue, "emails");
    snprintf(j.function, sizeof j.function, "billing.send_invoice");
    j.args_json = "{\"to\":\"a@b.c\",\"n\":[1,2.5,null,true],\"u\":\"\\u00e9\"}";
    j.tags_json = "{\"team\":\"billing\",\"env\":\"prod\"}";
    j.max_retries = 3;
    j.timeout_ms = 30000;
    j.priority = NAQ_PRIORITY_HIGH;
    j.enqueued_at = 1763900000.1234567;

    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_job_encode(&j, &json, &len), NAQ_OK);
    assert_int_equal(len, strlen(json));
    naq_job d;
    naq_status s = naq_job_decode(json, len, &d);
    if (s != NAQ_OK)
        fail_msg("decode %s: %s", json, naq_last_error());
    assert_int_equal(d.version, NAQ_WIRE_VERSION);
    assert_string_equal(d.id, "job-1");
    assert_string_equal(d.queue, "emails");
    assert_string_equal(d.function, "billing.send_invoice");
    assert_json_equal(d.args_json, j.args_json);
    assert_json_equal(d.tags_json, j.tags_json);
    assert_int_equal(d.max_retries, 3);
    assert_int_equal(d.timeout_ms, 30000);
    assert_int_equal(d.priority, NAQ_PRIORITY_HIGH);
    assert_true(d.enqueued_at == j.enqueued_at);
    assert_int_equal(d.attempt, 0); /* set by the worker, never on the wire */
    naq_job_clear(&d);
    free(json);
}

static void job_decode_fills_defaults_for_optional_fields(void **state)
{
    (void)state;
    const char *json = "{\"version\":1,\"job_id\":\"j\",\"queue\":\"q\",\"function\":\"f\","
                       "\"timeout_ms\":1500.0,\"unknown_field\":{\"x\":1}}";
    naq_job d;
    assert_int_equal(naq_job_decode(json, strlen(json), &d), NAQ_OK);
    assert_string_equal(d.args_json, "[]");
    assert_null(d.tags_json);
    assert_int_equal(d.max_retries, 0);
    assert_int_equal(d.timeout_ms, 1500);
    assert_int_equal(d.priority, NAQ_PRIORITY_NORMAL);
    naq_job_clear(&d);
}

static void expect_codec_error(const char *json, const char *id, const char *words)
{
    naq_job d;
    naq_status s = naq_job_decode(json, strlen(json), &d);
    if (s != NAQ_ERR_CODEC)
        fail_msg("decoding %s gave %s, wanted a codec error", json, naq_status_str(s));
    if (strstr(naq_last_error(), words) == NULL)
        fail_msg("message '%s' does not mention '%s'", naq_last_error(), words);
    assert_string_equal(d.id, id);
    naq_job_clear(&d);
}

static void job_decode_refuses_malformed_jobs_but_keeps_the_id(void **state)
{
    (void)state;
    expect_codec_error("not json", "", "not JSON");
    expect_codec_error("[1,2]", "", "not a JSON object");
    expect_codec_error("{\"version\":1,\"queue\":\"q\",\"function\":\"f\"}", "", "job_id");
    expect_codec_error("{\"version\":1,\"job_id\":\"a.b\",\"queue\":\"q\",\"function\":\"f\"}", "",
                       "job_id");
    /* The id is read first, so a worker can record the failure against it. */
    expect_codec_error("{\"version\":1,\"job_id\":\"j1\",\"queue\":\"q\"}", "j1", "function");
    expect_codec_error("{\"version\":99,\"job_id\":\"j2\",\"queue\":\"q\",\"function\":\"f\"}",
                       "j2", "version");
    expect_codec_error(
        "{\"version\":1,\"job_id\":\"j3\",\"queue\":\"q\",\"function\":\"f\",\"priority\":7}", "j3",
        "priority");
    expect_codec_error(
        "{\"version\":1,\"job_id\":\"j4\",\"queue\":\"q\",\"function\":\"f\",\"tags\":{\"a\":1}}",
        "j4", "tag");
}

/* ---- enqueue ---- */

static void enqueue_returns_an_id_and_the_job_is_stored_with_its_headers(void **state)
{
    fixture *fx = *state;
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "emails";
    o.function = "send_email";
    o.args_json = "{\"to\": \"a@b.c\"}";
    o.tags_json = "{\"team\": \"billing\"}";
    o.max_retries = 2;
    o.timeout_ms = 5000;
    o.priority = NAQ_PRIORITY_CRITICAL;
    char id[NAQ_ID_SIZE];
    naq_status s = naq_enqueue(fx->c, &o, id);
    if (s != NAQ_OK)
        fail_msg("enqueue: %s", naq_last_error());
    assert_int_equal(naq_id_validate("job id", id), NAQ_OK);
    assert_int_equal(queued_messages(fx), 1);

    natsMsg *m = last_job_msg(fx, "naq.queue.emails.4");
    const char *v = NULL;
    assert_int_equal(natsMsgHeader_Get(m, "Nats-Msg-Id", &v), NATS_OK);
    assert_string_equal(v, id);
    assert_int_equal(natsMsgHeader_Get(m, "Naq-Queue", &v), NATS_OK);
    assert_string_equal(v, "emails");
    assert_int_equal(natsMsgHeader_Get(m, "Naq-Function", &v), NATS_OK);
    assert_string_equal(v, "send_email");
    naq_job j;
    assert_int_equal(naq_job_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &j),
                     NAQ_OK);
    assert_string_equal(j.id, id);
    assert_string_equal(j.queue, "emails");
    assert_string_equal(j.function, "send_email");
    assert_json_equal(j.args_json, "{\"to\":\"a@b.c\"}");
    assert_json_equal(j.tags_json, "{\"team\":\"billing\"}");
    assert_int_equal(j.max_retries, 2);
    assert_int_equal(j.timeout_ms, 5000);
    assert_int_equal(j.priority, 4);
    assert_true(j.enqueued_at > 1.7e9);
    naq_job_clear(&j);
    natsMsg_Destroy(m);
}

static void enqueue_logs_an_enqueued_event_with_function_priority_and_tags(void **state)
{
    fixture *fx = *state;
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "reports";
    o.function = "exec";
    o.args_json = "[\"true\"]";
    o.tags_json = "{\"owner\": \"ops\"}";
    o.max_retries = 1;
    o.job_id = "report-42";
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
    assert_string_equal(id, "report-42");
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    naq_event_list l;
    naq_status s = naq_job_history(fx->c, id, &l);
    if (s != NAQ_OK)
        fail_msg("history: %s", naq_last_error());
    assert_int_equal(l.count, 1);
    naq_event *e = &l.items[0];
    assert_int_equal(e->type, NAQ_EVENT_ENQUEUED);
    assert_string_equal(e->job_id, "report-42");
    assert_string_equal(e->queue_name, "reports");
    assert_json_equal(e->details_json, "{\"function\":\"exec\",\"priority\":2,\"max_retries\":1}");
    assert_json_equal(e->tags_json, "{\"owner\":\"ops\"}");
    naq_event_list_free(&l);
}

/* Enqueues o, expects NAQ_ERR_INVALID_ARG naming `words`, and checks that
 * nothing was queued and no event logged. */
static void expect_refused(fixture *fx, const naq_job_opts *o, const char *words)
{
    uint64_t before = queued_messages(fx), logged = events_logged(fx);
    char id[NAQ_ID_SIZE] = "untouched";
    naq_status s = naq_enqueue(fx->c, o, id);
    if (s != NAQ_ERR_INVALID_ARG)
        fail_msg("enqueue (%s) gave %s, wanted invalid argument", words, naq_status_str(s));
    if (strstr(naq_last_error(), words) == NULL)
        fail_msg("message '%s' does not mention '%s'", naq_last_error(), words);
    assert_string_equal(id, "");
    assert_int_equal(queued_messages(fx), before);
    assert_int_equal(events_logged(fx), logged);
}

static void enqueue_refuses_bad_queue_names_and_publishes_nothing(void **state)
{
    fixture *fx = *state;
    char longname[201];
    memset(longname, 'q', 200);
    longname[200] = '\0';
    const char *bad[] = {"a.b", "a b", "", "a*", "a>", longname, NULL};
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.function = "f";
    for (int i = 0; bad[i] != NULL; i++) {
        o.queue = bad[i];
        expect_refused(fx, &o, "queue name");
    }
    o.queue = NULL;
    expect_refused(fx, &o, "queue name");
}

static void enqueue_refuses_bad_options_and_publishes_nothing(void **state)
{
    fixture *fx = *state;
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "q";
    o.function = "f";

    o.args_json = "{\"to\": ";
    expect_refused(fx, &o, "args are not valid JSON");
    o.args_json = NULL;

    o.tags_json = "[\"a\"]";
    expect_refused(fx, &o, "tags must be a JSON object");
    o.tags_json = "{\"a\": 1}";
    expect_refused(fx, &o, "tag 'a' is not a string");
    o.tags_json = "{bad";
    expect_refused(fx, &o, "tags are not valid JSON");
    o.tags_json = NULL;

    o.priority = 5;
    expect_refused(fx, &o, "priority 5 is out of range");
    o.priority = -1;
    expect_refused(fx, &o, "priority -1 is out of range");
    o.priority = NAQ_PRIORITY_NORMAL;

    o.max_retries = -1;
    expect_refused(fx, &o, "max_retries");
    o.max_retries = 0;
    o.timeout_ms = -5;
    expect_refused(fx, &o, "timeout_ms");
    o.timeout_ms = 0;

    o.function = "";
    expect_refused(fx, &o, "function name is empty");
    o.function = "send email";
    expect_refused(fx, &o, "function name");
    o.function = "f";

    o.job_id = "a.b";
    expect_refused(fx, &o, "job id");
    o.job_id = NULL;

    /* Still fine after all that. */
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
    assert_int_equal(queued_messages(fx), 1);
}

static void enqueue_refuses_an_exec_job_without_a_command_and_publishes_nothing(void **state)
{
    fixture *fx = *state;
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "q";
    o.function = NAQ_EXEC_FUNCTION;
    static const char *const bad[][2] = {
        {NULL, "no command to run"},
        {"42", "no command to run"},
        {"{\"argv\": []}", "no command to run"},
        {"[]", "no command to run"},
        {"{\"argv\": [\"\"]}", "argv[0] is not a non-empty string"},
        {"{\"argv\": [\"echo\", 1]}", "argv[1] is not a string"},
        {"{\"argv\": [\"echo\"], \"env\": [\"A=1\"]}", "env must be an object"},
        {"{\"argv\": [\"echo\"], \"env\": {\"A=B\": \"1\"}}", "env entry 'A=B'"},
        {"{\"argv\": [\"echo\"], \"cwd\": 7}", "cwd a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.args_json = bad[i][0];
        expect_refused(fx, &o, bad[i][1]);
        /* The message shows the shape to send. */
        assert_non_null(strstr(naq_last_error(), "{\"argv\": [\"cmd\""));
    }
    /* The handler's own forms pass; other functions take any JSON. */
    char id[NAQ_ID_SIZE];
    o.args_json = "[\"echo\", \"hi\"]";
    assert_int_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
    o.args_json = "{\"argv\": [\"env\"], \"env\": {\"A\": \"1\"}, \"cwd\": \"/\"}";
    assert_int_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
    o.function = "f";
    o.args_json = "42";
    assert_int_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
    assert_int_equal(queued_messages(fx), 3);
}

static void enqueue_of_the_same_job_id_twice_stores_it_once(void **state)
{
    fixture *fx = *state;
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "q";
    o.function = "f";
    o.job_id = "once-only";
    char id1[NAQ_ID_SIZE], id2[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(fx->c, &o, id1), NAQ_OK);
    assert_int_equal(naq_enqueue(fx->c, &o, id2), NAQ_OK);
    assert_string_equal(id1, "once-only");
    assert_string_equal(id2, "once-only");
    assert_int_equal(queued_messages(fx), 1);
    /* The duplicate logs no second "enqueued". */
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    naq_event_list l;
    assert_int_equal(naq_job_history(fx->c, "once-only", &l), NAQ_OK);
    assert_int_equal(l.count, 1);
    naq_event_list_free(&l);
}

/* A first enqueue whose job the server stored but whose reply was lost
 * (a timeout, which tells the caller to enqueue again with the same id)
 * logged nothing: the repeat, a duplicate, logs "enqueued". */
static void a_repeated_enqueue_after_a_lost_reply_logs_the_enqueued_event(void **state)
{
    fixture *fx = *state;
    natsMsg *m = NULL;
    assert_int_equal(naq__job_msg_to("naq.queue.q.2", "lost-reply", "q", "f", "{}", 2, NULL, &m),
                     NAQ_OK);
    jsPubAck *ack = NULL;
    assert_int_equal(js_PublishMsg(&ack, fx->js, m, NULL, NULL), NATS_OK);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(m);

    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "q";
    o.function = "f";
    o.job_id = "lost-reply";
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
    assert_int_equal(queued_messages(fx), 1);
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    naq_event_list l;
    assert_int_equal(naq_job_history(fx->c, "lost-reply", &l), NAQ_OK);
    assert_int_equal(l.count, 1);
    assert_int_equal(l.items[0].type, NAQ_EVENT_ENQUEUED);
    naq_event_list_free(&l);
}

static void enqueue_fails_and_logs_nothing_when_the_job_stream_is_gone(void **state)
{
    fixture *fx = *state;
    assert_int_equal(js_DeleteStream(fx->js, "NAQ_JOBS", NULL, NULL), NATS_OK);
    uint64_t logged = events_logged(fx);
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "q";
    o.function = "f";
    char id[NAQ_ID_SIZE];
    naq_status s = naq_enqueue(fx->c, &o, id);
    assert_int_not_equal(s, NAQ_OK);
    if (strstr(naq_last_error(), "not queued") == NULL)
        fail_msg("message '%s' does not say the job was not queued", naq_last_error());
    assert_string_equal(id, "");
    assert_int_equal(events_logged(fx), logged);
}

static void enqueue_refuses_a_job_larger_than_the_server_accepts(void **state)
{
    fixture *fx = *state;
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n + 3);
    assert_non_null(big);
    big[0] = '"';
    memset(big + 1, 'x', n);
    big[n + 1] = '"';
    big[n + 2] = '\0';
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "q";
    o.function = "f";
    o.args_json = big;
    expect_refused(fx, &o, "max_payload");
    free(big);
}

/* ---- the lifecycle fields (issue 3) ---- */

static void job_codec_round_trips_every_lifecycle_field(void **state)
{
    (void)state;
    naq_job j = {0};
    j.version = NAQ_WIRE_VERSION;
    snprintf(j.id, sizeof j.id, "job-2");
    snprintf(j.queue, sizeof j.queue, "q");
    snprintf(j.function, sizeof j.function, "f");
    j.args_json = "[]";
    j.max_retries = 4;
    j.retry.kind = NAQ_BACKOFF_LIST;
    j.retry.delay_ms = 100;
    j.retry.max_delay_ms = 0;
    j.retry.jitter = 0.25;
    j.retry.delays_ms[0] = 100;
    j.retry.delays_ms[1] = 5000;
    j.retry.delays_ms[2] = 30000;
    j.retry.n_delays = 3;
    j.retry.retry_on = "Timeout,ExitStatus";
    j.retry.skip_on = "Fatal";
    j.ttl_ms = 60000;
    char *deps[] = {"a", "b-2", NULL};
    j.depends_on = deps;
    j.run_on_dependency_failure = 1;
    j.unique_key = "user/42 \xc3\xa9";
    snprintf(j.schedule_id, sizeof j.schedule_id, "nightly");
    j.result_ttl_ms = 3600000;
    j.original_job_id = "job-1";

    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_job_encode(&j, &json, &len), NAQ_OK);
    naq_job d;
    naq_status s = naq_job_decode(json, len, &d);
    if (s != NAQ_OK)
        fail_msg("decode %s: %s", json, naq_last_error());
    assert_int_equal(d.max_retries, 4);
    assert_int_equal(d.retry.kind, NAQ_BACKOFF_LIST);
    assert_int_equal(d.retry.delay_ms, 100);
    assert_int_equal(d.retry.max_delay_ms, 0);
    assert_true(d.retry.jitter == 0.25);
    assert_int_equal(d.retry.n_delays, 3);
    assert_int_equal(d.retry.delays_ms[0], 100);
    assert_int_equal(d.retry.delays_ms[1], 5000);
    assert_int_equal(d.retry.delays_ms[2], 30000);
    assert_string_equal(d.retry.retry_on, "Timeout,ExitStatus");
    assert_string_equal(d.retry.skip_on, "Fatal");
    assert_int_equal(d.ttl_ms, 60000);
    assert_non_null(d.depends_on);
    assert_string_equal(d.depends_on[0], "a");
    assert_string_equal(d.depends_on[1], "b-2");
    assert_null(d.depends_on[2]);
    assert_int_equal(d.run_on_dependency_failure, 1);
    assert_string_equal(d.unique_key, "user/42 \xc3\xa9");
    assert_string_equal(d.schedule_id, "nightly");
    assert_int_equal(d.result_ttl_ms, 3600000);
    assert_string_equal(d.original_job_id, "job-1");
    /* Encoding the decoded job gives the same JSON. */
    char *again = NULL;
    assert_int_equal(naq_job_encode(&d, &again, &len), NAQ_OK);
    assert_json_equal(json, again);
    free(again);
    naq_job_clear(&d);
    free(json);
}

static void job_codec_writes_lifecycle_fields_only_when_they_say_something(void **state)
{
    (void)state;
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "q";
    o.function = "f";
    naq_job j;
    assert_int_equal(naq__job_from_opts(NULL, &o, &j), NAQ_OK);
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_job_encode(&j, &json, &len), NAQ_OK);
    json_t *v = json_loads(json, 0, NULL);
    const char *absent[] = {
        "retry",      "ttl_ms",      "depends_on",      "run_on_dependency_failure",
        "unique_key", "schedule_id", "original_job_id", NULL};
    for (int i = 0; absent[i] != NULL; i++)
        if (json_object_get(v, absent[i]) != NULL)
            fail_msg("%s written for a plain job: %s", absent[i], json);
    assert_int_equal(json_integer_value(json_object_get(v, "result_ttl_ms")), 24 * 3600 * 1000);
    json_decref(v);
    free(json);
    naq_job_clear(&j);

    /* A job that may be retried carries its policy, defaults included. */
    o.max_retries = 2;
    assert_int_equal(naq__job_from_opts(NULL, &o, &j), NAQ_OK);
    assert_int_equal(naq_job_encode(&j, &json, &len), NAQ_OK);
    v = json_loads(json, 0, NULL);
    char *retry = json_dumps(json_object_get(v, "retry"), JSON_COMPACT);
    assert_non_null(retry);
    assert_json_equal(retry,
                      "{\"backoff\":\"exponential\",\"delay_ms\":1000,\"max_delay_ms\":300000}");
    free(retry);
    json_decref(v);
    free(json);
    naq_job_clear(&j);
}

static void job_decode_gives_old_jobs_the_lifecycle_defaults(void **state)
{
    (void)state;
    const char *json = "{\"version\":1,\"job_id\":\"j\",\"queue\":\"q\",\"function\":\"f\","
                       "\"max_retries\":3}";
    naq_job d;
    assert_int_equal(naq_job_decode(json, strlen(json), &d), NAQ_OK);
    assert_int_equal(d.retry.kind, NAQ_BACKOFF_EXPONENTIAL);
    assert_int_equal(d.retry.delay_ms, 1000);
    assert_int_equal(d.retry.max_delay_ms, 300000);
    assert_true(d.retry.jitter == 0);
    assert_null(d.retry.retry_on);
    assert_null(d.retry.skip_on);
    assert_int_equal(d.ttl_ms, 0);
    assert_null(d.depends_on);
    assert_int_equal(d.run_on_dependency_failure, 0);
    assert_null(d.unique_key);
    assert_string_equal(d.schedule_id, "");
    assert_int_equal(d.result_ttl_ms, NAQ_RESULTS_TTL_MS);
    assert_null(d.original_job_id);
    naq_job_clear(&d);
}

static void job_decode_refuses_malformed_lifecycle_fields(void **state)
{
    (void)state;
#define JOB(rest) "{\"version\":1,\"job_id\":\"j5\",\"queue\":\"q\",\"function\":\"f\"," rest "}"
    expect_codec_error(JOB("\"retry\":{\"backoff\":\"random\"}"), "j5", "retry.backoff");
    expect_codec_error(JOB("\"retry\":{\"jitter\":2}"), "j5", "retry.jitter");
    expect_codec_error(JOB("\"retry\":{\"delay_ms\":-1}"), "j5", "retry.delay_ms");
    expect_codec_error(JOB("\"retry\":{\"delays_ms\":[1,\"x\"]}"), "j5", "retry.delays_ms");
    expect_codec_error(JOB("\"retry\":{\"retry_on\":[1]}"), "j5", "retry.retry_on");
    expect_codec_error(JOB("\"retry\":7"), "j5", "'retry'");
    expect_codec_error(JOB("\"ttl_ms\":-5"), "j5", "ttl_ms");
    expect_codec_error(JOB("\"depends_on\":[\"a.b\"]"), "j5", "depends_on");
    expect_codec_error(JOB("\"depends_on\":\"a\""), "j5", "depends_on");
    expect_codec_error(JOB("\"run_on_dependency_failure\":\"yes\""), "j5",
                       "run_on_dependency_failure");
    expect_codec_error(JOB("\"unique_key\":\"\""), "j5", "unique_key");
    expect_codec_error(JOB("\"schedule_id\":\"a b\""), "j5", "schedule_id");
    expect_codec_error(JOB("\"original_job_id\":\"x*y\""), "j5", "original_job_id");
#undef JOB
}

static void retry_policy_parse_reads_every_form(void **state)
{
    (void)state;
    naq_retry_policy p;
    naq_retry_policy_init(&p);
    p.retry_on = "Timeout"; /* kept by parse */
    assert_int_equal(naq_retry_policy_parse("fixed:5s", &p), NAQ_OK);
    assert_int_equal(p.kind, NAQ_BACKOFF_FIXED);
    assert_int_equal(p.delay_ms, 5000);
    assert_int_equal(p.max_delay_ms, 0);
    assert_string_equal(p.retry_on, "Timeout");

    assert_int_equal(naq_retry_policy_parse("linear:1s", &p), NAQ_OK);
    assert_int_equal(p.kind, NAQ_BACKOFF_LINEAR);
    assert_int_equal(p.delay_ms, 1000);
    assert_int_equal(p.max_delay_ms, 300000);
    assert_int_equal(naq_retry_policy_parse("linear:250ms:10s", &p), NAQ_OK);
    assert_int_equal(p.delay_ms, 250);
    assert_int_equal(p.max_delay_ms, 10000);

    assert_int_equal(naq_retry_policy_parse("exponential:1s", &p), NAQ_OK);
    assert_int_equal(p.kind, NAQ_BACKOFF_EXPONENTIAL);
    assert_int_equal(p.max_delay_ms, 300000);
    assert_true(p.jitter == 0);
    assert_int_equal(naq_retry_policy_parse("exponential:2s:1m:0.2", &p), NAQ_OK);
    assert_int_equal(p.delay_ms, 2000);
    assert_int_equal(p.max_delay_ms, 60000);
    assert_true(p.jitter == 0.2);
    assert_int_equal(naq_retry_policy_parse("exponential:1s:0:50%", &p), NAQ_OK);
    assert_int_equal(p.max_delay_ms, 0);
    assert_true(p.jitter == 0.5);

    assert_int_equal(naq_retry_policy_parse("list:1s,5s,30s", &p), NAQ_OK);
    assert_int_equal(p.kind, NAQ_BACKOFF_LIST);
    assert_int_equal(p.n_delays, 3);
    assert_int_equal(p.delays_ms[0], 1000);
    assert_int_equal(p.delays_ms[1], 5000);
    assert_int_equal(p.delays_ms[2], 30000);
    assert_true(p.jitter == 0);
}

static void retry_policy_parse_refuses_malformed_text_and_keeps_the_policy(void **state)
{
    (void)state;
    static const struct {
        const char *text, *words;
    } bad[] = {
        {"random:1s", "unknown kind"},
        {"fixed", "no delay"},
        {"fixed:", "no delay"},
        {"fixed:soon", "not a duration"},
        {"fixed:1s:2s", "too many parts"},
        {"linear:10m:1m", "cap"},
        {"exponential:1s:1m:2", "jitter"},
        {"exponential:1s:1m:0.1:x", "too many parts"},
        {"list:1s,,2s", "not a duration"},
        {"list:1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "too many parts"},
        {"fixed:400d", "a year"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        naq_retry_policy p;
        naq_retry_policy_init(&p);
        if (naq_retry_policy_parse(bad[i].text, &p) != NAQ_ERR_INVALID_ARG)
            fail_msg("'%s' was accepted", bad[i].text);
        if (strstr(naq_last_error(), bad[i].words) == NULL)
            fail_msg("'%s': message '%s' does not mention '%s'", bad[i].text, naq_last_error(),
                     bad[i].words);
        assert_int_equal(p.kind, NAQ_BACKOFF_EXPONENTIAL); /* unchanged */
        assert_int_equal(p.delay_ms, 1000);
    }
}

static void job_opts_init_sets_the_lifecycle_defaults(void **state)
{
    (void)state;
    naq_job_opts o;
    naq_job_opts_init(&o);
    assert_int_equal(o.retry.kind, NAQ_BACKOFF_EXPONENTIAL);
    assert_int_equal(o.retry.delay_ms, 1000);
    assert_int_equal(o.retry.max_delay_ms, 5 * 60 * 1000);
    assert_true(o.retry.jitter == 0);
    assert_int_equal(o.result_ttl_ms, 24LL * 3600 * 1000);
    assert_int_equal(o.ttl_ms, 0);
    assert_null(o.depends_on);
    assert_null(o.unique_key);
}

static void enqueue_refuses_bad_lifecycle_options_and_publishes_nothing(void **state)
{
    fixture *fx = *state;
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "q";
    o.function = "f";

    o.ttl_ms = -1;
    expect_refused(fx, &o, "ttl_ms");
    o.ttl_ms = 0;
    o.result_ttl_ms = -1;
    expect_refused(fx, &o, "result_ttl_ms");
    /* Longer than the outcome stream keeps anything: the limit is named. */
    o.result_ttl_ms = NAQ_RESULTS_MAX_TTL_MS + 1;
    expect_refused(fx, &o, "7 days at most");
    o.result_ttl_ms = 0;

    o.retry.jitter = 1.5;
    expect_refused(fx, &o, "jitter");
    o.retry.jitter = 0;
    o.retry.delay_ms = 10 * 60 * 1000; /* over the 5 min cap */
    expect_refused(fx, &o, "cap");
    o.retry.delay_ms = 1000;
    o.retry.kind = NAQ_BACKOFF_LIST;
    expect_refused(fx, &o, "delay list");
    o.retry.kind = (naq_backoff_kind)9;
    expect_refused(fx, &o, "kind");
    o.retry.kind = NAQ_BACKOFF_EXPONENTIAL;
    o.retry.retry_on = "Timeout,,Exit";
    expect_refused(fx, &o, "retry_on");
    o.retry.retry_on = NULL;

    const char *self[] = {"me", NULL};
    o.job_id = "me";
    o.depends_on = self;
    expect_refused(fx, &o, "itself");
    o.job_id = NULL;
    const char *twice[] = {"a", "b", "a", NULL};
    o.depends_on = twice;
    expect_refused(fx, &o, "twice");
    const char *bad[] = {"a", "b.c", NULL};
    o.depends_on = bad;
    expect_refused(fx, &o, "depends_on");
    o.depends_on = NULL;

    o.unique_key = "";
    expect_refused(fx, &o, "unique_key");
    char *long_key = malloc(NAQ_UNIQUE_KEY_MAX + 2);
    memset(long_key, 'k', NAQ_UNIQUE_KEY_MAX + 1);
    long_key[NAQ_UNIQUE_KEY_MAX + 1] = '\0';
    o.unique_key = long_key;
    expect_refused(fx, &o, "unique_key");
    free(long_key);
    o.unique_key = NULL;

    o.schedule_id = "a b";
    expect_refused(fx, &o, "schedule id");
    o.schedule_id = NULL;

    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
}

static void enqueue_stores_the_lifecycle_options_in_the_job(void **state)
{
    fixture *fx = *state;
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "q";
    o.function = "f";
    o.max_retries = 3;
    assert_int_equal(naq_retry_policy_parse("linear:2s:20s", &o.retry), NAQ_OK);
    o.retry.skip_on = "Fatal";
    o.ttl_ms = 9000;
    o.result_ttl_ms = 60000;
    o.schedule_id = "hourly";
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_enqueue(fx->c, &o, id), NAQ_OK);
    natsMsg *m = last_job_msg(fx, "naq.queue.q.2");
    naq_job j;
    assert_int_equal(naq_job_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &j),
                     NAQ_OK);
    assert_string_equal(j.id, id);
    assert_int_equal(j.retry.kind, NAQ_BACKOFF_LINEAR);
    assert_int_equal(j.retry.delay_ms, 2000);
    assert_int_equal(j.retry.max_delay_ms, 20000);
    assert_string_equal(j.retry.skip_on, "Fatal");
    assert_int_equal(j.ttl_ms, 9000);
    assert_int_equal(j.result_ttl_ms, 60000);
    assert_string_equal(j.schedule_id, "hourly");
    naq_job_clear(&j);
    natsMsg_Destroy(m);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
static const struct CMUnitTest tests[] = {
    cmocka_unit_test(job_codec_round_trips_every_field),
    cmocka_unit_test(job_decode_fills_defaults_for_optional_fields),
    cmocka_unit_test(job_decode_refuses_malformed_jobs_but_keeps_the_id),
    T(enqueue_returns_an_id_and_the_job_is_stored_with_its_headers),
    T(enqueue_logs_an_enqueued_event_with_function_priority_and_tags),
    T(enqueue_refuses_bad_queue_names_and_publishes_nothing),
    T(enqueue_refuses_bad_options_and_publishes_nothing),
    T(enqueue_refuses_an_exec_job_without_a_command_and_publishes_nothing),
    T(enqueue_of_the_same_job_id_twice_stores_it_once),
    T(a_repeated_enqueue_after_a_lost_reply_logs_the_enqueued_event),
    T(enqueue_fails_and_logs_nothing_when_the_job_stream_is_gone),
    T(enqueue_refuses_a_job_larger_than_the_server_accepts),
    cmocka_unit_test(job_codec_round_trips_every_lifecycle_field),
    cmocka_unit_test(job_codec_writes_lifecycle_fields_only_when_they_say_something),
    cmocka_unit_test(job_decode_gives_old_jobs_the_lifecycle_defaults),
    cmocka_unit_test(job_decode_refuses_malformed_lifecycle_fields),
    cmocka_unit_test(retry_policy_parse_reads_every_form),
    cmocka_unit_test(retry_policy_parse_refuses_malformed_text_and_keeps_the_policy),
    cmocka_unit_test(job_opts_init_sets_the_lifecycle_defaults),
    T(enqueue_refuses_bad_lifecycle_options_and_publishes_nothing),
    T(enqueue_stores_the_lifecycle_options_in_the_job),
};

NAQ_TEST_MAIN(tests)
