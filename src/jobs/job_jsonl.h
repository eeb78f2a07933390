/*
 * job_jsonl.h - one line of a JSONL job batch (`naq enqueue --batch`)
 * decoded into job options (job_jsonl.c). A line holds the fields of the
 * job JSON (docs/protocol.md, "Job JSON") plus the batch's own shorthands
 * ("argv", "retries", "id", a retry policy as text, a priority by name);
 * fields a line leaves out keep the batch's defaults.
 */
#ifndef NAQ_JOB_JSONL_H
#define NAQ_JOB_JSONL_H

#include "internal.h"

#include <jansson.h>

/* A decoded line: opts borrows its strings from the rest, which the job
 * owns; keep it until opts is no longer used. */
typedef struct {
    naq_job_opts opts;
    json_t *line;      /* the parsed line; the strings of opts point into it */
    char *args;        /* heap: opts.args_json when the line sets it */
    char *tags;        /* heap: opts.tags_json when the line sets it */
    const char **deps; /* heap, NULL-terminated: opts.depends_on; strings in line */
} naq__jsonl_job;

/* Decodes the line text[0..len) (without its newline) over a copy of
 * defaults, and validates the result (naq_job_opts_validate). On failure
 * NAQ_ERR_INVALID_ARG (NAQ_ERR_NO_MEMORY when out of memory) with
 * naq_last_error() "line <lineno>: <what is wrong>", naming the field.
 * Either way j holds what it took: free it with naq__jsonl_job_clear. */
naq_status naq__jsonl_job_decode(const char *text, size_t len, int lineno,
                                 const naq_job_opts *defaults, naq__jsonl_job *j);
/* Frees what j holds and zeroes it. Accepts a zeroed j. */
void naq__jsonl_job_clear(naq__jsonl_job *j);

#endif
