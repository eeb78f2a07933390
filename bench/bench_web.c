/*
 * bench_web.c - the figures of `naq web` (docs/web.md, "Performance"):
 *
 *   1. how fast the overview answers on a big event stream: M events
 *      (default 1,000,000: jobs enqueued, started, completed or failed on 20
 *      queues, worker heartbeats, spread over the last 24 hours) folded into
 *      the rollups, then Q requests of GET /api/overview (and a job's
 *      timeline, GET /api/jobs/<id>) against a real `naq web`;
 *   2. the live feed at RATE events/s (default 5,000) for S seconds: one SSE
 *      reader in this program (delivery lag from publish to receipt), and,
 *      when Chromium starts, the live page in a real headless browser
 *      (tests/web/browser.mjs sse-bench): events received, frames drawn,
 *      the longest gap between two frames and long tasks (> 50 ms).
 *
 * Usage: bench_web [M events] [Q queries] [RATE] [S seconds]
 * It starts its own nats-server (a temporary store on a free loopback
 * port; never the server of NAQ_URL) and the `naq` next to this program,
 * and removes both at the end. Prints name=value lines; times are ms.
 * Run it alone: it measures latency and shares nothing well.
 */
#include "naq/naq.h"
#include "naq/stats.h"

#include <nats/nats.h>

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NQUEUES 20

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, int p)
{
    if (n == 0)
        return -1;
    qsort(v, n, sizeof *v, cmp_double);
    long i = (long)ceil((double)n * p / 100.0) - 1;
    return v[i < 0 ? 0 : (size_t)i < n ? i : (long)n - 1];
}

