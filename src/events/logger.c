/*
 * logger.c - the event logger: never blocks or fails the job path, never
 * loses an event it accepted.
 *
 * Job path (any thread): naq__logger_log() encodes the event. While the
 * server is there and nothing logged earlier still waits in the queue, it
 * publishes the event itself with js_PublishMsgAsync, which only writes to
 * the connection's buffer (publish_now). Otherwise it packs subject, headers
 * and JSON into one record and pushes it into a bounded queue (bqueue.c).
 * If the queue is full, the record is appended to an on-disk spool instead
 * (spool.c, one write()); only with no spool, or a full one, is it dropped,
 * and then it is counted in `dropped`.
 *
 * Publisher thread: pops batches and publishes them with js_PublishMsgAsync
 * (pipelined; the jsCtx bounds the acks in flight). Acks arrive on nats.c's
 * thread in on_ack(): success is counted, failure puts the message on a
 * retry list that is re-sent with exponential backoff, keeping its
 * Nats-Msg-Id, so a message the server did store after all is stored once.
 * An ack that never comes (an election, a server gone) is noticed by the
 * publisher thread from the age of the oldest message awaiting one
 * (expire_overdue), and the unanswered messages join the retry list.
 * While the connection is down nothing is published; the queue fills and
 * overflows to the spool. Spooled records are re-sent (through a second
 * jsCtx so their acks are told apart) once the queue is empty and the
 * server answers. Spool files left by a process that died are adopted by
 * the next logger that starts with the same spool directory.
 *
 * Confirmed events (naq__logger_log_confirmed): the worker acknowledges a
 * job only after the server stored its outcome event. Their queue record
 * starts with the confirmation to call; once published, the message's
 * address maps to it (msgmap.h) until its ack arrives. Every record in the
 * queue carries that prefix (empty for plain events); the spool never
 * does, so a confirmed event that goes to disk is confirmed as not
 * stored (ok = 0) there and then.
 *
 * Late events: an event re-sent (from the retry list or a spool), one that
 * waited in the queue longer than LATE_MS, or one logged with a timestamp
 * older than LATE_MS (a verdict on an attempt that ended a while ago) can
 * be stored after events of its job that happened later. It carries the header
 * Naq-Late, and readers place it by its timestamp (history.c), so a job's
 * history and state stay in the order things happened.
 *
 * Invariant, for events logged through this logger:
 *   logged == settled + (in the queue, in flight or on the retry list)
 *   settled == published_from_memory + spooled + dropped
 * and flush waits for settled to reach the logged count it saw.
 */
#include "events.h"

#include "core/bqueue.h"
#include "core/msgmap.h"
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* Acks the server may owe us at once; the measured ceiling of
 * js_PublishAsync flattens out above a few thousand (ARCHITECTURE.md). */
#define MAX_ACKS_IN_FLIGHT 8192
/* How long an unacknowledged publish waits before it counts as failed, and
 * how often the publisher looks for one. */
#define ACK_TIMEOUT_MS 5000
#define OVERDUE_CHECK_MS 500
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 5000
/* Messages waiting for a retry beyond this go to the spool. */
#define MAX_RETRY_LIST 16384
/* How long the publisher waits for more events after a few woke it; with
 * NAQ_EVENT_LINGER_US=-1 (adaptive, the default) only when it waited less
 * than SPARSE_US for them (events come more often than 500/s). */
#define LINGER_US 200
#define SPARSE_US 2000
/* An event that waited longer than this before its publish is marked late. */
#define LATE_MS 1000
/* Wait at shutdown for outstanding acks before spooling what is left. */
#define STOP_ACK_WAIT_MS 3000
/* Then for ack handlers still running (naq__logger_destroy). */
#define STOP_HANDLER_WAIT_MS 1000

/* Layout of a record in the queue and in the spool: this header, then the
 * five strings (each NUL-terminated), then the JSON payload. */
typedef struct {
    uint16_t subject_len, msg_id_len, type_len, queue_len, worker_len;
    uint32_t payload_len;
} record_header;

typedef struct {
    const char *subject, *msg_id, *type, *queue, *worker;
    const char *payload;
    size_t payload_len;
} record_view;

/* What a record in the memory queue starts with. */
typedef struct {
    naq__confirm_fn fn; /* NULL: a plain event */
    void *ud;
    int64_t logged_ms; /* monotonic time of the log call: a long wait makes it late */
    int late;          /* late already when logged (its timestamp is old) */
} confirm_prefix;

typedef struct retry_node {
    struct retry_node *next;
    natsMsg *msg;
    void *owed; /* its confirm_prefix, or PLAIN (see `awaiting`) */
} retry_node;

/* The value under which a plain event waits in `awaiting`. */
static char plain_event;
#define PLAIN ((void *)&plain_event)

struct naq__logger;

