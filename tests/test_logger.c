/*
 * test_logger.c - the event logger against a real nats-server: it publishes
 * what it accepts, never blocks the caller, and loses nothing when the
 * buffer fills or the server goes away.
 */
#include "harness.h"
#include "internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Job events in the event stream (system events about the connection come
 * and go with timing, so they are counted apart), read with a fresh plain
 * connection. */
static int64_t count_on(const naq_test_server *srv, const char *filter)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, srv->url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = filter;
    assert_int_equal(js_GetStreamInfo(&si, js, "NAQ_JOB_EVENTS", &o, NULL), NATS_OK);
    int64_t n = 0;
    for (int i = 0; si->State.Subjects != NULL && i < si->State.Subjects->Count; i++)
        n += (int64_t)si->State.Subjects->List[i].Msgs;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}

static int64_t stream_count(const naq_test_server *srv)
{
    return count_on(srv, "naq.jobs.events.>");
}

static void log_events(naq_client *c, int n, const char *job)
{
    for (int i = 0; i < n; i++) {
        naq_event e;
        naq_event_init(&e, NAQ_EVENT_STARTED);
        snprintf(e.job_id, sizeof e.job_id, "%s%d", job, i % 50);
        snprintf(e.queue_name, sizeof e.queue_name, "q");
        e.attempt = 1;
        assert_int_equal(naq_client_log(c, &e), NAQ_OK);
    }
}

typedef struct {
    const naq_test_server *srv;
    int64_t want;
} count_wait;

static int stream_has(void *ud)
{
    count_wait *w = ud;
    return stream_count(w->srv) >= w->want;
}

static void logged_events_are_published_with_headers(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_FAILED);
    strcpy(e.job_id, "job-1");
    strcpy(e.queue_name, "emails");
    strcpy(e.worker_id, "w-1");
    e.error_type = "Boom";
    assert_int_equal(naq_client_log(c, &e), NAQ_OK);
    assert_int_equal(naq_client_flush_events(c, 5000), NAQ_OK);
    naq_logger_stats st;
    naq_client_logger_stats(c, &st);
    assert_int_equal(st.logged, 1);
    assert_int_equal(st.published, 1);
    assert_int_equal(st.buffered, 0);
    assert_int_equal(st.dropped, 0);

    natsMsg *m = NULL;
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.LastBySubject = "naq.jobs.events.job-1";
    assert_int_equal(js_DirectGetMsg(&m, c->js, "NAQ_JOB_EVENTS", NULL, &o), NATS_OK);
    const char *v = NULL;
    assert_int_equal(natsMsgHeader_Get(m, "Naq-Event-Type", &v), NATS_OK);
    assert_string_equal(v, "failed");
    assert_int_equal(natsMsgHeader_Get(m, "Naq-Queue", &v), NATS_OK);
    assert_string_equal(v, "emails");
    assert_int_equal(natsMsgHeader_Get(m, "Naq-Worker", &v), NATS_OK);
    assert_string_equal(v, "w-1");
    assert_int_equal(natsMsgHeader_Get(m, "Nats-Msg-Id", &v), NATS_OK);
    naq_event d;
    assert_int_equal(naq_event_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &d),
                     NAQ_OK);
    assert_string_equal(d.event_id, v); /* the body's id is the dedup id */
    assert_string_equal(d.error_type, "Boom");
    assert_true(d.timestamp > 1.7e9);
    naq_event_clear(&d);
    natsMsg_Destroy(m);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void bad_event_id_is_refused_and_not_counted(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_COMPLETED);
    strcpy(e.job_id, "a.b");
    assert_int_equal(naq_client_log(c, &e), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "job id"));
    naq_logger_stats st;
    naq_client_logger_stats(c, &st);
    assert_int_equal(st.logged, 0);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void destroy_flushes_everything_logged(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    log_events(c, 20000, "flush");
    naq_client_destroy(c); /* no explicit flush */
    assert_int_equal(stream_count(&srv), 20000);
    naq_test_server_destroy(&srv);
}

static void disabled_logging_publishes_nothing(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_config cfg;
    naq_test_config(&srv, &cfg);
    cfg.disable_logging = 1;
    naq_client *c = NULL;
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_OK);
    log_events(c, 100, "off");
    assert_int_equal(naq_client_flush_events(c, 1000), NAQ_OK);
    naq_client_destroy(c);
    assert_int_equal(stream_count(&srv), 0);
    naq_test_server_destroy(&srv);
}

