/*
 * kv.c - the job lifecycle's KV buckets (kv.h), read and written
 * by subject.
 *
 * A key K of bucket B is the subject "$KV.B.K" of stream "KV_B", whose
 * last message is K's value (history 1). Compare-and-set uses the
 * stream's "expected last subject sequence": revision = sequence.
 * Removal purges the subject up to a revision, so a value written after
 * the caller's read survives, and nothing is left behind.
 *
 * Reads are direct gets, never the stream's MSG.GET API: nats-server
 * 2.9.10 dereferences a nil store (and the whole server dies) when a
 * MSG.GET reaches a stream that is being created at that moment - the
 * first worker writing a result while `naq job result` polls is enough
 * (measured: the first attempt crashed it). A direct get is answered by
 * the stream itself once it is ready. It is not answered at all for a
 * stream that does not exist (the client waits out its timeout), so each
 * process makes sure a bucket exists before its first read from it, once
 * per server (keyed by the server's id, which changes when the server
 * restarts).
 */
#include "kv.h"
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_NS (24LL * 3600 * 1000000000LL)

static const struct {
    const char *name;
    int64_t ttl_ns;
    const char *description;
} buckets[NAQ__KV_COUNT] = {
    [NAQ__KV_UNIQUE] = {"naq_unique", 0, "naq unique keys: <queue>/<key> -> the pending job"},
    [NAQ__KV_DEPS] = {"naq_deps", 0, "naq jobs waiting for dependencies"},
    [NAQ__KV_CANCEL] = {"naq_cancel", 7 * DAY_NS, "naq cancellation requests"},
};

/* ---------------------------------------------------------------- known buckets */

/* Buckets this process knows to exist, per server. Small: a process talks
 * to a handful of servers; when it is full the oldest entry goes (the
 * cost of forgetting is one create-or-bind request). */
#define KNOWN_MAX 64
static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char server[64];
    naq__kv b;
} known[KNOWN_MAX];
static int nknown, known_next;

static int server_id(naq_client *c, char out[64])
{
    return natsConnection_GetConnectedServerId(c->nc, out, 64) == NATS_OK && out[0] != '\0';
}

static int known_index(const char *server, naq__kv b)
{
    for (int i = 0; i < nknown; i++)
        if (known[i].b == b && strcmp(known[i].server, server) == 0)
            return i;
    return -1;
}

static int bucket_known(naq_client *c, naq__kv b)
{
    char server[64];
    if (!server_id(c, server))
        return 0;
    pthread_mutex_lock(&known_lock);
    int yes = known_index(server, b) >= 0;
    pthread_mutex_unlock(&known_lock);
    return yes;
}

static void bucket_learn(naq_client *c, naq__kv b, int exists)
{
    char server[64];
    if (!server_id(c, server))
        return;
    pthread_mutex_lock(&known_lock);
    int i = known_index(server, b);
    if (exists && i < 0) {
        i = nknown < KNOWN_MAX ? nknown++ : known_next++ % KNOWN_MAX;
        snprintf(known[i].server, sizeof known[i].server, "%s", server);
        known[i].b = b;
    } else if (!exists && i >= 0) {
        known[i] = known[--nknown];
    }
    pthread_mutex_unlock(&known_lock);
}

const char *naq__kv_bucket(naq__kv b)
{
    return buckets[b].name;
}

natsStatus naq__kv_bind(jsCtx *js, kvConfig *kc, kvStore **out)
{
    *out = NULL;
    natsStatus ns = NATS_TIMEOUT;
    int again = 1;
    for (int attempt = 0; attempt < 3 && again; attempt++) {
        if (attempt > 0)
            naq__sleep_ms(100 * attempt);
        /* Look before creating: a role that may read a bucket but not
         * create one (docs/security.md) must not be refused for a create
         * it does not need. */
        ns = js_KeyValue(out, js, kc->Bucket);
        again = ns == NATS_TIMEOUT;
        if (ns != NATS_NOT_FOUND)
            continue;
        ns = js_CreateKeyValue(out, js, kc);
        if (ns == NATS_OK)
            break;
        /* Made meanwhile by another process (maybe with another TTL: it
         * is used as it is), or made by a create the cluster answered too
         * late: look again. On a settling cluster the other process's
         * bucket may not be served yet ("not found"): that is tried again
         * too. */
        ns = js_KeyValue(out, js, kc->Bucket);
        again = ns == NATS_TIMEOUT || ns == NATS_NOT_FOUND;
    }
    return ns;
}

