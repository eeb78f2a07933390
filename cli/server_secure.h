/*
 * server_secure.h - `naq server --tls-cert/--tls-key/--tls-ca/--auth`: the
 * TLS and user sections of the nats-server configuration naq writes
 * (server_secure.c). cmd_server.c only forwards its flags here.
 */
#ifndef NAQ_SERVER_SECURE_H
#define NAQ_SERVER_SECURE_H

#include <stdio.h>

/* getopt_long values, far from the commands' own. */
enum {
    NAQ_SERVER_OPT_TLS_CERT = 0x400,
    NAQ_SERVER_OPT_TLS_KEY,
    NAQ_SERVER_OPT_TLS_CA,
    NAQ_SERVER_OPT_AUTH,
};

#define NAQ_SERVER_SECURE_OPTIONS                                                                  \
    {"tls-cert", required_argument, NULL, NAQ_SERVER_OPT_TLS_CERT},                                \
        {"tls-key", required_argument, NULL, NAQ_SERVER_OPT_TLS_KEY},                              \
        {"tls-ca", required_argument, NULL, NAQ_SERVER_OPT_TLS_CA},                                \
    {                                                                                              \
        "auth", required_argument, NULL, NAQ_SERVER_OPT_AUTH                                       \
    }

#define NAQ_SERVER_SECURE_USAGE                                                                    \
    "      --tls-cert FILE    serve TLS with this certificate (PEM); needs --tls-key\n"            \
    "      --tls-key FILE     its private key (PEM); refused when others may read it\n"            \
    "      --tls-ca FILE      also require client certificates signed by this CA\n"                \
    "                         (mutual TLS; clients set NAQ_TLS_CERT and NAQ_TLS_KEY)\n"            \
    "      --auth FILE        users and their roles (JSON, docs/security.md): each\n"              \
    "                         {\"user\": U, \"password\": P} or {\"nkey\": \"U...\"}, with\n"      \
    "                         \"role\": producer|worker|reader|admin and, for a worker,\n"         \
    "                         \"queues\": [...]; refused when others may read it\n"

typedef struct {
    const char *tls_cert, *tls_key, *tls_ca, *auth; /* from argv; NULL = not given */
    char *users; /* heap while the users section is being built; NULL otherwise */
} naq_server_secure;

/* Records one of the flags above: 1 if ch was one, else 0. */
int naq_server_secure_option(naq_server_secure *s, int ch, const char *arg);

/* Checks the flags and files (readable, keys and auth file not readable
 * by others, the auth file well formed). Returns an exit code; on error it
 * is printed. Holds no memory afterwards. */
int naq_server_secure_check(const char *cmd, naq_server_secure *s);

/* Checks a file flag: a quotable path, readable, and with private = 1 not
 * readable by other users (a secret others can read protects nothing).
 * Returns an exit code; on error it is printed. --encrypt-store uses it too. */
int naq_server_secure_check_file(const char *cmd, const char *flag, const char *path, int private);

/* 1 when clients must use TLS. */
int naq_server_secure_tls(const naq_server_secure *s);

/* Appends the tls and authorization sections (the users built from the
 * auth file again) to the configuration being written to f, and makes f
 * readable by its owner only (it may hold passwords). 0, or -1 with errno
 * (the reason is printed when the auth file went bad since the check). */
int naq_server_secure_write(FILE *f, const naq_server_secure *s);

/* Appends the tls section of a cluster block: with --tls-ca, routes
 * between nodes use the node certificate and verify each other's with that
 * CA (nats-server requires both ends to present one). Nothing without
 * --tls-ca: a CA is what the nodes need to trust each other. */
void naq_server_secure_write_route_tls(FILE *f, const naq_server_secure *s);

/* Frees a users section being built. Accepts an empty s. */
void naq_server_secure_free(naq_server_secure *s);

#endif
