/*
 * server_cluster.h - `naq server --cluster N`: N local nats-server nodes
 * forming one JetStream cluster (server_cluster.c), and the pieces of
 * cmd_server.c it shares.
 */
#ifndef NAQ_SERVER_CLUSTER_H
#define NAQ_SERVER_CLUSTER_H

#include "server_encrypt.h"
#include "server_secure.h"

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* JetStream clusters of 3 or 5 nodes are what NATS recommends; more only
 * slow down every replicated write. */
#define NAQ_CLUSTER_MAX_NODES 5
/* Node i routes on its client port + this (4222 -> 6222, the NATS habit). */
#define NAQ_CLUSTER_ROUTE_OFFSET 2000

typedef struct {
    const char *host;   /* listen address of every node */
    int port;           /* client port of node 1; node i has port + i - 1 */
    int nodes;          /* 3..NAQ_CLUSTER_MAX_NODES */
    const char *dir;    /* absolute; node i keeps config, log and store in dir/node-i */
    int64_t max_store;  /* per node, -1 = the server's default */
    int64_t max_memory; /* per node, -1 = the server's default */
    int quiet;
    const naq_server_secure *secure;   /* --tls-*, --auth: every node's clients and routes */
    const naq_server_encrypt *encrypt; /* --encrypt-store, the key loaded: every node's store */
} naq_cluster_opts;

/* Prints each node's configuration to stdout; returns an exit code. */
int naq_cluster_print_config(const naq_cluster_opts *o);
/* Runs the nodes until SIGINT/SIGTERM or a node's unexpected end; returns
 * the exit code of `naq server`. */
int naq_cluster_run(const naq_cluster_opts *o);

/* From cmd_server.c (same behaviour as a single `naq server`). */
int naq__server_bind_error(const char *host, int port);
int naq__server_port_accepts(const char *host, int port);
int naq__server_make_dirs(const char *path);
pid_t naq__server_spawn(const char *conf, const char *log, const sigset_t *child_mask);
void naq__server_show_log_tail(const char *log, off_t from);
/* 1 when the log holds needle after offset from. */
int naq__server_log_has(const char *log, off_t from, const char *needle);
/* Blocks SIGINT, SIGTERM and SIGCHLD (old: the mask before) so none is
 * lost between the forks and the wait loop, which takes them with
 * sigtimedwait from set; the children restore old. */
void naq__server_block_signals(sigset_t *set, sigset_t *old);
/* "exit code 3", "killed by signal 9": a child's wait status in words. */
void naq__server_describe_exit(int status, char *buf, size_t cap);

#endif
