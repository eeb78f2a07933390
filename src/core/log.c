/*
 * log.c - the library's messages go to the handler a program sets
 * (naq/log.h), never to stderr.
 *
 * The handler and its user pointer are one pair: a mutex keeps them
 * together, and it is released before the handler runs, so a slow handler
 * never holds up another thread's message and cannot deadlock with a
 * naq_log_set_handler from inside. Messages are rare (warnings about
 * retries and misconfiguration), so the lock costs nothing measurable.
 */
#include "internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static naq_log_fn handler;
static void *handler_user;

void naq_log_set_handler(naq_log_fn fn, void *user)
{
    pthread_mutex_lock(&handler_lock);
    handler = fn;
    handler_user = user;
    pthread_mutex_unlock(&handler_lock);
}

void naq__log(naq_log_level level, const char *fmt, ...)
{
    pthread_mutex_lock(&handler_lock);
    naq_log_fn fn = handler;
    void *user = handler_user;
    pthread_mutex_unlock(&handler_lock);
    if (fn == NULL)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Callers wrote their messages for stderr; the handler gets one line. */
    size_t len = strlen(msg);
    while (len > 0 && msg[len - 1] == '\n')
        msg[--len] = '\0';
    fn(level, msg, user);
}
