/*
 * roles.c - the four least-privilege roles as NATS subject permissions.
 *
 * The subjects come from what the code sends (docs/security.md has the
 * table and the reasons):
 *
 *   JetStream API     $JS.API.<...>: info, direct get, ordered (ephemeral)
 *                     consumers for reading; stream and consumer
 *                     management for admins; the worker's durable pull
 *                     consumers "naq_<queue>_p<0-4>" on the job stream and
 *                     their MSG.NEXT; $JS.ACK.<stream>.<consumer>.> acks;
 *                     $JS.FC.> flow-control replies of ordered consumers
 *   streams           <prefix>.queue.<queue>.<priority>   jobs
 *                     <prefix>.jobs|workers|schedules.events.<id>,
 *                     <prefix>.system.events                 events
 *                     <prefix>.dlq.<queue>                   dead letters
 *                     <prefix>.outcome.<job>                 results, finished markers
 *                     <prefix>.due.<bucket>                  delayed jobs
 *                     <prefix>.eventdlq.>                    dead events
 *   KV buckets        $KV.<bucket>.> (stream KV_<bucket>): naq_unique,
 *                     naq_deps, naq_cancel, naq_workers[_<prefix>],
 *                     naq_stats[_<stream>], naq_schedules, naq_scheduler_lock
 *   replies           _INBOX.> (every request's answer)
 *
 * Admin is everything (">"): it creates the streams, so the others never
 * need to; the others are granted what their commands send, no more.
 */
#include "jobs/jobs.h"

#include "naq/auth.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[NAQ_ROLE_COUNT] = {"producer", "worker", "reader", "admin"};

const char *naq_role_name(naq_role r)
{
    return (int)r >= 0 && r < NAQ_ROLE_COUNT ? role_names[r] : "unknown";
}

naq_status naq_role_parse(const char *name, naq_role *out)
{
    for (int i = 0; i < NAQ_ROLE_COUNT; i++)
        if (name != NULL && strcmp(name, role_names[i]) == 0) {
            *out = (naq_role)i;
            return NAQ_OK;
        }
    return naq__fail(NAQ_ERR_INVALID_ARG,
                     "unknown role '%s': use producer, worker, reader or admin", name ? name : "");
}

/* ---- subject lists ---- */

#define LIST_MAX 128
typedef struct {
    char *pub[LIST_MAX], *sub[LIST_MAX];
    int npub, nsub;
    int oom;
} perms;

