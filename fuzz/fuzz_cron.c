/* fuzz_cron.c - cron expressions of schedules (naq_cron_parse) and the
 * next fire time of whatever parses, in UTC and in a zone with DST. The
 * first byte picks the zone and the start time. */
#include "fuzz.h"

#include "naq/naq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const char *const zones[] = {NULL,
                                        "UTC",
                                        "Europe/Paris",
                                        "America/St_Johns",
                                        "Australia/Lord_Howe",
                                        "../../etc/passwd",
                                        "No/Such_Zone",
                                        ""};
    const char *tz = zones[data[0] & 7];
    int64_t after = 1700000000LL + (int64_t)(data[0] >> 3) * 86400 * 37;
    char *expr = fuzz_cstr(data + 1, size - 1);
    naq_cron c;
    if (naq_cron_parse(expr, &c) == NAQ_OK) {
        int64_t next = 0;
        if (naq_cron_next(&c, after, tz, &next) == NAQ_OK && next <= after)
            abort(); /* "strictly after" */
    }
    free(expr);
    return 0;
}
