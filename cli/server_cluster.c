/*
 * server_cluster.c - `naq server --cluster N`: N nats-server nodes on one
 * machine forming a JetStream cluster, for development and tests.
 *
 * naq builds no clustering of its own: this writes one ordinary
 * nats-server config per node (server name, client port P+i-1, route port
 * P+i-1+2000, routes to every node, JetStream with its own store) and
 * supervises the children the way a single `naq server` does (same spawn,
 * same signal handling). The printed configs are the starting point of a
 * real multi-host cluster (docs/deployment.md): only the addresses change.
 *
 * "Ready" means more than "the ports accept": a JetStream cluster answers
 * API requests only once its nodes have elected a meta leader (a few
 * seconds after start). Until then a stream create fails with "JetStream
 * system temporarily unavailable", so we wait until a node's log reports
 * the leader. The log, not an API request: with --auth and TLS a request
 * would need a user and a trusted CA of its own, and the log needs none.
 *
 * --tls-*, --auth and --encrypt-store apply to every node as they do to a
 * single server (server_secure.c, server_encrypt.c). Routes get what a
 * client port has: with --tls-ca, TLS with the node certificate, each node
 * verifying the others with that CA (without a CA the nodes cannot trust
 * each other's certificate, so routes stay plain, which cmd_server.c allows
 * on loopback only); with --auth, a password of their own, drawn at each
 * start, since a route port that takes anyone would let a stranger past
 * the users of the auth file.
 */
#include "server_cluster.h"

#include "cli.h"
/* naq__mono_ms */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLUSTER_NAME "naq"
#define START_TIMEOUT_MS 10000
#define LEADER_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 30000
/* R3 on 3 nodes and on 5: three copies survive one loss, and R5 makes
 * every write wait for a third acknowledgement. */
#define CLUSTER_REPLICAS 3
#define ROUTE_USER "naq-route"
#define ROUTE_PASSWORD_SIZE 33 /* 16 random bytes in hex, and the NUL */
/* What nats-server 2.9 logs on the leader and on the others once elected. */
#define LEADER_SELF "Self is new JetStream cluster metadata leader"
#define LEADER_OTHER "JetStream cluster new metadata leader:"

typedef struct {
    pid_t pid;
    char dir[NAQ_URL_MAX + 16];
    char conf[NAQ_URL_MAX + 48];
    char log[NAQ_URL_MAX + 48];
    off_t log_start;
} node;

/* Where clients and routes connect: a wildcard listen address is reached
 * on loopback. */
static const char *connect_host(const naq_cluster_opts *o)
{
    return strcmp(o->host, "0.0.0.0") == 0 ? "127.0.0.1" : o->host;
}

