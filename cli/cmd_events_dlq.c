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

enum { OPT_GROUP = NAQ_CLI_OPT_FIRST_FREE, OPT_TYPE, OPT_LIMIT, OPT_SEQ, OPT_ALL };

/* The flags of both actions (each table names the ones it takes). */
typedef struct {
    naq_event_dlq_filter f;
    long long seq;
    int all;
} dlq_args;

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    dlq_args *a = x->args;
    switch (ch) {
    case OPT_GROUP: a->f.group = arg; break;
    case OPT_TYPE: a->f.type = arg; break;
    case OPT_LIMIT: return naq_cli_parse_limit(x->cmd, arg, &a->f.limit);
    case OPT_SEQ:
        if (!naq_cli_parse_int(x->cmd, "--seq", arg, 1, INT64_MAX, &a->seq))
            return NAQ_EXIT_USAGE;
        break;
    case OPT_ALL: a->all = 1; break;
    }
    return NAQ_EXIT_OK;
}

/* Checks --group and --type before anything connects. */
static int check_filter(naq_cli_ctx *x)
{
    const naq_event_dlq_filter *f = &((dlq_args *)x->args)->f;
    naq_event_type t;
    int rc = naq_cli_no_operands(x);
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (f->type != NULL && naq_event_type_parse(f->type, &t) != NAQ_OK)
        return naq_cli_usage_error(x->cmd, "%s", naq_last_error());
    if (f->group != NULL && naq_id_validate("group name", f->group) != NAQ_OK)
        return naq_cli_usage_error(x->cmd, "%s", naq_last_error());
    return NAQ_EXIT_OK;
}

/* ---- list ---- */

static char *entry_json(const void *item, void *user)
{
    const naq_event_dlq_entry *e = item;
    (void)user;
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
    return naq_cli_json_line(o);
}

static const char *const headers[] = {"SEQ", "FAILED",     "GROUP", "TYPE",
                                      "JOB", "DELIVERIES", "REASON"};

static void entry_row(const void *item, void *user, const char **cells,
                      char (*buf)[NAQ_CLI_CELL_MAX])
{
    const naq_event_dlq_entry *e = item;
    (void)user;
    snprintf(buf[0], 24, "%llu", (unsigned long long)e->sequence);
    naq_cli_format_time(e->failed_at, buf[1], 40);
    snprintf(buf[5], 16, "%d", e->deliveries);
    cells[0] = buf[0];
    cells[1] = buf[1];
    cells[2] = e->group;
    cells[3] = e->event_decoded ? naq_event_type_name(e->event.type) : "?";
    cells[4] = e->event_decoded ? e->event.job_id : "-";
    cells[5] = buf[5];
    cells[6] = e->reason;
}

static const naq_cli_listing entries = {7, headers, "r", entry_row, entry_json, NULL};

static int list(naq_cli_ctx *x)
{
    naq_event_dlq_entries l;
    naq_status s = naq_event_dlq_list(x->client, &((dlq_args *)x->args)->f, &l);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    int rc = naq_cli_list_print(&entries, x->format, NULL, l.items, l.count, sizeof *l.items);
    if (rc == NAQ_EXIT_OK && l.count == 0 && x->format == NAQ_CLI_FORMAT_TABLE)
        fputs("no dead events\n", stderr);
    naq_event_dlq_entries_free(&l);
    return rc;
}

/* ---- replay ---- */

static int check_replay(naq_cli_ctx *x)
{
    const dlq_args *a = x->args;
    int rc = NAQ_EXIT_OK;
    if (x->argc > 0)
        rc = naq_cli_no_operands(x);
    else if (a->seq == 0 && a->f.group == NULL && !a->all)
        rc = naq_cli_usage_error(x->cmd, "which entries? give --seq N, --group G or --all");
    else if (a->all && (a->seq != 0 || a->f.group != NULL))
        rc = naq_cli_usage_error(x->cmd, "--all replays every entry: leave out --seq and --group");
    else if (a->seq != 0 && a->f.type != NULL)
        rc = naq_cli_usage_error(x->cmd,
                                 "--type selects entries of a group; with --seq leave it out");
    return rc == NAQ_EXIT_OK ? check_filter(x) : rc;
}

static int replay(naq_cli_ctx *x)
{
    const dlq_args *a = x->args;
    naq_status s = NAQ_OK;
    size_t n = 0;
    if (a->seq != 0 && a->f.group != NULL) {
        /* The entry must be the group's: look for it among the group's. */
        naq_event_dlq_entries l;
        s = naq_event_dlq_list(x->client, &a->f, &l);
        int found = 0;
        for (size_t i = 0; s == NAQ_OK && i < l.count; i++)
            found |= l.items[i].sequence == (uint64_t)a->seq;
        naq_event_dlq_entries_free(&l);
        if (s == NAQ_OK && !found) {
            naq_cli_error("no dead-letter entry %lld in group %s ('naq events dlq list --group "
                          "%s' shows them)",
                          a->seq, a->f.group, a->f.group);
            return NAQ_EXIT_FAILURE;
        }
    }
    if (s == NAQ_OK && a->seq != 0) {
        s = naq_event_dlq_replay(x->client, (uint64_t)a->seq);
        n = s == NAQ_OK;
    } else if (s == NAQ_OK) {
        s = naq_event_dlq_replay_all(x->client, &a->f, &n);
    }
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    printf("replayed %zu dead %s\n", n, naq_cli_plural(n, "event", "events"));
    return NAQ_EXIT_OK;
}

/* ---- dispatch ---- */

static int list_main(int argc, char **argv)
{
    static const struct option opts[] = {{"group", required_argument, NULL, OPT_GROUP},
                                         {"type", required_argument, NULL, OPT_TYPE},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        list_usage, NULL,         NULL, opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_FORMAT,
        option,     check_filter, list};
    dlq_args a = {{0}, 0, 0};
    return naq_cli_main(&c, &a, argc, argv);
}

static int replay_main(int argc, char **argv)
{
    static const struct option opts[] = {{"seq", required_argument, NULL, OPT_SEQ},
                                         {"group", required_argument, NULL, OPT_GROUP},
                                         {"type", required_argument, NULL, OPT_TYPE},
                                         {"all", no_argument, NULL, OPT_ALL},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {replay_usage,    NULL,   NULL,         opts,
                                      NAQ_CLI_CONNECT, option, check_replay, replay};
    dlq_args a = {{0}, 0, 0};
    return naq_cli_main(&c, &a, argc, argv);
}

int naq_cmd_events_dlq(int argc, char **argv)
{
    static const naq_cli_sub subs[] = {
        {"list", "naq events dlq list", list_main, NULL},
        {"replay", "naq events dlq replay", replay_main, NULL},
    };
    static const naq_cli_group group = {usage, "action", subs, sizeof subs / sizeof subs[0]};
    return naq_cli_dispatch(&group, argc, argv);
}
