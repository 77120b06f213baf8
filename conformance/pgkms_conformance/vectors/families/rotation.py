"""``rotation.json``: ``rotate`` with injected IVs (ROT_*, KEY_02) and ``recover`` on the
directory states an interrupted rotation leaves (REC_*), plus ``startup`` on some of them
(recovery runs first, START_01).

Passphrases: OLD is the one the current keys are wrapped under, NEW the one the rotation moves
to. In the recovery cases the *configured* passphrase (the request's ``passphrase``) decides
which directory is valid (REC_02).
"""

from __future__ import annotations

from pgkms_conformance.image import ListingJson
from pgkms_conformance.vectors import drbg
from pgkms_conformance.vectors.builder import Family, Group
from pgkms_conformance.vectors.families import common
from pgkms_conformance.vectors.families import keydirs as kd

CUR = "pg_cryptokeys/"
TMP = "pg_cryptokeys_tmp/"

NOTES = {
    "NOTHING_WRITTEN": "A refused operation changes nothing on disk: expected.datadir equals the "
    "input listing (ROT_01, ROT_02, REC_05).",
    "KEYS_UNCHANGED": "Rotation re-wraps the same internal keys (KEY_02): the new directory "
    "opens under the new passphrase to the keys the old one held.",
    "DEV_RECOVERY_COUNT": "The 2020 patch decided recovery by counting files in "
    "pg_cryptokeys_tmp and never checked that they open (DEV_RECOVERY_COUNT). On this state it "
    "would have chosen differently: the spec decides by content (REC_02).",
    "LAST_VALID_COPY_KEPT": "pg_cryptokeys is the only valid key set here; the 2020 patch "
    "deleted it because pg_cryptokeys_tmp held three files, leaving no usable keys. A "
    "conforming implementation never deletes the last valid copy (REC_05).",
    "CRASH_BETWEEN_CREATE_AND_WRITE": "A zero-length file in pg_cryptokeys_tmp: what a crash "
    "between creating and writing a key file leaves. On the 2020 server every startup then "
    "failed ('could not read file') although pg_cryptokeys was intact.",
    "CONFIGURED_PASSPHRASE_DECIDES": "Both directories are complete; which one is valid depends "
    "on the configured passphrase, not on which directory is newer (REC_02).",
}


TRIAGE = {
    "NOTHING_WRITTEN": ("KEY_LOSS", "changes the key directories although it refused"),
    "KEYS_UNCHANGED": (
        "KEY_LOSS",
        "rotation changes the internal keys: the cluster's data no longer decrypts",
    ),
    "DEV_RECOVERY_COUNT": (
        "KNOWN_2020_DEFECT",
        "decides recovery by counting files, not by which key set opens",
    ),
    "LAST_VALID_COPY_KEPT": (
        "KEY_LOSS",
        "deletes the only key set that opens: the cluster's keys are gone",
    ),
    "CRASH_BETWEEN_CREATE_AND_WRITE": (
        "KEY_LOSS",
        "cannot start after a crash that left an empty key file although pg_cryptokeys is intact",
    ),
    "CONFIGURED_PASSPHRASE_DECIDES": (
        "KEY_LOSS",
        "keeps the key set the configured passphrase does not open and discards the one it does",
    ),
}


def build() -> Family:
    fam = Family(
        name="rotation",
        header=[
            "Rotation and recovery: rotate(datadir, old_passphrase, new_passphrase, ivs) "
            "re-wraps the internal keys through pg_cryptokeys_tmp/ (ROT_01..ROT_06); "
            "recover(datadir, passphrase) settles an interrupted rotation and returns its "
            "decision (REC_01..REC_06); startup runs recovery first (START_01). "
            "expected.datadir is the listing after the op.",
            drbg.DESCRIPTION,
            "Labels: OLD = derive_printable('rotation/old', 80), NEW = "
            "derive_printable('rotation/new', 80), OTHER = derive_printable('rotation/other', 80);"
            " internal keys D('rotation/key-N', 64); IVs of the OLD set D('rotation/iv-N', 16), "
            "of the NEW set D('rotation/new-iv-N', 16), N = 0, 1, 2.",
        ],
        notes=NOTES,
        triage=TRIAGE,
    )
    m = _Material()
    _rotate(fam, m)
    _recover(fam, m)
    return fam


