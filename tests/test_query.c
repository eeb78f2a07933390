/*
 * test_query.c - listing, counting, deleting and cleaning up events, the
 * event store's health, queue depths and worker activity, against a real
 * nats-server and a known set of events published with plain nats.c.
 */
#include "query_helpers.h"

#include "internal.h"

#include <math.h>

/* ---- the known set ---- */

#define NJOBS 6
#define MAX_SET 64

typedef struct {
    qspec ev[MAX_SET];
    size_t n;
    double t0;
} known_set;

static const char *const queues[] = {"qa", "qb", "qc"};
static const char *const workers[] = {"w1", "w2"};
static const char *const tags[] = {"{\"team\":\"red\"}", "{\"team\":\"blue\",\"tier\":\"gold\"}"};
static char job_names[NJOBS][16];

/* Every job is enqueued, started by a worker and then completes (or fails,
 * every third); events are interleaved across jobs and 10 ms apart in
 * timestamp, starting now (time ranges select by timestamp among events
 * stored around then), with worker and system events among them. */
static void publish_known_set(qfixture *fx, known_set *ks)
{
    memset(ks, 0, sizeof *ks);
    ks->t0 = qnow();
    double ts = ks->t0;
    qspec w1 = {NAQ_EVENT_WORKER_STARTED, NULL, NULL, "w1", ts, NULL, -1, NULL, 0};
    ks->ev[ks->n++] = w1;
    ts += 0.01;
    qspec w2 = {NAQ_EVENT_WORKER_STARTED, NULL, NULL, "w2", ts, NULL, -1, NULL, 0};
    ks->ev[ks->n++] = w2;
    for (int step = 0; step < 3; step++) {
        for (int j = 0; j < NJOBS; j++) {
            snprintf(job_names[j], sizeof job_names[j], "job-%d", j);
            ts += 0.01;
            qspec sp = {NAQ_EVENT_ENQUEUED, job_names[j], queues[j % 3], NULL, ts,
                        tags[j % 2],        -1,           NULL,          0};
            if (step == 1) {
                sp.type = NAQ_EVENT_STARTED;
                sp.worker = workers[j % 2];
            } else if (step == 2) {
                sp.worker = workers[j % 2];
                sp.type = j % 3 == 2 ? NAQ_EVENT_FAILED : NAQ_EVENT_COMPLETED;
                sp.duration_ms = 10.0 * (j + 1);
                sp.error_type = j % 3 == 2 ? "Boom" : NULL;
            }
            ks->ev[ks->n++] = sp;
        }
        ts += 0.01;
        qspec sys = {NAQ_EVENT_SYSTEM_METRICS, NULL, NULL, NULL, ts, NULL, -1, NULL, 0};
        ks->ev[ks->n++] = sys;
    }
    qpublish_all(fx, ks->ev, ks->n);
}

/* The test's own reading of a query: what must match. */
static int has_tag(const qspec *sp, const char *tag)
{
    if (sp->tags == NULL)
        return 0;
    const char *eq = strchr(tag, '=');
    char want[128];
    snprintf(want, sizeof want, "\"%.*s\":\"%s\"", (int)(eq - tag), tag, eq + 1);
    return strstr(sp->tags, want) != NULL;
}

static int str_eq(const char *filter, const char *value)
{
    return filter == NULL || strcmp(filter, value ? value : "") == 0;
}

static int expect_match(const qspec *sp, const naq_query *q)
{
    if (!str_eq(q->filter.job_id, sp->job) || !str_eq(q->filter.queue, sp->queue) ||
        !str_eq(q->filter.worker, sp->worker))
        return 0;
    if (q->filter.type != NULL && strcmp(q->filter.type, naq_event_type_name(sp->type)) != 0)
        return 0;
    for (const char *const *t = q->tags; t && *t; t++)
        if (!has_tag(sp, *t))
            return 0;
    if (q->since > 0 && sp->ts < q->since)
        return 0;
    if (q->until > 0 && sp->ts > q->until)
        return 0;
    if (q->from_seq > 0 && sp->seq < q->from_seq)
        return 0;
    if (q->until_seq > 0 && sp->seq > q->until_seq)
        return 0;
    return 1;
}

