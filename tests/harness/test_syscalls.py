"""Syscall observation: strace's lines become the fs_trace vocabulary, and for both bundled
implementations the trace derived from their system calls equals the one they report."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pgkms_conformance.bundled import BUNDLED
from pgkms_conformance.harness import syscalls
from pgkms_conformance.harness.syscalls import TracedAdapter, build_trace, parse_lines

P1 = "ab" * 64
P2 = "cd" * 64
D = "/data/d"


def trace_of(*lines: str, old: str | None = None) -> syscalls.SyscallTrace:
    return build_trace(list(parse_lines([f"{line}\n" for line in lines])), D, old)


def test_open_write_close_is_one_create_and_fsync_of_a_directory_is_fsync_dir() -> None:
    t = trace_of(
        '7 mkdir("/data/d/pg_cryptokeys_tmp", 0700) = 0',
        '7 openat(AT_FDCWD</w>, "/data/d/pg_cryptokeys_tmp/0000", O_WRONLY|O_CREAT|O_EXCL, 0600)'
        " = 3</data/d/pg_cryptokeys_tmp/0000>",
        '7 write(3</data/d/pg_cryptokeys_tmp/0000>, ""..., 100) = 100',
        '7 write(3</data/d/pg_cryptokeys_tmp/0000>, ""..., 32) = 32',
        "7 fsync(3</data/d/pg_cryptokeys_tmp/0000>) = 0",
        "7 close(3</data/d/pg_cryptokeys_tmp/0000>) = 0",
        '7 openat(AT_FDCWD</w>, "/data/d", O_RDONLY|O_DIRECTORY) = 4</data/d>',
        "7 fsync(4</data/d>) = 0",
        '7 renameat2(AT_FDCWD</w>, "/data/d/pg_cryptokeys_tmp", 4</data/d>, "pg_cryptokeys", 0)'
        " = 0",
        '7 unlinkat(5</data/d/pg_cryptokeys>, "0001", 0) = 0',
        '7 unlinkat(4</data/d>, "pg_cryptokeys", AT_REMOVEDIR) = 0',
    )
    assert t.unknown == []
    assert t.entries == [
        {"op": "mkdir", "path": "pg_cryptokeys_tmp", "mode": 0o700},
        {"op": "create", "path": "pg_cryptokeys_tmp/0000", "mode": 0o600, "size": 132},
        {"op": "fsync", "path": "pg_cryptokeys_tmp/0000"},
        {"op": "fsync_dir", "path": "."},
        {"op": "rename", "path": "pg_cryptokeys_tmp", "to": "pg_cryptokeys"},
        {"op": "unlink", "path": "pg_cryptokeys/0001"},
        {"op": "rmdir", "path": "pg_cryptokeys"},
    ]


def test_unfinished_calls_are_joined_and_failed_calls_ignored() -> None:
    t = trace_of(
        '8 mkdir("/data/d/pg_cryptokeys", 0700 <unfinished ...>',
        '9 rmdir("/data/d/gone") = -1 ENOENT (No such file or directory)',
        "8 <... mkdir resumed>) = 0",
    )
    assert t.entries == [{"op": "mkdir", "path": "pg_cryptokeys", "mode": 0o700}]


def test_the_lock_file_and_other_directories_are_not_traced() -> None:
    t = trace_of(
        '7 openat(AT_FDCWD</w>, "/data/d/pg_cryptokeys.lock", O_RDWR|O_CREAT|O_NOFOLLOW, 0600)'
        " = 3</data/d/pg_cryptokeys.lock>",
        "7 close(3</data/d/pg_cryptokeys.lock>) = 0",
        '7 mkdir("/elsewhere/x", 0700) = 0',
    )
    assert t.entries == []
    assert t.unknown == []


@pytest.mark.parametrize(
    ("line", "unknown"),
    [
        ("7 io_uring_enter(3, 1, 0, 0, NULL, 8) = 1", "io_uring_enter"),
        ("7 sync() = 0", "sync"),
        ("7 ftruncate(3</data/d/pg_cryptokeys/0000>, 0) = 0", "ftruncate pg_cryptokeys/0000"),
        (
            "7 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3</data/d/pg_cryptokeys/0000>, 0)"
            " = 0x7f0000000000",
            "mmap(PROT_WRITE, MAP_SHARED) pg_cryptokeys/0000",
        ),
        (
            '7 write(3</data/d/pg_cryptokeys/0000>, ""..., 4) = 4',
            "write to a file this request did not create: pg_cryptokeys/0000",
        ),
    ],
)
def test_calls_the_model_cannot_replay_are_named_never_dropped(line: str, unknown: str) -> None:
    assert trace_of(line).unknown == [unknown]


def test_fdatasync_of_a_directory_is_unknown_and_sync_file_range_is_no_durability_point() -> None:
    t = trace_of(
        '7 openat(AT_FDCWD</w>, "/data/d", O_RDONLY|O_DIRECTORY) = 4</data/d>',
        "7 fdatasync(4</data/d>) = 0",
        "7 sync_file_range(5</data/d/pg_cryptokeys/0000>, 0, 0, SYNC_FILE_RANGE_WRITE) = 0",
    )
    assert t.entries == []
    assert t.unknown == ["fdatasync of a directory: ."]


def test_upgrade_entries_name_the_old_cluster() -> None:
    t = trace_of('7 rmdir("/data/old/pg_cryptokeys_tmp") = 0', old="/data/old")
    assert t.entries == [{"op": "rmdir", "path": "pg_cryptokeys_tmp", "cluster": "old"}]


# -- the cross-check on the bundled implementations ------------------------------------------------


def _same(adapter: TracedAdapter, op: str, datadir: Path, **params: Any) -> None:
    response, derived = adapter.call(op, str(datadir), trace_fs=True, **params)
    assert response.ok, response.error_code
    assert derived.unknown == []
    assert derived.entries == response.result["fs_trace"], op


@pytest.mark.req("ADP_05", "DISK_07")
@pytest.mark.parametrize("impl", sorted(BUNDLED))
def test_syscall_trace_equals_the_self_reported_trace(impl: str, tmp_path: Path) -> None:
    unavailable = syscalls.probe()
    assert unavailable is None, f"syscall tracing unavailable: {unavailable}; install strace"
    d = tmp_path / "d"
    d.mkdir()
    with TracedAdapter(BUNDLED[impl], tmp_path) as adapter:
        _same(adapter, "bootstrap", d, passphrase=P1)
        _same(adapter, "rotate", d, old_passphrase=P1, new_passphrase=P2)
        # A valid temporary set beside the current one: recovery discards it.
        shutil.copytree(d / "pg_cryptokeys", d / "pg_cryptokeys_tmp")
        _same(adapter, "startup", d, passphrase=P2)
        # Only the temporary set is left: recovery adopts it.
        (d / "pg_cryptokeys").rename(d / "pg_cryptokeys_tmp")
        _same(adapter, "recover", d, passphrase=P2)


def test_a_create_without_o_excl_is_named() -> None:
    t = trace_of(
        '7 openat(AT_FDCWD</w>, "/data/d/pg_cryptokeys/0000", O_WRONLY|O_CREAT|O_TRUNC, 0600)'
        " = 3</data/d/pg_cryptokeys/0000>",
        "7 close(3</data/d/pg_cryptokeys/0000>) = 0",
    )
    assert t.entries == [{"op": "create", "path": "pg_cryptokeys/0000", "mode": 0o600, "size": 0}]
    assert t.nonexclusive == ["pg_cryptokeys/0000"]
