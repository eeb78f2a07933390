/*
 * config.c - defaults, NAQ_* environment variables, durations and sizes.
 *
 * Precedence is defaults < environment < CLI flags; the CLI applies its flags
 * to the struct this module fills. A malformed variable is an error that
 * names the variable, never a silent fallback to the default.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void naq__default_data_dir(char *buf, size_t cap, const char *leaf)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (xdg != NULL && xdg[0] == '/')
        snprintf(buf, cap, "%s/naq/%s", xdg, leaf);
    else
        snprintf(buf, cap, "%s/.local/share/naq/%s", home && *home ? home : "/tmp", leaf);
}

void naq_config_init(naq_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->url, sizeof c->url, "%s", NAQ_DEFAULT_URL);
    snprintf(c->event_stream, sizeof c->event_stream, "NAQ_JOB_EVENTS");
    snprintf(c->job_stream, sizeof c->job_stream, "NAQ_JOBS");
    snprintf(c->dlq_stream, sizeof c->dlq_stream, "NAQ_DLQ");
    snprintf(c->subject_prefix, sizeof c->subject_prefix, "naq");
    c->connect_timeout_ms = 2000;
    c->log_level = NAQ_LOG_INFO;
    c->event_max_age_s = 7 * 24 * 3600;
    c->event_max_msgs = -1;
    c->event_max_bytes = -1;
    c->event_dup_window_s = 120;
    c->replicas = 1;
    c->logger_buffer_events = 65536;
    c->logger_buffer_bytes = 32 << 20;
    c->logger_batch = 512;
    c->logger_flush_ms = 100;
    c->logger_linger_us = -1;
    c->ack_wait_ms = 30000;
    c->heartbeat_interval_ms = NAQ_DEFAULT_HEARTBEAT_INTERVAL_MS;
    naq__default_data_dir(c->spool_dir, sizeof c->spool_dir, "spool");
}

naq_status naq_parse_duration_ms(const char *text, int64_t *ms)
{
    if (text == NULL || *text == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG, "empty duration");
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || v < 0)
        goto bad;
    double scale = 1000.0; /* a bare number is seconds */
    if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1000.0;
    else if (strcmp(end, "ms") == 0)
        scale = 1.0;
    else if (strcmp(end, "m") == 0)
        scale = 60e3;
    else if (strcmp(end, "h") == 0)
        scale = 3600e3;
    else if (strcmp(end, "d") == 0)
        scale = 86400e3;
    else
        goto bad;
    /* NaN and infinity parse as numbers too ("nan", "inf"): a negated
     * bound refuses them. */
    if (!(v * scale <= 9.2e18))
        goto bad;
    *ms = (int64_t)(v * scale + 0.5);
    return NAQ_OK;
bad:
    return naq__fail(NAQ_ERR_INVALID_ARG,
                     "bad duration '%s': use a number with ms, s, m, h or d (e.g. 500ms, 30s, 7d)",
                     text);
}

naq_status naq_parse_size(const char *text, int64_t *bytes)
{
    if (text == NULL || *text == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG, "empty size");
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || v < 0)
        goto bad;
    int64_t scale = 1;
    if (*end != '\0') {
        switch (toupper((unsigned char)*end)) {
        case 'K': scale = 1LL << 10; break;
        case 'M': scale = 1LL << 20; break;
        case 'G': scale = 1LL << 30; break;
        case 'T': scale = 1LL << 40; break;
        default: goto bad;
        }
        end++;
        if (strcasecmp(end, "") != 0 && strcasecmp(end, "B") != 0 && strcasecmp(end, "iB") != 0)
            goto bad;
    }
    if (v > INT64_MAX / scale)
        goto bad;
    *bytes = v * scale;
    return NAQ_OK;
bad:
    return naq__fail(
        NAQ_ERR_INVALID_ARG,
        "bad size '%s': use a whole number with an optional K, M, G or T suffix (e.g. 64M)", text);
}

/* One server of a URL list: SCHEME://[USER[:PASS]@]HOST[:PORT][/], where
 * SCHEME is nats or tls, HOST a name, an IPv4 address or [IPv6], and PORT
 * 1-65535. Returns a static reason when it is not, else NULL. */
