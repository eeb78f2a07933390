/*
 * cmd_enqueue.c - `naq enqueue`: queue one job, or a batch from a JSONL
 * file, and print the id(s).
 *
 * stdout carries the job ids alone, one per line, so `id=$(naq enqueue
 * ...)` works; everything else goes to stderr. A command after `--`
 * becomes a job for the built-in "exec" handler with args {"argv": [...]}.
 * In a batch the flags are defaults that each line's fields override.
 */
#include "cli.h"
#include "core/jsonw.h"
#include "internal.h" /* naq__now, naq__mono_ms: the library's clocks */
#include "jobs/job_jsonl.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "naq/query.h"
#include "naq/schedule.h"

static const char usage[] =
    "usage: naq enqueue -q QUEUE -f FUNCTION [--args JSON] [OPTIONS]\n"
    "       naq enqueue -q QUEUE [OPTIONS] -- COMMAND [ARG...]\n"
    "       naq enqueue --batch FILE [OPTIONS]\n"
    "\n"
    "Queues a job and prints its id (alone, on stdout) once the server has\n"
    "stored it. With '-- COMMAND ARG...' the job runs that command through the\n"
    "built-in \"exec\" handler of `naq worker`.\n"
    "\n"
    "  -q, --queue QUEUE      queue to put the job on (required)\n"
    "  -f, --function NAME    handler that runs the job (a worker registers it)\n"
    "      --args JSON        arguments passed to the handler (default [])\n"
    "      --retries N        further attempts after a failure (default 0)\n"
    "      --retry-policy P   delay before each retry: fixed:5s, linear:1s[:CAP],\n"
    "                         exponential:1s[:CAP[:JITTER]] (default exponential:1s:5m),\n"
    "                         list:1s,5s,30s\n"
    "      --retry-on TYPES   retry only these error types (comma-separated)\n"
    "      --skip-on TYPES    never retry these error types\n"
    "      --timeout DURATION stop the job after this long (500ms, 30s, 5m, 2h)\n"
    "      --ttl DURATION     do not run the job if no worker started it this long\n"
    "                         after it was queued (event ttl_expired)\n"
    "      --depends-on IDS   run only after these jobs completed (repeatable or\n"
    "                         comma-separated); it waits, and is queued after the last\n"
    "      --run-on-dependency-failure\n"
    "                         run even when a dependency failed (default: cancel)\n"
    "      --unique-key KEY   while a job of this queue with this key is pending,\n"
    "                         print that job's id and enqueue nothing\n"
    "      --result-ttl DUR   keep the job's result this long (default 24h, at most\n"
    "                         7d)\n"
    "      --tag KEY=VALUE    a tag carried by the job and its events (repeatable)\n"
    "      --priority P       lowest, low, normal (default), high, critical or 0-4\n"
    "      --in DURATION      queue the job this long from now (30s, 5m, 2h); a\n"
    "                         running 'naq scheduler' releases it\n"
    "      --at TIME          queue the job at TIME: 2026-01-31T12:00:00Z, with an\n"
    "                         offset 2026-01-31T13:00:00+01:00, or @SECONDS since the\n"
    "                         epoch (a time that has passed queues it now)\n"
    "      --id JOB_ID        use this id: enqueueing the same id again within\n"
    "                         2 minutes stores the job once\n"
    "      --batch FILE       enqueue every job of FILE (JSONL, one job object per\n"
    "                         line; '-' = stdin) in one go; prints one line per job\n"
    "                         in input order: its id, or '-' when it was not enqueued\n"
    "  -h, --help             this help\n"
    "\n"
    "A batch line holds the fields of the job JSON (docs/protocol.md): queue,\n"
    "function, args, max_retries, timeout_ms, tags, priority (0-4 or a name),\n"
    "job_id, ttl_ms, depends_on, run_on_dependency_failure, unique_key,\n"
    "result_ttl_ms, retry (a policy text like \"fixed:5s\" or the JSON object),\n"
    "or \"argv\": [...] for an exec job. Flags given with --batch are defaults.\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq enqueue -q default -- sh -c 'echo hello'\n"
    "  id=$(naq enqueue -q emails -f send_email --args '{\"to\":\"a@b.c\"}' --retries 3)\n"
    "  naq enqueue -q reports --depends-on \"$a,$b\" -- ./merge-reports\n"
    "  naq enqueue -q sync --unique-key user-42 -- ./sync-user 42\n"
    "  naq enqueue -q reminders --in 15m -f send_reminder --args '{\"user\":42}'\n"
    "  naq enqueue --batch jobs.jsonl -q default > ids.txt\n"
    "\n"
    "exit codes: 0 queued (or a pending unique job found), 1 failure (server; in a\n"
    "batch: some jobs were not enqueued), 2 bad usage (nothing queued)\n";

