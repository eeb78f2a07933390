/*
 * cmd_job.c - `naq job`: one job. `status` shows its state, which is the
 * type of its last event (one direct get; there is no separate status
 * store); `result` its result record; `cancel`, `priority` and `move` act
 * on a job that has not run yet.
 */
#include "cli.h"
#include "core/crypt.h"
#include "core/jsonw.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: naq job status JOB_ID [--format table|json|raw]\n"
    "       naq job result JOB_ID [--wait SECONDS] [--format table|json]\n"
    "       naq job cancel JOB_ID\n"
    "       naq job priority JOB_ID LEVEL\n"
    "       naq job move JOB_ID QUEUE\n"
    "       naq job extend-ttl JOB_ID DURATION\n"
    "\n"
    "  status    the job's current state: the type of its last event\n"
    "            (enqueued, started, completed, failed, retry_scheduled, ...)\n"
    "  result    the job's result: status, the handler's result or the command's\n"
    "            exit status and output tail, the error (kept 24 h by default)\n"
    "  cancel    cancel a job that is queued, delayed, waiting for dependencies\n"
    "            or running\n"
    "  priority  change the priority of a job still waiting in its queue\n"
    "  move      move a job still waiting in its queue to another queue\n"
    "  extend-ttl  give a job still waiting in its queue more time before its\n"
    "            TTL runs out\n"
    "\n"
    "'naq job SUBCOMMAND --help' shows its options.\n"
    "\n"
    "exit codes: 0 ok, 1 failure (unknown or finished job, no server), 2 bad usage\n";

static const char status_usage[] =
    "usage: naq job status JOB_ID [--format table|json|raw]\n"
    "\n"
    "Prints the job's state, which is the type of its last event, e.g.\n"
    "  JOB 0190...  state=completed  queue=default  attempt=1  at=2026-01-31T12:00:00.123Z\n"
    "Failed jobs also show error=TYPE: MESSAGE. json and raw print the last\n"
    "event itself (see 'naq events history --help').\n"
    "\n" NAQ_CLI_FORMAT_USAGE "  -h, --help         this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "example:\n"
    "  naq job status \"$id\" --format json | jq -r .event_type\n"
    "\n"
    "exit codes: 0 ok (whatever the state), 1 no events for the job or no server,\n"
    "2 bad usage\n";

static const char result_usage[] =
    "usage: naq job result JOB_ID [--wait SECONDS] [--format table|json]\n"
    "\n"
    "Prints the result record a worker stored when the job finished: its status\n"
    "(completed, failed, cancelled), attempt, finished_at, and the handler's\n"
    "result, an exec job's exit_status and stdout/stderr tails, or the error.\n"
    "Results are kept 24 h by default (--result-ttl of naq enqueue shortens it).\n"
    "\n"
    "      --wait SECONDS     wait up to this long for the job to finish (also\n"
    "                         500ms, 2m, ...); without it, answer at once\n"
    "      --format FORMAT    table (default) or json (the record, one line)\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "example:\n"
    "  id=$(naq enqueue -q default -- date) && naq job result \"$id\" --wait 30\n"
    "\n"
    "exit codes: 0 a result was found (whatever its status), 1 no result (not\n"
    "finished, expired, wrong id, or --wait ran out) or no server, 2 bad usage\n";

static const char cancel_usage[] =
    "usage: naq job cancel JOB_ID\n"
    "\n"
    "Cancels a job. A job waiting for its dependencies or delayed is cancelled at\n"
    "once (it never runs; event cancelled). For a queued job the request is\n"
    "recorded and the worker that takes it does not run it; a running exec job is\n"
    "killed and a C handler sees naq_job_ctx_cancelled(); the worker logs\n"
    "cancelled. Jobs that depend on it are cancelled too (unless they run on\n"
    "dependency failure).\n"
    "\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "exit codes: 0 cancelled or requested, 1 unknown job, already finished, or no\n"
    "server, 2 bad usage\n";

static const char priority_usage[] =
    "usage: naq job priority JOB_ID LEVEL\n"
    "\n"
    "Moves a job that still waits in its queue to another priority level: lowest,\n"
    "low, normal, high, critical or 0-4. Logs queue_priority_changed. A job a\n"
    "worker already took (running, retrying) cannot be changed.\n"
    "\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "exit codes: 0 changed (or already at that level), 1 the job is not waiting in\n"
    "a queue (the message says why) or no server, 2 bad usage\n";

