/*
 * The filesystem layer of the key manager (kms_disk.h): the lock, the postmaster.pid check,
 * reading a key set, writing one, removing one, renaming one, each fsync at its durability
 * point. No path is ever resolved from the root below PGDATA: every call is relative to a
 * descriptor opened with O_NOFOLLOW, so a symbolic link is refused, never followed (ENV_01).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kms_disk.h"

static const char *const KEY_FILE[KMS_KEY_COUNT] = {"0000", "0001", "0002"}; /* DISK_02 */

/* -- seeded durability mutants ------------------------------------------------------------ */
static const struct {
    int proc, point;
} SKIPPED[] = {
#ifdef MUTANT_BOOT_NO_KEYFILE_FSYNC
    {PROC_BOOTSTRAP, POINT_KEYFILE_FSYNC},
#endif
#ifdef MUTANT_BOOT_NO_TMPDIR_FSYNC
    {PROC_BOOTSTRAP, POINT_TMPDIR_FSYNC},
#endif
#ifdef MUTANT_BOOT_NO_PGDATA_FSYNC_BEFORE_RENAME
    {PROC_BOOTSTRAP, POINT_PGDATA_AFTER_WRITE},
#endif
#ifdef MUTANT_BOOT_NO_PGDATA_FSYNC_AFTER_RENAME
    {PROC_BOOTSTRAP, POINT_PGDATA_AFTER_RENAME},
#endif
#ifdef MUTANT_ROT_NO_KEYFILE_FSYNC
    {PROC_ROTATION, POINT_KEYFILE_FSYNC},
#endif
#ifdef MUTANT_ROT_NO_TMPDIR_FSYNC
    {PROC_ROTATION, POINT_TMPDIR_FSYNC},
#endif
#ifdef MUTANT_ROT_NO_PGDATA_FSYNC_AFTER_WRITE
    {PROC_ROTATION, POINT_PGDATA_AFTER_WRITE},
#endif
#ifdef MUTANT_ROT_NO_DIR_FSYNC_BEFORE_RMDIR
    {PROC_ROTATION, POINT_REMOVED_DIR_FSYNC},
#endif
#ifdef MUTANT_ROT_NO_PGDATA_FSYNC_AFTER_RMDIR
    {PROC_ROTATION, POINT_PGDATA_AFTER_RMDIR},
#endif
#ifdef MUTANT_ROT_NO_PGDATA_FSYNC_AFTER_RENAME
    {PROC_ROTATION, POINT_PGDATA_AFTER_RENAME},
#endif
#ifdef MUTANT_REC_NO_DIR_FSYNC_BEFORE_RMDIR
    {PROC_RECOVERY, POINT_REMOVED_DIR_FSYNC},
#endif
#ifdef MUTANT_REC_NO_PGDATA_FSYNC_AFTER_RMDIR
    {PROC_RECOVERY, POINT_PGDATA_AFTER_RMDIR},
#endif
#ifdef MUTANT_REC_NO_PGDATA_FSYNC_AFTER_RENAME
    {PROC_RECOVERY, POINT_PGDATA_AFTER_RENAME},
#endif
    {-1, -1},
};

static bool skipped(disk_procedure proc, disk_point point)
{
    for (size_t i = 0; SKIPPED[i].proc >= 0; i++)
        if (SKIPPED[i].proc == (int)proc && SKIPPED[i].point == (int)point)
            return true;
    return false;
}

#ifdef MUTANT_NO_EXCL_CREATE
#define KEYFILE_CREATE_FLAGS (O_WRONLY | O_CREAT | O_TRUNC) /* breaks DISK_07: not exclusive */
#else
#define KEYFILE_CREATE_FLAGS (O_WRONLY | O_CREAT | O_EXCL)
#endif

/* -- small helpers ------------------------------------------------------------------------ */
static int os_fail(kms_error *err, const char *what, const disk_cluster *c, const char *dir,
                   const char *name)
{
    int e = errno;
    return kms_fail(err, "storage_error", "%s %s%s%s%s%s: %s", what, c->label, dir ? "/" : "",
                    dir ? dir : "", name ? "/" : "", name ? name : "", strerror(e));
}

static int durable(int fd, disk_procedure proc, disk_point point, const disk_cluster *c,
                   const char *dir, const char *name, kms_error *err)
{
    if (skipped(proc, point))
        return 0;
    if (fsync(fd) != 0)
        return os_fail(err, "fsync", c, dir, name);
    return 0;
}

