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

static int permissions(const char *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"queue", required_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    const char **queues = calloc((size_t)argc + 1, sizeof *queues);
    if (queues == NULL) {
        naq_cli_error("out of memory");
        return NAQ_EXIT_FAILURE;
    }
    int nq = 0, ch, rc = NAQ_EXIT_OK;
    naq_cli_common common = {0};
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "q:h", opts, NULL)) != -1) {
        if (naq_cli_common_option(&common, ch, optarg))
            continue;
        switch (ch) {
        case 'q': queues[nq++] = optarg; break;
        case 'h':
            fputs(usage, stdout);
            free(queues);
            return NAQ_EXIT_OK;
        default: rc = naq_cli_try_help(cmd); break;
        }
    }
    naq_role role = NAQ_ROLE_ADMIN;
    naq_config cfg;
    if (rc == NAQ_EXIT_OK && optind + 1 != argc)
        rc = naq_cli_usage_error(cmd, "permissions needs one ROLE (producer, worker, reader or "
                                      "admin)");
    if (rc == NAQ_EXIT_OK && naq_role_parse(argv[optind], &role) != NAQ_OK)
        rc = naq_cli_usage_error(cmd, "%s", naq_last_error());
    if (rc == NAQ_EXIT_OK && nq > 0 && role != NAQ_ROLE_WORKER)
        rc = naq_cli_usage_error(cmd, "--queue limits a worker; the %s role has no queues",
                                 naq_role_name(role));
    if (rc == NAQ_EXIT_OK)
        rc = naq_cli_config(cmd, &common, &cfg);
    char *text = NULL;
    if (rc == NAQ_EXIT_OK) {
        naq_status s = naq_role_permissions(&cfg, role, queues, 0, &text);
        if (s != NAQ_OK)
            rc = naq_cli_fail(cmd, s);
        else
            fputs(text, stdout);
    }
    free(text);
    free(queues);
    return rc;
}

static int nkey(const char *cmd, int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return NAQ_EXIT_OK;
    }
    if (argc != 2 || argv[1][0] == '-')
        return naq_cli_usage_error(cmd, "nkey needs one FILE to write the seed to");
    char seed[NAQ_NKEY_SIZE], pub[NAQ_NKEY_SIZE];
    if (naq__nkey_create(seed, pub) != NAQ_OK)
        return naq_cli_fail(cmd, NAQ_ERR_IO);
    /* O_EXCL: a seed is never overwritten (it may be the only copy). */
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
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
        naq_cli_error("cannot write %s: %s%s", argv[1], strerror(errno),
                      errno == EEXIST ? " (naq never overwrites a seed; choose another name)" : "");
        return NAQ_EXIT_FAILURE;
    }
    printf("%s\n", pub);
    return NAQ_EXIT_OK;
}

int naq_cmd_auth(int argc, char **argv)
{
    const char *cmd = argv[0];
    if (argc < 2) {
        fputs(usage, stderr);
        return NAQ_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(usage, stdout);
        return NAQ_EXIT_OK;
    }
    if (!strcmp(sub, "permissions")) {
        argv[1] = (char *)"naq auth permissions";
        return permissions("naq auth permissions", argc - 1, argv + 1);
    }
    if (!strcmp(sub, "nkey"))
        return nkey("naq auth nkey", argc - 1, argv + 1);
    return naq_cli_usage_error(cmd, "unknown subcommand '%s' (permissions, nkey)", sub);
}
