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
    "usage: naq bench events [--events N] [--runs R] [--payload BYTES] [--url URL]\n"
    "       naq bench jobs [--count N] [--workers W] [--enqueuers E] [--queue Q]\n"
    "                      [--events-off | --events-both] [--url URL]\n"
    "\n"
    "Benchmarks against the server at NAQ_URL (or --url). Figures are printed\n"
    "as name=value lines; progress goes to stderr.\n"
    "\n"
    "  events   events/s of the event logger (log until acknowledged), and in the\n"
    "           same run the raw ceiling of js_PublishMsgAsync with the same\n"
    "           subjects, headers and payload size; ends with ratio=logger/raw.\n"
    "           Best of R alternating runs of each side (default 3 x 200000).\n"
    "  jobs     end-to-end jobs/s (enqueue to completed) of no-op jobs with W\n"
    "           in-process workers while E threads enqueue (default 20000 jobs,\n"
    "           2 workers, 2 enqueuers), with events on; --events-both runs it\n"
    "           with events on and then off.\n";

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
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    int64_t v;
    while ((ch = getopt_long(argc, argv, "n:r:p:u:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': if (!parse_count("--events", optarg, 1, &o.events)) return 2; break;
        case 'r': if (!parse_count("--runs", optarg, 1, &v)) return 2; o.runs = (int)v; break;
        case 'p': if (!parse_count("--payload", optarg, 100, &v)) return 2; o.payload_bytes = (int)v; break;
        case 'u': snprintf(cfg->url, sizeof cfg->url, "%s", optarg); break;
        case 'h': fputs(bench_usage, stdout); return 0;
        default: fprintf(stderr, "try 'naq bench --help'\n"); return 2;
        }
    }
    fprintf(stderr, "naq bench events: %d alternating runs of %lld events against %s ...\n",
            o.runs, (long long)o.events, cfg->url);
    naq_bench_events_result r;
    naq_status s = naq_bench_events(cfg, &o, &r);
    if (s != NAQ_OK) {
        fprintf(stderr, "naq: %s\n", naq_last_error());
        return 1;
    }
    printf("events=%lld\nruns=%d\npayload_bytes=%d\nraw_events_per_s=%.0f\n"
           "logger_events_per_s=%.0f\nlogger_dropped=%llu\nlogger_spooled=%llu\n"
           "logger_retried=%llu\nratio=%.3f\n",
           (long long)o.events, o.runs, r.payload_bytes, r.raw_per_s, r.logger_per_s,
           (unsigned long long)r.dropped, (unsigned long long)r.spooled,
           (unsigned long long)r.retried, r.ratio);
    return 0;
}

static int run_jobs(naq_config *cfg, naq_bench_jobs_opts *o, const char *label)
{
    fprintf(stderr, "naq bench jobs: %lld no-op jobs, %d workers, events %s ...\n",
            (long long)o->count, o->workers, label);
    naq_bench_jobs_result r;
    naq_status s = naq_bench_jobs(cfg, o, &r);
    if (s != NAQ_OK) {
        fprintf(stderr, "naq: %s\n", naq_last_error());
        return 1;
    }
    printf("events_%s_jobs=%llu\nevents_%s_seconds=%.3f\nevents_%s_enqueue_per_s=%.0f\n"
           "events_%s_jobs_per_s=%.0f\n",
           label, (unsigned long long)r.completed, label, r.seconds, label, r.enqueue_per_s,
           label, r.jobs_per_s);
    return 0;
}

static int bench_jobs(int argc, char **argv, naq_config *cfg)
{
    naq_bench_jobs_opts o;
    naq_bench_jobs_opts_init(&o);
    int on = 1, off = 0;
    static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"enqueuers", required_argument, NULL, 'e'},
                                         {"queue", required_argument, NULL, 'q'},
                                         {"events-off", no_argument, NULL, 'O'},
                                         {"events-both", no_argument, NULL, 'B'},
                                         {"url", required_argument, NULL, 'u'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    int64_t v;
    while ((ch = getopt_long(argc, argv, "n:w:e:q:u:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': if (!parse_count("--count", optarg, 1, &o.count)) return 2; break;
        case 'w': if (!parse_count("--workers", optarg, 1, &v)) return 2; o.workers = (int)v; break;
        case 'e': if (!parse_count("--enqueuers", optarg, 1, &v)) return 2; o.enqueuers = (int)v; break;
        case 'q': o.queue = optarg; break;
        case 'O': on = 0; off = 1; break;
        case 'B': on = 1; off = 1; break;
        case 'u': snprintf(cfg->url, sizeof cfg->url, "%s", optarg); break;
        case 'h': fputs(bench_usage, stdout); return 0;
        default: fprintf(stderr, "try 'naq bench --help'\n"); return 2;
        }
    }
    printf("count=%lld\nworkers=%d\n", (long long)o.count, o.workers);
    int rc = 0;
    if (on) {
        o.events = 1;
        rc = run_jobs(cfg, &o, "on");
    }
    if (rc == 0 && off) {
        o.events = 0;
        rc = run_jobs(cfg, &o, "off");
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
