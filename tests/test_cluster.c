/*
 * test_cluster.c - naq on a real JetStream cluster of three nats-server
 * nodes on loopback: `naq server --cluster 3` starts one that takes a
 * replicated stream as soon as it says ready and stops all nodes on
 * SIGINT; --print-config shows each node's configuration; with
 * NAQ_REPLICAS=3 every stream and bucket naq creates has three replicas;
 * changing NAQ_REPLICAS moves an existing installation, and a single
 * server refuses with the reason and what to do.
 *
 * The replica counts are read back from the servers (stream info), never
 * from what the library believes it asked for.
 */
#define _GNU_SOURCE /* memmem, nftw: security_support.h searches store files */
#include "harness.h"

#include "internal.h"
#include "security_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* A port P with P..P+2 and P+2000..P+2002 free: what --cluster 3 takes. */
static int cluster_base_port(void)
{
    for (int tries = 0; tries < 100; tries++) {
        int p = naq_test_free_port();
        if (p > 60000)
            continue;
        int ok = 1;
        for (int k = 0; k < 3 && ok; k++)
            ok = port_free(p + k) && port_free(p + 2000 + k);
        if (ok)
            return p;
    }
    fail_msg("no free port range for a 3-node cluster");
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return calloc(1, 1);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

typedef struct {
    natsConnection *nc;
    jsCtx *js;
} raw_js;

static void raw_open_url(raw_js *r, const char *url)
{
    natsOptions *o = NULL;
    assert_int_equal(natsOptions_Create(&o), NATS_OK);
    assert_int_equal(naq__nats_set_urls(o, url), NATS_OK);
    assert_int_equal(natsConnection_Connect(&r->nc, o), NATS_OK);
    natsOptions_Destroy(o);
    assert_int_equal(natsConnection_JetStream(&r->js, r->nc, NULL), NATS_OK);
}

static void raw_close(raw_js *r)
{
    jsCtx_Destroy(r->js);
    natsConnection_Destroy(r->nc);
}

/* Whether every stream on the server has `want` replicas (config) and, on
 * a cluster, want - 1 followers in its cluster info. *n gets how many
 * streams there are, `names` their names or the first one that differs. */
static int all_streams_have(raw_js *r, int want, int *n, char *names, size_t cap)
{
    jsStreamInfoList *list = NULL;
    *n = 0;
    names[0] = '\0';
    if (js_Streams(&list, r->js, NULL, NULL) != NATS_OK)
        return 0;
    int ok = 1;
    for (int i = 0; ok && i < list->Count; i++) {
        jsStreamInfo *si = list->List[i];
        int followers = si->Cluster != NULL ? si->Cluster->ReplicasLen : 0;
        if (si->Config->Replicas != want || (want > 1 && followers != want - 1)) {
            snprintf(names, cap, "%s has %d replicas (%d followers)", si->Config->Name,
                     (int)si->Config->Replicas, followers);
            ok = 0;
            break;
        }
        size_t len = strlen(names);
        snprintf(names + len, cap - len, "%s%s", i ? "," : "", si->Config->Name);
    }
    *n = list->Count;
    jsStreamInfoList_Destroy(list);
    return ok;
}

/* Waits (a scale-up moves data to new peers) until at least `min` streams
 * exist, all with `want` replicas; fails the test after 15 s. */
static int wait_streams_have(raw_js *r, int want, int min, char *names, size_t cap)
{
    int n = 0;
    for (int i = 0; i < 150; i++) {
        if (all_streams_have(r, want, &n, names, cap) && n >= min)
            return n;
        pause_ms(100);
    }
    fail_msg("after 15 s, not %d+ streams with %d replicas: %d streams, %s", min, want, n, names);
    return 0;
}

/* Uses every part of naq that creates a stream or bucket: enqueue (the
 * queue, events, the unique and deps buckets), a delayed job, a worker
 * (the registry), a schedule and a scheduler (schedules and the lock),
 * stats (the rollup bucket), a result. */
static void *run_worker(void *w)
{
    naq_worker_run(w);
    return NULL;
}

static void touch_everything(naq_client *c)
{
    char id[NAQ_ID_SIZE];
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "rq";
    o.queue = "default";
    o.function = "f";
    if (naq_enqueue(c, &o, id) != NAQ_OK)
        fail_msg("enqueue: %s", naq_last_error());
    if (naq_enqueue_at(c, &o, naq__now() + 3600, id) != NAQ_OK)
        fail_msg("enqueue_at: %s", naq_last_error());
    const char *queues[] = {"rq", NULL};
    naq_worker_opts wo;
    naq_worker_opts_init(&wo);
    wo.queues = queues;
    naq_worker *w = NULL;
    if (naq_worker_create(c, &wo, &w) != NAQ_OK)
        fail_msg("worker: %s", naq_last_error());
    naq_schedule s;
    naq_schedule_init(&s);
    snprintf(s.name, sizeof s.name, "hourly");
    s.kind = NAQ_SCHEDULE_EVERY;
    s.every_ms = 3600 * 1000;
    snprintf(s.function, sizeof s.function, "f");
    if (naq_schedule_add(c, &s) != NAQ_OK)
        fail_msg("schedule add: %s", naq_last_error());
    naq_schedule_clear(&s);
    naq_scheduler_opts so;
    naq_scheduler_opts_init(&so);
    naq_scheduler *sch = NULL;
    if (naq_scheduler_create(c, &so, &sch) != NAQ_OK)
        fail_msg("scheduler: %s", naq_last_error());
    naq_scheduler_destroy(sch);
    /* The registry bucket comes with the first heartbeat of a running worker. */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_worker, w), 0);
    pause_ms(500);
    naq_worker_stop(w);
    pthread_join(t, NULL);
    naq_worker_destroy(w);
}