naq_status naq__js_publish_cas(jsCtx *js, natsMsg *m, uint64_t last, uint64_t *seq, natsStatus *ns,
                               const char *what)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    if (last != NAQ__CAS_ANY) {
        po.ExpectNoMessage = last == 0;
        po.ExpectLastSubjectSeq = last;
    }
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus got = js_PublishMsg(&ack, js, m, &po, &jerr);
    if (got == NATS_OK && seq != NULL)
        *seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    if (ns != NULL)
        *ns = got;
    if (got == NATS_OK)
        return NAQ_OK;
    if (jerr == NAQ__JS_WRONG_LAST_SEQUENCE)
        return NAQ_ERR_EXISTS;
    return naq__fail_nats(got == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, got, (int)jerr,
                          "cannot write %s", what);
}

natsStatus naq__kv_read_last(jsCtx *js, const char *stream, const char *subject, natsMsg **m,
                             int *deleted)
{
    *m = NULL;
    *deleted = 0;
    jsDirectGetMsgOptions dg;
    jsDirectGetMsgOptions_Init(&dg);
    dg.LastBySubject = subject;
    natsStatus ns = js_DirectGetMsg(m, js, stream, NULL, &dg);
    if (ns != NATS_OK)
        return ns;
    const char *op = NULL;
    *deleted = natsMsgHeader_Get(*m, "KV-Operation", &op) == NATS_OK && op != NULL &&
               (strcmp(op, "DEL") == 0 || strcmp(op, "PURGE") == 0);
    return NATS_OK;
}

naq_status naq__kv_cas(jsCtx *js, const char *bucket, const char *key, const void *data, size_t len,
                       uint64_t last, int del, uint64_t *rev)
{
    char subject[NAQ_URL_MAX], what[NAQ_URL_MAX];
    snprintf(subject, sizeof subject, "$KV.%s.%s", bucket, key);
    snprintf(what, sizeof what, "%s/%s", bucket, key);
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, subject, NULL, del ? NULL : data, del ? 0 : (int)len);
    if (ns == NATS_OK && del)
        ns = natsMsgHeader_Set(m, "KV-Operation", "DEL");
    /* last 0 sets no expectation (nats.c sends none for 0). */
    naq_status s =
        ns != NATS_OK ? naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot write %s", what)
                      : naq__js_publish_cas(js, m, last > 0 ? last : NAQ__CAS_ANY, rev, NULL, what);
    natsMsg_Destroy(m);
    if (s == NAQ_ERR_EXISTS)
        return naq__fail(NAQ_ERR_EXISTS, "%s/%s changed since revision %llu", bucket, key,
                         (unsigned long long)last);
    return s;
}

void naq__kv_config_init(kvConfig *kc, const char *bucket, const char *description, int replicas,
                         int64_t ttl_ns)
{
    kvConfig_Init(kc);
    kc->Bucket = bucket;
    kc->Description = description;
    kc->History = 1;
    kc->TTL = ttl_ns;
    kc->StorageType = js_FileStorage;
    kc->Replicas = replicas;
}

naq_status naq__kv_ensure(naq_client *c, naq__kv b)
{
    kvConfig kc;
    naq__kv_config_init(&kc, buckets[b].name, buckets[b].description, c->cfg.replicas,
                        buckets[b].ttl_ns);
    kvStore *kv = NULL;
    natsStatus ns = naq__kv_bind(c->js, &kc, &kv);
    kvStore_Destroy(kv);
    if (ns == NATS_OK) {
        bucket_learn(c, b, 1);
        return NAQ_OK;
    }
    return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot create the KV bucket %s", buckets[b].name);
}

naq_status naq__kv_ensure_all(naq_client *c)
{
    for (int b = 0; b < NAQ__KV_COUNT; b++) {
        naq_status s = naq__kv_ensure(c, (naq__kv)b);
        if (s != NAQ_OK)
            return s;
    }
    return NAQ_OK;
}

/* ---------------------------------------------------------------- keys */

static int key_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

