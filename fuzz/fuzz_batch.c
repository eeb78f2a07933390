/* fuzz_batch.c - `naq enqueue --batch FILE`: JSONL job files. The input is
 * the file; the command runs as the CLI does. NAQ_URL points at a port
 * where nothing listens, so a file whose every line is valid ends in a
 * fast "cannot reach NATS" instead of enqueueing. The command's messages
 * (one per bad line) go to /dev/null. */
#include "fuzz.h"

#include "cli.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    static int devnull = -1;
    if (path[0] == '\0') {
        snprintf(path, sizeof path, "/tmp/naq-fuzz-batch-%d.jsonl", (int)getpid());
        setenv("NAQ_URL", "nats://127.0.0.1:1", 1);
        setenv("NAQ_NATS_CONNECTION_TIMEOUT", "100ms", 1);
        devnull = open("/dev/null", O_WRONLY);
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    char a0[] = "naq enqueue", a1[] = "--batch", a2[] = "-q", a3[] = "fuzz";
    char *argv[] = {a0, a1, path, a2, a3, NULL};
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), err = dup(2);
    dup2(devnull, 1);
    dup2(devnull, 2);
    optind = 1;
    naq_cmd_enqueue(5, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    return 0;
}
