/*
 * bench_live.c - how fast a filtered live subscriber keeps up.
 *
 * A subscriber follows the event stream with naq_events_stream() filtered
 * on one event type (half of the events match) while this program
 * publishes N events as fast as js_PublishMsgAsync allows. Prints, as
 * name=value lines, the publish rate (the baseline: the subscriber cannot
 * see events faster than they are stored) and the rate at which the
 * subscriber went through the stream, from the first event it saw to the
 * last matching one.
 *
 * usage: bench_live [EVENTS (default 200000)]   (server at NAQ_URL)
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    naq_client *client;
    long want, seen;
    int64_t first_ms, last_ms;
    volatile int stop;
    naq_status status;
} subscriber;

static int on_event(const naq_event *e, void *user)
{
    subscriber *s = user;
    (void)e;
    if (s->seen++ == 0)
        s->first_ms = naq__mono_ms();
    s->last_ms = naq__mono_ms();
    return s->seen >= s->want;
}

static void *subscribe(void *arg)
{
    subscriber *s = arg;
    naq_stream_opts o;
    memset(&o, 0, sizeof o);
    o.filter.type = "completed";
    o.follow = 1;
    o.stop = &s->stop;
    s->status = naq_events_stream(s->client, &o, on_event, s);
    return NULL;
}

static void ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js, (void)pa, (void)pae, (void)closure;
    natsMsg_Destroy(msg);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    naq_config cfg;
    naq_config_init(&cfg);
    if (naq_config_from_env(&cfg) != NAQ_OK)
        return fprintf(stderr, "%s\n", naq_last_error()), 2;
    cfg.disable_logging = 1;
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK)
        return fprintf(stderr, "%s\n", naq_last_error()), 1;
    subscriber sub = {c, n / 2, 0, 0, 0, 0, NAQ_OK};
    pthread_t t;
    pthread_create(&t, NULL, subscribe, &sub);
    struct timespec pause = {0, 300 * 1000000L}; /* let the consumer start */
    nanosleep(&pause, NULL);

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 8192;
    jo.PublishAsync.AckHandler = ack_handler;
    jsCtx *js = NULL;
    natsConnection_JetStream(&js, c->nc, &jo);
    int64_t start = naq__mono_ms();
    for (long i = 0; i < n; i++) {
        naq_event e;
        naq_event_init(&e, i % 2 ? NAQ_EVENT_STARTED : NAQ_EVENT_COMPLETED);
        snprintf(e.job_id, sizeof e.job_id, "live%08ld", i / 4);
        snprintf(e.queue_name, sizeof e.queue_name, "bench");
        naq_id_new(e.event_id);
        e.duration_ms = 1.5;
        char subject[256], *json = NULL;
        size_t len = 0;
        naq_event_subject(cfg.subject_prefix, &e, subject, sizeof subject);
        naq_event_encode(&e, &json, &len);
        natsMsg *m = NULL;
        natsMsg_Create(&m, subject, NULL, json, (int)len);
        natsMsgHeader_Set(m, "Nats-Msg-Id", e.event_id);
        natsMsgHeader_Set(m, "Naq-Event-Type", naq_event_type_name(e.type));
        natsMsgHeader_Set(m, "Naq-Queue", "bench");
        js_PublishMsgAsync(js, &m, NULL);
        natsMsg_Destroy(m);
        free(json);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    js_PublishAsyncComplete(js, &po);
    double publish_s = (double)(naq__mono_ms() - start) / 1000.0;
    for (int i = 0; i < 600 && sub.seen < sub.want; i++)
        nanosleep(&pause, NULL);
    sub.stop = 1;
    pthread_join(t, NULL);
    double sub_s = (double)(sub.last_ms - start) / 1000.0;
    printf("events=%ld\nmatching=%ld\npublish_events_per_s=%.0f\n", n, sub.seen, n / publish_s);
    printf("subscriber_matched=%ld\nsubscriber_events_scanned_per_s=%.0f\n", sub.seen,
           sub_s > 0 ? n / sub_s : 0.0);
    jsCtx_Destroy(js);
    naq_client_destroy(c);
    return sub.seen == sub.want ? 0 : 1;
}
