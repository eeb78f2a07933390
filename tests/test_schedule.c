/*
 * test_schedule.c - the schedule model (codec, due-time arithmetic, time
 * parsing), the schedules bucket through the library (add, get, list,
 * pause, resume, modify, remove) and the `naq schedule` / `naq scheduler`
 * commands, called in-process (their sources are compiled into this test,
 * so it does not depend on cli/main.c listing them).
 */
#include "schedule_support.h"

/* The CLI commands under test, with the helpers they use. */
#include "../cli/cmd_schedule.c"
#include "../cli/command.c"
#include "../cli/common.c"
#include "../cli/print.c"

#include <fcntl.h>
#include <unistd.h>

/* The CLI's clients must not spool into the user's home. Runs before
 * main, before any thread exists (setenv is not thread-safe). */
__attribute__((constructor)) static void no_spool(void)
{
    setenv("NAQ_SPOOL_DIR", "none", 1);
}

/* ---------------------------------------------------------------- model */

static naq_schedule cron_schedule(void)
{
    naq_schedule s;
    naq_schedule_init(&s);
    snprintf(s.name, sizeof s.name, "nightly-backup");
    s.kind = NAQ_SCHEDULE_CRON;
    snprintf(s.cron, sizeof s.cron, "0 3 * * MON-FRI");
    snprintf(s.tz, sizeof s.tz, "Europe/Paris");
    snprintf(s.queue, sizeof s.queue, "ops");
    snprintf(s.function, sizeof s.function, "exec");
    s.args_json = strdup("{\"argv\":[\"./backup.sh\",\"--full\"]}");
    s.repeat = 7;
    s.max_retries = 3;
    s.timeout_ms = 60000;
    s.priority = NAQ_PRIORITY_HIGH;
    s.paused = 1;
    s.misfire = NAQ_MISFIRE_SKIP;
    s.next_run_ms = 1763953200000;
    s.last_run_ms = 1763866800123;
    s.created_at_ms = 1763800000456;
    return s;
}

static void assert_same_schedule(const naq_schedule *a, const naq_schedule *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->kind, b->kind);
    assert_string_equal(a->cron, b->cron);
    assert_string_equal(a->tz, b->tz);
    assert_int_equal(a->every_ms, b->every_ms);
    assert_int_equal(a->at_ms, b->at_ms);
    assert_int_equal(a->repeat, b->repeat);
    assert_string_equal(a->queue, b->queue);
    assert_string_equal(a->function, b->function);
    assert_string_equal(a->args_json ? a->args_json : "[]", b->args_json ? b->args_json : "[]");
    assert_int_equal(a->max_retries, b->max_retries);
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->paused, b->paused);
    assert_int_equal(a->misfire, b->misfire);
    assert_int_equal(a->next_run_ms, b->next_run_ms);
    assert_int_equal(a->last_run_ms, b->last_run_ms);
    assert_int_equal(a->created_at_ms, b->created_at_ms);
}

static void round_trip(const naq_schedule *s)
{
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(naq_schedule_encode(s, &json, &len), NAQ_OK);
    naq_schedule back;
    naq_status st = naq_schedule_decode(json, len, &back);
    if (st != NAQ_OK)
        fail_msg("decode %s: %s", json, naq_last_error());
    assert_same_schedule(s, &back);
    naq_schedule_clear(&back);
    free(json);
}

static void codec_round_trip_keeps_every_field_of_each_kind(void **state)
{
    (void)state;
    naq_schedule s = cron_schedule();
    round_trip(&s);
    s.kind = NAQ_SCHEDULE_EVERY;
    s.cron[0] = s.tz[0] = '\0';
    s.every_ms = 1500;
    round_trip(&s);
    s.kind = NAQ_SCHEDULE_AT;
    s.every_ms = 0;
    s.at_ms = 1893456000789;
    s.next_run_ms = 0; /* finished */
    round_trip(&s);
    naq_schedule_clear(&s);
}

static void decode_ignores_unknown_fields_and_fills_defaults(void **state)
{
    (void)state;
    const char *json = "{\"version\":1,\"name\":\"a\",\"kind\":\"every\",\"every_ms\":1000,"
                       "\"queue\":\"q\",\"function\":\"f\",\"created_at\":1.5,"
                       "\"from_the_future\":{\"x\":1}}";
    naq_schedule s;
    assert_int_equal(naq_schedule_decode(json, strlen(json), &s), NAQ_OK);
    assert_int_equal(s.repeat, -1);
    assert_int_equal(s.priority, NAQ_PRIORITY_NORMAL);
    assert_int_equal(s.misfire, NAQ_MISFIRE_RUN_ONCE);
    assert_int_equal(s.paused, 0);
    assert_int_equal(s.created_at_ms, 1500);
    assert_null(s.args_json);
    naq_schedule_clear(&s);
}

