"""Stage 4: key directories on real temporary directories, step by step against the oracle.

Every step runs twice on the same starting directory: once by the IUT on its own directory, once
by the oracle on a copy. The answers must agree and so must the directories afterwards (byte for
byte where the step is deterministic; by shape, plus "the reference opens it", where the IUT drew
its own randomness). A chain of steps (bootstrap, startup, SQL wrapping, rotation, startup) runs
on the directory the IUT itself produced, so an IUT is judged on its own files. A step whose op
the IUT does not claim is reported unsupported and carried out by the oracle on the IUT's
directory, so the later steps of the chain still run.

Starting states (good key sets, corruptions, interrupted rotations) are built with the reference
from keys and passphrases derived from the run's seed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from pgkms.bootstrap import bootstrap as ref_bootstrap
from pgkms.internal_keys import InternalKeys, wrap_key_set
from pgkms.kdf import derive_kek
from pgkms.keydir import write_key_set
from pgkms.layout import KeyId
from pgkms.randomness import ScriptedRandom
from pgkms.rotation import rotate as ref_rotate
from pgkms.secret import Secret

from pgkms_conformance import scratch
from pgkms_conformance.harness.checks import (
    Context,
    adapter_failure_case,
    fixed,
    leaked_secret,
)
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.oracle import UNSYNCED, Answer, Json, Request, oracle
from pgkms_conformance.harness.session import RunAborted
from pgkms_conformance.image import (
    Entry,
    Listing,
    differences,
    materialise,
    remove_tree,
    snapshot,
    to_json,
)
from pgkms_conformance.protocol.client import AdapterFailure

KD, TMP = "pg_cryptokeys", "pg_cryptokeys_tmp"
Attribute = Callable[[Answer, Answer], tuple[str, ...]]


def drbg(seed: int, label: str, n: int) -> bytes:
    """The harness's own deterministic values: SHAKE-256 of the seed and a label."""
    return hashlib.shake_256(f"pgkms-harness/v1/{seed}/{label}".encode()).digest(n)


class Workspace:
    """Temporary directories of one run; all removed by ``close`` whatever happened."""

    def __init__(self) -> None:
        self.root = scratch.mkdtemp(prefix="pgkms-harness-")
        self._n = 0

    def fresh(self, listing: Listing | None = None) -> Path:
        self._n += 1
        path = self.root / f"d{self._n}"
        path.mkdir(mode=0o700)
        if listing:
            materialise(listing, path)
        return path

    def close(self) -> None:
        remove_tree(self.root)  # never through a link an IUT left in its directory


@dataclass(frozen=True)
class Step:
    name: str
    op: str
    params: Json  # without "datadir"
    requirements: tuple[str, ...]  # covered; a failure is charged to these unless refined
    attribute: Attribute | None = None  # refine which requirement a wrong answer breaks
    change_rule: str | None = None  # entries appearing/disappearing wrongly
    content_rule: str | None = None  # wrong bytes in a deterministic step
    random_output: bool = False  # the IUT drew its own randomness: compare by shape
    opens_with: str | None = None  # param holding the passphrase the result must open under
    same_keys: tuple[str, ...] | None = None  # ... and the internal keys it must open to


@dataclass
class StepResult:
    case: Case
    answer: Answer | None  # the IUT's (or, if unsupported, the oracle's) answer


@dataclass
class Secrets:
    seed: int
    a: bytes = b""
    b: bytes = b""
    wrong: bytes = b""
    short: bytes = b""
    long: bytes = b""
    keys: list[bytes] = field(default_factory=list)
    ivs: list[bytes] = field(default_factory=list)
    ivs2: list[bytes] = field(default_factory=list)

    @classmethod
    def derive(cls, seed: int) -> Secrets:
        return cls(
            seed=seed,
            a=drbg(seed, "passphrase A", 72),
            b=drbg(seed, "passphrase B", 80),
            wrong=drbg(seed, "wrong passphrase", 70),
            short=drbg(seed, "short passphrase", 63),
            long=drbg(seed, "long passphrase", 1030),
            keys=[drbg(seed, f"key {i}", 64) for i in range(3)],
            ivs=[drbg(seed, f"iv {i}", 16) for i in range(3)],
            ivs2=[drbg(seed, f"rotation iv {i}", 16) for i in range(3)],
        )


