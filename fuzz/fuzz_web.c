/* fuzz_web.c - what `naq web` reads from a request (cli/web/web_parse.c):
 * the route of a GET and of a POST path, whole-number query arguments
 * and Last-Event-ID, the Host and Origin checks, and the JSON body of a
 * dead-letter action. The input is tried whole as each of them, and split
 * at its first newline as "path\nbody" and "origin\nhost". */
#include "fuzz.h"

#include "web_parse.h"

static void route(int post, const char *path)
{
    web_route r;
    web_route_parse(post, path, &r);
    size_t n = strlen(path);
    /* The id points into the path; the name is a NUL-ended copy. */
    if (r.id != NULL && (r.id < path || r.id > path + n))
        abort();
    if ((r.kind == WEB_ROUTE_SCHEDULE_PAUSE || r.kind == WEB_ROUTE_SCHEDULE_RESUME) &&
        (r.name[0] == '\0' || strnlen(r.name, sizeof r.name) == sizeof r.name))
        abort();
    if (post && r.kind != WEB_ROUTE_NONE && r.kind < WEB_ROUTE_DLQ_RETRY)
        abort(); /* a POST never reaches a read */
    if (!post && r.kind >= WEB_ROUTE_DLQ_RETRY)
        abort(); /* nor a GET an action */
}

static void number(const char *text, long long min, long long max)
{
    long long v = min - 1;
    if (web_parse_int(text, min, max, &v) && (v < min || v > max))
        abort();
}

static void dlq_body(const char *body, size_t len)
{
    web_dlq_body b;
    if (web_dlq_body_parse(body, len, &b) == NAQ_OK) {
        if (b.seqs != NULL && (b.nseqs == 0 || b.nseqs > WEB_SEQS_MAX))
            abort();
        for (size_t i = 0; i < b.nseqs; i++)
            if (b.seqs[i] == 0)
                abort();
    }
    web_dlq_body_clear(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    route(0, s);
    route(1, s);
    number(s, 1, 168);
    number(s, 0, 1LL << 62);
    number(s, 1, INT64_MAX);
    web_host_is_loopback(s);
    dlq_body((const char *)data, size);
    char *nl = strchr(s, '\n');
    if (nl != NULL) {
        *nl = '\0';
        route(1, s);
        dlq_body(nl + 1, size - (size_t)(nl + 1 - s));
        if (web_origin_is_host(s, nl + 1) && strncmp(s, "http://", 7) != 0 &&
            strncmp(s, "https://", 8) != 0)
            abort(); /* only an http(s) origin names a host */
    }
    free(s);
    return 0;
}
