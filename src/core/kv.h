/*
 * kv.h - the KV layer (kv.c): binding buckets, compare-and-set writes, and
 * the job lifecycle's buckets (unique keys, dependencies, cancellations)
 * read and written by subject.
 */
#ifndef NAQ_CORE_KV_H
#define NAQ_CORE_KV_H

#include "internal.h"

/* JetStream API error: "wrong last sequence" (a compare-and-set lost). */
#define NAQ__JS_WRONG_LAST_SEQUENCE 10071

/* Binds KV bucket kc->Bucket into *out (the caller destroys it), creating
 * it with kc when it is missing. A bucket another process made meanwhile
 * is used as it is; a request the cluster did not answer in time (it is
 * electing a leader, or busy), and a failed create after which no bucket
 * is found yet (another process's is still being made), are tried again,
 * three times in all. */
natsStatus naq__kv_bind(jsCtx *js, kvConfig *kc, kvStore **out);
/* Fills kc as every naq bucket is made: one value per key (History 1), on
 * disk, `replicas` copies, entries expiring after ttl_ns (0: never). The
 * strings are not copied: they must outlive kc's use. */
void naq__kv_config_init(kvConfig *kc, const char *bucket, const char *description, int replicas,
                         int64_t ttl_ns);
/* Compare-and-set write of key in bucket: stored only if the key's last
 * revision is `last`. NAQ_ERR_EXISTS when it is not (someone wrote in
 * between), NAQ_ERR_NATS / NAQ_ERR_TIMEOUT otherwise. *rev (may be NULL)
 * receives the new revision. del != 0 writes a delete marker instead. */
naq_status naq__kv_cas(jsCtx *js, const char *bucket, const char *key, const void *data, size_t len,
                       uint64_t last, int del, uint64_t *rev);
/* `last` for naq__js_publish_cas: store whatever the subject holds. */
#define NAQ__CAS_ANY UINT64_MAX
/* Publishes m through js (a synchronous publish), stored only if the last
 * sequence on its subject is still `last` (0: only if the subject holds
 * nothing; NAQ__CAS_ANY: whatever it holds): the compare-and-set behind KV
 * writes and outcome records. NAQ_OK with *seq (may be NULL) the stored
 * sequence; NAQ_ERR_EXISTS, nothing recorded, when the subject moved on;
 * else NAQ_ERR_TIMEOUT or NAQ_ERR_NATS, recorded as "cannot write <what>"
 * with the server's reason. *ns (may be NULL) receives nats.c's status, for
 * a caller that acts on one. m stays the caller's. */
naq_status naq__js_publish_cas(jsCtx *js, natsMsg *m, uint64_t last, uint64_t *seq, natsStatus *ns,
                               const char *what);
/* The last message on subject in stream by direct get (never the MSG.GET
 * API: kv.c says why) into *m, which the caller destroys with
 * natsMsg_Destroy (NULL unless NATS_OK); NATS_NOT_FOUND when the subject
 * holds nothing. *deleted = 1 when that message is a KV delete or purge
 * marker, else 0. */
natsStatus naq__kv_read_last(jsCtx *js, const char *stream, const char *subject, natsMsg **m,
                             int *deleted);
/* id.c: FNV-1a (64 bits) of len bytes, continuing from h: NAQ__FNV_OFFSET
 * to start, NAQ__FNV_OFFSET2 for a second hash independent of the first. */
#define NAQ__FNV_OFFSET 0xcbf29ce484222325ULL
#define NAQ__FNV_OFFSET2 0x84222325cbf29ce4ULL
uint64_t naq__fnv1a(const void *data, size_t len, uint64_t h);

