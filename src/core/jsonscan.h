/*
 * jsonscan.h - a validating JSON scanner that builds no tree: the job
 * decoder's fast path on the worker (jobs/job.c).
 *
 * jansson's json_loadb allocates a node per value and a hash table per
 * object; for the ~300 byte job every worker decodes, that was a third of
 * the executor's CPU (docs/benchmarks.md). The scanner checks the text
 * and records where each top-level member lies, without copying.
 *
 * It is sure or it is not: every text it accepts, json_loadb (flags 0)
 * accepts too, with the same members. What it is not sure of (a \u0000
 * escape, a lone surrogate, an integer beyond 64 bits, nesting deeper
 * than NAQ__JSCAN_DEPTH, more members than it holds, invalid JSON) it
 * refuses, and the caller decodes with jansson, which then reports the
 * error in its own words.
 */
#ifndef NAQ_JSONSCAN_H
#define NAQ_JSONSCAN_H

#include <stddef.h>

#define NAQ__JSCAN_DEPTH 64
#define NAQ__JSCAN_MEMBERS 32

typedef enum {
    NAQ__JV_STRING,
    NAQ__JV_INTEGER, /* a number with no fraction and no exponent */
    NAQ__JV_REAL,
    NAQ__JV_OBJECT,
    NAQ__JV_ARRAY,
    NAQ__JV_TRUE,
    NAQ__JV_FALSE,
    NAQ__JV_NULL,
} naq__jv_type;

/* A value's text in the scanned buffer (a string's with its quotes). */
typedef struct {
    const char *text;
    size_t len;
    naq__jv_type type;
    int escaped; /* a backslash in it (strings, objects, arrays) */
    int spaced;  /* white space between its tokens (objects, arrays) */
} naq__jv;

typedef struct {
    const char *key; /* not NUL-terminated; never escaped (else refused) */
    size_t key_len;
    naq__jv value;
} naq__jmember;

/* Scans `len` bytes holding one JSON object. Returns the number of
 * members (0..NAQ__JSCAN_MEMBERS) in m, a key given twice kept once with
 * its last value (as jansson does), or -1 when not sure (see above); a
 * key with an escape is refused too. */
int naq__jscan_object(const char *json, size_t len, naq__jmember *m);

/* The member named key, or NULL. */
const naq__jv *naq__jscan_get(const naq__jmember *m, int n, const char *key);

#endif
