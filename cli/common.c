/*
 * common.c - what every naq command shares: configuration from the
 * environment and the common flags, connecting, printing errors with the
 * exit-code convention, and the one event formatter (table / JSONL / raw).
 *
 * The formatter is the only place that turns an event into text, so every
 * listing (history, stream, status) looks the same and a format change is
 * made once.
 */
#include "cli.h"
#include "core/jsonw.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- configuration and connection ---- */

int naq_cli_common_option(naq_cli_common *o, int ch, const char *arg)
{
    switch (ch) {
    case NAQ_CLI_OPT_URL: o->url = arg; return 1;
    case NAQ_CLI_OPT_EVENT_URL: o->event_url = arg; return 1;
    case NAQ_CLI_OPT_PREFIX: o->prefix = arg; return 1;
    case NAQ_CLI_OPT_STREAM: o->stream = arg; return 1;
    default: return 0;
    }
}

static int set_flag(const char *cmd, const char *flag, const char *value, char *dst, size_t cap)
{
    if (value == NULL)
        return NAQ_EXIT_OK;
    if (value[0] == '\0' || strlen(value) >= cap)
        return naq_cli_usage_error(cmd, "%s needs a value of 1 to %zu characters", flag, cap - 1);
    memcpy(dst, value, strlen(value) + 1);
    return NAQ_EXIT_OK;
}

int naq_cli_config(const char *cmd, const naq_cli_common *o, naq_config *cfg)
{
    naq_config_init(cfg);
    if (naq_config_from_env(cfg) != NAQ_OK)
        return naq_cli_usage_error(cmd, "%s", naq_last_error());
    int rc;
    if ((rc = set_flag(cmd, "--url", o->url, cfg->url, sizeof cfg->url)) != 0 ||
        (rc = set_flag(cmd, "--event-url", o->event_url, cfg->event_url, sizeof cfg->event_url)) !=
            0 ||
        (rc = set_flag(cmd, "--prefix", o->prefix, cfg->subject_prefix,
                       sizeof cfg->subject_prefix)) != 0 ||
        (rc = set_flag(cmd, "--stream", o->stream, cfg->event_stream, sizeof cfg->event_stream)) !=
            0)
        return rc;
    if ((o->url != NULL && naq_url_validate("--url", o->url) != NAQ_OK) ||
        (o->event_url != NULL && naq_url_validate("--event-url", o->event_url) != NAQ_OK))
        return naq_cli_usage_error(cmd, "%s", naq_last_error());
    return NAQ_EXIT_OK;
}

int naq_cli_connect(const char *cmd, const naq_cli_common *o, int publishes_events,
                    naq_client **out)
{
    *out = NULL;
    naq_config cfg;
    int rc = naq_cli_config(cmd, o, &cfg);
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (!publishes_events)
        cfg.disable_logging = 1;
    naq_status s = naq_client_connect(&cfg, out);
    if (s != NAQ_OK)
        return naq_cli_fail(cmd, s);
    return NAQ_EXIT_OK;
}

/* ---- errors ---- */

void naq_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("naq: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* The threshold is NAQ_LOG_LEVEL's (default info). A malformed value is
 * reported when the command loads its config; until then, info. */
static naq_log_level log_threshold = NAQ_LOG_INFO;

static void print_log(naq_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level >= log_threshold)
        fprintf(stderr, "%s\n", msg); /* messages name their speaker */
}

void naq_cli_log_to_stderr(void)
{
    const char *lvl = getenv("NAQ_LOG_LEVEL");
    naq_log_level parsed;
    if (lvl != NULL && *lvl != '\0' && naq_parse_log_level(lvl, &parsed) == NAQ_OK)
        log_threshold = parsed;
    naq_log_set_handler(print_log, NULL);
}

int naq_cli_fail(const char *cmd, naq_status s)
{
    const char *msg = naq_last_error();
    if (msg[0] == '\0')
        msg = naq_status_str(s);
    /* The library says NAQ_ERR_INVALID_ARG when what it was given is
     * malformed: that came from the user, so it is a usage error. */
    if (s == NAQ_ERR_INVALID_ARG)
        return naq_cli_usage_error(cmd, "%s", msg);
    naq_cli_error("%s", msg);
    return NAQ_EXIT_FAILURE;
}

int naq_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return naq_cli_try_help(cmd);
}

int naq_cli_try_help(const char *cmd)
{
    fprintf(stderr, "try '%s --help'\n", cmd);
    return NAQ_EXIT_USAGE;
}

