/*
 * naq/webhook.h - HTTP callbacks: POST each event, as its JSON, to a URL.
 *
 * A webhook is an event handler (naq/processor.h) that a processor runs,
 * usually in a consumer group: N instances share the events, a failed
 * delivery (no answer, or a status other than 2xx) fails the event so the
 * group retries it with its backoff and dead-letters it after its maximum
 * deliveries. Delivery is at least once: a receiver tells a repeat by the
 * X-Naq-Event-Id header (the event's event_id).
 *
 * Each request carries Content-Type: application/json, X-Naq-Event-Id,
 * X-Naq-Event-Type and, with a secret, X-Naq-Signature: sha256=<hex of
 * HMAC-SHA256(secret, body)>. docs/processors.md shows how to check it.
 *
 * Thread-safety: the handler may run on several threads at once.
 */
#ifndef NAQ_WEBHOOK_H
#define NAQ_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "naq/event.h"
#include "naq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *url;    /* http:// or https:// (required) */
    const char *secret; /* bytes of the HMAC key; NULL = no signature */
    size_t secret_len;
    int64_t timeout_ms; /* whole request; default 10000 */
} naq_webhook_opts;

void naq_webhook_opts_init(naq_webhook_opts *o);

typedef struct naq_webhook naq_webhook;

/* Copies the options. NAQ_ERR_INVALID_ARG for a missing or non-HTTP URL.
 * Destroy with naq_webhook_destroy() after the processor that uses it. */
naq_status naq_webhook_create(const naq_webhook_opts *o, naq_webhook **out);
void naq_webhook_destroy(naq_webhook *w);

/* The naq_event_handler_fn (user = the webhook): one POST; 0 on a 2xx
 * answer, else non-zero with the reason ("HTTP 503 from URL", "cannot
 * connect to URL: ..."). */
int naq_webhook_deliver(const naq_event *e, void *webhook, char *reason);

/* Lowercase hex of HMAC-SHA256(key, data) into out (65 bytes). */
void naq_webhook_sign(const void *key, size_t key_len, const void *data, size_t len, char out[65]);

#ifdef __cplusplus
}
#endif
#endif
