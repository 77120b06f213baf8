"""The mutants: one deviation each, the requirement it violates, and the patch that makes it.

The harness (this package's ``run``) must catch every one, the durability rules included
(DISK_07, BOOT_04, ROT_04..ROT_06): they are judged on the IUT's self-reported filesystem trace
(capability ``fs_trace``, ADP_05), which ``pgkms_independent`` records in its disk layer, on the
code path that does the work; a mutant that drops an fsync drops its trace entry with it.

Patches import ``pgkms_independent`` lazily: the catalog itself can be listed without it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from Crypto.Cipher import AES
from Crypto.Hash import HMAC, SHA256, SHA512
from Crypto.Util.Padding import pad

from pgkms_conformance.mutants import safety_mutants
from pgkms_conformance.mutants.patching import SeamMissing, module, original, rebind, set_method


@dataclass(frozen=True)
class Mutant:
    """One deviation (``str(mutant)`` is its name, for test ids)."""

    name: str
    violates: str  # the requirement ID a run of the harness must report as failed
    description: str
    apply: Callable[[], None]

    def __str__(self) -> str:
        return self.name


# -- cryptography ------------------------------------------------------------------------------
def _make_seal(mac_covers_iv: bool = False, always_pad: bool = True) -> Callable[..., bytes]:
    def seal(keys: Any, plaintext: Any, iv: bytes) -> bytes:
        data = plaintext.expose()
        padded = pad(data, 16, style="pkcs7") if always_pad or len(data) % 16 else data
        cipher = AES.new(keys.cipher_key.expose(), AES.MODE_CBC, iv=iv)
        ciphertext = cipher.encrypt(padded)
        covered = iv + ciphertext if mac_covers_iv else ciphertext
        tag = HMAC.new(keys.mac_key.expose(), covered, digestmod=SHA256).digest()
        return bytes(tag + iv + ciphertext)

    return seal


def _make_open(
    mac_covers_iv: bool = False, check_padding: bool = True, padding_first: bool = False
) -> Callable[..., Any]:
    codec = original("codec", "split_wrapped")
    code = original("failures", "Code")
    format_failure = original("failures", "FormatFailure")
    hidden = original("hidden", "Hidden")

    def unpad(padded: bytes, label: str) -> bytes:
        n = padded[-1]
        if not check_padding:
            return padded[:-n] if 1 <= n <= 16 else padded
        if not 1 <= n <= 16 or padded[-n:] != bytes([n]) * n:
            raise format_failure(code.BAD_PADDING, f"{label}: bad padding")
        return padded[:-n]

    def open_sealed(keys: Any, blob: bytes, label: str) -> Any:
        parts = codec(blob, label)
        covered = parts.iv + parts.ciphertext if mac_covers_iv else parts.ciphertext
        cipher = AES.new(keys.cipher_key.expose(), AES.MODE_CBC, iv=parts.iv)
        if padding_first:
            plain = unpad(cipher.decrypt(parts.ciphertext), label)
        tag = HMAC.new(keys.mac_key.expose(), covered, digestmod=SHA256).digest()
        if tag != parts.tag:
            raise format_failure(code.HMAC_MISMATCH, f"{label}: HMAC mismatch")
        if not padding_first:
            plain = unpad(cipher.decrypt(parts.ciphertext), label)
        return hidden(plain)

    return open_sealed


def hmac_over_iv() -> None:
    rebind("primitives", "seal", _make_seal(mac_covers_iv=True))
    rebind("primitives", "open_sealed", _make_open(mac_covers_iv=True))


def padding_not_checked() -> None:
    rebind("primitives", "open_sealed", _make_open(check_padding=False))


def padding_before_hmac() -> None:
    rebind("primitives", "open_sealed", _make_open(padding_first=True))


def no_pad_block_when_aligned() -> None:
    rebind("primitives", "seal", _make_seal(always_pad=False))


def kek_halves_swapped() -> None:
    key_pair, hidden = original("primitives", "KeyPair"), original("hidden", "Hidden")

    def derive(passphrase: Any) -> Any:
        d = SHA512.new(passphrase.expose()).digest()
        return key_pair(hidden(d[32:]), hidden(d[:32]))

    rebind("primitives", "derive", derive)


def length_checks_swapped() -> None:
    split = original("codec", "split_wrapped")
    code, failure = original("failures", "Code"), original("failures", "FormatFailure")

    def split_wrapped(blob: bytes, label: str) -> Any:
        if (len(blob) - 48) % 16:  # step 2 before step 1
            raise failure(code.WRAPPED_LENGTH_INVALID, f"{label}: not whole blocks")
        return split(blob, label)

    rebind("codec", "split_wrapped", split_wrapped)


def fixed_iv() -> None:
    rebind("adapter", "_iv", lambda given: given if given is not None else bytes(16))


def sql_key_halves_swapped() -> None:
    key_pair, hidden = original("primitives", "KeyPair"), original("hidden", "Hidden")
    seal, open_sealed = original("primitives", "seal"), original("primitives", "open_sealed")
    code, failure = original("failures", "Code"), original("failures", "FormatFailure")

    def swapped(key: Any) -> Any:
        raw = key.expose()
        return key_pair(hidden(raw[32:]), hidden(raw[:32]))

    def pg_wrap(sql_key: Any, secret: Any, iv: bytes) -> bytes:
        return bytes(seal(swapped(sql_key), secret, iv))

    def pg_unwrap(sql_key: Any, wrapped: bytes) -> Any:
        if len(wrapped) < 64:
            raise failure(code.WRAPPED_TOO_SHORT, "invalid wrapped key input")
        return open_sealed(swapped(sql_key), wrapped, "wrapped secret")

    rebind("sql", "pg_wrap", pg_wrap)
    rebind("sql", "pg_unwrap", pg_unwrap)


def sql_result_must_be_utf8() -> None:
    unwrap = original("sql", "pg_unwrap")
    code, failure = original("failures", "Code"), original("failures", "FormatFailure")

    def pg_unwrap(sql_key: Any, wrapped: bytes) -> Any:
        plain = unwrap(sql_key, wrapped)
        try:
            plain.expose().decode("utf-8")
        except UnicodeDecodeError:
            raise failure(code.BAD_PADDING, "wrapped secret: not valid text") from None
        return plain

    rebind("sql", "pg_unwrap", pg_unwrap)


# -- records ---------------------------------------------------------------------------------
def _unpack_record_with(
    byteorder: Literal["little", "big"] = "little",
    check_range: bool = True,
    check_name: bool = True,
    accept_longer: bool = False,
    name_the_file: bool = True,
) -> None:
    """Replace ``codec.unpack_record`` with one that reads the id in ``byteorder`` and may skip
    the id's range check (DISK_04), its comparison with the file name (DISK_05), or the refusal
    of a record longer than 132 bytes (DISK_08: the extra bytes ignored, as the 2020 patch
    did), or leave the file's name out of its messages (ERR_01)."""
    record, code = original("codec", "Record"), original("failures", "Code")
    failure = original("failures", "FormatFailure")

    def unpack_record(data: bytes, expected_id: int | None, label: str) -> Any:
        if not name_the_file:
            label = "a key file"
        if accept_longer:
            data = data[:132]
        if len(data) != 132:
            raise failure(code.RECORD_SIZE_INVALID, f"{label}: {len(data)} bytes")
        key_id = int.from_bytes(data[:4], byteorder)
        if check_range and key_id not in (0, 1, 2):
            raise failure(code.RECORD_ID_INVALID, f"{label}: id {key_id}")
        if check_name and expected_id is not None and key_id != expected_id:
            raise failure(code.RECORD_ID_MISMATCH, f"{label}: id {key_id}")
        return record(key_id, bytes(data[4:]))

    rebind("codec", "unpack_record", unpack_record)


