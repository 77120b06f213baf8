/*
 * The key manager's filesystem layer (private to kms_*.c): every access to PGDATA goes through
 * a descriptor of PGDATA and *at() calls relative to it, never following a symbolic link
 * (ENV_01), never blocking on a special file (ENV_02), reading at most 133 bytes of a key file
 * (ENV_03), removing trees iteratively (ENV_04) and checking modes (ENV_05).
 *
 * Each fsync names its durability point; a mutant build (-DMUTANT_<POINT>) skips exactly one,
 * so that the syscall-observing harness can be shown to catch it (README.md).
 */
#ifndef PGKMS_KMS_DISK_H
#define PGKMS_KMS_DISK_H

#include "kms.h"

typedef enum {
    POINT_KEYFILE_FSYNC,      /* DISK_07, ROT_04, BOOT_04: each new key file */
    POINT_TMPDIR_FSYNC,       /* ROT_04, BOOT_04: pg_cryptokeys_tmp after its files */
    POINT_PGDATA_AFTER_WRITE, /* ROT_04, BOOT_04: PGDATA after the new set is written */
    POINT_PGDATA_AFTER_RENAME,/* ROT_06, BOOT_04, REC_04: PGDATA after the rename */
    POINT_REMOVED_DIR_FSYNC,  /* ROT_05, REC_03, REC_04, ENV_04: a directory after its unlinks */
    POINT_PGDATA_AFTER_RMDIR, /* ROT_05, REC_03, REC_04: PGDATA after rmdir */
} disk_point;

typedef enum { PROC_BOOTSTRAP, PROC_ROTATION, PROC_RECOVERY } disk_procedure;

/* One data directory opened for a procedure: PGDATA's descriptor and the lock held on it. */
typedef struct {
    int pgfd;
    int lockfd;
    const char *label; /* how messages name the data directory */
} disk_cluster;

/* Open PGDATA, take the lock (CONC_01, CONC_02), refuse a running server (CONC_03). */
int disk_open_cluster(const char *datadir, const char *label, double lock_timeout,
                      disk_cluster *c, kms_error *err);
void disk_close_cluster(disk_cluster *c);

/* What is at PGDATA/<name>, without following a link: 0 absent, 1 present; -1 storage_error. */
int disk_exists(disk_cluster *c, const char *name, kms_error *err);

/* DISK_06 steps 1..4 with ENV_01..ENV_03, ENV_05: the three records of PGDATA/<dir>. */
int disk_read_records(disk_cluster *c, const char *dir,
                      unsigned char records[KMS_KEY_COUNT][KMS_RECORD], kms_error *err);

/* ROT_04 / BOOT_04: mkdir <dir> 0700, create+write+fsync 0000..0002, fsync <dir>, fsync PGDATA. */
int disk_write_set(disk_cluster *c, const char *dir, disk_procedure proc,
                   const unsigned char records[KMS_KEY_COUNT][KMS_RECORD], kms_error *err);

/* ENV_04 and ROT_05 / REC_03 / REC_04: unlink entries in name order (descending into
 * subdirectories iteratively), fsync each directory, rmdir it; then fsync PGDATA. */
int disk_remove_dir(disk_cluster *c, const char *dir, disk_procedure proc, kms_error *err);

/* ROT_06 / BOOT_04 / REC_04: rename PGDATA/<from> to PGDATA/<to>, then fsync PGDATA;
 * -1 when the rename failed, -2 when only the fsync after it did. */
int disk_rename_into_place(disk_cluster *c, const char *from, const char *to,
                           disk_procedure proc, kms_error *err);

/* Is PGDATA/<dir> a complete key set by shape alone (BOOT_05)? 1 yes, 0 no, -1 error. */
int disk_is_complete_set(disk_cluster *c, const char *dir, kms_error *err);

#endif
