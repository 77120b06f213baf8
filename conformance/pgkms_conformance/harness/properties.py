"""Stage 3: property-based differential tests against the in-process reference.

Each ``Property`` draws requests with hypothesis and compares the IUT's answers with the oracle's
(``checks.differential``). Where randomness is injected the outputs must be byte-identical; where
the IUT lacks ``inject_randomness`` its wraps are checked by unwrapping them with the oracle.
A failure is shrunk by hypothesis; the smallest failing request is written as a replay file (the
JSON lines to send to the adapter) and reported without its values.

Hypothesis is driven with an explicit seed, no example database (nothing written to the user's
directory) and quiet verbosity: its own "Falsifying example" report would print the secrets.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from pgkms_conformance.attribution import charged, wrapped_rule
from pgkms_conformance.harness.checks import (
    Attribute,
    Context,
    Mismatch,
    attribute_record,
    attribute_sql_unwrap,
    attribute_unwrap,
    compare,
    differential,
    fixed,
    length_rule,
)
from pgkms_conformance.harness.oracle import Answer, Json, Request, oracle
from pgkms_conformance.harness.redact import describe
from pgkms_conformance.harness.session import RunAborted
from pgkms_conformance.material import unpadded_wrap
from pgkms_conformance.protocol.client import AdapterFailure
from pgkms_conformance.vectors.runner import command_quotes_in

Check = Callable[[Context, Json], Mismatch | None]


@dataclass(frozen=True)
class Property:
    name: str
    needs: tuple[str, ...]  # capabilities the IUT must claim
    requirements: tuple[str, ...]  # everything a passing run of it covers
    strategy: st.SearchStrategy[Json]
    check: Check
    description: str
    examples_cap: int | None = None  # for properties that spawn processes


# Hypothesis's cost is per draw, about the same for 16 bytes as for 128: drawing a request's
# keys and IV as one byte string, cut into its fields, costs a third of drawing them one by one
# (and a fixed dictionary costs a draw of its own). Such a string shrinks as one, toward zeros.
def _bytes(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


# -- KDF_01 ---------------------------------------------------------------------------------
def check_kdf(ctx: Context, p: Json) -> Mismatch | None:
    return differential(ctx, "derive_kek", p, fixed("KDF_01"))


KDF = st.binary(max_size=200).map(lambda passphrase: {"passphrase": passphrase.hex()})


# -- WRAP_01..04, SQL_01: wrapping with injected IVs (byte equality) or without (cross-unwrap) --
def _attribute_wrap(sql: bool) -> Attribute:
    """A wrong wrap is charged by the region that differs (``attribution.wrapped_rule``); for
    pg_wrap, a ciphertext or HMAC of the right length that differs is the SQL key's halves."""

    def attribute(expected: Answer, found: Answer) -> tuple[str, ...]:
        cited: tuple[str, ...] = ("SQL_01",) if sql else ()
        if not (expected.ok and found.ok and isinstance(found.result.get("wrapped"), str)):
            return cited or ("WRAP_01",)
        try:
            got = bytes.fromhex(found.result["wrapped"])
        except ValueError:
            return ("ADP_02", *cited)
        want = bytes.fromhex(expected.result["wrapped"])
        rule = wrapped_rule(want, got)
        if sql and rule in ("WRAP_02", "WRAP_04") and len(want) == len(got):
            return ("SQL_01", rule)
        return charged(rule, cited)

    return attribute


def _check_wrap_injected(ctx: Context, op: str, p: Json) -> Mismatch | None:
    return differential(ctx, op, p, _attribute_wrap(sql=op == "sql_wrap"))


