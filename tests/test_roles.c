/*
 * test_roles.c - the least-privilege roles on a real, secured server.
 *
 * `naq server --tls-cert --tls-key --auth FILE` writes the nats-server
 * configuration itself: TLS, and one user per role with the permissions
 * `naq auth permissions` prints. Then the whole CLI runs as each role over
 * TLS: each can do what its commands need (and the server logs no
 * permission violation for it), a reader cannot enqueue, delete events or
 * purge the DLQ and is told why, and a worker limited to queue A cannot
 * take jobs from queue B. `naq server` refuses key and auth files others
 * can read. Payload encryption works the same way there: the keyed roles
 * read a job's output, the reader gets it sealed, and no store file holds
 * the plaintext.
 */
#define _GNU_SOURCE /* memmem, nftw: security_support.h */
#include "internal.h"
#include "security_support.h"

#include <signal.h>
#include <sys/wait.h>

typedef struct {
    char dir[64];
    char data[128];
    char log[160];
    int port;
    pid_t server;
    char url[80], ca[200], seed[200];
} fixture;

/* What each role's environment holds (NAME=VALUE strings). */
static char env_url[120], env_ca[220], env_user[4][40], env_pw[4][40], env_seed[220];
/* NAQ_ENCRYPTION_KEY_FILE=... for the roles whose keyed[] is set. */
static char env_payload_key[260];
static int keyed[4];

enum { ADMIN, PRODUCER, WORKER, READER };

static const char *const *env_of(int who)
{
    static const char *e[6];
    int n = 0;
    e[n++] = env_url;
    e[n++] = env_ca;
    if (who == WORKER) {
        e[n++] = env_seed;
    } else {
        e[n++] = env_user[who];
        e[n++] = env_pw[who];
    }
    if (keyed[who])
        e[n++] = env_payload_key;
    e[n] = NULL;
    return e;
}

static int port_open(void *ud)
{
    fixture *f = ud;
    char path[200];
    snprintf(path, sizeof path, "%s", f->log);
    FILE *l = fopen(path, "r");
    if (l == NULL)
        return 0;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, l);
    fclose(l);
    buf[n] = '\0';
    return strstr(buf, "ready at") != NULL;
}

/* Certificates, an auth file with one user per role, and `naq server`. */
static void start(fixture *f)
{
    memset(f, 0, sizeof *f);
    sec_tmpdir(f->dir, sizeof f->dir);
    sec_make_ca(f->dir, "ca");
    sec_make_cert(f->dir, "ca", "server", "IP:127.0.0.1");
    sec_sh("chmod 600 %s/server.key", f->dir);
    char seed[NAQ_NKEY_SIZE], pub[NAQ_NKEY_SIZE];
    assert_int_equal(naq__nkey_create(seed, pub), NAQ_OK);
    snprintf(f->seed, sizeof f->seed, "%s/worker.nk", f->dir);
    char line[80];
    snprintf(line, sizeof line, "%s\n", seed);
    sec_write(f->seed, line);
    char auth[1024], authpath[200];
    snprintf(auth, sizeof auth,
             "{\"users\": [\n"
             " {\"user\": \"admin\", \"password\": \"admin-pw\", \"role\": \"admin\"},\n"
             " {\"user\": \"prod\", \"password\": \"prod-pw\", \"role\": \"producer\"},\n"
             " {\"nkey\": \"%s\", \"role\": \"worker\", \"queues\": [\"qa\"]},\n"
             " {\"user\": \"read\", \"password\": \"read-pw\", \"role\": \"reader\"}\n]}\n",
             pub);
    snprintf(authpath, sizeof authpath, "%s/auth.json", f->dir);
    sec_write(authpath, auth);
    sec_sh("chmod 600 %s", authpath);

    f->port = naq_test_free_port();
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    snprintf(f->log, sizeof f->log, "%s/naq-server.out", f->dir);
    char port[16], cert[200], key[200];
    snprintf(port, sizeof port, "%d", f->port);
    snprintf(cert, sizeof cert, "%s/server.pem", f->dir);
    snprintf(key, sizeof key, "%s/server.key", f->dir);
    const char *argv[] = {"server", "--port",    port, "--data", f->data,  "--tls-cert",
                          cert,     "--tls-key", key,  "--auth", authpath, NULL};
    f->server = naq_test_spawn_cli(argv, NULL, f->log);
    if (!naq_test_wait_for(port_open, f, 10000))
        fail_msg("naq server did not start (see %s)", f->log);

    snprintf(f->ca, sizeof f->ca, "%s/ca.pem", f->dir);
    snprintf(env_url, sizeof env_url, "NAQ_URL=tls://127.0.0.1:%d", f->port);
    snprintf(env_ca, sizeof env_ca, "NAQ_TLS_CA=%s", f->ca);
    snprintf(env_seed, sizeof env_seed, "NAQ_NKEY_SEED_FILE=%s", f->seed);
    const char *users[] = {"admin", "prod", "", "read"};
    for (int i = 0; i < 4; i++) {
        snprintf(env_user[i], sizeof env_user[i], "NAQ_USER=%s", users[i]);
        snprintf(env_pw[i], sizeof env_pw[i], "NAQ_PASSWORD=%s-pw", users[i]);
    }
}