naq_status naq__kv_key(const char *text, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (n + 4 > cap)
            return naq__fail(NAQ_ERR_INVALID_ARG, "'%.40s...' is too long for a KV key", text);
        if (key_char(*p)) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '=';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    if (n == 0 || n >= cap)
        return naq__fail(NAQ_ERR_INVALID_ARG, "a KV key cannot be empty");
    out[n] = '\0';
    return NAQ_OK;
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

naq_status naq__kv_unkey(const char *key, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = key; *p; p++) {
        if (n + 1 >= cap)
            return naq__fail(NAQ_ERR_INVALID_ARG, "KV key '%.40s...' is too long", key);
        if (*p == '=') {
            int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
            if (lo < 0)
                return naq__fail(NAQ_ERR_CODEC, "KV key '%s' is not one naq wrote", key);
            out[n++] = (char)(hi * 16 + lo);
            p += 2;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return NAQ_OK;
}

static naq_status subject_of(naq__kv b, const char *key, char *subject, size_t cap)
{
    int n = snprintf(subject, cap, "$KV.%s.%s", buckets[b].name, key);
    if (n < 0 || (size_t)n >= cap)
        return naq__fail(NAQ_ERR_INVALID_ARG, "KV key '%.40s...' is too long", key);
    return NAQ_OK;
}

static void stream_of(naq__kv b, char *stream, size_t cap)
{
    snprintf(stream, cap, "KV_%s", buckets[b].name);
}

naq_status naq__kv_get(naq_client *c, naq__kv b, const char *key, char **val, size_t *len,
                       uint64_t *rev)
{
    char subject[NAQ__KV_KEY_MAX + 64], stream[NAQ_NAME_MAX + 8];
    if (val != NULL)
        *val = NULL;
    if (len != NULL)
        *len = 0;
    if (rev != NULL)
        *rev = 0;
    naq_status s = subject_of(b, key, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    stream_of(b, stream, sizeof stream);
    if (!bucket_known(c, b) && (s = naq__kv_ensure(c, b)) != NAQ_OK)
        return s;
    natsMsg *m = NULL;
    int deleted = 0;
    natsStatus ns = naq__kv_read_last(c->js, stream, subject, &m, &deleted);
    if (ns == NATS_NOT_FOUND)
        return NAQ_ERR_NOT_FOUND;
    if (ns != NATS_OK) {
        /* No answer: the bucket may have been deleted since we saw it. */
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        int missing = 0;
        if (ns == NATS_TIMEOUT) {
            natsStatus info = naq__stream_info(c->js, stream, NULL, &si, &jerr);
            missing = info != NATS_OK && naq__stream_missing(info, jerr);
        }
        jsStreamInfo_Destroy(si);
        if (missing) {
            bucket_learn(c, b, 0);
            return NAQ_ERR_NOT_FOUND;
        }
        return naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, 0,
                              "cannot read %s/%s", buckets[b].name, key);
    }
    if (rev != NULL)
        *rev = natsMsg_GetSequence(m);
    if (deleted) {
        natsMsg_Destroy(m);
        return NAQ_ERR_NOT_FOUND;
    }
    int n = natsMsg_GetDataLength(m);
    if (val != NULL) {
        *val = malloc((size_t)n + 1);
        if (*val == NULL) {
            natsMsg_Destroy(m);
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading %s/%s", buckets[b].name,
                             key);
        }
        memcpy(*val, natsMsg_GetData(m), (size_t)n);
        (*val)[n] = '\0';
    }
    if (len != NULL)
        *len = (size_t)n;
    natsMsg_Destroy(m);
    return NAQ_OK;
}

/* One write of key to `last` as naq__js_publish_cas takes it: a
 * compare-and-set unless NAQ__CAS_ANY, which fails with NAQ_ERR_EXISTS
 * (nothing recorded). The bucket is created when no stream answers. */
static naq_status write_key(naq_client *c, naq__kv b, const char *key, const void *val, size_t len,
                            uint64_t last, uint64_t *rev)
{
    char subject[NAQ__KV_KEY_MAX + 64], what[NAQ__KV_KEY_MAX + 64];
    naq_status s = subject_of(b, key, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    snprintf(what, sizeof what, "%s/%s", buckets[b].name, key);
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, subject, NULL, val, (int)len);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NO_MEMORY, ns, 0, "cannot write %s", what);
    s = naq__js_publish_cas(c->js, m, last, rev, &ns, what);
    if (ns == NATS_NO_RESPONDERS) {
        naq__clear_error(); /* the bucket's creation decides */
        if ((s = naq__kv_ensure(c, b)) == NAQ_OK)
            s = naq__js_publish_cas(c->js, m, last, rev, NULL, what);
    }
    natsMsg_Destroy(m);
    return s;
}