static void check_query(qfixture *fx, const known_set *ks, const naq_query *q, const char *what)
{
    uint64_t want[MAX_SET];
    size_t nwant = 0;
    for (size_t i = 0; i < ks->n; i++)
        if (expect_match(&ks->ev[i], q))
            want[nwant++] = ks->ev[i].seq;
    naq_event_list l;
    int more = -1;
    naq_status s = naq_events_list(fx->c, q, &l, &more);
    if (s != NAQ_OK)
        fail_msg("%s: list: %s", what, naq_last_error());
    if (l.count != nwant)
        fail_msg("%s: listed %zu events, expected %zu", what, l.count, nwant);
    for (size_t i = 0; i < nwant; i++)
        if (l.items[i].nats_sequence != want[i])
            fail_msg("%s: event %zu has sequence %llu, expected %llu", what, i,
                     (unsigned long long)l.items[i].nats_sequence, (unsigned long long)want[i]);
    assert_int_equal(more, 0);
    uint64_t count = 0;
    if (naq_events_count(fx->c, q, &count) != NAQ_OK)
        fail_msg("%s: count: %s", what, naq_last_error());
    if (count != nwant)
        fail_msg("%s: counted %llu, listed %zu", what, (unsigned long long)count, nwant);
    naq_event_list_free(&l);
}

static void list_and_count_agree_with_the_known_set_for_every_filter(void **state)
{
    qfixture *fx = *state;
    known_set ks;
    publish_known_set(fx, &ks);
    assert_int_equal(ks.n, 23);

    naq_query q;
    naq_query_init(&q);
    check_query(fx, &ks, &q, "no filter");

    naq_query_init(&q);
    q.filter.job_id = "job-3";
    check_query(fx, &ks, &q, "job");

    naq_query_init(&q);
    q.filter.type = "failed";
    check_query(fx, &ks, &q, "type");

    naq_query_init(&q);
    q.filter.queue = "qb";
    check_query(fx, &ks, &q, "queue");

    naq_query_init(&q);
    q.filter.worker = "w2";
    check_query(fx, &ks, &q, "worker");

    const char *red[] = {"team=red", NULL};
    naq_query_init(&q);
    q.tags = red;
    check_query(fx, &ks, &q, "one tag");

    const char *blue_gold[] = {"team=blue", "tier=gold", NULL};
    naq_query_init(&q);
    q.tags = blue_gold;
    check_query(fx, &ks, &q, "two tags");

    const char *none[] = {"team=green", NULL};
    naq_query_init(&q);
    q.tags = none;
    check_query(fx, &ks, &q, "an absent tag");

    naq_query_init(&q);
    q.since = ks.t0 + 0.075;
    check_query(fx, &ks, &q, "since");

    naq_query_init(&q);
    q.until = ks.t0 + 0.105;
    check_query(fx, &ks, &q, "until");

    naq_query_init(&q);
    q.since = ks.t0 + 0.055;
    q.until = ks.t0 + 0.155;
    check_query(fx, &ks, &q, "since and until");

    naq_query_init(&q);
    q.filter.type = "started";
    q.filter.queue = "qa";
    q.filter.worker = "w1";
    check_query(fx, &ks, &q, "type, queue and worker");

    naq_query_init(&q);
    q.from_seq = ks.ev[5].seq;
    check_query(fx, &ks, &q, "from sequence");

    naq_query_init(&q);
    q.from_seq = ks.ev[3].seq;
    q.until_seq = ks.ev[9].seq;
    check_query(fx, &ks, &q, "sequence range");

    naq_query_init(&q);
    q.filter.job_id = "job-4";
    q.filter.type = "completed";
    check_query(fx, &ks, &q, "job and type");

    naq_query_init(&q);
    q.filter.job_id = "job-1";
    q.since = ks.t0 + 0.105;
    q.tags = blue_gold;
    check_query(fx, &ks, &q, "job, since and tags");

    naq_query_init(&q);
    q.filter.job_id = "no-such-job";
    check_query(fx, &ks, &q, "unknown job");
}

