/*
 * test_log.c - the library's messages reach the handler a program sets
 * (naq_log_set_handler), one line each with its level, and never stderr.
 * No server needed (test_registry checks a real worker's message).
 */
#include "harness.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int calls;
    naq_log_level level;
    char msg[256];
} last_message;

static void keep(naq_log_level level, const char *msg, void *user)
{
    last_message *m = user;
    m->calls++;
    m->level = level;
    snprintf(m->msg, sizeof m->msg, "%s", msg);
}

/* Runs naq__log with stderr redirected to a file; returns what reached it. */
static void log_capturing_stderr(char *said, size_t cap)
{
    char path[] = "/tmp/naq-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    naq__log(NAQ_LOG_ERROR, "naq worker %s: cannot reach the server\n", "w-1");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, said, cap - 1, 0);
    said[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

static void without_a_handler_messages_are_dropped_not_printed(void **state)
{
    (void)state;
    naq_log_set_handler(NULL, NULL);
    char said[256];
    log_capturing_stderr(said, sizeof said);
    assert_string_equal(said, "");
}

static void the_handler_gets_one_line_with_its_level_and_user_pointer(void **state)
{
    (void)state;
    last_message m = {0};
    naq_log_set_handler(keep, &m);
    char said[256];
    log_capturing_stderr(said, sizeof said);
    naq_log_set_handler(NULL, NULL);
    assert_string_equal(said, "");
    assert_int_equal(m.calls, 1);
    assert_int_equal(m.level, NAQ_LOG_ERROR);
    assert_string_equal(m.msg, "naq worker w-1: cannot reach the server");
}

static void a_handler_replaced_by_null_hears_nothing_more(void **state)
{
    (void)state;
    last_message m = {0};
    naq_log_set_handler(keep, &m);
    naq__log(NAQ_LOG_WARN, "first");
    naq_log_set_handler(NULL, NULL);
    naq__log(NAQ_LOG_WARN, "second");
    assert_int_equal(m.calls, 1);
    assert_int_equal(m.level, NAQ_LOG_WARN);
    assert_string_equal(m.msg, "first");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(without_a_handler_messages_are_dropped_not_printed),
    cmocka_unit_test(the_handler_gets_one_line_with_its_level_and_user_pointer),
    cmocka_unit_test(a_handler_replaced_by_null_hears_nothing_more),
};

NAQ_TEST_MAIN(tests)
