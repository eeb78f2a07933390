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

enum { OPT_JOB = NAQ_CLI_OPT_FIRST_FREE, OPT_TYPE, OPT_QUEUE, OPT_WORKER, OPT_TAIL, OPT_NO_FOLLOW };

/* ---- history ---- */

static int check_history(naq_cli_ctx *x)
{
    int rc = x->argc == 0 ? naq_cli_usage_error(x->cmd, "which job? give its id")
                          : naq_cli_operands(x, 1, "");
    naq_status s;
    if (rc == NAQ_EXIT_OK && (s = naq_id_validate("job id", x->argv[0])) != NAQ_OK)
        rc = naq_cli_fail(x->cmd, s);
    return rc;
}

static int history(naq_cli_ctx *x)
{
    naq_event_list list = {0};
    int rc = NAQ_EXIT_OK;
    naq_status s = naq_job_history(x->client, x->argv[0], &list);
    if (s != NAQ_OK) {
        rc = naq_cli_fail(x->cmd, s);
    } else {
        naq_cli_printer p;
        naq_cli_printer_init(&p, x->format);
        if (naq_cli_print_events(&p, list.items, list.count) != 0)
            rc = NAQ_EXIT_FAILURE;
    }
    naq_event_list_free(&list);
    return rc;
}

/* ---- stream ---- */

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

static int stream_option(naq_cli_ctx *x, int ch, const char *arg)
{
    naq_stream_opts *so = x->args;
    long long n = 0;
    naq_event_type t;
    switch (ch) {
    case OPT_JOB: so->filter.job_id = arg; break;
    case OPT_TYPE:
        if (naq_event_type_parse(arg, &t) != NAQ_OK)
            return naq_cli_usage_error(x->cmd, "%s", naq_last_error());
        so->filter.type = arg;
        break;
    case OPT_QUEUE: so->filter.queue = arg; break;
    case OPT_WORKER: so->filter.worker = arg; break;
    case OPT_TAIL:
        if (!naq_cli_parse_int(x->cmd, "--tail", arg, 0, 1000000000, &n))
            return NAQ_EXIT_USAGE;
        so->tail = (int)n;
        break;
    case OPT_NO_FOLLOW: so->follow = 0; break;
    }
    return NAQ_EXIT_OK;
}

static int check_stream(naq_cli_ctx *x)
{
    const naq_stream_opts *so = x->args;
    int rc = naq_cli_no_operands(x);
    if (rc == NAQ_EXIT_OK && !so->follow && so->tail == 0)
        rc = naq_cli_usage_error(x->cmd, "--no-follow prints the last N events and stops: give "
                                         "--tail N too");
    if (rc == NAQ_EXIT_OK)
        rc = check_id(x->cmd, "job id", so->filter.job_id);
    if (rc == NAQ_EXIT_OK)
        rc = check_id(x->cmd, "queue name", so->filter.queue);
    if (rc == NAQ_EXIT_OK)
        rc = check_id(x->cmd, "worker id", so->filter.worker);
    return rc;
}

static int stream(naq_cli_ctx *x)
{
    naq_stream_opts *so = x->args;
    /* Ctrl-C and SIGTERM end the stream normally: the library polls the
     * flag every 100 ms and returns NAQ_OK. */
    naq_cli_stop_on_signals(NULL, 0);
    so->stop = (const volatile int *)&naq_cli_stop_requested;
    naq_cli_printer p;
    naq_cli_printer_init(&p, x->format);
    p.flush = 1;
    naq_status s = naq_events_stream(x->client, so, print_one, &p);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    return ferror(stdout) ? NAQ_EXIT_FAILURE : NAQ_EXIT_OK;
}

/* ---- types ---- */

static const char *const type_headers[] = {"TYPE", "CATEGORY"};

static void type_row(const void *item, void *user, const char **cells,
                     char (*buf)[NAQ_CLI_CELL_MAX])
{
    static const char *const categories[] = {
        [NAQ_CATEGORY_JOB] = "job",
        [NAQ_CATEGORY_WORKER] = "worker",
        [NAQ_CATEGORY_SCHEDULER] = "scheduler",
        [NAQ_CATEGORY_SYSTEM] = "system",
    };
    naq_event_type t = *(const naq_event_type *)item;
    (void)user;
    (void)buf;
    cells[0] = naq_event_type_name(t);
    cells[1] = categories[naq_event_type_category(t)];
}

static const naq_cli_listing type_listing = {2, type_headers, NULL, type_row, NULL, NULL};

static int types(naq_cli_ctx *x)
{
    naq_event_type all[NAQ_EVENT_TYPE_COUNT];
    (void)x;
    for (int t = 0; t < NAQ_EVENT_TYPE_COUNT; t++)
        all[t] = (naq_event_type)t;
    return naq_cli_list_print(&type_listing, NAQ_CLI_FORMAT_TABLE, NULL, all, NAQ_EVENT_TYPE_COUNT,
                              sizeof all[0]);
}

/* ---- dispatch ---- */

static int history_main(int argc, char **argv)
{
    static const naq_cli_command c = {
        history_usage, NULL,          NULL,   NULL, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_RAW,
        NULL,          check_history, history};
    return naq_cli_main(&c, NULL, argc, argv);
}

static int stream_main(int argc, char **argv)
{
    static const struct option opts[] = {{"job", required_argument, NULL, OPT_JOB},
                                         {"type", required_argument, NULL, OPT_TYPE},
                                         {"queue", required_argument, NULL, OPT_QUEUE},
                                         {"worker", required_argument, NULL, OPT_WORKER},
                                         {"tail", required_argument, NULL, OPT_TAIL},
                                         {"no-follow", no_argument, NULL, OPT_NO_FOLLOW},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        stream_usage,  NULL,         NULL,  opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_RAW,
        stream_option, check_stream, stream};
    naq_stream_opts so;
    memset(&so, 0, sizeof so);
    so.follow = 1;
    return naq_cli_main(&c, &so, argc, argv);
}

static int types_main(int argc, char **argv)
{
    static const naq_cli_command c = {types_usage, NULL, NULL, NULL, NAQ_CLI_NO_CONNECTION_FLAGS,
                                      NULL,        NULL, types};
    return naq_cli_main(&c, NULL, argc, argv);
}

int naq_cmd_events(int argc, char **argv)
{
    static const naq_cli_sub subs[] = {
        {"history", "naq events history", history_main, NULL},
        {"stream", "naq events stream", stream_main, NULL},
        {"types", "naq events types", types_main, NULL},
        {"dlq", "naq events dlq", naq_cmd_events_dlq, NULL},
        {"list", "naq events list", naq_cmd_events_list, NULL},
        {"count", "naq events count", naq_cmd_events_count, NULL},
        {"replay", "naq events replay", naq_cmd_events_replay, NULL},
        {"stats", "naq events stats", naq_cmd_events_stats, NULL},
        {"workers", "naq events workers", naq_cmd_events_workers, NULL},
        {"delete", "naq events delete", naq_cmd_events_delete, NULL},
        {"cleanup", "naq events cleanup", naq_cmd_events_cleanup, NULL},
        {"rollup", "naq events rollup", naq_cmd_events_rollup, NULL},
        {"webhook", "naq events webhook", naq_cmd_events_webhook, NULL},
    };
    static const naq_cli_group group = {usage, "subcommand", subs, sizeof subs / sizeof subs[0]};
    return naq_cli_dispatch(&group, argc, argv);
}
