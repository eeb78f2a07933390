/*
 * autoscale.h - the rule by which a pool of slots grows and shrinks
 * (autoscale.c): a worker's executors (`naq worker --autoscale`) and an
 * event processor's handler pool (`naq events webhook --autoscale`) both
 * follow it. Pure logic: the caller measures, applies the answer and
 * reports it.
 */
#ifndef NAQ_AUTOSCALE_H
#define NAQ_AUTOSCALE_H

#include <stdint.h>

/* What the rule remembers between looks; zero-initialise it. Kept by one
 * thread (the caller's ticker). */
typedef struct {
    int64_t busy_since_ms;   /* every slot busy with work waiting, since; 0 = not */
    int64_t window_start_ms; /* the shrink window */
    int peak;                /* most slots busy at once in the window */
} naq__autoscale;

/* One look at a pool that uses `slots` of min..max slots, `running` of
 * them busy, with `waiting` units of work that no slot has taken yet, at
 * now_ms (monotonic). Returns the slots to use from now on: `slots` when
 * nothing changes; otherwise *reason is "lag" (doubled, up to max, after
 * every slot was busy for NAQ_AUTOSCALE_GROW_MS while work waited) or
 * "idle" (halved, down to min and never below the window's peak, after
 * NAQ_AUTOSCALE_SHRINK_MS in which a slot was never needed). */
int naq__autoscale_step(naq__autoscale *a, int slots, int min, int max, int running,
                        long long waiting, int64_t now_ms, const char **reason);

#endif
