"""The conformance profiles of the spec (chapter Conformance, CONF_03), as data.

A profile is complete when the IUT claims all its capabilities; it passes when, in addition, no
failed case breaks one of the requirements it covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pgkms_conformance.harness.model import Report, Verdict

_FORMAT_OPS = ("derive_kek", "wrap", "unwrap", "encode_record", "decode_record")
_FORMAT_REQS = ("KDF_", "WRAP_", "DISK_03", "DISK_04", "DISK_05", "DISK_08", "KEY_03")


@dataclass(frozen=True)
class Profile:
    name: str
    capabilities: tuple[str, ...]
    covers: tuple[str, ...]  # requirement IDs or ID prefixes ("WRAP_")


PROFILES: Final = (
    Profile("format", _FORMAT_OPS, _FORMAT_REQS),
    Profile("sql", (*_FORMAT_OPS, "sql_wrap", "sql_unwrap"), (*_FORMAT_REQS, "SQL_")),
    Profile("passphrase", ("substitute", "run_passphrase_command", "check_passphrase"), ("PASS_",)),
    Profile(
        "keystore",
        (*_FORMAT_OPS, "bootstrap", "startup", "rotate", "recover"),
        (*_FORMAT_REQS, "KEY_", "DISK_", "BOOT_", "START_", "ROT_", "REC_"),
    ),
    Profile(
        "full",
        (
            *_FORMAT_OPS,
            "sql_wrap",
            "sql_unwrap",
            "substitute",
            "run_passphrase_command",
            "check_passphrase",
            "bootstrap",
            "startup",
            "rotate",
            "recover",
            "upgrade_keys",
            "fs_trace",
        ),
        ("",),  # every requirement
    ),
)


@dataclass(frozen=True)
class ProfileResult:
    name: str
    verdict: str  # "passed" | "failed" | "not claimed"
    missing: tuple[str, ...]


def _covers(profile: Profile, req_id: str) -> bool:
    return any(
        req_id == c or ((c.endswith("_") or not c) and req_id.startswith(c)) for c in profile.covers
    )


def profile_results(report: Report) -> list[ProfileResult]:
    claimed = set(report.capabilities)
    failed = {r for c in report.cases if c.verdict is Verdict.FAILED for r in c.requirements}
    out = []
    for profile in PROFILES:
        missing = tuple(c for c in profile.capabilities if c not in claimed)
        if missing:
            verdict = "not claimed"
        elif report.aborted is not None or any(_covers(profile, r) for r in failed):
            verdict = "failed"
        else:
            verdict = "passed"
        out.append(ProfileResult(profile.name, verdict, missing))
    return out
