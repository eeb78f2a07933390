/*
 * cmd_bench.c - `naq bench events|jobs`: figures as name=value lines, one per
 * line, so scripts and the notes can quote them.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naq/bench.h"

static const char bench_usage[] =
    "usage: naq bench events [--events N] [--runs R] [--payload BYTES] [--rate EVENTS_PER_S]\n"
    "                        [--url URL]\n"
    "       naq bench jobs [--count N] [--workers W] [--concurrency C] [--prefetch P]\n"
    "                      [--mode sync|async|prefilled] [--events on|off|both]\n"
    "                      [--runs R] [--rate JOBS_PER_S] [--payload BYTES]\n"
    "                      [--queue Q] [--server-pid PID] [--url URL]\n"
    "\n"
    "Benchmarks against the server at NAQ_URL (or --url). Figures are printed\n"
    "as name=value lines on stdout; progress goes to stderr. docs/benchmarks.md\n"
    "explains the method. Use a server of their own, not a production one:\n"
    "their jobs and events (queue bench) stay in naq's streams, and so in the\n"
    "history, statistics and metrics.\n"
    "\n"
    "  events   events/s of the event logger (log until acknowledged), and in the\n"
    "           same run the raw ceiling of js_PublishMsgAsync with the same\n"
    "           subjects, headers and payload size; ends with ratio=logger/raw.\n"
    "           Best of R alternating runs of each side (default 3 x 200000);\n"
    "           raw_cpu_us_per_event and logger_cpu_us_per_event are this\n"
    "           process's CPU per event on each side, lowest of the runs.\n"
    "           --rate N: the logger alone at N events/s, every event confirmed;\n"
    "           prints latency_p50_ms and latency_p99_ms from the log call to the\n"
    "           server's ack (best of R runs; use fewer events, e.g. 2000).\n"
    "           NAQ_EVENT_LINGER_US sets the logger's linger (docs/benchmarks.md).\n"
    "\n"
    "  jobs     job throughput of no-op jobs, naq next to its ceiling (plain\n"
    "           nats.c doing the same messages: the job, K events and an outcome\n"
    "           record per job, the ack after the server confirmed them, where K\n"
    "           is what naq's worker stored per job in the same run).\n"
    "           W worker processes are started and ready first; then one\n"
    "           producer process enqueues N jobs while they work.\n"
    "           jobs_per_s = N / (last handler return - first enqueue call).\n"
    "    --count N           jobs per run (default 20000)\n"
    "    --workers W         worker processes (default 2; 1 with --rate)\n"
    "    --concurrency C     jobs at once in each worker (default 1)\n"
    "    --prefetch auto|P   jobs each worker fetches beyond its free slots\n"
    "                        (naq worker --prefetch; default auto, and then the\n"
    "                        ceiling pulls 64 more, auto's most; else P more)\n"
    "    --mode M            sync: naq_enqueue per job, waiting for the server\n"
    "                        (default); async: naq_enqueue_async per job, then a\n"
    "                        flush; prefilled: the queue is filled first and the\n"
    "                        clock starts when the workers start (workers alone)\n"
    "    --events E          on (default): events logged by producer and workers;\n"
    "                        off: NAQ_DISABLE_LOGGING in both; both: on, then off\n"
    "    --runs R            naq and the ceiling alternate R times; each figure\n"
    "                        is the median of its side (default 1)\n"
    "    --rate R            latency mode: a producer paced at R jobs/s (sync\n"
    "                        enqueues) and, unless --workers says otherwise, one\n"
    "                        worker; read latency_p50_ms / latency_p99_ms\n"
    "    --payload BYTES     size of each job's args (default 100)\n"
    "    --queue Q           naq's queue (default bench; purged before each run)\n"
    "    --server-pid PID    the local nats-server's pid: also print\n"
    "                        server_cpu_ms_per_job (its CPU from go to the last\n"
    "                        worker's exit / N, read from /proc)\n"
    "           Prints count, workers, concurrency, mode, events, runs, job_bytes,\n"
    "           events_per_job (K), then for naq: jobs_per_s, seconds,\n"
    "           cpu_ms_per_job (user+sys of producer and workers / N; the\n"
    "           server's CPU is not included), producer_cpu_ms_per_job,\n"
    "           workers_cpu_ms_per_job, wakeups_per_job (voluntary context\n"
    "           switches of producer and workers / N: thread hand-offs),\n"
    "           latency_p50_ms, latency_p99_ms (enqueue call -> handler\n"
    "           entry), handled; the same prefixed ceiling_; and\n"
    "           ratio = jobs_per_s / ceiling_jobs_per_s. With --events both each\n"
    "           line is prefixed events_on_ or events_off_.\n"
    "           The ceiling uses its own streams CEIL_JOBS, CEIL_EVENTS and\n"
    "           CEIL_OUTCOMES on the same server (created, then deleted).\n"
    "           Run one benchmark at a time on a shared machine.\n"
    "\n"
    "exit codes: 0 ok, 1 failure (no server, a producer or worker failed), 2 bad usage\n";

/* Both benchmarks' flags; each table names the ones it takes. */
typedef struct {
    naq_config cfg; /* NAQ_* environment, then --url */
    naq_bench_events_opts ev;
    naq_bench_jobs_opts jobs;
    int on, off, workers_set; /* jobs --events on|off|both; --workers given */
} bench_args;

