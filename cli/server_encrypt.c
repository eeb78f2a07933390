/*
 * server_encrypt.c - `naq server --encrypt-store KEYFILE`: nats-server's own
 * encryption of the JetStream store (jobs, results and events at rest), and
 * a guard nats-server does not have.
 *
 * nats-server encrypts every message block and metadata file with keys
 * derived from one key (ChaCha20-Poly1305 here). Two of its behaviours
 * shape this module:
 *
 * - It does not refuse a store it cannot read. nats-server 2.9.10 started
 *   without the key, or with another one, on an encrypted store still
 *   starts and serves; it only logs "Error decrypting our stream metafile"
 *   per stream. naq's first connect then creates new, empty streams in
 *   their place, and the old jobs are gone for good, key or not (seen in
 *   testing). So on the first encrypted start we write DIR/encrypted-store
 *   (the cipher and a fingerprint of the key) and refuse to start on that
 *   directory without the key or with another.
 * - Turned on over an existing plaintext store, 2.9.10 converts it in
 *   place at start ("Encrypting stream ..."). But the plaintext it
 *   replaces stays readable in the disk's free blocks and in every earlier
 *   backup, so "encrypted" would be a promise the disk does not keep; we
 *   refuse a directory whose store already holds files, and the operator
 *   starts the encrypted server on a fresh directory.
 *
 * The key never goes into a file naq writes: the configuration says
 * `key: $NAQ_SERVER_STORE_KEY` and nats-server reads the variable from the
 * environment it inherits from us. The data directory (and so a backup
 * of it) holds no key, and --print-config shows exactly what runs.
 */
#define _GNU_SOURCE /* asprintf, explicit_bzero */
#include "server_encrypt.h"

#include "cli.h"
#include "server_secure.h" /* naq_server_secure_check_file */

#include <errno.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* The variable the configuration names; set only in our own environment,
 * which the nats-server children inherit. */
#define KEY_VAR "NAQ_SERVER_STORE_KEY"
/* ChaCha20-Poly1305, the cipher of nats-server's design (ADR-12), fast
 * without AES hardware. The marker records it: a store made with another
 * cipher is refused rather than misread. */
#define CIPHER "chachapoly"
#define MARKER "encrypted-store"
#define FINGERPRINT_HEX 16 /* 64 bits of SHA-256: tells keys apart, reveals nothing */
#define MAKE_ONE "(umask 077; head -c 32 /dev/urandom | base64 > FILE)"

/* The key goes into the configuration as a quoted string: one line of
 * printable characters that can neither end the quote nor start an escape
 * or a variable. */
static int key_char_ok(char c)
{
    return c > ' ' && c < 0x7f && c != '"' && c != '\\' && c != '$';
}

/* Checks buf[0..n) (trailing newline already stripped); an error is printed. */
static int check_key(const char *path, const char *buf, size_t n)
{
    if (n == 0) {
        naq_cli_error("--encrypt-store %s is empty; make a key with: %s", path, MAKE_ONE);
        return NAQ_EXIT_FAILURE;
    }
    for (size_t i = 0; i < n; i++)
        if (!key_char_ok(buf[i])) {
            naq_cli_error("--encrypt-store %s: the key must be one line of printable characters "
                          "without spaces, quotes, backslashes or '$' (base64 or hex); make one "
                          "with: %s",
                          path, MAKE_ONE);
            return NAQ_EXIT_FAILURE;
        }
    if (n < NAQ_STORE_KEY_MIN) {
        naq_cli_error("--encrypt-store %s: the key has %zu characters, too few to resist "
                      "guessing; use at least %d, e.g. %s",
                      path, n, NAQ_STORE_KEY_MIN, MAKE_ONE);
        return NAQ_EXIT_FAILURE;
    }
    return NAQ_EXIT_OK;
}

int naq_server_encrypt_load(const char *cmd, naq_server_encrypt *e)
{
    if (e->path == NULL)
        return NAQ_EXIT_OK;
    int rc = naq_server_secure_check_file(cmd, "--encrypt-store", e->path, 1);
    if (rc != NAQ_EXIT_OK)
        return rc;
    FILE *f = fopen(e->path, "r");
    if (f == NULL) {
        naq_cli_error("--encrypt-store %s: %s", e->path, strerror(errno));
        return NAQ_EXIT_FAILURE;
    }
    char buf[NAQ_STORE_KEY_MAX + 3]; /* room to see that it is too long */
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n == sizeof buf) {
        naq_cli_error("--encrypt-store %s: the key is longer than %d characters; is it the "
                      "right file?",
                      e->path, NAQ_STORE_KEY_MAX);
        rc = NAQ_EXIT_FAILURE;
    } else {
        /* `echo KEY > FILE` and editors end the line; the newline is no part of the key. */
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
        rc = check_key(e->path, buf, n);
    }
    if (rc == NAQ_EXIT_OK && (e->key = strndup(buf, n)) == NULL) {
        naq_cli_error("out of memory");
        rc = NAQ_EXIT_FAILURE;
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}

/* hex gets FINGERPRINT_HEX + 1 characters: a prefix of SHA-256 over a
 * naq-specific prefix and the key, so it matches no other use of the key. */
static int fingerprint(const char *key, char *hex)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sum[EVP_MAX_MD_SIZE];
    static const char domain[] = "naq store key fingerprint v1";
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, domain, sizeof domain) == 1 &&
             EVP_DigestUpdate(md, key, strlen(key)) == 1 && EVP_DigestFinal_ex(md, sum, NULL) == 1;
    EVP_MD_CTX_free(md);
    for (int i = 0; ok && i < FINGERPRINT_HEX / 2; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    return ok ? 0 : -1;
}

