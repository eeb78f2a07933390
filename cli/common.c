/*
 * common.c - what every naq command shares: configuration from the
 * environment and the common flags, connecting, printing errors with the
 * exit-code convention, parsing numbers, and --metrics of long-running
 * commands. The skeleton that runs a command is command.c; the printer of
 * listings and events is print.c.
 */
#include "cli.h"
#include "core/jsonw.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- configuration and connection ---- */

int naq_cli_common_option(naq_cli_common *o, int ch, const char *arg)
{
    switch (ch) {
    case NAQ_CLI_OPT_URL: o->url = arg; return 1;
    case NAQ_CLI_OPT_EVENT_URL: o->event_url = arg; return 1;
    case NAQ_CLI_OPT_PREFIX: o->prefix = arg; return 1;
    case NAQ_CLI_OPT_STREAM: o->stream = arg; return 1;
    default: return 0;
    }
}

static int set_flag(const char *cmd, const char *flag, const char *value, char *dst, size_t cap)
{
    if (value == NULL)
        return NAQ_EXIT_OK;
    if (value[0] == '\0' || strlen(value) >= cap)
        return naq_cli_usage_error(cmd, "%s needs a value of 1 to %zu characters", flag, cap - 1);
    memcpy(dst, value, strlen(value) + 1);
    return NAQ_EXIT_OK;
}

int naq_cli_config(const char *cmd, const naq_cli_common *o, naq_config *cfg)
{
    naq_config_init(cfg);
    if (naq_config_from_env(cfg) != NAQ_OK)
        return naq_cli_usage_error(cmd, "%s", naq_last_error());
    int rc;
    if ((rc = set_flag(cmd, "--url", o->url, cfg->url, sizeof cfg->url)) != 0 ||
        (rc = set_flag(cmd, "--event-url", o->event_url, cfg->event_url, sizeof cfg->event_url)) !=
            0 ||
        (rc = set_flag(cmd, "--prefix", o->prefix, cfg->subject_prefix,
                       sizeof cfg->subject_prefix)) != 0 ||
        (rc = set_flag(cmd, "--stream", o->stream, cfg->event_stream, sizeof cfg->event_stream)) !=
            0)
        return rc;
    if ((o->url != NULL && naq_url_validate("--url", o->url) != NAQ_OK) ||
        (o->event_url != NULL && naq_url_validate("--event-url", o->event_url) != NAQ_OK))
        return naq_cli_usage_error(cmd, "%s", naq_last_error());
    return NAQ_EXIT_OK;
}

int naq_cli_connect(const char *cmd, const naq_cli_common *o, int publishes_events,
                    naq_client **out)
{
    *out = NULL;
    naq_config cfg;
    int rc = naq_cli_config(cmd, o, &cfg);
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (!publishes_events)
        cfg.disable_logging = 1;
    naq_status s = naq_client_connect(&cfg, out);
    if (s != NAQ_OK)
        return naq_cli_fail(cmd, s);
    return NAQ_EXIT_OK;
}

/* ---- stopping long-running commands ---- */

volatile sig_atomic_t naq_cli_stop_requested;

static void request_stop(int sig)
{
    (void)sig;
    naq_cli_stop_requested = 1;
}

void naq_cli_stop_on_signals(void (*handler)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler != NULL ? handler : request_stop;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- errors ---- */

void naq_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("naq: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* The threshold is NAQ_LOG_LEVEL's (default info). A malformed value is
 * reported when the command loads its config; until then, info. */
static naq_log_level log_threshold = NAQ_LOG_INFO;

static void print_log(naq_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level >= log_threshold)
        fprintf(stderr, "%s\n", msg); /* messages name their speaker */
}

void naq_cli_log_to_stderr(void)
{
    const char *lvl = getenv("NAQ_LOG_LEVEL");
    naq_log_level parsed;
    if (lvl != NULL && *lvl != '\0' && naq_parse_log_level(lvl, &parsed) == NAQ_OK)
        log_threshold = parsed;
    naq_log_set_handler(print_log, NULL);
}

int naq_cli_fail(const char *cmd, naq_status s)
{
    const char *msg = naq_last_error();
    if (msg[0] == '\0')
        msg = naq_status_str(s);
    /* The library says NAQ_ERR_INVALID_ARG when what it was given is
     * malformed: that came from the user, so it is a usage error. */
    if (s == NAQ_ERR_INVALID_ARG)
        return naq_cli_usage_error(cmd, "%s", msg);
    naq_cli_error("%s", msg);
    return NAQ_EXIT_FAILURE;
}

int naq_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return naq_cli_try_help(cmd);
}

