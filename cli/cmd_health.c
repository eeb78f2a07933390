/*
 * cmd_health.c - `naq health`: can naq work right now, and is it keeping
 * up? Prints the server, the streams, then every check of naq/health.h
 * (lag, dead letters and their growth, stream use, rollup lag, workers,
 * the local spool) with ok / warning / critical; the exit code is the
 * answer, so it serves as a probe.
 *
 * DLQ growth needs the previous check's counts: they are kept in a small
 * state file (--state, NAQ_HEALTH_STATE, default
 * $XDG_STATE_HOME/naq/health.json), one entry per server and prefix,
 * replaced atomically so concurrent checks never read half a file.
 */
#include "cli.h"
#include "core/jsonw.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "naq/health.h"
#include "naq/ops.h"

static void print_usage(FILE *out)
{
    fputs("usage: naq health [--format table|json] [--state FILE | --no-state] [THRESHOLDS]\n"
          "\n"
          "Connects, shows the server, the round trip and the event, job and\n"
          "dead-letter streams, then checks, each ok, warning or critical:\n"
          "  connection  connected to the server(s)\n"
          "  stream      every stream present; use of its message or byte limit\n"
          "  lag         every job queue's consumer and every consumer group:\n"
          "              pending + unacknowledged messages\n"
          "  dlq         dead jobs per queue, and growth since the last check\n"
          "  event_dlq   dead events per consumer group, and growth\n"
          "  rollup      events not yet folded into the stats rollups\n"
          "  workers     live workers (critical when jobs wait and none runs)\n"
          "  spool       events waiting in this machine's logger spool\n"
          "\n"
          "      --format FORMAT    table (default) or json (one object)\n"
          "      --state FILE       where the last check's DLQ counts are kept\n"
          "                         (NAQ_HEALTH_STATE, default\n"
          "                         $XDG_STATE_HOME/naq/health.json)\n"
          "      --no-state         neither read nor write it (no growth figures)\n"
          "  -h, --help             this help\n"
          "\n"
          "thresholds (a figure above the warning value warns, above the critical\n"
          "value is critical; flag, then environment variable, then default):\n",
          out);
    for (int k = 0; k < NAQ_HEALTH_THRESHOLD_COUNT; k++) {
        naq_health_thresholds d;
        naq_health_thresholds_init(&d);
        fprintf(out, "      --%-16s N  %s (%s, default %llu)\n", naq_health_threshold_flag(k),
                naq_health_threshold_help(k), naq_health_threshold_env(k),
                (unsigned long long)d.v[k]);
    }
    fputs("\n" NAQ_CLI_COMMON_USAGE "\n"
          "example:\n"
          "  naq health --lag-warning 500 --format json | jq '.checks[] | select(.status != "
          "\"ok\")'\n"
          "\n"
          "exit codes: 0 healthy (every check ok), 1 a warning or critical check, or\n"
          "no server, 2 bad usage\n",
          out);
}

enum {
    OPT_STATE = NAQ_CLI_OPT_FIRST_FREE,
    OPT_NO_STATE,
    OPT_THRESHOLD /* + naq_health_threshold: one option per threshold */
};

static const char *const roles[NAQ_HEALTH_STREAMS] = {
    [NAQ_HEALTH_EVENTS] = "events",
    [NAQ_HEALTH_JOBS] = "jobs",
    [NAQ_HEALTH_DLQ] = "dlq",
};

static const char *const stream_headers[] = {"ROLE",      "STREAM",   "MESSAGES",  "BYTES",
                                             "FIRST_SEQ", "LAST_SEQ", "CONSUMERS", "STATUS"};