static int count(naq_cli_ctx *x, const char *flag, const char *arg, long long min, long long *v)
{
    return naq_cli_parse_int(x->cmd, flag, arg, min, INT64_MAX, v) ? NAQ_EXIT_OK : NAQ_EXIT_USAGE;
}

static int events_option(naq_cli_ctx *x, int ch, const char *arg)
{
    bench_args *a = x->args;
    naq_bench_events_opts *o = &a->ev;
    long long v = 0;
    int rc = NAQ_EXIT_OK;
    switch (ch) {
    case 'n':
        if ((rc = count(x, "--events", arg, 1, &v)) == NAQ_EXIT_OK)
            o->events = v;
        break;
    case 'r':
        if ((rc = count(x, "--runs", arg, 1, &v)) == NAQ_EXIT_OK)
            o->runs = (int)v;
        break;
    case 'p':
        if ((rc = count(x, "--payload", arg, 100, &v)) == NAQ_EXIT_OK)
            o->payload_bytes = (int)v;
        break;
    case 'R':
        if ((rc = count(x, "--rate", arg, 1, &v)) == NAQ_EXIT_OK)
            o->rate = (int)(v > 1000000 ? 1000000 : v);
        break;
    case 'u': snprintf(a->cfg.url, sizeof a->cfg.url, "%s", arg); break;
    }
    return rc;
}

static int bench_events(naq_cli_ctx *x)
{
    bench_args *a = x->args;
    naq_config *cfg = &a->cfg;
    naq_bench_events_opts *o = &a->ev;
    char shown[sizeof cfg->url];
    fprintf(stderr, "naq bench events: %d %s of %lld events against %s ...\n", o->runs,
            o->rate > 0 ? "paced runs" : "alternating runs", (long long)o->events,
            naq_url_redact(cfg->url, shown, sizeof shown));
    naq_bench_events_result r;
    naq_status s = naq_bench_events(cfg, o, &r);
    if (s != NAQ_OK) {
        naq_cli_error("%s", naq_last_error());
        return NAQ_EXIT_FAILURE;
    }
    if (o->rate > 0) {
        printf("events=%lld\nruns=%d\nrate=%d\nlinger_us=%lld\nlatency_p50_ms=%.3f\n"
               "latency_p99_ms=%.3f\n",
               (long long)o->events, o->runs, o->rate, (long long)cfg->logger_linger_us,
               r.latency_p50_ms, r.latency_p99_ms);
        return NAQ_EXIT_OK;
    }
    printf("events=%lld\nruns=%d\npayload_bytes=%d\nraw_events_per_s=%.0f\n"
           "logger_events_per_s=%.0f\nlogger_dropped=%llu\nlogger_spooled=%llu\n"
           "logger_retried=%llu\nraw_cpu_us_per_event=%.2f\nlogger_cpu_us_per_event=%.2f\n"
           "ratio=%.3f\n",
           (long long)o->events, o->runs, r.payload_bytes, r.raw_per_s, r.logger_per_s,
           (unsigned long long)r.dropped, (unsigned long long)r.spooled,
           (unsigned long long)r.retried, r.raw_cpu_us, r.logger_cpu_us, r.ratio);
    return NAQ_EXIT_OK;
}

static void show_progress(const char *line, void *user)
{
    (void)user;
    fprintf(stderr, "naq bench jobs: %s\n", line);
}