def longer_record_accepted() -> None:
    """DEV_RECORD_SIZE: a key file longer than a record is read as its first 132 bytes; shorter
    ones are still refused."""
    _unpack_record_with(accept_longer=True)
    _keystore_attr("RECORD_SIZE", 2**31)  # the key directory's own check of the bounded read


def big_endian_id() -> None:
    def pack_record(key_id: int, wrapped_key: bytes) -> bytes:
        return key_id.to_bytes(4, "big") + wrapped_key

    rebind("codec", "pack_record", pack_record)
    _unpack_record_with(byteorder="big")


def record_id_not_checked() -> None:
    _unpack_record_with(check_name=False)


def record_id_range_not_checked() -> None:
    _unpack_record_with(check_range=False)


def record_fault_names_no_file() -> None:
    """ERR_01: the right code for a bad record, but a message that does not say which file."""
    _unpack_record_with(name_the_file=False)


# -- passphrases -----------------------------------------------------------------------------
def _length_rules(
    floor_everywhere: bool = True,
    floor_at_startup: bool = True,
    refuse_long: bool = True,
    cut_at_startup: bool = True,
) -> None:
    purpose_t, hidden = original("passphrase", "Purpose"), original("hidden", "Hidden")
    code, failure = original("failures", "Code"), original("failures", "PassphraseFailure")

    def apply_length_rules(output: bytes, total: int, purpose: Any) -> Any:
        startup = purpose is purpose_t.STARTUP or purpose == "startup"
        floor = floor_at_startup if startup else floor_everywhere
        if floor and total < 64:
            raise failure(code.PASSPHRASE_TOO_SHORT, f"passphrase is {total} bytes")
        if total > 1024 and not startup and refuse_long:
            raise failure(code.PASSPHRASE_TOO_LONG, f"passphrase is {total} bytes")
        return hidden(output[:1024] if (cut_at_startup or not startup) else output)

    rebind("passphrase", "apply_length_rules", apply_length_rules)


