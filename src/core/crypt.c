/*
 * crypt.c - end-to-end payload encryption: with NAQ_ENCRYPTION_KEY_FILE a
 * producer seals a job's args and a worker seals what the job gives back
 * (result, output tails, error message), so the server, its disk and every
 * reader without the key see ciphertext. Metadata stays readable (types,
 * times, queue, worker, error type): the queue and its tools run on it.
 *
 * The envelope takes the place of the sealed value (docs/protocol.md,
 * "Encrypted payloads"):
 *   {"naq_enc":1,"alg":"xchacha20poly1305","kid":K,"jid":J,"nonce":N,"ct":C}
 * XChaCha20-Poly1305 (IETF) from libsodium: its 24-byte nonces are safe to
 * draw at random for every message, so no counter has to be kept across
 * processes. The associated data "naq_enc:1:<field>:<jid>" binds the
 * ciphertext to one job and one field, so it cannot be moved to another job
 * or shown as another field. naq_enc is the envelope's first member: a
 * worker without keys recognises sealed args by an 11-byte prefix, which is
 * all the plain path pays.
 *
 * Keys: the file lists several, so keys can rotate; the first encrypts,
 * each decrypts what names its id. Key bytes are wiped when freed.
 */
#include "crypt.h"
#include "jsonw.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define ALG "xchacha20poly1305"
#define PREFIX "{\"naq_enc\":"
#define MAX_KEYS 16
/* A key file is a few lines; anything larger is not one. */
#define MAX_FILE 65536
#define B64 sodium_base64_VARIANT_ORIGINAL

typedef struct {
    char kid[NAQ_CRYPT_KID_MAX + 1];
    unsigned char key[KEY_BYTES];
} key_entry;

struct naq__crypt {
    int n;
    key_entry keys[MAX_KEYS];
};

/* ---------------------------------------------------------------- keys */

static int kid_valid(const char *s, size_t n)
{
    if (n == 0 || n > NAQ_CRYPT_KID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* One "<kid> <base64>" line into k's next slot. */
static naq_status parse_line(naq__crypt *k, const char *path, int lineno, char *line)
{
    char *kid = line + strspn(line, " \t");
    size_t kid_len = strcspn(kid, " \t");
    char *b64 = kid + kid_len;
    b64 += strspn(b64, " \t");
    size_t b64_len = strcspn(b64, " \t\r");
    if (!kid_valid(kid, kid_len) || b64_len == 0 || b64[b64_len + strspn(b64 + b64_len, " \t\r")])
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "NAQ_ENCRYPTION_KEY_FILE %s line %d is not '<key id> <base64 key>' (key "
                         "id: 1 to %d of A-Z a-z 0-9 - _); make a key file with 'naq keygen FILE'",
                         path, lineno, NAQ_CRYPT_KID_MAX);
    if (k->n == MAX_KEYS)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "NAQ_ENCRYPTION_KEY_FILE %s holds more than %d keys; drop keys no "
                         "stored job uses any more",
                         path, MAX_KEYS);
    key_entry *e = &k->keys[k->n];
    size_t got = 0;
    if (sodium_base642bin(e->key, sizeof e->key, b64, b64_len, NULL, &got, NULL, B64) != 0 ||
        got != KEY_BYTES)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "NAQ_ENCRYPTION_KEY_FILE %s line %d: the key is not the base64 of %d "
                         "bytes; make a key file with 'naq keygen FILE'",
                         path, lineno, (int)KEY_BYTES);
    memcpy(e->kid, kid, kid_len);
    e->kid[kid_len] = '\0';
    for (int i = 0; i < k->n; i++)
        if (strcmp(k->keys[i].kid, e->kid) == 0)
            return naq__fail(NAQ_ERR_INVALID_ARG,
                             "NAQ_ENCRYPTION_KEY_FILE %s names key id '%s' twice; key ids must "
                             "be unique (an envelope names the key that opens it)",
                             path, e->kid);
    k->n++;
    return NAQ_OK;
}