enum {
    OPT_ARGS = NAQ_CLI_OPT_FIRST_FREE,
    OPT_RETRIES,
    OPT_RETRY_POLICY,
    OPT_RETRY_ON,
    OPT_SKIP_ON,
    OPT_TIMEOUT,
    OPT_TTL,
    OPT_DEPENDS_ON,
    OPT_RUN_ON_FAILURE,
    OPT_UNIQUE_KEY,
    OPT_RESULT_TTL,
    OPT_TAG,
    OPT_PRIORITY,
    OPT_ID,
    OPT_BATCH,
    OPT_IN,
    OPT_AT,
};

/* When a delayed job should be queued: --in or --at. */
typedef struct {
    int given;
    double run_at; /* seconds since the epoch */
    const char *flag;
} delay_opt;

static int parse_delay(const char *cmd, int ch, const char *text, delay_opt *d)
{
    const char *flag = ch == OPT_IN ? "--in" : "--at";
    if (d->given && strcmp(d->flag, flag) != 0)
        return naq_cli_usage_error(cmd, "give either --in or --at, not both");
    d->given = 1;
    d->flag = flag;
    int64_t ms = 0;
    if (ch == OPT_IN) {
        if (naq_parse_duration_ms(text, &ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--in: %s", naq_last_error());
        d->run_at = naq__now() + (double)ms / 1000.0;
        return NAQ_EXIT_OK;
    }
    /* A bare duration means "before now" to --since; here it would be
     * ambiguous, so point at --in instead of guessing. */
    if (naq_parse_duration_ms(text, &ms) == NAQ_OK)
        return naq_cli_usage_error(cmd, "--at takes a point in time; for a delay use --in %s",
                                   text);
    if (naq_parse_time(text, naq__now(), &d->run_at) != NAQ_OK)
        return naq_cli_usage_error(cmd, "--at: %s", naq_last_error());
    return NAQ_EXIT_OK;
}

/* Adds "KEY=VALUE" to the tags object. */
static int add_tag(const char *cmd, json_t *tags, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv)
        return naq_cli_usage_error(cmd, "--tag needs KEY=VALUE, got '%s'", kv);
    json_t *v = json_string(eq + 1);
    if (v == NULL || json_object_setn_new(tags, kv, (size_t)(eq - kv), v) != 0)
        return naq_cli_usage_error(cmd, "--tag '%s' is not valid UTF-8", kv);
    return NAQ_EXIT_OK;
}

/* {"argv": [cmd, arg, ...]} as compact JSON, heap; NULL on bad UTF-8. */
static char *exec_args(int argc, char **argv)
{
    json_t *list = json_array();
    for (int i = 0; i < argc; i++) {
        json_t *s = json_string(argv[i]);
        if (s == NULL) {
            json_decref(list);
            return NULL;
        }
        json_array_append_new(list, s);
    }
    json_t *o = json_pack("{s:o}", "argv", list);
    char *text = o ? naq__json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* The --depends-on values: heap copies, NULL-terminated. */
typedef struct {
    char **ids;
    size_t n;
} dep_list;

static void free_deps(dep_list *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->ids[i]);
    free(d->ids);
}

/* Appends "a,b,c" to the list. */
static int add_deps(const char *cmd, dep_list *d, const char *text)
{
    for (const char *p = text;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0)
            return naq_cli_usage_error(cmd, "--depends-on has an empty job id in '%s'", text);
        char **v = realloc(d->ids, (d->n + 2) * sizeof *v);
        if (v == NULL)
            return naq_cli_usage_error(cmd, "out of memory");
        d->ids = v;
        if ((d->ids[d->n] = strndup(p, len)) == NULL)
            return naq_cli_usage_error(cmd, "out of memory");
        d->ids[++d->n] = NULL;
        if (comma == NULL)
            return NAQ_EXIT_OK;
        p = comma + 1;
    }
}

/* ---------------------------------------------------------------- batch */

/* A batch read from its file: every line's job, decoded before anything
 * connects, so a bad line enqueues nothing even with no server. */
