"""Generate every vector file and its schema; check committed files against a regeneration.

``generate_all`` returns the canonical text of every file, keyed by its path relative to the
vector directory (``kdf.json``, ``schemas/kdf_schema.json``, ...). Generation is deterministic:
the same code gives the same bytes on every machine (VEC_02, VEC_03). Each file is one family
module under ``families/``; its schema is built from the document it produced
(``schemas.schema_for_document``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgkms_conformance.vectors import accumulated, canonical
from pgkms_conformance.vectors.builder import Family
from pgkms_conformance.vectors.families import (
    accumulated_family,
    crash_recovery,
    kdf,
    key_directory,
    key_record,
    passphrase_command,
    rotation,
    upgrade,
    wrapping,
)
from pgkms_conformance.vectors.runner import MANIFEST
from pgkms_conformance.vectors.schemas import schema_for_document

Progress = Callable[[str], None]


def _families(accumulated_count: int) -> dict[str, Callable[[], Family]]:
    """Family name -> builder, in the order files are generated."""
    return {
        "kdf": kdf.build,
        "key_record": key_record.build,
        "key_directory": key_directory.build,
        "passphrase_command": passphrase_command.build,
        "rotation": rotation.build,
        "upgrade": upgrade.build,
        "wrap": wrapping.build_wrap,
        "sql_wrap": wrapping.build_sql_wrap,
        "accumulated": lambda: accumulated_family.build(accumulated_count),
        "crash_recovery": crash_recovery.build,
    }


@dataclass(frozen=True)
class Generated:
    files: dict[str, str]  # relative path -> canonical text
    counts: dict[str, int]  # family -> number of tests
    seconds: dict[str, float]  # family -> generation time

    def manifest(self) -> str:
        """``SHA256SUMS``: the digest of every generated file, in ``sha256sum`` format.

        A harness run trusts a repository file whose digest is listed here: ``vectors check``
        (CI) has shown that these bytes are a regeneration and valid against their schemas,
        so the run skips the schema validation for them (``vector_stage.load_vectors``).
        """
        return "".join(
            f"{hashlib.sha256(text.encode()).hexdigest()}  {rel}\n"
            for rel, text in sorted(self.files.items())
        )


def generate_all(
    accumulated_count: int = accumulated.DEFAULT_COUNT, progress: Progress | None = None
) -> Generated:
    files: dict[str, str] = {}
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}

    def emit(document: dict[str, Any], group_fields: dict[str, Any]) -> None:
        name = document["family"]
        files[f"{name}.json"] = canonical.dumps(document)
        schema = schema_for_document(document, group_fields)
        files[f"schemas/{document['schema']}"] = canonical.dumps(schema)
        counts[name] = int(document["numberOfTests"])

    for name, build in _families(accumulated_count).items():
        if progress:
            progress(f"generating {name} ...")
        start = time.perf_counter()
        family = build()
        emit(family.document(), family.group_fields)
        seconds[name] = time.perf_counter() - start
    return Generated(files=files, counts=counts, seconds=seconds)


def write(generated: Generated, out_dir: Path) -> None:
    for rel, text in generated.files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (out_dir / MANIFEST).write_text(generated.manifest(), encoding="utf-8")


def first_difference(rel: str, want: str, found: str) -> str:
    """Name the first test (or header field) in which two versions of a vector file differ."""
    try:
        a, b = json.loads(want), json.loads(found)
    except json.JSONDecodeError:
        return f"{rel}: committed file is not valid JSON"
    if a == b:
        return f"{rel}: same content, different formatting (not canonical)"
    for key in a.keys() | b.keys():
        if key != "testGroups" and a.get(key) != b.get(key):
            return f"{rel}: field {key!r} differs"
    tests_a = [t for g in a.get("testGroups", []) for t in g.get("tests", [])]
    tests_b = [t for g in b.get("testGroups", []) for t in g.get("tests", [])]
    for ta, tb in zip(tests_a, tests_b, strict=False):
        if ta != tb:
            return f"{rel}: first differing test tcId {ta.get('tcId')} ({ta.get('comment')})"
    return f"{rel}: {len(tests_a)} tests regenerated, {len(tests_b)} committed"


def check(vector_dir: Path, generated: Generated) -> list[str]:
    """Every difference between ``vector_dir`` and a regeneration, first difference named."""
    problems = []
    for rel, text in generated.files.items():
        path = vector_dir / rel
        if not path.is_file():
            problems.append(f"{rel}: missing (run `pgkms-conformance vectors generate`)")
            continue
        found = path.read_text(encoding="utf-8")
        if found != text:
            problems.append(first_difference(rel, text, found))
    manifest = vector_dir / MANIFEST
    if not manifest.is_file() or manifest.read_text(encoding="utf-8") != generated.manifest():
        problems.append(f"{MANIFEST}: missing or stale (run `pgkms-conformance vectors generate`)")
    for path in sorted(vector_dir.glob("*.json")) + sorted(vector_dir.glob("schemas/*.json")):
        rel = path.relative_to(vector_dir).as_posix()
        if rel not in generated.files:
            problems.append(f"{rel}: not produced by the generator (stale or foreign file)")
    return problems