static void decode_refuses_a_newer_version_and_an_unknown_kind(void **state)
{
    (void)state;
    const char *newer = "{\"version\":2,\"name\":\"a\",\"kind\":\"every\",\"queue\":\"q\","
                        "\"function\":\"f\"}";
    const char *odd = "{\"version\":1,\"name\":\"a\",\"kind\":\"sometimes\",\"queue\":\"q\","
                      "\"function\":\"f\"}";
    naq_schedule s;
    assert_int_equal(naq_schedule_decode(newer, strlen(newer), &s), NAQ_ERR_CODEC);
    assert_non_null(strstr(naq_last_error(), "upgrade"));
    naq_schedule_clear(&s);
    assert_int_equal(naq_schedule_decode(odd, strlen(odd), &s), NAQ_ERR_CODEC);
    assert_non_null(strstr(naq_last_error(), "sometimes"));
    naq_schedule_clear(&s);
}

static void validate_refuses_bad_names_intervals_zones_and_tz_outside_cron(void **state)
{
    (void)state;
    naq_schedule s = cron_schedule();
    assert_int_equal(naq_schedule_validate(&s), NAQ_OK);
    snprintf(s.name, sizeof s.name, "has.dot");
    assert_int_equal(naq_schedule_validate(&s), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "'.'"));
    snprintf(s.name, sizeof s.name, "ok");
    snprintf(s.tz, sizeof s.tz, "Mars/Olympus_Mons");
    assert_int_equal(naq_schedule_validate(&s), NAQ_ERR_INVALID_ARG);
    s.tz[0] = '\0';
    snprintf(s.cron, sizeof s.cron, "0 0 30 2 *");
    assert_int_equal(naq_schedule_validate(&s), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "never fires"));
    s.kind = NAQ_SCHEDULE_EVERY;
    s.every_ms = 50;
    assert_int_equal(naq_schedule_validate(&s), NAQ_ERR_INVALID_ARG);
    s.every_ms = 1000;
    snprintf(s.tz, sizeof s.tz, "UTC");
    assert_int_equal(naq_schedule_validate(&s), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "only applies to cron"));
    naq_schedule_clear(&s);
    char long_name[NAQ_SCHEDULE_NAME_MAX + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(naq_schedule_name_validate(long_name), NAQ_ERR_INVALID_ARG);
}

static void validate_refuses_an_exec_schedule_without_a_command(void **state)
{
    (void)state;
    naq_schedule s = cron_schedule();
    snprintf(s.function, sizeof s.function, "%s", NAQ_EXEC_FUNCTION);
    free(s.args_json);
    s.args_json = NULL; /* [] */
    assert_int_equal(naq_schedule_validate(&s), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "no command to run"));
    s.args_json = strdup("{\"argv\": [\"true\"]}");
    assert_int_equal(naq_schedule_validate(&s), NAQ_OK);
    naq_schedule_clear(&s);
}

static void every_due_times_stay_on_the_creation_grid(void **state)
{
    (void)state;
    naq_schedule s;
    naq_schedule_init(&s);
    s.kind = NAQ_SCHEDULE_EVERY;
    s.every_ms = 1000;
    s.created_at_ms = 10500;
    int64_t next = 0;
    assert_int_equal(naq_schedule_next(&s, 10500, &next), NAQ_OK);
    assert_int_equal(next, 11500);
    /* Strictly after, even exactly on a due time; late looks do not shift it. */
    assert_int_equal(naq_schedule_next(&s, 11500, &next), NAQ_OK);
    assert_int_equal(next, 12500);
    assert_int_equal(naq_schedule_next(&s, 15321, &next), NAQ_OK);
    assert_int_equal(next, 15500);
}