static void die(const char *fmt, const char *what)
{
    fprintf(stderr, "bench_web: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    exit(1);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        die("%s", "no free port");
    close(fd);
    return ntohs(sa.sin_port);
}

static pid_t spawn(const char *const *argv, const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = fopen(log, "w");
        if (f != NULL) {
            dup2(fileno(f), 1);
            dup2(fileno(f), 2);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static void stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        sleep_ms(25);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* ---- events ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Event i of a run `tag`: job i/3's enqueued, started or outcome (1 in 8
 * fails), every 50th a worker heartbeat, at timestamp ts. */
static natsStatus publish_event(jsCtx *js, const char *tag, int64_t i, double ts, const char *queue)
{
    naq_event e;
    naq_event_type types[3] = {NAQ_EVENT_ENQUEUED, NAQ_EVENT_STARTED, NAQ_EVENT_COMPLETED};
    naq_event_init(&e, types[i % 3]);
    snprintf(e.event_id, sizeof e.event_id, "%s-%012lld", tag, (long long)i);
    snprintf(e.job_id, sizeof e.job_id, "%s-job-%012lld", tag, (long long)(i / 3));
    if (queue != NULL)
        snprintf(e.queue_name, sizeof e.queue_name, "%s", queue);
    else
        snprintf(e.queue_name, sizeof e.queue_name, "queue-%02d", (int)((i / 3) % NQUEUES));
    e.timestamp = ts;
    uint64_t r = rnd();
    if (i % 50 == 49) {
        e.type = NAQ_EVENT_WORKER_HEARTBEAT;
        e.job_id[0] = e.queue_name[0] = '\0';
    }
    if (e.type != NAQ_EVENT_ENQUEUED)
        snprintf(e.worker_id, sizeof e.worker_id, "worker-%02d", (int)(r % 50));
    if (e.type == NAQ_EVENT_COMPLETED) {
        e.duration_ms = 2.0 * exp((double)(r >> 40) / (double)(1 << 24) * 7.0);
        if ((r >> 8) % 8 == 0) {
            e.type = NAQ_EVENT_FAILED;
            e.error_type = (char *)"ExitStatus";
            e.error_message = (char *)"command exited with status 3";
        }
    }
    char subject[256];
    char *json = NULL;
    size_t len = 0;
    if (naq_event_subject("naq", &e, subject, sizeof subject) != NAQ_OK ||
        naq_event_encode(&e, &json, &len) != NAQ_OK)
        return NATS_ERR;
    natsMsg *msg = NULL;
    natsStatus ns = natsMsg_Create(&msg, subject, NULL, json, (int)len);
    free(json);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Nats-Msg-Id", e.event_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(msg, "Naq-Event-Type", naq_event_type_name(e.type));
    if (ns == NATS_OK && e.queue_name[0])
        ns = natsMsgHeader_Set(msg, "Naq-Queue", e.queue_name);
    if (ns == NATS_OK && e.worker_id[0])
        ns = natsMsgHeader_Set(msg, "Naq-Worker", e.worker_id);
    if (ns == NATS_OK)
        ns = js_PublishMsgAsync(js, &msg, NULL);
    natsMsg_Destroy(msg);
    return ns;
}

static void complete(jsCtx *js)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120000;
    if (js_PublishAsyncComplete(js, &po) != NATS_OK)
        die("%s", "publishing did not complete");
}

/* ---- HTTP ---- */

typedef struct {
    char *data;
    size_t len;
} buf;

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    buf *b = ud;
    char *g = realloc(b->data, b->len + size * n + 1);
    if (g == NULL)
        return 0;
    memcpy(g + b->len, p, size * n);
    b->data = g;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* Times q GETs of url on one keep-alive connection; prints the client
 * and (for the overview) the server's own took_ms percentiles. */
static void time_gets(const char *name, const char *url, int q)
{
    CURL *h = curl_easy_init();
    double *t = calloc((size_t)q, sizeof *t), *srv = calloc((size_t)q, sizeof *srv);
    size_t nsrv = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    for (int i = 0; i < q; i++) {
        buf b = {NULL, 0};
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        double t0 = mono_ms();
        CURLcode rc = curl_easy_perform(h);
        t[i] = mono_ms() - t0;
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (rc != CURLE_OK || code != 200)
            die("GET failed: %s", b.data ? b.data : curl_easy_strerror(rc));
        const char *took = strstr(b.data, "\"took_ms\":");
        if (took != NULL)
            srv[nsrv++] = atof(took + 10);
        free(b.data);
    }
    curl_easy_cleanup(h);
    printf("%s_p50_ms=%.2f\n%s_p99_ms=%.2f\n", name, pct(t, (size_t)q, 50), name,
           pct(t, (size_t)q, 99));
    if (nsrv > 0)
        printf("%s_server_p50_ms=%.2f\n%s_server_p99_ms=%.2f\n", name, pct(srv, nsrv, 50), name,
               pct(srv, nsrv, 99));
    free(t);
    free(srv);
}

/* ---- the SSE reader: delivery lag of each event ---- */

typedef struct {
    char url[256];
    volatile int stop;
    buf line;
    double *lag;
    size_t nlag, cap;
    uint64_t events;
} sse_reader;

static size_t sse_take(char *p, size_t size, size_t n, void *ud)
{
    sse_reader *r = ud;
    double now = wall_s();
    size_t len = size * n;
    while (len > 0) {
        char *nl = memchr(p, '\n', len);
        size_t k = nl != NULL ? (size_t)(nl - p) : len;
        collect(p, 1, k, &r->line);
        if (nl == NULL)
            break;
        if (r->line.data != NULL && strncmp(r->line.data, "data: ", 6) == 0) {
            r->events++;
            const char *ts = strstr(r->line.data, "\"timestamp\":");
            if (ts != NULL && r->nlag < r->cap)
                r->lag[r->nlag++] = (now - atof(ts + 12)) * 1000.0;
        }
        r->line.len = 0;
        if (r->line.data != NULL)
            r->line.data[0] = '\0';
        p += k + 1;
        len -= k + 1;
    }
    return r->stop ? 0 : size * n;
}

static int sse_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return ((sse_reader *)ud)->stop;
}