static naq_status parse_file(naq__crypt *k, const char *path, char *text)
{
    int lineno = 0;
    for (char *line = text, *next; line != NULL; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        const char *p = line + strspn(line, " \t\r");
        if (*p == '\0' || *p == '#')
            continue;
        naq_status s = parse_line(k, path, lineno, line);
        if (s != NAQ_OK)
            return s;
    }
    if (k->n == 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "NAQ_ENCRYPTION_KEY_FILE %s holds no key; make one with 'naq keygen FILE'",
                         path);
    return NAQ_OK;
}

naq_status naq__check_private_file(const char *what, const char *path, int fd)
{
    struct stat st;
    if ((fd >= 0 ? fstat(fd, &st) : stat(path, &st)) != 0)
        return naq__fail(NAQ_ERR_IO, "%s %s: %s", what, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return naq__fail(NAQ_ERR_INVALID_ARG, "%s %s is not a regular file", what, path);
    if ((st.st_mode & 077) != 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "%s %s is readable by other users (mode %04o); a secret others can "
                         "read protects nothing: run 'chmod 600 %s'",
                         what, path, (unsigned)(st.st_mode & 07777), path);
    return NAQ_OK;
}

/* Reads the whole file into buf (NUL-terminated), checking its mode on the
 * open descriptor so the file checked is the file read. */
static naq_status read_key_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "NAQ_ENCRYPTION_KEY_FILE: cannot read '%s' (%s); point it at a key file "
                         "('naq keygen FILE' makes one)",
                         path, strerror(errno));
    naq_status s = naq__check_private_file("NAQ_ENCRYPTION_KEY_FILE", path, fd);
    if (s == NAQ_ERR_IO)
        s = NAQ_ERR_INVALID_ARG; /* as before: the key file is the user's to fix */
    size_t len = 0;
    while (s == NAQ_OK && len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            s = naq__fail(NAQ_ERR_IO, "NAQ_ENCRYPTION_KEY_FILE: cannot read '%s' (%s)", path,
                          strerror(errno));
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (s == NAQ_OK && len == cap - 1)
        s = naq__fail(NAQ_ERR_INVALID_ARG,
                      "NAQ_ENCRYPTION_KEY_FILE %s is larger than %d bytes: not a key file", path,
                      MAX_FILE);
    buf[len] = '\0';
    close(fd);
    return s;
}

naq_status naq__crypt_load(const char *path, naq__crypt **out)
{
    *out = NULL;
    if (sodium_init() < 0)
        return naq__fail(NAQ_ERR_IO, "libsodium could not initialise (no random source?)");
    char *buf = malloc(MAX_FILE);
    naq__crypt *k = calloc(1, sizeof *k);
    naq_status s = buf && k ? read_key_file(path, buf, MAX_FILE)
                            : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory reading keys");
    if (s == NAQ_OK)
        s = parse_file(k, path, buf);
    if (buf != NULL)
        sodium_memzero(buf, MAX_FILE);
    free(buf);
    if (s != NAQ_OK) {
        naq__crypt_destroy(k);
        return s;
    }
    *out = k;
    return NAQ_OK;
}

void naq__crypt_destroy(naq__crypt *k)
{
    if (k == NULL)
        return;
    sodium_memzero(k, sizeof *k);
    free(k);
}

const char *naq__crypt_kid(const naq__crypt *k)
{
    return k->keys[0].kid;
}