static void cron_and_at_due_times_are_strictly_after(void **state)
{
    (void)state;
    naq_schedule s;
    naq_schedule_init(&s);
    s.kind = NAQ_SCHEDULE_CRON;
    snprintf(s.cron, sizeof s.cron, "*/15 * * * * *"); /* every 15 s (seconds field) */
    int64_t next = 0;
    assert_int_equal(naq_schedule_next(&s, 1700000000000, &next), NAQ_OK);
    assert_int_equal(next, 1700000010000); /* 1700000000 is :20, next :30 */
    assert_int_equal(naq_schedule_next(&s, 1700000010000, &next), NAQ_OK);
    assert_int_equal(next, 1700000025000);
    assert_int_equal(naq_schedule_next(&s, 1700000009999, &next), NAQ_OK);
    assert_int_equal(next, 1700000010000);
    s.kind = NAQ_SCHEDULE_AT;
    s.at_ms = 5000;
    assert_int_equal(naq_schedule_next(&s, 4999, &next), NAQ_OK);
    assert_int_equal(next, 5000);
    assert_int_equal(naq_schedule_next(&s, 5000, &next), NAQ_ERR_NOT_FOUND);
}

static void job_id_is_the_name_and_the_due_time_in_ms(void **state)
{
    (void)state;
    char id[NAQ_ID_SIZE];
    assert_int_equal(naq_schedule_job_id("nightly", 1763953200000, id), NAQ_OK);
    assert_string_equal(id, "nightly-1763953200000");
    char longest[NAQ_SCHEDULE_NAME_MAX + 1];
    memset(longest, 'n', NAQ_SCHEDULE_NAME_MAX);
    longest[NAQ_SCHEDULE_NAME_MAX] = '\0';
    assert_int_equal(naq_schedule_job_id(longest, INT64_MAX, id), NAQ_OK);
    assert_int_equal(naq_id_validate("job id", id), NAQ_OK);
}

static void parse_time_accepts_iso_utc_offsets_and_relative_times(void **state)
{
    (void)state;
    int64_t t = 0;
    assert_int_equal(naq_parse_time_ms("2026-11-23T15:00:00Z", 0, &t), NAQ_OK);
    assert_int_equal(t, 1795446000000);
    assert_int_equal(naq_parse_time_ms("2026-11-23T15:00:00.25Z", 0, &t), NAQ_OK);
    assert_int_equal(t, 1795446000250);
    assert_int_equal(naq_parse_time_ms("2026-11-23T16:00:00+01:00", 0, &t), NAQ_OK);
    assert_int_equal(t, 1795446000000);
    assert_int_equal(naq_parse_time_ms("+30s", 1000, &t), NAQ_OK);
    assert_int_equal(t, 31000);
    assert_int_equal(naq_parse_time_ms("in 5m", 1000, &t), NAQ_OK);
    assert_int_equal(t, 301000);
    assert_int_equal(naq_parse_time_ms("2028-02-29T00:00:00Z", 0, &t), NAQ_OK); /* leap day */
}

static void parse_time_refuses_garbage_local_times_and_impossible_dates(void **state)
{
    (void)state;
    int64_t t = 0;
    const char *bad[] = {"tomorrow",
                         "2026-11-23T15:00:00",
                         "2026-02-30T00:00:00Z",
                         "2026-13-01T00:00:00Z",
                         "2026-11-23T25:00:00Z",
                         "+soon",
                         "",
                         NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        if (naq_parse_time_ms(bad[i], 0, &t) != NAQ_ERR_INVALID_ARG)
            fail_msg("'%s' was accepted", bad[i]);
    }
}

/* ---------------------------------------------------------------- KV */

typedef struct {
    naq_test_server srv;
    naq_client *c;
    raw_conn raw;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    naq_test_server_start(&fx->srv);
    fx->c = naq_test_connect(&fx->srv);
    raw_open(&fx->raw, &fx->srv);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    raw_close(&fx->raw);
    naq_client_destroy(fx->c);
    naq_test_server_destroy(&fx->srv);
    free(fx);
    return 0;
}

/* The events stored for a schedule name (after flushing ours). */
static event_set *schedule_events(fixture *fx, const char *name)
{
    assert_int_equal(naq_client_flush_events(fx->c, 5000), NAQ_OK);
    event_set *es = calloc(1, sizeof *es);
    assert_non_null(es);
    char subject[256];
    snprintf(subject, sizeof subject, "naq.schedules.events.%s", name);
    subject_events(&fx->raw, subject, es);
    return es;
}

static void free_events(event_set *es)
{
    event_set_clear(es);
    free(es);
}

