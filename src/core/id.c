/*
 * id.c - job ids (UUIDv7 in hex) and subject-token validation.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Ids are made for every event on the job path, so the random bits come
 * from a per-thread xoshiro256** generator seeded once from getrandom()
 * (a syscall per id cost more than the rest of the id). 74 random bits per
 * id make a collision within a millisecond negligible. */
static _Thread_local uint64_t rng[4];
static _Thread_local int rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* A forked child must not repeat its parent's ids: reseed after fork. */
static void reseed_after_fork(void)
{
    rng_seeded = 0;
}
static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, reseed_after_fork);
}
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static uint64_t next_random(void)
{
    if (!rng_seeded) {
        pthread_once(&atfork_once, register_atfork);
        size_t got = 0;
        unsigned char *p = (unsigned char *)rng;
        while (got < sizeof rng) {
            ssize_t n = getrandom(p + got, sizeof rng - got, 0);
            if (n > 0)
                got += (size_t)n;
        }
        rng[0] |= 1; /* never the all-zero state */
        rng_seeded = 1;
    }
    uint64_t result = rotl(rng[1] * 5, 7) * 9;
    uint64_t t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

void naq_id_new(char out[NAQ_ID_SIZE])
{
    unsigned char b[16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t r1 = next_random(), r2 = next_random();
    memcpy(b + 6, &r1, 8);
    memcpy(b + 14, &r2, 2);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[32] = '\0';
}

naq_status naq_id_validate(const char *what, const char *id)
{
    if (id == NULL || id[0] == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG, "%s is empty", what);
    size_t n = strlen(id);
    if (n > NAQ_ID_MAX)
        return naq__fail(NAQ_ERR_INVALID_ARG, "%s is %zu characters long; at most %d are allowed",
                         what, n, NAQ_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (ch <= 0x20 || ch >= 0x7f)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "%s '%s' contains white space or a non-printable character at "
                             "position %zu; use letters, digits, '-' or '_'",
                             what, id, i + 1);
        if (ch == '.' || ch == '*' || ch == '>')
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "%s '%s' contains '%c', which NATS subjects reserve; use letters, "
                             "digits, '-' or '_'",
                             what, id, ch);
    }
    return NAQ_OK;
}

void naq__host_pid_id(char out[NAQ_ID_SIZE])
{
    char host[65] = "";
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "worker");
    host[strcspn(host, ".")] = '\0';
    for (char *p = host; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch >= 0x7f || ch == '*' || ch == '>')
            *p = '-';
    }
    unsigned char r[2] = {0, 0};
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        r[0] = (unsigned char)(naq__mono_ms() & 0xff);
        r[1] = (unsigned char)(getpid() & 0xff);
    }
    snprintf(out, NAQ_ID_SIZE, "%s-%ld-%02x%02x", host[0] ? host : "worker", (long)getpid(), r[0],
             r[1]);
}

/* ---- ids derived from a key ---- */

/* FNV-1a, 64 bits: short keys, no allocation, and a second offset basis
 * gives a second, independent hash where one 64-bit value is too few. */
uint64_t naq__fnv1a(const void *data, size_t len, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

void naq__derived_id(const char *tag, const char *key, char out[NAQ_ID_SIZE])
{
    size_t nt = strlen(tag), nk = strlen(key);
    if (nt + 1 + nk <= NAQ_ID_MAX) {
        memcpy(out, tag, nt);
        out[nt] = '-';
        memcpy(out + nt + 1, key, nk + 1);
        return;
    }
    /* Two independent 64-bit hashes: a collision inside the 2-minute
     * duplicate window is out of reach. */
    snprintf(out, NAQ_ID_SIZE, "%s-%016llx%016llx", tag,
             (unsigned long long)naq__fnv1a(key, nk, NAQ__FNV_OFFSET),
             (unsigned long long)naq__fnv1a(key, nk, NAQ__FNV_OFFSET2));
}
