/*
 * worker_autoscale.c - how many jobs an autoscaling worker runs at once
 * (naq_worker_opts.autoscale_min/max, `naq worker --autoscale MIN:MAX`).
 *
 * The worker starts one executor thread per slot it may grow to; the
 * number of slots in use (slots_now) is what the fetcher asks for and
 * what lets an executor take a job (worker_pull.c). Changing it is a
 * store: no thread starts or stops, so a shrink never cuts a running job
 * (fewer slots only means fewer new jobs) and a grow takes effect on the
 * fetcher's next request.
 *
 * The keeper calls naq__autoscale_tick every tick. Grow: every slot has
 * been busy for NAQ_AUTOSCALE_GROW_MS while jobs wait (fetched, or
 * pending on the server as the last job message's ack subject said):
 * double, up to max; doubling reaches a burst's size in a few steps.
 * Shrink: over a window of NAQ_AUTOSCALE_SHRINK_MS at least one slot was
 * never needed: halve, but not below the most jobs that ran at once in
 * the window, nor below min. An idle worker so comes down to min in a few
 * windows, and a steady load keeps the slots it uses.
 */
#include "worker.h"

static void change(naq_worker *w, int from, int to, const char *reason, int64_t now_ms)
{
    atomic_store(&w->slots_now, to);
    naq__registry_concurrency(w->registry, from, to, reason);
    w->scale.busy_since_ms = 0;
    w->scale.window_start_ms = now_ms; /* a fresh window after any change */
    w->scale.peak = 0;
}

void naq__autoscale_tick(naq_worker *w, int64_t now_ms)
{
    naq__autoscale *a = &w->scale;
    int slots = atomic_load(&w->slots_now), running = 0;
    long long waiting = 0;
    naq__fetcher_load(w->fetcher, &running, &waiting);
    if (a->window_start_ms == 0)
        a->window_start_ms = now_ms;
    if (running > a->peak)
        a->peak = running;

    if (running >= slots && waiting > 0 && slots < w->concurrency) {
        if (a->busy_since_ms == 0)
            a->busy_since_ms = now_ms;
        else if (now_ms - a->busy_since_ms >= NAQ_AUTOSCALE_GROW_MS)
            change(w, slots, slots * 2 < w->concurrency ? slots * 2 : w->concurrency, "lag",
                   now_ms);
        return;
    }
    a->busy_since_ms = 0;
    if (now_ms - a->window_start_ms < NAQ_AUTOSCALE_SHRINK_MS)
        return;
    int to = slots / 2;
    if (to < a->peak)
        to = a->peak;
    if (to < w->autoscale_min)
        to = w->autoscale_min;
    if (to < slots)
        change(w, slots, to, "idle", now_ms);
    else {
        a->window_start_ms = now_ms;
        a->peak = 0;
    }
}