def run_step(ctx: Context, ws: Workspace, scenario: str, step: Step, datadir: Path) -> StepResult:
    name = f"{scenario}/{step.name}"
    params = {**step.params, "datadir": str(datadir)}
    source = {"scenario": scenario, "step": step.name, "op": step.op}
    if not ctx.session.supports(step.op):
        answer = oracle(step.op, params)  # keep the chain going on the IUT's directory
        case = Case("scenarios", name, Verdict.UNSUPPORTED, step.requirements, source)
        return StepResult(case, answer)
    before = snapshot(datadir)
    oracle_dir = ws.fresh(before)
    expected = oracle(step.op, {**step.params, "datadir": str(oracle_dir)})
    try:
        found = ctx.ask(step.op, params)
    except AdapterFailure as exc:
        ctx.session.recover_from(exc)
        replay = ctx.replays.scenario(name, to_json(before), Request(step.op, params))
        case = adapter_failure_case(
            ctx, "scenarios", name, step.requirements, source, exc=exc, replay=replay
        )
        return StepResult(case, None)
    problems = _problems(
        ws, step, params, expected=expected, found=found, oracle_dir=oracle_dir, datadir=datadir
    )
    if not problems:
        case = Case("scenarios", name, Verdict.PASSED, step.requirements, source)
        return StepResult(case, found)
    reqs = tuple(dict.fromkeys(r for r, _ in problems))
    replay = ctx.replays.scenario(name, to_json(before), Request(step.op, params))
    # Resynchronise: later steps of a chain judge later behaviour, not this step's damage.
    remove_tree(datadir)  # a data directory swapped for a link: the link goes, not its target
    datadir.mkdir(mode=0o700)
    materialise(snapshot(oracle_dir), datadir)
    case = Case(
        "scenarios",
        name,
        Verdict.FAILED,
        reqs,
        source,
        expected=expected.summary(),
        found=found.summary(),
        detail="; ".join(f"{r}: {text}" for r, text in problems),
        replay=replay,
    )
    ctx.progress.failed()
    return StepResult(case, found)


def _problems(
    ws: Workspace,
    step: Step,
    params: Json,
    *,
    expected: Answer,
    found: Answer,
    oracle_dir: Path,
    datadir: Path,
) -> list[tuple[str, str]]:
    """(requirement, what is wrong) for each problem of the step, the most specific first: the
    first one is what the failure is charged to.

    A secret in a message (ERR_02) is a fault of its own. Then entries appearing or vanishing
    (the step's ``change_rule``: a refused startup that removes a file breaks START_04, whatever
    its answer), a key set that does not open or holds other keys (KEY_01, KEY_02, ROT_03), an
    answer judged by a refining ``attribute``, wrong modes and bytes; an answer that merely
    differs, judged by no finer rule, comes last and is charged to the step's first requirement.
    """
    leak: list[tuple[str, str]] = []
    if leaked_secret(params, found):
        leak.append(("ERR_02", f"the message of error {found.code} contains a secret"))
    answer: list[tuple[str, str]] = []
    same_answer = found.agrees_with(expected) or (step.random_output and found.ok and expected.ok)
    if not same_answer:
        rules = (step.attribute or fixed(*step.requirements))(expected, found)
        answer = [(r, "the answer differs from the reference's") for r in rules]
    after = snapshot(datadir)
    # Placeholders for the two rules tell an entry's change from wrong bytes in what comes back.
    disk = differences(snapshot(oracle_dir), after, not step.random_output, _CONTENT, _CHANGE)
    change_rule = step.change_rule or step.requirements[0]
    content_rule = step.content_rule or step.requirements[0]
    changes = [(change_rule, text) for rule, text in disk if rule == _CHANGE]
    contents = [
        (content_rule if rule == _CONTENT else rule, t) for rule, t in disk if rule != _CHANGE
    ]
    opens: list[tuple[str, str]] = []
    if step.opens_with and found.ok and not ((answer or disk) and step.random_output):
        opens = _opens(ws, after, step, params[step.opens_with])
    refined, plain = (answer, []) if step.attribute else ([], answer)
    return [
        *leak,
        *changes,
        *opens,
        *refined,
        *contents,
        *plain,
        *_message_problems(expected, found),
    ]


# A key file as the reference's messages name it, and the sizes of a record_size_invalid.
_KEY_FILE = re.compile(r"(pg_cryptokeys(?:_tmp)?)/([0-9A-F]{4})")
_SIZES = re.compile(r"expected ([0-9]+) bytes, found ([0-9]+)")


