"""The harness's bounded parts in isolation: the response-line reader, the stderr tail, the
redactor's two tiers, and reading and removing directories an IUT wrote (ADP_01, ERR_02)."""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path

import pytest
from pgkms_conformance.harness.fingerprints import WITHHELD
from pgkms_conformance.harness.redact import Redactor, secret_forms
from pgkms_conformance.image import Entry, differences, snapshot
from pgkms_conformance.protocol.pipes import LineReader, Overlong, StderrTail
from pgkms_conformance.safefs import MAX_FILE_BYTES, remove_tree, walk

from tests.harness.helpers import drbg_bytes


@pytest.mark.req("ADP_01")
def test_an_overlong_line_is_reported_once_and_the_next_line_survives() -> None:
    reader = LineReader(limit=10)
    for piece in (b"12345", b"67890ab", b"cdef" * 100, b"\n", b'{"id":1}\n{"i', b'd":2}\n'):
        reader.feed(piece)
    assert list(reader.lines) == [Overlong(10), b'{"id":1}', b'{"id":2}']
    assert len(reader._partial) == 0  # the overlong line was never held


@pytest.mark.req("ADP_01")
def test_the_stderr_tail_is_bounded_and_drops_the_cut_line() -> None:
    tail = StderrTail(limit=100)
    tail.feed(b"secret-looking start of a long line " * 10)
    tail.feed(b"\nlast words\n")
    lines = tail.lines()
    assert lines[0].startswith("[") and "earlier bytes of stderr not kept" in lines[0]
    assert lines[1:] == ["last words"]
    assert len(tail._buf) <= 100


@pytest.mark.req("ERR_02")
@pytest.mark.parametrize("length", [6, 7, 11, 12, 23, 24, 72, 1030])
def test_fingerprints_alone_catch_every_form_of_an_old_secret(length: int) -> None:
    redactor = Redactor(recent_bytes=0)  # the exact tier keeps a single form: fingerprints act
    secret = drbg_bytes(f"old secret {length}", length)
    redactor.add(secret)
    for filler in range(50):  # later secrets push the old one out of the exact tier
        redactor.add(drbg_bytes(f"filler {filler}", 40))
    for form in secret_forms(secret):
        for context in ("{}", "error: bad value {} at 3", "xy{}z", "0a{}"):
            text = "first line\n" + context.format(form) + "\nlast line"
            scrubbed = redactor.scrub(text)
            assert form not in scrubbed
            assert scrubbed.splitlines()[0] == "first line"
            assert scrubbed.splitlines()[-1] == "last line"


@pytest.mark.req("ERR_02")
def test_a_raw_secret_across_lines_is_withheld_line_by_line() -> None:
    redactor = Redactor(recent_bytes=0)
    secret = b"first part of it\nsecond part of it"
    redactor.add(secret)
    redactor.add(b"something else entirely")
    scrubbed = redactor.scrub("echo: " + secret.decode() + " done")
    assert "first part" not in scrubbed and "second part" not in scrubbed
    assert scrubbed.count(WITHHELD) == 2


@pytest.mark.req("ERR_02")
def test_a_secret_registered_again_is_replaced_in_place_again() -> None:
    redactor = Redactor(recent_bytes=16 * 1024)
    secret = drbg_bytes("registered twice", 40)
    redactor.add(secret)
    redactor.add(secret)  # a repeat: from the cache of forms
    assert redactor.scrub(f"x {secret.hex()} y") == "x <redacted 40-byte secret> y"
    for filler in range(2000):  # pushes it out of both bounded tiers
        redactor.add(drbg_bytes(f"filler {filler}", 40))
    assert redactor.scrub(f"x {secret.hex()} y") == WITHHELD  # the fingerprints still hold it
    redactor.add(secret)
    assert redactor.scrub(f"x {secret.hex()} y") == "x <redacted 40-byte secret> y"


@pytest.mark.req("ERR_02")
def test_redactor_memory_is_bounded_and_innocent_text_passes() -> None:
    redactor = Redactor(recent_bytes=64 * 1024, pending_bytes=64 * 1024)
    secrets = [drbg_bytes(f"many {i}", 64) for i in range(20000)]
    for secret in secrets:
        redactor.add(secret)
        assert redactor._pending_bytes <= 64 * 1024  # values not yet taken apart, bounded too
    assert redactor._recent_bytes <= 64 * 1024
    assert redactor._forms_of_bytes <= 64 * 1024  # the repeats' cache is bounded alike
    for secret in secrets[:50] + secrets[-50:]:  # the oldest (fingerprints) and the newest
        assert secret.hex() not in redactor.scrub(f"leaked {secret.hex()}")
    innocent = "the IUT answered key_directory_missing for /tmp/pgkms-harness-x/d3/pg_cryptokeys"
    assert redactor.scrub(innocent) == innocent


