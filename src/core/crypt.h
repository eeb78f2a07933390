/*
 * crypt.h - end-to-end payload encryption (crypt.c): the key file, the
 * envelope, and sealing / opening the payload-bearing parts of jobs,
 * outcome records, events and dead letters. docs/protocol.md
 * ("Encrypted payloads") is the wire specification; docs/security.md says
 * what it protects.
 *
 * Every function takes the key set k, which is NULL when the client has no
 * NAQ_ENCRYPTION_KEY_FILE: the seal functions are then never called (the
 * caller's NULL check is the whole cost of the plain path), and the open
 * functions report that there is no key. A key set is read-only after
 * naq__crypt_load, so threads may share it.
 */
#ifndef NAQ_CRYPT_H
#define NAQ_CRYPT_H

#include "internal.h"

#include <jansson.h>

typedef struct naq__crypt naq__crypt;

/* Key ids: 1 to 32 of [A-Za-z0-9_-]. */
#define NAQ_CRYPT_KID_MAX 32

/* The job-field names bound into each envelope (its associated data). */
#define NAQ_CRYPT_ARGS "args"
#define NAQ_CRYPT_OUTCOME "outcome"
#define NAQ_CRYPT_EVENT "event"
#define NAQ_CRYPT_DLQ "dlq"
#define NAQ_CRYPT_SCHEDULE "schedule_args"

/* What a reader without the key shows in place of a sealed text. */
#define NAQ_CRYPT_HIDDEN "<encrypted>"

/* Reads a key file (one "<key id> <base64 of 32 bytes>" per line, '#'
 * comments; the first key encrypts, all decrypt). Refuses a file that
 * group or others may access. *out: naq__crypt_destroy. */
naq_status naq__crypt_load(const char *path, naq__crypt **out);
/* Wipes the keys and frees k. Accepts NULL. */
void naq__crypt_destroy(naq__crypt *k);
/* The id of the key that encrypts. */
const char *naq__crypt_kid(const naq__crypt *k);
/* Writes a new key file at path (mode 0600, never over an existing file);
 * kid receives the new key's id. */
naq_status naq__crypt_keygen(const char *path, char kid[NAQ_CRYPT_KID_MAX + 1]);

/* 1 when the compact JSON text starts as an envelope does ({"naq_enc":):
 * the one test the plain path pays for, an 11-byte compare. */
int naq__crypt_is_sealed_text(const char *json);

/* Seals plaintext bound to (field, jid): a new envelope object, or NULL
 * with the error recorded. The caller decrefs it. */
json_t *naq__crypt_seal(const naq__crypt *k, const char *field, const char *jid, const char *plain,
                        size_t len);
/* Opens an envelope sealed for field; *plain (NUL-terminated, heap, free())
 * and the job id it is bound to (jid, NAQ_ID_SIZE bytes). NAQ_ERR_CODEC
 * naming the reason: no key (k NULL), unknown key id, or a ciphertext
 * that does not authenticate (tampered, another job or field). */
naq_status naq__crypt_open(const naq__crypt *k, const char *field, const json_t *env, char **plain,
                           char jid[NAQ_ID_SIZE]);

/* Moves the members of obj named in keys (NULL-terminated) into one
 * envelope at obj["sealed"], whose plaintext is the object of them.
 * Nothing to move: obj is unchanged. */
naq_status naq__crypt_seal_members(const naq__crypt *k, const char *field, const char *jid,
                                   json_t *obj, const char *const *keys);
/* Puts the members of obj["sealed"] back into obj. NAQ_OK also when obj has
 * nothing sealed; NAQ_ERR_CODEC (obj unchanged) when it cannot be opened. */
naq_status naq__crypt_open_members(const naq__crypt *k, const char *field, const char *jid,
                                   json_t *obj);

/* Producer: replaces j->args_json by its envelope text. */
naq_status naq__crypt_seal_args(const naq__crypt *k, naq_job *j);
/* Worker: replaces sealed j->args_json by its plaintext. The envelope must
 * be bound to this job, or to the job a dead-letter retry copied it from. */
naq_status naq__crypt_open_args(const naq__crypt *k, naq_job *j);

/* For display: replaces sealed job["args"] by the plaintext, or by the
 * string NAQ_CRYPT_HIDDEN when k cannot open them. Never for a job that is
 * published again (a dead-letter retry re-publishes the envelope). */
void naq__crypt_show_args(const naq__crypt *k, json_t *job);

/* A schedule's args for its bucket: sealed for (NAQ_CRYPT_SCHEDULE, the
 * schedule's name), replacing *args_json (heap; NULL reads as []). Args
 * sealed already stay as they are. */
naq_status naq__crypt_seal_schedule_args(const naq__crypt *k, const char *name, char **args_json);
/* At a trigger: *plain (heap, free()) holds the schedule's args, opened
 * when they are sealed (bound to this schedule's name), copied when not.
 * NAQ_ERR_CODEC naming the reason (no key, unknown key, tampered). */
naq_status naq__crypt_open_schedule_args(const naq__crypt *k, const char *name,
                                         const char *args_json, char **plain);

/* Worker: moves e's error_message and payload details (result,
 * stdout_tail, stderr_tail) into details["sealed"]. e's strings are
 * borrowed: e->details_json then points at *owned (heap, the caller frees
 * it after logging) and e->error_message is NULL. */
naq_status naq__crypt_seal_event(const naq__crypt *k, naq_event *e, char **owned);
/* Readers: the reverse, in place on a decoded (heap-owning) event. Without
 * the key, error_message reads NAQ_CRYPT_HIDDEN and details keep the
 * envelope. */
void naq__crypt_open_event(const naq__crypt *k, naq_event *e);

#endif