/* Closure of one jsCtx's ack handler: tells memory acks from spool acks. */
typedef struct {
    struct naq__logger *logger;
    int from_spool;
} ack_origin;

struct naq__logger {
    naq_client *client;
    naq__bqueue *queue;
    jsCtx *js;       /* publishes from memory */
    jsCtx *js_spool; /* re-sends from the spool */
    ack_origin mem_origin, spool_origin;
    int batch;
    int64_t direct_max; /* publish_now only below this many acks awaited */
    int64_t flush_ms;
    int64_t linger_us; /* the linger, when it lingers */
    int linger_adapts; /* NAQ_EVENT_LINGER_US=-1: not after a quiet spell */

    /* Spool: opened on first overflow (most processes never need one). */
    pthread_mutex_t spool_lock;
    char spool_dir[NAQ_URL_MAX];
    char spool_path[NAQ_URL_MAX + 64];
    naq__spool *spool;
    int spool_disabled;
    int spool_lock_fd; /* flock on our spool file, so nobody adopts it */

    pthread_mutex_t retry_lock;
    retry_node *retry_head, *retry_tail;
    size_t retry_count;
    int64_t retry_after_ms;          /* monotonic time before which nothing is re-sent */
    atomic_int_least64_t backoff_ms; /* written under retry_lock, reset on any success */

    natsStatistics *stats; /* publisher thread only: the reconnect count */
    /* Every message published from memory until its ack or its failure:
     * a confirmed event -> its confirm_prefix (heap), a plain one -> PLAIN.
     * Its put time is the deadline's start (expire_overdue). */
    naq__msgmap *awaiting;
    int64_t next_overdue_check_ms; /* publisher thread only */

    pthread_t thread;
    atomic_int stopping;

    atomic_uint_least64_t logged, published, retried, spooled, dropped, settled;
    atomic_int_least64_t in_flight;       /* memory messages handed to nats.c */
    atomic_int_least64_t queued;          /* in the memory queue or being published from it */
    atomic_int_least64_t spool_in_flight; /* spool messages handed to nats.c */
};

/* ---- records ---- */

static size_t pack_record(char *buf, size_t cap, const record_view *v)
{
    const char *parts[5] = {v->subject, v->msg_id, v->type, v->queue, v->worker};
    size_t lens[5];
    size_t need = sizeof(record_header) + v->payload_len;
    for (int i = 0; i < 5; i++) {
        lens[i] = strlen(parts[i]);
        need += lens[i] + 1;
    }
    if (buf == NULL || need > cap) /* buf NULL: measuring only */
        return need;
    record_header h = {(uint16_t)lens[0], (uint16_t)lens[1], (uint16_t)lens[2],
                       (uint16_t)lens[3], (uint16_t)lens[4], (uint32_t)v->payload_len};
    memcpy(buf, &h, sizeof h);
    char *p = buf + sizeof h;
    for (int i = 0; i < 5; i++) {
        memcpy(p, parts[i], lens[i] + 1);
        p += lens[i] + 1;
    }
    memcpy(p, v->payload, v->payload_len);
    return need;
}

/* Validates lengths so a corrupt spool record cannot make us read past it. */
static int unpack_record(const void *data, size_t len, record_view *v)
{
    record_header h;
    if (len < sizeof h)
        return -1;
    memcpy(&h, data, sizeof h);
    const char *p = (const char *)data + sizeof h;
    size_t strings =
        (size_t)h.subject_len + h.msg_id_len + h.type_len + h.queue_len + h.worker_len + 5;
    if (sizeof h + strings + h.payload_len != len)
        return -1;
    const char **dst[5] = {&v->subject, &v->msg_id, &v->type, &v->queue, &v->worker};
    uint16_t lens[5] = {h.subject_len, h.msg_id_len, h.type_len, h.queue_len, h.worker_len};
    for (int i = 0; i < 5; i++) {
        if (p[lens[i]] != '\0')
            return -1;
        *dst[i] = p;
        p += lens[i] + 1;
    }
    v->payload = p;
    v->payload_len = h.payload_len;
    return 0;
}

/* Marks m as published late (see the top of this file); a message that
 * cannot take the header is still published, only unmarked. */
static void mark_late(natsMsg *m)
{
    (void)natsMsgHeader_Set(m, NAQ__LATE_HEADER, "1");
}

static natsStatus make_msg(const record_view *v, natsMsg **out)
{
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, v->subject, NULL, v->payload, (int)v->payload_len);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Nats-Msg-Id", v->msg_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Naq-Event-Type", v->type);
    if (ns == NATS_OK && v->queue[0])
        ns = natsMsgHeader_Set(m, "Naq-Queue", v->queue);
    if (ns == NATS_OK && v->worker[0])
        ns = natsMsgHeader_Set(m, "Naq-Worker", v->worker);
    if (ns != NATS_OK) {
        natsMsg_Destroy(m);
        m = NULL;
    }
    *out = m;
    return ns;
}

