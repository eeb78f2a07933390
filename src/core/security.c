/*
 * security.c - how a connection proves who it is and whom it talks to, and
 * what naq says when the server disagrees.
 *
 * Every connection naq opens (job server, event server, the worker's
 * latency connection) goes through naq__conn_secure, so TLS and
 * authentication are the same everywhere. Three things a user must be able
 * to act on are translated here: a TLS handshake that failed (is the
 * certificate untrusted, or for another host name? nats.c says only
 * "certificate verify failed", so naq looks at the certificate itself),
 * authentication that failed, and a permission violation (the server
 * reports those asynchronously while the request that caused it merely
 * times out; the handler below remembers the subject so that the failing
 * call's message can name it). Secrets never leave this module in text:
 * URLs are redacted before they are printed.
 */
#include "core.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- redaction ---- */

char *naq_url_redact(const char *url, char *out, size_t cap)
{
    if (cap == 0)
        return out;
    size_t o = 0;
    for (const char *p = url; *p != '\0' && o + 1 < cap;) {
        size_t len = strcspn(p, ",");
        const char *scheme_end = strstr(p, "://");
        const char *at = NULL;
        if (scheme_end != NULL && scheme_end < p + len)
            for (const char *q = scheme_end + 3; q < p + len; q++)
                if (*q == '@')
                    at = q;
        if (at == NULL) {
            o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)len, p);
        } else {
            const char *user = scheme_end + 3;
            const char *colon = memchr(user, ':', (size_t)(at - user));
            if (colon != NULL) /* USER:PASS@: keep the user */
                o += (size_t)snprintf(out + o, cap - o, "%.*s***%.*s", (int)(colon + 1 - p), p,
                                      (int)(p + len - at), at);
            else /* TOKEN@ */
                o += (size_t)snprintf(out + o, cap - o, "%.*s***%.*s", (int)(user - p), p,
                                      (int)(p + len - at), at);
        }
        if (o >= cap)
            o = cap - 1;
        p += len;
        if (*p == ',' && o + 1 < cap) {
            out[o++] = ',';
            p++;
        }
    }
    out[o < cap ? o : cap - 1] = '\0';
    return out;
}

/* ---- configuration checks ---- */

static naq_status readable(const char *var, const char *path)
{
    if (path[0] == '\0')
        return NAQ_OK;
    if (access(path, R_OK) != 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "%s: cannot read '%s' (%s); point it at a readable file", var, path,
                         strerror(errno));
    return NAQ_OK;
}

/* A .creds file holds a user JWT and an NKey seed between armour lines;
 * nats.c only says "Error" when it does not, so naq looks first. */
static naq_status creds_check(const char *path)
{
    if (path[0] == '\0')
        return NAQ_OK;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "NAQ_CREDS_FILE: cannot read '%s' (%s)", path,
                         strerror(errno));
    char line[4096];
    int jwt = 0, seed = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        jwt |= strstr(line, "BEGIN NATS USER JWT") != NULL;
        seed |= strstr(line, "BEGIN USER NKEY SEED") != NULL;
    }
    memset(line, 0, sizeof line);
    fclose(f);
    if (!jwt || !seed)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "NAQ_CREDS_FILE '%s' is not a NATS .creds file (it needs a user JWT "
                         "and an NKey seed, as 'nsc generate creds' writes them)",
                         path);
    return NAQ_OK;
}

