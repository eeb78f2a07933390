/* fuzz_spool.c - the event spool reader: a spool file (and its cursor
 * file) as a crash, a full disk or someone else may have left them. The
 * first byte is the cursor's length; the cursor text follows, then the
 * spool's bytes. */
#include "fuzz.h"

#include "events/spool.h"

#include <stdio.h>
#include <unistd.h>

static int accept_record(const void *data, size_t len, void *ud)
{
    (void)data;
    *(size_t *)ud += len;
    return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (path[0] == '\0')
        snprintf(path, sizeof path, "/tmp/naq-fuzz-spool-%d", (int)getpid());
    char cursor[80];
    snprintf(cursor, sizeof cursor, "%s.cursor", path);
    size_t clen = size > 0 ? data[0] : 0;
    if (clen > size - (size > 0))
        clen = size - (size > 0);
    naq__spool_remove(path);
    if (clen > 0)
        write_file(cursor, data + 1, clen);
    size_t off = (size > 0) + clen;
    write_file(path, data + off, size - off);
    naq__spool *s = NULL;
    if (naq__spool_open(path, 0, &s) == NAQ_OK) {
        size_t bytes = 0, consumed = 0;
        naq__spool_peek(s, accept_record, &bytes);
        naq__spool_drain(s, accept_record, &bytes, &consumed);
        const char rec[] = "after";
        naq__spool_append(s, rec, sizeof rec);
        naq__spool_close(s);
    }
    naq__spool_remove(path);
    return 0;
}
