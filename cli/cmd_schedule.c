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
#include "internal.h" /* naq__now, naq__mono_ms: the library's clocks */
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
    char *exec_args;  /* heap: {"argv": [...]} from '-- COMMAND'; freed by schedule_main */
    const char *name; /* the NAME operand (from argv) */
    const char *sub;  /* "add", "show", ...: which action */
} change;

/* ---------------------------------------------------------------- parsing */

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

/* The flags of every action but the scheduler: those of add and modify,
 * which the other actions refuse (cmd_named) so a misplaced flag is not
 * silently ignored. */
static const struct option change_opts[] = {{"cron", required_argument, NULL, OPT_CRON},
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
                                            {NULL, 0, NULL, 0}};

static int change_option(naq_cli_ctx *x, int c, const char *arg)
{
    change *ch = x->args;
    const char *cmd = x->cmd;
    long long n = 0;
    switch (c) {
    case OPT_CRON: ch->cron = arg; break;
    case OPT_TZ: ch->tz = arg; break;
    case OPT_EVERY:
        if (naq_parse_duration_ms(arg, &ch->every_ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--every: %s", naq_last_error());
        ch->has_every = 1;
        break;
    case OPT_AT:
        if (naq_parse_time_ms(arg, (int64_t)(naq__now() * 1000.0), &ch->at_ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--at: %s", naq_last_error());
        ch->has_at = 1;
        break;
    case OPT_REPEAT:
        if (strcmp(arg, "forever") == 0)
            n = -1;
        else if (!naq_cli_parse_int(cmd, "--repeat", arg, -1, INT64_MAX, &n))
            return NAQ_EXIT_USAGE;
        if (n == 0)
            return naq_cli_usage_error(cmd, "--repeat 0 would never fire; give N >= 1 or -1");
        ch->repeat = n;
        ch->has_repeat = 1;
        break;
    case OPT_MISFIRE:
        if (naq_misfire_policy_parse(arg, &ch->misfire) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--misfire: %s", naq_last_error());
        ch->has_misfire = 1;
        break;
    case 'q': ch->queue = arg; break;
    case 'f': ch->function = arg; break;
    case OPT_ARGS: ch->args = arg; break;
    case OPT_RETRIES:
        if (!naq_cli_parse_int(cmd, "--retries", arg, 0, 1000000, &n))
            return NAQ_EXIT_USAGE;
        ch->retries = (int)n;
        ch->has_retries = 1;
        break;
    case OPT_TIMEOUT:
        if (naq_parse_duration_ms(arg, &ch->timeout_ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--timeout: %s", naq_last_error());
        ch->has_timeout = 1;
        break;
    case OPT_PRIORITY:
        if (parse_priority(cmd, arg, &ch->priority) != NAQ_EXIT_OK)
            return NAQ_EXIT_USAGE;
        ch->has_priority = 1;
        break;
    }
    return NAQ_EXIT_OK;
}

/* The operands ('-- COMMAND ARG...' only) and the flags that go
 * together: every action checks them before connecting. */
static int check_change(naq_cli_ctx *x)
{
    change *ch = x->args;
    const char *cmd = x->cmd;
    if (x->argc > 0 && !x->dashdash)
        return naq_cli_usage_error(cmd,
                                   "unexpected argument '%s'; to run a command, put it after "
                                   "'--'",
                                   x->argv[0]);
    if (x->dashdash) {
        if (x->argc == 0)
            return naq_cli_usage_error(cmd, "nothing after '--': give the command to run");
        if (ch->function != NULL && strcmp(ch->function, NAQ_EXEC_FUNCTION) != 0)
            return naq_cli_usage_error(cmd, "give either -f FUNCTION or '-- COMMAND', not both");
        if (ch->args != NULL)
            return naq_cli_usage_error(cmd, "--args cannot be combined with '-- COMMAND'");
        if ((ch->exec_args = exec_args(x->argc, x->argv)) == NULL)
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

static void schedule_row(const void *item, void *user, const char **cells,
                         char (*buf)[NAQ_CLI_CELL_MAX])
{
    const naq_schedule *s = item;
    (void)user;
    format_when(s, buf[1], 200);
    naq_cli_format_time_ms(s->next_run_ms, buf[2], 48);
    naq_cli_format_time_ms(s->last_run_ms, buf[3], 48);
    if (s->repeat < 0)
        snprintf(buf[6], 24, "-");
    else
        snprintf(buf[6], 24, "%lld", (long long)s->repeat);
    cells[0] = s->name;
    cells[1] = buf[1];
    cells[2] = buf[2];
    cells[3] = buf[3];
    cells[4] = s->queue;
    cells[5] = state_of(s);
    cells[6] = buf[6];
}

/* One schedule as a JSON line: the stored JSON plus its revision. */
static char *schedule_json(const void *item, void *user)
{
    const naq_schedule *s = item;
    char *json = NULL;
    size_t len = 0;
    (void)user;
    if (naq_schedule_encode(s, &json, &len) != NAQ_OK) {
        naq_cli_error("%s", naq_last_error());
        return NULL;
    }
    json_t *o = json_loadb(json, len, 0, NULL);
    free(json);
    if (o != NULL)
        json_object_set_new(o, "revision", json_integer((json_int_t)s->revision));
    return naq_cli_json_line(o);
}

static const naq_cli_listing schedules = {7, list_headers, NULL, schedule_row, schedule_json, NULL};

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

/* add: the when and the what are required; everything is checked before
 * connecting, so a typo is reported as one. */
static int check_add(naq_cli_ctx *x)
{
    change *ch = x->args;
    naq_schedule s;
    naq_status st;
    int rc = check_change(x);
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (ch->cron == NULL && !ch->has_every && !ch->has_at)
        return naq_cli_usage_error(x->cmd, "when should it run? give --cron, --every or --at");
    if (ch->function == NULL)
        return naq_cli_usage_error(x->cmd, "what should it run? give -f FUNCTION or '-- COMMAND "
                                           "ARG...'");
    naq_schedule_init(&s);
    snprintf(s.name, sizeof s.name, "%.*s", (int)sizeof s.name - 1, ch->name);
    if ((st = naq_schedule_name_validate(ch->name)) != NAQ_OK || (st = apply(&s, ch)) != NAQ_OK)
        rc = naq_cli_fail(x->cmd, st);
    naq_schedule_clear(&s);
    return rc;
}

/* After add or modify: "schedule NAME added; next run TIME", or the
 * failure. Clears s. */
static int report_next_run(const char *cmd, naq_status st, naq_schedule *s, const char *done)
{
    int rc = st == NAQ_OK ? NAQ_EXIT_OK : naq_cli_fail(cmd, st);
    if (rc == NAQ_EXIT_OK) {
        char next[48];
        naq_cli_format_time_ms(s->next_run_ms, next, sizeof next);
        printf("schedule %s %s; next run %s\n", s->name, done, next);
    }
    naq_schedule_clear(s);
    return rc;
}

static int cmd_add(naq_cli_ctx *x)
{
    change *ch = x->args;
    naq_schedule s;
    naq_schedule_init(&s);
    snprintf(s.name, sizeof s.name, "%.*s", (int)sizeof s.name - 1, ch->name);
    naq_status st = apply(&s, ch);
    if (st == NAQ_OK)
        st = naq_schedule_add(x->client, &s);
    return report_next_run(x->cmd, st, &s, "added");
}

/* modify, show, pause, resume, rm: a valid name. */
static int check_name(naq_cli_ctx *x)
{
    const change *ch = x->args;
    int rc = check_change(x);
    naq_status st;
    if (rc == NAQ_EXIT_OK && (st = naq_schedule_name_validate(ch->name)) != NAQ_OK)
        rc = naq_cli_fail(x->cmd, st);
    return rc;
}

static int cmd_modify(naq_cli_ctx *x)
{
    change *ch = x->args;
    naq_schedule s;
    naq_schedule_init(&s);
    naq_status st = naq_schedule_modify(x->client, ch->name, apply, ch, &s);
    return report_next_run(x->cmd, st, &s, "modified");
}

static int cmd_list(naq_cli_ctx *x)
{
    naq_schedule_list list = {0};
    naq_status st = naq_schedules_list(x->client, &list);
    if (st != NAQ_OK)
        return naq_cli_fail(x->cmd, st);
    if (list.count == 0 && x->format == NAQ_CLI_FORMAT_TABLE)
        fprintf(stderr, "no schedules; add one with 'naq schedule add NAME --every 1m -- CMD'\n");
    int rc =
        naq_cli_list_print(&schedules, x->format, NULL, list.items, list.count, sizeof *list.items);
    naq_schedule_list_free(&list);
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

/* show, pause, resume, rm take a name and nothing of add / modify. */
static int check_named(naq_cli_ctx *x)
{
    const change *ch = x->args;
    int is_show = strcmp(ch->sub, "show") == 0;
    int rc = check_change(x);
    if (rc == NAQ_EXIT_OK &&
        (ch->cron || ch->has_every || ch->has_at || ch->function || ch->queue || ch->args ||
         ch->has_repeat || ch->has_retries || ch->has_timeout || ch->has_priority ||
         ch->has_misfire || ch->tz || (x->format != NAQ_CLI_FORMAT_TABLE && !is_show)))
        return naq_cli_usage_error(x->cmd,
                                   "'%s' takes only a name%s; to change a schedule use "
                                   "'naq schedule modify'",
                                   ch->sub, is_show ? " and --format" : "");
    return rc == NAQ_EXIT_OK ? check_name(x) : rc;
}

static int cmd_show(naq_cli_ctx *x)
{
    const change *ch = x->args;
    naq_schedule s;
    naq_schedule_init(&s);
    naq_status st = naq_schedule_get(x->client, ch->name, &s);
    int rc = NAQ_EXIT_OK;
    if (st != NAQ_OK)
        rc = naq_cli_fail(x->cmd, st);
    else if (x->format == NAQ_CLI_FORMAT_JSON)
        rc = naq_cli_list_print(&schedules, x->format, NULL, &s, 1, sizeof s);
    else
        print_details(&s);
    naq_schedule_clear(&s);
    return rc;
}

static int cmd_pause_resume_rm(naq_cli_ctx *x)
{
    const change *ch = x->args;
    naq_status st;
    if (strcmp(ch->sub, "pause") == 0)
        st = naq_schedule_pause(x->client, ch->name);
    else if (strcmp(ch->sub, "resume") == 0)
        st = naq_schedule_resume(x->client, ch->name);
    else
        st = naq_schedule_remove(x->client, ch->name);
    if (st != NAQ_OK)
        return naq_cli_fail(x->cmd, st);
    if (strcmp(ch->sub, "resume") == 0)
        return report_resumed(x->cmd, x->client, ch->name);
    printf("schedule %s %s\n", ch->name, strcmp(ch->sub, "pause") == 0 ? "paused" : "removed");
    return NAQ_EXIT_OK;
}

/* Every action takes the flags of add and modify (the others refuse
 * them in check_named) and --format (list and show use it). */
#define SCHEDULE_ACTION(check_fn, run_fn, more_flags)                                              \
    {                                                                                              \
        usage_schedule, NULL, "+q:f:", change_opts,                                                \
            NAQ_CLI_CONNECT | NAQ_CLI_TAKES_FORMAT | (more_flags), change_option, check_fn, run_fn \
    }

/* Runs action c; with_name: its first operand is the schedule's NAME,
 * taken off before the options (they follow it). */
static int schedule_main(const naq_cli_command *c, int with_name, int argc, char **argv)
{
    change ch;
    memset(&ch, 0, sizeof ch);
    ch.sub = strrchr(argv[0], ' ') ? strrchr(argv[0], ' ') + 1 : argv[0];
    int rc = with_name ? take_name(argv[0], &argc, &argv, &ch.name) : NAQ_EXIT_OK;
    if (rc < 0)
        return NAQ_EXIT_OK; /* --help, answered */
    if (rc == NAQ_EXIT_OK)
        rc = naq_cli_main(c, &ch, argc, argv);
    free(ch.exec_args);
    return rc;
}

static int add_main(int argc, char **argv)
{
    static const naq_cli_command c = SCHEDULE_ACTION(check_add, cmd_add, NAQ_CLI_LOGS_EVENTS);
    return schedule_main(&c, 1, argc, argv);
}

static int modify_main(int argc, char **argv)
{
    static const naq_cli_command c = SCHEDULE_ACTION(check_name, cmd_modify, NAQ_CLI_LOGS_EVENTS);
    return schedule_main(&c, 1, argc, argv);
}

static int list_main(int argc, char **argv)
{
    static const naq_cli_command c = SCHEDULE_ACTION(check_change, cmd_list, 0);
    return schedule_main(&c, 0, argc, argv);
}

static int show_main(int argc, char **argv)
{
    static const naq_cli_command c = SCHEDULE_ACTION(check_named, cmd_show, 0);
    return schedule_main(&c, 1, argc, argv);
}

static int named_main(int argc, char **argv)
{
    static const naq_cli_command c =
        SCHEDULE_ACTION(check_named, cmd_pause_resume_rm, NAQ_CLI_LOGS_EVENTS);
    return schedule_main(&c, 1, argc, argv);
}

int naq_cmd_schedule(int argc, char **argv)
{
    static const naq_cli_sub subs[] = {
        {"add", "naq schedule add", add_main, NULL},
        {"list", "naq schedule list", list_main, NULL},
        {"show", "naq schedule show", show_main, NULL},
        {"pause", "naq schedule pause", named_main, NULL},
        {"resume", "naq schedule resume", named_main, NULL},
        {"modify", "naq schedule modify", modify_main, NULL},
        {"rm", "naq schedule rm", named_main, NULL},
    };
    static const naq_cli_group group = {usage_schedule, "action", subs,
                                        sizeof subs / sizeof subs[0]};
    return naq_cli_dispatch(&group, argc, argv);
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

typedef struct {
    naq_scheduler_opts so;
    int lease_given, with_rollup;
    const char *metrics, *interval;
} scheduler_args;

static int scheduler_option(naq_cli_ctx *x, int c, const char *arg)
{
    scheduler_args *a = x->args;
    switch (c) {
    case OPT_LEASE:
        if (naq_parse_duration_ms(arg, &a->so.lease_ms) != NAQ_OK)
            return naq_cli_usage_error(x->cmd, "--lease: %s", naq_last_error());
        if (a->so.lease_ms < 300)
            return naq_cli_usage_error(x->cmd, "--lease must be at least 300ms");
        a->lease_given = 1;
        break;
    case OPT_ID:
        if (naq_id_validate("scheduler id", arg) != NAQ_OK)
            return naq_cli_usage_error(x->cmd, "--id: %s", naq_last_error());
        a->so.scheduler_id = arg;
        break;
    case OPT_GRACE:
        if (naq_parse_duration_ms(arg, &a->so.misfire_grace_ms) != NAQ_OK)
            return naq_cli_usage_error(x->cmd, "--misfire-grace: %s", naq_last_error());
        break;
    case OPT_NO_ROLLUP: a->with_rollup = 0; break;
    case OPT_METRICS: a->metrics = arg; break;
    case OPT_INTERVAL: a->interval = arg; break;
    }
    return NAQ_EXIT_OK;
}

static int run_scheduler(naq_cli_ctx *x)
{
    scheduler_args *a = x->args;
    const char *cmd = x->cmd;
    naq_client *client = x->client;
    naq_scheduler *s = NULL;
    pthread_t rollup_tid;
    rollup_thread rollup = {NULL, NAQ_OK};
    int rollup_started = 0, rc = NAQ_EXIT_OK;
    naq_cli_process_metrics pm = {{NULL, NULL, NULL, NULL}, NULL, NULL};
    naq_status st = naq_scheduler_create(client, &a->so, &s);
    if (st != NAQ_OK) {
        rc = naq_cli_fail(cmd, st);
        goto out;
    }
    pm.p = (naq_metrics_process){client, NULL, s, NULL};
    if ((rc = naq_cli_process_metrics_start(cmd, a->metrics, a->interval, &pm)) != NAQ_EXIT_OK)
        goto out;
    if (a->lease_given && naq_scheduler_lease_ms(s) != a->so.lease_ms)
        fprintf(stderr,
                "naq scheduler: the lease is %lld ms, the TTL of the existing lock bucket; "
                "--lease applies only when the bucket is created\n",
                (long long)naq_scheduler_lease_ms(s));
    running_scheduler = s;
    naq_cli_stop_on_signals(on_signal, SA_RESTART);
    fprintf(stderr, "naq scheduler %s running (lease %lld ms); Ctrl-C to stop\n",
            naq_scheduler_id(s), (long long)naq_scheduler_lease_ms(s));
    rollup.client = client;
    rollup_stop = 0;
    rollup_started = a->with_rollup && pthread_create(&rollup_tid, NULL, run_rollup, &rollup) == 0;
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
    return rc;
}

int naq_cmd_scheduler(int argc, char **argv)
{
    static const struct option opts[] = {
        {"lease", required_argument, NULL, OPT_LEASE},
        {"id", required_argument, NULL, OPT_ID},
        {"misfire-grace", required_argument, NULL, OPT_GRACE},
        {"no-rollup", no_argument, NULL, OPT_NO_ROLLUP},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"metrics-interval", required_argument, NULL, OPT_INTERVAL},
        {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        usage_scheduler,  NULL, "+",          opts, NAQ_CLI_CONNECT | NAQ_CLI_LOGS_EVENTS,
        scheduler_option, NULL, run_scheduler};
    scheduler_args a;
    memset(&a, 0, sizeof a);
    naq_scheduler_opts_init(&a.so);
    a.with_rollup = 1;
    return naq_cli_main(&c, &a, argc, argv);
}