static void host_port(char *buf, size_t cap, const char *host, int port)
{
    int v6 = strchr(host, ':') != NULL;
    snprintf(buf, cap, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* The route URL of node k, with the route password when there is one. */
static void route_url(char *buf, size_t cap, const naq_cluster_opts *o, int k, const char *pw)
{
    char addr[280];
    host_port(addr, sizeof addr, connect_host(o), o->port + k - 1 + NAQ_CLUSTER_ROUTE_OFFSET);
    snprintf(buf, cap, "nats-route://%s%s%s%s", pw ? ROUTE_USER ":" : "", pw ? pw : "",
             pw ? "@" : "", addr);
}

/* Node i's configuration (i from 1); route_pw is NULL without --auth. The
 * route list names every node, itself included: nats-server skips its own
 * address, and one list for all nodes is what an operator copies to every
 * host. 0, or -1 with errno. */
static int write_node_config(FILE *f, const naq_cluster_opts *o, int i, const char *store,
                             const char *route_pw)
{
    char addr[280], url[400];
    fprintf(f, "# naq cluster node %d of %d ('naq server --cluster %d'); edits are overwritten.\n",
            i, o->nodes, o->nodes);
    fprintf(f, "server_name: \"naq-%d\"\n", i);
    host_port(addr, sizeof addr, o->host, o->port + i - 1);
    fprintf(f, "listen: \"%s\"\n", addr);
    fprintf(f, "jetstream {\n  store_dir: \"%s\"\n", store);
    if (o->max_store >= 0)
        fprintf(f, "  max_file_store: %lld\n", (long long)o->max_store);
    if (o->max_memory >= 0)
        fprintf(f, "  max_memory_store: %lld\n", (long long)o->max_memory);
    naq_server_encrypt_write(f, o->encrypt);
    fprintf(f, "}\n");
    host_port(addr, sizeof addr, o->host, o->port + i - 1 + NAQ_CLUSTER_ROUTE_OFFSET);
    fprintf(f, "cluster {\n  name: \"%s\"\n  listen: \"%s\"\n", CLUSTER_NAME, addr);
    naq_server_secure_write_route_tls(f, o->secure);
    if (route_pw != NULL)
        fprintf(f, "  authorization {\n    user: \"" ROUTE_USER "\"\n    password: \"%s\"\n  }\n",
                route_pw);
    fprintf(f, "  routes: [\n");
    for (int k = 1; k <= o->nodes; k++) {
        route_url(url, sizeof url, o, k, route_pw);
        fprintf(f, "    \"%s\"\n", url);
    }
    fprintf(f, "  ]\n}\n");
    return naq_server_secure_write(f, o->secure);
}

/* A fresh route password when --auth is given (pw gets ROUTE_PASSWORD_SIZE
 * characters), else "". 0, or -1 when the system has no randomness. */
static int draw_route_password(const naq_cluster_opts *o, char *pw)
{
    unsigned char raw[(ROUTE_PASSWORD_SIZE - 1) / 2];
    pw[0] = '\0';
    if (o->secure->auth == NULL)
        return 0;
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        naq_cli_error("cannot draw a route password: %s", strerror(errno));
        return -1;
    }
    for (size_t k = 0; k < sizeof raw; k++)
        snprintf(pw + 2 * k, 3, "%02x", raw[k]);
    return 0;
}

static void node_paths(const naq_cluster_opts *o, int i, node *n)
{
    memset(n, 0, sizeof *n);
    snprintf(n->dir, sizeof n->dir, "%s/node-%d", o->dir, i);
    snprintf(n->conf, sizeof n->conf, "%s/nats-server.conf", n->dir);
    snprintf(n->log, sizeof n->log, "%s/server.log", n->dir);
}

/* The URL list clients use: every node, so any one of them will do. */
static void cluster_url(const naq_cluster_opts *o, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int i = 1; i <= o->nodes; i++) {
        char addr[280];
        host_port(addr, sizeof addr, connect_host(o), o->port + i - 1);
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s://%s", i > 1 ? "," : "",
                 naq_server_secure_tls(o->secure) ? "tls" : "nats", addr);
    }
}

int naq_cluster_print_config(const naq_cluster_opts *o)
{
    if (o->port + o->nodes - 1 + NAQ_CLUSTER_ROUTE_OFFSET > 65535) {
        naq_cli_error("--port %d is too high for %d nodes: route ports go up to port + %d", o->port,
                      o->nodes, NAQ_CLUSTER_ROUTE_OFFSET + o->nodes - 1);
        return NAQ_EXIT_FAILURE;
    }
    char pw[ROUTE_PASSWORD_SIZE];
    if (draw_route_password(o, pw) != 0)
        return NAQ_EXIT_FAILURE;
    int failed = 0;
    for (int i = 1; i <= o->nodes && !failed; i++) {
        node n;
        node_paths(o, i, &n);
        printf("%s# ---- %s\n", i > 1 ? "\n" : "", n.conf);
        failed = write_node_config(stdout, o, i, n.dir, pw[0] ? pw : NULL) != 0;
    }
    return fflush(stdout) == 0 && !failed ? NAQ_EXIT_OK : NAQ_EXIT_FAILURE;
}

/* Every client and route port free, before anything is created. */
static int ports_free(const naq_cluster_opts *o)
{
    if (o->port + o->nodes - 1 + NAQ_CLUSTER_ROUTE_OFFSET > 65535) {
        naq_cli_error("--port %d is too high for %d nodes: route ports go up to port + %d", o->port,
                      o->nodes, NAQ_CLUSTER_ROUTE_OFFSET + o->nodes - 1);
        return 0;
    }
    for (int k = 0; k < 2 * o->nodes; k++) {
        int port = o->port + k % o->nodes + (k >= o->nodes ? NAQ_CLUSTER_ROUTE_OFFSET : 0);
        int err = naq__server_bind_error(o->host, port);
        if (err == EADDRINUSE) {
            naq_cli_error("port %d is in use (a %d-node cluster needs client ports %d-%d and "
                          "route ports %d-%d); is a server already running? use --port",
                          port, o->nodes, o->port, o->port + o->nodes - 1,
                          o->port + NAQ_CLUSTER_ROUTE_OFFSET,
                          o->port + NAQ_CLUSTER_ROUTE_OFFSET + o->nodes - 1);
            return 0;
        }
        if (err != 0) {
            naq_cli_error("cannot listen on %s:%d: %s", o->host, port,
                          err < 0 ? "the host name does not resolve" : strerror(err));
            return 0;
        }
    }
    return 1;
}

