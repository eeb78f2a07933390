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
    "explains the method.\n"
    "\n"
    "  events   events/s of the event logger (log until acknowledged), and in the\n"
    "           same run the raw ceiling of js_PublishMsgAsync with the same\n"
    "           subjects, headers and payload size; ends with ratio=logger/raw.\n"
    "           Best of R alternating runs of each side (default 3 x 200000).\n"
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

static int parse_count(const char *flag, const char *text, int64_t min, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v < min) {
        fprintf(stderr, "naq bench: %s needs a whole number >= %lld, got '%s'\n", flag,
                (long long)min, text);
        return 0;
    }
    *out = v;
    return 1;
}

static int bench_events(int argc, char **argv, naq_config *cfg)
{
    naq_bench_events_opts o;
    naq_bench_events_opts_init(&o);
    static const struct option opts[] = {{"events", required_argument, NULL, 'n'},
                                         {"runs", required_argument, NULL, 'r'},
                                         {"payload", required_argument, NULL, 'p'},
                                         {"url", required_argument, NULL, 'u'},
                                         {"rate", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    int64_t v;
    while ((ch = getopt_long(argc, argv, "n:r:p:u:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (!parse_count("--events", optarg, 1, &o.events))
                return 2;
            break;
        case 'r':
            if (!parse_count("--runs", optarg, 1, &v))
                return 2;
            o.runs = (int)v;
            break;
        case 'p':
            if (!parse_count("--payload", optarg, 100, &v))
                return 2;
            o.payload_bytes = (int)v;
            break;
        case 'R':
            if (!parse_count("--rate", optarg, 1, &v))
                return 2;
            o.rate = (int)(v > 1000000 ? 1000000 : v);
            break;
        case 'u': snprintf(cfg->url, sizeof cfg->url, "%s", optarg); break;
        case 'h': fputs(bench_usage, stdout); return 0;
        default: fprintf(stderr, "try 'naq bench --help'\n"); return 2;
        }
    }
    char shown[sizeof cfg->url];
    fprintf(stderr, "naq bench events: %d %s of %lld events against %s ...\n", o.runs,
            o.rate > 0 ? "paced runs" : "alternating runs", (long long)o.events,
            naq_url_redact(cfg->url, shown, sizeof shown));
    naq_bench_events_result r;
    naq_status s = naq_bench_events(cfg, &o, &r);
    if (s != NAQ_OK) {
        fprintf(stderr, "naq: %s\n", naq_last_error());
        return 1;
    }
    if (o.rate > 0) {
        printf("events=%lld\nruns=%d\nrate=%d\nlinger_us=%lld\nlatency_p50_ms=%.3f\n"
               "latency_p99_ms=%.3f\n",
               (long long)o.events, o.runs, o.rate, (long long)cfg->logger_linger_us,
               r.latency_p50_ms, r.latency_p99_ms);
        return 0;
    }
    printf("events=%lld\nruns=%d\npayload_bytes=%d\nraw_events_per_s=%.0f\n"
           "logger_events_per_s=%.0f\nlogger_dropped=%llu\nlogger_spooled=%llu\n"
           "logger_retried=%llu\nratio=%.3f\n",
           (long long)o.events, o.runs, r.payload_bytes, r.raw_per_s, r.logger_per_s,
           (unsigned long long)r.dropped, (unsigned long long)r.spooled,
           (unsigned long long)r.retried, r.ratio);
    return 0;
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

static int bench_jobs(int argc, char **argv, naq_config *cfg)
{
    naq_bench_jobs_opts o;
    naq_bench_jobs_opts_init(&o);
    o.progress = show_progress;
    int on = 1, off = 0, workers_set = 0;
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
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    int64_t v;
    while ((ch = getopt_long(argc, argv, "n:w:c:f:m:e:r:R:p:q:P:u:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (!parse_count("--count", optarg, 1, &o.count))
                return 2;
            break;
        case 'w':
            if (!parse_count("--workers", optarg, 1, &v))
                return 2;
            o.workers = (int)v;
            workers_set = 1;
            break;
        case 'c':
            if (!parse_count("--concurrency", optarg, 1, &v))
                return 2;
            o.concurrency = (int)v;
            break;
        case 'f':
            if (!naq_cli_parse_prefetch("naq bench", optarg, &o.prefetch))
                return 2;
            break;
        case 'r':
            if (!parse_count("--runs", optarg, 1, &v))
                return 2;
            o.runs = (int)v;
            break;
        case 'R':
            if (!parse_count("--rate", optarg, 1, &v))
                return 2;
            o.rate = (double)v;
            break;
        case 'p':
            if (!parse_count("--payload", optarg, 64, &v))
                return 2;
            o.payload_bytes = (int)v;
            break;
        case 'm':
            if (!strcmp(optarg, "sync"))
                o.mode = NAQ_BENCH_SYNC;
            else if (!strcmp(optarg, "async"))
                o.mode = NAQ_BENCH_ASYNC;
            else if (!strcmp(optarg, "prefilled"))
                o.mode = NAQ_BENCH_PREFILLED;
            else {
                fprintf(stderr,
                        "naq bench: --mode is sync, async or prefilled, got '%s'; try 'naq bench "
                        "--help'\n",
                        optarg);
                return 2;
            }
            break;
        case 'e':
            if (!strcmp(optarg, "on"))
                on = 1, off = 0;
            else if (!strcmp(optarg, "off"))
                on = 0, off = 1;
            else if (!strcmp(optarg, "both"))
                on = 1, off = 1;
            else {
                fprintf(
                    stderr,
                    "naq bench: --events is on, off or both, got '%s'; try 'naq bench --help'\n",
                    optarg);
                return 2;
            }
            break;
        case 'q': o.queue = optarg; break;
        case 'P':
            if (!parse_count("--server-pid", optarg, 1, &v))
                return 2;
            o.server_pid = (long)v;
            break;
        case 'u': snprintf(cfg->url, sizeof cfg->url, "%s", optarg); break;
        case 'h': fputs(bench_usage, stdout); return 0;
        default: fprintf(stderr, "try 'naq bench --help'\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "naq bench jobs: unexpected argument '%s'; try 'naq bench --help'\n",
                argv[optind]);
        return 2;
    }
    if (o.rate > 0) {
        if (o.mode == NAQ_BENCH_PREFILLED) {
            fprintf(stderr, "naq bench jobs: --rate paces the producer, it cannot be used with "
                            "--mode prefilled; try 'naq bench --help'\n");
            return 2;
        }
        o.mode = NAQ_BENCH_SYNC;
        if (!workers_set)
            o.workers = 1;
    }
    char prefetch[16] = "auto";
    if (o.prefetch != NAQ_PREFETCH_AUTO)
        snprintf(prefetch, sizeof prefetch, "%d", o.prefetch);
    printf("count=%lld\nworkers=%d\nconcurrency=%d\nprefetch=%s\nmode=%s\nruns=%d\n",
           (long long)o.count, o.workers, o.concurrency, prefetch, naq_bench_mode_name(o.mode),
           o.runs);
    if (o.rate > 0)
        printf("rate=%.0f\n", o.rate);
    fflush(stdout);
    int rc = 0;
    if (on) {
        o.events = 1;
        rc = run_jobs(cfg, &o, on && off ? "events_on_" : "");
    }
    if (rc == 0 && off) {
        o.events = 0;
        rc = run_jobs(cfg, &o, on && off ? "events_off_" : "");
    }
    return rc;
}

int naq_cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(bench_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    naq_config cfg;
    naq_config_init(&cfg);
    if (naq_config_from_env(&cfg) != NAQ_OK) {
        fprintf(stderr, "naq: %s\n", naq_last_error());
        return 2;
    }
    optind = 1;
    if (!strcmp(argv[1], "events"))
        return bench_events(argc - 1, argv + 1, &cfg);
    if (!strcmp(argv[1], "jobs"))
        return bench_jobs(argc - 1, argv + 1, &cfg);
    fprintf(stderr, "naq bench: unknown benchmark '%s'; try 'naq bench --help'\n", argv[1]);
    return 2;
}
