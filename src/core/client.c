/*
 * client.c - connecting to NATS and making sure the streams exist.
 *
 * Connecting fails fast (one attempt, cfg.connect_timeout_ms) so that a CLI
 * pointed at nothing says so within seconds; once connected, the client
 * reconnects forever, because a worker or scheduler must ride out a server
 * restart. Streams are created, or updated to the configured limits, at
 * every connect so an operator changes limits by changing configuration.
 */
#include "kv.h"
#include "crypt.h"
#include "jsonw.h"
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A cluster URL list longer than this is refused (a cluster has 3 or 5
 * nodes; clients learn of the others from the server anyway). */
#define NAQ__MAX_URLS 16

naq_status naq__subject(const naq_client *c, char *buf, size_t cap, const char *fmt, ...)
{
    int n = snprintf(buf, cap, "%s.", c->cfg.subject_prefix);
    if (n < 0 || (size_t)n >= cap)
        return naq__fail(NAQ_ERR_INVALID_ARG, "subject prefix is too long");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= cap - (size_t)n)
        return naq__fail(NAQ_ERR_INVALID_ARG, "subject '%s...' is too long", buf);
    return NAQ_OK;
}

natsStatus naq__nats_set_urls(natsOptions *o, const char *url)
{
    if (strchr(url, ',') == NULL)
        return natsOptions_SetURL(o, url);
    /* One copy, cut at the commas; SetServers copies the strings. */
    char *copy = strdup(url);
    const char *servers[NAQ__MAX_URLS];
    int n = 0;
    natsStatus ns = copy != NULL ? NATS_OK : NATS_NO_MEMORY;
    for (char *save = NULL, *p = copy ? strtok_r(copy, ",", &save) : NULL; p != NULL;
         p = strtok_r(NULL, ",", &save)) {
        if (n == NAQ__MAX_URLS) {
            ns = NATS_INVALID_ARG;
            break;
        }
        servers[n++] = p;
    }
    if (ns == NATS_OK)
        ns = natsOptions_SetServers(o, servers, n);
    free(copy);
    return ns;
}

/* nats.c's last error without its "(file.c:123): " prefix. */
static const char *nats_detail(void)
{
    const char *d = nats_GetLastError(NULL);
    if (d == NULL)
        return "";
    const char *close = d[0] == '(' ? strstr(d, "): ") : NULL;
    return close != NULL ? close + 3 : d;
}

/* The TLS handshake failed: say whether the certificate is untrusted or
 * names another host, which nats.c reports alike. */
static naq_status tls_failed(const naq_config *cfg, const char *url, const char *shown)
{
    char names[256];
    const char *detail = nats_detail();
    switch (naq__tls_diagnose(cfg, url, names, sizeof names)) {
    case NAQ__TLS_UNTRUSTED:
        return naq__fail(NAQ_ERR_CONNECT,
                         "the TLS certificate of the NATS server at %s is not trusted: it is not "
                         "signed by %s%s; set NAQ_TLS_CA to the CA that signed it (a PEM file)",
                         shown,
                         cfg->tls_ca[0] ? "the CA in NAQ_TLS_CA " : "a CA this system trusts",
                         cfg->tls_ca[0] ? cfg->tls_ca : "");
    case NAQ__TLS_HOSTNAME:
        return naq__fail(NAQ_ERR_CONNECT,
                         "the TLS certificate of the NATS server at %s does not match the host "
                         "name in the URL: it is for %s; connect with one of those names in "
                         "NAQ_URL, or give the server a certificate for this name",
                         shown, names);
    default: break;
    }
    int cert = strstr(detail, "certificate") != NULL;
    return naq__fail(NAQ_ERR_CONNECT,
                     "the TLS handshake with the NATS server at %s failed (%s); the server "
                     "is there and wants TLS%s",
                     shown, detail[0] ? detail : "SSL error",
                     cert ? ": its certificate is not trusted here; set NAQ_TLS_CA to the CA "
                            "that signed it"
                          : (cfg->tls_cert[0] ? ""
                                              : "; if it asks for a client certificate, set "
                                                "NAQ_TLS_CERT and NAQ_TLS_KEY"));
}

/* Says why the first connect failed. A server that answered but could not
 * agree on TLS is there: "start one with naq server" would mislead. */