static void add_then_get_returns_the_schedule_with_its_first_due_time(void **state)
{
    fixture *fx = *state;
    naq_schedule s;
    double before = now_s();
    add_every(fx->c, "tick", "default", 60000, -1, NAQ_MISFIRE_RUN_ONCE, &s);
    assert_true(s.revision > 0);
    assert_true(s.created_at_ms >= (int64_t)(before * 1000) - 1);
    assert_int_equal(s.next_run_ms, s.created_at_ms + 60000);
    naq_schedule got;
    assert_int_equal(naq_schedule_get(fx->c, "tick", &got), NAQ_OK);
    assert_same_schedule(&s, &got);
    assert_int_equal(got.revision, s.revision);
    naq_schedule_clear(&got);
    naq_schedule_clear(&s);
    event_set *es = schedule_events(fx, "tick");
    assert_int_equal(es->n, 1);
    assert_int_equal(es->ev[0].type, NAQ_EVENT_SCHEDULER_CREATED);
    assert_string_equal(es->ev[0].schedule_id, "tick");
    free_events(es);
}

static void add_refuses_an_existing_name_and_a_time_in_the_past(void **state)
{
    fixture *fx = *state;
    add_every(fx->c, "dup", "default", 1000, -1, NAQ_MISFIRE_RUN_ONCE, NULL);
    naq_schedule s;
    naq_schedule_init(&s);
    snprintf(s.name, sizeof s.name, "dup");
    snprintf(s.function, sizeof s.function, "f");
    s.kind = NAQ_SCHEDULE_EVERY;
    s.every_ms = 5000;
    assert_int_equal(naq_schedule_add(fx->c, &s), NAQ_ERR_EXISTS);
    assert_non_null(strstr(naq_last_error(), "exists already"));
    snprintf(s.name, sizeof s.name, "late");
    s.kind = NAQ_SCHEDULE_AT;
    s.at_ms = (int64_t)(now_s() * 1000) - 1000;
    assert_int_equal(naq_schedule_add(fx->c, &s), NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "past"));
    assert_int_equal(naq_schedule_get(fx->c, "late", &s), NAQ_ERR_NOT_FOUND);
    naq_schedule_clear(&s);
}

static void list_returns_every_schedule_sorted_by_name(void **state)
{
    fixture *fx = *state;
    const char *names[] = {"m", "b", "z", "a"};
    for (int i = 0; i < 4; i++)
        add_every(fx->c, names[i], "default", 60000, -1, NAQ_MISFIRE_RUN_ONCE, NULL);
    naq_schedule_list l;
    assert_int_equal(naq_schedules_list(fx->c, &l), NAQ_OK);
    assert_int_equal(l.count, 4);
    assert_string_equal(l.items[0].name, "a");
    assert_string_equal(l.items[1].name, "b");
    assert_string_equal(l.items[2].name, "m");
    assert_string_equal(l.items[3].name, "z");
    naq_schedule_list_free(&l);
    assert_int_equal(naq_schedule_remove(fx->c, "m"), NAQ_OK);
    assert_int_equal(naq_schedules_list(fx->c, &l), NAQ_OK);
    assert_int_equal(l.count, 3);
    naq_schedule_list_free(&l);
}

static void pause_and_resume_change_the_state_once_and_log_events(void **state)
{
    fixture *fx = *state;
    add_every(fx->c, "p", "default", 60000, -1, NAQ_MISFIRE_RUN_ONCE, NULL);
    assert_int_equal(naq_schedule_pause(fx->c, "p"), NAQ_OK);
    assert_int_equal(naq_schedule_pause(fx->c, "p"), NAQ_OK); /* no-op, no event */
    naq_schedule s;
    assert_int_equal(naq_schedule_get(fx->c, "p", &s), NAQ_OK);
    assert_true(s.paused);
    naq_schedule_clear(&s);
    assert_int_equal(naq_schedule_resume(fx->c, "p"), NAQ_OK);
    assert_int_equal(naq_schedule_get(fx->c, "p", &s), NAQ_OK);
    assert_false(s.paused);
    naq_schedule_clear(&s);
    event_set *es = schedule_events(fx, "p");
    assert_int_equal(es->n, 3);
    assert_int_equal(es->ev[0].type, NAQ_EVENT_SCHEDULER_CREATED);
    assert_int_equal(es->ev[1].type, NAQ_EVENT_SCHEDULER_PAUSED);
    assert_int_equal(es->ev[2].type, NAQ_EVENT_SCHEDULER_RESUMED);
    free_events(es);
    assert_int_equal(naq_schedule_pause(fx->c, "nope"), NAQ_ERR_NOT_FOUND);
}

