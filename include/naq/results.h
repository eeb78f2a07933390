/*
 * naq/results.h - job results: what a job's final outcome left behind,
 * kept in the KV bucket "naq_results" (key = job id) for a while.
 *
 * A worker stores one record per final outcome (completed, failed for
 * good, cancelled, expired): a JSON object with "job_id", "status"
 * ("completed" | "failed" | "cancelled"), "attempt", "finished_at" and
 * "expires_at" (seconds since the epoch, UTC), and when there are any a
 * handler's "result" (any JSON), an exec job's "exit_status", "signal",
 * "stdout_tail", "stderr_tail", and "error_type" / "error_message".
 * docs/protocol.md, "Results", is the specification.
 *
 * How long a result is kept: the bucket has one TTL for every key (NATS
 * 2.9 has no per-message TTL), NAQ_RESULTS_TTL_MS when naq creates it; a
 * bucket made beforehand (`nats kv add naq_results --ttl 72h`) keeps its
 * own. A job's result_ttl_ms can only shorten that: its record carries
 * "expires_at" and reads treat an expired record as absent.
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

#define NAQ_RESULTS_BUCKET "naq_results"
/* TTL of the bucket when naq creates it, and the default result_ttl_ms. */
#define NAQ_RESULTS_TTL_MS (24LL * 3600 * 1000)

/* The result record of a job, as compact JSON: *result_json is heap,
 * freed with free(). With wait_ms > 0 and no record yet, waits up to
 * wait_ms for one to be stored (a KV watch on the key, no polling).
 * NAQ_ERR_NOT_FOUND when there is none (the job has not finished, its
 * record expired, or the id is wrong), NAQ_ERR_TIMEOUT when none came
 * within wait_ms, NAQ_ERR_INVALID_ARG for a malformed job id. */
naq_status naq_job_result(naq_client *c, const char *job_id, int64_t wait_ms, char **result_json);

#ifdef __cplusplus
}
#endif
#endif