/* Packs a message back into a record (heap, free()), to spool it. */
static char *record_from_msg(natsMsg *m, size_t *len)
{
    record_view v = {0};
    const char *val = NULL;
    v.subject = natsMsg_GetSubject(m);
    v.msg_id = natsMsgHeader_Get(m, "Nats-Msg-Id", &val) == NATS_OK ? val : "";
    v.type = natsMsgHeader_Get(m, "Naq-Event-Type", &val) == NATS_OK ? val : "";
    v.queue = natsMsgHeader_Get(m, "Naq-Queue", &val) == NATS_OK ? val : "";
    v.worker = natsMsgHeader_Get(m, "Naq-Worker", &val) == NATS_OK ? val : "";
    v.payload = natsMsg_GetData(m);
    v.payload_len = (size_t)natsMsg_GetDataLength(m);
    size_t need = pack_record(NULL, 0, &v);
    char *buf = malloc(need);
    if (buf != NULL)
        *len = pack_record(buf, need, &v);
    return buf;
}

/* ---- spool ---- */

/* Appends a record to our spool, opening it on first use. 0 on success. */
static int spool_append(struct naq__logger *l, const void *rec, size_t len)
{
    int ok = 0;
    pthread_mutex_lock(&l->spool_lock);
    if (l->spool == NULL && !l->spool_disabled) {
        unsigned r = 0;
        /* Without entropy, the logger's address still tells apart two
         * loggers of this process (the pid tells apart processes). */
        if (getentropy(&r, sizeof r) != 0)
            r = (unsigned)(uintptr_t)l;
        snprintf(l->spool_path, sizeof l->spool_path, "%s/%ld-%08x.spool", l->spool_dir,
                 (long)getpid(), r);
        if (naq__spool_open(l->spool_path, 0, &l->spool) == NAQ_OK) {
            l->spool_lock_fd = open(l->spool_path, O_RDONLY | O_CLOEXEC);
            if (l->spool_lock_fd >= 0)
                flock(l->spool_lock_fd, LOCK_EX | LOCK_NB);
        } else {
            naq__log(NAQ_LOG_ERROR,
                     "naq: cannot open event spool %s: %s; events that do not fit in "
                     "memory will be dropped\n",
                     l->spool_path, naq_last_error());
            l->spool_disabled = 1;
        }
    }
    if (l->spool != NULL && naq__spool_append(l->spool, rec, len) == NAQ_OK)
        ok = 1;
    pthread_mutex_unlock(&l->spool_lock);
    return ok;
}

/* Puts a record that cannot stay in memory on disk; counts the outcome. */
static void overflow(struct naq__logger *l, const void *rec, size_t len)
{
    if (spool_append(l, rec, len))
        atomic_fetch_add(&l->spooled, 1);
    else
        atomic_fetch_add(&l->dropped, 1);
    atomic_fetch_add(&l->settled, 1);
}

/* Tells a confirmed message's caller whether it was stored, and frees what
 * `owed` held; nothing for a plain event. */
static void settle_owed(void *owed, int ok)
{
    if (owed == NULL || owed == PLAIN)
        return;
    confirm_prefix *cp = owed;
    cp->fn(cp->ud, ok);
    free(cp);
}

static void overflow_msg(struct naq__logger *l, natsMsg *m, void *owed)
{
    settle_owed(owed, 0);
    size_t len = 0;
    char *rec = record_from_msg(m, &len);
    if (rec != NULL) {
        overflow(l, rec, len);
        free(rec);
    } else {
        atomic_fetch_add(&l->dropped, 1);
        atomic_fetch_add(&l->settled, 1);
    }
    natsMsg_Destroy(m);
}

/* ---- retries ---- */

static void retry_push(struct naq__logger *l, natsMsg *m, void *owed)
{
    retry_node *n = malloc(sizeof *n);
    pthread_mutex_lock(&l->retry_lock);
    int full = n == NULL || l->retry_count >= MAX_RETRY_LIST;
    if (!full) {
        n->msg = m;
        n->owed = owed;
        n->next = NULL;
        if (l->retry_tail)
            l->retry_tail->next = n;
        else
            l->retry_head = n;
        l->retry_tail = n;
        l->retry_count++;
        int64_t b = atomic_load(&l->backoff_ms);
        b = b ? b * 2 : BACKOFF_MIN_MS;
        if (b > BACKOFF_MAX_MS)
            b = BACKOFF_MAX_MS;
        atomic_store(&l->backoff_ms, b);
        l->retry_after_ms = naq__mono_ms() + b;
    }
    pthread_mutex_unlock(&l->retry_lock);
    if (full) {
        free(n);
        overflow_msg(l, m, owed);
    }
}