/* A row of the streams table; the item is the stream's index. */
static void stream_row(const void *item, void *user, const char **cells,
                       char (*buf)[NAQ_CLI_CELL_MAX])
{
    int i = *(const int *)item;
    const naq_stream_health *s = &((const naq_health_report *)user)->streams[i];
    cells[0] = roles[i];
    cells[1] = s->name;
    if (!s->ok) {
        cells[7] = s->error; /* the figures show as "-" */
        return;
    }
    snprintf(buf[2], 24, "%llu", (unsigned long long)s->messages);
    snprintf(buf[3], 24, "%llu", (unsigned long long)s->bytes);
    snprintf(buf[4], 24, "%llu", (unsigned long long)s->first_seq);
    snprintf(buf[5], 24, "%llu", (unsigned long long)s->last_seq);
    snprintf(buf[6], 24, "%lld", (long long)s->consumers);
    for (int k = 2; k < 7; k++)
        cells[k] = buf[k];
    cells[7] = "ok";
}

static const naq_cli_listing streams_table = {8, stream_headers, "  rrrrr", stream_row, NULL, NULL};

static const char *const check_headers[] = {"CHECK", "SUBJECT", "STATUS", "DETAIL"};

static void check_row(const void *item, void *user, const char **cells,
                      char (*buf)[NAQ_CLI_CELL_MAX])
{
    const naq_health_item *it = item;
    (void)user;
    (void)buf;
    cells[0] = it->check;
    cells[1] = it->subject;
    cells[2] = naq_health_level_name(it->level);
    cells[3] = it->message;
}

static const naq_cli_listing checks_table = {4, check_headers, NULL, check_row, NULL, NULL};

static int print_table(const naq_health_report *r, const naq_health_checks *hc)
{
    static const int streams[NAQ_HEALTH_STREAMS] = {NAQ_HEALTH_EVENTS, NAQ_HEALTH_JOBS,
                                                    NAQ_HEALTH_DLQ};
    printf("server   %s", r->url);
    if (r->rtt_us >= 0)
        printf("  (rtt %.2f ms)", (double)r->rtt_us / 1000.0);
    printf("\n");
    if (strcmp(r->event_url, r->url) != 0)
        printf("events   %s\n", r->event_url);
    printf("\n");
    int rc = naq_cli_list_print(&streams_table, NAQ_CLI_FORMAT_TABLE, (void *)r, streams,
                                NAQ_HEALTH_STREAMS, sizeof streams[0]);
    printf("\n");
    size_t warnings = 0, critical = 0;
    for (size_t i = 0; i < hc->n; i++) {
        warnings += hc->items[i].level == NAQ_HEALTH_WARNING;
        critical += hc->items[i].level == NAQ_HEALTH_CRITICAL;
    }
    naq_cli_list p;
    naq_cli_list_begin(&p, &checks_table, NAQ_CLI_FORMAT_TABLE, NULL);
    p.show_empty = 1;
    for (size_t i = 0; i < hc->n; i++)
        naq_cli_list_add(&p, &hc->items[i]);
    if (naq_cli_list_end(&p) != NAQ_EXIT_OK)
        rc = NAQ_EXIT_FAILURE;
    if (hc->level == NAQ_HEALTH_OK)
        printf("\nhealthy\n");
    else
        printf("\n%s: %zu %s, %zu %s\n", naq_health_level_name(hc->level), critical,
               naq_cli_plural(critical, "critical check", "critical checks"), warnings,
               naq_cli_plural(warnings, "warning", "warnings"));
    return rc;
}

static json_t *checks_json(const naq_health_checks *hc)
{
    json_t *a = json_array();
    for (size_t i = 0; i < hc->n; i++) {
        const naq_health_item *it = &hc->items[i];
        json_t *o = json_pack("{s:s, s:s, s:f, s:s, s:s}", "check", it->check, "subject",
                              it->subject, "value", it->value, "status",
                              naq_health_level_name(it->level), "message", it->message);
        if (o != NULL && it->has_growth)
            json_object_set_new(o, "growth", json_integer((json_int_t)it->growth));
        json_array_append_new(a, o);
    }
    return a;
}

static int print_json(const naq_health_report *r, const naq_health_checks *hc)
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
    json_t *o =
        json_pack("{s:b, s:s, s:b, s:s, s:s, s:I, s:o, s:o}", "healthy", hc->level == NAQ_HEALTH_OK,
                  "status", naq_health_level_name(hc->level), "connected", r->connected, "url",
                  r->url, "event_url", r->event_url, "rtt_us", (json_int_t)r->rtt_us, "streams",
                  streams, "checks", checks_json(hc));
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

