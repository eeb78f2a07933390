/*
 * cmd_events_dlq.c - `naq events dlq list|replay`: look at the events a
 * consumer group gave up on, and hand them back to the group.
 *
 * Thin over naq_event_dlq_list / naq_event_dlq_replay (event_dlq.c).
 * Replaying never writes the event log; docs/processors.md says why.
 */
#include "cli.h"
#include "core/jsonw.h"
#include "cmd_events_dlq.h"

#include "naq/processor.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: naq events dlq list [--group G] [--type TYPE] [--limit N] [--format table|json]\n"
    "       naq events dlq replay (--seq N | --group G [--type TYPE] | --all)\n"
    "\n"
    "  list     dead events of consumer groups, oldest first\n"
    "  replay   hand dead events back to their group, then delete the entries\n"
    "\n"
    "'naq events dlq ACTION --help' shows the options of one.\n"
    "exit codes: 0 ok, 1 failure (no such entry, no server), 2 bad usage\n";

static const char list_usage[] =
    "usage: naq events dlq list [--group G] [--type TYPE] [--limit N] [--format table|json]\n"
    "\n"
    "Lists the entries of the event dead-letter stream (NAQ_EVENT_DLQ): events\n"
    "whose handlers in a consumer group failed on every delivery.\n"
    "\n"
    "      --group G      entries of this group only\n"
    "      --type TYPE    entries whose event has this type\n"
    "      --limit N      at most N entries, the oldest (0 = no limit, the default)\n"
    "      --format F     table (default) or json (one object per line)\n"
    "  -h, --help         this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "table columns: SEQ (what replay --seq takes), FAILED (UTC), GROUP, TYPE,\n"
    "JOB, DELIVERIES, REASON. json objects hold sequence, group, reason,\n"
    "deliveries, original_subject, original_sequence, failed_at and event.\n"
    "\n"
    "example:\n"
    "  naq events dlq list --group billing --format json | jq -r .reason\n"
    "\n"
    "exit codes: 0 ok (also when nothing matched), 1 failure, 2 bad usage\n";

static const char replay_usage[] =
    "usage: naq events dlq replay (--seq N | --group G [--type TYPE] | --all)\n"
    "\n"
    "Hands dead events back to their consumer group: each event is published to\n"
    "the group's replay subject, which its members consume and handle like any\n"
    "event, and the entry is deleted. The event log is not written again.\n"
    "\n"
    "      --seq N        the entry with sequence N (from 'list'); with --group it\n"
    "                     must belong to that group\n"
    "      --group G      every entry of group G\n"
    "      --type TYPE    with --group or --all: only entries of this event type\n"
    "      --all          every entry of every group\n"
    "  -h, --help         this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq events dlq replay --seq 42\n"
    "  naq events dlq replay --group billing\n"
    "\n"
    "exit codes: 0 ok, 1 no such entry or no server, 2 bad usage\n";

enum { OPT_GROUP = NAQ_CLI_OPT_FIRST_FREE, OPT_TYPE, OPT_LIMIT, OPT_FORMAT, OPT_SEQ, OPT_ALL };

/* Checks --group and --type before anything connects. */
static int check_filter(const char *cmd, const naq_event_dlq_filter *f)
{
    naq_event_type t;
    if (f->type != NULL && naq_event_type_parse(f->type, &t) != NAQ_OK)
        return naq_cli_usage_error(cmd, "%s", naq_last_error());
    if (f->group != NULL && naq_id_validate("group name", f->group) != NAQ_OK)
        return naq_cli_usage_error(cmd, "%s", naq_last_error());
    return NAQ_EXIT_OK;
}

/* ---- list ---- */

static int print_json(const naq_event_dlq_entry *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "sequence", json_integer((json_int_t)e->sequence));
    json_object_set_new(o, "group", json_string(e->group));
    json_object_set_new(o, "reason", json_string(e->reason));
    json_object_set_new(o, "deliveries", json_integer(e->deliveries));
    json_object_set_new(o, "original_subject", json_string(e->original_subject));
    json_object_set_new(o, "original_sequence", json_integer((json_int_t)e->original_sequence));
    json_object_set_new(o, "failed_at", json_real(e->failed_at));
    json_t *ev = json_loads(e->event_json, 0, NULL);
    json_object_set_new(o, "event", ev ? ev : json_string(e->event_json));
    char *line = naq__json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (line == NULL) {
        naq_cli_error("out of memory");
        return -1;
    }
    int rc = printf("%s\n", line) < 0 ? -1 : 0;
    free(line);
    return rc;
}

static const char *const headers[] = {"SEQ", "FAILED",     "GROUP", "TYPE",
                                      "JOB", "DELIVERIES", "REASON"};

static int add_row(naq_cli_table *t, const naq_event_dlq_entry *e)
{
    char seq[24], when[40], deliveries[16];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)e->sequence);
    naq_cli_format_time(e->failed_at, when, sizeof when);
    snprintf(deliveries, sizeof deliveries, "%d", e->deliveries);
    const char *cells[] = {seq,
                           when,
                           e->group,
                           e->event_decoded ? naq_event_type_name(e->event.type) : "?",
                           e->event_decoded ? e->event.job_id : "-",
                           deliveries,
                           e->reason};
    return naq_cli_table_add(t, cells);
}

