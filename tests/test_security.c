/*
 * test_security.c - connection security against real nats-server
 * processes with TLS and authentication on: a CA-verified TLS connection
 * (host name included), mutual TLS, user/password, token and NKey users,
 * the event server secured like the job server, the errors a user can act
 * on (untrusted certificate, host name mismatch, authentication failed),
 * and secrets that never appear in what naq prints; and `naq server
 * --encrypt-store`: no plaintext on disk (against a control server without
 * it), the key needed to start again, refusals that name the fix.
 */
#define _GNU_SOURCE /* memmem, nftw: searching the store files */
#include "internal.h"
#include "jwt_support.h"
#include "security_support.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/wait.h>

static naq_status try_connect(naq_config *cfg)
{
    naq_client *c = NULL;
    naq_status s = naq_client_connect(cfg, &c);
    if (s == NAQ_OK) {
        /* Prove the connection is usable, not merely open. */
        naq_job_opts o;
        naq_job_opts_init(&o);
        o.queue = "sec";
        o.function = "echo";
        char id[NAQ_ID_SIZE];
        naq_status e = naq_enqueue(c, &o, id);
        if (e != NAQ_OK)
            fail_msg("enqueue over the secured connection: %s", naq_last_error());
        naq_client_destroy(c);
    }
    return s;
}

static void expect_error(naq_config *cfg, const char *a, const char *b)
{
    naq_status s = try_connect(cfg);
    const char *m = naq_last_error();
    if (s == NAQ_OK || strstr(m, a) == NULL || (b != NULL && strstr(m, b) == NULL))
        fail_msg("wanted an error with '%s' and '%s', got %s: %s", a, b ? b : "", naq_status_str(s),
                 m);
}

static void tls_url(const naq_test_server *srv, const char *host, naq_config *cfg)
{
    naq_test_config(srv, cfg);
    snprintf(cfg->url, sizeof cfg->url, "tls://%s:%d", host, srv->port);
}

static void tls_verifies_the_certificate_and_the_host_name(void **state)
{
    (void)state;
    char dir[64];
    sec_tmpdir(dir, sizeof dir);
    sec_make_ca(dir, "ca");
    sec_make_ca(dir, "otherca");
    sec_make_cert(dir, "ca", "server", "DNS:localhost");
    const char *args[] = {
        "--tls", "--tlscert", sec_path(dir, "server.pem"), "--tlskey", sec_path(dir, "server.key"),
        NULL};
    char cert[300], key[300], ca[300], otherca[300];
    snprintf(cert, sizeof cert, "%s", args[2]);
    snprintf(key, sizeof key, "%s", args[4]);
    args[2] = cert;
    args[4] = key;
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(otherca, sizeof otherca, "%s/otherca.pem", dir);
    naq_test_server srv;
    naq_test_server_start_with(&srv, args);

    /* The right CA and the certificate's name: connected over TLS. */
    naq_config cfg;
    tls_url(&srv, "localhost", &cfg);
    snprintf(cfg.tls_ca, sizeof cfg.tls_ca, "%s", ca);
    assert_int_equal(try_connect(&cfg), NAQ_OK);

    /* NAQ_TLS_CA alone turns TLS on for a nats:// URL. */
    naq_test_config(&srv, &cfg);
    snprintf(cfg.url, sizeof cfg.url, "nats://localhost:%d", srv.port);
    snprintf(cfg.tls_ca, sizeof cfg.tls_ca, "%s", ca);
    assert_int_equal(try_connect(&cfg), NAQ_OK);

    /* Another CA: not trusted, and the fix is named. */
    tls_url(&srv, "localhost", &cfg);
    snprintf(cfg.tls_ca, sizeof cfg.tls_ca, "%s", otherca);
    expect_error(&cfg, "is not trusted", "NAQ_TLS_CA");

    /* The right CA but another name for the host: the certificate does not
     * match, and the error says which names it has. */
    tls_url(&srv, "127.0.0.1", &cfg);
    snprintf(cfg.tls_ca, sizeof cfg.tls_ca, "%s", ca);
    expect_error(&cfg, "does not match the host name", "DNS:localhost");

    /* No CA at all, as the environment gives it. */
    tls_url(&srv, "localhost", &cfg);
    expect_error(&cfg, "is not trusted", "NAQ_TLS_CA");
    naq_test_server_destroy(&srv);
    naq_test_rmtree(dir);
}

