/*
 * spool.h - an append-only on-disk overflow file of records.
 *
 * When the event logger's memory buffer is full, records go here instead of
 * being lost, and are re-sent later (with their original Nats-Msg-Id, so the
 * server stores each once). Records survive a process crash or restart; a
 * record torn by a crash mid-write is detected and cut off on open.
 *
 * On disk (format 1, see NAQ__SPOOL_FORMAT in spool.c):
 *   <path>         records back to back, each [u32 len][u32 crc32][len bytes],
 *                  integers little-endian, crc32 (IEEE, as zlib) of the bytes.
 *                  Empty when nothing is pending: disk is reclaimed.
 *   <path>.cursor  where reading resumes: one text line
 *                  "naq-spool-cursor 1 <offset> <crc32 of the record ending there, hex>",
 *                  replaced atomically (write a temp file, rename). A missing,
 *                  unreadable or inconsistent cursor means offset 0: records are
 *                  then re-sent, never skipped.
 *
 * Durability: nothing is fsynced. A record is safe against a process crash
 * once append returns, not against power loss.
 *
 * Thread-safety: append and pending may be called from any thread at any
 * time, also while a peek/drain runs. peek, consume and drain are serialised
 * with each other (one reader at a time) and must not be called from inside
 * their own callback. open/close/remove on one file belong to one thread; the
 * caller ensures that one process at a time opens a given spool (the logger
 * holds an flock on it).
 */
#ifndef NAQ_SPOOL_H
#define NAQ_SPOOL_H

#include "naq/status.h"

#include <stddef.h>

typedef struct naq__spool naq__spool;

/* Called once per record, in order. data is valid only during the call.
 * Return 0 to accept the record and go on, non-zero to stop before it. */
typedef int (*naq__spool_fn)(const void *data, size_t len, void *ud);

/* Open (creating it, and its parent directories, if missing) the spool at
 * path. Existing records are kept and counted; a torn or damaged record and
 * everything after it are cut off. max_bytes bounds the file size (0 = no
 * bound): an append that would cross it fails with NAQ_ERR_FULL. Close with
 * naq__spool_close. */
naq_status naq__spool_open(const char *path, size_t max_bytes, naq__spool **out);

/* Close the file and free s. Pending records stay on disk. Accepts NULL. */
void naq__spool_close(naq__spool *s);

/* Append one record of len bytes (1 .. 64 MiB) with one write.
 * NAQ_ERR_FULL if the file would cross max_bytes, NAQ_ERR_IO if the write
 * failed (nothing of the record is left in the file). */
naq_status naq__spool_append(naq__spool *s, const void *data, size_t len);

/* Call fn for each pending record, oldest first, consuming each record fn
 * accepts (returns 0) and stopping at the first it refuses (which stays
 * pending) or at the end. *consumed (may be NULL) gets the number consumed.
 * When nothing is left pending the file is truncated to 0 bytes.
 * A damaged record is reported as NAQ_ERR_CODEC after the records before it
 * were handled; it and everything after it are cut off, since the framing
 * cannot be trusted past it. */
naq_status naq__spool_drain(naq__spool *s, naq__spool_fn fn, void *ud, size_t *consumed);

/* Like drain, but consumes nothing: for callers that may only consume
 * records once they are acknowledged (see naq__spool_consume). */
naq_status naq__spool_peek(naq__spool *s, naq__spool_fn fn, void *ud);

/* Consume the n oldest pending records (as if drain had accepted them).
 * NAQ_ERR_INVALID_ARG, consuming nothing, if fewer than n are pending. */
naq_status naq__spool_consume(naq__spool *s, size_t n);

/* Records appended and not yet consumed. */
size_t naq__spool_pending(naq__spool *s);

/* Pending records of the spool at path, which must not be open: 0 if it does
 * not exist, (size_t)-1 if it exists but cannot be read (so a caller that
 * removes empty spools keeps it). */
size_t naq__spool_pending_path(const char *path);

/* Delete the spool at path and its cursor file (missing files are fine).
 * The spool must not be open. */
naq_status naq__spool_remove(const char *path);

#endif
