/*
 * finish.c - the job-finish protocol: what happens when a job ends, in
 * this order, before its message is acknowledged:
 *   1. the jobs waiting for it are told (deps.c), each exactly once;
 *   2. its outcome record is stored (outcome.c), after the last waiter it
 *      saw: the result, and the fact that it finished, in one message;
 *   3. its unique key is released (unique.c);
 *   4. the worker acknowledges the message (worker_job.c), once this and
 *      the outcome event are both confirmed by the server.
 * A worker that dies anywhere before 4 leaves the message to be delivered
 * again, and the next run does it all again: every step is idempotent.
 *
 * The common job (no unique key, nobody waiting) costs one asynchronous
 * publish: its record is written with "expect no message on this subject",
 * so the server itself answers "is anybody waiting?". Only when that fails
 * (a waiter came first, or an earlier run's record) does the job take the
 * slow path on the finisher's thread: read the waiters, tell each, write
 * the record after the last one seen (again compare-and-set, so a waiter
 * added meanwhile is not missed). Jobs with a unique key take the slow
 * path directly, as do jobs that ended without running (cancelled while
 * waiting or delayed), synchronously (naq__finish_unrun).
 */
#include "core/crypt.h"
#include "core/jsonw.h"
#include "jobs.h"
#include "core/msgmap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Acknowledgements of outcome records the server may owe at once; how long
 * one may take before its job is handed back, and how often the finisher
 * looks (our deadline, not nats.c's MaxWait: logger.c, expire_overdue). */
#define MAX_RECORDS_IN_FLIGHT 4096
#define RECORD_ACK_WAIT_MS 5000
#define OVERDUE_CHECK_MS 500
/* Rounds of "tell the waiters, write after them" before giving up. */
#define WRITE_ATTEMPTS 50

/* ---------------------------------------------------------------- record */

/* With keys, the members of the record that carry payload go into one
 * envelope instead (written last, as "sealed"); 0 when out of memory. */
static int seal_payload(const naq__crypt *k, const naq_job *j, json_t *payload, naq__jsonw *w)
{
    if (json_object_size(payload) == 0)
        return 1;
    char *plain = naq__json_dumps(payload, NAQ__JSON_FLAGS);
    json_t *env = plain ? naq__crypt_seal(k, NAQ_CRYPT_OUTCOME, j->id, plain, strlen(plain)) : NULL;
    char *text = env ? naq__json_dumps(env, NAQ__JSON_FLAGS) : NULL;
    if (text != NULL)
        naq__jsonw_raw(w, "sealed", text, strlen(text));
    free(plain);
    free(text);
    json_decref(env);
    return text != NULL;
}

char *naq__outcome_record(const naq__crypt *k, const naq_job *j, uint64_t message_seq,
                          const char *status, const json_t *details, const char *error_type,
                          const char *error_message)
{
    /* Written straight into one buffer (jsonw.h): every job ends with one,
     * and a jansson tree costs an allocation per field. */
    int64_t ttl = j->result_ttl_ms > 0 ? j->result_ttl_ms : NAQ_RESULTS_TTL_MS;
    double now = naq__now();
    naq__jsonw w;
    naq__jsonw_init(&w, 256);
    naq__jsonw_begin(&w);
    naq__jsonw_str(&w, "job_id", j->id);
    naq__jsonw_str(&w, "queue", j->queue);
    naq__jsonw_str(&w, "function", j->function);
    naq__jsonw_str(&w, "status", status);
    naq__jsonw_int(&w, "attempt", j->attempt);
    if (message_seq > 0)
        naq__jsonw_int(&w, "message_seq", (long long)message_seq);
    naq__jsonw_fixed(&w, "finished_at", now, 6);
    naq__jsonw_fixed(&w, "expires_at", now + (double)ttl / 1000.0, 6);
    /* exit_status and signal say how a run ended, not what it computed:
     * they stay readable with the other metadata. */
    static const char *const copied[] = {"result", "exit_status", "signal", "stdout_tail",
                                         "stderr_tail"};
    static const int payload[] = {1, 0, 0, 1, 1};
    json_t *sealed = k != NULL ? json_object() : NULL;
    for (size_t i = 0; details != NULL && i < sizeof copied / sizeof *copied; i++) {
        json_t *v = json_object_get(details, copied[i]);
        if (v != NULL && sealed != NULL && payload[i]) {
            json_object_set(sealed, copied[i], v);
            continue;
        }
        char *text = v ? naq__json_dumps(v, NAQ__JSON_FLAGS | JSON_ENCODE_ANY) : NULL;
        if (text != NULL)
            naq__jsonw_raw(&w, copied[i], text, strlen(text));
        free(text);
    }
    if (error_type != NULL) {
        naq__jsonw_str(&w, "error_type", error_type);
        if (sealed != NULL)
            json_object_set_new(sealed, "error_message",
                                json_string(error_message ? error_message : ""));
        else
            naq__jsonw_str(&w, "error_message", error_message ? error_message : "");
    }
    int ok = k == NULL || (sealed != NULL && seal_payload(k, j, sealed, &w));
    json_decref(sealed);
    size_t len = 0;
    char *record = naq__jsonw_finish(&w, &len);
    if (!ok) { /* never the plaintext instead */
        free(record);
        return NULL;
    }
    return record;
}

/* ---------------------------------------------------------------- slow path */

naq_status naq__ended_add(json_t *ended, json_t *job, const char *error_type, const char *message)
{
    json_t *e =
        json_pack("{s:o, s:s, s:s}", "job", job, "error_type", error_type, "message", message);
    if (e == NULL || json_array_append_new(ended, e) != 0)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory finishing a job");
    return NAQ_OK;
}

/* Tells every job waiting for job_id, then writes its record after the
 * last waiter seen; jobs this cancels are appended to ended. */
static naq_status record_after_waiters(naq_client *c, const char *job_id, const char *record,
                                       int ok, json_t *ended)
{
    natsMsg *rec = NULL;
    naq_status s = naq__outcome_msg(c, job_id, "outcome", record, strlen(record), &rec);
    uint64_t seen = 0; /* waiters up to this sequence are told */
    for (int attempt = 0; s == NAQ_OK && attempt < WRITE_ATTEMPTS; attempt++) {
        natsMsg *m = NULL;
        while (s == NAQ_OK && (s = naq__outcome_next(c, job_id, seen + 1, &m)) == NAQ_OK) {
            seen = natsMsg_GetSequence(m);
            if (!naq__outcome_is_record(m)) {
                json_t *w =
                    json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
                const char *dependent = json_string_value(json_object_get(w, "dependent"));
                if (dependent != NULL)
                    s = naq__deps_account(c, dependent, job_id, ok, ended);
                json_decref(w);
            }
            natsMsg_Destroy(m);
        }
        if (s != NAQ_ERR_NOT_FOUND)
            break;
        s = naq__outcome_write(c, rec, seen);
        if (s != NAQ_ERR_EXISTS)
            break;
        s = NAQ_OK; /* a waiter came meanwhile: tell it too */
    }
    natsMsg_Destroy(rec);
    if (s == NAQ_OK || s == NAQ_ERR_EXISTS)
        s = s == NAQ_OK
                ? NAQ_OK
                : naq__fail(NAQ_ERR_TIMEOUT, "too much contention on the outcome of %s", job_id);
    return s;
}

static naq_status finish_one(naq_client *c, const char *job_id, const char *queue,
                             const char *unique_key, const char *record, int ok, json_t *ended)
{
    naq_status s = record_after_waiters(c, job_id, record, ok, ended);
    if (s == NAQ_OK && unique_key != NULL)
        naq__unique_release(c, queue, unique_key, job_id);
    return s;
}

naq_status naq__finish_unrun(naq_client *c, json_t *ended)
{
    naq_status s = NAQ_OK;
    /* The list grows while we work: a cancelled job's own dependents. */
    for (size_t i = 0; s == NAQ_OK && i < json_array_size(ended); i++) {
        json_t *e = json_array_get(ended, i);
        json_t *job = json_object_get(e, "job");
        char *text = naq__json_dumps(job, NAQ__JSON_FLAGS);
        naq_job j;
        s = text ? naq_job_decode(text, strlen(text), &j)
                 : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory finishing a job");
        free(text);
        if (s != NAQ_OK)
            break;
        j.attempt = 0; /* it never ran */
        char *record = naq__outcome_record(c->crypt, &j, 0, "cancelled", NULL,
                                           json_string_value(json_object_get(e, "error_type")),
                                           json_string_value(json_object_get(e, "message")));
        s = record ? finish_one(c, j.id, j.queue, j.unique_key, record, 0, ended)
                   : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory finishing job %s", j.id);
        if (s == NAQ_OK)
            naq__deps_forget(c, j.id);
        free(record);
        naq_job_clear(&j);
    }
    return s;
}

naq_status naq__finish(naq_client *c, const naq_job *j, const char *record, int succeeded)
{
    json_t *ended = json_array();
    if (ended == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory finishing job %s", j->id);
    naq_status s = finish_one(c, j->id, j->queue, j->unique_key, record, succeeded, ended);
    if (s == NAQ_OK)
        s = naq__finish_unrun(c, ended);
    json_decref(ended);
    return s;
}

/* ---------------------------------------------------------------- finisher */

typedef struct finish_req {
    struct finish_req *next;
    naq_job job; /* the fields finish_one needs: id, queue, unique_key */
    char *record;
    int succeeded;
    naq__confirm_fn done;
    void *ud;
} finish_req;

struct naq__finisher {
    naq_client *c;
    jsCtx *js;              /* the worker's connection; acks in on_record_ack */
    naq__msgmap *in_flight; /* published record -> its finish_req */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    finish_req *head, *tail; /* the slow path's work, under lock */
    int stopping;            /* under lock */
    atomic_int open;         /* submitted, done not yet called */
};

static void req_done(naq__finisher *f, finish_req *r, int ok)
{
    r->done(r->ud, ok);
    free(r->record);
    free(r->job.unique_key);
    free(r);
    atomic_fetch_sub(&f->open, 1);
}

static void slow_push(naq__finisher *f, finish_req *r)
{
    r->next = NULL;
    pthread_mutex_lock(&f->lock);
    if (f->tail)
        f->tail->next = r;
    else
        f->head = r;
    f->tail = r;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void on_record_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    naq__finisher *f = closure;
    finish_req *r = naq__msgmap_take(f->in_flight, msg);
    natsMsg_Destroy(msg);
    if (r == NULL)
        return;
    if (pa != NULL || pae == NULL)
        req_done(f, r, 1);
    else if (pae->ErrCode == NAQ__JS_WRONG_LAST_SEQUENCE)
        slow_push(f, r); /* somebody waits for it, or it ran before */
    else
        req_done(f, r, 0);
}

/* Records whose ack is overdue (see logger.c, expire_overdue): nats.c
 * gives back every unanswered one, and each is settled as not stored; its
 * job is delivered again, and a redelivery whose record was stored after
 * all is acked without a run (worker_job.c). Finisher thread. */
static void expire_overdue(naq__finisher *f)
{
    int64_t oldest = naq__msgmap_oldest_ms(f->in_flight);
    if (oldest == 0 || naq__mono_ms() - oldest < RECORD_ACK_WAIT_MS)
        return;
    natsMsgList pending = {0};
    if (js_PublishAsyncGetPendingList(&pending, f->js) != NATS_OK)
        return;
    for (int i = 0; i < pending.Count; i++) {
        finish_req *r = naq__msgmap_take(f->in_flight, pending.Msgs[i]);
        if (r != NULL)
            req_done(f, r, 0);
    }
    natsMsgList_Destroy(&pending);
}

static void *slow_main(void *arg)
{
    naq__finisher *f = arg;
    int64_t next_check_ms = 0;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        while (f->head == NULL && !f->stopping) {
            struct timespec until = naq__deadline(CLOCK_REALTIME, OVERDUE_CHECK_MS);
            pthread_cond_timedwait(&f->cond, &f->lock, &until);
            if (naq__mono_ms() >= next_check_ms) {
                pthread_mutex_unlock(&f->lock);
                expire_overdue(f);
                next_check_ms = naq__mono_ms() + OVERDUE_CHECK_MS;
                pthread_mutex_lock(&f->lock);
            }
        }
        finish_req *r = f->head;
        if (r != NULL) {
            f->head = r->next;
            if (f->head == NULL)
                f->tail = NULL;
        }
        pthread_mutex_unlock(&f->lock);
        if (r == NULL)
            return NULL; /* stopping, and nothing left */
        naq_status s = naq__finish(f->c, &r->job, r->record, r->succeeded);
        req_done(f, r, s == NAQ_OK);
    }
}

naq_status naq__finisher_create(naq_client *c, natsConnection *nc, naq__finisher **out)
{
    *out = NULL;
    naq__finisher *f = calloc(1, sizeof *f);
    if (f == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating a finisher");
    f->c = c;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = MAX_RECORDS_IN_FLIGHT;
    jo.PublishAsync.AckHandler = on_record_ack;
    jo.PublishAsync.AckHandlerClosure = f;
    naq_status s = naq__msgmap_create(&f->in_flight);
    natsStatus ns = NATS_OK;
    if (s == NAQ_OK && (ns = natsConnection_JetStream(&f->js, nc, &jo)) != NATS_OK)
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot create the finisher's JetStream context");
    if (s == NAQ_OK && pthread_create(&f->thread, NULL, slow_main, f) != 0)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "cannot start the finisher thread");
    if (s != NAQ_OK) {
        jsCtx_Destroy(f->js);
        naq__msgmap_destroy(f->in_flight);
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->cond);
        free(f);
        return s;
    }
    *out = f;
    return NAQ_OK;
}

