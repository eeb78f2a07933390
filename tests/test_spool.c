/*
 * test_spool.c - the on-disk overflow spool: order, consumption, restarts,
 * crash damage and bounds. Every test works in its own mkdtemp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h" /* NAQ_TEST_MAIN */

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "events/spool.h"

/* ---- helpers ---- */

typedef struct {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    strcpy(fx->dir, "/tmp/naq-spool-test-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    /* A parent directory that does not exist yet: open must create it. */
    snprintf(fx->path, sizeof fx->path, "%s/sub/dir/events.spool", fx->dir);
    *state = fx;
    return 0;
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char child[512];
            snprintf(child, sizeof child, "%s/%s", path, de->d_name);
            rm_rf(child);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int teardown(void **state)
{
    fixture *fx = *state;
    rm_rf(fx->dir);
    free(fx);
    return 0;
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void append_str(naq__spool *s, const char *str)
{
    assert_int_equal(naq__spool_append(s, str, strlen(str)), NAQ_OK);
}

static void append_numbered(naq__spool *s, int from, int to)
{
    char buf[32];
    for (int i = from; i < to; i++) {
        snprintf(buf, sizeof buf, "record-%03d", i); /* 10 bytes each */
        append_str(s, buf);
    }
}

#define RECORD_FRAME (8 + 10) /* frame of one append_numbered record */

/* Collects the records it is given as strings; refuses once it holds `limit`. */
typedef struct {
    char got[64][32];
    size_t n, limit;
} collector;

static int collect(const void *data, size_t len, void *ud)
{
    collector *c = ud;
    if (c->n >= c->limit || len >= sizeof c->got[0])
        return 1;
    memcpy(c->got[c->n], data, len);
    c->got[c->n][len] = '\0';
    c->n++;
    return 0;
}

static void assert_numbered(const collector *c, int from, int to)
{
    char want[32];
    assert_int_equal(c->n, (size_t)(to - from));
    for (int i = from; i < to; i++) {
        snprintf(want, sizeof want, "record-%03d", i);
        assert_string_equal(c->got[i - from], want);
    }
}

/* Overwrite bytes of a closed (or open) spool file directly. */
static void poke(const char *path, long offset, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, len, offset), (ssize_t)len);
    close(fd);
}

/* ---- tests ---- */

static void append_then_drain_returns_records_in_order(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    assert_int_equal(naq__spool_pending(s), 0);
    append_numbered(s, 0, 20);
    assert_int_equal(naq__spool_pending(s), 20);
    assert_int_equal(file_size(fx->path), 20 * RECORD_FRAME);

    collector c = {.limit = 64};
    size_t consumed = 99;
    assert_int_equal(naq__spool_drain(s, collect, &c, &consumed), NAQ_OK);
    assert_int_equal(consumed, 20);
    assert_numbered(&c, 0, 20);
    assert_int_equal(naq__spool_pending(s), 0);

    /* Nothing left: a second drain sees nothing. */
    c.n = 0;
    assert_int_equal(naq__spool_drain(s, collect, &c, &consumed), NAQ_OK);
    assert_int_equal(consumed, 0);
    assert_int_equal(c.n, 0);
    naq__spool_close(s);
    naq__spool_close(NULL); /* accepted */
}

static void append_rejects_empty_record(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    assert_int_equal(naq__spool_append(s, "", 0), NAQ_ERR_INVALID_ARG);
    assert_int_equal(naq__spool_pending(s), 0);
    assert_int_equal(file_size(fx->path), 0);
    naq__spool_close(s);
}

static void frames_are_len_crc32_data_little_endian(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_str(s, "123456789");
    naq__spool_close(s);

    /* crc32("123456789") is the standard check value 0xCBF43926. */
    const unsigned char want[] = {9,   0,   0,   0,   0x26, 0x39, 0xF4, 0xCB, '1',
                                  '2', '3', '4', '5', '6',  '7',  '8',  '9'};
    unsigned char got[64];
    int fd = open(fx->path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, got, sizeof got), (ssize_t)sizeof want);
    close(fd);
    assert_memory_equal(got, want, sizeof want);
}

static void drain_stopping_early_keeps_the_rest(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 10);

    collector c = {.limit = 3};
    size_t consumed = 0;
    assert_int_equal(naq__spool_drain(s, collect, &c, &consumed), NAQ_OK);
    assert_int_equal(consumed, 3);
    assert_numbered(&c, 0, 3);
    assert_int_equal(naq__spool_pending(s), 7);

    /* The refused record (record-003) comes first next time. */
    collector rest = {.limit = 64};
    assert_int_equal(naq__spool_drain(s, collect, &rest, &consumed), NAQ_OK);
    assert_int_equal(consumed, 7);
    assert_numbered(&rest, 3, 10);
    naq__spool_close(s);
}