int naq_cli_parse_int(const char *cmd, const char *flag, const char *text, long long min,
                      long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        naq_cli_usage_error(cmd, "%s needs a whole number from %lld to %lld, got '%s'", flag, min,
                            max, text);
        return 0;
    }
    *out = v;
    return 1;
}

int naq_cli_parse_prefetch(const char *cmd, const char *text, int *out)
{
    if (strcmp(text, "auto") == 0) {
        *out = NAQ_PREFETCH_AUTO;
        return 1;
    }
    long long n = 0;
    if (!naq_cli_parse_int(cmd, "--prefetch (or 'auto')", text, 0, 1024, &n))
        return 0;
    *out = (int)n;
    return 1;
}

const char *naq_cli_plural(unsigned long long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

int naq_cli_parse_limit(const char *cmd, const char *text, size_t *out)
{
    long long n = 0;
    if (!naq_cli_parse_int(cmd, "--limit", text, 0, INT64_MAX, &n))
        return NAQ_EXIT_USAGE;
    *out = (size_t)n;
    return NAQ_EXIT_OK;
}

/* ---- tables ---- */

void naq_cli_table_init(naq_cli_table *t, int ncols, const char *const *titles, const char *align)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->headers = titles;
    t->align = align;
}

int naq_cli_table_add(naq_cli_table *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **v = realloc(t->cells, cap * (size_t)t->ncols * sizeof *v);
        if (v == NULL)
            return -1;
        t->cells = v;
        t->cap = cap;
    }
    char **row = t->cells + t->rows * (size_t)t->ncols;
    for (int k = 0; k < t->ncols; k++) {
        const char *text = cells[k] != NULL && cells[k][0] != '\0' ? cells[k] : "-";
        if ((row[k] = strdup(text)) == NULL) {
            while (k-- > 0)
                free(row[k]);
            return -1;
        }
        /* One row, one line. */
        for (char *c = row[k]; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = ' ';
    }
    t->rows++;
    return 0;
}

static void table_line(const naq_cli_table *t, const char *const *cells, const size_t *width,
                       FILE *out)
{
    size_t nalign = t->align != NULL ? strlen(t->align) : 0; /* may be shorter than ncols */
    for (int k = 0; k < t->ncols; k++) {
        int right = (size_t)k < nalign && t->align[k] == 'r';
        int last = k == t->ncols - 1;
        if (right)
            fprintf(out, "%*s", (int)width[k], cells[k]);
        else if (last)
            fputs(cells[k], out);
        else
            fprintf(out, "%-*s", (int)width[k], cells[k]);
        fputs(last ? "\n" : "  ", out);
    }
}

void naq_cli_table_print(const naq_cli_table *t, FILE *out)
{
    size_t width[NAQ_CLI_TABLE_MAX_COLS] = {0};
    for (int k = 0; k < t->ncols && k < NAQ_CLI_TABLE_MAX_COLS; k++) {
        width[k] = strlen(t->headers[k]);
        for (size_t r = 0; r < t->rows; r++) {
            size_t n = strlen(t->cells[r * (size_t)t->ncols + (size_t)k]);
            if (n > width[k])
                width[k] = n;
        }
    }
    table_line(t, t->headers, width, out);
    for (size_t r = 0; r < t->rows; r++)
        table_line(t, (const char *const *)t->cells + r * (size_t)t->ncols, width, out);
}

