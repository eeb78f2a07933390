/*
 * cmd_schedule.c - `naq schedule add|list|show|pause|resume|modify|rm` and
 * `naq scheduler`.
 *
 * The schedule commands parse flags into a "change" and hand it to the
 * library: `add` applies it to a fresh schedule, `modify` applies it inside
 * naq_schedule_modify's compare-and-set loop, so a modify that races with
 * a trigger re-applies just the flags the user gave. `naq scheduler` runs
 * one candidate until SIGINT / SIGTERM, then hands the lease over.
 */
#include "cli.h"
#include "core/jsonw.h"
#include "cmd_schedule.h"

#include "naq/schedule.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_schedule[] =
    "usage: naq schedule add NAME (--cron EXPR | --every DURATION | --at TIME) [OPTIONS]\n"
    "                        (-f FUNCTION [--args JSON] | -- COMMAND [ARG...])\n"
    "       naq schedule list [--format table|json]\n"
    "       naq schedule show NAME [--format table|json]\n"
    "       naq schedule pause NAME | resume NAME | rm NAME\n"
    "       naq schedule modify NAME [OPTIONS] [-- COMMAND [ARG...]]\n"
    "\n"
    "Schedules enqueue a new job at each due time; a running `naq scheduler`\n"
    "triggers them (docs/scheduler.md). Each job's id is NAME-<due time in ms>.\n"
    "\n"
    "when (add: exactly one; modify: at most one):\n"
    "      --cron EXPR        5 fields (or 6 with seconds first), e.g. '0 3 * * MON-FRI'\n"
    "      --tz ZONE          time zone of the cron expression, e.g. Europe/Paris (default UTC)\n"
    "      --every DURATION   500ms, 30s, 5m, 2h, 1d (at least 100ms)\n"
    "      --at TIME          once: 2026-11-23T15:00:00Z, +30s or 'in 5m'\n"
    "options:\n"
    "      --repeat N         stop after N triggers (-1: no limit, the default)\n"
    "      --misfire POLICY   after all schedulers were down: run_once (default),\n"
    "                         run_all or skip\n"
    "  -q, --queue QUEUE      queue of the jobs (default \"default\")\n"
    "  -f, --function NAME    handler that runs the jobs\n"
    "      --args JSON        arguments of the jobs (default [])\n"
    "      --retries N        further attempts after a failure (default 0)\n"
    "      --timeout DURATION stop a job after this long\n"
    "      --priority P       lowest, low, normal (default), high, critical or 0-4\n"
    "      --format FORMAT    list and show: table (default) or json (one object per line)\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq schedule add nightly --cron '0 3 * * *' --tz Europe/Paris -- ./backup.sh\n"
    "  naq schedule add ping --every 30s -q health -f ping --repeat 10\n"
    "  naq schedule add once --at 'in 5m' -- echo hello\n"
    "  naq schedule modify ping --every 1m\n"
    "\n"
    "exit codes: 0 ok, 1 failure, 2 bad usage\n";

static const char usage_scheduler[] =
    "usage: naq scheduler [--lease DURATION] [--id ID] [--misfire-grace DURATION] [--no-rollup]\n"
    "                     [--metrics ADDR] [--metrics-interval D]\n"
    "\n"
    "Runs a scheduler candidate until Ctrl-C or SIGTERM. Run as many as you\n"
    "like, on any machines: exactly one is leader at a time (a lease in the KV\n"
    "bucket naq_scheduler_lock); it triggers schedules and releases delayed\n"
    "jobs. When the leader stops, it hands the lease over at once; when it\n"
    "dies, another takes over within the lease plus a second.\n"
    "\n"
    "      --lease DURATION   lease, used when the lock bucket is created (default 6s);\n"
    "                         an existing bucket's TTL wins\n"
    "      --id ID            this candidate's id (default HOST-PID-RANDOM)\n"
    "      --misfire-grace D  due times older than this are misfires (default 30s)\n"
    "      --no-rollup        do not also keep the statistics rollups up to date\n"
    "                         (by default every scheduler folds new events into the\n"
    "                         rollups behind 'naq events stats'; several may, safely)\n"
    "      --metrics ADDR     serve this scheduler's Prometheus metrics on ADDR\n"
    "                         (HOST:PORT or :PORT, GET /metrics)\n"
    "      --metrics-interval D  log a system_metrics event every D (default\n"
    "                         NAQ_METRICS_INTERVAL or 60s; 0 = off)\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "exit codes: 0 stopped by a signal, 1 failure, 2 bad usage\n";