naq_status naq__crypt_keygen(const char *path, char kid[NAQ_CRYPT_KID_MAX + 1])
{
    if (sodium_init() < 0)
        return naq__fail(NAQ_ERR_IO, "libsodium could not initialise (no random source?)");
    unsigned char key[KEY_BYTES], id[6];
    char b64[sodium_base64_ENCODED_LEN(KEY_BYTES, B64)];
    randombytes_buf(key, sizeof key);
    randombytes_buf(id, sizeof id);
    /* A date a person can sort by, and random bits so that two keys made
     * the same day differ. */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char hex[2 * sizeof id + 1];
    sodium_bin2hex(hex, sizeof hex, id, sizeof id);
    char day[16];
    if (strftime(day, sizeof day, "%Y%m%d", &tm) == 0)
        day[0] = '\0';
    snprintf(kid, NAQ_CRYPT_KID_MAX + 1, "%.8s-%s", day, hex);
    sodium_bin2base64(b64, sizeof b64, key, sizeof key, B64);
    sodium_memzero(key, sizeof key);
    naq_status s = NAQ_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        s = naq__fail(errno == EEXIST ? NAQ_ERR_EXISTS : NAQ_ERR_IO,
                      "cannot create key file %s (%s); a key file is never overwritten: choose "
                      "a new name (add the new key's line above the old ones to rotate)",
                      path, strerror(errno));
        goto out;
    }
    char text[256];
    int n = snprintf(text, sizeof text,
                     "# naq payload keys (NAQ_ENCRYPTION_KEY_FILE): '<key id> <base64 key>';\n"
                     "# the first key encrypts, every key decrypts. Keep this file mode 0600.\n"
                     "%s %s\n",
                     kid, b64);
    if (fchmod(fd, 0600) != 0 || write(fd, text, (size_t)n) != n || fsync(fd) != 0)
        s = naq__fail(NAQ_ERR_IO, "cannot write key file %s (%s)", path, strerror(errno));
    sodium_memzero(text, sizeof text);
    if (close(fd) != 0 && s == NAQ_OK)
        s = naq__fail(NAQ_ERR_IO, "cannot write key file %s (%s)", path, strerror(errno));
    if (s != NAQ_OK)
        unlink(path);
out:
    sodium_memzero(b64, sizeof b64);
    return s;
}

static const key_entry *find_key(const naq__crypt *k, const char *kid)
{
    for (int i = 0; k != NULL && i < k->n; i++)
        if (strcmp(k->keys[i].kid, kid) == 0)
            return &k->keys[i];
    return NULL;
}

/* ---------------------------------------------------------------- envelope */

int naq__crypt_is_sealed_text(const char *json)
{
    return json != NULL && strncmp(json, PREFIX, sizeof PREFIX - 1) == 0;
}

/* "naq_enc:1:<field>:<jid>" into a heap buffer (free()). */
static char *aad(const char *field, const char *jid, size_t *len)
{
    size_t n = strlen("naq_enc:1::") + strlen(field) + strlen(jid);
    char *a = malloc(n + 1);
    if (a != NULL)
        snprintf(a, n + 1, "naq_enc:1:%s:%s", field, jid);
    *len = n;
    return a;
}

static char *b64_of(const unsigned char *bin, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, B64);
    char *out = malloc(cap);
    if (out != NULL)
        sodium_bin2base64(out, cap, bin, len, B64);
    return out;
}

json_t *naq__crypt_seal(const naq__crypt *k, const char *field, const char *jid, const char *plain,
                        size_t len)
{
    unsigned char nonce[NONCE_BYTES];
    randombytes_buf(nonce, sizeof nonce);
    size_t aad_len = 0;
    char *ad = aad(field, jid, &aad_len);
    unsigned char *ct = malloc(len + TAG_BYTES);
    char *ct64 = NULL, *nonce64 = NULL;
    json_t *env = NULL;
    if (ad == NULL || ct == NULL)
        goto out;
    unsigned long long ct_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ct_len, (const unsigned char *)plain, len,
                                               (const unsigned char *)ad, aad_len, NULL, nonce,
                                               k->keys[0].key);
    ct64 = b64_of(ct, (size_t)ct_len);
    nonce64 = b64_of(nonce, sizeof nonce);
    if (ct64 != NULL && nonce64 != NULL)
        env = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "naq_enc", 1, "alg", ALG, "kid",
                        k->keys[0].kid, "jid", jid, "nonce", nonce64, "ct", ct64);
out:
    if (env == NULL)
        naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encrypting the %s of job %s", field, jid);
    free(ad);
    free(ct);
    free(ct64);
    free(nonce64);
    return env;
}

/* The base64 member `name` of env decoded into a heap buffer. */
static unsigned char *member_bin(const json_t *env, const char *name, size_t *len)
{
    const char *text = json_string_value(json_object_get(env, name));
    if (text == NULL)
        return NULL;
    size_t n = strlen(text);
    unsigned char *bin = malloc(n / 4 * 3 + 3);
    if (bin != NULL && sodium_base642bin(bin, n / 4 * 3 + 3, text, n, NULL, len, NULL, B64) != 0) {
        free(bin);
        bin = NULL;
    }
    return bin;
}