/* Makes a schedule look as if its due time passed long ago. */
static naq_status set_past(naq_schedule *s, void *user)
{
    (void)user;
    s->next_run_ms = s->created_at_ms - 3600 * 1000;
    return NAQ_OK;
}

static void resume_skips_due_times_that_passed_while_paused(void **state)
{
    fixture *fx = *state;
    add_every(fx->c, "r", "default", 1000, -1, NAQ_MISFIRE_RUN_ALL, NULL);
    assert_int_equal(naq_schedule_pause(fx->c, "r"), NAQ_OK);
    assert_int_equal(naq_schedule_modify(fx->c, "r", set_past, NULL, NULL), NAQ_OK);
    double before = now_s();
    assert_int_equal(naq_schedule_resume(fx->c, "r"), NAQ_OK);
    naq_schedule s;
    assert_int_equal(naq_schedule_get(fx->c, "r", &s), NAQ_OK);
    assert_true(s.next_run_ms > (int64_t)(before * 1000));
    assert_true(s.next_run_ms <= (int64_t)(now_s() * 1000) + 1000);
    assert_int_equal((s.next_run_ms - s.created_at_ms) % 1000, 0); /* still on its grid */
    naq_schedule_clear(&s);
}

typedef struct {
    int calls;
    raw_conn *raw;
} racing_edit;

/* Changes the interval; on the first call a rival write lands first. */
static naq_status edit_with_rival(naq_schedule *s, void *user)
{
    racing_edit *r = user;
    if (r->calls++ == 0) {
        kvStore *kv = NULL;
        assert_int_equal(js_KeyValue(&kv, r->raw->js, "naq_schedules"), NATS_OK);
        naq_schedule rival;
        naq_schedule_init(&rival);
        assert_int_equal(naq_schedule_copy(&rival, s), NAQ_OK);
        rival.max_retries = 9; /* what the rival changed */
        char *json = NULL;
        size_t len = 0;
        assert_int_equal(naq_schedule_encode(&rival, &json, &len), NAQ_OK);
        assert_int_equal(kvStore_Put(NULL, kv, s->name, json, (int)len), NATS_OK);
        free(json);
        naq_schedule_clear(&rival);
        kvStore_Destroy(kv);
    }
    s->every_ms = 2000;
    return NAQ_OK;
}

static void modify_reapplies_only_its_change_after_losing_a_race(void **state)
{
    fixture *fx = *state;
    naq_schedule before;
    add_every(fx->c, "m", "default", 60000, -1, NAQ_MISFIRE_RUN_ONCE, &before);
    racing_edit r = {0, &fx->raw};
    naq_schedule after;
    naq_schedule_init(&after);
    int64_t t0 = (int64_t)(now_s() * 1000);
    assert_int_equal(naq_schedule_modify(fx->c, "m", edit_with_rival, &r, &after), NAQ_OK);
    assert_int_equal(r.calls, 2);
    assert_int_equal(after.every_ms, 2000);
    assert_int_equal(after.max_retries, 9); /* the rival's change survived */
    /* The timing changed, so the next due time follows the new interval. */
    assert_true(after.next_run_ms > t0 && after.next_run_ms <= t0 + 2000 + 50);
    naq_schedule stored;
    assert_int_equal(naq_schedule_get(fx->c, "m", &stored), NAQ_OK);
    assert_same_schedule(&after, &stored);
    naq_schedule_clear(&stored);
    naq_schedule_clear(&after);
    naq_schedule_clear(&before);
    event_set *es = schedule_events(fx, "m");
    assert_int_equal(count_type(es, NAQ_EVENT_SCHEDULER_MODIFIED), 1);
    free_events(es);
}

static naq_status rename_it(naq_schedule *s, void *user)
{
    (void)user;
    snprintf(s->name, sizeof s->name, "other");
    return NAQ_OK;
}

static void modify_refuses_a_rename_and_an_invalid_result(void **state)
{
    fixture *fx = *state;
    add_every(fx->c, "keep", "default", 60000, -1, NAQ_MISFIRE_RUN_ONCE, NULL);
    assert_int_equal(naq_schedule_modify(fx->c, "keep", rename_it, NULL, NULL),
                     NAQ_ERR_INVALID_ARG);
    assert_non_null(strstr(naq_last_error(), "renamed"));
    naq_schedule s;
    assert_int_equal(naq_schedule_get(fx->c, "keep", &s), NAQ_OK);
    naq_schedule_clear(&s);
}

