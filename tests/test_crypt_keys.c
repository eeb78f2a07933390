/*
 * test_crypt_keys.c - payload encryption without a server (crypt.c): the
 * key file, the envelope and what it is bound to, sealed events. The
 * end-to-end behaviour through a server is in test_crypt.c.
 */
#include "harness.h"

#include "core/crypt.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char a[96], b[96], ab[96]; /* key files: A, B, and A then B */
} keys;

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 4096);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 4095, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The key line (the last line) of a file naq keygen wrote. */
static void key_line(const char *path, char *line, size_t cap)
{
    char *text = read_file(path);
    char *last = strrchr(text, '#');
    last = strchr(last, '\n') + 1;
    snprintf(line, cap, "%s", last);
    free(text);
}

static int setup(void **state)
{
    keys *k = calloc(1, sizeof *k);
    assert_non_null(k);
    snprintf(k->dir, sizeof k->dir, "/tmp/naq-crypt-keys-XXXXXX");
    assert_non_null(mkdtemp(k->dir));
    snprintf(k->a, sizeof k->a, "%s/a.key", k->dir);
    snprintf(k->b, sizeof k->b, "%s/b.key", k->dir);
    snprintf(k->ab, sizeof k->ab, "%s/ab.key", k->dir);
    char kid[NAQ_CRYPT_KID_MAX + 1];
    assert_int_equal(naq__crypt_keygen(k->a, kid), NAQ_OK);
    assert_int_equal(naq__crypt_keygen(k->b, kid), NAQ_OK);
    char la[256], lb[256], both[600];
    key_line(k->a, la, sizeof la);
    key_line(k->b, lb, sizeof lb);
    snprintf(both, sizeof both, "# new key first\n%s\n%s", la, lb);
    write_file(k->ab, both, 0600);
    *state = k;
    return 0;
}

static int teardown(void **state)
{
    keys *k = *state;
    naq_test_rmtree(k->dir);
    free(k);
    return 0;
}

static naq__crypt *load(const char *path)
{
    naq__crypt *k = NULL;
    if (naq__crypt_load(path, &k) != NAQ_OK)
        fail_msg("load %s: %s", path, naq_last_error());
    return k;
}