static void peek_consumes_nothing_and_consume_takes_the_oldest(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 6);

    collector c = {.limit = 4};
    assert_int_equal(naq__spool_peek(s, collect, &c), NAQ_OK);
    assert_numbered(&c, 0, 4);
    assert_int_equal(naq__spool_pending(s), 6);

    assert_int_equal(naq__spool_consume(s, 2), NAQ_OK);
    assert_int_equal(naq__spool_pending(s), 4);
    assert_int_equal(naq__spool_consume(s, 5), NAQ_ERR_INVALID_ARG); /* only 4 pending */
    assert_int_equal(naq__spool_pending(s), 4);
    assert_int_equal(naq__spool_consume(s, 0), NAQ_OK);
    naq__spool_close(s);

    /* The consumption was persisted. */
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    collector rest = {.limit = 64};
    assert_int_equal(naq__spool_peek(s, collect, &rest), NAQ_OK);
    assert_numbered(&rest, 2, 6);
    assert_int_equal(naq__spool_consume(s, 4), NAQ_OK);
    assert_int_equal(naq__spool_pending(s), 0);
    assert_int_equal(file_size(fx->path), 0);
    naq__spool_close(s);
}

static void records_and_cursor_survive_reopen(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 10);
    collector c = {.limit = 4};
    size_t consumed = 0;
    assert_int_equal(naq__spool_drain(s, collect, &c, &consumed), NAQ_OK);
    assert_int_equal(consumed, 4);
    naq__spool_close(s);

    assert_int_equal(naq__spool_pending_path(fx->path), 6);
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    assert_int_equal(naq__spool_pending(s), 6);
    append_numbered(s, 10, 12); /* appends after a reopen follow the old records */
    collector rest = {.limit = 64};
    assert_int_equal(naq__spool_drain(s, collect, &rest, &consumed), NAQ_OK);
    assert_int_equal(consumed, 8);
    assert_numbered(&rest, 4, 12);
    naq__spool_close(s);
}

static void torn_tail_record_is_ignored_and_appends_continue(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 5);
    naq__spool_close(s);

    /* A crash in the middle of the 5th record's write: its body is short. */
    assert_int_equal(truncate(fx->path, 5 * RECORD_FRAME - 3), 0);
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    assert_int_equal(naq__spool_pending(s), 4);
    assert_int_equal(file_size(fx->path), 4 * RECORD_FRAME); /* the torn bytes are cut */
    append_numbered(s, 4, 6);
    naq__spool_close(s);

    /* A crash in the middle of a header: only 5 of its 8 bytes made it. */
    int fd = open(fx->path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\x0a\x00\x00\x00\x11", 5), 5);
    close(fd);
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    assert_int_equal(naq__spool_pending(s), 6);
    collector c = {.limit = 64};
    size_t consumed = 0;
    assert_int_equal(naq__spool_drain(s, collect, &c, &consumed), NAQ_OK);
    assert_numbered(&c, 0, 6);
    naq__spool_close(s);
}

static void corrupt_crc_is_detected_on_open(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 5);
    naq__spool_close(s);

    /* Flip one data byte of record 2: its crc no longer matches. The framing
     * cannot be trusted past it, so records 0 and 1 are what remains. */
    poke(fx->path, 2 * RECORD_FRAME + 8 + 3, "X", 1);
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    assert_int_equal(naq__spool_pending(s), 2);
    assert_int_equal(file_size(fx->path), 2 * RECORD_FRAME);
    collector c = {.limit = 64};
    size_t consumed = 0;
    assert_int_equal(naq__spool_drain(s, collect, &c, &consumed), NAQ_OK);
    assert_numbered(&c, 0, 2);
    naq__spool_close(s);
}

static void zeroed_region_is_not_read_as_records(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 2);
    naq__spool_close(s);

    /* A lost write can leave a hole of zeros, which would frame as
     * [len 0][crc32 of nothing = 0]: it must not count as records. */
    char zeros[64] = {0};
    poke(fx->path, 2 * RECORD_FRAME, zeros, sizeof zeros);
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    assert_int_equal(naq__spool_pending(s), 2);
    naq__spool_close(s);
}

