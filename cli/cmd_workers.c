/*
 * cmd_workers.c - `naq workers`: the live workers from the registry and,
 * with --show-inactive, the ones seen in the event log that are gone.
 * All the reading is naq_workers_list / naq_workers_seen (naq/registry.h);
 * this file only formats.
 */
#include "cli.h"
#include "internal.h" /* naq__now, naq__mono_ms: the library's clocks */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "naq/query.h"

static const char usage[] =
    "usage: naq workers [--show-inactive] [--since TIME] [--format table|json]\n"
    "\n"
    "Lists the running workers from the live registry: id, status, host, pid,\n"
    "queues, concurrency, running jobs, processed and failed counts and how long\n"
    "ago the last heartbeat was. A worker that is killed drops out within 3\n"
    "heartbeat intervals (NAQ_HEARTBEAT_INTERVAL, default 5s).\n"
    "\n"
    "      --show-inactive    also list workers seen in the event log that are gone\n"
    "                         (status 'stopped' after a clean stop, 'lost' when the\n"
    "                         worker died without saying), with when they were last seen\n"
    "      --since TIME       how far back --show-inactive looks (needs it): a duration\n"
    "                         before now (default 24h), an ISO-8601 time or @SECONDS\n"
    "      --format FORMAT    table (default) or json (one object per line)\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq workers\n"
    "  naq workers --show-inactive --since 7d --format json | jq -r .worker_id\n"
    "\n"
    "exit codes: 0 ok (also when no worker runs), 1 failure, 2 bad usage\n";

#define NCOLS 11

static const char *const headers[NCOLS] = {"WORKER",    "STATUS", "HOST",          "PID",
                                           "QUEUES",    "CONC",   "ACTIVE",        "CURRENT JOBS",
                                           "PROCESSED", "FAILED", "LAST HEARTBEAT"};

/* "4.2s", "59s", "3m05s", "2h07m", "3d04h". */
static void format_age(double secs, char *buf, size_t cap)
{
    if (secs < 0)
        secs = 0;
    long s = (long)secs;
    if (secs < 10)
        snprintf(buf, cap, "%.1fs", secs);
    else if (s < 60)
        snprintf(buf, cap, "%lds", s);
    else if (s < 3600)
        snprintf(buf, cap, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else
        snprintf(buf, cap, "%ldd%02ldh", s / 86400, (s % 86400) / 3600);
}

/* Joins a NULL-terminated list with ',' into buf, marking a cut with "...". */
static void join(char *const *v, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        int n = snprintf(buf + len, cap - len, "%s%s", i ? "," : "", v[i]);
        if (n < 0 || (size_t)n >= cap - len) {
            if (cap > 4)
                memcpy(buf + cap - 4, "...", 4);
            return;
        }
        len += (size_t)n;
    }
}

static void worker_row(const void *item, void *user, const char **cells,
                       char (*buf)[NAQ_CLI_CELL_MAX])
{
    const naq_worker_info *w = item;
    double now = *(const double *)user;
    char age[32];
    snprintf(buf[3], 24, "%lld", (long long)w->pid);
    join(w->queues, buf[4], 1024);
    snprintf(buf[5], 16, "%d", w->concurrency);
    snprintf(buf[6], 16, "%d", w->active_jobs);
    buf[7][0] = '\0';
    if (w->current_job_ids != NULL && w->current_job_ids[0] != NULL) {
        if (w->active_jobs > 1)
            snprintf(buf[7], NAQ_ID_SIZE + 16, "%s +%d", w->current_job_ids[0], w->active_jobs - 1);
        else
            snprintf(buf[7], NAQ_ID_SIZE + 16, "%s", w->current_job_ids[0]);
    }
    snprintf(buf[8], 24, "%llu", (unsigned long long)w->processed);
    snprintf(buf[9], 24, "%llu", (unsigned long long)w->failed);
    if (w->live) {
        format_age(now - w->last_heartbeat, age, sizeof age);
        snprintf(buf[10], 64, "%s ago", age);
    } else {
        format_age(now - w->last_seen, age, sizeof age);
        snprintf(buf[10], 64, "gone, last seen %s ago", age);
    }
    cells[0] = w->worker_id;
    cells[1] = naq_worker_status_name(w->status);
    cells[2] = w->hostname;
    for (int k = 3; k < NCOLS; k++)
        cells[k] = buf[k];
}