static retry_node *retry_take_all(struct naq__logger *l, int only_if_due)
{
    pthread_mutex_lock(&l->retry_lock);
    retry_node *all = NULL;
    if (!only_if_due || naq__mono_ms() >= l->retry_after_ms) {
        all = l->retry_head;
        l->retry_head = l->retry_tail = NULL;
        l->retry_count = 0;
    }
    pthread_mutex_unlock(&l->retry_lock);
    return all;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    ack_origin *o = closure;
    struct naq__logger *l = o->logger;
    void *owed = o->from_spool ? NULL : naq__msgmap_take(l->awaiting, msg);
    if (pa != NULL || pae == NULL) {
        settle_owed(owed, 1);
        atomic_fetch_add(&l->published, 1);
        if (!o->from_spool)
            atomic_fetch_add(&l->settled, 1);
        if (atomic_load(&l->backoff_ms) != 0)
            atomic_store(&l->backoff_ms, 0); /* the server answers again */
        natsMsg_Destroy(msg);
    } else if (o->from_spool) {
        /* Still on disk: the spool cursor only moves past acknowledged
         * records (see drain_spool), so a failed re-send is simply retried
         * from the spool later. */
        natsMsg_Destroy(msg);
    } else {
        atomic_fetch_add(&l->retried, 1);
        retry_push(l, msg, owed);
    }
    atomic_fetch_sub(o->from_spool ? &l->spool_in_flight : &l->in_flight, 1);
}

/* ---- publishing ---- */

static int connected(struct naq__logger *l)
{
    return natsConnection_Status(l->client->enc) == NATS_CONN_STATUS_CONNECTED;
}

/* Hands m to nats.c; on refusal keeps it for a retry. Takes ownership of
 * m and owed (its confirm_prefix or PLAIN). No MaxWait: the deadline is
 * ours (expire_overdue), as nats.c's would cost work on every publish. */
static void publish_msg(struct naq__logger *l, natsMsg *m, void *owed)
{
    if (naq__msgmap_put(l->awaiting, m, owed) != NAQ_OK) {
        settle_owed(owed, 0); /* published, but nobody could be told */
        owed = NULL;
    }
    atomic_fetch_add(&l->in_flight, 1);
    natsMsg *sent = m;
    natsStatus ns = js_PublishMsgAsync(l->js, &m, NULL);
    if (ns != NATS_OK) {
        atomic_fetch_sub(&l->in_flight, 1);
        atomic_fetch_add(&l->retried, 1);
        naq__msgmap_take(l->awaiting, sent);
        retry_push(l, m, owed);
    }
}

/* Acks overdue: one lost (an election, a server that went away) shows as
 * the oldest entry of `awaiting` growing old. nats.c cannot give back one
 * message, so every unacknowledged one is taken back and re-sent with the
 * same Nats-Msg-Id: one the server stored is stored once, and nats.c drops
 * the acks of messages it no longer holds. Publisher thread. */
static void expire_overdue(struct naq__logger *l)
{
    int64_t now = naq__mono_ms();
    if (now < l->next_overdue_check_ms)
        return;
    l->next_overdue_check_ms = now + OVERDUE_CHECK_MS;
    int64_t oldest = naq__msgmap_oldest_ms(l->awaiting);
    if (oldest == 0 || now - oldest < ACK_TIMEOUT_MS || atomic_load(&l->in_flight) <= 0)
        return;
    natsMsgList pending = {0};
    if (js_PublishAsyncGetPendingList(&pending, l->js) != NATS_OK)
        return;
    for (int i = 0; i < pending.Count; i++) {
        void *owed = naq__msgmap_take(l->awaiting, pending.Msgs[i]);
        atomic_fetch_sub(&l->in_flight, 1);
        atomic_fetch_add(&l->retried, 1);
        retry_push(l, pending.Msgs[i], owed);
        pending.Msgs[i] = NULL;
    }
    natsMsgList_Destroy(&pending);
}

/* What a published message owes until its ack (see `awaiting`): PLAIN, or
 * a heap copy of its confirmation, which settle_owed frees. NULL when out
 * of memory. */
static void *owed_for(const confirm_prefix *cp)
{
    if (cp->fn == NULL)
        return PLAIN;
    confirm_prefix *heap = malloc(sizeof *heap);
    if (heap != NULL)
        *heap = *cp;
    return heap;
}

/* A record of the memory queue: its confirmation and the record proper. */
static void split_record(naq__bqueue_record *r, confirm_prefix *cp, const char **rec, size_t *len)
{
    memcpy(cp, r->data, sizeof *cp);
    *rec = (const char *)r->data + sizeof *cp;
    *len = r->len - sizeof *cp;
}

/* A record that cannot be published now goes to the spool (or is
 * dropped); a confirmed one is told it was not stored. */
static void overflow_record(struct naq__logger *l, naq__bqueue_record *r)
{
    confirm_prefix cp;
    const char *rec;
    size_t len;
    split_record(r, &cp, &rec, &len);
    overflow(l, rec, len);
    if (cp.fn != NULL)
        cp.fn(cp.ud, 0);
}

