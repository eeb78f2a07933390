/*
 * cmd_backup.c - `naq backup DIR` and `naq restore DIR` (naq/backup.h):
 * parse the flags, call the library, show its progress on stderr and the
 * summary on stdout.
 *
 * Progress goes to stderr so that stdout carries only the result. On a
 * terminal it is one line rewritten at most 5 times a second; elsewhere
 * (a log, a cron mail) one line per stream, when the stream is done.
 */
#include "cli.h"
#include "internal.h" /* naq__now, naq__mono_ms: the library's clocks */

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char backup_usage[] =
    "usage: naq backup [--chunk-size SIZE] [--quiet] DIR\n"
    "\n"
    "Saves every naq stream and KV bucket - jobs, events, outcomes (results),\n"
    "dead letters, delayed jobs, schedules, unique keys, dependencies,\n"
    "cancellations, the worker registry, stats - with their configuration,\n"
    "messages and durable consumers, into DIR (created; must be empty). Each\n"
    "stream is one JetStream snapshot; DIR/manifest.json lists every file with\n"
    "its SHA-256 and is written last. A snapshot is consistent per stream: stop\n"
    "workers, schedulers and producers first for a copy in which all streams\n"
    "agree (docs/deployment.md).\n"
    "\n"
    "      --chunk-size SIZE  snapshot chunk size (default 128K)\n"
    "  -q, --quiet            no progress on stderr\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq backup /var/backups/naq/$(date +%F)\n"
    "  NAQ_URL=nats://queue1:4222 naq backup ./naq-backup\n"
    "\n"
    "exit codes: 0 saved, 1 failure (no server, no naq stream, DIR not empty,\n"
    "disk full), 2 bad usage\n";

static const char restore_usage[] =
    "usage: naq restore [--force] [--verify-only] [--quiet] DIR\n"
    "\n"
    "Restores a backup made by 'naq backup' into the server(s) of NAQ_URL:\n"
    "every stream with its configuration, messages and durable consumers, so\n"
    "pending jobs are pending again and workers pointed at the server run them.\n"
    "Every file's size and SHA-256 is checked against DIR/manifest.json before\n"
    "anything is sent: a truncated or damaged backup restores nothing. If a\n"
    "stream fails midway, the streams this run created are deleted again.\n"
    "\n"
    "      --force            delete streams the server has already and replace\n"
    "                         them (without it such a stream is an error)\n"
    "      --verify-only      check the backup's files and exit; no server needed\n"
    "  -q, --quiet            no progress on stderr\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq restore --verify-only /var/backups/naq/2026-12-05\n"
    "  NAQ_URL=nats://new-server:4222 naq restore /var/backups/naq/2026-12-05\n"
    "\n"
    "exit codes: 0 restored (or verified), 1 failure (damaged backup, a stream\n"
    "exists already, no server), 2 bad usage\n";

enum { OPT_CHUNK = NAQ_CLI_OPT_FIRST_FREE, OPT_FORCE, OPT_VERIFY_ONLY };

/* ---- progress ---- */

typedef struct {
    int tty;
    int64_t last_ms; /* when the terminal line was last drawn */
    int drawn;       /* a terminal line is showing (a newline must end it) */
} progress;

/* "1.5 MiB": every size this command prints. */
static void human(uint64_t n, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void on_progress(const naq_backup_progress *p, void *user)
{
    progress *pr = user;
    int64_t t = naq__mono_ms();
    if (!p->done && (!pr->tty || t - pr->last_ms < 200))
        return;
    pr->last_ms = t;
    static const char *const verb[] = {"saving", "verifying", "restoring"};
    char done[32], total[32], pct[16] = "";
    human(p->bytes, done, sizeof done);
    human(p->total, total, sizeof total);
    if (p->total > 0)
        snprintf(pct, sizeof pct, " %3d%%", (int)(p->bytes * 100 / p->total));
    fprintf(stderr, "%s[%zu/%zu] %s %s: %s%s%s%s%s", pr->tty ? "\r\033[K" : "", p->index, p->count,
            verb[p->phase], p->stream, done, p->total ? " of " : "", p->total ? total : "", pct,
            pr->tty && !p->done ? "" : "\n");
    pr->drawn = pr->tty && !p->done;
}

static void progress_init(progress *pr, int quiet, naq_backup_opts *o)
{
    memset(pr, 0, sizeof *pr);
    pr->tty = isatty(STDERR_FILENO);
    if (!quiet) {
        o->progress = on_progress;
        o->progress_user = pr;
    }
}

/* Ends a half-drawn terminal line so that an error starts on its own. */
static void progress_end(progress *pr)
{
    if (pr->drawn)
        fputc('\n', stderr);
    pr->drawn = 0;
}

/* "3 streams, 1,204 messages (2.1 MiB stored), 4 consumers, 310.2 KiB of
 * snapshots" */
static void print_summary(const char *what, const char *dir, const naq_backup_summary *s,
                          double secs)
{
    char stored[32], files[32];
    human(s->bytes, stored, sizeof stored);
    human(s->file_bytes, files, sizeof files);
    printf("%s %zu %s, %llu %s (%s stored), %zu %s, %s of snapshots %s %s in %.1f s\n", what,
           s->streams, naq_cli_plural(s->streams, "stream", "streams"),
           (unsigned long long)s->messages, naq_cli_plural(s->messages, "message", "messages"),
           stored, s->consumers, naq_cli_plural(s->consumers, "consumer", "consumers"), files,
           strcmp(what, "saved") == 0 ? "to" : "from", dir, secs);
}

/* ---- the commands ---- */

typedef struct {
    const char *chunk;
    int quiet, force, verify_only;
    naq_backup_opts o;
} args;

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    args *a = x->args;
    switch (ch) {
    case 'q': a->quiet = 1; break;
    case OPT_CHUNK: a->chunk = arg; break;
    case OPT_FORCE: a->force = 1; break;
    case OPT_VERIFY_ONLY: a->verify_only = 1; break;
    }
    return NAQ_EXIT_OK;
}

