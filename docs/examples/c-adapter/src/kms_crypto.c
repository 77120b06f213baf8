/*
 * The cryptographic core: KDF_01 (SHA-512 split), the wrap format WRAP_01..WRAP_08
 * (AES-256-CBC + HMAC-SHA256 over the ciphertext alone), key records DISK_03..DISK_05 and the
 * SQL-level wrap SQL_01..SQL_04. OpenSSL 3 libcrypto only; the library's padding is off and
 * PKCS#7 is applied and checked here, because library padding checks differ (wrap-format.rst).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "kms.h"

int kms_fail(kms_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    /* Messages may name entries found on disk; JSON needs valid text, so keep printable ASCII. */
    for (char *p = err->message; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    return -1;
}

void kms_bytes_free(kms_bytes *b)
{
    if (b->data) {
        OPENSSL_cleanse(b->data, b->len);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
}

/* BOOT_03, ROT_03, WRAP_03: injected draws in order, the CSPRNG for the ones not given. */
int kms_draw(kms_draws *draws, unsigned char *out, size_t len, kms_error *err)
{
    if (draws && draws->next < draws->count && draws->given[draws->next]) {
        if (draws->given_len[draws->next] != len)
            return kms_fail(err, "input_invalid", "injected draw %zu: expected %zu bytes, found %zu",
                            draws->next, len, draws->given_len[draws->next]);
        memcpy(out, draws->given[draws->next], len);
        draws->next++;
        return 0;
    }
    if (draws)
        draws->next++;
    if (RAND_priv_bytes(out, (int)len) != 1)
        return kms_fail(err, "internal_error", "the CSPRNG failed");
    return 0;
}

/* KDF_01: D = SHA-512(P); enc = D[0:32], mac = D[32:64]. No salt, no iterations. */
void kms_derive_kek(const unsigned char *passphrase, size_t len, kms_kek *kek)
{
    unsigned char d[64];
    unsigned int n = 0;
    EVP_Digest(passphrase, len, d, &n, EVP_sha512(), NULL);
    memcpy(kek->enc, d, KMS_HALF_KEY);
    memcpy(kek->mac, d + KMS_HALF_KEY, KMS_HALF_KEY);
    OPENSSL_cleanse(d, sizeof d);
}

static int hmac_sha256(const unsigned char mac_key[KMS_HALF_KEY], const unsigned char *data,
                       size_t len, unsigned char tag[KMS_MAC])
{
    unsigned int n = 0;
    return HMAC(EVP_sha256(), mac_key, KMS_HALF_KEY, data, len, tag, &n) != NULL && n == KMS_MAC
               ? 0
               : -1;
}

/* AES-256-CBC over whole blocks, no library padding (wrap-format.rst, implementation notes). */
static int aes_cbc(int encrypt, const unsigned char key[KMS_HALF_KEY],
                   const unsigned char iv[KMS_IV], const unsigned char *in, size_t len,
                   unsigned char *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok = 0;
    if (ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv, encrypt) == 1 &&
        EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
        EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1 &&
        EVP_CipherFinal_ex(ctx, out + n, &fin) == 1 && (size_t)(n + fin) == len)
        ok = 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* WRAP_01..WRAP_04: W = HMAC-SHA256(mac, C) || IV || C, C = AES-256-CBC(enc, IV, PKCS#7(P)). */
int kms_wrap(const unsigned char enc[KMS_HALF_KEY], const unsigned char mac[KMS_HALF_KEY],
             const unsigned char *plaintext, size_t len, const unsigned char iv[KMS_IV],
             kms_bytes *out, kms_error *err)
{
    size_t pad = KMS_IV - len % KMS_IV; /* WRAP_02: always 1..16 bytes */
    size_t clen = len + pad;
    unsigned char *padded = malloc(clen);
    out->len = KMS_MAC + KMS_IV + clen;
    out->data = malloc(out->len);
    if (!padded || !out->data) {
        free(padded);
        kms_bytes_free(out);
        return kms_fail(err, "internal_error", "out of memory wrapping %zu bytes", len);
    }
    if (len)
        memcpy(padded, plaintext, len);
    memset(padded + len, (int)pad, pad);
    memcpy(out->data + KMS_MAC, iv, KMS_IV);
    int rc = aes_cbc(1, enc, iv, padded, clen, out->data + KMS_MAC + KMS_IV);
    if (rc == 0) /* WRAP_04: the MAC covers C only, not the IV */
        rc = hmac_sha256(mac, out->data + KMS_MAC + KMS_IV, clen, out->data);
    OPENSSL_cleanse(padded, clen);
    free(padded);
    if (rc != 0) {
        kms_bytes_free(out);
        return kms_fail(err, "internal_error", "libcrypto failed to wrap");
    }
    return 0;
}

/* WRAP_05..WRAP_08, in the pinned order; `what` names the value in messages. */
int kms_unwrap(const unsigned char enc[KMS_HALF_KEY], const unsigned char mac[KMS_HALF_KEY],
               const unsigned char *wrapped, size_t len, const char *what, kms_bytes *out,
               kms_error *err)
{
    out->data = NULL;
    out->len = 0;
    /* 1. WRAP_05 */
    if (len < 64)
        return kms_fail(err, "wrapped_too_short", "%s: expected at least 64 bytes, found %zu",
                        what, len);
    /* 2. WRAP_06 */
    if ((len - 48) % 16 != 0)
        return kms_fail(err, "wrapped_length_invalid",
                        "%s: %zu bytes after the HMAC and IV are not whole 16-byte blocks", what,
                        len - 48);
    /* 3. WRAP_07: HMAC over C, compared in constant time, before any decryption */
    const unsigned char *tag = wrapped, *iv = wrapped + KMS_MAC, *c = wrapped + KMS_MAC + KMS_IV;
    size_t clen = len - KMS_MAC - KMS_IV;
    unsigned char expect[KMS_MAC];
    if (hmac_sha256(mac, c, clen, expect) != 0)
        return kms_fail(err, "internal_error", "libcrypto failed to compute an HMAC");
    if (CRYPTO_memcmp(expect, tag, KMS_MAC) != 0)
        return kms_fail(err, "hmac_mismatch", "%s: the HMAC does not verify", what);
    /* 4. WRAP_08: decrypt, then strict PKCS#7 */
    unsigned char *q = malloc(clen);
    if (!q)
        return kms_fail(err, "internal_error", "out of memory unwrapping %zu bytes", len);
    if (aes_cbc(0, enc, iv, c, clen, q) != 0) {
        free(q);
        return kms_fail(err, "internal_error", "libcrypto failed to decrypt");
    }
    unsigned n = q[clen - 1];
    int bad = n < 1 || n > 16;
    for (unsigned i = 1; !bad && i <= n; i++)
        bad = q[clen - i] != n;
    if (bad) {
        OPENSSL_cleanse(q, clen);
        free(q);
        return kms_fail(err, "bad_padding", "%s: the HMAC verified but the padding is invalid",
                        what);
    }
    out->data = q;
    out->len = clen - n;
    return 0;
}

/* DISK_03: uint32le(id) || W, the id written little-endian explicitly. */
void kms_encode_record(uint32_t key_id, const unsigned char wrapped[KMS_WRAPPED_KEY],
                       unsigned char record[KMS_RECORD])
{
    for (int i = 0; i < 4; i++)
        record[i] = (unsigned char)(key_id >> (8 * i));
    memcpy(record + 4, wrapped, KMS_WRAPPED_KEY);
}

/* DISK_03, DISK_04, DISK_05 in that order; file_id < 0 skips the name check. */
int kms_decode_record(const unsigned char *record, size_t len, int file_id, const char *what,
                      uint32_t *key_id, kms_error *err)
{
    if (len != KMS_RECORD)
        return kms_fail(err, "record_size_invalid", "%s: expected %d bytes, found %zu", what,
                        KMS_RECORD, len);
    uint32_t id = (uint32_t)record[0] | (uint32_t)record[1] << 8 | (uint32_t)record[2] << 16 |
                  (uint32_t)record[3] << 24;
    if (id > 2)
        return kms_fail(err, "record_id_invalid", "%s: expected a key id of 0, 1 or 2, found %u",
                        what, id);
    if (file_id >= 0 && id != (uint32_t)file_id)
        return kms_fail(err, "record_id_mismatch", "%s: the file name says key %d, the record %u",
                        what, file_id, id);
    *key_id = id;
    return 0;
}

/* SQL_01: pg_wrap = wrap under the SQL key's halves with a fresh IV. */
int kms_sql_wrap(const unsigned char sql_key[KMS_INTERNAL_KEY], const unsigned char *plaintext,
                 size_t len, kms_draws *draws, kms_bytes *out, kms_error *err)
{
    unsigned char iv[KMS_IV];
    if (kms_draw(draws, iv, sizeof iv, err) != 0)
        return -1;
    return kms_wrap(sql_key, sql_key + KMS_HALF_KEY, plaintext, len, iv, out, err);
}

/* SQL_02..SQL_04: the unwrap steps, length first; the bytes returned as they are. */
int kms_sql_unwrap(const unsigned char sql_key[KMS_INTERNAL_KEY], const unsigned char *wrapped,
                   size_t len, kms_bytes *out, kms_error *err)
{
    return kms_unwrap(sql_key, sql_key + KMS_HALF_KEY, wrapped, len, "wrapped value", out, err);
}