static void mutual_tls_needs_the_client_certificate(void **state)
{
    (void)state;
    char dir[64];
    sec_tmpdir(dir, sizeof dir);
    sec_make_ca(dir, "ca");
    sec_make_cert(dir, "ca", "server", "IP:127.0.0.1");
    sec_make_cert(dir, "ca", "client", "DNS:naq-client");
    char cert[300], key[300], ca[300];
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    const char *args[] = {"--tlsverify", "--tlscert",   cert, "--tlskey",
                          key,           "--tlscacert", ca,   NULL};
    naq_test_server srv;
    naq_test_server_start_with(&srv, args);

    naq_config cfg;
    tls_url(&srv, "127.0.0.1", &cfg);
    snprintf(cfg.tls_ca, sizeof cfg.tls_ca, "%s", ca);
    naq_status s = try_connect(&cfg);
    assert_int_equal(s, NAQ_ERR_CONNECT);

    snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "%s/client.pem", dir);
    assert_int_equal(try_connect(&cfg), NAQ_ERR_INVALID_ARG); /* a certificate needs its key */
    assert_non_null(strstr(naq_last_error(), "NAQ_TLS_KEY"));
    snprintf(cfg.tls_key, sizeof cfg.tls_key, "%s/client.key", dir);
    assert_int_equal(try_connect(&cfg), NAQ_OK);
    naq_test_server_destroy(&srv);
    naq_test_rmtree(dir);
}

static void passwords_tokens_and_nkeys_authenticate(void **state)
{
    (void)state;
    char dir[64];
    sec_tmpdir(dir, sizeof dir);
    char seed[NAQ_NKEY_SIZE], pub[NAQ_NKEY_SIZE], other_seed[NAQ_NKEY_SIZE],
        other_pub[NAQ_NKEY_SIZE];
    assert_int_equal(naq__nkey_create(seed, pub), NAQ_OK);
    assert_int_equal(naq__nkey_create(other_seed, other_pub), NAQ_OK);
    assert_int_equal(strncmp(seed, "SU", 2), 0);
    assert_int_equal(pub[0], 'U');
    char check[NAQ_NKEY_SIZE];
    assert_int_equal(naq__nkey_public(seed, check), NAQ_OK);
    assert_string_equal(check, pub);

    char conf[1024];
    snprintf(conf, sizeof conf,
             "authorization {\n  users = [\n    {user: alice, password: \"s3cret-Pw\"}\n"
             "    {nkey: %s}\n  ]\n}\n",
             pub);
    char confpath[300], seedpath[300], otherpath[300];
    snprintf(confpath, sizeof confpath, "%s/auth.conf", dir);
    snprintf(seedpath, sizeof seedpath, "%s/user.nk", dir);
    snprintf(otherpath, sizeof otherpath, "%s/other.nk", dir);
    sec_write(confpath, conf);
    char seedline[80];
    snprintf(seedline, sizeof seedline, "%s\n", seed);
    sec_write(seedpath, seedline);
    snprintf(seedline, sizeof seedline, "%s\n", other_seed);
    sec_write(otherpath, seedline);
    const char *args[] = {"-c", confpath, NULL};
    naq_test_server srv;
    naq_test_server_start_with(&srv, args);

    naq_config cfg;
    naq_test_config(&srv, &cfg);
    expect_error(&cfg, "authentication failed", "no credentials");
    snprintf(cfg.user, sizeof cfg.user, "alice");
    snprintf(cfg.password, sizeof cfg.password, "wrong-Pw");
    expect_error(&cfg, "authentication failed", "user 'alice'");
    assert_null(strstr(naq_last_error(), "wrong-Pw"));
    snprintf(cfg.password, sizeof cfg.password, "s3cret-Pw");
    assert_int_equal(try_connect(&cfg), NAQ_OK);

    naq_test_config(&srv, &cfg);
    snprintf(cfg.nkey_seed_file, sizeof cfg.nkey_seed_file, "%s", seedpath);
    assert_int_equal(try_connect(&cfg), NAQ_OK);
    snprintf(cfg.nkey_seed_file, sizeof cfg.nkey_seed_file, "%s", otherpath);
    expect_error(&cfg, "authentication failed", otherpath);
    snprintf(cfg.nkey_seed_file, sizeof cfg.nkey_seed_file, "%s", confpath);
    expect_error(&cfg, "holds no NKey user seed", NULL);

    /* Two ways at once is a mistake, said before connecting. */
    snprintf(cfg.nkey_seed_file, sizeof cfg.nkey_seed_file, "%s", seedpath);
    snprintf(cfg.user, sizeof cfg.user, "alice");
    expect_error(&cfg, "more than one way to authenticate", NULL);

    /* A creds file that is not one says so. */
    naq_test_config(&srv, &cfg);
    snprintf(cfg.creds_file, sizeof cfg.creds_file, "%s", confpath);
    assert_int_not_equal(try_connect(&cfg), NAQ_OK);
    if (strstr(naq_last_error(), "NAQ_CREDS_FILE") == NULL)
        fail_msg("creds error: %s", naq_last_error());
    naq_test_server_destroy(&srv);

    const char *token_args[] = {"--auth", "t0ken-Value", NULL};
    naq_test_server_start_with(&srv, token_args);
    naq_test_config(&srv, &cfg);
    snprintf(cfg.token, sizeof cfg.token, "bad-t0ken");
    expect_error(&cfg, "authentication failed", "NAQ_TOKEN");
    assert_null(strstr(naq_last_error(), "bad-t0ken"));
    snprintf(cfg.token, sizeof cfg.token, "t0ken-Value");
    assert_int_equal(try_connect(&cfg), NAQ_OK);
    naq_test_server_destroy(&srv);
    naq_test_rmtree(dir);
}

