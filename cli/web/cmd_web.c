/*
 * cmd_web.c - `naq web` on the CLI skeleton (command.c): its options, a
 * check that loads and vets the action token before any connection,
 * then connects and serves the web UI and JSON API (web_server.c) until
 * SIGINT or SIGTERM.
 */
#include "cli.h"
#include "web.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_MIN 16
#define TOKEN_MAX 512

static const char usage[] =
    "usage: naq web [--listen HOST:PORT] [--allow-actions [--token-file FILE]] [OPTIONS]\n"
    "\n"
    "Serves a web UI and a JSON API (/api/...) for naq: overview (rates, success\n"
    "rate, latency, queue depths, workers, recent failures, hourly charts from\n"
    "the rollups), queues, a job's timeline, args and result, workers, dead\n"
    "letters, schedules, and a live event feed (Server-Sent Events). The pages\n"
    "are built into the binary: no network, no CDN. docs/web.md documents the\n"
    "pages, every API endpoint and the security model.\n"
    "\n"
    "      --listen HOST:PORT  address to serve on (default 127.0.0.1:8080; port 0\n"
    "                          picks a free one). Keep it on loopback: the API has\n"
    "                          no login for reads\n"
    "      --allow-actions     allow POST actions: retry and purge dead letters,\n"
    "                          pause and resume schedules (default: read-only, every\n"
    "                          POST answers 403)\n"
    "      --token-file FILE   the bearer token actions need, read from FILE (mode\n"
    "                          0600 or stricter); else NAQ_WEB_TOKEN. At least 16\n"
    "                          characters: (umask 077; openssl rand -hex 32 > FILE)\n"
    "      --live-tail N       events read back at start for the live rates and\n"
    "                          recent failures (default 2000)\n"
    "      --no-rollup         do not fold events into the stats rollups here (by\n"
    "                          default naq web runs a maintainer, as `naq scheduler`\n"
    "                          does, so the charts are current; they never count an\n"
    "                          event twice)\n"
    "  -h, --help              this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "It prints 'naq web: serving http://HOST:PORT/' once it listens.\n"
    "exit codes: 0 stopped by SIGINT/SIGTERM, 1 failure (no server, port in use),\n"
    "2 bad usage (bad address, missing or unsafe token)\n";

/* Reads the token from path into buf (the first line, trimmed). Refuses a
 * file others may read, as every key file of naq does. An exit code. */
static int read_token_file(const char *cmd, const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        naq_cli_error("--token-file %s: %s", path, strerror(errno));
        return NAQ_EXIT_FAILURE;
    }
    struct stat st;
    int rc = NAQ_EXIT_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = naq_cli_usage_error(cmd, "--token-file %s is not a regular file", path);
    } else if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        naq_cli_error("--token-file %s is open to other users (mode %04o); a token others can "
                      "read protects nothing: run 'chmod 600 %s'",
                      path, (unsigned)(st.st_mode & 07777), path);
        rc = NAQ_EXIT_USAGE;
    } else {
        ssize_t n = read(fd, buf, cap - 1);
        if (n < 0) {
            naq_cli_error("--token-file %s: %s", path, strerror(errno));
            rc = NAQ_EXIT_FAILURE;
        } else {
            buf[n] = '\0';
            buf[strcspn(buf, "\r\n")] = '\0';
        }
    }
    close(fd);
    return rc;
}

static int check_token(const char *cmd, const char *token)
{
    size_t n = strlen(token);
    if (n < TOKEN_MIN || n >= TOKEN_MAX)
        return naq_cli_usage_error(cmd,
                                   "the action token must have %d to %d characters (it has %zu); "
                                   "make one with 'openssl rand -hex 32'",
                                   TOKEN_MIN, TOKEN_MAX - 1, n);
    for (const char *p = token; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return naq_cli_usage_error(cmd, "the action token must be printable ASCII without "
                                            "spaces");
    return NAQ_EXIT_OK;
}

enum {
    OPT_LISTEN = NAQ_CLI_OPT_FIRST_FREE,
    OPT_ALLOW_ACTIONS,
    OPT_TOKEN_FILE,
    OPT_LIVE_TAIL,
    OPT_NO_ROLLUP,
};

/* The command's arguments (ctx->args): the options and the token they
 * lead to, all on the caller's stack. */
typedef struct {
    naq_web_opts o;
    const char *token_file;
    char token[TOKEN_MAX];
} web_args;

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    web_args *a = x->args;
    long long tail;
    switch (ch) {
    case OPT_LISTEN: a->o.listen = arg; break;
    case OPT_ALLOW_ACTIONS: a->o.allow_actions = 1; break;
    case OPT_TOKEN_FILE: a->token_file = arg; break;
    case OPT_NO_ROLLUP: a->o.rollup = 0; break;
    case OPT_LIVE_TAIL:
        if (!naq_cli_parse_int(x->cmd, "--live-tail", arg, 0, 100000, &tail))
            return NAQ_EXIT_USAGE;
        a->o.live_tail = (int)tail;
        break;
    default: return naq_cli_try_help(x->cmd);
    }
    return NAQ_EXIT_OK;
}

