/*
 * enqueue.c - putting one job into naq: its queue, or the dependency
 * store (deps.c) when it waits for other jobs, guarded by its unique key
 * when it has one.
 *
 * naq_enqueue validates everything before anything is sent, publishes
 * synchronously (so a returned id is stored), and only then logs
 * "enqueued": the event log never shows a job that is not queued, and a
 * refused job leaves no trace anywhere.
 *
 * Unique keys live in the KV bucket "naq_unique" under "<queue>/<key>"
 * (both parts encoded as KV key characters; a hash when too long). The
 * key is taken with create-if-absent, which the server decides
 * atomically, so of two concurrent enqueues exactly one takes it and the
 * other sees the winner's job id. A holder that finished without
 * releasing the key (its worker died after the outcome) is recognised by
 * its finished marker (deps.c) and replaced by compare-and-set.
 */
#include "lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key whose holder left no trace at all (no event, no finished marker)
 * for this long was taken by an enqueue that died before publishing. */
#define UNIQUE_ORPHAN_S 300
#define UNIQUE_ATTEMPTS 20
/* Longest readable unique key in KV (longer ones are hashed). */
#define UNIQUE_KEY_READABLE 255

naq_status naq__check_payload(naq_client *c, const char *job_id, size_t len)
{
    int64_t max_payload = natsConnection_GetMaxPayload(c->nc);
    if (max_payload > 0 && (int64_t)len > max_payload)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "job %s is %zu bytes but the server accepts messages of at most %lld "
                         "bytes; pass large data by reference (a path or URL) or raise the "
                         "server's max_payload",
                         job_id, len, (long long)max_payload);
    return NAQ_OK;
}

naq_status naq__job_publish(naq_client *c, jsCtx *js, const char *job_id, const char *queue,
                            const char *function, int priority, const char *json, size_t len,
                            const char *msg_id, int *duplicate, uint64_t *seq)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq__subject(c, subject, sizeof subject, "queue.%s.%d", queue, priority);
    if (s != NAQ_OK)
        return s;
    natsMsg *msg = NULL;
    jsPubAck *ack = NULL;
    natsStatus ns = natsMsg_Create(&msg, subject, NULL, json, (int)len);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id ? msg_id : job_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Naq-Queue", queue);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Naq-Function", function);
    if (ns != NATS_OK) {
        s = naq__fail_nats(NAQ_ERR_NO_MEMORY, ns, 0, "cannot build the message of job %s", job_id);
        goto out;
    }
    jsErrCode jerr = 0;
    ns = js_PublishMsg(&ack, js, msg, NULL, &jerr);
    if (ns == NATS_NO_RESPONDERS)
        s = naq__fail(NAQ_ERR_NATS,
                      "no stream stores subject %s, so job %s was not queued; is the %s stream "
                      "there? (naq creates it when a client connects)",
                      subject, job_id, c->cfg.job_stream);
    else if (ns == NATS_TIMEOUT)
        s = naq__fail(NAQ_ERR_TIMEOUT,
                      "the server did not confirm job %s in time, so it may or may not be "
                      "queued; enqueue again with the same job id (stored once within 2 minutes)",
                      job_id);
    else if (ns != NATS_OK)
        s = naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "job %s was not queued on %s", job_id,
                           subject);
    if (s == NAQ_OK && duplicate != NULL)
        *duplicate = ack->Duplicate;
    if (s == NAQ_OK && seq != NULL)
        *seq = ack->Sequence;
out:
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    return s;
}

/* The job is stored already, so a logging problem is not the caller's
 * failure (the logger spools or counts what it cannot send). */
void naq__log_enqueued(naq_client *c, const naq_job *j)
{
    naq_event e;
    if (naq__enqueued_event(j, &e) == NAQ_OK)
        naq_client_log(c, &e);
    naq_event_clear(&e);
}

/* ---------------------------------------------------------------- unique */

