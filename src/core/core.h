/*
 * core.h - what core/'s modules share, private to them: connection
 * security (security.c, nkey.c, roles.c) and stream replicas (replicas.c),
 * which client.c wires into every connection. What other folders use of
 * core is in internal.h, kv.h, heap.h, jsonw.h, crypt.h, msgmap.h,
 * bqueue.h and autoscale.h.
 */
#ifndef NAQ_SRC_CORE_H
#define NAQ_SRC_CORE_H

#include "internal.h"

/* ---- replicas.c ---- */

/* Moves every naq stream and KV bucket on js whose replica
 * count differs from cfg.replicas to it (at connect). */
naq_status naq__replicas_align(naq_client *c, jsCtx *js);
/* Updates the stream to sc; more than one replica only on a cluster. On
 * failure, says what to do about NAQ_REPLICAS. */
naq_status naq__replicas_update(jsCtx *js, const naq_config *cfg, jsStreamConfig *sc,
                                const char *what);
/* Fails with the server's reason for refusing `what`, and what to do about
 * NAQ_REPLICAS when the count is the cause. */
naq_status naq__replicas_fail(const naq_config *cfg, natsStatus ns, int js_code, const char *what);

/* ---- security.c, nkey.c, roles.c: connection security (docs/security.md) ---- */

/* When the server reported a permission violation in the last seconds,
 * writes "permission denied: <who> may not publish to "<subject>"; ..."
 * into buf, forgets it and returns 1; else 0. status.c appends it to the
 * errors of calls that failed on a server request. */
int naq__permission_denied_take(char *buf, size_t cap);
/* Why a TLS handshake with the single server of url failed, found by
 * looking at its certificate; *names gets the names it is valid for. */
typedef enum { NAQ__TLS_OTHER, NAQ__TLS_UNTRUSTED, NAQ__TLS_HOSTNAME } naq_tls_problem;
naq_tls_problem naq__tls_diagnose(const naq_config *cfg, const char *url, char *names, size_t cap);

/* The public key of the seed in a seed file (NAQ_NKEY_SEED_FILE). */
naq_status naq__nkey_seed_file_public(const char *path, char pub[NAQ_NKEY_SIZE]);

/* roles.c: the least privileged naq role that may use subject (publish or
 * subscribe) under the subject prefix, or NULL when none does. */
const char *naq__role_for_subject(const char *prefix, const char *subject);
/* roles.c: creates the KV buckets other modules create on first use
 * (schedules, stats rollups) when they are missing, so that the first
 * connect of an admin leaves nothing for a role without management rights
 * to create (docs/security.md). The worker registry stays the first
 * worker's to create (its interval sets the TTL). */
naq_status naq__provision_buckets(naq_client *c);

#endif /* NAQ_SRC_CORE_H */
