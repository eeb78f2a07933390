/*
 * cmd_events.c - `naq events history|stream|types`: read the event log.
 *
 * history is one literal read of the job's subject; stream follows new
 * events with filters applied by the library; both print through the shared
 * formatter so their lines look alike in every format.
 */
#include "cli.h"
#include "cmd_events_query.h"
#include "cmd_events_dlq.h"
#include "cmd_events_webhook.h"

#include <signal.h>
#include <string.h>

static const char usage[] =
    "usage: naq events history JOB_ID [--format table|json|raw]\n"
    "       naq events stream [--job ID] [--type TYPE] [--queue Q] [--worker W]\n"
    "                         [--tail N] [--no-follow] [--format table|json|raw]\n"
    "       naq events types\n"
    "       naq events dlq list|replay ...\n"
    "       naq events list|count|replay|stats|workers|delete|cleanup|rollup ...\n"
    "       naq events webhook --url URL [FILTERS] [--group NAME] ...\n"
    "\n"
    "  history   every event of one job, oldest first\n"
    "  stream    live events matching all the given filters, until Ctrl-C\n"
    "  types     every event type with its category\n"
    "  dlq       events a consumer group gave up on: list them, replay them\n"
    "  list      stored events with filters, time range, offset and limit\n"
    "  count     how many stored events match the filters\n"
    "  replay    stored events again, from a time or sequence, fast or in original timing\n"
    "  stats     counts, success rate, throughput, durations, top errors (from rollups)\n"
    "  workers   worker status from recent events\n"
    "  delete    remove one job's events\n"
    "  cleanup   remove events older than a duration\n"
    "  rollup    keep the statistics rollups up to date (runs until Ctrl-C)\n"
    "  webhook   POST matching events to a URL, from a consumer group\n"
    "\n"
    "'naq events SUBCOMMAND --help' shows the options of one.\n"
    "exit codes: 0 ok, 1 failure (no such job, no server), 2 bad usage\n";

static const char history_usage[] =
    "usage: naq events history JOB_ID [--format table|json|raw]\n"
    "\n"
    "Prints every event of the job in the order they were stored.\n"
    "\n" NAQ_CLI_FORMAT_USAGE "  -h, --help         this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "formats: table = TIME (UTC) TYPE JOB QUEUE WORKER ATTEMPT DETAIL;\n"
    "json = one JSON object per line with nats_subject and nats_sequence\n"
    "(pipe into jq); raw = the event's wire JSON (docs/protocol.md).\n"
    "\n"
    "example:\n"
    "  naq events history \"$id\" --format json | jq -r .event_type\n"
    "\n"
    "exit codes: 0 ok, 1 no events for the job or no server, 2 bad usage\n";

static const char stream_usage[] =
    "usage: naq events stream [--job ID] [--type TYPE] [--queue Q] [--worker W]\n"
    "                         [--tail N] [--no-follow] [--format table|json|raw]\n"
    "\n"
    "Prints events as they are stored, keeping those that match every filter\n"
    "given, until Ctrl-C.\n"
    "\n"
    "      --job ID       events of this job\n"
    "      --type TYPE    events of this type ('naq events types' lists them)\n"
    "      --queue Q      events about this queue\n"
    "      --worker W     events about this worker\n"
    "      --tail N       first show the last N matching events already stored\n"
    "      --no-follow    stop after those N (needs --tail)\n" NAQ_CLI_FORMAT_USAGE
    "  -h, --help         this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq events stream --type failed --queue emails\n"
    "  naq events stream --tail 100 --no-follow --format json | jq .job_id\n"
    "\n"
    "exit codes: 0 stopped by Ctrl-C (or --no-follow done), 1 failure, 2 bad usage\n";

static const char types_usage[] =
    "usage: naq events types\n"
    "\n"
    "Lists every event type name with its category (job, worker, scheduler,\n"
    "system); these names are what --type accepts and what event_type holds.\n"
    "Needs no server.\n"
    "\n"
    "exit codes: 0 ok, 2 bad usage\n";

