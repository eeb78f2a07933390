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
    OPT_FORMAT,
};

typedef struct {
    const char *cmd; /* "naq dlq list", ... */
    naq_cli_common common;
    naq_dlq_filter f;
    naq_cli_format format;
} dlq_args;

/* Parses the flags and at most one operand (a sequence). */
static int parse(int argc, char **argv, dlq_args *a, int *help)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {{"queue", required_argument, NULL, OPT_QUEUE},
                                         {"error-type", required_argument, NULL, OPT_ERROR_TYPE},
                                         {"job", required_argument, NULL, OPT_JOB},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {"all", no_argument, NULL, OPT_ALL},
                                         {"format", required_argument, NULL, OPT_FORMAT},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->format = NAQ_CLI_FORMAT_TABLE;
    *help = 0;
    int rc = NAQ_EXIT_OK, ch;
    long long n = 0;
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_QUEUE: a->f.queue = optarg; break;
        case OPT_ERROR_TYPE: a->f.error_type = optarg; break;
        case OPT_JOB: a->f.job_id = optarg; break;
        case OPT_LIMIT: rc = naq_cli_parse_limit(cmd, optarg, &a->f.limit); break;
        case OPT_ALL: a->f.all = 1; break;
        case OPT_FORMAT: rc = naq_cli_parse_format(cmd, optarg, 0, &a->format); break;
        case 'h': *help = 1; return NAQ_EXIT_OK;
        default:
            if (!naq_cli_common_option(&a->common, ch, optarg))
                rc = naq_cli_try_help(cmd);
            break;
        }
    }
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (optind < argc) {
        if (!naq_cli_parse_int(cmd, "the sequence", argv[optind], 1, (long long)INT64_MAX, &n))
            return NAQ_EXIT_USAGE;
        a->f.seq = (uint64_t)n;
        optind++;
    }
    if (optind < argc)
        return naq_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if ((a->f.queue && naq_id_validate("queue name", a->f.queue) != NAQ_OK) ||
        (a->f.job_id && naq_id_validate("job id", a->f.job_id) != NAQ_OK))
        return naq_cli_usage_error(cmd, "%s", naq_last_error());
    return NAQ_EXIT_OK;
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

static void print_json(const naq_dlq_entry *e)
{
    json_t *o = json_loads(e->entry_json, 0, NULL);
    if (o != NULL)
        json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
    char *line = o ? naq__json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    printf("%s\n", line ? line : e->entry_json);
    free(line);
    json_decref(o);
}

static const char *const headers[] = {"SEQ",      "FAILED_AT", "JOB",  "QUEUE",
                                      "FUNCTION", "ATTEMPTS",  "ERROR"};

static int add_row(naq_cli_table *t, const naq_dlq_entry *e)
{
    char seq[24], when[40], attempts[16], err[200], both[400];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)e->seq);
    naq_cli_format_time(e->failed_at, when, sizeof when);
    snprintf(attempts, sizeof attempts, "%d", e->attempts);
    snprintf(both, sizeof both, "%s: %s", e->error_type, e->error_message);
    clean(both, err, sizeof err);
    const char *cells[] = {seq, when, e->job_id, e->queue, e->function, attempts, err};
    return naq_cli_table_add(t, cells);
}

static int list(naq_client *c, const dlq_args *a)
{
    naq_dlq_entry_list l;
    naq_status s = naq_dlq_list(c, &a->f, &l);
    int rc = s == NAQ_OK ? NAQ_EXIT_OK : naq_cli_fail(a->cmd, s);
    naq_cli_table t;
    naq_cli_table_init(&t, 7, headers, "r    r");
    for (size_t i = 0; rc == NAQ_EXIT_OK && i < l.count; i++) {
        if (a->format == NAQ_CLI_FORMAT_JSON)
            print_json(&l.items[i]);
        else if (add_row(&t, &l.items[i]) != 0)
            rc = NAQ_EXIT_FAILURE;
    }
    if (rc == NAQ_EXIT_OK && t.rows > 0)
        naq_cli_table_print(&t, stdout);
    naq_cli_table_free(&t);
    if (rc == NAQ_EXIT_OK && l.count == 0 && a->format == NAQ_CLI_FORMAT_TABLE)
        fprintf(stderr, "naq: no dead jobs match\n");
    naq_dlq_entry_list_free(&l);
    return rc;
}