/* ---- naq server --cluster ---- */

/* The `naq server --cluster` of a test, stopped by the teardown when the
 * test failed before it could. */
static pid_t cli_server;

static int stop_cli_server(void **st)
{
    (void)st;
    if (cli_server > 0) {
        kill(cli_server, SIGKILL); /* its nodes die with it (PR_SET_PDEATHSIG) */
        waitpid(cli_server, NULL, 0);
        cli_server = 0;
    }
    return 0;
}

/* Waits up to 30 s for the cluster's "ready" lines in its output (log);
 * returns the output (free it). */
static char *wait_cluster_ready(const char *log)
{
    char *out = NULL;
    for (int i = 0; i < 300; i++) {
        free(out);
        out = slurp(log);
        if (strstr(out, "NAQ_REPLICAS=3\n") != NULL || strstr(out, "naq:") != NULL)
            break;
        pause_ms(100);
    }
    if (strstr(out, "NAQ_REPLICAS=3\n") == NULL)
        fail_msg("naq server --cluster 3 did not say ready:\n%s", out);
    return out;
}

static void naq_server_cluster_3_is_ready_for_r3_streams_and_stops_every_node_on_sigint(void **st)
{
    (void)st;
    char dir[] = "/tmp/naq-test-cluster-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char data[300], log[300], port[16];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(log, sizeof log, "%s/naq-server.out", dir);
    int p = cluster_base_port();
    snprintf(port, sizeof port, "%d", p);
    const char *argv[] = {"server", "--cluster", "3", "--port", port, "--data", data, NULL};
    pid_t pid = cli_server = naq_test_spawn_cli(argv, NULL, log);
    char *out = wait_cluster_ready(log);
    char want[256];
    snprintf(want, sizeof want,
             "NAQ_URL=nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d\n", p, p + 1,
             p + 2);
    if (strstr(out, want) == NULL)
        fail_msg("expected %s in:\n%s", want, out);

    /* Ready means a meta leader: an R3 installation is created at once. */
    naq_config cfg;
    naq_config_init(&cfg);
    snprintf(cfg.url, sizeof cfg.url, "%.*s", (int)(strchr(want, '\n') - want - 8), want + 8);
    snprintf(cfg.spool_dir, sizeof cfg.spool_dir, "%s/spool", dir);
    cfg.replicas = 3;
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK)
        fail_msg("connect to the new cluster: %s", naq_last_error());
    char id[NAQ_ID_SIZE];
    naq_job_opts o;
    naq_job_opts_init(&o);
    o.queue = "default";
    o.function = "f";
    if (naq_enqueue(c, &o, id) != NAQ_OK)
        fail_msg("enqueue on the new cluster: %s", naq_last_error());
    naq_client_destroy(c);
    raw_js r;
    raw_open_url(&r, cfg.url);
    char names[1024];
    wait_streams_have(&r, 3, 4, names, sizeof names);
    raw_close(&r);
    for (int k = 1; k <= 3; k++) {
        char store[400];
        snprintf(store, sizeof store, "%s/node-%d/jetstream", data, k);
        struct stat sb;
        if (stat(store, &sb) != 0)
            fail_msg("node %d has no store of its own at %s", k, store);
    }

    assert_int_equal(kill(pid, SIGINT), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    cli_server = 0;
    free(out);
    out = slurp(log);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("naq server --cluster ended with status 0x%x:\n%s", status, out);
    assert_non_null(strstr(out, "naq cluster stopped"));
    for (int k = 0; k < 3; k++)
        if (port_accepts(p + k) || port_accepts(p + 2000 + k))
            fail_msg("node %d still accepts connections after the stop", k + 1);
    free(out);
    naq_test_rmtree(dir);
}

