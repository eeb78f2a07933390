/*
 * naq/results.h - job results: what a job's final outcome left behind.
 *
 * A result is the job's outcome record (docs/protocol.md, "Outcomes"):
 * a JSON object with "job_id", "status" ("completed" | "failed" |
 * "cancelled"), "attempt", "finished_at" and "expires_at" (seconds since
 * the epoch, UTC), and when there are any a handler's "result" (any JSON),
 * an exec job's "exit_status", "signal", "stdout_tail", "stderr_tail", and
 * "error_type" / "error_message".
 *
 * How long a result is kept: the outcome stream keeps records 7 days
 * (NAQ_RESULTS_MAX_TTL_MS); a job's result_ttl_ms (default
 * NAQ_RESULTS_TTL_MS) decides when reads treat it as gone, through its
 * "expires_at".
 *
 * Thread-safety: safe on a shared client from any thread.
 */
#ifndef NAQ_RESULTS_H
#define NAQ_RESULTS_H

#include <stdint.h>

#include "naq/client.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default result_ttl_ms, and the longest one. */
#define NAQ_RESULTS_TTL_MS (24LL * 3600 * 1000)
#define NAQ_RESULTS_MAX_TTL_MS (7LL * 24 * 3600 * 1000)

/* The result record of a job, as compact JSON: *result_json is heap,
 * freed with free(). With wait_ms > 0 and no record yet, waits up to
 * wait_ms for one to be stored (it follows the job's outcome subject, no
 * polling).
 * NAQ_ERR_NOT_FOUND when there is none (the job has not finished, its
 * record expired, or the id is wrong), NAQ_ERR_TIMEOUT when none came
 * within wait_ms, NAQ_ERR_INVALID_ARG for a malformed job id. */
naq_status naq_job_result(naq_client *c, const char *job_id, int64_t wait_ms, char **result_json);

#ifdef __cplusplus
}
#endif
#endif
