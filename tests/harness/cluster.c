/*
 * cluster.c - a real JetStream cluster for tests: N nats-server nodes on
 * loopback, each an ordinary harness server with cluster arguments, so
 * kill and restart are the single server's (same ports, same store).
 *
 * What the tests ask of the cluster they ask the servers themselves: the
 * stream leader from stream info (cluster.leader), the meta leader and each
 * node's own copy of a stream from the node's /jsz monitoring endpoint -
 * stream info is answered by the leader, so only /jsz shows what a
 * follower really holds.
 */
#include "harness.h"

#include "internal.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Picks the nodes' ports and starts them: 0 when all run; -1 when one
 * exited at start, and then only c->node[*failed] is left, for its log. */
static int start_nodes(naq_test_cluster *c, int n, int *failed)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    for (int i = 0; i < n; i++) {
        snprintf(c->name[i], sizeof c->name[i], "n%d", i + 1);
        snprintf(c->listen[i], sizeof c->listen[i], "nats://127.0.0.1:%d", naq_test_free_port());
        c->monitor_port[i] = naq_test_free_port();
        snprintf(c->monitor_arg[i], sizeof c->monitor_arg[i], "%d", c->monitor_port[i]);
        size_t len = strlen(c->routes);
        snprintf(c->routes + len, sizeof c->routes - len, "%s%s", i ? "," : "", c->listen[i]);
    }
    for (int i = 0; i < n; i++) {
        const char *extra[] = {
            "--cluster", c->listen[i], "--cluster_name",  "naq", "--routes", c->routes, "-n",
            c->name[i],  "-m",         c->monitor_arg[i], NULL};
        if (naq_test_server_try_start_with(&c->node[i], extra) != 0) {
            for (int k = 0; k < i; k++)
                naq_test_server_destroy(&c->node[k]);
            *failed = i;
            return -1;
        }
        size_t len = strlen(c->url);
        snprintf(c->url + len, sizeof c->url - len, "%s%s", i ? "," : "", c->node[i].url);
    }
    return 0;
}

void naq_test_cluster_start(naq_test_cluster *c, int n)
{
    assert_true(n >= 1 && n <= NAQ_TEST_CLUSTER_MAX);
    /* A port picked for a node may be taken by another test before the
     * node binds it: then the whole cluster starts again on new ports. */
    for (int attempt = 0, failed = 0; start_nodes(c, n, &failed) != 0; attempt++) {
        if (attempt == 4)
            naq_test_server_fail(&c->node[failed], "a cluster node exited at start");
        naq_test_server_destroy(&c->node[failed]);
    }
    if (!naq_test_cluster_wait_ready(c, 30000))
        naq_test_server_fail(&c->node[0],
                             "the cluster could not place a stream on every node within 30 s "
                             "(node n1's log follows)");
}

void naq_test_cluster_kill(naq_test_cluster *c, int i)
{
    naq_test_server_kill(&c->node[i]);
}

void naq_test_cluster_restart(naq_test_cluster *c, int i)
{
    naq_test_server_restart(&c->node[i]);
}

void naq_test_cluster_destroy(naq_test_cluster *c)
{
    for (int i = 0; i < c->n; i++)
        naq_test_server_destroy(&c->node[i]);
}

void naq_test_cluster_config(const naq_test_cluster *c, naq_config *cfg)
{
    naq_test_config(&c->node[0], cfg);
    snprintf(cfg->url, sizeof cfg->url, "%s", c->url);
    cfg->replicas = c->n;
}

/* A JetStream context on the cluster (any node); 0 when none answers. */
static int js_open(const naq_test_cluster *c, natsConnection **nc, jsCtx **js)
{
    natsOptions *o = NULL;
    int ok = natsOptions_Create(&o) == NATS_OK && naq__nats_set_urls(o, c->url) == NATS_OK &&
             natsOptions_SetTimeout(o, 1000) == NATS_OK && natsConnection_Connect(nc, o) == NATS_OK;
    natsOptions_Destroy(o);
    if (ok) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = 1000;
        ok = natsConnection_JetStream(js, *nc, &jo) == NATS_OK;
    }
    return ok;
}

/* Creates and deletes a stream of `replicas` replicas; 1 when both work. */
static int place_probe_stream(jsCtx *js, int replicas)
{
    static const char *subjects[] = {"naq_test.ready_probe"};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = "NAQ_TEST_READY_PROBE";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Replicas = replicas;
    sc.Storage = js_MemoryStorage;
    jsStreamInfo *si = NULL;
    int ok = js_AddStream(&si, js, &sc, NULL, NULL) == NATS_OK;
    jsStreamInfo_Destroy(si);
    return ok && js_DeleteStream(js, sc.Name, NULL, NULL) == NATS_OK;
}