/* Copies the value of a "name: value" line into out when it fits. */
static void field(const char *line, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    if (strncmp(line, name, n) == 0 && strlen(line + n) < cap)
        memcpy(out, line + n, strlen(line + n) + 1);
}

/* Reads the marker: 1 with cipher and fp filled, 0 when there is none,
 * -1 when it cannot be read or is not ours (printed). */
static int read_marker(const char *path, char *cipher, size_t cap, char *fp)
{
    FILE *f = fopen(path, "r");
    if (f == NULL && errno == ENOENT)
        return 0;
    if (f == NULL) {
        naq_cli_error("cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char line[256];
    cipher[0] = fp[0] = '\0';
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        field(line, "cipher: ", cipher, cap);
        field(line, "key-sha256: ", fp, FINGERPRINT_HEX + 1);
    }
    fclose(f);
    if (cipher[0] == '\0' || strlen(fp) != FINGERPRINT_HEX) {
        naq_cli_error("%s is damaged (no cipher or key fingerprint): restore it from where the "
                      "data directory came from; without it naq cannot tell whether a key fits",
                      path);
        return -1;
    }
    return 1;
}

static int write_marker(const char *path, const char *fp)
{
    FILE *f = fopen(path, "wx");
    if (f == NULL || fchmod(fileno(f), 0600) != 0 ||
        fprintf(f,
                "# Written by 'naq server --encrypt-store': the JetStream store in this\n"
                "# directory is encrypted; naq server starts on it only with the same key.\n"
                "cipher: %s\nkey-sha256: %s\n",
                CIPHER, fp) < 0 ||
        fclose(f) != 0) {
        naq_cli_error("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* nftw has no user pointer: it stops at the first regular file, with 1. */
static int is_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path, (void)st, (void)ftw;
    return type == FTW_F;
}

/* 1 when nats-server has stored anything under dir/jetstream. */
static int store_has_files(const char *dir)
{
    char store[NAQ_URL_MAX + 16];
    snprintf(store, sizeof store, "%s/jetstream", dir);
    return nftw(store, is_file, 16, FTW_PHYS) == 1;
}

/* The store is marked encrypted: only the key it was made with may start it. */
static int check_marked(const naq_server_encrypt *e, const char *dir, const char *marker,
                        const char *cipher, const char *fp)
{
    char have[FINGERPRINT_HEX + 1];
    if (e->key == NULL) {
        naq_cli_error("%s holds a store encrypted by 'naq server --encrypt-store' (see %s): "
                      "start it with --encrypt-store KEYFILE and the key it was made with; "
                      "without the key nats-server cannot read the stored jobs",
                      dir, marker);
        return NAQ_EXIT_FAILURE;
    }
    if (fingerprint(e->key, have) != 0) {
        naq_cli_error("cannot compute the fingerprint of the key in %s (OpenSSL)", e->path);
        return NAQ_EXIT_FAILURE;
    }
    if (strcmp(cipher, CIPHER) != 0 || strcmp(have, fp) != 0) {
        naq_cli_error("--encrypt-store %s is not the key %s was encrypted with (its fingerprint "
                      "is %s, the store's is %s in %s): use the original key file; with another "
                      "key nats-server cannot read the stored jobs",
                      e->path, dir, have, fp, marker);
        return NAQ_EXIT_FAILURE;
    }
    return NAQ_EXIT_OK;
}

int naq_server_encrypt_guard(const naq_server_encrypt *e, const char *dir)
{
    char marker[NAQ_URL_MAX + 32], cipher[64], fp[FINGERPRINT_HEX + 1];
    snprintf(marker, sizeof marker, "%s/" MARKER, dir);
    int marked = read_marker(marker, cipher, sizeof cipher, fp);
    if (marked < 0)
        return NAQ_EXIT_FAILURE;
    if (marked)
        return check_marked(e, dir, marker, cipher, fp);
    if (e->key == NULL)
        return NAQ_EXIT_OK;
    if (store_has_files(dir)) {
        naq_cli_error("%s holds an unencrypted store: encrypting it now would leave its jobs "
                      "and events readable in the disk's free blocks and in earlier backups. "
                      "Start --encrypt-store on a new --data directory (let the workers drain "
                      "this one first; docs/security.md), or remove %s/jetstream if nothing in "
                      "it is needed",
                      dir, dir);
        return NAQ_EXIT_FAILURE;
    }
    if (fingerprint(e->key, fp) != 0) {
        naq_cli_error("cannot compute the fingerprint of the key in %s (OpenSSL)", e->path);
        return NAQ_EXIT_FAILURE;
    }
    return write_marker(marker, fp) == 0 ? NAQ_EXIT_OK : NAQ_EXIT_FAILURE;
}

int naq_server_encrypt_export(const naq_server_encrypt *e)
{
    if (e->key == NULL)
        return 0;
    /* nats-server parses the variable's value as a configuration value:
     * quoted, a key of digits or with '=' stays one string. */
    char *quoted = NULL;
    if (asprintf(&quoted, "\"%s\"", e->key) < 0)
        return -1;
    int rc = setenv(KEY_VAR, quoted, 1);
    explicit_bzero(quoted, strlen(quoted));
    free(quoted);
    return rc;
}

void naq_server_encrypt_write(FILE *f, const naq_server_encrypt *e)
{
    if (e->path == NULL)
        return;
    fprintf(f,
            "  # The key is in %s; naq server hands it to nats-server in the\n"
            "  # environment, so no file in the data directory holds it.\n"
            "  cipher: " CIPHER "\n"
            "  key: $" KEY_VAR "\n",
            e->path);
}

void naq_server_encrypt_free(naq_server_encrypt *e)
{
    if (e->key != NULL) {
        explicit_bzero(e->key, strlen(e->key));
        free(e->key);
    }
    e->key = NULL;
}
