/*
 * group.c - consumer groups: one durable pull consumer shared by every
 * member, and how a member settles each event it handled.
 *
 * The group "G" is the durable consumer "naq_group_G" on the event stream
 * (explicit acks) plus "naq_group_G_replay" on NAQ_EVENT_DLQ, which delivers
 * the entries an operator replays (event_dlq.c). The server hands each
 * message to one member; a member that dies without acking leaves its
 * messages to be delivered to the others after the ack wait.
 *
 * Retry policy, and why the server's BackOff is not used: on nats-server
 * 2.9, a consumer's BackOff replaces its AckWait with BackOff[0] (so a
 * short first backoff would redeliver events that are still being handled)
 * and it applies only to ack timeouts, not to naks; a delayed nak on a
 * consumer with BackOff also waits BackOff[n] - BackOff[0] longer than
 * asked. So the member applies the backoff itself with NakWithDelay, and
 * AckWait keeps one meaning: how long a silent member is trusted. Members
 * send in-progress acks for what they hold (processor.c), so AckWait need
 * not exceed a handler's run time.
 *
 * MaxDeliver stays unlimited on the server: a message the server stops
 * delivering would vanish without a dead-letter entry. Instead a member
 * dead-letters a failure on delivery max_deliveries, and dead-letters
 * without running it a message that arrives beyond that count (its last
 * holder died). Writing the entry is confirmed before the original is
 * terminated, so a crash in between gives at worst a second, deduplicated
 * write.
 */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_CONSUMER_NOT_FOUND 10014
/* Keeps "naq_group_<name>_replay" well inside consumer name limits. */
#define GROUP_NAME_MAX 40
/* How often a member looks for replays (one consumer-info request). */
#define REPLAY_POLL_MS 1000
#define REPLAY_FETCH_WAIT_MS 100

struct naq__group {
    naq_client *client;
    char name[GROUP_NAME_MAX + 1];
    char durable[NAQ_NAME_MAX + 16];
    char replay_durable[NAQ_NAME_MAX + 16];
    char replay_subject[NAQ_URL_MAX];
    natsSubscription *sub;
    natsSubscription *replay_sub;
    int64_t next_replay_poll_ms;
    int max_deliveries;
    int64_t backoff_ms[NAQ_BACKOFF_MAX];
    int backoff_len;
    int ack_sync;
};

naq_status naq__group_validate_name(const char *name)
{
    naq_status s = naq_id_validate("group name", name);
    if (s != NAQ_OK)
        return s;
    if (strlen(name) > GROUP_NAME_MAX)
        return naq__fail(NAQ_ERR_INVALID_ARG, "group name '%s' is longer than %d bytes", name,
                         GROUP_NAME_MAX);
    if (strpbrk(name, "/\\") != NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "group name '%s' contains '/' or '\\', which consumer names cannot", name);
    return NAQ_OK;
}

/* ---- joining ---- */

static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Creates the durable consumer cc on `stream`, or checks that the existing
 * one is the same group (filter subject and description) and brings its
 * ack wait and max ack pending to ours: the member started last decides. */
