/*
 * batch.c - naq_enqueue_batch: many jobs validated whole first, then sent
 * through naq_enqueue_async (enqueue.c), with an exact account of which
 * were stored.
 *
 * The answers arrive on nats.c's thread and are written into a tally the
 * call and the callbacks share (refcounted): should the server not answer
 * every job in time, the call returns with those marked as timeouts, and
 * a late answer lands in the tally, never in the caller's arrays.
 *
 * Jobs with a unique key or dependencies need reads of their own before
 * (or instead of) their publish; they go one at a time through
 * naq_enqueue_ex's path after the others.
 */
#include "jobs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long to wait for the last answer. */
#define COMPLETE_WAIT_MS 10000
/* Failures named in the message of a partly failed batch. */
#define NAMED_FAILURES 3

typedef struct {
    const char *id;
    size_t index;
} id_index;

/* The server's answers, shared with the callbacks. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;        /* the call's and one per job sent */
    size_t answered; /* under lock */
    naq_status *statuses;
    char (*errors)[160]; /* the server's text per failed job */
} tally;

typedef struct {
    tally *t;
    size_t index;
} tally_slot;

static void tally_release(tally *t)
{
    pthread_mutex_lock(&t->lock);
    int last = --t->refs == 0;
    pthread_mutex_unlock(&t->lock);
    if (last) {
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->cond);
        free(t->statuses);
        free(t->errors);
        free(t);
    }
}

static void on_answer(const char *job_id, naq_status status, const char *error, void *user)
{
    (void)job_id;
    tally_slot *slot = user;
    tally *t = slot->t;
    pthread_mutex_lock(&t->lock);
    t->statuses[slot->index] = status;
    snprintf(t->errors[slot->index], sizeof t->errors[slot->index], "%s", error);
    t->answered++;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    free(slot);
    tally_release(t);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const id_index *)a)->id, ((const id_index *)b)->id);
}

/* Validates every job and builds it: 0 when all are fine. */
static size_t prepare(naq_client *c, const naq_job_opts *jobs, size_t n, naq_job *built,
                      char **json, size_t *len, naq_status *statuses, char *first, size_t cap)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        naq_status s = naq_job_opts_validate(&jobs[i]);
        if (s == NAQ_OK && (s = naq__job_from_opts(c->crypt, &jobs[i], &built[i])) == NAQ_OK &&
            (s = naq_job_encode(&built[i], &json[i], &len[i])) == NAQ_OK)
            s = naq__check_payload(c, built[i].id, len[i]);
        if (s == NAQ_ERR_CODEC)
            s = NAQ_ERR_INVALID_ARG;
        statuses[i] = s;
        if (s != NAQ_OK && bad++ == 0)
            snprintf(first, cap, "job %zu of the batch: %s", i + 1, naq_last_error());
    }
    return bad;
}

/* Sorted id index; a job id given twice is a validation failure. */
static size_t index_ids(const naq_job *built, size_t n, id_index *by_id, naq_status *statuses,
                        char *first, size_t cap, size_t bad)
{
    for (size_t i = 0; i < n; i++)
        by_id[i] = (id_index){built[i].id, i};
    qsort(by_id, n, sizeof *by_id, cmp_id);
    for (size_t k = 1; k < n; k++) {
        if (strcmp(by_id[k].id, by_id[k - 1].id) != 0)
            continue;
        size_t i = by_id[k].index > by_id[k - 1].index ? by_id[k].index : by_id[k - 1].index;
        size_t other = by_id[k].index ^ by_id[k - 1].index ^ i;
        statuses[i] = NAQ_ERR_INVALID_ARG;
        if (bad++ == 0)
            snprintf(first, cap,
                     "job %zu of the batch has the id %s of job %zu; a batch "
                     "enqueues each job id once",
                     i + 1, by_id[k].id, other + 1);
    }
    return bad;
}

