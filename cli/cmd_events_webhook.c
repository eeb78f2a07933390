/*
 * cmd_events_webhook.c - `naq events webhook --url URL [filters]
 * [--group NAME]`: a consumer-group member that POSTs each matching event
 * to URL (naq/webhook.h over naq/processor.h). Run several with the same
 * group to share the load; a failed delivery is retried with backoff and
 * dead-lettered (naq events dlq) after --max-deliveries.
 */
#include "cli.h"
#include "cmd_events_webhook.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "naq/processor.h"
#include "naq/webhook.h"

static const char usage[] =
    "usage: naq events webhook --url URL [--group NAME] [--type TYPE]... [--queue Q]\n"
    "                          [--worker W] [--secret-file FILE] [--timeout D]\n"
    "                          [--max-deliveries N] [--backoff D[,D...]]\n"
    "                          [-c N | --autoscale MIN:MAX] [--metrics ADDR]\n"
    "\n"
    "POSTs every matching event, as its JSON, to URL until Ctrl-C or SIGTERM.\n"
    "It is a member of consumer group NAME: members with the same name share\n"
    "the events, and none is lost while no member runs (the group resumes\n"
    "where it was). A delivery fails when the receiver does not answer 2xx in\n"
    "time; it is retried after the backoff, and after --max-deliveries the\n"
    "event goes to the event dead-letter stream ('naq events dlq list').\n"
    "Delivery is at least once: the X-Naq-Event-Id header (the event_id)\n"
    "tells a repeat. With --secret-file, X-Naq-Signature: sha256=<hex of\n"
    "HMAC-SHA256(secret, body)> signs each request.\n"
    "\n"
    "      --url URL            http:// or https:// receiver (required)\n"
    "      --group NAME         consumer group (default webhook)\n"
    "      --type TYPE          only this event type (repeatable)\n"
    "      --queue Q            only events of queue Q\n"
    "      --worker W           only events of worker W\n"
    "      --secret-file FILE   HMAC key: the file's bytes (one trailing newline\n"
    "                           dropped)\n"
    "      --timeout D          per request (default 10s)\n"
    "      --max-deliveries N   attempts before the event DLQ (default 5)\n"
    "      --backoff D[,D...]   waits before each retry (default 1s,5s,30s)\n"
    "  -c, --concurrency N      requests at once (default 4)\n"
    "      --autoscale MIN:MAX  MIN to MAX requests at once instead: start at MIN,\n"
    "                           double while events wait and every slot is busy,\n"
    "                           halve when slots stay idle (docs/processors.md)\n"
    "      --metrics ADDR       serve this member's Prometheus metrics on ADDR\n"
    "                           (HOST:PORT or :PORT, GET /metrics)\n"
    "      --metrics-interval D log a system_metrics event every D (default\n"
    "                           NAQ_METRICS_INTERVAL or 60s; 0 = off)\n"
    "  -h, --help               this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "example:\n"
    "  naq events webhook --url https://hooks.example.com/naq --type failed \\\n"
    "      --secret-file /etc/naq/hook.key\n"
    "\n"
    "exit codes: 0 stopped by a signal, 1 failure (no server, group exists\n"
    "with other filters), 2 bad usage\n";

enum {
    OPT_URL = NAQ_CLI_OPT_FIRST_FREE,
    OPT_GROUP,
    OPT_TYPE,
    OPT_QUEUE,
    OPT_WORKER,
    OPT_SECRET,
    OPT_TIMEOUT,
    OPT_MAX_DELIVERIES,
    OPT_BACKOFF,
    OPT_AUTOSCALE,
    OPT_METRICS,
    OPT_INTERVAL,
};

#define MAX_TYPES 64

