/*
 * id.c - job ids (UUIDv7 in hex) and the one check of every name that
 * becomes a subject token or a key (ids, queues, functions, schedules):
 * each kind keeps its own alphabet and length, the messages one shape.
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

/* ---- names ---- */

static int word_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

/* Refuses name[i] (the character at position i + 1) when the alphabet does
 * not allow it, saying which character and what to use instead. */
static naq_status check_char(const char *what, const char *name, size_t i,
                             naq__name_alphabet alphabet)
{
    unsigned char ch = (unsigned char)name[i];
    const char *hint = alphabet == NAQ__NAME_PRINTABLE ? "letters, digits, '.', '-' or '_'"
                                                       : "letters, digits, '-' or '_'";
    if (alphabet == NAQ__NAME_WORD) {
        if (word_char(ch))
            return NAQ_OK;
        return naq__fail(NAQ_ERR_INVALID_ARG, "%s '%s' contains '%c' at position %zu; use %s", what,
                         name, ch, i + 1, hint);
    }
    if (ch <= 0x20 || ch >= 0x7f)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "%s '%s' contains white space or a non-printable character at "
                         "position %zu; use %s",
                         what, name, i + 1, hint);
    if (alphabet == NAQ__NAME_TOKEN && (ch == '.' || ch == '*' || ch == '>'))
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "%s '%s' contains '%c', which NATS subjects reserve; use %s", what, name,
                         ch, hint);
    return NAQ_OK;
}

naq_status naq__name_validate(const char *what, const char *name, size_t max,
                              naq__name_alphabet alphabet)
{
    if (name == NULL || name[0] == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG, "%s is empty", what);
    size_t n = strlen(name);
    if (n > max)
        return naq__fail(NAQ_ERR_INVALID_ARG, "%s is %zu characters long; at most %zu are allowed",
                         what, n, max);
    for (size_t i = 0; i < n; i++) {
        naq_status s = check_char(what, name, i, alphabet);
        if (s != NAQ_OK)
            return s;
    }
    return NAQ_OK;
}

naq_status naq_id_validate(const char *what, const char *id)
{
    return naq__name_validate(what, id, NAQ_ID_MAX, NAQ__NAME_TOKEN);
}

int naq__join_if_fits(char *out, size_t max, const char *a, char sep, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na + 1 + nb > max)
        return 0;
    memcpy(out, a, na);
    out[na] = sep;
    memcpy(out + na + 1, b, nb + 1);
    return 1;
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
    if (naq__join_if_fits(out, NAQ_ID_MAX, tag, '-', key))
        return;
    size_t nk = strlen(key);
    /* Two independent 64-bit hashes: a collision inside the 2-minute
     * duplicate window is out of reach. */
    snprintf(out, NAQ_ID_SIZE, "%s-%016llx%016llx", tag,
             (unsigned long long)naq__fnv1a(key, nk, NAQ__FNV_OFFSET),
             (unsigned long long)naq__fnv1a(key, nk, NAQ__FNV_OFFSET2));
}