/* The event server gets the same TLS and credentials as the job server. */
static void the_event_server_is_secured_alike(void **state)
{
    (void)state;
    char dir[64];
    sec_tmpdir(dir, sizeof dir);
    sec_make_ca(dir, "ca");
    sec_make_cert(dir, "ca", "server", "IP:127.0.0.1");
    char cert[300], key[300], ca[300], confpath[300];
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(confpath, sizeof confpath, "%s/auth.conf", dir);
    sec_write(confpath, "authorization { users = [ {user: ev, password: \"ev-Pw-123\"} ] }\n");
    const char *args[] = {"-c", confpath, "--tls", "--tlscert", cert, "--tlskey", key, NULL};
    naq_test_server jobs, events;
    naq_test_server_start_with(&jobs, args);
    naq_test_server_start_with(&events, args);

    naq_config cfg;
    tls_url(&jobs, "127.0.0.1", &cfg);
    snprintf(cfg.event_url, sizeof cfg.event_url, "tls://127.0.0.1:%d", events.port);
    snprintf(cfg.tls_ca, sizeof cfg.tls_ca, "%s", ca);
    snprintf(cfg.user, sizeof cfg.user, "ev");
    snprintf(cfg.password, sizeof cfg.password, "ev-Pw-123");
    naq_client *c = NULL;
    assert_int_equal(naq_client_connect(&cfg, &c), NAQ_OK);
    naq_event e;
    naq_event_init(&e, NAQ_EVENT_SYSTEM_METRICS);
    assert_int_equal(naq_client_log(c, &e), NAQ_OK);
    assert_int_equal(naq_client_flush_events(c, 5000), NAQ_OK);
    jsStreamInfo *si = NULL;
    assert_int_equal(js_GetStreamInfo(&si, c->ejs, "NAQ_JOB_EVENTS", NULL, NULL), NATS_OK);
    assert_true(si->State.Msgs >= 1);
    jsStreamInfo_Destroy(si);
    naq_client_destroy(c);

    /* A wrong password is refused by the event server too. */
    snprintf(cfg.url, sizeof cfg.url, "tls://127.0.0.1:%d", events.port);
    snprintf(cfg.password, sizeof cfg.password, "nope");
    expect_error(&cfg, "authentication failed", NULL);
    naq_test_server_destroy(&jobs);
    naq_test_server_destroy(&events);
    naq_test_rmtree(dir);
}

