/*
 * web_actions.c - the write side of the JSON API (POST /api/...): retry
 * and purge dead letters, pause and resume schedules. web_server.c has
 * already checked that actions are allowed, the bearer token and the
 * origin, and web_parse.c parses the route and the body; this file calls
 * the library, which logs each action's events as the CLI's would.
 *
 * A dead-letter action names entries either by sequence ({"seqs": [..]},
 * what the page sends for the rows a person ticked) or by filter
 * ({"queue", "error_type", "job", "all"}), with the library's rule that an
 * empty filter needs "all": true.
 */
#include "web_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_retried(json_t *list, const naq_dlq_retried *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list,
                              json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)d[i].seq, "job_id",
                                        d[i].job_id, "new_job_id", d[i].new_job_id));
}

static void dlq_act(const web_req *q, web_reply *r, int retry)
{
    web_dlq_body b;
    naq_status s = web_dlq_body_parse(q->body, q->body_len, &b);
    if (s != NAQ_OK) {
        web_fail(r, s);
        web_dlq_body_clear(&b);
        return;
    }
    json_t *done = json_array(), *errors = json_array();
    size_t purged = 0;
    size_t nseq = b.seqs != NULL ? b.nseqs : 1;
    for (size_t i = 0; i < nseq; i++) {
        naq_dlq_filter f = b.filter;
        if (b.seqs != NULL) {
            memset(&f, 0, sizeof f);
            f.seq = b.seqs[i];
        }
        naq_dlq_retried *d = NULL;
        size_t n = 0, p = 0;
        s = retry ? naq_dlq_retry(q->w->c, &f, &d, &n) : naq_dlq_purge(q->w->c, &f, &p);
        add_retried(done, d, n);
        free(d);
        purged += p;
        if (s != NAQ_OK && b.seqs != NULL)
            json_array_append_new(errors, json_pack("{s:I, s:s}", "seq", (json_int_t)f.seq, "error",
                                                    naq_last_error()));
    }
    if (b.seqs == NULL && s != NAQ_OK && json_array_size(done) == 0) {
        web_fail(r, s);
        json_decref(done);
        json_decref(errors);
    } else if (retry) {
        r->json = json_pack("{s:o, s:o}", "retried", done, "errors", errors);
    } else {
        json_decref(done);
        r->json = json_pack("{s:I, s:o}", "purged", (json_int_t)purged, "errors", errors);
    }
    web_dlq_body_clear(&b);
}

/* /api/schedules/<name>/pause or /resume */
static void schedule_act(const web_req *q, web_reply *r, int pause)
{
    const char *name = q->route.name;
    naq_status s = naq_schedule_name_validate(name);
    if (s == NAQ_OK)
        s = pause ? naq_schedule_pause(q->w->c, name) : naq_schedule_resume(q->w->c, name);
    naq_schedule sc;
    naq_schedule_init(&sc);
    if (s == NAQ_OK)
        s = naq_schedule_get(q->w->c, name, &sc);
    if (s != NAQ_OK)
        web_fail(r, s);
    else
        r->json = json_pack("{s:s, s:b, s:f}", "name", sc.name, "paused", sc.paused, "next_run",
                            (double)sc.next_run_ms / 1000.0);
    naq_schedule_clear(&sc);
}

void web_action(const web_req *q, web_reply *r)
{
    switch (q->route.kind) {
    case WEB_ROUTE_DLQ_RETRY: dlq_act(q, r, 1); break;
    case WEB_ROUTE_DLQ_PURGE: dlq_act(q, r, 0); break;
    case WEB_ROUTE_SCHEDULE_PAUSE: schedule_act(q, r, 1); break;
    case WEB_ROUTE_SCHEDULE_RESUME: schedule_act(q, r, 0); break;
    default:
        web_error(r, 404, "not_found",
                  "no such action: %s (docs/web.md lists them: POST /api/dlq/retry, "
                  "/api/dlq/purge, /api/schedules/NAME/pause or /resume)",
                  q->path);
        break;
    }
    if (r->json == NULL)
        web_error(r, 503, "unavailable", "out of memory building the answer");
}
