/*
 * job_ctx.c - the job context a handler gets: how it fails a job, sets a
 * result, and learns that it should stop (timeout, `naq job cancel`, or
 * the worker handing the job back). The context belongs to the handler's
 * thread; only the flags are written by other threads (the keeper, the
 * cancel watch), through atomics.
 */
#include "worker.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void naq__flag_set(volatile int *f)
{
    __atomic_store_n(f, 1, __ATOMIC_RELEASE);
}

int naq__flag_get(const volatile int *f)
{
    return __atomic_load_n(f, __ATOMIC_ACQUIRE);
}

void naq_job_ctx_fail(naq_job_ctx *ctx, const char *error_type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap); /* first: the arguments may be the old reason */
    va_end(ap);
    free(ctx->error_type);
    free(ctx->error_message);
    ctx->error_type = strdup(error_type && error_type[0] ? error_type : "Error");
    ctx->error_message = strdup(msg);
    ctx->failed = 1;
}

naq_status naq__job_ctx_set_detail(naq_job_ctx *ctx, const char *key, json_t *value)
{
    if (value == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory setting a job detail");
    if (ctx->details == NULL && (ctx->details = json_object()) == NULL) {
        json_decref(value);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory setting a job detail");
    }
    if (json_object_set_new(ctx->details, key, value) != 0)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory setting a job detail");
    return NAQ_OK;
}

naq_status naq_job_ctx_set_result(naq_job_ctx *ctx, const char *result_json)
{
    json_error_t e;
    json_t *v = result_json ? json_loads(result_json, JSON_DECODE_ANY, &e) : NULL;
    if (v == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "job result is not valid JSON: %s",
                         result_json ? e.text : "NULL");
    return naq__job_ctx_set_detail(ctx, "result", v);
}

int naq_job_ctx_cancelled(const naq_job_ctx *ctx)
{
    return naq__flag_get(&ctx->cancel);
}

const volatile int *naq__job_ctx_cancel_flag(naq_job_ctx *ctx)
{
    return &ctx->cancel;
}

int naq__job_ctx_timed_out(const naq_job_ctx *ctx)
{
    return naq__flag_get(&ctx->timed_out);
}

void naq__job_ctx_set_usage(naq_job_ctx *ctx, double cpu_time_ms, double memory_mb)
{
    ctx->cpu_time_ms = cpu_time_ms;
    ctx->memory_mb = memory_mb;
}

void naq__job_ctx_init(naq_job_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->cpu_time_ms = NAQ_UNSET;
    ctx->memory_mb = NAQ_UNSET;
}

void naq__job_ctx_clear(naq_job_ctx *ctx)
{
    free(ctx->error_type);
    free(ctx->error_message);
    json_decref(ctx->details);
    ctx->error_type = ctx->error_message = NULL;
    ctx->details = NULL;
}
