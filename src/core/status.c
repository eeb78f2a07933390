/*
 * status.c - status strings and the per-thread "last error" record.
 *
 * Failing calls go through naq__fail(), which formats a message into
 * thread-local storage and returns the status, so an error path reads
 * `return naq__fail(NAQ_ERR_INVALID_ARG, "queue name '%s' ...", q);`.
 */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[] = {
#define NAQ_STATUS_STRING(name, str) str,
    NAQ_STATUS_TABLE(NAQ_STATUS_STRING)
#undef NAQ_STATUS_STRING
};

static _Thread_local char last_message[1024];
static _Thread_local int last_nats_status;
static _Thread_local int last_js_code;

const char *naq_status_str(naq_status s)
{
    if ((int)s < 0 || s >= NAQ_STATUS_COUNT)
        return "unknown status";
    return status_names[s];
}

const char *naq_last_error(void)
{
    return last_message;
}
int naq_last_error_nats_status(void)
{
    return last_nats_status;
}
int naq_last_error_js_code(void)
{
    return last_js_code;
}

static void record(int nats_status, int js_code, const char *fmt, va_list ap)
{
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    last_nats_status = nats_status;
    last_js_code = js_code;
}

/* A request the server refused for lack of permission only times out on
 * this side; the server said why on the side (security.c records it), and
 * that is what the user must read first. */
static void prepend_permission(void)
{
    char why[NAQ_URL_MAX + 512];
    if (!naq__permission_denied_take(why, sizeof why))
        return;
    char was[sizeof last_message];
    memcpy(was, last_message, sizeof was);
    if (snprintf(last_message, sizeof last_message, "%s (while: %s)", why, was) >=
        (int)sizeof last_message)
        last_message[sizeof last_message - 2] = ')'; /* cut, still closed */
}

naq_status naq__fail(naq_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(0, 0, fmt, ap);
    va_end(ap);
    if (s == NAQ_ERR_NATS || s == NAQ_ERR_TIMEOUT)
        prepend_permission();
    return s;
}

naq_status naq__fail_nats(naq_status s, natsStatus ns, int js_code, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *detail = nats_GetLastError(NULL);
    if (detail == NULL || detail[0] == '\0')
        detail = natsStatus_GetText(ns);
    snprintf(last_message, sizeof last_message, "%s: %s%s", what, detail,
             js_code ? " (JetStream error)" : "");
    last_nats_status = (int)ns;
    last_js_code = js_code;
    if (ns == NATS_TIMEOUT || ns == NATS_NOT_PERMITTED || ns == NATS_NO_RESPONDERS)
        prepend_permission();
    return s;
}

void naq__clear_error(void)
{
    last_message[0] = '\0';
    last_nats_status = 0;
    last_js_code = 0;
}
