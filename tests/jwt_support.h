/*
 * jwt_support.h - a throwaway NATS operator, account and user for tests of
 * NAQ_CREDS_FILE: NKeys of each kind and the JWTs that chain them, signed
 * with Ed25519 (OpenSSL), as `nsc` would write them.
 */
#ifndef NAQ_JWT_SUPPORT_H
#define NAQ_JWT_SUPPORT_H

#include "harness.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define JWT_PREFIX_OPERATOR (14 << 3)
#define JWT_PREFIX_ACCOUNT 0
#define JWT_PREFIX_USER (20 << 3)
#define JWT_PREFIX_SEED (18 << 3)

typedef struct {
    unsigned char raw[32]; /* the private seed */
    char pub[64];          /* "O...", "A...", "U..." */
    char seed[64];         /* "SO...", "SA...", "SU..." */
} jwt_key;

static inline uint16_t jwt_crc16(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

static inline void jwt_b32(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned buf = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        buf = (buf << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = a[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = a[(buf << (5 - bits)) & 31];
    out[o] = '\0';
}

static inline void jwt_key_new(jwt_key *k, int prefix)
{
    assert_int_equal(RAND_bytes(k->raw, 32), 1);
    EVP_PKEY *p = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->raw, 32);
    unsigned char d[36];
    size_t len = 32;
    assert_non_null(p);
    assert_int_equal(EVP_PKEY_get_raw_public_key(p, d + 1, &len), 1);
    EVP_PKEY_free(p);
    d[0] = (unsigned char)prefix;
    uint16_t crc = jwt_crc16(d, 33);
    d[33] = (unsigned char)(crc & 0xff);
    d[34] = (unsigned char)(crc >> 8);
    jwt_b32(d, 35, k->pub);
    d[0] = (unsigned char)(JWT_PREFIX_SEED | (prefix >> 5));
    d[1] = (unsigned char)((prefix & 31) << 3);
    memcpy(d + 2, k->raw, 32);
    crc = jwt_crc16(d, 34);
    d[34] = (unsigned char)(crc & 0xff);
    d[35] = (unsigned char)(crc >> 8);
    jwt_b32(d, 36, k->seed);
}

static inline void jwt_b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = a[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

/* A JWT of claims `nats` (a JSON object) for subject `sub`, signed by
 * issuer. out: at least 4096 bytes. */
static inline void jwt_make(const jwt_key *issuer, const char *sub, const char *name,
                            const char *nats, char *out)
{
    char claims[2048], head[64], body[3000], sig_text[100];
    static int serial;
    snprintf(claims, sizeof claims,
             "{\"jti\":\"NAQTEST%06d\",\"iat\":%lld,\"iss\":\"%s\",\"name\":\"%s\",\"sub\":\"%s\","
             "\"nats\":%s}",
             ++serial, (long long)time(NULL), issuer->pub, name, sub, nats);
    const char *header = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";
    jwt_b64url((const unsigned char *)header, strlen(header), head);
    jwt_b64url((const unsigned char *)claims, strlen(claims), body);
    char signing[3200];
    snprintf(signing, sizeof signing, "%s.%s", head, body);
    EVP_PKEY *p = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, issuer->raw, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[64];
    size_t siglen = sizeof sig;
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, p), 1);
    assert_int_equal(
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)signing, strlen(signing)), 1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(p);
    jwt_b64url(sig, siglen, sig_text);
    snprintf(out, 4096, "%s.%s", signing, sig_text);
}

/* Writes a .creds file for user (its JWT and seed). */
static inline void jwt_write_creds(const char *path, const char *user_jwt, const jwt_key *user)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n\n"
            "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n",
            user_jwt, user->seed);
    fclose(f);
}

#define JWT_ACCOUNT_CLAIMS                                                                         \
    "{\"type\":\"account\",\"version\":2,\"limits\":{\"subs\":-1,\"data\":-1,\"payload\":-1,"      \
    "\"imports\":-1,\"exports\":-1,\"wildcards\":true,\"conn\":-1,\"leaf\":-1,"                    \
    "\"mem_storage\":-1,\"disk_storage\":-1,\"streams\":-1,\"consumer\":-1}}"
#define JWT_USER_CLAIMS                                                                            \
    "{\"type\":\"user\",\"version\":2,\"pub\":{},\"sub\":{},\"subs\":-1,\"data\":-1,"              \
    "\"payload\":-1}"
#define JWT_OPERATOR_CLAIMS "{\"type\":\"operator\",\"version\":2}"

#endif