int naq_test_cluster_wait_ready(const naq_test_cluster *c, int64_t timeout_ms)
{
    int64_t end = naq__mono_ms() + timeout_ms;
    do {
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        /* A meta leader alone is not enough: a stream of n replicas is
         * refused ("no suitable peers for placement") until the leader
         * knows every peer, so ready means such a stream can be placed. */
        int ok = js_open(c, &nc, &js) && place_probe_stream(js, c->n);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        if (ok)
            return 1;
        pause_ms(100);
    } while (naq__mono_ms() < end);
    return 0;
}

int naq_test_cluster_node_index(const naq_test_cluster *c, const char *server_name)
{
    for (int i = 0; server_name != NULL && i < c->n; i++)
        if (strcmp(c->name[i], server_name) == 0)
            return i;
    return -1;
}

int naq_test_cluster_stream_leader(const naq_test_cluster *c, const char *stream,
                                   int64_t timeout_ms)
{
    int64_t end = naq__mono_ms() + timeout_ms;
    do {
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        jsStreamInfo *si = NULL;
        int leader = -1;
        if (js_open(c, &nc, &js) && js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK &&
            si->Cluster != NULL)
            leader = naq_test_cluster_node_index(c, si->Cluster->Leader);
        jsStreamInfo_Destroy(si);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        if (leader >= 0)
            return leader;
        pause_ms(100);
    } while (naq__mono_ms() < end);
    return -1;
}

int naq_test_cluster_replicas_current(const naq_test_cluster *c, const char *stream)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    int current = js_open(c, &nc, &js) &&
                  js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK && si->Cluster &&
                  si->Cluster->ReplicasLen == c->n - 1;
    for (int i = 0; current && i < si->Cluster->ReplicasLen; i++) {
        const jsPeerInfo *p = si->Cluster->Replicas[i];
        current = p->Current && !p->Offline && p->Lag == 0;
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return current;
}

/* GET path from node i's monitoring port; the JSON body, NULL when the
 * node does not answer. The caller json_decref()s it. */
static json_t *monitor_get(const naq_test_cluster *c, int i, const char *path)
{
    if (c->node[i].pid <= 0)
        return NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)c->monitor_port[i]);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[256];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = NULL;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, req, (size_t)len) == (ssize_t)len && (buf = malloc(cap)) != NULL) {
        ssize_t got;
        while ((got = read(fd, buf + n, cap - n - 1)) > 0) {
            n += (size_t)got;
            if (cap - n < 4096) {
                char *more = realloc(buf, cap * 2);
                if (more == NULL)
                    break;
                buf = more;
                cap *= 2;
            }
        }
        buf[n] = '\0';
    }
    close(fd);
    const char *body = buf ? strstr(buf, "\r\n\r\n") : NULL;
    /* As reals: /jsz holds 2^64 - 1 ("no limit"), too big for jansson's
     * integers, which would refuse the whole document. */
    json_t *j = body ? json_loads(body + 4, JSON_DECODE_INT_AS_REAL, NULL) : NULL;
    free(buf);
    return j;
}

int naq_test_cluster_meta_leader(const naq_test_cluster *c, int64_t timeout_ms)
{
    int64_t end = naq__mono_ms() + timeout_ms;
    do {
        for (int i = 0; i < c->n; i++) {
            json_t *j = monitor_get(c, i, "/jsz");
            const char *name =
                json_string_value(json_object_get(json_object_get(j, "meta_cluster"), "leader"));
            int leader = naq_test_cluster_node_index(c, name);
            json_decref(j);
            if (leader >= 0 && c->node[leader].pid > 0)
                return leader;
        }
        pause_ms(100);
    } while (naq__mono_ms() < end);
    return -1;
}

int64_t naq_test_cluster_node_last_seq(const naq_test_cluster *c, int i, const char *stream)
{
    json_t *j = monitor_get(c, i, "/jsz?accounts=true&streams=true");
    if (j == NULL)
        return -1;
    int64_t last = 0;
    size_t k, m;
    json_t *acc, *st;
    json_array_foreach(json_object_get(j, "account_details"), k, acc)
    {
        json_array_foreach(json_object_get(acc, "stream_detail"), m, st)
        {
            const char *name = json_string_value(json_object_get(st, "name"));
            if (name != NULL && strcmp(name, stream) == 0)
                last = (int64_t)json_number_value(
                    json_object_get(json_object_get(st, "state"), "last_seq"));
        }
    }
    json_decref(j);
    return last;
}