def _names_file(message: str, directory: str, name: str) -> bool:
    """Does ``message`` name ``directory/name``: as that path (inside any longer one), or as
    the directory and, apart, the file ("pg_cryptokeys holds the unexpected entry 0003")?"""
    if f"{directory}/{name}" in message:
        return True
    directory_named = re.search(re.escape(directory) + r"(?![A-Za-z0-9_])", message)
    return directory_named is not None and re.search(rf"\b{name}\b", message) is not None


def _message_problems(expected: Answer, found: Answer) -> list[tuple[str, str]]:
    """ERR_01: where the right code is given for a fault of one key file, the message names
    that file and, for a record of the wrong size, the expected and the found size. Wording is
    free; these facts are not."""
    if expected.ok or found.ok or found.code != expected.code:
        return []
    named = _KEY_FILE.search(expected.message)
    if named is None:
        return []
    if not _names_file(found.message, named.group(1), named.group(2)):
        return [("ERR_01", f"the message of error {found.code} does not name {named.group(0)}")]
    sizes = _SIZES.search(expected.message)
    if sizes and not all(re.search(rf"\b{n}\b", found.message) for n in sizes.groups()):
        want = " and ".join(sizes.groups())
        return [("ERR_01", f"the message of error {found.code} does not give the sizes {want}")]
    return []


_CHANGE, _CONTENT = "change rule", "content rule"


def _opens(ws: Workspace, after: Listing, step: Step, passphrase: str) -> list[tuple[str, str]]:
    """A randomly re-wrapped key set must open with the reference under the new passphrase."""
    check = oracle("startup", {"datadir": str(ws.fresh(after)), "passphrase": passphrase})
    if check.ok:
        if step.same_keys is not None and tuple(check.result["keys"]) != step.same_keys:
            return [("KEY_02", "the new key set holds other internal keys than the old one")]
        return []
    rule = "KEY_01" if step.op == "bootstrap" else "ROT_03"
    return [(rule, f"the reference cannot open the resulting key set: error {check.code}")]


# -- starting states built by the reference -------------------------------------------------------
def key_set(ws: Workspace, passphrase: bytes, keys: list[bytes], ivs: list[bytes]) -> Listing:
    """``pg_cryptokeys`` holding ``keys`` wrapped under ``passphrase`` (reference bootstrap)."""
    d = ws.fresh()
    ref_bootstrap(str(d), Secret(passphrase), UNSYNCED, ScriptedRandom([*keys, *ivs]))
    return snapshot(d)


def odd_key_set(ws: Workspace, passphrase: bytes, keys: list[bytes], ivs: list[bytes]) -> Listing:
    """Like ``key_set`` but with keys of any length (bootstrap itself refuses such keys)."""
    d = ws.fresh()
    internal = InternalKeys.from_ids({KeyId(i): Secret(k) for i, k in enumerate(keys)})
    records = wrap_key_set(derive_kek(Secret(passphrase)), internal, ScriptedRandom(ivs))
    write_key_set(UNSYNCED, str(d / KD), records)
    return snapshot(d)


def rotated(ws: Workspace, listing: Listing, old: bytes, new: bytes, ivs: list[bytes]) -> Listing:
    d = ws.fresh(listing)
    ref_rotate(str(d), Secret(old), Secret(new), UNSYNCED, ScriptedRandom(ivs))
    return snapshot(d)


def as_tmp(listing: Listing) -> Listing:
    return {rel.replace(KD, TMP, 1): e for rel, e in listing.items() if rel.startswith(KD + "/")}


def edit(listing: Listing, rel: str, change: Callable[[bytes], bytes]) -> Listing:
    entry = listing[rel]
    assert entry.content is not None
    return {**listing, rel: replace(entry, content=change(entry.content))}


def flip(offset: int) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        out = bytearray(data)
        out[offset] ^= 0x01
        return bytes(out)

    return change


def without(listing: Listing, rel: str) -> Listing:
    return {k: v for k, v in listing.items() if k != rel}


