/* fuzz_job.c - job messages as a worker receives them (naq_job_decode),
 * the encode/decode round trip of whatever decodes, and the agreement of
 * its two readers: whatever the fast one reads, the jansson one reads the
 * same (jobs/jobs.h). */
#include "fuzz.h"

#include "jobs/jobs.h"
#include "naq/naq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fast;
    if (!naq__job_decoders_agree((const char *)data, size, &fast))
        abort();
    naq_job j;
    if (naq_job_decode((const char *)data, size, &j) == NAQ_OK) {
        char *json = NULL;
        size_t len = 0;
        if (naq_job_encode(&j, &json, &len) == NAQ_OK) {
            naq_job again;
            /* What naq wrote, naq reads. */
            if (naq_job_decode(json, len, &again) != NAQ_OK)
                abort();
            naq_job_clear(&again);
            free(json);
        }
    }
    naq_job_clear(&j);
    return 0;
}