static naq_status connect_failed(const naq_config *cfg, const char *url, natsStatus ns)
{
    char shown[NAQ_URL_MAX];
    naq_url_redact(url, shown, sizeof shown);
    switch (ns) {
    case NATS_SSL_ERROR: return tls_failed(cfg, url, shown);
    case NATS_SECURE_CONNECTION_REQUIRED:
        return naq__fail(NAQ_ERR_CONNECT,
                         "the NATS server at %s requires TLS; connect with a tls:// URL, and set "
                         "NAQ_TLS_CA to the CA that signed its certificate",
                         shown);
    case NATS_SECURE_CONNECTION_WANTED:
        return naq__fail(NAQ_ERR_CONNECT,
                         "TLS was asked for (a tls:// URL or NAQ_TLS_CA) but the NATS server at "
                         "%s does not offer it; connect with a nats:// URL and no NAQ_TLS_CA, or "
                         "turn TLS on in the server",
                         shown);
    case NATS_CONNECTION_AUTH_FAILED: {
        char who[NAQ_URL_MAX + 64];
        if (cfg->user[0] != '\0')
            snprintf(who, sizeof who, "user '%s' and NAQ_PASSWORD", cfg->user);
        else if (cfg->token[0] != '\0')
            snprintf(who, sizeof who, "NAQ_TOKEN");
        else if (cfg->nkey_seed_file[0] != '\0')
            snprintf(who, sizeof who, "the NKey in %s", cfg->nkey_seed_file);
        else if (cfg->creds_file[0] != '\0')
            snprintf(who, sizeof who, "the credentials in %s", cfg->creds_file);
        else
            snprintf(who, sizeof who, "no credentials");
        return naq__fail(NAQ_ERR_CONNECT,
                         "authentication failed at the NATS server at %s with %s; check "
                         "NAQ_USER/NAQ_PASSWORD, NAQ_TOKEN, NAQ_NKEY_SEED_FILE or NAQ_CREDS_FILE "
                         "(docs/security.md)",
                         shown, who);
    }
    default: break;
    }
    /* A server that wants a client certificate takes the handshake and
     * then drops the connection (TLS 1.3): it is there. */
    int tls = cfg->tls_ca[0] != '\0' || strstr(url, "tls://") != NULL;
    if (tls && cfg->tls_cert[0] == '\0' && ns != NATS_NO_SERVER && ns != NATS_TIMEOUT)
        return naq__fail(NAQ_ERR_CONNECT,
                         "the NATS server at %s ended the TLS connection (%s); if it requires "
                         "client certificates (mutual TLS), set NAQ_TLS_CERT and NAQ_TLS_KEY",
                         shown, natsStatus_GetText(ns));
    const char *why = ns == NATS_NO_SERVER ? "nothing answers there"
                      : ns == NATS_TIMEOUT ? "timed out"
                                           : natsStatus_GetText(ns);
    return naq__fail(NAQ_ERR_CONNECT,
                     "cannot reach NATS at %s (%s); start one with 'naq server' or set NAQ_URL "
                     "to a running server",
                     shown, why);
}

static naq_status open_connection(const naq_config *cfg, const char *url, int flags,
                                  natsConnection **nc, jsCtx **js)
{
    natsOptions *o = NULL;
    natsStatus ns = natsOptions_Create(&o);
    if (ns == NATS_OK)
        ns = naq__nats_set_urls(o, url);
    if (ns == NATS_OK)
        ns = natsOptions_SetTimeout(o, cfg->connect_timeout_ms);
    if (ns == NATS_OK)
        ns = natsOptions_SetName(o, "naq");
    /* After the first connect, ride out restarts: retry forever every 250 ms,
     * buffering up to 8 MiB of publishes meanwhile. */
    if (ns == NATS_OK)
        ns = natsOptions_SetMaxReconnect(o, -1);
    if (ns == NATS_OK)
        ns = natsOptions_SetReconnectWait(o, 250);
    if (ns == NATS_OK)
        ns = natsOptions_SetReconnectBufSize(o, 8 * 1024 * 1024);
    /* Without it a publish waits for nats.c's flusher (about 1 ms): the
     * worker's pulls and acks go out at once instead. */
    if (ns == NATS_OK && (flags & NAQ__CONN_SEND_ASAP))
        ns = natsOptions_SetSendAsap(o, true);
    if (ns == NATS_OK && (flags & NAQ__CONN_SHARED_DELIVERY))
        ns = natsOptions_UseGlobalMessageDelivery(o, true);
    if (ns != NATS_OK) {
        natsOptions_Destroy(o);
        char shown[NAQ_URL_MAX];
        return naq__fail_nats(NAQ_ERR_INVALID_ARG, ns, 0, "bad NATS URL '%s'",
                              naq_url_redact(url, shown, sizeof shown));
    }
    naq_status s = naq__conn_secure(o, cfg, url);
    if (s != NAQ_OK) {
        natsOptions_Destroy(o);
        return s;
    }
    ns = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    if (ns != NATS_OK)
        return connect_failed(cfg, url, ns);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = cfg->connect_timeout_ms > 5000 ? cfg->connect_timeout_ms : 5000;
    ns = natsConnection_JetStream(js, *nc, &jo);
    if (ns != NATS_OK) {
        natsConnection_Destroy(*nc);
        *nc = NULL;
        char shown[NAQ_URL_MAX];
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot open JetStream on %s",
                              naq_url_redact(url, shown, sizeof shown));
    }
    return NAQ_OK;
}