/* ---- the state file (DLQ counts of the last check) ---- */

static void default_state_path(char *buf, size_t cap)
{
    const char *env = getenv("NAQ_HEALTH_STATE");
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (env != NULL && env[0] != '\0')
        snprintf(buf, cap, "%s", env);
    else if (xdg != NULL && xdg[0] != '\0')
        snprintf(buf, cap, "%s/naq/health.json", xdg);
    else if (home != NULL && home[0] != '\0')
        snprintf(buf, cap, "%s/.local/state/naq/health.json", home);
    else
        buf[0] = '\0';
}

/* Counts from a JSON object {name: count}; heap array (free()). */
static naq_ops_count *counts_from(json_t *o, size_t *n)
{
    *n = 0;
    size_t size = json_object_size(o);
    naq_ops_count *v = size ? calloc(size, sizeof *v) : NULL;
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        if (v == NULL || !json_is_integer(val))
            continue;
        snprintf(v[*n].name, sizeof v[0].name, "%s", key);
        v[(*n)++].count = (uint64_t)json_integer_value(val);
    }
    return v;
}

static json_t *counts_to(const naq_ops_count *v, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, v[i].name, json_integer((json_int_t)v[i].count));
    return o;
}

/* Reads this server's entry: prev points into *root, which the caller
 * frees (json_decref) along with prev's arrays. */
static void state_read(const char *path, const char *key, json_t **root, naq_health_previous *prev,
                       naq_ops_count **dlq, naq_ops_count **edlq)
{
    memset(prev, 0, sizeof *prev);
    *dlq = *edlq = NULL;
    *root = json_load_file(path, 0, NULL);
    if (!json_is_object(*root)) {
        json_decref(*root);
        *root = json_object();
        return;
    }
    json_t *e = json_object_get(*root, key);
    if (!json_is_object(e))
        return;
    prev->known = 1;
    prev->at = json_number_value(json_object_get(e, "at"));
    prev->dlq = *dlq = counts_from(json_object_get(e, "dlq"), &prev->ndlq);
    prev->event_dlq = *edlq = counts_from(json_object_get(e, "event_dlq"), &prev->nevent_dlq);
}

static int make_parent(const char *path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

/* Writes this server's entry (a temp file renamed over the old one). A
 * failure only costs the next check its growth figures: say so, go on. */
static void state_write(const char *path, const char *key, json_t *root, const naq_ops *ops)
{
    json_object_set_new(root, key,
                        json_pack("{s:f, s:o, s:o}", "at", ops->read_at, "dlq",
                                  counts_to(ops->dlq, ops->ndlq), "event_dlq",
                                  counts_to(ops->event_dlq, ops->nevent_dlq)));
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    if (make_parent(path) != 0 || json_dump_file(root, tmp, JSON_COMPACT) != 0 ||
        rename(tmp, path) != 0) {
        fprintf(stderr,
                "naq health: cannot write %s (%s); DLQ growth will be unknown next time "
                "(set --state FILE or NAQ_HEALTH_STATE)\n",
                path, strerror(errno));
        unlink(tmp);
    }
}

/* ---- the command ---- */

typedef struct {
    naq_cli_format format;
    const char *state; /* NULL = default; "" = --no-state */
    naq_health_thresholds t;
    int given[NAQ_HEALTH_THRESHOLD_COUNT];
} health_args;

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    health_args *a = x->args;
    if (ch >= OPT_THRESHOLD && ch < OPT_THRESHOLD + NAQ_HEALTH_THRESHOLD_COUNT) {
        long long v = 0;
        char flag[40];
        snprintf(flag, sizeof flag, "--%s", naq_health_threshold_flag(ch - OPT_THRESHOLD));
        if (!naq_cli_parse_int(x->cmd, flag, arg, 0, (long long)1e15, &v))
            return NAQ_EXIT_USAGE;
        a->t.v[ch - OPT_THRESHOLD] = (uint64_t)v;
        a->given[ch - OPT_THRESHOLD] = 1;
    } else if (ch == OPT_STATE) {
        a->state = arg;
    } else if (ch == OPT_NO_STATE) {
        a->state = "";
    }
    return NAQ_EXIT_OK;
}

