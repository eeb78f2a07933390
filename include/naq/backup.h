/*
 * naq/backup.h - saving every naq stream and KV bucket to a directory and
 * restoring them into a server that lacks them (`naq backup`, `naq
 * restore`).
 *
 * A backup is one JetStream snapshot per stream (its messages, its
 * configuration and its durable consumers with their positions), taken
 * with the server's snapshot API, plus a manifest (manifest.json) that
 * lists each file with its size and SHA-256. A snapshot is consistent per
 * stream, not across streams: take the backup while no worker, scheduler
 * or producer runs for a copy in which jobs, events and outcomes agree
 * (docs/deployment.md says what happens otherwise).
 *
 * Both calls connect on their own (from cfg, TLS and credentials
 * included) without creating any stream: a restore must find the target
 * as it is, and a backup must not write to what it copies.
 *
 * Thread-safety: each call is independent; the progress callback runs on
 * the calling thread.
 */
#ifndef NAQ_BACKUP_H
#define NAQ_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "naq/config.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The manifest's "format"; see the comment at NAQ__BACKUP_FORMAT in
 * src/backup.c for what to do when the layout changes. */
#define NAQ_BACKUP_FORMAT 1

typedef enum {
    NAQ_BACKUP_SAVING,    /* naq_backup_write: receiving a stream's snapshot */
    NAQ_BACKUP_VERIFYING, /* naq_backup_restore: checking a file's SHA-256 */
    NAQ_BACKUP_RESTORING, /* naq_backup_restore: sending a stream's snapshot */
} naq_backup_phase;

/* Where a long call is. Strings are valid during the callback only. */
typedef struct {
    naq_backup_phase phase;
    const char *stream;  /* the stream being worked on */
    size_t index, count; /* stream index (from 1) of count */
    uint64_t bytes;      /* bytes of this stream's snapshot done so far */
    /* The snapshot's size when known (verifying, restoring), else 0: the
     * server compresses a snapshot as it sends it, so its size is known
     * only at the end. */
    uint64_t total;
    int done; /* 1 on the last report of a stream */
} naq_backup_progress;

typedef void (*naq_backup_progress_fn)(const naq_backup_progress *p, void *user);

typedef struct {
    /* Restore: delete streams the target has already and restore them
     * from the backup. Without it such a stream is an error (NAQ_ERR_EXISTS)
     * and nothing is restored. */
    int force;
    /* Backup: bytes per snapshot chunk; 0 = the default (128 KiB). */
    size_t chunk_size;
    /* How long to wait for any one answer of the server (a chunk, an
     * acknowledgement, the end of a restore); default 60000. */
    int64_t timeout_ms;
    naq_backup_progress_fn progress; /* NULL = no reports */
    void *progress_user;
} naq_backup_opts;

void naq_backup_opts_init(naq_backup_opts *o);

/* What a backup holds, or what a restore put back. */
typedef struct {
    size_t streams;      /* streams saved / restored */
    uint64_t messages;   /* their messages (the streams' state) */
    uint64_t bytes;      /* their stored bytes (the streams' state) */
    uint64_t file_bytes; /* bytes of snapshot files written / read */
    size_t consumers;    /* durable consumers saved / restored with them */
} naq_backup_summary;

/* Saves every naq stream and KV bucket of the servers in cfg (cfg->url,
 * and cfg->event_url when it is another server) into dir, which is
 * created and must be empty or absent. The manifest is written last, so a
 * directory without one is an interrupted backup. NAQ_ERR_NOT_FOUND when
 * the server holds no naq stream. On failure the files written so far
 * stay (the message names dir); summary may be NULL. */
naq_status naq_backup_write(const naq_config *cfg, const char *dir, const naq_backup_opts *o,
                            naq_backup_summary *summary);

/* Checks the backup in dir without a server: the manifest, then every
 * file's size and SHA-256. NAQ_ERR_CODEC with the file and what is wrong
 * with it; NAQ_ERR_IO when it cannot be read. */
naq_status naq_backup_verify(const char *dir, const naq_backup_opts *o);

/* Verifies the backup (naq_backup_verify) before anything is sent, then
 * restores each stream into the servers of cfg. A stream that exists there
 * already fails the call with NAQ_ERR_EXISTS naming it, before anything is
 * restored, unless o->force (then it is deleted and replaced). When a
 * stream fails midway, the streams this call created are deleted again, so
 * the target is left without them (with force, the ones it replaced are
 * gone: the message says so). summary may be NULL. */
naq_status naq_backup_restore(const naq_config *cfg, const char *dir, const naq_backup_opts *o,
                              naq_backup_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
