/*
 * unique.c - unique keys: at most one pending job per (queue, key).
 *
 * Unique keys live in the KV bucket "naq_unique" under "<queue>/<key>"
 * (both parts encoded as KV key characters; a hash when too long). The
 * key is taken with create-if-absent, which the server decides
 * atomically, so of two concurrent enqueues exactly one takes it and the
 * other sees the winner's job id. The holder releases it when it ends
 * (finish.c). A holder that ended without releasing it (its worker died
 * after the outcome), was cancelled, or outlived its TTL in the queue is
 * recognised as gone and replaced by compare-and-set: a job that ended
 * for any reason never blocks its key.
 */
#include "jobs.h"
#include "core/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key whose holder left no trace at all (no event, no outcome) for this
 * long was taken by an enqueue that died before publishing. */
#define UNIQUE_ORPHAN_S 300
/* Longest readable unique key in KV (longer ones are hashed). */
#define UNIQUE_KEY_READABLE 255

static void unique_kv_key(const char *queue, const char *key, char out[NAQ__KV_KEY_MAX])
{
    char q[NAQ__KV_KEY_MAX], k[NAQ__KV_KEY_MAX];
    if (naq__kv_key(queue, q, sizeof q) == NAQ_OK && naq__kv_key(key, k, sizeof k) == NAQ_OK &&
        naq__join_if_fits(out, UNIQUE_KEY_READABLE, q, '/', k))
        return;
    naq__clear_error(); /* the failed encodings above are not the caller's */
    /* Two FNV-1a 64 hashes of "<queue>\0<key>": a collision is out of reach.
     * "=h" cannot come from an encoding ('=' is followed by hex digits). */
    size_t nq = strlen(queue) + 1, nk = strlen(key) + 1; /* with their NULs */
    uint64_t h1 = naq__fnv1a(key, nk, naq__fnv1a(queue, nq, NAQ__FNV_OFFSET));
    uint64_t h2 = naq__fnv1a(key, nk, naq__fnv1a(queue, nq, NAQ__FNV_OFFSET2));
    snprintf(out, NAQ__KV_KEY_MAX, "=h%016llx%016llx", (unsigned long long)h1,
             (unsigned long long)h2);
}

/* Who holds a unique key: its job id, when it was taken, and when the
 * job's TTL runs out (0 = none). */
static int unique_holder(const char *val, char id[NAQ_ID_SIZE], double *created_at,
                         double *expires_at)
{
    json_t *o = json_loads(val, 0, NULL);
    const char *h = json_string_value(json_object_get(o, "job_id"));
    int ok = h != NULL && naq_id_validate("job id", h) == NAQ_OK;
    if (ok)
        snprintf(id, NAQ_ID_SIZE, "%s", h);
    *created_at = json_number_value(json_object_get(o, "created_at"));
    *expires_at = json_number_value(json_object_get(o, "expires_at"));
    json_decref(o);
    return ok;
}

/* 1 when the job holding a key is gone for good: finished, or never
 * published (no trace of it at all, long after the key was taken). */
static int holder_gone(naq_client *c, const char *holder, double created_at, double expires_at)
{
    /* Ended, or about to: cancelled or past its TTL while it waits in its
     * queue (the worker that meets it will not run it). */
    if (naq__job_finished(c, holder) != 0 || naq__cancel_requested(c, holder) ||
        (expires_at > 0 && naq__now() > expires_at))
        return 1;
    /* Without events of our own we cannot tell "never published" from
     * "pending with logging off", so we keep the key. */
    if (c->logger == NULL || naq__now() - created_at < UNIQUE_ORPHAN_S)
        return 0;
    naq_event last;
    naq_status s = naq_job_last_event(c, holder, &last);
    naq_event_clear(&last);
    return s == NAQ_ERR_NOT_FOUND;
}

typedef struct {
    naq_client *c;
    const naq_job *j;
    const char *mine; /* our value */
    char *holder;     /* out: the pending job that holds the key */
    int took;
} claim;

/* The key is ours unless a job that has not ended holds it. */
static naq_status claim_change(const char *val, size_t len, void *ud, char **out, size_t *out_len)
{
    (void)len;
    claim *cl = ud;
    cl->took = 0;
    cl->holder[0] = '\0';
    if (val != NULL) {
        char id[NAQ_ID_SIZE] = "";
        double created_at = 0, expires_at = 0;
        int readable = unique_holder(val, id, &created_at, &expires_at);
        if (readable && strcmp(id, cl->j->id) == 0)
            return NAQ_ERR_CLOSED; /* ours already: nothing taken */
        if (readable && !holder_gone(cl->c, id, created_at, expires_at)) {
            snprintf(cl->holder, NAQ_ID_SIZE, "%s", id);
            return NAQ_ERR_CLOSED;
        }
    }
    /* Free, or its holder ended (or it is not a value naq wrote). */
    *out = strdup(cl->mine);
    if (*out == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory taking a unique key");
    *out_len = strlen(cl->mine);
    cl->took = 1;
    return NAQ_OK;
}

naq_status naq__unique_claim(naq_client *c, const naq_job *j, char holder[NAQ_ID_SIZE], int *took,
                             uint64_t *rev)
{
    char key[NAQ__KV_KEY_MAX];
    unique_kv_key(j->queue, j->unique_key, key);
    holder[0] = '\0';
    *took = 0;
    double now = naq__now();
    json_t *v = json_pack("{s:s, s:s, s:s, s:f, s:f}", "job_id", j->id, "queue", j->queue,
                          "unique_key", j->unique_key, "created_at", now, "expires_at",
                          j->ttl_ms > 0 ? now + (double)j->ttl_ms / 1000.0 : 0.0);
    char *val = v ? naq__json_dumps(v, NAQ__JSON_FLAGS) : NULL;
    json_decref(v);
    if (val == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory taking a unique key");
    claim cl = {c, j, val, holder, 0};
    naq_status s = naq__kv_modify(c, NAQ__KV_UNIQUE, key, claim_change, &cl, rev);
    free(val);
    if (s == NAQ_ERR_TIMEOUT)
        s = naq__fail(NAQ_ERR_TIMEOUT,
                      "the unique key '%s' of queue %s kept changing hands while job %s tried "
                      "to take it; try again",
                      j->unique_key, j->queue, j->id);
    *took = s == NAQ_OK && cl.took;
    return s;
}

void naq__unique_unclaim(naq_client *c, const naq_job *j, uint64_t rev)
{
    char key[NAQ__KV_KEY_MAX];
    unique_kv_key(j->queue, j->unique_key, key);
    naq__kv_remove(c, NAQ__KV_UNIQUE, key, rev);
}

/* Removes the key only while job_id holds it: another job may have taken
 * it since. */
static naq_status release_change(const char *val, size_t len, void *ud, char **out, size_t *out_len)
{
    (void)len;
    (void)out_len;
    char id[NAQ_ID_SIZE] = "";
    double created_at = 0, expires_at = 0;
    if (val == NULL || !unique_holder(val, id, &created_at, &expires_at) || strcmp(id, ud) != 0)
        return NAQ_ERR_CLOSED;
    *out = NULL;
    return NAQ_OK;
}

void naq__unique_release(naq_client *c, const char *queue, const char *unique_key,
                         const char *job_id)
{
    if (c == NULL || queue == NULL || unique_key == NULL || job_id == NULL)
        return;
    char key[NAQ__KV_KEY_MAX];
    unique_kv_key(queue, unique_key, key);
    naq__kv_modify(c, NAQ__KV_UNIQUE, key, release_change, (void *)job_id, NULL);
}
