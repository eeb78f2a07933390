/*
 * cli.h - what the naq subcommands share: the command entry points, the
 * common connection flags, error printing with the exit-code convention,
 * and the one event formatter used by every listing.
 *
 * Every command is `int naq_cmd_<name>(int argc, char **argv)` where argv[0]
 * names the command as the user typed it ("naq events"), so getopt's own
 * messages read "naq events: unrecognized option '--x'". The return value is
 * the process exit code: 0 ok, 1 failure, 2 bad usage (STYLE.md 9).
 */
#ifndef NAQ_CLI_H
#define NAQ_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "naq/naq.h"

#define NAQ_EXIT_OK 0
#define NAQ_EXIT_FAILURE 1
#define NAQ_EXIT_USAGE 2

int naq_cmd_server(int argc, char **argv);
int naq_cmd_enqueue(int argc, char **argv);
int naq_cmd_worker(int argc, char **argv);
int naq_cmd_events(int argc, char **argv);
int naq_cmd_job(int argc, char **argv);
int naq_cmd_dlq(int argc, char **argv);
int naq_cmd_health(int argc, char **argv);
int naq_cmd_metrics(int argc, char **argv);

/* --metrics ADDR and --metrics-interval D of `naq worker` and `naq
 * scheduler`: serves the process's figures (addr NULL: no server) and logs
 * system_metrics events every D (interval NULL: NAQ_METRICS_INTERVAL or
 * 60s; "0": off). Fill m->p first; it must stay put until the stop. An
 * exit code (the failure printed). */
typedef struct {
    naq_metrics_process p;
    naq_metrics_server *server;
    naq_metrics_reporter *reporter;
} naq_cli_process_metrics;
int naq_cli_process_metrics_start(const char *cmd, const char *addr, const char *interval,
                                  naq_cli_process_metrics *m);
/* Accepts a zeroed or stopped m. */
void naq_cli_process_metrics_stop(naq_cli_process_metrics *m);
int naq_cmd_bench(int argc, char **argv);
int naq_cmd_workers(int argc, char **argv);
int naq_cmd_backup(int argc, char **argv);  /* cmd_backup.c */
int naq_cmd_restore(int argc, char **argv); /* cmd_backup.c */
int naq_cmd_keygen(int argc, char **argv);

/* ---- common connection flags: --url, --event-url, --prefix, --stream ---- */

/* getopt_long values of the common flags (outside the char range). */
enum {
    NAQ_CLI_OPT_URL = 0x100,
    NAQ_CLI_OPT_EVENT_URL,
    NAQ_CLI_OPT_PREFIX,
    NAQ_CLI_OPT_STREAM,
    NAQ_CLI_OPT_FIRST_FREE /* commands number their own long-only flags from here */
};

/* Entries for a struct option table; end the table with {NULL, 0, NULL, 0}. */
#define NAQ_CLI_COMMON_OPTIONS                                                                     \
    {"url", required_argument, NULL, NAQ_CLI_OPT_URL},                                             \
        {"event-url", required_argument, NULL, NAQ_CLI_OPT_EVENT_URL},                             \
        {"prefix", required_argument, NULL, NAQ_CLI_OPT_PREFIX},                                   \
    {                                                                                              \
        "stream", required_argument, NULL, NAQ_CLI_OPT_STREAM                                      \
    }

/* Usage text of the common flags, for each command's --help. */
#define NAQ_CLI_COMMON_USAGE                                                                       \
    "connection (override the environment, see docs/configuration.md):\n"                          \
    "  --url URL          NATS server of the job queue (NAQ_URL, default " NAQ_DEFAULT_URL ")\n"   \
    "  --event-url URL    NATS server of the event log (NAQ_EVENT_STORAGE_URL)\n"                  \
    "  --prefix PREFIX    subject prefix (NAQ_NATS_SUBJECT_PREFIX, default naq)\n"                 \
    "  --stream NAME      event stream (NAQ_NATS_STREAM_NAME, default NAQ_JOB_EVENTS)\n"           \
    "  TLS and credentials come from NAQ_TLS_CA, NAQ_TLS_CERT/KEY, NAQ_USER/PASSWORD,\n"           \
    "  NAQ_TOKEN, NAQ_NKEY_SEED_FILE or NAQ_CREDS_FILE (docs/security.md)\n"

/* The common flags as given on the command line; NULL = not given. The
 * strings point into argv. */
typedef struct {
    const char *url;
    const char *event_url;
    const char *prefix;
    const char *stream;
} naq_cli_common;

/* Records a common flag: 1 if `ch` was one (from the getopt loop), else 0. */
int naq_cli_common_option(naq_cli_common *o, int ch, const char *arg);

/* Builds the configuration: defaults < NAQ_* environment < flags. Prints a
 * usage error of cmd and returns NAQ_EXIT_USAGE when a variable or flag is
 * malformed, else NAQ_EXIT_OK. */
int naq_cli_config(const char *cmd, const naq_cli_common *o, naq_config *cfg);

/* naq_cli_config() then naq_client_connect(). Read-only commands pass
 * publishes_events = 0: they log nothing, so the client starts no event
 * logger. Returns an exit code; on failure the error is printed ("naq:
 * cannot reach NATS at ...") and *out is NULL. */
int naq_cli_connect(const char *cmd, const naq_cli_common *o, int publishes_events,
                    naq_client **out);

/* ---- errors ---- */

/* Prints the library's messages (naq/log.h) on stderr, those at or above
 * NAQ_LOG_LEVEL (default info). main() calls it first. */
