/*
 * msgmap.h - a small thread-safe map from a message pointer to a value.
 *
 * nats.c hands an asynchronous publish's acknowledgement to one handler per
 * JetStream context, with the natsMsg that was published and nothing else.
 * Code that must act on one particular message's acknowledgement (the
 * logger's confirmed events, the worker's outcome records) keeps what it
 * needs here, under the message's address, until the acknowledgement comes.
 * Each entry also keeps when it was put, so that its owner can tell an
 * acknowledgement that is overdue (naq__msgmap_oldest_ms) without asking
 * nats.c for a deadline per publish (MaxWait), which in nats.c 3.4.1 costs
 * a timer wake-up and, at the deadline, a timeout message per publish,
 * acknowledged or not (docs/benchmarks.md, "One thread per job's messages").
 */
#ifndef NAQ_MSGMAP_H
#define NAQ_MSGMAP_H

#include "internal.h"

#include <stddef.h>

typedef struct naq__msgmap naq__msgmap;

/* *out is heap: naq__msgmap_destroy it. */
naq_status naq__msgmap_create(naq__msgmap **out);
/* Frees the map, not the values left in it. Accepts NULL. */
void naq__msgmap_destroy(naq__msgmap *m);
/* Stores val under key (a key is stored at most once). NAQ_ERR_NO_MEMORY
 * when it cannot. */
naq_status naq__msgmap_put(naq__msgmap *m, const void *key, void *val);
/* Removes key and returns its value, or NULL when absent. */
void *naq__msgmap_take(naq__msgmap *m, const void *key);
/* Entries stored; cheap, without the lock (a hint for fast paths). */
size_t naq__msgmap_count(naq__msgmap *m);
/* Monotonic ms (naq__mono_ms) at which the oldest entry was put; 0 when
 * the map is empty. Scans the table: call it on a timer, not per message. */
int64_t naq__msgmap_oldest_ms(naq__msgmap *m);

#endif
