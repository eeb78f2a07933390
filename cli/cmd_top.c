/*
 * cmd_top.c - `naq top`: a full-screen live view of naq (ncurses).
 *
 * Three threads, so the screen never waits on the network:
 *   - the events thread follows the event stream (naq_events_stream, with a
 *     short tail for context) into a naq_live window (naq/stats.h);
 *   - the poller reads queue depths and the connection state every second,
 *     and fetches a job's history when the screen asks for one;
 *   - the UI thread (the caller) takes a snapshot of the window twice a
 *     second, draws it and reads keys with a 100 ms timeout.
 * The UI thread only ever locks in-memory state; every figure comes from
 * the library (rates, percentiles, worker states), the screen only lays
 * them out. It fits 80x24: sections share the rows that are left, each
 * keeping at least one.
 */
#include "cli.h"
#include "internal.h" /* the library's clocks, naq__nap, naq__live_follow */
#include "cmd_top.h"

#include "naq/query.h"
#include "naq/stats.h"

#include <curses.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REFRESH_MS 500
#define KEY_WAIT_MS 100
#define POLL_MS 1000
#define TAIL_EVENTS 2000 /* context at start: rates need the last 10 s */
#define KEY_ESC 27

static const char usage[] =
    "usage: naq top [--queue Q] [--refresh MS]\n"
    "\n"
    "A live view of naq, refreshed twice a second: events and jobs per second\n"
    "by state over the last 10 s, queue depths, workers and the jobs they run,\n"
    "recent failures with their errors, and run latency percentiles over the\n"
    "last minute. It needs a terminal of at least 80x24.\n"
    "\n"
    "keys:\n"
    "  q          quit\n"
    "  p          pause / resume the display (data keeps coming)\n"
    "  f          filter by queue (empty = all)\n"
    "  j k, arrows  select a recent job\n"
    "  Enter      open the selected job's history\n"
    "  Esc, Backspace  back\n"
    "\n"
    "      --queue Q         start filtered to queue Q\n"
    "      --refresh MS      redraw every MS milliseconds (default 500)\n"
    "  -h, --help            this help\n"
    "\n" NAQ_CLI_COMMON_USAGE "\n"
    "exit codes: 0 quit, 1 failure (no server, no terminal), 2 bad usage\n";

/* ---- what the background threads share with the screen ---- */

typedef enum { HIST_NONE, HIST_LOADING, HIST_READY, HIST_ERROR } hist_state;

typedef struct {
    naq_client *c;
    naq_live *live;
    volatile int stop;
    pthread_mutex_t lock; /* guards everything below */
    naq_queue_depth *depths;
    size_t ndepths;
    char url[NAQ_URL_MAX];
    int connected;
    char status[256]; /* the last background error, "" when all is well */
    char hist_job[NAQ_ID_SIZE];
    hist_state hstate;
    naq_event_list hist;
    char hist_err[256];
} top_shared;

static void set_status(top_shared *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_status(top_shared *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&t->lock);
    vsnprintf(t->status, sizeof t->status, fmt, ap);
    pthread_mutex_unlock(&t->lock);
    va_end(ap);
}

static void stream_broke(const char *why, void *ud)
{
    set_status(ud, "event stream: %s; retrying", why);
}

static void *events_main(void *arg)
{
    top_shared *t = arg;
    naq__live_follow(t->c, t->live, TAIL_EVENTS, &t->stop, stream_broke, t);
    return NULL;
}

static void poll_history(top_shared *t)
{
    char job[NAQ_ID_SIZE] = "";
    pthread_mutex_lock(&t->lock);
    if (t->hstate == HIST_LOADING)
        snprintf(job, sizeof job, "%s", t->hist_job);
    pthread_mutex_unlock(&t->lock);
    if (job[0] == '\0')
        return;
    naq_event_list l = {0};
    naq_status s = naq_job_history(t->c, job, &l);
    pthread_mutex_lock(&t->lock);
    if (t->hstate == HIST_LOADING && strcmp(t->hist_job, job) == 0) {
        naq_event_list_free(&t->hist);
        t->hist = l;
        l.items = NULL;
        l.count = 0;
        t->hstate = s == NAQ_OK ? HIST_READY : HIST_ERROR;
        snprintf(t->hist_err, sizeof t->hist_err, "%s", s == NAQ_OK ? "" : naq_last_error());
    }
    pthread_mutex_unlock(&t->lock);
    naq_event_list_free(&l);
}