static const char move_usage[] =
    "usage: naq job move JOB_ID QUEUE\n"
    "\n"
    "Moves a job that still waits in its queue to another queue, at the same\n"
    "priority. Logs queue_moved. A job a worker already took cannot be moved.\n"
    "\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "exit codes: 0 moved (or already there), 1 the job is not waiting in a queue\n"
    "(the message says why) or no server, 2 bad usage\n";

static const char extend_usage[] =
    "usage: naq job extend-ttl JOB_ID DURATION\n"
    "\n"
    "Gives a job that still waits in its queue DURATION more (30s, 5m, 2h)\n"
    "before its TTL runs out (enqueue --ttl): a job not started within its TTL\n"
    "is not run (ttl_expired). Logs ttl_extended. A job a worker already took,\n"
    "or one without a TTL, cannot be extended.\n"
    "\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "exit codes: 0 extended, 1 the job is not waiting in a queue, has no TTL\n"
    "(the message says why) or no server, 2 bad usage\n";

enum { OPT_FORMAT = NAQ_CLI_OPT_FIRST_FREE, OPT_WAIT };

static void print_status_line(const naq_event *e)
{
    char when[40], detail[200];
    naq_cli_format_time(e->timestamp, when, sizeof when);
    printf("JOB %s  state=%s", e->job_id, naq_event_type_name(e->type));
    if (e->queue_name[0] != '\0')
        printf("  queue=%s", e->queue_name);
    if (e->attempt > 0)
        printf("  attempt=%d", e->attempt);
    printf("  at=%s", when);
    if (e->worker_id[0] != '\0')
        printf("  worker=%s", e->worker_id);
    if ((e->error_type && *e->error_type) || (e->error_message && *e->error_message)) {
        naq_cli_event_detail(e, detail, sizeof detail);
        printf("  error=%s", detail);
    } else if (e->duration_ms >= 0) {
        printf("  duration_ms=%.1f", e->duration_ms);
    }
    putchar('\n');
}

static int status(int argc, char **argv)
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
        case 'h': fputs(status_usage, stdout); return NAQ_EXIT_OK;
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
    naq_event last;
    naq_event_init(&last, NAQ_EVENT_ENQUEUED);
    s = naq_job_last_event(client, job_id, &last);
    if (s != NAQ_OK) {
        rc = naq_cli_fail(cmd, s);
    } else if (format == NAQ_CLI_FORMAT_TABLE) {
        print_status_line(&last);
    } else {
        naq_cli_printer p;
        naq_cli_printer_init(&p, format);
        if (naq_cli_print_event(&p, &last) != 0)
            rc = NAQ_EXIT_FAILURE;
    }
    naq_event_clear(&last);
    naq_client_destroy(client);
    return rc;
}

/* ---- result ---- */

static void print_field(const char *name, json_t *v)
{
    if (v == NULL || json_is_null(v))
        return;
    if (json_is_string(v)) {
        /* One line per field: control characters become spaces. */
        printf("%-13s ", name);
        for (const char *p = json_string_value(v); *p; p++)
            putchar((unsigned char)*p < 0x20 ? ' ' : *p);
        putchar('\n');
        return;
    }
    char *text = naq__json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    printf("%-13s %s\n", name, text ? text : "?");
    free(text);
}

static void print_time_field(const char *name, json_t *v)
{
    if (!json_is_number(v))
        return;
    char when[40];
    naq_cli_format_time(json_number_value(v), when, sizeof when);
    printf("%-13s %s\n", name, when);
}

