/*
 * cmd_dlq.c - `naq dlq`: the dead-letter queue of jobs: list, show, retry,
 * purge. Each subcommand parses its flags into a naq_dlq_filter, calls
 * the library (naq/dlq.h) and prints the result.
 */
#include "cli.h"
#include "core/crypt.h"
#include "core/jsonw.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: naq dlq list  [--queue Q] [--error-type T] [--job ID] [--limit N] [--format F]\n"
    "       naq dlq show  (SEQ | --job ID) [--format table|json]\n"
    "       naq dlq retry (SEQ | --job ID | --queue Q | --error-type T | --all) [--limit N]\n"
    "       naq dlq purge (SEQ | --job ID | --queue Q | --error-type T | --all) [--limit N]\n"
    "\n"
    "Jobs that failed for good (their last attempt failed, or their error type may\n"
    "not be retried) are kept whole in the dead-letter stream, with their last\n"
    "error and the number of attempts.\n"
    "\n"
    "  list    the dead jobs, oldest first: sequence, time, job, queue, function,\n"
    "          attempts, error\n"
    "  show    one dead job, with the job as it was queued\n"
    "  retry   enqueue the matching dead jobs again, each as a new job\n"
    "          \"<id>-r<seq>\" linked to the dead one (original_job_id); logs\n"
    "          retry_scheduled on the dead job and enqueued on the new one,\n"
    "          and removes the entry; prints \"<dead id> <new id>\" per job\n"
    "  purge   delete the matching dead jobs for good\n"
    "\n"
    "      --queue Q          only jobs of this queue\n"
    "      --error-type T     only jobs whose last error has this type (exact)\n"
    "      --job ID           only this job\n"
    "      --limit N          at most N entries, oldest first (0 = no limit, the default)\n"
    "      --all              retry / purge: every entry (needed when no filter is given)\n"
    "      --format FORMAT    table (default) or json (one entry per line)\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq dlq list --queue emails --error-type Timeout\n"
    "  naq dlq retry --queue emails --error-type Timeout\n"
    "  naq dlq purge --all\n"
    "\n"
    "exit codes: 0 ok, 1 nothing matched (show, retry) or a failure, 2 bad usage\n";

enum {
    OPT_QUEUE = NAQ_CLI_OPT_FIRST_FREE,
    OPT_ERROR_TYPE,
    OPT_JOB,
    OPT_LIMIT,
    OPT_ALL,
};

/* Every subcommand takes the same flags and at most one operand. */
static const struct option opts[] = {{"queue", required_argument, NULL, OPT_QUEUE},
                                     {"error-type", required_argument, NULL, OPT_ERROR_TYPE},
                                     {"job", required_argument, NULL, OPT_JOB},
                                     {"limit", required_argument, NULL, OPT_LIMIT},
                                     {"all", no_argument, NULL, OPT_ALL},
                                     {NULL, 0, NULL, 0}};

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    naq_dlq_filter *f = x->args;
    switch (ch) {
    case OPT_QUEUE: f->queue = arg; break;
    case OPT_ERROR_TYPE: f->error_type = arg; break;
    case OPT_JOB: f->job_id = arg; break;
    case OPT_LIMIT: return naq_cli_parse_limit(x->cmd, arg, &f->limit);
    case OPT_ALL: f->all = 1; break;
    }
    return NAQ_EXIT_OK;
}

/* The operand (a sequence) and the ids, before anything connects. */
static int check(naq_cli_ctx *x)
{
    naq_dlq_filter *f = x->args;
    long long n = 0;
    if (x->argc > 0) {
        if (!naq_cli_parse_int(x->cmd, "the sequence", x->argv[0], 1, (long long)INT64_MAX, &n))
            return NAQ_EXIT_USAGE;
        f->seq = (uint64_t)n;
    }
    if (x->argc > 1)
        return naq_cli_usage_error(x->cmd, "unexpected argument '%s'", x->argv[1]);
    if ((f->queue && naq_id_validate("queue name", f->queue) != NAQ_OK) ||
        (f->job_id && naq_id_validate("job id", f->job_id) != NAQ_OK))
        return naq_cli_usage_error(x->cmd, "%s", naq_last_error());
    return NAQ_EXIT_OK;
}

static int check_one(naq_cli_ctx *x)
{
    const naq_dlq_filter *f = x->args;
    int rc = check(x);
    if (rc == NAQ_EXIT_OK && f->seq == 0 && f->job_id == NULL)
        rc = naq_cli_usage_error(x->cmd, "which dead job? give its sequence or --job ID");
    return rc;
}

static int check_some(naq_cli_ctx *x)
{
    const naq_dlq_filter *f = x->args;
    int rc = check(x);
    if (rc == NAQ_EXIT_OK && !f->all && f->seq == 0 && f->job_id == NULL && f->queue == NULL &&
        f->error_type == NULL)
        rc = naq_cli_usage_error(x->cmd, "which dead jobs? give a sequence, --job, --queue, "
                                         "--error-type, or --all for every one");
    return rc;
}