static void remove_deletes_the_schedule_and_logs_cancelled(void **state)
{
    fixture *fx = *state;
    add_every(fx->c, "gone", "default", 60000, -1, NAQ_MISFIRE_RUN_ONCE, NULL);
    assert_int_equal(naq_schedule_remove(fx->c, "gone"), NAQ_OK);
    naq_schedule s;
    assert_int_equal(naq_schedule_get(fx->c, "gone", &s), NAQ_ERR_NOT_FOUND);
    naq_schedule_clear(&s);
    assert_int_equal(naq_schedule_remove(fx->c, "gone"), NAQ_ERR_NOT_FOUND);
    event_set *es = schedule_events(fx, "gone");
    assert_int_equal(es->n, 2);
    assert_int_equal(es->ev[1].type, NAQ_EVENT_SCHEDULER_CANCELLED);
    free_events(es);
}

/* ---------------------------------------------------------------- CLI */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Runs a command in-process with stdout / stderr captured. */
static int run(int (*cmd)(int, char **), const char *name, const char *const *args, char **out,
               char **err)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)name;
    for (; args[argc - 1] != NULL; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    char opath[] = "/tmp/naq-cli-out-XXXXXX", epath[] = "/tmp/naq-cli-err-XXXXXX";
    int ofd = mkstemp(opath), efd = mkstemp(epath);
    assert_true(ofd >= 0 && efd >= 0);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(ofd, 1);
    dup2(efd, 2);
    int rc = cmd(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(ofd);
    close(efd);
    *out = slurp(opath);
    *err = slurp(epath);
    unlink(opath);
    unlink(epath);
    return rc;
}

static int schedule_cli(fixture *fx, const char *const *args, char **out, char **err)
{
    /* --url goes right after the action and its name, before any '--'. */
    const char *full[40];
    int n = 0, at = strcmp(args[0], "list") == 0 ? 1 : 2;
    for (int i = 0; args[i] != NULL; i++) {
        if (i == at) {
            full[n++] = "--url";
            full[n++] = fx->srv.url;
        }
        full[n++] = args[i];
    }
    if (n <= at) {
        full[n++] = "--url";
        full[n++] = fx->srv.url;
    }
    full[n] = NULL;
    return run(naq_cmd_schedule, "naq schedule", full, out, err);
}

static void cli_add_list_show_pause_and_rm_work_end_to_end(void **state)
{
    fixture *fx = *state;
    char *out, *err;
    const char *add[] = {"add",       "backup", "--every", "5m", "--repeat", "3",       "-q", "ops",
                         "--misfire", "skip",   "--",      "sh", "-c",       "echo hi", NULL};
    int rc = schedule_cli(fx, add, &out, &err);
    if (rc != 0)
        fail_msg("add: rc %d, stderr: %s", rc, err);
    assert_non_null(strstr(out, "schedule backup added; next run 20"));
    free(out);
    free(err);

    naq_schedule s;
    assert_int_equal(naq_schedule_get(fx->c, "backup", &s), NAQ_OK);
    assert_int_equal(s.kind, NAQ_SCHEDULE_EVERY);
    assert_int_equal(s.every_ms, 300000);
    assert_int_equal(s.repeat, 3);
    assert_int_equal(s.misfire, NAQ_MISFIRE_SKIP);
    assert_string_equal(s.queue, "ops");
    assert_string_equal(s.function, "exec");
    assert_string_equal(s.args_json, "{\"argv\":[\"sh\",\"-c\",\"echo hi\"]}");
    naq_schedule_clear(&s);

    const char *list[] = {"list", "--format", "json", NULL};
    assert_int_equal(schedule_cli(fx, list, &out, &err), 0);
    assert_non_null(strstr(out, "\"name\":\"backup\""));
    assert_non_null(strstr(out, "\"revision\":"));
    free(out);
    free(err);

    const char *pause[] = {"pause", "backup", NULL};
    assert_int_equal(schedule_cli(fx, pause, &out, &err), 0);
    free(out);
    free(err);
    const char *table[] = {"list", NULL};
    assert_int_equal(schedule_cli(fx, table, &out, &err), 0);
    assert_non_null(strstr(out, "NAME"));
    assert_non_null(strstr(out, "every 5m"));
    assert_non_null(strstr(out, "paused"));
    free(out);
    free(err);

    const char *modify[] = {"modify", "backup", "--cron", "0 4 * * *", "--tz", "UTC", NULL};
    rc = schedule_cli(fx, modify, &out, &err);
    if (rc != 0)
        fail_msg("modify: rc %d, stderr: %s", rc, err);
    free(out);
    free(err);
    const char *show[] = {"show", "backup", NULL};
    assert_int_equal(schedule_cli(fx, show, &out, &err), 0);
    assert_non_null(strstr(out, "cron '0 4 * * *' UTC"));
    assert_non_null(strstr(out, "state:        paused"));
    assert_non_null(strstr(out, "repeat:       3 left"));
    free(out);
    free(err);

    const char *rm[] = {"rm", "backup", NULL};
    assert_int_equal(schedule_cli(fx, rm, &out, &err), 0);
    free(out);
    free(err);
    assert_int_equal(schedule_cli(fx, show, &out, &err), 1);
    assert_non_null(strstr(err, "naq: no schedule named 'backup'"));
    free(out);
    free(err);
}

/* "...; next run 2026-01-31T12:00:01.609Z" -> that time, in ms. */
static int64_t printed_next_run(const char *out)
{
    const char *t = strstr(out, "next run ");
    assert_non_null(t);
    t += strlen("next run ");
    int y, mo, d, h, mi, sec, ms;
    assert_int_equal(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &y, &mo, &d, &h, &mi, &sec, &ms), 7);
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static void cli_prints_the_next_run_to_the_millisecond_it_stores(void **state)
{
    fixture *fx = *state;
    /* Truncating seconds turned .609 into .608 in 4 tries out of 5. */
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "hourly-%d", i);
        const char *add[] = {"add", name, "--every", "1h", "-f", "f", NULL};
        char *out, *err;
        assert_int_equal(schedule_cli(fx, add, &out, &err), 0);
        naq_schedule s;
        assert_int_equal(naq_schedule_get(fx->c, name, &s), NAQ_OK);
        if (printed_next_run(out) != s.next_run_ms)
            fail_msg("printed '%s', stored next_run %lld ms", out, (long long)s.next_run_ms);
        naq_schedule_clear(&s);
        free(out);
        free(err);
    }
}

