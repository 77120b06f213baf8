"""The HTML report's structure (parsed with html.parser) and the JSON report's pass counts.

One failing run serves every test: the mutant ``hmac_over_iv`` on two vector files, the wrap
vectors (where it fails) and the KDF vectors (where it passes), plus the properties stage (a
shrunk example with a replay file).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from functools import cache
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pgkms_conformance.cli import main
from pgkms_conformance.harness import report_html, report_json
from pgkms_conformance.harness.model import Case, Report, Verdict
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.mutants.zoo import mutant_command

from tests.harness.helpers import REFERENCE, fake

ROOT = Path(__file__).resolve().parents[2]
VECTOR_FILES = [ROOT / "vectors" / "wrap.json", ROOT / "vectors" / "kdf.json"]
SPEC_URL = "https://spec.example/pgkms/"

pytestmark = pytest.mark.req("CONF_01", "CONF_02")


@cache
def _failing_report(replay_dir: str) -> Report:
    config = Config(
        mutant_command("hmac_over_iv"),
        vector_paths=VECTOR_FILES,
        examples=5,
        stages=("vectors", "properties"),
        replay_dir=replay_dir,
    )
    return run_harness(config)


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Report:
    report = _failing_report(str(tmp_path_factory.mktemp("replays")))
    assert report.failures and not report.passed
    return report


class _Page(HTMLParser):
    """What the tests look at: tags, ids, links, and the text under each element id."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.ids: list[str] = []
        self.links: dict[str, str] = {}  # link text -> href
        self.sources: list[str] = []  # src= and external href= values
        self.text_by_class: dict[str, list[str]] = {}
        self._href: str | None = None
        self._classes: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(str(values["id"]))
        if "src" in values:
            self.sources.append(str(values["src"]))
        if tag == "link":
            self.sources.append(str(values.get("href")))
        if tag == "a":
            self._href = values.get("href")
        if tag not in ("meta", "br"):
            self._classes.append(values.get("class"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None
        if tag not in ("meta", "br") and self._classes:
            self._classes.pop()

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links[data] = self._href
        css = next((c for c in reversed(self._classes) if c), None)
        if css:
            self.text_by_class.setdefault(css, []).append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def test_the_page_is_self_contained_and_complete(failing: Report) -> None:
    html = report_html.render(failing, SPEC_URL)
    page = _parse(html)
    assert html.startswith("<!DOCTYPE html>")
    assert page.tags["style"] == 1
    assert page.tags["script"] == 0 and page.tags["img"] == 0 and page.tags["link"] == 0
    assert page.sources == []
    for section in ("verdict", "iut", "stages", "profiles", "requirements", "files", "failures"):
        assert section in page.ids, section
    # One row per requirement of the run, each linked to its anchor in the built spec.
    rows = failing.requirement_results()
    assert [i for i in page.ids if i.startswith("req-")] == [f"req-{r.id}" for r in rows]
    assert page.links["WRAP_04"] == f"{SPEC_URL}chapters/wrap-format.html#WRAP_04"
    assert page.links["KDF_01"] == f"{SPEC_URL}chapters/key-derivation.html#KDF_01"
    # Every failure has its section, with what was expected and found.
    sections = [i for i in page.ids if i.startswith("failure-")]
    assert len(sections) == len(failing.failures)
    assert len(page.text_by_class["expected"]) == sum(1 for c in failing.failures if c.expected)
    assert len(page.text_by_class["found"]) == sum(1 for c in failing.failures if c.found)
    # An index links each charged requirement, with its count, to its first failure.
    index = "".join(page.text_by_class["failure-index"])
    for primary, n in Counter(c.primary for c in failing.failures).items():
        assert f"{primary} ({n})" in index
    # The stage table carries each stage's time.
    assert all(f"{s.duration_s:.1f} s" in html for s in failing.stages)


def test_failures_show_their_vector_or_shrunk_example_and_replay_command(
    failing: Report,
) -> None:
    html = report_html.render(failing, SPEC_URL)
    vector = next(c for c in failing.failures if "tcId" in c.source)
    assert f"tcId {vector.source['tcId']} id {vector.source['id']}" in html
    shrunk = next(c for c in failing.failures if c.replay)
    assert shrunk.replay is not None
    command = report_html.replay_command(failing, shrunk)
    assert command is not None and command.endswith(f"< {shrunk.replay}")
    page = _parse(html)
    assert any(shrunk.replay in text for text in page.text_by_class["replay"])
    assert "shrunk example" in html


def test_the_page_carries_no_secret(failing: Report) -> None:
    """Only redacted data: the replay files hold the failing inputs; none of it is inlined."""
    html = report_html.render(failing, SPEC_URL)
    for case in failing.failures:
        if case.replay is None:
            continue
        for line in Path(case.replay).read_text().splitlines():
            request = json.loads(line)
            for key, value in request.items():
                if key in ("id", "op") or not isinstance(value, str) or len(value) < 16:
                    continue
                assert value not in html, key


def test_requirement_links_without_a_known_chapter_use_the_spec_search() -> None:
    assert report_html.requirement_url("s/", "NOPE_99") == "s/search.html?q=NOPE_99"
    assert report_html.requirement_url("s", "SEC_IV") == "s/chapters/security.html#SEC_IV"


def test_the_default_spec_url_is_relative_to_the_report(tmp_path: Path) -> None:
    inside = ROOT / "build-report" / "r.html"
    assert report_html.default_spec_url(inside) == "../spec/_build/html/"
    assert not report_html.default_spec_url(tmp_path / "r.html").startswith("/")


def test_an_html_value_in_a_report_is_escaped(failing: Report) -> None:
    failing_copy = Report(
        iut_command=["./adapter", "<script>alert(1)</script>"],
        implementation="<b>impl</b>",
        version="1",
        cases=failing.cases,
        stages=failing.stages,
    )
    page = _parse(report_html.render(failing_copy, SPEC_URL))
    assert page.tags["script"] == 0 and page.tags["b"] == 0


def test_json_counts_every_file_and_lists_every_case_on_request(failing: Report) -> None:
    validator = jsonschema.Draft202012Validator(report_json.schema())
    document: dict[str, Any] = json.loads(report_json.dumps(failing))
    validator.validate(document)
    assert document["schema"] == "pgkms-harness-report/3"
    assert document["cases"] is None
    files = {row["file"]: row["counts"] for row in document["files"]}
    assert set(files) == {"vectors/wrap.json", "vectors/kdf.json"}
    assert files["vectors/wrap.json"]["failed"] > 0
    kdf = json.loads(VECTOR_FILES[1].read_text())
    kdf_tests = sum(len(group["tests"]) for group in kdf["testGroups"])
    assert files["vectors/kdf.json"] == {
        "passed": kdf_tests,
        "failed": 0,
        "unsupported": 0,
        "not_applicable": 0,
    }
    for name, counts in files.items():
        expected = Counter(c.verdict.value for c in failing.cases if c.source.get("file") == name)
        assert counts == {v.value: expected[v.value] for v in Verdict}
    full: dict[str, Any] = json.loads(report_json.dumps(failing, all_cases=True))
    validator.validate(full)
    assert len(full["cases"]) == len(failing.cases)
    assert Counter(c["verdict"] for c in full["cases"]) == Counter(
        {k: v for k, v in full["totals"].items() if v}
    )


def test_cli_writes_html_and_all_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html_file, json_file = tmp_path / "r.html", tmp_path / "r.json"
    argv = ["run", "--impl", "reference", "--quiet", "--stages", "protocol,vectors"]
    argv += ["--no-default-vectors", "--vectors", str(VECTOR_FILES[1])]
    argv += ["--html", str(html_file), "--json", str(json_file), "--json-all-cases"]
    argv += ["--spec-url", SPEC_URL]
    assert main(argv) == 0
    assert "VERDICT: PASS" in capsys.readouterr().out
    page = _parse(html_file.read_text(encoding="utf-8"))
    assert page.links["KDF_01"].startswith(SPEC_URL)
    document = json.loads(json_file.read_text())
    assert len(document["cases"]) == sum(document["totals"].values())


def test_cli_names_a_report_file_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-dir" / "r.html"
    argv = ["run", "--impl", " ".join(REFERENCE), "--quiet", "--stages", "protocol"]
    assert main([*argv, "--html", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(target) in err and "Traceback" not in err


def test_a_failure_carrying_a_bug_type_shows_it() -> None:
    case = Case(
        stage="vectors",
        name="wrap.json#7",
        verdict=Verdict.FAILED,
        requirements=("WRAP_07",),
        source={"file": "vectors/wrap.json", "tcId": 7, "id": "ab", "comment": "c"},
        expected="hmac_mismatch",
        found="success",
    )
    tagged = replace(case, source={**case.source, "bug_type": "AUTH_BYPASS"})
    for shown, expected in ((case, 0), (tagged, 1)):
        report = Report(iut_command=["./a"], cases=[shown])
        page = _parse(report_html.render(report, SPEC_URL))
        assert page.text_by_class.get("bug-type", []) == ["AUTH_BYPASS"] * expected


def test_an_aborted_run_renders_with_its_reason() -> None:
    report = run_harness(
        Config(fake("crash", budget=0), examples=2, timeout=5, stages=("protocol",))
    )
    assert report.aborted is not None
    html = report_html.render(report, SPEC_URL)
    page = _parse(html)
    assert "aborted" in page.ids and "verdict" in page.ids
    assert "VERDICT: ABORTED" in html and escape(report.aborted.message) in html
