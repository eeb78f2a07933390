/*
 * test_metrics.c - Prometheus metrics against real parts: the exporter's
 * and a worker's, a scheduler's and an event processor's output pass
 * `promtool check metrics`, and a real Prometheus scraping `naq metrics --listen` and `naq worker
 * --metrics` reports naq_jobs_completed_total for a queue equal to the
 * jobs run, through its HTTP API.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 6

typedef struct {
    naq_test_server srv;
    char url[96], spool[320];
    const char *env[3];
    pid_t children[MAX_CHILDREN];
    int nchildren;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    naq_test_server_start(&f->srv);
    snprintf(f->url, sizeof f->url, "NAQ_URL=%s", f->srv.url);
    snprintf(f->spool, sizeof f->spool, "NAQ_SPOOL_DIR=%s/spool", f->srv.dir);
    f->env[0] = f->url;
    f->env[1] = f->spool;
    f->env[2] = NULL;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < f->nchildren; i++) {
        kill(f->children[i], SIGKILL);
        waitpid(f->children[i], NULL, 0);
    }
    naq_test_server_destroy(&f->srv);
    free(f);
    return 0;
}

static pid_t spawn_naq(fixture *f, const char *const *argv, const char *log)
{
    assert_true(f->nchildren < MAX_CHILDREN);
    pid_t pid = naq_test_spawn_cli(argv, f->env, log);
    f->children[f->nchildren++] = pid;
    return pid;
}

/* GET http://127.0.0.1:port/path; returns the HTTP status (0 when nothing
 * answers) and *body (heap) after the headers. */