static naq_status ensure_consumer(naq_client *c, const char *stream, jsConsumerConfig *cc,
                                  const char *group)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetConsumerInfo(&ci, c->ejs, stream, cc->Durable, NULL, &jerr);
    if (ns == NATS_NOT_FOUND || jerr == JS_CONSUMER_NOT_FOUND) {
        jerr = 0;
        ns = js_AddConsumer(&ci, c->ejs, stream, cc, NULL, &jerr);
        if (ns == NATS_OK) {
            jsConsumerInfo_Destroy(ci);
            return NAQ_OK;
        }
        /* Another member may have created it a moment ago: compare. */
        jerr = 0;
        ns = js_GetConsumerInfo(&ci, c->ejs, stream, cc->Durable, NULL, &jerr);
    }
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                              "cannot create or read consumer %s of group %s on stream %s",
                              cc->Durable, group, stream);
    naq_status s = NAQ_OK;
    const jsConsumerConfig *have = ci->Config;
    if (!same_str(have->FilterSubject, cc->FilterSubject) ||
        !same_str(have->Description, cc->Description)) {
        s = naq__fail(NAQ_ERR_EXISTS,
                      "consumer group '%s' exists with other filters (\"%s\", subject '%s'); "
                      "give every member the same filters, or use another group name",
                      group, have->Description ? have->Description : "",
                      have->FilterSubject ? have->FilterSubject : "");
    } else if (have->AckWait != cc->AckWait || have->MaxAckPending != cc->MaxAckPending) {
        jsConsumerConfig up = *cc;
        up.DeliverPolicy = have->DeliverPolicy; /* not editable */
        up.OptStartSeq = have->OptStartSeq;
        up.OptStartTime = have->OptStartTime;
        jsConsumerInfo *ui = NULL;
        ns = js_UpdateConsumer(&ui, c->ejs, stream, &up, NULL, &jerr);
        jsConsumerInfo_Destroy(ui);
        if (ns != NATS_OK)
            s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot update consumer %s of group %s",
                               cc->Durable, group);
    }
    jsConsumerInfo_Destroy(ci);
    return s;
}

static void consumer_config(jsConsumerConfig *cc, const naq__group_cfg *cfg, const char *durable,
                            const char *description, const char *filter)
{
    jsConsumerConfig_Init(cc);
    cc->Durable = durable;
    cc->Description = description;
    cc->AckPolicy = js_AckExplicit;
    cc->AckWait = cfg->ack_wait_ms * 1000000LL; /* nanoseconds */
    cc->MaxDeliver = -1;                        /* see the top of this file */
    cc->MaxAckPending = cfg->max_ack_pending;
    cc->FilterSubject = filter[0] ? filter : NULL;
    cc->DeliverPolicy = js_DeliverAll;
}

static naq_status bind(naq_client *c, const char *stream, const char *consumer,
                       natsSubscription **sub)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Consumer = consumer;
    jsErrCode jerr = 0;
    natsStatus ns = js_PullSubscribe(sub, c->ejs, NULL, NULL, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot bind to consumer %s on %s",
                              consumer, stream);
    return NAQ_OK;
}

