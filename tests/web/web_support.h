/*
 * web_support.h - what the tests of `naq web` share (tests/test_web.c, the
 * API; tests/web/test_web_browser.c, the pages in Chromium): starting the
 * real `naq web` process against a test server on a free port, HTTP
 * requests through libcurl, and the environment the CLI needs.
 */
#ifndef NAQ_WEB_SUPPORT_H
#define NAQ_WEB_SUPPORT_H

#include "harness.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int port;
    char log[320];
    char base[64]; /* http://127.0.0.1:<port> */
    char env_url[96], env_spool[320];
    const char *env[8]; /* NAQ_URL, NAQ_SPOOL_DIR, then the caller's, NULL */
} web_proc;

/* The CLI's environment for server s: its URL and a spool in its dir. */
static inline void web_env(web_proc *w, const naq_test_server *s, const char *const *more)
{
    snprintf(w->env_url, sizeof w->env_url, "NAQ_URL=%s", s->url);
    snprintf(w->env_spool, sizeof w->env_spool, "NAQ_SPOOL_DIR=%s/spool-cli", s->dir);
    size_t n = 0;
    w->env[n++] = w->env_url;
    w->env[n++] = w->env_spool;
    for (; more != NULL && *more != NULL && n < 7; more++)
        w->env[n++] = *more;
    w->env[n] = NULL;
}

/* Every process these helpers start, so that a failed assertion (which
 * leaves the test function at once) still stops them: the tests' teardown
 * calls web_stop_all(). */
#define WEB_CHILDREN_MAX 32
static pid_t web_children[WEB_CHILDREN_MAX];

static inline pid_t web_track(pid_t pid)
{
    for (int i = 0; i < WEB_CHILDREN_MAX; i++)
        if (web_children[i] == 0) {
            web_children[i] = pid;
            break;
        }
    return pid;
}

static inline void web_untrack(pid_t pid)
{
    for (int i = 0; i < WEB_CHILDREN_MAX; i++)
        if (web_children[i] == pid)
            web_children[i] = 0;
}

static inline void web_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts `naq web --listen 127.0.0.1:0 <args>` and waits until it says
 * where it serves. Returns 1, or 0 when it exited (its exit code in
 * *exit_code when not NULL) or said nothing within 10 s. */
static inline int web_start(web_proc *w, const naq_test_server *s, const char *const *args,
                            const char *const *env, int *exit_code)
{
    memset(w, 0, sizeof *w);
    web_env(w, s, env);
    snprintf(w->log, sizeof w->log, "%s/web-%d.log", s->dir, naq_test_free_port());
    const char *argv[16] = {"web", "--listen", "127.0.0.1:0"};
    size_t n = 3;
    for (; args != NULL && *args != NULL && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    w->pid = web_track(naq_test_spawn_cli(argv, w->env, w->log));
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(w->log, "r");
        char line[512];
        while (f != NULL && fgets(line, sizeof line, f) != NULL) {
            const char *p = strstr(line, "serving http://127.0.0.1:");
            if (p != NULL) {
                w->port = atoi(p + strlen("serving http://127.0.0.1:"));
                snprintf(w->base, sizeof w->base, "http://127.0.0.1:%d", w->port);
                fclose(f);
                return 1;
            }
        }
        if (f != NULL)
            fclose(f);
        int st = 0;
        if (waitpid(w->pid, &st, WNOHANG) == w->pid) {
            web_untrack(w->pid);
            if (exit_code != NULL)
                *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
            w->pid = 0;
            return 0;
        }
        web_sleep_ms(20);
    }
    return 0;
}

/* SIGTERM, then SIGKILL after 10 s; the exit code (128 + signal when
 * killed). */