static const char *url_problem(const char *u, size_t len)
{
    const char *end = u + len;
    const char *p = NULL;
    if (len >= 7 && strncasecmp(u, "nats://", 7) == 0)
        p = u + 7;
    else if (len >= 6 && strncasecmp(u, "tls://", 6) == 0)
        p = u + 6;
    else
        return strstr(u, "://") != NULL && strstr(u, "://") < end
                   ? "the scheme must be nats:// or tls://"
                   : "it has no scheme";
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL)
        p = at + 1;
    if (end > p && end[-1] == '/')
        end--;
    const char *host = p;
    if (p < end && *p == '[') {
        while (p < end && *p != ']')
            p++;
        if (p == end)
            return "an IPv6 address lacks its closing ']'";
        p++;
    } else {
        while (p < end && (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_'))
            p++;
    }
    if (p == host)
        return "it has no host";
    if (p == end)
        return NULL;
    if (*p != ':')
        return "the host holds a character a host name cannot have";
    p++;
    long port = 0;
    const char *digits = p;
    while (p < end && isdigit((unsigned char)*p) && port <= 65535)
        port = port * 10 + (*p++ - '0');
    if (p == digits || p != end || port < 1 || port > 65535)
        return "the port is not a number from 1 to 65535";
    return NULL;
}

naq_status naq_url_validate(const char *what, const char *url_given)
{
    /* Messages show the URL without its password or token. */
    if (url_given == NULL || url_given[0] == '\0')
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "%s is empty; give a NATS URL like nats://127.0.0.1:4222", what);
    char url[NAQ_URL_MAX * 2];
    naq_url_redact(url_given, url, sizeof url);
    for (const char *p = url;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *why = len == 0 ? "a server in the list is empty" : url_problem(p, len);
        if (why != NULL && strchr(url, ',') != NULL && len > 0)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "%s '%s' is not a NATS URL (in '%.*s', %s); use nats://HOST:PORT or "
                             "tls://HOST:PORT, e.g. nats://127.0.0.1:4222, several separated "
                             "by commas",
                             what, url, (int)len, p, why);
        if (why != NULL)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "%s '%s' is not a NATS URL (%s); use nats://HOST:PORT or "
                             "tls://HOST:PORT, e.g. nats://127.0.0.1:4222, several separated "
                             "by commas",
                             what, url, why);
        if (comma == NULL)
            return NAQ_OK;
        p = comma + 1;
    }
}

/* The value of an environment variable, or NULL when it is unset or empty:
 * both keep the default. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

static naq_status env_string(const char *name, char *dst, size_t cap)
{
    const char *v = env_value(name);
    if (v == NULL)
        return NAQ_OK;
    if (strlen(v) >= cap)
        return naq__fail(NAQ_ERR_INVALID_ARG, "%s is too long (at most %zu characters)", name,
                         cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return NAQ_OK;
}

/* A URL variable: set and well formed, or unset. */
static naq_status env_url(const char *name, char *dst, size_t cap)
{
    const char *v = env_value(name);
    if (v == NULL)
        return NAQ_OK;
    naq_status s = naq_url_validate(name, v);
    if (s != NAQ_OK)
        return s;
    return env_string(name, dst, cap);
}

static naq_status env_int(const char *name, int64_t min, int64_t *dst)
{
    const char *v = env_value(name);
    if (v == NULL)
        return NAQ_OK;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < min)
        return naq__fail(NAQ_ERR_INVALID_ARG, "%s='%s' is not a whole number >= %lld", name, v,
                         (long long)min);
    *dst = x;
    return NAQ_OK;
}

/* A variable that parse reads into *dst; `use` tells what it accepts. */
static naq_status env_parsed(const char *name, naq_status (*parse)(const char *, int64_t *),
                             const char *use, int64_t *dst)
{
    const char *v = env_value(name);
    if (v != NULL && parse(v, dst) != NAQ_OK)
        return naq__fail(NAQ_ERR_INVALID_ARG, "%s='%s': %s", name, v, use);
    return NAQ_OK;
}

static naq_status env_duration(const char *name, int64_t *ms)
{
    return env_parsed(name, naq_parse_duration_ms,
                      "use a number of seconds or 500ms, 30s, 5m, 2h, 7d", ms);
}

static naq_status env_size(const char *name, int64_t *bytes)
{
    return env_parsed(name, naq_parse_size, "use bytes with an optional K, M, G suffix", bytes);
}

static naq_status env_bool(const char *name, int *dst)
{
    const char *v = env_value(name);
    if (v == NULL)
        return NAQ_OK;
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on"))
        *dst = 1;
    else if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
             !strcasecmp(v, "off"))
        *dst = 0;
    else
        return naq__fail(NAQ_ERR_INVALID_ARG, "%s='%s': use 1/true/yes/on or 0/false/no/off", name,
                         v);
    return NAQ_OK;
}

naq_status naq_parse_log_level(const char *text, naq_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *out = (naq_log_level)i;
            return NAQ_OK;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *out = NAQ_LOG_WARN;
        return NAQ_OK;
    }
    return naq__fail(NAQ_ERR_INVALID_ARG, "bad log level '%s': use debug, info, warn or error",
                     text);
}