static void list_applies_offset_and_limit_and_says_when_more_match(void **state)
{
    qfixture *fx = *state;
    known_set ks;
    publish_known_set(fx, &ks);
    uint64_t started[NJOBS];
    size_t n = 0;
    for (size_t i = 0; i < ks.n; i++)
        if (ks.ev[i].type == NAQ_EVENT_STARTED)
            started[n++] = ks.ev[i].seq;
    assert_int_equal(n, NJOBS);

    naq_query q;
    naq_query_init(&q);
    q.filter.type = "started";
    q.offset = 2;
    q.limit = 3;
    naq_event_list l;
    int more = 0;
    assert_int_equal(naq_events_list(fx->c, &q, &l, &more), NAQ_OK);
    assert_int_equal(l.count, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(l.items[i].nats_sequence, started[2 + i]);
    assert_int_equal(more, 1);
    naq_event_list_free(&l);

    q.offset = 4;
    q.limit = 10;
    assert_int_equal(naq_events_list(fx->c, &q, &l, &more), NAQ_OK);
    assert_int_equal(l.count, 2);
    assert_int_equal(l.items[1].nats_sequence, started[5]);
    assert_int_equal(more, 0);
    naq_event_list_free(&l);

    q.offset = 6;
    assert_int_equal(naq_events_list(fx->c, &q, &l, &more), NAQ_OK);
    assert_int_equal(l.count, 0);
    naq_event_list_free(&l);

    /* The count ignores offset and limit. */
    uint64_t count = 0;
    assert_int_equal(naq_events_count(fx->c, &q, &count), NAQ_OK);
    assert_int_equal(count, NJOBS);
}

static void job_events_and_events_by_type_slice_with_limit_and_offset(void **state)
{
    qfixture *fx = *state;
    known_set ks;
    publish_known_set(fx, &ks);
    naq_event_list l;
    assert_int_equal(naq_job_events(fx->c, "job-2", 2, 1, &l), NAQ_OK);
    assert_int_equal(l.count, 2);
    assert_int_equal(l.items[0].type, NAQ_EVENT_STARTED);
    assert_int_equal(l.items[1].type, NAQ_EVENT_FAILED);
    naq_event_list_free(&l);
    assert_int_equal(naq_job_events(fx->c, "job-2", 0, 0, &l), NAQ_OK);
    assert_int_equal(l.count, 3);
    naq_event_list_free(&l);
    assert_int_equal(naq_job_events(fx->c, "job-2", 5, 3, &l), NAQ_OK);
    assert_int_equal(l.count, 0);
    naq_event_list_free(&l);
    assert_int_equal(naq_job_events(fx->c, "nobody", 5, 0, &l), NAQ_ERR_NOT_FOUND);

    assert_int_equal(naq_events_by_type(fx->c, "completed", 2, 1, &l), NAQ_OK);
    assert_int_equal(l.count, 2);
    for (size_t i = 0; i < l.count; i++)
        assert_int_equal(l.items[i].type, NAQ_EVENT_COMPLETED);
    assert_string_equal(l.items[0].job_id, "job-1");
    assert_string_equal(l.items[1].job_id, "job-3");
    naq_event_list_free(&l);
}

static void queries_refuse_malformed_filters(void **state)
{
    qfixture *fx = *state;
    naq_query q;
    naq_event_list l;
    uint64_t n;
    naq_query_init(&q);
    q.filter.type = "exploded";
    assert_int_equal(naq_events_list(fx->c, &q, &l, NULL), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "exploded"));
    const char *bad[] = {"no-equals-sign", NULL};
    naq_query_init(&q);
    q.tags = bad;
    assert_int_equal(naq_events_count(fx->c, &q, &n), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "key=value"));
    naq_query_init(&q);
    q.filter.queue = "a.b";
    assert_int_equal(naq_events_list(fx->c, &q, &l, NULL), NAQ_ERR_INVALID_ARG);
    naq_query_init(&q);
    q.since = 200;
    q.until = 100;
    assert_int_equal(naq_events_list(fx->c, &q, &l, NULL), NAQ_ERR_INVALID_ARG);
}