# -- the scenarios -------------------------------------------------------------------------------
def lifecycle(ctx: Context, ws: Workspace, s: Secrets) -> Iterator[Case]:
    """bootstrap -> startup -> pg_wrap/pg_unwrap -> refusals -> rotate -> startup."""
    inject = ctx.session.supports("inject_randomness")
    a, b = s.a.hex(), s.b.hex()
    d = ws.fresh()
    boot_params: Json = {"passphrase": a}
    if inject:
        boot_params |= {"keys": [k.hex() for k in s.keys], "ivs": [v.hex() for v in s.ivs]}
    r = run_step(
        ctx,
        ws,
        "lifecycle",
        Step(
            "bootstrap",
            "bootstrap",
            boot_params,
            ("KEY_01", "BOOT_03", "DISK_01", "DISK_02", "DISK_09", "DISK_03"),
            content_rule="BOOT_03",
            change_rule="DISK_02",  # a missing or extra key file; a wrong mode is DISK_09
            random_output=not inject,
            opens_with="passphrase",
        ),
        d,
    )
    yield r.case
    if r.answer is None or not r.answer.ok:
        return
    start = Step("startup", "startup", {"passphrase": a}, ("START_01", "START_02", "KEY_01"))
    r = run_step(ctx, ws, "lifecycle", start, d)
    yield r.case
    keys_before = r.answer.result.get("keys") if r.answer and r.answer.ok else None
    if inject and keys_before is not None and ctx.session.supports("startup"):
        yield _expect_keys(
            "lifecycle/startup returns the injected keys", keys_before, s, ("BOOT_03", "KEY_01")
        )
    if isinstance(keys_before, list) and keys_before:
        yield from _sql_round_trip(ctx, str(keys_before[0]), s)
    refusals = [
        Step(
            "startup with a wrong passphrase",
            "startup",
            {"passphrase": s.wrong.hex()},
            ("START_03", "START_04"),
            change_rule="START_04",
        ),
        Step("bootstrap again", "bootstrap", {"passphrase": a}, ("BOOT_01",)),
        Step(
            "rotate with a wrong old passphrase",
            "rotate",
            {"old_passphrase": s.wrong.hex(), "new_passphrase": b},
            ("ROT_01",),
        ),
        Step(
            "rotate to a short passphrase",
            "rotate",
            {"old_passphrase": a, "new_passphrase": s.short.hex()},
            ("PASS_04", "ROT_02"),
        ),
        Step(
            "rotate to a long passphrase",
            "rotate",
            {"old_passphrase": a, "new_passphrase": s.long.hex()},
            ("PASS_05", "ROT_02"),
        ),
    ]
    for step in refusals:
        yield run_step(ctx, ws, "lifecycle", step, d).case
    held = oracle("startup", {"datadir": str(ws.fresh(snapshot(d))), "passphrase": a})
    rot_params: Json = {"old_passphrase": a, "new_passphrase": b}
    if inject:
        rot_params["ivs"] = [v.hex() for v in s.ivs2]
    rotation = Step(
        "rotate",
        "rotate",
        rot_params,
        ("ROT_03", "ROT_04", "ROT_05", "ROT_06", "KEY_02"),
        content_rule="ROT_03",
        change_rule="ROT_06",
        random_output=not inject,
        opens_with="new_passphrase",
        same_keys=tuple(held.result["keys"]) if held.ok else None,
    )
    r = run_step(ctx, ws, "lifecycle", rotation, d)
    yield r.case
    if r.answer is None or not r.answer.ok:
        return
    r = run_step(
        ctx,
        ws,
        "lifecycle",
        replace(start, name="startup after rotation", params={"passphrase": b}),
        d,
    )
    yield r.case
    keys_after = r.answer.result.get("keys") if r.answer and r.answer.ok else None
    if keys_before is not None and keys_after is not None and ctx.session.supports("startup"):
        same = keys_before == keys_after
        yield Case(
            "scenarios",
            "lifecycle/internal keys unchanged by rotation",
            Verdict.PASSED if same else Verdict.FAILED,
            ("KEY_02",),
            {"scenario": "lifecycle", "step": "compare keys before and after rotation"},
            expected="the same three keys" if not same else "",
            found="different keys" if not same else "",
        )
    old = Step(
        "startup with the old passphrase after rotation",
        "startup",
        {"passphrase": a},
        ("START_03", "ROT_06"),
        change_rule="START_04",
    )
    yield run_step(ctx, ws, "lifecycle", old, d).case


