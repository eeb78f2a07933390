/*
 * heap.h - a binary min-heap of (key, item) (heap.c): the scheduler's
 * schedules by due time and the delayed jobs' due buckets.
 */
#ifndef NAQ_CORE_HEAP_H
#define NAQ_CORE_HEAP_H

#include "internal.h"

/* A binary min-heap of (key, item). When `moved` is set it is
 * told every item's new index, so an item can be re-keyed or removed. */
typedef struct {
    int64_t key;
    void *item;
} naq__heap_node;
typedef struct {
    naq__heap_node *v;
    size_t n, cap;
    void (*moved)(void *item, size_t index);
} naq__heap;
#define NAQ__HEAP_NONE ((size_t)-1)
naq_status naq__heap_push(naq__heap *h, int64_t key, void *item);
/* Removes and returns the smallest node; h->n must be > 0. */
naq__heap_node naq__heap_pop(naq__heap *h);
void naq__heap_remove(naq__heap *h, size_t index);
void naq__heap_rekey(naq__heap *h, size_t index, int64_t key);
void naq__heap_free(naq__heap *h);

#endif /* NAQ_CORE_HEAP_H */