static void damage_found_while_draining_is_reported(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 5);
    /* Damaged on disk after open validated it. */
    poke(fx->path, 3 * RECORD_FRAME + 4, "\xff", 1);

    collector c = {.limit = 64};
    size_t consumed = 0;
    assert_int_equal(naq__spool_drain(s, collect, &c, &consumed), NAQ_ERR_CODEC);
    assert_int_equal(consumed, 3); /* the good records before it were handled */
    assert_numbered(&c, 0, 3);
    assert_int_equal(naq__spool_pending(s), 0);

    /* The spool keeps working. */
    append_numbered(s, 5, 7);
    collector rest = {.limit = 64};
    assert_int_equal(naq__spool_drain(s, collect, &rest, &consumed), NAQ_OK);
    assert_numbered(&rest, 5, 7);
    assert_int_equal(file_size(fx->path), 0);
    naq__spool_close(s);
}

static void append_beyond_max_size_is_full(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 3 * RECORD_FRAME, &s), NAQ_OK);
    append_numbered(s, 0, 3); /* exactly at the bound */
    assert_int_equal(naq__spool_append(s, "record-003", 10), NAQ_ERR_FULL);
    assert_int_equal(naq__spool_pending(s), 3);
    assert_int_equal(file_size(fx->path), 3 * RECORD_FRAME);

    /* Draining everything reclaims the space. */
    collector c = {.limit = 64};
    size_t consumed = 0;
    assert_int_equal(naq__spool_drain(s, collect, &c, &consumed), NAQ_OK);
    assert_int_equal(consumed, 3);
    assert_int_equal(naq__spool_append(s, "record-003", 10), NAQ_OK);
    naq__spool_close(s);
}

static void full_drain_truncates_file_to_zero(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 8);
    collector c = {.limit = 64};
    size_t consumed = 0;
    assert_int_equal(naq__spool_drain(s, collect, &c, &consumed), NAQ_OK);
    assert_int_equal(consumed, 8);
    assert_int_equal(file_size(fx->path), 0);
    naq__spool_close(s);

    /* The reset cursor is persisted: a reopen sees an empty spool, and new
     * records are not skipped. */
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    assert_int_equal(naq__spool_pending(s), 0);
    append_numbered(s, 8, 9);
    naq__spool_close(s);
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    collector again = {.limit = 64};
    assert_int_equal(naq__spool_drain(s, collect, &again, &consumed), NAQ_OK);
    assert_numbered(&again, 8, 9);
    naq__spool_close(s);
}

static void stale_cursor_is_ignored_and_records_are_resent(void **state)
{
    fixture *fx = *state;
    char cursor_path[160];
    snprintf(cursor_path, sizeof cursor_path, "%s.cursor", fx->path);
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 3);
    naq__spool_close(s);

    /* A cursor on a frame boundary but with the wrong crc (left over from an
     * older generation of the file), one past the end, and garbage: each
     * means "start over", so nothing is skipped. */
    const char *stale[] = {
        "naq-spool-cursor 1 18 deadbeef\n", "naq-spool-cursor 1 99999 00000000\n", "not a cursor",
        "naq-spool-cursor 1 7 00000000\n", /* not a frame boundary */
    };
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        FILE *f = fopen(cursor_path, "w");
        assert_non_null(f);
        fputs(stale[i], f);
        fclose(f);
        assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
        assert_int_equal(naq__spool_pending(s), 3);
        naq__spool_close(s);
    }
}

static void pending_path_and_remove(void **state)
{
    fixture *fx = *state;
    char cursor_path[160];
    snprintf(cursor_path, sizeof cursor_path, "%s.cursor", fx->path);
    assert_int_equal(naq__spool_pending_path(fx->path), 0); /* does not exist */

    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 3);
    assert_int_equal(naq__spool_consume(s, 1), NAQ_OK); /* writes the cursor file */
    naq__spool_close(s);
    assert_int_equal(naq__spool_pending_path(fx->path), 2);

    assert_int_equal(naq__spool_remove(fx->path), NAQ_OK);
    assert_int_equal(file_size(fx->path), -1);
    assert_int_equal(file_size(cursor_path), -1);
    assert_int_equal(naq__spool_pending_path(fx->path), 0);
    assert_int_equal(naq__spool_remove(fx->path), NAQ_OK); /* already gone is fine */
}

/* Appends from inside the drain callback, as a job thread may while the
 * logger re-sends: they must neither be lost nor let the file be truncated
 * under them. */
static int collect_and_append(const void *data, size_t len, void *ud)
{
    void **args = ud;
    naq__spool *s = args[0];
    collector *c = args[1];
    if (c->n == 0 && naq__spool_append(s, "record-100", 10) != NAQ_OK)
        return 1;
    return collect(data, len, c);
}