static inline int web_stop_pid(pid_t pid)
{
    if (pid <= 0)
        return -1;
    web_untrack(pid);
    kill(pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        web_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return 128 + SIGKILL;
}

/* Stops whatever a failed test left running. */
static inline void web_stop_all(void)
{
    for (int i = 0; i < WEB_CHILDREN_MAX; i++)
        if (web_children[i] > 0)
            web_stop_pid(web_children[i]);
}

static inline int web_stop(web_proc *w)
{
    int rc = web_stop_pid(w->pid);
    w->pid = 0;
    return rc;
}

typedef struct {
    char *data;
    size_t len;
} web_buf;

static inline size_t web_collect(char *p, size_t size, size_t n, void *ud)
{
    web_buf *b = ud;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, p, size * n);
    b->data = grown;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* One request: method "GET" or "POST", path under w->base, headers
 * (NULL-terminated "Name: value", may be NULL), body (POST; may be NULL).
 * Returns the HTTP status (0 when the request failed); *out (heap, free();
 * may be NULL) the body. */
static inline long web_http(const web_proc *w, const char *method, const char *path,
                            const char *const *headers, const char *body, char **out)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    char url[512];
    snprintf(url, sizeof url, "%s%s", w->base, path);
    web_buf b = {calloc(1, 1), 0};
    struct curl_slist *hl = NULL;
    for (; headers != NULL && *headers != NULL; headers++)
        hl = curl_slist_append(hl, *headers);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, web_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body != NULL ? body : "");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    long code = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    if (out != NULL)
        *out = b.data;
    else
        free(b.data);
    return code;
}

/* The CLI with w's environment; the exit code, *out its stdout (heap). */
static inline int web_cli(const web_proc *w, const char *const *argv, char **out)
{
    return naq_test_run_cli(argv, w->env, out, NULL);
}

/* Enqueues an exec job: `naq enqueue -q queue [extra...] -- argv...`; the
 * job id into id. */
static inline void web_enqueue(const web_proc *w, const char *const *args, char id[NAQ_ID_SIZE])
{
    char *out = NULL;
    const char *argv[24] = {"enqueue"};
    size_t n = 1;
    for (; *args != NULL && n < 23; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    int rc = web_cli(w, argv, &out);
    if (rc != 0)
        fail_msg("naq enqueue failed (%d): %s", rc, out ? out : "");
    snprintf(id, NAQ_ID_SIZE, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
}

/* Starts `naq worker -q queue` in the background; its pid. */
static inline pid_t web_worker(const web_proc *w, const naq_test_server *s, const char *queue)
{
    char log[320];
    snprintf(log, sizeof log, "%s/worker-%s.log", s->dir, queue);
    const char *argv[] = {"worker", "-q", queue, NULL};
    return web_track(naq_test_spawn_cli(argv, w->env, log));
}

/* Waits until a live worker serving queue is idle in the registry (it
 * has made its consumer and handles SIGTERM), so stopping it is a clean
 * stop. 1 when it is within 20 s. */
static inline int web_worker_ready(naq_client *c, const char *queue)
{
    for (int i = 0; i < 1000; i++) {
        naq_worker_info_list l = {0};
        int ready = 0;
        if (naq_workers_list(c, &l) == NAQ_OK)
            for (size_t k = 0; k < l.count && !ready; k++)
                for (char **q = l.items[k].queues; *q != NULL && !ready; q++)
                    ready = strcmp(*q, queue) == 0 && l.items[k].status == NAQ_WORKER_STATUS_IDLE;
        naq_worker_info_list_free(&l);
        if (ready)
            return 1;
        web_sleep_ms(20);
    }
    return 0;
}

/* Waits until job's last event is of type t (its events are logged
 * asynchronously: a dead letter is stored before "max_retries_exceeded"
 * is). 1 when it is within 10 s. */
static inline int web_wait_last_event(naq_client *c, const char *job, naq_event_type t)
{
    for (int i = 0; i < 500; i++) {
        naq_event e;
        int is = naq_job_last_event(c, job, &e) == NAQ_OK && e.type == t;
        naq_event_clear(&e);
        if (is)
            return 1;
        web_sleep_ms(20);
    }
    return 0;
}

#endif