static void full_buffer_without_spool_drops_counts_and_never_blocks(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_config cfg;
    naq_test_config(&srv, &cfg);
    cfg.logger_buffer_events = 1;
    snprintf(cfg.spool_dir, sizeof cfg.spool_dir, "none");
    naq_client *c = NULL;
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_OK);
    int64_t start = naq__mono_ms();
    log_events(c, 5000, "drop");
    /* 5000 calls with the buffer full nearly all the time: they return at
     * once (a generous bound; a blocking logger would wait for the server). */
    assert_true(naq__mono_ms() - start < 5000);
    assert_int_equal(naq_client_flush_events(c, 10000), NAQ_OK);
    naq_logger_stats st;
    naq_client_logger_stats(c, &st);
    assert_int_equal(st.logged, 5000);
    assert_true(st.dropped > 0);
    assert_int_equal(st.spooled, 0);
    assert_int_equal(st.published + st.dropped, 5000);
    naq_client_destroy(c);
    assert_int_equal(stream_count(&srv), (int64_t)st.published);
    naq_test_server_destroy(&srv);
}

static void full_buffer_spools_and_every_event_arrives_once(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_config cfg;
    naq_test_config(&srv, &cfg);
    cfg.logger_buffer_events = 8;
    naq_client *c = NULL;
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_OK);
    log_events(c, 5000, "spool");
    count_wait w = {&srv, 5000};
    assert_true(naq_test_wait_for(stream_has, &w, 30000));
    naq_logger_stats st;
    naq_client_logger_stats(c, &st);
    assert_true(st.spooled > 0);
    assert_int_equal(st.dropped, 0);
    naq_client_destroy(c);
    /* Exactly 5000: spooled events were re-sent, none stored twice. */
    assert_int_equal(stream_count(&srv), 5000);
    naq_test_server_destroy(&srv);
}

/* How many job events whose job id starts with `job` carry the logger's
 * Naq-Late header (logger.c), out of *total of them. */
static int count_late(const naq_test_server *srv, const char *job, int *total)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, srv->url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "naq.jobs.events.%s", job);
    int late = 0;
    *total = 0;
    for (uint64_t seq = 1;;) {
        jsDirectGetMsgOptions o;
        jsDirectGetMsgOptions_Init(&o);
        o.Sequence = seq;
        o.NextBySubject = "naq.jobs.events.>";
        natsMsg *m = NULL;
        if (js_DirectGetMsg(&m, js, "NAQ_JOB_EVENTS", NULL, &o) != NATS_OK)
            break;
        const char *v = NULL;
        if (strncmp(natsMsg_GetSubject(m), prefix, strlen(prefix)) == 0) {
            ++*total;
            late += natsMsgHeader_Get(m, "Naq-Late", &v) == NATS_OK;
        }
        assert_int_equal(natsMsgHeader_Get(m, "Nats-Sequence", &v), NATS_OK);
        seq = strtoull(v, NULL, 10) + 1;
        natsMsg_Destroy(m);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return late;
}

static int spool_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strstr(de->d_name, ".spool") != NULL && strstr(de->d_name, ".cursor") == NULL;
    closedir(d);
    return n;
}

static void events_logged_while_the_server_is_down_are_delivered_later(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    log_events(c, 100, "before");
    assert_int_equal(naq_client_flush_events(c, 5000), NAQ_OK);

    naq_test_server_stop(&srv);
    log_events(c, 300, "during");
    /* The process ends while the server is still away: what was not
     * acknowledged must go to the spool, not vanish. */
    naq_logger_stats st;
    naq_client_destroy(c);
    char spool[512];
    snprintf(spool, sizeof spool, "%s/spool", srv.dir);
    assert_true(spool_files(spool) >= 1);

    /* A new process (here: a new client) with the same spool directory
     * adopts the orphaned spool and re-sends it. */
    naq_test_server_restart(&srv);
    c = naq_test_connect(&srv);
    count_wait w = {&srv, 400};
    assert_true(naq_test_wait_for(stream_has, &w, 30000));
    naq_client_logger_stats(c, &st);
    naq_client_destroy(c);
    assert_int_equal(stream_count(&srv), 400);
    assert_int_equal(spool_files(spool), 0);
    /* Re-sent from the spool: marked late, so a history places them by
     * time; the events published on time are not. */
    int total = 0;
    assert_int_equal(count_late(&srv, "during", &total), 300);
    assert_int_equal(total, 300);
    assert_int_equal(count_late(&srv, "before", &total), 0);
    assert_int_equal(total, 100);
    naq_test_server_destroy(&srv);
}

/* An event logged with a timestamp over a second old (a worker's verdict
 * on an attempt that ended before an outage) is marked late, so a history
 * places it by its time; one logged as it happens is not. */
