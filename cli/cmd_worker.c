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

typedef struct {
    naq_worker_opts wo;
    const char *queues[MAX_QUEUES + 1]; /* NULL-terminated; point into argv */
    int nqueues;
    const char *metrics, *interval;
} worker_args;

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    worker_args *a = x->args;
    long long n = 0;
    switch (ch) {
    case 'q': return add_queues(x->cmd, (char *)arg, a->queues, &a->nqueues); /* arg is argv's */
    case 'c':
        if (!naq_cli_parse_int(x->cmd, "--concurrency", arg, 1, 1024, &n))
            return NAQ_EXIT_USAGE;
        a->wo.concurrency = (int)n;
        break;
    case OPT_ID: a->wo.worker_id = arg; break;
    case OPT_AUTOSCALE:
        return naq_cli_parse_autoscale(x->cmd, arg, &a->wo.autoscale_min, &a->wo.autoscale_max);
    case OPT_METRICS: a->metrics = arg; break;
    case OPT_INTERVAL: a->interval = arg; break;
    case OPT_PREFETCH:
        if (!naq_cli_parse_prefetch(x->cmd, arg, &a->wo.prefetch))
            return NAQ_EXIT_USAGE;
        break;
    case OPT_GRACE:
        if (naq_parse_duration_ms(arg, &a->wo.grace_ms) != NAQ_OK)
            return naq_cli_usage_error(x->cmd, "--grace: %s", naq_last_error());
        break;
    }
    return NAQ_EXIT_OK;
}

static int check(naq_cli_ctx *x)
{
    worker_args *a = x->args;
    int rc = naq_cli_no_operands(x);
    naq_status s;
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (a->nqueues == 0)
        return naq_cli_usage_error(x->cmd, "which queues? give -q QUEUE");
    if (a->wo.autoscale_max > 0 && a->wo.concurrency != 1)
        return naq_cli_usage_error(x->cmd, "give --concurrency or --autoscale, not both");
    if (a->wo.worker_id != NULL && (s = naq_id_validate("worker id", a->wo.worker_id)) != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    a->wo.queues = a->queues;
    return NAQ_EXIT_OK;
}

static int run(naq_cli_ctx *x)
{
    worker_args *a = x->args;
    const char *cmd = x->cmd;
    naq_worker *w = NULL;
    naq_cli_process_metrics pm = {{NULL, NULL, NULL, NULL}, NULL, NULL};
    int rc = NAQ_EXIT_OK;
    naq_status s;
    if ((s = naq_worker_create(x->client, &a->wo, &w)) != NAQ_OK) {
        rc = naq_cli_fail(cmd, s);
        goto out;
    }
    pm.p = (naq_metrics_process){x->client, w, NULL, NULL};
    if ((rc = naq_cli_process_metrics_start(cmd, a->metrics, a->interval, &pm)) != NAQ_EXIT_OK)
        goto out;

    running_worker = w;
    naq_cli_stop_on_signals(on_signal, SA_RESTART);

    fprintf(stderr, "naq worker %s on queues ", naq_worker_id(w));
    for (int i = 0; i < a->nqueues; i++)
        fprintf(stderr, "%s%s", i ? "," : "", a->queues[i]);
    if (a->wo.autoscale_max > 0)
        fprintf(stderr, " with concurrency %d to %d; Ctrl-C to stop\n", a->wo.autoscale_min,
                a->wo.autoscale_max);
    else
        fprintf(stderr, " with concurrency %d; Ctrl-C to stop\n",
                a->wo.concurrency > 0 ? a->wo.concurrency : 1);

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
    return rc;
}

int naq_cmd_worker(int argc, char **argv)
{
    static const struct option opts[] = {
        {"queue", required_argument, NULL, 'q'},
        {"concurrency", required_argument, NULL, 'c'},
        {"id", required_argument, NULL, OPT_ID},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"prefetch", required_argument, NULL, OPT_PREFETCH},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"metrics-interval", required_argument, NULL, OPT_INTERVAL},
        {"autoscale", required_argument, NULL, OPT_AUTOSCALE},
        {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        usage, NULL, "q:c:", opts, NAQ_CLI_CONNECT | NAQ_CLI_LOGS_EVENTS, option, check, run};
    worker_args a;
    memset(&a, 0, sizeof a);
    naq_worker_opts_init(&a.wo);
    return naq_cli_main(&c, &a, argc, argv);
}
