/*
 * heap.c - a binary min-heap of (key, item), the one the scheduler keeps
 * its schedules in by next due time and the due-time index of delayed jobs
 * keeps its buckets in (heap.h).
 *
 * When `moved` is set, every item is told its new index whenever it moves,
 * so an owner can re-key or remove an item in O(log n) without a search;
 * NAQ__HEAP_NONE tells it that it left the heap.
 */
#include "heap.h"
#include "internal.h"

#include <stdlib.h>

static void heap_set(naq__heap *h, size_t i, naq__heap_node node)
{
    h->v[i] = node;
    if (h->moved != NULL)
        h->moved(node.item, i);
}

static void sift_up(naq__heap *h, size_t i)
{
    naq__heap_node node = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->v[parent].key <= node.key)
            break;
        heap_set(h, i, h->v[parent]);
        i = parent;
    }
    heap_set(h, i, node);
}

static void sift_down(naq__heap *h, size_t i)
{
    naq__heap_node node = h->v[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && h->v[child + 1].key < h->v[child].key)
            child++;
        if (node.key <= h->v[child].key)
            break;
        heap_set(h, i, h->v[child]);
        i = child;
    }
    heap_set(h, i, node);
}

naq_status naq__heap_push(naq__heap *h, int64_t key, void *item)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        naq__heap_node *v = realloc(h->v, cap * sizeof *v);
        if (v == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory growing a heap to %zu", cap);
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n].key = key;
    h->v[h->n].item = item;
    sift_up(h, h->n++);
    return NAQ_OK;
}

naq__heap_node naq__heap_pop(naq__heap *h)
{
    naq__heap_node top = h->v[0];
    naq__heap_remove(h, 0);
    return top;
}

void naq__heap_remove(naq__heap *h, size_t index)
{
    if (h->moved != NULL)
        h->moved(h->v[index].item, NAQ__HEAP_NONE);
    h->n--;
    if (index == h->n)
        return;
    h->v[index] = h->v[h->n];
    /* The moved-in node may belong above or below its new place. */
    sift_up(h, index);
    sift_down(h, index);
}

void naq__heap_rekey(naq__heap *h, size_t index, int64_t key)
{
    h->v[index].key = key;
    sift_up(h, index);
    sift_down(h, index);
}

void naq__heap_free(naq__heap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
