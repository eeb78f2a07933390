/*
 * test_config.c - defaults, NAQ_* environment variables, durations, sizes
 * and id validation. No server needed.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static void clear_env(void)
{
    static const char *const names[] = {
        "NAQ_URL",
        "NAQ_JOB_QUEUE_URL",
        "NAQ_EVENT_STORAGE_URL",
        "NAQ_NATS_STREAM_NAME",
        "NAQ_NATS_SUBJECT_PREFIX",
        "NAQ_NATS_CONNECTION_TIMEOUT",
        "NAQ_LOG_LEVEL",
        "NAQ_DISABLE_LOGGING",
        "NAQ_EVENT_MAX_AGE",
        "NAQ_REPLICAS",
        "NAQ_EVENT_BUFFER",
        "NAQ_EVENT_FLUSH_INTERVAL",
        "NAQ_EVENT_LINGER_US",
        "NAQ_ACK_WAIT",
        "NAQ_SPOOL_DIR",
        "NAQ_EVENT_MAX_BYTES",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
}

static void defaults_point_at_a_local_server(void **state)
{
    (void)state;
    clear_env();
    naq_config c;
    naq_config_init(&c);
    assert_string_equal(c.url, "nats://127.0.0.1:4222");
    assert_string_equal(c.event_stream, "NAQ_JOB_EVENTS");
    assert_string_equal(c.subject_prefix, "naq");
    assert_int_equal(c.connect_timeout_ms, 2000);
    assert_int_equal(c.event_max_age_s, 7 * 24 * 3600);
    assert_int_equal(c.event_dup_window_s, 120);
    assert_int_equal(c.replicas, 1);
    assert_int_equal(c.disable_logging, 0);
    assert_int_equal(c.logger_linger_us, -1); /* adaptive */
    assert_non_null(strstr(c.spool_dir, "naq/spool"));
    assert_int_equal(naq_config_from_env(&c), NAQ_OK);
    assert_string_equal(c.url, "nats://127.0.0.1:4222");
}

static void environment_overrides_defaults(void **state)
{
    (void)state;
    clear_env();
    setenv("NAQ_URL", "nats://10.0.0.1:4333", 1);
    setenv("NAQ_EVENT_STORAGE_URL", "nats://127.0.0.2:4222", 1);
    setenv("NAQ_NATS_STREAM_NAME", "EV", 1);
    setenv("NAQ_NATS_SUBJECT_PREFIX", "acme", 1);
    setenv("NAQ_NATS_CONNECTION_TIMEOUT", "5", 1);
    setenv("NAQ_LOG_LEVEL", "debug", 1);
    setenv("NAQ_DISABLE_LOGGING", "true", 1);
    setenv("NAQ_EVENT_MAX_AGE", "2d", 1);
    setenv("NAQ_REPLICAS", "3", 1);
    setenv("NAQ_EVENT_FLUSH_INTERVAL", "250ms", 1);
    setenv("NAQ_EVENT_LINGER_US", "0", 1);
    setenv("NAQ_EVENT_MAX_BYTES", "1G", 1);
    naq_config c;
    naq_config_init(&c);
    assert_int_equal(naq_config_from_env(&c), NAQ_OK);
    assert_string_equal(c.url, "nats://10.0.0.1:4333");
    assert_string_equal(c.event_url, "nats://127.0.0.2:4222");
    assert_string_equal(c.event_stream, "EV");
    assert_string_equal(c.subject_prefix, "acme");
    assert_int_equal(c.connect_timeout_ms, 5000);
    assert_int_equal(c.log_level, NAQ_LOG_DEBUG);
    assert_int_equal(c.disable_logging, 1);
    assert_int_equal(c.event_max_age_s, 2 * 86400);
    assert_int_equal(c.replicas, 3);
    assert_int_equal(c.logger_flush_ms, 250);
    assert_int_equal(c.logger_linger_us, 0);
    assert_int_equal(c.event_max_bytes, 1LL << 30);
    clear_env();
}

static void job_queue_url_is_the_older_name_and_naq_url_wins(void **state)
{
    (void)state;
    clear_env();
    naq_config c;
    naq_config_init(&c);
    setenv("NAQ_JOB_QUEUE_URL", "nats://old:1", 1);
    assert_int_equal(naq_config_from_env(&c), NAQ_OK);
    assert_string_equal(c.url, "nats://old:1");
    setenv("NAQ_URL", "nats://new:2", 1);
    assert_int_equal(naq_config_from_env(&c), NAQ_OK);
    assert_string_equal(c.url, "nats://new:2");
    clear_env();
}