naq_status naq__crypt_open(const naq__crypt *k, const char *field, const json_t *env, char **plain,
                           char jid[NAQ_ID_SIZE])
{
    *plain = NULL;
    jid[0] = '\0';
    const char *kid = json_string_value(json_object_get(env, "kid"));
    const char *alg = json_string_value(json_object_get(env, "alg"));
    const char *bound = json_string_value(json_object_get(env, "jid"));
    if (json_integer_value(json_object_get(env, "naq_enc")) != 1 || kid == NULL || bound == NULL ||
        alg == NULL || strcmp(alg, ALG) != 0 || strlen(bound) >= NAQ_ID_SIZE)
        return naq__fail(
            NAQ_ERR_CODEC,
            "cannot decrypt the %s: an envelope this naq cannot read (it reads naq_enc 1 with alg "
            "%s, a kid and a jid)",
            field, ALG);
    if (k == NULL)
        return naq__fail(NAQ_ERR_CODEC,
                         "cannot decrypt the %s of job %s: they are encrypted with key id %s and "
                         "NAQ_ENCRYPTION_KEY_FILE is not set; set it to a key file holding that "
                         "key",
                         field, bound, kid);
    const key_entry *key = find_key(k, kid);
    if (key == NULL)
        return naq__fail(NAQ_ERR_CODEC,
                         "cannot decrypt the %s of job %s: they are encrypted with key id %s, "
                         "which NAQ_ENCRYPTION_KEY_FILE does not hold; add that key's line to the "
                         "file (to rotate, keep old keys below the new one)",
                         field, bound, kid);
    size_t nonce_len = 0, ct_len = 0, aad_len = 0;
    unsigned char *nonce = member_bin(env, "nonce", &nonce_len);
    unsigned char *ct = member_bin(env, "ct", &ct_len);
    char *ad = aad(field, bound, &aad_len);
    unsigned char *out = ct ? malloc(ct_len + 1) : NULL;
    naq_status s = NAQ_OK;
    unsigned long long out_len = 0;
    if (ad == NULL || (ct != NULL && out == NULL))
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory decrypting the %s", field);
    else if (nonce == NULL || ct == NULL || nonce_len != NONCE_BYTES || ct_len < TAG_BYTES)
        s = naq__fail(NAQ_ERR_CODEC,
                      "cannot decrypt the %s of job %s: malformed nonce or ciphertext", field,
                      bound);
    else if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &out_len, NULL, ct, ct_len,
                                                        (const unsigned char *)ad, aad_len, nonce,
                                                        key->key) != 0)
        s = naq__fail(NAQ_ERR_CODEC,
                      "cannot decrypt the %s of job %s with key id %s: the ciphertext was "
                      "changed, or sealed for another job or field",
                      field, bound, kid);
    if (s == NAQ_OK) {
        out[out_len] = '\0';
        *plain = (char *)out;
        out = NULL;
        snprintf(jid, NAQ_ID_SIZE, "%s", bound);
    }
    free(out);
    free(ad);
    free(ct);
    free(nonce);
    return s;
}

/* ---------------------------------------------------------------- members */

naq_status naq__crypt_seal_members(const naq__crypt *k, const char *field, const char *jid,
                                   json_t *obj, const char *const *keys)
{
    json_t *moved = json_object();
    if (moved == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encrypting a record");
    for (const char *const *p = keys; *p != NULL; p++) {
        json_t *v = json_object_get(obj, *p);
        if (v != NULL)
            json_object_set(moved, *p, v);
    }
    naq_status s = NAQ_OK;
    if (json_object_size(moved) > 0) {
        char *text = naq__json_dumps(moved, NAQ__JSON_FLAGS);
        json_t *env = text ? naq__crypt_seal(k, field, jid, text, strlen(text)) : NULL;
        if (text != NULL)
            sodium_memzero(text, strlen(text));
        free(text);
        if (env == NULL)
            s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encrypting the %s of job %s", field,
                          jid);
        for (const char *const *p = keys; s == NAQ_OK && *p != NULL; p++)
            json_object_del(obj, *p);
        if (s == NAQ_OK)
            json_object_set_new(obj, "sealed", env);
    }
    json_decref(moved);
    return s;
}