static void parse_time_reads_durations_iso_times_and_epoch_seconds(void **state)
{
    (void)state;
    double t = 0;
    assert_int_equal(naq_parse_time("1h", 10000, &t), NAQ_OK);
    assert_true(fabs(t - 6400) < 1e-9);
    assert_int_equal(naq_parse_time("90s", 10000, &t), NAQ_OK);
    assert_true(fabs(t - 9910) < 1e-9);
    assert_int_equal(naq_parse_time("2026-01-31T12:00:00Z", 0, &t), NAQ_OK);
    assert_true(fabs(t - 1769860800) < 1e-9);
    assert_int_equal(naq_parse_time("2026-01-31T12:00:00.25", 0, &t), NAQ_OK);
    assert_true(fabs(t - 1769860800.25) < 1e-6);
    assert_int_equal(naq_parse_time("2026-01-31", 0, &t), NAQ_OK);
    assert_true(fabs(t - 1769817600) < 1e-9);
    assert_int_equal(naq_parse_time("@1769860800.5", 0, &t), NAQ_OK);
    assert_true(fabs(t - 1769860800.5) < 1e-9);
    assert_int_equal(naq_parse_time("yesterday", 0, &t), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_parse_time("2026-13-01T00:00:00Z", 0, &t), NAQ_ERR_INVALID_ARG);
}

static void parse_time_reads_an_offset_as_local_time_there(void **state)
{
    (void)state;
    double t = 0;
    /* 13:00 at +01:00 and 06:30 at -05:30 are both 12:00 UTC. */
    assert_int_equal(naq_parse_time("2026-01-31T13:00:00+01:00", 0, &t), NAQ_OK);
    assert_true(fabs(t - 1769860800) < 1e-9);
    assert_int_equal(naq_parse_time("2026-01-31T06:30:00.5-05:30", 0, &t), NAQ_OK);
    assert_true(fabs(t - 1769860800.5) < 1e-6);
    assert_int_equal(naq_parse_time("2026-01-31T13:00:00+0100", 0, &t), NAQ_OK);
    assert_true(fabs(t - 1769860800) < 1e-9);
    assert_int_equal(naq_parse_time("2026-01-31T13:00:00+25:00", 0, &t), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_parse_time("2026-01-31T13:00:00+1", 0, &t), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_parse_time("2026-01-31T13:00:00Z+01:00", 0, &t), NAQ_ERR_INVALID_ARG);
}

/* ---- time ranges are positioned, not scanned ---- */

static void range_read_starts_at_the_first_event_stored_after_since(void **state)
{
    qfixture *fx = *state;
    qspec old[20], fresh[5];
    for (int i = 0; i < 20; i++) {
        qspec sp = {NAQ_EVENT_SYSTEM_METRICS, NULL, NULL, NULL, 0, NULL, -1, NULL, 0};
        old[i] = sp;
    }
    qpublish_all(fx, old, 20);
    qsleep_ms(300);
    double mark = qnow();
    qsleep_ms(50);
    for (int i = 0; i < 5; i++) {
        qspec sp = {NAQ_EVENT_SYSTEM_METRICS, NULL, NULL, NULL, 0, NULL, -1, NULL, 0};
        fresh[i] = sp;
    }
    qpublish_all(fx, fresh, 5);
    /* The reader positioned by stored time delivers the fresh events first:
     * the old ones are never read. */
    naq__reader *r = NULL;
    assert_int_equal(naq__reader_open(fx->c, NULL, 0, mark, &r), NAQ_OK);
    for (int i = 0; i < 5; i++) {
        natsMsg *m = NULL;
        uint64_t seq = 0, pending = 0;
        int64_t stored = 0;
        naq_status st = NAQ_ERR_TIMEOUT;
        for (int wait = 0; wait < 50 && st == NAQ_ERR_TIMEOUT; wait++) /* a loaded machine */
            st = naq__reader_next(r, 200, &m, &seq, &stored, &pending);
        assert_int_equal(st, NAQ_OK);
        assert_int_equal(seq, fresh[i].seq);
        assert_int_equal(pending, (uint64_t)(4 - i));
        assert_true((double)stored / 1e9 >= mark);
        natsMsg_Destroy(m);
    }
    naq__reader_close(r);
    /* A time range after the last event is empty, and answers at once. */
    naq_query q;
    naq_query_init(&q);
    q.since = qnow() + 3600;
    uint64_t n = 99;
    int64_t t0 = naq__mono_ms();
    assert_int_equal(naq_events_count(fx->c, &q, &n), NAQ_OK);
    assert_int_equal(n, 0);
    assert_true(naq__mono_ms() - t0 < 2000);
}

/* ---- deleting ---- */