naq_status naq__group_join(naq_client *c, const naq__group_cfg *cfg, naq__group **out)
{
    *out = NULL;
    naq_status s = naq__group_validate_name(cfg->name);
    if (s != NAQ_OK)
        return s;
    naq__group *g = calloc(1, sizeof *g);
    if (g == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory joining group %s", cfg->name);
    g->client = c;
    snprintf(g->name, sizeof g->name, "%s", cfg->name);
    snprintf(g->durable, sizeof g->durable, "naq_group_%s", cfg->name);
    snprintf(g->replay_durable, sizeof g->replay_durable, "naq_group_%s_replay", cfg->name);
    g->max_deliveries = cfg->max_deliveries;
    g->backoff_len = cfg->backoff_len;
    memcpy(g->backoff_ms, cfg->backoff_ms, sizeof(int64_t) * (size_t)cfg->backoff_len);
    g->ack_sync = cfg->ack_sync;

    char description[1024];
    snprintf(description, sizeof description, "naq consumer group %s; filters: %s", cfg->name,
             cfg->identity);
    jsConsumerConfig cc, rc;
    consumer_config(&cc, cfg, g->durable, description, cfg->filter_subject);
    switch (cfg->start) {
    case NAQ_START_NEW: cc.DeliverPolicy = js_DeliverNew; break;
    case NAQ_START_ALL: cc.DeliverPolicy = js_DeliverAll; break;
    case NAQ_START_SEQUENCE:
        cc.DeliverPolicy = js_DeliverByStartSequence;
        cc.OptStartSeq = cfg->start_sequence;
        break;
    case NAQ_START_TIME:
        cc.DeliverPolicy = js_DeliverByStartTime;
        cc.OptStartTime = (int64_t)(cfg->start_time * 1e9); /* nanoseconds */
        break;
    }
    if ((s = naq__event_dlq_subject(c, g->name, 1, g->replay_subject, sizeof g->replay_subject)))
        goto fail;
    /* Every replay waiting in the stream is delivered, even one replayed
     * before the first member of the group ever started. */
    consumer_config(&rc, cfg, g->replay_durable, description, g->replay_subject);

    if ((s = naq__event_dlq_ensure(c)) != NAQ_OK ||
        (s = ensure_consumer(c, c->cfg.event_stream, &cc, g->name)) != NAQ_OK ||
        (s = ensure_consumer(c, NAQ_EVENT_DLQ_STREAM, &rc, g->name)) != NAQ_OK ||
        (s = bind(c, c->cfg.event_stream, g->durable, &g->sub)) != NAQ_OK ||
        (s = bind(c, NAQ_EVENT_DLQ_STREAM, g->replay_durable, &g->replay_sub)) != NAQ_OK)
        goto fail;
    *out = g;
    return NAQ_OK;
fail:
    naq__group_leave(g);
    return s;
}

void naq__group_leave(naq__group *g)
{
    if (g == NULL)
        return;
    /* Destroy, not Unsubscribe: the durable consumers belong to the group. */
    natsSubscription_Destroy(g->replay_sub);
    natsSubscription_Destroy(g->sub);
    free(g);
}

/* ---- fetching ---- */

/* Moves the messages of l into msgs (the caller owns them then). */
static int take_list(natsMsgList *l, natsMsg **msgs, int max)
{
    int n = 0;
    for (int i = 0; i < l->Count; i++) {
        if (n < max) {
            msgs[n++] = l->Msgs[i];
            l->Msgs[i] = NULL;
        }
    }
    natsMsgList_Destroy(l);
    return n;
}

/* True when the replay consumer has something a member could fetch: new
 * replays, or replays held (perhaps by a member that died). Asking first
 * keeps members from sending pull requests that mostly expire unanswered:
 * on nats-server 2.9 an expiring pull request can make the server deliver
 * a message a second time (see docs/processors.md, "Known server issue"). */
static int replays_waiting(naq__group *g)
{
    jsConsumerInfo *ci = NULL;
    if (js_GetConsumerInfo(&ci, g->client->ejs, NAQ_EVENT_DLQ_STREAM, g->replay_durable, NULL,
                           NULL) != NATS_OK)
        return 0;
    int waiting = ci->NumPending > 0 || ci->NumAckPending > 0;
    jsConsumerInfo_Destroy(ci);
    return waiting;
}

naq_status naq__group_fetch(naq__group *g, natsMsg **msgs, int max, int64_t timeout_ms, int *n)
{
    *n = 0;
    natsMsgList l = {0};
    int64_t now = naq__mono_ms();
    if (now >= g->next_replay_poll_ms) {
        g->next_replay_poll_ms = now + REPLAY_POLL_MS;
        if (replays_waiting(g) &&
            natsSubscription_Fetch(&l, g->replay_sub, max, REPLAY_FETCH_WAIT_MS, NULL) == NATS_OK) {
            *n = take_list(&l, msgs, max);
            if (*n == max)
                g->next_replay_poll_ms = 0; /* more may wait */
            if (*n > 0)
                return NAQ_OK;
        }
    }
    jsErrCode jerr = 0;
    natsStatus ns = natsSubscription_Fetch(&l, g->sub, max, timeout_ms, &jerr);
    if (ns == NATS_OK) {
        *n = take_list(&l, msgs, max);
        return NAQ_OK;
    }
    if (ns == NATS_TIMEOUT)
        return NAQ_OK;
    return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot fetch events of group %s", g->name);
}

/* ---- settling ---- */

void naq__group_msg_info(const naq__group *g, natsMsg *m, naq__group_msg *gm)
{
    memset(gm, 0, sizeof *gm);
    gm->deliveries = 1;
    jsMsgMetaData *md = NULL;
    if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
        gm->deliveries = (int)md->NumDelivered;
        gm->stream_seq = md->Sequence.Stream;
        jsMsgMetaData_Destroy(md);
    }
    const char *subject = natsMsg_GetSubject(m);
    gm->replay = g != NULL && subject != NULL && strcmp(subject, g->replay_subject) == 0;
    const char *v = NULL;
    if (gm->replay && natsMsgHeader_Get(m, "Naq-Original-Subject", &v) == NATS_OK && v) {
        snprintf(gm->original_subject, sizeof gm->original_subject, "%s", v);
        if (natsMsgHeader_Get(m, "Naq-Original-Sequence", &v) == NATS_OK && v)
            gm->original_seq = strtoull(v, NULL, 10);
    } else {
        snprintf(gm->original_subject, sizeof gm->original_subject, "%s", subject ? subject : "");
        gm->original_seq = gm->stream_seq;
    }
}

