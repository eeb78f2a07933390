/*
 * server_secure.c - the TLS and users sections of the configuration that
 * `naq server` writes for nats-server, so an operator secures the local
 * server without reading nats-server's manual.
 *
 * The auth file names each user, how it authenticates (a password, which
 * may be a bcrypt hash, or an NKey public key) and its role; the
 * permissions of the role come from the library (naq_role_permissions),
 * the same block `naq auth permissions` prints. Key files and the auth
 * file must not be readable by other users: a key anyone on the machine
 * can read protects nothing, and naq says so instead of starting.
 */
#define _GNU_SOURCE /* asprintf */
#include "server_secure.h"

#include "cli.h"
#include "internal.h" /* naq__check_private_file */

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int naq_server_secure_option(naq_server_secure *s, int ch, const char *arg)
{
    switch (ch) {
    case NAQ_SERVER_OPT_TLS_CERT: s->tls_cert = arg; return 1;
    case NAQ_SERVER_OPT_TLS_KEY: s->tls_key = arg; return 1;
    case NAQ_SERVER_OPT_TLS_CA: s->tls_ca = arg; return 1;
    case NAQ_SERVER_OPT_AUTH: s->auth = arg; return 1;
    default: return 0;
    }
}

int naq_server_secure_tls(const naq_server_secure *s)
{
    return s->tls_cert != NULL;
}

/* Strings go into the configuration quoted: refuse what would end the
 * quote or start an escape rather than escaping it. */
static int quotable(const char *v)
{
    return v != NULL && v[0] != '\0' && strpbrk(v, "\"\\\n\r$") == NULL;
}

int naq_server_secure_check_file(const char *cmd, const char *flag, const char *path, int private)
{
    struct stat st;
    if (!quotable(path))
        return naq_cli_usage_error(cmd,
                                   "%s: use a path without quotes, backslashes, '$' or "
                                   "newlines",
                                   flag);
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        naq_cli_error("%s %s: %s", flag, path, strerror(errno));
        return NAQ_EXIT_FAILURE;
    }
    if (private && naq__check_private_file(flag, path, -1) != NAQ_OK) {
        naq_cli_error("%s", naq_last_error());
        return NAQ_EXIT_FAILURE;
    }
    return NAQ_EXIT_OK;
}

/* Appends one user's entry; an error is printed. */
static int add_user(const char *path, size_t i, json_t *u, char **out)
{
    const char *name = json_string_value(json_object_get(u, "user"));
    const char *password = json_string_value(json_object_get(u, "password"));
    const char *nkey = json_string_value(json_object_get(u, "nkey"));
    const char *role_name = json_string_value(json_object_get(u, "role"));
    json_t *queues = json_object_get(u, "queues");
    naq_role role;
    if (!json_is_object(u) || (name == NULL) == (nkey == NULL) || (name && !password) ||
        (nkey && password)) {
        naq_cli_error("%s: user %zu needs \"user\" with \"password\", or \"nkey\"", path, i + 1);
        return -1;
    }
    if ((name && (!quotable(name) || !quotable(password))) || (nkey && !quotable(nkey)) ||
        (nkey && (nkey[0] != 'U' || strlen(nkey) != 56))) {
        naq_cli_error("%s: user %zu: names and passwords may not hold quotes, backslashes, '$' "
                      "or newlines (a bcrypt hash is fine), and an nkey is a public user key "
                      "of 56 characters starting with U ('naq auth nkey' makes one)",
                      path, i + 1);
        return -1;
    }
    if (role_name == NULL || naq_role_parse(role_name, &role) != NAQ_OK) {
        naq_cli_error("%s: user %zu needs \"role\": producer, worker, reader or admin", path,
                      i + 1);
        return -1;
    }
    if (queues != NULL && (role != NAQ_ROLE_WORKER || !json_is_array(queues))) {
        naq_cli_error("%s: user %zu: \"queues\" is a list, for a worker only", path, i + 1);
        return -1;
    }
    const char *qv[65] = {NULL};
    size_t nq = json_array_size(queues);
    for (size_t k = 0; k < nq && k < 64; k++)
        if ((qv[k] = json_string_value(json_array_get(queues, k))) == NULL) {
            naq_cli_error("%s: user %zu: queues are strings", path, i + 1);
            return -1;
        }
    naq_config cfg;
    naq_config_init(&cfg);
    if (naq_config_from_env(&cfg) != NAQ_OK) {
        naq_cli_error("%s", naq_last_error());
        return -1;
    }
    char *perms = NULL;
    if (naq_role_permissions(&cfg, role, qv, 4, &perms) != NAQ_OK) {
        naq_cli_error("%s: user %zu: %s", path, i + 1, naq_last_error());
        return -1;
    }
    char *was = *out;
    int n =
        name ? asprintf(out, "%s  { # %s\n    user: \"%s\", password: \"%s\"\n%s  }\n", was,
                        role_name, name, password, perms)
             : asprintf(out, "%s  { # %s\n    nkey: \"%s\"\n%s  }\n", was, role_name, nkey, perms);
    free(perms);
    free(was);
    if (n < 0) {
        *out = NULL;
        naq_cli_error("out of memory");
        return -1;
    }
    return 0;
}

