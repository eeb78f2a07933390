/*
 * cmd_enqueue.c - `naq enqueue`: queue one job and print its id.
 *
 * stdout carries the job id alone, so `id=$(naq enqueue ...)` works;
 * everything else goes to stderr. A command after `--` becomes a job for
 * the built-in "exec" handler with args {"argv": [...]}.
 */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: naq enqueue -q QUEUE -f FUNCTION [--args JSON] [OPTIONS]\n"
    "       naq enqueue -q QUEUE [OPTIONS] -- COMMAND [ARG...]\n"
    "\n"
    "Queues a job and prints its id (alone, on stdout) once the server has\n"
    "stored it. With '-- COMMAND ARG...' the job runs that command through the\n"
    "built-in \"exec\" handler of `naq worker`.\n"
    "\n"
    "  -q, --queue QUEUE      queue to put the job on (required)\n"
    "  -f, --function NAME    handler that runs the job (a worker registers it)\n"
    "      --args JSON        arguments passed to the handler (default [])\n"
    "      --retries N        further attempts after a failure (default 0)\n"
    "      --timeout DURATION stop the job after this long (500ms, 30s, 5m, 2h)\n"
    "      --tag KEY=VALUE    a tag carried by the job and its events (repeatable)\n"
    "      --priority P       lowest, low, normal (default), high, critical or 0-4\n"
    "      --id JOB_ID        use this id: enqueueing the same id again within\n"
    "                         2 minutes stores the job once\n"
    "  -h, --help             this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "examples:\n"
    "  naq enqueue -q default -- sh -c 'echo hello'\n"
    "  id=$(naq enqueue -q emails -f send_email --args '{\"to\":\"a@b.c\"}' --retries 3)\n"
    "\n"
    "exit codes: 0 queued, 1 failure (server), 2 bad usage (nothing queued)\n";

enum { OPT_ARGS = NAQ_CLI_OPT_FIRST_FREE, OPT_RETRIES, OPT_TIMEOUT, OPT_TAG, OPT_PRIORITY, OPT_ID };

static int parse_priority(const char *cmd, const char *text, int *out)
{
    static const char *const names[NAQ_PRIORITY_LEVELS] = {"lowest", "low", "normal", "high",
                                                           "critical"};
    for (int i = 0; i < NAQ_PRIORITY_LEVELS; i++) {
        if (strcmp(text, names[i]) == 0 || (text[0] == '0' + i && text[1] == '\0')) {
            *out = i;
            return NAQ_EXIT_OK;
        }
    }
    return naq_cli_usage_error(cmd,
                               "unknown priority '%s': use lowest, low, normal, high, "
                               "critical or 0-4",
                               text);
}

/* Adds "KEY=VALUE" to the tags object. */
static int add_tag(const char *cmd, json_t *tags, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv)
        return naq_cli_usage_error(cmd, "--tag needs KEY=VALUE, got '%s'", kv);
    json_t *v = json_string(eq + 1);
    if (v == NULL || json_object_setn_new(tags, kv, (size_t)(eq - kv), v) != 0)
        return naq_cli_usage_error(cmd, "--tag '%s' is not valid UTF-8", kv);
    return NAQ_EXIT_OK;
}

