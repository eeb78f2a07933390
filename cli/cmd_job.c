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

enum { OPT_WAIT = NAQ_CLI_OPT_FIRST_FREE };

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

/* The operands: exactly n of them, the first a job id. */
static int job_operands(naq_cli_ctx *x, int n, const char *what)
{
    int rc = naq_cli_operands(x, n, what);
    naq_status s;
    if (rc == NAQ_EXIT_OK && (s = naq_id_validate("job id", x->argv[0])) != NAQ_OK)
        rc = naq_cli_fail(x->cmd, s);
    return rc;
}

static int check_one_job(naq_cli_ctx *x)
{
    return job_operands(x, 1, "which job? give its id");
}

static int status(naq_cli_ctx *x)
{
    naq_event last;
    naq_event_init(&last, NAQ_EVENT_ENQUEUED);
    int rc = NAQ_EXIT_OK;
    naq_status s = naq_job_last_event(x->client, x->argv[0], &last);
    if (s != NAQ_OK) {
        rc = naq_cli_fail(x->cmd, s);
    } else if (x->format == NAQ_CLI_FORMAT_TABLE) {
        print_status_line(&last);
    } else {
        naq_cli_printer p;
        naq_cli_printer_init(&p, x->format);
        if (naq_cli_print_event(&p, &last) != 0)
            rc = NAQ_EXIT_FAILURE;
    }
    naq_event_clear(&last);
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

static int wait_option(naq_cli_ctx *x, int ch, const char *arg)
{
    (void)ch; /* --wait, the only one */
    if (naq_parse_duration_ms(arg, x->args) != NAQ_OK)
        return naq_cli_usage_error(
            x->cmd, "--wait needs a number of seconds (or 500ms, 2m), got '%s'", arg);
    return NAQ_EXIT_OK;
}

static int result(naq_cli_ctx *x)
{
    const int64_t *wait_ms = x->args;
    char *json = NULL;
    naq_status s = naq_job_result(x->client, x->argv[0], *wait_ms, &json);
    int rc = s == NAQ_OK ? NAQ_EXIT_OK : naq_cli_fail(x->cmd, s);
    if (rc == NAQ_EXIT_OK && x->format == NAQ_CLI_FORMAT_JSON)
        printf("%s\n", json);
    else if (rc == NAQ_EXIT_OK)
        print_result(json);
    free(json);
    return rc;
}

/* ---- cancel, priority, move ---- */

static int cancel(naq_cli_ctx *x)
{
    const char *id = x->argv[0];
    naq_cancel_outcome how = NAQ_CANCEL_REQUESTED;
    naq_status s = naq_job_cancel(x->client, id, &how);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    if (how == NAQ_CANCEL_DONE)
        printf("job %s cancelled; it will not run\n", id);
    else
        printf("cancel of job %s requested: the worker that takes it will not run it, or "
               "stops it if it runs\n",
               id);
    return NAQ_EXIT_OK;
}

/* priority and move: the job and where it goes, checked before connecting. */
typedef struct {
    int move;  /* move, else priority */
    int level; /* priority: the new one */
} requeue_args;

static int check_requeue(naq_cli_ctx *x)
{
    requeue_args *a = x->args;
    int move = a->move;
    int rc = job_operands(x, 2,
                          move ? "give the job id and the queue to move it to"
                               : "give the job id and the priority (lowest, low, normal, high, "
                                 "critical or 0-4)");
    naq_status s = NAQ_OK;
    if (rc == NAQ_EXIT_OK)
        s = move ? naq_id_validate("queue name", x->argv[1])
                 : naq_priority_parse(x->argv[1], &a->level);
    if (rc == NAQ_EXIT_OK && s != NAQ_OK)
        rc = naq_cli_usage_error(x->cmd, "%s", naq_last_error());
    return rc;
}

static int requeue(naq_cli_ctx *x)
{
    const char *id = x->argv[0], *to = x->argv[1];
    const requeue_args *a = x->args;
    naq_status s =
        a->move ? naq_job_move(x->client, id, to) : naq_job_set_priority(x->client, id, a->level);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    if (a->move)
        printf("job %s is in queue %s\n", id, to);
    else
        printf("job %s has priority %s\n", id, naq_priority_name(a->level));
    return NAQ_EXIT_OK;
}

static int check_extend(naq_cli_ctx *x)
{
    int rc = job_operands(x, 2, "give the job id and how much longer (30s, 5m, 2h)");
    if (rc == NAQ_EXIT_OK &&
        (naq_parse_duration_ms(x->argv[1], x->args) != NAQ_OK || *(int64_t *)x->args <= 0))
        rc = naq_cli_usage_error(x->cmd,
                                 "bad DURATION '%s': give a positive duration such as "
                                 "30s, 5m or 2h",
                                 x->argv[1]);
    return rc;
}

static int extend_ttl(naq_cli_ctx *x)
{
    naq_status s = naq_job_extend_ttl(x->client, x->argv[0], *(const int64_t *)x->args);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    printf("job %s has %s more before its TTL runs out\n", x->argv[0], x->argv[1]);
    return NAQ_EXIT_OK;
}

/* ---- dispatch ---- */

static int status_main(int argc, char **argv)
{
    static const naq_cli_command c = {
        status_usage, NULL,          NULL,  NULL, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_RAW,
        NULL,         check_one_job, status};
    return naq_cli_main(&c, NULL, argc, argv);
}

static int result_main(int argc, char **argv)
{
    static const struct option opts[] = {{"wait", required_argument, NULL, OPT_WAIT},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        result_usage, NULL,          NULL,  opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_FORMAT,
        wait_option,  check_one_job, result};
    int64_t wait_ms = 0;
    return naq_cli_main(&c, &wait_ms, argc, argv);
}

static int cancel_main(int argc, char **argv)
{
    static const naq_cli_command c = {
        cancel_usage, NULL,          NULL,  NULL, NAQ_CLI_CONNECT | NAQ_CLI_LOGS_EVENTS,
        NULL,         check_one_job, cancel};
    return naq_cli_main(&c, NULL, argc, argv);
}

static int priority_main(int argc, char **argv)
{
    static const naq_cli_command c = {
        priority_usage, NULL,          NULL,   NULL, NAQ_CLI_CONNECT | NAQ_CLI_LOGS_EVENTS,
        NULL,           check_requeue, requeue};
    requeue_args a = {0, 0};
    return naq_cli_main(&c, &a, argc, argv);
}

static int move_main(int argc, char **argv)
{
    static const naq_cli_command c = {
        move_usage, NULL,          NULL,   NULL, NAQ_CLI_CONNECT | NAQ_CLI_LOGS_EVENTS,
        NULL,       check_requeue, requeue};
    requeue_args a = {1, 0};
    return naq_cli_main(&c, &a, argc, argv);
}

static int extend_main(int argc, char **argv)
{
    static const naq_cli_command c = {
        extend_usage, NULL,         NULL,      NULL, NAQ_CLI_CONNECT | NAQ_CLI_LOGS_EVENTS,
        NULL,         check_extend, extend_ttl};
    int64_t ms = 0;
    return naq_cli_main(&c, &ms, argc, argv);
}

int naq_cmd_job(int argc, char **argv)
{
    static const naq_cli_sub subs[] = {{"status", "naq job status", status_main, NULL},
                                       {"result", "naq job result", result_main, NULL},
                                       {"cancel", "naq job cancel", cancel_main, NULL},
                                       {"priority", "naq job priority", priority_main, NULL},
                                       {"move", "naq job move", move_main, NULL},
                                       {"extend-ttl", "naq job extend-ttl", extend_main, NULL}};
    static const naq_cli_group group = {usage, "subcommand", subs, sizeof subs / sizeof subs[0]};
    return naq_cli_dispatch(&group, argc, argv);
}