def short_passphrase_accepted() -> None:
    _length_rules(floor_everywhere=False)


def long_passphrase_cut_at_bootstrap() -> None:
    _length_rules(refuse_long=False)


def startup_not_cut() -> None:
    _length_rules(cut_at_startup=False)


def startup_without_minimum() -> None:
    _length_rules(floor_at_startup=False)


def _expand(mutated: Callable[[str], str]) -> None:
    rebind("passphrase", "expand", mutated)


def percent_percent_kept() -> None:
    prompt = original("codec", "PROMPT")
    _expand(lambda command: command.replace("%p", prompt))


def command_quoted_in_message() -> None:
    """DEV_COMMAND_MESSAGE: the 2020 message ``command "..." failed`` quoted the command."""
    run = original("passphrase", "run_command")
    failure = original("failures", "PassphraseFailure")

    def run_command(command: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return run(command, *args, **kwargs)
        except failure as exc:
            raise failure(exc.code, f'command "{command}" failed: {exc.message}') from None

    rebind("passphrase", "run_command", run_command)


def prompt_2020() -> None:
    prompt = original("codec", "PROMPT")

    def expand(command: str) -> str:  # DEV_PROMPT: last prompt char lost, command cut there
        out: list[str] = []
        i = 0
        while i < len(command):
            pair = command[i : i + 2]
            if pair == "%p":
                return "".join(out) + str(prompt)[:-1]
            if pair == "%%":
                out.append("%")
                i += 2
                continue
            out.append(command[i])
            i += 1
        return "".join(out)

    _expand(expand)


def secret_in_message() -> None:
    """An HMAC failure's message shows the MAC key it was checked under (ERR_02)."""
    open_ = original("primitives", "open_sealed")
    failure, code = original("failures", "FormatFailure"), original("failures", "Code")

    def open_sealed(keys: Any, blob: bytes, label: str) -> Any:
        try:
            return open_(keys, blob, label)
        except failure as exc:
            if exc.code is not code.HMAC_MISMATCH:
                raise
            mac_key = keys.mac_key.expose().hex()
            raise failure(
                code.HMAC_MISMATCH, f"{label}: no match under MAC key {mac_key}"
            ) from None

    rebind("primitives", "open_sealed", open_sealed)


def output_not_drained() -> None:
    """DEV_LONG_OUTPUT: the 2020 patch read 1024 bytes and closed the pipe; a command writing
    more than the pipe holds then dies of SIGPIPE. Here: 1025 bytes are read, the pipe closed,
    and the command waited for (its exit status judged as usual)."""
    limit = original("codec", "PASSPHRASE_CEILING") + 1

    def collect(child: Any, timeout: float) -> tuple[bytes, int]:
        fd = child.stdout.fileno()
        kept = b""
        while len(kept) < limit:
            chunk = os.read(fd, limit - len(kept))
            if not chunk:
                break
            kept += chunk
        child.stdout.close()  # a writer with more to say now gets SIGPIPE
        child.wait(timeout)
        return kept, len(kept)

    rebind("passphrase", "_collect", collect)


def newline_stripped() -> None:
    run = original("passphrase", "run_command")

    def run_command(command: str, timeout: float = 60.0) -> tuple[bytes, int]:
        output, total = run(command, timeout)
        if output.endswith(b"\n"):
            return output[:-1], total - 1
        return output, total

    rebind("passphrase", "run_command", run_command)


def exit_status_ignored() -> None:
    def run_command(command: str, timeout: float = 60.0) -> tuple[bytes, int]:
        expand = original("passphrase", "expand")
        done = subprocess.run(
            ["/bin/sh", "-c", expand(command)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        return done.stdout[:1025], len(done.stdout)

    rebind("passphrase", "run_command", run_command)


# -- key directories ---------------------------------------------------------------------------
def _keystore_attr(name: str, value: Any) -> None:
    keystore = module("keystore")

    if not hasattr(keystore, name):
        raise SeamMissing(f"pgkms_independent.keystore.{name} does not exist")
    setattr(keystore, name, value)


def file_mode_0644() -> None:
    _keystore_attr("FILE_MODE", 0o644)


def dir_mode_0755() -> None:
    _keystore_attr("DIR_MODE", 0o755)


def unexpected_file_ignored() -> None:
    disk = module("disk")

    names = original("codec", "KEY_FILE_NAMES")
    read_records = original("keystore", "KeyStore").read_records
    real = disk.names_in

    def lenient(self: Any) -> Any:
        disk.names_in = lambda d: [n for n in real(d) if n in names]
        try:
            return read_records(self)
        finally:
            disk.names_in = real

    set_method("keystore", "KeyStore", "read_records", lenient)


def stray_files_removed_at_startup() -> None:
    names = original("codec", "KEY_FILE_NAMES")
    startup = original("keystore", "Cluster").startup

    def tidy_startup(self: Any, passphrase: bytes) -> Any:
        path = self.current.path
        if os.path.isdir(path):
            for name in os.listdir(path):
                if name not in names and os.path.isfile(os.path.join(path, name)):
                    os.unlink(os.path.join(path, name))  # "helpful" clean-up
        return startup(self, passphrase)

    set_method("keystore", "Cluster", "startup", tidy_startup)


def wrong_passphrase_as_hmac_mismatch() -> None:
    unlock = original("keystore", "KeyStore").unlock
    code, failure = original("failures", "Code"), original("failures", "FormatFailure")

    def unlock_mut(self: Any, kek: Any) -> Any:
        try:
            return unlock(self, kek)
        except Exception as exc:
            if getattr(exc, "code", None) is code.WRONG_PASSPHRASE:
                raise failure(code.HMAC_MISMATCH, f"{self.path}: HMAC mismatch") from None
            raise

    set_method("keystore", "KeyStore", "unlock", unlock_mut)


def key_length_not_checked() -> None:
    keystore = module("keystore")

    hidden = original("hidden", "Hidden")
    real = keystore.open_sealed

    def open_any_length(kek: Any, blob: bytes, label: str) -> Any:
        return hidden(real(kek, blob, label).expose()[:64].ljust(64, b"\0"))

    keystore.open_sealed = open_any_length


def bootstrap_overwrites() -> None:
    bootstrap = original("keystore", "Cluster").bootstrap

    def overwrite(self: Any, passphrase: bytes, entropy: Any = None) -> Any:
        for store in (self.current, self.staging):
            if store.present():
                store.destroy()
        return bootstrap(self, passphrase, entropy)

    set_method("keystore", "Cluster", "bootstrap", overwrite)


def bootstrap_keys_reversed() -> None:
    entropy_t = original("entropy", "Entropy")
    bootstrap = original("keystore", "Cluster").bootstrap

    class ReversedKeys:
        """Hands out the three 64-byte draws in reverse order (key 2 first)."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.keys: list[bytes] | None = None

        def draw(self, size: int) -> bytes:
            if size != 64:
                return bytes(self.inner.draw(size))
            if self.keys is None:
                self.keys = [self.inner.draw(64) for _ in range(3)]
            return bytes(self.keys.pop())

    def reversed_bootstrap(self: Any, passphrase: bytes, entropy: Any = None) -> Any:
        return bootstrap(self, passphrase, ReversedKeys(entropy or entropy_t()))

    set_method("keystore", "Cluster", "bootstrap", reversed_bootstrap)


def rotation_ivs_reversed() -> None:
    rotate = original("keystore", "Cluster").rotate
    entropy_t = original("entropy", "Entropy")

    class ReversedIvs:
        def __init__(self, inner: Any) -> None:
            self.ivs = [inner.draw(16) for _ in range(3)]

        def draw(self, size: int) -> bytes:
            return bytes(self.ivs.pop())

    def reversed_rotate(self: Any, old: bytes, new: bytes, entropy: Any = None) -> Any:
        return rotate(self, old, new, ReversedIvs(entropy or entropy_t()))

    set_method("keystore", "Cluster", "rotate", reversed_rotate)


def rotation_new_keys() -> None:
    cluster = original("keystore", "Cluster")
    hidden, keys_t = original("hidden", "Hidden"), original("keystore", "InternalKeys")
    startup = cluster.startup

    def fresh_keys_startup(self: Any, passphrase: bytes) -> Any:
        startup(self, passphrase)  # checks the old passphrase as before ...
        return keys_t(tuple(hidden(secrets.token_bytes(64)) for _ in range(3)))  # ... new keys

    rotate = cluster.rotate

    def rotate_mut(self: Any, old: bytes, new: bytes, entropy: Any = None) -> Any:
        self.startup = lambda p: fresh_keys_startup(self, p)
        try:
            return rotate(self, old, new, entropy)
        finally:
            del self.startup

    set_method("keystore", "Cluster", "rotate", rotate_mut)


def rotation_leaves_old_set() -> None:
    cluster = original("keystore", "Cluster")
    rotate = cluster.rotate

    def half_rotate(self: Any, old: bytes, new: bytes, entropy: Any = None) -> Any:
        self.current.destroy = lambda: None  # the old set is never removed ...
        keystore = module("keystore")

        real = keystore.disk.rename
        keystore.disk.rename = lambda a, b: None  # ... nor the new one put in place
        try:
            return rotate(self, old, new, entropy)
        finally:
            keystore.disk.rename = real

    set_method("keystore", "Cluster", "rotate", half_rotate)


def recovery_counts_files() -> None:
    disk = module("disk")

    def recover_2020(self: Any, kek: Any) -> str:  # DEV_RECOVERY_COUNT
        if not self.staging.present():
            return "nothing"
        if not self.current.present() or len(disk.names_in(self.staging.path)) >= 3:
            if self.current.present():
                self.current.destroy()
            disk.rename(self.staging.path, self.current.path)
            return "adopt_tmp"
        self.staging.destroy()
        return "discard_tmp"

    set_method("keystore", "Cluster", "recover", recover_2020)


def recovery_adopts_invalid_tmp() -> None:
    disk = module("disk")

    recover = original("keystore", "Cluster").recover
    code = original("failures", "Code")

    def adopt_anyway(self: Any, kek: Any) -> str:
        try:
            return str(recover(self, kek))
        except Exception as exc:
            if getattr(exc, "code", None) is not code.NO_VALID_KEY_SET:
                raise
            if self.current.present():
                self.current.destroy()
            disk.rename(self.staging.path, self.current.path)
            return "adopt_tmp"

    set_method("keystore", "Cluster", "recover", adopt_anyway)


def no_directory_fsync() -> None:
    rebind("disk", "sync_dir", lambda path: None)
    set_method("disk", "_Walk", "sync_here", lambda self: None)  # the removal's own fsyncs


# -- the adapter protocol ------------------------------------------------------------------------
def one_request_per_read() -> None:
    """ADP_01's pipelining rule broken: the adapter reads its input in chunks and answers only the
    first request of each, as if a request could arrive only after the previous answer. One
    request at a time it conforms; with several in flight the others are never answered."""
    answer = original("adapter", "answer")

    def serve(lines: Any, out: Any) -> None:
        while True:
            chunk = lines.read1(1 << 16)
            if not chunk:
                return
            line = chunk.split(b"\n", 1)[0]
            if not line.strip():
                continue
            response, finished = answer(line)
            out.write(json.dumps(response).encode("ascii") + b"\n")
            out.flush()
            if finished:
                return

    rebind("adapter", "serve", serve)


def create_traced_at_first_write() -> None:
    """A file written in two writes is traced at the first, with that write's size: the trace
    breaks ADP_05's open-then-write rule (one ``create``, every byte written, listed when the
    file is complete) while the disk, the fsyncs and their order stay right."""
    disk = module("disk")

    def write_new_file(path: str, data: bytes, mode: int) -> None:
        def action() -> None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            try:
                os.fchmod(fd, mode)
                half = len(data) // 2
                os.write(fd, data[:half])
                disk._note("create", path, mode=mode, size=half)
                os.write(fd, data[half:])
                os.fsync(fd)
                disk._note("fsync", path)
            finally:
                os.close(fd)

        disk._guard("create", path, action)

    rebind("disk", "write_new_file", write_new_file)


def _swap_without(*skipped: int) -> Callable[..., None]:
    """``Cluster._swap_in`` (rotation's and upgrade's swap) leaving out some of its syncs,
    numbered in order: 0 tmp dir, 1 PGDATA after tmp, 2 PGDATA after removal, 3 after rename."""
    disk = module("disk")
    keystore = module("keystore")

    def swap_in(self: Any, wrapped: Any) -> None:
        syncs = iter(range(4))

        def sync(path: str) -> None:
            if next(syncs) not in skipped:
                disk.sync_dir(path)

        disk.make_dir(self.staging.path, keystore.DIR_MODE)
        for key_id, blob in enumerate(wrapped):
            record = original("codec", "pack_record")(key_id, blob)
            disk.write_new_file(self.staging.file(key_id), record, keystore.FILE_MODE)
        sync(self.staging.path)
        sync(self.datadir)
        self.current.destroy()
        sync(self.datadir)
        disk.rename(self.staging.path, self.current.path)
        sync(self.datadir)

    return swap_in


def tmp_not_durable_before_removal() -> None:
    set_method("keystore", "Cluster", "_swap_in", _swap_without(0, 1))


def no_pgdata_fsync_after_rename() -> None:
    set_method("keystore", "Cluster", "_swap_in", _swap_without(3))


def bootstrap_without_pgdata_fsync() -> None:
    bootstrap = original("keystore", "Cluster").bootstrap

    def bootstrap_mut(self: Any, passphrase: bytes, entropy: Any = None) -> Any:
        self._sync = lambda: None  # the key directory's own entry is never made durable
        try:
            return bootstrap(self, passphrase, entropy)
        finally:
            del self._sync

    set_method("keystore", "Cluster", "bootstrap", bootstrap_mut)


def recovery_removes_current_first() -> None:
    recover = original("keystore", "Cluster").recover

    def recover_mut(self: Any, kek: Any) -> str:
        present = self.staging.present() and self.current.present()
        if present and not self.current.holds_valid_set(kek):
            self.current.destroy()  # before anyone knows whether tmp is any better
            self._sync()
        return str(recover(self, kek))

    set_method("keystore", "Cluster", "recover", recover_mut)


def upgrade_copies_before_checking() -> None:
    derive, effective = original("primitives", "derive"), original("passphrase", "effective")
    purpose = original("passphrase", "Purpose")

    def adopt_mut(self: Any, old: Any, passphrase: bytes) -> None:  # DEV_UPGRADE
        kek = derive(effective(passphrase, purpose.STARTUP))
        records = old.current.read_records()
        self._swap_in([record.wrapped_key for record in records])
        old.current.unlock(kek)  # too late: the new cluster's keys are already replaced

    set_method("keystore", "Cluster", "adopt_keys_of", adopt_mut)


def upgrade_removes_new_keys_first() -> None:
    derive, effective = original("primitives", "derive"), original("passphrase", "effective")
    purpose = original("passphrase", "Purpose")
    disk = module("disk")

    def adopt_mut(self: Any, old: Any, passphrase: bytes) -> None:
        kek = derive(effective(passphrase, purpose.STARTUP))
        old.recover(kek)
        records = old.current.read_records()
        old.current.unlock(kek)
        self.recover(kek)
        self.current.read_records()
        # the new cluster's own keys go first: a crash before the copy is durable leaves none
        self.current.destroy()
        self._sync()
        self.staging.create([record.wrapped_key for record in records])
        self._sync()
        disk.rename(self.staging.path, self.current.path)
        self._sync()

    set_method("keystore", "Cluster", "adopt_keys_of", adopt_mut)


MUTANTS: tuple[Mutant, ...] = (
    Mutant("hmac_over_iv", "WRAP_04", "the HMAC covers IV || C instead of C", hmac_over_iv),
    Mutant("kek_halves_swapped", "KDF_01", "enc = D[32:64], mac = D[0:32]", kek_halves_swapped),
    Mutant(
        "passphrase_newline_stripped",
        "PASS_01",
        "a trailing newline is stripped from the command output",
        newline_stripped,
    ),
    Mutant("big_endian_key_id", "DISK_03", "the record id is big-endian", big_endian_id),
    Mutant(
        "longer_record_accepted",
        "DISK_08",
        "a record longer than 132 bytes is accepted, its extra bytes ignored (DEV_RECORD_SIZE)",
        longer_record_accepted,
    ),
    Mutant(
        "record_fault_names_no_file",
        "ERR_01",
        "a bad record's message does not name its key file",
        record_fault_names_no_file,
    ),
    Mutant(
        "padding_not_checked",
        "WRAP_08",
        "PKCS#7 padding is stripped unchecked",
        padding_not_checked,
    ),
    Mutant(
        "padding_before_hmac", "WRAP_07", "padding is checked before the HMAC", padding_before_hmac
    ),
    Mutant(
        "length_checks_swapped",
        "WRAP_05",
        "the block-multiple check runs before the minimum length check",
        length_checks_swapped,
    ),
    Mutant(
        "no_pad_block_when_aligned",
        "WRAP_02",
        "no padding block for block-aligned input",
        no_pad_block_when_aligned,
    ),
    Mutant("fixed_iv", "WRAP_03", "every wrap uses an all-zero IV", fixed_iv),
    Mutant(
        "record_id_not_checked",
        "DISK_05",
        "the record id is not compared with the file name",
        record_id_not_checked,
    ),
    Mutant(
        "record_id_range_not_checked",
        "DISK_04",
        "record ids outside 0..2 are accepted",
        record_id_range_not_checked,
    ),
    Mutant(
        "recovery_counts_files",
        "REC_02",
        "recovery counts files in pg_cryptokeys_tmp (the 2020 rule)",
        recovery_counts_files,
    ),
    Mutant(
        "recovery_adopts_invalid_tmp",
        "REC_05",
        "with no valid set, tmp is renamed into place anyway",
        recovery_adopts_invalid_tmp,
    ),
    Mutant(
        "one_request_per_read",
        "ADP_01",
        "answers only the first request of each read: requests in flight are lost",
        one_request_per_read,
    ),
    Mutant(
        "create_traced_at_first_write",
        "ADP_05",
        "a file created and then written twice is traced at its first write, with that size",
        create_traced_at_first_write,
    ),
    Mutant("no_directory_fsync", "DISK_07", "directories are never fsynced", no_directory_fsync),
    Mutant(
        "tmp_not_durable_before_removal",
        "ROT_04",
        "rotation removes the old set before fsyncing pg_cryptokeys_tmp and PGDATA",
        tmp_not_durable_before_removal,
    ),
    Mutant(
        "no_pgdata_fsync_after_rename",
        "ROT_06",
        "rotation does not fsync PGDATA after the rename (DEV_FSYNC)",
        no_pgdata_fsync_after_rename,
    ),
    Mutant(
        "bootstrap_without_pgdata_fsync",
        "BOOT_04",
        "bootstrap does not fsync PGDATA after creating pg_cryptokeys",
        bootstrap_without_pgdata_fsync,
    ),
    Mutant(
        "recovery_removes_current_first",
        "REC_05",
        "recovery removes an invalid pg_cryptokeys before checking pg_cryptokeys_tmp",
        recovery_removes_current_first,
    ),
    Mutant(
        "upgrade_copies_before_checking",
        "UPG_01",
        "upgrade_keys copies the old records, then checks the passphrase (DEV_UPGRADE)",
        upgrade_copies_before_checking,
    ),
    Mutant(
        "upgrade_removes_new_keys_first",
        "UPG_01",
        "upgrade_keys removes the new cluster's keys before writing the copy (not rotation's "
        "swap: ROT_04)",
        upgrade_removes_new_keys_first,
    ),
    Mutant(
        "short_passphrase_accepted",
        "PASS_04",
        "bootstrap and rotation accept < 64 bytes",
        short_passphrase_accepted,
    ),
    Mutant(
        "long_passphrase_cut",
        "PASS_05",
        "bootstrap and rotation cut > 1024 bytes silently (DEV_TRUNCATE)",
        long_passphrase_cut_at_bootstrap,
    ),
    Mutant(
        "startup_not_cut",
        "PASS_06",
        "startup uses the whole output beyond 1024 bytes",
        startup_not_cut,
    ),
    Mutant(
        "startup_without_minimum", "PASS_07", "startup accepts < 64 bytes", startup_without_minimum
    ),
    Mutant(
        "secret_in_message",
        "ERR_02",
        "an HMAC failure's message shows the MAC key in hex",
        secret_in_message,
    ),
    Mutant(
        "output_not_drained",
        "PASS_11",
        "the command's output is read to 1025 bytes and the pipe closed (DEV_LONG_OUTPUT)",
        output_not_drained,
    ),
    Mutant("percent_percent_kept", "PASS_02", "%% is not substituted", percent_percent_kept),
    Mutant(
        "command_quoted_in_message",
        "PASS_10",
        "a failed command's message quotes the command text, as the 2020 patch did",
        command_quoted_in_message,
    ),
    Mutant(
        "prompt_2020",
        "PASS_02",
        "%p loses the prompt's last char and cuts the command (DEV_PROMPT)",
        prompt_2020,
    ),
    Mutant(
        "exit_status_ignored", "PASS_03", "a failing command's output is used", exit_status_ignored
    ),
    Mutant("file_mode_0644", "DISK_09", "key files are created 0644", file_mode_0644),
    Mutant("dir_mode_0755", "DISK_01", "the key directory is created 0755", dir_mode_0755),
    Mutant(
        "unexpected_file_ignored",
        "DISK_06",
        "extra entries in the key directory are ignored",
        unexpected_file_ignored,
    ),
    Mutant(
        "stray_files_removed",
        "START_04",
        "startup deletes extra files before reading",
        stray_files_removed_at_startup,
    ),
    Mutant(
        "wrong_passphrase_as_hmac_mismatch",
        "START_03",
        "every key failing its HMAC is reported as hmac_mismatch",
        wrong_passphrase_as_hmac_mismatch,
    ),
    Mutant(
        "key_length_not_checked",
        "KEY_03",
        "an unwrapped key of the wrong length is padded or cut to 64 bytes",
        key_length_not_checked,
    ),
    Mutant(
        "bootstrap_overwrites",
        "BOOT_01",
        "bootstrap replaces existing key directories",
        bootstrap_overwrites,
    ),
    Mutant(
        "bootstrap_keys_reversed",
        "BOOT_03",
        "bootstrap assigns its key draws in reverse order",
        bootstrap_keys_reversed,
    ),
    Mutant(
        "rotation_ivs_reversed",
        "ROT_03",
        "rotation uses its IV draws in reverse order",
        rotation_ivs_reversed,
    ),
    Mutant(
        "rotation_new_keys", "KEY_02", "rotation wraps freshly generated keys", rotation_new_keys
    ),
    Mutant(
        "rotation_leaves_old_set",
        "ROT_06",
        "rotation never removes the old set nor renames the new one",
        rotation_leaves_old_set,
    ),
    Mutant(
        "sql_key_halves_swapped",
        "SQL_01",
        "pg_wrap uses the SQL key's halves swapped",
        sql_key_halves_swapped,
    ),
    Mutant(
        "sql_result_must_be_utf8",
        "SQL_04",
        "pg_unwrap refuses plaintexts that are not UTF-8",
        sql_result_must_be_utf8,
    ),
    # -- issue 10: the lock, the environment, the passphrase command, failure atomicity
    Mutant(
        "no_lock",
        "CONC_01",
        "no procedure takes the data directory's lock",
        safety_mutants.no_lock,
    ),
    Mutant(
        "lock_around_write_steps_only",
        "CONC_01",
        "only rotation's write steps are locked (the 2020 scope), recovery and startup not",
        safety_mutants.lock_around_write_steps_only,
    ),
    Mutant(
        "lock_fails_without_waiting",
        "CONC_02",
        "a held lock fails the procedure at once, without the bounded wait",
        safety_mutants.lock_fails_without_waiting,
    ),
    Mutant(
        "no_postmaster_pid_check",
        "CONC_03",
        "a live postmaster.pid is ignored",
        safety_mutants.no_postmaster_pid_check,
    ),
    Mutant(
        "removal_follows_symlinks",
        "ENV_01",
        "recovery removes a key directory's contents through a symbolic link",
        safety_mutants.removal_follows_symlinks,
    ),
    Mutant(
        "blocking_key_open",
        "ENV_02",
        "a key file is opened blocking, its type checked after the open (a FIFO hangs it)",
        safety_mutants.blocking_key_open,
    ),
    Mutant(
        "unbounded_key_read",
        "ENV_03",
        "a key file is read whole before its size is judged",
        safety_mutants.unbounded_key_read,
    ),
    Mutant(
        "recursive_removal",
        "ENV_04",
        "directories are removed by recursion (a deep tree exceeds the interpreter's limit)",
        safety_mutants.recursive_removal,
    ),
    Mutant(
        "no_permission_check",
        "ENV_05",
        "key files and directories of any mode are accepted",
        safety_mutants.no_permission_check,
    ),
    Mutant(
        "no_command_timeout",
        "PASS_08",
        "the passphrase command may run forever",
        safety_mutants.no_command_timeout,
    ),
    Mutant(
        "command_survives_sigterm",
        "PASS_09",
        "on SIGTERM the adapter exits, leaving the command running",
        safety_mutants.command_survives_sigterm,
    ),
    Mutant(
        "bootstrap_blocks_retry",
        "BOOT_05",
        "a failed bootstrap leaves pg_cryptokeys_tmp, and any pg_cryptokeys_tmp refuses bootstrap",
        safety_mutants.bootstrap_blocks_retry,
    ),
    Mutant(
        "tmp_left_after_failed_write",
        "ROT_07",
        "a rotation that failed before its point of no return leaves pg_cryptokeys_tmp",
        safety_mutants.tmp_left_after_failed_write,
    ),
    Mutant(
        "rotation_incomplete_not_reported",
        "ROT_08",
        "a failure past the point of no return keeps its own code, not rotation_incomplete",
        safety_mutants.rotation_incomplete_not_reported,
    ),
)

BY_NAME: dict[str, Mutant] = {m.name: m for m in MUTANTS}