static void malformed_variables_are_errors_that_name_the_variable(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"NAQ_NATS_CONNECTION_TIMEOUT", "soon"},
        {"NAQ_LOG_LEVEL", "loud"},
        {"NAQ_DISABLE_LOGGING", "maybe"},
        {"NAQ_REPLICAS", "7"},
        {"NAQ_REPLICAS", "0"},
        {"NAQ_EVENT_BUFFER", "-3"},
        {"NAQ_EVENT_MAX_BYTES", "12X"},
        {"NAQ_URL", "bogus"},
        {"NAQ_URL", "nats://127.0.0.1:notaport"},
        {"NAQ_JOB_QUEUE_URL", "http://127.0.0.1:4222"},
        {"NAQ_EVENT_STORAGE_URL", "nats://"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clear_env();
        setenv(cases[i][0], cases[i][1], 1);
        naq_config c;
        naq_config_init(&c);
        assert_int_equal(naq_config_from_env(&c), NAQ_ERR_INVALID_ARG);
        if (strstr(naq_last_error(), cases[i][0]) == NULL)
            fail_msg("error for %s=%s does not name it: %s", cases[i][0], cases[i][1],
                     naq_last_error());
    }
    clear_env();
}

static void urls_are_checked_naming_where_they_came_from_and_the_form(void **state)
{
    (void)state;
    static const char *const good[] = {
        "nats://127.0.0.1:4222", "nats://localhost",      "tls://nats.example.com:4443",
        "NATS://a:1/",           "nats://u:p@h:1",        "nats://token@h:1",
        "nats://[::1]:4222",     "nats://a:1,nats://b:2",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (naq_url_validate("NAQ_URL", good[i]) != NAQ_OK)
            fail_msg("'%s' refused: %s", good[i], naq_last_error());
    static const char *const bad[][2] = {
        {"bogus", "no scheme"},
        {"127.0.0.1:4222", "no scheme"},
        {"http://h:1", "nats:// or tls://"},
        {"nats://", "no host"},
        {"nats://:4222", "no host"},
        {"nats://h:notaport", "port"},
        {"nats://h:0", "port"},
        {"nats://h:65536", "port"},
        {"nats://h h:1", "host"},
        {"nats://a:1,", "empty"},
        {"nats://a:1,b", "in 'b'"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(naq_url_validate("NAQ_URL", bad[i][0]), NAQ_ERR_INVALID_ARG);
        const char *m = naq_last_error();
        if (strstr(m, "NAQ_URL") == NULL || strstr(m, bad[i][1]) == NULL ||
            (bad[i][0][0] != '\0' && strstr(m, "nats://HOST:PORT") == NULL))
            fail_msg("'%s': message '%s' lacks the variable, '%s' or the form", bad[i][0], m,
                     bad[i][1]);
    }
}

static void durations_accept_units(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(naq_parse_duration_ms("500ms", &ms), NAQ_OK);
    assert_int_equal(ms, 500);
    assert_int_equal(naq_parse_duration_ms("30", &ms), NAQ_OK);
    assert_int_equal(ms, 30000);
    assert_int_equal(naq_parse_duration_ms("1.5s", &ms), NAQ_OK);
    assert_int_equal(ms, 1500);
    assert_int_equal(naq_parse_duration_ms("5m", &ms), NAQ_OK);
    assert_int_equal(ms, 300000);
    assert_int_equal(naq_parse_duration_ms("2h", &ms), NAQ_OK);
    assert_int_equal(ms, 7200000);
    assert_int_equal(naq_parse_duration_ms("7d", &ms), NAQ_OK);
    assert_int_equal(ms, 7LL * 86400000);
    assert_int_equal(naq_parse_duration_ms("-1s", &ms), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_parse_duration_ms("10 years", &ms), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_parse_duration_ms("", &ms), NAQ_ERR_INVALID_ARG);
    /* Found by fuzz_duration: strtod reads these as numbers. */
    assert_int_equal(naq_parse_duration_ms("nan", &ms), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_parse_duration_ms("inf", &ms), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_parse_duration_ms("-nan", &ms), NAQ_ERR_INVALID_ARG);
    double t;
    assert_int_not_equal(naq_parse_time("@inf", 0, &t), NAQ_OK);
    assert_int_not_equal(naq_parse_time("2026-01-01T00:00:nan", 0, &t), NAQ_OK);
}

static void security_variables_fill_the_config_and_are_checked(void **state)
{
    (void)state;
    clear_env();
    naq_config c;
    naq_config_init(&c);
    setenv("NAQ_TLS_CA", "/etc/hostname", 1);
    setenv("NAQ_USER", "alice", 1);
    setenv("NAQ_PASSWORD", "pw", 1);
    assert_int_equal(naq_config_from_env(&c), NAQ_OK);
    assert_string_equal(c.tls_ca, "/etc/hostname");
    assert_string_equal(c.user, "alice");
    assert_string_equal(c.password, "pw");
    assert_int_equal(naq_config_security_validate(&c), NAQ_OK);

    setenv("NAQ_TOKEN", "t", 1); /* two ways to authenticate */
    assert_int_equal(naq_config_from_env(&c), NAQ_OK);
    assert_int_equal(naq_config_security_validate(&c), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "more than one way"));
    unsetenv("NAQ_TOKEN");

    naq_config_init(&c);
    setenv("NAQ_TLS_CERT", "/etc/hostname", 1); /* without its key */
    assert_int_equal(naq_config_from_env(&c), NAQ_OK);
    assert_int_equal(naq_config_security_validate(&c), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "NAQ_TLS_KEY"));
    setenv("NAQ_TLS_KEY", "/no/such/key.pem", 1);
    naq_config_init(&c);
    assert_int_equal(naq_config_from_env(&c), NAQ_OK);
    assert_int_equal(naq_config_security_validate(&c), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "/no/such/key.pem"));

    naq_config_init(&c);
    unsetenv("NAQ_TLS_CERT");
    unsetenv("NAQ_TLS_KEY");
    unsetenv("NAQ_USER");
    setenv("NAQ_NKEY_SEED_FILE", "/etc/hostname", 1);
    setenv("NAQ_CREDS_FILE", "/etc/hostname", 1);
    assert_int_equal(naq_config_from_env(&c), NAQ_OK);
    assert_string_equal(c.nkey_seed_file, "/etc/hostname");
    assert_string_equal(c.creds_file, "/etc/hostname");
    const char *vars[] = {"NAQ_TLS_CA", "NAQ_PASSWORD", "NAQ_NKEY_SEED_FILE", "NAQ_CREDS_FILE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

static void sizes_accept_binary_suffixes(void **state)
{
    (void)state;
    int64_t b;
    assert_int_equal(naq_parse_size("512", &b), NAQ_OK);
    assert_int_equal(b, 512);
    assert_int_equal(naq_parse_size("64K", &b), NAQ_OK);
    assert_int_equal(b, 65536);
    assert_int_equal(naq_parse_size("10MB", &b), NAQ_OK);
    assert_int_equal(b, 10LL << 20);
    assert_int_equal(naq_parse_size("1g", &b), NAQ_OK);
    assert_int_equal(b, 1LL << 30);
    assert_int_equal(naq_parse_size("1.5G", &b), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq_parse_size("lots", &b), NAQ_ERR_INVALID_ARG);
}

static void ids_that_would_break_subjects_are_refused(void **state)
{
    (void)state;
    char long_id[NAQ_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    static const char *const bad[] = {"", "a.b", "a*", "a>", "a b", "tab\there", "nl\n", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (naq_id_validate("queue name", bad[i]) != NAQ_ERR_INVALID_ARG)
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(strstr(naq_last_error(), "queue name"));
    }
    assert_int_equal(naq_id_validate("job id", long_id), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "at most 128"));
    long_id[NAQ_ID_MAX] = '\0';
    assert_int_equal(naq_id_validate("job id", long_id), NAQ_OK);
    assert_int_equal(naq_id_validate("queue name", "emails-high_1"), NAQ_OK);
}

static void new_ids_are_valid_unique_and_time_ordered(void **state)
{
    (void)state;
    char prev[NAQ_ID_SIZE] = "", id[NAQ_ID_SIZE];
    for (int i = 0; i < 2000; i++) {
        naq_id_new(id);
        assert_int_equal(strlen(id), 32);
        assert_int_equal(naq_id_validate("job id", id), NAQ_OK);
        assert_int_equal(id[12], '7'); /* UUID version 7 */
        assert_string_not_equal(id, prev);
        /* the 48-bit millisecond prefix never goes backwards */
        assert_true(strncmp(prev, id, 12) <= 0);
        strcpy(prev, id);
    }
}

static void status_strings_come_from_one_table(void **state)
{
    (void)state;
    assert_string_equal(naq_status_str(NAQ_OK), "ok");
    assert_string_equal(naq_status_str(NAQ_ERR_CONNECT), "cannot connect");
    assert_string_equal(naq_status_str(NAQ_STATUS_COUNT), "unknown status");
    for (int i = 0; i < NAQ_STATUS_COUNT; i++)
        assert_true(strlen(naq_status_str((naq_status)i)) > 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(defaults_point_at_a_local_server),
    cmocka_unit_test(environment_overrides_defaults),
    cmocka_unit_test(job_queue_url_is_the_older_name_and_naq_url_wins),
    cmocka_unit_test(malformed_variables_are_errors_that_name_the_variable),
    cmocka_unit_test(urls_are_checked_naming_where_they_came_from_and_the_form),
    cmocka_unit_test(durations_accept_units),
    cmocka_unit_test(security_variables_fill_the_config_and_are_checked),
    cmocka_unit_test(sizes_accept_binary_suffixes),
    cmocka_unit_test(ids_that_would_break_subjects_are_refused),
    cmocka_unit_test(new_ids_are_valid_unique_and_time_ordered),
    cmocka_unit_test(status_strings_come_from_one_table),
};

NAQ_TEST_MAIN(tests)