/* Parses the auth file into s->users (the entries of `users = [...]`). */
static int load_users(const char *cmd, naq_server_secure *s)
{
    int rc = naq_server_secure_check_file(cmd, "--auth", s->auth, 1);
    if (rc != NAQ_EXIT_OK)
        return rc;
    json_error_t err;
    json_t *root = json_load_file(s->auth, 0, &err);
    json_t *users = json_object_get(root, "users");
    if (!json_is_array(users) || json_array_size(users) == 0) {
        naq_cli_error("%s: %s", s->auth,
                      root == NULL ? err.text
                                   : "expected {\"users\": [{\"user\": ..., \"password\": ..., "
                                     "\"role\": ...}, ...]}");
        json_decref(root);
        return NAQ_EXIT_FAILURE;
    }
    s->users = strdup("");
    for (size_t i = 0; s->users != NULL && i < json_array_size(users); i++)
        if (add_user(s->auth, i, json_array_get(users, i), &s->users) != 0) {
            json_decref(root);
            return NAQ_EXIT_FAILURE;
        }
    json_decref(root);
    if (s->users == NULL) {
        naq_cli_error("out of memory");
        return NAQ_EXIT_FAILURE;
    }
    return NAQ_EXIT_OK;
}

int naq_server_secure_check(const char *cmd, naq_server_secure *s)
{
    int rc;
    if ((s->tls_cert != NULL) != (s->tls_key != NULL))
        return naq_cli_usage_error(cmd, "--tls-cert and --tls-key go together");
    if (s->tls_ca != NULL && s->tls_cert == NULL)
        return naq_cli_usage_error(cmd, "--tls-ca needs --tls-cert and --tls-key (the server's "
                                        "own certificate)");
    if (s->tls_cert != NULL &&
        ((rc = naq_server_secure_check_file(cmd, "--tls-cert", s->tls_cert, 0)) != NAQ_EXIT_OK ||
         (rc = naq_server_secure_check_file(cmd, "--tls-key", s->tls_key, 1)) != NAQ_EXIT_OK))
        return rc;
    if (s->tls_ca != NULL &&
        (rc = naq_server_secure_check_file(cmd, "--tls-ca", s->tls_ca, 0)) != NAQ_EXIT_OK)
        return rc;
    /* Built here to report a bad file before anything starts, and again
     * by write: nothing stays allocated across cmd_server's early exits. */
    if (s->auth != NULL) {
        rc = load_users(cmd, s);
        naq_server_secure_free(s);
        if (rc != NAQ_EXIT_OK)
            return rc;
    }
    return NAQ_EXIT_OK;
}

/* nats-server resolves relative paths against its own directory. */
static void absolute(const char *path, char *buf, size_t cap)
{
    char cwd[1024];
    if (path[0] == '/' || getcwd(cwd, sizeof cwd) == NULL)
        snprintf(buf, cap, "%s", path);
    else
        snprintf(buf, cap, "%s/%s", cwd, path);
}

/* A tls block at `indent` with the node certificate and, when ca is set,
 * the CA to verify peers with, followed by verify_line (may be ""). */
static void write_tls(FILE *f, const naq_server_secure *s, const char *indent, const char *ca,
                      const char *verify_line)
{
    char cert[2048], key[2048], ca_abs[2048];
    absolute(s->tls_cert, cert, sizeof cert);
    absolute(s->tls_key, key, sizeof key);
    fprintf(f, "%stls {\n%s  cert_file: \"%s\"\n%s  key_file: \"%s\"\n", indent, indent, cert,
            indent, key);
    if (ca != NULL) {
        absolute(ca, ca_abs, sizeof ca_abs);
        fprintf(f, "%s  ca_file: \"%s\"\n%s", indent, ca_abs, verify_line);
    }
    fprintf(f, "%s}\n", indent);
}

int naq_server_secure_write(FILE *f, const naq_server_secure *s)
{
    /* A file, not --print-config's stdout (a terminal is not ours to chmod). */
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (S_ISREG(st.st_mode) && fchmod(fileno(f), 0600) != 0))
        return -1;
    if (s->tls_cert != NULL)
        write_tls(f, s, "", s->tls_ca, "  verify: true\n");
    if (s->auth != NULL) {
        naq_server_secure built = *s;
        built.users = NULL;
        if (load_users("naq server", &built) != NAQ_EXIT_OK) { /* changed since check */
            naq_server_secure_free(&built);
            errno = EINVAL;
            return -1;
        }
        fprintf(f, "authorization {\n  users = [\n%s  ]\n}\n", built.users);
        naq_server_secure_free(&built);
    }
    return ferror(f) ? -1 : 0;
}

void naq_server_secure_write_route_tls(FILE *f, const naq_server_secure *s)
{
    /* nats-server makes both ends of a route verify the other's
     * certificate, without a verify line. */
    if (s->tls_ca != NULL)
        write_tls(f, s, "  ", s->tls_ca, "");
}

void naq_server_secure_free(naq_server_secure *s)
{
    free(s->users);
    s->users = NULL;
}
