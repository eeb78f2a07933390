/*
 * test_client.c - connecting: streams are created with the configured
 * limits, updated when the configuration changes (and that change is an
 * event), left alone when it does not; nothing answering is a fast, clear
 * error.
 */
#include "harness.h"
#include "events/events.h"
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int64_t event_max_age_s(naq_client *c)
{
    jsStreamInfo *si = NULL;
    assert_int_equal(js_GetStreamInfo(&si, c->js, "NAQ_JOB_EVENTS", NULL, NULL), NATS_OK);
    int64_t age = si->Config->MaxAge / 1000000000LL;
    assert_true(si->Config->AllowDirect);
    jsStreamInfo_Destroy(si);
    return age;
}

static int config_changed_events(naq_client *c)
{
    int n = 0;
    uint64_t seq = 1;
    for (;;) {
        jsDirectGetMsgOptions g;
        jsDirectGetMsgOptions_Init(&g);
        g.Sequence = seq;
        g.NextBySubject = "naq.system.events";
        natsMsg *m = NULL;
        if (js_DirectGetMsg(&m, c->js, "NAQ_JOB_EVENTS", NULL, &g) != NATS_OK)
            break;
        const char *type = NULL, *sq = NULL;
        natsMsgHeader_Get(m, "Naq-Event-Type", &type);
        n += type != NULL && strcmp(type, "system_config_changed") == 0;
        assert_int_equal(natsMsgHeader_Get(m, "Nats-Sequence", &sq), NATS_OK);
        seq = strtoull(sq, NULL, 10) + 1;
        natsMsg_Destroy(m);
    }
    return n;
}

static void streams_follow_the_configuration_and_a_change_is_an_event(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_config cfg;
    naq_test_config(&srv, &cfg);
    naq_client *c = NULL;
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_OK);
    assert_int_equal(event_max_age_s(c), 7 * 86400);
    naq_client_destroy(c);

    /* same configuration again: nothing to change, nothing logged */
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_OK);
    assert_int_equal(naq_client_flush_events(c, 5000), NAQ_OK);
    assert_int_equal(config_changed_events(c), 0);
    naq_client_destroy(c);

    cfg.event_max_age_s = 3600;
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_OK);
    assert_int_equal(event_max_age_s(c), 3600);
    assert_int_equal(naq_client_flush_events(c, 5000), NAQ_OK);
    assert_int_equal(config_changed_events(c), 1);
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static void nothing_listening_fails_fast_saying_how_to_start_a_server(void **state)
{
    (void)state;
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "nats://127.0.0.1:%d", naq_test_free_port());
    naq_client *c = NULL;
    int64_t start = naq__mono_ms();
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_ERR_CONNECT);
    assert_true(naq__mono_ms() - start < 3000);
    assert_null(c);
    assert_non_null(strstr(naq_last_error(), cfg.url));
    assert_non_null(strstr(naq_last_error(), "naq server"));
    assert_non_null(strstr(naq_last_error(), "NAQ_URL"));
}

static void bad_names_in_the_configuration_are_refused_before_connecting(void **state)
{
    (void)state;
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.subject_prefix, sizeof cfg.subject_prefix, "my.app");
    naq_client *c = NULL;
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "NAQ_NATS_SUBJECT_PREFIX"));

    /* A URL that cannot be parsed is the caller's mistake, not a server
     * that is down. */
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "nats://127.0.0.1:notaport");
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "nats://HOST:PORT"));
    assert_null(c);
}

/* Writes a throwaway self-signed certificate for 127.0.0.1 into dir. */
static void make_certificate(const char *dir, char *cert, char *key, size_t cap)
{
    snprintf(cert, cap, "%s/cert.pem", dir);
    snprintf(key, cap, "%s/key.pem", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("openssl", "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
               key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
               "subjectAltName=IP:127.0.0.1", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("openssl could not make a certificate (install it: scripts/install-deps.sh)");
}

static void a_tls_handshake_failure_says_so_not_that_nothing_answers(void **state)
{
    (void)state;
    char dir[] = "/tmp/naq-test-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[128], key[128];
    make_certificate(dir, cert, key, sizeof cert);
    const char *tls[] = {"--tls", "--tlscert", cert, "--tlskey", key, NULL};
    naq_test_server srv;
    naq_test_server_start_with(&srv, tls);

    /* The server wants TLS; its certificate is trusted nowhere. */
    naq_config cfg;
    naq_test_config(&srv, &cfg);
    naq_client *c = NULL;
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_ERR_CONNECT);
    assert_null(c);
    const char *m = naq_last_error();
    if (strstr(m, "not trusted") == NULL || strstr(m, "NAQ_TLS_CA") == NULL ||
        strstr(m, srv.url) == NULL || strstr(m, "cannot reach") != NULL ||
        strstr(m, "naq server") != NULL)
        fail_msg("message: %s", m);

    /* Trusting the certificate is all it takes (OpenSSL reads SSL_CERT_FILE). */
    setenv("SSL_CERT_FILE", cert, 1);
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_OK);
    naq_client_destroy(c);
    unsetenv("SSL_CERT_FILE");
    naq_test_server_destroy(&srv);
    naq_test_rmtree(dir);
}