static void *sse_main(void *arg)
{
    sse_reader *r = arg;
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sse_take);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, sse_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
    curl_easy_perform(h);
    curl_easy_cleanup(h);
    return NULL;
}

/* ---- the browser ---- */

typedef struct {
    pid_t pid;
    FILE *in, *out; /* its stdin (we write), its stdout (we read) */
} driver;

/* Starts `node browser.mjs sse-bench SPEC`; 1 once it said "ready". */
static int driver_start(driver *d, const char *spec_path)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    if (slash == NULL)
        return 0;
    snprintf(slash, sizeof path - (size_t)(slash - path), "/../tests/web/browser.mjs");
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0)
        return 0;
    d->pid = fork();
    if (d->pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        execlp("node", "node", path, "sse-bench", spec_path, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    d->in = fdopen(to[1], "w");
    d->out = fdopen(from[0], "r");
    char line[256];
    return fgets(line, sizeof line, d->out) != NULL && strncmp(line, "ready", 5) == 0;
}

int main(int argc, char **argv)
{
    int64_t m = argc > 1 ? atoll(argv[1]) : 1000000;
    int q = argc > 2 ? atoi(argv[2]) : 50;
    int rate = argc > 3 ? atoi(argv[3]) : 5000;
    int secs = argc > 4 ? atoi(argv[4]) : 10;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);

    char dir[] = "/tmp/naq-bench-web-XXXXXX";
    if (mkdtemp(dir) == NULL)
        die("%s", "no temp dir");
    int nport = free_port();
    char port_s[16], store[300], log[300], url[64];
    snprintf(port_s, sizeof port_s, "%d", nport);
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(log, sizeof log, "%s/nats.log", dir);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", nport);
    pid_t nats = spawn(
        (const char *[]){"nats-server", "-js", "-a", "127.0.0.1", "-p", port_s, "-sd", store, NULL},
        log);
    setenv("NAQ_URL", url, 1);
    char spool[320];
    snprintf(spool, sizeof spool, "%s/spool", dir);
    setenv("NAQ_SPOOL_DIR", spool, 1);

    naq_config cfg;
    naq_config_init(&cfg);
    if (naq_config_from_env(&cfg) != NAQ_OK)
        die("config: %s", naq_last_error());
    cfg.disable_logging = 1;
    naq_client *c = NULL;
    for (int i = 0; i < 100 && naq_client_connect(&cfg, &c) != NAQ_OK; i++)
        sleep_ms(50);
    if (c == NULL)
        die("cannot reach the nats-server it started: %s", naq_last_error());
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 8192;
    jo.PublishAsync.StallWait = 30000;
    if (natsConnection_ConnectTo(&nc, url) != NATS_OK ||
        natsConnection_JetStream(&js, nc, &jo) != NATS_OK)
        die("%s", "cannot connect nats.c");

    /* 1. M events over the last 24 h, folded. */
    double t_end = wall_s();
    double t0 = mono_ms();
    for (int64_t i = 0; i < m; i++)
        if (publish_event(js, "bw", i, t_end - 86400.0 + 86400.0 * (double)i / (double)m, NULL) !=
            NATS_OK)
            die("%s", "publish failed");
    complete(js);
    printf("events=%lld\npublish_events_per_s=%.0f\n", (long long)m,
           (double)m / ((mono_ms() - t0) / 1000.0));
    t0 = mono_ms();
    uint64_t folded = 0;
    if (naq_rollup_catch_up(c, NULL, NULL, NULL, &folded) != NAQ_OK)
        die("rollup: %s", naq_last_error());
    printf("rollup_events=%llu\nrollup_ms=%.0f\n", (unsigned long long)folded, mono_ms() - t0);

    char naq_bin[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", naq_bin, sizeof naq_bin - 8);
    if (n <= 0)
        die("%s", "cannot find itself");
    naq_bin[n] = '\0';
    snprintf(strrchr(naq_bin, '/'), 8, "/naq");
    int wport = free_port();
    char listen[64], wlog[300], base[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", wport);
    snprintf(wlog, sizeof wlog, "%s/web.log", dir);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", wport);
    pid_t web = spawn((const char *[]){naq_bin, "web", "--listen", listen, NULL}, wlog);
    char probe[128];
    snprintf(probe, sizeof probe, "%s/api/config", base);
    int up = 0;
    for (int i = 0; i < 200 && !up; i++) {
        CURL *h = curl_easy_init();
        buf b = {NULL, 0};
        curl_easy_setopt(h, CURLOPT_URL, probe);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        up = curl_easy_perform(h) == CURLE_OK;
        curl_easy_cleanup(h);
        free(b.data);
        if (!up)
            sleep_ms(50);
    }
    if (!up)
        die("naq web did not start (see %s)", wlog);
    sleep_ms(1000); /* the live window's tail */
    char u[256];
    snprintf(u, sizeof u, "%s/api/overview", base);
    time_gets("overview_1M", u, q);
    snprintf(u, sizeof u, "%s/api/jobs/bw-job-%012lld", base, (long long)(m / 6));
    time_gets("job_timeline_1M", u, q);

    /* 2. The live feed at RATE events/s for S seconds. */
    sse_reader r;
    memset(&r, 0, sizeof r);
    snprintf(r.url, sizeof r.url, "%s/api/events/stream?queue=live", base);
    r.cap = (size_t)rate * (size_t)secs + 1000;
    r.lag = calloc(r.cap, sizeof *r.lag);
    pthread_t th;
    pthread_create(&th, NULL, sse_main, &r);
    char spec[400];
    snprintf(spec, sizeof spec, "%s/spec.json", dir);
    FILE *sf = fopen(spec, "w");
    int64_t total = (int64_t)rate * secs;
    int64_t matching = total - total / 50; /* every 50th is a heartbeat, of no queue */
    fprintf(
        sf,
        "{\"base\":\"%s\",\"query\":\"queue=live\",\"artifacts\":\"%s\",\"expect_events\":%lld}\n",
        base, dir, (long long)matching);
    fclose(sf);
    driver d = {0};
    int browser = driver_start(&d, spec);
    sleep_ms(500);
    t0 = mono_ms();
    int64_t sent = 0;
    for (int tick = 0; sent < total; tick++) {
        int64_t due = (int64_t)((double)rate * (double)(tick + 1) / 100.0);
        for (; sent < due && sent < total; sent++)
            publish_event(js, "live", sent, wall_s(), "live");
        sleep_ms(t0 + (tick + 1) * 10.0 - mono_ms());
    }
    complete(js);
    double pub_s = (mono_ms() - t0) / 1000.0;
    printf("live_rate_target=%d\nlive_published=%lld\nlive_publish_per_s=%.0f\n", rate,
           (long long)sent, (double)sent / pub_s);
    for (int i = 0; i < 100 && r.events < (uint64_t)matching; i++)
        sleep_ms(50);
    r.stop = 1;
    pthread_join(th, NULL);
    printf("live_sse_matching=%lld\n", (long long)matching);
    printf("live_sse_received=%llu\nlive_sse_lag_p50_ms=%.1f\nlive_sse_lag_p99_ms=%.1f\n",
           (unsigned long long)r.events, pct(r.lag, r.nlag, 50), pct(r.lag, r.nlag, 99));
    if (browser) {
        fputs("done\n", d.in);
        fflush(d.in);
        char line[1024];
        if (fgets(line, sizeof line, d.out) != NULL)
            printf("live_browser=%s", line);
    } else {
        printf("live_browser=skipped (chromium or node could not start)\n");
    }
    if (d.pid > 0) {
        fclose(d.in);
        waitpid(d.pid, NULL, 0);
        fclose(d.out);
    }
    free(r.lag);
    free(r.line.data);
    stop(web);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    naq_client_destroy(c);
    stop(nats);
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "bench_web: could not remove %s\n", dir);
    curl_global_cleanup();
    return 0;
}