enum {
    OPT_FORMAT = NAQ_CLI_OPT_FIRST_FREE,
    OPT_JOB,
    OPT_TYPE,
    OPT_QUEUE,
    OPT_WORKER,
    OPT_TAIL,
    OPT_NO_FOLLOW
};

/* ---- history ---- */

static int history(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {{"format", required_argument, NULL, OPT_FORMAT},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    naq_cli_common common = {0};
    naq_cli_format format = NAQ_CLI_FORMAT_TABLE;
    int rc = NAQ_EXIT_OK, ch;
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_FORMAT: rc = naq_cli_parse_format(cmd, optarg, 1, &format); break;
        case 'h': fputs(history_usage, stdout); return NAQ_EXIT_OK;
        default:
            if (!naq_cli_common_option(&common, ch, optarg))
                rc = naq_cli_try_help(cmd);
            break;
        }
    }
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (optind >= argc)
        return naq_cli_usage_error(cmd, "which job? give its id");
    if (optind + 1 < argc)
        return naq_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    const char *job_id = argv[optind];
    naq_status s = naq_id_validate("job id", job_id);
    if (s != NAQ_OK)
        return naq_cli_fail(cmd, s);

    naq_client *client = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 0, &client)) != NAQ_EXIT_OK)
        return rc;
    naq_event_list list = {0};
    s = naq_job_history(client, job_id, &list);
    if (s != NAQ_OK) {
        rc = naq_cli_fail(cmd, s);
    } else {
        naq_cli_printer p;
        naq_cli_printer_init(&p, format);
        if (naq_cli_print_events(&p, list.items, list.count) != 0)
            rc = NAQ_EXIT_FAILURE;
    }
    naq_event_list_free(&list);
    naq_client_destroy(client);
    return rc;
}

/* ---- stream ---- */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int print_one(const naq_event *e, void *user)
{
    naq_cli_printer *p = user;
    /* Stop when stdout is gone (the reader of a pipe quit). */
    return naq_cli_print_event(p, e) != 0;
}

static int check_id(const char *cmd, const char *what, const char *id)
{
    if (id == NULL)
        return NAQ_EXIT_OK;
    naq_status s = naq_id_validate(what, id);
    return s == NAQ_OK ? NAQ_EXIT_OK : naq_cli_fail(cmd, s);
}

