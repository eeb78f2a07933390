/*
 * cmd_server.c - `naq server`: a local nats-server with JetStream, set up
 * for naq, as a supervised child process.
 *
 * We write a config file into the data directory and run Debian's
 * nats-server on it rather than reimplementing anything: the child's output
 * goes to DIR/server.log, we wait until it accepts TCP connections, and we
 * stop it on SIGINT/SIGTERM.
 *
 * Signals are blocked in this process and taken with sigtimedwait(), so the
 * supervision loop has no handler races; the child gets the original mask
 * back before exec. The child runs in its own process group (a terminal's
 * Ctrl-C reaches only us, and we decide how to stop it) and dies with us
 * (PR_SET_PDEATHSIG), so a killed `naq server` leaves no orphan holding the
 * port. nats-server 2.9.10 exits 0 after SIGINT but 1 after SIGTERM, so we
 * always stop it with SIGINT.
 */
#include "cli.h"
#include "server_encrypt.h" /* --encrypt-store */
#include "server_secure.h"  /* --tls-*, --auth */
/* naq__default_data_dir: the same data root as the logger's spool. */
#include "internal.h"
#include "server_cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: naq server [--port P] [--host H] [--data DIR] [--max-store SIZE]\n"
    "                  [--max-memory SIZE] [--cluster N] [--print-config] [--quiet]\n"
    "                  [--tls-cert FILE --tls-key FILE [--tls-ca FILE]] [--auth FILE]\n"
    "                  [--encrypt-store KEYFILE]\n"
    "\n"
    "Runs nats-server with JetStream for naq until Ctrl-C or SIGTERM, then stops\n"
    "it cleanly. The server keeps its data (queued jobs, events) in DIR across\n"
    "restarts and logs to DIR/server.log.\n"
    "\n"
    "  -p, --port P           port to listen on (default 4222)\n"
    "      --host H           address to listen on (default 127.0.0.1, loopback only)\n"
    "  -d, --data DIR         data directory (default $XDG_DATA_HOME/naq/server,\n"
    "                         or ~/.local/share/naq/server)\n"
    "      --max-store SIZE   JetStream file storage limit (e.g. 10G; default: the\n"
    "                         server's own, 75% of the free disk)\n"
    "      --max-memory SIZE  JetStream memory storage limit (e.g. 512M)\n" NAQ_SERVER_SECURE_USAGE
        NAQ_SERVER_ENCRYPT_USAGE
    "      --cluster N        N nodes (3 or 5) on consecutive ports from P, routes on\n"
    "                         P+2000..., a JetStream cluster; stores in DIR/node-1...\n"
    "                         (see docs/deployment.md); prints NAQ_URL and NAQ_REPLICAS.\n"
    "                         --tls-*, --auth and --encrypt-store apply to every node;\n"
    "                         with --tls-ca routes use TLS too, and with --auth a password\n"
    "                         of their own\n"
    "      --print-config     print the nats-server configuration (each node's with\n"
    "                         --cluster) and exit without starting anything\n"
    "  -q, --quiet            print only errors\n"
    "  -h, --help             this help\n"
    "\n"
    "examples:\n"
    "  naq server                          # nats://127.0.0.1:4222\n"
    "  naq server --port 4333 --data /tmp/naq && export NAQ_URL=nats://127.0.0.1:4333\n"
    "  naq server --cluster 3              # nodes on 4222-4224, then set NAQ_URL and\n"
    "                                      # NAQ_REPLICAS=3 as it prints\n"
    "\n"
    "exit codes: 0 stopped cleanly, 1 failure (port in use, nats-server missing\n"
    "or exited), 2 bad usage\n";

enum {
    OPT_HOST = NAQ_CLI_OPT_FIRST_FREE,
    OPT_MAX_STORE,
    OPT_MAX_MEMORY,
    OPT_CLUSTER,
    OPT_PRINT_CONFIG
};

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 30000
#define DEBIAN_NATS_SERVER "/usr/sbin/nats-server"

