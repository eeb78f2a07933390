/*
 * command.c - the one skeleton every naq command runs through: a command
 * declares its options, its help and its body (a naq_cli_command), and
 * naq_cli_main does the rest in the same order everywhere: parse the
 * options (its own, --format, --help and the connection flags), check
 * the operands, connect, run, disconnect. A command with subcommands is a
 * table of them (naq_cli_group) that naq_cli_dispatch picks from.
 *
 * So --help, a getopt error, an unexpected operand and a server that
 * cannot be reached read and exit the same in every command, and a new
 * command is its options and its body.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const struct option connection_opts[] = {NAQ_CLI_COMMON_OPTIONS};
#define NCONNECTION (sizeof connection_opts / sizeof connection_opts[0])

/* The option table getopt sees: the command's own, then --format,
 * --help and the connection flags. Heap (free()); NULL when out of
 * memory. */
static struct option *all_options(const naq_cli_command *c)
{
    size_t own = 0;
    while (c->opts != NULL && c->opts[own].name != NULL)
        own++;
    struct option *v = calloc(own + NCONNECTION + 3, sizeof *v);
    if (v == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < own; i++)
        v[n++] = c->opts[i];
    if (c->flags & (NAQ_CLI_TAKES_FORMAT | NAQ_CLI_TAKES_RAW))
        v[n++] = (struct option){"format", required_argument, NULL, NAQ_CLI_OPT_FORMAT};
    v[n++] = (struct option){"help", no_argument, NULL, 'h'};
    if (!(c->flags & NAQ_CLI_NO_CONNECTION_FLAGS))
        for (size_t i = 0; i < NCONNECTION; i++)
            v[n++] = connection_opts[i];
    return v; /* calloc ended it with {NULL, 0, NULL, 0} */
}

static void print_help(const naq_cli_command *c)
{
    if (c->help != NULL)
        c->help(stdout);
    else
        fputs(c->usage, stdout);
}

/* Parses argv into x; *help is set when --help was given. */
static int parse(const naq_cli_command *c, naq_cli_ctx *x, int argc, char **argv, int *help)
{
    struct option *opts = all_options(c);
    if (opts == NULL) {
        naq_cli_error("out of memory");
        return NAQ_EXIT_FAILURE;
    }
    /* 'h' after the command's own: a leading '+' (stop at the first
     * operand, so a command's flags after `--` stay its own) stays first. */
    char shortopts[64];
    snprintf(shortopts, sizeof shortopts, "%sh", c->shortopts ? c->shortopts : "");
    int rc = NAQ_EXIT_OK, ch;
    optind = 0; /* GNU getopt: start afresh, whatever parsed before */
    while (rc == NAQ_EXIT_OK && !*help &&
           (ch = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        if (ch == 'h')
            *help = 1;
        else if (ch == NAQ_CLI_OPT_FORMAT)
            rc = naq_cli_parse_format(x->cmd, optarg, (c->flags & NAQ_CLI_TAKES_RAW) != 0,
                                      &x->format);
        else if (naq_cli_common_option(&x->common, ch, optarg))
            continue;
        else if (ch == '?' || c->option == NULL)
            rc = naq_cli_try_help(x->cmd); /* getopt said what is wrong */
        else
            rc = c->option(x, ch, optarg);
    }
    free(opts);
    x->argc = argc - optind;
    x->argv = argv + optind;
    x->dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
    return rc;
}

int naq_cli_main(const naq_cli_command *c, void *args, int argc, char **argv)
{
    naq_cli_ctx x;
    memset(&x, 0, sizeof x);
    x.cmd = argv[0];
    x.args = args;
    x.format = NAQ_CLI_FORMAT_TABLE;
    int help = 0;
    int rc = parse(c, &x, argc, argv, &help);
    if (help) {
        print_help(c);
        return NAQ_EXIT_OK;
    }
    if (rc != NAQ_EXIT_OK)
        return rc;
    rc = c->check != NULL ? c->check(&x) : naq_cli_no_operands(&x);
    if (rc != NAQ_EXIT_OK)
        return rc;
    if ((c->flags & NAQ_CLI_CONNECT) &&
        (rc = naq_cli_connect(x.cmd, &x.common, (c->flags & NAQ_CLI_LOGS_EVENTS) != 0,
                              &x.client)) != NAQ_EXIT_OK)
        return rc;
    rc = c->run(&x);
    naq_client_destroy(x.client);
    return rc;
}

int naq_cli_no_operands(const naq_cli_ctx *x)
{
    if (x->argc > 0)
        return naq_cli_usage_error(x->cmd, "unexpected argument '%s'", x->argv[0]);
    return NAQ_EXIT_OK;
}

int naq_cli_operands(const naq_cli_ctx *x, int n, const char *missing)
{
    if (x->argc < n)
        return naq_cli_usage_error(x->cmd, "%s", missing);
    if (x->argc > n)
        return naq_cli_usage_error(x->cmd, "unexpected argument '%s'", x->argv[n]);
    return NAQ_EXIT_OK;
}

/* ---- subcommands ---- */

/* "a, b or c" of the group's names into buf. */
static void names(const naq_cli_group *g, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < g->n && len < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == g->n ? " or " : ", ";
        int k = snprintf(buf + len, cap - len, "%s%s", sep, g->subs[i].name);
        if (k < 0)
            break;
        len += (size_t)k;
    }
}

int naq_cli_dispatch(const naq_cli_group *g, int argc, char **argv)
{
    char list[512];
    names(g, list, sizeof list);
    if (argc < 2)
        return naq_cli_usage_error(argv[0], "which %s? %s", g->what, list);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(g->usage, stdout);
        return NAQ_EXIT_OK;
    }
    for (size_t i = 0; i < g->n; i++) {
        if (strcmp(argv[1], g->subs[i].name) == 0) {
            /* The subcommand sees itself as argv[0], named as typed. */
            argv[1] = (char *)g->subs[i].argv0;
            optind = 1;
            return g->subs[i].run(argc - 1, argv + 1);
        }
    }
    return naq_cli_usage_error(argv[0], "unknown %s '%s': use %s", g->what, argv[1], list);
}