naq_status naq_config_security_validate(const naq_config *c)
{
    naq_status s;
    if ((s = readable("NAQ_TLS_CA", c->tls_ca)) != NAQ_OK ||
        (s = readable("NAQ_TLS_CERT", c->tls_cert)) != NAQ_OK ||
        (s = readable("NAQ_TLS_KEY", c->tls_key)) != NAQ_OK ||
        (s = readable("NAQ_NKEY_SEED_FILE", c->nkey_seed_file)) != NAQ_OK ||
        (s = readable("NAQ_CREDS_FILE", c->creds_file)) != NAQ_OK ||
        (s = creds_check(c->creds_file)) != NAQ_OK)
        return s;
    if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0'))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "NAQ_TLS_CERT and NAQ_TLS_KEY go together (a client certificate and "
                         "its key); set both or neither");
    if (c->password[0] != '\0' && c->user[0] == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG, "NAQ_PASSWORD is set without NAQ_USER; set both");
    int ways = (c->user[0] != '\0') + (c->token[0] != '\0') + (c->nkey_seed_file[0] != '\0') +
               (c->creds_file[0] != '\0');
    if (ways > 1)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "more than one way to authenticate is set (NAQ_USER, NAQ_TOKEN, "
                         "NAQ_NKEY_SEED_FILE, NAQ_CREDS_FILE); keep the one the server expects");
    return NAQ_OK;
}

/* ---- permission violations ---- */

static pthread_mutex_t denied_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int pending;
    int64_t at_ms;
    char op[16];
    char subject[256];
    char who[NAQ_URL_MAX + 64];
    char prefix[NAQ_NAME_MAX];
} denied;

/* How the server knows this connection, for messages: never a secret. */
static void describe_user(const naq_config *cfg, char *buf, size_t cap)
{
    if (cfg->user[0] != '\0')
        snprintf(buf, cap, "user '%s'", cfg->user);
    else if (cfg->nkey_seed_file[0] != '\0')
        snprintf(buf, cap, "the NKey user of %s", cfg->nkey_seed_file);
    else if (cfg->creds_file[0] != '\0')
        snprintf(buf, cap, "the user of %s", cfg->creds_file);
    else if (cfg->token[0] != '\0')
        snprintf(buf, cap, "the token user");
    else
        snprintf(buf, cap, "this connection");
}

/* nats.c calls it on its own thread: it only records. */
static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)sub;
    if (err != NATS_NOT_PERMITTED)
        return;
    const char *text = NULL;
    if (natsConnection_GetLastError(nc, &text) != NATS_NOT_PERMITTED || text == NULL)
        return;
    /* "Permissions Violation for Publish to "X"" (or Subscription). */
    const char *q1 = strchr(text, '"');
    const char *q2 = q1 != NULL ? strchr(q1 + 1, '"') : NULL;
    if (q2 == NULL)
        return;
    const naq_config *cfg = closure;
    pthread_mutex_lock(&denied_mu);
    denied.pending = 1;
    denied.at_ms = naq__mono_ms();
    snprintf(denied.op, sizeof denied.op, "%s",
             strstr(text, "Subscription") != NULL ? "subscribe to" : "publish to");
    snprintf(denied.subject, sizeof denied.subject, "%.*s", (int)(q2 - q1 - 1), q1 + 1);
    describe_user(cfg, denied.who, sizeof denied.who);
    snprintf(denied.prefix, sizeof denied.prefix, "%s", cfg->subject_prefix);
    pthread_mutex_unlock(&denied_mu);
}

int naq__permission_denied_take(char *buf, size_t cap)
{
    pthread_mutex_lock(&denied_mu);
    /* A violation older than the longest request naq waits for caused
     * nothing that is failing now. */
    int fresh = denied.pending && naq__mono_ms() - denied.at_ms < 15000;
    if (fresh) {
        const char *role = naq__role_for_subject(denied.prefix, denied.subject);
        char grant[NAQ_NAME_MAX * 2 + 48] = "";
        /* A worker's consumer "naq_<queue>_p<n>": the grant names the queue. */
        const char *q = strstr(denied.subject, ".naq_");
        const char *pl = q != NULL ? strstr(q + 5, "_p") : NULL;
        if (role != NULL && strcmp(role, "worker") == 0 && pl != NULL)
            snprintf(grant, sizeof grant, "worker --queue %.*s", (int)(pl - q - 5), q + 5);
        else if (role != NULL)
            snprintf(grant, sizeof grant, "%s", role);
        if (role != NULL)
            snprintf(buf, cap,
                     "permission denied: %s may not %s \"%s\"; its role lacks it (the %s role "
                     "has it: 'naq auth permissions %s', docs/security.md)",
                     denied.who, denied.op, denied.subject, role, grant);
        else
            snprintf(buf, cap,
                     "permission denied: %s may not %s \"%s\" (no naq role grants it; see "
                     "docs/security.md)",
                     denied.who, denied.op, denied.subject);
    }
    denied.pending = 0;
    pthread_mutex_unlock(&denied_mu);
    return fresh;
}