/* A server in operator (JWT) mode, and a .creds file of one of its users. */
static void a_creds_file_authenticates_against_a_jwt_server(void **state)
{
    (void)state;
    char dir[64];
    sec_tmpdir(dir, sizeof dir);
    jwt_key op, sys, acct, user, stranger_acct, stranger;
    jwt_key_new(&sys, JWT_PREFIX_ACCOUNT);
    jwt_key_new(&op, JWT_PREFIX_OPERATOR);
    jwt_key_new(&acct, JWT_PREFIX_ACCOUNT);
    jwt_key_new(&user, JWT_PREFIX_USER);
    jwt_key_new(&stranger_acct, JWT_PREFIX_ACCOUNT);
    jwt_key_new(&stranger, JWT_PREFIX_USER);
    static char op_jwt[4096], sys_jwt[4096], acct_jwt[4096], user_jwt[4096], stranger_jwt[4096];
    /* JetStream needs a system account. */
    jwt_make(&op, sys.pub, "SYS", "{\"type\":\"account\",\"version\":2}", sys_jwt);
    jwt_make(&op, op.pub, "naq-test-op", JWT_OPERATOR_CLAIMS, op_jwt);
    jwt_make(&op, acct.pub, "naq", JWT_ACCOUNT_CLAIMS, acct_jwt);
    jwt_make(&acct, user.pub, "worker", JWT_USER_CLAIMS, user_jwt);
    /* Signed by an account the server does not know. */
    jwt_make(&stranger_acct, stranger.pub, "stranger", JWT_USER_CLAIMS, stranger_jwt);
    static char conf[16384];
    snprintf(conf, sizeof conf,
             "operator: %s\nsystem_account: %s\nresolver: MEMORY\n"
             "resolver_preload: {\n  %s: %s\n  %s: %s\n}\n",
             op_jwt, sys.pub, sys.pub, sys_jwt, acct.pub, acct_jwt);
    char confpath[300], creds[300], bad_creds[300];
    snprintf(confpath, sizeof confpath, "%s/op.conf", dir);
    snprintf(creds, sizeof creds, "%s/worker.creds", dir);
    snprintf(bad_creds, sizeof bad_creds, "%s/stranger.creds", dir);
    sec_write(confpath, conf);
    jwt_write_creds(creds, user_jwt, &user);
    jwt_write_creds(bad_creds, stranger_jwt, &stranger);
    const char *args[] = {"-c", confpath, NULL};
    naq_test_server srv;
    naq_test_server_start_with(&srv, args);

    naq_config cfg;
    naq_test_config(&srv, &cfg);
    expect_error(&cfg, "authentication failed", "no credentials");
    snprintf(cfg.creds_file, sizeof cfg.creds_file, "%s", creds);
    assert_int_equal(try_connect(&cfg), NAQ_OK);
    snprintf(cfg.creds_file, sizeof cfg.creds_file, "%s", bad_creds);
    expect_error(&cfg, "authentication failed", bad_creds);
    naq_test_server_destroy(&srv);
    naq_test_rmtree(dir);
}

static void expect_no_secret(const char *what, const char *text, const char *secret)
{
    if (text != NULL && strstr(text, secret) != NULL)
        fail_msg("%s shows the secret '%s':\n%s", what, secret, text);
}

static int file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* Secrets in URLs and variables never appear in naq health, a worker's
 * log or error messages. */
