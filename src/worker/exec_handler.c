/*
 * exec_handler.c - the built-in "exec" handler: run the command a job
 * names (exec_run.c does the process work) and turn how it ended into the
 * job's outcome.
 *
 * Args: {"argv": ["cmd", "arg", ...], "env": {"NAME": "value"}, "cwd": "/d"}
 * (env and cwd optional) or a bare argv array. Outcome: exit 0 completes;
 * otherwise the job fails with error_type ExitStatus, Signal, Timeout,
 * Cancelled or ExecError (cannot start), and bad args with InvalidArgs.
 * Either way the event's details carry exit_status / signal and the tails
 * of stdout and stderr, and its cpu_time_ms / memory_mb are the command's.
 */
#include "exec_run.h"
#include "worker.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How much of the end of stderr goes into a failure message (the whole
 * tail is in details). */
#define MESSAGE_STDERR_BYTES 200

typedef struct {
    char **argv; /* NULL-terminated, strings borrowed from the JSON */
    char **env;  /* NULL-terminated "NAME=VALUE", heap */
    int nenv;
    const char *cwd;
} command;

static void command_free(command *cmd)
{
    for (int i = 0; i < cmd->nenv; i++)
        free(cmd->env[i]);
    free(cmd->env);
    free(cmd->argv);
}

/* Fills cmd from the args JSON (which must outlive cmd). On failure the
 * job is failed with InvalidArgs and a message saying what to send. Jobs
 * enqueued through naq are checked already; this meets foreign ones. */
static naq_status parse_args(naq_job_ctx *ctx, json_t *args, command *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    if (naq__exec_args_check(args) != NAQ_OK) {
        naq_job_ctx_fail(ctx, "InvalidArgs", "%s", naq_last_error());
        return NAQ_ERR_INVALID_ARG;
    }
    json_t *argv = json_is_array(args) ? args : json_object_get(args, "argv");
    json_t *env = json_is_object(args) ? json_object_get(args, "env") : NULL;
    size_t n = json_array_size(argv);
    cmd->argv = calloc(n + 1, sizeof *cmd->argv);
    size_t nenv = json_is_object(env) ? json_object_size(env) : 0;
    cmd->env = calloc(nenv + 1, sizeof *cmd->env);
    if (cmd->argv == NULL || cmd->env == NULL) {
        naq_job_ctx_fail(ctx, "ExecError", "out of memory preparing the command");
        return NAQ_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < n; i++)
        cmd->argv[i] = (char *)json_string_value(json_array_get(argv, i));
    const char *key;
    json_t *val;
    json_object_foreach(env, key, val)
    {
        const char *v = json_string_value(val);
        size_t len = strlen(key) + strlen(v) + 2;
        if ((cmd->env[cmd->nenv] = malloc(len)) == NULL) {
            naq_job_ctx_fail(ctx, "ExecError", "out of memory preparing the command");
            return NAQ_ERR_NO_MEMORY;
        }
        snprintf(cmd->env[cmd->nenv++], len, "%s=%s", key, v);
    }
    cmd->cwd = json_string_value(json_is_object(args) ? json_object_get(args, "cwd") : NULL);
    return NAQ_OK;
}

/* A JSON string of raw output bytes: invalid UTF-8 becomes U+FFFD, and a
 * sequence cut by the start of the tail is dropped. */