static void cli_show_names_the_priority(void **state)
{
    fixture *fx = *state;
    const char *add[] = {"add", "urgent", "--every", "1h", "--priority", "high", "-f", "f", NULL};
    char *out, *err;
    assert_int_equal(schedule_cli(fx, add, &out, &err), 0);
    free(out);
    free(err);
    const char *show[] = {"show", "urgent", NULL};
    assert_int_equal(schedule_cli(fx, show, &out, &err), 0);
    if (strstr(out, "priority:     high\n") == NULL)
        fail_msg("show:\n%s", out);
    free(out);
    free(err);
}

static void cli_resume_of_a_one_off_whose_time_passed_says_it_is_finished(void **state)
{
    fixture *fx = *state;
    const char *add[] = {"add", "once", "--at", "+1s", "-f", "f", NULL};
    const char *pause[] = {"pause", "once", NULL};
    const char *resume[] = {"resume", "once", NULL};
    char *out, *err;
    assert_int_equal(schedule_cli(fx, add, &out, &err), 0);
    free(out);
    free(err);
    assert_int_equal(schedule_cli(fx, pause, &out, &err), 0);
    free(out);
    free(err);
    usleep(1500 * 1000); /* its time passes while it is paused */
    assert_int_equal(schedule_cli(fx, resume, &out, &err), 0);
    if (strstr(out, "schedule once is finished") == NULL ||
        strstr(out, "passed while it was paused") == NULL ||
        strstr(out, "naq schedule modify once --at TIME") == NULL)
        fail_msg("resume printed '%s'", out);
    free(out);
    free(err);

    /* A schedule with a future run says when. */
    const char *add2[] = {"add", "later", "--every", "1h", "-f", "f", NULL};
    const char *pause2[] = {"pause", "later", NULL};
    const char *resume2[] = {"resume", "later", NULL};
    assert_int_equal(schedule_cli(fx, add2, &out, &err), 0);
    free(out);
    free(err);
    assert_int_equal(schedule_cli(fx, pause2, &out, &err), 0);
    free(out);
    free(err);
    assert_int_equal(schedule_cli(fx, resume2, &out, &err), 0);
    if (strstr(out, "schedule later resumed; next run 20") == NULL)
        fail_msg("resume printed '%s'", out);
    free(out);
    free(err);
}

