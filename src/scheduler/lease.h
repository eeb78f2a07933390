/*
 * lease.h - the scheduler's leader lease: one key ("leader") in the KV
 * bucket naq_scheduler_lock, whose TTL is the lease.
 *
 * Taken with create-if-absent, renewed with compare-and-set on its
 * revision every lease/3, released with a compare-and-set delete. The
 * holder counts itself leader only while
 *     monotonic now - start of the last successful renewal < lease - margin
 * (margin = lease/3). The server removes the key `lease` after the write
 * that renewal made, and that write happened after the renewal started, so
 * the holder stops acting before anyone else can create the key: two
 * leaders at once are impossible. Only durations on each side are compared
 * (the client's monotonic clock, the server's own clock for the TTL), never
 * wall clocks, so clock skew between machines does not matter; the margin
 * absorbs clock-rate drift and the server's expiry granularity.
 *
 * Not thread-safe, except naq__lease_valid(), which any thread may call.
 */
#ifndef NAQ_LEASE_H
#define NAQ_LEASE_H

#include "internal.h"

typedef struct naq__lease naq__lease;

typedef enum {
    NAQ__LEASE_NO_CHANGE, /* still leader, or still not */
    NAQ__LEASE_ACQUIRED,  /* just became leader */
    NAQ__LEASE_LOST,      /* just stopped being leader (naq__lease_why says why) */
} naq__lease_change;

/* Binds the lock bucket through js, creating it with TTL = lease_ms when
 * it is missing; an existing bucket's TTL is the lease (naq__lease_ms).
 * holder_id names this candidate in the lock value. */
naq_status naq__lease_create(jsCtx *js, int replicas, const char *holder_id, int64_t lease_ms,
                             naq__sched_counters *ctr, naq__lease **out);
void naq__lease_destroy(naq__lease *l);

int64_t naq__lease_ms(const naq__lease *l);

/* Does whatever is due at monotonic time now_ms: try to acquire (every
 * second while not leader), renew (every lease/3 while leader), or notice
 * that the lease ran out. *io_error is set to 1 when a server call failed
 * for another reason than losing a race (naq_last_error says what), to 0
 * when one succeeded, and left alone when none was made. */
naq__lease_change naq__lease_step(naq__lease *l, int64_t now_ms, int *io_error);

/* Non-zero while this candidate holds a lease valid at monotonic now_ms. */
int naq__lease_valid(const naq__lease *l, int64_t now_ms);

/* Why the last NAQ__LEASE_LOST happened (static text). */
const char *naq__lease_why(const naq__lease *l);

/* Gives the lease up (compare-and-set delete), if held. */
void naq__lease_release(naq__lease *l);

#endif