void naq_cli_table_free(naq_cli_table *t)
{
    for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* ---- the event formatter ---- */

int naq_cli_parse_format(const char *cmd, const char *text, int allow_raw, naq_cli_format *out)
{
    if (strcmp(text, "table") == 0)
        *out = NAQ_CLI_FORMAT_TABLE;
    else if (strcmp(text, "json") == 0)
        *out = NAQ_CLI_FORMAT_JSON;
    else if (allow_raw && strcmp(text, "raw") == 0)
        *out = NAQ_CLI_FORMAT_RAW;
    else
        return naq_cli_usage_error(cmd, "unknown format '%s': use table, json%s", text,
                                   allow_raw ? " or raw" : "");
    return NAQ_EXIT_OK;
}

void naq_cli_printer_init(naq_cli_printer *p, naq_cli_format format)
{
    memset(p, 0, sizeof *p);
    p->format = format;
    p->out = stdout;
}

void naq_cli_format_time_ms(int64_t ms, char *buf, size_t cap)
{
    if (ms <= 0) {
        snprintf(buf, cap, "-");
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    unsigned frac = (unsigned)(ms % 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03uZ", base, frac % 1000u);
}

/* Rounds to the nearest millisecond, once: a time stored in whole
 * milliseconds (schedules) and handed over as seconds comes back exactly,
 * where truncating turned 1.609 (1.60899999...) into .608. */
void naq_cli_format_time(double ts, char *buf, size_t cap)
{
    naq_cli_format_time_ms(ts > 0 ? (int64_t)llround(ts * 1000.0) : 0, buf, cap);
}

/* Appends text to buf (of cap bytes, holding len), turning control
 * characters into spaces so one event stays on one line. Sets *cut when
 * the text did not fit. */
static size_t append_clean(char *buf, size_t cap, size_t len, const char *text, int *cut)
{
    const char *p = text;
    for (; p != NULL && *p != '\0' && len + 1 < cap; p++)
        buf[len++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? ' ' : *p;
    buf[len] = '\0';
    if (p != NULL && *p != '\0')
        *cut = 1;
    return len;
}

void naq_cli_event_detail(const naq_event *e, char *buf, size_t cap)
{
    size_t len = 0;
    int cut = 0;
    buf[0] = '\0';
    if ((e->error_type && *e->error_type) || (e->error_message && *e->error_message)) {
        len = append_clean(buf, cap, len, e->error_type ? e->error_type : "error", &cut);
        len = append_clean(buf, cap, len, ": ", &cut);
        len = append_clean(buf, cap, len, e->error_message ? e->error_message : "", &cut);
    } else {
        if (e->duration_ms >= 0) {
            char d[48];
            snprintf(d, sizeof d, "%.1f ms", e->duration_ms);
            len = append_clean(buf, cap, len, d, &cut);
        }
        if (e->message && *e->message) {
            if (len > 0)
                len = append_clean(buf, cap, len, "  ", &cut);
            len = append_clean(buf, cap, len, e->message, &cut);
        }
    }
    /* Mark a cut so nobody mistakes it for the whole message. */
    if (cut && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

static const char *const event_headers[] = {"TIME",   "TYPE",    "JOB",   "QUEUE",
                                            "WORKER", "ATTEMPT", "DETAIL"};
#define EVENT_COLS 7

/* The cells of an event's table row, in bufs the caller owns. */
static void event_cells(const naq_event *e, char when[40], char attempt[16], char detail[160],
                        const char *cells[EVENT_COLS])
{
    naq_cli_format_time(e->timestamp, when, 40);
    if (e->attempt > 0)
        snprintf(attempt, 16, "%d", e->attempt);
    else
        snprintf(attempt, 16, "-");
    naq_cli_event_detail(e, detail, 160);
    cells[0] = when;
    cells[1] = naq_event_type_name(e->type);
    cells[2] = or_dash(e->job_id);
    cells[3] = or_dash(e->queue_name);
    cells[4] = or_dash(e->worker_id);
    cells[5] = attempt;
    cells[6] = or_dash(detail);
}

/* A live row: the columns cannot know the rows to come, so they have fixed
 * widths, and a longer value widens the rest of the row only. */
static void print_table_row(naq_cli_printer *p, const naq_event *e)
{
    if (p->rows == 0)
        fprintf(p->out, "%-24s  %-24s  %-32s  %-12s  %-20s  %-7s  %s\n", "TIME", "TYPE", "JOB",
                "QUEUE", "WORKER", "ATTEMPT", "DETAIL");
    char when[40], attempt[16], detail[160];
    const char *c[EVENT_COLS];
    event_cells(e, when, attempt, detail, c);
    fprintf(p->out, "%-24s  %-24s  %-32s  %-12s  %-20s  %-7s  %s\n", c[0], c[1], c[2], c[3], c[4],
            c[5], c[6]);
}

/* JSONL: the wire JSON plus where the event is stored (nats_subject,
 * nats_sequence), so a line can be matched with the stream itself. */
static int print_json(naq_cli_printer *p, const naq_event *e, const char *wire, size_t len)
{
    json_error_t err;
    json_t *o = json_loadb(wire, len, 0, &err);
    if (o == NULL) {
        naq_cli_error("cannot re-read an encoded event: %s", err.text);
        return -1;
    }
    if (e->nats_subject[0] != '\0')
        json_object_set_new(o, "nats_subject", json_string(e->nats_subject));
    if (e->nats_sequence > 0)
        json_object_set_new(o, "nats_sequence", json_integer((json_int_t)e->nats_sequence));
    char *line = naq__json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (line == NULL) {
        naq_cli_error("out of memory formatting an event");
        return -1;
    }
    fputs(line, p->out);
    fputc('\n', p->out);
    free(line);
    return 0;
}

int naq_cli_print_events(naq_cli_printer *p, const naq_event *events, size_t n)
{
    if (p->format != NAQ_CLI_FORMAT_TABLE) {
        for (size_t i = 0; i < n; i++)
            if (naq_cli_print_event(p, &events[i]) != 0)
                return -1;
        return 0;
    }
    naq_cli_table t;
    naq_cli_table_init(&t, EVENT_COLS, event_headers, NULL);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char when[40], attempt[16], detail[160];
        const char *c[EVENT_COLS];
        event_cells(&events[i], when, attempt, detail, c);
        if ((rc = naq_cli_table_add(&t, c)) != 0)
            naq_cli_error("out of memory formatting events");
    }
    if (rc == 0 && n > 0)
        naq_cli_table_print(&t, p->out);
    p->rows += (int)t.rows;
    naq_cli_table_free(&t);
    if (rc == 0 && ferror(p->out))
        rc = -1;
    return rc;
}

int naq_cli_print_event(naq_cli_printer *p, const naq_event *e)
{
    int rc = 0;
    if (p->format == NAQ_CLI_FORMAT_TABLE) {
        print_table_row(p, e);
    } else {
        char *wire = NULL;
        size_t len = 0;
        naq_status s = naq_event_encode(e, &wire, &len);
        if (s != NAQ_OK) {
            naq_cli_error("%s", naq_last_error());
            return -1;
        }
        if (p->format == NAQ_CLI_FORMAT_RAW) {
            fwrite(wire, 1, len, p->out);
            fputc('\n', p->out);
        } else {
            rc = print_json(p, e, wire, len);
        }
        free(wire);
    }
    p->rows++;
    if (p->flush)
        fflush(p->out);
    if (rc == 0 && ferror(p->out))
        rc = -1;
    return rc;
}

/* ---- --metrics of long-running commands ---- */

int naq_cli_process_metrics_start(const char *cmd, const char *addr, const char *interval,
                                  naq_cli_process_metrics *m)
{
    m->server = NULL;
    m->reporter = NULL;
    int64_t ms = 0;
    naq_status s = NAQ_OK;
    if (interval == NULL) {
        if (naq_metrics_interval_from_env(&ms) != NAQ_OK)
            return naq_cli_usage_error(cmd, "%s", naq_last_error());
    } else if (strcmp(interval, "0") != 0 &&
               (naq_parse_duration_ms(interval, &ms) != NAQ_OK || ms < 0)) {
        return naq_cli_usage_error(cmd,
                                   "--metrics-interval: '%s' is not a duration (60s, 5m; "
                                   "0 = off)",
                                   interval);
    }
    if (addr != NULL) {
        s = naq_metrics_server_start(addr, naq_metrics_render_process, &m->p, &m->server);
        if (s != NAQ_OK)
            return naq_cli_fail(cmd, s);
        fprintf(stderr, "%s: metrics on http://%s/metrics (port %d)\n", cmd, addr,
                naq_metrics_server_port(m->server));
    }
    if ((s = naq_metrics_reporter_start(&m->p, ms, &m->reporter)) != NAQ_OK) {
        naq_metrics_server_stop(m->server);
        m->server = NULL;
        return naq_cli_fail(cmd, s);
    }
    return NAQ_EXIT_OK;
}

void naq_cli_process_metrics_stop(naq_cli_process_metrics *m)
{
    naq_metrics_reporter_stop(m->reporter);
    naq_metrics_server_stop(m->server);
    m->reporter = NULL;
    m->server = NULL;
}

int naq_cli_parse_autoscale(const char *cmd, const char *arg, int *min, int *max)
{
    int lo = 0, hi = 0, end = 0;
    if (sscanf(arg, "%d:%d%n", &lo, &hi, &end) != 2 || arg[end] != '\0' || lo < 1 || hi < lo ||
        hi > 1024)
        return naq_cli_usage_error(cmd,
                                   "--autoscale '%s': give MIN:MAX with 1 <= MIN <= MAX <= 1024, "
                                   "e.g. --autoscale 2:16",
                                   arg);
    *min = lo;
    *max = hi;
    return NAQ_EXIT_OK;
}