enum {
    OPT_CRON = NAQ_CLI_OPT_FIRST_FREE,
    OPT_TZ,
    OPT_EVERY,
    OPT_AT,
    OPT_REPEAT,
    OPT_MISFIRE,
    OPT_ARGS,
    OPT_RETRIES,
    OPT_TIMEOUT,
    OPT_PRIORITY,
    OPT_FORMAT,
    OPT_LEASE,
    OPT_ID,
    OPT_GRACE,
    OPT_NO_ROLLUP,
    OPT_METRICS,
    OPT_INTERVAL,
};

/* The flags of add / modify; NULL or has_* = 0 when not given. */
typedef struct {
    const char *cron, *tz, *queue, *function, *args;
    int has_every, has_at, has_repeat, has_retries, has_timeout, has_priority, has_misfire;
    int64_t every_ms, at_ms, repeat, timeout_ms;
    int retries, priority;
    naq_misfire_policy misfire;
    char *exec_args; /* heap: {"argv": [...]} from '-- COMMAND' */
    const char *format;
} change;

/* ---------------------------------------------------------------- parsing */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Usage error unless text fits a field of cap bytes. */
static int fits(const char *cmd, const char *flag, const char *text, size_t cap)
{
    if (text == NULL || strlen(text) < cap)
        return NAQ_EXIT_OK;
    return naq_cli_usage_error(cmd, "%s is too long (at most %zu characters)", flag, cap - 1);
}

static int parse_priority(const char *cmd, const char *text, int *out)
{
    if (naq_priority_parse(text, out) != NAQ_OK)
        return naq_cli_usage_error(cmd, "%s", naq_last_error());
    return NAQ_EXIT_OK;
}

