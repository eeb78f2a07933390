/*
 * autoscale.c - the grow / shrink rule of autoscale.h.
 *
 * Grow by doubling: a burst's size is reached in a few steps of
 * NAQ_AUTOSCALE_GROW_MS each. Shrink by halving over windows of
 * NAQ_AUTOSCALE_SHRINK_MS, never below the most slots busy at once in
 * the window: an idle pool comes down to min in a few windows, and a
 * steady load keeps the slots it uses. Every change starts a fresh window.
 */
#include "autoscale.h"

#include "naq/worker.h" /* NAQ_AUTOSCALE_GROW_MS, NAQ_AUTOSCALE_SHRINK_MS */

static int changed(naq__autoscale *a, int to, int64_t now_ms)
{
    a->busy_since_ms = 0;
    a->window_start_ms = now_ms;
    a->peak = 0;
    return to;
}

int naq__autoscale_step(naq__autoscale *a, int slots, int min, int max, int running,
                        long long waiting, int64_t now_ms, const char **reason)
{
    if (a->window_start_ms == 0)
        a->window_start_ms = now_ms;
    if (running > a->peak)
        a->peak = running;

    if (running >= slots && waiting > 0 && slots < max) {
        if (a->busy_since_ms == 0)
            a->busy_since_ms = now_ms;
        else if (now_ms - a->busy_since_ms >= NAQ_AUTOSCALE_GROW_MS) {
            *reason = "lag";
            return changed(a, slots * 2 < max ? slots * 2 : max, now_ms);
        }
        return slots;
    }
    a->busy_since_ms = 0;
    if (now_ms - a->window_start_ms < NAQ_AUTOSCALE_SHRINK_MS)
        return slots;
    int to = slots / 2;
    if (to < a->peak)
        to = a->peak;
    if (to < min)
        to = min;
    if (to < slots) {
        *reason = "idle";
        return changed(a, to, now_ms);
    }
    a->window_start_ms = now_ms;
    a->peak = 0;
    return slots;
}