def _expect_keys(name: str, keys: object, s: Secrets, reqs: tuple[str, ...]) -> Case:
    ok = keys == [k.hex() for k in s.keys]
    return Case(
        "scenarios",
        name,
        Verdict.PASSED if ok else Verdict.FAILED,
        reqs,
        {"scenario": "lifecycle", "step": "startup keys against the injected keys"},
        expected="" if ok else "the three injected keys, in id order",
        found="" if ok else "other keys",
    )


def _sql_round_trip(ctx: Context, sql_key: str, s: Secrets) -> Iterator[Case]:
    """SQL_01 on the IUT's own SQL key: each side unwraps what the other wrapped."""
    if not ctx.session.supports("sql_wrap", "sql_unwrap"):
        return
    name = "lifecycle/pg_wrap and pg_unwrap with the IUT's SQL key"
    source = {"scenario": "lifecycle", "step": "sql round trip"}
    secret = drbg(s.seed, "sql secret", 18).hex()
    ours = oracle("sql_wrap", {"sql_key": sql_key, "plaintext": secret, "iv": s.ivs[0].hex()})
    try:
        theirs = ctx.ask("sql_wrap", {"sql_key": sql_key, "plaintext": secret})
        mine = ctx.ask("sql_unwrap", {"sql_key": sql_key, "wrapped": ours.result["wrapped"]})
    except AdapterFailure as exc:  # a failed case like any step's, not a harness traceback
        ctx.session.recover_from(exc)
        yield adapter_failure_case(ctx, "scenarios", name, ("SQL_01",), source, exc=exc)
        return
    back = (
        oracle("sql_unwrap", {"sql_key": sql_key, "wrapped": theirs.result["wrapped"]})
        if theirs.ok and isinstance(theirs.result.get("wrapped"), str)
        else Answer(ok=False, code=theirs.code)
    )
    good = back.ok and back.result.get("plaintext") == secret
    good = good and mine.ok and mine.result.get("plaintext") == secret
    yield Case(
        "scenarios",
        name,
        Verdict.PASSED if good else Verdict.FAILED,
        ("SQL_01",),
        source,
        expected="" if good else "both sides unwrap an 18-byte secret the other wrapped",
        found=""
        if good
        else f"reference unwraps IUT's: {back.summary()}; IUT unwraps "
        f"reference's: {mine.summary()}",
    )


def bootstrap_refusals(ctx: Context, ws: Workspace, s: Secrets) -> Iterator[Case]:
    good = key_set(ws, s.a, s.keys, s.ivs)
    cases = [
        ("short passphrase", {"passphrase": s.short.hex()}, ("PASS_04", "BOOT_02"), {}),
        ("long passphrase", {"passphrase": s.long.hex()}, ("PASS_05", "BOOT_02"), {}),
        ("exactly 64 bytes", {"passphrase": s.long[:64].hex()}, ("PASS_04",), {}),
        ("exactly 1024 bytes", {"passphrase": s.long[:1024].hex()}, ("PASS_05",), {}),
        ("temporary directory exists", {"passphrase": s.a.hex()}, ("BOOT_01",), as_tmp(good)),
    ]
    for name, params, reqs, start in cases:
        step = Step(name, "bootstrap", params, reqs, random_output=True, change_rule=reqs[0])
        yield run_step(ctx, ws, "bootstrap", step, ws.fresh(start)).case


# Refusals caused by one key file, whose message must name it (ERR_01).
_NAMES_A_KEY_FILE = frozenset({"START_03", "DISK_04", "DISK_05", "DISK_08"})


