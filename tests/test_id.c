/*
 * test_id.c - job ids (naq_id_new: UUIDv7 as 32 hex digits, time-ordered,
 * unique, fresh after fork) and the check every outside id goes through
 * (naq_id_validate), and the name check and joining behind it
 * (naq__name_validate, naq__join_if_fits). No server needed.
 */
#include "harness.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void a_new_id_is_a_version_7_uuid_in_32_hex_digits(void **state)
{
    (void)state;
    char id[NAQ_ID_SIZE];
    naq_id_new(id);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    assert_int_equal(id[12], '7');           /* version */
    assert_non_null(strchr("89ab", id[16])); /* RFC 4122 variant */
    assert_int_equal(naq_id_validate("job id", id), NAQ_OK);
}

static int by_text(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Ids made later sort later (their first 48 bits are the time in ms), and
 * none repeats. */
static void ids_are_unique_and_sort_by_creation_time(void **state)
{
    (void)state;
    enum { N = 20000 };
    char(*ids)[NAQ_ID_SIZE] = malloc(sizeof *ids * N);
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        naq_id_new(ids[i]);
    for (int i = 1; i < N; i++)
        assert_true(strncmp(ids[i - 1], ids[i], 12) <= 0); /* the time part */
    qsort(ids, N, sizeof *ids, by_text);
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("id %s was made twice", ids[i]);
    free(ids);
}

/* A forked child must not repeat its parent's random sequence. */
static void a_forked_child_makes_other_ids_than_its_parent(void **state)
{
    (void)state;
    char warm[NAQ_ID_SIZE];
    naq_id_new(warm); /* the parent's generator is seeded before the fork */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[NAQ_ID_SIZE];
        naq_id_new(id);
        ssize_t n = write(fds[1], id, NAQ_ID_SIZE);
        _exit(n == NAQ_ID_SIZE ? 0 : 1);
    }
    char mine[NAQ_ID_SIZE], child[NAQ_ID_SIZE];
    naq_id_new(mine);
    assert_int_equal(read(fds[0], child, NAQ_ID_SIZE), NAQ_ID_SIZE);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fds[0]);
    close(fds[1]);
    /* The random part (after the 12 hex digits of time) differs. */
    if (strcmp(mine + 12, child + 12) == 0)
        fail_msg("parent and child made the same id %s", mine);
}

static void validate_refuses_what_a_subject_cannot_carry_and_names_it(void **state)
{
    (void)state;
    assert_int_equal(naq_id_validate("job id", "report-2024_06"), NAQ_OK);
    static const char *const bad[] = {"", "a b", "a.b", "a*", "x>", "tab\there", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(naq_id_validate("job id", bad[i]), NAQ_ERR_INVALID_ARG);
        assert_non_null(strstr(naq_last_error(), "job id"));
    }
    assert_int_equal(naq_id_validate("job id", NULL), NAQ_ERR_INVALID_ARG);
    char longest[NAQ_ID_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[NAQ_ID_MAX] = '\0';
    assert_int_equal(naq_id_validate("job id", longest), NAQ_OK);
    longest[NAQ_ID_MAX] = 'a';
    longest[NAQ_ID_MAX + 1] = '\0';
    assert_int_equal(naq_id_validate("job id", longest), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "at most"));
}

/* Each alphabet refuses what it must, and the message names the label,
 * the name, the character and what to use instead. */
static void name_validate_keeps_each_alphabet_and_says_what_to_use(void **state)
{
    (void)state;
    assert_int_equal(naq__name_validate("x", "a.b", 10, NAQ__NAME_PRINTABLE), NAQ_OK);
    assert_int_equal(naq__name_validate("x", "a.b", 10, NAQ__NAME_TOKEN), NAQ_ERR_INVALID_ARG);
    assert_string_equal(naq_last_error(), "x 'a.b' contains '.', which NATS subjects reserve; "
                                          "use letters, digits, '-' or '_'");
    assert_int_equal(naq__name_validate("x", "a b", 10, NAQ__NAME_PRINTABLE), NAQ_ERR_INVALID_ARG);
    assert_string_equal(naq_last_error(), "x 'a b' contains white space or a non-printable "
                                          "character at position 2; use letters, digits, '.', "
                                          "'-' or '_'");
    assert_int_equal(naq__name_validate("x", "ab+", 10, NAQ__NAME_WORD), NAQ_ERR_INVALID_ARG);
    assert_string_equal(naq_last_error(),
                        "x 'ab+' contains '+' at position 3; use letters, digits, '-' or '_'");
    assert_int_equal(naq__name_validate("x", "a-b_9", 5, NAQ__NAME_WORD), NAQ_OK);
    assert_int_equal(naq__name_validate("x", "a-b_9", 4, NAQ__NAME_WORD), NAQ_ERR_INVALID_ARG);
    assert_string_equal(naq_last_error(), "x is 5 characters long; at most 4 are allowed");
    assert_int_equal(naq__name_validate("x", "", 4, NAQ__NAME_WORD), NAQ_ERR_INVALID_ARG);
    assert_string_equal(naq_last_error(), "x is empty");
}

static void join_if_fits_joins_up_to_max_and_leaves_out_alone_beyond(void **state)
{
    (void)state;
    char out[8] = "unset";
    assert_int_equal(naq__join_if_fits(out, 7, "abc", '/', "def"), 1);
    assert_string_equal(out, "abc/def");
    snprintf(out, sizeof out, "unset");
    assert_int_equal(naq__join_if_fits(out, 6, "abc", '/', "def"), 0);
    assert_string_equal(out, "unset");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(a_new_id_is_a_version_7_uuid_in_32_hex_digits),
    cmocka_unit_test(ids_are_unique_and_sort_by_creation_time),
    cmocka_unit_test(a_forked_child_makes_other_ids_than_its_parent),
    cmocka_unit_test(validate_refuses_what_a_subject_cannot_carry_and_names_it),
    cmocka_unit_test(name_validate_keeps_each_alphabet_and_says_what_to_use),
    cmocka_unit_test(join_if_fits_joins_up_to_max_and_leaves_out_alone_beyond),
};

NAQ_TEST_MAIN(tests)