naq_status naq_enqueue_batch(naq_client *c, const naq_job_opts *jobs, size_t n,
                             char (*ids)[NAQ_ID_SIZE], naq_status *statuses, size_t *enqueued)
{
    if (enqueued != NULL)
        *enqueued = 0;
    if (c == NULL || (n > 0 && (jobs == NULL || ids == NULL || statuses == NULL)))
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_enqueue_batch needs a client, the jobs, and "
                                              "arrays for their ids and statuses");
    if (n == 0)
        return NAQ_OK;
    naq_status s = NAQ_OK;
    char first[1024] = "";
    naq_job *built = calloc(n, sizeof *built);
    char **json = calloc(n, sizeof *json);
    size_t *len = calloc(n, sizeof *len);
    id_index *by_id = calloc(n, sizeof *by_id);
    char(*errors)[160] = calloc(n, sizeof *errors);
    tally *t = NULL;
    if (built == NULL || json == NULL || len == NULL || by_id == NULL || errors == NULL) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a batch of %zu jobs", n);
        for (size_t i = 0; i < n; i++)
            statuses[i] = NAQ_ERR_NO_MEMORY;
        goto out;
    }

    size_t bad = prepare(c, jobs, n, built, json, len, statuses, first, sizeof first);
    bad = index_ids(built, n, by_id, statuses, first, sizeof first, bad);
    for (size_t i = 0; i < n; i++)
        snprintf(ids[i], NAQ_ID_SIZE, "%s", built[i].id);
    if (bad > 0) {
        for (size_t i = 0; i < n; i++)
            if (statuses[i] == NAQ_OK)
                statuses[i] = NAQ_ERR_CLOSED; /* not attempted */
        s = naq__fail(NAQ_ERR_INVALID_ARG, "%s (%zu invalid job%s; nothing was enqueued)", first,
                      bad, bad == 1 ? "" : "s");
        goto out;
    }

    t = calloc(1, sizeof *t);
    if (t == NULL || (t->statuses = calloc(n, sizeof *t->statuses)) == NULL ||
        (t->errors = calloc(n, sizeof *t->errors)) == NULL) {
        if (t != NULL)
            free(t->statuses);
        free(t);
        t = NULL;
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory for a batch of %zu jobs", n);
        for (size_t i = 0; i < n; i++)
            statuses[i] = NAQ_ERR_NO_MEMORY;
        goto out;
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->refs = 1;
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (built[i].unique_key != NULL || built[i].depends_on != NULL)
            continue;
        /* Until its answer says otherwise. */
        t->statuses[i] = NAQ_ERR_TIMEOUT;
        snprintf(t->errors[i], sizeof t->errors[i], "no acknowledgement in time");
        tally_slot *slot = malloc(sizeof *slot);
        naq_status ss = NAQ_ERR_NO_MEMORY;
        if (slot != NULL) {
            *slot = (tally_slot){t, i};
            pthread_mutex_lock(&t->lock);
            t->refs++;
            pthread_mutex_unlock(&t->lock);
            /* Takes built[i]; "enqueued" is logged as the server stores it. */
            ss = naq__enqueue_async_built(c, &built[i], json[i], len[i], on_answer, slot);
            if (ss != NAQ_OK) {
                free(slot);
                tally_release(t);
            }
        }
        if (ss == NAQ_OK) {
            sent++;
        } else {
            t->statuses[i] = ss;
            snprintf(t->errors[i], sizeof t->errors[i], "%s", naq_last_error());
        }
    }
    struct timespec until = naq__deadline(CLOCK_REALTIME, COMPLETE_WAIT_MS);
    pthread_mutex_lock(&t->lock);
    while (t->answered < sent && pthread_cond_timedwait(&t->cond, &t->lock, &until) == 0)
        ;
    for (size_t i = 0; i < n; i++)
        statuses[i] = t->statuses[i];
    memcpy(errors, t->errors, n * sizeof *errors);
    pthread_mutex_unlock(&t->lock);
    /* The one-at-a-time jobs, after the others. */
    for (size_t i = 0; i < n; i++) {
        if (built[i].unique_key == NULL && built[i].depends_on == NULL)
            continue;
        int existing = 0;
        statuses[i] = naq__enqueue_built(c, &built[i], json[i], len[i], ids[i], &existing);
        if (statuses[i] != NAQ_OK)
            snprintf(errors[i], sizeof errors[i], "%s", naq_last_error());
    }

    size_t ok = 0, failed = 0;
    char named[600] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (statuses[i] == NAQ_OK) {
            ok++;
            continue;
        }
        if (failed++ == 0)
            s = statuses[i];
        if (failed <= NAMED_FAILURES && used < sizeof named) {
            int w = snprintf(named + used, sizeof named - used, "%sjob %zu (%s): %s",
                             failed > 1 ? "; " : "", i + 1, ids[i], errors[i]);
            if (w > 0)
                used += (size_t)w;
        }
    }
    if (enqueued != NULL)
        *enqueued = ok;
    if (failed > 0)
        s = naq__fail(s, "%zu of %zu jobs were not enqueued: %s%s", failed, n, named,
                      failed > NAMED_FAILURES ? "; ..." : "");
out:
    if (t != NULL)
        tally_release(t);
    for (size_t i = 0; built != NULL && i < n; i++) {
        naq_job_clear(&built[i]);
        if (json != NULL)
            free(json[i]);
    }
    free(built);
    free(json);
    free(len);
    free(by_id);
    free(errors);
    return s;
}
