/*
 * cmd_worker.c - `naq worker`: run jobs from one or more queues with the
 * built-in "exec" handler until SIGINT or SIGTERM.
 *
 * Signals: a handler calls naq_worker_stop() (async-signal-safe). The first
 * Ctrl-C or SIGTERM lets running jobs finish within the grace period; the
 * second calls it again, which stops at once: running jobs are cancelled and
 * handed back so another worker runs them, and worker_stopped says
 * "forced". A handler rather than a sigwait
 * thread: it needs no extra thread and no process-wide signal mask that
 * every nats.c and worker thread would have to be created under.
 */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: naq worker -q QUEUE [-q QUEUE...] [-c N | --autoscale MIN:MAX]\n"
    "                  [--id WORKER_ID] [--grace DURATION]\n"
    "\n"
    "Runs jobs from the given queues (higher priority first) until Ctrl-C or\n"
    "SIGTERM. Jobs whose function is \"exec\" (naq enqueue ... -- COMMAND) run\n"
    "their command; C handlers are registered by programs using libnaq.\n"
    "The first Ctrl-C (or SIGTERM) stops taking jobs and lets the running ones\n"
    "finish within the grace period, then hands unfinished ones back to the\n"
    "queue; a second one stops at once, handing the running jobs back so\n"
    "another worker runs them.\n"
    "\n"
    "  -q, --queue QUEUE        a queue to take jobs from (repeatable, or a,b,c)\n"
    "  -c, --concurrency N      jobs run at once (default 1)\n"
    "      --autoscale MIN:MAX  run MIN to MAX jobs at once instead: start at MIN,\n"
    "                           double when every slot is busy and jobs wait,\n"
    "                           halve after 2 s with a slot to spare (never\n"
    "                           cutting a running job); each change is a\n"
    "                           worker_status_changed event (docs/workers.md)\n"
    "      --prefetch auto|N    jobs fetched beyond the free slots, so a slot that\n"
    "                           frees up finds its next job here. auto (default):\n"
    "                           as many as the slots finish during one round trip\n"
    "                           to the server, none for jobs longer than that, at\n"
    "                           most 64; N: always N (0 = none)\n"
    "      --id WORKER_ID       this worker's id (default <host>-<pid>-<random>)\n"
    "      --metrics ADDR       serve this worker's Prometheus metrics on ADDR\n"
    "                           (HOST:PORT or :PORT, GET /metrics)\n"
    "      --metrics-interval D log a system_metrics event every D (default\n"
    "                           NAQ_METRICS_INTERVAL or 60s; 0 = off)\n"
    "      --grace DURATION     how long running jobs may finish after the first\n"
    "                           Ctrl-C before they are handed back (default 30s)\n"
    "  -h, --help               this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "example:\n"
    "  naq worker -q default -q emails -c 4\n"
    "  naq worker -q reports --autoscale 2:16\n"
    "\n"
    "exit codes: 0 stopped by a signal, 1 failure, 2 bad usage\n";

enum {
    OPT_ID = NAQ_CLI_OPT_FIRST_FREE,
    OPT_GRACE,
    OPT_PREFETCH,
    OPT_METRICS,
    OPT_INTERVAL,
    OPT_AUTOSCALE
};

#define MAX_QUEUES 64

static naq_worker *volatile running_worker;

static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
    (void)sig;
    static const char first[] =
        "naq worker: stopping after the running jobs; Ctrl-C again to stop at once\n";
    static const char second[] = "naq worker: stopping now, handing running jobs back\n";
    naq_worker *w = running_worker;
    if (w != NULL)
        naq_worker_stop(w); /* a second call stops hard */
    const char *msg = signals_seen++ == 0 ? first : second;
    ssize_t n = write(STDERR_FILENO, msg, strlen(msg));
    (void)n;
}

/* Splits "a,b" (in place) and appends each name to queues
 * (NULL-terminated). An empty name ("a,,b", "a,") is a typo, not a queue. */
static int add_queues(const char *cmd, char *text, const char **queues, int *count)
{
    for (char *q = text;;) {
        char *comma = strchr(q, ',');
        if (comma != NULL)
            *comma = '\0';
        if (q[0] == '\0')
            return naq_cli_usage_error(cmd, "-q has an empty queue name; give names separated "
                                            "by single commas, like a,b");
        if (*count >= MAX_QUEUES)
            return naq_cli_usage_error(cmd, "at most %d queues per worker", MAX_QUEUES);
        naq_status s = naq_id_validate("queue name", q);
        if (s != NAQ_OK)
            return naq_cli_fail(cmd, s);
        queues[(*count)++] = q;
        queues[*count] = NULL;
        if (comma == NULL)
            return NAQ_EXIT_OK;
        q = comma + 1;
    }
}

