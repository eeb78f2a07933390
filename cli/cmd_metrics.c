/*
 * cmd_metrics.c - `naq metrics`: the Prometheus exporter of a naq
 * installation (naq/metrics.h). With --listen it serves /metrics until
 * Ctrl-C; without, it prints one scrape (for promtool, or a look).
 */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "naq/metrics.h"

static const char usage[] =
    "usage: naq metrics [--listen ADDR]\n"
    "\n"
    "Prometheus metrics of the whole installation: jobs enqueued, started,\n"
    "completed, failed, retried, dead-lettered, cancelled and expired by queue\n"
    "(counted from the event stream, which the exporter reads from its start),\n"
    "run time and queue wait histograms by queue, pending and in-flight jobs by\n"
    "queue and priority, consumer-group lag, DLQ sizes, live workers by state,\n"
    "stream use against limits, rollup lag. docs/monitoring.md lists them, with\n"
    "alert rules and a Grafana dashboard.\n"
    "\n"
    "      --listen ADDR      serve GET /metrics on ADDR (HOST:PORT or :PORT)\n"
    "                         until Ctrl-C or SIGTERM; without it, print one\n"
    "                         scrape (after reading the stored events) and exit\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq metrics --listen :9464\n"
    "  naq metrics | promtool check metrics\n"
    "\n"
    "exit codes: 0 stopped by a signal (or printed), 1 failure (cannot listen,\n"
    "no server), 2 bad usage\n";

enum { OPT_LISTEN = NAQ_CLI_OPT_FIRST_FREE };

/* One scrape to stdout: first waits until the exporter has read what the
 * stream holds now, so the counters are complete. */
static int print_once(const char *cmd, naq_metrics_exporter *e)
{
    naq_status s = naq_metrics_exporter_wait(e, 60000);
    char *text = NULL;
    size_t len = 0;
    if (s == NAQ_OK)
        s = naq_metrics_exporter_render(e, &text, &len);
    if (s != NAQ_OK)
        return naq_cli_fail(cmd, s);
    fwrite(text, 1, len, stdout);
    free(text);
    return ferror(stdout) ? NAQ_EXIT_FAILURE : NAQ_EXIT_OK;
}

static int serve(const char *cmd, const char *addr, naq_metrics_exporter *e)
{
    naq_metrics_server *srv = NULL;
    naq_status s = naq_metrics_server_start(addr, naq_metrics_exporter_render, e, &srv);
    if (s != NAQ_OK)
        return naq_cli_fail(cmd, s);
    naq_cli_stop_on_signals(NULL, 0);
    fprintf(stderr, "naq metrics: serving http://%s/metrics (port %d); Ctrl-C stops\n", addr,
            naq_metrics_server_port(srv));
    while (!naq_cli_stop_requested)
        pause();
    naq_metrics_server_stop(srv);
    fprintf(stderr, "naq metrics: stopped\n");
    return NAQ_EXIT_OK;
}

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    (void)ch; /* --listen, the only one */
    *(const char **)x->args = arg;
    return NAQ_EXIT_OK;
}

static int check(naq_cli_ctx *x)
{
    const char *listen = *(const char **)x->args;
    int rc = naq_cli_no_operands(x);
    if (rc == NAQ_EXIT_OK && listen != NULL && strrchr(listen, ':') == NULL)
        rc = naq_cli_usage_error(x->cmd, "--listen needs HOST:PORT or :PORT, not '%s'", listen);
    return rc;
}

static int run(naq_cli_ctx *x)
{
    const char *listen = *(const char **)x->args;
    naq_metrics_exporter *e = NULL;
    int rc;
    naq_status s = naq_metrics_exporter_create(x->client, &e);
    if (s != NAQ_OK)
        rc = naq_cli_fail(x->cmd, s);
    else if (listen != NULL)
        rc = serve(x->cmd, listen, e);
    else
        rc = print_once(x->cmd, e);
    naq_metrics_exporter_destroy(e);
    return rc;
}

int naq_cmd_metrics(int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, OPT_LISTEN},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {usage, NULL, NULL, opts, NAQ_CLI_CONNECT, option, check, run};
    const char *listen = NULL;
    return naq_cli_main(&c, &listen, argc, argv);
}
