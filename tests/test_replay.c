/*
 * test_replay.c - replaying stored events to a handler: from a sequence or a
 * time, with filters, bounded by until and limit, at full speed or in the
 * original timing, against a real nats-server.
 */
#include "query_helpers.h"

#include "internal.h"

#define MAX_GOT 256

typedef struct {
    uint64_t seq[MAX_GOT];
    naq_event_type type[MAX_GOT];
    double at_ms[MAX_GOT]; /* monotonic time of delivery */
    size_t n;
    size_t stop_after; /* return 1 once this many came (0 = never) */
} got_events;

static int got(const naq_event *e, void *user)
{
    got_events *g = user;
    if (g->n < MAX_GOT) {
        g->seq[g->n] = e->nats_sequence;
        g->type[g->n] = e->type;
        g->at_ms[g->n] = (double)naq__mono_ms();
        g->n++;
    }
    return g->stop_after > 0 && g->n >= g->stop_after;
}

static void publish_series(qfixture *fx, qspec *ev, size_t n, double base)
{
    for (size_t i = 0; i < n; i++) {
        qspec sp = {i % 3 == 2 ? NAQ_EVENT_FAILED : NAQ_EVENT_COMPLETED,
                    "job-r",
                    "qr",
                    "wr",
                    base > 0 ? base + (double)i : 0,
                    NULL,
                    5,
                    NULL,
                    0};
        ev[i] = sp;
    }
    qpublish_all(fx, ev, n);
}

static void replay_from_a_sequence_delivers_every_later_event_in_order(void **state)
{
    qfixture *fx = *state;
    qspec ev[10];
    publish_series(fx, ev, 10, 0);
    naq_replay_opts o;
    naq_replay_opts_init(&o);
    o.query.from_seq = ev[4].seq;
    got_events g = {0};
    uint64_t delivered = 0;
    assert_int_equal(naq_events_replay(fx->c, &o, got, &g, &delivered), NAQ_OK);
    assert_int_equal(delivered, 6);
    assert_int_equal(g.n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(g.seq[i], ev[4 + i].seq);
}

static void replay_from_a_time_keeps_only_matching_events_after_it(void **state)
{
    qfixture *fx = *state;
    qspec before[9], after[9];
    publish_series(fx, before, 9, 0);
    qsleep_ms(200);
    double mark = qnow();
    qsleep_ms(50);
    publish_series(fx, after, 9, 0);
    naq_replay_opts o;
    naq_replay_opts_init(&o);
    o.query.since = mark;
    o.query.filter.type = "failed";
    got_events g = {0};
    assert_int_equal(naq_events_replay(fx->c, &o, got, &g, NULL), NAQ_OK);
    assert_int_equal(g.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(g.type[i], NAQ_EVENT_FAILED);
        assert_int_equal(g.seq[i], after[3 * i + 2].seq);
    }
    /* The same from the sequence of the first later event. */
    naq_replay_opts_init(&o);
    o.query.from_seq = after[0].seq;
    o.query.filter.type = "failed";
    o.query.filter.queue = "qr";
    got_events g2 = {0};
    assert_int_equal(naq_events_replay(fx->c, &o, got, &g2, NULL), NAQ_OK);
    assert_int_equal(g2.n, 3);
    assert_memory_equal(g.seq, g2.seq, 3 * sizeof g.seq[0]);
}

static void replay_stops_at_until_at_the_limit_and_when_the_handler_asks(void **state)
{
    qfixture *fx = *state;
    qspec ev[10];
    publish_series(fx, ev, 10, 0);
    naq_replay_opts o;
    naq_replay_opts_init(&o);
    o.query.until_seq = ev[3].seq;
    got_events g = {0};
    assert_int_equal(naq_events_replay(fx->c, &o, got, &g, NULL), NAQ_OK);
    assert_int_equal(g.n, 4);
    naq_replay_opts_init(&o);
    o.query.offset = 2;
    o.query.limit = 3;
    got_events g2 = {0};
    uint64_t delivered = 0;
    assert_int_equal(naq_events_replay(fx->c, &o, got, &g2, &delivered), NAQ_OK);
    assert_int_equal(delivered, 3);
    assert_int_equal(g2.seq[0], ev[2].seq);
    assert_int_equal(g2.seq[2], ev[4].seq);
    naq_replay_opts_init(&o);
    got_events g3 = {0};
    g3.stop_after = 2;
    assert_int_equal(naq_events_replay(fx->c, &o, got, &g3, &delivered), NAQ_OK);
    assert_int_equal(g3.n, 2);
    assert_int_equal(delivered, 2);
}

static void replay_in_original_timing_keeps_order_and_the_recorded_gaps(void **state)
{
    qfixture *fx = *state;
    /* Recorded 0.4 s, 0.2 s and 0.6 s apart; replayed at speed 2. */
    double base = qnow() - 3;
    double offsets[] = {0, 0.4, 0.6, 1.2};
    qspec ev[4];
    for (int i = 0; i < 4; i++) {
        qspec sp = {NAQ_EVENT_COMPLETED, "job-t", "qt", "wt", base + offsets[i], NULL, 1, NULL, 0};
        ev[i] = sp;
    }
    qpublish_all(fx, ev, 4);
    naq_replay_opts o;
    naq_replay_opts_init(&o);
    o.query.from_seq = ev[0].seq;
    o.timing = NAQ_REPLAY_ORIGINAL;
    o.speed = 2;
    got_events g = {0};
    assert_int_equal(naq_events_replay(fx->c, &o, got, &g, NULL), NAQ_OK);
    assert_int_equal(g.n, 4);
    const double slack_ms = 15; /* the monotonic clock's millisecond rounding, twice */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(g.seq[i], ev[i].seq);
        if (i > 0) {
            double want = (offsets[i] - offsets[i - 1]) * 1000 / 2;
            if (g.at_ms[i] - g.at_ms[i - 1] < want - slack_ms)
                fail_msg("gap %d was %.0f ms, recorded %.0f ms at speed 2", i,
                         g.at_ms[i] - g.at_ms[i - 1], want);
        }
    }
    assert_true(g.at_ms[3] - g.at_ms[0] >= 600 - slack_ms);
}

