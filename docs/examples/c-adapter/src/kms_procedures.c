/*
 * The procedures on a data directory: bootstrap (BOOT_01..BOOT_05), startup (START_01..
 * START_04), recovery (REC_01..REC_06), rotation (ROT_01..ROT_08) and pg_upgrade's key copy
 * (UPG_01), each under the lock of its data directory (CONC_01). Recovery classifies a
 * directory with the very code startup uses to open it (open_set), so it decides by content,
 * never by counting files (REC_02).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kms_disk.h"

typedef enum { DIR_ABSENT, DIR_INVALID, DIR_VALID } dir_state;

/* START_02, START_03, KEY_03: read PGDATA/<dir> and unwrap its three keys under `kek`; every
 * key is attempted, and the first failure in id order is the answer (all three HMACs failing:
 * wrong_passphrase). */
static int open_set(disk_cluster *c, const char *dir, const kms_kek *kek, kms_keyset *keys,
                    kms_error *err)
{
    unsigned char records[KMS_KEY_COUNT][KMS_RECORD];
    if (disk_read_records(c, dir, records, err) != 0)
        return -1;
    kms_error failure[KMS_KEY_COUNT];
    int failed = 0, hmac_failed = 0;
    for (int i = 0; i < KMS_KEY_COUNT; i++) {
        char what[600];
        snprintf(what, sizeof what, "%s/%s/%04X", c->label, dir, (unsigned)i);
        kms_bytes key = {0};
        failure[i].code = NULL;
        if (kms_unwrap(kek->enc, kek->mac, records[i] + 4, KMS_WRAPPED_KEY, what, &key,
                       &failure[i]) != 0) {
            failed++;
            hmac_failed += strcmp(failure[i].code, "hmac_mismatch") == 0;
            continue;
        }
        if (key.len != KMS_INTERNAL_KEY) { /* KEY_03: one more way to fail, in id order */
            size_t len = key.len;
            kms_bytes_free(&key);
            kms_fail(&failure[i], "key_length_invalid", "%s: expected a 64-byte key, found %zu",
                     what, len);
            failed++;
            continue;
        }
        memcpy(keys->key[i], key.data, KMS_INTERNAL_KEY);
        kms_bytes_free(&key);
    }
    if (failed == 0)
        return 0;
    OPENSSL_cleanse(keys, sizeof *keys);
    if (hmac_failed == KMS_KEY_COUNT)
        return kms_fail(err, "wrong_passphrase",
                        "%s/%s: no key opens under this passphrase (all three HMACs fail)",
                        c->label, dir);
    for (int i = 0; i < KMS_KEY_COUNT; i++)
        if (failure[i].code) {
            *err = failure[i];
            return -1;
        }
    return -1;
}

/* REC_02: VALID when startup would open it; an I/O error or a link decides nothing. */
static int classify(disk_cluster *c, const char *dir, const kms_kek *kek, dir_state *state,
                    kms_error *err)
{
    int present = disk_exists(c, dir, err);
    if (present < 0)
        return -1;
    if (!present) {
        *state = DIR_ABSENT;
        return 0;
    }
    kms_keyset keys;
    kms_error why = {0};
    if (open_set(c, dir, kek, &keys, &why) == 0) {
        OPENSSL_cleanse(&keys, sizeof keys);
        *state = DIR_VALID;
        return 0;
    }
    if (strcmp(why.code, "storage_error") == 0 || strcmp(why.code, "symlink_refused") == 0) {
        *err = why;
        return -1;
    }
    *state = DIR_INVALID;
    return 0;
}

/* REC_01..REC_05 on an opened, locked data directory. */
static int recover_locked(disk_cluster *c, const kms_kek *kek, kms_decision *decision,
                          kms_error *err)
{
    int tmp_present = disk_exists(c, KMS_TMP_DIR, err);
    if (tmp_present < 0)
        return -1;
    if (!tmp_present) { /* REC_01 */
        *decision = KMS_NOTHING;
        return 0;
    }
    dir_state cur, tmp;
    if (classify(c, KMS_KEY_DIR, kek, &cur, err) != 0 ||
        classify(c, KMS_TMP_DIR, kek, &tmp, err) != 0)
        return -1;
    if (cur == DIR_VALID) { /* REC_03 */
        if (disk_remove_dir(c, KMS_TMP_DIR, PROC_RECOVERY, err) != 0)
            return -1;
        *decision = KMS_DISCARD_TMP;
        return 0;
    }
    if (tmp == DIR_VALID) { /* REC_04 */
        if (cur != DIR_ABSENT && disk_remove_dir(c, KMS_KEY_DIR, PROC_RECOVERY, err) != 0)
            return -1;
        if (disk_rename_into_place(c, KMS_TMP_DIR, KMS_KEY_DIR, PROC_RECOVERY, err) != 0)
            return -1;
        *decision = KMS_ADOPT_TMP;
        return 0;
    }
    return kms_fail(err, "no_valid_key_set", /* REC_05 */
                    "%s: neither %s nor %s holds a key set that opens under this passphrase; "
                    "nothing was changed",
                    c->label, KMS_KEY_DIR, KMS_TMP_DIR);
}