/* Checks each node's store against the key (server_encrypt.c), then writes
 * the configurations. 0, or -1 (printed). */
static int write_configs(const naq_cluster_opts *o, node *nodes)
{
    char pw[ROUTE_PASSWORD_SIZE];
    if (draw_route_password(o, pw) != 0)
        return -1;
    for (int i = 1; i <= o->nodes; i++) {
        node *n = &nodes[i - 1];
        node_paths(o, i, n);
        if (naq__server_make_dirs(n->dir) != 0) {
            naq_cli_error("cannot create data directory %s: %s", n->dir, strerror(errno));
            return -1;
        }
        if (naq_server_encrypt_guard(o->encrypt, n->dir) != NAQ_EXIT_OK)
            return -1;
        FILE *f = fopen(n->conf, "w");
        if (f == NULL) {
            naq_cli_error("cannot write %s: %s", n->conf, strerror(errno));
            return -1;
        }
        int failed = write_node_config(f, o, i, n->dir, pw[0] ? pw : NULL) != 0;
        if (fclose(f) != 0 || failed) {
            naq_cli_error("cannot write %s: %s", n->conf, strerror(errno));
            return -1;
        }
        struct stat st;
        n->log_start = stat(n->log, &st) == 0 ? st.st_size : 0;
    }
    if (naq_server_encrypt_export(o->encrypt) != 0) {
        naq_cli_error("cannot pass the store key to nats-server: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int wait_signal(const sigset_t *set, int64_t timeout_ms)
{
    struct timespec ts = {(time_t)(timeout_ms / 1000), (long)(timeout_ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* The first node that has ended (reaped here), or -1. */
static int ended_node(node *nodes, int count, int *status)
{
    for (int i = 0; i < count; i++)
        if (nodes[i].pid > 0 && waitpid(nodes[i].pid, status, WNOHANG) == nodes[i].pid) {
            nodes[i].pid = 0;
            return i;
        }
    return -1;
}

/* Stops every running node with SIGINT (nats-server 2.9.10 exits 0 on it),
 * SIGKILL after STOP_TIMEOUT_MS or a second signal. Returns an exit code. */
static int stop_nodes(const naq_cluster_opts *o, node *nodes, const sigset_t *set, int announce)
{
    if (announce && !o->quiet) {
        printf("naq cluster stopping (Ctrl-C again to kill it)\n");
        fflush(stdout);
    }
    for (int i = 0; i < o->nodes; i++)
        if (nodes[i].pid > 0)
            kill(nodes[i].pid, SIGINT);
    int64_t deadline = naq__mono_ms() + STOP_TIMEOUT_MS;
    int killed = 0, unclean = 0;
    for (;;) {
        int status = 0, running = 0;
        for (int i = 0; i < o->nodes; i++) {
            if (nodes[i].pid <= 0)
                continue;
            if (waitpid(nodes[i].pid, &status, WNOHANG) == nodes[i].pid) {
                nodes[i].pid = 0;
                unclean |= !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            } else {
                running++;
            }
        }
        if (running == 0)
            break;
        int sig = wait_signal(set, 200);
        if (!killed && (sig == SIGINT || sig == SIGTERM || naq__mono_ms() >= deadline)) {
            for (int i = 0; i < o->nodes; i++)
                if (nodes[i].pid > 0)
                    kill(nodes[i].pid, SIGKILL);
            killed = 1;
        }
    }
    if (killed || unclean) {
        naq_cli_error("not every node stopped cleanly%s; see %s/node-*/server.log",
                      killed ? " (killed)" : "", o->dir);
        return NAQ_EXIT_FAILURE;
    }
    if (announce && !o->quiet) {
        printf("naq cluster stopped\n");
        fflush(stdout);
    }
    return NAQ_EXIT_OK;
}

/* 1 when what node n logged since its start reports an elected meta leader. */
static int leader_logged(const node *n)
{
    return naq__server_log_has(n->log, n->log_start, LEADER_SELF) ||
           naq__server_log_has(n->log, n->log_start, LEADER_OTHER);
}

/* 1 once a node reports a meta leader, which answers JetStream API
 * requests from then on. *accepting goes to 1 once every client port has
 * accepted a connection; the ports are not probed after that (a probe
 * that sends nothing is a "TLS handshake error" in the logs). */
static int cluster_ready(const naq_cluster_opts *o, const node *nodes, int *accepting)
{
    for (int k = 0; k < o->nodes && !*accepting; k++)
        if (!naq__server_port_accepts(connect_host(o), o->port + k))
            return 0;
    *accepting = 1;
    for (int k = 0; k < o->nodes; k++)
        if (leader_logged(&nodes[k]))
            return 1;
    return 0;
}

/* A node that ended while starting: say which and why, then stop the rest. */
static int node_failed(const naq_cluster_opts *o, node *nodes, int i, int status,
                       const sigset_t *set)
{
    char how[64];
    naq__server_describe_exit(status, how, sizeof how);
    naq_cli_error("node %d (port %d) exited (%s)", i + 1, o->port + i, how);
    naq__server_show_log_tail(nodes[i].log, nodes[i].log_start);
    stop_nodes(o, nodes, set, 0);
    return NAQ_EXIT_FAILURE;
}

/* Starts the nodes and waits for a meta leader. Returns -1 when ready,
 * else the exit code to end with (every node stopped). */
static int start_nodes(const naq_cluster_opts *o, node *nodes, const sigset_t *set,
                       const sigset_t *child_mask)
{
    for (int i = 0; i < o->nodes; i++) {
        nodes[i].pid = naq__server_spawn(nodes[i].conf, nodes[i].log, child_mask);
        if (nodes[i].pid < 0) {
            nodes[i].pid = 0;
            stop_nodes(o, nodes, set, 0);
            return NAQ_EXIT_FAILURE;
        }
    }
    int64_t start = naq__mono_ms();
    int status = 0, accepting = 0;
    while (!cluster_ready(o, nodes, &accepting)) {
        int i = ended_node(nodes, o->nodes, &status);
        if (i >= 0)
            return node_failed(o, nodes, i, status, set);
        int64_t waited = naq__mono_ms() - start;
        if ((!accepting && waited > START_TIMEOUT_MS) || waited > LEADER_TIMEOUT_MS) {
            naq_cli_error(!accepting ? "not every node accepted connections within %d s"
                                     : "the nodes elected no JetStream meta leader within %d s "
                                       "(do the routes connect? see the logs%s)",
                          (int)(waited / 1000),
                          naq_server_secure_tls(o->secure)
                              ? "; routes use TLS, so the certificate must name the route "
                                "host and be signed by --tls-ca, or be the same on every node"
                              : "");
            for (int k = 0; k < o->nodes; k++)
                naq__server_show_log_tail(nodes[k].log, nodes[k].log_start);
            stop_nodes(o, nodes, set, 0);
            return NAQ_EXIT_FAILURE;
        }
        int sig = wait_signal(set, 100);
        if (sig == SIGINT || sig == SIGTERM)
            return stop_nodes(o, nodes, set, 1);
    }
    return -1;
}

int naq_cluster_run(const naq_cluster_opts *o)
{
    if (!ports_free(o))
        return NAQ_EXIT_FAILURE;
    node nodes[NAQ_CLUSTER_MAX_NODES];
    if (write_configs(o, nodes) != 0)
        return NAQ_EXIT_FAILURE;
    char url[NAQ_CLUSTER_MAX_NODES * 300];
    cluster_url(o, url, sizeof url);

    /* As in cmd_server.c: signals blocked before the forks, taken with
     * sigtimedwait; the children get the old mask back. */
    sigset_t set, old;
    naq__server_block_signals(&set, &old);
    int rc = start_nodes(o, nodes, &set, &old);
    if (rc >= 0)
        return rc;
    if (!o->quiet) {
        printf("naq cluster ready: %d nodes, JetStream meta leader elected (data in %s/node-*)\n",
               o->nodes, o->dir);
        printf("NAQ_URL=%s\n", url);
        printf("NAQ_REPLICAS=%d\n", CLUSTER_REPLICAS);
        printf("hint: export NAQ_URL=%s NAQ_REPLICAS=%d\n", url, CLUSTER_REPLICAS);
        printf("nats-server logs to %s/node-*/server.log; Ctrl-C to stop\n", o->dir);
        fflush(stdout);
    }
    for (;;) {
        int sig = wait_signal(&set, 1000);
        if (sig == SIGINT || sig == SIGTERM)
            return stop_nodes(o, nodes, &set, 1);
        int status = 0;
        int i = ended_node(nodes, o->nodes, &status);
        if (i >= 0) {
            char how[64];
            naq__server_describe_exit(status, how, sizeof how);
            naq_cli_error("node %d (port %d) exited unexpectedly (%s); stopping the others", i + 1,
                          o->port + i, how);
            naq__server_show_log_tail(nodes[i].log, nodes[i].log_start);
            stop_nodes(o, nodes, &set, 1);
            return NAQ_EXIT_FAILURE;
        }
    }
}
