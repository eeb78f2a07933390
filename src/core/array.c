/*
 * array.c - the one way naq's growable arrays grow: doubling, from a first
 * capacity each caller picks for its typical size, so that n appends cost
 * O(n) copies in all. Callers keep their own (pointer, count, capacity);
 * this only makes room.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void *naq__array_grow(void *arrayp, size_t *cap, size_t elem, size_t first)
{
    /* arrayp is a T **; its pointer is read and written as bytes, so any
     * element type can come through one function. */
    void *v;
    memcpy(&v, arrayp, sizeof v);
    size_t ncap = *cap ? *cap * 2 : first;
    void *grown = realloc(v, ncap * elem);
    if (grown == NULL)
        return NULL;
    memcpy(arrayp, &grown, sizeof grown);
    *cap = ncap;
    return grown;
}
