/*
 * cmd_workers.c - `naq workers`: the live workers from the registry and,
 * with --show-inactive, the ones seen in the event log that are gone.
 * All the reading is naq_workers_list / naq_workers_seen (naq/registry.h);
 * this file only formats.
 */
#include "cli.h"

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

enum { OPT_SHOW_INACTIVE = NAQ_CLI_OPT_FIRST_FREE, OPT_SINCE, OPT_FORMAT };

#define NCOLS 11

static const char *const headers[NCOLS] = {"WORKER",    "STATUS", "HOST",          "PID",
                                           "QUEUES",    "CONC",   "ACTIVE",        "CURRENT JOBS",
                                           "PROCESSED", "FAILED", "LAST HEARTBEAT"};

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

static int add_row(naq_cli_table *t, const naq_worker_info *w, double now)
{
    char pid[24], queues[1024], conc[16], active[16], jobs[NAQ_ID_SIZE + 16], processed[24],
        failed[24], age[32], seen[64];
    snprintf(pid, sizeof pid, "%lld", (long long)w->pid);
    join(w->queues, queues, sizeof queues);
    snprintf(conc, sizeof conc, "%d", w->concurrency);
    snprintf(active, sizeof active, "%d", w->active_jobs);
    jobs[0] = '\0';
    if (w->current_job_ids != NULL && w->current_job_ids[0] != NULL) {
        if (w->active_jobs > 1)
            snprintf(jobs, sizeof jobs, "%s +%d", w->current_job_ids[0], w->active_jobs - 1);
        else
            snprintf(jobs, sizeof jobs, "%s", w->current_job_ids[0]);
    }
    snprintf(processed, sizeof processed, "%llu", (unsigned long long)w->processed);
    snprintf(failed, sizeof failed, "%llu", (unsigned long long)w->failed);
    if (w->live) {
        format_age(now - w->last_heartbeat, age, sizeof age);
        snprintf(seen, sizeof seen, "%s ago", age);
    } else {
        format_age(now - w->last_seen, age, sizeof age);
        snprintf(seen, sizeof seen, "gone, last seen %s ago", age);
    }
    const char *cells[NCOLS] = {w->worker_id, naq_worker_status_name(w->status),
                                w->hostname,  pid,
                                queues,       conc,
                                active,       jobs,
                                processed,    failed,
                                seen};
    return naq_cli_table_add(t, cells);
}

static int print_table(const naq_worker_info_list *lists[2])
{
    naq_cli_table t;
    naq_cli_table_init(&t, NCOLS, headers, NULL);
    double now = wall_now();
    int rc = NAQ_EXIT_OK;
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; lists[l] != NULL && i < lists[l]->count && rc == NAQ_EXIT_OK; i++)
            if (add_row(&t, &lists[l]->items[i], now) != 0)
                rc = NAQ_EXIT_FAILURE;
    if (rc == NAQ_EXIT_OK)
        naq_cli_table_print(&t, stdout);
    else
        naq_cli_error("out of memory formatting workers");
    naq_cli_table_free(&t);
    return rc;
}

static int print_json(const char *cmd, const naq_worker_info_list *lists[2])
{
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; lists[l] != NULL && i < lists[l]->count; i++) {
            char *json = NULL;
            naq_status s = naq_worker_info_encode(&lists[l]->items[i], &json, NULL);
            if (s != NAQ_OK)
                return naq_cli_fail(cmd, s);
            printf("%s\n", json);
            free(json);
        }
    }
    return NAQ_EXIT_OK;
}

int naq_cmd_workers(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {{"show-inactive", no_argument, NULL, OPT_SHOW_INACTIVE},
                                         {"since", required_argument, NULL, OPT_SINCE},
                                         {"format", required_argument, NULL, OPT_FORMAT},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    naq_cli_common common = {0};
    naq_cli_format format = NAQ_CLI_FORMAT_TABLE;
    int show_inactive = 0, since_given = 0, rc = NAQ_EXIT_OK, ch;
    double now = wall_now(), since = now - 24 * 3600.0;
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_SHOW_INACTIVE: show_inactive = 1; break;
        case OPT_SINCE:
            if (naq_parse_time(optarg, now, &since) != NAQ_OK)
                rc = naq_cli_usage_error(cmd, "--since: %s", naq_last_error());
            since_given = 1;
            break;
        case OPT_FORMAT: rc = naq_cli_parse_format(cmd, optarg, 0, &format); break;
        case 'h': fputs(usage, stdout); return NAQ_EXIT_OK;
        default:
            if (!naq_cli_common_option(&common, ch, optarg))
                rc = naq_cli_try_help(cmd);
            break;
        }
    }
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (optind < argc)
        return naq_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    /* Live workers come from the registry, which has no past. */
    if (since_given && !show_inactive)
        return naq_cli_usage_error(cmd, "--since says how far back --show-inactive looks; "
                                        "give --show-inactive too");

    naq_client *client = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 0, &client)) != NAQ_EXIT_OK)
        return rc;
    naq_worker_info_list live = {0}, gone = {0};
    naq_status s = naq_workers_list(client, &live);
    if (s == NAQ_OK && show_inactive)
        s = naq_workers_seen(client, (int64_t)(since * 1000.0), &gone);
    if (s != NAQ_OK) {
        rc = naq_cli_fail(cmd, s);
        goto out;
    }
    const naq_worker_info_list *lists[2] = {&live, show_inactive ? &gone : NULL};
    if (format == NAQ_CLI_FORMAT_JSON)
        rc = print_json(cmd, lists);
    else
        rc = print_table(lists);
    if (gone.omitted > 0)
        fprintf(stderr, "naq: %zu more gone %s not shown (only the %d seen last are)\n",
                gone.omitted, naq_cli_plural(gone.omitted, "worker", "workers"),
                NAQ_WORKERS_SEEN_MAX);
out:
    naq_worker_info_list_free(&live);
    naq_worker_info_list_free(&gone);
    naq_client_destroy(client);
    return rc;
}