static void appends_during_drain_are_kept(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    append_numbered(s, 0, 3);
    collector c = {.limit = 64};
    void *args[2] = {s, &c};
    size_t consumed = 0;
    assert_int_equal(naq__spool_drain(s, collect_and_append, args, &consumed), NAQ_OK);
    /* The drain saw the records present when it started. */
    assert_int_equal(consumed, 3);
    assert_numbered(&c, 0, 3);
    assert_int_equal(naq__spool_pending(s), 1);
    assert_true(file_size(fx->path) > 0);

    collector rest = {.limit = 64};
    assert_int_equal(naq__spool_drain(s, collect, &rest, &consumed), NAQ_OK);
    assert_numbered(&rest, 100, 101);
    naq__spool_close(s);
}

#define WRITERS 4
#define PER_WRITER 5000

typedef struct {
    naq__spool *s;
    uint32_t id;
    naq_status failure;
} writer;

/* Payload: writer id, sequence, then (seq % 23) + 1 bytes of filler. */
static void *write_records(void *arg)
{
    writer *w = arg;
    unsigned char buf[8 + 24];
    w->failure = NAQ_OK;
    for (uint32_t seq = 0; seq < PER_WRITER; seq++) {
        size_t len = 8 + seq % 23 + 1;
        memcpy(buf, &w->id, 4);
        memcpy(buf + 4, &seq, 4);
        memset(buf + 8, (int)(w->id + seq) & 0xff, len - 8);
        naq_status st = naq__spool_append(w->s, buf, len);
        if (st != NAQ_OK) {
            w->failure = st;
            break;
        }
    }
    return NULL;
}

typedef struct {
    uint32_t next_seq[WRITERS];
    size_t bad;
} order_check;

static int check_order(const void *data, size_t len, void *ud)
{
    order_check *oc = ud;
    const unsigned char *p = data;
    uint32_t id, seq;
    if (len < 9) {
        oc->bad++;
        return 0;
    }
    memcpy(&id, p, 4);
    memcpy(&seq, p + 4, 4);
    if (id >= WRITERS || seq != oc->next_seq[id] || len != 8 + seq % 23 + 1) {
        oc->bad++;
        return 0;
    }
    for (size_t i = 8; i < len; i++)
        if (p[i] != (unsigned char)((id + seq) & 0xff))
            oc->bad++;
    oc->next_seq[id] = seq + 1;
    return 0;
}

static void concurrent_appends_are_all_readable(void **state)
{
    fixture *fx = *state;
    naq__spool *s = NULL;
    assert_int_equal(naq__spool_open(fx->path, 0, &s), NAQ_OK);
    writer ws[WRITERS];
    pthread_t threads[WRITERS];
    for (uint32_t i = 0; i < WRITERS; i++) {
        ws[i] = (writer){s, i, NAQ_OK};
        assert_int_equal(pthread_create(&threads[i], NULL, write_records, &ws[i]), 0);
    }
    /* Drain while the writers run, then once more after: every record is
     * seen exactly once, in each writer's order, with intact bytes. */
    order_check oc = {{0}, 0};
    size_t total = 0, consumed = 0;
    for (int round = 0; round < 50; round++) {
        assert_int_equal(naq__spool_drain(s, check_order, &oc, &consumed), NAQ_OK);
        total += consumed;
        usleep(1000);
    }
    for (int i = 0; i < WRITERS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(ws[i].failure, NAQ_OK);
    }
    assert_int_equal(naq__spool_drain(s, check_order, &oc, &consumed), NAQ_OK);
    total += consumed;
    naq__spool_close(s);

    assert_int_equal(oc.bad, 0);
    assert_int_equal(total, (size_t)WRITERS * PER_WRITER);
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(oc.next_seq[i], PER_WRITER);
    assert_int_equal(file_size(fx->path), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
static const struct CMUnitTest tests[] = {
    T(append_then_drain_returns_records_in_order),
    T(append_rejects_empty_record),
    T(frames_are_len_crc32_data_little_endian),
    T(drain_stopping_early_keeps_the_rest),
    T(peek_consumes_nothing_and_consume_takes_the_oldest),
    T(records_and_cursor_survive_reopen),
    T(torn_tail_record_is_ignored_and_appends_continue),
    T(corrupt_crc_is_detected_on_open),
    T(zeroed_region_is_not_read_as_records),
    T(damage_found_while_draining_is_reported),
    T(append_beyond_max_size_is_full),
    T(full_drain_truncates_file_to_zero),
    T(stale_cursor_is_ignored_and_records_are_resent),
    T(pending_path_and_remove),
    T(appends_during_drain_are_kept),
    T(concurrent_appends_are_all_readable),
};
#undef T

NAQ_TEST_MAIN(tests)