typedef struct {
    naq_processor_opts po;
    naq_webhook_opts wo;
    naq_event_type types[MAX_TYPES];
    const char *secret_file;
    const char *metrics, *interval; /* --metrics, --metrics-interval */
    int concurrency_given;
} webhook_args;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int parse_backoff(const char *cmd, char *text, naq_processor_opts *po)
{
    po->backoff_len = 0;
    char *save = NULL;
    for (char *t = strtok_r(text, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (po->backoff_len == NAQ_BACKOFF_MAX)
            return naq_cli_usage_error(cmd, "--backoff takes at most %d durations",
                                       NAQ_BACKOFF_MAX);
        if (naq_parse_duration_ms(t, &po->backoff_ms[po->backoff_len]) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--backoff: '%s' is not a duration", t);
        po->backoff_len++;
    }
    return NAQ_EXIT_OK;
}

static int parse_one(const char *cmd, int ch, char *arg, webhook_args *a)
{
    long long n = 0;
    naq_status s;
    switch (ch) {
    case OPT_URL: a->wo.url = arg; return NAQ_EXIT_OK;
    case OPT_GROUP: a->po.group = arg; return NAQ_EXIT_OK;
    case OPT_QUEUE: a->po.queue = arg; return NAQ_EXIT_OK;
    case OPT_WORKER: a->po.worker = arg; return NAQ_EXIT_OK;
    case OPT_SECRET: a->secret_file = arg; return NAQ_EXIT_OK;
    case OPT_TYPE:
        if (a->po.ntypes == MAX_TYPES)
            return naq_cli_usage_error(cmd, "too many --type");
        if ((s = naq_event_type_parse(arg, &a->types[a->po.ntypes])) != NAQ_OK)
            return naq_cli_usage_error(cmd, "%s", naq_last_error());
        a->po.ntypes++;
        return NAQ_EXIT_OK;
    case OPT_TIMEOUT:
        if (naq_parse_duration_ms(arg, &a->wo.timeout_ms) != NAQ_OK || a->wo.timeout_ms <= 0)
            return naq_cli_usage_error(cmd, "--timeout: '%s' is not a positive duration", arg);
        return NAQ_EXIT_OK;
    case OPT_MAX_DELIVERIES:
        if (!naq_cli_parse_int(cmd, "--max-deliveries", arg, 1, 1000, &n))
            return NAQ_EXIT_USAGE;
        a->po.max_deliveries = (int)n;
        return NAQ_EXIT_OK;
    case OPT_BACKOFF: return parse_backoff(cmd, arg, &a->po);
    case OPT_METRICS: a->metrics = arg; return NAQ_EXIT_OK;
    case OPT_INTERVAL: a->interval = arg; return NAQ_EXIT_OK;
    case OPT_AUTOSCALE:
        return naq_cli_parse_autoscale(cmd, arg, &a->po.autoscale_min, &a->po.autoscale_max);
    case 'c':
        if (!naq_cli_parse_int(cmd, "--concurrency", arg, 1, 256, &n))
            return NAQ_EXIT_USAGE;
        a->po.max_concurrent = (int)n;
        a->concurrency_given = 1;
        return NAQ_EXIT_OK;
    }
    return -1;
}

/* Reads the secret file (heap, *len bytes; one trailing newline dropped). */
static int read_secret(const char *cmd, const char *path, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        naq_cli_error("%s: cannot read the secret file %s (%s)", cmd, path, strerror(errno));
        return NAQ_EXIT_FAILURE;
    }
    char *buf = malloc(65536);
    size_t n = buf ? fread(buf, 1, 65536, fp) : 0;
    fclose(fp);
    if (buf == NULL || n == 0) {
        free(buf);
        naq_cli_error("%s: the secret file %s is empty", cmd, path);
        return NAQ_EXIT_FAILURE;
    }
    if (buf[n - 1] == '\n')
        n--;
    *out = buf;
    *len = n;
    return NAQ_EXIT_OK;
}

static int run(const char *cmd, naq_client *c, webhook_args *a)
{
    naq_webhook *wh = NULL;
    naq_processor *p = NULL;
    naq_status s = naq_webhook_create(&a->wo, &wh);
    if (s == NAQ_OK)
        s = naq_processor_create(c, &a->po, &p);
    if (s == NAQ_OK)
        s = naq_processor_add_global_handler(p, naq_webhook_deliver, wh, NULL);
    if (s == NAQ_OK)
        s = naq_processor_start(p);
    int rc = NAQ_EXIT_OK;
    naq_cli_process_metrics pm = {{c, NULL, NULL, p}, NULL, NULL};
    if (s != NAQ_OK) {
        rc = naq_cli_fail(cmd, s);
    } else if ((rc = naq_cli_process_metrics_start(cmd, a->metrics, a->interval, &pm)) !=
               NAQ_EXIT_OK) {
        naq_processor_stop(p);
    } else {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        fprintf(stderr, "naq webhook: group %s posting to %s; Ctrl-C stops\n", a->po.group,
                a->wo.url);
        while (!stop_requested)
            pause();
        naq_processor_stop(p);
        naq_processor_stats st;
        naq_processor_get_stats(p, &st);
        fprintf(stderr,
                "naq webhook: stopped: %llu delivered, %llu failed attempts, %llu "
                "dead-lettered\n",
                (unsigned long long)st.handled, (unsigned long long)st.failed,
                (unsigned long long)st.dead_lettered);
    }
    naq_cli_process_metrics_stop(&pm);
    naq_processor_destroy(p);
    naq_webhook_destroy(wh);
    return rc;
}

int naq_cmd_events_webhook(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {
        {"url", required_argument, NULL, OPT_URL},
        {"group", required_argument, NULL, OPT_GROUP},
        {"type", required_argument, NULL, OPT_TYPE},
        {"queue", required_argument, NULL, OPT_QUEUE},
        {"worker", required_argument, NULL, OPT_WORKER},
        {"secret-file", required_argument, NULL, OPT_SECRET},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"max-deliveries", required_argument, NULL, OPT_MAX_DELIVERIES},
        {"backoff", required_argument, NULL, OPT_BACKOFF},
        {"concurrency", required_argument, NULL, 'c'},
        {"autoscale", required_argument, NULL, OPT_AUTOSCALE},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"metrics-interval", required_argument, NULL, OPT_INTERVAL},
        {"help", no_argument, NULL, 'h'},
        NAQ_CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0}};
    naq_cli_common common = {0};
    webhook_args a;
    memset(&a, 0, sizeof a);
    naq_processor_opts_init(&a.po);
    naq_webhook_opts_init(&a.wo);
    a.po.group = "webhook";
    a.po.types = a.types;
    int rc = NAQ_EXIT_OK, ch;
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage, stdout);
            return NAQ_EXIT_OK;
        }
        rc = parse_one(cmd, ch, optarg, &a);
        if (rc == -1)
            rc = naq_cli_common_option(&common, ch, optarg) ? NAQ_EXIT_OK : naq_cli_try_help(cmd);
    }
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (optind < argc)
        return naq_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (a.wo.url == NULL)
        return naq_cli_usage_error(cmd, "where to? give --url URL");
    if (a.concurrency_given && a.po.autoscale_max > 0)
        return naq_cli_usage_error(cmd, "give --concurrency or --autoscale, not both");
    naq_webhook *probe = NULL; /* the URL is checked before connecting */
    if (naq_webhook_create(&a.wo, &probe) != NAQ_OK)
        return naq_cli_usage_error(cmd, "%s", naq_last_error());
    naq_webhook_destroy(probe);
    char *secret = NULL;
    if (a.secret_file != NULL &&
        (rc = read_secret(cmd, a.secret_file, &secret, &a.wo.secret_len)) != NAQ_EXIT_OK)
        return rc;
    a.wo.secret = secret;
    naq_client *c = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 0, &c)) == NAQ_EXIT_OK) {
        rc = run(cmd, c, &a);
        naq_client_destroy(c);
    }
    free(secret);
    return rc;
}