static void cli_bad_usage_exits_2_with_a_message(void **state)
{
    fixture *fx = *state;
    const char *const cases[][12] = {
        {"add", "x", "-f", "f", NULL},       /* no when */
        {"add", "x", "--every", "1s", NULL}, /* no what */
        {"add", "x", "--every", "1s", "--cron", "* * * * *", "-f", "f", NULL},
        {"add", "x", "--every", "soon", "-f", "f", NULL},
        {"add", "x", "--at", "tomorrow", "-f", "f", NULL},
        {"add", "x", "--cron", "61 * * * *", "-f", "f", NULL},
        {"add", "bad.name", "--every", "1s", "-f", "f", NULL},
        {"add", "--every", "1s", NULL}, /* no name */
        {"frobnicate", NULL},
        {"show", "x", "--every", "1s", NULL},
        {"list", "--format", "yaml", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        int rc = schedule_cli(fx, cases[i], &out, &err);
        if (rc != 2 || err[0] == '\0')
            fail_msg("case %zu (%s %s): rc %d, stderr '%s'", i, cases[i][0],
                     cases[i][1] ? cases[i][1] : "", rc, err);
        free(out);
        free(err);
    }
}

static void cli_help_of_both_commands_exits_0(void **state)
{
    (void)state;
    char *out, *err;
    const char *h1[] = {"--help", NULL};
    assert_int_equal(run(naq_cmd_schedule, "naq schedule", h1, &out, &err), 0);
    assert_non_null(strstr(out, "usage: naq schedule add NAME"));
    free(out);
    free(err);
    const char *h2[] = {"add", "--help", NULL};
    assert_int_equal(run(naq_cmd_schedule, "naq schedule", h2, &out, &err), 0);
    assert_non_null(strstr(out, "--misfire"));
    free(out);
    free(err);
    assert_int_equal(run(naq_cmd_scheduler, "naq scheduler", h1, &out, &err), 0);
    assert_non_null(strstr(out, "usage: naq scheduler"));
    free(out);
    free(err);
    const char *bad[] = {"--lease", "forever", NULL};
    assert_int_equal(run(naq_cmd_scheduler, "naq scheduler", bad, &out, &err), 2);
    assert_non_null(strstr(err, "--lease"));
    free(out);
    free(err);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(codec_round_trip_keeps_every_field_of_each_kind),
    cmocka_unit_test(decode_ignores_unknown_fields_and_fills_defaults),
    cmocka_unit_test(decode_refuses_a_newer_version_and_an_unknown_kind),
    cmocka_unit_test(validate_refuses_bad_names_intervals_zones_and_tz_outside_cron),
    cmocka_unit_test(validate_refuses_an_exec_schedule_without_a_command),
    cmocka_unit_test(every_due_times_stay_on_the_creation_grid),
    cmocka_unit_test(cron_and_at_due_times_are_strictly_after),
    cmocka_unit_test(job_id_is_the_name_and_the_due_time_in_ms),
    cmocka_unit_test(parse_time_accepts_iso_utc_offsets_and_relative_times),
    cmocka_unit_test(parse_time_refuses_garbage_local_times_and_impossible_dates),
    cmocka_unit_test_setup_teardown(add_then_get_returns_the_schedule_with_its_first_due_time,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(add_refuses_an_existing_name_and_a_time_in_the_past, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(list_returns_every_schedule_sorted_by_name, setup, teardown),
    cmocka_unit_test_setup_teardown(pause_and_resume_change_the_state_once_and_log_events, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(resume_skips_due_times_that_passed_while_paused, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(modify_reapplies_only_its_change_after_losing_a_race, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(modify_refuses_a_rename_and_an_invalid_result, setup, teardown),
    cmocka_unit_test_setup_teardown(remove_deletes_the_schedule_and_logs_cancelled, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(cli_add_list_show_pause_and_rm_work_end_to_end, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(cli_prints_the_next_run_to_the_millisecond_it_stores, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(cli_show_names_the_priority, setup, teardown),
    cmocka_unit_test_setup_teardown(cli_resume_of_a_one_off_whose_time_passed_says_it_is_finished,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(cli_bad_usage_exits_2_with_a_message, setup, teardown),
    cmocka_unit_test(cli_help_of_both_commands_exits_0),
};

NAQ_TEST_MAIN(tests)