static naq_status validate_config(const naq_config *cfg);

typedef struct {
    const char *name;
    const char **subjects;
    int nsubjects;
    jsRetentionPolicy retention;
    int64_t max_age_ns;
    int64_t max_msgs;
    int64_t max_bytes;
    int64_t dup_window_ns;
    const char *setting; /* the variable that names it, NULL: it follows the prefix */
} stream_spec;

/* The stream as it is on the server: whether it exists, whether it already
 * has the limits we would set (so that a connect changes nothing, and logs
 * nothing, when nothing changed), and in foreign the first of its subjects
 * outside "<prefix>." (empty when none is): such a stream belongs to
 * another naq installation in this account, and taking it over would cut
 * that installation off from it. */
typedef struct {
    int exists, same;
    char foreign[NAQ_URL_MAX];
} stream_found;

static void look_up_stream(jsCtx *js, const jsStreamConfig *want, const char *prefix,
                           stream_found *f)
{
    jsStreamInfo *si = NULL;
    memset(f, 0, sizeof *f);
    if (js_GetStreamInfo(&si, js, want->Name, NULL, NULL) != NATS_OK)
        return;
    f->exists = 1;
    const jsStreamConfig *have = si->Config;
    f->same = have->MaxAge == want->MaxAge && have->MaxMsgs == want->MaxMsgs &&
              have->MaxBytes == want->MaxBytes && have->Duplicates == want->Duplicates &&
              have->Replicas == want->Replicas && have->AllowDirect == want->AllowDirect &&
              have->SubjectsLen == want->SubjectsLen;
    size_t n = strlen(prefix);
    for (int i = 0; i < have->SubjectsLen && f->foreign[0] == '\0'; i++) {
        const char *subj = have->Subjects[i];
        if (strncmp(subj, prefix, n) != 0 || subj[n] != '.')
            snprintf(f->foreign, sizeof f->foreign, "%s", subj);
    }
    jsStreamInfo_Destroy(si);
}

static naq_status refuse_foreign(const naq_config *cfg, const stream_spec *sp, const char *subject)
{
    char own_name[NAQ_NAME_MAX + 64] = "";
    if (sp->setting != NULL)
        snprintf(own_name, sizeof own_name, "set %s to a stream name of this installation's, ",
                 sp->setting);
    return naq__fail(NAQ_ERR_EXISTS,
                     "stream %s on this server serves subject %s, of another naq installation "
                     "(another subject prefix), and prefix '%s' cannot share it; %sgive each "
                     "installation a NATS account (or server) of its own, or use that "
                     "installation's prefix (docs/configuration.md, \"Several installations on "
                     "one server\")",
                     sp->name, subject, cfg->subject_prefix, own_name);
}

/* Creates the stream, or updates an existing one to sp's limits; *changed
 * is set when an existing stream's limits were changed. */
void naq__stream_config_init(jsStreamConfig *sc, const char *name, const char **subjects,
                             int nsubjects, int replicas)
{
    jsStreamConfig_Init(sc);
    sc->Name = name;
    sc->Subjects = subjects;
    sc->SubjectsLen = nsubjects;
    sc->Retention = js_LimitsPolicy;
    sc->Storage = js_FileStorage;
    sc->Replicas = replicas;
    /* Direct get serves "last event of a job" in 0.2 ms (ARCHITECTURE.md). */
    sc->AllowDirect = true;
}

