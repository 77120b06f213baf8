"""``upgrade.json``: pg_upgrade's key copy, ``upgrade_keys(old_datadir, new_datadir, passphrase)``
(UPG_01, spec chapter pg-upgrade).

The passphrase is the new cluster's (its command's output, startup length rules). A good copy
installs the old cluster's key records in the new cluster byte for byte, through rotation's swap
(ROT_04..ROT_06), after recovering both clusters; every refusal leaves both clusters as they
were. ``expected`` lists both directories after the op.
"""

from __future__ import annotations

from typing import Any

from pgkms_conformance.image import ListingJson
from pgkms_conformance.vectors import drbg
from pgkms_conformance.vectors.builder import Family, GeneratorError, Group, as_written
from pgkms_conformance.vectors.families import common
from pgkms_conformance.vectors.families import keydirs as kd

KEYS = kd.KEY_DIR + "/"

NOTES = {
    "CHECKED_BEFORE_COPY": "The new cluster's passphrase does not open the old cluster's keys. "
    "The 2020 patch copied the key files first (DEV_UPGRADE, SEC_UPGRADE): the new cluster then "
    "held keys its passphrase cannot open and no longer started. The copy must be refused "
    "before anything is written (UPG_01).",
    "NOTHING_WRITTEN": "A refused copy changes neither cluster: expected.old_datadir and "
    "expected.new_datadir equal the input listings.",
    "RECOVERED_FIRST": "A cluster holds an interrupted rotation (pg_cryptokeys_tmp). It is "
    "recovered before the copy (REC_*), so the copy never carries a half-done rotation and the "
    "new cluster ends with one key set.",
    "BYTE_FOR_BYTE": "The new cluster's key files become the old cluster's records byte for "
    "byte (same IVs, same wrapped keys), with the key directory's modes 0700/0600.",
    "GROUP_ACCESS_2020": "The old cluster's key directory has the modes a 2020 cluster with group "
    "access wrote (0750/0640); it opens, and its records are copied.",
}
TRIAGE = {
    "CHECKED_BEFORE_COPY": (
        "KNOWN_2020_DEFECT",
        "copies keys the new passphrase cannot open: the new cluster no longer starts",
    ),
    "NOTHING_WRITTEN": ("KEY_LOSS", "changes a cluster's key directory although it refused"),
    "RECOVERED_FIRST": (
        "KEY_LOSS",
        "copies or keeps a half-done rotation: the new cluster may open to the wrong keys",
    ),
    "BYTE_FOR_BYTE": (
        "KEY_LOSS",
        "the new cluster does not hold the old cluster's keys: the upgraded data is unreadable",
    ),
    "GROUP_ACCESS_2020": ("LEGACY", "refuses to upgrade a 2020 cluster with group access"),
}


class _Material:
    """Two clusters' passphrases, keys and key directories."""

    def __init__(self) -> None:
        self.passphrase = kd.passphrase("upgrade/passphrase")
        self.other = kd.passphrase("upgrade/other-passphrase")
        self.old_keys = kd.internal_keys("upgrade/old")
        self.new_keys = kd.internal_keys("upgrade/new")
        self.old_ivs = kd.ivs("upgrade/old")
        self.new_ivs = kd.ivs("upgrade/new")
        self.tmp_ivs = kd.ivs("upgrade/tmp")
        self.old = kd.key_set(self.passphrase, self.old_keys, self.old_ivs)
        self.new = kd.key_set(self.passphrase, self.new_keys, self.new_ivs)
        self.new_other = kd.key_set(self.other, self.new_keys, self.new_ivs)


def build() -> Family:
    fam = Family(
        name="upgrade",
        header=[
            "pg_upgrade's key copy: upgrade_keys(old_datadir, new_datadir, passphrase) checks "
            "that the new cluster's passphrase opens the old cluster's key set, then installs "
            "the old records in the new cluster through rotation's swap (UPG_01). Both "
            "directories are listings; expected.old_datadir and expected.new_datadir are their "
            "listings after the op (after a refusal: the inputs).",
            drbg.DESCRIPTION,
            "Labels: the passphrase is derive_printable('upgrade/passphrase', 80), another one "
            "'upgrade/other-passphrase'; the old cluster's internal keys D('upgrade/old/key-N', "
            "64) and IVs D('upgrade/old/iv-N', 16), the new cluster's 'upgrade/new/...', a "
            "rotation's IVs 'upgrade/tmp/iv-N', N = 0, 1, 2.",
        ],
        notes=NOTES,
        triage=TRIAGE,
    )
    m = _Material()
    _copies(fam.group("copy", "copies that succeed"), m)
    _refusals(fam.group("refused", "copies that must be refused, nothing written"), m)
    return fam


def _request(old: ListingJson, new: ListingJson, passphrase: bytes) -> dict[str, Any]:
    return {"old_datadir": old, "new_datadir": new, "passphrase": passphrase.hex()}


