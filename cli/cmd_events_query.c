/*
 * cmd_events_query.c - `naq events list|count|delete|cleanup|replay|stats|
 * workers|rollup`: questions about the event log, and the rollup
 * maintainer.
 *
 * Thin over naq/query.h and naq/stats.h: every command parses its flags
 * into a naq_query (the filters are the same everywhere), calls the
 * library and prints. Events print through the shared formatter (cli.h);
 * stats and workers, which are not events, print a table or one JSON object
 * per line (raw is the same as json for them).
 */
#include "cli.h"
#include "core/jsonw.h"
#include "internal.h" /* naq__now, naq__mono_ms: the library's clocks */
#include "cmd_events_query.h"

#include "naq/query.h"
#include "naq/stats.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TAGS 16
#define DEFAULT_LIMIT 1000

/* ---- the shared filter flags ---- */

#define FILTER_USAGE                                                                               \
    "filters (all given must match):\n"                                                            \
    "      --job ID          events of this job\n"                                                 \
    "      --type TYPE       events of this type ('naq events types' lists them)\n"                \
    "      --queue Q         events about this queue\n"                                            \
    "      --worker W        events about this worker\n"                                           \
    "      --tag KEY=VALUE   events whose job has this tag (repeatable)\n"                         \
    "      --since TIME      events at or after TIME: a duration before now (90s, 1h,\n"           \
    "                        7d), an ISO-8601 time (2026-01-31T12:00:00Z; with an\n"               \
    "                        offset, 2026-01-31T13:00:00+01:00) or @SECONDS\n"                     \
    "      --until TIME      events at or before TIME (same forms)\n"                              \
    "      --from-seq N      from stream sequence N\n"                                             \
    "      --until-seq N     up to stream sequence N\n"

enum {
    OPT_JOB = NAQ_CLI_OPT_FIRST_FREE,
    OPT_TYPE,
    OPT_QUEUE,
    OPT_WORKER,
    OPT_TAG,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_FROM_SEQ,
    OPT_UNTIL_SEQ,
    OPT_FROM_TIME,
    OPT_OFFSET,
    OPT_LIMIT,
    OPT_HOURS,
    OPT_BY_QUEUE,
    OPT_BY_WORKER,
    OPT_OLDER_THAN,
    OPT_TIMING,
    OPT_SPEED,
    OPT_MAX_GAP,
    OPT_ONCE,
    OPT_NO_FOLD,
};

#define FILTER_OPTIONS                                                                             \
    {"job", required_argument, NULL, OPT_JOB}, {"type", required_argument, NULL, OPT_TYPE},        \
        {"queue", required_argument, NULL, OPT_QUEUE},                                             \
        {"worker", required_argument, NULL, OPT_WORKER},                                           \
        {"tag", required_argument, NULL, OPT_TAG}, {"since", required_argument, NULL, OPT_SINCE},  \
        {"until", required_argument, NULL, OPT_UNTIL},                                             \
        {"from-seq", required_argument, NULL, OPT_FROM_SEQ},                                       \
    {                                                                                              \
        "until-seq", required_argument, NULL, OPT_UNTIL_SEQ                                        \
    }

/* The flags of every command of this file (each table names the ones it
 * takes), parsed by one option(). */
typedef struct {
    naq_query q;
    const char *tags[MAX_TAGS + 1];
    int ntags;
    naq_replay_opts ro; /* replay */
    const char *start;  /* replay: the flag that says where to start */
    int is_replay;      /* --since, --from-time and --from-seq exclude each other */
    int since_is_time;  /* events workers: --since is a time, not a filter */
    int64_t age_ms;     /* cleanup: --older-than; -1 = not given */
    naq_stats_opts so;  /* stats */
    int fold;           /* stats: fold the rollup tail first (not --no-fold) */
    int once;           /* rollup --once */
    double since;       /* workers --since */
} query_args;

static int parse_time_flag(const char *cmd, const char *flag, const char *text, double *out)
{
    if (naq_parse_time(text, naq__now(), out) != NAQ_OK)
        return naq_cli_usage_error(cmd, "%s: %s", flag, naq_last_error());
    return NAQ_EXIT_OK;
}

static int parse_seq(const char *cmd, const char *flag, const char *text, uint64_t *out)
{
    long long v = 0;
    if (!naq_cli_parse_int(cmd, flag, text, 1, INT64_MAX, &v))
        return NAQ_EXIT_USAGE;
    *out = (uint64_t)v;
    return NAQ_EXIT_OK;
}

