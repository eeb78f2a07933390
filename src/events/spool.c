/*
 * spool.c - the event logger's append-only overflow file (format in spool.h).
 *
 * Invariants (under mu):
 *  - the file is exactly `end` bytes of whole, valid frames: appends write a
 *    frame with one writev under mu and roll back a short write, and open
 *    cuts off a torn or damaged tail;
 *  - `cursor` is a frame boundary, cursor <= end, and `pending` is the
 *    number of frames in [cursor, end).
 * Only the reader (peek/consume/drain, serialised by read_mu) moves the
 * cursor or shrinks the file, so it may read [cursor, end) without holding
 * mu while appenders keep going past `end`: bytes below `end` never change.
 *
 * Why a sidecar cursor file rather than a header in the spool: the spool is
 * then a plain frame sequence that a crash can only damage at its tail, and
 * an empty spool is a 0-byte file. The cursor carries the crc of the record
 * that ends at it, so a cursor that does not belong to the file (left from
 * before a truncation, or by a crash between the two) is recognised and
 * ignored: the records are then re-sent, never skipped.
 */
#include "spool.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* On-disk format version, written into the cursor file. When the frame or
 * cursor layout changes:
 *  1. bump this number and describe the new layout in spool.h;
 *  2. keep reading version 1 files (old spools must still be re-sent after an
 *     upgrade), or name new spool files differently so old ones are adopted
 *     by an old-format reader;
 *  3. add a test that opens a file in the old format. */
#define NAQ__SPOOL_FORMAT 1

#define FRAME_HEADER 8u
/* Larger than any NATS message (max_payload is at most 64 MiB), so a length
 * beyond it can only be garbage: it marks a damaged frame. */
#define MAX_RECORD (64u * 1024 * 1024)
#define READ_CHUNK (64u * 1024)

struct naq__spool {
    pthread_mutex_t mu;      /* end, cursor, cursor_crc, pending, appends */
    pthread_mutex_t read_mu; /* one reader (peek / consume / drain) at a time */
    int fd;
    uint64_t end;        /* file size = end of the last whole frame */
    uint64_t cursor;     /* offset of the first pending frame */
    uint32_t cursor_crc; /* crc of the frame ending at cursor (0 if cursor is 0) */
    size_t pending;
    size_t max_bytes;
    int broken; /* a partial frame could not be rolled back: appends refused */
    char *path, *cursor_path, *cursor_tmp;
};

/* ---- crc32 (IEEE 802.3, reflected 0xEDB88320, as zlib's crc32) ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    pthread_once(&crc_once, crc_init);
    while (len--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- frame reader: buffered, bounded to [start, limit) of the file ---- */

typedef struct {
    int fd;
    uint64_t base;  /* file offset of buf[0] */
    uint64_t limit; /* never read at or past this offset */
    unsigned char *buf;
    size_t cap, have, at; /* buf[0..have) is valid, buf[at] is the next byte */
} reader;

typedef struct {
    uint64_t off; /* where the frame starts */
    const unsigned char *data;
    uint32_t len, crc;
} frame;

enum { FRAME_OK, FRAME_END, FRAME_BAD, FRAME_IO };

static void reader_init(reader *r, int fd, uint64_t start, uint64_t limit)
{
    *r = (reader){.fd = fd, .base = start, .limit = limit};
}

static void reader_free(reader *r)
{
    free(r->buf);
}

/* Make `need` unread bytes available if the file has them. -1 on I/O error
 * or no memory; fewer bytes than asked at the end of the range is not one. */