/* A racer: waits for the start, then connects (making every stream and
 * bucket) and makes the event dead-letter stream; exits 0 when both work. */
static void race_to_connect(const char *url, int start_fd)
{
    char go;
    if (read(start_fd, &go, 1) < 0)
        _exit(3);
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%s", url);
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK || naq__event_dlq_ensure(c) != NAQ_OK) {
        fprintf(stderr, "racer %d: %s\n", (int)getpid(), naq_last_error());
        _exit(1);
    }
    naq_client_destroy(c);
    _exit(0);
}

/* Processes that start together on a fresh server (a worker, a scheduler
 * and a producer started by one script) all create the streams and
 * buckets; every one of them must connect. */
static void first_connects_racing_on_a_fresh_server_all_succeed(void **state)
{
    (void)state;
    enum { ROUNDS = 100, RACERS = 8 };
    /* The server's window for the race is small (2.9.10 answers a losing
     * create with "subjects overlap"): the old code failed about one round
     * in 150. Fork before any client exists in this process (nats.c's
     * threads do not survive a fork). */
    for (int round = 0; round < ROUNDS; round++) {
        naq_test_server srv;
        naq_test_server_start(&srv);
        int start[2];
        assert_int_equal(pipe(start), 0);
        pid_t pids[RACERS];
        for (int k = 0; k < RACERS; k++) {
            pids[k] = fork();
            assert_true(pids[k] >= 0);
            if (pids[k] == 0) {
                close(start[1]);
                race_to_connect(srv.url, start[0]);
            }
        }
        close(start[0]);
        close(start[1]); /* every racer's read returns now */
        for (int k = 0; k < RACERS; k++) {
            int st = 0;
            assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fail_msg("round %d: racer %d of %d failed (status %d)", round, k, RACERS, st);
        }
        naq_test_server_destroy(&srv);
    }
}

/* What a losing create meets, made on purpose: its stream there with
 * another configuration is used; its subjects held by a stream of another
 * name are a conflict, reported as the server's. */
static void a_stream_create_takes_the_same_stream_made_first_and_refuses_a_conflict(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_client *c = naq_test_connect(&srv);
    const char *subjects[] = {"race.>"};
    jsStreamConfig sc;
    naq__stream_config_init(&sc, "RACE", subjects, 1, 1);
    int existed = -1;
    jsErrCode jerr = 1;
    assert_int_equal(naq__stream_create(c->js, &sc, &existed, &jerr), NATS_OK);
    assert_int_equal(existed, 0);
    assert_int_equal(jerr, 0);

    sc.MaxMsgs = 10; /* another process's configuration */
    assert_int_equal(naq__stream_create(c->js, &sc, &existed, &jerr), NATS_OK);
    assert_int_equal(existed, 1);

    naq__stream_config_init(&sc, "OTHER", subjects, 1, 1);
    assert_int_not_equal(naq__stream_create(c->js, &sc, &existed, &jerr), NATS_OK);
    assert_int_equal(existed, 0);
    assert_int_equal(jerr, 10065); /* subjects overlap */
    naq_client_destroy(c);
    naq_test_server_destroy(&srv);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(streams_follow_the_configuration_and_a_change_is_an_event),
    cmocka_unit_test(nothing_listening_fails_fast_saying_how_to_start_a_server),
    cmocka_unit_test(bad_names_in_the_configuration_are_refused_before_connecting),
    cmocka_unit_test(a_tls_handshake_failure_says_so_not_that_nothing_answers),
    cmocka_unit_test(first_connects_racing_on_a_fresh_server_all_succeed),
    cmocka_unit_test(a_stream_create_takes_the_same_stream_made_first_and_refuses_a_conflict),
};

NAQ_TEST_MAIN(tests)