/* {"argv": [cmd, arg, ...]} as compact JSON, heap; NULL on bad UTF-8. */
static char *exec_args(int argc, char **argv)
{
    json_t *list = json_array();
    for (int i = 0; i < argc; i++) {
        json_t *s = json_string(argv[i]);
        if (s == NULL) {
            json_decref(list);
            return NULL;
        }
        json_array_append_new(list, s);
    }
    json_t *o = json_pack("{s:o}", "argv", list);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

int naq_cmd_enqueue(int argc, char **argv)
{
    const char *cmd = argv[0];
    static const struct option opts[] = {{"queue", required_argument, NULL, 'q'},
                                         {"function", required_argument, NULL, 'f'},
                                         {"args", required_argument, NULL, OPT_ARGS},
                                         {"retries", required_argument, NULL, OPT_RETRIES},
                                         {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                         {"tag", required_argument, NULL, OPT_TAG},
                                         {"priority", required_argument, NULL, OPT_PRIORITY},
                                         {"id", required_argument, NULL, OPT_ID},
                                         {"help", no_argument, NULL, 'h'},
                                         NAQ_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    naq_cli_common common = {0};
    naq_job_opts jo;
    naq_job_opts_init(&jo);
    json_t *tags = json_object();
    char *args_text = NULL;
    naq_client *client = NULL;
    int rc = NAQ_EXIT_OK, ch;
    long long n = 0;

    if (tags == NULL) {
        naq_cli_error("out of memory");
        return NAQ_EXIT_FAILURE;
    }
    /* '+': stop at the first non-option, so a command's own flags after
     * `--` are never taken for ours. */
    while (rc == NAQ_EXIT_OK && (ch = getopt_long(argc, argv, "+q:f:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'q': jo.queue = optarg; break;
        case 'f': jo.function = optarg; break;
        case OPT_ARGS: jo.args_json = optarg; break;
        case OPT_RETRIES:
            if (!naq_cli_parse_int(cmd, "--retries", optarg, 0, 1000000, &n))
                rc = NAQ_EXIT_USAGE;
            jo.max_retries = (int)n;
            break;
        case OPT_TIMEOUT:
            if (naq_parse_duration_ms(optarg, &jo.timeout_ms) != NAQ_OK)
                rc = naq_cli_usage_error(cmd, "--timeout: %s", naq_last_error());
            break;
        case OPT_TAG: rc = add_tag(cmd, tags, optarg); break;
        case OPT_PRIORITY: rc = parse_priority(cmd, optarg, &jo.priority); break;
        case OPT_ID: jo.job_id = optarg; break;
        case 'h': fputs(usage, stdout); goto out;
        default:
            if (!naq_cli_common_option(&common, ch, optarg))
                rc = naq_cli_try_help(cmd);
            break;
        }
    }
    if (rc != NAQ_EXIT_OK)
        goto out;

    int dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
    if (optind < argc && !dashdash) {
        rc = naq_cli_usage_error(cmd,
                                 "unexpected argument '%s'; to run a command, put it after "
                                 "'--'",
                                 argv[optind]);
        goto out;
    }
    if (jo.queue == NULL) {
        rc = naq_cli_usage_error(cmd, "which queue? give -q QUEUE");
        goto out;
    }
    if (dashdash) {
        if (optind == argc) {
            rc = naq_cli_usage_error(cmd, "nothing after '--': give the command to run");
            goto out;
        }
        if (jo.function != NULL && strcmp(jo.function, NAQ_EXEC_FUNCTION) != 0) {
            rc = naq_cli_usage_error(cmd, "give either -f FUNCTION or '-- COMMAND', not both");
            goto out;
        }
        if (jo.args_json != NULL) {
            rc = naq_cli_usage_error(cmd, "--args cannot be combined with '-- COMMAND' (the "
                                          "command line is the argument)");
            goto out;
        }
        if ((args_text = exec_args(argc - optind, argv + optind)) == NULL) {
            rc = naq_cli_usage_error(cmd, "the command line is not valid UTF-8");
            goto out;
        }
        jo.function = NAQ_EXEC_FUNCTION;
        jo.args_json = args_text;
    } else if (jo.function == NULL) {
        rc = naq_cli_usage_error(cmd, "what should the job run? give -f FUNCTION or "
                                      "'-- COMMAND ARG...'");
        goto out;
    }
    if (json_object_size(tags) > 0) {
        /* Kept until the end: naq_enqueue borrows it. */
        jo.tags_json = json_dumps(tags, JSON_COMPACT);
    }

    /* Reject bad names before touching the network, so a typo is reported
     * as a typo even when no server runs. naq_enqueue checks them again. */
    naq_status s;
    if ((s = naq_id_validate("queue name", jo.queue)) != NAQ_OK ||
        (jo.job_id != NULL && (s = naq_id_validate("job id", jo.job_id)) != NAQ_OK)) {
        rc = naq_cli_fail(s);
        goto out;
    }

    if ((rc = naq_cli_connect(&common, 1, &client)) != NAQ_EXIT_OK)
        goto out;
    char id[NAQ_ID_SIZE];
    if ((s = naq_enqueue(client, &jo, id)) != NAQ_OK) {
        rc = naq_cli_fail(s);
        goto out;
    }
    printf("%s\n", id);
out:
    naq_client_destroy(client);
    free((char *)jo.tags_json);
    free(args_text);
    json_decref(tags);
    return rc;
}