int naq_cmd_worker(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {
        {"queue", required_argument, NULL, 'q'},
        {"concurrency", required_argument, NULL, 'c'},
        {"id", required_argument, NULL, OPT_ID},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"prefetch", required_argument, NULL, OPT_PREFETCH},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"metrics-interval", required_argument, NULL, OPT_INTERVAL},
        {"autoscale", required_argument, NULL, OPT_AUTOSCALE},
        {"help", no_argument, NULL, 'h'},
        NAQ_CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0}};
    naq_cli_common common = {0};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    const char *queues[MAX_QUEUES + 1] = {NULL};
    int nqueues = 0, rc = NAQ_EXIT_OK, ch;
    long long n = 0;
    naq_client *client = NULL;
    naq_worker *w = NULL;
    const char *metrics = NULL, *interval = NULL;
    naq_cli_process_metrics pm = {{NULL, NULL, NULL, NULL}, NULL, NULL};

    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "q:c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'q': rc = add_queues(cmd, optarg, queues, &nqueues); break;
        case 'c':
            if (!naq_cli_parse_int(cmd, "--concurrency", optarg, 1, 1024, &n))
                rc = NAQ_EXIT_USAGE;
            wo.concurrency = (int)n;
            break;
        case OPT_ID: wo.worker_id = optarg; break;
        case OPT_AUTOSCALE:
            rc = naq_cli_parse_autoscale(cmd, optarg, &wo.autoscale_min, &wo.autoscale_max);
            break;
        case OPT_METRICS: metrics = optarg; break;
        case OPT_INTERVAL: interval = optarg; break;
        case OPT_PREFETCH:
            if (!naq_cli_parse_prefetch(cmd, optarg, &wo.prefetch))
                rc = NAQ_EXIT_USAGE;
            break;
        case OPT_GRACE:
            if (naq_parse_duration_ms(optarg, &wo.grace_ms) != NAQ_OK)
                return naq_cli_usage_error(argv[0], "--grace: %s", naq_last_error());
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
    if (nqueues == 0)
        return naq_cli_usage_error(cmd, "which queues? give -q QUEUE");
    if (wo.autoscale_max > 0 && wo.concurrency != 1)
        return naq_cli_usage_error(cmd, "give --concurrency or --autoscale, not both");
    naq_status s;
    if (wo.worker_id != NULL && (s = naq_id_validate("worker id", wo.worker_id)) != NAQ_OK)
        return naq_cli_fail(cmd, s);
    wo.queues = queues;

    if ((rc = naq_cli_connect(cmd, &common, 1, &client)) != NAQ_EXIT_OK)
        return rc;
    if ((s = naq_worker_create(client, &wo, &w)) != NAQ_OK) {
        rc = naq_cli_fail(cmd, s);
        goto out;
    }
    pm.p = (naq_metrics_process){client, w, NULL, NULL};
    if ((rc = naq_cli_process_metrics_start(cmd, metrics, interval, &pm)) != NAQ_EXIT_OK)
        goto out;

    running_worker = w;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    fprintf(stderr, "naq worker %s on queues ", naq_worker_id(w));
    for (int i = 0; i < nqueues; i++)
        fprintf(stderr, "%s%s", i ? "," : "", queues[i]);
    if (wo.autoscale_max > 0)
        fprintf(stderr, " with concurrency %d to %d; Ctrl-C to stop\n", wo.autoscale_min,
                wo.autoscale_max);
    else
        fprintf(stderr, " with concurrency %d; Ctrl-C to stop\n",
                wo.concurrency > 0 ? wo.concurrency : 1);

    s = naq_worker_run(w);

    /* Back to the defaults before the worker goes away, so a late signal
     * never touches a destroyed worker. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    running_worker = NULL;

    naq_worker_stats st;
    naq_worker_get_stats(w, &st);
    if (s != NAQ_OK)
        rc = naq_cli_fail(cmd, s);
    /* docs/workers.md: failed = processed but not completed (failed,
     * timed out, cancelled, expired), as in `naq workers`. */
    fprintf(stderr, "naq worker %s stopped: processed %llu (completed %llu, failed %llu)\n",
            naq_worker_id(w), (unsigned long long)st.processed, (unsigned long long)st.completed,
            (unsigned long long)(st.processed - st.completed));
out:
    naq_cli_process_metrics_stop(&pm);
    naq_worker_destroy(w);
    naq_client_destroy(client);
    return rc;
}
