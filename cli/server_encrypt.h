/*
 * server_encrypt.h - `naq server --encrypt-store KEYFILE`: nats-server's own
 * JetStream store encryption, and the guard that keeps a data directory
 * from being started with the wrong key or none (server_encrypt.c).
 * cmd_server.c only forwards its flag here.
 */
#ifndef NAQ_SERVER_ENCRYPT_H
#define NAQ_SERVER_ENCRYPT_H

#include <stdio.h>

/* getopt_long value, next to server_secure.h's. */
#define NAQ_SERVER_OPT_ENCRYPT_STORE 0x410

#define NAQ_SERVER_ENCRYPT_OPTION                                                                  \
    {                                                                                              \
        "encrypt-store", required_argument, NULL, NAQ_SERVER_OPT_ENCRYPT_STORE                     \
    }

#define NAQ_SERVER_ENCRYPT_USAGE                                                                   \
    "      --encrypt-store KEYFILE\n"                                                              \
    "                         encrypt the JetStream store on disk with the key in\n"               \
    "                         KEYFILE (at least 32 characters; refused when others\n"              \
    "                         may read it); only on a new data directory. Make one:\n"             \
    "                         (umask 077; head -c 32 /dev/urandom | base64 > store.key)\n"         \
    "                         and keep it off the data disk and out of its backups:\n"             \
    "                         without it the store cannot be read, and naq server\n"               \
    "                         refuses to start on it (docs/security.md)\n"

/* The key is at least this long: 32 random bytes in base64 are 44. */
#define NAQ_STORE_KEY_MIN 32
#define NAQ_STORE_KEY_MAX 1024

typedef struct {
    const char *path; /* --encrypt-store, from argv; NULL = not given */
    char *key;        /* heap after naq_server_encrypt_load; naq_server_encrypt_free frees */
} naq_server_encrypt;

/* Reads and checks the key file when the flag was given (private, one line
 * of 32 to 1024 printable characters without quotes or backslashes, the
 * trailing newline stripped). Returns an exit code; on error it is
 * printed and nothing is held. */
int naq_server_encrypt_load(const char *cmd, naq_server_encrypt *e);

/* Before the first start of nats-server on dir: refuses a directory
 * encrypted with another key or started without --encrypt-store, and an
 * unencrypted store that already holds data; records the key's
 * fingerprint in dir/encrypted-store on the first encrypted start. Returns
 * an exit code; on error it is printed. */
int naq_server_encrypt_guard(const naq_server_encrypt *e, const char *dir);

/* Hands the key to nats-server through the environment it inherits (the
 * configuration only names the variable, so no file in the data
 * directory, nor --print-config, ever holds the key). 0, or -1 with errno. */
int naq_server_encrypt_export(const naq_server_encrypt *e);

/* Appends the cipher and key lines to the jetstream section being written
 * to f; nothing when the flag was not given. */
void naq_server_encrypt_write(FILE *f, const naq_server_encrypt *e);

/* Frees and wipes the key. Accepts an empty e. */
void naq_server_encrypt_free(naq_server_encrypt *e);

#endif