/* Environment under flags: flags were parsed into a copy first. */
static int check(naq_cli_ctx *x)
{
    health_args *a = x->args;
    int rc = naq_cli_no_operands(x);
    if (rc != NAQ_EXIT_OK)
        return rc;
    naq_health_thresholds env;
    naq_health_thresholds_init(&env);
    if (naq_health_thresholds_from_env(&env) != NAQ_OK)
        return naq_cli_usage_error(x->cmd, "%s", naq_last_error());
    for (int k = 0; k < NAQ_HEALTH_THRESHOLD_COUNT; k++)
        if (!a->given[k])
            a->t.v[k] = env.v[k];
    return NAQ_EXIT_OK;
}

static int run_checks(naq_cli_ctx *x)
{
    const char *cmd = x->cmd;
    naq_client *client = x->client;
    health_args *a = x->args;
    a->format = x->format;
    naq_health_report r;
    naq_ops ops;
    memset(&ops, 0, sizeof ops);
    naq_status s = naq_health(client, &r);
    if (s == NAQ_OK)
        s = naq_ops_read(client, &ops);
    if (s != NAQ_OK) {
        naq_ops_free(&ops);
        return naq_cli_fail(cmd, s);
    }
    char path[1024], key[NAQ_URL_MAX + NAQ_NAME_MAX + 2];
    if (a->state == NULL)
        default_state_path(path, sizeof path);
    else
        snprintf(path, sizeof path, "%s", a->state);
    snprintf(key, sizeof key, "%s|%s", r.url, naq_client_config(client)->subject_prefix);
    json_t *root = NULL;
    naq_health_previous prev;
    naq_ops_count *dlq = NULL, *edlq = NULL;
    memset(&prev, 0, sizeof prev);
    if (path[0] != '\0')
        state_read(path, key, &root, &prev, &dlq, &edlq);
    naq_health_checks hc;
    s = naq_health_evaluate(&r, &ops, &a->t, &prev, &hc);
    int rc = NAQ_EXIT_OK;
    if (s != NAQ_OK) {
        rc = naq_cli_fail(cmd, s);
    } else {
        if (a->format == NAQ_CLI_FORMAT_JSON)
            rc = print_json(&r, &hc);
        else
            rc = print_table(&r, &hc);
        if (path[0] != '\0' && r.connected)
            state_write(path, key, root, &ops);
        if (rc == NAQ_EXIT_OK && hc.level != NAQ_HEALTH_OK)
            rc = NAQ_EXIT_FAILURE;
    }
    naq_health_checks_free(&hc);
    free(dlq);
    free(edlq);
    json_decref(root);
    naq_ops_free(&ops);
    return rc;
}

int naq_cmd_health(int argc, char **argv)
{
    /* One option per threshold: the table is built from naq/health.h. */
    static struct option opts[NAQ_HEALTH_THRESHOLD_COUNT + 3];
    int n = 0;
    opts[n++] = (struct option){"state", required_argument, NULL, OPT_STATE};
    opts[n++] = (struct option){"no-state", no_argument, NULL, OPT_NO_STATE};
    for (int k = 0; k < NAQ_HEALTH_THRESHOLD_COUNT; k++)
        opts[n++] = (struct option){naq_health_threshold_flag(k), required_argument, NULL,
                                    OPT_THRESHOLD + k};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    static const naq_cli_command c = {
        NULL,   print_usage, NULL,      opts, NAQ_CLI_CONNECT | NAQ_CLI_TAKES_FORMAT,
        option, check,       run_checks};
    health_args a;
    memset(&a, 0, sizeof a);
    naq_health_thresholds_init(&a.t);
    return naq_cli_main(&c, &a, argc, argv);
}
