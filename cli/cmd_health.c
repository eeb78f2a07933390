/*
 * cmd_health.c - `naq health`: can naq work right now? Prints the server,
 * the round trip and each stream's size; the exit code is the answer, so
 * it serves as a readiness probe.
 */
#include "cli.h"
#include "jsonw.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "naq/health.h"

static const char usage[] =
    "usage: naq health [--format table|json]\n"
    "\n"
    "Connects, then shows the server URL, the round trip time and, for the\n"
    "event, job and dead-letter streams: messages, bytes, first and last\n"
    "sequence and consumers. Healthy means connected and every stream present.\n"
    "\n"
    "      --format FORMAT    table (default) or json (one object)\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "example:\n"
    "  naq health --format json | jq .healthy\n"
    "\n"
    "exit codes: 0 healthy, 1 unhealthy or no server, 2 bad usage\n";

enum { OPT_FORMAT = NAQ_CLI_OPT_FIRST_FREE };

static const char *const roles[NAQ_HEALTH_STREAMS] = {
    [NAQ_HEALTH_EVENTS] = "events",
    [NAQ_HEALTH_JOBS] = "jobs",
    [NAQ_HEALTH_DLQ] = "dlq",
};

static void print_table(const naq_health_report *r)
{
    printf("server   %s", r->url);
    if (r->rtt_us >= 0)
        printf("  (rtt %.2f ms)", (double)r->rtt_us / 1000.0);
    printf("\n");
    if (strcmp(r->event_url, r->url) != 0)
        printf("events   %s\n", r->event_url);
    printf("\n%-7s %-20s %12s %14s %12s %12s %10s  %s\n", "ROLE", "STREAM", "MESSAGES", "BYTES",
           "FIRST_SEQ", "LAST_SEQ", "CONSUMERS", "STATUS");
    for (int i = 0; i < NAQ_HEALTH_STREAMS; i++) {
        const naq_stream_health *s = &r->streams[i];
        if (s->ok)
            printf("%-7s %-20s %12llu %14llu %12llu %12llu %10lld  ok\n", roles[i], s->name,
                   (unsigned long long)s->messages, (unsigned long long)s->bytes,
                   (unsigned long long)s->first_seq, (unsigned long long)s->last_seq,
                   (long long)s->consumers);
        else
            printf("%-7s %-20s %12s %14s %12s %12s %10s  %s\n", roles[i], s->name, "-", "-", "-",
                   "-", "-", s->error);
    }
    printf("\n%s\n", r->healthy     ? "healthy"
                     : r->connected ? "unhealthy: a stream is missing or not answering"
                                    : "unhealthy: not connected");
}

static int print_json(const naq_health_report *r)
{
    json_t *streams = json_array();
    for (int i = 0; i < NAQ_HEALTH_STREAMS; i++) {
        const naq_stream_health *s = &r->streams[i];
        json_t *o =
            json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I}", "role", roles[i], "name", s->name,
                      "ok", s->ok, "messages", (json_int_t)s->messages, "bytes",
                      (json_int_t)s->bytes, "first_seq", (json_int_t)s->first_seq, "last_seq",
                      (json_int_t)s->last_seq, "consumers", (json_int_t)s->consumers);
        if (o != NULL && !s->ok)
            json_object_set_new(o, "error", json_string(s->error));
        json_array_append_new(streams, o);
    }
    json_t *o = json_pack("{s:b, s:b, s:s, s:s, s:I, s:o}", "healthy", r->healthy, "connected",
                          r->connected, "url", r->url, "event_url", r->event_url, "rtt_us",
                          (json_int_t)r->rtt_us, "streams", streams);
    char *text = o ? naq__json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) {
        naq_cli_error("out of memory formatting the report");
        return NAQ_EXIT_FAILURE;
    }
    puts(text);
    free(text);
    return NAQ_EXIT_OK;
}

int naq_cmd_health(int argc, char **argv)
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

    naq_client *client = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 0, &client)) != NAQ_EXIT_OK)
        return rc;
    naq_health_report r;
    naq_status s = naq_health(client, &r);
    if (s != NAQ_OK) {
        rc = naq_cli_fail(cmd, s);
    } else {
        if (format == NAQ_CLI_FORMAT_JSON)
            rc = print_json(&r);
        else
            print_table(&r);
        if (rc == NAQ_EXIT_OK && !r.healthy)
            rc = NAQ_EXIT_FAILURE;
    }
    naq_client_destroy(client);
    return rc;
}
