/*
 * exec_run.h - run one external command to completion, the process runner
 * behind the built-in `exec` job handler. Private to libnaq.
 *
 * The command runs in its own process group with stdin on /dev/null; the
 * last bytes of its stdout and stderr are kept, its exit status and
 * resource usage are reported, and a timeout or a cancel flag stops the
 * whole group (SIGTERM, then SIGKILL after NAQ__EXEC_KILL_GRACE_MS).
 *
 * Thread-safety: naq__exec_run may be called from several threads at once.
 * It installs no signal handler and waits only for its own child. The
 * process must not ignore SIGCHLD (the kernel would then reap children
 * itself) nor reap arbitrary children with wait(-1)/waitpid(-1); either
 * makes the call fail with NAQ_ERR_IO. As everywhere in POSIX, do not call
 * setenv()/unsetenv() concurrently: the child's environment is copied from
 * `environ`.
 */
#ifndef NAQ_EXEC_RUN_H
#define NAQ_EXEC_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "naq/status.h"

/* Time between SIGTERM and SIGKILL when a command is stopped. Long enough
 * for a well-behaved command to flush and remove temporary files, short
 * enough that a cancelled job frees its worker slot promptly. */
#define NAQ__EXEC_KILL_GRACE_MS 2000

/* How often the cancel flag and the timeout are checked while the command
 * runs (no SIGCHLD handler wakes us, see below). 50 ms makes cancellation
 * feel immediate at a negligible cost of ~20 wake-ups per second. */
#define NAQ__EXEC_TICK_MS 50

/* How long output is still read after the command exited while background
 * processes it started keep its stdout/stderr open. Without a limit a
 * command like `daemon &` would hold the job forever. */
#define NAQ__EXEC_DRAIN_MS 100

/* Tail kept per stream when naq__exec_opts.tail_bytes is 0. */
#define NAQ__EXEC_DEFAULT_TAIL 4096

typedef struct {
    /* The command: argv[0] is looked up in PATH unless it contains a '/'
     * (the PATH of the child's environment, i.e. `env` may override it;
     * "/bin:/usr/bin" if unset). A file that is executable but not in a
     * format the kernel runs (no "#!" line) is run with /bin/sh, as
     * execvp() does. NULL-terminated; borrowed for the call. */
    char *const *argv;
    /* Extra NAME=VALUE entries added to the inherited environment; an
     * entry replaces an inherited variable of the same name, and a later
     * entry replaces an earlier one. NULL-terminated, may be NULL. */
    const char *const *env;
    /* Working directory of the command; NULL keeps the caller's. */
    const char *cwd;
    /* Stop the command after this many milliseconds; 0 = no limit. */
    int64_t timeout_ms;
    /* When *cancel becomes non-zero the command is stopped; checked every
     * NAQ__EXEC_TICK_MS. May be NULL. */
    const volatile int *cancel;
    /* Bytes kept from the END of stdout and of stderr each; 0 means
     * NAQ__EXEC_DEFAULT_TAIL. Memory use is bounded by this, whatever the
     * command writes. */
    size_t tail_bytes;
} naq__exec_opts;

typedef struct {
    int exited;            /* 1 if the command exited normally */
    int exit_status;       /* its exit code when exited */
    int term_signal;       /* signal number when killed by a signal, else 0 */
    int timed_out;         /* 1 if stopped because timeout_ms passed */
    int cancelled;         /* 1 if stopped because *cancel became non-zero */
    int64_t duration_ms;   /* wall time from start until the command ended */
    int64_t cpu_time_ms;   /* user+sys CPU of the command and the
                            * descendants it waited for */
    double peak_memory_mb; /* largest resident set (ru_maxrss) in MiB */
    /* The last min(total, tail_bytes) bytes of each stream, NUL-terminated.
     * Raw bytes: may contain NULs (then the length is min(total,
     * tail_bytes), not strlen) and may start inside a UTF-8 sequence.
     * Heap, owned by the result: free with naq__exec_result_clear(). */
    char *stdout_tail;
    char *stderr_tail;
    size_t stdout_total; /* total bytes the command wrote to stdout */
    size_t stderr_total;
} naq__exec_result;

/*
 * Runs opts->argv and waits for it to end, filling *out.
 *
 * Returns NAQ_OK whenever the command was started, however it ended: the
 * caller reads exited / exit_status / term_signal / timed_out / cancelled.
 * Note that a command stopped by timeout or cancel may still exit
 * normally (it may handle SIGTERM), so check timed_out and cancelled
 * first. The call returns once the command has exited and its output is
 * drained; background processes it leaves behind are not killed unless
 * it was stopped, and their output is read for at most
 * NAQ__EXEC_DRAIN_MS after the command exits.
 *
 * Errors (*out then holds nothing to free; clearing it is still safe):
 *   NAQ_ERR_INVALID_ARG  opts/out/argv NULL, argv[0] empty, negative
 *                        timeout, an env entry that is not NAME=VALUE; or
 *                        the command can never run: "cannot run 'xyz': No
 *                        such file or directory" (also Permission denied,
 *                        ...) or "cannot run 'xyz': cannot change to
 *                        directory '/d': ...". The job cannot succeed on
 *                        retry, so callers record it as failed (ExecError).
 *   NAQ_ERR_NO_MEMORY    allocation failed before the start.
 *   NAQ_ERR_IO           no pipe/fork/fd available, or the child was reaped
 *                        by someone else (see the thread-safety note).
 * The message is in naq_last_error().
 */
naq_status naq__exec_run(const naq__exec_opts *opts, naq__exec_result *out);

/* Frees the tails and zeroes *r. Accepts NULL and an already-cleared
 * result. */
void naq__exec_result_clear(naq__exec_result *r);

#endif
