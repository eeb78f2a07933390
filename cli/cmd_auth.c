/*
 * cmd_auth.c - `naq auth`: the least-privilege roles for operators.
 *
 *   naq auth permissions ROLE [--queue Q ...]   the nats-server permissions block
 *   naq auth nkey FILE                          a new NKey user: seed to FILE (0600),
 *                                               public key on stdout
 *
 * The permissions come from the library (roles.c), which derives them from
 * the subjects naq sends, with the prefix and stream names of the
 * configuration (NAQ_NATS_SUBJECT_PREFIX, ...), so what is printed matches
 * what the programs will use.
 */
#include "cli.h"
#include "cmd_auth.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: naq auth permissions ROLE [--queue Q ...] [--prefix P] [--stream S]\n"
    "       naq auth nkey FILE\n"
    "\n"
    "Least-privilege roles for a NATS server that checks permissions\n"
    "(docs/security.md):\n"
    "  producer   enqueue jobs and log its own events\n"
    "  worker     take jobs from its queues, log events, write results, finished\n"
    "             markers, dead letters and the worker registry\n"
    "  reader     history, stream, stats, top; no writes\n"
    "  admin      everything: dlq retry|purge, events delete|cleanup, schedules,\n"
    "             creating the streams\n"
    "\n"
    "permissions ROLE   print the nats-server `permissions { ... }` block of the\n"
    "                   role, to paste into a user of your server's configuration\n"
    "  -q, --queue Q    (worker) the queues it may take jobs from; repeat for more;\n"
    "                   default every queue\n"
    "  --prefix, --stream  as for every command (NAQ_NATS_SUBJECT_PREFIX, ...)\n"
    "\n"
    "nkey FILE          write a new NKey user seed to FILE (mode 0600, refused if\n"
    "                   FILE exists) and print its public key (U...) for the\n"
    "                   server's configuration or an --auth file; the program then\n"
    "                   connects with NAQ_NKEY_SEED_FILE=FILE\n"
    "\n"
    "examples:\n"
    "  naq auth permissions reader\n"
    "  naq auth permissions worker --queue emails --queue reports\n"
    "  naq auth nkey ~/.config/naq/worker.nk\n"
    "\n"
    "exit codes: 0 ok, 1 failure (FILE cannot be written), 2 bad usage\n";

/* --queue values, NULL-terminated; room for one per argument. */
typedef struct {
    const char **queues; /* heap; freed by permissions_main */
    int n;
} auth_args;

static int queue_option(naq_cli_ctx *x, int ch, const char *arg)
{
    auth_args *a = x->args;
    (void)ch; /* -q, the only one */
    a->queues[a->n++] = arg;
    return NAQ_EXIT_OK;
}

static int check_permissions(naq_cli_ctx *x)
{
    if (x->argc != 1)
        return naq_cli_usage_error(x->cmd, "permissions needs one ROLE (producer, worker, "
                                           "reader or admin)");
    return NAQ_EXIT_OK;
}

/* Needs no server: the configuration gives the prefix and streams. */
static int permissions(naq_cli_ctx *x)
{
    const auth_args *a = x->args;
    naq_role role = NAQ_ROLE_ADMIN;
    naq_config cfg;
    int rc = NAQ_EXIT_OK;
    if (naq_role_parse(x->argv[0], &role) != NAQ_OK)
        rc = naq_cli_usage_error(x->cmd, "%s", naq_last_error());
    if (rc == NAQ_EXIT_OK && a->n > 0 && role != NAQ_ROLE_WORKER)
        rc = naq_cli_usage_error(x->cmd, "--queue limits a worker; the %s role has no queues",
                                 naq_role_name(role));
    if (rc == NAQ_EXIT_OK)
        rc = naq_cli_config(x->cmd, &x->common, &cfg);
    char *text = NULL;
    if (rc == NAQ_EXIT_OK) {
        naq_status s = naq_role_permissions(&cfg, role, a->queues, 0, &text);
        if (s != NAQ_OK)
            rc = naq_cli_fail(x->cmd, s);
        else
            fputs(text, stdout);
    }
    free(text);
    return rc;
}

static int permissions_main(int argc, char **argv)
{
    static const struct option opts[] = {{"queue", required_argument, NULL, 'q'},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {
        usage, NULL, "q:", opts, 0, queue_option, check_permissions, permissions};
    auth_args a = {calloc((size_t)argc + 1, sizeof(const char *)), 0};
    if (a.queues == NULL) {
        naq_cli_error("out of memory");
        return NAQ_EXIT_FAILURE;
    }
    int rc = naq_cli_main(&c, &a, argc, argv);
    free(a.queues);
    return rc;
}

static int check_nkey(naq_cli_ctx *x)
{
    if (x->argc != 1)
        return naq_cli_usage_error(x->cmd, "nkey needs one FILE to write the seed to");
    return NAQ_EXIT_OK;
}

static int nkey(naq_cli_ctx *x)
{
    const char *path = x->argv[0];
    char seed[NAQ_NKEY_SIZE], pub[NAQ_NKEY_SIZE];
    if (naq__nkey_create(seed, pub) != NAQ_OK)
        return naq_cli_fail(x->cmd, NAQ_ERR_IO);
    /* O_EXCL: a seed is never overwritten (it may be the only copy). */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ok = fd >= 0;
    if (ok) {
        char line[NAQ_NKEY_SIZE + 2];
        int n = snprintf(line, sizeof line, "%s\n", seed);
        ok = write(fd, line, (size_t)n) == n;
        memset(line, 0, sizeof line);
        ok = close(fd) == 0 && ok;
    }
    memset(seed, 0, sizeof seed);
    if (!ok) {
        naq_cli_error("cannot write %s: %s%s", path, strerror(errno),
                      errno == EEXIST ? " (naq never overwrites a seed; choose another name)" : "");
        return NAQ_EXIT_FAILURE;
    }
    printf("%s\n", pub);
    return NAQ_EXIT_OK;
}

static int nkey_main(int argc, char **argv)
{
    static const naq_cli_command c = {usage, NULL,       NULL, NULL, NAQ_CLI_NO_CONNECTION_FLAGS,
                                      NULL,  check_nkey, nkey};
    return naq_cli_main(&c, NULL, argc, argv);
}

int naq_cmd_auth(int argc, char **argv)
{
    static const naq_cli_sub subs[] = {
        {"permissions", "naq auth permissions", permissions_main, NULL},
        {"nkey", "naq auth nkey", nkey_main, NULL},
    };
    static const naq_cli_group group = {usage, "subcommand", subs, sizeof subs / sizeof subs[0]};
    return naq_cli_dispatch(&group, argc, argv);
}