static void print_side(const char *prefix, const char *side, const naq_bench_side *r)
{
    printf("%s%sjobs_per_s=%.0f\n%s%sseconds=%.3f\n%s%scpu_ms_per_job=%.4f\n"
           "%s%sproducer_cpu_ms_per_job=%.4f\n%s%sworkers_cpu_ms_per_job=%.4f\n"
           "%s%swakeups_per_job=%.1f\n"
           "%s%slatency_p50_ms=%.3f\n%s%slatency_p99_ms=%.3f\n%s%shandled=%lld\n",
           prefix, side, r->jobs_per_s, prefix, side, r->seconds, prefix, side, r->cpu_ms_per_job,
           prefix, side, r->producer_cpu_ms_per_job, prefix, side, r->workers_cpu_ms_per_job,
           prefix, side, r->wakeups_per_job, prefix, side, r->latency_p50_ms, prefix, side,
           r->latency_p99_ms, prefix, side, (long long)r->handled);
    if (r->server_cpu_ms_per_job >= 0)
        printf("%s%sserver_cpu_ms_per_job=%.4f\n", prefix, side, r->server_cpu_ms_per_job);
}

static int run_jobs(naq_config *cfg, naq_bench_jobs_opts *o, const char *prefix)
{
    char shown[sizeof cfg->url];
    fprintf(stderr,
            "naq bench jobs: %lld no-op jobs, %d workers x %d, mode %s, events %s, %d run(s) "
            "of naq and the ceiling against %s ...\n",
            (long long)o->count, o->workers, o->concurrency, naq_bench_mode_name(o->mode),
            o->events ? "on" : "off", o->runs, naq_url_redact(cfg->url, shown, sizeof shown));
    naq_bench_jobs_result r;
    naq_status s = naq_bench_jobs(cfg, o, &r);
    if (s != NAQ_OK) {
        fprintf(stderr, "naq: %s\n", naq_last_error());
        return s == NAQ_ERR_INVALID_ARG ? 2 : 1;
    }
    printf("%sevents=%s\n%sjob_bytes=%d\n%sevents_per_job=%d\n", prefix, o->events ? "on" : "off",
           prefix, r.job_bytes, prefix, r.events_per_job);
    print_side(prefix, "", &r.naq);
    print_side(prefix, "ceiling_", &r.ceiling);
    printf("%sratio=%.3f\n", prefix, r.ratio);
    fflush(stdout);
    return 0;
}

static int jobs_option(naq_cli_ctx *x, int ch, const char *arg)
{
    bench_args *a = x->args;
    naq_bench_jobs_opts *o = &a->jobs;
    long long v = 0;
    int rc = NAQ_EXIT_OK;
    switch (ch) {
    case 'n':
        if ((rc = count(x, "--count", arg, 1, &v)) == NAQ_EXIT_OK)
            o->count = v;
        break;
    case 'w':
        if ((rc = count(x, "--workers", arg, 1, &v)) == NAQ_EXIT_OK)
            o->workers = (int)v;
        a->workers_set = 1;
        break;
    case 'c':
        if ((rc = count(x, "--concurrency", arg, 1, &v)) == NAQ_EXIT_OK)
            o->concurrency = (int)v;
        break;
    case 'f':
        if (!naq_cli_parse_prefetch(x->cmd, arg, &o->prefetch))
            rc = NAQ_EXIT_USAGE;
        break;
    case 'r':
        if ((rc = count(x, "--runs", arg, 1, &v)) == NAQ_EXIT_OK)
            o->runs = (int)v;
        break;
    case 'R':
        if ((rc = count(x, "--rate", arg, 1, &v)) == NAQ_EXIT_OK)
            o->rate = (double)v;
        break;
    case 'p':
        if ((rc = count(x, "--payload", arg, 64, &v)) == NAQ_EXIT_OK)
            o->payload_bytes = (int)v;
        break;
    case 'm':
        if (!strcmp(arg, "sync"))
            o->mode = NAQ_BENCH_SYNC;
        else if (!strcmp(arg, "async"))
            o->mode = NAQ_BENCH_ASYNC;
        else if (!strcmp(arg, "prefilled"))
            o->mode = NAQ_BENCH_PREFILLED;
        else
            rc = naq_cli_usage_error(x->cmd, "--mode is sync, async or prefilled, got '%s'", arg);
        break;
    case 'e':
        if (!strcmp(arg, "on"))
            a->on = 1, a->off = 0;
        else if (!strcmp(arg, "off"))
            a->on = 0, a->off = 1;
        else if (!strcmp(arg, "both"))
            a->on = 1, a->off = 1;
        else
            rc = naq_cli_usage_error(x->cmd, "--events is on, off or both, got '%s'", arg);
        break;
    case 'q': o->queue = arg; break;
    case 'P':
        if ((rc = count(x, "--server-pid", arg, 1, &v)) == NAQ_EXIT_OK)
            o->server_pid = (long)v;
        break;
    case 'u': snprintf(a->cfg.url, sizeof a->cfg.url, "%s", arg); break;
    }
    return rc;
}