static void keygen_writes_a_0600_file_and_never_overwrites_one(void **state)
{
    keys *k = *state;
    struct stat st;
    assert_int_equal(stat(k->a, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char kid[NAQ_CRYPT_KID_MAX + 1];
    char *before = read_file(k->a);
    assert_int_equal(naq__crypt_keygen(k->a, kid), NAQ_ERR_EXISTS);
    assert_non_null(strstr(naq_last_error(), "never overwritten"));
    char *after = read_file(k->a);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void a_key_file_others_can_read_is_refused(void **state)
{
    keys *k = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/open.key", k->dir);
    char line[256];
    key_line(k->a, line, sizeof line);
    write_file(path, line, 0640);
    naq__crypt *c = NULL;
    assert_int_equal(naq__crypt_load(path, &c), NAQ_ERR_INVALID_ARG);
    assert_null(c);
    assert_non_null(strstr(naq_last_error(), "chmod 600"));
    /* So is a client given it: before it connects anywhere. */
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "nats://127.0.0.1:%d", naq_test_free_port());
    snprintf(cfg.encryption_key_file, sizeof cfg.encryption_key_file, "%s", path);
    naq_client *client = NULL;
    assert_int_equal(naq_client_connect(&cfg, &client), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "chmod 600"));
}

static void malformed_key_files_are_refused_naming_the_line(void **state)
{
    keys *k = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/bad.key", k->dir);
    const char *bad[] = {"", "# only a comment\n", "k1\n", "k1 notbase64!!\n", "k1 c2hvcnQ=\n",
                         "bad.id AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
                         /* one key id twice */
                         ("k1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                          "k1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(path, bad[i], 0600);
        naq__crypt *c = NULL;
        if (naq__crypt_load(path, &c) != NAQ_ERR_INVALID_ARG)
            fail_msg("key file %zu ('%s') was accepted", i, bad[i]);
        assert_non_null(strstr(naq_last_error(), "NAQ_ENCRYPTION_KEY_FILE"));
    }
}

static void an_envelope_opens_with_its_key_only_for_its_job_and_field(void **state)
{
    keys *k = *state;
    naq__crypt *a = load(k->a), *b = load(k->b);
    const char *plain = "{\"secret\":\"marker-77\"}";
    json_t *env = naq__crypt_seal(a, NAQ_CRYPT_ARGS, "job1", plain, strlen(plain));
    assert_non_null(env);
    char *text = json_dumps(env, JSON_COMPACT);
    assert_true(naq__crypt_is_sealed_text(text));
    assert_null(strstr(text, "marker-77"));
    assert_string_equal(json_string_value(json_object_get(env, "kid")), naq__crypt_kid(a));
    free(text);

    char *out = NULL, jid[NAQ_ID_SIZE];
    assert_int_equal(naq__crypt_open(a, NAQ_CRYPT_ARGS, env, &out, jid), NAQ_OK);
    assert_string_equal(out, plain);
    assert_string_equal(jid, "job1");
    free(out);
    /* Another field: the associated data differs. */
    assert_int_equal(naq__crypt_open(a, NAQ_CRYPT_OUTCOME, env, &out, jid), NAQ_ERR_CODEC);
    /* Another key id; no key at all. */
    assert_int_equal(naq__crypt_open(b, NAQ_CRYPT_ARGS, env, &out, jid), NAQ_ERR_CODEC);
    assert_non_null(strstr(naq_last_error(), "does not hold"));
    assert_int_equal(naq__crypt_open(NULL, NAQ_CRYPT_ARGS, env, &out, jid), NAQ_ERR_CODEC);
    assert_non_null(strstr(naq_last_error(), "not set"));
    /* Another job: rewriting jid breaks the authentication. */
    json_object_set_new(env, "jid", json_string("job2"));
    assert_int_equal(naq__crypt_open(a, NAQ_CRYPT_ARGS, env, &out, jid), NAQ_ERR_CODEC);
    assert_null(out);
    json_decref(env);
    naq__crypt_destroy(a);
    naq__crypt_destroy(b);
}

static void a_changed_ciphertext_byte_does_not_open(void **state)
{
    keys *k = *state;
    naq__crypt *a = load(k->a);
    json_t *env = naq__crypt_seal(a, NAQ_CRYPT_ARGS, "job1", "[1,2,3]", 7);
    char ct[256];
    snprintf(ct, sizeof ct, "%s", json_string_value(json_object_get(env, "ct")));
    ct[3] = ct[3] == 'A' ? 'B' : 'A';
    json_object_set_new(env, "ct", json_string(ct));
    char *out = NULL, jid[NAQ_ID_SIZE];
    assert_int_equal(naq__crypt_open(a, NAQ_CRYPT_ARGS, env, &out, jid), NAQ_ERR_CODEC);
    assert_non_null(strstr(naq_last_error(), "ciphertext was changed"));
    json_decref(env);
    naq__crypt_destroy(a);
}

static void with_keys_new_then_old_the_new_one_encrypts_and_both_decrypt(void **state)
{
    keys *k = *state;
    naq__crypt *a = load(k->a), *b = load(k->b), *ab = load(k->ab);
    assert_string_equal(naq__crypt_kid(ab), naq__crypt_kid(a));
    json_t *old = naq__crypt_seal(b, NAQ_CRYPT_ARGS, "j", "1", 1);
    json_t *fresh = naq__crypt_seal(ab, NAQ_CRYPT_ARGS, "j", "2", 1);
    assert_string_equal(json_string_value(json_object_get(fresh, "kid")), naq__crypt_kid(a));
    char *out = NULL, jid[NAQ_ID_SIZE];
    assert_int_equal(naq__crypt_open(ab, NAQ_CRYPT_ARGS, old, &out, jid), NAQ_OK);
    assert_string_equal(out, "1");
    free(out);
    assert_int_equal(naq__crypt_open(ab, NAQ_CRYPT_ARGS, fresh, &out, jid), NAQ_OK);
    assert_string_equal(out, "2");
    free(out);
    json_decref(old);
    json_decref(fresh);
    naq__crypt_destroy(a);
    naq__crypt_destroy(b);
    naq__crypt_destroy(ab);
}

static void dead_letter_retries_open_the_args_of_the_job_they_retry(void **state)
{
    keys *k = *state;
    naq__crypt *a = load(k->a);
    naq_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "first");
    j.args_json = strdup("[\"x\"]");
    assert_int_equal(naq__crypt_seal_args(a, &j), NAQ_OK);
    assert_true(naq__crypt_is_sealed_text(j.args_json));
    char *sealed = strdup(j.args_json);
    /* The retry of the retry: "first-r4-r9", original_job_id "first-r4". */
    snprintf(j.id, sizeof j.id, "first-r4-r9");
    j.original_job_id = strdup("first-r4");
    assert_int_equal(naq__crypt_open_args(a, &j), NAQ_OK);
    assert_string_equal(j.args_json, "[\"x\"]");
    /* Moved to an unrelated job: refused, even one claiming a retry. */
    free(j.args_json);
    j.args_json = strdup(sealed);
    snprintf(j.id, sizeof j.id, "other-r1");
    assert_int_equal(naq__crypt_open_args(a, &j), NAQ_ERR_CODEC);
    assert_non_null(strstr(naq_last_error(), "sealed for job first"));
    free(sealed);
    naq_job_clear(&j);
    naq__crypt_destroy(a);
}

static void sealed_events_keep_their_metadata_and_open_with_the_key(void **state)
{
    keys *k = *state;
    naq__crypt *a = load(k->a), *b = load(k->b);
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_FAILED);
    snprintf(e.job_id, sizeof e.job_id, "j1");
    e.error_type = "Boom";
    e.error_message = "it broke on marker-55";
    e.details_json = "{\"exit_status\":3,\"stdout_tail\":\"marker-55\\n\"}";
    char *owned = NULL;
    assert_int_equal(naq__crypt_seal_event(a, &e, &owned), NAQ_OK);
    assert_null(e.error_message);
    assert_null(strstr(owned, "marker-55"));
    assert_non_null(strstr(owned, "\"exit_status\":3"));

    /* As a reader decodes it: heap strings. */
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_event_encode(&e, &json, &len), NAQ_OK);
    free(owned);
    naq_event got, hidden;
    assert_int_equal(naq_event_decode(json, len, &got), NAQ_OK);
    assert_int_equal(naq_event_decode(json, len, &hidden), NAQ_OK);
    free(json);
    naq__crypt_open_event(a, &got);
    assert_string_equal(got.error_type, "Boom");
    assert_string_equal(got.error_message, "it broke on marker-55");
    assert_non_null(strstr(got.details_json, "marker-55"));
    assert_null(strstr(got.details_json, "sealed"));
    naq__crypt_open_event(b, &hidden); /* another key: shown as encrypted */
    assert_string_equal(hidden.error_type, "Boom");
    assert_string_equal(hidden.error_message, NAQ_CRYPT_HIDDEN);
    naq_event_clear(&got);
    naq_event_clear(&hidden);
    naq__crypt_destroy(a);
    naq__crypt_destroy(b);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(keygen_writes_a_0600_file_and_never_overwrites_one, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(a_key_file_others_can_read_is_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(malformed_key_files_are_refused_naming_the_line, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(an_envelope_opens_with_its_key_only_for_its_job_and_field,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(a_changed_ciphertext_byte_does_not_open, setup, teardown),
    cmocka_unit_test_setup_teardown(with_keys_new_then_old_the_new_one_encrypts_and_both_decrypt,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(dead_letter_retries_open_the_args_of_the_job_they_retry, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(sealed_events_keep_their_metadata_and_open_with_the_key, setup,
                                    teardown),
};

NAQ_TEST_MAIN(tests)