/* The fast path: one asynchronous publish that expects an empty subject.
 * 0 when it could not be handed to nats.c (then r is still ours). */
static int publish_fast(naq__finisher *f, finish_req *r)
{
    natsMsg *m = NULL;
    if (naq__outcome_msg(f->c, r->job.id, "outcome", r->record, strlen(r->record), &m) != NAQ_OK)
        return 0;
    natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", "0");
    if (naq__msgmap_put(f->in_flight, m, r) != NAQ_OK) {
        natsMsg_Destroy(m);
        return 0;
    }
    natsMsg *sent = m;
    if (js_PublishMsgAsync(f->js, &m, NULL) != NATS_OK) {
        naq__msgmap_take(f->in_flight, sent);
        natsMsg_Destroy(m);
        return 0;
    }
    return 1;
}

void naq__finisher_submit(naq__finisher *f, const naq_job *j, char *record, int succeeded,
                          naq__confirm_fn done, void *ud)
{
    finish_req *r = calloc(1, sizeof *r);
    char *key = j->unique_key ? strdup(j->unique_key) : NULL;
    if (r == NULL || record == NULL || (j->unique_key != NULL && key == NULL)) {
        free(r);
        free(key);
        free(record);
        done(ud, 0);
        return;
    }
    memcpy(r->job.id, j->id, sizeof r->job.id);
    memcpy(r->job.queue, j->queue, sizeof r->job.queue);
    r->job.unique_key = key;
    r->record = record;
    r->succeeded = succeeded;
    r->done = done;
    r->ud = ud;
    atomic_fetch_add(&f->open, 1);
    if (key != NULL || !publish_fast(f, r))
        slow_push(f, r);
}

void naq__finisher_destroy(naq__finisher *f, int64_t timeout_ms)
{
    if (f == NULL)
        return;
    int64_t deadline = naq__mono_ms() + timeout_ms;
    while (atomic_load(&f->open) > 0 && naq__mono_ms() < deadline) {
        naq__sleep_ms(2);
    }
    pthread_mutex_lock(&f->lock);
    f->stopping = 1;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
    /* Records still unanswered: taken back, their handlers never run. */
    natsMsgList pending = {0};
    if (naq__msgmap_count(f->in_flight) > 0 &&
        js_PublishAsyncGetPendingList(&pending, f->js) == NATS_OK) {
        for (int i = 0; i < pending.Count; i++) {
            finish_req *r = naq__msgmap_take(f->in_flight, pending.Msgs[i]);
            if (r != NULL)
                req_done(f, r, 0);
        }
        natsMsgList_Destroy(&pending);
    }
    pthread_join(f->thread, NULL);
    /* Pushed by an ack handler that ran while the thread was leaving. */
    for (finish_req *r = f->head, *next; r != NULL; r = next) {
        next = r->next;
        req_done(f, r, 0);
    }
    jsCtx_Destroy(f->js);
    naq__msgmap_destroy(f->in_flight);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    free(f);
}