static void print_result(const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    if (o == NULL) {
        printf("%s\n", json);
        return;
    }
    print_field("job", json_object_get(o, "job_id"));
    print_field("status", json_object_get(o, "status"));
    print_field("queue", json_object_get(o, "queue"));
    print_field("function", json_object_get(o, "function"));
    print_field("attempt", json_object_get(o, "attempt"));
    print_time_field("finished_at", json_object_get(o, "finished_at"));
    print_time_field("expires_at", json_object_get(o, "expires_at"));
    print_field("result", json_object_get(o, "result"));
    print_field("exit_status", json_object_get(o, "exit_status"));
    print_field("signal", json_object_get(o, "signal"));
    print_field("error_type", json_object_get(o, "error_type"));
    print_field("error_message", json_object_get(o, "error_message"));
    print_field("stdout_tail", json_object_get(o, "stdout_tail"));
    print_field("stderr_tail", json_object_get(o, "stderr_tail"));
    /* Still sealed: this client has no key (or not the one) for it. */
    if (json_object_get(o, "sealed") != NULL)
        printf("%-13s %s (result, output and error message; set NAQ_ENCRYPTION_KEY_FILE to "
               "read them)\n",
               "payload", NAQ_CRYPT_HIDDEN);
    json_decref(o);
}

/* Parses the options every subcommand but status shares; *format may be
 * NULL (no --format), wait_ms too (no --wait). Returns an exit code; on
 * NAQ_EXIT_OK, argv[optind] is the first operand. */
static int job_options(int argc, char **argv, const char *help, naq_cli_common *common,
                       naq_cli_format *format, int64_t *wait_ms, int *done)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {{"format", required_argument, NULL, OPT_FORMAT},
                                         {"wait", required_argument, NULL, OPT_WAIT},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    int rc = NAQ_EXIT_OK, ch;
    *done = 0;
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_FORMAT:
            if (format == NULL)
                rc = naq_cli_usage_error(cmd, "--format is not an option of this command");
            else
                rc = naq_cli_parse_format(cmd, optarg, 0, format);
            break;
        case OPT_WAIT:
            if (wait_ms == NULL)
                rc = naq_cli_usage_error(cmd, "--wait is not an option of this command");
            else if (naq_parse_duration_ms(optarg, wait_ms) != NAQ_OK)
                rc = naq_cli_usage_error(cmd,
                                         "--wait needs a number of seconds (or 500ms, 2m), "
                                         "got '%s'",
                                         optarg);
            break;
        case 'h':
            fputs(help, stdout);
            *done = 1;
            return NAQ_EXIT_OK;
        default:
            if (!naq_cli_common_option(common, ch, optarg))
                rc = naq_cli_try_help(cmd);
            break;
        }
    }
    return rc;
}

/* The operands: exactly n of them, the first a job id. */
static int operands(int argc, char **argv, int n, const char *what)
{
    const char *cmd = argv[0];
    if (argc - optind < n)
        return naq_cli_usage_error(cmd, "%s", what);
    if (argc - optind > n)
        return naq_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + n]);
    naq_status s = naq_id_validate("job id", argv[optind]);
    return s == NAQ_OK ? NAQ_EXIT_OK : naq_cli_fail(cmd, s);
}

static int result(int argc, char **argv)
{
    const char *cmd = argv[0];
    naq_cli_common common = {0};
    naq_cli_format format = NAQ_CLI_FORMAT_TABLE;
    int64_t wait_ms = 0;
    int done = 0;
    int rc = job_options(argc, argv, result_usage, &common, &format, &wait_ms, &done);
    if (rc != NAQ_EXIT_OK || done)
        return rc;
    if ((rc = operands(argc, argv, 1, "which job? give its id")) != NAQ_EXIT_OK)
        return rc;
    naq_client *client = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 0, &client)) != NAQ_EXIT_OK)
        return rc;
    char *json = NULL;
    naq_status s = naq_job_result(client, argv[optind], wait_ms, &json);
    if (s != NAQ_OK)
        rc = naq_cli_fail(cmd, s);
    else if (format == NAQ_CLI_FORMAT_JSON)
        printf("%s\n", json);
    else
        print_result(json);
    free(json);
    naq_client_destroy(client);
    return rc;
}

/* ---- cancel, priority, move ---- */