static int open_dir_at(int at, const char *name)
{
    return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* -- the lock and the server check (CONC_01..CONC_03) ------------------------------------- */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_lock_file(disk_cluster *c, kms_error *err)
{
    mode_t old = umask(0); /* DISK_01-style exact mode: 0600 whatever the caller's umask */
    int fd = openat(c->pgfd, KMS_LOCK_FILE,
                    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    umask(old);
    if (fd < 0 && errno == ELOOP)
        return kms_fail(err, "symlink_refused", "%s/%s is a symbolic link", c->label,
                        KMS_LOCK_FILE);
    if (fd < 0 && (errno == EISDIR || errno == ENXIO || errno == EOPNOTSUPP))
        return kms_fail(err, "not_regular_file", "%s/%s is not a regular file", c->label,
                        KMS_LOCK_FILE);
    if (fd < 0)
        return os_fail(err, "open", c, NULL, KMS_LOCK_FILE);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kms_fail(err, "not_regular_file", "%s/%s is not a regular file", c->label,
                        KMS_LOCK_FILE);
    }
    return fd;
}

/* CONC_02: F_OFD_SETLK (conflicts with fcntl record locks), retried every 50 ms. */
static int take_lock(disk_cluster *c, double timeout, kms_error *err)
{
    int fd = open_lock_file(c, err);
    if (fd < 0)
        return -1;
    double deadline = now() + timeout;
    for (;;) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
            break;
        if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
            int rc = os_fail(err, "lock", c, NULL, KMS_LOCK_FILE);
            close(fd);
            return rc;
        }
        if (now() >= deadline) {
            close(fd);
            return kms_fail(err, "key_directory_locked",
                            "%s/%s: another process held the lock for more than %.3g seconds",
                            c->label, KMS_LOCK_FILE, timeout);
        }
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    c->lockfd = fd;
    return 0;
}