/* Handles a filter flag: *handled is set when ch was one. */
static int filter_option(const char *cmd, query_args *a, int ch, const char *arg, int *handled)
{
    naq_event_type t;
    *handled = 1;
    switch (ch) {
    case OPT_JOB: a->q.filter.job_id = arg; return NAQ_EXIT_OK;
    case OPT_TYPE:
        if (naq_event_type_parse(arg, &t) != NAQ_OK)
            return naq_cli_usage_error(cmd, "%s", naq_last_error());
        a->q.filter.type = arg;
        return NAQ_EXIT_OK;
    case OPT_QUEUE: a->q.filter.queue = arg; return NAQ_EXIT_OK;
    case OPT_WORKER: a->q.filter.worker = arg; return NAQ_EXIT_OK;
    case OPT_TAG:
        if (a->ntags == MAX_TAGS)
            return naq_cli_usage_error(cmd, "at most %d --tag filters", MAX_TAGS);
        if (strchr(arg, '=') == NULL || arg[0] == '=')
            return naq_cli_usage_error(cmd, "--tag needs KEY=VALUE, got '%s'", arg);
        a->tags[a->ntags++] = arg;
        return NAQ_EXIT_OK;
    case OPT_SINCE: return parse_time_flag(cmd, "--since", arg, &a->q.since);
    case OPT_UNTIL: return parse_time_flag(cmd, "--until", arg, &a->q.until);
    case OPT_FROM_SEQ: return parse_seq(cmd, "--from-seq", arg, &a->q.from_seq);
    case OPT_UNTIL_SEQ: return parse_seq(cmd, "--until-seq", arg, &a->q.until_seq);
    default: *handled = 0; return NAQ_EXIT_OK;
    }
}

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    query_args *a = x->args;
    const char *cmd = x->cmd;
    int handled = 0, rc;
    const char *flag = ch == OPT_SINCE       ? "--since"
                       : ch == OPT_FROM_TIME ? "--from-time"
                       : ch == OPT_FROM_SEQ  ? "--from-seq"
                                             : NULL;
    if (a->is_replay && flag != NULL) {
        if (a->start != NULL)
            return naq_cli_usage_error(cmd,
                                       "%s and %s both say where to start; give one of --since, "
                                       "--from-time and --from-seq",
                                       a->start, flag);
        a->start = flag;
    }
    if (ch == OPT_SINCE && a->since_is_time)
        return parse_time_flag(cmd, "--since", arg, &a->since);
    rc = filter_option(cmd, a, ch, arg, &handled);
    if (handled)
        return rc;
    long long n = 0;
    switch (ch) {
    case OPT_OFFSET:
        if (!naq_cli_parse_int(cmd, "--offset", arg, 0, INT64_MAX, &n))
            return NAQ_EXIT_USAGE;
        a->q.offset = (size_t)n;
        return NAQ_EXIT_OK;
    case OPT_LIMIT: return naq_cli_parse_limit(cmd, arg, &a->q.limit);
    case OPT_OLDER_THAN:
        if (naq_parse_duration_ms(arg, &a->age_ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--older-than: %s", naq_last_error());
        return NAQ_EXIT_OK;
    case OPT_FROM_TIME: return parse_time_flag(cmd, "--from-time", arg, &a->q.since);
    case OPT_TIMING:
        if (strcmp(arg, "fast") == 0)
            a->ro.timing = NAQ_REPLAY_FAST;
        else if (strcmp(arg, "original") == 0)
            a->ro.timing = NAQ_REPLAY_ORIGINAL;
        else
            return naq_cli_usage_error(cmd, "--timing is fast or original, not '%s'", arg);
        return NAQ_EXIT_OK;
    case OPT_SPEED: {
        char *end = NULL;
        a->ro.speed = strtod(arg, &end);
        a->ro.timing = NAQ_REPLAY_ORIGINAL;
        if (end == arg || *end != '\0' || !(a->ro.speed > 0) || !isfinite(a->ro.speed))
            return naq_cli_usage_error(cmd, "--speed needs a number above 0, got '%s'", arg);
        return NAQ_EXIT_OK;
    }
    case OPT_MAX_GAP: {
        int64_t ms = 0;
        if (naq_parse_duration_ms(arg, &ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--max-gap: %s", naq_last_error());
        a->ro.max_gap_s = (double)ms / 1000.0;
        return NAQ_EXIT_OK;
    }
    case OPT_HOURS:
        if (!naq_cli_parse_int(cmd, "--hours", arg, 1, 8784, &n))
            return NAQ_EXIT_USAGE;
        a->so.hours = (int)n;
        return NAQ_EXIT_OK;
    case OPT_BY_QUEUE: a->so.by_queue = 1; return NAQ_EXIT_OK;
    case OPT_BY_WORKER: a->so.by_worker = 1; return NAQ_EXIT_OK;
    case OPT_NO_FOLD: a->fold = 0; return NAQ_EXIT_OK;
    case OPT_ONCE: a->once = 1; return NAQ_EXIT_OK;
    default: return NAQ_EXIT_OK;
    }
}

/* No operands; ids are checked before connecting, so a typo is a usage
 * error. */
static int check(naq_cli_ctx *x)
{
    const query_args *a = x->args;
    int rc = naq_cli_no_operands(x);
    if (rc == NAQ_EXIT_OK && naq_query_validate(&a->q) != NAQ_OK)
        rc = naq_cli_usage_error(x->cmd, "%s", naq_last_error());
    return rc;
}

static void query_args_init(query_args *a)
{
    memset(a, 0, sizeof *a);
    naq_query_init(&a->q);
    a->q.tags = a->tags;
    naq_replay_opts_init(&a->ro);
    naq_stats_opts_init(&a->so);
    a->age_ms = -1;
    a->fold = 1;
}

/* Runs c with every default. */
static int query_main(const naq_cli_command *c, int argc, char **argv)
{
    query_args a;
    query_args_init(&a);
    return naq_cli_main(c, &a, argc, argv);
}

/* ---- list ---- */

static const char list_usage[] =
    "usage: naq events list [FILTERS] [--offset N] [--limit N] [--format table|json|raw]\n"
    "\n"
    "Prints the stored events that match every filter, oldest first.\n"
    "\n" FILTER_USAGE "      --offset N        skip the first N matches\n"
    "      --limit N         at most N (default 1000; 0 = all)\n" NAQ_CLI_FORMAT_USAGE
    "  -h, --help            this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "A time range reads only that part of the stream; without a job or time\n"
    "range the whole stream is read (use 'naq events stats' for totals).\n"
    "\n"
    "examples:\n"
    "  naq events list --since 1h --type failed --queue emails\n"
    "  naq events list --tag team=billing --since 2026-01-31T00:00:00Z --format json\n"
    "\n"
    "exit codes: 0 ok, 1 failure, 2 bad usage\n";

static int run_list(naq_cli_ctx *x)
{
    const query_args *a = x->args;
    naq_event_list l = {0};
    int more = 0, rc = NAQ_EXIT_OK;
    naq_status s = naq_events_list(x->client, &a->q, &l, &more);
    if (s != NAQ_OK) {
        rc = naq_cli_fail(x->cmd, s);
    } else {
        naq_cli_printer p;
        naq_cli_printer_init(&p, x->format);
        if (naq_cli_print_events(&p, l.items, l.count) != 0)
            rc = NAQ_EXIT_FAILURE;
        if (more)
            fprintf(stderr,
                    "naq: more events match; see the next ones with --offset %zu, or give "
                    "--limit 0 for all\n",
                    a->q.offset + l.count);
    }
    naq_event_list_free(&l);
    return rc;
}

int naq_cmd_events_list(int argc, char **argv)
{
    static const struct option opts[] = {FILTER_OPTIONS,
                                         {"offset", required_argument, NULL, OPT_OFFSET},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        list_usage, NULL, NULL, opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_RAW, option, check, run_list};
    query_args a;
    query_args_init(&a);
    a.q.limit = DEFAULT_LIMIT;
    return naq_cli_main(&c, &a, argc, argv);
}

/* ---- count ---- */

static const char count_usage[] =
    "usage: naq events count [FILTERS] [--format table|json|raw]\n"
    "\n"
    "Prints how many stored events match every filter: always the number of\n"
    "events 'naq events list' with the same filters and --limit 0 prints.\n"
    "\n" FILTER_USAGE NAQ_CLI_FORMAT_USAGE "  -h, --help            this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "json prints {\"count\":N}. No filter costs one request, a job filter one\n"
    "request; other filters read the range like list does.\n"
    "\n"
    "example:\n"
    "  naq events count --since 10m --type failed\n"
    "\n"
    "exit codes: 0 ok, 1 failure, 2 bad usage\n";

static int run_count(naq_cli_ctx *x)
{
    const query_args *a = x->args;
    uint64_t n = 0;
    naq_status s = naq_events_count(x->client, &a->q, &n);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    if (x->format == NAQ_CLI_FORMAT_TABLE)
        printf("%llu\n", (unsigned long long)n);
    else
        printf("{\"count\":%llu}\n", (unsigned long long)n);
    return NAQ_EXIT_OK;
}

int naq_cmd_events_count(int argc, char **argv)
{
    static const struct option opts[] = {FILTER_OPTIONS, {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        count_usage, NULL,  NULL,     opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_RAW,
        option,      check, run_count};
    return query_main(&c, argc, argv);
}

/* ---- delete ---- */

static const char delete_usage[] =
    "usage: naq events delete JOB_ID [--format table|json|raw]\n"
    "\n"
    "Deletes every stored event of one job (its history) and nothing else.\n"
    "Stats already folded into the rollups keep counting them.\n"
    "\n" NAQ_CLI_FORMAT_USAGE "  -h, --help            this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "exit codes: 0 ok (also when the job had no events), 1 failure, 2 bad usage\n";

static int check_delete(naq_cli_ctx *x)
{
    int rc = naq_cli_operands(x, 1, "which job? give its id");
    if (rc == NAQ_EXIT_OK && naq_id_validate("job id", x->argv[0]) != NAQ_OK)
        rc = naq_cli_usage_error(x->cmd, "%s", naq_last_error());
    return rc;
}

static int run_delete(naq_cli_ctx *x)
{
    const char *job = x->argv[0];
    uint64_t n = 0;
    naq_status s = naq_job_events_delete(x->client, job, &n);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    if (x->format == NAQ_CLI_FORMAT_TABLE)
        printf("deleted %llu %s of job %s\n", (unsigned long long)n,
               naq_cli_plural(n, "event", "events"), job);
    else
        printf("{\"job_id\":\"%s\",\"deleted\":%llu}\n", job, (unsigned long long)n);
    return NAQ_EXIT_OK;
}

int naq_cmd_events_delete(int argc, char **argv)
{
    static const naq_cli_command c = {
        delete_usage, NULL,         NULL,      NULL, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_RAW,
        NULL,         check_delete, run_delete};
    return naq_cli_main(&c, NULL, argc, argv);
}

/* ---- cleanup ---- */

static const char cleanup_usage[] =
    "usage: naq events cleanup --older-than DURATION [--format table|json|raw]\n"
    "\n"
    "Deletes every event the server stored more than DURATION ago (30m, 12h,\n"
    "3d ...), oldest first. The stream also drops events past its max age on\n"
    "its own (NAQ_EVENT_MAX_AGE); this does it sooner. Rollups keep counting\n"
    "what they already folded; events not yet folded are lost to the stats.\n"
    "\n"
    "      --older-than D    the age (required)\n" NAQ_CLI_FORMAT_USAGE
    "  -h, --help            this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "example:\n"
    "  naq events cleanup --older-than 3d\n"
    "\n"
    "exit codes: 0 ok, 1 failure, 2 bad usage\n";

static int check_cleanup(naq_cli_ctx *x)
{
    const query_args *a = x->args;
    int rc = naq_cli_no_operands(x);
    if (rc == NAQ_EXIT_OK && a->age_ms < 0)
        rc = naq_cli_usage_error(x->cmd, "how old? give --older-than DURATION (e.g. 3d)");
    return rc;
}

static int run_cleanup(naq_cli_ctx *x)
{
    const query_args *a = x->args;
    uint64_t deleted = 0, first = 0;
    naq_status s = naq_events_cleanup(x->client, a->age_ms, &deleted, &first);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    if (x->format == NAQ_CLI_FORMAT_TABLE)
        printf("deleted %llu %s; the stream now starts at sequence %llu\n",
               (unsigned long long)deleted, naq_cli_plural(deleted, "event", "events"),
               (unsigned long long)first);
    else
        printf("{\"deleted\":%llu,\"first_seq\":%llu}\n", (unsigned long long)deleted,
               (unsigned long long)first);
    return NAQ_EXIT_OK;
}

int naq_cmd_events_cleanup(int argc, char **argv)
{
    static const struct option opts[] = {{"older-than", required_argument, NULL, OPT_OLDER_THAN},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        cleanup_usage, NULL,          NULL,       opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_RAW,
        option,        check_cleanup, run_cleanup};
    return query_main(&c, argc, argv);
}

/* ---- replay ---- */

static const char replay_usage[] =
    "usage: naq events replay [--since TIME | --from-time TIME | --from-seq N] [FILTERS]\n"
    "                         [--timing fast|original] [--speed X] [--max-gap D]\n"
    "                         [--limit N] [--format table|json|raw]\n"
    "\n"
    "Prints stored events again, oldest first, from a time or a stream sequence\n"
    "(default: the start of the stream) up to --until / --until-seq or the last\n"
    "event stored when the replay began. With --timing original each event\n"
    "waits the time that separated it from the previous one when recorded,\n"
    "divided by --speed. Ctrl-C stops.\n"
    "\n"
    "      --from-time TIME  same as --since (give one of --since, --from-time and\n"
    "                        --from-seq)\n" FILTER_USAGE
    "      --timing T        fast (default) or original\n"
    "      --speed X         original timing X times faster (implies original)\n"
    "      --max-gap D       never wait longer than D between two events (e.g. 5s)\n"
    "      --limit N         stop after N events (0 = no limit, the default)\n" NAQ_CLI_FORMAT_USAGE
    "  -h, --help            this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq events replay --since 1h --type failed\n"
    "  naq events replay --from-seq 1200 --speed 10 --format json | my-consumer\n"
    "\n"
    "exit codes: 0 done or stopped by Ctrl-C, 1 failure, 2 bad usage\n";

static int print_replayed(const naq_event *e, void *user)
{
    return naq_cli_print_event(user, e) != 0;
}

static int run_replay(naq_cli_ctx *x)
{
    query_args *a = x->args;
    naq_cli_stop_on_signals(NULL, 0);
    a->ro.query = a->q;
    a->ro.query.stop = (const volatile int *)&naq_cli_stop_requested;
    naq_cli_printer p;
    naq_cli_printer_init(&p, x->format);
    p.flush = a->ro.timing == NAQ_REPLAY_ORIGINAL;
    naq_status s = naq_events_replay(x->client, &a->ro, print_replayed, &p, NULL);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    return ferror(stdout) ? NAQ_EXIT_FAILURE : NAQ_EXIT_OK;
}

int naq_cmd_events_replay(int argc, char **argv)
{
    static const struct option opts[] = {FILTER_OPTIONS,
                                         {"from-time", required_argument, NULL, OPT_FROM_TIME},
                                         {"timing", required_argument, NULL, OPT_TIMING},
                                         {"speed", required_argument, NULL, OPT_SPEED},
                                         {"max-gap", required_argument, NULL, OPT_MAX_GAP},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        replay_usage, NULL,  NULL,      opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_RAW,
        option,       check, run_replay};
    query_args a;
    query_args_init(&a);
    a.is_replay = 1;
    return naq_cli_main(&c, &a, argc, argv);
}

/* ---- stats ---- */

static const char stats_usage[] =
    "usage: naq events stats [--hours H] [--by-queue] [--by-worker] [--no-fold]\n"
    "                        [--format table|json]\n"
    "\n"
    "Figures over the current hour and the H-1 before it (default 24), read from\n"
    "the hourly rollups (never a scan of the stream): events per type, success\n"
    "rate, throughput, run durations (avg/p50/p95/p99, within 2%), the most\n"
    "frequent error types. First it folds the events stored but not yet in the\n"
    "rollups (when no 'naq scheduler' or 'naq events rollup' keeps them up to\n"
    "date), so the figures count every event stored when it started; that is\n"
    "exactly-once and safe next to running maintainers. Progress goes to stderr\n"
    "when it takes more than a second.\n"
    "\n"
    "      --hours H         1 to 8784 (default 24)\n"
    "      --by-queue        the same figures per queue\n"
    "      --by-worker       counts, success rate and throughput per worker\n"
    "      --no-fold         answer from the rollups as they are (instant; says\n"
    "                        how many events they are behind)\n"
    "      --format F        table (default) or json (one object)\n"
    "  -h, --help            this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "success rate = completed / (completed + failed - retry_scheduled): the share\n"
    "of jobs that ended well among those that ended (a failure followed by a\n"
    "retry has not ended). throughput = completed per second of the time the\n"
    "window covers: from its earliest event (or its start) to now.\n"
    "docs/queries.md has the exact definitions.\n"
    "\n"
    "exit codes: 0 ok, 1 failure, 2 bad usage\n";

static void fmt_ms(double v, char *buf, size_t cap)
{
    if (v < 0)
        snprintf(buf, cap, "-");
    else if (v < 10)
        snprintf(buf, cap, "%.2f", v);
    else
        snprintf(buf, cap, "%.0f", v);
}

static void fmt_rate(double r, char *buf, size_t cap)
{
    if (r < 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.1f%%", r * 100.0);
}

static const char *top_error(const naq_stats_group *g)
{
    return g->nerrors > 0 ? g->errors[0].name : "-";
}

static void group_row(const void *item, void *user, const char **cells,
                      char (*buf)[NAQ_CLI_CELL_MAX])
{
    const naq_stats_group *g = item;
    (void)user;
    snprintf(buf[1], 24, "%llu", (unsigned long long)g->events);
    snprintf(buf[2], 24, "%llu", (unsigned long long)g->counts[NAQ_EVENT_COMPLETED]);
    snprintf(buf[3], 24, "%llu", (unsigned long long)g->counts[NAQ_EVENT_FAILED]);
    fmt_rate(g->success_rate, buf[4], 16);
    snprintf(buf[5], 24, "%.1f", g->throughput_per_min);
    fmt_ms(g->duration_avg, buf[6], 16); /* columns 6.. only with durations */
    fmt_ms(g->p50, buf[7], 16);
    fmt_ms(g->p95, buf[8], 16);
    fmt_ms(g->p99, buf[9], 16);
    cells[0] = g->name;
    for (int k = 1; k < 10; k++)
        cells[k] = buf[k];
    cells[10] = top_error(g);
}

static const char *const queue_headers[] = {"QUEUE",   "EVENTS",  "COMPLETED", "FAILED",
                                            "SUCCESS", "PER_MIN", "AVG_MS",    "P50_MS",
                                            "P95_MS",  "P99_MS",  "TOP_ERROR"};
static const char *const worker_headers[] = {"WORKER", "EVENTS",  "COMPLETED",
                                             "FAILED", "SUCCESS", "PER_MIN"};
/* Per queue with durations; per worker without (a worker's runs are its
 * queues'). */
static const naq_cli_listing queue_groups = {11,        queue_headers, " rrrrrrrrr",
                                             group_row, NULL,          NULL};
static const naq_cli_listing worker_groups = {6, worker_headers, " rrrrr", group_row, NULL, NULL};

static void print_groups(const naq_cli_listing *l, const naq_stats_group *v, size_t n)
{
    printf("\n");
    if (n == 0)
        printf("%s: none in the window\n", l->headers[0]);
    else
        naq_cli_list_print(l, NAQ_CLI_FORMAT_TABLE, NULL, v, n, sizeof *v);
}

/* A name and its count: event types and error types of the total. */
typedef struct {
    const char *name;
    unsigned long long count;
} name_count;

static void count_row(const void *item, void *user, const char **cells,
                      char (*buf)[NAQ_CLI_CELL_MAX])
{
    const name_count *c = item;
    (void)user;
    snprintf(buf[1], 24, "%llu", c->count);
    cells[0] = c->name;
    cells[1] = buf[1];
}

static const char *const type_count_headers[] = {"TYPE", "COUNT"};
static const char *const error_count_headers[] = {"ERROR_TYPE", "COUNT"};
static const naq_cli_listing type_counts = {2, type_count_headers, " r", count_row, NULL, NULL};
static const naq_cli_listing error_counts = {2, error_count_headers, " r", count_row, NULL, NULL};

static void print_counts(const naq_stats_group *t)
{
    naq_cli_list p;
    printf("\n");
    naq_cli_list_begin(&p, &type_counts, NAQ_CLI_FORMAT_TABLE, NULL);
    p.show_empty = 1; /* the header alone says there were none */
    for (int i = 0; i < NAQ_EVENT_TYPE_COUNT; i++) {
        name_count c = {naq_event_type_name((naq_event_type)i), t->counts[i]};
        if (c.count > 0)
            naq_cli_list_add(&p, &c);
    }
    naq_cli_list_end(&p);
    if (t->nerrors == 0)
        return;
    printf("\n");
    naq_cli_list_begin(&p, &error_counts, NAQ_CLI_FORMAT_TABLE, NULL);
    for (size_t i = 0; i < t->nerrors; i++) {
        name_count c = {t->errors[i].name, (unsigned long long)t->errors[i].count};
        naq_cli_list_add(&p, &c);
    }
    naq_cli_list_end(&p);
}

static void print_stats_table(const naq_stats *st, int by_queue, int by_worker)
{
    char from[40], to[40];
    naq_cli_format_time(st->window_start, from, sizeof from);
    naq_cli_format_time(st->window_end, to, sizeof to);
    const naq_stats_group *t = &st->total;
    if (st->covered_start > st->window_start) {
        char since[40];
        naq_cli_format_time(st->covered_start, since, sizeof since);
        printf("window: %s .. %s (%d h; events since %s, %.0f s)\n", from, to, st->hours, since,
               st->window_s);
    } else {
        printf("window: %s .. %s (%d h, %.0f s)\n", from, to, st->hours, st->window_s);
    }
    char rate[16], avg[16], p50[16], p95[16], p99[16];
    fmt_rate(t->success_rate, rate, sizeof rate);
    fmt_ms(t->duration_avg, avg, sizeof avg);
    fmt_ms(t->p50, p50, sizeof p50);
    fmt_ms(t->p95, p95, sizeof p95);
    fmt_ms(t->p99, p99, sizeof p99);
    printf("events: %llu   jobs ended: %llu completed, %llu failed (%llu final)\n",
           (unsigned long long)t->events, (unsigned long long)t->counts[NAQ_EVENT_COMPLETED],
           (unsigned long long)t->counts[NAQ_EVENT_FAILED], (unsigned long long)t->final_failed);
    printf("success rate: %s   throughput: %.3f jobs/s (%.1f/min)\n", rate, t->throughput_per_s,
           t->throughput_per_min);
    printf("duration (%llu %s): avg %s ms  p50 %s ms  p95 %s ms  p99 %s ms\n",
           (unsigned long long)t->duration_n, naq_cli_plural(t->duration_n, "run", "runs"), avg,
           p50, p95, p99);
    print_counts(t);
    if (by_queue)
        print_groups(&queue_groups, st->queues, st->nqueues);
    if (by_worker)
        print_groups(&worker_groups, st->workers, st->nworkers);
}

static json_t *group_to_json(const naq_stats_group *g, int durations)
{
    json_t *o = json_object(), *counts = json_object(), *errors = json_array();
    if (g->name[0] != '\0')
        json_object_set_new(o, "name", json_string(g->name));
    for (int i = 0; i < NAQ_EVENT_TYPE_COUNT; i++)
        if (g->counts[i] > 0)
            json_object_set_new(counts, naq_event_type_name((naq_event_type)i),
                                json_integer((json_int_t)g->counts[i]));
    json_object_set_new(o, "events", json_integer((json_int_t)g->events));
    json_object_set_new(o, "counts", counts);
    json_object_set_new(o, "runs", json_integer((json_int_t)g->runs));
    json_object_set_new(o, "final_failed", json_integer((json_int_t)g->final_failed));
    json_object_set_new(o, "success_rate",
                        g->success_rate < 0 ? json_null() : json_real(g->success_rate));
    json_object_set_new(o, "throughput_per_s", json_real(g->throughput_per_s));
    json_object_set_new(o, "throughput_per_min", json_real(g->throughput_per_min));
    if (durations) {
        json_t *d = json_object();
        json_object_set_new(d, "n", json_integer((json_int_t)g->duration_n));
        const char *names[] = {"avg_ms", "p50_ms", "p95_ms", "p99_ms"};
        double vals[] = {g->duration_avg, g->p50, g->p95, g->p99};
        for (int i = 0; i < 4; i++)
            json_object_set_new(d, names[i], vals[i] < 0 ? json_null() : json_real(vals[i]));
        json_object_set_new(o, "duration", d);
    }
    for (size_t i = 0; i < g->nerrors; i++)
        json_array_append_new(errors, json_pack("{sssI}", "error_type", g->errors[i].name, "count",
                                                (json_int_t)g->errors[i].count));
    json_object_set_new(o, "errors", errors);
    return o;
}

static int print_stats_json(const naq_stats *st, int by_queue, int by_worker)
{
    json_t *o = json_object();
    json_object_set_new(o, "hours", json_integer(st->hours));
    json_object_set_new(o, "window_start", json_real(st->window_start));
    json_object_set_new(o, "window_end", json_real(st->window_end));
    json_object_set_new(o, "covered_start", json_real(st->covered_start));
    json_object_set_new(o, "window_s", json_real(st->window_s));
    json_object_set_new(o, "total", group_to_json(&st->total, 1));
    if (by_queue) {
        json_t *q = json_array();
        for (size_t i = 0; i < st->nqueues; i++)
            json_array_append_new(q, group_to_json(&st->queues[i], 1));
        json_object_set_new(o, "queues", q);
    }
    if (by_worker) {
        json_t *w = json_array();
        for (size_t i = 0; i < st->nworkers; i++)
            json_array_append_new(w, group_to_json(&st->workers[i], 0));
        json_object_set_new(o, "workers", w);
    }
    json_object_set_new(o, "rollup_cursor", json_integer((json_int_t)st->rollup_cursor));
    json_object_set_new(o, "rollup_lag", json_integer((json_int_t)st->rollup_lag));
    char *line = naq__json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (line == NULL)
        return NAQ_EXIT_FAILURE;
    puts(line);
    free(line);
    return NAQ_EXIT_OK;
}

/* Progress of the fold before stats: silent for the first second, then a
 * line a second on stderr (rewritten in place on a terminal). */
typedef struct {
    int64_t started_ms, shown_ms;
    int shown;
} fold_progress;

static void show_fold_progress(uint64_t done, uint64_t total, void *ud)
{
    fold_progress *p = ud;
    int64_t now = naq__mono_ms();
    if (now - p->started_ms < 1000 || now - p->shown_ms < 1000)
        return;
    int tty = isatty(STDERR_FILENO);
    fprintf(stderr, "%snaq: folding events into the stats rollups: %llu of %llu (%.0f%%)%s",
            tty ? "\r" : "", (unsigned long long)done, (unsigned long long)total,
            total ? 100.0 * (double)done / (double)total : 100.0, tty ? "" : "\n");
    fflush(stderr);
    p->shown_ms = now;
    p->shown = 1;
}

/* Folds the rollup tail before a stats query (bounded, exactly-once). */
static naq_status fold_before_stats(naq_client *c)
{
    fold_progress p = {naq__mono_ms(), 0, 0};
    naq_cli_stop_on_signals(NULL, 0);
    naq_status s = naq_rollup_catch_up(c, show_fold_progress, &p,
                                       (const volatile int *)&naq_cli_stop_requested, NULL);
    if (p.shown)
        fprintf(stderr, "%snaq: folded in %.1f s\n", isatty(STDERR_FILENO) ? "\n" : "",
                (double)(naq__mono_ms() - p.started_ms) / 1000.0);
    return s;
}

static int run_stats(naq_cli_ctx *x)
{
    const query_args *a = x->args;
    naq_stats st;
    memset(&st, 0, sizeof st);
    naq_status s = a->fold ? fold_before_stats(x->client) : NAQ_OK;
    if (s != NAQ_OK) {
        /* A reader may not write the rollups: answer from them as they
         * are, which says how far behind they are. */
        fprintf(stderr,
                "naq: cannot fold the newest events first (%s); showing the rollups as "
                "they are\n",
                naq_last_error());
        s = NAQ_OK;
    }
    if (s == NAQ_OK)
        s = naq_stats_query(x->client, &a->so, &st);
    int rc = NAQ_EXIT_OK, table = x->format == NAQ_CLI_FORMAT_TABLE;
    if (s != NAQ_OK) {
        rc = naq_cli_fail(x->cmd, s);
    } else {
        if (table)
            print_stats_table(&st, a->so.by_queue, a->so.by_worker);
        else
            rc = print_stats_json(&st, a->so.by_queue, a->so.by_worker);
        if (st.rollup_lag > 0)
            fprintf(table ? stdout : stderr,
                    "%srollups are %llu %s behind (stored since the fold or with --no-fold); run "
                    "`naq events rollup` or `naq scheduler` (which keeps them up to date unless "
                    "--no-rollup)\n",
                    table ? "\n" : "naq: ", (unsigned long long)st.rollup_lag,
                    naq_cli_plural(st.rollup_lag, "event", "events"));
    }
    naq_stats_free(&st);
    return rc;
}

int naq_cmd_events_stats(int argc, char **argv)
{
    static const struct option opts[] = {{"hours", required_argument, NULL, OPT_HOURS},
                                         {"by-queue", no_argument, NULL, OPT_BY_QUEUE},
                                         {"by-worker", no_argument, NULL, OPT_BY_WORKER},
                                         {"no-fold", no_argument, NULL, OPT_NO_FOLD},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        stats_usage, NULL, NULL,     opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_FORMAT,
        option,      NULL, run_stats};
    return query_main(&c, argc, argv);
}

/* ---- workers ---- */

static const char workers_usage[] =
    "usage: naq events workers [--since TIME] [--format table|json|raw]\n"
    "\n"
    "Workers that wrote events since TIME (default 10m): their status from those\n"
    "events, as 'naq workers' shows it (idle, busy, stopping, stopped, or lost:\n"
    "it did not stop and wrote nothing for 3 heartbeat intervals), the job in\n"
    "progress, jobs processed and failed in the window, and when it was last\n"
    "seen. A worker that wrote nothing in the window is not listed.\n"
    "\n"
    "      --since TIME      a duration before now or a time (see 'naq events list')\n"
    "      --format F        table (default), json or raw (one object per line)\n"
    "  -h, --help            this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "exit codes: 0 ok (also when no worker wrote events), 1 failure, 2 bad usage\n";

static const char *const activity_headers[] = {"WORKER",  "STATUS",    "QUEUE",  "CURRENT_JOB",
                                               "RUNNING", "PROCESSED", "FAILED", "LAST_SEEN"};

static void activity_row(const void *item, void *user, const char **cells,
                         char (*buf)[NAQ_CLI_CELL_MAX])
{
    const naq_worker_activity *w = item;
    (void)user;
    snprintf(buf[4], 16, "%d", w->running);
    snprintf(buf[5], 24, "%llu", (unsigned long long)w->processed);
    snprintf(buf[6], 24, "%llu", (unsigned long long)w->failed);
    naq_cli_format_time(w->last_seen, buf[7], 40);
    cells[0] = w->worker_id;
    cells[1] = naq_worker_status_name(w->status);
    cells[2] = w->queue;
    cells[3] = w->current_job;
    for (int k = 4; k < 8; k++)
        cells[k] = buf[k];
}

static char *activity_json(const void *item, void *user)
{
    const naq_worker_activity *w = item;
    (void)user;
    return naq_cli_json_line(
        json_pack("{ss ss ss ss si sI sI sf sf ss}", "worker_id", w->worker_id, "status",
                  naq_worker_status_name(w->status), "queue", w->queue, "current_job",
                  w->current_job, "running", w->running, "processed", (json_int_t)w->processed,
                  "failed", (json_int_t)w->failed, "first_seen", w->first_seen, "last_seen",
                  w->last_seen, "last_event", naq_event_type_name(w->last_type)));
}

static const naq_cli_listing activity = {
    8, activity_headers, "    rrr", activity_row, activity_json, NULL};

static int run_workers(naq_cli_ctx *x)
{
    const query_args *a = x->args;
    naq_worker_activity *w = NULL;
    size_t n = 0;
    naq_status s = naq_events_workers(x->client, a->since, &w, &n);
    int rc = s == NAQ_OK ? naq_cli_list_print(&activity, x->format, NULL, w, n, sizeof *w)
                         : naq_cli_fail(x->cmd, s);
    free(w);
    return rc;
}

int naq_cmd_events_workers(int argc, char **argv)
{
    static const struct option opts[] = {{"since", required_argument, NULL, OPT_SINCE},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        workers_usage, NULL, NULL,       opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_RAW,
        option,        NULL, run_workers};
    query_args a;
    query_args_init(&a);
    a.since_is_time = 1;
    if (parse_time_flag(argv[0], "--since", "10m", &a.since) != NAQ_EXIT_OK)
        return NAQ_EXIT_FAILURE;
    return naq_cli_main(&c, &a, argc, argv);
}

/* ---- rollup ---- */

static const char rollup_usage[] =
    "usage: naq events rollup [--once]\n"
    "\n"
    "Runs the stats rollup maintainer until Ctrl-C (or SIGTERM): it folds every\n"
    "new event into the hourly rollups that 'naq events stats' reads. Run one or\n"
    "more anywhere (they never count an event twice); when none runs, stats\n"
    "fall behind and catch up when one starts again, nothing is lost while the\n"
    "events are still in the stream.\n"
    "\n"
    "      --once            fold what is stored now, print how many, and exit\n"
    "  -h, --help            this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "exit codes: 0 stopped (or done with --once), 1 failure, 2 bad usage\n";

static int run_rollup(naq_cli_ctx *x)
{
    const query_args *a = x->args;
    naq_client *c = x->client;
    naq_cli_stop_on_signals(NULL, 0);
    naq_status s = NAQ_OK;
    if (a->once) {
        /* Until the cursor stops moving: a step that only skipped events
         * another maintainer had folded still moves it. */
        size_t total = 0, folded = 0;
        uint64_t cursor = 0, before = 0, lag = 0;
        do {
            before = cursor;
            s = naq_rollup_step(c, 0, &folded);
            total += folded;
            if (s == NAQ_OK)
                s = naq_rollup_lag(c, &cursor, &lag);
        } while (s == NAQ_OK && cursor > before && !naq_cli_stop_requested);
        if (s == NAQ_OK)
            printf("folded %zu %s\n", total, naq_cli_plural(total, "event", "events"));
    } else {
        fprintf(stderr, "naq rollup: folding events into the stats rollups; Ctrl-C stops\n");
        s = naq_rollup_run(c, (const volatile int *)&naq_cli_stop_requested);
    }
    return s == NAQ_OK ? NAQ_EXIT_OK : naq_cli_fail(x->cmd, s);
}

int naq_cmd_events_rollup(int argc, char **argv)
{
    static const struct option opts[] = {{"once", no_argument, NULL, OPT_ONCE}, {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {rollup_usage,    NULL,   NULL, opts,
                                      NAQ_CLI_CONNECT, option, NULL, run_rollup};
    return query_main(&c, argc, argv);
}