static naq_status ensure_stream(jsCtx *js, const naq_config *cfg, const stream_spec *sp,
                                int *changed)
{
    jsStreamConfig sc;
    naq__stream_config_init(&sc, sp->name, sp->subjects, sp->nsubjects, cfg->replicas);
    sc.Retention = sp->retention;
    sc.MaxAge = sp->max_age_ns;
    sc.MaxMsgs = sp->max_msgs;
    sc.MaxBytes = sp->max_bytes;
    sc.Duplicates = sp->dup_window_ns;
    jsErrCode jerr = 0;
    /* Look before creating, and update only what differs: a role that may
     * use the streams but not manage them (docs/security.md) connects
     * without asking for either. */
    stream_found f;
    look_up_stream(js, &sc, cfg->subject_prefix, &f);
    if (f.foreign[0] != '\0')
        return refuse_foreign(cfg, sp, f.foreign);
    if (f.same)
        return NAQ_OK;
    natsStatus ns = NATS_OK;
    int existed = f.exists;
    if (!f.exists)
        ns = naq__stream_create(js, &sc, &existed, &jerr);
    if (ns == NATS_OK && existed) {
        look_up_stream(js, &sc, cfg->subject_prefix, &f);
        if (f.foreign[0] != '\0')
            return refuse_foreign(cfg, sp, f.foreign);
        if (!f.same) {
            char what[NAQ_NAME_MAX + 40];
            snprintf(what, sizeof what, "cannot update stream %s", sp->name);
            naq_status s = naq__replicas_update(js, cfg, &sc, what);
            *changed = s == NAQ_OK;
            return s;
        }
    }
    if (ns == NATS_NO_RESPONDERS || ns == NATS_TIMEOUT)
        return naq__fail(NAQ_ERR_NATS,
                         "the server does not answer JetStream requests; is JetStream enabled? "
                         "(run nats-server with -js, or use 'naq server')");
    if (ns != NATS_OK) {
        char what[NAQ_NAME_MAX + 40];
        snprintf(what, sizeof what, "cannot create or update stream %s", sp->name);
        return naq__replicas_fail(cfg, ns, (int)jerr, what);
    }
    return NAQ_OK;
}

