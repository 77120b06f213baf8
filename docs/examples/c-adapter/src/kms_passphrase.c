/*
 * Passphrase acquisition, PASS_01..PASS_10: `/bin/sh -c <command>` after %p/%% substitution,
 * stdin from /dev/null, stderr discarded, stdout taken raw; the command runs in a process group
 * of its own, bounded by a timeout, and the whole group is killed on timeout, on any early
 * return and when the adapter is asked to stop (kms_kill_running_command from a signal handler).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kms.h"

/* The process group of the command being run, 0 when none: read by the signal handler. */
static volatile sig_atomic_t running_group = 0;

void kms_kill_running_command(void)
{
    pid_t group = (pid_t)running_group;
    if (group > 0)
        kill(-group, SIGKILL);
}

/* PASS_02: %p -> the prompt, %% -> %, anything else kept; replaced text is not rescanned. */
int kms_substitute(const char *command, char **out, kms_error *err)
{
    size_t len = strlen(command), prompt = strlen(KMS_PROMPT);
    /* each 2-byte %p grows to at most the prompt's length */
    char *buf = malloc(len / 2 * prompt + len + 1), *w = buf;
    if (!buf)
        return kms_fail(err, "internal_error", "out of memory substituting a command");
    for (size_t i = 0; i < len; i++) {
        if (command[i] == '%' && i + 1 < len && command[i + 1] == 'p') {
            memcpy(w, KMS_PROMPT, prompt);
            w += prompt;
            i++;
        } else if (command[i] == '%' && i + 1 < len && command[i + 1] == '%') {
            *w++ = '%';
            i++;
        } else {
            *w++ = command[i];
        }
    }
    *w = '\0';
    *out = buf;
    return 0;
}

/* PASS_04..PASS_07: the length rules by purpose; startup keeps the first 1024 bytes. */
int kms_check_passphrase(const unsigned char *raw, size_t len, kms_purpose purpose,
                         size_t *effective_len, kms_error *err)
{
    (void)raw;
    if (len < KMS_PASSPHRASE_MIN)
        return kms_fail(err, "passphrase_too_short", "the passphrase has %zu bytes, at least %d needed",
                        len, KMS_PASSPHRASE_MIN);
    if (len > KMS_PASSPHRASE_MAX && purpose != KMS_STARTUP)
        return kms_fail(err, "passphrase_too_long", "the passphrase has %zu bytes, at most %d allowed",
                        len, KMS_PASSPHRASE_MAX);
    *effective_len = len > KMS_PASSPHRASE_MAX ? KMS_PASSPHRASE_MAX : len;
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The child side: its own group, /dev/null in, stdout to the pipe, stderr discarded. */
static void exec_command(const char *command, int out_fd, mode_t umask_of_caller)
{
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    umask(umask_of_caller);
    int null_in = open("/dev/null", O_RDONLY), null_err = open("/dev/null", O_WRONLY);
    if (null_in < 0 || null_err < 0 || dup2(null_in, 0) < 0 || dup2(out_fd, 1) < 0 ||
        dup2(null_err, 2) < 0)
        _exit(127);
    for (int fd = 3; fd < 1024; fd++) /* the protocol pipe and the lock stay with the adapter */
        close(fd);
    execl("/bin/sh", "sh", "-c", command, (char *)NULL);
    _exit(127);
}

/* Wait for the pipe's end and the child's exit, keeping the first 1025 bytes (PASS_06). */
static int collect(int fd, pid_t child, double deadline, unsigned char *buf, size_t cap,
                   size_t *kept, size_t *total, int *status)
{
    int eof = 0, exited = 0;
    while (!eof || !exited) {
        if (!exited) {
            siginfo_t info;
            memset(&info, 0, sizeof info);
            /* WNOWAIT: the group leader stays a zombie, so its group id cannot be reused
             * before the group is killed */
            if (waitid(P_PID, (id_t)child, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                info.si_pid == child)
                exited = 1;
        }
        if (eof && exited)
            break;
        double left = deadline - now();
        if (left <= 0)
            return 1;
        if (eof) { /* only the exit is missing: poll for it */
            struct timespec pause = {0, 10 * 1000 * 1000};
            nanosleep(&pause, NULL);
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ms = left > 0.05 ? 50 : (int)(left * 1000) + 1;
        int r = poll(&p, 1, ms);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        unsigned char chunk[4096];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            eof = 1;
            continue;
        }
        size_t room = cap - *kept, take = (size_t)n < room ? (size_t)n : room;
        memcpy(buf + *kept, chunk, take);
        *kept += take;
        *total += (size_t)n;
        OPENSSL_cleanse(chunk, sizeof chunk);
    }
    siginfo_t info;
    memset(&info, 0, sizeof info);
    waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT);
    *status = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
    return 0;
}

/* PASS_01, PASS_03, PASS_08..PASS_10, then the length rules of `purpose`. */
int kms_run_passphrase_command(const char *command, kms_purpose purpose, double timeout,
                               kms_bytes *passphrase, kms_error *err)
{
    char *expanded = NULL;
    if (kms_substitute(command, &expanded, err) != 0)
        return -1;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        free(expanded);
        return kms_fail(err, "passphrase_command_failed", "the passphrase command could not start: %s",
                        strerror(errno));
    }
    mode_t caller_umask = umask(0);
    umask(caller_umask);
    double deadline = now() + timeout;
    /* Block the stop signals across fork so that a stop never misses the new group. */
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, &old);
    pid_t child = fork();
    if (child == 0)
        exec_command(expanded, pipefd[1], caller_umask);
    if (child > 0) {
        setpgid(child, child); /* also here, so the group exists before we rely on it */
        running_group = child;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    free(expanded);
    close(pipefd[1]);
    if (child < 0) {
        close(pipefd[0]);
        return kms_fail(err, "passphrase_command_failed", "the passphrase command could not start: %s",
                        strerror(errno));
    }
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    unsigned char buf[KMS_PASSPHRASE_MAX + 1];
    size_t kept = 0, total = 0;
    int status = 0;
    int rc = collect(pipefd[0], child, deadline, buf, sizeof buf, &kept, &total, &status);
    /* PASS_09: whatever happened, no process of the group outlives the request */
    kill(-child, SIGKILL);
    running_group = 0;
    waitpid(child, NULL, 0);
    close(pipefd[0]);
    if (rc != 0) {
        OPENSSL_cleanse(buf, sizeof buf);
        if (rc > 0)
            return kms_fail(err, "passphrase_command_timeout",
                            "the passphrase command did not finish within %.3g seconds; its process "
                            "group was killed",
                            timeout);
        return kms_fail(err, "passphrase_command_failed", "reading the command's output failed: %s",
                        strerror(errno));
    }
    /* PASS_03, PASS_10: how it failed, never the command nor its output */
    if (status != 0) {
        OPENSSL_cleanse(buf, sizeof buf);
        if (status > 0)
            return kms_fail(err, "passphrase_command_failed",
                            "the passphrase command exited with status %d", status);
        return kms_fail(err, "passphrase_command_failed",
                        "the passphrase command was terminated by signal %d", -status);
    }
    size_t use = 0;
    if (kms_check_passphrase(buf, total, purpose, &use, err) != 0) {
        OPENSSL_cleanse(buf, sizeof buf);
        return -1;
    }
    passphrase->data = malloc(use ? use : 1);
    if (!passphrase->data) {
        OPENSSL_cleanse(buf, sizeof buf);
        return kms_fail(err, "internal_error", "out of memory");
    }
    memcpy(passphrase->data, buf, use);
    passphrase->len = use;
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}