static int check_jobs(naq_cli_ctx *x)
{
    bench_args *a = x->args;
    naq_bench_jobs_opts *o = &a->jobs;
    int rc = naq_cli_no_operands(x);
    if (rc != NAQ_EXIT_OK || o->rate <= 0)
        return rc;
    if (o->mode == NAQ_BENCH_PREFILLED)
        return naq_cli_usage_error(x->cmd, "--rate paces the producer, it cannot be used with "
                                           "--mode prefilled");
    o->mode = NAQ_BENCH_SYNC;
    if (!a->workers_set)
        o->workers = 1;
    return NAQ_EXIT_OK;
}

static int bench_jobs(naq_cli_ctx *x)
{
    bench_args *a = x->args;
    naq_bench_jobs_opts *o = &a->jobs;
    char prefetch[16] = "auto";
    if (o->prefetch != NAQ_PREFETCH_AUTO)
        snprintf(prefetch, sizeof prefetch, "%d", o->prefetch);
    printf("count=%lld\nworkers=%d\nconcurrency=%d\nprefetch=%s\nmode=%s\nruns=%d\n",
           (long long)o->count, o->workers, o->concurrency, prefetch, naq_bench_mode_name(o->mode),
           o->runs);
    if (o->rate > 0)
        printf("rate=%.0f\n", o->rate);
    fflush(stdout);
    int rc = 0;
    if (a->on) {
        o->events = 1;
        rc = run_jobs(&a->cfg, o, a->on && a->off ? "events_on_" : "");
    }
    if (rc == 0 && a->off) {
        o->events = 0;
        rc = run_jobs(&a->cfg, o, a->on && a->off ? "events_off_" : "");
    }
    return rc;
}

/* Runs benchmark c with the defaults and the NAQ_* environment. */
static int bench_main(const naq_cli_command *c, int argc, char **argv)
{
    bench_args *a = calloc(1, sizeof *a); /* large (the config): not on the stack */
    if (a == NULL) {
        naq_cli_error("out of memory");
        return NAQ_EXIT_FAILURE;
    }
    naq_config_init(&a->cfg);
    naq_bench_events_opts_init(&a->ev);
    naq_bench_jobs_opts_init(&a->jobs);
    a->jobs.progress = show_progress;
    a->on = 1;
    int rc = naq_config_from_env(&a->cfg) == NAQ_OK
                 ? naq_cli_main(c, a, argc, argv)
                 : naq_cli_usage_error(argv[0], "%s", naq_last_error());
    free(a);
    return rc;
}

static int events_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"events", required_argument, NULL, 'n'},  {"runs", required_argument, NULL, 'r'},
        {"payload", required_argument, NULL, 'p'}, {"url", required_argument, NULL, 'u'},
        {"rate", required_argument, NULL, 'R'},    {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        bench_usage,   NULL, "n:r:p:u:R:", opts, NAQ_CLI_NO_CONNECTION_FLAGS,
        events_option, NULL, bench_events};
    return bench_main(&c, argc, argv);
}

static int jobs_main(int argc, char **argv)
{
    static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"concurrency", required_argument, NULL, 'c'},
                                         {"prefetch", required_argument, NULL, 'f'},
                                         {"mode", required_argument, NULL, 'm'},
                                         {"events", required_argument, NULL, 'e'},
                                         {"runs", required_argument, NULL, 'r'},
                                         {"rate", required_argument, NULL, 'R'},
                                         {"payload", required_argument, NULL, 'p'},
                                         {"queue", required_argument, NULL, 'q'},
                                         {"server-pid", required_argument, NULL, 'P'},
                                         {"url", required_argument, NULL, 'u'},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {bench_usage,
                                      NULL,
                                      "n:w:c:f:m:e:r:R:p:q:P:u:",
                                      opts,
                                      NAQ_CLI_NO_CONNECTION_FLAGS,
                                      jobs_option,
                                      check_jobs,
                                      bench_jobs};
    return bench_main(&c, argc, argv);
}

int naq_cmd_bench(int argc, char **argv)
{
    static const naq_cli_sub subs[] = {{"events", "naq bench events", events_main, NULL},
                                       {"jobs", "naq bench jobs", jobs_main, NULL}};
    static const naq_cli_group group = {bench_usage, "benchmark", subs,
                                        sizeof subs / sizeof subs[0]};
    return naq_cli_dispatch(&group, argc, argv);
}