/* --tls-*, --auth and --encrypt-store on a cluster: every node serves TLS
 * to users of the auth file, routes use TLS and a password of their own,
 * every node's store is encrypted, and a job runs end to end through it. */
static void a_secured_cluster_serves_tls_users_and_encrypts_every_nodes_store(void **st)
{
    (void)st;
    char dir[64], data[128], log[128], port[16], auth[128], key[128], wlog[128];
    sec_tmpdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(log, sizeof log, "%s/naq-server.out", dir);
    snprintf(wlog, sizeof wlog, "%s/worker.out", dir);
    snprintf(auth, sizeof auth, "%s/users.json", dir);
    snprintf(key, sizeof key, "%s/store.key", dir);
    sec_make_ca(dir, "ca");
    sec_make_cert(dir, "ca", "node", "IP:127.0.0.1,DNS:localhost");
    sec_make_cert(dir, "ca", "client", "DNS:client");
    sec_write(auth, "{\"users\": [{\"user\": \"ops\", \"password\": \"pw-7Hq2\", "
                    "\"role\": \"admin\"}]}\n");
    sec_sh("chmod 600 %s/node.key %s/client.key %s", dir, dir, auth);
    sec_sh("umask 077; head -c 32 /dev/urandom | base64 > %s", key);
    int p = cluster_base_port();
    snprintf(port, sizeof port, "%d", p);
    const char *argv[] = {"server",
                          "--cluster",
                          "3",
                          "--port",
                          port,
                          "--data",
                          data,
                          "--tls-cert",
                          sec_path(dir, "node.pem"),
                          "--tls-key",
                          sec_path(dir, "node.key"),
                          "--tls-ca",
                          sec_path(dir, "ca.pem"),
                          "--auth",
                          auth,
                          "--encrypt-store",
                          key,
                          NULL};
    pid_t pid = cli_server = naq_test_spawn_cli(argv, NULL, log);
    char *out = wait_cluster_ready(log);
    char url[256], want[300];
    snprintf(url, sizeof url, "tls://127.0.0.1:%d,tls://127.0.0.1:%d,tls://127.0.0.1:%d", p, p + 1,
             p + 2);
    snprintf(want, sizeof want, "NAQ_URL=%s\n", url);
    if (strstr(out, want) == NULL)
        fail_msg("expected %s in:\n%s", want, out);
    free(out);

    /* Each node's configuration (mode 0600: it holds passwords) has the
     * route TLS and the route password. */
    for (int k = 1; k <= 3; k++) {
        char conf[200];
        snprintf(conf, sizeof conf, "%s/node-%d/nats-server.conf", data, k);
        char *text = slurp(conf);
        struct stat sb;
        assert_int_equal(stat(conf, &sb), 0);
        if ((sb.st_mode & 077) != 0 || strstr(text, "nats-route://naq-route:") == NULL ||
            strstr(text, "ca_file:") == NULL || strstr(text, "cipher: chachapoly") == NULL)
            fail_msg("node %d's configuration (mode %o) lacks route TLS, the route password or "
                     "the store cipher:\n%s",
                     k, (unsigned)(sb.st_mode & 0777), text);
        free(text);
    }

    char env_url[300], env_ca[160], env_cert[160], env_key[160];
    snprintf(env_url, sizeof env_url, "NAQ_URL=%s", url);
    snprintf(env_ca, sizeof env_ca, "NAQ_TLS_CA=%s", sec_path(dir, "ca.pem"));
    snprintf(env_cert, sizeof env_cert, "NAQ_TLS_CERT=%s", sec_path(dir, "client.pem"));
    snprintf(env_key, sizeof env_key, "NAQ_TLS_KEY=%s", sec_path(dir, "client.key"));
    const char *env[] = {env_url,
                         env_ca,
                         env_cert,
                         env_key,
                         "NAQ_USER=ops",
                         "NAQ_PASSWORD=pw-7Hq2",
                         "NAQ_REPLICAS=3",
                         "NAQ_SPOOL_DIR=none",
                         NULL};
    const char *marker = "naq-cluster-plaintext-marker-51e0";
    const char *enqueue[] = {"enqueue", "-q", "secret", "--", "echo", marker, NULL};
    char *err = NULL;
    if (naq_test_run_cli(enqueue, env, &out, &err) != 0)
        fail_msg("naq enqueue on the secured cluster: %s", err);
    char id[NAQ_ID_SIZE];
    snprintf(id, sizeof id, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    free(err);
    const char *worker[] = {"worker", "-q", "secret", NULL};
    pid_t w = naq_test_spawn_cli(worker, env, wlog);
    const char *result[] = {"job", "result", id, "--wait", "30", NULL};
    int rc = naq_test_run_cli(result, env, &out, &err);
    if (rc != 0 || strstr(out, marker) == NULL)
        fail_msg("job %s on the secured cluster: exit %d\n%s%s", id, rc, out, err);
    free(out);
    free(err);
    kill(w, SIGTERM);
    waitpid(w, NULL, 0);

    /* The users of the auth file are the only way in, on every node. */
    char node3[80];
    snprintf(node3, sizeof node3, "NAQ_URL=tls://127.0.0.1:%d", p + 2);
    const char *stranger[] = {node3, env_ca, env_cert, env_key, "NAQ_SPOOL_DIR=none", NULL};
    const char *health[] = {"health", NULL};
    rc = naq_test_run_cli(health, stranger, &out, &err);
    if (rc == 0 || strstr(err, "authentication failed") == NULL)
        fail_msg("a client without a user got exit %d from node 3:\n%s%s", rc, out, err);
    free(out);
    free(err);

    assert_int_equal(kill(pid, SIGINT), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    cli_server = 0;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *hit = tree_find(data, marker);
    if (hit != NULL)
        fail_msg("the job's arguments are in plaintext in %s", hit);
    naq_test_rmtree(dir);
}

static void print_config_shows_each_nodes_ports_routes_and_store_and_creates_nothing(void **st)
{
    (void)st;
    const char *argv[] = {"server",
                          "--cluster",
                          "3",
                          "--port",
                          "30000",
                          "--data",
                          "/tmp/naq-test-never-created",
                          "--print-config",
                          NULL};
    char *out = NULL, *err = NULL;
    int rc = naq_test_run_cli(argv, NULL, &out, &err);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, err);
    const char *expect[] = {"server_name: \"naq-1\"",
                            "server_name: \"naq-3\"",
                            "listen: \"127.0.0.1:30000\"",
                            "listen: \"127.0.0.1:30002\"",
                            "listen: \"127.0.0.1:32001\"",
                            "\"nats-route://127.0.0.1:32000\"",
                            "\"nats-route://127.0.0.1:32002\"",
                            "store_dir: \"/tmp/naq-test-never-created/node-2\"",
                            "name: \"naq\""};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        if (strstr(out, expect[i]) == NULL)
            fail_msg("no %s in:\n%s", expect[i], out);
    struct stat sb;
    assert_int_not_equal(stat("/tmp/naq-test-never-created", &sb), 0);
    free(out);
    free(err);

    /* A single server prints the same file `naq server` runs on. */
    const char *one[] = {
        "server",         "--port", "30000", "--data", "/tmp/naq-test-never-created",
        "--print-config", NULL};
    assert_int_equal(naq_test_run_cli(one, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "listen: \"127.0.0.1:30000\""));
    assert_non_null(strstr(out, "store_dir: \"/tmp/naq-test-never-created\""));
    assert_null(strstr(out, "cluster"));
    assert_int_not_equal(stat("/tmp/naq-test-never-created", &sb), 0);
    free(out);
}

/* ---- NAQ_REPLICAS ---- */

static void with_replicas_3_every_stream_and_bucket_naq_creates_has_three(void **st)
{
    (void)st;
    naq_test_cluster *cl = calloc(1, sizeof *cl);
    naq_test_cluster_start(cl, 3);
    naq_config cfg;
    naq_test_cluster_config(cl, &cfg);
    assert_int_equal(cfg.replicas, 3);
    naq_client *c = NULL;
    if (naq_client_connect(&cfg, &c) != NAQ_OK)
        fail_msg("connect: %s", naq_last_error());
    touch_everything(c);
    naq_client_destroy(c);

    raw_js r;
    raw_open_url(&r, cl->url);
    char names[2048];
    int n = wait_streams_have(&r, 3, 11, names, sizeof names);
    const char *expect[] = {"NAQ_JOB_EVENTS",
                            "NAQ_JOBS",
                            "NAQ_DLQ",
                            "NAQ_OUTCOMES",
                            "NAQ_DELAYED",
                            "KV_naq_unique",
                            "KV_naq_deps",
                            "KV_naq_cancel",
                            "KV_naq_workers",
                            "KV_naq_schedules",
                            "KV_naq_scheduler_lock"};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        if (strstr(names, expect[i]) == NULL)
            fail_msg("no stream %s among the %d: %s", expect[i], n, names);
    print_message("%d streams, all R3: %s\n", n, names);
    raw_close(&r);
    naq_test_cluster_destroy(cl);
    free(cl);
}

static void changing_naq_replicas_moves_an_existing_installation_up_and_down(void **st)
{
    (void)st;
    naq_test_cluster *cl = calloc(1, sizeof *cl);
    naq_test_cluster_start(cl, 3);
    naq_config cfg;
    naq_test_cluster_config(cl, &cfg);
    raw_js r;
    raw_open_url(&r, cl->url);
    char names[2048];
    const int steps[] = {1, 3, 1};
    for (int k = 0; k < 3; k++) {
        cfg.replicas = steps[k];
        naq_client *c = NULL;
        if (naq_client_connect(&cfg, &c) != NAQ_OK)
            fail_msg("connect with NAQ_REPLICAS=%d: %s", steps[k], naq_last_error());
        if (k == 0)
            touch_everything(c);
        naq_client_destroy(c);
        wait_streams_have(&r, steps[k], 11, names, sizeof names);
    }
    raw_close(&r);
    naq_test_cluster_destroy(cl);
    free(cl);
}

static void replicas_3_on_a_single_server_fail_with_the_reason_and_what_to_do(void **st)
{
    (void)st;
    naq_test_server srv;
    naq_test_server_start(&srv);
    naq_config cfg;
    naq_test_config(&srv, &cfg);
    cfg.replicas = 3;
    naq_client *c = NULL;
    /* A new installation, then an existing R1 one. */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(naq_client_connect(&cfg, &c), NAQ_ERR_NATS);
        const char *e = naq_last_error();
        if (strstr(e, "replicas > 1 not supported in non-clustered mode") == NULL ||
            strstr(e, "set NAQ_REPLICAS=1") == NULL || strstr(e, "naq server --cluster 3") == NULL)
            fail_msg("the error says neither the reason nor what to do: %s", e);
        if (k == 0) {
            cfg.replicas = 1;
            if (naq_client_connect(&cfg, &c) != NAQ_OK)
                fail_msg("connect R1: %s", naq_last_error());
            naq_client_destroy(c);
            cfg.replicas = 3;
        }
    }
    naq_test_server_destroy(&srv);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(
        naq_server_cluster_3_is_ready_for_r3_streams_and_stops_every_node_on_sigint,
        stop_cli_server),
    cmocka_unit_test_teardown(a_secured_cluster_serves_tls_users_and_encrypts_every_nodes_store,
                              stop_cli_server),
    cmocka_unit_test(print_config_shows_each_nodes_ports_routes_and_store_and_creates_nothing),
    cmocka_unit_test(with_replicas_3_every_stream_and_bucket_naq_creates_has_three),
    cmocka_unit_test(changing_naq_replicas_moves_an_existing_installation_up_and_down),
    cmocka_unit_test(replicas_3_on_a_single_server_fail_with_the_reason_and_what_to_do),
};

NAQ_TEST_MAIN(tests)