static void poll_server(top_shared *t)
{
    naq_queue_depth *d = NULL;
    size_t n = 0;
    naq_status s = naq_queue_depths(t->c, &d, &n);
    naq_health_report h;
    naq_health(t->c, &h);
    pthread_mutex_lock(&t->lock);
    if (s == NAQ_OK) {
        free(t->depths);
        t->depths = d;
        t->ndepths = n;
        d = NULL;
    }
    snprintf(t->url, sizeof t->url, "%s", h.url);
    t->connected = h.connected;
    pthread_mutex_unlock(&t->lock);
    free(d);
    if (s != NAQ_OK)
        set_status(t, "queue depths: %s", naq_last_error());
}

static void *poller_main(void *arg)
{
    top_shared *t = arg;
    int64_t next = 0;
    while (!t->stop) {
        poll_history(t);
        int64_t now = naq__mono_ms();
        if (now >= next) {
            poll_server(t);
            next = now + POLL_MS;
        }
        naq__nap(100, &t->stop);
    }
    return NULL;
}

/* ---- the screen ---- */

typedef struct {
    naq_live_snapshot snap;
    naq_queue_depth *depths; /* a copy, frozen with the snapshot when paused */
    size_t ndepths;
    char url[NAQ_URL_MAX];
    char status[256];
    int connected;
    int paused;
    char filter[NAQ_ID_SIZE];
    size_t sel;
    char sel_job[NAQ_ID_SIZE];
    int pinned;  /* the user moved the selection: it follows its job, else the newest */
    int history; /* showing a job's history */
    int scroll;
    int prompting;
    char input[NAQ_ID_SIZE];
    size_t ninput;
} ui_state;

/* "HH:MM:SS" (UTC) of a timestamp. */
static void clock_of(double ts, char *buf, size_t cap)
{
    char full[40];
    naq_cli_format_time(ts, full, sizeof full);
    snprintf(buf, cap, "%.8s", strlen(full) >= 19 ? full + 11 : "--:--:--");
}

