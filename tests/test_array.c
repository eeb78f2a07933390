/*
 * test_array.c - growing an array (naq__array_grow): doubling from the
 * caller's first capacity, the elements kept. (Running out of memory is not
 * tested: under AddressSanitizer a huge request aborts instead of failing.)
 * No server needed.
 */
#include "harness.h"
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>

static void an_empty_array_gets_the_first_capacity_then_doubles(void **state)
{
    (void)state;
    int64_t *v = NULL;
    size_t cap = 0;
    void *got = naq__array_grow(&v, &cap, sizeof *v, 4);
    assert_non_null(v);
    assert_ptr_equal(got, v); /* returned and stored */
    assert_int_equal(cap, 4);
    assert_non_null(naq__array_grow(&v, &cap, sizeof *v, 4));
    assert_int_equal(cap, 8);
    free(v);
}

static void elements_survive_every_growth(void **state)
{
    (void)state;
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    for (int64_t i = 0; i < 10000; i++) {
        if (n == cap)
            assert_non_null(naq__array_grow(&v, &cap, sizeof *v, 3));
        v[n++] = i * 7;
    }
    assert_int_equal(cap, 12288); /* 3 * 2^12 */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(v[i], (int64_t)i * 7);
    free(v);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(an_empty_array_gets_the_first_capacity_then_doubles),
    cmocka_unit_test(elements_survive_every_growth),
};

NAQ_TEST_MAIN(tests)
