/*
 * replicas.c - every stream and KV bucket naq owns keeps NAQ_REPLICAS
 * copies, also when the setting changes on an existing installation.
 *
 * Streams and buckets are created with cfg.replicas wherever they are
 * created; the four main streams are also updated at every connect
 * (client.c). The others (NAQ_DELAYED, the KV buckets) are created once
 * and then used as they are, so a connect also lists the account's streams
 * - one request - and moves each of ours whose replica count differs to
 * the configured one. JetStream (2.9.10) scales a stream's replicas up or
 * down in place on a cluster; on a single server, or on too few nodes, it
 * refuses, and the user gets the server's reason and what to do.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

/* JetStream API errors a replica count can meet. */
#define JS_REPLICAS_NOT_SUPPORTED 10074 /* "replicas > 1 not supported in non-clustered mode" */
#define JS_INSUFFICIENT_RESOURCES 10023 /* fewer nodes than replicas */

/* Streams of naq's KV buckets: every bucket name starts with "naq_". */
#define KV_PREFIX "KV_naq_"

int naq__stream_is_ours(const naq_config *cfg, const char *name)
{
    char outcomes[NAQ_NAME_MAX * 2], delayed[NAQ_NAME_MAX * 2];
    naq__prefixed_name(cfg, NAQ__OUTCOME_STREAM, outcomes, sizeof outcomes);
    naq__prefixed_name(cfg, NAQ__DELAYED_STREAM, delayed, sizeof delayed);
    return strncmp(name, KV_PREFIX, strlen(KV_PREFIX)) == 0 ||
           strcmp(name, cfg->event_stream) == 0 || strcmp(name, cfg->job_stream) == 0 ||
           strcmp(name, cfg->dlq_stream) == 0 || strcmp(name, outcomes) == 0 ||
           strcmp(name, delayed) == 0 || strcmp(name, NAQ_EVENT_DLQ_STREAM) == 0;
}

/* The server's reason comes last (naq__fail_nats appends it). */
naq_status naq__replicas_fail(const naq_config *cfg, natsStatus ns, int js_code, const char *what)
{
    if (cfg->replicas > 1 &&
        (js_code == JS_REPLICAS_NOT_SUPPORTED || js_code == JS_INSUFFICIENT_RESOURCES))
        return naq__fail_nats(NAQ_ERR_NATS, ns, js_code,
                              "%s with NAQ_REPLICAS=%d (%d replicas need a JetStream cluster of "
                              "at least %d nodes: point NAQ_URL at one - 'naq server --cluster 3' "
                              "runs one locally - or set NAQ_REPLICAS=1); the server says",
                              what, cfg->replicas, cfg->replicas, cfg->replicas);
    return naq__fail_nats(NAQ_ERR_NATS, ns, js_code,
                          "%s with NAQ_REPLICAS=%d (to use the stream as it is, set NAQ_REPLICAS "
                          "to its current count); the server says",
                          what, cfg->replicas);
}

/* Whether the server that holds the stream is part of a JetStream
 * cluster: a single server names no cluster in a stream's info. */
static int clustered(jsCtx *js, const char *stream)
{
    jsStreamInfo *si = NULL;
    if (js_GetStreamInfo(&si, js, stream, NULL, NULL) != NATS_OK)
        return 1; /* let the update say what is wrong */
    int yes = si->Cluster != NULL && si->Cluster->Name != NULL && si->Cluster->Name[0] != '\0';
    jsStreamInfo_Destroy(si);
    return yes;
}

naq_status naq__replicas_update(jsCtx *js, const naq_config *cfg, jsStreamConfig *sc,
                                const char *what)
{
    /* A single server (2.9.10) refuses a new stream of 3 replicas but takes
     * an update to 3 without an error, records it and keeps one copy. */
    if (sc->Replicas > 1 && !clustered(js, sc->Name))
        return naq__fail(NAQ_ERR_NATS,
                         "%s with NAQ_REPLICAS=%d: the server is not part of a JetStream "
                         "cluster (replicas > 1 not supported in non-clustered mode); %d "
                         "replicas need a cluster of at least %d nodes: point NAQ_URL at one - "
                         "'naq server --cluster 3' runs one locally - or set NAQ_REPLICAS=1",
                         what, cfg->replicas, cfg->replicas, cfg->replicas);
    jsErrCode jerr = 0;
    natsStatus ns = js_UpdateStream(NULL, js, sc, NULL, &jerr);
    return ns == NATS_OK ? NAQ_OK : naq__replicas_fail(cfg, ns, (int)jerr, what);
}

naq_status naq__replicas_align(naq_client *c, jsCtx *js)
{
    jsStreamInfoList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_Streams(&list, js, NULL, &jerr);
    if (ns == NATS_NOT_FOUND)
        return NAQ_OK; /* no stream at all */
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot list the streams");
    naq_status s = NAQ_OK;
    for (int i = 0; s == NAQ_OK && i < list->Count; i++) {
        jsStreamConfig *sc = list->List[i]->Config;
        if (sc == NULL || sc->Name == NULL || !naq__stream_is_ours(&c->cfg, sc->Name) ||
            sc->Replicas == c->cfg.replicas)
            continue;
        char what[NAQ_NAME_MAX + 64];
        snprintf(what, sizeof what, "cannot change stream %s from %d to %d replicas", sc->Name,
                 (int)sc->Replicas, c->cfg.replicas);
        sc->Replicas = c->cfg.replicas;
        s = naq__replicas_update(js, &c->cfg, sc, what);
    }
    jsStreamInfoList_Destroy(list);
    return s;
}