@pytest.mark.req("ERR_02")
def test_secrets_are_taken_apart_when_a_text_needs_it_with_the_same_outcome() -> None:
    """Registration only queues a value; the first text to scrub settles the queue, and what
    comes out is what taking each value apart at once (no queue) gives."""
    lazy = Redactor(recent_bytes=4 * 1024)
    eager = Redactor(recent_bytes=4 * 1024, pending_bytes=0)
    secrets = [drbg_bytes(f"queued {i}", 24 + i % 40) for i in range(300)]
    for n, secret in enumerate(secrets):
        for redactor in (lazy, eager):
            if n % 3:
                redactor.add(secret)
            else:  # as a request carries it, beside values that are not hex at all
                redactor.add_json({"key": secret.hex(), "note": ["not hex: " + "x" * 20]})
    assert eager._recent and not lazy._recent and lazy._pending  # nothing taken apart yet
    for secret in secrets[:3] + secrets[-3:]:  # fingerprints only, and the exact tier
        for text in (f"value {secret.hex()}", f"line one\nb64 {base64.b64encode(secret).decode()}"):
            assert lazy.scrub(text) == eager.scrub(text) != text
    assert not lazy._pending and lazy._recent == eager._recent


@pytest.mark.req("ADP_01")
def test_walk_never_opens_fifos_devices_or_links_and_measures_big_files(tmp_path: Path) -> None:
    root = tmp_path / "datadir"
    (root / "pg_cryptokeys").mkdir(parents=True)
    os.mkfifo(root / "pg_cryptokeys" / "0001")  # opening it for reading would block forever
    (root / "pg_cryptokeys" / "0000").symlink_to("/dev/zero")
    with open(root / "pg_cryptokeys" / "0002", "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB that must not be read
    done: list[dict[str, Entry]] = []
    worker = threading.Thread(target=lambda: done.append(snapshot(root)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done, "reading the directory blocked"
    listing = done[0]
    assert listing["pg_cryptokeys/0000"].kind == "symlink"
    assert listing["pg_cryptokeys/0001"].kind == "other"
    big = listing["pg_cryptokeys/0002"]
    assert (big.kind, big.size, big.content) == ("too_large", 1 << 30, None)
    assert big.size > MAX_FILE_BYTES
    expected = {
        "pg_cryptokeys/": Entry(0o700, None),
        **{f"pg_cryptokeys/000{i}": Entry(0o600, b"\x00" * 132) for i in range(3)},
    }
    problems = differences(expected, listing, True, "BOOT_03", "BOOT_02")
    text = "; ".join(p for _, p in problems)
    assert "0000 is a symbolic link (not followed), expected a file" in text
    assert "0001 is a special file" in text
    assert "0002 is a file of 1073741824 bytes" in text


@pytest.mark.req("ADP_01")
def test_a_datadir_swapped_for_a_link_is_listed_as_such_and_removed_alone(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("mine")
    datadir = tmp_path / "datadir"
    datadir.symlink_to(canary, target_is_directory=True)
    assert [n.rel for n in walk(datadir)] == ["."]
    problems = differences({}, snapshot(datadir), True, "BOOT_03", "BOOT_02")
    assert problems == [
        ("BOOT_02", "the data directory was replaced by a symbolic link (not followed)")
    ]
    assert remove_tree(datadir)
    assert (canary / "keep").read_text() == "mine"


@pytest.mark.req("ADP_01")
def test_remove_tree_handles_any_depth_closed_modes_and_inner_links(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("mine")
    root = tmp_path / "deep"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(1100):  # deeper than Python's recursion limit
        os.mkdir("d", dir_fd=fd)
        sub = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = sub
    os.symlink(canary, "link", dir_fd=fd)
    os.close(fd)
    (root / "d" / "locked").mkdir(mode=0)
    t0 = time.monotonic()
    assert remove_tree(root)
    assert time.monotonic() - t0 < 30
    assert not root.exists()
    assert (canary / "keep").read_text() == "mine"
