/*
 * lease.c - the scheduler's leader lease (see lease.h for the argument
 * why two leaders are impossible).
 *
 * The lock value {"scheduler_id","host","pid","since","token"} is for
 * people (`nats kv get naq_scheduler_lock leader`) and for one recovery:
 * when a renewal's reply is lost the write may still have happened, so a
 * failed renewal looks at the key and, if it carries our random token,
 * carries on with that revision instead of giving the lease up.
 */
#include "core/kv.h"
#include "lease.h"
#include "core/jsonw.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACQUIRE_EVERY_MS 1000
#define RETRY_RENEW_MS 200
#define LOCK_KEY "leader"

struct naq__lease {
    kvStore *kv;
    jsCtx *js;
    naq__sched_counters *ctr;
    char holder[NAQ_ID_SIZE];
    char token[NAQ_ID_SIZE];
    char host[256];
    int64_t lease_ms, margin_ms;
    uint64_t revision;              /* of our lock value while holding */
    int holding;                    /* we believe the key is ours */
    double since;                   /* when we took it (wall clock, for people) */
    int64_t next_try_ms;            /* next acquisition attempt */
    int64_t next_renew_ms;          /* next renewal */
    _Atomic int64_t valid_until_ms; /* 0 when not leader */
    const char *why;
};

naq_status naq__lease_create(jsCtx *js, int replicas, const char *holder_id, int64_t lease_ms,
                             naq__sched_counters *ctr, naq__lease **out)
{
    *out = NULL;
    naq__lease *l = calloc(1, sizeof *l);
    if (l == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating a lease");
    l->js = js;
    l->ctr = ctr;
    snprintf(l->holder, sizeof l->holder, "%s", holder_id);
    naq_id_new(l->token);
    if (gethostname(l->host, sizeof l->host) != 0)
        snprintf(l->host, sizeof l->host, "unknown");
    l->host[sizeof l->host - 1] = '\0';
    l->why = "";
    kvConfig kc;
    naq__kv_config_init(&kc, NAQ__LOCK_BUCKET, "naq scheduler leader lease (TTL = lease)", replicas,
                        lease_ms * 1000000LL /* nanoseconds */);
    natsStatus ns = naq__kv_bind(js, &kc, &l->kv);
    kvStatus *st = NULL;
    if (ns == NATS_OK)
        ns = kvStore_Status(&st, l->kv);
    if (ns != NATS_OK) {
        naq__lease_destroy(l);
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot open the scheduler lock bucket %s",
                              NAQ__LOCK_BUCKET);
    }
    l->lease_ms = kvStatus_TTL(st) / 1000000LL;
    kvStatus_Destroy(st);
    if (l->lease_ms < 300) {
        int64_t ttl = l->lease_ms;
        naq__lease_destroy(l);
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "the lock bucket %s has a TTL of %lld ms; a lease needs a TTL of at "
                         "least 300 ms (delete the bucket to recreate it)",
                         NAQ__LOCK_BUCKET, (long long)ttl);
    }
    l->margin_ms = l->lease_ms / 3;
    *out = l;
    return NAQ_OK;
}

void naq__lease_destroy(naq__lease *l)
{
    if (l == NULL)
        return;
    kvStore_Destroy(l->kv);
    free(l);
}

int64_t naq__lease_ms(const naq__lease *l)
{
    return l->lease_ms;
}
const char *naq__lease_why(const naq__lease *l)
{
    return l->why;
}

int naq__lease_valid(const naq__lease *l, int64_t now_ms)
{
    int64_t until = atomic_load(&l->valid_until_ms);
    return until != 0 && now_ms < until;
}

static char *lock_value(const naq__lease *l)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:f, s:s}", "scheduler_id", l->holder, "host", l->host,
                          "pid", (json_int_t)getpid(), "since", l->since, "token", l->token);
    char *text = o ? naq__json_dumps(o, NAQ__JSON_FLAGS) : NULL;
    json_decref(o);
    return text;
}

/* Reads the lock: *ours = 1 when it holds our token, *rev its revision.
 * NAQ_ERR_NOT_FOUND when nobody holds it. */
static naq_status read_lock(naq__lease *l, int *ours, uint64_t *rev)
{
    kvEntry *e = NULL;
    atomic_fetch_add(&l->ctr->kv_reads, 1);
    natsStatus ns = kvStore_Get(&e, l->kv, LOCK_KEY);
    if (ns == NATS_NOT_FOUND)
        return NAQ_ERR_NOT_FOUND;
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot read the scheduler lock");
    json_t *o = json_loadb(kvEntry_ValueString(e), (size_t)kvEntry_ValueLen(e), 0, NULL);
    const char *token = json_string_value(json_object_get(o, "token"));
    *ours = token != NULL && strcmp(token, l->token) == 0;
    *rev = kvEntry_Revision(e);
    json_decref(o);
    kvEntry_Destroy(e);
    return NAQ_OK;
}

static void lose(naq__lease *l, const char *why)
{
    l->holding = 0;
    atomic_store(&l->valid_until_ms, 0);
    l->why = why;
}

/* Records a write of our lock value (revision rev) that started at
 * monotonic time start: the server's TTL runs from a moment after start. */
static void hold(naq__lease *l, uint64_t rev, int64_t start)
{
    l->holding = 1;
    l->revision = rev;
    l->next_renew_ms = start + l->lease_ms / 3;
    atomic_store(&l->valid_until_ms, start + l->lease_ms - l->margin_ms);
}