static void stop(fixture *f)
{
    kill(f->server, SIGINT);
    waitpid(f->server, NULL, 0);
    naq_test_rmtree(f->dir);
}

/* Violations the server logged so far. */
static int violations(const fixture *f)
{
    char path[200];
    snprintf(path, sizeof path, "%s/server.log", f->data);
    FILE *l = fopen(path, "r");
    assert_non_null(l);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, l) != NULL)
        n += strstr(line, "Violation") != NULL;
    fclose(l);
    return n;
}

/* Runs the CLI as `who`; the exit code must be `want`. *out (may be NULL)
 * gets stdout; stderr is returned in err (static, overwritten). */
static const char *run_as(int who, int want, char **out, const char *const *argv)
{
    static char err_copy[4096];
    char *o = NULL, *e = NULL;
    int rc = naq_test_run_cli(argv, env_of(who), &o, &e);
    snprintf(err_copy, sizeof err_copy, "%s", e);
    if (rc != want) {
        /* fail_msg truncates: the whole output first. */
        fprintf(stderr, "stdout:\n%s\nstderr:\n%s\n", o, e);
        fail_msg("naq %s %s as role %d: exit %d, wanted %d", argv[0], argv[1] ? argv[1] : "", who,
                 rc, want);
    }
    if (out != NULL) {
        *out = o;
        (*out)[strcspn(*out, "\n")] = '\0';
    } else {
        free(o);
    }
    free(e);
    return err_copy;
}

#define RUN(who, want, out, ...) run_as(who, want, out, (const char *const[]){__VA_ARGS__, NULL})

/* Waits (status_wait_tries x 100 ms) until the job's status, as the reader sees it, holds a or b.
 */
static int status_wait_tries = 100;
static void wait_for_status(const char *id, const char *a, const char *b)
{
    char *status = NULL;
    for (int i = 0; i < status_wait_tries; i++) {
        free(status);
        status = NULL;
        RUN(READER, 0, &status, "job", "status", id, "--format", "json");
        if (strstr(status, a) != NULL || (b != NULL && strstr(status, b) != NULL)) {
            free(status);
            return;
        }
        usleep(100 * 1000);
    }
    fail_msg("job %s never reached '%s': %s", id, a, status);
}

static void expect_denied(const char *err, const char *subject)
{
    if (strstr(err, "permission denied") == NULL || strstr(err, "user 'read'") == NULL ||
        strstr(err, subject) == NULL || strstr(err, "role") == NULL)
        fail_msg("wanted 'permission denied' for %s, got: %s", subject, err);
}

/* What is tested with `naq health` here is that a role may read all it
 * reads, not the queues' health: thresholds that judge this test's queues
 * (jobs waiting, no worker, a dead job) healthy. */
#define HEALTH_ALLOWED "health", "--no-state", "--min-workers", "0", "--dlq-warning", "100"