def _check_wrap_cross(ctx: Context, op: str, p: Json, unwrap_op: str) -> Mismatch | None:
    """Without injected randomness: the oracle must unwrap the IUT's output to the plaintext."""
    params = {k: v for k, v in p.items() if k != "iv"}
    found = ctx.ask(op, params)
    request = (Request(op, params),)
    sql = op == "sql_wrap"
    if not found.ok:
        return Mismatch(("SQL_01",) if sql else ("WRAP_01",), "ok", found.summary(), request)
    wrapped = str(found.result.get("wrapped", ""))
    keys = {"sql_key": p["sql_key"]} if sql else {"enc_key": p["enc_key"], "mac_key": p["mac_key"]}
    back = oracle(unwrap_op, {**keys, "wrapped": wrapped})
    plaintext = bytes.fromhex(p["plaintext"])
    expected_len = 48 + 16 * (len(plaintext) // 16 + 1)
    if back.ok and back.result["plaintext"] == p["plaintext"] and len(wrapped) == 2 * expected_len:
        return None
    if len(wrapped) != 2 * expected_len:
        reqs: tuple[str, ...] = ("WRAP_02", "SQL_01") if sql else ("WRAP_02",)  # |C|: padding
    elif back.code == "hmac_mismatch":
        reqs = ("SQL_01", "WRAP_04") if sql else ("WRAP_04",)
    else:
        reqs = ("SQL_01", "WRAP_02") if sql else ("WRAP_02",)
    return Mismatch(
        reqs,
        f"a wrap of {describe(plaintext)} that the reference unwraps ({expected_len} bytes)",
        f"{len(wrapped) // 2} bytes; the reference's unwrap says {back.summary()}",
        request,
    )


def check_wrap(ctx: Context, p: Json) -> Mismatch | None:
    if ctx.session.supports("inject_randomness"):
        return _check_wrap_injected(ctx, "wrap", p)
    return _check_wrap_cross(ctx, "wrap", p, "unwrap")


def check_sql_wrap(ctx: Context, p: Json) -> Mismatch | None:
    if ctx.session.supports("inject_randomness"):
        return _check_wrap_injected(ctx, "sql_wrap", p)
    return _check_wrap_cross(ctx, "sql_wrap", p, "sql_unwrap")


def _wrap_request(keys_and_iv: bytes, plaintext: bytes) -> Json:
    enc, mac, iv = keys_and_iv[:32], keys_and_iv[32:64], keys_and_iv[64:]
    return {
        "enc_key": enc.hex(),
        "mac_key": mac.hex(),
        "plaintext": plaintext.hex(),
        "iv": iv.hex(),
    }


def _sql_wrap_request(key_and_iv: bytes, plaintext: bytes) -> Json:
    key, iv = key_and_iv[:64], key_and_iv[64:]
    return {"sql_key": key.hex(), "plaintext": plaintext.hex(), "iv": iv.hex()}


WRAP = st.builds(_wrap_request, _bytes(80), st.binary(max_size=100))
SQL_WRAP = st.builds(_sql_wrap_request, _bytes(80), st.binary(max_size=100))


# -- WRAP_05..08, SQL_02..04: unwrapping valid and tampered values ---------------------------
@st.composite
def _tampered(draw: st.DrawFn, sql: bool) -> Json:
    key_and_iv = draw(_bytes(80))
    key, iv = key_and_iv[:64], key_and_iv[64:]
    enc, mac = key[:32], key[32:]
    kind = draw(
        st.sampled_from(
            ["valid", "flip", "truncate", "extend", "forge_padding", "wrong_key", "garbled"]
        )
    )
    if kind == "forge_padding":  # valid HMAC around block-aligned bytes: padding mostly invalid
        blocks = draw(st.integers(1, 4))
        body = draw(_bytes(16 * blocks - 1))
        last = draw(st.sampled_from([0, 17, 255, 2, 16, draw(st.integers(1, 16))]))
        wrapped = unpadded_wrap(enc, mac, iv, body + bytes([last]))
    else:
        plaintext = draw(st.binary(max_size=80))
        wrapped = unpadded_wrap(enc, mac, iv, _pad(plaintext))
    if kind == "flip":
        bit = draw(st.integers(0, 8 * len(wrapped) - 1))
        flipped = bytearray(wrapped)
        flipped[bit // 8] ^= 1 << (bit % 8)
        wrapped = bytes(flipped)
    elif kind == "truncate":
        wrapped = wrapped[: draw(st.integers(0, len(wrapped) - 1))]
    elif kind == "extend":
        wrapped += draw(st.binary(min_size=1, max_size=17))
    elif kind == "wrong_key":  # the MAC half, or both halves: HMAC must fail before padding
        both = draw(st.booleans())
        key = bytes(b ^ 0x5A for b in key) if both else key[:32] + bytes(b ^ 0x5A for b in key[32:])
    elif kind == "garbled":  # a random last block: padding almost surely invalid, HMAC too
        wrapped = wrapped[:-16] + draw(_bytes(16))
    if sql:
        return {"sql_key": key.hex(), "wrapped": wrapped.hex()}
    return {"enc_key": key[:32].hex(), "mac_key": key[32:].hex(), "wrapped": wrapped.hex()}


def _pad(data: bytes) -> bytes:
    n = 16 - len(data) % 16
    return data + bytes([n]) * n


def check_unwrap(ctx: Context, p: Json) -> Mismatch | None:
    return differential(ctx, "unwrap", p, attribute_unwrap)


def check_sql_unwrap(ctx: Context, p: Json) -> Mismatch | None:
    return differential(ctx, "sql_unwrap", p, attribute_sql_unwrap)


# -- DISK_03..05, DISK_08: records -------------------------------------------------------------
# Mostly the three valid ids, else any 32-bit one.
_KEY_ID = st.one_of(st.integers(0, 2), st.integers(0, 2**32 - 1))
ENCODE = st.builds(
    lambda key_id, wrapped: {"key_id": key_id, "wrapped_key": wrapped.hex()},
    _KEY_ID,
    _bytes(128),
)


@st.composite
def _record(draw: st.DrawFn) -> Json:
    file_id = draw(st.sampled_from((None, 0, 1, 2)))
    if draw(st.integers(0, 4)) == 0:
        record = draw(st.binary(max_size=200))
    else:
        key_id = draw(_KEY_ID)
        record = key_id.to_bytes(4, "little") + draw(_bytes(128))
    return {"record": record.hex(), "file_id": file_id}


def check_encode(ctx: Context, p: Json) -> Mismatch | None:
    return differential(ctx, "encode_record", p, fixed("DISK_03"))


def check_decode(ctx: Context, p: Json) -> Mismatch | None:
    return differential(ctx, "decode_record", p, attribute_record)


# -- PASS_02 ------------------------------------------------------------------------------------
# Drawn from tokens, not characters: each of the escapes (``%p``, ``%%``, a lone or trailing
# ``%``, ``%`` before another letter) then turns up in most commands of a few characters, not by
# the luck of two characters falling side by side.
_SUBSTITUTE_TOKENS = ["%", "%%", "%p", "%x", "p", "x", "a", " ", "'", "é"]
# One byte string, each byte naming a token: one draw instead of one per token. It shrinks
# toward fewer bytes and toward zeros, as a list of tokens does toward fewer and the first.
SUBSTITUTE = st.binary(max_size=12).map(
    lambda picks: {
        "command": "".join(_SUBSTITUTE_TOKENS[b % len(_SUBSTITUTE_TOKENS)] for b in picks)
    }
)


def check_substitute(ctx: Context, p: Json) -> Mismatch | None:
    return differential(ctx, "substitute", p, fixed("PASS_02"))


# -- PASS_04..07: length rules -----------------------------------------------------------------
@st.composite
def _passphrase(draw: st.DrawFn) -> Json:
    length = draw(
        st.one_of(
            st.sampled_from([0, 63, 64, 65, 1023, 1024, 1025, 2048]),
            st.integers(0, 80),
            st.integers(1000, 1100),
        )
    )
    head = draw(st.binary(max_size=min(length, 16)))
    filler = hashlib.shake_128(head).digest(length - len(head))
    purpose = draw(st.sampled_from(["bootstrap", "startup", "rotation"]))
    return {"passphrase": (head + filler).hex(), "purpose": purpose}


def check_passphrase(ctx: Context, p: Json) -> Mismatch | None:
    rule = length_rule(p["purpose"], len(p["passphrase"]) // 2)
    return differential(ctx, "check_passphrase", p, fixed(rule))


# -- PASS_01, PASS_03: running the command -----------------------------------------------------
def printf_command(output: bytes) -> str:
    """A POSIX sh command printing exactly ``output`` (octal escapes: any byte, no quoting)."""
    return "printf '" + "".join(f"\\{b:03o}" for b in output) + "'"


# A failing command that first prints an inline passphrase (PASS_10: the message must quote
# neither); letters and digits only, the shape the message check looks for. Drawn as bytes, each
# naming a character: one draw, and no ``st.text``, whose alphabet needs hypothesis's Unicode
# table (built from every code point, half a second, then cached in the current directory).
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_INLINE = st.binary(min_size=16, max_size=40).map(
    lambda picks: "".join(_ALNUM[b % len(_ALNUM)] for b in picks)
)


@st.composite
def _command(draw: st.DrawFn) -> Json:
    purpose = draw(st.sampled_from(["bootstrap", "startup", "rotation"]))
    kind = draw(st.integers(0, 5))
    inline = f"printf '%s' {draw(_INLINE)}; " if draw(st.booleans()) else ""
    if kind == 0:
        command = f"{inline}exit {draw(st.integers(1, 255))}"
    elif kind == 1:
        command = f"{inline}kill -9 $$"
    else:
        output = draw(st.binary(min_size=60, max_size=90))
        if draw(st.booleans()):
            output += b"\n"
        command = printf_command(output)
    return {"command": command, "purpose": purpose}


def attribute_command(expected: Answer, found: Answer) -> tuple[str, ...]:
    if expected.code == "passphrase_command_failed" or found.code == "passphrase_command_failed":
        return ("PASS_03",) if not expected.ok else ("PASS_01",)
    return ("PASS_01",)


def check_command(ctx: Context, p: Json) -> Mismatch | None:
    mismatch, expected, found = compare(ctx, "run_passphrase_command", p, attribute_command)
    if mismatch is not None and expected.code in ("passphrase_too_short", "passphrase_too_long"):
        # The command ran; the length rule decided.
        length = 1025 if expected.code == "passphrase_too_long" else 0
        reqs = (length_rule(p["purpose"], length),)
        return Mismatch(reqs, mismatch.expected, mismatch.found, mismatch.requests)
    quoted = 0 if found.ok else command_quotes_in(p["command"], found.message)
    if mismatch is None and quoted:
        return Mismatch(
            ("PASS_10",),
            "a message without the command's text",
            f"error {found.code} whose message repeats {quoted} of the command's long tokens",
            (Request("run_passphrase_command", p),),
        )
    return mismatch


PROPERTIES: tuple[Property, ...] = (
    Property("derive_kek", ("derive_kek",), ("KDF_01",), KDF, check_kdf, "KEK halves of SHA-512"),
    Property(
        "wrap",
        ("wrap",),
        ("WRAP_01", "WRAP_02", "WRAP_04"),
        WRAP,
        check_wrap,
        "wrap equals the reference (byte-exact with an injected IV, else by unwrapping)",
    ),
    Property(
        "unwrap",
        ("unwrap",),
        ("WRAP_02", "WRAP_04", "WRAP_05", "WRAP_06", "WRAP_07", "WRAP_08"),
        _tampered(sql=False),
        check_unwrap,
        "unwrap of valid, bit-flipped, truncated, extended, badly padded and wrong-key values",
    ),
    Property(
        "sql_wrap",
        ("sql_wrap",),
        ("SQL_01",),
        SQL_WRAP,
        check_sql_wrap,
        "pg_wrap equals the reference",
    ),
    Property(
        "sql_unwrap",
        ("sql_unwrap",),
        ("SQL_01", "SQL_02", "SQL_03", "SQL_04"),
        _tampered(sql=True),
        check_sql_unwrap,
        "pg_unwrap of valid and tampered values",
    ),
    Property(
        "encode_record", ("encode_record",), ("DISK_03",), ENCODE, check_encode, "record bytes"
    ),
    Property(
        "decode_record",
        ("decode_record",),
        ("DISK_03", "DISK_04", "DISK_05", "DISK_08"),
        _record(),
        check_decode,
        "record parsing: sizes, ids, id against file name",
    ),
    Property(
        "substitute", ("substitute",), ("PASS_02",), SUBSTITUTE, check_substitute, "%p and %%"
    ),
    Property(
        "check_passphrase",
        ("check_passphrase",),
        ("PASS_04", "PASS_05", "PASS_06", "PASS_07"),
        _passphrase(),
        check_passphrase,
        "length rules per purpose",
    ),
    Property(
        "run_passphrase_command",
        ("run_passphrase_command",),
        ("PASS_01", "PASS_03", "PASS_10"),
        _command(),
        check_command,
        "raw command output, failing and killed commands",
        examples_cap=15,
    ),
)


class _Disagreement(Exception):
    """Raised inside hypothesis to make it shrink; never shown."""


@dataclass
class PropertyOutcome:
    mismatch: Mismatch | None = None
    adapter_failure: AdapterFailure | None = None
    failing_params: Json | None = None
    examples_run: int = 0
    error: str | None = None


# Requests per hypothesis example. Hypothesis's engine costs about a millisecond per example
# whatever it draws, three times what drawing one request costs: drawn ten at a time, a default
# run spends about half the CPU time it would one at a time. A failing batch is shrunk whole,
# and the report names its first failing request, shrunk with it.
BATCH = 10


def batches(requests: int) -> tuple[int, int]:
    """How many hypothesis examples of how many requests each, for ``requests`` drawn at random.

    Hypothesis's first example is always its simplest (every request in it the simplest one):
    one example more than the random ones, which get at most ``BATCH`` requests each (fewer
    examples would mean less variety) and at least ``requests`` in all. A request drawn twice
    in one example is asked once, so a run may ask a few fewer (the report counts those asked).
    """
    if requests <= 1:
        return 1, 1
    random_examples = max(1, requests // BATCH)
    return random_examples + 1, -(-requests // random_examples)


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
    """Hypothesis from 6.131 on mixes into its draws constants it finds in the source of every
    module it deems local (not installed in site-packages). For the harness that meant: the
    examples of a ``--seed`` depended on how pgkms was installed (an editable install's modules
    are local, a wheel's are not); a ``.hypothesis/constants`` cache was written into the
    user's current directory, which the stage promises to leave alone; and the first draw read
    the source of every such module (about 0.3 s of CPU). There is no public switch, so this
    turns the source of local constants into an empty one while a property runs, and restores
    it after; with a hypothesis that lacks the feature it does nothing. A test checks that a run
    writes nothing into its current directory."""
    providers: Any = importlib.import_module("hypothesis.internal.conjecture.providers")
    original = getattr(providers, "_get_local_constants", None)
    if original is None or not hasattr(providers, "CONSTANTS_CACHE"):
        yield
        return
    none = providers.Constants()
    providers.CONSTANTS_CACHE.cache.clear()  # its entries may hold local constants already
    providers._get_local_constants = lambda: none
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()


def run_property(ctx: Context, prop: Property, examples: int, seed: int) -> PropertyOutcome:
    """Run one property on about ``examples`` requests (``batches``); return its (shrunk)
    failure, or a clean outcome."""
    outcome = PropertyOutcome()
    cap = examples if prop.examples_cap is None else min(examples, prop.examples_cap)
    drawn, size = batches(cap)

    @settings(
        max_examples=drawn,
        database=None,
        deadline=None,
        derandomize=False,
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis_seed(seed)
    @given(st.lists(prop.strategy, min_size=size, max_size=size))
    def test(batch: list[Json]) -> None:
        checked: set[str] = set()
        for params in batch:
            key = json.dumps(params, sort_keys=True)
            if key in checked:
                continue  # the simplest example repeats one request; asking once tells it all
            checked.add(key)
            if outcome.adapter_failure is not None or ctx.session.aborted is not None:
                return  # the IUT broke: stop spending requests, report what broke it
            outcome.examples_run += 1
            try:
                mismatch = prop.check(ctx, params)
            except AdapterFailure as exc:
                outcome.adapter_failure, outcome.failing_params = exc, params
                ctx.session.recover_from(exc)
                return
            except RunAborted:
                return
            if mismatch is not None:
                outcome.mismatch, outcome.failing_params = mismatch, params
                raise _Disagreement

    try:
        with _without_local_constants():
            test()
    except _Disagreement:
        pass
    except Exception as exc:  # e.g. hypothesis' Flaky: the IUT answered inconsistently
        outcome.error = type(exc).__name__
    return outcome