static void add(perms *p, int sub, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(perms *p, int sub, const char *fmt, ...)
{
    int *n = sub ? &p->nsub : &p->npub;
    if (*n >= LIST_MAX) {
        p->oom = 1;
        return;
    }
    char buf[NAQ_URL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = strdup(buf);
    if (s == NULL)
        p->oom = 1;
    else
        (sub ? p->sub : p->pub)[(*n)++] = s;
}

static void perms_free(perms *p)
{
    for (int i = 0; i < p->npub; i++)
        free(p->pub[i]);
    for (int i = 0; i < p->nsub; i++)
        free(p->sub[i]);
}

typedef struct {
    char workers[NAQ_NAME_MAX * 2], stats[NAQ_NAME_MAX * 2];
    char outcomes[NAQ_NAME_MAX * 2], delayed[NAQ_NAME_MAX * 2]; /* streams */
} bucket_names;

static void names_of(const naq_config *cfg, bucket_names *b)
{
    naq__prefixed_name(cfg, NAQ_WORKERS_BUCKET, b->workers, sizeof b->workers);
    naq__suffixed_name(b->stats, sizeof b->stats, NAQ_STATS_BUCKET, cfg->event_stream,
                       "NAQ_JOB_EVENTS");
    naq__prefixed_name(cfg, NAQ__OUTCOME_STREAM, b->outcomes, sizeof b->outcomes);
    naq__prefixed_name(cfg, NAQ__DELAYED_STREAM, b->delayed, sizeof b->delayed);
}

/* What every role may do: read. */
static void base(perms *p, const naq_config *cfg, const bucket_names *b)
{
    add(p, 1, "_INBOX.>");
    add(p, 0, "$JS.API.INFO");
    add(p, 0, "$JS.API.STREAM.INFO.*");
    add(p, 0, "$JS.API.STREAM.NAMES");
    add(p, 0, "$JS.API.STREAM.LIST");
    add(p, 0, "$JS.API.STREAM.MSG.GET.*");
    add(p, 0, "$JS.API.DIRECT.GET.*");
    add(p, 0, "$JS.API.DIRECT.GET.*.>");
    add(p, 0, "$JS.API.CONSUMER.INFO.*.*");
    add(p, 0, "$JS.API.CONSUMER.NAMES.*");
    add(p, 0, "$JS.API.CONSUMER.LIST.*");
    add(p, 0, "$JS.FC.>");
    /* Ordered consumers (history, live streams, KV watches) on every
     * stream but the job queue: a consumer there would take jobs. Their
     * clean-up deletes them again. */
    const char *streams[] = {cfg->event_stream, cfg->dlq_stream, b->outcomes, b->delayed,
                             NAQ_EVENT_DLQ_STREAM};
    const char *buckets[] = {"naq_unique",    "naq_deps", "naq_cancel",
                             b->workers,      b->stats,   NAQ__SCHEDULES_BUCKET,
                             NAQ__LOCK_BUCKET};
    for (size_t i = 0; i < sizeof streams / sizeof *streams; i++) {
        add(p, 0, "$JS.API.CONSUMER.CREATE.%s", streams[i]);
        add(p, 0, "$JS.API.CONSUMER.CREATE.%s.>", streams[i]);
        add(p, 0, "$JS.API.CONSUMER.DELETE.%s.*", streams[i]);
    }
    for (size_t i = 0; i < sizeof buckets / sizeof *buckets; i++) {
        add(p, 0, "$JS.API.CONSUMER.CREATE.KV_%s", buckets[i]);
        add(p, 0, "$JS.API.CONSUMER.CREATE.KV_%s.>", buckets[i]);
        add(p, 0, "$JS.API.CONSUMER.DELETE.KV_%s.*", buckets[i]);
    }
}

/* Logging events: what the event logger publishes. */
static void events(perms *p, const naq_config *cfg)
{
    add(p, 0, "%s.jobs.events.*", cfg->subject_prefix);
    add(p, 0, "%s.workers.events.*", cfg->subject_prefix);
    add(p, 0, "%s.system.events", cfg->subject_prefix);
}

static void producer(perms *p, const naq_config *cfg)
{
    const char *px = cfg->subject_prefix;
    events(p, cfg);
    add(p, 0, "%s.queue.>", px);   /* enqueue */
    add(p, 0, "%s.due.>", px);     /* delayed jobs */
    add(p, 0, "$KV.naq_unique.>"); /* unique keys */
    add(p, 0, "$KV.naq_deps.>");   /* jobs waiting for dependencies */
    /* A job with dependencies registers as a waiter on each parent's
     * outcome subject (outcome.c); the subject is shared with the outcome
     * record, so this is also where a producer could forge one. */
    add(p, 0, "%s.outcome.>", px);
}

static void worker(perms *p, const naq_config *cfg, const bucket_names *b,
                   const char *const *queues)
{
    const char *px = cfg->subject_prefix, *js = cfg->job_stream;
    events(p, cfg);
    int all = queues == NULL || queues[0] == NULL;
    if (all) {
        add(p, 0, "$JS.API.CONSUMER.DURABLE.CREATE.%s.*", js);
        add(p, 0, "$JS.API.CONSUMER.CREATE.%s.*.>", js);
        add(p, 0, "$JS.API.CONSUMER.MSG.NEXT.%s.*", js);
        add(p, 0, "$JS.ACK.%s.>", js);
        add(p, 0, "%s.dlq.>", px);
        add(p, 1, "%s.queue.>", px); /* doorbells of empty levels */
    }
    for (int q = 0; !all && queues[q] != NULL; q++) {
        for (int level = NAQ_PRIORITY_LOWEST; level <= NAQ_PRIORITY_CRITICAL; level++) {
            add(p, 0, "$JS.API.CONSUMER.DURABLE.CREATE.%s.naq_%s_p%d", js, queues[q], level);
            add(p, 0, "$JS.API.CONSUMER.CREATE.%s.naq_%s_p%d.>", js, queues[q], level);
            add(p, 0, "$JS.API.CONSUMER.MSG.NEXT.%s.naq_%s_p%d", js, queues[q], level);
            add(p, 0, "$JS.ACK.%s.naq_%s_p%d.>", js, queues[q], level);
        }
        add(p, 0, "%s.dlq.%s", px, queues[q]);
        add(p, 1, "%s.queue.%s.*", px, queues[q]); /* doorbells of empty levels */
    }
    /* Retries and released dependents are queued again, possibly in
     * another queue: publishing is not taking. */
    add(p, 0, "%s.queue.>", px);
    add(p, 0, "%s.due.>", px);
    add(p, 0, "%s.outcome.>", px);                        /* results, finished markers */
    add(p, 0, "$KV.%s.>", b->workers);                    /* the registry */
    add(p, 0, "$JS.API.STREAM.CREATE.KV_%s", b->workers); /* the first worker makes it */
    add(p, 0, "$KV.naq_unique.>");                        /* a finished unique job frees its key */
    add(p, 0, "$KV.naq_deps.>");                          /* releasing dependents */
    add(p, 0, "$KV.naq_cancel.>");                        /* a cancellation is done */
    /* A KV key is deleted for good with a purge of its subject. */
    add(p, 0, "$JS.API.STREAM.PURGE.KV_naq_unique");
    add(p, 0, "$JS.API.STREAM.PURGE.KV_naq_deps");
    add(p, 0, "$JS.API.STREAM.PURGE.KV_naq_cancel");
}

static naq_status build(const naq_config *cfg, naq_role r, const char *const *queues, perms *p)
{
    memset(p, 0, sizeof *p);
    bucket_names b;
    names_of(cfg, &b);
    if (r == NAQ_ROLE_ADMIN) {
        add(p, 0, ">");
        add(p, 1, ">");
    } else {
        base(p, cfg, &b);
        if (r == NAQ_ROLE_PRODUCER)
            producer(p, cfg);
        else if (r == NAQ_ROLE_WORKER)
            worker(p, cfg, &b, queues);
    }
    if (p->oom) {
        perms_free(p);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory building the %s role", naq_role_name(r));
    }
    return NAQ_OK;
}

/* ---- everything exists before a role without management rights comes ---- */

naq_status naq__provision_buckets(naq_client *c)
{
    /* The worker registry is left to the first worker, whose heartbeat
     * interval sets its TTL (worker/registry.c); the worker role may
     * create that one bucket. */
    kvStore *kv = NULL;
    naq_status s = naq__schedules_kv(c, c->js, &kv);
    kvStore_Destroy(kv);
    kv = NULL;
    if (s == NAQ_OK)
        s = naq__stats_kv(c, 1, &kv);
    kvStore_Destroy(kv);
    return s;
}

/* ---- output ---- */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || t->oom)
        return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->cap ? t->cap * 2 : 1024) + (size_t)n;
        char *s = realloc(t->s, cap);
        if (s == NULL) {
            t->oom = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static void put_list(text *t, int indent, const char *what, char *const *v, int n)
{
    put(t, "%*s  %s {\n%*s    allow: [\n", indent, "", what, indent, "");
    for (int i = 0; i < n; i++)
        put(t, "%*s      \"%s\"%s\n", indent, "", v[i], i + 1 < n ? "," : "");
    put(t, "%*s    ]\n%*s  }\n", indent, "", indent, "");
}

naq_status naq_role_permissions(const naq_config *cfg, naq_role r, const char *const *queues,
                                int indent, char **out)
{
    *out = NULL;
    if ((int)r < 0 || r >= NAQ_ROLE_COUNT)
        return naq__fail(NAQ_ERR_INVALID_ARG, "unknown role %d", (int)r);
    for (int q = 0; queues != NULL && queues[q] != NULL; q++) {
        naq_status s = naq_id_validate("queue", queues[q]);
        if (s != NAQ_OK)
            return s;
    }
    perms p;
    naq_status s = build(cfg, r, queues, &p);
    if (s != NAQ_OK)
        return s;
    text t = {0};
    put(&t, "%*spermissions {\n", indent, "");
    put_list(&t, indent, "publish", p.pub, p.npub);
    put_list(&t, indent, "subscribe", p.sub, p.nsub);
    put(&t, "%*s}\n", indent, "");
    perms_free(&p);
    if (t.oom) {
        free(t.s);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory printing permissions");
    }
    *out = t.s;
    return NAQ_OK;
}

/* ---- which role has a subject ---- */

/* NATS subject matching: '*' one token, '>' the rest. */
static int subject_matches(const char *pattern, const char *subject)
{
    for (;;) {
        size_t pl = strcspn(pattern, "."), sl = strcspn(subject, ".");
        if (pl == 1 && pattern[0] == '>')
            return sl > 0;
        if (!(pl == 1 && pattern[0] == '*') && (pl != sl || strncmp(pattern, subject, pl) != 0))
            return 0;
        if (pattern[pl] == '\0' || subject[sl] == '\0')
            return pattern[pl] == '\0' && subject[sl] == '\0';
        pattern += pl + 1;
        subject += sl + 1;
    }
}

const char *naq__role_for_subject(const char *prefix, const char *subject)
{
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.subject_prefix, sizeof cfg.subject_prefix, "%s", prefix);
    /* From the least privileged up. */
    static const naq_role order[] = {NAQ_ROLE_READER, NAQ_ROLE_PRODUCER, NAQ_ROLE_WORKER,
                                     NAQ_ROLE_ADMIN};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        perms p;
        if (build(&cfg, order[i], NULL, &p) != NAQ_OK)
            return NULL;
        int found = 0;
        for (int k = 0; k < p.npub && !found; k++)
            found = subject_matches(p.pub[k], subject);
        for (int k = 0; k < p.nsub && !found; k++)
            found = subject_matches(p.sub[k], subject);
        perms_free(&p);
        if (found)
            return role_names[order[i]];
    }
    return NULL;
}
