"""Wrap/unwrap throughput of the reference, next to OpenSSL measured in the same run.

A benchmark, not a test: it prints figures and ratios and asserts nothing about speed. The
machine is shared and noisy, so absolute numbers vary; the ratios, measured side by side, are
the meaningful output. ``openssl speed`` measures AES-256-CBC encryption and HMAC-SHA256 alone;
a wrap does both over the same bytes, so the OpenSSL "wrap-equivalent" rate is the harmonic
combination ``1 / (1/aes + 1/hmac)``.

Usage: ``python bench/run.py [--seconds S]`` (also ``nox -s bench``).
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import time
from collections.abc import Callable

from pgkms.kdf import WrapKeys
from pgkms.layout import wrapped_len
from pgkms.secret import Secret
from pgkms.wrap import unwrap, wrap

KEYS = WrapKeys(Secret(bytes(range(32))), Secret(bytes(range(32, 64))))
SIZES = {"64-byte internal key": 64, "1 MiB secret": 1 << 20}


def rate(fn: Callable[[], object], payload: int, seconds: float) -> float:
    """Bytes of payload processed per second, over at least ``seconds`` of wall time."""
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or n < 3:
        fn()
        n += 1
    return n * payload / elapsed


def openssl_rate(args: list[str], size: int, seconds: float) -> float | None:
    """Bytes per second from ``openssl speed -mr`` for a buffer of ``size`` bytes."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    cmd = [exe, "speed", "-mr", "-seconds", str(max(1, round(seconds))), "-bytes", str(size), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("+F:"):
            return float(line.rsplit(":", 1)[1])
    return None


def fmt(bps: float) -> str:
    return f"{bps / 1e6:10.1f} MB/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    seconds = parser.parse_args().seconds
    print(f"{'case':22} {'op':7} {'pgkms ops/s':>12} {'pgkms':>15} {'openssl':>15} {'ratio':>8}")
    for label, size in SIZES.items():
        plaintext = Secret(bytes(size))
        wrapped = wrap(KEYS, plaintext)
        ct_len = wrapped_len(size) - 48
        aes = openssl_rate(["-evp", "aes-256-cbc"], ct_len, seconds)
        mac = openssl_rate(["-hmac", "sha256"], ct_len, seconds)
        both = 1 / (1 / aes + 1 / mac) if aes and mac else None
        cases: list[tuple[str, Callable[[], object]]] = [
            ("wrap", functools.partial(wrap, KEYS, plaintext)),
            ("unwrap", functools.partial(unwrap, KEYS, wrapped)),
        ]
        for op, fn in cases:
            ours = rate(fn, size, seconds)
            ratio = f"{ours / both:8.3f}" if both else "     n/a"
            theirs = fmt(both) if both else "n/a".rjust(15)
            print(f"{label:22} {op:7} {ours / size:12.0f} {fmt(ours)} {theirs} {ratio}")
        if aes and mac:
            print(f"{'':22} openssl alone: aes-256-cbc {fmt(aes)}, hmac-sha256 {fmt(mac)}")
    print("ratio = pgkms / openssl wrap-equivalent (AES-256-CBC + HMAC-SHA256 on the same bytes)")


if __name__ == "__main__":
    main()