/* Prints one screen row, cut at the screen width, clearing the rest. */
static void row(int y, int attr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void row(int y, int attr, const char *fmt, ...)
{
    if (y < 0 || y >= LINES)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    if (attr)
        attron(attr);
    mvaddnstr(y, 0, buf, COLS);
    clrtoeol();
    if (attr) {
        /* a highlighted row spans the screen */
        int len = (int)strlen(buf);
        for (int x = len; x < COLS; x++)
            mvaddch(y, x, ' ');
        attroff(attr);
    }
}

static void refresh_data(top_shared *t, ui_state *u)
{
    naq_live_query q;
    naq_live_query_init(&q);
    q.queue = u->filter[0] ? u->filter : NULL;
    naq_live_snapshot s;
    if (naq_live_snapshot_take(t->live, &q, &s) == NAQ_OK) {
        naq_live_snapshot_free(&u->snap);
        u->snap = s;
    }
    pthread_mutex_lock(&t->lock);
    free(u->depths);
    u->depths = NULL;
    u->ndepths = 0;
    if (t->ndepths > 0 && (u->depths = calloc(t->ndepths, sizeof *u->depths)) != NULL) {
        memcpy(u->depths, t->depths, t->ndepths * sizeof *u->depths);
        u->ndepths = t->ndepths;
    }
    snprintf(u->url, sizeof u->url, "%s", t->url);
    snprintf(u->status, sizeof u->status, "%s", t->status);
    u->connected = t->connected;
    pthread_mutex_unlock(&t->lock);
    /* A chosen job keeps its selection as the list moves; otherwise the
     * selection stays on the newest. */
    if (!u->pinned)
        u->sel = 0;
    for (size_t i = 0; u->pinned && u->sel_job[0] && i < u->snap.njobs; i++)
        if (strcmp(u->snap.jobs[i].job_id, u->sel_job) == 0)
            u->sel = i;
    if (u->snap.njobs == 0)
        u->sel = 0;
    else if (u->sel >= u->snap.njobs)
        u->sel = u->snap.njobs - 1;
    if (u->snap.njobs > 0)
        snprintf(u->sel_job, sizeof u->sel_job, "%s", u->snap.jobs[u->sel].job_id);
}

/* Shares `budget` rows among sections wanting want[i] rows (each gets at
 * least one), in turn, one row at a time. */
static void share_rows(const int *want, int n, int budget, int *got)
{
    for (int i = 0; i < n; i++) {
        got[i] = 1;
        budget--;
    }
    for (int more = 1; budget > 0 && more;) {
        more = 0;
        for (int i = 0; i < n && budget > 0; i++) {
            if (got[i] < want[i]) {
                got[i]++;
                budget--;
                more = 1;
            }
        }
    }
}

static void draw_header(const ui_state *u)
{
    char now[16];
    clock_of(naq__now(), now, sizeof now);
    char filter[NAQ_ID_SIZE + 16] = "";
    if (u->filter[0])
        snprintf(filter, sizeof filter, "  [queue: %s]", u->filter);
    row(0, A_REVERSE, " naq top  %s%s  %s UTC%s%s  %s", u->url,
        u->connected ? "" : " (disconnected)", now, u->paused ? "  [PAUSED]" : "", filter,
        u->status);
    const naq_live_snapshot *s = &u->snap;
    row(1, 0, " events/s %-7.1f jobs/s: enqueued %.1f  started %.1f  completed %.1f  failed %.1f",
        s->events_per_s, s->per_s[NAQ_EVENT_ENQUEUED], s->per_s[NAQ_EVENT_STARTED],
        s->per_s[NAQ_EVENT_COMPLETED], s->per_s[NAQ_EVENT_FAILED]);
    if (s->latency_n > 0)
        row(2, 0, " latency (last minute, %llu %s): p50 %.1f ms  p95 %.1f ms  p99 %.1f ms",
            (unsigned long long)s->latency_n, naq_cli_plural(s->latency_n, "run", "runs"), s->p50,
            s->p95, s->p99);
    else
        row(2, 0, " latency: no job ended in the last minute");
}

static void draw_main(const ui_state *u)
{
    erase();
    if (LINES < 12 || COLS < 40) {
        row(0, 0, "naq top: the terminal is too small (%dx%d); 80x24 is enough", COLS, LINES);
        return;
    }
    draw_header(u);
    const naq_live_snapshot *s = &u->snap;
    size_t nq = 0;
    for (size_t i = 0; i < u->ndepths; i++)
        if (!u->filter[0] || strcmp(u->depths[i].queue, u->filter) == 0)
            nq++;
    int want[4] = {(int)nq, (int)s->nworkers, (int)s->nfailures, (int)s->njobs};
    for (int i = 0; i < 4; i++)
        if (want[i] < 1)
            want[i] = 1;
    int got[4];
    int budget = LINES - 3 /* header */ - 1 /* footer */ - 4 /* titles */;
    share_rows(want, 4, budget, got);
    int y = 3;

    row(y++, A_BOLD, " QUEUE                   PENDING  IN FLIGHT  (by priority 0..4)");
    int shown = 0;
    for (size_t i = 0; i < u->ndepths && shown < got[0]; i++) {
        const naq_queue_depth *d = &u->depths[i];
        if (u->filter[0] && strcmp(d->queue, u->filter) != 0)
            continue;
        row(y++, 0, " %-22s %8llu  %9lld  (%llu %llu %llu %llu %llu)", d->queue,
            (unsigned long long)d->pending, (long long)d->in_flight,
            (unsigned long long)d->by_priority[0], (unsigned long long)d->by_priority[1],
            (unsigned long long)d->by_priority[2], (unsigned long long)d->by_priority[3],
            (unsigned long long)d->by_priority[4]);
        shown++;
    }
    if (shown == 0)
        row(y++, 0, " (no queue has workers' consumers yet)");
    y += got[0] - (shown ? shown : 1);

    row(y++, A_BOLD, " %-20s %-8s %-10s %-16s %5s %4s %6s", "WORKER", "STATUS", "QUEUE", "JOB",
        "DONE", "FAIL", "SEEN");
    double now = naq__now();
    for (int i = 0; i < got[1]; i++) {
        if ((size_t)i >= s->nworkers) {
            if (i == 0)
                row(y, 0, " (no worker events yet)");
            y++;
            continue;
        }
        const naq_worker_activity *w = &s->workers[i];
        row(y++, 0, " %-20.20s %-8s %-10.10s %-16.16s %5llu %4llu %5.0fs", w->worker_id,
            naq_worker_status_name(w->status), w->queue[0] ? w->queue : "-",
            w->current_job[0] ? w->current_job : "-", (unsigned long long)w->processed,
            (unsigned long long)w->failed, now - w->last_seen > 0 ? now - w->last_seen : 0);
    }

    row(y++, A_BOLD, " RECENT FAILURES (one per job and attempt)");
    for (int i = 0; i < got[2]; i++) {
        if ((size_t)i >= s->nfailures) {
            if (i == 0)
                row(y, 0, " (none)");
            y++;
            continue;
        }
        const naq_live_failure *f = &s->failures[i];
        char at[16], attempt[16] = "-";
        clock_of(f->timestamp, at, sizeof at);
        if (f->attempt > 0)
            snprintf(attempt, sizeof attempt, "#%d", f->attempt);
        row(y++, has_colors() ? COLOR_PAIR(1) : 0, " %s %-12.12s %-14.14s %-3s %s: %s", at,
            f->queue[0] ? f->queue : "-", f->job_id[0] ? f->job_id : "-", attempt, f->error_type,
            f->error_message);
    }

    row(y++, A_BOLD, " RECENT JOBS (j/k select, Enter history)");
    /* Scroll the job list so the selection stays visible. */
    size_t first = u->sel >= (size_t)got[3] ? u->sel - (size_t)got[3] + 1 : 0;
    for (int i = 0; i < got[3]; i++) {
        size_t k = first + (size_t)i;
        if (k >= s->njobs) {
            if (i == 0)
                row(y, 0, " (none)");
            y++;
            continue;
        }
        const naq_live_job *j = &s->jobs[k];
        char at[16];
        clock_of(j->timestamp, at, sizeof at);
        row(y++, k == u->sel ? A_REVERSE : 0, "%s%s %-32s %-12.12s %s", k == u->sel ? ">" : " ", at,
            j->job_id, j->queue[0] ? j->queue : "-", naq_event_type_name(j->last_type));
    }
}

static void draw_history(top_shared *t, ui_state *u)
{
    erase();
    pthread_mutex_lock(&t->lock);
    row(0, A_REVERSE, " history of job %s  (Esc back, j/k scroll, q quit)", t->hist_job);
    if (t->hstate == HIST_LOADING) {
        row(2, 0, " loading...");
    } else if (t->hstate == HIST_ERROR) {
        row(2, 0, " %s", t->hist_err);
    } else {
        row(1, A_BOLD, " %-12s %-22s %-22s %s", "TIME", "TYPE", "WORKER", "DETAIL");
        int rows = LINES - 2;
        if (u->scroll > (int)t->hist.count - 1)
            u->scroll = t->hist.count > 0 ? (int)t->hist.count - 1 : 0;
        for (int i = 0; i < rows && (size_t)(u->scroll + i) < t->hist.count; i++) {
            const naq_event *e = &t->hist.items[u->scroll + i];
            char full[40], detail[256];
            naq_cli_format_time(e->timestamp, full, sizeof full);
            naq_cli_event_detail(e, detail, sizeof detail);
            row(2 + i, 0, " %-12.12s %-22s %-22.22s %s", strlen(full) > 11 ? full + 11 : full,
                naq_event_type_name(e->type), e->worker_id[0] ? e->worker_id : "-",
                detail[0] ? detail : "-");
        }
    }
    pthread_mutex_unlock(&t->lock);
}

static void draw(top_shared *t, ui_state *u)
{
    if (u->history)
        draw_history(t, u);
    else
        draw_main(u);
    if (u->prompting)
        row(LINES - 1, A_REVERSE, " queue filter (Enter apply, empty = all, Esc cancel): %s_",
            u->input);
    else if (!u->history)
        row(LINES - 1, A_REVERSE,
            " q quit  p %s  f filter queue  j/k select  Enter history  Esc back",
            u->paused ? "resume" : "pause");
    refresh();
}

static void open_history(top_shared *t, ui_state *u)
{
    if (u->snap.njobs == 0)
        return;
    pthread_mutex_lock(&t->lock);
    snprintf(t->hist_job, sizeof t->hist_job, "%s", u->snap.jobs[u->sel].job_id);
    naq_event_list_free(&t->hist);
    t->hstate = HIST_LOADING;
    pthread_mutex_unlock(&t->lock);
    u->history = 1;
    u->scroll = 0;
}

static void close_history(top_shared *t, ui_state *u)
{
    pthread_mutex_lock(&t->lock);
    t->hstate = HIST_NONE;
    naq_event_list_free(&t->hist);
    pthread_mutex_unlock(&t->lock);
    u->history = 0;
}

static int is_back(int ch)
{
    return ch == KEY_ESC || ch == KEY_BACKSPACE || ch == 127 || ch == 8;
}

/* Handles one key; 1 = quit. */
static int on_key(top_shared *t, ui_state *u, int ch)
{
    if (u->prompting) {
        if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
            snprintf(u->filter, sizeof u->filter, "%s", u->input);
            u->prompting = 0;
            u->sel = 0;
            u->pinned = 0;
            u->sel_job[0] = '\0';
            refresh_data(t, u);
        } else if (ch == KEY_ESC) {
            u->prompting = 0;
        } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
            if (u->ninput > 0)
                u->input[--u->ninput] = '\0';
        } else if (ch > 0x20 && ch < 0x7f && ch != '.' && ch != '*' && ch != '>' &&
                   u->ninput + 1 < sizeof u->input) {
            u->input[u->ninput++] = (char)ch;
            u->input[u->ninput] = '\0';
        }
        return 0;
    }
    if (ch == 'q' || ch == 'Q')
        return 1;
    if (u->history) {
        if (is_back(ch))
            close_history(t, u);
        else if (ch == 'j' || ch == KEY_DOWN)
            u->scroll++;
        else if ((ch == 'k' || ch == KEY_UP) && u->scroll > 0)
            u->scroll--;
        return 0;
    }
    switch (ch) {
    case 'p':
    case 'P':
        u->paused = !u->paused;
        if (!u->paused)
            refresh_data(t, u);
        break;
    case 'f':
    case 'F':
        u->prompting = 1;
        snprintf(u->input, sizeof u->input, "%s", u->filter);
        u->ninput = strlen(u->input);
        break;
    case 'j':
    case KEY_DOWN:
        u->pinned = 1;
        if (u->sel + 1 < u->snap.njobs)
            u->sel++;
        if (u->snap.njobs > 0)
            snprintf(u->sel_job, sizeof u->sel_job, "%s", u->snap.jobs[u->sel].job_id);
        break;
    case 'k':
    case KEY_UP:
        u->pinned = u->sel > 0; /* up from the top: follow the newest again */
        if (u->sel > 0)
            u->sel--;
        if (u->snap.njobs > 0)
            snprintf(u->sel_job, sizeof u->sel_job, "%s", u->snap.jobs[u->sel].job_id);
        break;
    case '\n':
    case '\r':
    case KEY_ENTER: open_history(t, u); break;
    default: break;
    }
    return 0;
}