void naq__suffixed_name(char *buf, size_t cap, const char *base, const char *suffix,
                        const char *default_suffix)
{
    if (strcmp(suffix, default_suffix) == 0) {
        snprintf(buf, cap, "%s", base);
        return;
    }
    int n = snprintf(buf, cap, "%s_%s", base, suffix);
    for (int i = (int)strlen(base); i < n && (size_t)i < cap - 1; i++) {
        char ch = buf[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            buf[i] = '_';
    }
}

void naq__prefixed_name(const naq_config *cfg, const char *base, char *buf, size_t cap)
{
    naq__suffixed_name(buf, cap, base, cfg->subject_prefix, "naq");
}

static naq_status ensure_streams(naq_client *c, char *changed, size_t cap)
{
    const naq_config *cfg = &c->cfg;
    char ev[4][NAQ_URL_MAX], q[NAQ_URL_MAX], dlq[NAQ_URL_MAX], out[NAQ_URL_MAX];
    naq_status s;
    if ((s = naq__subject(c, ev[0], sizeof ev[0], "jobs.events.>")) != NAQ_OK ||
        (s = naq__subject(c, ev[1], sizeof ev[1], "workers.events.>")) != NAQ_OK ||
        (s = naq__subject(c, ev[2], sizeof ev[2], "schedules.events.>")) != NAQ_OK ||
        (s = naq__subject(c, ev[3], sizeof ev[3], "system.events")) != NAQ_OK ||
        (s = naq__subject(c, q, sizeof q, "queue.>")) != NAQ_OK ||
        (s = naq__subject(c, dlq, sizeof dlq, "dlq.>")) != NAQ_OK ||
        (s = naq__subject(c, out, sizeof out, "outcome.>")) != NAQ_OK)
        return s;
    const char *ev_subjects[] = {ev[0], ev[1], ev[2], ev[3]};
    const char *q_subjects[] = {q};
    const char *dlq_subjects[] = {dlq};
    const char *outcome_subjects[] = {out};
    const int64_t s_ns = 1000000000LL;
    stream_spec events = {cfg->event_stream,
                          ev_subjects,
                          4,
                          js_LimitsPolicy,
                          cfg->event_max_age_s * s_ns,
                          cfg->event_max_msgs,
                          cfg->event_max_bytes,
                          cfg->event_dup_window_s * s_ns,
                          "NAQ_NATS_STREAM_NAME"};
    /* The duplicate window on the queue makes a re-sent enqueue (same job id
     * as Nats-Msg-Id) a no-op. */
    stream_spec jobs = {cfg->job_stream, q_subjects,           1, js_WorkQueuePolicy, 0, -1, -1,
                        120 * s_ns,      "NAQ_JOB_STREAM_NAME"};
    stream_spec dead = {cfg->dlq_stream, dlq_subjects,         1, js_LimitsPolicy, 0, -1, -1,
                        120 * s_ns,      "NAQ_DLQ_STREAM_NAME"};
    /* Outcome records and the jobs waiting for them (outcome.c); as long
     * as a waiting job may wait. */
    stream_spec outcomes = {c->outcome_stream,
                            outcome_subjects,
                            1,
                            js_LimitsPolicy,
                            7 * 24 * 3600 * s_ns,
                            -1,
                            -1,
                            120 * s_ns,
                            NULL};
    const stream_spec *specs[] = {&events, &jobs, &dead, &outcomes};
    changed[0] = '\0';
    for (int i = 0; i < 4; i++) {
        int was_changed = 0;
        if ((s = ensure_stream(i == 0 ? c->ejs : c->js, cfg, specs[i], &was_changed)) != NAQ_OK)
            return s;
        if (was_changed) {
            size_t n = strlen(changed);
            snprintf(changed + n, cap - n, "%s%s", n ? ", " : "", specs[i]->name);
        }
    }
    return NAQ_OK;
}

naq_status naq__connect_bare(const naq_config *cfg, int events, natsConnection **nc, jsCtx **js)
{
    *nc = NULL;
    *js = NULL;
    naq_status s = validate_config(cfg);
    if (s != NAQ_OK)
        return s;
    const char *url = events && cfg->event_url[0] != '\0' ? cfg->event_url : cfg->url;
    return open_connection(cfg, url, 0, nc, js);
}

naq_status naq__client_open_conn(naq_client *c, int flags, natsConnection **out)
{
    jsCtx *js = NULL;
    naq_status s = open_connection(&c->cfg, c->cfg.url, flags, out, &js);
    jsCtx_Destroy(js);
    return s;
}

/* A connect that changed stream limits says so in the event log. */
static void log_config_changed(naq_client *c, const char *streams)
{
    char message[NAQ_URL_MAX];
    snprintf(message, sizeof message, "stream limits updated from the configuration: %s", streams);
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_SYSTEM_CONFIG_CHANGED);
    e.message = message; /* borrowed: naq_client_log copies */
    naq_client_log(c, &e);
}

static naq_status validate_config(const naq_config *cfg)
{
    naq_status s;
    if ((s = naq_url_validate("NATS URL", cfg->url)) ||
        (cfg->event_url[0] != '\0' && (s = naq_url_validate("event NATS URL", cfg->event_url))) ||
        (s = naq_id_validate("subject prefix (NAQ_NATS_SUBJECT_PREFIX)", cfg->subject_prefix)) ||
        (s = naq_id_validate("event stream name (NAQ_NATS_STREAM_NAME)", cfg->event_stream)) ||
        (s = naq_id_validate("job stream name (NAQ_JOB_STREAM_NAME)", cfg->job_stream)) ||
        (s = naq_id_validate("dead-letter stream name (NAQ_DLQ_STREAM_NAME)", cfg->dlq_stream)) ||
        (s = naq_config_security_validate(cfg)))
        return s;
    return NAQ_OK;
}