typedef struct {
    naq__jsonl_job *bjs; /* heap: each line's job (batch_clear) */
    naq_job_opts *jobs;  /* heap: their opts side by side, for naq_enqueue_batch */
    int *linenos;        /* heap: the line of each */
    size_t n, cap;
} batch;

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        naq__jsonl_job_clear(&b->bjs[i]);
    free(b->bjs);
    free(b->jobs);
    free(b->linenos);
    memset(b, 0, sizeof *b);
}

static int batch_grow(batch *b)
{
    size_t cap = b->cap ? b->cap * 2 : 64;
    naq__jsonl_job *b2 = realloc(b->bjs, cap * sizeof *b2);
    if (b2 != NULL)
        b->bjs = b2;
    naq_job_opts *j2 = b2 ? realloc(b->jobs, cap * sizeof *j2) : NULL;
    if (j2 != NULL)
        b->jobs = j2;
    int *l2 = j2 ? realloc(b->linenos, cap * sizeof *l2) : NULL;
    if (l2 == NULL)
        return -1;
    b->linenos = l2;
    b->cap = cap;
    return 0;
}

/* Reads and decodes every line of path ('-': stdin) over defaults; each
 * bad line is reported. An exit code. */
static int batch_read(const char *cmd, const char *path, const naq_job_opts *defaults, batch *b)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (in == NULL)
        return naq_cli_usage_error(cmd, "cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    int rc = NAQ_EXIT_OK, lineno = 0;
    ssize_t got;
    while ((got = getline(&line, &lcap, in)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r' || line[got - 1] == ' '))
            line[--got] = '\0';
        if (got == 0)
            continue;
        if (b->n == b->cap && batch_grow(b) != 0) {
            naq_cli_error("out of memory reading %s", path);
            rc = NAQ_EXIT_FAILURE;
            break;
        }
        b->linenos[b->n] = lineno;
        naq_status s = naq__jsonl_job_decode(line, (size_t)got, lineno, defaults, &b->bjs[b->n]);
        b->jobs[b->n] = b->bjs[b->n].opts;
        b->n++;
        if (s != NAQ_OK) {
            naq_cli_error("%s", naq_last_error());
            rc = NAQ_EXIT_USAGE;
        }
    }
    if (rc == NAQ_EXIT_OK && ferror(in)) {
        naq_cli_error("cannot read %s: %s", path, strerror(errno));
        rc = NAQ_EXIT_USAGE;
    }
    free(line);
    if (in != stdin)
        fclose(in);
    if (rc == NAQ_EXIT_USAGE)
        naq_cli_usage_error(cmd, "nothing was enqueued; fix the lines above");
    else if (rc == NAQ_EXIT_OK && b->n == 0)
        rc = naq_cli_usage_error(cmd, "%s holds no jobs", path);
    return rc;
}

static int batch_send(const char *cmd, naq_client *client, const batch *b)
{
    size_t n = b->n;
    int rc = NAQ_EXIT_OK;
    char(*ids)[NAQ_ID_SIZE] = calloc(n, sizeof *ids);
    naq_status *st = calloc(n, sizeof *st);
    if (ids == NULL || st == NULL) {
        naq_cli_error("out of memory");
        rc = NAQ_EXIT_FAILURE;
    } else {
        size_t done = 0;
        naq_status s = naq_enqueue_batch(client, b->jobs, n, ids, st, &done);
        if (s == NAQ_ERR_INVALID_ARG) {
            rc = naq_cli_fail(cmd, s);
        } else {
            for (size_t i = 0; i < n; i++) {
                printf("%s\n", st[i] == NAQ_OK ? ids[i] : "-");
                if (st[i] != NAQ_OK)
                    fprintf(stderr, "naq: line %d (job %s) was not enqueued: %s\n", b->linenos[i],
                            ids[i], naq_status_str(st[i]));
            }
            if (s != NAQ_OK) {
                rc = naq_cli_fail(cmd, s);
                fprintf(stderr,
                        "naq: %zu of %zu %s enqueued; enqueue the others again with "
                        "their ids (a job stored meanwhile is stored once)\n",
                        done, n, naq_cli_plural(n, "job", "jobs"));
            }
        }
    }
    free(ids);
    free(st);
    return rc;
}

/* ---------------------------------------------------------------- main */

/* The flags, and what they hold; freed by naq_cmd_enqueue. */
typedef struct {
    naq_job_opts jo;
    json_t *tags;    /* --tag KEY=VALUE, collected */
    char *tags_json; /* heap: tags as text, jo.tags_json */
    char *args_text; /* heap: {"argv": [...]} of '-- COMMAND', jo.args_json */
    const char *batch_path;
    batch b;
    dep_list deps;
    delay_opt delay;
} enqueue_args;

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    enqueue_args *a = x->args;
    naq_job_opts *jo = &a->jo;
    const char *cmd = x->cmd;
    long long n = 0;
    switch (ch) {
    case 'q': jo->queue = arg; break;
    case 'f': jo->function = arg; break;
    case OPT_ARGS: jo->args_json = arg; break;
    case OPT_RETRIES:
        if (!naq_cli_parse_int(cmd, "--retries", arg, 0, 1000000, &n))
            return NAQ_EXIT_USAGE;
        jo->max_retries = (int)n;
        break;
    case OPT_RETRY_POLICY:
        if (naq_retry_policy_parse(arg, &jo->retry) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--retry-policy: %s", naq_last_error());
        break;
    case OPT_RETRY_ON:
    case OPT_SKIP_ON:
        /* "" would mean "every type" for retry_on and "none" for
         * skip_on: as a flag it is a mistake either way. */
        if (arg[strspn(arg, " ,")] == '\0')
            return naq_cli_usage_error(cmd,
                                       "%s needs at least one error type, like Timeout "
                                       "or Timeout,ExitStatus",
                                       ch == OPT_RETRY_ON ? "--retry-on" : "--skip-on");
        if (ch == OPT_RETRY_ON) /* borrowed from argv, which is writable */
            jo->retry.retry_on = (char *)arg;
        else
            jo->retry.skip_on = (char *)arg;
        break;
    case OPT_TIMEOUT:
        if (naq_parse_duration_ms(arg, &jo->timeout_ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--timeout: %s", naq_last_error());
        break;
    case OPT_TTL:
        if (naq_parse_duration_ms(arg, &jo->ttl_ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--ttl: %s", naq_last_error());
        break;
    case OPT_RESULT_TTL:
        if (naq_parse_duration_ms(arg, &jo->result_ttl_ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "--result-ttl: %s", naq_last_error());
        break;
    case OPT_DEPENDS_ON: return add_deps(cmd, &a->deps, arg);
    case OPT_RUN_ON_FAILURE: jo->run_on_dependency_failure = 1; break;
    case OPT_UNIQUE_KEY: jo->unique_key = arg; break;
    case OPT_TAG: return add_tag(cmd, a->tags, arg);
    case OPT_PRIORITY:
        if (naq_priority_parse(arg, &jo->priority) != NAQ_OK)
            return naq_cli_usage_error(cmd, "%s", naq_last_error());
        break;
    case OPT_ID: jo->job_id = arg; break;
    case OPT_BATCH: a->batch_path = arg; break;
    case OPT_IN:
    case OPT_AT: return parse_delay(cmd, ch, arg, &a->delay);
    }
    return NAQ_EXIT_OK;
}

/* A single job: what it runs ('-- COMMAND' or -f), checked whole. */
static int check_single(naq_cli_ctx *x, enqueue_args *a)
{
    naq_job_opts *jo = &a->jo;
    const char *cmd = x->cmd;
    if (jo->queue == NULL)
        return naq_cli_usage_error(cmd, "which queue? give -q QUEUE");
    if (x->dashdash) {
        if (x->argc == 0)
            return naq_cli_usage_error(cmd, "nothing after '--': give the command to run");
        if (jo->function != NULL && strcmp(jo->function, NAQ_EXEC_FUNCTION) != 0)
            return naq_cli_usage_error(cmd, "give either -f FUNCTION or '-- COMMAND', not both");
        if (jo->args_json != NULL)
            return naq_cli_usage_error(cmd, "--args cannot be combined with '-- COMMAND' (the "
                                            "command line is the argument)");
        if ((a->args_text = exec_args(x->argc, x->argv)) == NULL)
            return naq_cli_usage_error(cmd, "the command line is not valid UTF-8");
        jo->function = NAQ_EXEC_FUNCTION;
        jo->args_json = a->args_text;
    } else if (jo->function == NULL) {
        return naq_cli_usage_error(cmd, "what should the job run? give -f FUNCTION or "
                                        "'-- COMMAND ARG...'");
    }
    /* Reject bad options before touching the network, so a typo is
     * reported as a typo even when no server runs. */
    naq_status s = naq_job_opts_validate(jo);
    if (s != NAQ_OK)
        return naq_cli_fail(cmd, s);
    if (a->delay.given && (jo->unique_key != NULL || jo->depends_on != NULL))
        return naq_cli_usage_error(cmd,
                                   "a delayed job (%s) cannot have --unique-key or "
                                   "--depends-on; enqueue it without a delay",
                                   a->delay.flag);
    return NAQ_EXIT_OK;
}

static int check(naq_cli_ctx *x)
{
    enqueue_args *a = x->args;
    naq_job_opts *jo = &a->jo;
    jo->depends_on = (const char *const *)a->deps.ids;
    if (json_object_size(a->tags) > 0) /* kept until the end: naq_enqueue borrows it */
        jo->tags_json = a->tags_json = naq__json_dumps(a->tags, JSON_COMPACT);
    if (x->argc > 0 && !x->dashdash)
        return naq_cli_usage_error(x->cmd,
                                   "unexpected argument '%s'; to run a command, put it after "
                                   "'--'",
                                   x->argv[0]);
    if (a->batch_path == NULL)
        return check_single(x, a);
    if (x->dashdash || jo->job_id != NULL || a->delay.given)
        return naq_cli_usage_error(x->cmd, "--batch takes its jobs from the file; '-- COMMAND', "
                                           "--id, --in and --at belong to single jobs");
    return batch_read(x->cmd, a->batch_path, jo, &a->b);
}

static int run(naq_cli_ctx *x)
{
    enqueue_args *a = x->args;
    const naq_job_opts *jo = &a->jo;
    if (a->batch_path != NULL)
        return batch_send(x->cmd, x->client, &a->b);
    char id[NAQ_ID_SIZE];
    int existing = 0;
    naq_status s = a->delay.given ? naq_enqueue_at(x->client, jo, a->delay.run_at, id)
                                  : naq_enqueue_ex(x->client, jo, id, &existing);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    printf("%s\n", id);
    if (a->delay.given && a->delay.run_at > naq__now()) {
        char when[40];
        naq_cli_format_time(a->delay.run_at, when, sizeof when);
        naq_cli_error("job %s waits until %s; a running 'naq scheduler' queues it then", id, when);
    }
    if (existing)
        naq_cli_error("job %s with unique key '%s' is still pending on queue %s; nothing was "
                      "enqueued",
                      id, jo->unique_key, jo->queue);
    return NAQ_EXIT_OK;
}

int naq_cmd_enqueue(int argc, char **argv)
{
    static const struct option opts[] = {
        {"queue", required_argument, NULL, 'q'},
        {"function", required_argument, NULL, 'f'},
        {"args", required_argument, NULL, OPT_ARGS},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"retry-policy", required_argument, NULL, OPT_RETRY_POLICY},
        {"retry-on", required_argument, NULL, OPT_RETRY_ON},
        {"skip-on", required_argument, NULL, OPT_SKIP_ON},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"depends-on", required_argument, NULL, OPT_DEPENDS_ON},
        {"run-on-dependency-failure", no_argument, NULL, OPT_RUN_ON_FAILURE},
        {"unique-key", required_argument, NULL, OPT_UNIQUE_KEY},
        {"result-ttl", required_argument, NULL, OPT_RESULT_TTL},
        {"tag", required_argument, NULL, OPT_TAG},
        {"priority", required_argument, NULL, OPT_PRIORITY},
        {"id", required_argument, NULL, OPT_ID},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"in", required_argument, NULL, OPT_IN},
        {"at", required_argument, NULL, OPT_AT},
        {NULL, 0, NULL, 0}};
    /* '+': stop at the first non-option, so a command's own flags after
     * `--` are never taken for ours. */
    static const naq_cli_command c = {
        usage, NULL, "+q:f:", opts, NAQ_CLI_CONNECT | NAQ_CLI_LOGS_EVENTS, option, check, run};
    enqueue_args a;
    memset(&a, 0, sizeof a);
    naq_job_opts_init(&a.jo);
    if ((a.tags = json_object()) == NULL) {
        naq_cli_error("out of memory");
        return NAQ_EXIT_FAILURE;
    }
    int rc = naq_cli_main(&c, &a, argc, argv);
    batch_clear(&a.b);
    free(a.tags_json);
    free(a.args_text);
    free_deps(&a.deps);
    json_decref(a.tags);
    return rc;
}