class _Material:
    """The passphrases, keys and key directories every case here is made of."""

    def __init__(self) -> None:
        self.old = kd.passphrase("rotation/old")
        self.new = kd.passphrase("rotation/new")
        self.other = kd.passphrase("rotation/other")
        self.keys = kd.internal_keys("rotation")
        self.old_ivs = kd.ivs("rotation")
        self.new_ivs = kd.ivs("rotation/new")
        self.cur_old = kd.key_set(self.old, self.keys, self.old_ivs)
        self.cur_new = kd.key_set(self.new, self.keys, self.new_ivs)
        self.tmp_new = kd.key_set(self.new, self.keys, self.new_ivs, kd.TMP_DIR)
        self.tmp_old = kd.key_set(self.old, self.keys, self.new_ivs, kd.TMP_DIR)

    def hex_keys(self) -> list[str]:
        return [k.hex() for k in self.keys]


def _rotate(fam: Family, m: _Material) -> None:
    g = fam.group("rotate", "rotation with injected IVs")
    ivs = [iv.hex() for iv in m.new_ivs]
    reqs = [
        "ROT_01",
        "ROT_03",
        "ROT_04",
        "ROT_05",
        "ROT_06",
        "KEY_02",
        "DISK_01",
        "DISK_02",
        "DISK_09",
    ]
    g.add(
        "rotate",
        {
            "datadir": m.cur_old,
            "old_passphrase": m.old.hex(),
            "new_passphrase": m.new.hex(),
            "ivs": ivs,
        },
        comment="OLD -> NEW: pg_cryptokeys holds the keys wrapped under NEW with the new IVs",
        requirements=reqs,
        flags=["KEYS_UNCHANGED"],
        expected={"datadir": m.cur_new},
    )
    same = kd.key_set(m.old, m.keys, m.new_ivs)
    g.add(
        "rotate",
        {
            "datadir": m.cur_old,
            "old_passphrase": m.old.hex(),
            "new_passphrase": m.old.hex(),
            "ivs": ivs,
        },
        comment="OLD -> OLD: allowed; only the IVs change",
        requirements=reqs,
        flags=["KEYS_UNCHANGED"],
        expected={"datadir": same},
    )
    for n, label in ((64, "rotation/new-64"), (1024, "rotation/new-1024")):
        q = kd.passphrase(label, n)
        g.add(
            "rotate",
            {
                "datadir": m.cur_old,
                "old_passphrase": m.old.hex(),
                "new_passphrase": q.hex(),
                "ivs": ivs,
            },
            comment=f"to a {n}-byte passphrase derive_printable('{label}', {n})",
            requirements=["ROT_02", "PASS_04" if n == 64 else "PASS_05", "ROT_03"],
            expected={"datadir": kd.key_set(q, m.keys, m.new_ivs)},
        )
    leftover = kd.merge(m.cur_old, kd.without(m.tmp_new, TMP + "0002"))
    g.add(
        "rotate",
        {
            "datadir": leftover,
            "old_passphrase": m.old.hex(),
            "new_passphrase": m.new.hex(),
            "ivs": ivs,
        },
        comment="an earlier rotation left an incomplete pg_cryptokeys_tmp: recovered first",
        requirements=["ROT_01", "REC_03", "ROT_06"],
        expected={"datadir": m.cur_new},
    )

    def refuse(
        listing: ListingJson, old: bytes, new: bytes, comment: str, error: str, *, reqs: list[str]
    ) -> None:
        g.add(
            "rotate",
            {
                "datadir": listing,
                "old_passphrase": old.hex(),
                "new_passphrase": new.hex(),
                "ivs": ivs,
            },
            comment=comment,
            requirements=reqs,
            flags=["NOTHING_WRITTEN"],
            error=error,
        )

    refuse(
        m.cur_old,
        m.other,
        m.new,
        "wrong old passphrase",
        "wrong_passphrase",
        reqs=["ROT_01", "START_03"],
    )
    refuse(
        m.cur_old,
        m.new,
        m.new,
        "the new passphrase given as the old one",
        "wrong_passphrase",
        reqs=["ROT_01", "START_03"],
    )
    refuse(
        m.cur_old,
        m.old,
        kd.passphrase("rotation/new-63", 63),
        "a 63-byte new passphrase",
        "passphrase_too_short",
        reqs=["ROT_02", "PASS_04"],
    )
    refuse(
        m.cur_old,
        m.old,
        kd.passphrase("rotation/new-1025", 1025),
        "a 1025-byte new passphrase",
        "passphrase_too_long",
        reqs=["ROT_02", "PASS_05"],
    )
    refuse(
        m.cur_old,
        m.old[:63],
        m.new,
        "a 63-byte old passphrase",
        "passphrase_too_short",
        reqs=["ROT_01", "PASS_07"],
    )
    refuse(
        {}, m.old, m.new, "no key directory", "key_directory_missing", reqs=["ROT_01", "DISK_06"]
    )
    damaged = kd.with_content(
        m.cur_old, CUR + "0001", common.flip_bit(kd.content(m.cur_old, CUR + "0001"), 600)
    )
    refuse(
        damaged,
        m.old,
        m.new,
        "0001 damaged (one ciphertext bit)",
        "hmac_mismatch",
        reqs=["ROT_01", "START_03"],
    )