/* Publishes a record of the memory queue; now_ms is the monotonic time of
 * its batch, to tell whether it waited long enough to be late. */
static void publish_record(struct naq__logger *l, naq__bqueue_record *r, int64_t now_ms)
{
    confirm_prefix cp;
    const char *rec;
    size_t len;
    record_view v;
    natsMsg *m = NULL;
    split_record(r, &cp, &rec, &len);
    if (unpack_record(rec, len, &v) != 0 || make_msg(&v, &m) != NATS_OK) {
        /* Cannot happen for records we packed, short of memory exhaustion. */
        overflow_record(l, r);
        return;
    }
    if (cp.late || now_ms - cp.logged_ms > LATE_MS)
        mark_late(m);
    void *owed = owed_for(&cp);
    if (owed == NULL) {
        cp.fn(cp.ud, 0); /* published, but nobody can be told */
        owed = PLAIN;
    }
    publish_msg(l, m, owed);
}

static void resend_retries(struct naq__logger *l)
{
    retry_node *n = retry_take_all(l, 1);
    while (n != NULL) {
        retry_node *next = n->next;
        mark_late(n->msg);
        publish_msg(l, n->msg, n->owed);
        free(n);
        n = next;
    }
}

typedef struct {
    struct naq__logger *logger;
    size_t taken; /* records this pass handled: sent, or skipped as corrupt */
    size_t max;
} drain_ctx;

static int send_spooled(const void *data, size_t len, void *ud)
{
    drain_ctx *d = ud;
    struct naq__logger *l = d->logger;
    record_view v;
    natsMsg *m = NULL;
    if (d->taken >= d->max || !connected(l))
        return 1;
    if (unpack_record(data, len, &v) != 0) {
        d->taken++; /* corrupt: consume it, nothing can ever publish it */
        atomic_fetch_add(&l->dropped, 1);
        return 0;
    }
    if (make_msg(&v, &m) != NATS_OK)
        return 1;
    mark_late(m); /* events logged after it went to memory were published first */
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = ACK_TIMEOUT_MS;
    atomic_fetch_add(&l->spool_in_flight, 1);
    if (js_PublishMsgAsync(l->js_spool, &m, &po) != NATS_OK) {
        atomic_fetch_sub(&l->spool_in_flight, 1);
        natsMsg_Destroy(m);
        return 1;
    }
    d->taken++;
    return 0;
}

/* Re-sends up to one batch from a spool. The records are consumed only
 * once all of that batch is acknowledged: re-sending a record twice is
 * harmless (same Nats-Msg-Id), losing one is not. Returns records sent. */
static size_t drain_spool(struct naq__logger *l, naq__spool *sp)
{
    if (naq__spool_pending(sp) == 0 || !connected(l))
        return 0;
    /* First pass without consuming: publish a batch. */
    drain_ctx d = {l, 0, (size_t)l->batch};
    naq__spool_peek(sp, send_spooled, &d);
    if (d.taken == 0)
        return 0;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = ACK_TIMEOUT_MS;
    if (js_PublishAsyncComplete(l->js_spool, &po) != NATS_OK ||
        atomic_load(&l->spool_in_flight) != 0)
        return 0; /* not all acknowledged: the records stay, sent again later */
    /* js_PublishAsyncComplete returns once every ack arrived, and on_ack
     * returns failed spool messages to the spool implicitly (they stay
     * unconsumed); a failure shows as an error above. Consume the batch. */
    naq__spool_consume(sp, d.taken);
    return d.taken;
}

/* Adopts spool files of processes that died: another logger holds an
 * flock on its live spool, so a file we can lock is an orphan. */
static void drain_orphans(struct naq__logger *l)
{
    DIR *dir = opendir(l->spool_dir);
    if (dir == NULL)
        return;
    struct dirent *de;
    while (!atomic_load(&l->stopping) && (de = readdir(dir)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 7 || strcmp(de->d_name + n - 6, ".spool") != 0)
            continue;
        char path[NAQ_URL_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", l->spool_dir, de->d_name);
        if (strcmp(path, l->spool_path) == 0)
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            continue;
        }
        naq__spool *sp = NULL;
        if (naq__spool_open(path, 0, &sp) == NAQ_OK) {
            while (!atomic_load(&l->stopping) && drain_spool(l, sp) > 0)
                ;
            int empty = naq__spool_pending(sp) == 0;
            naq__spool_close(sp);
            if (empty)
                naq__spool_remove(path);
        }
        close(fd);
    }
    closedir(dir);
}

static void drain_own_spool(struct naq__logger *l)
{
    pthread_mutex_lock(&l->spool_lock);
    naq__spool *sp = l->spool;
    pthread_mutex_unlock(&l->spool_lock);
    if (sp != NULL)
        drain_spool(l, sp);
}

