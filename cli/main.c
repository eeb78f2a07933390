/*
 * main.c - the `naq` binary: dispatches to one command per file
 * (cmd_<name>.c) and answers --help and --version itself.
 *
 * A command receives argv starting at its own name, with argv[0] rewritten
 * to "naq <name>" so that getopt's messages and our usage errors name the
 * command the user typed. Each command runs through the one skeleton of
 * command.c (naq_cli_main, naq_cli_dispatch).
 */
#include "cli.h"
#include "cmd_auth.h"
#include "cmd_schedule.h"
#include "cmd_top.h"
#include "web/web.h"

#include <nats/nats.h>
#include <string.h>

#ifndef NAQ_VERSION
#define NAQ_VERSION "0.1.0"
#endif

/* How long the end of a command waits for nats.c's threads (see run()). */
#define EXIT_WAIT_MS 2000

/* {name, how errors name it, run, summary}: naq_cli_sub (cli.h). */
typedef naq_cli_sub command;

static const command commands[] = {
    {"server", "naq server", naq_cmd_server, "run a local NATS server with JetStream for naq"},
    {"enqueue", "naq enqueue", naq_cmd_enqueue,
     "queue a job (a function call or a command) and print its id"},
    {"worker", "naq worker", naq_cmd_worker, "run jobs from one or more queues"},
    {"workers", "naq workers", naq_cmd_workers,
     "list live workers (and, with --show-inactive, those that are gone)"},
    {"job", "naq job", naq_cmd_job, "one job: status, result, cancel, priority, move"},
    {"dlq", "naq dlq", naq_cmd_dlq, "dead jobs: list, show, retry, purge"},
    {"events", "naq events", naq_cmd_events,
     "a job's history, live events, event types, dead events"},
    {"schedule", "naq schedule", naq_cmd_schedule, "add, list, change and remove scheduled jobs"},
    {"scheduler", "naq scheduler", naq_cmd_scheduler,
     "run a scheduler that enqueues scheduled jobs"},
    {"top", "naq top", naq_cmd_top, "live view: rates, queues, workers, failures, latency"},
    {"web", "naq web", naq_cmd_web, "web UI and JSON API: overview, jobs, dead letters, live"},
    {"health", "naq health", naq_cmd_health,
     "check connection, streams, lag, dead letters, workers"},
    {"metrics", "naq metrics", naq_cmd_metrics, "Prometheus metrics: print them, or serve them"},
    {"bench", "naq bench", naq_cmd_bench, "measure event and job throughput"},
    {"backup", "naq backup", naq_cmd_backup,
     "save every naq stream and KV bucket to a directory (with SHA-256 manifest)"},
    {"restore", "naq restore", naq_cmd_restore,
     "restore a backup into a server that lacks those streams (--force replaces)"},
    {"auth", "naq auth", naq_cmd_auth,
     "least-privilege roles: nats-server permissions per role, new NKeys"},
    {"keygen", "naq keygen", naq_cmd_keygen,
     "a new key file for payload encryption (NAQ_ENCRYPTION_KEY_FILE)"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fputs("usage: naq COMMAND [OPTIONS]\n"
          "\n"
          "naq is a job queue on NATS JetStream in which every job and worker\n"
          "transition is an event you can list, follow and replay.\n"
          "\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "  naq COMMAND --help   options of one command\n"
          "  naq --version        the version\n"
          "\n"
          "Start with:  naq server &   then   naq enqueue -q default -- echo hello\n"
          "             naq worker -q default\n"
          "Configuration comes from NAQ_* environment variables (docs/configuration.md);\n"
          "exit codes: 0 ok, 1 failure, 2 bad usage.\n",
          out);
}

static const command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int run(const command *cmd, int argc, char **argv)
{
    argv[0] = (char *)cmd->argv0;
    optind = 1;
    int rc = cmd->run(argc, argv);
    if (fflush(stdout) != 0 && rc == NAQ_EXIT_OK)
        rc = NAQ_EXIT_FAILURE;
    /* nats.c's own threads (its collector, timers, a connection's last
     * callbacks) may outlive the command by a moment. Its exit hook then
     * leaves them running, and OpenSSL's exit hook, registered later and
     * so run first, frees what a TLS connection's thread may still touch:
     * a rare crash at exit after a command over TLS had succeeded. Wait
     * for them here (a no-op for commands that never connected). */
    nats_CloseAndWait(EXIT_WAIT_MS);
    return rc;
}

int main(int argc, char **argv)
{
    naq_cli_log_to_stderr();
    if (argc < 2) {
        usage(stderr);
        return NAQ_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        usage(stdout);
        return NAQ_EXIT_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "-V") || !strcmp(name, "version")) {
        if (argc > 2) {
            return naq_cli_usage_error("naq", "%s takes no arguments, got '%s'", name, argv[2]);
        }
        printf("naq %s (wire format %d)\n", NAQ_VERSION, NAQ_WIRE_VERSION);
        return NAQ_EXIT_OK;
    }
    if (!strcmp(name, "help")) {
        /* `naq help CMD` is `naq CMD --help`. */
        if (argc < 3) {
            usage(stdout);
            return NAQ_EXIT_OK;
        }
        const command *cmd = find(argv[2]);
        if (cmd == NULL) {
            return naq_cli_usage_error("naq", "unknown command '%s'", argv[2]);
        }
        char help[] = "--help";
        char *args[] = {argv[2], help, NULL};
        return run(cmd, 2, args);
    }
    const command *cmd = find(name);
    if (cmd == NULL) {
        return naq_cli_usage_error("naq", "unknown command '%s'", name);
    }
    return run(cmd, argc - 1, argv + 1);
}