static void unique_kv_key(const char *queue, const char *key, char out[NAQ__KV_KEY_MAX])
{
    char q[NAQ__KV_KEY_MAX], k[NAQ__KV_KEY_MAX];
    if (naq__kv_key(queue, q, sizeof q) == NAQ_OK && naq__kv_key(key, k, sizeof k) == NAQ_OK) {
        size_t nq = strlen(q), nk = strlen(k);
        if (nq + 1 + nk <= UNIQUE_KEY_READABLE) {
            memcpy(out, q, nq);
            out[nq] = '/';
            memcpy(out + nq + 1, k, nk + 1);
            return;
        }
    }
    naq__clear_error(); /* the failed encodings above are not the caller's */
    /* Two FNV-1a 64 hashes of "<queue>\0<key>": a collision is out of reach.
     * "=h" cannot come from an encoding ('=' is followed by hex digits). */
    uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
    const char *parts[2] = {queue, key};
    for (int i = 0; i < 2; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i];; p++) {
            h1 = (h1 ^ *p) * 0x100000001b3ULL;
            h2 = (h2 ^ *p) * 0x100000001b3ULL;
            if (*p == '\0')
                break;
        }
    }
    snprintf(out, NAQ__KV_KEY_MAX, "=h%016llx%016llx", (unsigned long long)h1,
             (unsigned long long)h2);
}

/* Who holds a unique key: its job id and when it was taken. */
static int unique_holder(const char *val, char id[NAQ_ID_SIZE], double *created_at)
{
    json_t *o = json_loads(val, 0, NULL);
    const char *h = json_string_value(json_object_get(o, "job_id"));
    int ok = h != NULL && naq_id_validate("job id", h) == NAQ_OK;
    if (ok)
        snprintf(id, NAQ_ID_SIZE, "%s", h);
    *created_at = json_number_value(json_object_get(o, "created_at"));
    json_decref(o);
    return ok;
}

/* 1 when the job holding a key is gone for good: finished, or never
 * published (no trace of it at all, long after the key was taken). */
