/*
 * nkey.c - NATS NKey user keys: the public key of a seed, and new seeds.
 *
 * nats.c signs the server's nonce with a seed file, but it wants the
 * public key too (natsOptions_SetNKeyFromSeed), and `naq server --auth`
 * must write public keys into the server's configuration. An NKey is an
 * Ed25519 key in NATS's text form: base32 (RFC 4648, no padding) of
 * prefix byte(s) + 32 key bytes + CRC-16/XMODEM (little endian). A user's
 * public key starts with 'U', its seed with "SU". Ed25519 comes from
 * OpenSSL's libcrypto, which nats.c already links.
 */
#include "core.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define PREFIX_SEED (18 << 3) /* 'S' */
#define PREFIX_USER (20 << 3) /* 'U' */

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static uint16_t crc16(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

static void b32_encode(const unsigned char *in, size_t n, char *out)
{
    unsigned buf = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        buf = (buf << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = b32[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = b32[(buf << (5 - bits)) & 31];
    out[o] = '\0';
}

/* Decodes at most cap bytes; -1 on a character outside the alphabet. */
static int b32_decode(const char *in, unsigned char *out, size_t cap)
{
    unsigned buf = 0;
    int bits = 0;
    size_t o = 0;
    for (; *in != '\0'; in++) {
        const char *at = strchr(b32, *in);
        if (at == NULL)
            return -1;
        buf = (buf << 5) | (unsigned)(at - b32);
        bits += 5;
        if (bits >= 8) {
            if (o == cap)
                return -1;
            out[o++] = (unsigned char)(buf >> (bits - 8));
            bits -= 8;
        }
    }
    return (int)o;
}

/* The 32 raw seed bytes of a user seed "SU...", or -1. */
static int seed_raw(const char *seed, unsigned char raw[32])
{
    unsigned char d[40];
    if (strlen(seed) != 58 || b32_decode(seed, d, sizeof d) != 36)
        return -1;
    uint16_t want = (uint16_t)(d[34] | (d[35] << 8));
    if (crc16(d, 34) != want || (d[0] & 0xf8) != PREFIX_SEED ||
        (((d[0] & 7) << 5) | ((d[1] & 0xf8) >> 3)) != PREFIX_USER)
        return -1;
    memcpy(raw, d + 2, 32);
    return 0;
}

static int public_of_raw(const unsigned char raw[32], char pub[NAQ_NKEY_SIZE])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, 32);
    unsigned char d[35];
    size_t len = 32;
    int ok = k != NULL && EVP_PKEY_get_raw_public_key(k, d + 1, &len) == 1 && len == 32;
    EVP_PKEY_free(k);
    if (!ok)
        return -1;
    d[0] = PREFIX_USER;
    uint16_t crc = crc16(d, 33);
    d[33] = (unsigned char)(crc & 0xff);
    d[34] = (unsigned char)(crc >> 8);
    b32_encode(d, 35, pub);
    return 0;
}

naq_status naq__nkey_public(const char *seed, char pub[NAQ_NKEY_SIZE])
{
    unsigned char raw[32];
    int bad = seed_raw(seed, raw) != 0 || public_of_raw(raw, pub) != 0;
    memset(raw, 0, sizeof raw);
    if (bad)
        return naq__fail(NAQ_ERR_INVALID_ARG,
                         "not an NKey user seed (58 characters starting with SU); make one with "
                         "'naq auth nkey'");
    return NAQ_OK;
}

naq_status naq__nkey_create(char seed[NAQ_NKEY_SIZE], char pub[NAQ_NKEY_SIZE])
{
    unsigned char d[36];
    if (RAND_bytes(d + 2, 32) != 1)
        return naq__fail(NAQ_ERR_IO, "no random bytes for a new NKey");
    d[0] = (unsigned char)(PREFIX_SEED | (PREFIX_USER >> 5));
    d[1] = (unsigned char)((PREFIX_USER & 31) << 3);
    uint16_t crc = crc16(d, 34);
    d[34] = (unsigned char)(crc & 0xff);
    d[35] = (unsigned char)(crc >> 8);
    b32_encode(d, 36, seed);
    int bad = public_of_raw(d + 2, pub) != 0;
    memset(d, 0, sizeof d);
    return bad ? naq__fail(NAQ_ERR_IO, "cannot derive an NKey's public key") : NAQ_OK;
}

naq_status naq__nkey_seed_file_public(const char *path, char pub[NAQ_NKEY_SIZE])
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return naq__fail(NAQ_ERR_INVALID_ARG, "NAQ_NKEY_SEED_FILE: cannot read '%s': %s", path,
                         strerror(errno));
    /* The seed is the first line that looks like one (a file written by
     * nsc or nk may have comments around it). */
    char line[256];
    naq_status s = NAQ_ERR_INVALID_ARG;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n \t")] = '\0';
        if (strncmp(line, "SU", 2) == 0 && naq__nkey_public(line, pub) == NAQ_OK) {
            s = NAQ_OK;
            break;
        }
    }
    memset(line, 0, sizeof line);
    fclose(f);
    if (s != NAQ_OK)
        naq__fail(NAQ_ERR_INVALID_ARG,
                  "NAQ_NKEY_SEED_FILE '%s' holds no NKey user seed (a line of 58 characters "
                  "starting with SU); make one with 'naq auth nkey'",
                  path);
    return s;
}
