"""Sphinx directives that render the spec's tables from the reference implementation's data.

The byte layouts, sizes, error codes and the recovery decision table are *data* in ``pgkms``
(``layout.py``, ``errors.py``, ``recovery.py``). Rendering them from that data, instead of
copying them into the text, means the document and the code cannot drift apart: a new error code
without a description here, or a description of a code that no longer exists, fails the build
(Sphinx runs with ``-W``).

Directives:
  ``.. pgkms-layout:: WRAP_LAYOUT``      byte-layout table of a ``pgkms.layout`` layout
  ``.. pgkms-constants::``               every size and name of ``pgkms.layout``
  ``.. pgkms-error-codes::``             the error code table (``pgkms.errors.error_codes()``)
  ``.. pgkms-recovery-table::``          ``pgkms.recovery.RECOVERY_TABLE``
  ``.. pgkms-key-hierarchy::``           the key hierarchy, drawn as inline SVG (offline)
  ``.. pgkms-coverage::``                requirement -> tests, vectors (from the trace check)
  ``.. pgkms-known-answer:: wrap``       a worked example computed by the reference (kdf, wrap,
                                         record)
Everything runs offline: no Graphviz, no network, no JavaScript.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.statemachine import StringList
from pgkms import errors, layout, recovery
from pgkms.errors import error_codes
from pgkms.kdf import derive_kek
from pgkms.randomness import ScriptedRandom
from pgkms.record import KeyRecord, encode_record
from pgkms.recovery import RECOVERY_TABLE, Decision, DirState
from pgkms.secret import Secret
from pgkms.wrap import pkcs7_pad, wrap
from pgkms_conformance import trace
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

LOG = logging.getLogger(__name__)


def _cell(text: str) -> list[str]:
    """One list-table cell; continuation lines indented under the bullet."""
    first, *rest = text.splitlines() or [""]
    return [f"     - {first}", *[f"       {line}" for line in rest]]


def list_table(
    title: str, headers: list[str], rows: list[list[str]], widths: list[int]
) -> list[str]:
    """RST source of a ``list-table``; cells may hold inline markup (roles, literals)."""
    out = [
        f".. list-table:: {title}",
        "   :header-rows: 1",
        f"   :widths: {' '.join(str(w) for w in widths)}",
        "",
    ]
    for row in [headers, *rows]:
        out.append(f"   * - {row[0]}")
        for cell in row[1:]:
            out.extend(_cell(cell))
    return out


class _RstDirective(SphinxDirective):
    """A directive that produces RST text and parses it in place."""

    def rst(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(
            StringList(self.rst(), source=self.get_source_info()[0]), self.content_offset, container
        )
        return list(container.children)

    def warn_on_drift(self, actual: Iterable[str], described: Iterable[str]) -> None:
        """Warn (an error under ``-W``) when the names the code defines and the names this file
        describes differ: the table would otherwise go stale without anyone noticing."""
        missing = sorted(set(actual) - set(described))
        stale = sorted(set(described) - set(actual))
        if missing or stale:
            LOG.warning(
                "%s: undescribed %s, stale %s",
                self.name,
                missing,
                stale,
                location=self.get_location(),
            )


# --- byte layouts and constants ----------------------------------------------------------------


class LayoutDirective(_RstDirective):
    required_arguments = 1

    def rst(self) -> list[str]:
        name = self.arguments[0]
        fields = getattr(layout, name, None)
        if not isinstance(fields, tuple) or not all(isinstance(f, layout.Field) for f in fields):
            raise self.error(f"pgkms.layout.{name} is not a byte layout")
        rows = []
        end = 0
        for f in fields:
            size = "variable (to the end)" if f.size is None else str(f.size)
            last = "end" if f.size is None else str(f.offset + f.size - 1)
            rows.append([f"``{f.name}``", str(f.offset), last, size, f.description])
            end = end if f.size is None else max(end, f.offset + f.size)
        self.env.note_dependency(layout.__file__)
        return list_table(
            f"``{name}`` (generated from ``pgkms.layout``)",
            ["field", "first byte", "last byte", "size (bytes)", "content"],
            rows,
            [14, 10, 10, 14, 52],
        )


# name -> meaning; every int/str constant of pgkms.layout must be described (checked below)
CONSTANT_MEANINGS: dict[str, str] = {
    "PASSPHRASE_PROMPT": "text substituted for ``%p`` in the passphrase command (PASS_02)",
    "PASSPHRASE_MIN_LEN": "shortest passphrase accepted, in bytes (PASS_04, PASS_07)",
    "PASSPHRASE_MAX_LEN": "longest passphrase accepted at bootstrap and rotation; "
    "startup uses the first this-many bytes (PASS_05, PASS_06)",
    "KEK_DIGEST_LEN": "SHA-512 output length (KDF_01)",
    "ENC_KEY_LEN": "AES-256 key length: KEK encryption key, first half of an internal key",
    "MAC_KEY_LEN": "HMAC-SHA256 key length: KEK HMAC key, second half of an internal key",
    "HMAC_LEN": "HMAC-SHA256 tag length (WRAP_01)",
    "IV_LEN": "AES-CBC IV length (WRAP_01, WRAP_03)",
    "AES_BLOCK": "AES block size; the ciphertext is a whole number of blocks (WRAP_02)",
    "WRAP_OVERHEAD": "bytes in front of the ciphertext: HMAC then IV",
    "WRAPPED_MIN_LEN": "shortest well-formed wrapped value: overhead plus one block (WRAP_05)",
    "INTERNAL_KEY_LEN": "length of one internal key: AES key then HMAC key (KEY_01)",
    "WRAPPED_KEY_LEN": "length of a wrapped internal key (DISK_03)",
    "KEY_DIR": "key directory under PGDATA (DISK_01)",
    "KEY_TMP_DIR": "temporary key directory written by rotation (ROT_04)",
    "KEY_DIR_MODE": "permission bits of a key directory (DISK_01)",
    "KEY_FILE_MODE": "permission bits of a key file (DISK_02)",
    "RECORD_ID_LEN": "length of the key id at the start of a record (DISK_03)",
    "RECORD_LEN": "length of a key record, hence of a key file (DISK_03)",
    "LOCK_FILE": "the lock file in PGDATA, never removed (CONC_01)",
    "LOCK_FILE_MODE": "permission bits the lock file is created with (CONC_01)",
    "POSTMASTER_PID": "the running server's PID file an offline tool checks (CONC_03)",
    "KEY_FILE_READ_LIMIT": "most bytes read from a key file: one more than a record (ENV_03)",
    "KEY_DIR_MODE_ALLOWED": "widest mode of a key directory read without refusal (ENV_05)",
    "KEY_FILE_MODE_ALLOWED": "widest mode of a key file read without refusal (ENV_05)",
}


def _layout_constants() -> dict[str, int | str]:
    return {
        name: value
        for name, value in vars(layout).items()
        if name.isupper() and isinstance(value, int | str) and not isinstance(value, bool)
    }


class ConstantsDirective(_RstDirective):
    def rst(self) -> list[str]:
        constants = _layout_constants()
        self.warn_on_drift(constants, CONSTANT_MEANINGS)
        rows = []
        for name, value in constants.items():
            if isinstance(value, str):
                shown = f"``{value}``"
            elif name.endswith(("_MODE", "_MODE_ALLOWED")):
                shown = f"``0o{value:o}``"
            else:
                shown = str(value)
            rows.append([f"``{name}``", shown, CONSTANT_MEANINGS.get(name, "")])
        rows.append(
            [
                "key file names",
                ", ".join(f"``{n}``" for n in layout.KEY_FILE_NAMES),
                "the ids 0, 1, 2 as four upper-case hex digits (DISK_02)",
            ]
        )
        self.env.note_dependency(layout.__file__)
        return list_table(
            "Sizes and names (generated from ``pgkms.layout``)",
            ["name", "value", "meaning"],
            rows,
            [26, 22, 52],
        )


# --- error codes -------------------------------------------------------------------------------

# code -> (when it is reported, requirement ids). Every code of pgkms.errors.error_codes() must
# appear.
ERROR_MEANINGS: dict[str, tuple[str, str]] = {
    "passphrase_command_failed": (
        "the passphrase command could not start, exited non-zero or was killed",
        "PASS_03",
    ),
    "passphrase_too_short": ("the passphrase has fewer than 64 bytes", "PASS_04, PASS_07"),
    "passphrase_too_long": (
        "bootstrap or rotation: the passphrase has more than 1024 bytes",
        "PASS_05",
    ),
    "wrapped_too_short": ("a wrapped value has fewer than 64 bytes", "WRAP_05, SQL_02"),
    "wrapped_length_invalid": (
        "a wrapped value's length minus 48 is not a multiple of 16",
        "WRAP_06",
    ),
    "hmac_mismatch": (
        "the HMAC over the ciphertext does not verify (at startup: only some keys fail)",
        "WRAP_07, START_03",
    ),
    "bad_padding": ("the HMAC verified but the PKCS#7 padding is invalid", "WRAP_08"),
    "key_length_invalid": ("an unwrapped internal key is not 64 bytes", "KEY_03"),
    "record_size_invalid": ("a key file is not exactly 132 bytes", "DISK_08"),
    "record_id_invalid": ("a record's id is not 0, 1 or 2", "DISK_04"),
    "record_id_mismatch": ("a record's id differs from its file name's id", "DISK_05"),
    "key_directory_missing": ("``pg_cryptokeys`` does not exist or is not a directory", "DISK_06"),
    "key_file_missing": ("one of ``0000``, ``0001``, ``0002`` is missing", "DISK_06"),
    "unexpected_file": ("a key directory holds an entry other than the three files", "DISK_06"),
    "keys_already_exist": (
        "bootstrap found ``pg_cryptokeys``, or a complete ``pg_cryptokeys_tmp``",
        "BOOT_01",
    ),
    "passphrase_command_timeout": (
        "the passphrase command did not finish within its timeout; its process group was killed",
        "PASS_08",
    ),
    "rotation_incomplete": (
        "rotation failed past its point of no return; the new passphrase opens the keys",
        "ROT_08",
    ),
    "key_directory_locked": (
        "another process held ``pg_cryptokeys.lock`` for longer than the lock timeout",
        "CONC_02",
    ),
    "server_running": (
        "an offline tool found a live (or unreadable) ``postmaster.pid``",
        "CONC_03",
    ),
    "symlink_refused": (
        "a key directory, key file or the lock file is a symbolic link",
        "ENV_01",
    ),
    "not_regular_file": (
        "a key file or the lock file is a FIFO, socket, device or directory",
        "ENV_02",
    ),
    "permissions_too_open": (
        "a key directory has a mode bit outside 0750, or a key file outside 0640",
        "ENV_05",
    ),
    "wrong_passphrase": ("at startup, every key fails its HMAC", "START_03"),
    "no_valid_key_set": (
        "recovery found neither directory valid (and the temporary one present)",
        "REC_05",
    ),
    "storage_error": (
        "the operating system refused an operation (permission, I/O error, not a directory)",
        "ERR_01",
    ),
    "input_invalid": (
        "tool input only (CLI, library): an injected random draw or an IV of the wrong size, or "
        "too few draws; not a key-manager outcome",
        "ERR_01",
    ),
    "hex_invalid": (
        "tool input only (CLI, adapter): a hex string is malformed; not a key-manager outcome",
        "ERR_01",
    ),
}


class ErrorCodesDirective(_RstDirective):
    def rst(self) -> list[str]:
        codes = error_codes()  # the key manager's own codes; protocol codes are not in it
        self.warn_on_drift(codes, ERROR_MEANINGS)
        rows = []
        for code, cls in codes.items():
            meaning, reqs = ERROR_MEANINGS.get(code, ("", ""))
            refs = ", ".join(f":need:`{r.strip()}`" for r in reqs.split(",") if r.strip())
            rows.append([f"``{code}``", f"``{cls.__name__}``", meaning, refs])
        self.env.note_dependency(errors.__file__)
        return list_table(
            "Error codes (generated from ``pgkms.errors.error_codes()``)",
            ["code", "reference class", "reported when", "requirements"],
            rows,
            [22, 18, 40, 20],
        )


# --- recovery decision table -------------------------------------------------------------------

DECISION_ACTIONS: dict[Decision, tuple[str, str]] = {
    Decision.NOTHING: ("none: startup goes on to read ``pg_cryptokeys``", "REC_01"),
    Decision.DISCARD_TMP: (
        "remove ``pg_cryptokeys_tmp`` (unlink each file, fsync it, rmdir), fsync PGDATA",
        "REC_03",
    ),
    Decision.ADOPT_TMP: (
        "if ``pg_cryptokeys`` exists remove it (unlink each file, fsync it, rmdir) and fsync "
        "PGDATA; rename ``pg_cryptokeys_tmp`` to ``pg_cryptokeys``; fsync PGDATA",
        "REC_04",
    ),
    Decision.FAIL: ("report ``no_valid_key_set``; change nothing", "REC_05"),
}


class RecoveryTableDirective(_RstDirective):
    def rst(self) -> list[str]:
        rows = []
        order = [DirState.ABSENT, DirState.INVALID, DirState.VALID]
        for tmp in order:
            for cur in order:
                decision = RECOVERY_TABLE[(cur, tmp)]
                action, req = DECISION_ACTIONS[decision]
                rows.append(
                    [
                        f"{cur.value.upper()}",
                        f"{tmp.value.upper()}",
                        f"``{decision.value}``",
                        action,
                        f":need:`{req}`",
                    ]
                )
        self.env.note_dependency(recovery.__file__)
        return list_table(
            "Recovery decision table (generated from ``pgkms.recovery.RECOVERY_TABLE``)",
            ["``pg_cryptokeys``", "``pg_cryptokeys_tmp``", "decision", "actions", "req"],
            rows,
            [14, 16, 14, 46, 10],
        )


# --- key hierarchy diagram (inline SVG, drawn from data) ---------------------------------------

# (id, column, row, lines of text); the columns are 0..2, rows top to bottom
HIERARCHY_NODES: list[tuple[str, int, int, list[str]]] = [
    ("cmd", 1, 0, ["cluster_passphrase_command", "run with /bin/sh -c"]),
    ("pass", 1, 1, ["cluster passphrase", "raw stdout, 64..1024 bytes"]),
    ("d", 1, 2, ["D = SHA-512(passphrase)", "64 bytes, never stored"]),
    ("kenc", 0, 3, ["KEK encryption key", "D[0:32], AES-256-CBC"]),
    ("kmac", 2, 3, ["KEK HMAC key", "D[32:64], HMAC-SHA256"]),
    ("f0", 0, 4, ["pg_cryptokeys/0000", "id 0 || wrap(KEK, key 0)"]),
    ("f1", 1, 4, ["pg_cryptokeys/0001", "id 1 || wrap(KEK, key 1)"]),
    ("f2", 2, 4, ["pg_cryptokeys/0002", "id 2 || wrap(KEK, key 2)"]),
    ("k0", 0, 5, ["SQL key (id 0)", "enc[32] || mac[32]"]),
    ("k1", 1, 5, ["block key (id 1)", "enc[32] || mac[32]"]),
    ("k2", 2, 5, ["WAL key (id 2)", "enc[32] || mac[32]"]),
    ("sql", 0, 6, ["pg_wrap / pg_unwrap", "user secrets, same format"]),
    ("tde1", 1, 6, ["relation encryption", "(future TDE)"]),
    ("tde2", 2, 6, ["WAL encryption", "(future TDE)"]),
]
HIERARCHY_EDGES: list[tuple[str, str, str]] = [
    ("cmd", "pass", "stdout"),
    ("pass", "d", "SHA-512"),
    ("d", "kenc", ""),
    ("d", "kmac", ""),
    ("kenc", "f0", ""),
    ("kmac", "f0", ""),
    ("kenc", "f1", ""),
    ("kmac", "f1", ""),
    ("kenc", "f2", ""),
    ("kmac", "f2", ""),
    ("f0", "k0", "unwrap"),
    ("f1", "k1", "unwrap"),
    ("f2", "k2", "unwrap"),
    ("k0", "sql", "wrap"),
    ("k1", "tde1", ""),
    ("k2", "tde2", ""),
]

_BOX_W, _BOX_H, _COL_W, _ROW_H, _PAD = 210, 44, 250, 78, 20


def key_hierarchy_svg() -> str:
    """The key hierarchy as a self-contained SVG document (no fonts, scripts or links)."""
    pos = {nid: (_PAD + col * _COL_W, _PAD + row * _ROW_H) for nid, col, row, _ in HIERARCHY_NODES}
    width = _PAD * 2 + 2 * _COL_W + _BOX_W
    height = _PAD * 2 + 6 * _ROW_H + _BOX_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        'aria-label="pgkms key hierarchy" font-family="sans-serif" font-size="12">',
        "<title>pgkms key hierarchy</title>",
        '<defs><marker id="pgkms-arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#444"/></marker></defs>',
    ]
    for src, dst, label in HIERARCHY_EDGES:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        ax, ay = x1 + _BOX_W / 2, y1 + _BOX_H
        bx, by = x2 + _BOX_W / 2, y2
        out.append(
            f'<line x1="{ax:.0f}" y1="{ay:.0f}" x2="{bx:.0f}" y2="{by - 2:.0f}" '
            'stroke="#444" marker-end="url(#pgkms-arrow)"/>'
        )
        if label:
            out.append(
                f'<text x="{(ax + bx) / 2 + 6:.0f}" y="{(ay + by) / 2 + 4:.0f}" '
                f'fill="#444" font-style="italic">{escape(label)}</text>'
            )
    secret = {"pass", "d", "kenc", "kmac", "k0", "k1", "k2"}
    for nid, _, _, lines in HIERARCHY_NODES:
        x, y = pos[nid]
        fill = "#fde8d8" if nid in secret else "#e4eef8"
        out.append(
            f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="6" '
            f'fill="{fill}" stroke="#333"/>'
        )
        for i, line in enumerate(lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            out.append(
                f'<text x="{x + _BOX_W / 2:.0f}" y="{y + 18 + i * 16}" '
                f'text-anchor="middle"{weight}>{escape(line)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


class KeyHierarchyDirective(SphinxDirective):
    def run(self) -> list[nodes.Node]:
        figure = nodes.figure(classes=["pgkms-key-hierarchy"])
        figure += nodes.raw("", key_hierarchy_svg(), format="html")
        figure += nodes.caption(
            "",
            "Key hierarchy. Orange: secret, never on disk in clear; blue: on disk or "
            "interfaces. Every wrap uses the format of the Wrap format chapter.",
        )
        return [figure]


# --- known-answer examples ---------------------------------------------------------------------

EXAMPLE_PASSPHRASE = b"pgkms example passphrase: " + b"a" * 38  # 64 bytes, no newline
EXAMPLE_IV = bytes(range(16))
EXAMPLE_SECRET = b"my secret passward"


def _hex_lines(label: str, data: bytes, width: int = 32) -> list[str]:
    """``label`` then the hex of ``data`` in rows of ``width`` bytes, offsets on the left."""
    out = [f"{label} ({len(data)} bytes):"]
    for start in range(0, len(data), width):
        out.append(f"  {start:4d}  {data[start : start + width].hex()}")
    return out


def known_answers(which: str) -> list[str]:
    """The worked example ``which`` (kdf, wrap, record), computed by the reference."""
    kek = derive_kek(Secret(EXAMPLE_PASSPHRASE))
    if which == "kdf":
        digest = hashlib.sha512(EXAMPLE_PASSPHRASE).digest()
        return [
            f"P = {EXAMPLE_PASSPHRASE.decode()!r}",
            *_hex_lines("P", EXAMPLE_PASSPHRASE),
            *_hex_lines("D = SHA-512(P)", digest),
            *_hex_lines("KEK encryption key = D[0:32]", kek.enc.reveal()),
            *_hex_lines("KEK HMAC key = D[32:64]", kek.mac.reveal()),
        ]
    wrapped = wrap(kek, Secret(EXAMPLE_SECRET), ScriptedRandom([EXAMPLE_IV]))
    if which == "wrap":
        return [
            "keys: the KEK of the key-derivation example",
            f"P = {EXAMPLE_SECRET.decode()!r}",
            *_hex_lines("P", EXAMPLE_SECRET),
            *_hex_lines("PKCS#7(P)", pkcs7_pad(EXAMPLE_SECRET)),
            *_hex_lines("IV", EXAMPLE_IV),
            *_hex_lines("C = AES-256-CBC(enc, IV, PKCS#7(P))", wrapped[48:]),
            *_hex_lines("T = HMAC-SHA256(mac, C)", wrapped[:32]),
            *_hex_lines("W = T || IV || C", wrapped),
        ]
    if which == "record":
        key = bytes(range(64, 128))
        record = encode_record(KeyRecord(2, wrap(kek, Secret(key), ScriptedRandom([EXAMPLE_IV]))))
        return [
            "KEK: the KEK of the key-derivation example; IV: as in the wrap example",
            *_hex_lines("internal key 2 (example value)", key),
            *_hex_lines("record = uint32le(2) || wrap(KEK, key 2)", record),
        ]
    raise ValueError(which)


class KnownAnswerDirective(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        try:
            lines = known_answers(self.arguments[0])
        except ValueError:
            raise self.error(f"unknown example {self.arguments[0]!r}") from None
        self.env.note_dependency(layout.__file__)
        text = "\n".join(lines)
        block = nodes.literal_block(text, text, classes=["pgkms-known-answer"])
        block["language"] = "text"  # hex known answers: nothing to highlight
        return [block]


# --- traceability coverage ---------------------------------------------------------------------


class CoverageDirective(_RstDirective):
    """Requirement -> citing tests and vectors, computed by the trace check at build time."""

    option_spec: ClassVar[dict[str, Any]] = {}

    def rst(self) -> list[str]:
        self.env.note_reread()  # the tests and vectors change without this page changing
        root = Path(self.env.srcdir).parent
        report = trace.check(root)
        rows = []
        for definition in report.requirements:
            tests = report.tests_for(definition.id)
            vectors = report.vectors_for(definition.id)
            impl = report.implementation_for(definition.id)
            rows.append(
                [
                    f":need:`{definition.id}`",
                    "\n".join(f"| ``{t}``" for t in tests) or "**none**",
                    "\n".join(f"| ``{v}``" for v in vectors) or "none",
                    ", ".join(f"``{i}``" for i in impl) or "none",
                ]
            )
        uncovered = report.uncovered
        summary = [
            f"{len(report.requirements)} requirements; {len(report.requirements) - len(uncovered)}"
            f" cited by at least one test or vector; {len(uncovered)} not yet.",
            "",
        ]
        return summary + list_table(
            "Requirement coverage (generated by ``pgkms_conformance.trace`` at build time)",
            ["requirement", "tests", "vectors", "implementation (not counted)"],
            rows,
            [14, 40, 22, 24],
        )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("pgkms-layout", LayoutDirective)
    app.add_directive("pgkms-constants", ConstantsDirective)
    app.add_directive("pgkms-error-codes", ErrorCodesDirective)
    app.add_directive("pgkms-recovery-table", RecoveryTableDirective)
    app.add_directive("pgkms-key-hierarchy", KeyHierarchyDirective)
    app.add_directive("pgkms-coverage", CoverageDirective)
    app.add_directive("pgkms-known-answer", KnownAnswerDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