static void an_event_logged_with_an_old_timestamp_is_marked_late(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    const char *jobs[] = {"verdict-old", "verdict-new", "verdict-now"};
    double ages[] = {10.0, 0.2, -1};
    for (int i = 0; i < 3; i++) {
        naq_event e;
        naq_event_init(&e, NAQ_EVENT_RETRY_SCHEDULED);
        snprintf(e.job_id, sizeof e.job_id, "%s", jobs[i]);
        e.timestamp = ages[i] < 0 ? 0 : naq__now() - ages[i];
        assert_int_equal(naq_client_log(c, &e), NAQ_OK);
    }
    assert_int_equal(naq_client_flush_events(c, 5000), NAQ_OK);
    int total = 0;
    assert_int_equal(count_late(&srv, "verdict-old", &total), 1);
    assert_int_equal(total, 1);
    assert_int_equal(count_late(&srv, "verdict-new", &total), 0);
    assert_int_equal(total, 1);
    assert_int_equal(count_late(&srv, "verdict-now", &total), 0);
    assert_int_equal(total, 1);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

/* A publish the server never answers (here a plain subscriber takes the
 * events while their stream is gone; in production an election or a server
 * that went away) is noticed by the logger's own deadline and sent again,
 * until the server has it: then it is stored once. */
static void an_event_whose_ack_never_comes_is_sent_again_until_stored(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    natsSubscription *hole = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, srv.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(js_GetStreamInfo(&si, js, "NAQ_JOB_EVENTS", NULL, NULL), NATS_OK);
    assert_int_equal(js_DeleteStream(js, "NAQ_JOB_EVENTS", NULL, NULL), NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&hole, nc, "naq.jobs.events.>"), NATS_OK);
    assert_int_equal(natsConnection_Flush(nc), NATS_OK);

    log_events(c, 1, "unanswered");
    /* The deadline is 5 s: by 7 s it was sent again at least once. */
    naq__sleep_ms(7000);
    naq_logger_stats st;
    naq_client_logger_stats(c, &st);
    assert_true(st.retried >= 1);
    assert_int_equal(st.published, 0);
    int copies = 0;
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, hole, 10) == NATS_OK) {
        copies++;
        natsMsg_Destroy(m);
    }
    assert_true(copies >= 2);

    natsSubscription_Destroy(hole);
    assert_int_equal(js_AddStream(NULL, js, si->Config, NULL, NULL), NATS_OK);
    assert_int_equal(naq_client_flush_events(c, 20000), NAQ_OK);
    naq_client_logger_stats(c, &st);
    assert_int_equal(st.published, 1);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(stream_count(&srv), 1);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void a_short_outage_is_ridden_out_in_memory(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    naq_test_server_stop(&srv);
    log_events(c, 200, "outage");
    naq_test_server_restart(&srv);
    count_wait w = {&srv, 200};
    assert_true(naq_test_wait_for(stream_has, &w, 30000));
    /* Events sent while JetStream was still starting are re-sent after a
     * backoff: flushing waits for those acknowledgements too. */
    assert_int_equal(naq_client_flush_events(c, 20000), NAQ_OK);
    naq_client_destroy(c);
    assert_int_equal(stream_count(&srv), 200);
    /* the outage itself is on record: one loss, one recovery (stored in
     * either order: the loss is published only once the server is back,
     * possibly after a retry) */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    assert_int_equal(natsConnection_ConnectTo(&nc, srv.url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    int seen_error = 0, seen_recovery = 0;
    natsMsg *m = NULL;
    for (uint64_t seq = 1;;) {
        jsDirectGetMsgOptions o;
        jsDirectGetMsgOptions_Init(&o);
        o.Sequence = seq;
        o.NextBySubject = "naq.system.events";
        if (js_DirectGetMsg(&m, js, "NAQ_JOB_EVENTS", NULL, &o) != NATS_OK)
            break;
        const char *type = NULL, *s_seq = NULL;
        assert_int_equal(natsMsgHeader_Get(m, "Naq-Event-Type", &type), NATS_OK);
        seen_error += strcmp(type, "system_error") == 0;
        seen_recovery += strcmp(type, "system_recovery") == 0;
        assert_int_equal(natsMsgHeader_Get(m, "Nats-Sequence", &s_seq), NATS_OK);
        seq = strtoull(s_seq, NULL, 10) + 1;
        natsMsg_Destroy(m);
        m = NULL;
    }
    assert_int_equal(seen_error, 1);
    assert_int_equal(seen_recovery, 1);
    natsMsg_Destroy(m);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    naq_test_server_destroy(&srv);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(logged_events_are_published_with_headers),
    cmocka_unit_test(bad_event_id_is_refused_and_not_counted),
    cmocka_unit_test(destroy_flushes_everything_logged),
    cmocka_unit_test(disabled_logging_publishes_nothing),
    cmocka_unit_test(full_buffer_without_spool_drops_counts_and_never_blocks),
    cmocka_unit_test(full_buffer_spools_and_every_event_arrives_once),
    cmocka_unit_test(events_logged_while_the_server_is_down_are_delivered_later),
    cmocka_unit_test(a_short_outage_is_ridden_out_in_memory),
    cmocka_unit_test(an_event_whose_ack_never_comes_is_sent_again_until_stored),
    cmocka_unit_test(an_event_logged_with_an_old_timestamp_is_marked_late),
};

NAQ_TEST_MAIN(tests)