def _recover(fam: Family, m: _Material) -> None:
    g = fam.group("recover", "the states an interrupted rotation leaves, decided by content")
    zero = kd.with_content(m.tmp_new, TMP + "0001", b"")
    corrupt = m.tmp_new
    for name in kd.NAMES:
        corrupt = kd.with_content(
            corrupt, TMP + name, common.flip_bit(kd.content(m.tmp_new, TMP + name), 700)
        )
    short_cur = kd.without(m.cur_old, CUR + "0000", CUR + "0001")
    tmp_only = m.tmp_new
    cases: list[tuple[str, ListingJson, bytes, str, ListingJson | None, list[str], list[str]]] = [
        # (comment, state, configured passphrase, decision or error, final, reqs, flags)
        (
            "no pg_cryptokeys_tmp: nothing to do",
            m.cur_old,
            m.old,
            "nothing",
            m.cur_old,
            ["REC_01"],
            [],
        ),
        ("no key directories at all: nothing to recover", {}, m.old, "nothing", {}, ["REC_01"], []),
        (
            "only pg_cryptokeys_tmp, valid under NEW (crash after the removal): adopted",
            tmp_only,
            m.new,
            "adopt_tmp",
            m.cur_new,
            ["REC_04"],
            [],
        ),
        (
            "only pg_cryptokeys_tmp, but it opens only under NEW and OLD is configured",
            tmp_only,
            m.old,
            "no_valid_key_set",
            None,
            ["REC_05", "REC_02"],
            ["DEV_RECOVERY_COUNT"],
        ),
        (
            "only an incomplete pg_cryptokeys_tmp (two files)",
            kd.without(tmp_only, TMP + "0002"),
            m.new,
            "no_valid_key_set",
            None,
            ["REC_05"],
            ["DEV_RECOVERY_COUNT"],
        ),
        (
            "both complete, NEW configured: the tmp set is the valid one",
            kd.merge(m.cur_old, m.tmp_new),
            m.new,
            "adopt_tmp",
            m.cur_new,
            ["REC_04", "REC_02"],
            ["CONFIGURED_PASSPHRASE_DECIDES"],
        ),
        (
            "both complete, OLD configured: the current set is valid, tmp discarded",
            kd.merge(m.cur_old, m.tmp_new),
            m.old,
            "discard_tmp",
            m.cur_old,
            ["REC_03", "REC_02"],
            ["CONFIGURED_PASSPHRASE_DECIDES"],
        ),
        (
            "both complete and valid under OLD: current kept",
            kd.merge(m.cur_old, m.tmp_old),
            m.old,
            "discard_tmp",
            m.cur_old,
            ["REC_03"],
            [],
        ),
        (
            "tmp incomplete (two files), current valid: tmp discarded",
            kd.merge(m.cur_old, kd.without(m.tmp_new, TMP + "0002")),
            m.old,
            "discard_tmp",
            m.cur_old,
            ["REC_03"],
            [],
        ),
        (
            "tmp incomplete (two files) under NEW, NEW configured: current opens only under OLD",
            kd.merge(m.cur_old, kd.without(m.tmp_new, TMP + "0002")),
            m.new,
            "no_valid_key_set",
            None,
            ["REC_05"],
            [],
        ),
        (
            "tmp empty, current valid: tmp discarded",
            kd.merge(m.cur_old, {TMP: {"mode": 0o700}}),
            m.old,
            "discard_tmp",
            m.cur_old,
            ["REC_03"],
            [],
        ),
        (
            "tmp holds three files, one of them empty; current valid: tmp discarded",
            kd.merge(m.cur_old, zero),
            m.old,
            "discard_tmp",
            m.cur_old,
            ["REC_03", "REC_02"],
            ["CRASH_BETWEEN_CREATE_AND_WRITE", "DEV_RECOVERY_COUNT"],
        ),
        (
            "tmp holds three files, one of them empty; NEW configured: nothing valid",
            kd.merge(m.cur_old, zero),
            m.new,
            "no_valid_key_set",
            None,
            ["REC_05"],
            ["CRASH_BETWEEN_CREATE_AND_WRITE"],
        ),
        (
            "tmp holds three corrupted files; current valid: the good set is kept",
            kd.merge(m.cur_old, corrupt),
            m.old,
            "discard_tmp",
            m.cur_old,
            ["REC_05", "REC_03"],
            ["LAST_VALID_COPY_KEPT", "DEV_RECOVERY_COUNT"],
        ),
        (
            "current partly removed (0002 left), tmp valid under NEW: adopted",
            kd.merge(short_cur, m.tmp_new),
            m.new,
            "adopt_tmp",
            m.cur_new,
            ["REC_04", "REC_06"],
            [],
        ),
        (
            "current directory empty (files removed), tmp valid: adopted",
            kd.merge({CUR: {"mode": 0o700}}, m.tmp_new),
            m.new,
            "adopt_tmp",
            m.cur_new,
            ["REC_04", "REC_06"],
            [],
        ),
        (
            "both present, neither opens under OTHER: refuse, change nothing",
            kd.merge(m.cur_old, m.tmp_new),
            m.other,
            "no_valid_key_set",
            None,
            ["REC_05"],
            [],
        ),
    ]
    for comment, state, passphrase, outcome, final, reqs, flags in cases:
        params = {"datadir": state, "passphrase": passphrase.hex()}
        if outcome in ("nothing", "discard_tmp", "adopt_tmp"):
            g.add(
                "recover",
                params,
                comment=comment,
                requirements=reqs,
                flags=flags,
                expected={"decision": outcome, "datadir": final},
            )
        else:
            g.add(
                "recover",
                params,
                comment=comment,
                requirements=reqs,
                flags=[*flags, "NOTHING_WRITTEN"],
                error=outcome,
            )
    g.add(
        "recover",
        {"datadir": kd.merge(m.cur_old, m.tmp_new), "passphrase": m.old[:63].hex()},
        comment="a 63-byte configured passphrase is refused before anything is assessed",
        requirements=["PASS_07", "START_01"],
        flags=["NOTHING_WRITTEN"],
        error="passphrase_too_short",
    )
    _startup_after_crash(
        fam.group("startup_recovers", "startup runs recovery first"), m, zero, corrupt
    )