/* The passphrase after the length rules of `purpose`, and its KEK. */
static int kek_for(const unsigned char *passphrase, size_t len, kms_purpose purpose,
                   kms_kek *kek, kms_error *err)
{
    size_t use = 0;
    if (kms_check_passphrase(passphrase, len, purpose, &use, err) != 0)
        return -1;
    kms_derive_kek(passphrase, use, kek);
    return 0;
}

/* BOOT_03 / ROT_03 step: records of `keys` wrapped under `kek`, one IV drawn per key. */
static int wrap_records(const kms_keyset *keys, const kms_kek *kek, kms_draws *draws,
                        unsigned char records[KMS_KEY_COUNT][KMS_RECORD], kms_error *err)
{
    for (int i = 0; i < KMS_KEY_COUNT; i++) {
        unsigned char iv[KMS_IV];
        kms_bytes wrapped = {0};
        if (kms_draw(draws, iv, sizeof iv, err) != 0 ||
            kms_wrap(kek->enc, kek->mac, keys->key[i], KMS_INTERNAL_KEY, iv, &wrapped, err) != 0)
            return -1;
        kms_encode_record((uint32_t)i, wrapped.data, records[i]);
        kms_bytes_free(&wrapped);
    }
    return 0;
}

/* ROT_07 / BOOT_05: a failure before the point of no return leaves no temporary set. */
static int undo_tmp(disk_cluster *c, disk_procedure proc, kms_error *err)
{
    kms_error ignored = {0};
    if (disk_exists(c, KMS_TMP_DIR, &ignored) == 1)
        disk_remove_dir(c, KMS_TMP_DIR, proc, &ignored);
    (void)err;
    return -1;
}

/* ROT_04..ROT_08 (also UPG_01's copy): write `records` aside, remove the current set, rename. */
static int swap_in(disk_cluster *c, const unsigned char records[KMS_KEY_COUNT][KMS_RECORD],
                   kms_error *err)
{
    if (disk_write_set(c, KMS_TMP_DIR, PROC_ROTATION, records, err) != 0)
        return undo_tmp(c, PROC_ROTATION, err);
    kms_error cause = {0};
    /* the point of no return: from here the new set is the one that survives (ROT_08) */
    if (disk_remove_dir(c, KMS_KEY_DIR, PROC_ROTATION, &cause) != 0 ||
        disk_rename_into_place(c, KMS_TMP_DIR, KMS_KEY_DIR, PROC_ROTATION, &cause) != 0)
        return kms_fail(err, "rotation_incomplete",
                        "%s (%s): the keys now open under the new passphrase; the next startup or "
                        "recovery under it completes the rotation",
                        cause.message, cause.code);
    return 0;
}

int kms_bootstrap(const char *datadir, const unsigned char *passphrase, size_t len,
                  kms_draws *draws, double lock_timeout, kms_error *err)
{
    size_t use = 0;
    if (kms_check_passphrase(passphrase, len, KMS_BOOTSTRAP, &use, err) != 0) /* BOOT_02 */
        return -1;
    disk_cluster c;
    if (disk_open_cluster(datadir, "PGDATA", lock_timeout, &c, err) != 0)
        return -1;
    int rc = -1, present = disk_exists(&c, KMS_KEY_DIR, err), complete = 0;
    kms_keyset keys;
    kms_kek kek;
    unsigned char records[KMS_KEY_COUNT][KMS_RECORD];
    if (present != 0) { /* BOOT_01 */
        if (present > 0)
            kms_fail(err, "keys_already_exist", "PGDATA/%s already exists", KMS_KEY_DIR);
        goto out;
    }
    present = disk_exists(&c, KMS_TMP_DIR, err);
    if (present < 0)
        goto out;
    if (present) { /* BOOT_05: a lone incomplete tmp is an interrupted bootstrap */
        complete = disk_is_complete_set(&c, KMS_TMP_DIR, err);
        if (complete < 0)
            goto out;
        if (complete) {
            kms_fail(err, "keys_already_exist",
                     "PGDATA/%s holds a complete key set (an interrupted rotation); recover it",
                     KMS_TMP_DIR);
            goto out;
        }
        if (disk_remove_dir(&c, KMS_TMP_DIR, PROC_BOOTSTRAP, err) != 0)
            goto out;
    }
    kms_derive_kek(passphrase, use, &kek);
    for (int i = 0; i < KMS_KEY_COUNT; i++) /* BOOT_03, KEY_01: keys 0, 1, 2 then the IVs */
        if (kms_draw(draws, keys.key[i], KMS_INTERNAL_KEY, err) != 0)
            goto wipe;
    if (wrap_records(&keys, &kek, draws, records, err) != 0)
        goto wipe;
    if (disk_write_set(&c, KMS_TMP_DIR, PROC_BOOTSTRAP, records, err) != 0) { /* BOOT_04 */
        undo_tmp(&c, PROC_BOOTSTRAP, err);
        goto wipe;
    }
    int renamed = disk_rename_into_place(&c, KMS_TMP_DIR, KMS_KEY_DIR, PROC_BOOTSTRAP, err);
    if (renamed == -1)
        undo_tmp(&c, PROC_BOOTSTRAP, err);
    rc = renamed == 0 ? 0 : -1;
wipe:
    OPENSSL_cleanse(&keys, sizeof keys);
    OPENSSL_cleanse(&kek, sizeof kek);
out:
    disk_close_cluster(&c);
    return rc;
}

