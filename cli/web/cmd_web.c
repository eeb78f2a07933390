/*
 * cmd_web.c - `naq web`: parses the flags, loads the action token,
 * connects, and serves the web UI and JSON API (web_server.c) until
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

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

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

int naq_cmd_web(int argc, char **argv)
{
    const char *cmd = argv[0];
    enum {
        OPT_LISTEN = NAQ_CLI_OPT_FIRST_FREE,
        OPT_ALLOW_ACTIONS,
        OPT_TOKEN_FILE,
        OPT_LIVE_TAIL,
        OPT_NO_ROLLUP,
    };
    static const struct option opts[] = {{"listen", required_argument, NULL, OPT_LISTEN},
                                         {"allow-actions", no_argument, NULL, OPT_ALLOW_ACTIONS},
                                         {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
                                         {"live-tail", required_argument, NULL, OPT_LIVE_TAIL},
                                         {"no-rollup", no_argument, NULL, OPT_NO_ROLLUP},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    naq_cli_common common = {0};
    naq_web_opts o;
    naq_web_opts_init(&o);
    const char *token_file = NULL;
    long long tail = o.live_tail;
    int rc = NAQ_EXIT_OK, ch;
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_LISTEN: o.listen = optarg; break;
        case OPT_ALLOW_ACTIONS: o.allow_actions = 1; break;
        case OPT_TOKEN_FILE: token_file = optarg; break;
        case OPT_NO_ROLLUP: o.rollup = 0; break;
        case OPT_LIVE_TAIL:
            if (!naq_cli_parse_int(cmd, "--live-tail", optarg, 0, 100000, &tail))
                rc = NAQ_EXIT_USAGE;
            break;
        case 'h': fputs(usage, stdout); return NAQ_EXIT_OK;
        default:
            if (!naq_cli_common_option(&common, ch, optarg))
                rc = naq_cli_try_help(cmd);
            break;
        }
    }
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (optind < argc)
        return naq_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    o.live_tail = (int)tail;

    char token[TOKEN_MAX] = "";
    if (token_file != NULL && !o.allow_actions)
        return naq_cli_usage_error(cmd, "--token-file is for actions: give --allow-actions too");
    if (o.allow_actions) {
        const char *env = getenv("NAQ_WEB_TOKEN");
        if (token_file != NULL) {
            if ((rc = read_token_file(cmd, token_file, token, sizeof token)) != NAQ_EXIT_OK)
                return rc;
        } else if (env != NULL && env[0] != '\0') {
            snprintf(token, sizeof token, "%s", env);
        } else {
            return naq_cli_usage_error(cmd, "--allow-actions needs a token: set NAQ_WEB_TOKEN "
                                            "or give --token-file FILE");
        }
        if ((rc = check_token(cmd, token)) != NAQ_EXIT_OK)
            return rc;
        o.token = token;
    }

    if (naq_web_opts_validate(&o) != NAQ_OK)
        return naq_cli_usage_error(cmd, "%s", naq_last_error());

    naq_client *c = NULL;
    if ((rc = naq_cli_connect(cmd, &common, o.allow_actions, &c)) != NAQ_EXIT_OK)
        return rc;
    naq_web *w = NULL;
    naq_status s = naq_web_start(c, &o, &w);
    if (s != NAQ_OK) {
        rc = naq_cli_fail(cmd, s);
        naq_client_destroy(c);
        return rc;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a browser that goes away mid-answer is not fatal */

    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)strcspn(o.listen, ":"), o.listen);
    printf("naq web: serving http://%s:%d/ (%s)\n",
           host[0] && strcmp(host, "0.0.0.0") != 0 ? host : "127.0.0.1", naq_web_port(w),
           o.allow_actions ? "actions allowed with the token" : "read-only");
    fflush(stdout);
    if (host[0] == '\0' || (strncmp(host, "127.", 4) != 0 && strcmp(host, "localhost") != 0))
        naq_cli_error("warning: serving on %s, not loopback: anyone who can reach it reads every "
                      "job's events; see docs/web.md, Security",
                      o.listen);
    while (!interrupted) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    naq_web_stop(w);
    naq_client_destroy(c);
    return NAQ_EXIT_OK;
}