/* ---- the job lifecycle's buckets ----
 *
 * The buckets are ordinary KV buckets (the `nats kv` tool reads them), but
 * naq reads and writes them by subject through the client's JetStream
 * context: a kvStore handle costs a stream-info request to bind, and the
 * client has nowhere to keep one. Reads are direct gets (why, and why a
 * bucket is made sure of before the first read: kv.c). A bucket is
 * created the first time it is read or a write finds no stream. Removing
 * a key purges its messages up to a revision instead of writing a delete
 * marker, so buckets without a TTL do not keep a marker per job forever. */
typedef enum {
    NAQ__KV_UNIQUE, /* "<queue>/<unique key>" -> the job holding it; no TTL */
    NAQ__KV_DEPS,   /* "<job>" -> the waiting job; no TTL */
    NAQ__KV_CANCEL, /* "<job>" -> cancel request; 7 days */
    NAQ__KV_COUNT
} naq__kv;

/* Longest encoded key (a subject has room for it after "$KV.<bucket>."). */
#define NAQ__KV_KEY_MAX 420

const char *naq__kv_bucket(naq__kv b);
/* Creates every bucket that does not exist yet (at connect). */
naq_status naq__kv_ensure_all(naq_client *c);
/* Creates the bucket when it does not exist (an existing one is used as it
 * is, whatever its TTL). */
naq_status naq__kv_ensure(naq_client *c, naq__kv b);
/* Encodes text as a KV key: letters, digits, '-' and '_' stay, every other
 * byte becomes "=HH" (so '.', '/' and '=' never come from the text).
 * NAQ_ERR_INVALID_ARG when it does not fit in cap. */
naq_status naq__kv_key(const char *text, char *out, size_t cap);
/* The text of an encoded key. */
naq_status naq__kv_unkey(const char *key, char *out, size_t cap);
/* The value of key: *val is heap (free(), NUL-terminated), *len its length,
 * *rev its revision. NAQ_ERR_NOT_FOUND, with no message recorded, when the
 * key (or the bucket) does not exist or was deleted; *rev is then the
 * delete marker's revision or 0. val and len may be NULL. */
naq_status naq__kv_get(naq_client *c, naq__kv b, const char *key, char **val, size_t *len,
                       uint64_t *rev);
/* Writes key whatever it holds. rev may be NULL. */
naq_status naq__kv_put(naq_client *c, naq__kv b, const char *key, const void *val, size_t len,
                       uint64_t *rev);
/* Writes key only if it holds nothing: NAQ_ERR_EXISTS (no message
 * recorded) when it does. */
naq_status naq__kv_create(naq_client *c, naq__kv b, const char *key, const void *val, size_t len,
                          uint64_t *rev);
/* Writes key only if its revision is still `last`: NAQ_ERR_EXISTS (no
 * message recorded) when someone wrote or removed it in between. */
naq_status naq__kv_update(naq_client *c, naq__kv b, const char *key, const void *val, size_t len,
                          uint64_t last, uint64_t *rev);
/* Removes key's revisions up to and including rev (0 = all): a newer value
 * written meanwhile stays. */
naq_status naq__kv_remove(naq_client *c, naq__kv b, const char *key, uint64_t rev);
/* The compare-and-set loop every read-modify-write of a key goes through:
 * reads key (val NULL and rev 0 when absent), calls change(val, len, ud,
 * &out, &out_len) for the new value, and writes it only if nobody wrote
 * the key meanwhile, else reads again (a bounded number of times).
 * change returns NAQ_OK with *out a heap value (freed here) to write, or
 * with *out NULL to remove the key (nothing when absent), or
 * NAQ_ERR_CLOSED to leave it as it is (naq__kv_modify then returns
 * NAQ_OK), or an error, returned as it is. *written (may be NULL) is the
 * revision written, 0 when nothing was. change may run several times. */
typedef naq_status (*naq__kv_change_fn)(const char *val, size_t len, void *ud, char **out,
                                        size_t *out_len);
naq_status naq__kv_modify(naq_client *c, naq__kv b, const char *key, naq__kv_change_fn change,
                          void *ud, uint64_t *written);

#endif /* NAQ_CORE_KV_H */