/* Before connecting: the operands, the token (read and checked) and the
 * listen address, so every usage error is reported with no server. */
static int check(naq_cli_ctx *x)
{
    web_args *a = x->args;
    int rc = naq_cli_no_operands(x);
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (a->token_file != NULL && !a->o.allow_actions)
        return naq_cli_usage_error(x->cmd, "--token-file is for actions: give --allow-actions too");
    if (a->o.allow_actions) {
        const char *env = getenv("NAQ_WEB_TOKEN");
        if (a->token_file != NULL) {
            rc = read_token_file(x->cmd, a->token_file, a->token, sizeof a->token);
            if (rc != NAQ_EXIT_OK)
                return rc;
        } else if (env != NULL && env[0] != '\0') {
            snprintf(a->token, sizeof a->token, "%s", env);
        } else {
            return naq_cli_usage_error(x->cmd, "--allow-actions needs a token: set NAQ_WEB_TOKEN "
                                               "or give --token-file FILE");
        }
        if ((rc = check_token(x->cmd, a->token)) != NAQ_EXIT_OK)
            return rc;
        a->o.token = a->token;
    }
    if (naq_web_opts_validate(&a->o) != NAQ_OK)
        return naq_cli_usage_error(x->cmd, "%s", naq_last_error());
    return NAQ_EXIT_OK;
}

/* Serves on its own connection (not NAQ_CLI_CONNECT): it logs events
 * only when actions are allowed, which the flags decide. */
static int run(naq_cli_ctx *x)
{
    web_args *a = x->args;
    const naq_web_opts *o = &a->o;
    naq_client *c = NULL;
    int rc = naq_cli_connect(x->cmd, &x->common, o->allow_actions, &c);
    if (rc != NAQ_EXIT_OK)
        return rc;
    naq_web *w = NULL;
    naq_status s = naq_web_start(c, o, &w);
    if (s != NAQ_OK) {
        rc = naq_cli_fail(x->cmd, s);
        naq_client_destroy(c);
        return rc;
    }
    naq_cli_stop_on_signals(NULL, 0);
    signal(SIGPIPE, SIG_IGN); /* a browser that goes away mid-answer is not fatal */

    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)strcspn(o->listen, ":"), o->listen);
    printf("naq web: serving http://%s:%d/ (%s)\n",
           host[0] && strcmp(host, "0.0.0.0") != 0 && strcmp(host, "*") != 0 ? host : "127.0.0.1",
           naq_web_port(w), o->allow_actions ? "actions allowed with the token" : "read-only");
    fflush(stdout);
    if (host[0] == '\0' || (strncmp(host, "127.", 4) != 0 && strcmp(host, "localhost") != 0))
        naq_cli_error("warning: serving on %s, not loopback: anyone who can reach it reads every "
                      "job's events; see docs/web.md, Security",
                      o->listen);
    while (!naq_cli_stop_requested) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    naq_web_stop(w);
    naq_client_destroy(c);
    return NAQ_EXIT_OK;
}

int naq_cmd_web(int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, OPT_LISTEN},
                                         {"allow-actions", no_argument, NULL, OPT_ALLOW_ACTIONS},
                                         {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
                                         {"live-tail", required_argument, NULL, OPT_LIVE_TAIL},
                                         {"no-rollup", no_argument, NULL, OPT_NO_ROLLUP},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {usage, NULL, NULL, opts, 0, option, check, run};
    web_args a;
    memset(&a, 0, sizeof a);
    naq_web_opts_init(&a.o);
    return naq_cli_main(&c, &a, argc, argv);
}
