/*
 * test_install.c - `cmake --install` into a temporary prefix gives what a C
 * programmer and a shell user expect: libnaq.so with a versioned SONAME
 * exporting only the public API, libnaq.a, the headers, naq.pc, the naq
 * binary, a man page listing every command of `naq --help`, the docs; and
 * the README's C example, compiled with `pkg-config --cflags --libs naq`
 * alone, runs its job on a real server.
 *
 * One prefix is installed for the whole group (group set-up); the paths of
 * the build and source trees come from CMake (tests/CMakeLists.txt).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NAQ_EXAMPLE_CFLAGS
#define NAQ_EXAMPLE_CFLAGS ""
#endif

static char prefix[256];

/* Runs a shell command; returns what it printed on stdout (heap, free())
 * and its exit status in *rc. */
static char *sh(const char *cmd, int *rc)
{
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        fail_msg("cannot run %s", cmd);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

/* Like sh, but fails the test (printing the output) unless it exits 0. */
static char *sh_ok(const char *cmd)
{
    int rc;
    char *out = sh(cmd, &rc);
    if (rc != 0)
        fail_msg("`%s` exited %d:\n%s", cmd, rc, out);
    return out;
}

static int install_prefix(void **state)
{
    (void)state;
    snprintf(prefix, sizeof prefix, "%s/naq-install-XXXXXX", P_tmpdir);
    if (mkdtemp(prefix) == NULL)
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' --install '%s' --prefix '%s' 2>&1", NAQ_CMAKE, NAQ_BUILD_DIR,
             prefix);
    int rc;
    char *out = sh(cmd, &rc);
    if (rc != 0)
        fprintf(stderr, "%s exited %d:\n%s", cmd, rc, out);
    free(out);
    return rc;
}

static int remove_prefix(void **state)
{
    (void)state;
    naq_test_rmtree(prefix);
    return 0;
}

static void assert_installed(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", prefix, rel);
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("%s is not installed", path);
}

static void the_prefix_holds_libraries_headers_pc_binary_man_page_and_docs(void **state)
{
    (void)state;
    const char *const files[] = {
        NAQ_INSTALL_LIBDIR "/libnaq.a",
        NAQ_INSTALL_LIBDIR "/libnaq.so",
        NAQ_INSTALL_LIBDIR "/libnaq.so." NAQ_SOVERSION,
        NAQ_INSTALL_LIBDIR "/pkgconfig/naq.pc",
        "include/naq/naq.h",
        "include/naq/worker.h",
        "bin/naq",
        "share/man/man1/naq.1",
        "share/doc/naq/README.md",
        "share/doc/naq/cli.md",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        assert_installed(files[i]);
}

static void the_shared_library_has_a_versioned_soname_and_exports_only_the_public_api(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "readelf -d '%s/%s/libnaq.so'", prefix, NAQ_INSTALL_LIBDIR);
    char *out = sh_ok(cmd);
    if (strstr(out, "[libnaq.so." NAQ_SOVERSION "]") == NULL)
        fail_msg("no SONAME libnaq.so.%s in:\n%s", NAQ_SOVERSION, out);
    free(out);

    snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s/%s/libnaq.so'", prefix, NAQ_INSTALL_LIBDIR);
    out = sh_ok(cmd);
    assert_non_null(strstr(out, " T naq_enqueue\n"));
    assert_non_null(strstr(out, " T naq_worker_run\n"));
    if (strstr(out, " naq__") != NULL)
        fail_msg("internal naq__ symbols are exported:\n%s", out);
    free(out);
}

/* Every command `naq --help` lists has its section in the man page, and
 * the page carries the version `naq --version` prints. */