/* Shutdown: what the server has not acknowledged goes to disk. */
static void spool_leftovers(struct naq__logger *l)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = STOP_ACK_WAIT_MS;
    if (connected(l))
        js_PublishAsyncComplete(l->js, &po);
    natsMsgList pending = {0};
    /* nats.c 3.4.1 crashes in GetPendingList when nothing was ever
     * published on the context, so ask only when acks are outstanding. */
    if (atomic_load(&l->in_flight) > 0 &&
        js_PublishAsyncGetPendingList(&pending, l->js) == NATS_OK) {
        for (int i = 0; i < pending.Count; i++) {
            overflow_msg(l, pending.Msgs[i], naq__msgmap_take(l->awaiting, pending.Msgs[i]));
            pending.Msgs[i] = NULL;
            atomic_fetch_sub(&l->in_flight, 1);
        }
        natsMsgList_Destroy(&pending);
    }
    for (retry_node *n = retry_take_all(l, 0), *next; n != NULL; n = next) {
        next = n->next;
        overflow_msg(l, n->msg, n->owed);
        free(n);
    }
}

/* How often the connection was re-established (nats.c's counter). Read on
 * every publisher loop, into a statistics object made once. */
static uint64_t reconnects(struct naq__logger *l)
{
    uint64_t n = 0;
    if (l->stats != NULL && natsConnection_GetStats(l->client->enc, l->stats) == NATS_OK)
        natsStatistics_GetCounts(l->stats, NULL, NULL, NULL, NULL, &n);
    return n;
}

/* Connection changes are system events of the process: losing the server
 * is logged as system_error (it reaches the stream once the server is
 * back), regaining it as system_recovery. The publisher thread notices
 * both, so no nats.c callback can outlive the client. */
static void log_connection_change(struct naq__logger *l, int up)
{
    naq_event e;
    naq_event_init(&e, up ? NAQ_EVENT_SYSTEM_RECOVERY : NAQ_EVENT_SYSTEM_ERROR);
    char details[64];
    snprintf(details, sizeof details, "{\"pid\":%ld}", (long)getpid());
    e.message = up ? "reconnected to NATS" : "lost the connection to NATS; reconnecting";
    e.details_json = details;
    naq__logger_log(l, &e); /* copies: the strings above are borrowed */
}

static void *publisher_main(void *arg)
{
    struct naq__logger *l = arg;
    naq__bqueue_record **batch = calloc((size_t)l->batch, sizeof *batch);
    int64_t next_orphan_scan = 0;
    int was_up = 1;
    uint64_t last_reconnects = reconnects(l);
    for (;;) {
        int up = connected(l);
        int stopping = atomic_load(&l->stopping);
        uint64_t now_reconnects = reconnects(l);
        if (!stopping) {
            if (!up && was_up)
                log_connection_change(l, 0);
            /* An outage shorter than one loop is seen only in the
             * reconnect count: record both of its ends then. */
            if (up && (!was_up || now_reconnects != last_reconnects)) {
                if (was_up)
                    log_connection_change(l, 0);
                log_connection_change(l, 1);
            }
        }
        was_up = up;
        last_reconnects = now_reconnects;
        if (up) {
            expire_overdue(l);
            resend_retries(l);
        }
        /* While the server is away, leave records in the queue (they
         * overflow to the spool when it fills) rather than piling them
         * into nats.c's reconnect buffer. */
        if (!up && !stopping) {
            naq__sleep_ms(50);
            continue;
        }
        size_t n = 0;
        int64_t waited_us = naq__mono_us();
        naq_status s = naq__bqueue_pop_batch(l->queue, batch, (size_t)l->batch, l->flush_ms, &n);
        waited_us = naq__mono_us() - waited_us;
        if (s == NAQ_OK && n > 0 && n < (size_t)l->batch / 2 && !stopping &&
            !(l->linger_adapts && waited_us > SPARSE_US)) {
            /* Woken by a trickle (a worker logs a job's events a few
             * microseconds apart): linger a moment and take the rest of
             * them too. One wake-up and one write per job instead of one
             * per event; measured, the worker's CPU per job fell by a
             * quarter. Adaptive (the default): not after a quiet spell,
             * where an event comes alone and lingering only delays it. */
            naq__sleep_us(l->linger_us);
            size_t more = 0;
            s = naq__bqueue_pop_batch(l->queue, batch + n, (size_t)l->batch - n, 0, &more);
            n += more;
        }
        int64_t now_ms = n > 0 ? naq__mono_ms() : 0;
        for (size_t i = 0; i < n; i++) {
            if (up)
                publish_record(l, batch[i], now_ms);
            else
                overflow_record(l, batch[i]);
            naq__bqueue_record_free(batch[i]);
            atomic_fetch_sub(&l->queued, 1);
        }
        if (s == NAQ_ERR_CLOSED)
            break;
        if (up && n == 0) {
            drain_own_spool(l);
            if (naq__mono_ms() >= next_orphan_scan) {
                drain_orphans(l);
                next_orphan_scan = naq__mono_ms() + 10000;
            }
        }
    }
    spool_leftovers(l);
    free(batch);
    return NULL;
}