def _copies(g: Group, m: _Material) -> None:
    swap = ["UPG_01", "ROT_04", "ROT_05", "ROT_06", "DISK_07"]
    g.add(
        "upgrade_keys",
        _request(m.old, m.new, m.passphrase),
        comment="both clusters under the same passphrase: the old records replace the new ones",
        requirements=swap,
        flags=["BYTE_FOR_BYTE"],
        expected={"old_datadir": m.old, "new_datadir": m.old},
    )
    others: ListingJson = {
        "PG_VERSION": {"mode": 0o600, "content": b"13\n".hex()},
        "base/": {"mode": 0o700},
    }
    g.add(
        "upgrade_keys",
        _request(kd.merge(m.old, others), kd.merge(m.new, others), m.passphrase),
        comment="other files of either PGDATA are left alone",
        requirements=swap,
        flags=["BYTE_FOR_BYTE"],
        expected={"new_datadir": kd.merge(m.old, others)},
    )
    group_access = kd.key_dir(
        kd.records(m.passphrase, m.old_keys, m.old_ivs), dir_mode=0o750, file_mode=0o640
    )
    g.add(
        "upgrade_keys",
        _request(group_access, m.new, m.passphrase),
        comment="an old cluster with group access (0750/0640): its records are copied",
        requirements=[*swap, "CONF_01"],
        flags=["GROUP_ACCESS_2020"],
        expected={"old_datadir": group_access, "new_datadir": m.old},
    )
    # The old cluster's interrupted rotation: a complete pg_cryptokeys_tmp under the passphrase,
    # pg_cryptokeys under another one. Recovery adopts the temporary set, which is then copied.
    rotated = kd.key_set(m.passphrase, m.old_keys, m.tmp_ivs)
    old_adopt = kd.merge(
        kd.key_set(m.other, m.old_keys, m.old_ivs),
        kd.rename_dir(rotated, kd.KEY_DIR, kd.TMP_DIR),
    )
    g.add(
        "upgrade_keys",
        _request(old_adopt, m.new, m.passphrase),
        comment="the old cluster's rotation to this passphrase was interrupted after its "
        "temporary set was complete: recovery adopts it, and it is copied",
        requirements=[*swap, "REC_02", "REC_04"],
        flags=["RECOVERED_FIRST", "BYTE_FOR_BYTE"],
        expected={"old_datadir": rotated, "new_datadir": rotated},
    )
    # The new cluster's interrupted rotation: an incomplete pg_cryptokeys_tmp, discarded first.
    new_leftover = kd.merge(
        m.new,
        kd.without(
            kd.key_set(m.passphrase, m.new_keys, m.tmp_ivs, kd.TMP_DIR), f"{kd.TMP_DIR}/0002"
        ),
    )
    g.add(
        "upgrade_keys",
        _request(m.old, new_leftover, m.passphrase),
        comment="the new cluster holds an incomplete pg_cryptokeys_tmp: recovery discards it "
        "before the copy",
        requirements=[*swap, "REC_03"],
        flags=["RECOVERED_FIRST", "BYTE_FOR_BYTE"],
        expected={"new_datadir": m.old},
    )


def _refusals(g: Group, m: _Material) -> None:
    def refuse(
        old: ListingJson,
        new: ListingJson,
        passphrase: bytes,
        comment: str,
        *,
        error: str,
        reqs: list[str],
        flags: tuple[str, ...] = (),
    ) -> None:
        g.add(
            "upgrade_keys",
            _request(old, new, passphrase),
            comment=comment,
            requirements=["UPG_01", *reqs],
            flags=["NOTHING_WRITTEN", *flags],
            error=error,
        )
        after = g.tests[-1]["expected"]
        if after != as_written(_request(old, new, passphrase)):
            raise GeneratorError(f"upgrade: {comment}: the reference changed a cluster")

    refuse(
        m.old,
        m.new_other,
        m.other,
        "the new cluster was initialised with another passphrase, which does not open the old keys",
        error="wrong_passphrase",
        reqs=["START_03", "DEV_UPGRADE", "SEC_UPGRADE"],
        flags=("CHECKED_BEFORE_COPY",),
    )
    refuse(
        m.old,
        m.new,
        m.other,
        "a passphrase that opens neither cluster",
        error="wrong_passphrase",
        reqs=["START_03", "DEV_UPGRADE"],
        flags=("CHECKED_BEFORE_COPY",),
    )
    path = f"{KEYS}0001"
    damaged = kd.with_content(m.old, path, common.flip_bit(kd.content(m.old, path), 8 * 10))
    refuse(
        damaged,
        m.new,
        m.passphrase,
        "one old key file's HMAC is damaged (bit 80 of 0001's record flipped)",
        error="hmac_mismatch",
        reqs=["START_03", "WRAP_07"],
    )
    missing = kd.without(m.old, f"{KEYS}0002")
    refuse(
        missing,
        m.new,
        m.passphrase,
        "the old cluster's key file 0002 is missing",
        error="key_file_missing",
        reqs=["START_02"],
    )
    refuse(
        {"PG_VERSION": {"mode": 0o600, "content": b"13\n".hex()}},
        m.new,
        m.passphrase,
        "the old cluster has no key directory (key management off)",
        error="key_directory_missing",
        reqs=["START_02"],
    )
    refuse(
        m.old,
        {"PG_VERSION": {"mode": 0o600, "content": b"13\n".hex()}},
        m.passphrase,
        "the new cluster has no key directory (key management off)",
        error="key_directory_missing",
        reqs=["START_02"],
    )
    swapped = kd.merge(
        kd.without(m.old, f"{KEYS}0000", f"{KEYS}0001"),
        {
            f"{KEYS}0000": m.old[f"{KEYS}0001"],
            f"{KEYS}0001": m.old[f"{KEYS}0000"],
        },
    )
    refuse(
        swapped,
        m.new,
        m.passphrase,
        "the old cluster's files 0000 and 0001 exchanged: each record's id differs from its "
        "file name",
        error="record_id_mismatch",
        reqs=["DISK_05", "DEV_RECORD_ID"],
    )
    refuse(
        m.old,
        m.new,
        kd.passphrase("upgrade/short", 63),
        "a 63-byte passphrase: below the startup minimum",
        error="passphrase_too_short",
        reqs=["PASS_07"],
    )