def corruptions(ctx: Context, ws: Workspace, s: Secrets) -> Iterator[Case]:
    """Startup on damaged key directories: the error code and an unchanged directory."""
    good = key_set(ws, s.a, s.keys, s.ivs)
    f0, f1, f2 = (f"{KD}/{n}" for n in ("0000", "0001", "0002"))
    swapped = {**good, f0: good[f1], f1: good[f0]}
    all_bad = edit(edit(edit(good, f0, flip(10)), f1, flip(10)), f2, flip(10))
    odd_key = odd_key_set(ws, s.a, [s.keys[0], s.keys[1] + b"\x00" * 6, s.keys[2]], s.ivs)
    cut = key_set(ws, s.long[:1024], s.keys, s.ivs)
    dir_entry = Entry(0o700, None)
    file_entry = Entry(0o600, b"not a key")
    states: list[tuple[str, Listing, bytes, tuple[str, ...]]] = [
        ("good", good, s.a, ("START_01", "START_02", "KEY_01")),
        ("one HMAC bit flipped", edit(good, f1, flip(4 + 3)), s.a, ("START_03",)),
        ("one IV bit flipped (accepted, SEC_IV)", edit(good, f1, flip(4 + 40)), s.a, ("WRAP_04",)),
        ("every file damaged", all_bad, s.a, ("START_03",)),
        ("files swapped", swapped, s.a, ("DISK_05",)),
        ("record id 7", edit(good, f0, lambda c: b"\x07" + c[1:]), s.a, ("DISK_04",)),
        ("record of 131 bytes", edit(good, f2, lambda c: c[:-1]), s.a, ("DISK_08",)),
        ("record of 133 bytes", edit(good, f2, lambda c: c + b"\x00"), s.a, ("DISK_08",)),
        ("empty record", edit(good, f2, lambda c: b""), s.a, ("DISK_08",)),
        ("a README", {**good, f"{KD}/README": file_entry}, s.a, ("DISK_06",)),
        ("a 0003", {**good, f"{KD}/0003": good[f2]}, s.a, ("DISK_06",)),
        ("a subdirectory", {**good, f"{KD}/sub/": dir_entry}, s.a, ("DISK_06",)),
        ("0001 missing", without(good, f1), s.a, ("DISK_06",)),
        ("no key directory", {}, s.a, ("DISK_06",)),
        ("a 70-byte internal key", odd_key, s.a, ("KEY_03",)),
        ("short passphrase", good, s.short, ("PASS_07",)),
        ("long passphrase, cut to 1024", cut, s.long, ("PASS_06",)),
    ]
    for name, listing, passphrase, rules in states:
        refused = name != "good" and not {"PASS_06", "WRAP_04"} & set(rules)
        reqs = (*rules, "START_04") if refused else rules  # refused: nothing may change
        if refused and rules[0] in _NAMES_A_KEY_FILE:
            reqs = (*reqs, "ERR_01")  # the message must name the file (and the sizes)
        step = Step(name, "startup", {"passphrase": passphrase.hex()}, reqs, change_rule="START_04")
        yield run_step(ctx, ws, "startup", step, ws.fresh(listing)).case


def recoveries(ctx: Context, ws: Workspace, s: Secrets) -> Iterator[Case]:
    """Interrupted rotations: the decision and the directories afterwards (REC_*)."""
    good_a = key_set(ws, s.a, s.keys, s.ivs)
    good_b = rotated(ws, good_a, s.a, s.b, s.ivs2)
    t0, t1, t2 = (f"{TMP}/{n}" for n in ("0000", "0001", "0002"))
    tmp_a = as_tmp(good_a)
    tmp_b = as_tmp(good_b)
    empty_tmp = {**{k: Entry(0o600, b"") for k in (t0, t1, t2)}, f"{TMP}/": Entry(0o700, None)}
    bad_tmp = edit(edit(edit(tmp_b, t0, flip(9)), t1, flip(9)), t2, flip(9))
    bad_a = edit(
        edit(edit(good_a, f"{KD}/0000", flip(9)), f"{KD}/0001", flip(9)), f"{KD}/0002", flip(9)
    )
    states: list[tuple[str, Listing, tuple[str, ...]]] = [
        ("no temporary directory", good_a, ("REC_01",)),
        ("only the temporary directory", tmp_a, ("REC_04",)),
        ("old set current, new set in tmp", {**good_b, **tmp_a}, ("REC_04", "REC_02")),
        ("current valid, tmp valid", {**good_a, **tmp_a}, ("REC_03",)),
        ("current valid, tmp under another passphrase", {**good_a, **tmp_b}, ("REC_03", "REC_02")),
        ("current valid, tmp files empty", {**good_a, **empty_tmp}, ("REC_02", "REC_03")),
        (
            "current valid, tmp with one file",
            {**good_a, f"{TMP}/": Entry(0o700, None), t0: tmp_b[t0]},
            ("REC_02", "REC_03"),
        ),
        ("current valid, three corrupted tmp files", {**good_a, **bad_tmp}, ("REC_02", "REC_03")),
        ("only corrupted tmp", bad_tmp, ("REC_05", "REC_02")),
        ("both corrupted", {**bad_a, **bad_tmp}, ("REC_05",)),
    ]
    for name, listing, reqs in states:
        step = Step(name, "recover", {"passphrase": s.a.hex()}, reqs, change_rule=reqs[0])
        yield run_step(ctx, ws, "recover", step, ws.fresh(listing)).case
    # Startup recovers first (START_01): the interrupted rotation of the second state above.
    step = Step(
        "startup recovers first", "startup", {"passphrase": s.a.hex()}, ("START_01", "REC_04")
    )
    yield run_step(ctx, ws, "startup", step, ws.fresh({**good_b, **tmp_a})).case