static void every_role_runs_its_commands_and_no_more(void **state)
{
    (void)state;
    fixture f;
    start(&f);

    /* The admin's first connect creates every stream and bucket. */
    RUN(ADMIN, 0, NULL, HEALTH_ALLOWED);
    RUN(ADMIN, 0, NULL, "schedule", "add", "nightly", "--every", "1h", "-q", "qa", "--", "true");

    /* Producer: every way of enqueueing. */
    char *job = NULL, *fail_job = NULL, *b_job = NULL;
    RUN(PRODUCER, 0, &job, "enqueue", "-q", "qa", "--", "echo", "hi");
    RUN(PRODUCER, 0, &fail_job, "enqueue", "-q", "qa", "-f", "no_such_function", "--retries", "0");
    RUN(PRODUCER, 0, &b_job, "enqueue", "-q", "qb", "--", "echo", "b");
    RUN(PRODUCER, 0, NULL, "enqueue", "-q", "qa", "--unique-key", "u1", "--", "true");
    RUN(PRODUCER, 0, NULL, "enqueue", "-q", "qa", "--in", "1h", "--", "true");
    RUN(PRODUCER, 0, NULL, "enqueue", "-q", "qa", "--depends-on", job, "--", "true");
    RUN(PRODUCER, 0, NULL, "job", "status", job);
    RUN(PRODUCER, 0, NULL, "events", "history", job);

    /* Worker for qa: runs qa's jobs (NKey authenticated). */
    char wlog[200];
    snprintf(wlog, sizeof wlog, "%s/worker.log", f.dir);
    const char *worker[] = {"worker", "-q", "qa", NULL};
    pid_t w = naq_test_spawn_cli(worker, env_of(WORKER), wlog);
    char *status = NULL;
    wait_for_status(fail_job, "failed", "max_retries");
    wait_for_status(job, "completed", NULL);
    kill(w, SIGINT);
    waitpid(w, NULL, 0);
    assert_int_equal(violations(&f), 0);

    /* Reader: everything that reads. */
    RUN(READER, 0, NULL, HEALTH_ALLOWED);
    RUN(READER, 0, NULL, "workers", "--show-inactive");
    RUN(READER, 0, NULL, "job", "result", job);
    RUN(READER, 0, NULL, "events", "history", job);
    RUN(READER, 0, NULL, "events", "stream", "--no-follow", "--tail", "5");
    RUN(READER, 0, NULL, "events", "list", "--limit", "0");
    RUN(READER, 0, NULL, "events", "count");
    RUN(READER, 0, NULL, "events", "stats", "--no-fold");
    RUN(READER, 0, NULL, "events", "workers");
    RUN(READER, 0, NULL, "events", "types");
    RUN(READER, 0, NULL, "dlq", "list");
    RUN(READER, 0, NULL, "schedule", "list");
    RUN(READER, 0, NULL, "events", "dlq", "list");
    assert_int_equal(violations(&f), 0);

    /* ... and nothing that writes, with an error naming what it lacks. */
    const char *err;
    expect_denied(RUN(READER, 1, NULL, "enqueue", "-q", "qa", "--", "true"), "naq.queue.qa");
    expect_denied(RUN(READER, 1, NULL, "events", "delete", job), "$JS.API.STREAM.PURGE");
    expect_denied(RUN(READER, 1, NULL, "dlq", "purge", "--all"), "NAQ_DLQ");

    /* Stats folds the newest events into the rollups first, which is a
     * write: a reader is told, and gets the rollups as they are. */
    err = RUN(READER, 0, NULL, "events", "stats");
    if (strstr(err, "cannot fold") == NULL || strstr(err, "naq_stats") == NULL)
        fail_msg("stats as a reader: %s", err);

    /* A worker limited to qa cannot take qb's jobs. */
    err = RUN(WORKER, 1, NULL, "worker", "-q", "qb");
    if (strstr(err, "permission denied") == NULL || strstr(err, "naq_qb_p") == NULL ||
        strstr(err, "--queue qb") == NULL)
        fail_msg("worker on qb: %s", err);
    RUN(READER, 0, &status, "job", "status", b_job, "--format", "json");
    if (strstr(status, "enqueued") == NULL)
        fail_msg("qb's job was touched: %s", status);
    free(status);

    /* Admin: everything the others may not. */
    int before = violations(&f);
    RUN(ADMIN, 0, NULL, "dlq", "retry", "--all");
    RUN(ADMIN, 0, NULL, "job", "cancel", b_job);
    RUN(ADMIN, 0, NULL, "events", "delete", job);
    RUN(ADMIN, 0, NULL, "events", "cleanup", "--older-than", "1d");
    RUN(ADMIN, 0, NULL, "dlq", "purge", "--all");
    RUN(ADMIN, 0, NULL, "schedule", "rm", "nightly");
    assert_int_equal(violations(&f), before);
    free(job);
    free(fail_job);
    free(b_job);
    stop(&f);
}