static int64_t backoff_for(const naq__group *g, int deliveries)
{
    if (g->backoff_len == 0)
        return 0;
    int i = deliveries < 1 ? 0 : deliveries - 1;
    return g->backoff_ms[i < g->backoff_len ? i : g->backoff_len - 1];
}

/* A replay lives in the DLQ stream only until it is settled. */
static void drop_replay(naq__group *g, const naq__group_msg *gm)
{
    if (gm->replay && gm->stream_seq > 0)
        js_DeleteMsg(g->client->ejs, NAQ_EVENT_DLQ_STREAM, gm->stream_seq, NULL, NULL);
}

static void retry(natsMsg *m, int64_t delay_ms, naq_outcome *o)
{
    /* NakWithDelay takes MILLISECONDS (and sends nanoseconds). */
    if (delay_ms > 0)
        natsMsg_NakWithDelay(m, delay_ms, NULL);
    else
        natsMsg_Nak(m, NULL);
    o->kind = NAQ_OUTCOME_RETRY;
    o->retry_in_ms = delay_ms;
}

void naq__group_settle(naq__group *g, natsMsg *m, const naq__group_msg *gm, int ok, int final,
                       const char *reason, naq_outcome *o)
{
    o->deliveries = gm->deliveries;
    if (ok) {
        natsStatus ns = g->ack_sync ? natsMsg_AckSync(m, NULL, NULL) : natsMsg_Ack(m, NULL);
        o->kind = ns == NATS_OK ? NAQ_OUTCOME_HANDLED : NAQ_OUTCOME_ACK_FAILED;
        if (ns == NATS_OK)
            drop_replay(g, gm);
        return;
    }
    if (!final && gm->deliveries < g->max_deliveries) {
        retry(m, backoff_for(g, gm->deliveries), o);
        return;
    }
    /* The id ties the entry to this delivery's original: a member that
     * crashes after writing it and before Term writes it again as a no-op.
     * A replay fails under its own id, so it is never taken for a copy of
     * the entry it came from. */
    char msg_id[NAQ_URL_MAX];
    if (gm->replay)
        snprintf(msg_id, sizeof msg_id, "%s-%llu-r%llu", g->durable,
                 (unsigned long long)gm->original_seq, (unsigned long long)gm->stream_seq);
    else
        snprintf(msg_id, sizeof msg_id, "%s-%llu", g->durable,
                 (unsigned long long)gm->original_seq);
    naq_status s = naq__event_dlq_put(g->client, g->name, reason, gm->deliveries,
                                      gm->original_subject, gm->original_seq, m, msg_id);
    if (s != NAQ_OK) {
        /* Nowhere to put it: keep it in the group and try again later. */
        retry(m, g->backoff_len ? g->backoff_ms[g->backoff_len - 1] : 1000, o);
        return;
    }
    natsMsg_Term(m, NULL);
    drop_replay(g, gm);
    o->kind = NAQ_OUTCOME_DEAD_LETTERED;
}

void naq__group_release(natsMsg *m)
{
    natsMsg_Nak(m, NULL);
}

void naq__group_keepalive(natsMsg *m)
{
    natsMsg_InProgress(m, NULL);
}

void naq__group_skip(naq__group *g, natsMsg *m)
{
    natsMsg_Ack(m, NULL);
    const char *subject = natsMsg_GetSubject(m);
    if (subject != NULL && strcmp(subject, g->replay_subject) == 0) {
        naq__group_msg gm;
        naq__group_msg_info(g, m, &gm);
        drop_replay(g, &gm);
    }
}