naq_status naq_client_connect(const naq_config *cfg, naq_client **out)
{
    *out = NULL;
    naq_status s = validate_config(cfg);
    if (s != NAQ_OK)
        return s;
    naq_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating a client");
    c->cfg = *cfg;
    naq__prefixed_name(cfg, NAQ__OUTCOME_STREAM, c->outcome_stream, sizeof c->outcome_stream);
    naq__prefixed_name(cfg, NAQ__DELAYED_STREAM, c->delayed_stream, sizeof c->delayed_stream);
    cfg = &c->cfg; /* the connections' error handler keeps a pointer to it */
    /* Keys first: a bad key file is the user's to fix before anything is
     * sent in plaintext. */
    if (cfg->encryption_key_file[0] != '\0' &&
        (s = naq__crypt_load(cfg->encryption_key_file, &c->crypt)) != NAQ_OK)
        goto fail;
    if ((s = open_connection(cfg, cfg->url, 0, &c->nc, &c->js)) != NAQ_OK)
        goto fail;
    if (cfg->event_url[0] != '\0' && strcmp(cfg->event_url, cfg->url) != 0) {
        if ((s = open_connection(cfg, cfg->event_url, 0, &c->enc, &c->ejs)) != NAQ_OK)
            goto fail;
    } else {
        c->enc = c->nc;
        c->ejs = c->js;
    }
    char changed[4 * NAQ_NAME_MAX + 8];
    /* Everything a program may write to exists before its first job is
     * taken or published: no lazily created stream races another
     * process's first write. */
    if ((s = ensure_streams(c, changed, sizeof changed)) != NAQ_OK ||
        (s = naq__delayed_stream_ensure(c, c->js)) != NAQ_OK ||
        (s = naq__kv_ensure_all(c)) != NAQ_OK || (s = naq__provision_buckets(c)) != NAQ_OK ||
        (s = naq__replicas_align(c, c->js)) != NAQ_OK ||
        (c->ejs != c->js && (s = naq__replicas_align(c, c->ejs)) != NAQ_OK) ||
        (s = naq__enqueue_async_init(c)) != NAQ_OK)
        goto fail;
    if (!cfg->disable_logging && (s = naq__logger_create(c, &c->logger)) != NAQ_OK)
        goto fail;
    if (changed[0] != '\0')
        log_config_changed(c, changed);
    *out = c;
    return NAQ_OK;
fail:
    naq_client_destroy(c);
    return s;
}

void naq_client_destroy(naq_client *c)
{
    if (c == NULL)
        return;
    if (c->async_jobs != NULL)
        naq__enqueue_async_destroy(c); /* its acks log "enqueued" */
    naq__logger_destroy(c->logger);
    if (c->ejs != c->js)
        jsCtx_Destroy(c->ejs);
    if (c->enc != c->nc)
        natsConnection_Destroy(c->enc);
    jsCtx_Destroy(c->js);
    natsConnection_Destroy(c->nc);
    naq__crypt_destroy(c->crypt);
    free(c);
}

const naq_config *naq_client_config(const naq_client *c)
{
    return &c->cfg;
}

naq_status naq_client_log(naq_client *c, const naq_event *e)
{
    if (c->logger == NULL)
        return NAQ_OK;
    return naq__logger_log(c->logger, e);
}

naq_status naq__client_log_confirmed(naq_client *c, const naq_event *e, naq__confirm_fn confirm,
                                     void *ud)
{
    if (c->logger == NULL) {
        confirm(ud, 1); /* logging is off: nothing to wait for */
        return NAQ_OK;
    }
    return naq__logger_log_confirmed(c->logger, e, confirm, ud);
}

void naq__schedule_event(naq_client *c, naq_event_type t, const char *schedule_id,
                         const char *job_id, const char *queue, const char *event_id,
                         const char *message, json_t *details)
{
    naq_event e;
    naq_event_init(&e, t);
    if (schedule_id != NULL)
        snprintf(e.schedule_id, sizeof e.schedule_id, "%s", schedule_id);
    if (job_id != NULL)
        snprintf(e.job_id, sizeof e.job_id, "%s", job_id);
    if (queue != NULL)
        snprintf(e.queue_name, sizeof e.queue_name, "%s", queue);
    if (event_id != NULL)
        snprintf(e.event_id, sizeof e.event_id, "%s", event_id);
    if (message != NULL)
        e.message = strdup(message);
    if (details != NULL)
        e.details_json = naq__json_dumps(details, NAQ__JSON_FLAGS);
    naq_client_log(c, &e);
    naq_event_clear(&e);
    json_decref(details);
}

void naq_client_logger_stats(naq_client *c, naq_logger_stats *out)
{
    memset(out, 0, sizeof *out);
    if (c->logger != NULL)
        naq__logger_stats(c->logger, out);
}

naq_status naq_client_flush_events(naq_client *c, int64_t timeout_ms)
{
    if (c->logger == NULL)
        return NAQ_OK;
    return naq__logger_flush(c->logger, timeout_ms);
}