static void secrets_never_appear_in_output(void **state)
{
    (void)state;
    char dir[64];
    sec_tmpdir(dir, sizeof dir);
    char confpath[300];
    snprintf(confpath, sizeof confpath, "%s/auth.conf", dir);
    sec_write(confpath,
              "authorization { users = [ {user: bob, password: \"Hunter2-Secret\"} ] }\n");
    const char *args[] = {"-c", confpath, NULL};
    naq_test_server srv;
    naq_test_server_start_with(&srv, args);

    char url[200], bad_url[200], env_url[240], env_bad[240];
    snprintf(url, sizeof url, "nats://bob:Hunter2-Secret@127.0.0.1:%d", srv.port);
    snprintf(bad_url, sizeof bad_url, "nats://bob:Wrong-Secret@127.0.0.1:%d", srv.port);
    snprintf(env_url, sizeof env_url, "NAQ_URL=%s", url);
    snprintf(env_bad, sizeof env_bad, "NAQ_URL=%s", bad_url);

    char *out = NULL, *err = NULL;
    const char *health[] = {"health", NULL};
    const char *health_json[] = {"health", "--format", "json", NULL};
    const char *env[] = {env_url, NULL};
    assert_int_equal(naq_test_run_cli(health, env, &out, &err), 0);
    assert_non_null(strstr(out, "bob:***@127.0.0.1"));
    expect_no_secret("naq health", out, "Hunter2-Secret");
    expect_no_secret("naq health", err, "Hunter2-Secret");
    free(out);
    free(err);
    naq_test_run_cli(health_json, env, &out, &err);
    expect_no_secret("naq health --format json", out, "Hunter2-Secret");
    free(out);
    free(err);

    /* A wrong password: the error names the server, not the password. */
    const char *env_b[] = {env_bad, NULL};
    assert_int_equal(naq_test_run_cli(health, env_b, &out, &err), 1);
    assert_non_null(strstr(err, "authentication failed"));
    expect_no_secret("the error", err, "Wrong-Secret");
    expect_no_secret("the error", out, "Wrong-Secret");
    free(out);
    free(err);

    /* A malformed URL with a password: the usage error hides it too. */
    char env_malformed[120];
    snprintf(env_malformed, sizeof env_malformed, "NAQ_URL=nats://bob:Hunter2-Secret@:badport");
    const char *env_m[] = {env_malformed, NULL};
    assert_int_equal(naq_test_run_cli(health, env_m, &out, &err), 2);
    expect_no_secret("the usage error", err, "Hunter2-Secret");
    free(out);
    free(err);

    /* A token in the URL, and NAQ_PASSWORD / NAQ_TOKEN given by variable. */
    char env_tok[200];
    snprintf(env_tok, sizeof env_tok, "NAQ_URL=nats://Tok3n-Secret@127.0.0.1:%d", srv.port);
    const char *env_t[] = {env_tok, NULL};
    naq_test_run_cli(health, env_t, &out, &err);
    expect_no_secret("naq health (token URL)", out, "Tok3n-Secret");
    expect_no_secret("naq health (token URL)", err, "Tok3n-Secret");
    free(out);
    free(err);
    char env_plain[120];
    snprintf(env_plain, sizeof env_plain, "NAQ_URL=%s", srv.url);
    const char *env_v[] = {env_plain, "NAQ_USER=bob", "NAQ_PASSWORD=Hunter2-Secret", NULL};
    assert_int_equal(naq_test_run_cli(health, env_v, &out, &err), 0);
    expect_no_secret("naq health (NAQ_PASSWORD)", out, "Hunter2-Secret");
    free(out);
    free(err);

    /* A worker's log (its start line, its errors) has no secret either. */
    char log[300];
    snprintf(log, sizeof log, "%s/worker.log", dir);
    const char *worker[] = {"worker", "-q", "sec", NULL};
    pid_t pid = naq_test_spawn_cli(worker, env, log);
    usleep(1500 * 1000);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    assert_false(file_has(log, "Hunter2-Secret"));
    pid = naq_test_spawn_cli(worker, env_b, log);
    waitpid(pid, NULL, 0);
    assert_true(file_has(log, "authentication failed"));
    assert_false(file_has(log, "Wrong-Secret"));
    naq_test_server_destroy(&srv);
    naq_test_rmtree(dir);
}

static void urls_are_redacted(void **state)
{
    (void)state;
    char out[256];
    assert_string_equal(
        naq_url_redact("nats://u:p@h:1,tls://tok@h2:2,nats://h3:3", out, sizeof out),
        "nats://u:***@h:1,tls://***@h2:2,nats://h3:3");
    assert_string_equal(naq_url_redact("nats://127.0.0.1:4222", out, sizeof out),
                        "nats://127.0.0.1:4222");
    naq_url_redact("nats://user:a-very-long-password@host:4222", out, 12);
    assert_null(strstr(out, "a-very"));
}

/* ---- naq server --encrypt-store ---- */

typedef struct {
    char log[320];
    int port;
    pid_t pid;
} enc_server;

static int enc_ready(void *ud)
{
    return file_has(((enc_server *)ud)->log, "ready at");
}