static void delete_removes_exactly_one_jobs_events(void **state)
{
    qfixture *fx = *state;
    known_set ks;
    publish_known_set(fx, &ks);
    uint64_t deleted = 0;
    assert_int_equal(naq_job_events_delete(fx->c, "job-3", &deleted), NAQ_OK);
    assert_int_equal(deleted, 3);
    naq_event_list l;
    assert_int_equal(naq_job_history(fx->c, "job-3", &l), NAQ_ERR_NOT_FOUND);
    /* Everything else is intact, in place. */
    naq_query q;
    naq_query_init(&q);
    assert_int_equal(naq_events_list(fx->c, &q, &l, NULL), NAQ_OK);
    size_t k = 0;
    for (size_t i = 0; i < ks.n; i++) {
        if (ks.ev[i].job != NULL && strcmp(ks.ev[i].job, "job-3") == 0)
            continue;
        assert_true(k < l.count);
        assert_int_equal(l.items[k].nats_sequence, ks.ev[i].seq);
        k++;
    }
    assert_int_equal(l.count, k);
    assert_int_equal(k, ks.n - 3);
    naq_event_list_free(&l);
    /* A job without events: nothing to do. */
    assert_int_equal(naq_job_events_delete(fx->c, "job-3", &deleted), NAQ_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(naq_job_events_delete(fx->c, "bad.id", &deleted), NAQ_ERR_INVALID_ARG);
}

static void cleanup_removes_only_events_stored_before_the_cutoff(void **state)
{
    qfixture *fx = *state;
    qspec old[30], fresh[12];
    for (int i = 0; i < 30; i++) {
        qspec sp = {NAQ_EVENT_ENQUEUED, "old-job", "qa", NULL, 0, NULL, -1, NULL, 0};
        old[i] = sp;
    }
    for (int i = 0; i < 12; i++) {
        qspec sp = {NAQ_EVENT_ENQUEUED, "new-job", "qa", NULL, 0, NULL, -1, NULL, 0};
        fresh[i] = sp;
    }
    qpublish_all(fx, old, 30);
    qsleep_ms(600);
    double mark = qnow();
    qsleep_ms(600);
    qpublish_all(fx, fresh, 12);
    int64_t age_ms = (int64_t)((qnow() - mark) * 1000.0);
    uint64_t deleted = 0, first = 0;
    assert_int_equal(naq_events_cleanup(fx->c, age_ms, &deleted, &first), NAQ_OK);
    assert_int_equal(deleted, 30);
    assert_int_equal(first, fresh[0].seq);
    naq_event_store_health h;
    assert_int_equal(naq_events_health(fx->c, &h), NAQ_OK);
    assert_int_equal(h.msgs, 12);
    assert_int_equal(h.first_seq, fresh[0].seq);
    naq_event_store_health_free(&h);
    /* Again with the same age: nothing is that old any more. */
    assert_int_equal(naq_events_cleanup(fx->c, age_ms + 60000, &deleted, &first), NAQ_OK);
    assert_int_equal(deleted, 0);
    /* Age 0 empties the stream. */
    assert_int_equal(naq_events_cleanup(fx->c, 0, &deleted, &first), NAQ_OK);
    assert_int_equal(deleted, 12);
}

/* ---- health, queue depths, workers ---- */

static void health_reports_stream_state_and_each_durables_lag(void **state)
{
    qfixture *fx = *state;
    known_set ks;
    publish_known_set(fx, &ks);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "audit";
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    assert_int_equal(js_AddConsumer(NULL, fx->js, "NAQ_JOB_EVENTS", &cc, NULL, NULL), NATS_OK);
    /* Take 3 without acking them: 3 ack-pending, the rest pending. */
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "NAQ_JOB_EVENTS";
    assert_int_equal(js_PullSubscribe(&sub, fx->js, ">", "audit", NULL, &so, NULL), NATS_OK);
    natsMsgList ml = {0};
    assert_int_equal(natsSubscription_Fetch(&ml, sub, 3, 2000, NULL), NATS_OK);
    assert_int_equal(ml.Count, 3);
    natsMsgList_Destroy(&ml);

    naq_event_store_health h;
    assert_int_equal(naq_events_health(fx->c, &h), NAQ_OK);
    assert_string_equal(h.stream, "NAQ_JOB_EVENTS");
    assert_int_equal(h.msgs, ks.n);
    assert_int_equal(h.first_seq, ks.ev[0].seq);
    assert_int_equal(h.last_seq, ks.ev[ks.n - 1].seq);
    assert_true(h.bytes > 0);
    assert_true(h.first_time > 0 && h.last_time >= h.first_time);
    assert_true(h.consumers >= 1);
    assert_int_equal(h.ndurables, 1);
    assert_string_equal(h.durables[0].name, "audit");
    assert_int_equal(h.durables[0].ack_pending, 3);
    assert_int_equal(h.durables[0].num_pending, ks.n - 3);
    assert_int_equal(h.durables[0].lag, ks.n);
    /* No maintainer ran: the rollups lag by the whole stream. */
    assert_int_equal(h.rollup_cursor, 0);
    assert_int_equal(h.rollup_lag, ks.n);
    naq_event_store_health_free(&h);
    natsSubscription_Destroy(sub);
}

static void queue_depths_sum_each_queues_work_queue_consumers(void **state)
{
    qfixture *fx = *state;
    const char *names[] = {"naq_emails_p2", "naq_emails_p4", "naq_reports_p0", "someone_else"};
    const char *filters[] = {"naq.queue.emails.2", "naq.queue.emails.4", "naq.queue.reports.0",
                             "naq.queue.other.2"};
    for (int i = 0; i < 4; i++) {
        jsConsumerConfig cc;
        jsConsumerConfig_Init(&cc);
        cc.Durable = names[i];
        cc.FilterSubject = filters[i];
        cc.AckPolicy = js_AckExplicit;
        assert_int_equal(js_AddConsumer(NULL, fx->js, "NAQ_JOBS", &cc, NULL, NULL), NATS_OK);
    }
    const char *subjects[] = {"naq.queue.emails.2", "naq.queue.emails.2", "naq.queue.emails.4",
                              "naq.queue.reports.0", "naq.queue.other.2"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(js_Publish(NULL, fx->js, subjects[i], "{}", 2, NULL, NULL), NATS_OK);
    naq_queue_depth *d = NULL;
    size_t n = 0;
    assert_int_equal(naq_queue_depths(fx->c, &d, &n), NAQ_OK);
    assert_int_equal(n, 2);
    assert_string_equal(d[0].queue, "emails");
    assert_int_equal(d[0].pending, 3);
    assert_int_equal(d[0].by_priority[2], 2);
    assert_int_equal(d[0].by_priority[4], 1);
    assert_string_equal(d[1].queue, "reports");
    assert_int_equal(d[1].pending, 1);
    free(d);
}

static void workers_show_status_current_job_and_counts_from_recent_events(void **state)
{
    qfixture *fx = *state;
    double now = qnow();
    qspec ev[] = {
        /* Before the window: not counted. */
        {NAQ_EVENT_COMPLETED, "j0", "qa", "w-old", now - 900, NULL, 5, NULL, 0},
        {NAQ_EVENT_WORKER_STARTED, NULL, NULL, "w-a", now - 60, NULL, -1, NULL, 0},
        {NAQ_EVENT_DEQUEUED, "j1", "qa", "w-a", now - 50, NULL, -1, NULL, 0},
        {NAQ_EVENT_STARTED, "j1", "qa", "w-a", now - 50, NULL, -1, NULL, 0},
        {NAQ_EVENT_COMPLETED, "j1", "qa", "w-a", now - 40, NULL, 5, NULL, 0},
        {NAQ_EVENT_DEQUEUED, "j2", "qa", "w-a", now - 30, NULL, -1, NULL, 0},
        {NAQ_EVENT_STARTED, "j2", "qa", "w-a", now - 30, NULL, -1, NULL, 0},
        {NAQ_EVENT_STARTED, "j3", "qb", "w-b", now - 45, NULL, -1, NULL, 0},
        {NAQ_EVENT_FAILED, "j3", "qb", "w-b", now - 44, NULL, 7, "Boom", 0},
        {NAQ_EVENT_STARTED, "j4", "qb", "w-b", now - 43, NULL, -1, NULL, 0},
        {NAQ_EVENT_COMPLETED, "j4", "qb", "w-b", now - 42, NULL, 7, NULL, 0},
        {NAQ_EVENT_WORKER_STOPPED, NULL, NULL, "w-b", now - 20, NULL, -1, NULL, 0},
        {NAQ_EVENT_STARTED, "j5", "qc", "w-c", now - 10, NULL, -1, NULL, 0},
        {NAQ_EVENT_COMPLETED, "j5", "qc", "w-c", now - 9, NULL, 1, NULL, 0},
        {NAQ_EVENT_ENQUEUED, "j6", "qc", NULL, now - 8, NULL, -1, NULL, 0},
        /* w-a still heartbeats; w-d went silent 90 s ago without stopping. */
        {NAQ_EVENT_WORKER_HEARTBEAT, NULL, NULL, "w-a", now - 5, NULL, -1, NULL, 0},
        {NAQ_EVENT_WORKER_STARTED, NULL, NULL, "w-d", now - 100, NULL, -1, NULL, 0},
        {NAQ_EVENT_STARTED, "j7", "qd", "w-d", now - 90, NULL, -1, NULL, 0},
    };
    qpublish_all(fx, ev, sizeof ev / sizeof ev[0]);
    naq_worker_activity *w = NULL;
    size_t n = 0;
    assert_int_equal(naq_events_workers(fx->c, now - 600, &w, &n), NAQ_OK);
    assert_int_equal(n, 4);
    assert_string_equal(w[0].worker_id, "w-a");
    assert_int_equal(w[0].status, NAQ_WORKER_STATUS_BUSY);
    assert_string_equal(w[0].current_job, "j2");
    assert_int_equal(w[0].running, 1);
    assert_int_equal(w[0].processed, 1);
    assert_int_equal(w[0].failed, 0);
    assert_string_equal(w[0].queue, "qa");
    assert_true(fabs(w[0].last_seen - (now - 5)) < 1e-3);
    assert_string_equal(w[1].worker_id, "w-b");
    assert_int_equal(w[1].status, NAQ_WORKER_STATUS_STOPPED);
    assert_int_equal(w[1].processed, 2);
    assert_int_equal(w[1].failed, 1);
    assert_string_equal(w[1].current_job, "");
    assert_string_equal(w[2].worker_id, "w-c");
    assert_int_equal(w[2].status, NAQ_WORKER_STATUS_IDLE);
    assert_int_equal(w[2].processed, 1);
    assert_string_equal(naq_worker_status_name(w[1].status), "stopped");
    /* Silent for more than 3 heartbeat intervals (5 s by default), not
     * stopped: lost, whatever it was doing. */
    assert_string_equal(w[3].worker_id, "w-d");
    assert_int_equal(w[3].status, NAQ_WORKER_STATUS_LOST);
    assert_string_equal(w[3].current_job, "j7");
    free(w);
}

/* ---- the CLI ---- */

static int cli(qfixture *fx, const char *const *args, char **out, char **err)
{
    char env0[128];
    snprintf(env0, sizeof env0, "NAQ_URL=%s", fx->srv.url);
    const char *env[] = {env0, NULL};
    return naq_test_run_cli(args, env, out, err);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void cli_list_and_count_print_matches_in_every_format(void **state)
{
    qfixture *fx = *state;
    known_set ks;
    publish_known_set(fx, &ks);
    char *out = NULL, *err = NULL;
    const char *json[] = {"events", "list", "--type", "failed", "--format", "json", NULL};
    assert_int_equal(cli(fx, json, &out, &err), 0);
    assert_int_equal(count_lines(out), 2);
    char want[64];
    snprintf(want, sizeof want, "\"nats_sequence\":%llu", (unsigned long long)ks.ev[18].seq);
    assert_non_null(strstr(out, want)); /* job-2's failure */
    assert_non_null(strstr(out, "\"event_type\":\"failed\""));
    free(out);
    free(err);
    const char *raw[] = {"events", "list", "--type", "failed", "--format", "raw", NULL};
    assert_int_equal(cli(fx, raw, &out, &err), 0);
    assert_int_equal(count_lines(out), 2);
    assert_null(strstr(out, "nats_sequence")); /* the wire JSON, nothing added */
    free(out);
    free(err);
    const char *table[] = {"events", "list",  "--queue",  "qa", "--worker",
                           "w1",     "--tag", "team=red", NULL};
    assert_int_equal(cli(fx, table, &out, &err), 0);
    assert_non_null(strstr(out, "TIME"));
    assert_int_equal(count_lines(out), 1 + 2); /* header, job-0 started and completed */
    free(out);
    free(err);
    const char *limited[] = {"events", "list", "--limit", "3", "--offset", "1", NULL};
    assert_int_equal(cli(fx, limited, &out, &err), 0);
    assert_int_equal(count_lines(out), 1 + 3);
    assert_non_null(strstr(err, "--offset 4"));
    free(out);
    free(err);
    const char *count[] = {"events", "count", "--type", "failed", NULL};
    assert_int_equal(cli(fx, count, &out, &err), 0);
    assert_string_equal(out, "2\n");
    free(out);
    free(err);
    const char *count_json[] = {"events", "count", "--format", "json", NULL};
    assert_int_equal(cli(fx, count_json, &out, &err), 0);
    assert_string_equal(out, "{\"count\":23}\n");
    free(out);
    free(err);
}

static void cli_refuses_malformed_filters_with_exit_2(void **state)
{
    qfixture *fx = *state;
    const char *bad[][6] = {
        {"events", "list", "--type", "exploded", NULL},
        {"events", "count", "--tag", "novalue", NULL},
        {"events", "list", "--since", "yesterday", NULL},
        {"events", "list", "--queue", "a.b", NULL},
        {"events", "cleanup", NULL},
        {"events", "delete", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *err = NULL;
        int rc = cli(fx, bad[i], NULL, &err);
        if (rc != 2)
            fail_msg("'%s %s %s' exited %d, not 2: %s", bad[i][1], bad[i][2],
                     bad[i][3] ? bad[i][3] : "", rc, err);
        assert_non_null(strstr(err, "--help"));
        free(err);
    }
}

static void cli_delete_cleanup_and_workers_report_what_they_did(void **state)
{
    qfixture *fx = *state;
    known_set ks;
    publish_known_set(fx, &ks);
    char *out = NULL, *err = NULL;
    const char *wargs[] = {"events", "workers", "--since", "1h", "--format", "json", NULL};
    assert_int_equal(cli(fx, wargs, &out, &err), 0);
    assert_int_equal(count_lines(out), 2);
    assert_non_null(strstr(out, "\"worker_id\":\"w1\""));
    assert_non_null(strstr(out, "\"status\":\"idle\""));
    free(out);
    free(err);
    const char *del[] = {"events", "delete", "job-5", NULL};
    assert_int_equal(cli(fx, del, &out, &err), 0);
    assert_string_equal(out, "deleted 3 events of job job-5\n");
    free(out);
    free(err);
    const char *clean[] = {"events", "cleanup", "--older-than", "0s", "--format", "json", NULL};
    assert_int_equal(cli(fx, clean, &out, &err), 0);
    char want[64];
    snprintf(want, sizeof want, "{\"deleted\":20,\"first_seq\":%llu}\n",
             (unsigned long long)ks.ev[ks.n - 1].seq + 1);
    assert_string_equal(out, want);
    free(out);
    free(err);
}

static const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, qsetup, qteardown)
    T(list_and_count_agree_with_the_known_set_for_every_filter),
    T(list_applies_offset_and_limit_and_says_when_more_match),
    T(job_events_and_events_by_type_slice_with_limit_and_offset),
    T(queries_refuse_malformed_filters),
    cmocka_unit_test(parse_time_reads_durations_iso_times_and_epoch_seconds),
    cmocka_unit_test(parse_time_reads_an_offset_as_local_time_there),
    T(range_read_starts_at_the_first_event_stored_after_since),
    T(delete_removes_exactly_one_jobs_events),
    T(cleanup_removes_only_events_stored_before_the_cutoff),
    T(health_reports_stream_state_and_each_durables_lag),
    T(queue_depths_sum_each_queues_work_queue_consumers),
    T(workers_show_status_current_job_and_counts_from_recent_events),
    T(cli_list_and_count_print_matches_in_every_format),
    T(cli_refuses_malformed_filters_with_exit_2),
    T(cli_delete_cleanup_and_workers_report_what_they_did),
#undef T
};

NAQ_TEST_MAIN(tests)
