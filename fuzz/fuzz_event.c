/* fuzz_event.c - events as readers and processors receive them
 * (naq_event_decode), and the round trip of whatever decodes. */
#include "fuzz.h"

#include "naq/naq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    naq_event e;
    if (naq_event_decode((const char *)data, size, &e) == NAQ_OK) {
        char *json = NULL;
        size_t len = 0;
        if (naq_event_encode(&e, &json, &len) == NAQ_OK) {
            naq_event again;
            if (naq_event_decode(json, len, &again) != NAQ_OK)
                abort();
            naq_event_clear(&again);
            free(json);
        }
    }
    naq_event_clear(&e);
    return 0;
}
