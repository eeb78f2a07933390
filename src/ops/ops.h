/*
 * ops.h - what the operator's modules (src/ops/) share, private to them.
 */
#ifndef NAQ_SRC_OPS_H
#define NAQ_SRC_OPS_H

#include "internal.h"

/* "naq_<queue>_p<digit>" -> queue, priority; 0 when the name is not a
 * job queue's consumer (depths.c). */
int naq__parse_queue_consumer(const char *name, char *queue, size_t cap, int *prio);

#endif /* NAQ_SRC_OPS_H */
