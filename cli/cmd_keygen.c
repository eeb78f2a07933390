/*
 * cmd_keygen.c - `naq keygen FILE`: a new payload key file for
 * NAQ_ENCRYPTION_KEY_FILE (docs/security.md, "Payload encryption").
 *
 * The file is written by the library (crypt.c owns the format) with mode
 * 0600 and never over an existing file: a key file may be the only copy of
 * the key that opens stored jobs.
 */
#include "cli.h"
#include "core/crypt.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: naq keygen FILE\n"
    "\n"
    "Write a new payload encryption key to FILE (mode 0600; refused if FILE\n"
    "exists) and print its key id. Point NAQ_ENCRYPTION_KEY_FILE at the file on\n"
    "every producer, worker and reader that may see job args and results:\n"
    "producers then encrypt args, workers results and error messages, and naq\n"
    "commands without the key show <encrypted>.\n"
    "\n"
    "The file holds one '<key id> <base64 key>' line per key; the first key\n"
    "encrypts, every key decrypts. To rotate, make a new file and put its key\n"
    "line above the old ones in the file the programs use.\n"
    "\n"
    "examples:\n"
    "  naq keygen ~/.config/naq/payload.key\n"
    "  NAQ_ENCRYPTION_KEY_FILE=~/.config/naq/payload.key naq worker -q emails\n"
    "\n"
    "exit codes: 0 ok, 1 failure (FILE exists or cannot be written), 2 bad usage\n";

static int check(naq_cli_ctx *x)
{
    if (x->argc != 1)
        return naq_cli_usage_error(x->cmd, "keygen needs one FILE to write the key to");
    return NAQ_EXIT_OK;
}

static int run(naq_cli_ctx *x)
{
    char kid[NAQ_CRYPT_KID_MAX + 1];
    naq_status s = naq__crypt_keygen(x->argv[0], kid);
    if (s != NAQ_OK)
        return naq_cli_fail(x->cmd, s);
    printf("%s\n", kid);
    return NAQ_EXIT_OK;
}

int naq_cmd_keygen(int argc, char **argv)
{
    static const naq_cli_command c = {usage, NULL,  NULL, NULL, NAQ_CLI_NO_CONNECTION_FLAGS,
                                      NULL,  check, run};
    return naq_cli_main(&c, NULL, argc, argv);
}
