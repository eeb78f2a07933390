/* fuzz_duration.c - the small text values that come from flags, the
 * environment and job files: durations, sizes, log levels, priorities,
 * retry policies, event query times, NATS URLs (validated, and redacted before printing). */
#include "fuzz.h"

#include "naq/naq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    int64_t v;
    naq_parse_duration_ms(s, &v);
    naq_parse_size(s, &v);
    naq_log_level level;
    naq_parse_log_level(s, &level);
    int prio;
    naq_priority_parse(s, &prio);
    naq_retry_policy rp;
    naq_retry_policy_init(&rp); /* parse keeps retry_on / skip_on */
    naq_retry_policy_parse(s, &rp);
    naq_url_validate("fuzz", s);
    double t;
    if (naq_parse_time(s, 1796409791.0, &t) == NAQ_OK && !(t == t))
        abort(); /* a time is a number */
    int64_t ms;
    naq_parse_time_ms(s, 1796409791000LL, &ms); /* schedules' --at */
    char out[64], big[4096];
    naq_url_redact(s, out, sizeof out);
    naq_url_redact(s, big, sizeof big);
    /* What is redacted keeps no password: nothing after "user:" up to the
     * '@' survives. */
    if (strchr(s, '@') == NULL && strlen(s) < sizeof big && strcmp(s, big) != 0)
        abort();
    free(s);
    return 0;
}
