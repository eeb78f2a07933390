/*
 * web_actions.c - the write side of the JSON API (POST /api/...): retry
 * and purge dead letters, pause and resume schedules. web_server.c has
 * already checked that actions are allowed, the bearer token and the
 * origin; this file only parses the JSON body and calls the library, which
 * logs each action's events as the CLI's would.
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

#define SEQS_MAX 1000

/* Reads the body as a JSON object; NULL with a 400 in r. */
static json_t *body_object(const web_req *q, web_reply *r)
{
    json_error_t err;
    json_t *o = json_loadb(q->body, q->body_len, 0, &err);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        web_error(r, 400, "invalid_argument", "the body must be a JSON object (%s)",
                  q->body_len == 0 ? "it is empty" : err.text);
        return NULL;
    }
    return o;
}

static const char *str_member(json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Fills f from the body's filter members; 0 with a 400 in r. */
static int dlq_filter(json_t *o, web_reply *r, naq_dlq_filter *f)
{
    memset(f, 0, sizeof f[0]);
    f->queue = str_member(o, "queue");
    f->error_type = str_member(o, "error_type");
    f->job_id = str_member(o, "job");
    json_t *all = json_object_get(o, "all");
    if (all != NULL && !json_is_boolean(all)) {
        web_error(r, 400, "invalid_argument", "\"all\" must be true or false");
        return 0;
    }
    f->all = json_is_true(all);
    return 1;
}

/* The "seqs" member: NULL when absent; else every item must be a
 * positive integer (0 with a 400 in r). */
static int seqs_member(json_t *o, web_reply *r, json_t **seqs)
{
    *seqs = json_object_get(o, "seqs");
    if (*seqs == NULL)
        return 1;
    size_t i;
    json_t *v;
    if (!json_is_array(*seqs) || json_array_size(*seqs) == 0 || json_array_size(*seqs) > SEQS_MAX) {
        web_error(r, 400, "invalid_argument",
                  "\"seqs\" must be a list of 1 to %d dead-letter sequence numbers", SEQS_MAX);
        return 0;
    }
    json_array_foreach(*seqs, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            web_error(r, 400, "invalid_argument",
                      "\"seqs\" must hold dead-letter sequence numbers (whole numbers > 0)");
            return 0;
        }
    }
    return 1;
}

static void add_retried(json_t *list, const naq_dlq_retried *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list,
                              json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)d[i].seq, "job_id",
                                        d[i].job_id, "new_job_id", d[i].new_job_id));
}

static void dlq_act(const web_req *q, web_reply *r, int retry)
{
    json_t *o = body_object(q, r), *seqs = NULL;
    naq_dlq_filter f;
    if (o == NULL || !dlq_filter(o, r, &f) || !seqs_member(o, r, &seqs)) {
        json_decref(o);
        return;
    }
    json_t *done = json_array(), *errors = json_array();
    size_t purged = 0;
    naq_status s = NAQ_OK;
    size_t nseq = seqs != NULL ? json_array_size(seqs) : 1;
    for (size_t i = 0; i < nseq; i++) {
        if (seqs != NULL) {
            memset(&f, 0, sizeof f);
            f.seq = (uint64_t)json_integer_value(json_array_get(seqs, i));
        }
        naq_dlq_retried *d = NULL;
        size_t n = 0, p = 0;
        s = retry ? naq_dlq_retry(q->w->c, &f, &d, &n) : naq_dlq_purge(q->w->c, &f, &p);
        add_retried(done, d, n);
        free(d);
        purged += p;
        if (s != NAQ_OK && seqs != NULL)
            json_array_append_new(errors, json_pack("{s:I, s:s}", "seq", (json_int_t)f.seq, "error",
                                                    naq_last_error()));
    }
    if (seqs == NULL && s != NAQ_OK && json_array_size(done) == 0) {
        web_fail(r, s);
        json_decref(done);
        json_decref(errors);
    } else if (retry) {
        r->json = json_pack("{s:o, s:o}", "retried", done, "errors", errors);
    } else {
        json_decref(done);
        r->json = json_pack("{s:I, s:o}", "purged", (json_int_t)purged, "errors", errors);
    }
    json_decref(o);
}

/* /api/schedules/<name>/pause or /resume */
static void schedule_act(const web_req *q, web_reply *r, const char *rest)
{
    char name[NAQ_ID_SIZE];
    const char *slash = strrchr(rest, '/');
    if (slash == NULL || (size_t)(slash - rest) >= sizeof name || slash == rest) {
        web_error(r, 404, "not_found", "no such action: POST /api/schedules/NAME/pause or /resume");
        return;
    }
    memcpy(name, rest, (size_t)(slash - rest));
    name[slash - rest] = '\0';
    int pause = strcmp(slash, "/pause") == 0;
    if (!pause && strcmp(slash, "/resume") != 0) {
        web_error(r, 404, "not_found", "no such action: POST /api/schedules/NAME/pause or /resume");
        return;
    }
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
    const char *p = q->path;
    if (strcmp(p, "/api/dlq/retry") == 0)
        dlq_act(q, r, 1);
    else if (strcmp(p, "/api/dlq/purge") == 0)
        dlq_act(q, r, 0);
    else if (strncmp(p, "/api/schedules/", 15) == 0)
        schedule_act(q, r, p + 15);
    else
        web_error(r, 404, "not_found", "no such action: %s (docs/web.md lists them)", p);
    if (r->json == NULL)
        web_error(r, 503, "unavailable", "out of memory building the answer");
}