static void naq_server_refuses_secrets_others_can_read(void **state)
{
    (void)state;
    char dir[64];
    sec_tmpdir(dir, sizeof dir);
    sec_make_ca(dir, "ca");
    sec_make_cert(dir, "ca", "server", "IP:127.0.0.1");
    char cert[200], key[200], auth[200], data[200], port[16];
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(auth, sizeof auth, "%s/auth.json", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(port, sizeof port, "%d", naq_test_free_port());
    sec_write(auth, "{\"users\": [{\"user\": \"a\", \"password\": \"p\", \"role\": \"admin\"}]}\n");
    sec_sh("chmod 644 %s %s", key, auth);

    char *out = NULL, *err = NULL;
    const char *tls[] = {"server",     "--port", port,        "--data", data,
                         "--tls-cert", cert,     "--tls-key", key,      NULL};
    assert_int_equal(naq_test_run_cli(tls, NULL, &out, &err), 1);
    if (strstr(err, "--tls-key") == NULL || strstr(err, "readable by other users") == NULL ||
        strstr(err, "chmod 600") == NULL)
        fail_msg("stderr: %s", err);
    free(out);
    free(err);
    const char *with_auth[] = {"server", "--port", port, "--data", data, "--auth", auth, NULL};
    assert_int_equal(naq_test_run_cli(with_auth, NULL, &out, &err), 1);
    assert_non_null(strstr(err, "readable by other users"));
    free(out);
    free(err);

    /* Flags that do not go together are bad usage. */
    const char *half[] = {"server", "--port", port, "--tls-cert", cert, NULL};
    assert_int_equal(naq_test_run_cli(half, NULL, &out, &err), 2);
    assert_non_null(strstr(err, "--tls-key"));
    free(out);
    free(err);
    sec_sh("chmod 600 %s", auth);
    sec_write(auth, "{\"users\": [{\"user\": \"a\", \"password\": \"p\", \"role\": \"boss\"}]}\n");
    assert_int_equal(naq_test_run_cli(with_auth, NULL, &out, &err), 1);
    assert_non_null(strstr(err, "producer, worker, reader or admin"));
    free(out);
    free(err);
    naq_test_rmtree(dir);
}

static int mtls_ready(void *ud)
{
    return port_open(ud);
}

/* --tls-ca: the server asks for client certificates signed by that CA. */
static void naq_server_with_a_client_ca_requires_client_certificates(void **state)
{
    (void)state;
    fixture f;
    memset(&f, 0, sizeof f);
    sec_tmpdir(f.dir, sizeof f.dir);
    sec_make_ca(f.dir, "ca");
    sec_make_cert(f.dir, "ca", "server", "IP:127.0.0.1");
    sec_make_cert(f.dir, "ca", "client", "DNS:naq-client");
    sec_sh("chmod 600 %s/server.key", f.dir);
    f.port = naq_test_free_port();
    snprintf(f.data, sizeof f.data, "%s/data", f.dir);
    snprintf(f.log, sizeof f.log, "%s/naq-server.out", f.dir);
    char port[16], cert[200], key[200], ca[200];
    snprintf(port, sizeof port, "%d", f.port);
    snprintf(cert, sizeof cert, "%s/server.pem", f.dir);
    snprintf(key, sizeof key, "%s/server.key", f.dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", f.dir);
    const char *argv[] = {"server", "--port",    port, "--data",   f.data, "--tls-cert",
                          cert,     "--tls-key", key,  "--tls-ca", ca,     NULL};
    f.server = naq_test_spawn_cli(argv, NULL, f.log);
    if (!naq_test_wait_for(mtls_ready, &f, 10000))
        fail_msg("naq server did not start (see %s)", f.log);

    char url[80], ca_var[220], env_cert[220], env_key[220];
    snprintf(url, sizeof url, "NAQ_URL=tls://127.0.0.1:%d", f.port);
    snprintf(ca_var, sizeof ca_var, "NAQ_TLS_CA=%s", ca);
    snprintf(env_cert, sizeof env_cert, "NAQ_TLS_CERT=%s/client.pem", f.dir);
    snprintf(env_key, sizeof env_key, "NAQ_TLS_KEY=%s/client.key", f.dir);
    const char *health[] = {"health", NULL};
    const char *without[] = {url, ca_var, NULL};
    const char *with[] = {url, ca_var, env_cert, env_key, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(health, without, &out, &err), 1);
    if (strstr(err, "NAQ_TLS_CERT") == NULL)
        fail_msg("without a client certificate: %s", err);
    free(out);
    free(err);
    assert_int_equal(naq_test_run_cli(health, with, &out, &err), 0);
    assert_non_null(strstr(out, "healthy"));
    free(out);
    free(err);
    stop(&f);
}

static void permissions_are_printed_for_each_role(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    const char *worker[] = {"auth", "permissions", "worker", "--queue", "emails", NULL};
    assert_int_equal(naq_test_run_cli(worker, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "permissions {"));
    assert_non_null(strstr(out, "\"$JS.API.CONSUMER.MSG.NEXT.NAQ_JOBS.naq_emails_p4\""));
    assert_null(strstr(out, "MSG.NEXT.NAQ_JOBS.*"));
    free(out);
    free(err);
    const char *reader[] = {"auth", "permissions", "reader", NULL};
    assert_int_equal(naq_test_run_cli(reader, NULL, &out, &err), 0);
    assert_null(strstr(out, "naq.queue"));
    assert_null(strstr(out, "PURGE"));
    free(out);
    free(err);
    const char *bad[] = {"auth", "permissions", "reader", "--queue", "x", NULL};
    assert_int_equal(naq_test_run_cli(bad, NULL, &out, &err), 2);
    free(out);
    free(err);
    const char *unknown[] = {"auth", "permissions", "root", NULL};
    assert_int_equal(naq_test_run_cli(unknown, NULL, &out, &err), 2);
    assert_non_null(strstr(err, "producer, worker, reader or admin"));
    free(out);
    free(err);
}

/* Payload encryption with TLS and authentication on: the producer and the
 * worker hold the key, the reader does not. */
#define SECRET "sealed-marker-7f3a"
#define CONTROL "control-marker-91c2"

/* 1 when some file under dir holds text. */
static int store_holds(const char *dir, const char *text)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -rqa -- %s %s", text, dir);
    return system(cmd) == 0;
}

static void encrypted_payloads_cross_tls_by_role_and_stay_sealed_on_the_server(void **state)
{
    (void)state;
    fixture f;
    start(&f);
    char keyfile[200];
    snprintf(keyfile, sizeof keyfile, "%s/payload.key", f.dir);
    RUN(ADMIN, 0, NULL, "keygen", keyfile);
    snprintf(env_payload_key, sizeof env_payload_key, "NAQ_ENCRYPTION_KEY_FILE=%s", keyfile);
    keyed[ADMIN] = keyed[PRODUCER] = keyed[WORKER] = 1;
    keyed[READER] = 0;
    RUN(ADMIN, 0, NULL, HEALTH_ALLOWED);

    char *job = NULL, *control = NULL;
    RUN(PRODUCER, 0, &job, "enqueue", "-q", "qa", "--", "echo", SECRET);
    char wlog[200];
    snprintf(wlog, sizeof wlog, "%s/worker.log", f.dir);
    const char *worker[] = {"worker", "-q", "qa", NULL};
    pid_t w = naq_test_spawn_cli(worker, env_of(WORKER), wlog);
    status_wait_tries = 600; /* a keyed TLS worker under ASan starts slowly */
    wait_for_status(job, "completed", NULL);
    status_wait_tries = 100;
    kill(w, SIGINT);
    waitpid(w, NULL, 0);

    /* With the key the output reads back; without it, the JSON holds the
     * sealed envelope (docs/protocol.md) and not the text. */
    char *out = NULL;
    RUN(ADMIN, 0, &out, "job", "result", job, "--format", "json");
    if (strstr(out, SECRET) == NULL)
        fail_msg("the admin holds the key and should read the output: %s", out);
    free(out);
    RUN(READER, 0, &out, "job", "result", job, "--format", "json");
    if (strstr(out, SECRET) != NULL || strstr(out, "\"naq_enc\"") == NULL)
        fail_msg("the reader has no key and should get the sealed envelope: %s", out);
    free(out);
    assert_int_equal(violations(&f), 0);

    /* The control: a job enqueued without the key leaves its marker in the
     * store, so the search below can fail. */
    keyed[PRODUCER] = 0;
    RUN(PRODUCER, 0, &control, "enqueue", "-q", "qb", "--", "echo", CONTROL);
    kill(f.server, SIGINT);
    waitpid(f.server, NULL, 0);
    if (!store_holds(f.data, CONTROL))
        fail_msg("control: no file under %s holds the unencrypted job; the search is broken",
                 f.data);
    if (store_holds(f.data, SECRET))
        fail_msg("an encrypted job's marker is in plaintext under %s", f.data);
    naq_test_rmtree(f.dir);
    memset(keyed, 0, sizeof keyed);
    free(job);
    free(control);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(permissions_are_printed_for_each_role),
    cmocka_unit_test(naq_server_refuses_secrets_others_can_read),
    cmocka_unit_test(naq_server_with_a_client_ca_requires_client_certificates),
    cmocka_unit_test(every_role_runs_its_commands_and_no_more),
    cmocka_unit_test(encrypted_payloads_cross_tls_by_role_and_stay_sealed_on_the_server),
};

NAQ_TEST_MAIN(tests)