static void run_screen(top_shared *t, ui_state *u, int refresh_ms)
{
    int64_t next = 0;
    while (!naq_cli_stop_requested) {
        int64_t now = naq__mono_ms();
        if (now >= next) {
            if (!u->paused)
                refresh_data(t, u);
            next = now + refresh_ms;
            draw(t, u);
        }
        int ch = getch();
        if (ch == ERR)
            continue;
        if (ch != KEY_RESIZE && on_key(t, u, ch))
            break;
        draw(t, u);
    }
}

enum { OPT_QUEUE = NAQ_CLI_OPT_FIRST_FREE, OPT_REFRESH };

typedef struct {
    const char *queue;
    long long refresh_ms;
} top_args;

static int option(naq_cli_ctx *x, int ch, const char *arg)
{
    top_args *a = x->args;
    if (ch == OPT_QUEUE)
        a->queue = arg;
    else if (ch == OPT_REFRESH &&
             !naq_cli_parse_int(x->cmd, "--refresh", arg, 50, 60000, &a->refresh_ms))
        return NAQ_EXIT_USAGE;
    return NAQ_EXIT_OK;
}

static int check(naq_cli_ctx *x)
{
    const top_args *a = x->args;
    int rc = naq_cli_no_operands(x);
    if (rc != NAQ_EXIT_OK)
        return rc;
    if (a->queue != NULL && naq_id_validate("queue name", a->queue) != NAQ_OK)
        return naq_cli_usage_error(x->cmd, "%s", naq_last_error());
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        naq_cli_error("naq top needs a terminal; for a stream of events use 'naq events stream'");
        return NAQ_EXIT_FAILURE;
    }
    return NAQ_EXIT_OK;
}

