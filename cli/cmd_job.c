/*
 * cmd_job.c - `naq job status JOB_ID`: a job's state, which is the type of
 * its last event (one direct get; there is no separate status store).
 */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "usage: naq job status JOB_ID [--format table|json|raw]\n"
    "\n"
    "  status    the job's current state: the type of its last event\n"
    "            (enqueued, started, completed, failed, retry_scheduled, ...)\n"
    "\n"
    "'naq job status --help' shows its options.\n";

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

enum { OPT_FORMAT = NAQ_CLI_OPT_FIRST_FREE };

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
        return naq_cli_fail(s);

    naq_client *client = NULL;
    if ((rc = naq_cli_connect(&common, 0, &client)) != NAQ_EXIT_OK)
        return rc;
    naq_event last;
    naq_event_init(&last, NAQ_EVENT_ENQUEUED);
    s = naq_job_last_event(client, job_id, &last);
    if (s != NAQ_OK) {
        rc = naq_cli_fail(s);
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

int naq_cmd_job(int argc, char **argv)
{
    if (argc < 2)
        return naq_cli_usage_error(argv[0], "which subcommand? status");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, stdout);
        return NAQ_EXIT_OK;
    }
    if (strcmp(argv[1], "status") == 0) {
        argv[1] = (char *)"naq job status";
        optind = 1;
        return status(argc - 1, argv + 1);
    }
    return naq_cli_usage_error(argv[0], "unknown subcommand '%s': use status", argv[1]);
}
