/*
 * replay.c - delivering stored events again, to a handler, at full speed or
 * in their original timing.
 *
 * A replay is a range read (query.c) with the same filters as a listing.
 * In original timing each event is due `gap / speed` after the previous
 * one, where gap is the difference of their timestamps; dues accumulate
 * (due += gap) so time spent in the handler is not added on top of the
 * recorded gaps, and a replay that falls behind catches up without
 * sleeping. Sleeps are cut into slices so *stop is seen within 100 ms.
 */
#include "events.h"

#include <math.h>
#include <string.h>
#include <time.h>

#define SLICE_MS 100

void naq_replay_opts_init(naq_replay_opts *o)
{
    memset(o, 0, sizeof *o);
    naq_query_init(&o->query);
    o->timing = NAQ_REPLAY_FAST;
    o->speed = 1.0;
}

typedef struct {
    const naq_replay_opts *o;
    naq_event_fn fn;
    void *user;
    size_t skip;
    uint64_t delivered;
    double prev_ts; /* timestamp of the previous delivered event; 0 = none yet */
    double due_ms;  /* monotonic time the next event is due at */
} replay_ctx;

static void sleep_until(double due_ms, const volatile int *stop)
{
    for (;;) {
        if (stop != NULL && *stop)
            return;
        double left = due_ms - (double)naq__mono_ms();
        if (left <= 0)
            return;
        if (left > SLICE_MS)
            left = SLICE_MS;
        naq__sleep_us((int64_t)(left * 1000));
    }
}

static int replay_one(const naq_event *e, int64_t stored_ns, void *ud)
{
    (void)stored_ns;
    replay_ctx *x = ud;
    const naq_replay_opts *o = x->o;
    if (x->skip > 0) {
        x->skip--;
        return 0;
    }
    if (o->query.limit > 0 && x->delivered >= o->query.limit)
        return 1;
    if (o->timing == NAQ_REPLAY_ORIGINAL) {
        if (x->prev_ts == 0) {
            x->due_ms = (double)naq__mono_ms();
        } else {
            double gap_ms = (e->timestamp - x->prev_ts) * 1000.0 / o->speed;
            if (gap_ms < 0) /* clock skew between writers: do not wait */
                gap_ms = 0;
            if (o->max_gap_s > 0 && gap_ms > o->max_gap_s * 1000.0)
                gap_ms = o->max_gap_s * 1000.0;
            x->due_ms += gap_ms;
            sleep_until(x->due_ms, o->query.stop);
            if (o->query.stop != NULL && *o->query.stop)
                return 1;
        }
        x->prev_ts = e->timestamp;
    }
    x->delivered++;
    if (x->fn(e, x->user))
        return 1;
    return o->query.limit > 0 && x->delivered >= o->query.limit;
}

naq_status naq_events_replay(naq_client *c, const naq_replay_opts *o, naq_event_fn fn, void *user,
                             uint64_t *delivered)
{
    if (delivered != NULL)
        *delivered = 0;
    if (c == NULL || o == NULL || fn == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "naq_events_replay needs a client, options and a "
                                              "handler");
    if (o->timing == NAQ_REPLAY_ORIGINAL && !(o->speed > 0 && isfinite(o->speed)))
        return naq__fail(NAQ_ERR_INVALID_ARG, "replay speed must be above 0, not %g", o->speed);
    if (o->max_gap_s < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG, "max gap must be 0 (none) or more");
    replay_ctx x = {o, fn, user, o->query.offset, 0, 0, 0};
    naq_status s = naq__query_read(c, &o->query, replay_one, &x, NULL);
    if (delivered != NULL)
        *delivered = x.delivered;
    return s;
}