static int stream(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {{"job", required_argument, NULL, OPT_JOB},
                                         {"type", required_argument, NULL, OPT_TYPE},
                                         {"queue", required_argument, NULL, OPT_QUEUE},
                                         {"worker", required_argument, NULL, OPT_WORKER},
                                         {"tail", required_argument, NULL, OPT_TAIL},
                                         {"no-follow", no_argument, NULL, OPT_NO_FOLLOW},
                                         {"format", required_argument, NULL, OPT_FORMAT},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    naq_cli_common common = {0};
    naq_cli_format format = NAQ_CLI_FORMAT_TABLE;
    naq_stream_opts so;
    memset(&so, 0, sizeof so);
    so.follow = 1;
    long long n = 0;
    int rc = NAQ_EXIT_OK, ch;
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_JOB: so.filter.job_id = optarg; break;
        case OPT_TYPE: {
            naq_event_type t;
            if (naq_event_type_parse(optarg, &t) != NAQ_OK)
                rc = naq_cli_usage_error(cmd, "%s", naq_last_error());
            so.filter.type = optarg;
            break;
        }
        case OPT_QUEUE: so.filter.queue = optarg; break;
        case OPT_WORKER: so.filter.worker = optarg; break;
        case OPT_TAIL:
            if (!naq_cli_parse_int(cmd, "--tail", optarg, 0, 1000000000, &n))
                rc = NAQ_EXIT_USAGE;
            so.tail = (int)n;
            break;
        case OPT_NO_FOLLOW: so.follow = 0; break;
        case OPT_FORMAT: rc = naq_cli_parse_format(cmd, optarg, 1, &format); break;
        case 'h': fputs(stream_usage, stdout); return NAQ_EXIT_OK;
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
    if (!so.follow && so.tail == 0)
        return naq_cli_usage_error(cmd, "--no-follow prints the last N events and stops: give "
                                        "--tail N too");
    if ((rc = check_id(cmd, "job id", so.filter.job_id)) != NAQ_EXIT_OK ||
        (rc = check_id(cmd, "queue name", so.filter.queue)) != NAQ_EXIT_OK ||
        (rc = check_id(cmd, "worker id", so.filter.worker)) != NAQ_EXIT_OK)
        return rc;

    naq_client *client = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 0, &client)) != NAQ_EXIT_OK)
        return rc;

    /* Ctrl-C and SIGTERM end the stream normally: the library polls the
     * flag every 100 ms and returns NAQ_OK. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    so.stop = (const volatile int *)&stop_requested;

    naq_cli_printer p;
    naq_cli_printer_init(&p, format);
    p.flush = 1;
    naq_status s = naq_events_stream(client, &so, print_one, &p);
    if (s != NAQ_OK)
        rc = naq_cli_fail(cmd, s);
    else if (ferror(stdout))
        rc = NAQ_EXIT_FAILURE;
    naq_client_destroy(client);
    return rc;
}

/* ---- types ---- */

static int types(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(types_usage, stdout);
            return NAQ_EXIT_OK;
        }
        return naq_cli_try_help(cmd);
    }
    if (optind < argc)
        return naq_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    static const char *const categories[] = {
        [NAQ_CATEGORY_JOB] = "job",
        [NAQ_CATEGORY_WORKER] = "worker",
        [NAQ_CATEGORY_SCHEDULER] = "scheduler",
        [NAQ_CATEGORY_SYSTEM] = "system",
    };
    printf("%-26s  %s\n", "TYPE", "CATEGORY");
    for (int t = 0; t < NAQ_EVENT_TYPE_COUNT; t++)
        printf("%-26s  %s\n", naq_event_type_name((naq_event_type)t),
               categories[naq_event_type_category((naq_event_type)t)]);
    return NAQ_EXIT_OK;
}

/* ---- dispatch ---- */

int naq_cmd_events(int argc, char **argv)
{
    static const struct {
        const char *name, *argv0;
        int (*run)(int, char **);
    } subs[] = {
        {"history", "naq events history", history},
        {"stream", "naq events stream", stream},
        {"types", "naq events types", types},
        {"dlq", "naq events dlq", naq_cmd_events_dlq},
        {"list", "naq events list", naq_cmd_events_list},
        {"count", "naq events count", naq_cmd_events_count},
        {"replay", "naq events replay", naq_cmd_events_replay},
        {"stats", "naq events stats", naq_cmd_events_stats},
        {"workers", "naq events workers", naq_cmd_events_workers},
        {"delete", "naq events delete", naq_cmd_events_delete},
        {"cleanup", "naq events cleanup", naq_cmd_events_cleanup},
        {"rollup", "naq events rollup", naq_cmd_events_rollup},
        {"webhook", "naq events webhook", naq_cmd_events_webhook},
    };
    if (argc < 2)
        return naq_cli_usage_error(argv[0],
                                   "which subcommand? history, stream, types, dlq, list, count, "
                                   "replay, stats, workers, delete, cleanup, rollup or webhook");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, stdout);
        return NAQ_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i].name) == 0) {
            argv[1] = (char *)subs[i].argv0;
            optind = 1;
            return subs[i].run(argc - 1, argv + 1);
        }
    }
    return naq_cli_usage_error(argv[0], "unknown subcommand '%s': see 'naq events --help'",
                               argv[1]);
}
