/*
 * fuzz.h - what the libFuzzer targets share (scripts/fuzz.sh builds and
 * runs them; fuzz/corpus/<target>/ holds their seeds and the regression
 * inputs of every crash found).
 */
#ifndef NAQ_FUZZ_H
#define NAQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a NUL-terminated heap string (free() it): most parsers
 * take C strings, and an embedded NUL must just end the text early. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