def _startup_after_crash(g: Group, m: _Material, zero: ListingJson, corrupt: ListingJson) -> None:
    for comment, state, passphrase, final, reqs, flags in (
        (
            "both complete, NEW configured: tmp adopted, keys open",
            kd.merge(m.cur_old, m.tmp_new),
            m.new,
            m.cur_new,
            ["START_01", "REC_04"],
            ["CONFIGURED_PASSPHRASE_DECIDES"],
        ),
        (
            "tmp with an empty file, OLD configured: tmp discarded, keys open",
            kd.merge(m.cur_old, zero),
            m.old,
            m.cur_old,
            ["START_01", "REC_03"],
            ["CRASH_BETWEEN_CREATE_AND_WRITE", "DEV_RECOVERY_COUNT"],
        ),
        (
            "tmp with three corrupted files: the good set is kept and opens",
            kd.merge(m.cur_old, corrupt),
            m.old,
            m.cur_old,
            ["START_01", "REC_05"],
            ["LAST_VALID_COPY_KEPT", "DEV_RECOVERY_COUNT"],
        ),
        (
            "only tmp, valid under NEW: adopted, keys open",
            m.tmp_new,
            m.new,
            m.cur_new,
            ["START_01", "REC_04"],
            [],
        ),
    ):
        g.add(
            "startup",
            {"datadir": state, "passphrase": passphrase.hex()},
            comment=comment,
            requirements=reqs,
            flags=flags,
            expected={"keys": m.hex_keys(), "datadir": final},
        )
    g.add(
        "startup",
        {"datadir": kd.merge(m.cur_old, m.tmp_new), "passphrase": m.other.hex()},
        comment="both present, neither opens under OTHER: no_valid_key_set, nothing changed",
        requirements=["START_01", "START_04", "REC_05"],
        flags=["NOTHING_WRITTEN"],
        error="no_valid_key_set",
    )
