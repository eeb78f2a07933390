/*
 * query_helpers.h - what test_query.c, test_replay.c, test_stats.c and
 * test_top.c share: a server with a client that logs nothing (so the event
 * stream holds exactly what a test published), and publishing fully
 * specified events the way docs/protocol.md describes, with plain nats.c.
 */
#ifndef NAQ_TEST_QUERY_HELPERS_H
#define NAQ_TEST_QUERY_HELPERS_H

#include "harness.h"

#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    naq_test_server srv;
    naq_client *c;
    natsConnection *nc; /* the tests' own publisher */
    jsCtx *js;
} qfixture;

static inline int qsetup(void **state)
{
    qfixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    naq_test_server_start(&fx->srv);
    naq_config cfg;
    naq_test_config(&fx->srv, &cfg);
    cfg.disable_logging = 1;
    naq_status st = naq_client_connect(&cfg, &fx->c);
    if (st != NAQ_OK)
        fail_msg("connect: %s", naq_last_error());
    assert_int_equal(natsConnection_ConnectTo(&fx->nc, fx->srv.url), NATS_OK);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 8192;
    assert_int_equal(natsConnection_JetStream(&fx->js, fx->nc, &jo), NATS_OK);
    *state = fx;
    return 0;
}

static inline int qteardown(void **state)
{
    qfixture *fx = *state;
    jsCtx_Destroy(fx->js);
    natsConnection_Destroy(fx->nc);
    naq_client_destroy(fx->c);
    naq_test_server_destroy(&fx->srv);
    free(fx);
    return 0;
}

/* One event to publish; NULL strings and duration < 0 are left out. */
typedef struct {
    naq_event_type type;
    const char *job, *queue, *worker;
    double ts;          /* 0 = now */
    const char *tags;   /* JSON object text */
    double duration_ms; /* < 0 = none */
    const char *error_type;
    uint64_t seq; /* filled when published */
} qspec;

/* Builds the message of one event. No cmocka calls (thread-safe). */
static inline natsStatus qmake_msg(const qspec *sp, natsMsg **out)
{
    naq_event e;
    naq_event_init(&e, sp->type);
    naq_id_new(e.event_id);
    snprintf(e.job_id, sizeof e.job_id, "%s", sp->job ? sp->job : "");
    snprintf(e.queue_name, sizeof e.queue_name, "%s", sp->queue ? sp->queue : "");
    snprintf(e.worker_id, sizeof e.worker_id, "%s", sp->worker ? sp->worker : "");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    e.timestamp = sp->ts > 0 ? sp->ts : (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    e.tags_json = (char *)sp->tags;
    e.duration_ms = sp->duration_ms >= 0 ? sp->duration_ms : NAQ_UNSET;
    e.error_type = (char *)sp->error_type;
    if (sp->error_type != NULL)
        e.error_message = (char *)"it broke";
    char subject[256];
    char *json = NULL;
    size_t len = 0;
    if (naq_event_subject("naq", &e, subject, sizeof subject) != NAQ_OK ||
        naq_event_encode(&e, &json, &len) != NAQ_OK)
        return NATS_ERR;
    natsStatus ns = natsMsg_Create(out, subject, NULL, json, (int)len);
    free(json);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*out, "Nats-Msg-Id", e.event_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(*out, "Naq-Event-Type", naq_event_type_name(e.type));
    if (ns == NATS_OK && e.queue_name[0])
        ns = natsMsgHeader_Set(*out, "Naq-Queue", e.queue_name);
    if (ns == NATS_OK && e.worker_id[0])
        ns = natsMsgHeader_Set(*out, "Naq-Worker", e.worker_id);
    return ns;
}

/* Publishes and waits for the ack; sp->seq gets the stream sequence. */
static inline void qpublish(qfixture *fx, qspec *sp)
{
    natsMsg *m = NULL;
    assert_int_equal(qmake_msg(sp, &m), NATS_OK);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_PublishMsg(&pa, fx->js, m, NULL, &jerr);
    if (ns != NATS_OK)
        fail_msg("publish: %s (%d)", natsStatus_GetText(ns), (int)jerr);
    sp->seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
}

static inline void qpublish_all(qfixture *fx, qspec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        qpublish(fx, &specs[i]);
}

/* Publishes without waiting for each ack (no sequences filled). */
static inline void qpublish_async(jsCtx *js, const qspec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        natsMsg *m = NULL;
        assert_int_equal(qmake_msg(&specs[i], &m), NATS_OK);
        assert_int_equal(js_PublishMsgAsync(js, &m, NULL), NATS_OK);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    assert_int_equal(js_PublishAsyncComplete(js, &po), NATS_OK);
}

static inline double qnow(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void qsleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif
