/*
 * backup.c - `naq backup` and `naq restore`: every naq stream and KV
 * bucket to a directory and back, through JetStream's snapshot API.
 *
 * Why the snapshot API and not reading the messages: a snapshot carries
 * what a reader cannot rebuild - the stream's sequences (a job's history
 * and KV revisions are sequences), its configuration and its durable
 * consumers with their positions and pending acks, so a restored job
 * queue hands out exactly the jobs that were pending. nats.c 3.4.1 has no
 * wrapper for it, so this module speaks the flow nats-server 2.9.10 uses
 * (server/jetstream_api.go, jsStreamSnapshotRequest, streamSnapshot,
 * processStreamRestore):
 *
 *  - Snapshot: a request to $JS.API.STREAM.SNAPSHOT.<stream> with
 *    {"deliver_subject", "chunk_size"} answers {"config", "state"}; then
 *    the server sends the snapshot (an s2-compressed tar) to the deliver
 *    subject in chunks. Each chunk's reply subject ends in
 *    ".<size>.<index>" and wants an empty message back: that is the flow
 *    control (the server keeps at most 8 MiB unacknowledged, and after
 *    10 ms without an ack sends on anyway, so a slow reader could lose
 *    chunks - hence the unlimited pending limits, the index check and the
 *    dropped-message check). An empty message ends it.
 *  - Restore: a request to $JS.API.STREAM.RESTORE.<stream> with the same
 *    {"config", "state"} answers {"deliver_subject"}; each chunk sent
 *    there as a request is acknowledged with an empty reply ("-ERR ..." on
 *    failure); an empty request ends it and is answered with the new
 *    stream's info or an error. The server refuses a stream that exists,
 *    and gives up on a restore that is quiet for 5 s.
 *
 * A backup directory holds, per stream, <stream>.stream.json (the
 * {"config", "state"} the snapshot answered, which is also the restore
 * request) and <stream>.tar.s2 (the snapshot), and manifest.json, written
 * last, listing both files with their size and SHA-256. Restore verifies
 * every file before it sends anything.
 */
#include "internal.h"

#include "naq/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The manifest's format. When the layout of a backup changes:
 *  1. bump NAQ_BACKUP_FORMAT (naq/backup.h) and describe the change here;
 *  2. keep reading every older format in load_manifest (a backup outlives
 *     the naq that wrote it), or refuse it with a message naming the naq
 *     version that reads it;
 *  3. update the layout in docs/deployment.md.
 * Format 1: manifest.json {"format", "created_at", "naq_version",
 * "streams": [{"name", "side", "messages", "bytes", "first_seq",
 * "last_seq", "consumers", "snapshot": {"file", "size", "sha256"},
 * "config": {...same}}]}. */
#define MANIFEST "manifest.json"
#define DEFAULT_CHUNK (128 * 1024)
#define DEFAULT_TIMEOUT_MS 60000
/* NAQ_VERSION, recorded in the manifest, comes from CMakeLists.txt. */

/* A stream name becomes a file name: nothing that leaves the directory. */
#define NAME_CHARS_BAD "/\\"

void naq_backup_opts_init(naq_backup_opts *o)
{
    memset(o, 0, sizeof *o);
    o->chunk_size = DEFAULT_CHUNK;
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
}

/* The caller's options (NULL: the defaults), with a zero chunk size or a
 * timeout <= 0 read as the default. */
static naq_backup_opts opts_or_defaults(const naq_backup_opts *opts)
{
    naq_backup_opts o;
    naq_backup_opts_init(&o);
    if (opts != NULL)
        o = *opts;
    if (o.chunk_size == 0)
        o.chunk_size = DEFAULT_CHUNK;
    if (o.timeout_ms <= 0)
        o.timeout_ms = DEFAULT_TIMEOUT_MS;
    return o;
}

/* ---------------------------------------------------------------- connections */

/* The job server and the event server; events == jobs (same pointers)
 * when they are one server. */
typedef struct {
    natsConnection *nc[2];
    jsCtx *js[2];
    const char *url[2];
} servers;

enum { SIDE_JOBS, SIDE_EVENTS };
static const char *const side_names[] = {"jobs", "events"};

static int two_servers(const naq_config *cfg)
{
    return cfg->event_url[0] != '\0' && strcmp(cfg->event_url, cfg->url) != 0;
}

static void servers_close(servers *sv)
{
    for (int i = 1; i >= 0; i--) {
        if (i == SIDE_EVENTS && sv->nc[1] == sv->nc[0])
            continue;
        jsCtx_Destroy(sv->js[i]);
        natsConnection_Destroy(sv->nc[i]);
    }
    memset(sv, 0, sizeof *sv);
}

static naq_status servers_open(const naq_config *cfg, servers *sv)
{
    memset(sv, 0, sizeof *sv);
    naq_status s = naq__connect_bare(cfg, 0, &sv->nc[0], &sv->js[0]);
    if (s != NAQ_OK)
        return s;
    sv->url[0] = sv->url[1] = cfg->url;
    if (!two_servers(cfg)) {
        sv->nc[1] = sv->nc[0];
        sv->js[1] = sv->js[0];
        return NAQ_OK;
    }
    sv->url[1] = cfg->event_url;
    if ((s = naq__connect_bare(cfg, 1, &sv->nc[1], &sv->js[1])) != NAQ_OK) {
        sv->nc[1] = NULL; /* servers_close must not take nc[0] for it */
        servers_close(sv);
    }
    return s;
}

/* ---------------------------------------------------------------- SHA-256 */

static void hex(const unsigned char *d, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The hex digest of what ctx has seen, into out (65 bytes). */
static void sha_finish(EVP_MD_CTX *ctx, char out[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx, d, &n);
    hex(d, n, out);
}

/* ---------------------------------------------------------------- files */

static void path_of(char *buf, size_t cap, const char *dir, const char *name, const char *ext)
{
    snprintf(buf, cap, "%s/%s%s", dir, name, ext);
}

/* Opens a new file for writing, readable by its owner only (a backup holds
 * every job's arguments). Fails if it exists. */
static naq_status create_file(const char *path, FILE **out)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || (*out = fdopen(fd, "wb")) == NULL) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return naq__fail(NAQ_ERR_IO, "cannot create %s: %s", path, strerror(e));
    }
    return NAQ_OK;
}

/* Flushes to the disk and closes: a backup the disk has not taken is no
 * backup. */
static naq_status close_file(FILE *f, const char *path)
{
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    if (bad)
        return naq__fail(NAQ_ERR_IO, "cannot write %s: %s", path, strerror(e));
    return NAQ_OK;
}

/* dir is created, or must be an empty directory. */
static naq_status prepare_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0)
        return NAQ_OK;
    if (errno != EEXIST)
        return naq__fail(NAQ_ERR_IO, "cannot create the backup directory %s: %s", dir,
                         strerror(errno));
    DIR *d = opendir(dir);
    if (d == NULL)
        return naq__fail(NAQ_ERR_IO, "%s exists and cannot be read as a directory: %s", dir,
                         strerror(errno));
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    if (!empty)
        return naq__fail(NAQ_ERR_EXISTS,
                         "the backup directory %s is not empty; give a new or empty directory "
                         "(a backup never overwrites files)",
                         dir);
    return NAQ_OK;
}

/* Writes data to dir/name+ext and describes it as {"file", "size",
 * "sha256"} (a new reference, *desc). */
static naq_status write_small_file(const char *dir, const char *name, const char *ext,
                                   const char *data, size_t len, json_t **desc)
{
    char path[NAQ_URL_MAX * 2];
    path_of(path, sizeof path, dir, name, ext);
    FILE *f = NULL;
    naq_status s = create_file(path, &f);
    if (s != NAQ_OK)
        return s;
    size_t put = fwrite(data, 1, len, f);
    if ((s = close_file(f, path)) != NAQ_OK)
        return s;
    if (put != len)
        return naq__fail(NAQ_ERR_IO, "cannot write %s: disk full?", path);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    char sum[65];
    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    hex(d, n, sum);
    char file[NAQ_NAME_MAX + 16];
    snprintf(file, sizeof file, "%s%s", name, ext);
    *desc = json_pack("{s:s, s:I, s:s}", "file", file, "size", (json_int_t)len, "sha256", sum);
    return *desc != NULL ? NAQ_OK : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory");
}

/* ---------------------------------------------------------------- the API's answers */

/* NAQ_OK, or the JetStream API error in resp (an "error" member). */
static naq_status api_error(const json_t *resp, const char *what)
{
    json_t *err = json_object_get(resp, "error");
    if (err == NULL)
        return NAQ_OK;
    const char *d = json_string_value(json_object_get(err, "description"));
    return naq__fail(NAQ_ERR_NATS, "%s: the server says %s (JetStream error %lld)", what,
                     d ? d : "nothing",
                     (long long)json_integer_value(json_object_get(err, "err_code")));
}

/* Sends a JetStream API request and parses its JSON answer (*out: a new
 * reference, json_decref it). */
static naq_status api_request(natsConnection *nc, const char *subject, const char *body,
                              int64_t timeout_ms, const char *what, json_t **out)
{
    natsMsg *reply = NULL;
    natsStatus ns =
        natsConnection_Request(&reply, nc, subject, body, (int)strlen(body), timeout_ms);
    if (ns == NATS_NO_RESPONDERS || ns == NATS_TIMEOUT)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0,
                              "%s: the server does not answer JetStream requests (is JetStream "
                              "enabled, and may this user use $JS.API?)",
                              what);
    if (ns != NATS_OK)
        return naq__fail_nats(NAQ_ERR_NATS, ns, 0, "%s", what);
    *out = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    natsMsg_Destroy(reply);
    if (*out == NULL)
        return naq__fail(NAQ_ERR_CODEC, "%s: the server's answer is not JSON", what);
    naq_status s = api_error(*out, what);
    if (s != NAQ_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return s;
}

/* ---------------------------------------------------------------- listing */

typedef struct {
    char name[NAQ_NAME_MAX + 8];
    int side;
} stream_ref;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const stream_ref *)a)->name, ((const stream_ref *)b)->name);
}

/* naq's streams on one server, appended to *v (heap, free()). */
static naq_status list_side(const naq_config *cfg, jsCtx *js, int side, const char *url,
                            stream_ref **v, size_t *n)
{
    jsStreamNamesList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_StreamNames(&list, js, NULL, &jerr);
    if (ns == NATS_NOT_FOUND)
        return NAQ_OK;
    if (ns != NATS_OK) {
        char shown[NAQ_URL_MAX];
        return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr, "cannot list the streams on %s",
                              naq_url_redact(url, shown, sizeof shown));
    }
    naq_status s = NAQ_OK;
    for (int i = 0; s == NAQ_OK && i < list->Count; i++) {
        if (!naq__stream_is_ours(cfg, list->List[i]))
            continue;
        stream_ref *grown = realloc(*v, (*n + 1) * sizeof **v);
        if (grown == NULL) {
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory listing streams");
            break;
        }
        *v = grown;
        snprintf(grown[*n].name, sizeof grown[*n].name, "%s", list->List[i]);
        grown[(*n)++].side = side;
    }
    jsStreamNamesList_Destroy(list);
    return s;
}

/* ---------------------------------------------------------------- backup */

typedef struct {
    const naq_backup_opts *o;
    naq_backup_progress p;
} reporter;

static void report(reporter *r)
{
    if (r->o->progress != NULL)
        r->o->progress(&r->p, r->o->progress_user);
}

/* The chunk's place in the snapshot, from its reply subject
 * "$JS.SNAPSHOT.ACK.<stream>.<id>.<size>.<index>"; 0 when it has none. */
static long chunk_index(const char *reply, long *size)
{
    const char *last = reply != NULL ? strrchr(reply, '.') : NULL;
    if (last == NULL)
        return 0;
    const char *prev = last - 1;
    while (prev > reply && *prev != '.')
        prev--;
    *size = strtol(prev + 1, NULL, 10);
    return strtol(last + 1, NULL, 10);
}

/* Receives the snapshot's chunks from sub into f until the empty message
 * that ends it, acknowledging each; *size gets its length, sha its digest. */
static naq_status receive_chunks(natsConnection *nc, natsSubscription *sub, FILE *f,
                                 EVP_MD_CTX *sha, reporter *r, const char *path)
{
    long expect = 1;
    for (;;) {
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, sub, r->o->timeout_ms);
        if (ns != NATS_OK)
            return naq__fail_nats(NAQ_ERR_TIMEOUT, ns, 0,
                                  "the snapshot of stream %s stopped after %llu bytes", r->p.stream,
                                  (unsigned long long)r->p.bytes);
        int len = natsMsg_GetDataLength(m);
        const char *reply = natsMsg_GetReply(m);
        long size = 0, index = chunk_index(reply, &size);
        if (len == 0) { /* the end */
            natsMsg_Destroy(m);
            return NAQ_OK;
        }
        naq_status s = NAQ_OK;
        if (index != 0 && (index != expect || size != len))
            s = naq__fail(NAQ_ERR_NATS,
                          "the snapshot of stream %s lost a chunk (got chunk %ld of %ld bytes, "
                          "expected chunk %ld of %d): take the backup again",
                          r->p.stream, index, size, expect, len);
        else if (fwrite(natsMsg_GetData(m), 1, (size_t)len, f) != (size_t)len)
            s = naq__fail(NAQ_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        if (s == NAQ_OK && reply != NULL)
            natsConnection_Publish(nc, reply, NULL, 0); /* the ack: lost, it only slows */
        EVP_DigestUpdate(sha, natsMsg_GetData(m), (size_t)len);
        natsMsg_Destroy(m);
        if (s != NAQ_OK)
            return s;
        expect += index != 0;
        r->p.bytes += (uint64_t)len;
        report(r);
    }
}

/* Asks for the snapshot of r->p.stream with deliver subject inbox; saves
 * the answer as <stream>.stream.json (*config: its description) and
 * returns the answer (*answer, json_decref it). */
static naq_status start_snapshot(natsConnection *nc, const char *dir, const char *inbox,
                                 reporter *r, json_t **answer, json_t **config)
{
    char subject[NAQ_NAME_MAX + 64], what[NAQ_NAME_MAX + 64];
    snprintf(subject, sizeof subject, "$JS.API.STREAM.SNAPSHOT.%s", r->p.stream);
    snprintf(what, sizeof what, "cannot snapshot stream %s", r->p.stream);
    json_t *req = json_pack("{s:s, s:I, s:b}", "deliver_subject", inbox, "chunk_size",
                            (json_int_t)r->o->chunk_size, "jsck", 0);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory");
    naq_status s = api_request(nc, subject, body, r->o->timeout_ms, what, answer);
    free(body);
    if (s != NAQ_OK)
        return s;
    /* The restore request is {"config", "state"}: keep exactly that. */
    json_t *keep = json_pack("{s:O, s:O}", "config", json_object_get(*answer, "config"), "state",
                             json_object_get(*answer, "state"));
    char *text = keep ? json_dumps(keep, JSON_INDENT(2)) : NULL;
    json_decref(keep);
    if (text == NULL)
        s = naq__fail(NAQ_ERR_CODEC, "%s: the server's answer has no config and state", what);
    else
        s = write_small_file(dir, r->p.stream, ".stream.json", text, strlen(text), config);
    free(text);
    return s;
}

/* The manifest entry of a saved stream (a new reference). */
static json_t *stream_entry(const stream_ref *ref, const json_t *answer, json_t *snapshot,
                            json_t *config)
{
    const json_t *st = json_object_get(answer, "state");
    return json_pack("{s:s, s:s, s:O?, s:O?, s:O?, s:O?, s:O?, s:o, s:o}", "name", ref->name,
                     "side", side_names[ref->side], "messages", json_object_get(st, "messages"),
                     "bytes", json_object_get(st, "bytes"), "first_seq",
                     json_object_get(st, "first_seq"), "last_seq", json_object_get(st, "last_seq"),
                     "consumers", json_object_get(st, "consumer_count"), "snapshot", snapshot,
                     "config", config);
}