/* {"argv": [...]} as compact JSON (heap); NULL when not valid UTF-8. */
static char *exec_args(int argc, char **argv)
{
    json_t *list = json_array();
    for (int i = 0; list != NULL && i < argc; i++) {
        json_t *s = json_string(argv[i]);
        if (s == NULL) {
            json_decref(list);
            return NULL;
        }
        json_array_append_new(list, s);
    }
    json_t *o = list ? json_pack("{s:o}", "argv", list) : NULL;
    char *text = o ? naq__json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* Parses the flags of add / modify / list / show (argv[0] = cmd). */
static int parse_change(const char *cmd, int argc, char **argv, change *ch, naq_cli_common *common)
{
    static const struct option opts[] = {{"cron", required_argument, NULL, OPT_CRON},
                                         {"tz", required_argument, NULL, OPT_TZ},
                                         {"every", required_argument, NULL, OPT_EVERY},
                                         {"at", required_argument, NULL, OPT_AT},
                                         {"repeat", required_argument, NULL, OPT_REPEAT},
                                         {"misfire", required_argument, NULL, OPT_MISFIRE},
                                         {"queue", required_argument, NULL, 'q'},
                                         {"function", required_argument, NULL, 'f'},
                                         {"args", required_argument, NULL, OPT_ARGS},
                                         {"retries", required_argument, NULL, OPT_RETRIES},
                                         {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                         {"priority", required_argument, NULL, OPT_PRIORITY},
                                         {"format", required_argument, NULL, OPT_FORMAT},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    int c;
    long long n = 0;
    optind = 0; /* GNU getopt: start afresh (a command may parse twice in one process) */
    while ((c = getopt_long(argc, argv, "+q:f:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CRON: ch->cron = optarg; break;
        case OPT_TZ: ch->tz = optarg; break;
        case OPT_EVERY:
            if (naq_parse_duration_ms(optarg, &ch->every_ms) != NAQ_OK)
                return naq_cli_usage_error(cmd, "--every: %s", naq_last_error());
            ch->has_every = 1;
            break;
        case OPT_AT:
            if (naq_parse_time_ms(optarg, now_ms(), &ch->at_ms) != NAQ_OK)
                return naq_cli_usage_error(cmd, "--at: %s", naq_last_error());
            ch->has_at = 1;
            break;
        case OPT_REPEAT:
            if (strcmp(optarg, "forever") == 0)
                n = -1;
            else if (!naq_cli_parse_int(cmd, "--repeat", optarg, -1, INT64_MAX, &n))
                return NAQ_EXIT_USAGE;
            if (n == 0)
                return naq_cli_usage_error(cmd, "--repeat 0 would never fire; give N >= 1 or -1");
            ch->repeat = n;
            ch->has_repeat = 1;
            break;
        case OPT_MISFIRE:
            if (naq_misfire_policy_parse(optarg, &ch->misfire) != NAQ_OK)
                return naq_cli_usage_error(cmd, "--misfire: %s", naq_last_error());
            ch->has_misfire = 1;
            break;
        case 'q': ch->queue = optarg; break;
        case 'f': ch->function = optarg; break;
        case OPT_ARGS: ch->args = optarg; break;
        case OPT_RETRIES:
            if (!naq_cli_parse_int(cmd, "--retries", optarg, 0, 1000000, &n))
                return NAQ_EXIT_USAGE;
            ch->retries = (int)n;
            ch->has_retries = 1;
            break;
        case OPT_TIMEOUT:
            if (naq_parse_duration_ms(optarg, &ch->timeout_ms) != NAQ_OK)
                return naq_cli_usage_error(cmd, "--timeout: %s", naq_last_error());
            ch->has_timeout = 1;
            break;
        case OPT_PRIORITY:
            if (parse_priority(cmd, optarg, &ch->priority) != NAQ_EXIT_OK)
                return NAQ_EXIT_USAGE;
            ch->has_priority = 1;
            break;
        case OPT_FORMAT: ch->format = optarg; break;
        case 'h': fputs(usage_schedule, stdout); return -1;
        default:
            if (!naq_cli_common_option(common, c, optarg))
                return naq_cli_try_help(cmd);
            break;
        }
    }
    int dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
    if (optind < argc && !dashdash)
        return naq_cli_usage_error(cmd,
                                   "unexpected argument '%s'; to run a command, put it after "
                                   "'--'",
                                   argv[optind]);
    if (dashdash) {
        if (optind == argc)
            return naq_cli_usage_error(cmd, "nothing after '--': give the command to run");
        if (ch->function != NULL && strcmp(ch->function, NAQ_EXEC_FUNCTION) != 0)
            return naq_cli_usage_error(cmd, "give either -f FUNCTION or '-- COMMAND', not both");
        if (ch->args != NULL)
            return naq_cli_usage_error(cmd, "--args cannot be combined with '-- COMMAND'");
        if ((ch->exec_args = exec_args(argc - optind, argv + optind)) == NULL)
            return naq_cli_usage_error(cmd, "the command line is not valid UTF-8");
        ch->function = NAQ_EXEC_FUNCTION;
        ch->args = ch->exec_args;
    }
    naq_schedule *probe = NULL; /* only for the field sizes */
    int rc;
    if ((rc = fits(cmd, "--cron", ch->cron, sizeof probe->cron)) != NAQ_EXIT_OK ||
        (rc = fits(cmd, "--tz", ch->tz, sizeof probe->tz)) != NAQ_EXIT_OK ||
        (rc = fits(cmd, "--queue", ch->queue, sizeof probe->queue)) != NAQ_EXIT_OK ||
        (rc = fits(cmd, "--function", ch->function, sizeof probe->function)) != NAQ_EXIT_OK)
        return rc;
    if (!!ch->cron + ch->has_every + ch->has_at > 1)
        return naq_cli_usage_error(cmd, "give only one of --cron, --every and --at");
    if (ch->tz != NULL && ch->cron == NULL && (ch->has_every || ch->has_at))
        return naq_cli_usage_error(cmd, "--tz only applies to --cron");
    return NAQ_EXIT_OK;
}

/* Applies the change to s. Used by add and inside modify's retry loop. */
static naq_status apply(naq_schedule *s, void *user)
{
    const change *ch = user;
    /* Lengths were checked when the flags were parsed. */
    if (ch->cron != NULL) {
        s->kind = NAQ_SCHEDULE_CRON;
        snprintf(s->cron, sizeof s->cron, "%s", ch->cron);
    }
    if (ch->has_every) {
        s->kind = NAQ_SCHEDULE_EVERY;
        s->every_ms = ch->every_ms;
    }
    if (ch->has_at) {
        s->kind = NAQ_SCHEDULE_AT;
        s->at_ms = ch->at_ms;
    }
    if (s->kind != NAQ_SCHEDULE_CRON) {
        s->cron[0] = '\0';
        s->tz[0] = '\0';
    }
    if (ch->tz != NULL) {
        snprintf(s->tz, sizeof s->tz, "%s", ch->tz);
    }
    if (ch->queue != NULL) {
        snprintf(s->queue, sizeof s->queue, "%s", ch->queue);
    }
    if (ch->function != NULL) {
        snprintf(s->function, sizeof s->function, "%s", ch->function);
    }
    if (ch->args != NULL) {
        char *args = strdup(ch->args);
        if (args == NULL)
            return NAQ_ERR_NO_MEMORY;
        free(s->args_json);
        s->args_json = args;
    }
    if (ch->has_repeat)
        s->repeat = ch->repeat;
    if (ch->has_retries)
        s->max_retries = ch->retries;
    if (ch->has_timeout)
        s->timeout_ms = ch->timeout_ms;
    if (ch->has_priority)
        s->priority = ch->priority;
    if (ch->has_misfire)
        s->misfire = ch->misfire;
    return naq_schedule_validate(s);
}

/* Splits "NAME OPTIONS..." off argv (argv[0] = the subcommand as typed):
 * *name is argv[1]; argv is shifted so getopt sees argv[0] then OPTIONS. */
static int take_name(const char *cmd, int *argc, char ***argv, const char **name)
{
    if (*argc < 2 || (*argv)[1][0] == '-') {
        if (*argc >= 2 && (!strcmp((*argv)[1], "--help") || !strcmp((*argv)[1], "-h"))) {
            fputs(usage_schedule, stdout);
            return -1;
        }
        return naq_cli_usage_error(cmd, "give the schedule name first: %s NAME ...", cmd);
    }
    *name = (*argv)[1];
    (*argv)[1] = (*argv)[0];
    (*argc)--;
    (*argv)++;
    return NAQ_EXIT_OK;
}

/* ---------------------------------------------------------------- output */

static void format_ms(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, cap, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(buf, cap, "%lldms", (long long)ms);
}

static void format_when(const naq_schedule *s, char *buf, size_t cap)
{
    char t[48];
    switch (s->kind) {
    case NAQ_SCHEDULE_CRON:
        snprintf(buf, cap, "cron '%s'%s%s", s->cron, s->tz[0] ? " " : "", s->tz);
        break;
    case NAQ_SCHEDULE_EVERY:
        format_ms(s->every_ms, t, sizeof t);
        snprintf(buf, cap, "every %s", t);
        break;
    case NAQ_SCHEDULE_AT:
        naq_cli_format_time_ms(s->at_ms, t, sizeof t);
        snprintf(buf, cap, "at %s", t);
        break;
    }
}

static const char *state_of(const naq_schedule *s)
{
    return s->paused ? "paused" : s->next_run_ms == 0 ? "finished" : "active";
}

static const char *const list_headers[] = {"NAME",  "WHEN",  "NEXT RUN", "LAST RUN",
                                           "QUEUE", "STATE", "LEFT"};

static int add_row(naq_cli_table *t, const naq_schedule *s)
{
    char when[200], next[48], last[48], left[24];
    format_when(s, when, sizeof when);
    naq_cli_format_time_ms(s->next_run_ms, next, sizeof next);
    naq_cli_format_time_ms(s->last_run_ms, last, sizeof last);
    if (s->repeat < 0)
        snprintf(left, sizeof left, "-");
    else
        snprintf(left, sizeof left, "%lld", (long long)s->repeat);
    const char *cells[] = {s->name, when, next, last, s->queue, state_of(s), left};
    return naq_cli_table_add(t, cells);
}

/* One schedule as a JSON line: the stored JSON plus its revision. */
static int print_schedule_json(const char *cmd, const naq_schedule *s)
{
    char *json = NULL;
    size_t len = 0;
    naq_status st = naq_schedule_encode(s, &json, &len);
    if (st != NAQ_OK)
        return naq_cli_fail(cmd, st);
    json_t *o = json_loadb(json, len, 0, NULL);
    free(json);
    if (o == NULL)
        return NAQ_EXIT_FAILURE;
    json_object_set_new(o, "revision", json_integer((json_int_t)s->revision));
    char *line = naq__json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (line == NULL)
        return NAQ_EXIT_FAILURE;
    puts(line);
    free(line);
    return NAQ_EXIT_OK;
}

static void print_details(const naq_schedule *s)
{
    char when[200], t[48];
    format_when(s, when, sizeof when);
    printf("name:         %s\n", s->name);
    printf("when:         %s\n", when);
    printf("state:        %s\n", state_of(s));
    naq_cli_format_time_ms(s->next_run_ms, t, sizeof t);
    printf("next run:     %s\n", t);
    naq_cli_format_time_ms(s->last_run_ms, t, sizeof t);
    printf("last run:     %s\n", t);
    if (s->repeat < 0)
        printf("repeat:       no limit\n");
    else
        printf("repeat:       %lld left\n", (long long)s->repeat);
    printf("misfire:      %s\n", naq_misfire_policy_name(s->misfire));
    printf("queue:        %s\n", s->queue);
    printf("function:     %s\n", s->function);
    printf("args:         %s\n", s->args_json ? s->args_json : "[]");
    printf("retries:      %d\n", s->max_retries);
    if (s->timeout_ms > 0) {
        format_ms(s->timeout_ms, t, sizeof t);
        printf("timeout:      %s\n", t);
    } else {
        printf("timeout:      none\n");
    }
    printf("priority:     %s\n", naq_priority_name(s->priority));
    naq_cli_format_time_ms(s->created_at_ms, t, sizeof t);
    printf("created:      %s\n", t);
}

/* ---------------------------------------------------------------- commands */

static int cmd_add(const char *cmd, int argc, char **argv)
{
    const char *name = NULL;
    change ch = {0};
    naq_cli_common common = {0};
    naq_client *client = NULL;
    naq_schedule s;
    naq_schedule_init(&s);
    int rc = take_name(cmd, &argc, &argv, &name);
    if (rc != NAQ_EXIT_OK)
        return rc < 0 ? NAQ_EXIT_OK : rc;
    if ((rc = parse_change(cmd, argc, argv, &ch, &common)) != NAQ_EXIT_OK) {
        rc = rc < 0 ? NAQ_EXIT_OK : rc;
        goto out;
    }
    if (ch.cron == NULL && !ch.has_every && !ch.has_at) {
        rc = naq_cli_usage_error(cmd, "when should it run? give --cron, --every or --at");
        goto out;
    }
    if (ch.function == NULL) {
        rc = naq_cli_usage_error(cmd, "what should it run? give -f FUNCTION or '-- COMMAND "
                                      "ARG...'");
        goto out;
    }
    snprintf(s.name, sizeof s.name, "%.*s", (int)sizeof s.name - 1, name);
    naq_status st;
    /* Check everything before connecting, so a typo is reported as one. */
    if ((st = naq_schedule_name_validate(name)) != NAQ_OK || (st = apply(&s, &ch)) != NAQ_OK) {
        rc = naq_cli_fail(cmd, st);
        goto out;
    }
    if ((rc = naq_cli_connect(cmd, &common, 1, &client)) != NAQ_EXIT_OK)
        goto out;
    if ((st = naq_schedule_add(client, &s)) != NAQ_OK) {
        rc = naq_cli_fail(cmd, st);
        goto out;
    }
    char next[48];
    naq_cli_format_time_ms(s.next_run_ms, next, sizeof next);
    printf("schedule %s added; next run %s\n", s.name, next);
out:
    naq_schedule_clear(&s);
    free(ch.exec_args);
    naq_client_destroy(client);
    return rc;
}

static int cmd_modify(const char *cmd, int argc, char **argv)
{
    const char *name = NULL;
    change ch = {0};
    naq_cli_common common = {0};
    naq_client *client = NULL;
    naq_schedule s;
    naq_schedule_init(&s);
    int rc = take_name(cmd, &argc, &argv, &name);
    if (rc != NAQ_EXIT_OK)
        return rc < 0 ? NAQ_EXIT_OK : rc;
    if ((rc = parse_change(cmd, argc, argv, &ch, &common)) != NAQ_EXIT_OK) {
        rc = rc < 0 ? NAQ_EXIT_OK : rc;
        goto out;
    }
    naq_status st;
    if ((st = naq_schedule_name_validate(name)) != NAQ_OK) {
        rc = naq_cli_fail(cmd, st);
        goto out;
    }
    if ((rc = naq_cli_connect(cmd, &common, 1, &client)) != NAQ_EXIT_OK)
        goto out;
    if ((st = naq_schedule_modify(client, name, apply, &ch, &s)) != NAQ_OK) {
        rc = naq_cli_fail(cmd, st);
        goto out;
    }
    char next[48];
    naq_cli_format_time_ms(s.next_run_ms, next, sizeof next);
    printf("schedule %s modified; next run %s\n", s.name, next);
out:
    naq_schedule_clear(&s);
    free(ch.exec_args);
    naq_client_destroy(client);
    return rc;
}

static int parse_format(const char *cmd, const change *ch, naq_cli_format *fmt)
{
    *fmt = NAQ_CLI_FORMAT_TABLE;
    return ch->format ? naq_cli_parse_format(cmd, ch->format, 0, fmt) : NAQ_EXIT_OK;
}

static int cmd_list(const char *cmd, int argc, char **argv)
{
    change ch = {0};
    naq_cli_common common = {0};
    naq_client *client = NULL;
    naq_schedule_list list = {0};
    naq_cli_format fmt;
    int rc = parse_change(cmd, argc, argv, &ch, &common);
    if (rc != NAQ_EXIT_OK)
        return rc < 0 ? NAQ_EXIT_OK : rc;
    if ((rc = parse_format(cmd, &ch, &fmt)) != NAQ_EXIT_OK)
        goto out;
    if ((rc = naq_cli_connect(cmd, &common, 0, &client)) != NAQ_EXIT_OK)
        goto out;
    naq_status st = naq_schedules_list(client, &list);
    if (st != NAQ_OK) {
        rc = naq_cli_fail(cmd, st);
        goto out;
    }
    if (list.count == 0 && fmt == NAQ_CLI_FORMAT_TABLE)
        fprintf(stderr, "no schedules; add one with 'naq schedule add NAME --every 1m -- CMD'\n");
    naq_cli_table t;
    naq_cli_table_init(&t, 7, list_headers, NULL);
    for (size_t i = 0; i < list.count && rc == NAQ_EXIT_OK; i++) {
        if (fmt == NAQ_CLI_FORMAT_JSON)
            rc = print_schedule_json(cmd, &list.items[i]);
        else if (add_row(&t, &list.items[i]) != 0)
            rc = NAQ_EXIT_FAILURE;
    }
    if (rc == NAQ_EXIT_OK && t.rows > 0)
        naq_cli_table_print(&t, stdout);
    naq_cli_table_free(&t);
out:
    naq_schedule_list_free(&list);
    free(ch.exec_args);
    naq_client_destroy(client);
    return rc;
}

/* After a resume: when the schedule runs next, or that it never will (a
 * one-off whose time passed while it was paused, or no triggers left). */
static int report_resumed(const char *cmd, naq_client *client, const char *name)
{
    naq_schedule s;
    naq_schedule_init(&s);
    naq_status st = naq_schedule_get(client, name, &s);
    if (st != NAQ_OK) {
        naq_schedule_clear(&s);
        return naq_cli_fail(cmd, st);
    }
    char t[48];
    if (s.next_run_ms > 0) {
        naq_cli_format_time_ms(s.next_run_ms, t, sizeof t);
        printf("schedule %s resumed; next run %s\n", name, t);
    } else if (s.kind == NAQ_SCHEDULE_AT && s.repeat != 0) {
        naq_cli_format_time_ms(s.at_ms, t, sizeof t);
        printf("schedule %s is finished: its time %s passed while it was paused, so it will "
               "not run; give it a new time with 'naq schedule modify %s --at TIME'\n",
               name, t, name);
    } else {
        printf("schedule %s is finished: it has no triggers left, so it will not run; give it "
               "more with 'naq schedule modify %s --repeat N'\n",
               name, name);
    }
    naq_schedule_clear(&s);
    return NAQ_EXIT_OK;
}

/* show, pause, resume, rm: NAME and the common flags. */
static int cmd_named(const char *cmd, const char *sub, int argc, char **argv)
{
    const char *name = NULL;
    change ch = {0};
    naq_cli_common common = {0};
    naq_client *client = NULL;
    naq_schedule s;
    naq_schedule_init(&s);
    naq_cli_format fmt;
    int rc = take_name(cmd, &argc, &argv, &name);
    if (rc != NAQ_EXIT_OK)
        return rc < 0 ? NAQ_EXIT_OK : rc;
    if ((rc = parse_change(cmd, argc, argv, &ch, &common)) != NAQ_EXIT_OK) {
        rc = rc < 0 ? NAQ_EXIT_OK : rc;
        goto out;
    }
    int is_show = strcmp(sub, "show") == 0;
    if (ch.cron || ch.has_every || ch.has_at || ch.function || ch.queue || ch.args ||
        ch.has_repeat || ch.has_retries || ch.has_timeout || ch.has_priority || ch.has_misfire ||
        ch.tz || (ch.format && !is_show)) {
        rc = naq_cli_usage_error(cmd,
                                 "'%s' takes only a name%s; to change a schedule use "
                                 "'naq schedule modify'",
                                 sub, is_show ? " and --format" : "");
        goto out;
    }
    if ((rc = parse_format(cmd, &ch, &fmt)) != NAQ_EXIT_OK)
        goto out;
    naq_status st = naq_schedule_name_validate(name);
    if (st != NAQ_OK) {
        rc = naq_cli_fail(cmd, st);
        goto out;
    }
    if ((rc = naq_cli_connect(cmd, &common, !is_show, &client)) != NAQ_EXIT_OK)
        goto out;
    if (is_show)
        st = naq_schedule_get(client, name, &s);
    else if (strcmp(sub, "pause") == 0)
        st = naq_schedule_pause(client, name);
    else if (strcmp(sub, "resume") == 0)
        st = naq_schedule_resume(client, name);
    else
        st = naq_schedule_remove(client, name);
    if (st != NAQ_OK) {
        rc = naq_cli_fail(cmd, st);
        goto out;
    }
    if (strcmp(sub, "resume") == 0)
        rc = report_resumed(cmd, client, name);
    else if (!is_show)
        printf("schedule %s %s\n", name, strcmp(sub, "pause") == 0 ? "paused" : "removed");
    else if (fmt == NAQ_CLI_FORMAT_JSON)
        rc = print_schedule_json(cmd, &s);
    else
        print_details(&s);
out:
    naq_schedule_clear(&s);
    free(ch.exec_args);
    naq_client_destroy(client);
    return rc;
}

int naq_cmd_schedule(int argc, char **argv)
{
    const char *cmd = argv[0];
    if (argc < 2)
        return naq_cli_usage_error(cmd, "which action? add, list, show, pause, resume, modify "
                                        "or rm");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(usage_schedule, stdout);
        return NAQ_EXIT_OK;
    }
    static const char *const subs[] = {"add", "list", "show", "pause", "resume", "modify", "rm"};
    size_t i = 0;
    while (i < sizeof subs / sizeof subs[0] && strcmp(sub, subs[i]) != 0)
        i++;
    if (i == sizeof subs / sizeof subs[0])
        return naq_cli_usage_error(cmd,
                                   "unknown action '%s': use add, list, show, pause, resume, "
                                   "modify or rm",
                                   sub);
    /* "naq schedule add": how getopt and our errors name the action. */
    char subcmd[64];
    snprintf(subcmd, sizeof subcmd, "%s %s", cmd, sub);
    argv[1] = subcmd;
    argc--;
    argv++;
    if (!strcmp(sub, "add"))
        return cmd_add(subcmd, argc, argv);
    if (!strcmp(sub, "modify"))
        return cmd_modify(subcmd, argc, argv);
    if (!strcmp(sub, "list"))
        return cmd_list(subcmd, argc, argv);
    return cmd_named(subcmd, sub, argc, argv);
}

/* ---------------------------------------------------------------- scheduler */

static naq_scheduler *volatile running_scheduler;
static volatile int rollup_stop;

typedef struct {
    naq_client *client;
    naq_status status;
} rollup_thread;

static void *run_rollup(void *arg)
{
    rollup_thread *r = arg;
    r->status = naq_rollup_run(r->client, &rollup_stop);
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    static const char msg[] = "naq scheduler: stopping, handing the lease over\n";
    rollup_stop = 1;
    naq_scheduler *s = running_scheduler;
    if (s != NULL)
        naq_scheduler_stop(s);
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
}

int naq_cmd_scheduler(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {
        {"lease", required_argument, NULL, OPT_LEASE},
        {"id", required_argument, NULL, OPT_ID},
        {"misfire-grace", required_argument, NULL, OPT_GRACE},
        {"no-rollup", no_argument, NULL, OPT_NO_ROLLUP},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"metrics-interval", required_argument, NULL, OPT_INTERVAL},
        {"help", no_argument, NULL, 'h'},
        NAQ_CLI_COMMON_OPTIONS,
        {NULL, 0, NULL, 0}};
    naq_cli_common common = {0};
    naq_scheduler_opts so;
    naq_scheduler_opts_init(&so);
    int c, lease_given = 0, with_rollup = 1;
    const char *metrics = NULL, *interval = NULL;
    naq_cli_process_metrics pm = {{NULL, NULL, NULL, NULL}, NULL, NULL};
    optind = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_LEASE:
            if (naq_parse_duration_ms(optarg, &so.lease_ms) != NAQ_OK)
                return naq_cli_usage_error(cmd, "--lease: %s", naq_last_error());
            if (so.lease_ms < 300)
                return naq_cli_usage_error(cmd, "--lease must be at least 300ms");
            lease_given = 1;
            break;
        case OPT_ID:
            if (naq_id_validate("scheduler id", optarg) != NAQ_OK)
                return naq_cli_usage_error(cmd, "--id: %s", naq_last_error());
            so.scheduler_id = optarg;
            break;
        case OPT_GRACE:
            if (naq_parse_duration_ms(optarg, &so.misfire_grace_ms) != NAQ_OK)
                return naq_cli_usage_error(cmd, "--misfire-grace: %s", naq_last_error());
            break;
        case OPT_NO_ROLLUP: with_rollup = 0; break;
        case OPT_METRICS: metrics = optarg; break;
        case OPT_INTERVAL: interval = optarg; break;
        case 'h': fputs(usage_scheduler, stdout); return NAQ_EXIT_OK;
        default:
            if (!naq_cli_common_option(&common, c, optarg))
                return naq_cli_try_help(cmd);
            break;
        }
    }
    if (optind < argc)
        return naq_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);

    naq_client *client = NULL;
    naq_scheduler *s = NULL;
    pthread_t rollup_tid;
    rollup_thread rollup = {NULL, NAQ_OK};
    int rollup_started = 0;
    int rc = naq_cli_connect(cmd, &common, 1, &client);
    if (rc != NAQ_EXIT_OK)
        return rc;
    naq_status st = naq_scheduler_create(client, &so, &s);
    if (st != NAQ_OK) {
        rc = naq_cli_fail(cmd, st);
        goto out;
    }
    pm.p = (naq_metrics_process){client, NULL, s, NULL};
    if ((rc = naq_cli_process_metrics_start(cmd, metrics, interval, &pm)) != NAQ_EXIT_OK)
        goto out;
    if (lease_given && naq_scheduler_lease_ms(s) != so.lease_ms)
        fprintf(stderr,
                "naq scheduler: the lease is %lld ms, the TTL of the existing lock bucket; "
                "--lease applies only when the bucket is created\n",
                (long long)naq_scheduler_lease_ms(s));
    running_scheduler = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "naq scheduler %s running (lease %lld ms); Ctrl-C to stop\n",
            naq_scheduler_id(s), (long long)naq_scheduler_lease_ms(s));
    rollup.client = client;
    rollup_stop = 0;
    rollup_started = with_rollup && pthread_create(&rollup_tid, NULL, run_rollup, &rollup) == 0;
    st = naq_scheduler_run(s);
    rollup_stop = 1;
    if (rollup_started) {
        pthread_join(rollup_tid, NULL);
        if (rollup.status != NAQ_OK)
            fprintf(stderr, "naq scheduler: rollups stopped: %s\n", naq_status_str(rollup.status));
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    running_scheduler = NULL;
    if (st != NAQ_OK)
        rc = naq_cli_fail(cmd, st);
    naq_scheduler_stats stats;
    naq_scheduler_get_stats(s, &stats);
    fprintf(stderr, "naq scheduler %s stopped: %llu %s, %llu delayed %s released\n",
            naq_scheduler_id(s), (unsigned long long)stats.triggers,
            naq_cli_plural(stats.triggers, "trigger", "triggers"),
            (unsigned long long)stats.released, naq_cli_plural(stats.released, "job", "jobs"));
out:
    naq_cli_process_metrics_stop(&pm);
    naq_scheduler_destroy(s);
    naq_client_destroy(client);
    return rc;
}