static int reader_fill(reader *r, size_t need)
{
    if (r->have - r->at >= need)
        return 0;
    if (r->at > 0) { /* slide the unread bytes to the front */
        memmove(r->buf, r->buf + r->at, r->have - r->at);
        r->base += r->at;
        r->have -= r->at;
        r->at = 0;
    }
    if (need > r->cap) {
        size_t cap = need > READ_CHUNK ? need : READ_CHUNK;
        unsigned char *b = realloc(r->buf, cap);
        if (b == NULL)
            return -1;
        r->buf = b;
        r->cap = cap;
    }
    while (r->have < need) {
        uint64_t off = r->base + r->have;
        if (off >= r->limit)
            break;
        size_t want = r->cap - r->have;
        if (want > r->limit - off)
            want = (size_t)(r->limit - off);
        ssize_t k = pread(r->fd, r->buf + r->have, want, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break; /* the file is shorter than limit */
        r->have += (size_t)k;
    }
    return 0;
}

static int reader_next(reader *r, frame *f)
{
    f->off = r->base + r->at;
    if (reader_fill(r, FRAME_HEADER) != 0)
        return FRAME_IO;
    size_t avail = r->have - r->at;
    if (avail == 0)
        return FRAME_END;
    if (avail < FRAME_HEADER)
        return FRAME_BAD; /* torn header */
    f->len = get_le32(r->buf + r->at);
    f->crc = get_le32(r->buf + r->at + 4);
    /* Length 0 is never written: a run of zero bytes (a hole left by a lost
     * write) would otherwise read as valid empty records. */
    if (f->len == 0 || f->len > MAX_RECORD)
        return FRAME_BAD;
    if (reader_fill(r, FRAME_HEADER + f->len) != 0)
        return FRAME_IO;
    if (r->have - r->at < FRAME_HEADER + f->len)
        return FRAME_BAD; /* torn body */
    f->data = r->buf + r->at + FRAME_HEADER;
    if (crc32_of(f->data, f->len) != f->crc)
        return FRAME_BAD;
    r->at += FRAME_HEADER + f->len;
    return FRAME_OK;
}

static uint64_t frame_end(const frame *f)
{
    return f->off + FRAME_HEADER + f->len;
}

/* ---- cursor file ---- */

/* The saved cursor, or offset 0 if there is none or it cannot be parsed. */
static void cursor_load(const char *cursor_path, uint64_t *offset, uint32_t *crc)
{
    char line[128];
    unsigned version = 0;
    uint64_t o = 0;
    uint32_t c = 0;
    *offset = 0;
    *crc = 0;
    FILE *f = fopen(cursor_path, "re");
    if (f == NULL)
        return;
    if (fgets(line, sizeof line, f) != NULL &&
        sscanf(line, "naq-spool-cursor %u %" SCNu64 " %" SCNx32, &version, &o, &c) == 3 &&
        version == NAQ__SPOOL_FORMAT) {
        *offset = o;
        *crc = c;
    }
    fclose(f);
}

/* Replace the cursor file atomically (temp file + rename). Not fsynced: the
 * worst a power loss can do is bring back an older cursor, which re-sends. */
static naq_status cursor_save(naq__spool *s, uint64_t offset, uint32_t crc)
{
    char line[128];
    int len = snprintf(line, sizeof line, "naq-spool-cursor %d %" PRIu64 " %08" PRIx32 "\n",
                       NAQ__SPOOL_FORMAT, offset, crc);
    int fd = open(s->cursor_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return naq__fail(NAQ_ERR_IO, "spool: cannot write %s: %s", s->cursor_tmp, strerror(errno));
    ssize_t w;
    do
        w = write(fd, line, (size_t)len);
    while (w < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (w != len) {
        unlink(s->cursor_tmp);
        return naq__fail(NAQ_ERR_IO, "spool: cannot write %s: %s", s->cursor_tmp,
                         w < 0 ? strerror(saved) : "short write");
    }
    if (rename(s->cursor_tmp, s->cursor_path) != 0)
        return naq__fail(NAQ_ERR_IO, "spool: cannot rename %s: %s", s->cursor_tmp, strerror(errno));
    return NAQ_OK;
}

/* ---- scanning a whole file (open and pending_path) ---- */

typedef struct {
    uint64_t valid_end; /* end of the last whole, valid frame */
    uint64_t cursor;    /* the saved cursor if it belongs to the file, else 0 */
    uint32_t cursor_crc;
    size_t pending; /* frames in [cursor, valid_end) */
} scan_result;

/* Walk every frame of fd up to size, checking the saved cursor against the
 * frame boundaries: it is trusted only if a frame ends exactly there and
 * carries the saved crc. */
static naq_status scan(int fd, uint64_t size, uint64_t saved, uint32_t saved_crc, const char *path,
                       scan_result *out)
{
    reader r;
    frame f;
    size_t total = 0, before_cursor = 0;
    int matched = saved == 0, rc;

    reader_init(&r, fd, 0, size);
    while ((rc = reader_next(&r, &f)) == FRAME_OK) {
        total++;
        if (!matched && frame_end(&f) == saved && f.crc == saved_crc) {
            matched = 1;
            before_cursor = total;
        }
    }
    reader_free(&r);
    if (rc == FRAME_IO)
        return naq__fail(NAQ_ERR_IO, "spool: cannot read %s: %s", path, strerror(errno));
    out->valid_end = f.off; /* where the walk stopped: END or the first bad frame */
    out->cursor = matched ? saved : 0;
    out->cursor_crc = matched ? saved_crc : 0;
    out->pending = total - (matched ? before_cursor : 0);
    return NAQ_OK;
}

/* ---- open / close ---- */

/* mkdir -p of the directory part of path. */
static naq_status make_parent_dirs(const char *path)
{
    char *p = strdup(path);
    if (p == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "spool: out of memory");
    char *slash = strrchr(p, '/');
    naq_status st = NAQ_OK;
    if (slash != NULL && slash != p) {
        *slash = '\0';
        for (char *c = p + 1; st == NAQ_OK; c++) {
            if (*c != '/' && *c != '\0')
                continue;
            char saved = *c;
            *c = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                st = naq__fail(NAQ_ERR_IO, "spool: cannot create directory %s: %s", p,
                               strerror(errno));
            *c = saved;
            if (saved == '\0')
                break;
        }
    }
    free(p);
    return st;
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s != NULL) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

naq_status naq__spool_open(const char *path, size_t max_bytes, naq__spool **out)
{
    naq_status st;
    naq__spool *s = NULL;
    struct stat sb;
    scan_result sr;
    uint64_t saved;
    uint32_t saved_crc;

    if (out == NULL || path == NULL || path[0] == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG, "spool_open: empty path or NULL out");
    *out = NULL;
    if ((st = make_parent_dirs(path)) != NAQ_OK)
        return st;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "spool_open: out of memory");
    s->fd = -1;
    s->max_bytes = max_bytes;
    s->path = strdup(path);
    s->cursor_path = concat(path, ".cursor");
    s->cursor_tmp = concat(path, ".cursor.tmp");
    if (s->path == NULL || s->cursor_path == NULL || s->cursor_tmp == NULL) {
        st = naq__fail(NAQ_ERR_NO_MEMORY, "spool_open: out of memory");
        goto fail;
    }
    /* O_APPEND: every frame lands at the end of the file in one writev. */
    s->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->fd < 0 || fstat(s->fd, &sb) != 0) {
        st = naq__fail(NAQ_ERR_IO, "spool: cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    cursor_load(s->cursor_path, &saved, &saved_crc);
    if ((st = scan(s->fd, (uint64_t)sb.st_size, saved, saved_crc, path, &sr)) != NAQ_OK)
        goto fail;
    /* Cut off a torn or damaged tail so appends follow the last good frame. */
    if (sr.valid_end < (uint64_t)sb.st_size && ftruncate(s->fd, (off_t)sr.valid_end) != 0) {
        st = naq__fail(NAQ_ERR_IO, "spool: cannot truncate %s: %s", path, strerror(errno));
        goto fail;
    }
    s->end = sr.valid_end;
    s->cursor = sr.cursor;
    s->cursor_crc = sr.cursor_crc;
    s->pending = sr.pending;
    /* Everything was consumed before a crash or close: reclaim the space
     * (cursor first, see consume_to). Failing here only wastes disk. */
    if (s->pending == 0 && s->end > 0 && cursor_save(s, 0, 0) == NAQ_OK &&
        ftruncate(s->fd, 0) == 0) {
        s->end = s->cursor = 0;
        s->cursor_crc = 0;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        st = naq__fail(NAQ_ERR_NO_MEMORY, "spool_open: cannot initialise mutex");
        goto fail;
    }
    if (pthread_mutex_init(&s->read_mu, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        st = naq__fail(NAQ_ERR_NO_MEMORY, "spool_open: cannot initialise mutex");
        goto fail;
    }
    *out = s;
    return NAQ_OK;

fail:
    if (s->fd >= 0)
        close(s->fd);
    free(s->cursor_tmp);
    free(s->cursor_path);
    free(s->path);
    free(s);
    return st;
}

void naq__spool_close(naq__spool *s)
{
    if (s == NULL)
        return;
    close(s->fd);
    pthread_mutex_destroy(&s->read_mu);
    pthread_mutex_destroy(&s->mu);
    free(s->cursor_tmp);
    free(s->cursor_path);
    free(s->path);
    free(s);
}

/* ---- append ---- */

naq_status naq__spool_append(naq__spool *s, const void *data, size_t len)
{
    if (s == NULL || data == NULL || len == 0 || len > MAX_RECORD)
        return naq__fail(NAQ_ERR_INVALID_ARG, "spool_append: record must be 1..%u bytes",
                         MAX_RECORD);
    unsigned char hdr[FRAME_HEADER];
    put_le32(hdr, (uint32_t)len);
    put_le32(hdr + 4, crc32_of(data, len)); /* computed before taking the lock */
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, len}};
    size_t frame_len = FRAME_HEADER + len;
    naq_status st = NAQ_OK;

    pthread_mutex_lock(&s->mu);
    if (s->broken) {
        st = naq__fail(NAQ_ERR_IO,
                       "spool %s: an earlier failed write could not be undone; "
                       "reopen the spool to repair it",
                       s->path);
        goto out;
    }
    if (s->max_bytes > 0 && s->end + frame_len > s->max_bytes) {
        st = naq__fail(NAQ_ERR_FULL, "spool %s is full (%zu byte limit)", s->path, s->max_bytes);
        goto out;
    }
    ssize_t w;
    do
        w = writev(s->fd, iov, 2);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)frame_len) {
        const char *why = w < 0 ? strerror(errno) : "short write (disk full?)";
        /* Roll back a partial frame: a torn frame in the middle of the file
         * would hide every record after it. If even that fails, refuse
         * further appends; reopening cuts the torn tail off. */
        if (w > 0 && ftruncate(s->fd, (off_t)s->end) != 0)
            s->broken = 1;
        st = naq__fail(NAQ_ERR_IO, "spool: cannot append to %s: %s", s->path, why);
        goto out;
    }
    s->end += frame_len;
    s->pending++;
out:
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- reading: peek, consume, drain (callers hold read_mu) ---- */

typedef struct {
    size_t accepted; /* records fn accepted, in order from the cursor */
    uint64_t after;  /* offset just past the last accepted record */
    uint32_t crc;    /* crc of the last accepted record */
} walk_result;

/* A damaged frame at off: cut it and everything after it off the file.
 * Appends made since the reader's snapshot are lost with it; there is no
 * way to find frame boundaries past a damaged length. */
static naq_status cut_at(naq__spool *s, uint64_t off, size_t frames_before)
{
    pthread_mutex_lock(&s->mu);
    uint64_t lost = s->end - off;
    size_t lost_records = s->pending - frames_before;
    if (ftruncate(s->fd, (off_t)off) == 0) {
        s->end = off;
        s->pending = frames_before;
    }
    pthread_mutex_unlock(&s->mu);
    return naq__fail(NAQ_ERR_CODEC,
                     "spool %s: damaged record at offset %" PRIu64 "; cut off %" PRIu64
                     " bytes (about %zu records)",
                     s->path, off, lost, lost_records);
}

/* Call fn (if any) on at most max frames of [cursor, end), as they were
 * when called, until fn refuses one. Nothing is consumed here. */
static naq_status walk(naq__spool *s, naq__spool_fn fn, void *ud, size_t max, walk_result *res)
{
    reader r;
    frame f;
    int rc = FRAME_END;
    naq_status st = NAQ_OK;

    pthread_mutex_lock(&s->mu);
    uint64_t start = s->cursor, limit = s->end;
    uint32_t crc = s->cursor_crc;
    pthread_mutex_unlock(&s->mu);

    *res = (walk_result){0, start, crc};
    reader_init(&r, s->fd, start, limit);
    while (res->accepted < max) {
        if ((rc = reader_next(&r, &f)) != FRAME_OK)
            break;
        if (fn != NULL && fn(f.data, f.len, ud) != 0)
            break;
        res->accepted++;
        res->after = frame_end(&f);
        res->crc = f.crc;
    }
    if (rc == FRAME_IO)
        st = naq__fail(NAQ_ERR_IO, "spool: cannot read %s: %s", s->path, strerror(errno));
    else if (rc == FRAME_BAD)
        st = cut_at(s, f.off, res->accepted);
    reader_free(&r);
    return st;
}

/* Move the cursor past n records ending at `after`, and persist it. */
static naq_status consume_to(naq__spool *s, size_t n, uint64_t after, uint32_t crc)
{
    if (n == 0)
        return NAQ_OK;
    pthread_mutex_lock(&s->mu);
    s->cursor = after;
    s->cursor_crc = crc;
    s->pending -= n;
    /* All consumed: reclaim the disk. The cursor is reset on disk BEFORE the
     * truncation; a crash in between re-sends old records, whereas the other
     * order could leave an old cursor pointing into records appended later.
     * Done under mu so no append slips in between. */
    if (s->cursor == s->end && cursor_save(s, 0, 0) == NAQ_OK) {
        if (ftruncate(s->fd, 0) == 0) {
            s->end = s->cursor = 0;
            s->cursor_crc = 0;
            pthread_mutex_unlock(&s->mu);
            return NAQ_OK;
        }
        /* Could not reclaim: fall through and save the real cursor; the
         * next full drain tries again. */
    }
    pthread_mutex_unlock(&s->mu);
    /* Only the reader moves the cursor, and read_mu is held, so saving
     * outside mu cannot race with another save. */
    return cursor_save(s, after, crc);
}

naq_status naq__spool_drain(naq__spool *s, naq__spool_fn fn, void *ud, size_t *consumed)
{
    walk_result w;
    if (consumed != NULL)
        *consumed = 0;
    if (s == NULL || fn == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "spool_drain: NULL spool or callback");
    pthread_mutex_lock(&s->read_mu);
    naq_status st = walk(s, fn, ud, SIZE_MAX, &w);
    /* Records accepted before a damaged one are consumed all the same. */
    naq_status cst = consume_to(s, w.accepted, w.after, w.crc);
    pthread_mutex_unlock(&s->read_mu);
    if (consumed != NULL)
        *consumed = w.accepted;
    return st != NAQ_OK ? st : cst;
}

naq_status naq__spool_peek(naq__spool *s, naq__spool_fn fn, void *ud)
{
    walk_result w;
    if (s == NULL || fn == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "spool_peek: NULL spool or callback");
    pthread_mutex_lock(&s->read_mu);
    naq_status st = walk(s, fn, ud, SIZE_MAX, &w);
    pthread_mutex_unlock(&s->read_mu);
    return st;
}

naq_status naq__spool_consume(naq__spool *s, size_t n)
{
    walk_result w;
    if (s == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "spool_consume: NULL spool");
    pthread_mutex_lock(&s->read_mu);
    /* The frames were just read by peek, so this walk is served from the
     * page cache; it finds the offset where the n-th record ends. */
    naq_status st = walk(s, NULL, NULL, n, &w);
    if (st == NAQ_OK && w.accepted < n)
        st = naq__fail(NAQ_ERR_INVALID_ARG, "spool_consume: %zu records asked, %zu pending", n,
                       w.accepted);
    else if (st == NAQ_OK)
        st = consume_to(s, w.accepted, w.after, w.crc);
    pthread_mutex_unlock(&s->read_mu);
    return st;
}

size_t naq__spool_pending(naq__spool *s)
{
    if (s == NULL)
        return 0;
    pthread_mutex_lock(&s->mu);
    size_t n = s->pending;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- by path ---- */

size_t naq__spool_pending_path(const char *path)
{
    struct stat sb;
    scan_result sr;
    uint64_t saved;
    uint32_t saved_crc;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : (size_t)-1;
    char *cursor_path = concat(path, ".cursor");
    size_t n = (size_t)-1;
    if (cursor_path != NULL && fstat(fd, &sb) == 0) {
        cursor_load(cursor_path, &saved, &saved_crc);
        if (scan(fd, (uint64_t)sb.st_size, saved, saved_crc, path, &sr) == NAQ_OK)
            n = sr.pending;
    }
    free(cursor_path);
    close(fd);
    return n;
}

naq_status naq__spool_remove(const char *path)
{
    static const char *const suffixes[] = {"", ".cursor", ".cursor.tmp"};
    naq_status st = NAQ_OK;
    if (path == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "spool_remove: NULL path");
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char *p = concat(path, suffixes[i]);
        if (p == NULL)
            return naq__fail(NAQ_ERR_NO_MEMORY, "spool_remove: out of memory");
        if (unlink(p) != 0 && errno != ENOENT && st == NAQ_OK)
            st = naq__fail(NAQ_ERR_IO, "spool: cannot remove %s: %s", p, strerror(errno));
        free(p);
    }
    return st;
}