def upgrades(ctx: Context, ws: Workspace, s: Secrets) -> Iterator[Case]:
    """pg_upgrade (UPG_01): the old cluster's records copied byte for byte once they open under
    the new cluster's passphrase; a refusal leaves both clusters as they were."""
    old_keys = [drbg(s.seed, f"old cluster key {i}", 64) for i in range(3)]
    for key in old_keys:
        ctx.redactor.add(key)
    old = key_set(ws, s.a, old_keys, s.ivs2)
    new_a = key_set(ws, s.a, s.keys, s.ivs)
    new_b = key_set(ws, s.b, s.keys, s.ivs)
    damaged = edit(old, f"{KD}/0001", flip(4 + 3))
    cases: list[tuple[str, Listing, Listing, bytes]] = [
        ("good copy", old, new_a, s.a),
        ("another passphrase", old, new_b, s.b),
        ("damaged old key set", damaged, new_a, s.a),
    ]
    for name, old_listing, new_listing, passphrase in cases:
        yield _upgrade_case(ctx, ws, name, (old_listing, new_listing), passphrase)


def _upgrade_case(
    ctx: Context, ws: Workspace, name: str, clusters: tuple[Listing, Listing], passphrase: bytes
) -> Case:
    old, new = clusters
    full = f"upgrade/{name}"
    source = {"scenario": "upgrade", "step": name, "op": "upgrade_keys"}
    if not ctx.session.supports("upgrade_keys"):
        return Case("scenarios", full, Verdict.UNSUPPORTED, ("UPG_01",), source)
    ref_old, ref_new = ws.fresh(old), ws.fresh(new)
    expected = oracle(
        "upgrade_keys",
        {"old_datadir": str(ref_old), "new_datadir": str(ref_new), "passphrase": passphrase.hex()},
    )
    iut_old, iut_new = ws.fresh(old), ws.fresh(new)
    params = {
        "old_datadir": str(iut_old),
        "new_datadir": str(iut_new),
        "passphrase": passphrase.hex(),
    }
    try:
        found = ctx.ask("upgrade_keys", params)
    except AdapterFailure as exc:
        ctx.session.recover_from(exc)
        return adapter_failure_case(ctx, "scenarios", full, ("UPG_01",), source, exc=exc)
    problems: list[tuple[str, str]] = []
    if leaked_secret(params, found):
        problems.append(("ERR_02", f"the message of error {found.code} contains a secret"))
    if not found.agrees_with(expected):
        problems.append(("UPG_01", "the answer differs from the reference's"))
    for label, want, got in (
        ("new cluster", snapshot(ref_new), snapshot(iut_new)),
        ("old cluster", snapshot(ref_old), snapshot(iut_old)),
    ):
        problems += [
            (rule, f"{label}: {text}")
            for rule, text in differences(want, got, True, "UPG_01", "UPG_01")
        ]
    if not problems:
        return Case("scenarios", full, Verdict.PASSED, ("UPG_01",), source)
    ctx.progress.failed()
    replay = ctx.replays.scenario(full, to_json(old), Request("upgrade_keys", params))
    return Case(
        "scenarios",
        full,
        Verdict.FAILED,
        tuple(dict.fromkeys(r for r, _ in problems)),
        source,
        expected=expected.summary(),
        found=found.summary(),
        detail="; ".join(f"{r}: {text}" for r, text in problems),
        replay=replay,
    )


SCENARIOS = (lifecycle, bootstrap_refusals, corruptions, recoveries, upgrades)


def run_scenarios(ctx: Context) -> Iterator[Case]:
    ws = Workspace()
    try:
        secrets = Secrets.derive(ctx.seed)
        for value in (secrets.a, secrets.b, secrets.wrong, secrets.short, secrets.long):
            ctx.redactor.add(value)
        for key in secrets.keys:
            ctx.redactor.add(key)
        for scenario in SCENARIOS:
            try:
                yield from scenario(ctx, ws, secrets)
            except RunAborted:
                return
    finally:
        ws.close()
