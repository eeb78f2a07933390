/*
 * print.c - the one printer of the CLI: every listing (dead jobs, dead
 * events, schedules, workers, health checks, events, ...) prints through
 * it as a table, JSON lines or raw, and it is the only place that turns an
 * event into text, so every listing looks the same and a format change is
 * made once.
 *
 * A table keeps its rows until the end so each column is as wide as its
 * widest cell; JSON and raw lines print as they come. A live stream of
 * events cannot wait for its last row, so its table row has fixed widths.
 */
#include "cli.h"
#include "core/jsonw.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---- listings ---- */

char *naq_cli_json_line(json_t *o)
{
    char *line = o != NULL ? naq__json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    if (line == NULL)
        naq_cli_error("out of memory formatting JSON");
    return line;
}

void naq_cli_list_begin(naq_cli_list *p, const naq_cli_listing *l, naq_cli_format format,
                        void *user)
{
    memset(p, 0, sizeof *p);
    p->l = l;
    p->format = l->json != NULL ? format : NAQ_CLI_FORMAT_TABLE;
    p->user = user;
    naq_cli_table_init(&p->t, l->ncols, l->headers, l->align);
}

int naq_cli_list_add(naq_cli_list *p, const void *item)
{
    if (p->failed)
        return -1;
    p->count++;
    if (p->format == NAQ_CLI_FORMAT_TABLE) {
        /* Static: 16 KiB is too much for the stack of every caller, and
         * the CLI prints from one thread. */
        static char buf[NAQ_CLI_TABLE_MAX_COLS][NAQ_CLI_CELL_MAX];
        const char *cells[NAQ_CLI_TABLE_MAX_COLS] = {NULL};
        p->l->row(item, p->user, cells, buf);
        if (naq_cli_table_add(&p->t, cells) != 0) {
            naq_cli_error("out of memory formatting a table");
            p->failed = 1;
        }
        return p->failed ? -1 : 0;
    }
    char *line = p->format == NAQ_CLI_FORMAT_RAW && p->l->raw != NULL ? p->l->raw(item, p->user)
                                                                      : p->l->json(item, p->user);
    if (line == NULL) {
        p->failed = 1;
        return -1;
    }
    fputs(line, stdout);
    fputc('\n', stdout);
    free(line);
    return 0;
}

int naq_cli_list_end(naq_cli_list *p)
{
    if (!p->failed && p->format == NAQ_CLI_FORMAT_TABLE && (p->t.rows > 0 || p->show_empty))
        naq_cli_table_print(&p->t, stdout);
    naq_cli_table_free(&p->t);
    return p->failed || ferror(stdout) ? NAQ_EXIT_FAILURE : NAQ_EXIT_OK;
}

int naq_cli_list_print(const naq_cli_listing *l, naq_cli_format format, void *user,
                       const void *items, size_t n, size_t size)
{
    naq_cli_list p;
    naq_cli_list_begin(&p, l, format, user);
    for (size_t i = 0; i < n; i++)
        if (naq_cli_list_add(&p, (const char *)items + i * size) != 0)
            break;
    return naq_cli_list_end(&p);
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

/* The cells of an event's table row; text made here goes in buf. */
static void event_row(const void *item, void *user, const char **cells,
                      char (*buf)[NAQ_CLI_CELL_MAX])
{
    const naq_event *e = item;
    (void)user;
    naq_cli_format_time(e->timestamp, buf[0], 40);
    if (e->attempt > 0)
        snprintf(buf[5], 16, "%d", e->attempt);
    else
        snprintf(buf[5], 16, "-");
    naq_cli_event_detail(e, buf[6], 160);
    cells[0] = buf[0];
    cells[1] = naq_event_type_name(e->type);
    cells[2] = or_dash(e->job_id);
    cells[3] = or_dash(e->queue_name);
    cells[4] = or_dash(e->worker_id);
    cells[5] = buf[5];
    cells[6] = or_dash(buf[6]);
}

/* The event's wire JSON (raw), heap; NULL with the error printed. */
static char *event_raw(const void *item, void *user)
{
    (void)user;
    char *wire = NULL;
    size_t len = 0;
    if (naq_event_encode(item, &wire, &len) != NAQ_OK) {
        naq_cli_error("%s", naq_last_error());
        return NULL;
    }
    return wire;
}

/* JSONL: the wire JSON plus where the event is stored (nats_subject,
 * nats_sequence), so a line can be matched with the stream itself. */
static char *event_json(const void *item, void *user)
{
    const naq_event *e = item;
    char *wire = event_raw(item, user);
    if (wire == NULL)
        return NULL;
    json_error_t err;
    json_t *o = json_loads(wire, 0, &err);
    free(wire);
    if (o == NULL) {
        naq_cli_error("cannot re-read an encoded event: %s", err.text);
        return NULL;
    }
    if (e->nats_subject[0] != '\0')
        json_object_set_new(o, "nats_subject", json_string(e->nats_subject));
    if (e->nats_sequence > 0)
        json_object_set_new(o, "nats_sequence", json_integer((json_int_t)e->nats_sequence));
    return naq_cli_json_line(o);
}

static const naq_cli_listing event_listing = {EVENT_COLS, event_headers, NULL,
                                              event_row,  event_json,    event_raw};

/* A live row: the columns cannot know the rows to come, so they have fixed
 * widths, and a longer value widens the rest of the row only. */
static void print_table_row(naq_cli_printer *p, const naq_event *e)
{
    static char buf[EVENT_COLS][NAQ_CLI_CELL_MAX];
    const char *c[EVENT_COLS];
    if (p->rows == 0)
        fprintf(p->out, "%-24s  %-24s  %-32s  %-12s  %-20s  %-7s  %s\n", "TIME", "TYPE", "JOB",
                "QUEUE", "WORKER", "ATTEMPT", "DETAIL");
    event_row(e, NULL, c, buf);
    fprintf(p->out, "%-24s  %-24s  %-32s  %-12s  %-20s  %-7s  %s\n", c[0], c[1], c[2], c[3], c[4],
            c[5], c[6]);
}

int naq_cli_print_events(naq_cli_printer *p, const naq_event *events, size_t n)
{
    p->rows += (int)n;
    return naq_cli_list_print(&event_listing, p->format, NULL, events, n, sizeof *events) ==
                   NAQ_EXIT_OK
               ? 0
               : -1;
}

int naq_cli_print_event(naq_cli_printer *p, const naq_event *e)
{
    int rc = 0;
    if (p->format == NAQ_CLI_FORMAT_TABLE) {
        print_table_row(p, e);
    } else {
        char *line = p->format == NAQ_CLI_FORMAT_RAW ? event_raw(e, NULL) : event_json(e, NULL);
        if (line == NULL)
            return -1;
        fputs(line, p->out);
        fputc('\n', p->out);
        free(line);
    }
    p->rows++;
    if (p->flush)
        fflush(p->out);
    if (rc == 0 && ferror(p->out))
        rc = -1;
    return rc;
}
