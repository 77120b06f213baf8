"""The requirement IDs the harness reports on, each with the short title its reports show.

A requirement no check judged for an IUT is reported as such, never as passed. The
durability rules (DISK_07, BOOT_04, REC_06) are judged on the IUT's own filesystem trace when it
claims the ``fs_trace`` capability (ADP_05; stage ``durability``), and reported unsupported when
it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from pgkms_conformance.ids import REQUIREMENT_CITATION_RE
from pgkms_conformance.trace import read_definitions

REQUIREMENT_ID = REQUIREMENT_CITATION_RE


@dataclass(frozen=True)
class Requirement:
    title: str


REQUIREMENTS: Final[dict[str, Requirement]] = {
    "PASS_01": Requirement("passphrase is the command's raw stdout, nothing trimmed"),
    "PASS_02": Requirement("%p -> prompt, %% -> %, other %x kept"),
    "PASS_03": Requirement("failing or killed command -> passphrase_command_failed"),
    "PASS_04": Requirement("bootstrap/rotation reject < 64 bytes"),
    "PASS_05": Requirement("bootstrap/rotation reject > 1024 bytes"),
    "PASS_06": Requirement("startup cuts to the first 1024 bytes"),
    "PASS_07": Requirement("startup rejects < 64 bytes"),
    "PASS_08": Requirement("command timeout: process group killed, passphrase_command_timeout"),
    "PASS_09": Requirement("the caller's end (SIGTERM, error) kills the command's group"),
    "PASS_10": Requirement("a failed command's message never quotes the command or its output"),
    "PASS_11": Requirement("the output is read to its end: no SIGPIPE for a long output"),
    "KDF_01": Requirement("KEK = SHA-512(passphrase): enc = D[0:32], mac = D[32:64]"),
    "WRAP_01": Requirement("wrapped = HMAC || IV || C"),
    "WRAP_02": Requirement("C = AES-256-CBC(PKCS#7(P)), padding always added"),
    "WRAP_03": Requirement("a fresh random IV for every wrap"),
    "WRAP_04": Requirement("HMAC-SHA256 over C only"),
    "WRAP_05": Requirement("unwrap: < 64 bytes -> wrapped_too_short"),
    "WRAP_06": Requirement("unwrap: ciphertext not whole blocks -> wrapped_length_invalid"),
    "WRAP_07": Requirement("unwrap: HMAC checked before decryption -> hmac_mismatch"),
    "WRAP_08": Requirement("unwrap: strict PKCS#7 -> bad_padding"),
    "KEY_01": Requirement("three 64-byte internal keys from a CSPRNG at bootstrap"),
    "KEY_02": Requirement("internal keys never change; rotation re-wraps them"),
    "KEY_03": Requirement("unwrapped internal key not 64 bytes -> key_length_invalid"),
    "DISK_01": Requirement("pg_cryptokeys, mode 0700"),
    "DISK_02": Requirement("one file per key: 0000, 0001, 0002"),
    "DISK_09": Requirement("key files created with mode 0600"),
    "DISK_03": Requirement("record = uint32 LE id || 128-byte wrapped key, 132 bytes"),
    "DISK_04": Requirement("record id outside 0..2 -> record_id_invalid"),
    "DISK_05": Requirement("record id differs from file name -> record_id_mismatch"),
    "DISK_06": Requirement("exactly the three files; unexpected/missing/absent errors"),
    "DISK_07": Requirement("files, directories and PGDATA fsynced"),
    "DISK_08": Requirement("a key file not of 132 bytes -> record_size_invalid"),
    "BOOT_01": Requirement("bootstrap refuses when keys exist"),
    "BOOT_02": Requirement("bootstrap checks the passphrase before writing"),
    "BOOT_03": Requirement("randomness order: keys 0,1,2 then IVs 0,1,2"),
    "BOOT_04": Requirement("bootstrap durability sequence"),
    "BOOT_05": Requirement("a failed bootstrap never blocks a retry"),
    "START_01": Requirement("startup: length rules, KEK, recovery before reading"),
    "START_02": Requirement("startup check order"),
    "START_03": Requirement("all HMACs fail -> wrong_passphrase; some -> hmac_mismatch"),
    "START_04": Requirement("failed startup changes nothing on disk"),
    "SQL_01": Requirement("pg_wrap with the SQL key halves"),
    "SQL_02": Requirement("pg_unwrap: < 64 bytes -> wrapped_too_short first"),
    "SQL_03": Requirement("pg_unwrap: other failures keep their WRAP codes"),
    "SQL_04": Requirement("pg_unwrap returns bytes, no encoding check"),
    "ROT_01": Requirement("rotation opens the keys under the old passphrase first"),
    "ROT_02": Requirement("rotation checks the new passphrase before writing"),
    "ROT_03": Requirement("rotation wraps keys 0,1,2 drawing IVs in that order"),
    "ROT_04": Requirement("rotation writes pg_cryptokeys_tmp (0700, files 0600)"),
    "ROT_05": Requirement("rotation removes the old pg_cryptokeys"),
    "ROT_06": Requirement("rotation renames pg_cryptokeys_tmp into place"),
    "ROT_07": Requirement("failure before the point of no return removes pg_cryptokeys_tmp"),
    "ROT_08": Requirement("failure past the point of no return -> rotation_incomplete"),
    "REC_01": Requirement("no pg_cryptokeys_tmp: nothing to do"),
    "REC_02": Requirement("recovery decides by content, never by counting"),
    "REC_03": Requirement("current valid -> discard tmp"),
    "REC_04": Requirement("current invalid, tmp valid -> adopt tmp"),
    "REC_05": Requirement("neither valid -> no_valid_key_set, nothing changed"),
    "REC_06": Requirement("recovery is idempotent across crashes"),
    "UPG_01": Requirement("pg_upgrade checks the passphrase before copying"),
    "CONC_01": Requirement("one procedure at a time per data directory (the lock)"),
    "CONC_02": Requirement("a bounded wait for the lock, then key_directory_locked"),
    "CONC_03": Requirement("an offline tool refuses a live postmaster.pid: server_running"),
    "ENV_01": Requirement("never through a symbolic link: symlink_refused"),
    "ENV_02": Requirement("never block on a special file: not_regular_file"),
    "ENV_03": Requirement("bounded read of a key file (at most 133 bytes)"),
    "ENV_04": Requirement("removal of any depth, without recursion limits"),
    "ENV_05": Requirement("modes beyond 0750/0640 refused: permissions_too_open"),
    "ERR_01": Requirement("one stable error code per failure, a message naming the fault"),
    "ERR_02": Requirement("no secret in any message, log line or report"),
    "ADP_01": Requirement("adapter framing: one JSON line per request, survives bad input"),
    "ADP_02": Requirement("bytes as lowercase hex"),
    "ADP_03": Requirement("failures carry a stable code; protocol error codes"),
    "ADP_04": Requirement("hello: protocol 1, capabilities"),
    "ADP_05": Requirement("fs_trace: the filesystem operations the IUT really performed"),
    "ADP_06": Requirement("lock_timeout and timeout fields; concurrency, passphrase_timeout"),
}


# IDs of other kinds that vectors may cite (spec: findings, deviations, crash model).
_OTHER_KINDS = {
    "SEC": "security finding a vector demonstrates",
    "DEV": "deviation from the 2020 patch",
    "CRASH": "crash-model requirement or assumption (crash explorer vectors)",
    "VEC": "vector format requirement",
    "CONF": "conformance requirement",
}


@cache
def spec_titles(root: Path | None = None) -> dict[str, str]:
    """Titles of the spec's ``req`` and ``assumption`` items, parsed from ``spec/`` as the trace
    check does; empty
    when the package runs without its source tree (an installed wheel has no ``spec/``)."""
    root = root or Path(__file__).resolve().parents[3]
    if not (root / "spec" / "chapters").is_dir():
        return {}
    return {d.id: d.title for d in read_definitions(root, []) if d.kind in ("req", "assumption")}


def title_of(req_id: str) -> str:
    known = REQUIREMENTS.get(req_id)
    if known is not None:
        return known.title
    titled = spec_titles().get(req_id)
    if titled:
        return titled
    return _OTHER_KINDS.get(req_id.split("_", maxsplit=1)[0], "(not in the requirement table)")


def requirement_sort_key(req_id: str) -> tuple[int, str]:
    """Spec order for known IDs (the table's order), then unknown IDs alphabetically."""
    order = list(REQUIREMENTS)
    return (order.index(req_id), req_id) if req_id in REQUIREMENTS else (len(order), req_id)
