/*
 * test_jsonw.c - the hot-path JSON writer: valid JSON for any input, exact
 * fixed-point numbers, reals as the shortest text that reads back (also in
 * jansson's output, through naq__json_dumps), the caller's buffer used
 * until it is too small.
 */
#include "harness.h"
#include "core/jsonw.h"

#include <float.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *write_fixed(double v, int decimals)
{
    naq__jsonw w;
    naq__jsonw_init(&w, 16);
    naq__jsonw_begin(&w);
    naq__jsonw_fixed(&w, "v", v, decimals);
    size_t len;
    return naq__jsonw_finish(&w, &len);
}

static void fixed_point_numbers_round_to_the_last_digit(void **state)
{
    (void)state;
    static const struct {
        double v;
        int decimals;
        const char *want;
    } cases[] = {
        {0.0, 3, "{\"v\":0.000}"},          {12.5, 3, "{\"v\":12.500}"},
        {0.0004, 3, "{\"v\":0.000}"},       {0.0005, 3, "{\"v\":0.001}"},
        {0.9999995, 6, "{\"v\":1.000000}"}, {1763900000.123456, 6, "{\"v\":1763900000.123456}"},
        {-2.25, 2, "{\"v\":-2.25}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = write_fixed(cases[i].v, cases[i].decimals);
        assert_string_equal(s, cases[i].want);
        free(s);
    }
    /* out of the fast path's range: still a valid real */
    char *big = write_fixed(1e15, 3);
    json_error_t err;
    json_t *o = json_loads(big, 0, &err);
    assert_non_null(o);
    assert_true(json_real_value(json_object_get(o, "v")) == 1e15);
    json_decref(o);
    free(big);
}

static void reals_are_the_shortest_text_that_reads_back(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *want; /* NULL: only check the round trip */
    } cases[] = {
        {2.418, "{\"v\":2.418}"},
        {0.1, "{\"v\":0.1}"},
        {0.1 + 0.2, "{\"v\":0.30000000000000004}"}, /* needs all 17 digits */
        {1.0 / 3.0, "{\"v\":0.3333333333333333}"},  /* 16 */
        {5.0, "{\"v\":5.0}"},                       /* still a real */
        {-2.5e-10, "{\"v\":-2.5e-10}"},
        {1e300, "{\"v\":1e+300}"},
        {1733338400.123456, "{\"v\":1733338400.123456}"},
        {DBL_MIN, NULL},
        {DBL_MAX, NULL},
        {123456789012345680.0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        naq__jsonw w;
        naq__jsonw_init(&w, 16);
        naq__jsonw_begin(&w);
        naq__jsonw_real(&w, "v", cases[i].v);
        size_t len;
        char *s = naq__jsonw_finish(&w, &len);
        if (cases[i].want != NULL)
            assert_string_equal(s, cases[i].want);
        json_t *o = json_loads(s, 0, NULL);
        assert_non_null(o);
        assert_true(json_real_value(json_object_get(o, "v")) == cases[i].v);
        char longest[40];
        assert_true(len <= (size_t)snprintf(longest, sizeof longest, "%.17g", cases[i].v) + 8);
        json_decref(o);
        free(s);
    }
}

/* jansson prints 2.418 as 2.4180000000000001; naq__json_dumps does not,
 * and leaves strings that look like numbers alone. */
static void json_dumps_prints_reals_shortest_and_leaves_strings_alone(void **state)
{
    (void)state;
    const char *in = "{\"memory_mb\":2.418,\"s\":\"2.4180000000000001 \\\" 0.1\","
                     "\"a\":[0.1,1,-2.5e-10,3.0,0.30000000000000004,{\"k\":1e300}]}";
    json_t *o = json_loads(in, 0, NULL);
    assert_non_null(o);
    char *plain = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    assert_non_null(strstr(plain, "2.4180000000000001,")); /* what jansson does */
    free(plain);
    char *out = naq__json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    assert_string_equal(out, "{\"memory_mb\":2.418,\"s\":\"2.4180000000000001 \\\" 0.1\","
                             "\"a\":[0.1,1,-2.5e-10,3.0,0.30000000000000004,{\"k\":1e+300}]}");
    free(out);
    char *indented = naq__json_dumps(o, JSON_INDENT(2));
    assert_non_null(strstr(indented, "\"memory_mb\": 2.418,\n"));
    assert_non_null(strstr(indented, "\"2.4180000000000001 \\\" 0.1\""));
    free(indented);
    json_decref(o);
}

static void callers_buffer_is_used_until_it_is_too_small(void **state)
{
    (void)state;
    char buf[64];
    naq__jsonw w;
    naq__jsonw_init_buf(&w, buf, sizeof buf);
    naq__jsonw_begin(&w);
    naq__jsonw_str(&w, "a", "short");
    size_t len;
    char *s = naq__jsonw_finish(&w, &len);
    assert_ptr_equal(s, buf);
    assert_string_equal(s, "{\"a\":\"short\"}");

    char long_value[300];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    naq__jsonw_init_buf(&w, buf, sizeof buf);
    naq__jsonw_begin(&w);
    naq__jsonw_str(&w, "first", "kept when moving");
    naq__jsonw_str(&w, "b", long_value);
    s = naq__jsonw_finish(&w, &len);
    assert_ptr_not_equal(s, buf);
    assert_int_equal(len, strlen(s));
    json_error_t err;
    json_t *o = json_loads(s, 0, &err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "first")), "kept when moving");
    assert_string_equal(json_string_value(json_object_get(o, "b")), long_value);
    json_decref(o);
    free(s);
}

static void every_byte_value_yields_valid_json(void **state)
{
    (void)state;
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    naq__jsonw w;
    naq__jsonw_init(&w, 8);
    naq__jsonw_begin(&w);
    naq__jsonw_str(&w, "all", all);
    naq__jsonw_int(&w, "n", -42);
    size_t len;
    char *s = naq__jsonw_finish(&w, &len);
    json_error_t err;
    json_t *o = json_loads(s, 0, &err);
    if (o == NULL)
        fail_msg("invalid JSON: %s", err.text);
    assert_int_equal(json_integer_value(json_object_get(o, "n")), -42);
    /* the ASCII part survives exactly */
    assert_memory_equal(json_string_value(json_object_get(o, "all")), all, 127);
    json_decref(o);
    free(s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(fixed_point_numbers_round_to_the_last_digit),
    cmocka_unit_test(reals_are_the_shortest_text_that_reads_back),
    cmocka_unit_test(json_dumps_prints_reals_shortest_and_leaves_strings_alone),
    cmocka_unit_test(callers_buffer_is_used_until_it_is_too_small),
    cmocka_unit_test(every_byte_value_yields_valid_json),
};

NAQ_TEST_MAIN(tests)