/* Saves one stream into dir and appends its entry to streams. */
static naq_status save_stream(natsConnection *nc, const char *dir, const stream_ref *ref,
                              reporter *r, json_t *streams, naq_backup_summary *sum)
{
    char inbox_buf[128], path[NAQ_URL_MAX * 2];
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    json_t *answer = NULL, *config = NULL;
    FILE *f = NULL;
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    naq_status s = NAQ_OK;
    r->p.stream = ref->name;
    r->p.bytes = r->p.total = 0;
    r->p.done = 0;
    path_of(path, sizeof path, dir, ref->name, ".tar.s2");
    /* The subscription exists before the request: the server sends the
     * first chunk as soon as it answers. Unlimited pending: a chunk
     * dropped as a slow consumer would be a hole in the snapshot. */
    natsStatus ns = natsInbox_Create(&inbox);
    if (ns == NATS_OK)
        ns = natsConnection_SubscribeSync(&sub, nc, inbox);
    if (ns == NATS_OK)
        ns = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (ns != NATS_OK || sha == NULL || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
        s = naq__fail_nats(NAQ_ERR_NATS, ns, 0, "cannot subscribe for the snapshot of %s",
                           ref->name);
        goto out;
    }
    snprintf(inbox_buf, sizeof inbox_buf, "%s", inbox);
    if ((s = start_snapshot(nc, dir, inbox_buf, r, &answer, &config)) != NAQ_OK ||
        (s = create_file(path, &f)) != NAQ_OK)
        goto out;
    s = receive_chunks(nc, sub, f, sha, r, path);
    naq_status cs = close_file(f, path);
    if (s == NAQ_OK)
        s = cs;
    int64_t dropped = 0;
    if (s == NAQ_OK && natsSubscription_GetDropped(sub, &dropped) == NATS_OK && dropped > 0)
        s = naq__fail(NAQ_ERR_NATS, "the snapshot of %s lost %lld chunks; take the backup again",
                      ref->name, (long long)dropped);
    if (s != NAQ_OK)
        goto out;
    char sum_hex[65];
    sha_finish(sha, sum_hex);
    char file[NAQ_NAME_MAX + 16];
    snprintf(file, sizeof file, "%s.tar.s2", ref->name);
    json_t *snap = json_pack("{s:s, s:I, s:s}", "file", file, "size", (json_int_t)r->p.bytes,
                             "sha256", sum_hex);
    json_t *entry = stream_entry(ref, answer, snap, config);
    config = NULL; /* the entry owns it (or json_pack freed it) */
    if (entry == NULL || json_array_append_new(streams, entry) != 0) {
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    const json_t *st = json_object_get(answer, "state");
    sum->streams++;
    sum->messages += (uint64_t)json_integer_value(json_object_get(st, "messages"));
    sum->bytes += (uint64_t)json_integer_value(json_object_get(st, "bytes"));
    sum->consumers += (size_t)json_integer_value(json_object_get(st, "consumer_count"));
    sum->file_bytes += r->p.bytes;
    r->p.total = r->p.bytes;
    r->p.done = 1;
    report(r);
out:
    json_decref(config);
    json_decref(answer);
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(inbox);
    EVP_MD_CTX_free(sha);
    return s;
}

/* Writes manifest.json through a temporary file and a rename: a manifest
 * is there whole or not at all. */
static naq_status write_manifest(const char *dir, json_t *streams)
{
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    json_t *m = json_pack("{s:i, s:s, s:s, s:O}", "format", NAQ_BACKUP_FORMAT, "created_at", now,
                          "naq_version", NAQ_VERSION, "streams", streams);
    char *text = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
    json_decref(m);
    if (text == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory writing the manifest");
    char tmp[NAQ_URL_MAX * 2], path[NAQ_URL_MAX * 2];
    path_of(tmp, sizeof tmp, dir, MANIFEST, ".tmp");
    path_of(path, sizeof path, dir, MANIFEST, "");
    FILE *f = NULL;
    naq_status s = create_file(tmp, &f);
    if (s == NAQ_OK) {
        size_t len = strlen(text);
        int short_write = fwrite(text, 1, len, f) != len;
        s = close_file(f, tmp);
        if (s == NAQ_OK && short_write)
            s = naq__fail(NAQ_ERR_IO, "cannot write %s: disk full?", tmp);
        if (s == NAQ_OK && rename(tmp, path) != 0)
            s = naq__fail(NAQ_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    free(text);
    return s;
}

naq_status naq_backup_write(const naq_config *cfg, const char *dir, const naq_backup_opts *opts,
                            naq_backup_summary *summary)
{
    naq_backup_opts o = opts_or_defaults(opts);
    naq_backup_summary sum = {0};
    servers sv;
    stream_ref *refs = NULL;
    size_t n = 0;
    json_t *streams = json_array();
    naq_status s = servers_open(cfg, &sv);
    if (s != NAQ_OK) {
        json_decref(streams);
        return s;
    }
    for (int side = 0; s == NAQ_OK && side < (two_servers(cfg) ? 2 : 1); side++)
        s = list_side(cfg, sv.js[side], side, sv.url[side], &refs, &n);
    if (s == NAQ_OK && n == 0) {
        char shown[NAQ_URL_MAX];
        s = naq__fail(NAQ_ERR_NOT_FOUND,
                      "no naq stream on %s (prefix %s, job stream %s): nothing to back up; check "
                      "NAQ_URL and the stream names",
                      naq_url_redact(cfg->url, shown, sizeof shown), cfg->subject_prefix,
                      cfg->job_stream);
    }
    if (s == NAQ_OK)
        s = prepare_dir(dir);
    if (s == NAQ_OK)
        qsort(refs, n, sizeof *refs, by_name);
    reporter r = {.o = &o, .p = {.phase = NAQ_BACKUP_SAVING, .count = n}};
    for (size_t i = 0; s == NAQ_OK && i < n; i++) {
        r.p.index = i + 1;
        s = save_stream(sv.nc[refs[i].side], dir, &refs[i], &r, streams, &sum);
    }
    if (s == NAQ_OK)
        s = write_manifest(dir, streams);
    if (s == NAQ_OK && summary != NULL)
        *summary = sum;
    json_decref(streams);
    free(refs);
    servers_close(&sv);
    return s;
}

/* ---------------------------------------------------------------- verify */

/* A stream name from a manifest (outside input) that is safe as a file
 * name and as a subject token. */
static naq_status check_name(const char *dir, const char *name)
{
    if (name == NULL || name[0] == '\0' || strpbrk(name, NAME_CHARS_BAD) != NULL ||
        naq_id_validate("stream name", name) != NAQ_OK || strlen(name) >= NAQ_NAME_MAX)
        return naq__fail(NAQ_ERR_CODEC, "%s/%s lists a stream with a bad name ('%s')", dir,
                         MANIFEST, name ? name : "");
    return NAQ_OK;
}

/* Reads the manifest in dir (*out: a new reference). */
static naq_status load_manifest(const char *dir, json_t **out)
{
    char path[NAQ_URL_MAX * 2];
    path_of(path, sizeof path, dir, MANIFEST, "");
    json_error_t je;
    *out = json_load_file(path, 0, &je);
    if (*out == NULL) {
        if (access(path, F_OK) != 0)
            return naq__fail(NAQ_ERR_IO,
                             "%s has no %s: it is not a naq backup, or the backup was "
                             "interrupted (the manifest is written last)",
                             dir, MANIFEST);
        return naq__fail(NAQ_ERR_CODEC, "%s is damaged: %s (line %d)", path, je.text, je.line);
    }
    json_t *m = *out;
    json_int_t format = json_integer_value(json_object_get(m, "format"));
    json_t *streams = json_object_get(m, "streams");
    naq_status s = NAQ_OK;
    if (format != NAQ_BACKUP_FORMAT)
        s = naq__fail(NAQ_ERR_CODEC,
                      "%s has format %lld; this naq reads format %d (use the naq that wrote it)",
                      path, (long long)format, NAQ_BACKUP_FORMAT);
    else if (!json_is_array(streams) || json_array_size(streams) == 0)
        s = naq__fail(NAQ_ERR_CODEC, "%s lists no stream", path);
    for (size_t i = 0; s == NAQ_OK && i < json_array_size(streams); i++) {
        json_t *e = json_array_get(streams, i);
        s = check_name(dir, json_string_value(json_object_get(e, "name")));
        const char *side = json_string_value(json_object_get(e, "side"));
        if (s == NAQ_OK && (side == NULL || (strcmp(side, "jobs") && strcmp(side, "events"))))
            s = naq__fail(NAQ_ERR_CODEC, "%s: stream %s has no side (jobs or events)", path,
                          json_string_value(json_object_get(e, "name")));
    }
    if (s != NAQ_OK) {
        json_decref(m);
        *out = NULL;
    }
    return s;
}

/* Checks one file against its description {"size", "sha256"}. */
static naq_status verify_file(const char *dir, const char *name, const char *ext,
                              const json_t *desc, reporter *r)
{
    char path[NAQ_URL_MAX * 2];
    path_of(path, sizeof path, dir, name, ext);
    json_int_t want = json_integer_value(json_object_get(desc, "size"));
    const char *want_sum = json_string_value(json_object_get(desc, "sha256"));
    if (want_sum == NULL || strlen(want_sum) != 64)
        return naq__fail(NAQ_ERR_CODEC, "%s/%s has no SHA-256 for %s%s", dir, MANIFEST, name, ext);
    struct stat st;
    if (stat(path, &st) != 0)
        return naq__fail(NAQ_ERR_CODEC, "%s is missing from the backup (%s)", path,
                         strerror(errno));
    if ((json_int_t)st.st_size != want)
        return naq__fail(NAQ_ERR_CODEC,
                         "%s has %lld bytes, the manifest says %lld: the file is %s (copy the "
                         "backup again, or use another one)",
                         path, (long long)st.st_size, (long long)want,
                         (json_int_t)st.st_size < want ? "truncated" : "damaged");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return naq__fail(NAQ_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    char *buf = malloc(DEFAULT_CHUNK); /* freed below */
    if (sha == NULL || buf == NULL || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
        fclose(f);
        free(buf);
        EVP_MD_CTX_free(sha);
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory checking %s", path);
    }
    r->p.stream = name;
    r->p.bytes = 0;
    r->p.total = (uint64_t)want;
    r->p.done = 0;
    size_t got;
    while ((got = fread(buf, 1, DEFAULT_CHUNK, f)) > 0) {
        EVP_DigestUpdate(sha, buf, got);
        r->p.bytes += got;
        report(r);
    }
    int bad = ferror(f);
    fclose(f);
    free(buf);
    char sum[65];
    sha_finish(sha, sum);
    EVP_MD_CTX_free(sha);
    if (bad)
        return naq__fail(NAQ_ERR_IO, "cannot read %s", path);
    if (strcmp(sum, want_sum) != 0)
        return naq__fail(NAQ_ERR_CODEC,
                         "%s is damaged: its SHA-256 is %s, the manifest says %s (copy the "
                         "backup again, or use another one)",
                         path, sum, want_sum);
    return NAQ_OK;
}

static naq_status verify_manifest(const char *dir, const json_t *m, const naq_backup_opts *o)
{
    const json_t *streams = json_object_get(m, "streams");
    reporter r = {.o = o, .p = {.phase = NAQ_BACKUP_VERIFYING, .count = json_array_size(streams)}};
    naq_status s = NAQ_OK;
    for (size_t i = 0; s == NAQ_OK && i < json_array_size(streams); i++) {
        const json_t *e = json_array_get(streams, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        r.p.index = i + 1;
        s = verify_file(dir, name, ".stream.json", json_object_get(e, "config"), &r);
        if (s == NAQ_OK)
            s = verify_file(dir, name, ".tar.s2", json_object_get(e, "snapshot"), &r);
        if (s == NAQ_OK) {
            r.p.done = 1;
            report(&r);
        }
    }
    return s;
}

naq_status naq_backup_verify(const char *dir, const naq_backup_opts *opts)
{
    naq_backup_opts o;
    naq_backup_opts_init(&o);
    if (opts != NULL)
        o = *opts;
    json_t *m = NULL;
    naq_status s = load_manifest(dir, &m);
    if (s == NAQ_OK)
        s = verify_manifest(dir, m, &o);
    json_decref(m);
    return s;
}

/* ---------------------------------------------------------------- restore */

/* The server (side) a manifest entry restores to. */
static int entry_side(const json_t *e)
{
    return strcmp(json_string_value(json_object_get(e, "side")), "events") == 0 ? SIDE_EVENTS
                                                                                : SIDE_JOBS;
}

static int stream_exists(jsCtx *js, const char *name)
{
    jsStreamInfo *si = NULL;
    if (js_GetStreamInfo(&si, js, name, NULL, NULL) != NATS_OK)
        return 0;
    jsStreamInfo_Destroy(si);
    return 1;
}

/* Refuses, naming them, when streams of the backup exist on the target,
 * or with force deletes them. */
static naq_status clear_target(servers *sv, const json_t *streams, int force)
{
    char names[1024] = "";
    size_t len = 0;
    int found = 0;
    for (size_t i = 0; i < json_array_size(streams); i++) {
        const json_t *e = json_array_get(streams, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        jsCtx *js = sv->js[entry_side(e)];
        if (!stream_exists(js, name))
            continue;
        if (force) {
            jsErrCode jerr = 0;
            natsStatus ns = js_DeleteStream(js, name, NULL, &jerr);
            if (ns != NATS_OK)
                return naq__fail_nats(NAQ_ERR_NATS, ns, (int)jerr,
                                      "cannot delete stream %s to replace it", name);
            continue;
        }
        found++;
        if (len < sizeof names)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", name);
    }
    if (found == 0)
        return NAQ_OK;
    char shown[NAQ_URL_MAX];
    return naq__fail(NAQ_ERR_EXISTS,
                     "the server at %s already has %s %s; restore replaces nothing unless told "
                     "to: run it again with --force to delete and replace %s, or restore into a "
                     "server without naq streams",
                     naq_url_redact(sv->url[0], shown, sizeof shown),
                     found == 1 ? "stream" : "streams", names, found == 1 ? "it" : "them");
}

/* Sends the snapshot file to the restore's deliver subject, each chunk
 * waiting for its acknowledgement. */
static naq_status send_chunks(natsConnection *nc, const char *deliver, FILE *f, reporter *r)
{
    char *buf = malloc(DEFAULT_CHUNK); /* freed below */
    if (buf == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory restoring %s", r->p.stream);
    naq_status s = NAQ_OK;
    size_t got;
    while (s == NAQ_OK && (got = fread(buf, 1, DEFAULT_CHUNK, f)) > 0) {
        natsMsg *ack = NULL;
        natsStatus ns = natsConnection_Request(&ack, nc, deliver, buf, (int)got, r->o->timeout_ms);
        if (ns != NATS_OK) {
            s = naq__fail_nats(NAQ_ERR_NATS, ns, 0,
                               "restoring stream %s: no acknowledgement after %llu bytes",
                               r->p.stream, (unsigned long long)r->p.bytes);
            break;
        }
        if (natsMsg_GetDataLength(ack) > 0) /* "-ERR 'storage failure during restore'" */
            s = naq__fail(NAQ_ERR_NATS, "restoring stream %s: the server says %.*s", r->p.stream,
                          natsMsg_GetDataLength(ack), natsMsg_GetData(ack));
        natsMsg_Destroy(ack);
        r->p.bytes += got;
        if (s == NAQ_OK)
            report(r);
    }
    free(buf);
    if (s == NAQ_OK && ferror(f))
        s = naq__fail(NAQ_ERR_IO, "cannot read the snapshot of %s", r->p.stream);
    return s;
}

/* Reads a whole (small, verified) file: *out heap, free(). */
static naq_status read_small_file(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        if (f != NULL)
            fclose(f);
        return naq__fail(NAQ_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    }
    *out = malloc((size_t)st.st_size + 1);
    size_t got = *out ? fread(*out, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (*out == NULL || got != (size_t)st.st_size) {
        free(*out);
        *out = NULL;
        return naq__fail(NAQ_ERR_IO, "cannot read %s", path);
    }
    (*out)[got] = '\0';
    return NAQ_OK;
}

/* Restores one stream; adds what the server reports to sum. */
static naq_status restore_stream(natsConnection *nc, const char *dir, const json_t *e, reporter *r,
                                 naq_backup_summary *sum)
{
    const char *name = json_string_value(json_object_get(e, "name"));
    char path[NAQ_URL_MAX * 2], subject[NAQ_NAME_MAX + 64], what[NAQ_NAME_MAX + 64];
    char *request = NULL;
    json_t *answer = NULL, *done = NULL;
    FILE *f = NULL;
    r->p.stream = name;
    r->p.bytes = 0;
    r->p.total =
        (uint64_t)json_integer_value(json_object_get(json_object_get(e, "snapshot"), "size"));
    r->p.done = 0;
    snprintf(subject, sizeof subject, "$JS.API.STREAM.RESTORE.%s", name);
    snprintf(what, sizeof what, "cannot restore stream %s", name);
    path_of(path, sizeof path, dir, name, ".stream.json");
    naq_status s = read_small_file(path, &request);
    if (s == NAQ_OK)
        s = api_request(nc, subject, request, r->o->timeout_ms, what, &answer);
    const char *deliver = json_string_value(json_object_get(answer, "deliver_subject"));
    if (s == NAQ_OK && deliver == NULL)
        s = naq__fail(NAQ_ERR_CODEC, "%s: the server named no subject to send it to", what);
    path_of(path, sizeof path, dir, name, ".tar.s2");
    if (s == NAQ_OK && (f = fopen(path, "rb")) == NULL)
        s = naq__fail(NAQ_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (s == NAQ_OK)
        s = send_chunks(nc, deliver, f, r);
    /* The empty message ends the transfer; the server then unpacks the
     * snapshot and answers with the stream's info. */
    if (s == NAQ_OK)
        s = api_request(nc, deliver, "", r->o->timeout_ms, what, &done);
    if (s == NAQ_OK) {
        const json_t *state = json_object_get(done, "state");
        sum->streams++;
        sum->messages += (uint64_t)json_integer_value(json_object_get(state, "messages"));
        sum->bytes += (uint64_t)json_integer_value(json_object_get(state, "bytes"));
        sum->consumers += (size_t)json_integer_value(json_object_get(state, "consumer_count"));
        sum->file_bytes += r->p.bytes;
        r->p.done = 1;
        report(r);
    }
    if (f != NULL)
        fclose(f);
    json_decref(done);
    json_decref(answer);
    free(request);
    return s;
}

/* A failed restore takes back what it made: the streams restored so far
 * (created[i] set) and the one that failed, if the server made it. */
static void undo(servers *sv, const json_t *streams, const char *created, size_t upto)
{
    for (size_t i = 0; i <= upto && i < json_array_size(streams); i++) {
        const json_t *e = json_array_get(streams, i);
        if (i < upto && !created[i])
            continue;
        js_DeleteStream(sv->js[entry_side(e)], json_string_value(json_object_get(e, "name")), NULL,
                        NULL);
    }
}

naq_status naq_backup_restore(const naq_config *cfg, const char *dir, const naq_backup_opts *opts,
                              naq_backup_summary *summary)
{
    naq_backup_opts o = opts_or_defaults(opts);
    json_t *m = NULL;
    naq_status s = load_manifest(dir, &m);
    if (s == NAQ_OK)
        s = verify_manifest(dir, m, &o); /* all of it before anything is sent */
    if (s != NAQ_OK) {
        json_decref(m);
        char why[1024];
        snprintf(why, sizeof why, "%s", naq_last_error());
        return naq__fail(s, "%s; nothing was restored", why);
    }
    servers sv;
    if ((s = servers_open(cfg, &sv)) != NAQ_OK) {
        json_decref(m);
        return s;
    }
    const json_t *streams = json_object_get(m, "streams");
    size_t n = json_array_size(streams);
    char *created = calloc(n, 1);
    naq_backup_summary sum = {0};
    reporter r = {.o = &o, .p = {.phase = NAQ_BACKUP_RESTORING, .count = n}};
    if (created == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory");
    if (s == NAQ_OK)
        s = clear_target(&sv, streams, o.force);
    size_t i = 0;
    for (; s == NAQ_OK && i < n; i++) {
        const json_t *e = json_array_get(streams, i);
        r.p.index = i + 1;
        s = restore_stream(sv.nc[entry_side(e)], dir, e, &r, &sum);
        created[i] = s == NAQ_OK;
    }
    if (s != NAQ_OK && i > 0) {
        /* Keep the message of the failure, not of the clean-up. */
        char why[1024];
        snprintf(why, sizeof why, "%s", naq_last_error());
        undo(&sv, streams, created, i - 1);
        s = naq__fail(s, "%s; the streams this restore had created were deleted again%s", why,
                      o.force ? " (those --force replaced are gone: restore again)" : "");
    }
    if (s == NAQ_OK && summary != NULL)
        *summary = sum;
    free(created);
    servers_close(&sv);
    json_decref(m);
    return s;
}