static int list(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {{"group", required_argument, NULL, OPT_GROUP},
                                         {"type", required_argument, NULL, OPT_TYPE},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {"format", required_argument, NULL, OPT_FORMAT},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    naq_cli_common common = {0};
    naq_cli_format format = NAQ_CLI_FORMAT_TABLE;
    naq_event_dlq_filter f = {0};
    size_t limit = 0;
    int rc = NAQ_EXIT_OK, ch;
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_GROUP: f.group = optarg; break;
        case OPT_TYPE: f.type = optarg; break;
        case OPT_LIMIT: rc = naq_cli_parse_limit(cmd, optarg, &limit); break;
        case OPT_FORMAT: rc = naq_cli_parse_format(cmd, optarg, 0, &format); break;
        case 'h': fputs(list_usage, stdout); return NAQ_EXIT_OK;
        default:
            if (!naq_cli_common_option(&common, ch, optarg))
                rc = naq_cli_try_help(cmd);
            break;
        }
    }
    if (rc == NAQ_EXIT_OK && optind < argc)
        rc = naq_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (rc == NAQ_EXIT_OK)
        rc = check_filter(cmd, &f);
    if (rc != NAQ_EXIT_OK)
        return rc;
    f.limit = limit;

    naq_client *client = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 0, &client)) != NAQ_EXIT_OK)
        return rc;
    naq_event_dlq_entries l;
    naq_status s = naq_event_dlq_list(client, &f, &l);
    if (s != NAQ_OK)
        rc = naq_cli_fail(cmd, s);
    naq_cli_table t;
    naq_cli_table_init(&t, 7, headers, "r");
    for (size_t i = 0; rc == NAQ_EXIT_OK && i < l.count; i++) {
        int out =
            format == NAQ_CLI_FORMAT_JSON ? print_json(&l.items[i]) : add_row(&t, &l.items[i]);
        if (out != 0)
            rc = NAQ_EXIT_FAILURE;
    }
    if (rc == NAQ_EXIT_OK && t.rows > 0)
        naq_cli_table_print(&t, stdout);
    naq_cli_table_free(&t);
    if (rc == NAQ_EXIT_OK && l.count == 0 && format == NAQ_CLI_FORMAT_TABLE)
        fputs("no dead events\n", stderr);
    naq_event_dlq_entries_free(&l);
    naq_client_destroy(client);
    return rc;
}

/* ---- replay ---- */

static int replay(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {{"seq", required_argument, NULL, OPT_SEQ},
                                         {"group", required_argument, NULL, OPT_GROUP},
                                         {"type", required_argument, NULL, OPT_TYPE},
                                         {"all", no_argument, NULL, OPT_ALL},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    naq_cli_common common = {0};
    naq_event_dlq_filter f = {0};
    long long seq = 0;
    int all = 0, rc = NAQ_EXIT_OK, ch;
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_SEQ:
            if (!naq_cli_parse_int(cmd, "--seq", optarg, 1, INT64_MAX, &seq))
                rc = NAQ_EXIT_USAGE;
            break;
        case OPT_GROUP: f.group = optarg; break;
        case OPT_TYPE: f.type = optarg; break;
        case OPT_ALL: all = 1; break;
        case 'h': fputs(replay_usage, stdout); return NAQ_EXIT_OK;
        default:
            if (!naq_cli_common_option(&common, ch, optarg))
                rc = naq_cli_try_help(cmd);
            break;
        }
    }
    if (rc == NAQ_EXIT_OK && optind < argc)
        rc = naq_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (rc == NAQ_EXIT_OK && seq == 0 && f.group == NULL && !all)
        rc = naq_cli_usage_error(cmd, "which entries? give --seq N, --group G or --all");
    if (rc == NAQ_EXIT_OK && all && (seq != 0 || f.group != NULL))
        rc = naq_cli_usage_error(cmd, "--all replays every entry: leave out --seq and --group");
    if (rc == NAQ_EXIT_OK && seq != 0 && f.type != NULL)
        rc = naq_cli_usage_error(cmd, "--type selects entries of a group; with --seq leave it out");
    if (rc == NAQ_EXIT_OK)
        rc = check_filter(cmd, &f);
    if (rc != NAQ_EXIT_OK)
        return rc;

    naq_client *client = NULL;
    if ((rc = naq_cli_connect(cmd, &common, 0, &client)) != NAQ_EXIT_OK)
        return rc;
    naq_status s = NAQ_OK;
    size_t n = 0;
    if (seq != 0 && f.group != NULL) {
        /* The entry must be the group's: look for it among the group's. */
        naq_event_dlq_entries l;
        s = naq_event_dlq_list(client, &f, &l);
        int found = 0;
        for (size_t i = 0; s == NAQ_OK && i < l.count; i++)
            found |= l.items[i].sequence == (uint64_t)seq;
        naq_event_dlq_entries_free(&l);
        if (s == NAQ_OK && !found) {
            naq_cli_error("no dead-letter entry %lld in group %s ('naq events dlq list --group "
                          "%s' shows them)",
                          seq, f.group, f.group);
            naq_client_destroy(client);
            return NAQ_EXIT_FAILURE;
        }
    }
    if (s == NAQ_OK && seq != 0) {
        s = naq_event_dlq_replay(client, (uint64_t)seq);
        n = s == NAQ_OK;
    } else if (s == NAQ_OK) {
        s = naq_event_dlq_replay_all(client, &f, &n);
    }
    if (s != NAQ_OK)
        rc = naq_cli_fail(cmd, s);
    else
        printf("replayed %zu dead %s\n", n, naq_cli_plural(n, "event", "events"));
    naq_client_destroy(client);
    return rc;
}

/* ---- dispatch ---- */

int naq_cmd_events_dlq(int argc, char **argv)
{
    static const struct {
        const char *name, *argv0;
        int (*run)(int, char **);
    } subs[] = {
        {"list", "naq events dlq list", list},
        {"replay", "naq events dlq replay", replay},
    };
    if (argc < 2)
        return naq_cli_usage_error(argv[0], "which action? list or replay");
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
    return naq_cli_usage_error(argv[0], "unknown action '%s': use list or replay", argv[1]);
}