int kms_startup(const char *datadir, const unsigned char *passphrase, size_t len,
                double lock_timeout, kms_keyset *keys, kms_error *err)
{
    kms_kek kek;
    if (kek_for(passphrase, len, KMS_STARTUP, &kek, err) != 0) /* START_01 */
        return -1;
    disk_cluster c;
    int rc = -1;
    if (disk_open_cluster(datadir, "PGDATA", lock_timeout, &c, err) == 0) {
        kms_decision decision;
        if (recover_locked(&c, &kek, &decision, err) == 0)
            rc = open_set(&c, KMS_KEY_DIR, &kek, keys, err);
        disk_close_cluster(&c);
    }
    OPENSSL_cleanse(&kek, sizeof kek);
    return rc;
}

int kms_recover(const char *datadir, const unsigned char *passphrase, size_t len,
                double lock_timeout, kms_decision *decision, kms_error *err)
{
    kms_kek kek;
    if (kek_for(passphrase, len, KMS_STARTUP, &kek, err) != 0)
        return -1;
    disk_cluster c;
    int rc = -1;
    if (disk_open_cluster(datadir, "PGDATA", lock_timeout, &c, err) == 0) {
        rc = recover_locked(&c, &kek, decision, err);
        disk_close_cluster(&c);
    }
    OPENSSL_cleanse(&kek, sizeof kek);
    return rc;
}

int kms_rotate(const char *datadir, const unsigned char *old_pass, size_t old_len,
               const unsigned char *new_pass, size_t new_len, kms_draws *draws,
               double lock_timeout, kms_error *err)
{
    kms_kek old_kek, new_kek;
    kms_keyset keys;
    unsigned char records[KMS_KEY_COUNT][KMS_RECORD];
    if (kek_for(old_pass, old_len, KMS_STARTUP, &old_kek, err) != 0)
        return -1;
    disk_cluster c;
    int rc = -1;
    if (disk_open_cluster(datadir, "PGDATA", lock_timeout, &c, err) != 0)
        goto wipe;
    kms_decision decision;
    if (recover_locked(&c, &old_kek, &decision, err) != 0 || /* ROT_01 */
        open_set(&c, KMS_KEY_DIR, &old_kek, &keys, err) != 0 ||
        kek_for(new_pass, new_len, KMS_ROTATION, &new_kek, err) != 0) /* ROT_02 */
        goto close;
    if (wrap_records(&keys, &new_kek, draws, records, err) == 0) /* ROT_03 */
        rc = swap_in(&c, records, err);
    OPENSSL_cleanse(&new_kek, sizeof new_kek);
close:
    disk_close_cluster(&c);
wipe:
    OPENSSL_cleanse(&keys, sizeof keys);
    OPENSSL_cleanse(&old_kek, sizeof old_kek);
    return rc;
}

int kms_upgrade_keys(const char *old_datadir, const char *new_datadir,
                     const unsigned char *passphrase, size_t len, double lock_timeout,
                     kms_error *err)
{
    kms_kek kek;
    if (kek_for(passphrase, len, KMS_STARTUP, &kek, err) != 0)
        return -1;
    disk_cluster old_c, new_c;
    int rc = -1;
    kms_keyset keys;
    unsigned char old_records[KMS_KEY_COUNT][KMS_RECORD], new_records[KMS_KEY_COUNT][KMS_RECORD];
    kms_decision decision;
    /* CONC_01: the old cluster's lock first, then the new one's */
    if (disk_open_cluster(old_datadir, "old PGDATA", lock_timeout, &old_c, err) != 0)
        goto wipe;
    if (disk_open_cluster(new_datadir, "PGDATA", lock_timeout, &new_c, err) != 0)
        goto close_old;
    /* UPG_01: the old set must open under the new cluster's passphrase before any copy */
    if (recover_locked(&old_c, &kek, &decision, err) != 0 ||
        open_set(&old_c, KMS_KEY_DIR, &kek, &keys, err) != 0 ||
        disk_read_records(&old_c, KMS_KEY_DIR, old_records, err) != 0)
        goto close_new;
    /* the new cluster must have key management on: a complete set of its own */
    if (recover_locked(&new_c, &kek, &decision, err) != 0 ||
        disk_read_records(&new_c, KMS_KEY_DIR, new_records, err) != 0)
        goto close_new;
    rc = swap_in(&new_c, (const unsigned char(*)[KMS_RECORD])old_records, err);
close_new:
    disk_close_cluster(&new_c);
close_old:
    disk_close_cluster(&old_c);
wipe:
    OPENSSL_cleanse(&keys, sizeof keys);
    OPENSSL_cleanse(&kek, sizeof kek);
    return rc;
}
