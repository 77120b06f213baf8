"""Unit checks of the harness's parts: redaction, directory comparison, attribution, progress,
and replay files that really replay."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from pathlib import Path

import pytest
from pgkms_conformance.harness.checks import attribute_sql_unwrap, attribute_unwrap, length_rule
from pgkms_conformance.harness.oracle import Answer
from pgkms_conformance.harness.progress import Progress
from pgkms_conformance.harness.redact import Redactor, describe, describe_json
from pgkms_conformance.harness.requirements import title_of
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.image import Entry, differences, materialise, snapshot
from pgkms_conformance.mutants.zoo import mutant_command

from tests.harness.helpers import REFERENCE

SECRET = b"correct horse battery staple, 44 bytes long!"


@pytest.mark.req("ERR_02")
@pytest.mark.parametrize(
    "form",
    [
        SECRET.hex(),
        SECRET.hex().upper(),
        base64.b64encode(SECRET).decode(),
        SECRET.decode(),
        repr(SECRET),
    ],
)
def test_redactor_scrubs_every_form(form: str) -> None:
    redactor = Redactor()
    redactor.add(SECRET)
    text = redactor.scrub(f"error: bad input {form} at offset 3")
    assert "horse" not in text.lower() and SECRET.hex()[:16] not in text.lower()
    assert "<redacted 44-byte secret>" in text


def test_describe_shows_length_and_hash_prefix_only() -> None:
    text = describe(SECRET)
    assert text.startswith("44 bytes, sha256 ") and SECRET.hex() not in text


def test_differences_name_the_rule(tmp_path: Path) -> None:
    listing = {
        "pg_cryptokeys/": Entry(0o700, None),
        "pg_cryptokeys/0000": Entry(0o600, b"\x00" * 132),
    }
    materialise(listing, tmp_path)
    assert snapshot(tmp_path) == listing
    wrong_mode = {**listing, "pg_cryptokeys/0000": Entry(0o644, b"\x00" * 132)}
    assert [r for r, _ in differences(listing, wrong_mode, True, "BOOT_03", "X")] == ["DISK_09"]
    wrong_dir = {**listing, "pg_cryptokeys/": Entry(0o755, None)}
    assert [r for r, _ in differences(listing, wrong_dir, True, "BOOT_03", "X")] == ["DISK_01"]
    extra = {**listing, "pg_cryptokeys_tmp/": Entry(0o700, None)}
    assert [r for r, _ in differences(listing, extra, True, "BOOT_03", "ROT_06")] == ["ROT_06"]
    other = {**listing, "pg_cryptokeys/0000": Entry(0o600, b"\x01" * 132)}
    assert [r for r, _ in differences(listing, other, True, "BOOT_03", "X")] == ["BOOT_03"]
    assert [r for r, _ in differences(listing, other, False, "BOOT_03", "X")] == ["DISK_03"]


def test_attribution_follows_the_deciding_rule() -> None:
    ok = Answer(ok=True, result={"plaintext": "ff"})
    assert attribute_unwrap(Answer(ok=False, code="bad_padding"), ok) == ("WRAP_08",)
    hmac_fail = Answer(ok=False, code="hmac_mismatch")
    assert attribute_unwrap(hmac_fail, Answer(ok=False, code="bad_padding")) == ("WRAP_07",)
    assert attribute_unwrap(ok, hmac_fail) == ("WRAP_04",)
    assert attribute_sql_unwrap(ok, Answer(ok=False, code="bad_padding")) == ("SQL_04",)
    assert length_rule("startup", 2000) == "PASS_06"
    assert length_rule("rotation", 10) == "PASS_04"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_updating_line_on_a_terminal() -> None:
    stream = _Tty()
    progress = Progress(stream)
    progress.begin("vectors")
    progress.tick(5)
    progress.failed()
    progress.done()
    assert "\n" not in stream.getvalue() and "\r" in stream.getvalue()


def test_progress_prints_whole_lines_in_a_log() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    progress.begin("vectors")
    progress.begin("scenarios")
    progress.done()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[vectors] started",
        "[vectors] done: 0 requests, 0 failed",
        "[scenarios] started",
        "[scenarios] done: 0 requests, 0 failed",
    ]


def test_progress_in_a_log_ends_each_stage_with_its_final_count() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    progress.begin("vectors")
    progress.tick(5)
    progress.tick(2000)  # within the period: not printed as it happens
    progress.begin("protocol")
    progress.tick(7)
    progress.done()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[vectors] started",
        "[vectors] done: 2005 requests, 0 failed",
        "[protocol] started",
        "[protocol] done: 7 requests, 0 failed",
    ]


@pytest.mark.req("WRAP_08")
def test_a_replay_file_reproduces_the_failure(tmp_path: Path) -> None:
    """The shrunk request, fed to the mutant and to the reference, gets different answers."""
    mutant = mutant_command("padding_not_checked")
    config = Config(mutant, examples=25, replay_dir=str(tmp_path), stages=("properties",))
    report = run_harness(config)
    case = next(c for c in report.failures if c.name == "property unwrap")
    assert case.requirements == ("WRAP_08",) and case.replay is not None
    replay = Path(case.replay).read_text()
    answers = {}
    for name, command in (("mutant", mutant), ("reference", REFERENCE)):
        out = subprocess.run(command, input=replay, capture_output=True, text=True, check=True)
        answers[name] = json.loads(out.stdout.splitlines()[-1])
    assert answers["reference"]["error"]["code"] == "bad_padding"
    assert answers["mutant"]["ok"] is True


@pytest.mark.req("CONF_03")
def test_requirement_titles_of_other_areas_come_from_the_spec() -> None:
    assert title_of("CONF_01") == "Read and write compatibility with the 2020 patch"
    assert title_of("CRASH_07").startswith("Rotation and recovery keep four invariants")
    assert title_of("SEC_IV") == "security finding a vector demonstrates"


def test_an_empty_result_string_is_described_as_zero_bytes() -> None:
    assert describe_json("") == describe(b"") == "0 bytes, sha256 e3b0c442"
    assert describe_json("zz") == "a string of 2 characters"
