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
    char *buf;     /* heap; the caller takes it with naq__jsonw_finish */
    size_t len, cap;
    int failed;    /* an allocation failed; the writer ignores further calls */
    int need_comma;
} naq__jsonw;

void naq__jsonw_init(naq__jsonw *w, size_t initial);
void naq__jsonw_begin(naq__jsonw *w);                      /* { */
void naq__jsonw_str(naq__jsonw *w, const char *key, const char *v);
void naq__jsonw_int(naq__jsonw *w, const char *key, long long v);
/* Doubles with 17 significant digits (exact round trip), always with a
 * fraction or exponent so readers see a real ("5.0", not "5"). */
void naq__jsonw_real(naq__jsonw *w, const char *key, double v);
/* Appends already-valid compact JSON text as the value of key. */
void naq__jsonw_raw(naq__jsonw *w, const char *key, const char *json, size_t len);
/* Closes the object; returns the NUL-terminated text (heap, free()) and its
 * length, or NULL when an allocation failed (everything is then freed). */
char *naq__jsonw_finish(naq__jsonw *w, size_t *len);

#endif