/* The screen and its two threads share x->client (t.c), which
 * naq_cli_main destroys after run. */
static int run(naq_cli_ctx *x)
{
    const top_args *a = x->args;
    const char *cmd = x->cmd;
    const char *queue = a->queue;
    int rc = NAQ_EXIT_OK;
    top_shared t;
    memset(&t, 0, sizeof t);
    t.c = x->client;
    naq_status s = naq_live_create(&t.live);
    if (s != NAQ_OK)
        return naq_cli_fail(cmd, s);
    pthread_mutex_init(&t.lock, NULL);
    snprintf(t.url, sizeof t.url, "%s", naq_client_config(t.c)->url);
    t.connected = 1;

    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (scr == NULL) {
        naq_cli_error("cannot start the terminal screen (is TERM set?)");
        naq_live_destroy(t.live);
        pthread_mutex_destroy(&t.lock);
        return NAQ_EXIT_FAILURE;
    }
    naq_cli_stop_on_signals(NULL, 0);
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    timeout(KEY_WAIT_MS);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(1, COLOR_RED, -1);
    }

    pthread_t events, poller;
    int have_events = pthread_create(&events, NULL, events_main, &t) == 0;
    int have_poller = pthread_create(&poller, NULL, poller_main, &t) == 0;
    ui_state u;
    memset(&u, 0, sizeof u);
    if (queue != NULL)
        snprintf(u.filter, sizeof u.filter, "%s", queue);
    if (have_events && have_poller)
        run_screen(&t, &u, (int)a->refresh_ms);
    else
        rc = NAQ_EXIT_FAILURE;

    endwin();
    delscreen(scr);
    t.stop = 1;
    if (have_events)
        pthread_join(events, NULL);
    if (have_poller)
        pthread_join(poller, NULL);
    if (rc != NAQ_EXIT_OK)
        naq_cli_error("cannot start the background threads of naq top");
    naq_live_snapshot_free(&u.snap);
    free(u.depths);
    free(t.depths);
    naq_event_list_free(&t.hist);
    naq_live_destroy(t.live);
    pthread_mutex_destroy(&t.lock);
    return rc;
}

int naq_cmd_top(int argc, char **argv)
{
    static const struct option opts[] = {{"queue", required_argument, NULL, OPT_QUEUE},
                                         {"refresh", required_argument, NULL, OPT_REFRESH},
                                         {NULL, 0, NULL, 0}};
    static const naq_cli_command c = {usage, NULL, NULL, opts, NAQ_CLI_CONNECT, option, check, run};
    top_args a = {NULL, REFRESH_MS};
    return naq_cli_main(&c, &a, argc, argv);
}
