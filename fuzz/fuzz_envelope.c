/* fuzz_envelope.c - encrypted payloads as workers and readers receive them
 * (crypt.c): an envelope in a job's args, a record's "sealed" members, an
 * event with sealed details. The key is fixed (32 zero bytes, key id "fz"),
 * so seeds sealed with it reach the decryption and the JSON after it. */
#include "fuzz.h"

#include "core/crypt.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static naq__crypt *keys;

static void load_keys(void)
{
    char path[] = "/tmp/naq-fuzz-key-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    static const char line[] = "fz AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    if (fchmod(fd, 0600) != 0 || write(fd, line, sizeof line - 1) != (ssize_t)(sizeof line - 1))
        abort();
    close(fd);
    if (naq__crypt_load(path, &keys) != NAQ_OK)
        abort();
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (keys == NULL)
        load_keys();
    char *text = fuzz_cstr(data, size);
    /* As a worker: a job whose args may be sealed. */
    naq_job j;
    if (naq_job_decode(text, strlen(text), &j) == NAQ_OK && naq__crypt_is_sealed_text(j.args_json))
        naq__crypt_open_args(keys, &j);
    naq_job_clear(&j);
    /* As a reader of outcome records and dead letters. */
    json_t *o = json_loads(text, 0, NULL);
    if (json_is_object(o)) {
        const char *jid = json_string_value(json_object_get(o, "job_id"));
        naq__crypt_open_members(keys, NAQ_CRYPT_OUTCOME, jid ? jid : "", o);
        naq__crypt_show_args(keys, o);
    }
    json_decref(o);
    /* As a reader of events, with and without the key. */
    naq_event e;
    if (naq_event_decode(text, strlen(text), &e) == NAQ_OK)
        naq__crypt_open_event(keys, &e);
    naq_event_clear(&e);
    if (naq_event_decode(text, strlen(text), &e) == NAQ_OK)
        naq__crypt_open_event(NULL, &e);
    naq_event_clear(&e);
    free(text);
    return 0;
}
