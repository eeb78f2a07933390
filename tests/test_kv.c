/*
 * test_kv.c - the lifecycle KV buckets read and written by subject
 * (kv.c): key encoding, create-if-absent, compare-and-set, removal up to a
 * revision, and read-modify-write that survives a concurrent writer.
 * Against a real nats-server.
 */
#include "harness.h"
#include "jobs/jobs.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    naq_test_server srv;
    naq_client *c;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    naq_test_server_start(&f->srv);
    f->c = naq_test_connect(&f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    naq_client_destroy(f->c);
    naq_test_server_destroy(&f->srv);
    free(f);
    return 0;
}

static void keys_encode_every_reserved_byte_and_decode_back(void **state)
{
    (void)state;
    const char *text = "emails/report.2024 =x*>";
    char key[NAQ__KV_KEY_MAX + 1], back[256];
    assert_int_equal(naq__kv_key(text, key, sizeof key), NAQ_OK);
    assert_null(strpbrk(key, "./ *>"));
    assert_int_equal(naq__kv_unkey(key, back, sizeof back), NAQ_OK);
    assert_string_equal(back, text);
    char tiny[4];
    assert_int_equal(naq__kv_key("a.b.c", tiny, sizeof tiny), NAQ_ERR_INVALID_ARG);
}

static void create_writes_only_once_and_get_reads_value_and_revision(void **state)
{
    fixture *f = *state;
    char *val = NULL;
    size_t len = 0;
    uint64_t rev = 0, got_rev = 0;
    assert_int_equal(naq__kv_get(f->c, NAQ__KV_DEPS, "k1", &val, &len, &rev), NAQ_ERR_NOT_FOUND);
    assert_int_equal(naq__kv_create(f->c, NAQ__KV_DEPS, "k1", "one", 3, &rev), NAQ_OK);
    assert_true(rev > 0);
    assert_int_equal(naq__kv_create(f->c, NAQ__KV_DEPS, "k1", "two", 3, NULL), NAQ_ERR_EXISTS);
    assert_int_equal(naq__kv_get(f->c, NAQ__KV_DEPS, "k1", &val, &len, &got_rev), NAQ_OK);
    assert_string_equal(val, "one");
    assert_int_equal(len, 3);
    assert_int_equal(got_rev, rev);
    free(val);
}

static void update_refuses_a_stale_revision(void **state)
{
    fixture *f = *state;
    uint64_t r1 = 0, r2 = 0;
    assert_int_equal(naq__kv_put(f->c, NAQ__KV_CANCEL, "k2", "a", 1, &r1), NAQ_OK);
    assert_int_equal(naq__kv_update(f->c, NAQ__KV_CANCEL, "k2", "b", 1, r1, &r2), NAQ_OK);
    assert_true(r2 > r1);
    /* Someone who read r1 lost the race. */
    assert_int_equal(naq__kv_update(f->c, NAQ__KV_CANCEL, "k2", "c", 1, r1, NULL), NAQ_ERR_EXISTS);
    char *val = NULL;
    assert_int_equal(naq__kv_get(f->c, NAQ__KV_CANCEL, "k2", &val, NULL, NULL), NAQ_OK);
    assert_string_equal(val, "b");
    free(val);
}

static void remove_up_to_a_revision_keeps_a_newer_value(void **state)
{
    fixture *f = *state;
    uint64_t r1 = 0, r2 = 0;
    assert_int_equal(naq__kv_put(f->c, NAQ__KV_UNIQUE, "k3", "old", 3, &r1), NAQ_OK);
    assert_int_equal(naq__kv_put(f->c, NAQ__KV_UNIQUE, "k3", "new", 3, &r2), NAQ_OK);
    assert_int_equal(naq__kv_remove(f->c, NAQ__KV_UNIQUE, "k3", r1), NAQ_OK);
    char *val = NULL;
    assert_int_equal(naq__kv_get(f->c, NAQ__KV_UNIQUE, "k3", &val, NULL, NULL), NAQ_OK);
    assert_string_equal(val, "new");
    free(val);
    assert_int_equal(naq__kv_remove(f->c, NAQ__KV_UNIQUE, "k3", 0), NAQ_OK);
    assert_int_equal(naq__kv_get(f->c, NAQ__KV_UNIQUE, "k3", NULL, NULL, NULL), NAQ_ERR_NOT_FOUND);
    /* Gone for good: create works again. */
    assert_int_equal(naq__kv_create(f->c, NAQ__KV_UNIQUE, "k3", "again", 5, NULL), NAQ_OK);
}

typedef struct {
    naq_client *c;
    int calls;
} appender;

/* Appends "x"; on its first call another writer slips in first. */
static naq_status append_x(const char *val, size_t len, void *ud, char **out, size_t *out_len)
{
    appender *a = ud;
    if (a->calls++ == 0)
        assert_int_equal(naq__kv_put(a->c, NAQ__KV_DEPS, "k4", "rival", 5, NULL), NAQ_OK);
    *out = malloc(len + 2);
    memcpy(*out, val ? val : "", len);
    (*out)[len] = 'x';
    (*out)[len + 1] = '\0';
    *out_len = len + 1;
    return NAQ_OK;
}

static void modify_reads_again_when_another_writer_came_first(void **state)
{
    fixture *f = *state;
    assert_int_equal(naq__kv_put(f->c, NAQ__KV_DEPS, "k4", "v", 1, NULL), NAQ_OK);
    appender a = {f->c, 0};
    uint64_t written = 0;
    assert_int_equal(naq__kv_modify(f->c, NAQ__KV_DEPS, "k4", append_x, &a, &written), NAQ_OK);
    assert_int_equal(a.calls, 2); /* the first write lost to the rival */
    assert_true(written > 0);
    char *val = NULL;
    assert_int_equal(naq__kv_get(f->c, NAQ__KV_DEPS, "k4", &val, NULL, NULL), NAQ_OK);
    assert_string_equal(val, "rivalx"); /* the rival's value was not overwritten blindly */
    free(val);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(keys_encode_every_reserved_byte_and_decode_back),
    cmocka_unit_test_setup_teardown(create_writes_only_once_and_get_reads_value_and_revision, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(update_refuses_a_stale_revision, setup, teardown),
    cmocka_unit_test_setup_teardown(remove_up_to_a_revision_keeps_a_newer_value, setup, teardown),
    cmocka_unit_test_setup_teardown(modify_reads_again_when_another_writer_came_first, setup,
                                    teardown),
};

NAQ_TEST_MAIN(tests)
