/*
 * msgmap.c - message pointer -> value (msgmap.h). A chained hash table of
 * fixed width: entries live only while an acknowledgement is awaited, a
 * few thousand at most, so it never needs to grow.
 */
#include "msgmap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define BUCKETS 4096

typedef struct entry {
    struct entry *next;
    const void *key;
    void *val;
    int64_t put_ms; /* monotonic: how long its acknowledgement is awaited */
} entry;

struct naq__msgmap {
    pthread_mutex_t lock;
    atomic_size_t count;
    entry *buckets[BUCKETS];
};

static size_t slot(const void *key)
{
    uintptr_t k = (uintptr_t)key;
    k ^= k >> 17; /* allocations are aligned: mix the high bits in */
    return (size_t)(k * 0x9E3779B97F4A7C15ULL >> 40) % BUCKETS;
}

naq_status naq__msgmap_create(naq__msgmap **out)
{
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory creating a message map");
    pthread_mutex_init(&(*out)->lock, NULL);
    return NAQ_OK;
}

void naq__msgmap_destroy(naq__msgmap *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        for (entry *e = m->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

naq_status naq__msgmap_put(naq__msgmap *m, const void *key, void *val)
{
    entry *e = malloc(sizeof *e);
    if (e == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory tracking a message");
    e->key = key;
    e->val = val;
    e->put_ms = naq__mono_ms();
    size_t i = slot(key);
    pthread_mutex_lock(&m->lock);
    e->next = m->buckets[i];
    m->buckets[i] = e;
    atomic_fetch_add(&m->count, 1);
    pthread_mutex_unlock(&m->lock);
    return NAQ_OK;
}

void *naq__msgmap_take(naq__msgmap *m, const void *key)
{
    void *val = NULL;
    size_t i = slot(key);
    pthread_mutex_lock(&m->lock);
    for (entry **p = &m->buckets[i]; *p != NULL; p = &(*p)->next) {
        if ((*p)->key == key) {
            entry *e = *p;
            *p = e->next;
            val = e->val;
            free(e);
            atomic_fetch_sub(&m->count, 1);
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return val;
}

size_t naq__msgmap_count(naq__msgmap *m)
{
    return atomic_load_explicit(&m->count, memory_order_relaxed);
}

int64_t naq__msgmap_oldest_ms(naq__msgmap *m)
{
    int64_t oldest = 0;
    if (naq__msgmap_count(m) == 0)
        return 0;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < BUCKETS; i++) {
        for (const entry *e = m->buckets[i]; e != NULL; e = e->next) {
            if (oldest == 0 || e->put_ms < oldest)
                oldest = e->put_ms;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return oldest;
}