static int show(naq_client *c, const dlq_args *a)
{
    naq_dlq_entry e;
    naq_status s = naq_dlq_show(c, a->f.seq, a->f.job_id, &e);
    int rc = s == NAQ_OK ? NAQ_EXIT_OK : naq_cli_fail(a->cmd, s);
    if (rc == NAQ_EXIT_OK && a->format == NAQ_CLI_FORMAT_JSON) {
        print_json(&e);
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
            naq__crypt_show_args(c->crypt, job);
        char *pretty = job ? naq__json_dumps(job, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;
        printf("job:\n%s\n", pretty ? pretty : e.job_json);
        free(pretty);
        json_decref(job);
    }
    naq_dlq_entry_clear(&e);
    return rc;
}

static int retry(naq_client *c, const dlq_args *a)
{
    naq_dlq_retried *done = NULL;
    size_t n = 0;
    naq_status s = naq_dlq_retry(c, &a->f, &done, &n);
    for (size_t i = 0; i < n; i++)
        printf("%s %s\n", done[i].job_id, done[i].new_job_id);
    free(done);
    if (s != NAQ_OK)
        return naq_cli_fail(a->cmd, s);
    fprintf(stderr, "naq: %zu dead %s enqueued again\n", n, naq_cli_plural(n, "job", "jobs"));
    return NAQ_EXIT_OK;
}

static int purge(naq_client *c, const dlq_args *a)
{
    size_t n = 0;
    naq_status s = naq_dlq_purge(c, &a->f, &n);
    if (s != NAQ_OK)
        return naq_cli_fail(a->cmd, s);
    printf("purged %zu dead %s\n", n, naq_cli_plural(n, "job", "jobs"));
    return NAQ_EXIT_OK;
}

int naq_cmd_dlq(int argc, char **argv)
{
    static const struct {
        const char *name, *argv0;
        int (*run)(naq_client *, const dlq_args *);
        int writes; /* logs events (retry) */
    } subs[] = {{"list", "naq dlq list", list, 0},
                {"show", "naq dlq show", show, 0},
                {"retry", "naq dlq retry", retry, 1},
                {"purge", "naq dlq purge", purge, 0}};
    if (argc < 2)
        return naq_cli_usage_error(argv[0], "which subcommand? list, show, retry or purge");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, stdout);
        return NAQ_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i].name) != 0)
            continue;
        argv[1] = (char *)subs[i].argv0;
        optind = 1;
        dlq_args a;
        int help = 0;
        int rc = parse(argc - 1, argv + 1, &a, &help);
        if (help) {
            fputs(usage, stdout);
            return NAQ_EXIT_OK;
        }
        if (rc != NAQ_EXIT_OK)
            return rc;
        if (subs[i].run == show && a.f.seq == 0 && a.f.job_id == NULL)
            return naq_cli_usage_error(argv[1], "which dead job? give its sequence or --job ID");
        if ((subs[i].run == retry || subs[i].run == purge) && !a.f.all && a.f.seq == 0 &&
            a.f.job_id == NULL && a.f.queue == NULL && a.f.error_type == NULL)
            return naq_cli_usage_error(argv[1], "which dead jobs? give a sequence, --job, --queue, "
                                                "--error-type, or --all for every one");
        naq_client *client = NULL;
        if ((rc = naq_cli_connect(a.cmd, &a.common, subs[i].writes, &client)) != NAQ_EXIT_OK)
            return rc;
        rc = subs[i].run(client, &a);
        naq_client_destroy(client);
        return rc;
    }
    return naq_cli_usage_error(argv[0], "unknown subcommand '%s': use list, show, retry or purge",
                               argv[1]);
}