typedef struct {
    const char *cmd;
    const char *host;
    int port;
    char dir[NAQ_URL_MAX];
    int64_t max_store;  /* -1 = server default */
    int64_t max_memory; /* -1 = server default */
    int quiet;
    char conf[NAQ_URL_MAX + 32];
    char log[NAQ_URL_MAX + 32];
    off_t log_start; /* size of the log before this run: the tail shows only this run */
    char url[NAQ_URL_MAX];
    naq_server_secure secure;   /* server_secure.c */
    naq_server_encrypt encrypt; /* server_encrypt.c; the key is heap once loaded */
} server_opts;

/* mkdir -p with mode 0700 for what it creates (the store holds job data). */
static int make_dirs(const char *path)
{
    char buf[NAQ_URL_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Resolves host:port for a TCP socket; NULL on failure. */
static struct addrinfo *resolve(const char *host, int port, int passive)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    return getaddrinfo(host, service, &hints, &res) == 0 ? res : NULL;
}

/* 1 when something at host:port accepts a TCP connection (readiness). */
static int port_accepts(const char *host, int port)
{
    struct addrinfo *res = resolve(host, port, 0);
    int ok = 0;
    for (struct addrinfo *a = res; a != NULL && !ok; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        ok = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
        close(fd);
    }
    if (res != NULL)
        freeaddrinfo(res);
    return ok;
}

/* Can nats-server listen on host:port? Binds a socket the way it does
 * (SO_REUSEADDR, so a port in TIME_WAIT counts as free). 0 when it can,
 * -1 when the host does not resolve, else the errno (EADDRINUSE: taken;
 * EADDRNOTAVAIL: not an address of this machine). */
static int bind_error(const char *host, int port)
{
    struct addrinfo *res = resolve(host, port, 1);
    if (res == NULL)
        return -1;
    int err = 0;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        err = bind(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        close(fd);
        if (err == 0 || err == EADDRINUSE)
            break;
    }
    freeaddrinfo(res);
    return err;
}

/* The config file is ours: rewritten at every start from the flags. */
static int write_config(server_opts *o)
{
    int v6 = strchr(o->host, ':') != NULL;
    FILE *f = fopen(o->conf, "w");
    if (f == NULL) {
        naq_cli_error("cannot write %s: %s", o->conf, strerror(errno));
        return -1;
    }
    fprintf(f,
            "# Written by 'naq server' at every start; edits are overwritten.\n"
            "listen: \"%s%s%s:%d\"\n"
            "jetstream {\n"
            "  store_dir: \"%s\"\n",
            v6 ? "[" : "", o->host, v6 ? "]" : "", o->port, o->dir);
    if (o->max_store >= 0)
        fprintf(f, "  max_file_store: %lld\n", (long long)o->max_store);
    if (o->max_memory >= 0)
        fprintf(f, "  max_memory_store: %lld\n", (long long)o->max_memory);
    naq_server_encrypt_write(f, &o->encrypt);
    fprintf(f, "}\n");
    if (naq_server_secure_write(f, &o->secure) != 0 || fclose(f) != 0) {
        naq_cli_error("cannot write %s: %s", o->conf, strerror(errno));
        return -1;
    }
    return 0;
}

/* Prints the last lines this run added to the log, indented, to stderr. */
static void show_log_tail(const server_opts *o)
{
    int fd = open(o->log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[8192];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end - (off_t)(sizeof buf - 1);
    if (from < o->log_start)
        from = o->log_start;
    ssize_t n = from < end ? pread(fd, buf, (size_t)(end - from), from) : 0;
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    /* Keep the last 15 lines. */
    int lines = 0;
    char *start = buf;
    for (char *p = buf + n - 1; p > buf; p--) {
        if (*p == '\n' && p[1] != '\0' && ++lines == 15) {
            start = p + 1;
            break;
        }
    }
    fprintf(stderr, "last lines of %s:\n", o->log);
    for (char *line = start; *line != '\0';) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        fprintf(stderr, "  %.*s\n", (int)len, line);
        line += len + (nl ? 1 : 0);
    }
}

/* 1 when the log holds `needle` after offset `from` (this run's part):
 * read in chunks that overlap by the needle's length, so none is missed. */
static int log_has(const char *log, off_t from, const char *needle)
{
    int fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[65536];
    size_t keep = strlen(needle) - 1;
    int found = 0;
    for (ssize_t n; !found && (n = pread(fd, buf, sizeof buf - 1, from)) > 0;) {
        buf[n] = '\0';
        found = strstr(buf, needle) != NULL;
        if ((size_t)n <= keep)
            break;
        from += n - (off_t)keep;
    }
    close(fd);
    return found;
}

/* 1 when this run's log says the port was taken. */
static int log_says_port_in_use(const server_opts *o)
{
    return log_has(o->log, o->log_start, "address already in use");
}

static int port_in_use(const server_opts *o)
{
    naq_cli_error("port %d is in use: is a server already running? use --port", o->port);
    return NAQ_EXIT_FAILURE;
}

/* Forks nats-server -c CONF. Reports exec failure through a close-on-exec
 * pipe, so "not installed" is told apart from "started and exited". */
static pid_t spawn(const server_opts *o, const sigset_t *child_mask)
{
    int logfd = open(o->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        naq_cli_error("cannot open %s: %s", o->log, strerror(errno));
        return -1;
    }
    int errpipe[2];
    if (pipe(errpipe) != 0) {
        naq_cli_error("pipe: %s", strerror(errno));
        close(logfd);
        return -1;
    }
    fcntl(errpipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(errpipe[1], F_SETFD, FD_CLOEXEC);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        naq_cli_error("fork: %s", strerror(errno));
        close(logfd);
        close(errpipe[0]);
        close(errpipe[1]);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1); /* the parent died before prctl */
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        sigprocmask(SIG_SETMASK, child_mask, NULL);
        char *const args[] = {"nats-server", "-c", (char *)o->conf, NULL};
        execvp("nats-server", args);
        /* Debian installs it in /usr/sbin, which is not on a user's PATH. */
        if (errno == ENOENT)
            execv(DEBIAN_NATS_SERVER, args);
        int e = errno;
        ssize_t w = write(errpipe[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(logfd);
    close(errpipe[1]);
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(errpipe[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof child_errno) {
        waitpid(pid, NULL, 0);
        if (child_errno == ENOENT)
            naq_cli_error("nats-server is not installed; run scripts/install-deps.sh or apt-get "
                          "install nats-server");
        else
            naq_cli_error("cannot run nats-server: %s", strerror(child_errno));
        return -1;
    }
    return pid;
}

/* Waits for a signal or timeout_ms. Returns the signal, 0 on timeout. */
static int wait_signal(const sigset_t *set, int64_t timeout_ms)
{
    struct timespec ts = {(time_t)(timeout_ms / 1000), (long)(timeout_ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* 1 when the child has ended; *status gets its wait status. */
static int reaped(pid_t pid, int *status)
{
    return waitpid(pid, status, WNOHANG) == pid;
}

static void describe_exit(int status, char *buf, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(buf, cap, "exit code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, cap, "status %d", status);
}

/* Stops the child with SIGINT (SIGKILL after STOP_TIMEOUT_MS or a second
 * signal from the user) and returns the exit code of `naq server`. */
static int stop_child(const server_opts *o, pid_t pid, const sigset_t *set)
{
    if (!o->quiet) {
        printf("naq server stopping (Ctrl-C again to kill it)\n");
        fflush(stdout);
    }
    kill(pid, SIGINT);
    int64_t deadline = naq__mono_ms() + STOP_TIMEOUT_MS;
    int status = 0, killed = 0;
    while (!reaped(pid, &status)) {
        int64_t left = deadline - naq__mono_ms();
        int sig = wait_signal(set, left > 200 ? 200 : (left > 0 ? left : 1));
        if (!killed && ((sig == SIGINT || sig == SIGTERM) || naq__mono_ms() >= deadline)) {
            kill(pid, SIGKILL);
            killed = 1;
        }
    }
    if (!killed && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (!o->quiet) {
            printf("naq server stopped\n");
            fflush(stdout);
        }
        return NAQ_EXIT_OK;
    }
    char how[64];
    describe_exit(status, how, sizeof how);
    naq_cli_error("nats-server did not stop cleanly (%s); see %s", killed ? "killed" : how, o->log);
    return NAQ_EXIT_FAILURE;
}

static int supervise(server_opts *o)
{
    sigset_t set, old;
    naq__server_block_signals(&set, &old);

    struct stat st;
    o->log_start = stat(o->log, &st) == 0 ? st.st_size : 0;
    pid_t pid = spawn(o, &old);
    if (pid < 0)
        return NAQ_EXIT_FAILURE;

    /* Starting: until the port accepts, the child exits, or the timeout. */
    int64_t deadline = naq__mono_ms() + START_TIMEOUT_MS;
    int status = 0;
    const char *probe_host = strcmp(o->host, "0.0.0.0") == 0 ? "127.0.0.1" : o->host;
    for (;;) {
        if (reaped(pid, &status)) {
            if (log_says_port_in_use(o))
                return port_in_use(o);
            char how[64];
            describe_exit(status, how, sizeof how);
            naq_cli_error("nats-server exited while starting (%s)", how);
            show_log_tail(o);
            return NAQ_EXIT_FAILURE;
        }
        if (port_accepts(probe_host, o->port))
            break;
        if (naq__mono_ms() >= deadline) {
            naq_cli_error("nats-server did not accept connections on %s:%d within %d s", o->host,
                          o->port, START_TIMEOUT_MS / 1000);
            show_log_tail(o);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return NAQ_EXIT_FAILURE;
        }
        int sig = wait_signal(&set, 50);
        if (sig == SIGINT || sig == SIGTERM)
            return stop_child(o, pid, &set);
    }

    if (!o->quiet) {
        printf("naq server ready at %s (data in %s)\n", o->url, o->dir);
        printf("nats-server logs to %s\n", o->log);
        if (strcmp(o->url, NAQ_DEFAULT_URL) != 0)
            printf("hint: export NAQ_URL=%s\n", o->url);
        printf("Ctrl-C to stop\n");
        fflush(stdout);
    }

    /* Running: until a stop signal or the child's end. */
    for (;;) {
        int sig = wait_signal(&set, 1000);
        if (sig == SIGINT || sig == SIGTERM)
            return stop_child(o, pid, &set);
        if (reaped(pid, &status)) {
            char how[64];
            describe_exit(status, how, sizeof how);
            naq_cli_error("nats-server exited unexpectedly (%s)", how);
            show_log_tail(o);
            return NAQ_EXIT_FAILURE;
        }
    }
}

/* The host goes into the config file and a URL: accept names and IPv4/IPv6
 * literals only, so nothing can break out of the quoted string. */
static int valid_host(const char *h)
{
    if (*h == '\0' || strlen(h) > 253)
        return 0;
    for (const char *p = h; *p; p++)
        if (!(((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr(".-_:", *p) != NULL))
            return 0;
    return 1;
}

/* Starts nats-server on the resolved options and supervises it; returns
 * the exit code of `naq server`. */
static int start(server_opts *o)
{
    /* The port first: a server that cannot start leaves no data directory
     * behind. */
    int err = bind_error(o->host, o->port);
    if (err == EADDRINUSE)
        return port_in_use(o);
    if (err != 0) {
        naq_cli_error("cannot listen on %s:%d: %s", o->host, o->port,
                      err < 0 ? "the host name does not resolve"
                      : err == EADDRNOTAVAIL
                          ? "not an address of this machine (try --host 127.0.0.1)"
                          : strerror(err));
        return NAQ_EXIT_FAILURE;
    }
    if (make_dirs(o->dir) != 0) {
        naq_cli_error("cannot create data directory %s: %s", o->dir, strerror(errno));
        return NAQ_EXIT_FAILURE;
    }
    snprintf(o->conf, sizeof o->conf, "%s/nats-server.conf", o->dir);
    snprintf(o->log, sizeof o->log, "%s/server.log", o->dir);
    int v6 = strchr(o->host, ':') != NULL;
    const char *url_host = strcmp(o->host, "0.0.0.0") == 0 ? "127.0.0.1" : o->host;
    snprintf(o->url, sizeof o->url, "%s://%s%s%s:%d",
             naq_server_secure_tls(&o->secure) ? "tls" : "nats", v6 ? "[" : "", url_host,
             v6 ? "]" : "", o->port);

    int rc = naq_server_encrypt_guard(&o->encrypt, o->dir);
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (naq_server_encrypt_export(&o->encrypt) != 0) {
        naq_cli_error("cannot pass the store key to nats-server: %s", strerror(errno));
        return NAQ_EXIT_FAILURE;
    }
    return write_config(o) != 0 ? NAQ_EXIT_FAILURE : supervise(o);
}

typedef struct {
    server_opts o;
    const char *dir; /* --data; NULL = the default */
    int cluster, print_config;
} server_args;

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    server_args *a = x->args;
    server_opts *o = &a->o;
    long long n = 0;
    if (naq_server_secure_option(&o->secure, ch, arg))
        return NAQ_EXIT_OK;
    switch (ch) {
    case NAQ_SERVER_OPT_ENCRYPT_STORE: o->encrypt.path = arg; break;
    case 'p':
        if (!naq_cli_parse_int(o->cmd, "--port", arg, 1, 65535, &n))
            return NAQ_EXIT_USAGE;
        o->port = (int)n;
        break;
    case OPT_HOST:
        if (!valid_host(arg))
            return naq_cli_usage_error(o->cmd, "--host '%s' is not a host name or IP address", arg);
        o->host = arg;
        break;
    case 'd': a->dir = arg; break;
    case OPT_MAX_STORE:
    case OPT_MAX_MEMORY:
        if (naq_parse_size(arg, ch == OPT_MAX_STORE ? &o->max_store : &o->max_memory) != NAQ_OK)
            return naq_cli_usage_error(o->cmd, "%s: %s",
                                       ch == OPT_MAX_STORE ? "--max-store" : "--max-memory",
                                       naq_last_error());
        break;
    case OPT_CLUSTER:
        if (!naq_cli_parse_int(o->cmd, "--cluster", arg, 3, NAQ_CLUSTER_MAX_NODES, &n))
            return NAQ_EXIT_USAGE;
        a->cluster = (int)n;
        break;
    case OPT_PRINT_CONFIG: a->print_config = 1; break;
    case 'q': o->quiet = 1; break;
    }
    return NAQ_EXIT_OK;
}

/* The data directory, absolute: nats-server resolves store_dir against
 * its own cwd. */
static int data_dir(server_args *a)
{
    server_opts *o = &a->o;
    const char *dir = a->dir;
    if (dir == NULL) {
        naq__default_data_dir(o->dir, sizeof o->dir, "server");
        if (strpbrk(o->dir, "\"\\\n") != NULL)
            return naq_cli_usage_error(o->cmd,
                                       "data directory %s holds a quote or backslash; choose "
                                       "one with --data",
                                       o->dir);
        return NAQ_EXIT_OK;
    }
    if (dir[0] == '\0' || strpbrk(dir, "\"\\\n") != NULL)
        return naq_cli_usage_error(o->cmd,
                                   "--data '%s': use a path without quotes, "
                                   "backslashes or newlines",
                                   dir);
    if (dir[0] == '/') {
        snprintf(o->dir, sizeof o->dir, "%s", dir);
        return NAQ_EXIT_OK;
    }
    char cwd[NAQ_URL_MAX / 2];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        naq_cli_error("cannot resolve --data %s: %s", dir, strerror(errno));
        return NAQ_EXIT_FAILURE;
    }
    snprintf(o->dir, sizeof o->dir, "%s/%s", cwd, dir);
    return NAQ_EXIT_OK;
}

/* 1 for an address whose traffic never leaves the machine. */
static int loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

static int check(naq_cli_ctx *x)
{
    server_args *a = x->args;
    server_opts *o = &a->o;
    int rc = naq_cli_no_operands(x);
    if (rc != NAQ_EXIT_OK)
        return rc;
    /* Routes need a CA to use TLS (server_secure.c); on loopback they stay
     * on the machine, elsewhere a TLS cluster must not carry jobs in clear
     * between its nodes. */
    if (a->cluster > 0 && o->secure.tls_cert && !o->secure.tls_ca && !loopback(o->host))
        return naq_cli_usage_error(o->cmd,
                                   "--cluster on --host %s with --tls-cert needs --tls-ca: the "
                                   "CA that signed the node certificate, with which the nodes "
                                   "verify each other's routes (clients then need certificates "
                                   "too: NAQ_TLS_CERT, NAQ_TLS_KEY)",
                                   o->host);
    rc = naq_server_secure_check(o->cmd, &o->secure);
    naq_server_secure_free(&o->secure);
    return rc != NAQ_EXIT_OK ? rc : data_dir(a);
}

static int run(naq_cli_ctx *x)
{
    server_args *a = x->args;
    server_opts *o = &a->o;
    /* The key last: the returns above hold no memory. */
    int rc = naq_server_encrypt_load(o->cmd, &o->encrypt);
    if (rc == NAQ_EXIT_OK && a->cluster > 0) {
        naq_cluster_opts co = {o->host,       o->port,  a->cluster, o->dir,     o->max_store,
                               o->max_memory, o->quiet, &o->secure, &o->encrypt};
        rc = a->print_config ? naq_cluster_print_config(&co) : naq_cluster_run(&co);
    } else if (rc == NAQ_EXIT_OK && a->print_config) {
        /* The same writer as a start (nothing is started or created), so the two cannot differ. */
        snprintf(o->conf, sizeof o->conf, "/dev/stdout");
        rc = write_config(o) == 0 ? NAQ_EXIT_OK : NAQ_EXIT_FAILURE;
    } else if (rc == NAQ_EXIT_OK) {
        rc = start(o);
    }
    naq_server_encrypt_free(&o->encrypt);
    naq_server_secure_free(&o->secure);
    return rc;
}

int naq_cmd_server(int argc, char **argv)
{
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"host", required_argument, NULL, OPT_HOST},
                                         {"data", required_argument, NULL, 'd'},
                                         {"max-store", required_argument, NULL, OPT_MAX_STORE},
                                         {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
                                         {"cluster", required_argument, NULL, OPT_CLUSTER},
                                         {"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
                                         {"quiet", no_argument, NULL, 'q'},
                                         NAQ_SERVER_SECURE_OPTIONS,
                                         NAQ_SERVER_ENCRYPT_OPTION,
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {usage,  NULL,  "p:d:q", opts, NAQ_CLI_NO_CONNECTION_FLAGS,
                                      option, check, run};
    server_args *a = calloc(1, sizeof *a); /* large (its paths): not on the stack */
    if (a == NULL) {
        naq_cli_error("out of memory");
        return NAQ_EXIT_FAILURE;
    }
    a->o.cmd = argv[0];
    a->o.host = "127.0.0.1";
    a->o.port = 4222;
    a->o.max_store = a->o.max_memory = -1;
    int rc = naq_cli_main(&c, a, argc, argv);
    free(a);
    return rc;
}

/* ---- shared with server_cluster.c, which runs several of the same children ---- */

int naq__server_bind_error(const char *host, int port)
{
    return bind_error(host, port);
}
int naq__server_port_accepts(const char *host, int port)
{
    return port_accepts(host, port);
}
int naq__server_make_dirs(const char *path)
{
    return make_dirs(path);
}

pid_t naq__server_spawn(const char *conf, const char *log, const sigset_t *child_mask)
{
    server_opts o;
    memset(&o, 0, sizeof o);
    snprintf(o.conf, sizeof o.conf, "%s", conf);
    snprintf(o.log, sizeof o.log, "%s", log);
    return spawn(&o, child_mask);
}

void naq__server_block_signals(sigset_t *set, sigset_t *old)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGCHLD);
    sigprocmask(SIG_BLOCK, set, old);
}

void naq__server_describe_exit(int status, char *buf, size_t cap)
{
    describe_exit(status, buf, cap);
}

int naq__server_log_has(const char *log, off_t from, const char *needle)
{
    return log_has(log, from, needle);
}

void naq__server_show_log_tail(const char *log, off_t from)
{
    server_opts o;
    memset(&o, 0, sizeof o);
    snprintf(o.log, sizeof o.log, "%s", log);
    o.log_start = from;
    show_log_tail(&o);
}
