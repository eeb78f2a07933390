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

static void print_table_row(naq_cli_printer *p, const naq_event *e)
{
    if (p->rows == 0)
        fprintf(p->out, "%-24s  %-24s  %-32s  %-12s  %-20s  %-7s  %s\n", "TIME", "TYPE", "JOB",
                "QUEUE", "WORKER", "ATTEMPT", "DETAIL");
    char when[40], attempt[16], detail[160];
    naq_cli_format_time(e->timestamp, when, sizeof when);
    if (e->attempt > 0)
        snprintf(attempt, sizeof attempt, "%d", e->attempt);
    else
        snprintf(attempt, sizeof attempt, "-");
    naq_cli_event_detail(e, detail, sizeof detail);
    fprintf(p->out, "%-24s  %-24s  %-32s  %-12s  %-20s  %-7s  %s\n", when,
            naq_event_type_name(e->type), or_dash(e->job_id), or_dash(e->queue_name),
            or_dash(e->worker_id), attempt, or_dash(detail));
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
    char *line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
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
