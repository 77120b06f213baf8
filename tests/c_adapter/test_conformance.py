"""The C adapter template passes everything it claims, judged by the conformance harness.

It claims every operation, inject_randomness, concurrency and passphrase_timeout, but not
fs_trace: its durability requirements are to be judged from its system calls
(``--trace-syscalls``), so until the harness observes them the durability stage reports them
"unsupported", never "passed". Runs the whole harness: about 15 s on a 2-core machine, 45 s
once the harness has its safety and concurrency stages. A harness whose listings predate the
lock file (CONC_01) fails this test with one line saying so.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pgkms_conformance.harness import report_json
from pgkms_conformance.harness.model import Verdict
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.harness.vector_stage import default_vector_paths

from tests.c_adapter.conftest import Built

OPERATIONS = {
    "derive_kek",
    "wrap",
    "unwrap",
    "encode_record",
    "decode_record",
    "substitute",
    "run_passphrase_command",
    "check_passphrase",
    "bootstrap",
    "startup",
    "rotate",
    "recover",
    "upgrade_keys",
    "sql_wrap",
    "sql_unwrap",
}
DURABILITY = {"BOOT_04", "ROT_04", "ROT_05", "ROT_06", "REC_03", "REC_04", "DISK_07"}


@pytest.mark.req("ADP_01", "ADP_02", "ADP_03", "ADP_04", "ADP_05", "CONF_01")
def test_harness_passes_everything_the_c_adapter_claims(c_adapter: Built, tmp_path: Path) -> None:
    config = Config([str(c_adapter.binary)], vector_paths=default_vector_paths(), examples=100)
    started = time.monotonic()
    report = run_harness(config)
    elapsed = time.monotonic() - started
    (tmp_path / "report.json").write_text(report_json.dumps(report))
    assert report.aborted is None, report.aborted
    assert set(report.capabilities) >= OPERATIONS | {"inject_randomness"}
    assert "fs_trace" not in report.capabilities, "durability must be observed, not self-reported"
    failed = [c for c in report.cases if c.verdict is Verdict.FAILED]
    lock_only = [c for c in failed if "pg_cryptokeys.lock" in f"{c.expected} {c.found} {c.detail}"]
    if failed and len(lock_only) == len(failed):
        pytest.fail(
            f"{len(failed)} cases differ only by PGDATA/pg_cryptokeys.lock, which CONC_01 "
            "requires: this harness predates the lock file (merge the safety harness)",
            pytrace=False,
        )
    shown = [f"{c.stage} {c.name}: expected {c.expected}, found {c.found}" for c in failed[:10]]
    assert not failed, "\n".join(shown)
    assert report.passed
    durability = [c for c in report.cases if c.stage == "durability"]
    assert durability, "the durability stage reports on the C adapter"
    for case in durability:  # without fs_trace (and before --trace-syscalls): never "passed"
        assert case.verdict in (Verdict.UNSUPPORTED, Verdict.PASSED)
        if case.verdict is Verdict.PASSED:
            assert "syscall" in json.dumps(case.source), "passed only when judged from syscalls"
    assert elapsed < 120
