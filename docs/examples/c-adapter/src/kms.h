/*
 * The key manager of the 2020 "kms_v10" cluster key management, written from the pgkms
 * specification (spec/chapters/, one .rst per chapter). This header is the boundary a PostgreSQL fork keeps:
 * the adapter (adapter_ops.c) calls only what is declared here, so a fork replaces the
 * kms_*.c files with calls into its own key manager and keeps the protocol files.
 *
 * Every fallible function returns 0 on success and -1 on failure, having filled a kms_error
 * with one stable code of the spec's table (error-codes.rst, ERR_01) and a message that names
 * what is wrong (file, expected versus found) and never a secret (passphrase, key, plaintext).
 */
#ifndef PGKMS_KMS_H
#define PGKMS_KMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMS_KEY_COUNT 3
#define KMS_HALF_KEY 32               /* KDF_01, KEY_01: an AES-256 or HMAC-SHA256 key */
#define KMS_INTERNAL_KEY 64           /* KEY_01 */
#define KMS_IV 16                     /* WRAP_03 */
#define KMS_MAC 32                    /* WRAP_04 */
#define KMS_WRAPPED_KEY 128           /* DISK_03: a wrapped internal key */
#define KMS_RECORD 132                /* DISK_03: uint32le(id) || wrapped key */
#define KMS_PASSPHRASE_MIN 64         /* PASS_04, PASS_07 */
#define KMS_PASSPHRASE_MAX 1024       /* PASS_05, PASS_06 */
#define KMS_PROMPT "Enter database encryption pass phrase:" /* PASS_02 */
#define KMS_COMMAND_TIMEOUT 60.0      /* PASS_08 */
#define KMS_LOCK_TIMEOUT 10.0         /* CONC_02 */

#define KMS_KEY_DIR "pg_cryptokeys"         /* DISK_01 */
#define KMS_TMP_DIR "pg_cryptokeys_tmp"     /* ROT_04 */
#define KMS_LOCK_FILE "pg_cryptokeys.lock"  /* CONC_01 */

typedef struct {
    const char *code; /* a code of error-codes.rst, or NULL when there is no failure */
    char message[512];
} kms_error;

/* Fill `err` (printf-style message, made printable ASCII) and return -1. */
int kms_fail(kms_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A byte string that may hold a secret: wiped on free. */
typedef struct {
    unsigned char *data;
    size_t len;
} kms_bytes;

void kms_bytes_free(kms_bytes *b);

typedef struct {
    unsigned char enc[KMS_HALF_KEY];
    unsigned char mac[KMS_HALF_KEY];
} kms_kek;

typedef struct {
    unsigned char key[KMS_KEY_COUNT][KMS_INTERNAL_KEY];
} kms_keyset;

typedef enum { KMS_BOOTSTRAP, KMS_STARTUP, KMS_ROTATION } kms_purpose;

typedef enum { KMS_NOTHING, KMS_DISCARD_TMP, KMS_ADOPT_TMP } kms_decision;

/*
 * Random draws of one procedure (BOOT_03, ROT_03, WRAP_03): the injected ones in order, then
 * the CSPRNG. `given[i]` NULL means "draw from the CSPRNG".
 */
typedef struct {
    const unsigned char *given[2 * KMS_KEY_COUNT];
    size_t given_len[2 * KMS_KEY_COUNT];
    size_t count;
    size_t next;
} kms_draws;

int kms_draw(kms_draws *draws, unsigned char *out, size_t len, kms_error *err);

/* -- kms_crypto.c ------------------------------------------------------------------------- */
void kms_derive_kek(const unsigned char *passphrase, size_t len, kms_kek *kek);          /* KDF_01 */
int kms_wrap(const unsigned char enc[KMS_HALF_KEY], const unsigned char mac[KMS_HALF_KEY],
             const unsigned char *plaintext, size_t len, const unsigned char iv[KMS_IV],
             kms_bytes *out, kms_error *err);                                        /* WRAP_01..04 */
int kms_unwrap(const unsigned char enc[KMS_HALF_KEY], const unsigned char mac[KMS_HALF_KEY],
               const unsigned char *wrapped, size_t len, const char *what, kms_bytes *out,
               kms_error *err);                                                      /* WRAP_05..08 */
void kms_encode_record(uint32_t key_id, const unsigned char wrapped[KMS_WRAPPED_KEY],
                       unsigned char record[KMS_RECORD]);                            /* DISK_03 */
int kms_decode_record(const unsigned char *record, size_t len, int file_id, const char *what,
                      uint32_t *key_id, kms_error *err);                      /* DISK_03..05 */

/* -- kms_passphrase.c --------------------------------------------------------------------- */
int kms_substitute(const char *command, char **out, kms_error *err);                 /* PASS_02 */
int kms_run_passphrase_command(const char *command, kms_purpose purpose, double timeout,
                               kms_bytes *passphrase, kms_error *err);    /* PASS_01..03, 08..10 */
int kms_check_passphrase(const unsigned char *raw, size_t len, kms_purpose purpose,
                         size_t *effective_len, kms_error *err);                 /* PASS_04..07 */
/* PASS_09: kill the running command's process group; async-signal-safe. */
void kms_kill_running_command(void);

/* -- kms_procedures.c --------------------------------------------------------------------- */
int kms_bootstrap(const char *datadir, const unsigned char *passphrase, size_t len,
                  kms_draws *draws, double lock_timeout, kms_error *err);        /* BOOT_01..05 */
int kms_startup(const char *datadir, const unsigned char *passphrase, size_t len,
                double lock_timeout, kms_keyset *keys, kms_error *err);         /* START_01..04 */
int kms_recover(const char *datadir, const unsigned char *passphrase, size_t len,
                double lock_timeout, kms_decision *decision, kms_error *err);    /* REC_01..06 */
int kms_rotate(const char *datadir, const unsigned char *old_pass, size_t old_len,
               const unsigned char *new_pass, size_t new_len, kms_draws *draws,
               double lock_timeout, kms_error *err);                              /* ROT_01..08 */
int kms_upgrade_keys(const char *old_datadir, const char *new_datadir,
                     const unsigned char *passphrase, size_t len, double lock_timeout,
                     kms_error *err);                                                /* UPG_01 */

/* SQL_01..SQL_04: pg_wrap / pg_unwrap with the SQL key (internal key 0). */
int kms_sql_wrap(const unsigned char sql_key[KMS_INTERNAL_KEY], const unsigned char *plaintext,
                 size_t len, kms_draws *draws, kms_bytes *out, kms_error *err);
int kms_sql_unwrap(const unsigned char sql_key[KMS_INTERNAL_KEY], const unsigned char *wrapped,
                   size_t len, kms_bytes *out, kms_error *err);

#endif