static naq__lease_change try_acquire(naq__lease *l, int64_t now_ms, int *io_error)
{
    l->next_try_ms = now_ms + ACQUIRE_EVERY_MS;
    l->since = naq__now();
    char *value = lock_value(l);
    if (value == NULL) {
        naq__fail(NAQ_ERR_NO_MEMORY, "out of memory building the lock value");
        *io_error = 1;
        return NAQ__LEASE_NO_CHANGE;
    }
    int64_t start = naq__mono_ms();
    uint64_t rev = 0;
    atomic_fetch_add(&l->ctr->kv_writes, 1);
    natsStatus ns = kvStore_Create(&rev, l->kv, LOCK_KEY, value, (int)strlen(value));
    free(value);
    if (ns == NATS_OK) {
        hold(l, rev, start);
        *io_error = 0;
        return NAQ__LEASE_ACQUIRED;
    }
    /* Create fails when someone holds the key (a lost race, not an error)
     * or when the server cannot be reached: look to tell which. */
    int ours = 0;
    naq_status s = read_lock(l, &ours, &rev);
    if (s == NAQ_OK && !ours) {
        *io_error = 0;
        return NAQ__LEASE_NO_CHANGE;
    }
    if (s == NAQ_OK && ours) {
        /* Our token: this create landed although its reply was lost, or a
         * renewal of an earlier lead did. The latter was written before
         * `start`, so its TTL may end sooner than start + lease: take the
         * key over with a fresh write whose start we know. */
        start = naq__mono_ms();
        if ((value = lock_value(l)) != NULL && naq__kv_cas(l->js, NAQ__LOCK_BUCKET, LOCK_KEY, value,
                                                           strlen(value), rev, 0, &rev) == NAQ_OK) {
            free(value);
            hold(l, rev, start);
            *io_error = 0;
            return NAQ__LEASE_ACQUIRED;
        }
        free(value);
        *io_error = 1;
        return NAQ__LEASE_NO_CHANGE;
    }
    if (s == NAQ_ERR_NOT_FOUND)
        naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot take the scheduler lock");
    *io_error = 1;
    return NAQ__LEASE_NO_CHANGE;
}

static naq__lease_change renew(naq__lease *l, int64_t now_ms, int *io_error)
{
    char *value = lock_value(l);
    if (value == NULL) {
        naq__fail(NAQ_ERR_NO_MEMORY, "out of memory building the lock value");
        *io_error = 1;
        l->next_renew_ms = now_ms + RETRY_RENEW_MS;
        return NAQ__LEASE_NO_CHANGE;
    }
    int64_t start = naq__mono_ms();
    uint64_t rev = 0;
    atomic_fetch_add(&l->ctr->kv_writes, 1);
    naq_status s =
        naq__kv_cas(l->js, NAQ__LOCK_BUCKET, LOCK_KEY, value, strlen(value), l->revision, 0, &rev);
    free(value);
    if (s == NAQ_OK) {
        hold(l, rev, start);
        *io_error = 0;
        return NAQ__LEASE_NO_CHANGE;
    }
    if (s == NAQ_ERR_EXISTS || s == NAQ_ERR_TIMEOUT) {
        /* The revision moved. If the key still carries our token our own
         * write landed (its reply was lost): adopt its revision and renew
         * again at once. Otherwise the key expired and someone else took
         * it, or it is gone: we are not leader any more. */
        int ours = 0;
        naq_status r = read_lock(l, &ours, &rev);
        if (r == NAQ_OK && ours) {
            /* The validity window stays that of the last confirmed
             * renewal: the landed write only makes the key live longer. */
            l->revision = rev;
            l->next_renew_ms = now_ms;
            *io_error = 0;
            return NAQ__LEASE_NO_CHANGE;
        }
        if (r == NAQ_OK || r == NAQ_ERR_NOT_FOUND) {
            lose(l, r == NAQ_OK ? "another scheduler holds the lease"
                                : "the lease expired before it was renewed");
            *io_error = 0;
            return NAQ__LEASE_LOST;
        }
    }
    *io_error = 1;
    l->next_renew_ms = now_ms + RETRY_RENEW_MS;
    return NAQ__LEASE_NO_CHANGE;
}

naq__lease_change naq__lease_step(naq__lease *l, int64_t now_ms, int *io_error)
{
    if (l->holding) {
        if (!naq__lease_valid(l, now_ms)) {
            lose(l, "the lease ran out before a renewal succeeded");
            return NAQ__LEASE_LOST;
        }
        if (now_ms >= l->next_renew_ms)
            return renew(l, now_ms, io_error);
        return NAQ__LEASE_NO_CHANGE;
    }
    if (now_ms >= l->next_try_ms)
        return try_acquire(l, now_ms, io_error);
    return NAQ__LEASE_NO_CHANGE;
}

void naq__lease_release(naq__lease *l)
{
    if (!l->holding)
        return;
    /* A compare-and-set delete: never removes a lease someone else took
     * after ours ran out. */
    atomic_fetch_add(&l->ctr->kv_writes, 1);
    naq__kv_cas(l->js, NAQ__LOCK_BUCKET, LOCK_KEY, NULL, 0, l->revision, 1, NULL);
    lose(l, "released at shutdown");
}