static json_t *text_json(const char *data, size_t len)
{
    char *buf = malloc(len * 3 + 1);
    if (buf == NULL)
        return NULL;
    size_t o = 0, i = 0;
    while (i < len && ((unsigned char)data[i] & 0xc0) == 0x80)
        i++;
    while (i < len) {
        unsigned char c = (unsigned char)data[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        int ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++)
            ok = ((unsigned char)data[i + k] & 0xc0) == 0x80;
        /* Reject overlong forms and surrogates, which jansson refuses. */
        if (ok && n == 2 && c < 0xc2)
            ok = 0;
        if (ok && n == 3) {
            unsigned char c1 = (unsigned char)data[i + 1];
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
        }
        if (ok && n == 4) {
            unsigned char c1 = (unsigned char)data[i + 1];
            ok = c <= 0xf4 && !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (ok) {
            memcpy(buf + o, data + i, n);
            o += n;
            i += n;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    json_t *s = json_stringn(buf, o);
    free(buf);
    return s;
}

static size_t tail_len(const char *tail, size_t total, size_t cap)
{
    if (tail == NULL)
        return 0;
    return total < cap ? total : cap;
}

/* ": <last line(s) of stderr>" for a failure message, or "". */
static void stderr_hint(const naq__exec_result *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t len = tail_len(r->stderr_tail, r->stderr_total, NAQ__EXEC_DEFAULT_TAIL);
    while (len > 0 && (r->stderr_tail[len - 1] == '\n' || r->stderr_tail[len - 1] == '\r' ||
                       r->stderr_tail[len - 1] == ' '))
        len--;
    if (len == 0)
        return;
    size_t start = len > MESSAGE_STDERR_BYTES ? len - MESSAGE_STDERR_BYTES : 0;
    json_t *t = text_json(r->stderr_tail + start, len - start);
    const char *v = json_string_value(t);
    if (v != NULL)
        snprintf(buf, cap, ": %s%s", start > 0 ? "..." : "", v);
    json_decref(t);
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGPIPE: return "SIGPIPE";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    default: return "signal";
    }
}

static void set_details(naq_job_ctx *ctx, const naq__exec_result *r)
{
    if (r->exited)
        naq__job_ctx_set_detail(ctx, "exit_status", json_integer(r->exit_status));
    if (r->term_signal)
        naq__job_ctx_set_detail(ctx, "signal", json_integer(r->term_signal));
    naq__job_ctx_set_detail(
        ctx, "stdout_tail",
        text_json(r->stdout_tail ? r->stdout_tail : "",
                  tail_len(r->stdout_tail, r->stdout_total, NAQ__EXEC_DEFAULT_TAIL)));
    naq__job_ctx_set_detail(
        ctx, "stderr_tail",
        text_json(r->stderr_tail ? r->stderr_tail : "",
                  tail_len(r->stderr_tail, r->stderr_total, NAQ__EXEC_DEFAULT_TAIL)));
    naq__job_ctx_set_usage(ctx, (double)r->cpu_time_ms, r->peak_memory_mb);
}

naq_status naq__exec_handler(naq_job_ctx *ctx, const naq_job *job, void *user)
{
    (void)user;
    json_error_t e;
    json_t *args = json_loads(job->args_json ? job->args_json : "[]", JSON_DECODE_ANY, &e);
    command cmd;
    memset(&cmd, 0, sizeof cmd);
    naq__exec_result r;
    memset(&r, 0, sizeof r);
    naq_status s;
    if (args == NULL) {
        naq_job_ctx_fail(ctx, "InvalidArgs", "exec args are not JSON: %s", e.text);
        s = NAQ_ERR_INVALID_ARG;
        goto out;
    }
    if ((s = parse_args(ctx, args, &cmd)) != NAQ_OK)
        goto out;

    naq__exec_opts o;
    memset(&o, 0, sizeof o);
    o.argv = cmd.argv;
    o.env = (const char *const *)cmd.env;
    o.cwd = cmd.cwd;
    o.timeout_ms = job->timeout_ms;
    o.cancel = naq__job_ctx_cancel_flag(ctx);
    o.tail_bytes = NAQ__EXEC_DEFAULT_TAIL;
    if ((s = naq__exec_run(&o, &r)) != NAQ_OK) {
        naq_job_ctx_fail(ctx, "ExecError", "%s", naq_last_error());
        goto out;
    }
    set_details(ctx, &r);
    char hint[MESSAGE_STDERR_BYTES * 3 + 16];
    stderr_hint(&r, hint, sizeof hint);
    s = NAQ_ERR_HANDLER;
    /* Timeout and cancel first: a stopped command may still exit normally. */
    if (r.timed_out || (r.cancelled && naq__job_ctx_timed_out(ctx)))
        naq_job_ctx_fail(ctx, "Timeout", "command '%s' was stopped after its timeout of %lld ms%s",
                         cmd.argv[0], (long long)job->timeout_ms, hint);
    else if (r.cancelled)
        naq_job_ctx_fail(ctx, "Cancelled",
                         "command '%s' was stopped because the job was "
                         "cancelled%s",
                         cmd.argv[0], hint);
    else if (r.term_signal)
        naq_job_ctx_fail(ctx, "Signal", "command '%s' was killed by signal %d (%s)%s", cmd.argv[0],
                         r.term_signal, signal_name(r.term_signal), hint);
    else if (!r.exited || r.exit_status != 0)
        naq_job_ctx_fail(ctx, "ExitStatus", "command exited with status %d%s", r.exit_status, hint);
    else
        s = NAQ_OK;
out:
    naq__exec_result_clear(&r);
    command_free(&cmd);
    json_decref(args);
    return s;
}