/* ---- options of a connection ---- */

/* The host of url when it names one server (for the certificate check),
 * else "" (several servers: nats.c checks each by its own name). */
static void single_host(const char *url, char *host, size_t cap)
{
    host[0] = '\0';
    if (strchr(url, ',') != NULL)
        return;
    const char *p = strstr(url, "://");
    p = p != NULL ? p + 3 : url;
    const char *at = strrchr(p, '@');
    if (at != NULL)
        p = at + 1;
    size_t len;
    if (*p == '[') {
        p++;
        len = strcspn(p, "]");
    } else {
        len = strcspn(p, ":/");
    }
    snprintf(host, cap, "%.*s", (int)len, p);
}

static int wants_tls(const naq_config *cfg, const char *url)
{
    if (cfg->tls_ca[0] != '\0' || cfg->tls_cert[0] != '\0')
        return 1;
    for (const char *p = url; p != NULL; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncasecmp(p, "tls://", 6) == 0)
            return 1;
    return 0;
}

naq_status naq__conn_secure(natsOptions *o, const naq_config *cfg, const char *url)
{
    natsStatus ns = natsOptions_SetErrorHandler(o, on_async_error, (void *)cfg);
    const char *step = "set an error handler";
    if (ns == NATS_OK && wants_tls(cfg, url)) {
        char host[256];
        single_host(url, host, sizeof host);
        step = "turn TLS on";
        ns = natsOptions_SetSecure(o, true);
        if (ns == NATS_OK && host[0] != '\0')
            ns = natsOptions_SetExpectedHostname(o, host);
        if (ns == NATS_OK && cfg->tls_ca[0] != '\0') {
            step = "load NAQ_TLS_CA (a PEM file of CA certificates)";
            ns = natsOptions_LoadCATrustedCertificates(o, cfg->tls_ca);
        }
        if (ns == NATS_OK && cfg->tls_cert[0] != '\0') {
            step = "load NAQ_TLS_CERT and NAQ_TLS_KEY (PEM certificate and its key)";
            ns = natsOptions_LoadCertificatesChain(o, cfg->tls_cert, cfg->tls_key);
        }
    }
    if (ns == NATS_OK && cfg->user[0] != '\0') {
        step = "set NAQ_USER";
        ns = natsOptions_SetUserInfo(o, cfg->user, cfg->password);
    }
    if (ns == NATS_OK && cfg->token[0] != '\0') {
        step = "set NAQ_TOKEN";
        ns = natsOptions_SetToken(o, cfg->token);
    }
    if (ns == NATS_OK && cfg->nkey_seed_file[0] != '\0') {
        char pub[NAQ_NKEY_SIZE];
        naq_status s = naq__nkey_seed_file_public(cfg->nkey_seed_file, pub);
        if (s != NAQ_OK)
            return s;
        step = "use NAQ_NKEY_SEED_FILE";
        ns = natsOptions_SetNKeyFromSeed(o, pub, cfg->nkey_seed_file);
    }
    if (ns == NATS_OK && cfg->creds_file[0] != '\0') {
        step = "use NAQ_CREDS_FILE (a NATS .creds file)";
        ns = natsOptions_SetUserCredentialsFromFiles(o, cfg->creds_file, NULL);
    }
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_INVALID_ARG, ns, 0, "cannot %s", step);
    return NAQ_OK;
}

/* ---- why a TLS handshake failed ---- */

