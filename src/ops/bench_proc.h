/*
 * bench_proc.h - the process harness of `naq bench jobs`: each producer and
 * worker of a run is a child process, and the parent only orchestrates.
 *
 * Why processes, and why the parent never connects: the figures must
 * include what separate producer and worker processes cost (CPU from
 * wait4's rusage, no shared connection), and fork() is only safe in a
 * process without nats.c threads. The parent of `naq bench jobs` therefore
 * never opens a NATS connection: every run forks fresh children, which
 * connect, do their part and exit, so any number of runs can follow one
 * another in one process.
 *
 * Channels. Each child has two pipes: frames from child to parent (a type,
 * a length, the payload) and one-byte commands from parent to child. A
 * child dies with its parent (PR_SET_PDEATHSIG), and a child that fails
 * sends BENCH_MSG_ERROR with its naq_last_error() text before it exits
 * with status 1, so the parent can say what went wrong. Private to
 * src/bench*.c.
 */
#ifndef NAQ_BENCH_PROC_H
#define NAQ_BENCH_PROC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "naq/status.h"

/* Frames, child -> parent. */
enum {
    BENCH_MSG_READY = 1, /* connected and prepared; waiting for BENCH_CMD_GO */
    BENCH_MSG_PROGRESS,  /* int64: jobs done so far (prefill: jobs stored) */
    BENCH_MSG_PRODUCED,  /* naq__bench_produced */
    BENCH_MSG_REPORT,    /* naq__bench_report (a worker's totals) */
    BENCH_MSG_SAMPLES,   /* uint32[]: enqueue -> handler entry, microseconds */
    BENCH_MSG_EVENTS,    /* int64: messages the event stream gained during the run */
    BENCH_MSG_ERROR,     /* text: why the child fails */
};

/* Commands, parent -> child (one byte). */
#define BENCH_CMD_GO 'G'   /* start producing / working */
#define BENCH_CMD_STOP 'S' /* workers: every job is done, finish and report */
#define BENCH_CMD_END 'E'  /* producer: the workers are gone, measure and exit */

typedef struct {
    int64_t first_ns; /* CLOCK_MONOTONIC just before the first enqueue call */
    int64_t last_ns;  /* after the last enqueue was acknowledged */
} naq__bench_produced;

typedef struct {
    int64_t handled;        /* handler returns */
    int64_t last_return_ns; /* CLOCK_MONOTONIC of the last handler return */
} naq__bench_report;

/* The child's end of its channels. */
typedef struct {
    int out; /* frames to the parent */
    int in;  /* commands from the parent */
} naq__bench_chan;

/* What a child runs: returns its exit status (0 = ok; on failure it has
 * sent BENCH_MSG_ERROR). */
typedef int (*naq__bench_child_fn)(naq__bench_chan *ch, void *arg);

/* The parent's view of one child. */
typedef struct {
    char name[32];
    pid_t pid;        /* 0 once reaped */
    int from;         /* frames from the child; -1 once at EOF */
    int to;           /* commands to the child; -1 once closed */
    int exit_status;  /* wait status, valid once reaped */
    struct rusage ru; /* valid once reaped */
    char error[512];  /* the child's BENCH_MSG_ERROR, "" if none */
} naq__bench_child;

/* CLOCK_MONOTONIC in nanoseconds: one clock for every process of a run. */
int64_t naq__bench_mono_ns(void);
/* Sleeps until naq__bench_mono_ns() reaches t: the pace of a rated run. */
void naq__bench_sleep_until_ns(int64_t t);

/* Forks a child that runs fn(ch, arg) and _exit()s with its result. The
 * caller must have no threads and no NATS connection (see above). */
naq_status naq__bench_spawn(naq__bench_child *c, const char *name, naq__bench_child_fn fn,
                            void *arg);
/* Sends a command; NAQ_ERR_CLOSED when the child is gone. */
naq_status naq__bench_command(naq__bench_child *c, char cmd);
/* Waits up to timeout_ms for one frame from any of the n children.
 * *which = its index, *type its type, *data a heap payload (free() it;
 * NULL when empty) of *len bytes. NAQ_ERR_TIMEOUT when none came; a child
 * whose channel closed is reaped here and reported as NAQ_ERR_CLOSED with
 * *which set (its frames before that were all delivered). */
naq_status naq__bench_recv(naq__bench_child *cs, int n, int64_t timeout_ms, int *which, int *type,
                           void **data, size_t *len);
/* Reaps a child whose channel is closed (blocking), filling exit_status
 * and ru. NAQ_OK when it exited with status 0; otherwise records an error
 * naming the child (with its own message when it sent one). */
naq_status naq__bench_reap(naq__bench_child *c);
/* Kills (SIGKILL) and reaps every child still alive; closes all pipes. */
void naq__bench_kill_all(naq__bench_child *cs, int n);

/* The payload of job i, the same on every side: {"t":<enqueue ns>,"i":<i>,
 * "pad":"xx..."} padded to `bytes` (>= 64) into buf (cap > bytes). Returns
 * its length. */
int naq__bench_job_payload(char *buf, size_t cap, int bytes, int64_t t_ns, int64_t i);
/* A JSON object of about `bytes` bytes: `fields` (already JSON, without
 * braces), then a "pad" string. Returns its length. */
int naq__bench_padded_json(char *buf, size_t cap, int bytes, const char *fields);
/* The "t" of such a payload found anywhere in text, or -1 when absent. */
int64_t naq__bench_payload_time(const char *text);

/* Child side. Sends one frame; -1 when the parent is gone. */
int naq__bench_send(naq__bench_chan *ch, int type, const void *data, size_t len);
/* Sends naq_last_error() (prefixed with what) as BENCH_MSG_ERROR; returns 1,
 * the child's exit status. */
int naq__bench_fail(naq__bench_chan *ch, const char *what);
/* Waits up to timeout_ms (< 0: forever) for a command: the command byte,
 * 0 on timeout, -1 when the parent closed the channel or is gone. */
int naq__bench_wait(naq__bench_chan *ch, int64_t timeout_ms);

#endif