static void clean(const char *text, char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *p = text ? text : ""; *p && n + 1 < cap; p++)
        buf[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    buf[n] = '\0';
    if (text && strlen(text) >= cap && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

/* The stored entry plus its sequence; the entry as stored when it does
 * not parse. */
static char *entry_json(const void *item, void *user)
{
    const naq_dlq_entry *e = item;
    (void)user;
    json_t *o = json_loads(e->entry_json, 0, NULL);
    if (o == NULL)
        return strdup(e->entry_json);
    json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
    return naq_cli_json_line(o);
}

static const char *const headers[] = {"SEQ",      "FAILED_AT", "JOB",  "QUEUE",
                                      "FUNCTION", "ATTEMPTS",  "ERROR"};

static void entry_row(const void *item, void *user, const char **cells,
                      char (*buf)[NAQ_CLI_CELL_MAX])
{
    const naq_dlq_entry *e = item;
    char both[400];
    (void)user;
    snprintf(buf[0], 24, "%llu", (unsigned long long)e->seq);
    naq_cli_format_time(e->failed_at, buf[1], 40);
    snprintf(buf[5], 16, "%d", e->attempts);
    snprintf(both, sizeof both, "%s: %s", e->error_type, e->error_message);
    clean(both, buf[6], 200);
    cells[0] = buf[0];
    cells[1] = buf[1];
    cells[2] = e->job_id;
    cells[3] = e->queue;
    cells[4] = e->function;
    cells[5] = buf[5];
    cells[6] = buf[6];
}

static const naq_cli_listing entries = {7, headers, "r    r", entry_row, entry_json, NULL};

static int list(naq_cli_ctx *x)
{
    naq_dlq_entry_list l;
    naq_status s = naq_dlq_list(x->client, x->args, &l);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    int rc = naq_cli_list_print(&entries, x->format, NULL, l.items, l.count, sizeof *l.items);
    if (rc == NAQ_EXIT_OK && l.count == 0 && x->format == NAQ_CLI_FORMAT_TABLE)
        fprintf(stderr, "naq: no dead jobs match\n");
    naq_dlq_entry_list_free(&l);
    return rc;
}

static int show(naq_cli_ctx *x)
{
    const naq_dlq_filter *f = x->args;
    naq_dlq_entry e;
    naq_status s = naq_dlq_show(x->client, f->seq, f->job_id, &e);
    int rc = s == NAQ_OK ? NAQ_EXIT_OK : naq_cli_fail(x->cmd, s);
    if (rc == NAQ_EXIT_OK && x->format == NAQ_CLI_FORMAT_JSON) {
        char *line = entry_json(&e, NULL);
        printf("%s\n", line ? line : e.entry_json);
        free(line);
    } else if (rc == NAQ_EXIT_OK) {
        char when[40], err[2048];
        naq_cli_format_time(e.failed_at, when, sizeof when);
        printf("%-13s %llu\n%-13s %s\n%-13s %s\n%-13s %s\n%-13s %d\n%-13s %s\n", "seq",
               (unsigned long long)e.seq, "job", e.job_id, "queue", e.queue, "function", e.function,
               "attempts", e.attempts, "failed_at", when);
        clean(e.error_type, err, sizeof err);
        printf("%-13s %s\n", "error_type", err);
        clean(e.error_message, err, sizeof err);
        printf("%-13s %s\n", "error_message", err);
        json_t *job = json_loads(e.job_json, 0, NULL);
        if (job != NULL)
            naq__crypt_show_args(x->client->crypt, job);
        char *pretty = job ? naq__json_dumps(job, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;
        printf("job:\n%s\n", pretty ? pretty : e.job_json);
        free(pretty);
        json_decref(job);
    }
    naq_dlq_entry_clear(&e);
    return rc;
}

static int retry(naq_cli_ctx *x)
{
    naq_dlq_retried *done = NULL;
    size_t n = 0;
    naq_status s = naq_dlq_retry(x->client, x->args, &done, &n);
    for (size_t i = 0; i < n; i++)
        printf("%s %s\n", done[i].job_id, done[i].new_job_id);
    free(done);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    fprintf(stderr, "naq: %zu dead %s enqueued again\n", n, naq_cli_plural(n, "job", "jobs"));
    return NAQ_EXIT_OK;
}

static int purge(naq_cli_ctx *x)
{
    size_t n = 0;
    naq_status s = naq_dlq_purge(x->client, x->args, &n);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    printf("purged %zu dead %s\n", n, naq_cli_plural(n, "job", "jobs"));
    return NAQ_EXIT_OK;
}

#define DLQ_COMMAND(check_fn, run_fn, more_flags)                                                  \
    {                                                                                              \
        usage, NULL, NULL, opts, NAQ_CLI_CONNECT | (more_flags), option, check_fn, run_fn          \
    }

static const naq_cli_command list_cmd = DLQ_COMMAND(check, list, NAQ_CLI_TAKES_FORMAT);
static const naq_cli_command show_cmd = DLQ_COMMAND(check_one, show, NAQ_CLI_TAKES_FORMAT);
/* retry logs retry_scheduled and enqueued events. */
static const naq_cli_command retry_cmd = DLQ_COMMAND(check_some, retry, NAQ_CLI_LOGS_EVENTS);
static const naq_cli_command purge_cmd = DLQ_COMMAND(check_some, purge, 0);

static int run_sub(const naq_cli_command *c, int argc, char **argv)
{
    naq_dlq_filter f;
    memset(&f, 0, sizeof f);
    return naq_cli_main(c, &f, argc, argv);
}

static int list_main(int argc, char **argv)
{
    return run_sub(&list_cmd, argc, argv);
}
static int show_main(int argc, char **argv)
{
    return run_sub(&show_cmd, argc, argv);
}
static int retry_main(int argc, char **argv)
{
    return run_sub(&retry_cmd, argc, argv);
}
static int purge_main(int argc, char **argv)
{
    return run_sub(&purge_cmd, argc, argv);
}

int naq_cmd_dlq(int argc, char **argv)
{
    static const naq_cli_sub subs[] = {{"list", "naq dlq list", list_main, NULL},
                                       {"show", "naq dlq show", show_main, NULL},
                                       {"retry", "naq dlq retry", retry_main, NULL},
                                       {"purge", "naq dlq purge", purge_main, NULL}};
    static const naq_cli_group group = {usage, "subcommand", subs, sizeof subs / sizeof subs[0]};
    return naq_cli_dispatch(&group, argc, argv);
}
