"""Wrap/unwrap throughput of the reference, next to OpenSSL measured in the same run.

A benchmark, not a test: it prints figures and ratios and asserts nothing about speed. The
machine is shared and noisy, so each figure is measured in several rounds, interleaved with the
figure it is compared to, and printed as min / median / max; the ratio is of the medians.

What is compared with what, so that a ratio means something:

* Beside the ratio of the medians, the ratio of each side's best round: on a shared machine a
  neighbour only ever adds time, so the best rounds are the least disturbed estimate of each.
* CPU time against CPU time. pgkms is timed with ``time.process_time`` (this process's user and
  system time); ``openssl speed`` without ``-elapsed`` also reports CPU time.
* 1 MiB wrap against OpenSSL doing the same work on one core: AES-256-CBC encryption and
  HMAC-SHA256 over the same bytes, combined as ``1 / (1/aes + 1/hmac)`` (a wrap does both, one
  after the other). 1 MiB unwrap against AES-256-CBC *decryption* and HMAC-SHA256 (``openssl
  speed -decrypt``): CBC decryption runs blocks in parallel and is much faster than encryption.
* The 64-byte case is a per-call cost, not a bulk rate: it is compared with the smallest code
  that does the same on the same library (``cryptography``), in this same process.

Usage: ``python bench/run.py [--seconds S] [--rounds R]`` (also ``nox -s bench``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pgkms.kdf import WrapKeys
from pgkms.secret import Secret
from pgkms.wrap import pkcs7_pad, unwrap, wrap

ENC, MAC = bytes(range(32)), bytes(range(32, 64))
KEYS = WrapKeys(Secret(ENC), Secret(MAC))
IV = bytes(16)
BULK = 1 << 20


def fixed_iv(n: int) -> bytes:
    return IV[:n]


@dataclass
class Figure:
    """One quantity measured over several rounds (unit given by the caller)."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self, scale: float, unit: str) -> str:
        lo, mid, hi = (v * scale for v in (min(self.values), self.median, max(self.values)))
        return f"{mid:9.1f} {unit} (min {lo:.1f}, max {hi:.1f})"


def cpu_seconds_per_call(fn: Callable[[], object], seconds: float) -> float:
    """CPU seconds per call, over at least ``seconds`` of CPU time (and at least 3 calls)."""
    n, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds or n < 3:
        fn()
        n += 1
    return elapsed / n


def openssl_rate(args: list[str], size: int, seconds: float) -> float | None:
    """Bytes per CPU second from ``openssl speed -mr`` for a buffer of ``size`` bytes."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    cmd = [exe, "speed", "-mr", "-seconds", str(max(1, round(seconds))), "-bytes", str(size), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("+F:"):
            return float(line.rsplit(":", 1)[1])
    return None


def minimal_wrap(plaintext: bytes) -> bytes:
    """The least code that computes a wrap on ``cryptography``: the 64-byte yardstick."""
    encryptor = Cipher(algorithms.AES(ENC), modes.CBC(IV)).encryptor()
    ciphertext = encryptor.update(pkcs7_pad(plaintext)) + encryptor.finalize()
    mac = hmac.HMAC(MAC, hashes.SHA256())
    mac.update(ciphertext)
    return mac.finalize() + IV + ciphertext


def bulk(rounds: int, seconds: float) -> None:
    plaintext = Secret(bytes(BULK))
    wrapped = wrap(KEYS, plaintext, fixed_iv)
    ct_len = len(wrapped) - 48
    ours = {"wrap": Figure([]), "unwrap": Figure([])}
    theirs = {"wrap": Figure([]), "unwrap": Figure([])}
    for _ in range(rounds):
        ours["wrap"].values.append(
            BULK / cpu_seconds_per_call(lambda: wrap(KEYS, plaintext, fixed_iv), seconds)
        )
        ours["unwrap"].values.append(
            BULK / cpu_seconds_per_call(lambda: unwrap(KEYS, wrapped), seconds)
        )
        aes_enc = openssl_rate(["-evp", "aes-256-cbc"], ct_len, seconds)
        aes_dec = openssl_rate(["-decrypt", "-evp", "aes-256-cbc"], ct_len, seconds)
        mac = openssl_rate(["-hmac", "sha256"], ct_len, seconds)
        if not (aes_enc and aes_dec and mac):
            print("openssl not found: bulk ratios not measured")
            return
        theirs["wrap"].values.append(1 / (1 / aes_enc + 1 / mac))
        theirs["unwrap"].values.append(1 / (1 / aes_dec + 1 / mac))
    print(f"1 MiB, bytes per CPU second, {rounds} interleaved rounds:")
    for op in ("wrap", "unwrap"):
        ratio = ours[op].median / theirs[op].median
        best = max(ours[op].values) / max(theirs[op].values)
        print(f"  {op:7} pgkms   {ours[op].show(1e-6, 'MB/s')}")
        print(
            f"  {'':7} openssl {theirs[op].show(1e-6, 'MB/s')}   ratio {ratio:.2f}x"
            f" (best rounds: {best:.2f}x)"
        )


def small(rounds: int, seconds: float) -> None:
    plaintext = bytes(64)
    secret = Secret(plaintext)
    ours, minimal = Figure([]), Figure([])
    for _ in range(rounds):
        ours.values.append(cpu_seconds_per_call(lambda: wrap(KEYS, secret, fixed_iv), seconds))
        minimal.values.append(cpu_seconds_per_call(lambda: minimal_wrap(plaintext), seconds))
    print(f"64 bytes, CPU time per wrap, {rounds} interleaved rounds:")
    print(f"  pgkms                 {ours.show(1e6, 'us')}")
    print(f"  minimal cryptography  {minimal.show(1e6, 'us')}")
    best = min(ours.values) / min(minimal.values)
    print(
        f"  pgkms / minimal = {ours.median / minimal.median:.2f}x (best rounds: {best:.2f}x;"
        " 1.00 = no overhead)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="CPU time per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per figure")
    args = parser.parse_args()
    small(args.rounds, args.seconds)
    bulk(args.rounds, args.seconds)


if __name__ == "__main__":
    main()