/* ---- public side ---- */

/* The caller's thread publishes the event itself when that keeps every
 * promise of the queue: the server is there, nothing logged before it waits
 * in the queue (so events stay in the order they were logged), and nats.c
 * has room for its ack (so js_PublishMsgAsync does not stall) within the
 * memory buffer's size. An asynchronous publish only writes to the
 * connection's buffer; waking the publisher thread for it cost more,
 * measured (docs/benchmarks.md, "One thread per job's messages"). 1 when
 * published (or handed to the retry list), 0 when the event must go
 * through the queue. */
static int publish_now(struct naq__logger *l, const record_view *v, const confirm_prefix *cp)
{
    if (atomic_load(&l->queued) != 0 || atomic_load(&l->stopping) ||
        atomic_load(&l->in_flight) >= l->direct_max || !connected(l))
        return 0;
    natsMsg *m = NULL;
    if (make_msg(v, &m) != NATS_OK)
        return 0;
    void *owed = owed_for(cp);
    if (owed == NULL) {
        natsMsg_Destroy(m);
        return 0;
    }
    if (cp->late)
        mark_late(m);
    publish_msg(l, m, owed);
    return 1;
}

static naq_status create_js(naq__logger *l, ack_origin *origin, jsCtx **out)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = MAX_ACKS_IN_FLIGHT;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = origin;
    natsStatus ns = natsConnection_JetStream(out, l->client->enc, &jo);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0,
                              "cannot create the event logger's JetStream context");
    return NAQ_OK;
}

naq_status naq__logger_create(naq_client *c, naq__logger **out)
{
    *out = NULL;
    naq__logger *l = calloc(1, sizeof *l);
    if (l == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating the event logger");
    const naq_config *cfg = &c->cfg;
    l->client = c;
    l->batch = cfg->logger_batch > 0 ? cfg->logger_batch : 512;
    /* The memory buffer bounds the events that wait for the server either
     * way: in the queue, or in nats.c awaiting their ack. */
    l->direct_max = MAX_ACKS_IN_FLIGHT / 2;
    if (cfg->logger_buffer_events > 0 && cfg->logger_buffer_events < l->direct_max)
        l->direct_max = cfg->logger_buffer_events;
    l->flush_ms = cfg->logger_flush_ms > 0 ? cfg->logger_flush_ms : 100;
    l->linger_adapts = cfg->logger_linger_us < 0;
    l->linger_us = l->linger_adapts ? LINGER_US : cfg->logger_linger_us;
    l->spool_lock_fd = -1;
    snprintf(l->spool_dir, sizeof l->spool_dir, "%s", cfg->spool_dir);
    l->spool_disabled = cfg->spool_dir[0] == '\0' || strcmp(cfg->spool_dir, "none") == 0;
    l->mem_origin = (ack_origin){l, 0};
    l->spool_origin = (ack_origin){l, 1};
    pthread_mutex_init(&l->spool_lock, NULL);
    pthread_mutex_init(&l->retry_lock, NULL);
    naq_status s = naq__bqueue_create((size_t)cfg->logger_buffer_events,
                                      (size_t)cfg->logger_buffer_bytes, &l->queue);
    if (s == NAQ_OK)
        s = naq__msgmap_create(&l->awaiting);
    if (s == NAQ_OK && natsStatistics_Create(&l->stats) != NATS_OK)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating the event logger");
    if (s == NAQ_OK)
        s = create_js(l, &l->mem_origin, &l->js);
    if (s == NAQ_OK)
        s = create_js(l, &l->spool_origin, &l->js_spool);
    if (s == NAQ_OK && pthread_create(&l->thread, NULL, publisher_main, l) != 0)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "cannot start the event logger thread");
    if (s != NAQ_OK) {
        jsCtx_Destroy(l->js_spool);
        jsCtx_Destroy(l->js);
        naq__bqueue_destroy(l->queue);
        natsStatistics_Destroy(l->stats);
        naq__msgmap_destroy(l->awaiting);
        pthread_mutex_destroy(&l->spool_lock);
        pthread_mutex_destroy(&l->retry_lock);
        free(l);
        return s;
    }
    *out = l;
    return NAQ_OK;
}