static int holder_gone(naq_client *c, const char *holder, double created_at)
{
    if (naq__job_finished(c, holder) != 0)
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

/* Takes j's unique key (*took = 1, *rev = the revision written), or
 * finds the pending job that holds it (holder = its id). When j itself
 * holds it (the same job id enqueued again), neither. */
static naq_status unique_claim(naq_client *c, const naq_job *j, const char *key,
                               char holder[NAQ_ID_SIZE], int *took, uint64_t *rev)
{
    holder[0] = '\0';
    *took = 0;
    json_t *v = json_pack("{s:s, s:s, s:s, s:f}", "job_id", j->id, "queue", j->queue, "unique_key",
                          j->unique_key, "created_at", naq__now());
    char *val = v ? json_dumps(v, NAQ__JSON_FLAGS) : NULL;
    json_decref(v);
    if (val == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory taking a unique key");
    naq_status s = NAQ_ERR_EXISTS;
    for (int attempt = 0; attempt < UNIQUE_ATTEMPTS; attempt++) {
        s = naq__kv_create(c, NAQ__KV_UNIQUE, key, val, strlen(val), rev);
        if (s == NAQ_OK) {
            *took = 1;
            break;
        }
        if (s != NAQ_ERR_EXISTS)
            break;
        char *cur = NULL, id[NAQ_ID_SIZE] = "";
        uint64_t cur_rev = 0;
        double created_at = 0;
        s = naq__kv_get(c, NAQ__KV_UNIQUE, key, &cur, NULL, &cur_rev);
        if (s == NAQ_ERR_NOT_FOUND)
            continue; /* released meanwhile: try again */
        if (s != NAQ_OK)
            break;
        int readable = unique_holder(cur, id, &created_at);
        free(cur);
        if (readable && strcmp(id, j->id) == 0)
            break; /* ours already: s == NAQ_OK, nothing taken */
        if (readable && !holder_gone(c, id, created_at)) {
            snprintf(holder, NAQ_ID_SIZE, "%s", id);
            break;
        }
        /* The holder finished: replace it, unless someone else did first. */
        s = naq__kv_update(c, NAQ__KV_UNIQUE, key, val, strlen(val), cur_rev, rev);
        if (s == NAQ_OK) {
            *took = 1;
            break;
        }
        if (s != NAQ_ERR_EXISTS)
            break;
    }
    free(val);
    if (s == NAQ_ERR_EXISTS)
        s = naq__fail(NAQ_ERR_TIMEOUT,
                      "the unique key '%s' of queue %s changed hands %d times while job %s "
                      "tried to take it; try again",
                      j->unique_key, j->queue, UNIQUE_ATTEMPTS, j->id);
    return s;
}

void naq__unique_release(naq_client *c, const naq_job *job)
{
    if (c == NULL || job == NULL || job->unique_key == NULL)
        return;
    char key[NAQ__KV_KEY_MAX], *cur = NULL, id[NAQ_ID_SIZE] = "";
    uint64_t rev = 0;
    double created_at = 0;
    unique_kv_key(job->queue, job->unique_key, key);
    if (naq__kv_get(c, NAQ__KV_UNIQUE, key, &cur, NULL, &rev) != NAQ_OK)
        return;
    /* Only our own hold: another job may have taken the key since. */
    if (unique_holder(cur, id, &created_at) && strcmp(id, job->id) == 0)
        naq__kv_remove(c, NAQ__KV_UNIQUE, key, rev);
    free(cur);
}

/* ---------------------------------------------------------------- enqueue */

naq_status naq__enqueue_built(naq_client *c, const naq_job *j, const char *json, size_t len,
                              char job_id[NAQ_ID_SIZE], int *existing)
{
    char key[NAQ__KV_KEY_MAX], holder[NAQ_ID_SIZE] = "";
    int took = 0;
    uint64_t rev = 0;
    naq_status s;
    if (j->unique_key != NULL) {
        unique_kv_key(j->queue, j->unique_key, key);
        if ((s = unique_claim(c, j, key, holder, &took, &rev)) != NAQ_OK)
            return s;
        if (holder[0] != '\0') {
            snprintf(job_id, NAQ_ID_SIZE, "%s", holder);
            if (existing != NULL)
                *existing = 1;
            return NAQ_OK;
        }
    }
    if (j->depends_on != NULL) {
        s = naq__deps_enqueue(c, j, json, len);
    } else {
        int dup = 0;
        s = naq__job_publish(c, c->js, j->id, j->queue, j->function, j->priority, json, len, NULL,
                             &dup, NULL);
        /* A duplicate (same id within the window) is stored once, and its
         * "enqueued" event was logged by the first enqueue. */
        if (s == NAQ_OK && !dup)
            naq__log_enqueued(c, j);
    }
    if (s != NAQ_OK) {
        if (took) {
            /* Nothing half-enqueued: give the key back (keeping the
             * message of the failure that matters). */
            char why[1024];
            snprintf(why, sizeof why, "%s", naq_last_error());
            naq__kv_remove(c, NAQ__KV_UNIQUE, key, rev);
            s = naq__fail(s, "%s", why);
        }
        return s;
    }
    snprintf(job_id, NAQ_ID_SIZE, "%s", j->id);
    return NAQ_OK;
}

naq_status naq_enqueue_ex(naq_client *c, const naq_job_opts *o, char job_id[NAQ_ID_SIZE],
                          int *existing)
{
    if (job_id != NULL)
        job_id[0] = '\0';
    if (existing != NULL)
        *existing = 0;
    if (c == NULL || o == NULL || job_id == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_enqueue needs a client, options and a buffer "
                                              "for the job id");
    naq_status s = naq_job_opts_validate(o);
    if (s != NAQ_OK)
        return s;
    naq_job j;
    char *json = NULL;
    size_t len = 0;
    if ((s = naq__job_from_opts(o, &j)) != NAQ_OK)
        return s;
    if ((s = naq_job_encode(&j, &json, &len)) == NAQ_OK &&
        (s = naq__check_payload(c, j.id, len)) == NAQ_OK)
        s = naq__enqueue_built(c, &j, json, len, job_id, existing);
    if (s == NAQ_ERR_CODEC)
        s = NAQ_ERR_INVALID_ARG; /* validated, so only a bad string can get here */
    free(json);
    naq_job_clear(&j);
    return s;
}

naq_status naq_enqueue(naq_client *c, const naq_job_opts *o, char job_id[NAQ_ID_SIZE])
{
    return naq_enqueue_ex(c, o, job_id, NULL);
}