naq_status naq__crypt_open_members(const naq__crypt *k, const char *field, const char *jid,
                                   json_t *obj)
{
    json_t *env = json_object_get(obj, "sealed");
    if (env == NULL)
        return NAQ_OK;
    char *plain = NULL, bound[NAQ_ID_SIZE];
    naq_status s = naq__crypt_open(k, field, env, &plain, bound);
    if (s == NAQ_OK && strcmp(bound, jid) != 0)
        s = naq__fail(NAQ_ERR_CODEC, "the %s of job %s holds the sealed %s of job %s", field, jid,
                      field, bound);
    json_t *moved = s == NAQ_OK ? json_loads(plain, 0, NULL) : NULL;
    if (s == NAQ_OK && !json_is_object(moved))
        s = naq__fail(NAQ_ERR_CODEC, "the sealed %s of job %s is not a JSON object", field, jid);
    if (s == NAQ_OK) {
        json_object_update(obj, moved);
        json_object_del(obj, "sealed");
    }
    json_decref(moved);
    if (plain != NULL)
        sodium_memzero(plain, strlen(plain));
    free(plain);
    return s;
}

/* ---------------------------------------------------------------- jobs */

/* Replaces *args (heap JSON text; NULL reads as []) by its envelope for
 * (field, jid), wiping the plaintext. `owner` ("job", "schedule") names
 * what failed. */
static naq_status seal_args_text(const naq__crypt *k, const char *field, const char *jid,
                                 const char *owner, char **args)
{
    const char *plain = *args ? *args : "[]";
    json_t *env = naq__crypt_seal(k, field, jid, plain, strlen(plain));
    char *text = env ? naq__json_dumps(env, NAQ__JSON_FLAGS) : NULL;
    json_decref(env);
    if (text == NULL)
        return naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encrypting the args of %s %s", owner,
                         jid);
    if (*args != NULL)
        sodium_memzero(*args, strlen(*args));
    free(*args);
    *args = text;
    return NAQ_OK;
}

naq_status naq__crypt_seal_args(const naq__crypt *k, naq_job *j)
{
    return seal_args_text(k, NAQ_CRYPT_ARGS, j->id, "job", &j->args_json);
}

/* A dead-letter retry publishes the dead job's JSON as it is, under the id
 * "<old>-r<seq>" with original_job_id = <old>: its args stay bound to the
 * job they were sealed for, the first of the chain. */
static int bound_to_job(const char *id, const char *original_id, const char *bound)
{
    if (strcmp(bound, id) == 0)
        return 1;
    if (original_id == NULL)
        return 0;
    size_t n = strlen(bound);
    return strcmp(bound, original_id) == 0 ||
           (strncmp(id, bound, n) == 0 && strncmp(id + n, "-r", 2) == 0);
}

naq_status naq__crypt_open_args(const naq__crypt *k, naq_job *j)
{
    json_t *env = json_loads(j->args_json, 0, NULL);
    char *plain = NULL, bound[NAQ_ID_SIZE];
    naq_status s = env ? naq__crypt_open(k, NAQ_CRYPT_ARGS, env, &plain, bound)
                       : naq__fail(NAQ_ERR_CODEC, "the args of job %s are not JSON", j->id);
    json_decref(env);
    if (s == NAQ_OK && !bound_to_job(j->id, j->original_job_id, bound))
        s = naq__fail(NAQ_ERR_CODEC,
                      "the args of job %s are sealed for job %s: a ciphertext moved to another "
                      "job is refused",
                      j->id, bound);
    if (s != NAQ_OK) {
        free(plain);
        return s;
    }
    free(j->args_json);
    j->args_json = plain;
    return NAQ_OK;
}

void naq__crypt_show_args(const naq__crypt *k, json_t *job)
{
    json_t *env = json_object_get(job, "args");
    if (json_object_get(env, "naq_enc") == NULL)
        return;
    const char *id = json_string_value(json_object_get(job, "job_id"));
    const char *original = json_string_value(json_object_get(job, "original_job_id"));
    char *plain = NULL, bound[NAQ_ID_SIZE];
    json_t *args = NULL;
    if (id != NULL && naq__crypt_open(k, NAQ_CRYPT_ARGS, env, &plain, bound) == NAQ_OK &&
        bound_to_job(id, original, bound))
        args = json_loads(plain, JSON_DECODE_ANY, NULL);
    naq__clear_error();
    free(plain);
    json_object_set_new(job, "args", args ? args : json_string(NAQ_CRYPT_HIDDEN));
}