naq_status naq_config_from_env(naq_config *c)
{
    naq_status s = NAQ_OK;
    int64_t n;
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((s = (call)) != NAQ_OK)                                                                \
            return s;                                                                              \
    } while (0)
    /* NAQ_JOB_QUEUE_URL is the older name; NAQ_URL wins when both are set. */
    TRY(env_url("NAQ_JOB_QUEUE_URL", c->url, sizeof c->url));
    TRY(env_url("NAQ_URL", c->url, sizeof c->url));
    TRY(env_url("NAQ_EVENT_STORAGE_URL", c->event_url, sizeof c->event_url));
    TRY(env_string("NAQ_NATS_STREAM_NAME", c->event_stream, sizeof c->event_stream));
    TRY(env_string("NAQ_JOB_STREAM_NAME", c->job_stream, sizeof c->job_stream));
    TRY(env_string("NAQ_DLQ_STREAM_NAME", c->dlq_stream, sizeof c->dlq_stream));
    TRY(env_string("NAQ_NATS_SUBJECT_PREFIX", c->subject_prefix, sizeof c->subject_prefix));
    TRY(env_duration("NAQ_NATS_CONNECTION_TIMEOUT", &c->connect_timeout_ms));
    const char *lvl = env_value("NAQ_LOG_LEVEL");
    if (lvl != NULL && naq_parse_log_level(lvl, &c->log_level) != NAQ_OK)
        return naq__fail(NAQ_ERR_INVALID_ARG, "NAQ_LOG_LEVEL='%s': use debug, info, warn or error",
                         lvl);
    TRY(env_bool("NAQ_DISABLE_LOGGING", &c->disable_logging));
    n = c->event_max_age_s * 1000;
    TRY(env_duration("NAQ_EVENT_MAX_AGE", &n));
    c->event_max_age_s = n / 1000;
    TRY(env_int("NAQ_EVENT_MAX_MSGS", -1, &c->event_max_msgs));
    TRY(env_size("NAQ_EVENT_MAX_BYTES", &c->event_max_bytes));
    n = c->event_dup_window_s * 1000;
    TRY(env_duration("NAQ_EVENT_DUPLICATE_WINDOW", &n));
    c->event_dup_window_s = n / 1000;
    n = c->replicas;
    TRY(env_int("NAQ_REPLICAS", 1, &n));
    if (n > 5)
        return naq__fail(NAQ_ERR_INVALID_ARG, "NAQ_REPLICAS=%lld: JetStream allows 1 to 5",
                         (long long)n);
    c->replicas = (int)n;
    TRY(env_int("NAQ_EVENT_BUFFER", 1, &c->logger_buffer_events));
    TRY(env_size("NAQ_EVENT_BUFFER_BYTES", &c->logger_buffer_bytes));
    n = c->logger_batch;
    TRY(env_int("NAQ_EVENT_BATCH", 1, &n));
    c->logger_batch = (int)(n > 65536 ? 65536 : n);
    TRY(env_duration("NAQ_EVENT_FLUSH_INTERVAL", &c->logger_flush_ms));
    TRY(env_int("NAQ_EVENT_LINGER_US", -1, &c->logger_linger_us));
    TRY(env_string("NAQ_SPOOL_DIR", c->spool_dir, sizeof c->spool_dir));
    TRY(env_duration("NAQ_ACK_WAIT", &c->ack_wait_ms));
    TRY(env_duration("NAQ_HEARTBEAT_INTERVAL", &c->heartbeat_interval_ms));
    if (c->heartbeat_interval_ms < 1)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "NAQ_HEARTBEAT_INTERVAL must be longer than 0 (e.g. 5s)");
    TRY(env_string("NAQ_TLS_CA", c->tls_ca, sizeof c->tls_ca));
    TRY(env_string("NAQ_TLS_CERT", c->tls_cert, sizeof c->tls_cert));
    TRY(env_string("NAQ_TLS_KEY", c->tls_key, sizeof c->tls_key));
    TRY(env_string("NAQ_USER", c->user, sizeof c->user));
    TRY(env_string("NAQ_PASSWORD", c->password, sizeof c->password));
    TRY(env_string("NAQ_TOKEN", c->token, sizeof c->token));
    TRY(env_string("NAQ_NKEY_SEED_FILE", c->nkey_seed_file, sizeof c->nkey_seed_file));
    TRY(env_string("NAQ_CREDS_FILE", c->creds_file, sizeof c->creds_file));
    TRY(env_string("NAQ_ENCRYPTION_KEY_FILE", c->encryption_key_file,
                   sizeof c->encryption_key_file));
#undef TRY
    return NAQ_OK;
}
