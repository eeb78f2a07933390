/*
 * web_live.c - the background threads of `naq web`:
 *   - the live window behind the overview's rates, latency percentiles and
 *     recent failures: one thread follows the event stream
 *     (naq_events_stream, with a tail for context) into a naq_live window,
 *     as `naq top` does. Requests only take snapshots of the window (in
 *     memory), so the overview never reads the event stream;
 *   - the overview's rollup figures, read at the start and again every
 *     WEB_ROLLUPS_REFRESH_S while someone looks (web_int.h says why);
 *   - a rollup maintainer (naq_rollup_run), so the totals and hourly charts
 *     (web_api.c) are current even where no `naq scheduler` folds events.
 *     Maintainers never count an event twice, so running one beside
 *     others costs a little work and changes no figure.
 */
#include "web_int.h"

#include "internal.h" /* naq__fail, naq__nap, naq__live_follow */

#include <stdio.h>
#include <string.h>
#include <time.h>

static void stream_broke(const char *why, void *ud)
{
    naq_web *w = ud;
    pthread_mutex_lock(&w->lock);
    snprintf(w->live_error, sizeof w->live_error, "event stream: %s; retrying", why);
    pthread_mutex_unlock(&w->lock);
}

static void *live_main(void *arg)
{
    naq_web *w = arg;
    naq__live_follow(w->c, w->live, w->live_tail, &w->stopping, stream_broke, w);
    return NULL;
}

static void *rollup_main(void *arg)
{
    naq_web *w = arg;
    naq_status s = naq_rollup_run(w->c, &w->stopping);
    if (s != NAQ_OK) {
        pthread_mutex_lock(&w->lock);
        snprintf(w->rollup_error, sizeof w->rollup_error, "rollup maintainer stopped: %s",
                 naq_last_error());
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *rollups_main(void *arg)
{
    naq_web *w = arg;
    while (!w->stopping) {
        double now = wall_now();
        pthread_mutex_lock(&w->lock);
        int watched = now - w->rollups_wanted_at < WEB_ROLLUPS_IDLE_S;
        int due = now - w->rollups_cached_at >=
                  (watched ? WEB_ROLLUPS_REFRESH_S : WEB_ROLLUPS_IDLE_REFRESH_S);
        pthread_mutex_unlock(&w->lock);
        if (due) {
            naq_status s = NAQ_OK;
            json_t *v = web_rollups_read(w, WEB_ROLLUPS_HOURS, now, &s);
            web_rollups_store(w, v, now); /* a failure leaves the old one to age */
            json_decref(v);
        }
        naq__nap(250, &w->stopping);
    }
    return NULL;
}

naq_status web_live_start(naq_web *w)
{
    naq_status s = naq_live_create(&w->live);
    if (s != NAQ_OK)
        return s;
    w->have_live_thread = pthread_create(&w->live_thread, NULL, live_main, w) == 0;
    if (!w->have_live_thread)
        return naq__fail(NAQ_ERR_NO_MEMORY, "cannot start the live event thread of naq web");
    w->have_rollups_thread = pthread_create(&w->rollups_thread, NULL, rollups_main, w) == 0;
    if (!w->have_rollups_thread)
        return naq__fail(NAQ_ERR_NO_MEMORY, "cannot start the stats thread of naq web");
    if (w->rollup) {
        w->have_rollup_thread = pthread_create(&w->rollup_thread, NULL, rollup_main, w) == 0;
        if (!w->have_rollup_thread)
            return naq__fail(NAQ_ERR_NO_MEMORY, "cannot start the rollup thread of naq web");
    }
    return NAQ_OK;
}

void web_live_stop(naq_web *w)
{
    w->stopping = 1;
    if (w->have_live_thread)
        pthread_join(w->live_thread, NULL);
    w->have_live_thread = 0;
    if (w->have_rollup_thread)
        pthread_join(w->rollup_thread, NULL);
    w->have_rollup_thread = 0;
    if (w->have_rollups_thread)
        pthread_join(w->rollups_thread, NULL);
    w->have_rollups_thread = 0;
    free(w->rollups_cache);
    w->rollups_cache = NULL;
    naq_live_destroy(w->live);
    w->live = NULL;
}