/* DIR, one; and the flags that go together. */
static int check(naq_cli_ctx *x)
{
    args *a = x->args;
    if (x->argc == 0)
        return naq_cli_usage_error(x->cmd, "which directory? give DIR");
    if (x->argc > 1)
        return naq_cli_usage_error(x->cmd, "one directory only, got '%s' too", x->argv[1]);
    if (a->force && a->verify_only)
        return naq_cli_usage_error(
            x->cmd, "--verify-only restores nothing: --force makes no sense with it");
    if (a->chunk != NULL) {
        int64_t bytes = 0;
        if (naq_parse_size(a->chunk, &bytes) != NAQ_OK || bytes < 1024 || bytes > (8 << 20))
            return naq_cli_usage_error(x->cmd, "--chunk-size wants a size from 1K to 8M, not '%s'",
                                       a->chunk);
        a->o.chunk_size = (size_t)bytes;
    }
    a->o.force = a->force;
    return NAQ_EXIT_OK;
}

/* Both need no client: the library connects with the configuration. */
static int backup(naq_cli_ctx *x)
{
    args *a = x->args;
    const char *dir = x->argv[0];
    naq_config cfg;
    int rc = naq_cli_config(x->cmd, &x->common, &cfg);
    if (rc != NAQ_EXIT_OK)
        return rc;
    progress pr;
    progress_init(&pr, a->quiet, &a->o);
    naq_backup_summary sum;
    int64_t t0 = naq__mono_ms();
    naq_status s = naq_backup_write(&cfg, dir, &a->o, &sum);
    progress_end(&pr);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    print_summary("saved", dir, &sum, (double)(naq__mono_ms() - t0) / 1000);
    return NAQ_EXIT_OK;
}

static int restore(naq_cli_ctx *x)
{
    args *a = x->args;
    const char *dir = x->argv[0];
    progress pr;
    progress_init(&pr, a->quiet, &a->o);
    int64_t t0 = naq__mono_ms();
    if (a->verify_only) {
        naq_status s = naq_backup_verify(dir, &a->o);
        progress_end(&pr);
        if (s != NAQ_OK)
            return naq_cli_fail(x->cmd, s);
        printf("%s is intact: every file matches its SHA-256 in the manifest\n", dir);
        return NAQ_EXIT_OK;
    }
    naq_config cfg;
    int rc = naq_cli_config(x->cmd, &x->common, &cfg);
    if (rc != NAQ_EXIT_OK)
        return rc;
    naq_backup_summary sum;
    naq_status s = naq_backup_restore(&cfg, dir, &a->o, &sum);
    progress_end(&pr);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    print_summary("restored", dir, &sum, (double)(naq__mono_ms() - t0) / 1000);
    return NAQ_EXIT_OK;
}

static int run_with(const naq_cli_command *c, int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof a);
    naq_backup_opts_init(&a.o);
    return naq_cli_main(c, &a, argc, argv);
}

int naq_cmd_backup(int argc, char **argv)
{
    static const struct option opts[] = {{"chunk-size", required_argument, NULL, OPT_CHUNK},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {backup_usage, NULL, "q", opts, 0, option, check, backup};
    return run_with(&c, argc, argv);
}

int naq_cmd_restore(int argc, char **argv)
{
    static const struct option opts[] = {{"force", no_argument, NULL, OPT_FORCE},
                                         {"verify-only", no_argument, NULL, OPT_VERIFY_ONLY},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {restore_usage, NULL, "q", opts, 0, option, check, restore};
    return run_with(&c, argc, argv);
}