/* Connects to host:port, reads the server's INFO line (NATS speaks plain
 * text before TLS) and returns the socket, or -1. */
static int open_plain(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    struct timeval tv = {2, 0};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    char c;
    while (fd >= 0) { /* one byte at a time: TLS starts right after '\n' */
        if (read(fd, &c, 1) != 1) {
            close(fd);
            return -1;
        }
        if (c == '\n')
            break;
    }
    return fd;
}

/* The server's certificate as the handshake shows it, unverified. */
static X509 *peer_certificate(int fd, STACK_OF(X509) * *chain, SSL_CTX **ctx, SSL **ssl)
{
    *ctx = SSL_CTX_new(TLS_client_method());
    if (*ctx == NULL)
        return NULL;
    SSL_CTX_set_verify(*ctx, SSL_VERIFY_NONE, NULL);
    *ssl = SSL_new(*ctx);
    if (*ssl == NULL || SSL_set_fd(*ssl, fd) != 1 || SSL_connect(*ssl) != 1)
        return NULL;
    *chain = SSL_get_peer_cert_chain(*ssl);
    return SSL_get1_peer_certificate(*ssl);
}

/* 1 when cert chains to the CA file (or the system's CAs). */
static int chain_trusted(const naq_config *cfg, X509 *cert, STACK_OF(X509) * chain)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vc = X509_STORE_CTX_new();
    int ok = 0;
    if (store != NULL && vc != NULL &&
        (cfg->tls_ca[0] != '\0' ? X509_STORE_load_file(store, cfg->tls_ca)
                                : X509_STORE_set_default_paths(store)) == 1 &&
        X509_STORE_CTX_init(vc, store, cert, chain) == 1)
        ok = X509_verify_cert(vc) == 1;
    X509_STORE_CTX_free(vc);
    X509_STORE_free(store);
    return ok;
}

static int host_matches(X509 *cert, const char *host)
{
    if (X509_check_ip_asc(cert, host, 0) == 1)
        return 1;
    return X509_check_host(cert, host, 0, 0, NULL) == 1;
}

/* "DNS:localhost, IP:10.0.0.1", the names a certificate is valid for. */
static void cert_names(X509 *cert, char *buf, size_t cap)
{
    size_t o = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && o + 1 < cap; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS)
            o += (size_t)snprintf(buf + o, cap - o, "%sDNS:%s", o ? ", " : "",
                                  (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        else if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 4) {
            const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
            o += (size_t)snprintf(buf + o, cap - o, "%sIP:%u.%u.%u.%u", o ? ", " : "", a[0], a[1],
                                  a[2], a[3]);
        }
    }
    GENERAL_NAMES_free(sans);
    if (o == 0) {
        char cn[256] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
        snprintf(buf, cap, "CN=%s", cn);
    }
}

naq_tls_problem naq__tls_diagnose(const naq_config *cfg, const char *url, char *names, size_t cap)
{
    names[0] = '\0';
    char host[256], port[16] = "4222";
    single_host(url, host, sizeof host);
    if (host[0] == '\0')
        return NAQ__TLS_OTHER;
    const char *after = strstr(url, host) + strlen(host);
    if (*after == ']')
        after++;
    if (*after == ':')
        snprintf(port, sizeof port, "%.*s", (int)strcspn(after + 1, "/"), after + 1);
    int fd = open_plain(host, port);
    if (fd < 0)
        return NAQ__TLS_OTHER;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    STACK_OF(X509) *chain = NULL;
    X509 *cert = peer_certificate(fd, &chain, &ctx, &ssl);
    naq_tls_problem p = NAQ__TLS_OTHER;
    if (cert != NULL) {
        if (!chain_trusted(cfg, cert, chain))
            p = NAQ__TLS_UNTRUSTED;
        else if (!host_matches(cert, host))
            p = NAQ__TLS_HOSTNAME;
        cert_names(cert, names, cap);
        X509_free(cert);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    ERR_clear_error();
    return p;
}
