"""The safety mutants' patches (issue 10): the lock, the environment, the passphrase command and
failure atomicity, each broken the way a plausible implementation would break it.

They patch ``pgkms_independent`` through its own seams (``disk``, ``keystore``, ``passphrase``),
imported lazily like every patch of the catalog.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pgkms_conformance.mutants.patching import module, original, rebind, set_method


def _unlocked_but_checking_the_server() -> Any:
    """``Cluster.locked`` without the lock: only the postmaster.pid check stays (CONC_03)."""
    disk = module("disk")

    @contextmanager
    def locked(self: Any) -> Iterator[None]:
        disk.refuse_running_server(self.datadir)
        yield

    return locked


def no_lock() -> None:
    """CONC_01: no procedure takes the data directory's lock."""
    set_method("keystore", "Cluster", "locked", _unlocked_but_checking_the_server())


def lock_around_write_steps_only() -> None:
    """CONC_01, the 2020 scope: only rotation's writes are locked; recovery and startup not."""
    disk = module("disk")
    swap_in = original("keystore", "Cluster")._swap_in
    set_method("keystore", "Cluster", "locked", _unlocked_but_checking_the_server())

    def locked_swap_in(self: Any, wrapped: Any) -> None:
        with disk.exclusive(self.datadir, self.lock_timeout):
            swap_in(self, wrapped)

    set_method("keystore", "Cluster", "_swap_in", locked_swap_in)


def lock_fails_without_waiting() -> None:
    """CONC_02: one try at the lock, then key_directory_locked at once."""
    fcntl = __import__("fcntl")
    code = original("failures", "Code")
    failure = original("failures", "ExclusionFailure")

    def wait_for_lock(fd: int, path: str, timeout: float) -> None:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise failure(code.KEY_DIRECTORY_LOCKED, f"{path}: locked") from None

    rebind("disk", "_wait_for_lock", wait_for_lock)


def no_postmaster_pid_check() -> None:
    """CONC_03: a live postmaster.pid is ignored."""
    rebind("disk", "refuse_running_server", lambda datadir: None)


def removal_follows_symlinks() -> None:
    """ENV_01: recovery's removal lists and deletes through a symbolic link (lstat on the entry
    itself, then ``listdir`` through it: the 2020-style check)."""
    set_method("keystore", "Cluster", "_refuse_symlinked_stores", lambda self: None)

    def destroy(self: Any) -> None:
        if not os.path.lexists(self.path):
            return
        if os.path.isdir(self.path):  # follows the link
            for name in sorted(os.listdir(self.path)):
                entry = os.path.join(self.path, name)
                if not os.path.isdir(entry):
                    os.unlink(entry)
        if os.path.islink(self.path) or not os.path.isdir(self.path):
            os.unlink(self.path)
        else:
            os.rmdir(self.path)

    set_method("keystore", "KeyStore", "destroy", destroy)


def _key_file(data: bytes, info: os.stat_result) -> Any:
    return original("disk", "KeyFile")(data, info.st_size, stat.S_IMODE(info.st_mode))


def blocking_key_open() -> None:
    """ENV_02: a key file opened without O_NONBLOCK, its type checked only after the open (a
    FIFO blocks the open forever)."""
    not_regular = original("disk", "not_regular_file")
    symlink_refused = original("disk", "symlink_refused")

    def read_key_file(path: str, limit: int) -> Any:
        if os.path.islink(path):
            raise symlink_refused(path)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise not_regular(path, "special file", info.st_mode)
            return _key_file(os.read(fd, limit), info)
        finally:
            os.close(fd)

    rebind("disk", "read_key_file", read_key_file)


def unbounded_key_read() -> None:
    """ENV_03: a key file read whole before its size is judged."""
    read_key_file = original("disk", "read_key_file")

    def read_whole(path: str, limit: int) -> Any:
        found = read_key_file(path, 1)  # the checks on the descriptor, kept
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            data = os.read(fd, max(info.st_size, limit))
        finally:
            os.close(fd)
        del found
        return _key_file(data, info)

    rebind("disk", "read_key_file", read_whole)


def recursive_removal() -> None:
    """ENV_04: a directory removed by recursion (deep trees hit the interpreter's limit)."""
    note = original("disk", "_note")

    def remove(path: str) -> None:
        for name in sorted(os.listdir(path)):
            entry = os.path.join(path, name)
            if stat.S_ISDIR(os.lstat(entry).st_mode):
                remove(entry)
            else:
                os.unlink(entry)
                note("unlink", entry)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        note("fsync_dir", path)
        os.rmdir(path)
        note("rmdir", path)

    rebind("disk", "remove_directory", remove)


def no_permission_check() -> None:
    """ENV_05: key files and directories of any mode accepted."""
    rebind("keystore", "refuse_open_permissions", lambda path, mode, allowed: None)


def no_command_timeout() -> None:
    """PASS_08: the passphrase command may run forever."""
    collect = original("passphrase", "_collect")
    rebind("passphrase", "_collect", lambda child, timeout: collect(child, 10.0**6))


def command_survives_sigterm() -> None:
    """PASS_09: on SIGTERM the adapter exits and leaves the command's group running."""
    rebind("passphrase", "kill_running_groups", lambda: None)


def bootstrap_blocks_retry() -> None:
    """BOOT_05: a failed bootstrap leaves pg_cryptokeys_tmp, and any pg_cryptokeys_tmp
    refuses a later bootstrap."""
    refuse = original("keystore", "keys_already_exist")
    clear = original("keystore", "Cluster")._clear_interrupted_bootstrap

    def clear_or_refuse(self: Any) -> None:
        if os.path.lexists(self.staging.path):
            raise refuse(self.staging.path, "already exists")
        clear(self)

    set_method("keystore", "Cluster", "_clear_interrupted_bootstrap", clear_or_refuse)
    set_method("keystore", "Cluster", "_undo_bootstrap", lambda self: None)


def tmp_left_after_failed_write() -> None:
    """ROT_07: a rotation whose new set failed to become durable leaves it for recovery."""
    set_method("keystore", "Cluster", "_undo_rotation", lambda self: None)


def rotation_incomplete_not_reported() -> None:
    """ROT_08: a failure past the point of no return keeps its own code."""
    set_method("keystore", "Cluster", "_past_point_of_no_return", lambda self, failure: failure)