static void replay_caps_long_gaps_and_refuses_a_bad_speed(void **state)
{
    qfixture *fx = *state;
    double base = qnow() - 7200;
    qspec ev[3];
    for (int i = 0; i < 3; i++) {
        qspec sp = {NAQ_EVENT_COMPLETED, "job-g", "qg", "wg", base + i * 3600, NULL, 1, NULL, 0};
        ev[i] = sp;
    }
    qpublish_all(fx, ev, 3);
    naq_replay_opts o;
    naq_replay_opts_init(&o);
    o.query.from_seq = ev[0].seq;
    o.timing = NAQ_REPLAY_ORIGINAL;
    o.max_gap_s = 0.05;
    got_events g = {0};
    int64_t t0 = naq__mono_ms();
    assert_int_equal(naq_events_replay(fx->c, &o, got, &g, NULL), NAQ_OK);
    assert_int_equal(g.n, 3);
    assert_true(naq__mono_ms() - t0 < 5000); /* not two hours */
    assert_true(g.at_ms[2] - g.at_ms[0] >= 100 - 15);
    o.speed = 0;
    got_events g2 = {0};
    assert_int_equal(naq_events_replay(fx->c, &o, got, &g2, NULL), NAQ_ERR_INVALID_ARG);
    assert_int_equal(g2.n, 0);
}

static void cli_replay_prints_matching_events_from_a_sequence(void **state)
{
    qfixture *fx = *state;
    qspec ev[12];
    publish_series(fx, ev, 12, 0);
    char env0[128];
    snprintf(env0, sizeof env0, "NAQ_URL=%s", fx->srv.url);
    const char *env[] = {env0, NULL};
    char from[32];
    snprintf(from, sizeof from, "%llu", (unsigned long long)ev[3].seq);
    const char *args[] = {"events",  "replay", "--from-seq", from,   "--type", "failed",
                          "--speed", "1000",   "--format",   "json", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(args, env, &out, &err), 0);
    /* failures are events 5, 8 and 11 */
    const char *p = out;
    for (int k = 5; k < 12; k += 3) {
        char want[64];
        snprintf(want, sizeof want, "\"nats_sequence\":%llu", (unsigned long long)ev[k].seq);
        p = strstr(p, want);
        if (p == NULL)
            fail_msg("missing or out of order: %s in\n%s", want, out);
    }
    int lines = 0;
    for (const char *c = out; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 3);
    free(out);
    free(err);
}

static const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, qsetup, qteardown)
    T(replay_from_a_sequence_delivers_every_later_event_in_order),
    T(replay_from_a_time_keeps_only_matching_events_after_it),
    T(replay_stops_at_until_at_the_limit_and_when_the_handler_asks),
    T(replay_in_original_timing_keeps_order_and_the_recorded_gaps),
    T(replay_caps_long_gaps_and_refuses_a_bad_speed),
    T(cli_replay_prints_matching_events_from_a_sequence),
#undef T
};

NAQ_TEST_MAIN(tests)
