/*
 * jsonw.h - a small streaming JSON writer for the hot paths.
 *
 * Building a jansson tree to print one flat object costs an allocation per
 * field; the event logger encodes every event on the job path, so events
 * are written straight into one growing buffer instead. Strings are escaped
 * per RFC 8259 and invalid UTF-8 is replaced by U+FFFD, so the output is
 * always valid JSON. Decoding stays with jansson.
 */
#ifndef NAQ_JSONW_H
#define NAQ_JSONW_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf; /* the text; heap unless it is still the caller's buffer */
    size_t len, cap;
    int failed; /* an allocation failed; the writer ignores further calls */
    int need_comma;
    char *borrowed; /* the caller's buffer given to naq__jsonw_init_buf */
} naq__jsonw;

void naq__jsonw_init(naq__jsonw *w, size_t initial);
/* Writes into the caller's buffer first (no allocation while it fits),
 * moving to the heap only when it is too small. */
void naq__jsonw_init_buf(naq__jsonw *w, char *buf, size_t cap);
void naq__jsonw_begin(naq__jsonw *w); /* { */
void naq__jsonw_str(naq__jsonw *w, const char *key, const char *v);
void naq__jsonw_int(naq__jsonw *w, const char *key, long long v);
/* Doubles as the shortest text that reads back exactly (2.418, not
 * 2.4180000000000001), always with a fraction or exponent so readers see a
 * real ("5.0", not "5"). */
void naq__jsonw_real(naq__jsonw *w, const char *key, double v);
/* Appends already-valid compact JSON text as the value of key. */
void naq__jsonw_raw(naq__jsonw *w, const char *key, const char *json, size_t len);
/* Fixed-point number with `decimals` digits after the point (at most 9),
 * without printf: timestamps and durations are written on every event. */
void naq__jsonw_fixed(naq__jsonw *w, const char *key, double v, int decimals);
/* Closes the object; returns the NUL-terminated text and its length, or
 * NULL when an allocation failed (everything is then freed). The text is
 * heap (free()) unless it is the buffer given to naq__jsonw_init_buf. */
char *naq__jsonw_finish(naq__jsonw *w, size_t *len);
/* Frees what the writer holds (after a failure, or to abandon it). */
void naq__jsonw_discard(naq__jsonw *w);

/* The flags every naq__json_dumps of a record or event uses (jansson's). */
#define NAQ__JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(17))

/* json_dumps(v, flags) with every real printed as naq__jsonw_real prints
 * it (shortest round-trip text). Returns heap text (free()) or NULL. */
struct json_t;
char *naq__json_dumps(const struct json_t *v, size_t flags);

#endif