void naq__logger_destroy(naq__logger *l)
{
    if (l == NULL)
        return;
    atomic_store(&l->stopping, 1);
    naq__bqueue_close(l->queue);
    pthread_join(l->thread, NULL);
    /* nats.c takes a message out of its pending map before it calls
     * on_ack, so an ack handler may still be running; it lets go of l
     * with its last statement, the in-flight decrement. */
    for (int i = 0; i < STOP_HANDLER_WAIT_MS &&
                    (atomic_load(&l->in_flight) > 0 || atomic_load(&l->spool_in_flight) > 0);
         i++)
        naq__sleep_ms(1);
    jsCtx_Destroy(l->js_spool);
    jsCtx_Destroy(l->js);
    naq__bqueue_destroy(l->queue);
    natsStatistics_Destroy(l->stats);
    naq__msgmap_destroy(l->awaiting); /* empty: spool_leftovers settled every message */
    naq__spool_close(l->spool);
    if (l->spool != NULL && naq__spool_pending_path(l->spool_path) == 0)
        naq__spool_remove(l->spool_path);
    if (l->spool_lock_fd >= 0)
        close(l->spool_lock_fd);
    pthread_mutex_destroy(&l->spool_lock);
    pthread_mutex_destroy(&l->retry_lock);
    free(l);
}

naq_status naq__logger_log_confirmed(naq__logger *l, const naq_event *e, naq__confirm_fn confirm,
                                     void *ud)
{
    char subject[NAQ_URL_MAX];
    naq_status s = naq_event_subject(l->client->cfg.subject_prefix, e, subject, sizeof subject);
    if (s != NAQ_OK) {
        if (confirm != NULL)
            confirm(ud, 0);
        return s;
    }
    naq_event copy = *e; /* shallow: only event_id may change, heap fields are borrowed */
    if (copy.event_id[0] == '\0')
        naq_id_new(copy.event_id);
    double now = naq__now();
    int late = copy.timestamp > 0 && now - copy.timestamp > LATE_MS / 1000.0;
    if (copy.timestamp <= 0)
        copy.timestamp = now;
    char json_buf[1024];
    char *json = NULL;
    size_t json_len = 0;
    if ((s = naq__event_encode_buf(&copy, json_buf, sizeof json_buf, &json, &json_len)) != NAQ_OK) {
        if (confirm != NULL)
            confirm(ud, 0);
        return s;
    }
    record_view v = {subject,         copy.event_id,  naq_event_type_name(copy.type),
                     copy.queue_name, copy.worker_id, json,
                     json_len};
    confirm_prefix cp = {confirm, ud, naq__mono_ms(), late};
    atomic_fetch_add(&l->logged, 1);
    if (publish_now(l, &v, &cp)) {
        if (json != json_buf)
            free(json);
        return NAQ_OK;
    }
    char stack[2048];
    size_t need = sizeof cp + pack_record(NULL, 0, &v);
    char *rec = need <= sizeof stack ? stack : malloc(need);
    if (rec != NULL) {
        memcpy(rec, &cp, sizeof cp);
        pack_record(rec + sizeof cp, need - sizeof cp, &v);
    }
    if (json != json_buf)
        free(json);
    if (rec == NULL) {
        atomic_fetch_add(&l->dropped, 1);
        atomic_fetch_add(&l->settled, 1);
        if (confirm != NULL)
            confirm(ud, 0);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory logging an event");
    }
    atomic_fetch_add(&l->queued, 1);
    if (naq__bqueue_push(l->queue, rec, need) != NAQ_OK) {
        /* full (or closing): to disk, never wait */
        atomic_fetch_sub(&l->queued, 1);
        overflow(l, rec + sizeof cp, need - sizeof cp);
        if (confirm != NULL)
            confirm(ud, 0);
    }
    if (rec != stack)
        free(rec);
    return NAQ_OK;
}

naq_status naq__logger_log(naq__logger *l, const naq_event *e)
{
    return naq__logger_log_confirmed(l, e, NULL, NULL);
}

void naq__logger_stats(naq__logger *l, naq_logger_stats *out)
{
    out->logged = atomic_load(&l->logged);
    out->published = atomic_load(&l->published);
    out->retried = atomic_load(&l->retried);
    out->spooled = atomic_load(&l->spooled);
    out->dropped = atomic_load(&l->dropped);
    uint64_t settled = atomic_load(&l->settled);
    out->buffered = out->logged > settled ? out->logged - settled : 0;
    pthread_mutex_lock(&l->spool_lock);
    out->spool_pending = l->spool ? naq__spool_pending(l->spool) : 0;
    pthread_mutex_unlock(&l->spool_lock);
}

naq_status naq__logger_flush(naq__logger *l, int64_t timeout_ms)
{
    uint64_t target = atomic_load(&l->logged);
    int64_t deadline = naq__mono_ms() + timeout_ms;
    while (atomic_load(&l->settled) < target) {
        if (naq__mono_ms() >= deadline)
            return naq__fail(NAQ_ERR_TIMEOUT, "%llu events still wait for the server after %lld ms",
                             (unsigned long long)(target - atomic_load(&l->settled)),
                             (long long)timeout_ms);
        naq__sleep_ms(2);
    }
    return NAQ_OK;
}