/* `naq server --data data [--encrypt-store key]` on a free port. */
static void enc_start(enc_server *s, const char *data, const char *key)
{
    char port[16];
    s->port = naq_test_free_port();
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(s->log, sizeof s->log, "%s.out", data);
    unlink(s->log); /* "ready at" from an earlier run is no answer */
    const char *argv[] = {"server", "--port", port, "--data", data, "--encrypt-store", key, NULL};
    if (key == NULL)
        argv[5] = NULL;
    s->pid = naq_test_spawn_cli(argv, NULL, s->log);
    if (!naq_test_wait_for(enc_ready, s, 10000))
        fail_msg("naq server did not start within 10 s; see %s", s->log);
}

static void enc_stop(enc_server *s)
{
    int status = 0;
    kill(s->pid, SIGINT);
    waitpid(s->pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The environment of the CLI talking to s (static, overwritten). */
static const char *const *enc_env(const enc_server *s)
{
    static char url[64];
    static const char *env[] = {url, "NAQ_SPOOL_DIR=none", NULL};
    snprintf(url, sizeof url, "NAQ_URL=nats://127.0.0.1:%d", s->port);
    return env;
}

/* `naq enqueue -- echo marker`: the marker is in the job's arguments, and
 * in its result once a worker runs it. The job id goes to id. */
static void enc_enqueue(const enc_server *s, const char *marker, char *id)
{
    const char *argv[] = {"enqueue", "-q", "secret", "--", "echo", marker, NULL};
    char *out = NULL, *err = NULL;
    if (naq_test_run_cli(argv, enc_env(s), &out, &err) != 0)
        fail_msg("naq enqueue: %s", err);
    snprintf(id, NAQ_ID_SIZE, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    free(err);
}

/* Runs `naq server` expecting it to refuse: exit code want, stderr with msg. */
static void enc_refused(const char *const *argv, int want, const char *msg)
{
    /* On a free port: a server someone runs on 4222 is no refusal of ours. */
    const char *args[16];
    char port[16];
    size_t n = 0;
    while (argv[n] != NULL && n < 12) {
        args[n] = argv[n];
        n++;
    }
    snprintf(port, sizeof port, "%d", naq_test_free_port());
    args[n++] = "--port";
    args[n++] = port;
    args[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = naq_test_run_cli(args, NULL, &out, &err);
    if (rc != want || strstr(err, msg) == NULL)
        fail_msg("naq server %s %s: want exit %d with '%s', got %d: %s", argv[1], argv[2], want,
                 msg, rc, err);
    free(out);
    free(err);
}

static void an_encrypted_store_holds_no_plaintext_and_starts_only_with_its_key(void **state)
{
    (void)state;
    char dir[64], plain[128], enc[128], key[128], other[128];
    sec_tmpdir(dir, sizeof dir);
    snprintf(plain, sizeof plain, "%s/plain", dir);
    snprintf(enc, sizeof enc, "%s/enc", dir);
    snprintf(key, sizeof key, "%s/store.key", dir);
    snprintf(other, sizeof other, "%s/other.key", dir);
    /* The way --help says to make a key. */
    sec_sh("umask 077; head -c 32 /dev/urandom | base64 > %s", key);
    sec_sh("umask 077; head -c 32 /dev/urandom | base64 > %s", other);
    const char *marker = "naq-plaintext-marker-7f3c9a";
    char id[NAQ_ID_SIZE];

    /* The control: without --encrypt-store the marker is on disk, so the
     * search below can find it. */
    enc_server s;
    enc_start(&s, plain, NULL);
    enc_enqueue(&s, marker, id);
    enc_stop(&s);
    if (tree_find(plain, marker) == NULL)
        fail_msg("control: the marker is in no file under %s; the search is broken", plain);

    enc_start(&s, enc, key);
    enc_enqueue(&s, marker, id);
    enc_stop(&s);
    const char *hit = tree_find(enc, marker);
    if (hit != NULL)
        fail_msg("the encrypted store has the job's arguments in plaintext in %s", hit);
    /* Nor the key: a backup of the data directory must not carry it. */
    FILE *kf = fopen(key, "r");
    char k[128] = "";
    assert_non_null(fgets(k, sizeof k, kf));
    fclose(kf);
    k[strcspn(k, "\n")] = '\0';
    assert_null(tree_find(enc, k));

    /* With its key the job is back, arguments and all: a worker runs it
     * and its output is the marker. */
    enc_start(&s, enc, key);
    char wlog[160];
    snprintf(wlog, sizeof wlog, "%s/worker.log", dir);
    const char *worker[] = {"worker", "-q", "secret", NULL};
    pid_t w = naq_test_spawn_cli(worker, enc_env(&s), wlog);
    const char *result[] = {"job", "result", id, "--wait", "10", NULL};
    char *out = NULL, *err = NULL;
    int rc = naq_test_run_cli(result, enc_env(&s), &out, &err);
    if (rc != 0 || strstr(out, marker) == NULL)
        fail_msg("after a restart with the key, job %s: exit %d\n%s%s", id, rc, out, err);
    free(out);
    free(err);
    kill(w, SIGTERM);
    waitpid(w, NULL, 0);
    enc_stop(&s);

    /* Without the key, with another, or over a plaintext store: refused
     * before nats-server starts. */
    const char *none[] = {"server", "--data", enc, NULL};
    enc_refused(none, 1, "start it with --encrypt-store KEYFILE");
    const char *wrong[] = {"server", "--data", enc, "--encrypt-store", other, NULL};
    enc_refused(wrong, 1, "is not the key");
    const char *over[] = {"server", "--data", plain, "--encrypt-store", key, NULL};
    enc_refused(over, 1, "holds an unencrypted store");
    naq_test_rmtree(dir);
}

static void store_keys_are_checked_and_never_printed(void **state)
{
    (void)state;
    char dir[64], data[128], key[128], open_key[128], short_key[128];
    sec_tmpdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(key, sizeof key, "%s/store.key", dir);
    snprintf(open_key, sizeof open_key, "%s/open.key", dir);
    snprintf(short_key, sizeof short_key, "%s/short.key", dir);
    const char *secret = "Kq8sV0cH2lW9xYzT4mN7pR1eU6aB3dF5gJ0oI8uL2w=";
    sec_write(key, secret);
    sec_sh("chmod 600 %s", key);
    sec_write(open_key, secret);
    sec_sh("chmod 640 %s", open_key);
    sec_write(short_key, "too-short\n");
    sec_sh("chmod 600 %s", short_key);

    const char *group[] = {"server", "--data", data, "--encrypt-store", open_key, NULL};
    enc_refused(group, 1, "chmod 600");
    const char *tiny[] = {"server", "--data", data, "--encrypt-store", short_key, NULL};
    enc_refused(tiny, 1, "at least 32");

    /* A single server's configuration and each node's of a cluster. */
    const char *print[] = {"server", "--data", data, "--encrypt-store", key, "--print-config",
                           NULL,     NULL,     NULL};
    for (int cluster = 0; cluster < 2; cluster++) {
        print[6] = cluster ? "--cluster" : NULL;
        print[7] = "3";
        char *out = NULL, *err = NULL;
        assert_int_equal(naq_test_run_cli(print, NULL, &out, &err), 0);
        const char *cipher = strstr(out, "cipher: chachapoly");
        const char *third = cipher ? strstr(cipher + 1, "cipher: chachapoly") : NULL;
        if (cipher == NULL || strstr(out, "key: $NAQ_SERVER_STORE_KEY") == NULL ||
            strstr(out, secret) != NULL || (cluster && (!third || !strstr(third + 1, "cipher"))))
            fail_msg("--print-config should name the key's variable (on every node), never the "
                     "key:\n%s",
                     out);
        free(out);
        free(err);
    }
    /* None of the refusals created the data directory. */
    assert_int_equal(access(data, F_OK), -1);
    naq_test_rmtree(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(urls_are_redacted),
    cmocka_unit_test(tls_verifies_the_certificate_and_the_host_name),
    cmocka_unit_test(mutual_tls_needs_the_client_certificate),
    cmocka_unit_test(passwords_tokens_and_nkeys_authenticate),
    cmocka_unit_test(the_event_server_is_secured_alike),
    cmocka_unit_test(a_creds_file_authenticates_against_a_jwt_server),
    cmocka_unit_test(secrets_never_appear_in_output),
    cmocka_unit_test(an_encrypted_store_holds_no_plaintext_and_starts_only_with_its_key),
    cmocka_unit_test(store_keys_are_checked_and_never_printed),
};

NAQ_TEST_MAIN(tests)