/* ---------------------------------------------------------------- schedules */

naq_status naq__crypt_seal_schedule_args(const naq__crypt *k, const char *name, char **args_json)
{
    if (*args_json != NULL && naq__crypt_is_sealed_text(*args_json))
        return NAQ_OK;
    return seal_args_text(k, NAQ_CRYPT_SCHEDULE, name, "schedule", args_json);
}

naq_status naq__crypt_open_schedule_args(const naq__crypt *k, const char *name,
                                         const char *args_json, char **plain)
{
    *plain = NULL;
    const char *args = args_json ? args_json : "[]";
    if (!naq__crypt_is_sealed_text(args)) {
        *plain = strdup(args);
        return *plain ? NAQ_OK : naq__fail(NAQ_ERR_NO_MEMORY, "out of memory");
    }
    json_t *env = json_loads(args, 0, NULL);
    char bound[NAQ_ID_SIZE];
    naq_status s = env ? naq__crypt_open(k, NAQ_CRYPT_SCHEDULE, env, plain, bound)
                       : naq__fail(NAQ_ERR_CODEC, "the args of schedule %s are not JSON", name);
    json_decref(env);
    if (s == NAQ_OK && strcmp(bound, name) != 0)
        s = naq__fail(NAQ_ERR_CODEC,
                      "the args of schedule %s are sealed for schedule %s: a ciphertext moved "
                      "to another schedule is refused",
                      name, bound);
    if (s != NAQ_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", naq_last_error());
        free(*plain);
        *plain = NULL;
        return naq__fail(NAQ_ERR_CODEC,
                         "schedule %s has encrypted args that this process cannot open (%s); "
                         "give it NAQ_ENCRYPTION_KEY_FILE with their key",
                         name, why);
    }
    return NAQ_OK;
}

/* ---------------------------------------------------------------- events */

/* Details that can hold what a job computed or printed. */
static const char *const payload_details[] = {"result", "stdout_tail", "stderr_tail",
                                              "error_message", NULL};

naq_status naq__crypt_seal_event(const naq__crypt *k, naq_event *e, char **owned)
{
    *owned = NULL;
    json_t *d = e->details_json ? json_loads(e->details_json, 0, NULL) : json_object();
    if (!json_is_object(d)) {
        json_decref(d);
        return naq__fail(NAQ_ERR_CODEC, "event details of job %s are not a JSON object", e->job_id);
    }
    if (e->error_message != NULL)
        json_object_set_new(d, "error_message", json_string(e->error_message));
    naq_status s = naq__crypt_seal_members(k, NAQ_CRYPT_EVENT, e->job_id, d, payload_details);
    if (s == NAQ_OK && json_object_size(d) > 0 &&
        (*owned = naq__json_dumps(d, NAQ__JSON_FLAGS)) == NULL)
        s = naq__fail(NAQ_ERR_NO_MEMORY, "out of memory encrypting an event");
    json_decref(d);
    if (s == NAQ_OK) {
        e->details_json = *owned;
        e->error_message = NULL;
    }
    return s;
}

void naq__crypt_open_event(const naq__crypt *k, naq_event *e)
{
    if (e->details_json == NULL || strstr(e->details_json, "\"sealed\"") == NULL)
        return;
    json_t *d = json_loads(e->details_json, 0, NULL);
    if (d == NULL || json_object_get(d, "sealed") == NULL) {
        json_decref(d);
        return;
    }
    if (naq__crypt_open_members(k, NAQ_CRYPT_EVENT, e->job_id, d) == NAQ_OK) {
        const char *msg = json_string_value(json_object_get(d, "error_message"));
        char *m = msg ? strdup(msg) : NULL;
        json_object_del(d, "error_message");
        char *text = json_object_size(d) ? naq__json_dumps(d, NAQ__JSON_FLAGS) : NULL;
        free(e->error_message);
        e->error_message = m;
        free(e->details_json);
        e->details_json = text;
    } else if (e->error_message == NULL && e->error_type != NULL) {
        e->error_message = strdup(NAQ_CRYPT_HIDDEN);
    }
    naq__clear_error();
    json_decref(d);
}
