/*
 * webhook.c - POST events to a URL with libcurl (naq/webhook.h).
 *
 * One easy handle per delivery: handlers run on several threads, and a
 * handle per call needs no locking; connection reuse is not worth a pool
 * at webhook rates (each delivery waits for a remote answer anyway).
 * libcurl (Debian libcurl4-openssl-dev) over a hand-written client: it
 * does https, redirects off, timeouts and proxies right. The signature is
 * OpenSSL's HMAC (libcrypto, which libcurl already pulls in).
 */
#include "internal.h"
#include "naq/webhook.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct naq_webhook {
    char *url;
    unsigned char *secret;
    size_t secret_len;
    int64_t timeout_ms;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void naq_webhook_opts_init(naq_webhook_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = 10000;
}

naq_status naq_webhook_create(const naq_webhook_opts *o, naq_webhook **out)
{
    *out = NULL;
    if (o == NULL || o->url == NULL ||
        (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "a webhook needs an http:// or https:// URL, not '%s'",
                         o && o->url ? o->url : "");
    pthread_once(&curl_once, curl_init);
    naq_webhook *w = calloc(1, sizeof *w);
    if (w == NULL || (w->url = strdup(o->url)) == NULL)
        goto oom;
    if (o->secret != NULL && o->secret_len > 0) {
        if ((w->secret = malloc(o->secret_len)) == NULL)
            goto oom;
        memcpy(w->secret, o->secret, o->secret_len);
        w->secret_len = o->secret_len;
    }
    w->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    *out = w;
    return NAQ_OK;
oom:
    naq_webhook_destroy(w);
    return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a webhook");
}

void naq_webhook_destroy(naq_webhook *w)
{
    if (w == NULL)
        return;
    free(w->url);
    if (w->secret != NULL)
        OPENSSL_cleanse(w->secret, w->secret_len);
    free(w->secret);
    free(w);
}

void naq_webhook_sign(const void *key, size_t key_len, const void *data, size_t len, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key, (int)key_len, data, len, mac, &n);
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    out[64] = '\0';
}

/* The answer's body is not kept: only the status decides. */
static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

/* Request headers; NULL when out of memory. */
static struct curl_slist *headers_for(const naq_webhook *w, const naq_event *e, const char *body,
                                      size_t len)
{
    char h[NAQ_ID_SIZE + 128];
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(h, sizeof h, "X-Naq-Event-Id: %s", e->event_id);
    l = l ? curl_slist_append(l, h) : NULL;
    snprintf(h, sizeof h, "X-Naq-Event-Type: %s", naq_event_type_name(e->type));
    l = l ? curl_slist_append(l, h) : NULL;
    l = l ? curl_slist_append(l, "Expect:") : NULL; /* no 100-continue round trip */
    if (l != NULL && w->secret != NULL) {
        char sig[65];
        naq_webhook_sign(w->secret, w->secret_len, body, len, sig);
        snprintf(h, sizeof h, "X-Naq-Signature: sha256=%s", sig);
        l = curl_slist_append(l, h);
    }
    return l;
}

int naq_webhook_deliver(const naq_event *e, void *webhook, char *reason)
{
    naq_webhook *w = webhook;
    char *body = NULL;
    size_t len = 0;
    if (naq_event_encode(e, &body, &len) != NAQ_OK) {
        snprintf(reason, NAQ_REASON_MAX, "cannot encode the event: %.200s", naq_last_error());
        return 1;
    }
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = h ? headers_for(w, e, body, len) : NULL;
    int rc = 1;
    if (h == NULL || hdrs == NULL) {
        snprintf(reason, NAQ_REASON_MAX, "out of memory for a webhook request");
        goto out;
    }
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, w->url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "naq-webhook");
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK)
        snprintf(reason, NAQ_REASON_MAX, "cannot deliver to %.100s: %.120s", w->url,
                 err[0] ? err : curl_easy_strerror(cc));
    else if (status < 200 || status > 299)
        snprintf(reason, NAQ_REASON_MAX, "HTTP %ld from %.200s", status, w->url);
    else
        rc = 0;
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(body);
    return rc;
}