void naq_cli_log_to_stderr(void);

/* Prints "naq: <message>\n" to stderr. */
void naq_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a failed library call of command cmd and returns its exit code.
 * NAQ_ERR_INVALID_ARG (the user gave something malformed) is a usage
 * error: "<cmd>: <naq_last_error()>" and "try '<cmd> --help'", exit 2.
 * Anything else prints "naq: <naq_last_error()>" (or the status text when
 * there is no message), exit 1. Every command reports library errors
 * through this, so the two kinds look the same everywhere. */
int naq_cli_fail(const char *cmd, naq_status s);

/* Prints "<cmd>: <message>" and "try '<cmd> --help'" to stderr and returns
 * NAQ_EXIT_USAGE. cmd is argv[0] of the command ("naq enqueue"). */
int naq_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For getopt's '?': getopt already said what is wrong; adds the hint. */
int naq_cli_try_help(const char *cmd);

/* Parses a whole number in [min, max]; on error prints a usage error naming
 * the flag and returns 0. */
/* --autoscale "MIN:MAX", 1 <= MIN <= MAX <= 1024, into *min and *max;
 * NAQ_EXIT_OK, or NAQ_EXIT_USAGE after saying why. */
int naq_cli_parse_autoscale(const char *cmd, const char *arg, int *min, int *max);
int naq_cli_parse_int(const char *cmd, const char *flag, const char *text, long long min,
                      long long max, long long *out);
/* --prefetch: "auto" (NAQ_PREFETCH_AUTO) or 0..1024; on error prints a
 * usage error and returns 0. */
int naq_cli_parse_prefetch(const char *cmd, const char *text, int *out);

/* `one` when n is 1, else `many`: "1 event", "2 events", "0 entries".
 * Every count the CLI prints in a sentence goes through it. */
const char *naq_cli_plural(unsigned long long n, const char *one, const char *many);

/* --limit N of every listing: at most N, and 0 means no limit, the same
 * in every command (docs/cli.md). Prints a usage error and returns
 * NAQ_EXIT_USAGE when text is not a whole number >= 0. */
int naq_cli_parse_limit(const char *cmd, const char *text, size_t *out);

/* ---- tables ---- */

/* A table whose columns are as wide as their widest cell, so no value,
 * however long (ids may have 128 characters), pushes a row out of line.
 * Every listing that has its rows before it prints uses it. */
#define NAQ_CLI_TABLE_MAX_COLS 16
typedef struct {
    int ncols; /* at most NAQ_CLI_TABLE_MAX_COLS */
    const char *const *headers;
    const char *align; /* NULL, or a char per column ('r' right-aligns it); may be shorter */
    char **cells;      /* heap: rows * ncols heap strings */
    size_t rows, cap;
} naq_cli_table;

void naq_cli_table_init(naq_cli_table *t, int ncols, const char *const *headers, const char *align);
/* Copies a row of ncols cells (NULL or "" shows as "-"; control characters
 * become spaces). 0, or -1 when out of memory. */
int naq_cli_table_add(naq_cli_table *t, const char *const *cells);
/* Prints the header and the rows, columns two spaces apart. */
void naq_cli_table_print(const naq_cli_table *t, FILE *out);
void naq_cli_table_free(naq_cli_table *t);

/* ---- the event formatter ---- */

typedef enum {
    NAQ_CLI_FORMAT_TABLE, /* aligned columns for people */
    NAQ_CLI_FORMAT_JSON,  /* one compact JSON object per line (JSONL), with nats_subject/sequence */
    NAQ_CLI_FORMAT_RAW,   /* the event's wire JSON, nothing added */
} naq_cli_format;

#define NAQ_CLI_FORMAT_USAGE                                                                       \
    "  --format FORMAT    table (default), json (one object per line) or raw\n"

/* Parses "table", "json" or "raw" ("raw" only when allow_raw). Prints a
 * usage error and returns NAQ_EXIT_USAGE when unknown. */
int naq_cli_parse_format(const char *cmd, const char *text, int allow_raw, naq_cli_format *out);

typedef struct {
    naq_cli_format format;
    FILE *out;
    int rows;  /* events printed so far (the table header precedes the first) */
    int flush; /* fflush after every event (live streams) */
} naq_cli_printer;

void naq_cli_printer_init(naq_cli_printer *p, naq_cli_format format);

/* Prints one event. 0 on success; -1 when it cannot be encoded (the error is
 * printed) or stdout is gone (a closed pipe). A table row has fixed column
 * widths (live output cannot know the rows to come). */
int naq_cli_print_event(naq_cli_printer *p, const naq_event *e);
/* Prints a list of events; as a table its columns fit the longest value.
 * Same return as naq_cli_print_event. */
int naq_cli_print_events(naq_cli_printer *p, const naq_event *events, size_t n);

/* "2026-01-31T12:00:00.123Z" for a timestamp in seconds since the epoch,
 * rounded to the nearest millisecond; "-" for 0 (none). Every time the CLI
 * prints goes through these two, so one instant reads the same everywhere. */
void naq_cli_format_time(double ts, char *buf, size_t cap);
/* The same for milliseconds since the epoch (schedules keep whole ms). */
void naq_cli_format_time_ms(int64_t ms, char *buf, size_t cap);

/* The one-line detail of an event: "error_type: error_message",
 * "<duration> ms" or the message; control characters become spaces and the
 * text is cut to fit cap. */
void naq_cli_event_detail(const naq_event *e, char *buf, size_t cap);

#endif
