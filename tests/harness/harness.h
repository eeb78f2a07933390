/*
 * harness.h - what every naq test shares: real nats-server processes on free
 * loopback ports with their own temporary stores, configs pointing at them,
 * and a way to run the naq CLI and capture what it prints.
 *
 * Servers are real: the set-up script installs Debian's nats-server, and a
 * test that cannot start one fails (it never skips).
 */
#ifndef NAQ_TEST_HARNESS_H
#define NAQ_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "naq/naq.h"

#define NAQ_TEST_SERVER_EXTRA_MAX 8

typedef struct {
    pid_t pid;
    int port;
    char dir[256];   /* temp dir holding the store, config and log */
    char url[64];    /* nats://127.0.0.1:<port> */
    /* More nats-server arguments (NULL-terminated), kept for restarts. */
    const char *extra[NAQ_TEST_SERVER_EXTRA_MAX + 1];
} naq_test_server;

/* Starts nats-server with JetStream on a free loopback port and waits until
 * it accepts connections. Fails the test on error. */
void naq_test_server_start(naq_test_server *s);
/* The same with more nats-server arguments (NULL-terminated, at most
 * NAQ_TEST_SERVER_EXTRA_MAX; the strings must outlive the server), e.g.
 * "--tls", "--tlscert", path, ... */
void naq_test_server_start_with(naq_test_server *s, const char *const *extra);
/* Stops the server (SIGTERM, then SIGKILL) keeping its store, so that
 * naq_test_server_restart() brings it back on the same port and store. */
void naq_test_server_stop(naq_test_server *s);
void naq_test_server_restart(naq_test_server *s);
/* Kills the server with SIGKILL (a crash), keeping its store. */
void naq_test_server_kill(naq_test_server *s);
/* Stops the server and removes its directory. */
void naq_test_server_destroy(naq_test_server *s);

/* A config for a test: the server's URL, a spool dir inside the server's
 * temp dir, a short ack wait. */
void naq_test_config(const naq_test_server *s, naq_config *cfg);
/* Connects a client with naq_test_config; fails the test on error. */
naq_client *naq_test_connect(const naq_test_server *s);

/* A loopback TCP port that nothing listens on right now. */
int naq_test_free_port(void);

/* Runs the naq CLI (NAQ_BIN) with argv (NULL-terminated, without "naq"),
 * extra environment entries env (NULL-terminated NAME=VALUE, may be NULL),
 * and returns its exit code; *out (heap, free()) gets stdout, *err stderr
 * (either may be NULL to discard). */
int naq_test_run_cli(const char *const *argv, const char *const *env, char **out, char **err);

/* Starts the naq CLI in the background (stdout/stderr to log_path). */
pid_t naq_test_spawn_cli(const char *const *argv, const char *const *env, const char *log_path);

/* Starts this test program again as a child process (so the child begins
 * with a fresh nats.c, which a plain fork() of a process with nats.c
 * threads does not give). env holds NAME=VALUE entries (NULL-terminated)
 * that take precedence over the inherited environment; the test's main
 * looks for one of them to run the child's part. argv0 names the child.
 * With log_path, its stdout and stderr go there. The child dies with the
 * test (PR_SET_PDEATHSIG), so a failed test never leaves one behind. */
pid_t naq_test_spawn_self(const char *argv0, const char *const *env, const char *log_path);

/* Polls cond(ud) every 20 ms until it is true or timeout_ms passes. */
int naq_test_wait_for(int (*cond)(void *ud), void *ud, int64_t timeout_ms);

/* Removes a directory tree (rm -rf). */
void naq_test_rmtree(const char *dir);

/* Main for cmocka groups: if argv[1] is given, runs only the test whose
 * name matches it (so one case can run alone). */
#define NAQ_TEST_MAIN(tests)                                                                        \
    int main(int argc, char **argv)                                                                 \
    {                                                                                               \
        if (argc > 1)                                                                               \
            cmocka_set_test_filter(argv[1]);                                                        \
        return cmocka_run_group_tests(tests, NULL, NULL);                                           \
    }

#endif
