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
#include <string.h> /* NAQ_TEST_MAIN */
#include <sys/types.h>

#include <cmocka.h>

#include "naq/naq.h"

#define NAQ_TEST_SERVER_EXTRA_MAX 12

typedef struct {
    pid_t pid;
    int port;
    char dir[256]; /* temp dir holding the store, config and log */
    char url[64];  /* nats://127.0.0.1:<port> */
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
/* One try of the above on a port picked now: 0 once it is ready, -1 when
 * the server exited at start (its log in s->dir says why: usually a port
 * another test took since it was picked); the caller destroys s either way. */
int naq_test_server_try_start_with(naq_test_server *s, const char *const *extra);
/* Fails the test with `what` and the end of s's log, which the teardown
 * removes with s->dir. */
void naq_test_server_fail(const naq_test_server *s, const char *what);
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

/* ---- a JetStream cluster of N nodes on loopback (cluster.c) ---- */

#define NAQ_TEST_CLUSTER_MAX 5

/* The extra arguments of each node point into this struct: it must stay at
 * one address from start to destroy (allocate it, or keep it in a fixture). */
typedef struct {
    int n;
    naq_test_server node[NAQ_TEST_CLUSTER_MAX];
    char name[NAQ_TEST_CLUSTER_MAX][16];   /* server names: "n1", "n2", ... */
    char listen[NAQ_TEST_CLUSTER_MAX][64]; /* each node's route listen URL */
    char routes[NAQ_TEST_CLUSTER_MAX * 64];
    char url[NAQ_TEST_CLUSTER_MAX * 64];    /* every node's client URL, comma-separated */
    int monitor_port[NAQ_TEST_CLUSTER_MAX]; /* each node's HTTP monitoring port (/jsz) */
    char monitor_arg[NAQ_TEST_CLUSTER_MAX][16];
} naq_test_cluster;

/* Starts n nodes (server names n1..nN, routes between them, JetStream
 * clustering, each with its own store) and waits until JetStream has a
 * meta leader. Fails the test on error. */
void naq_test_cluster_start(naq_test_cluster *c, int n);
/* Node i (from 0): killed with SIGKILL keeping its store; restarted on the
 * same ports and store. */
void naq_test_cluster_kill(naq_test_cluster *c, int i);
void naq_test_cluster_restart(naq_test_cluster *c, int i);
/* Waits up to timeout_ms until the cluster can place a stream on every
 * node (a meta leader that knows all its peers); 1 when it can. */
int naq_test_cluster_wait_ready(const naq_test_cluster *c, int64_t timeout_ms);
/* The index of the node named `server_name` ("n2" -> 1), or -1. */
int naq_test_cluster_node_index(const naq_test_cluster *c, const char *server_name);
/* The node leading `stream` (stream info cluster.leader), -1 when none
 * answers within timeout_ms. */
int naq_test_cluster_stream_leader(const naq_test_cluster *c, const char *stream,
                                   int64_t timeout_ms);
/* 1 when the leader of `stream` sees each of the other n - 1 nodes as a
 * current replica with no Raft lag (stream info cluster.replicas). */
int naq_test_cluster_replicas_current(const naq_test_cluster *c, const char *stream);
/* The node the others follow as JetStream meta leader (the /jsz monitoring
 * endpoint of a running node), -1 when none within timeout_ms. */
int naq_test_cluster_meta_leader(const naq_test_cluster *c, int64_t timeout_ms);
/* Node i's own view of a stream's last sequence (its /jsz endpoint);
 * 0 when the node has no copy, -1 when it does not answer. */
int64_t naq_test_cluster_node_last_seq(const naq_test_cluster *c, int i, const char *stream);
/* Stops every node and removes their directories. */
void naq_test_cluster_destroy(naq_test_cluster *c);
/* naq_test_config for the cluster: every node's URL, replicas = n, the
 * spool in node 0's directory. */
void naq_test_cluster_config(const naq_test_cluster *c, naq_config *cfg);

/* For NAQ_TEST_MAIN's argv[1]: "--list" prints the n case names, one per
 * line, and returns 0; another name returns 1 when it is one of the cases,
 * else says so and returns 0 (a filter matching nothing would pass). */
int naq_test_select_case(const struct CMUnitTest *tests, size_t n, const char *arg);

/* Main for cmocka groups: with argv[1] = CASE runs only that case, with
 * --list prints the cases (CTest runs each case on its own:
 * tests/CMakeLists.txt). */
#define NAQ_TEST_MAIN(tests) NAQ_TEST_MAIN_GROUP(tests, NULL, NULL)

/* NAQ_TEST_MAIN with a group setup and teardown, which run around each
 * CTest entry (one case) as they run around a whole run. */
#define NAQ_TEST_MAIN_GROUP(tests, setup, teardown)                                                \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        if (argc > 1) {                                                                            \
            if (!naq_test_select_case(tests, sizeof tests / sizeof tests[0], argv[1]))             \
                return strcmp(argv[1], "--list") == 0 ? 0 : 1;                                     \
            cmocka_set_test_filter(argv[1]);                                                       \
        }                                                                                          \
        return cmocka_run_group_tests(tests, setup, teardown);                                     \
    }

#endif