naq_status naq__kv_put(naq_client *c, naq__kv b, const char *key, const void *val, size_t len,
                       uint64_t *rev)
{
    return write_key(c, b, key, val, len, NAQ__CAS_ANY, rev);
}

naq_status naq__kv_create(naq_client *c, naq__kv b, const char *key, const void *val, size_t len,
                          uint64_t *rev)
{
    /* A key deleted by someone else (`nats kv del`) keeps a marker: then
     * the create is an update of the marker's revision. */
    for (int attempt = 0; attempt < 3; attempt++) {
        naq_status s = write_key(c, b, key, val, len, 0, rev);
        if (s != NAQ_ERR_EXISTS)
            return s;
        uint64_t marker = 0;
        s = naq__kv_get(c, b, key, NULL, NULL, &marker);
        if (s == NAQ_OK)
            return NAQ_ERR_EXISTS;
        if (s != NAQ_ERR_NOT_FOUND)
            return s;
        if (marker == 0)
            continue; /* removed between the two calls */
        s = write_key(c, b, key, val, len, marker, rev);
        if (s != NAQ_ERR_EXISTS)
            return s;
    }
    return NAQ_ERR_EXISTS;
}

naq_status naq__kv_update(naq_client *c, naq__kv b, const char *key, const void *val, size_t len,
                          uint64_t last, uint64_t *rev)
{
    if (last == 0)
        return naq__kv_create(c, b, key, val, len, rev);
    return write_key(c, b, key, val, len, last, rev);
}

naq_status naq__kv_remove(naq_client *c, naq__kv b, const char *key, uint64_t rev)
{
    char subject[NAQ__KV_KEY_MAX + 64], stream[NAQ_NAME_MAX + 8];
    naq_status s = subject_of(b, key, subject, sizeof subject);
    if (s != NAQ_OK)
        return s;
    stream_of(b, stream, sizeof stream);
    jsErrCode jerr = 0;
    natsStatus ns = naq__stream_purge(c->js, stream, subject, rev > 0 ? rev + 1 : 0, &jerr);
    if (ns == NATS_OK || naq__stream_missing(ns, jerr))
        return NAQ_OK;
    return naq__fail_nats(ns == NATS_TIMEOUT ? NAQ_ERR_TIMEOUT : NAQ_ERR_NATS, ns, (int)jerr,
                          "cannot remove %s/%s", buckets[b].name, key);
}

/* ---------------------------------------------------------------- modify */

/* Rounds of read-change-write before giving up: each lost round means
 * another writer made progress. */
#define MODIFY_ATTEMPTS 100

naq_status naq__kv_modify(naq_client *c, naq__kv b, const char *key, naq__kv_change_fn change,
                          void *ud, uint64_t *written)
{
    if (written != NULL)
        *written = 0;
    for (int attempt = 0; attempt < MODIFY_ATTEMPTS; attempt++) {
        char *val = NULL, *out = NULL;
        size_t len = 0, out_len = 0;
        uint64_t rev = 0;
        naq_status s = naq__kv_get(c, b, key, &val, &len, &rev);
        if (s != NAQ_OK && s != NAQ_ERR_NOT_FOUND)
            return s;
        int absent = s == NAQ_ERR_NOT_FOUND;
        s = change(absent ? NULL : val, len, ud, &out, &out_len);
        free(val);
        if (s == NAQ_ERR_CLOSED)
            return NAQ_OK;
        if (s != NAQ_OK) {
            free(out);
            return s;
        }
        if (out == NULL)
            s = absent ? NAQ_OK : naq__kv_remove(c, b, key, rev);
        else
            s = naq__kv_update(c, b, key, out, out_len, absent ? 0 : rev, written);
        free(out);
        if (s != NAQ_ERR_EXISTS)
            return s;
    }
    return naq__fail(NAQ_ERR_TIMEOUT, "too much contention on %s/%s", buckets[b].name, key);
}
