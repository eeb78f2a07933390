/*
 * security_support.h - throwaway certificates and secured servers for the
 * security tests: a CA, server certificates for chosen names, a client
 * certificate, and nats-server configuration files.
 */
#ifndef NAQ_SECURITY_SUPPORT_H
#define NAQ_SECURITY_SUPPORT_H

/* Includers define _GNU_SOURCE first (memmem, nftw in tree_find). */

#include "harness.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Runs a shell command quietly; fails the test when it fails. */
static inline void sec_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char quiet[4200];
    snprintf(quiet, sizeof quiet, "(%s) >/dev/null 2>&1", cmd);
    if (system(quiet) != 0)
        fail_msg("command failed (is openssl installed? scripts/install-deps.sh): %s", cmd);
}

/* dir/ca.pem + ca.key: a CA. */
static inline void sec_make_ca(const char *dir, const char *name)
{
    sec_sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout %s.key -out %s.pem "
           "-days 1 -subj /CN=%s",
           dir, name, name, name);
}

/* dir/<name>.pem + <name>.key signed by dir/<ca>.pem for subjectAltName
 * `san` (e.g. "IP:127.0.0.1,DNS:localhost"). */
static inline void sec_make_cert(const char *dir, const char *ca, const char *name, const char *san)
{
    sec_sh("cd %s && openssl req -newkey rsa:2048 -nodes -keyout %s.key -out %s.csr "
           "-subj /CN=%s && printf 'subjectAltName=%s\\n' > %s.ext && "
           "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -out %s.pem "
           "-days 1 -extfile %s.ext",
           dir, name, name, name, san, name, name, ca, ca, name, name);
}

static inline void sec_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static inline char *sec_path(const char *dir, const char *leaf)
{
    static char buf[8][300];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 300, "%s/%s", dir, leaf);
    return p;
}

/* A temp dir for certificates and configs; naq_test_rmtree it. */
static inline void sec_tmpdir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/naq-test-sec-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

/* nftw has no user pointer: the needle and the first file holding it. */
static const char *tree_needle;
static char tree_hit[512];

static inline int file_holds_needle(const char *path, const struct stat *st, int type,
                                    struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || st->st_size == 0)
        return 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) /* removed meanwhile by a running server */
        return 0;
    char *buf = malloc((size_t)st->st_size);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (size_t)st->st_size, f);
    fclose(f);
    int hit = memmem(buf, n, tree_needle, strlen(tree_needle)) != NULL;
    free(buf);
    if (hit)
        snprintf(tree_hit, sizeof tree_hit, "%s", path);
    return hit;
}

/* The first file under dir (binary-safe, whole files) holding needle, or
 * NULL. Returns a static buffer. */
static inline const char *tree_find(const char *dir, const char *needle)
{
    tree_needle = needle;
    tree_hit[0] = '\0';
    return nftw(dir, file_holds_needle, 16, FTW_PHYS) == 1 ? tree_hit : NULL;
}

#endif