int naq_cli_try_help(const char *cmd)
{
    fprintf(stderr, "try '%s --help'\n", cmd);
    return NAQ_EXIT_USAGE;
}

int naq_cli_parse_int(const char *cmd, const char *flag, const char *text, long long min,
                      long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        naq_cli_usage_error(cmd, "%s needs a whole number from %lld to %lld, got '%s'", flag, min,
                            max, text);
        return 0;
    }
    *out = v;
    return 1;
}

int naq_cli_parse_prefetch(const char *cmd, const char *text, int *out)
{
    if (strcmp(text, "auto") == 0) {
        *out = NAQ_PREFETCH_AUTO;
        return 1;
    }
    long long n = 0;
    if (!naq_cli_parse_int(cmd, "--prefetch (or 'auto')", text, 0, 1024, &n))
        return 0;
    *out = (int)n;
    return 1;
}

const char *naq_cli_plural(unsigned long long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

int naq_cli_parse_limit(const char *cmd, const char *text, size_t *out)
{
    long long n = 0;
    if (!naq_cli_parse_int(cmd, "--limit", text, 0, INT64_MAX, &n))
        return NAQ_EXIT_USAGE;
    *out = (size_t)n;
    return NAQ_EXIT_OK;
}

/* ---- --metrics of long-running commands ---- */

int naq_cli_process_metrics_start(const char *cmd, const char *addr, const char *interval,
                                  naq_cli_process_metrics *m)
{
    m->server = NULL;
    m->reporter = NULL;
    int64_t ms = 0;
    naq_status s = NAQ_OK;
    if (interval == NULL) {
        if (naq_metrics_interval_from_env(&ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "%s", naq_last_error());
    } else if (strcmp(interval, "0") != 0 &&
               (naq_parse_duration_ms(interval, &ms) != NAQ_OK || ms < 0)) {
        return naq_cli_usage_error(cmd,
                                   "--metrics-interval: '%s' is not a duration (60s, 5m; "
                                   "0 = off)",
                                   interval);
    }
    if (addr != NULL) {
        s = naq_metrics_server_start(addr, naq_metrics_render_process, &m->p, &m->server);
        if (s != NAQ_OK)
            return naq_cli_fail(cmd, s);
        fprintf(stderr, "%s: metrics on http://%s/metrics (port %d)\n", cmd, addr,
                naq_metrics_server_port(m->server));
    }
    if ((s = naq_metrics_reporter_start(&m->p, ms, &m->reporter)) != NAQ_OK) {
        naq_metrics_server_stop(m->server);
        m->server = NULL;
        return naq_cli_fail(cmd, s);
    }
    return NAQ_EXIT_OK;
}

void naq_cli_process_metrics_stop(naq_cli_process_metrics *m)
{
    naq_metrics_reporter_stop(m->reporter);
    naq_metrics_server_stop(m->server);
    m->reporter = NULL;
    m->server = NULL;
}

int naq_cli_parse_autoscale(const char *cmd, const char *arg, int *min, int *max)
{
    int lo = 0, hi = 0, end = 0;
    if (sscanf(arg, "%d:%d%n", &lo, &hi, &end) != 2 || arg[end] != '\0' || lo < 1 || hi < lo ||
        hi > 1024)
        return naq_cli_usage_error(cmd,
                                   "--autoscale '%s': give MIN:MAX with 1 <= MIN <= MAX <= 1024, "
                                   "e.g. --autoscale 2:16",
                                   arg);
    *min = lo;
    *max = hi;
    return NAQ_EXIT_OK;
}