static void the_man_page_describes_every_command_of_naq_help(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cat '%s/share/man/man1/naq.1'", prefix);
    char *man = sh_ok(cmd);
    snprintf(cmd, sizeof cmd, "'%s/bin/naq' --help", prefix);
    char *help = sh_ok(cmd);

    const char *list = strstr(help, "\ncommands:\n");
    assert_non_null(list);
    list += strlen("\ncommands:\n");
    int commands = 0;
    char name[64];
    for (const char *line = list; strncmp(line, "  ", 2) == 0 && sscanf(line, " %63s", name) == 1;
         line = strchr(line, '\n') + 1) {
        char section[128];
        snprintf(section, sizeof section, ".SS \"naq %s\"\n", name);
        if (strstr(man, section) == NULL)
            fail_msg("the man page has no section for `naq %s`", name);
        commands++;
    }
    assert_true(commands >= 10);

    snprintf(cmd, sizeof cmd, "'%s/bin/naq' --version", prefix);
    char *version = sh_ok(cmd);
    char th[128];
    char v[32] = "";
    sscanf(version, "naq %31s", v);
    snprintf(th, sizeof th, "\"naq %s\"", v);
    if (strstr(man, th) == NULL)
        fail_msg("the man page does not carry the version of %s", version);
    free(version);
    free(help);
    free(man);
}

/* The README's C example (its first ```c block) as a file. */
static void write_readme_example(const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on' '%s/README.md'",
             NAQ_SOURCE_DIR);
    char *code = sh_ok(cmd);
    assert_non_null(strstr(code, "int main(void)"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(code, f);
    assert_int_equal(fclose(f), 0);
    free(code);
}

static void the_readme_example_builds_with_pkg_config_alone_and_runs_a_job(void **state)
{
    (void)state;
    naq_test_server srv;
    naq_test_server_start(&srv);
    char src[512], app[512], cmd[2048];
    snprintf(src, sizeof src, "%s/app.c", prefix);
    snprintf(app, sizeof app, "%s/app", prefix);
    write_readme_example(src);

    snprintf(cmd, sizeof cmd,
             "export PKG_CONFIG_PATH='%s/%s/pkgconfig'; "
             "cc -Werror %s '%s' -o '%s' $(pkg-config --cflags --libs naq) 2>&1",
             prefix, NAQ_INSTALL_LIBDIR, NAQ_EXAMPLE_CFLAGS, src, app);
    free(sh_ok(cmd));

    /* It links the installed libnaq.so, not some other copy. */
    snprintf(cmd, sizeof cmd, "LD_LIBRARY_PATH='%s/%s' ldd '%s'", prefix, NAQ_INSTALL_LIBDIR, app);
    char *ldd = sh_ok(cmd);
    char want[512];
    snprintf(want, sizeof want, "libnaq.so.%s => %s/%s/libnaq.so.%s", NAQ_SOVERSION, prefix,
             NAQ_INSTALL_LIBDIR, NAQ_SOVERSION);
    if (strstr(ldd, want) == NULL)
        fail_msg("the example does not load %s:\n%s", want, ldd);
    free(ldd);

    snprintf(cmd, sizeof cmd,
             "NAQ_URL='%s' NAQ_SPOOL_DIR='%s/spool' LD_LIBRARY_PATH='%s/%s' timeout 60 '%s' 2>&1",
             srv.url, srv.dir, prefix, NAQ_INSTALL_LIBDIR, app);
    char *out = sh_ok(cmd);
    if (strstr(out, "sending {\"to\":\"a@example.com\"}\n") == NULL)
        fail_msg("the handler did not run:\n%s", out);
    char id[NAQ_ID_SIZE + 1] = "";
    const char *at = strstr(out, "enqueued ");
    assert_non_null(at);
    sscanf(at, "enqueued %64s", id);
    free(out);

    /* The installed CLI, asked separately, finds the job completed. */
    snprintf(cmd, sizeof cmd, "NAQ_URL='%s' '%s/bin/naq' job status '%s' 2>&1", srv.url, prefix,
             id);
    out = sh_ok(cmd);
    if (strstr(out, "state=completed") == NULL)
        fail_msg("job %s is not completed:\n%s", id, out);
    free(out);
    naq_test_server_destroy(&srv);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(the_prefix_holds_libraries_headers_pc_binary_man_page_and_docs),
    cmocka_unit_test(the_shared_library_has_a_versioned_soname_and_exports_only_the_public_api),
    cmocka_unit_test(the_man_page_describes_every_command_of_naq_help),
    cmocka_unit_test(the_readme_example_builds_with_pkg_config_alone_and_runs_a_job),
};

NAQ_TEST_MAIN_GROUP(tests, install_prefix, remove_prefix)