/* CONC_03: a live or unreadable postmaster.pid refuses; a stale one (ESRCH) does not. */
static int check_no_server(disk_cluster *c, kms_error *err)
{
    int fd = openat(c->pgfd, "postmaster.pid", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    char buf[64];
    ssize_t n = -1;
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        n = read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    long pid = 0;
    bool parsed = false;
    if (n > 0) {
        buf[n] = '\0';
        char *end = NULL;
        errno = 0;
        pid = strtol(buf, &end, 10);
        parsed = errno == 0 && end != buf && (*end == '\n' || *end == '\0') && pid > 0 &&
                 buf[0] >= '0' && buf[0] <= '9' && pid <= 0x7fffffff;
    }
    if (!parsed)
        return kms_fail(err, "server_running",
                        "%s/postmaster.pid cannot be read or parsed; remove it once no server runs",
                        c->label);
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
        return kms_fail(err, "server_running", "%s/postmaster.pid names the live process %ld",
                        c->label, pid);
    return 0;
}

int disk_open_cluster(const char *datadir, const char *label, double lock_timeout,
                      disk_cluster *c, kms_error *err)
{
    c->label = label;
    c->lockfd = -1;
    c->pgfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* PGDATA may be a link */
    if (c->pgfd < 0)
        return kms_fail(err, "storage_error", "cannot open the data directory (%s): %s", label,
                        strerror(errno));
    if (take_lock(c, lock_timeout, err) != 0 || check_no_server(c, err) != 0) {
        disk_close_cluster(c);
        return -1;
    }
    return 0;
}

void disk_close_cluster(disk_cluster *c)
{
    if (c->lockfd >= 0)
        close(c->lockfd); /* the OFD lock ends with its descriptor */
    if (c->pgfd >= 0)
        close(c->pgfd);
    c->lockfd = c->pgfd = -1;
}

int disk_exists(disk_cluster *c, const char *name, kms_error *err)
{
    struct stat st;
    if (fstatat(c->pgfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    return os_fail(err, "stat", c, NULL, name);
}

/* -- reading a key set (DISK_06, ENV_01..ENV_03, ENV_05) ---------------------------------- */
static int key_index(const char *name)
{
    for (int i = 0; i < KMS_KEY_COUNT; i++)
        if (strcmp(name, KEY_FILE[i]) == 0)
            return i;
    return -1;
}

/* DISK_06 steps 2 and 3: the first unexpected entry in byte order, then the first missing. */
static int check_entries(disk_cluster *c, const char *dir, int dfd, kms_error *err)
{
    int copy = dup(dfd);
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    if (!d) {
        if (copy >= 0)
            close(copy);
        return os_fail(err, "list", c, dir, NULL);
    }
    bool present[KMS_KEY_COUNT] = {false, false, false};
    char *first_unexpected = NULL;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int i = key_index(e->d_name);
        if (i >= 0) {
            present[i] = true;
        } else if (!first_unexpected || strcmp(e->d_name, first_unexpected) < 0) {
            free(first_unexpected); /* strcmp compares as unsigned bytes: byte order */
            first_unexpected = strdup(e->d_name);
        }
        errno = 0;
    }
    int listing_errno = errno;
    closedir(d);
    if (listing_errno != 0) {
        free(first_unexpected);
        errno = listing_errno;
        return os_fail(err, "list", c, dir, NULL);
    }
    if (first_unexpected) {
        kms_fail(err, "unexpected_file", "%s/%s holds the unexpected entry %s", c->label, dir,
                 first_unexpected);
        free(first_unexpected);
        return -1;
    }
    for (int i = 0; i < KMS_KEY_COUNT; i++)
        if (!present[i])
            return kms_fail(err, "key_file_missing", "%s/%s/%s is missing", c->label, dir,
                            KEY_FILE[i]);
    return 0;
}

/* ENV_02, ENV_03, ENV_05, DISK_03..DISK_05 for one key file. */
static int read_record(disk_cluster *c, const char *dir, int dfd, int id, bool check_modes,
                       unsigned char record[KMS_RECORD], kms_error *err)
{
    const char *name = KEY_FILE[id];
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return os_fail(err, "stat", c, dir, name);
    if (S_ISLNK(st.st_mode))
        return kms_fail(err, "symlink_refused", "%s/%s/%s is a symbolic link", c->label, dir, name);
    if (!S_ISREG(st.st_mode))
        return kms_fail(err, "not_regular_file", "%s/%s/%s is not a regular file", c->label, dir,
                        name);
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ELOOP)
        return kms_fail(err, "symlink_refused", "%s/%s/%s is a symbolic link", c->label, dir, name);
    if (fd < 0)
        return os_fail(err, "open", c, dir, name);
    /* the entry may have been replaced since the stat: judge the descriptor we read from */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kms_fail(err, "not_regular_file", "%s/%s/%s is not a regular file", c->label, dir,
                        name);
    }
    if (check_modes && (st.st_mode & 07777 & ~0640)) {
        close(fd);
        return kms_fail(err, "permissions_too_open", "%s/%s/%s has mode %04o, at most 0640 allowed",
                        c->label, dir, name, (unsigned)(st.st_mode & 07777));
    }
    unsigned char buf[KMS_RECORD + 1]; /* ENV_03: one more byte tells "too long" */
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = read(fd, buf + got, sizeof buf - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = os_fail(err, "read", c, dir, name);
            close(fd);
            return rc;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    char what[600];
    snprintf(what, sizeof what, "%s/%s/%s", c->label, dir, name);
    if (got != KMS_RECORD) {
        size_t found = got > KMS_RECORD && (size_t)st.st_size > got ? (size_t)st.st_size : got;
        return kms_fail(err, "record_size_invalid", "%s: expected %d bytes, found %zu", what,
                        KMS_RECORD, found);
    }
    uint32_t key_id;
    if (kms_decode_record(buf, got, id, what, &key_id, err) != 0)
        return -1;
    memcpy(record, buf, KMS_RECORD);
    return 0;
}

static int read_set(disk_cluster *c, const char *dir, bool check_modes,
                    unsigned char records[KMS_KEY_COUNT][KMS_RECORD], kms_error *err)
{
    struct stat st;
    /* 1. the directory exists and is a directory (never through a link) */
    if (fstatat(c->pgfd, dir, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return kms_fail(err, "key_directory_missing", "%s/%s does not exist", c->label, dir);
        return os_fail(err, "stat", c, NULL, dir);
    }
    if (S_ISLNK(st.st_mode))
        return kms_fail(err, "symlink_refused", "%s/%s is a symbolic link", c->label, dir);
    if (!S_ISDIR(st.st_mode))
        return kms_fail(err, "key_directory_missing", "%s/%s is not a directory", c->label, dir);
    int dfd = open_dir_at(c->pgfd, dir);
    if (dfd < 0 && errno == ELOOP)
        return kms_fail(err, "symlink_refused", "%s/%s is a symbolic link", c->label, dir);
    if (dfd < 0 && errno == ENOTDIR)
        return kms_fail(err, "key_directory_missing", "%s/%s is not a directory", c->label, dir);
    if (dfd < 0)
        return os_fail(err, "open", c, NULL, dir);
    int rc = 0;
    if (check_modes && fstat(dfd, &st) == 0 && (st.st_mode & 07777 & ~0750))
        rc = kms_fail(err, "permissions_too_open", "%s/%s has mode %04o, at most 0750 allowed",
                      c->label, dir, (unsigned)(st.st_mode & 07777));
    /* 2. and 3. the entries; 4. each record in id order */
    if (rc == 0)
        rc = check_entries(c, dir, dfd, err);
    for (int i = 0; rc == 0 && i < KMS_KEY_COUNT; i++)
        rc = read_record(c, dir, dfd, i, check_modes, records[i], err);
    close(dfd);
    return rc;
}

int disk_read_records(disk_cluster *c, const char *dir,
                      unsigned char records[KMS_KEY_COUNT][KMS_RECORD], kms_error *err)
{
    return read_set(c, dir, true, records, err);
}

int disk_is_complete_set(disk_cluster *c, const char *dir, kms_error *err)
{
    struct stat st;
    if (fstatat(c->pgfd, dir, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return kms_fail(err, "symlink_refused", "%s/%s is a symbolic link", c->label, dir);
    unsigned char records[KMS_KEY_COUNT][KMS_RECORD];
    kms_error probe = {0};
    if (read_set(c, dir, false, records, &probe) == 0)
        return 1;
    if (strcmp(probe.code, "storage_error") == 0) {
        *err = probe;
        return -1;
    }
    return 0;
}

/* -- writing a key set (ROT_04, BOOT_04, DISK_07) ----------------------------------------- */
static int write_all(int fd, const unsigned char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int disk_write_set(disk_cluster *c, const char *dir, disk_procedure proc,
                   const unsigned char records[KMS_KEY_COUNT][KMS_RECORD], kms_error *err)
{
    mode_t old = umask(0); /* DISK_01, DISK_02: exactly 0700 and 0600 */
    int rc = mkdirat(c->pgfd, dir, 0700);
    umask(old);
    if (rc != 0)
        return os_fail(err, "mkdir", c, NULL, dir);
    int dfd = open_dir_at(c->pgfd, dir);
    if (dfd < 0)
        return os_fail(err, "open", c, NULL, dir);
    for (int i = 0; i < KMS_KEY_COUNT; i++) {
        old = umask(0);
        int fd = openat(dfd, KEY_FILE[i], KEYFILE_CREATE_FLAGS | O_NOFOLLOW | O_CLOEXEC, 0600);
        umask(old);
        if (fd < 0) {
            rc = os_fail(err, "create", c, dir, KEY_FILE[i]);
            break;
        }
        if (write_all(fd, records[i], KMS_RECORD) != 0) {
            rc = os_fail(err, "write", c, dir, KEY_FILE[i]);
            close(fd);
            break;
        }
        rc = durable(fd, proc, POINT_KEYFILE_FSYNC, c, dir, KEY_FILE[i], err);
        if (close(fd) != 0 && rc == 0)
            rc = os_fail(err, "close", c, dir, KEY_FILE[i]);
        if (rc != 0)
            break;
    }
    if (rc == 0)
        rc = durable(dfd, proc, POINT_TMPDIR_FSYNC, c, NULL, dir, err);
    close(dfd);
    if (rc == 0)
        rc = durable(c->pgfd, proc, POINT_PGDATA_AFTER_WRITE, c, NULL, NULL, err);
    return rc;
}

/* -- removing a key directory (ENV_04, ROT_05, REC_03, REC_04, BOOT_05) -------------------- */
static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The entry names of `dfd` in byte order (caller frees), or NULL with errno set. */
static char **list_sorted(int dfd, size_t *count)
{
    int copy = dup(dfd);
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    if (!d) {
        if (copy >= 0)
            close(copy);
        return NULL;
    }
    size_t n = 0, cap = 16;
    char **names = malloc(cap * sizeof *names);
    int failure = names ? 0 : ENOMEM;
    struct dirent *e;
    while (!failure) {
        errno = 0;
        if ((e = readdir(d)) == NULL) {
            failure = errno;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            char **bigger = realloc(names, (cap *= 2) * sizeof *names);
            if (!bigger) {
                failure = ENOMEM;
                break;
            }
            names = bigger;
        }
        if ((names[n] = strdup(e->d_name)) == NULL)
            failure = ENOMEM;
        else
            n++;
    }
    closedir(d);
    if (failure) {
        if (names)
            free_names(names, n);
        errno = failure;
        return NULL;
    }
    qsort(names, n, sizeof *names, cmp_names);
    *count = n;
    return names;
}

/*
 * Empty the directory open as `dfd` down to any depth without recursion: entries are unlinked
 * in name order; a subdirectory is entered (its name pushed), emptied, fsynced, left through
 * "..", and removed. Only directory descriptors along one step are open at a time.
 */
static int empty_tree(disk_cluster *c, const char *dir, int *dfd_io, disk_procedure proc,
                      kms_error *err)
{
    int dfd = *dfd_io;
    size_t depth = 0, cap = 0;
    char **path = NULL; /* names of the directories entered below `dir` */
    int rc = 0;
    for (;;) {
        size_t n = 0;
        char **names = list_sorted(dfd, &n);
        if (!names) {
            rc = os_fail(err, "list", c, dir, depth ? path[depth - 1] : NULL);
            break;
        }
        const char *sub = NULL;
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct stat st;
            if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
                rc = os_fail(err, "stat", c, dir, names[i]);
            } else if (S_ISDIR(st.st_mode)) {
                sub = names[i];
                break;
            } else if (unlinkat(dfd, names[i], 0) != 0) { /* a link is removed, not followed */
                rc = os_fail(err, "unlink", c, dir, names[i]);
            }
        }
        if (rc == 0 && sub && depth == cap) {
            char **bigger = realloc(path, (cap = cap ? 2 * cap : 64) * sizeof *path);
            if (bigger)
                path = bigger;
            else
                rc = kms_fail(err, "internal_error", "out of memory removing %s/%s", c->label,
                              dir);
        }
        if (rc == 0 && sub) {
            int child = open_dir_at(dfd, sub);
            char *name = child >= 0 ? strdup(sub) : NULL;
            if (child < 0) {
                rc = os_fail(err, "open", c, dir, sub);
            } else if (!name) {
                close(child);
                rc = kms_fail(err, "internal_error", "out of memory removing %s/%s", c->label,
                              dir);
            } else {
                path[depth++] = name;
                close(dfd);
                dfd = child;
            }
        }
        int entered = rc == 0 && sub != NULL;
        free_names(names, n);
        if (rc != 0)
            break;
        if (entered)
            continue;
        /* this directory is empty: make its removals durable before removing it */
        if ((rc = durable(dfd, proc, POINT_REMOVED_DIR_FSYNC, c, NULL, dir, err)) != 0)
            break;
        if (depth == 0)
            break;
        int parent = openat(dfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent < 0) {
            rc = os_fail(err, "open", c, dir, "..");
            break;
        }
        close(dfd);
        dfd = parent;
        char *name = path[--depth];
        if (unlinkat(dfd, name, AT_REMOVEDIR) != 0)
            rc = os_fail(err, "rmdir", c, dir, name);
        free(name);
        if (rc != 0)
            break;
    }
    while (depth)
        free(path[--depth]);
    free(path);
    *dfd_io = dfd;
    return rc;
}

int disk_remove_dir(disk_cluster *c, const char *dir, disk_procedure proc, kms_error *err)
{
    int dfd = open_dir_at(c->pgfd, dir);
    if (dfd < 0 && errno == ELOOP)
        return kms_fail(err, "symlink_refused", "%s/%s is a symbolic link", c->label, dir);
    if (dfd < 0 && errno == ENOTDIR) { /* a file in a directory's place: unlink it */
        if (unlinkat(c->pgfd, dir, 0) != 0)
            return os_fail(err, "unlink", c, NULL, dir);
        return durable(c->pgfd, proc, POINT_PGDATA_AFTER_RMDIR, c, NULL, NULL, err);
    }
    if (dfd < 0)
        return os_fail(err, "open", c, NULL, dir);
    int rc = empty_tree(c, dir, &dfd, proc, err);
    close(dfd);
    if (rc != 0)
        return rc;
    if (unlinkat(c->pgfd, dir, AT_REMOVEDIR) != 0)
        return os_fail(err, "rmdir", c, NULL, dir);
    return durable(c->pgfd, proc, POINT_PGDATA_AFTER_RMDIR, c, NULL, NULL, err);
}

int disk_rename_into_place(disk_cluster *c, const char *from, const char *to,
                           disk_procedure proc, kms_error *err)
{
    if (renameat(c->pgfd, from, c->pgfd, to) != 0) {
        os_fail(err, "rename", c, NULL, from);
        return -1;
    }
    return durable(c->pgfd, proc, POINT_PGDATA_AFTER_RENAME, c, NULL, NULL, err) == 0 ? 0 : -2;
}