static int cancel(int argc, char **argv)
{
    const char *cmd = argv[0];
    naq_cli_common common = {0};
    int done = 0;
    int rc = job_options(argc, argv, cancel_usage, &common, NULL, NULL, &done);
    if (rc != NAQ_EXIT_OK || done)
        return rc;
    if ((rc = operands(argc, argv, 1, "which job? give its id")) != NAQ_EXIT_OK)
        return rc;
    const char *id = argv[optind];
    naq_client *client = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 1, &client)) != NAQ_EXIT_OK)
        return rc;
    naq_cancel_outcome how = NAQ_CANCEL_REQUESTED;
    naq_status s = naq_job_cancel(client, id, &how);
    if (s != NAQ_OK)
        rc = naq_cli_fail(cmd, s);
    else if (how == NAQ_CANCEL_DONE)
        printf("job %s cancelled; it will not run\n", id);
    else
        printf("cancel of job %s requested: the worker that takes it will not run it, or "
               "stops it if it runs\n",
               id);
    naq_client_destroy(client);
    return rc;
}

static int requeue(int argc, char **argv, int move)
{
    const char *cmd = argv[0];
    naq_cli_common common = {0};
    int done = 0;
    int rc =
        job_options(argc, argv, move ? move_usage : priority_usage, &common, NULL, NULL, &done);
    if (rc != NAQ_EXIT_OK || done)
        return rc;
    if ((rc = operands(argc, argv, 2,
                       move ? "give the job id and the queue to move it to"
                            : "give the job id and the priority (lowest, low, normal, high, "
                              "critical or 0-4)")) != NAQ_EXIT_OK)
        return rc;
    const char *id = argv[optind], *to = argv[optind + 1];
    int level = 0;
    naq_status s = move ? naq_id_validate("queue name", to) : naq_priority_parse(to, &level);
    if (s != NAQ_OK)
        return naq_cli_usage_error(cmd, "%s", naq_last_error());
    naq_client *client = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 1, &client)) != NAQ_EXIT_OK)
        return rc;
    s = move ? naq_job_move(client, id, to) : naq_job_set_priority(client, id, level);
    if (s != NAQ_OK)
        rc = naq_cli_fail(cmd, s);
    else if (move)
        printf("job %s is in queue %s\n", id, to);
    else
        printf("job %s has priority %s\n", id, naq_priority_name(level));
    naq_client_destroy(client);
    return rc;
}

static int extend_ttl(int argc, char **argv)
{
    const char *cmd = argv[0];
    naq_cli_common common = {0};
    int done = 0;
    int rc = job_options(argc, argv, extend_usage, &common, NULL, NULL, &done);
    if (rc != NAQ_EXIT_OK || done)
        return rc;
    if ((rc = operands(argc, argv, 2, "give the job id and how much longer (30s, 5m, 2h)")) !=
        NAQ_EXIT_OK)
        return rc;
    const char *id = argv[optind];
    int64_t ms = 0;
    if (naq_parse_duration_ms(argv[optind + 1], &ms) != NAQ_OK || ms <= 0)
        return naq_cli_usage_error(cmd,
                                   "bad DURATION '%s': give a positive duration such as "
                                   "30s, 5m or 2h",
                                   argv[optind + 1]);
    naq_client *client = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 1, &client)) != NAQ_EXIT_OK)
        return rc;
    naq_status s = naq_job_extend_ttl(client, id, ms);
    if (s != NAQ_OK)
        rc = naq_cli_fail(cmd, s);
    else
        printf("job %s has %s more before its TTL runs out\n", id, argv[optind + 1]);
    naq_client_destroy(client);
    return rc;
}

int naq_cmd_job(int argc, char **argv)
{
    static const struct {
        const char *name, *argv0;
        int (*run)(int, char **);
    } subs[] = {{"status", "naq job status", status},
                {"result", "naq job result", result},
                {"cancel", "naq job cancel", cancel},
                {"extend-ttl", "naq job extend-ttl", extend_ttl}};
    if (argc < 2)
        return naq_cli_usage_error(argv[0], "which subcommand? status, result, cancel, "
                                            "priority, move or extend-ttl");
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
    if (strcmp(argv[1], "priority") == 0 || strcmp(argv[1], "move") == 0) {
        int move = argv[1][0] == 'm';
        argv[1] = (char *)(move ? "naq job move" : "naq job priority");
        optind = 1;
        return requeue(argc - 1, argv + 1, move);
    }
    return naq_cli_usage_error(argv[0],
                               "unknown subcommand '%s': use status, result, cancel, priority, "
                               "move or extend-ttl",
                               argv[1]);
}