/* The registry's JSON of the worker (naq/registry.h). */
static char *worker_json(const void *item, void *user)
{
    char *json = NULL;
    (void)user;
    if (naq_worker_info_encode(item, &json, NULL) != NAQ_OK)
        naq_cli_error("%s", naq_last_error());
    return json;
}

static const naq_cli_listing workers = {NCOLS, headers, NULL, worker_row, worker_json, NULL};

enum { OPT_SHOW_INACTIVE = NAQ_CLI_OPT_FIRST_FREE, OPT_SINCE };

typedef struct {
    int show_inactive, since_given;
    double now, since; /* seconds since the epoch */
} workers_args;

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    workers_args *a = x->args;
    if (ch == OPT_SHOW_INACTIVE) {
        a->show_inactive = 1;
    } else if (ch == OPT_SINCE) {
        if (naq_parse_time(arg, a->now, &a->since) != NAQ_OK)
            return naq_cli_usage_error(x->cmd, "--since: %s", naq_last_error());
        a->since_given = 1;
    }
    return NAQ_EXIT_OK;
}

static int check(naq_cli_ctx *x)
{
    const workers_args *a = x->args;
    int rc = naq_cli_no_operands(x);
    /* Live workers come from the registry, which has no past. */
    if (rc == NAQ_EXIT_OK && a->since_given && !a->show_inactive)
        rc = naq_cli_usage_error(x->cmd, "--since says how far back --show-inactive looks; "
                                         "give --show-inactive too");
    return rc;
}

static int run(naq_cli_ctx *x)
{
    const workers_args *a = x->args;
    naq_worker_info_list live = {0}, gone = {0};
    naq_status s = naq_workers_list(x->client, &live);
    if (s == NAQ_OK && a->show_inactive)
        s = naq_workers_seen(x->client, (int64_t)(a->since * 1000.0), &gone);
    int rc = NAQ_EXIT_OK;
    if (s != NAQ_OK) {
        rc = naq_cli_fail(x->cmd, s);
    } else {
        /* One listing of both: the live, then the gone. */
        double now = naq__now();
        naq_cli_list p;
        naq_cli_list_begin(&p, &workers, x->format, &now);
        p.show_empty = 1; /* the header alone says no worker runs */
        for (size_t i = 0; i < live.count; i++)
            naq_cli_list_add(&p, &live.items[i]);
        for (size_t i = 0; i < gone.count; i++)
            naq_cli_list_add(&p, &gone.items[i]);
        rc = naq_cli_list_end(&p);
    }
    if (gone.omitted > 0)
        fprintf(stderr, "naq: %zu more gone %s not shown (only the %d seen last are)\n",
                gone.omitted, naq_cli_plural(gone.omitted, "worker", "workers"),
                NAQ_WORKERS_SEEN_MAX);
    naq_worker_info_list_free(&live);
    naq_worker_info_list_free(&gone);
    return rc;
}

int naq_cmd_workers(int argc, char **argv)
{
    static const struct option opts[] = {{"show-inactive", no_argument, NULL, OPT_SHOW_INACTIVE},
                                         {"since", required_argument, NULL, OPT_SINCE},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        usage, NULL, NULL, opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_FORMAT, option, check, run};
    workers_args a = {0, 0, naq__now(), 0};
    a.since = a.now - 24 * 3600.0;
    return naq_cli_main(&c, &a, argc, argv);
}