static int http_get(int port, const char *path, char **body)
{
    *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return 0;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (len + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    char *start = strstr(buf, "\r\n\r\n");
    *body = strdup(start ? start + 4 : "");
    free(buf);
    return status;
}

/* Waits up to 15 s for GET /metrics to answer 200; returns the body. */
static char *scrape(int port)
{
    char *body = NULL;
    for (int i = 0; i < 150; i++) {
        if (http_get(port, "/metrics", &body) == 200)
            return body;
        free(body);
        usleep(100000);
    }
    fail_msg("nothing served /metrics on port %d within 15 s", port);
    return NULL;
}

/* Runs promtool check metrics on text; fails the test with its words. */
static void promtool_accepts(const char *what, const char *text, const char *dir)
{
    char path[400], cmd[900], out[400];
    snprintf(path, sizeof path, "%s/%s.prom", dir, what);
    snprintf(out, sizeof out, "%s/%s.promtool", dir, what);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s 2>&1", path, out);
    int rc = system(cmd);
    if (rc != 0) {
        char msg[4096] = "";
        fp = fopen(out, "r");
        if (fp != NULL) {
            msg[fread(msg, 1, sizeof msg - 1, fp)] = '\0';
            fclose(fp);
        }
        fail_msg("promtool rejects the %s metrics (exit %d):\n%s", what, rc, msg);
    }
}

static void enqueue(fixture *f, const char *queue, const char *cmd, int n)
{
    for (int i = 0; i < n; i++) {
        const char *argv[] = {"enqueue", "-q", queue, "--", "sh", "-c", cmd, NULL};
        char *out = NULL;
        assert_int_equal(naq_test_run_cli(argv, f->env, &out, NULL), 0);
        free(out);
    }
}

static int stop(fixture *f, pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    for (int i = 0; i < f->nchildren; i++)
        if (f->children[i] == pid)
            f->children[i] = f->children[--f->nchildren];
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* docs/monitoring/<name>, found from this file's own path. */
static char *doc_path(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    assert_non_null(slash);
    snprintf(slash, sizeof path - (size_t)(slash - path), "/../docs/monitoring/%s", name);
    return path;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        fail_msg("cannot read %s", path);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* Every naq_* name in text is a metric family that `exported` declares
 * (# TYPE lines), also as a histogram's _bucket/_sum/_count. */
static void uses_only_exported(const char *what, const char *text, const char *exported)
{
    for (const char *p = strstr(text, "naq_"); p != NULL; p = strstr(p + 1, "naq_")) {
        if (p > text && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z')))
            continue;
        char name[128];
        size_t k = 0;
        while (k + 1 < sizeof name &&
               ((p[k] >= 'a' && p[k] <= 'z') || p[k] == '_' || (p[k] >= '0' && p[k] <= '9')))
            k++;
        snprintf(name, sizeof name, "%.*s", (int)k, p);
        const char *suffixes[] = {"_bucket", "_sum", "_count"};
        for (int i = 0; i < 3; i++) {
            size_t sl = strlen(suffixes[i]);
            if (k > sl && strcmp(name + k - sl, suffixes[i]) == 0)
                name[k - sl] = '\0';
        }
        char want[160];
        snprintf(want, sizeof want, "# TYPE %s ", name);
        if (strcmp(name, "naq_") != 0 && strstr(exported, want) == NULL)
            fail_msg("%s uses %s, which no naq endpoint exports", what, name);
    }
}

static void every_endpoint_passes_promtool(void **state)
{
    fixture *f = *state;
    enqueue(f, "mq", "exit 0", 3);
    enqueue(f, "mq", "exit 4", 2); /* dead-lettered: the DLQ and its counters */
    char log[320], addr[64];
    int wport = naq_test_free_port();
    snprintf(addr, sizeof addr, "127.0.0.1:%d", wport);
    snprintf(log, sizeof log, "%s/worker.log", f->srv.dir);
    const char *work[] = {"worker", "-q", "mq", "--metrics", addr, NULL};
    pid_t w = spawn_naq(f, work, log);
    char *text = NULL;
    for (int i = 0; i < 300; i++) {
        free(text);
        text = scrape(wport);
        if (strstr(text, "naq_worker_jobs_processed_total{") != NULL &&
            strstr(text, "} 5\n") != NULL)
            break;
        usleep(100000);
    }
    promtool_accepts("worker", text, f->srv.dir);
    assert_non_null(strstr(text, "naq_worker_jobs_completed_total{worker_id="));
    assert_non_null(strstr(text, "naq_logger_published_total "));
    char *all = calloc(1, 1 << 20);
    assert_non_null(all);
    strncat(all, text, (1 << 19) - 1);
    free(text);
    assert_int_equal(stop(f, w), 0);

    int sport = naq_test_free_port();
    snprintf(addr, sizeof addr, ":%d", sport);
    const char *sched[] = {"scheduler", "--metrics", addr, "--no-rollup", NULL};
    snprintf(log, sizeof log, "%s/scheduler.log", f->srv.dir);
    pid_t s = spawn_naq(f, sched, log);
    text = scrape(sport);
    promtool_accepts("scheduler", text, f->srv.dir);
    assert_non_null(strstr(text, "naq_scheduler_leader "));
    strncat(all, text, (1 << 20) - strlen(all) - 1);
    free(text);
    assert_int_equal(stop(f, s), 0);

    /* An event processor: a webhook member (its receiver need not exist
     * to serve metrics), autoscaled. */
    int hport = naq_test_free_port();
    snprintf(addr, sizeof addr, ":%d", hport);
    const char *hook[] = {"events",      "webhook", "--url",     "http://127.0.0.1:9/none",
                          "--type",      "failed",  "--group",   "promhook",
                          "--autoscale", "1:4",     "--metrics", addr,
                          NULL};
    snprintf(log, sizeof log, "%s/webhook.log", f->srv.dir);
    pid_t h = spawn_naq(f, hook, log);
    text = scrape(hport);
    promtool_accepts("processor", text, f->srv.dir);
    assert_non_null(strstr(text, "naq_processor_concurrency{member_id=\"promhook-"));
    strncat(all, text, (1 << 20) - strlen(all) - 1);
    free(text);
    assert_int_equal(stop(f, h), 0);

    const char *once[] = {"metrics", NULL};
    char *out = NULL;
    assert_int_equal(naq_test_run_cli(once, f->env, &out, NULL), 0);
    promtool_accepts("exporter", out, f->srv.dir);
    assert_non_null(strstr(out, "naq_jobs_completed_total{queue=\"mq\"} 3\n"));
    assert_non_null(strstr(out, "naq_jobs_failed_total{queue=\"mq\"} 2\n"));
    assert_non_null(strstr(out, "naq_jobs_dead_lettered_total{queue=\"mq\"} 2\n"));
    assert_non_null(strstr(out, "naq_dlq_jobs{queue=\"mq\"} 2\n"));
    assert_non_null(strstr(out, "naq_job_duration_seconds_count{queue=\"mq\"} 5\n"));
    assert_non_null(strstr(out, "naq_job_queue_wait_seconds_count{queue=\"mq\"} 5\n"));
    strncat(all, out, (1 << 20) - strlen(all) - 1);
    free(out);

    /* The documented alert rules are valid and, like the dashboard, use
     * only metrics that exist. */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "promtool check rules %s > /dev/null", doc_path("alerts.yml"));
    assert_int_equal(system(cmd), 0);
    char *rules = slurp(doc_path("alerts.yml"));
    uses_only_exported("alerts.yml", rules, all);
    free(rules);
    char *dash = slurp(doc_path("grafana-dashboard.json"));
    json_t *d = json_loads(dash, 0, NULL);
    assert_non_null(d);
    assert_true(json_array_size(json_object_get(d, "panels")) >= 10);
    json_decref(d);
    uses_only_exported("grafana-dashboard.json", dash, all);
    free(dash);
    free(all);
}

static void a_bad_listen_address_is_bad_usage_and_a_taken_port_a_failure(void **state)
{
    fixture *f = *state;
    const char *bad[] = {"metrics", "--listen", "9464", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(naq_test_run_cli(bad, f->env, &out, &err), 2);
    assert_non_null(strstr(err, "HOST:PORT"));
    free(out);
    free(err);
    /* The nats-server's own port is taken. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%s", strrchr(f->srv.url, ':') + 1);
    const char *taken[] = {"metrics", "--listen", addr, NULL};
    assert_int_equal(naq_test_run_cli(taken, f->env, &out, &err), 1);
    assert_non_null(strstr(err, "cannot listen"));
    free(out);
    free(err);
}

/* ---- a real Prometheus ---- */

static pid_t spawn_prometheus(fixture *f, const char *config, const char *data, int port,
                              const char *log)
{
    char listen[64], cfg[400], store[400];
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", port);
    snprintf(cfg, sizeof cfg, "--config.file=%s", config);
    snprintf(store, sizeof store, "--storage.tsdb.path=%s", data);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* No stdio in the child of a threaded process: see child_envp in
         * harness.c. */
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execlp("prometheus", "prometheus", cfg, store, listen, (char *)NULL);
        _exit(127);
    }
    f->children[f->nchildren++] = pid;
    return pid;
}

/* The value of an instant query's single sample, or -1. */
static double query(int port, const char *promql)
{
    char path[600], enc[500];
    size_t k = 0;
    for (const char *p = promql; *p != '\0' && k + 4 < sizeof enc; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '_')
            enc[k++] = *p;
        else
            k += (size_t)snprintf(enc + k, sizeof enc - k, "%%%02X", (unsigned char)*p);
    }
    enc[k] = '\0';
    snprintf(path, sizeof path, "/api/v1/query?query=%s", enc);
    char *body = NULL;
    double v = -1;
    if (http_get(port, path, &body) == 200) {
        json_t *o = json_loads(body, 0, NULL);
        json_t *r = json_array_get(json_object_get(json_object_get(o, "data"), "result"), 0);
        const char *s = json_string_value(json_array_get(json_object_get(r, "value"), 1));
        if (s != NULL)
            v = atof(s);
        json_decref(o);
    }
    free(body);
    return v;
}

static void prometheus_scrapes_the_exporter_and_counts_every_job_run(void **state)
{
    fixture *f = *state;
    enum { NJOBS = 20 };
    int eport = naq_test_free_port(), wport = naq_test_free_port(), pport = naq_test_free_port();
    char addr[64], waddr[64], log[320], plog[320], config[320], data[320];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", eport);
    snprintf(waddr, sizeof waddr, "127.0.0.1:%d", wport);
    snprintf(log, sizeof log, "%s/exporter.log", f->srv.dir);
    const char *exporter[] = {"metrics", "--listen", addr, NULL};
    spawn_naq(f, exporter, log);
    free(scrape(eport));

    snprintf(config, sizeof config, "%s/prometheus.yml", f->srv.dir);
    snprintf(data, sizeof data, "%s/prometheus-data", f->srv.dir);
    snprintf(plog, sizeof plog, "%s/prometheus.log", f->srv.dir);
    FILE *fp = fopen(config, "w");
    assert_non_null(fp);
    fprintf(fp,
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: naq\n    static_configs:\n      - targets: ['%s']\n"
            "  - job_name: naq_worker\n    static_configs:\n      - targets: ['%s']\n",
            addr, waddr);
    fclose(fp);
    spawn_prometheus(f, config, data, pport, plog);

    enqueue(f, "promq", "exit 0", NJOBS);
    snprintf(log, sizeof log, "%s/worker.log", f->srv.dir);
    const char *work[] = {"worker", "-q", "promq", "-c", "4", "--metrics", waddr, NULL};
    spawn_naq(f, work, log);

    double completed = -1, worker_completed = -1;
    for (int i = 0; i < 600 && (completed != NJOBS || worker_completed != NJOBS); i++) {
        completed = query(pport, "naq_jobs_completed_total{queue=\"promq\"}");
        worker_completed = query(pport, "sum(naq_worker_jobs_completed_total)");
        if (completed != NJOBS || worker_completed != NJOBS)
            usleep(100000);
    }
    if (completed != NJOBS)
        fail_msg("Prometheus says naq_jobs_completed_total{queue=\"promq\"} = %g, want %d",
                 completed, NJOBS);
    assert_true(worker_completed == NJOBS);
    /* Nothing left: the queue's pending gauge agrees. */
    double pending = -1;
    for (int i = 0; i < 100 && pending != 0; i++) {
        pending = query(pport, "sum(naq_jobs_pending{queue=\"promq\"})");
        if (pending != 0)
            usleep(100000);
    }
    assert_true(pending == 0);
    assert_true(query(pport, "naq_job_duration_seconds_count{queue=\"promq\"}") == NJOBS);
}

static const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    T(every_endpoint_passes_promtool),
    T(a_bad_listen_address_is_bad_usage_and_a_taken_port_a_failure),
    T(prometheus_scrapes_the_exporter_and_counts_every_job_run),
#undef T
};

NAQ_TEST_MAIN(tests)
