"""``key_directory.json``: ``startup`` on key directories, good and damaged (DISK_*, START_*),
and ``bootstrap`` with injected keys and IVs (BOOT_*)."""

from __future__ import annotations

from pgkms_conformance.image import ListingJson
from pgkms_conformance.material import unpadded_wrap
from pgkms_conformance.vectors import drbg
from pgkms_conformance.vectors.builder import Family, GeneratorError
from pgkms_conformance.vectors.families import common
from pgkms_conformance.vectors.families import keydirs as kd

D = "pg_cryptokeys/"
NOTES = {
    "GROUP_ACCESS_2020": "Modes 0750/0640: what the 2020 patch wrote for a cluster with group "
    "access. Read compatibility requires opening it.",
    "LOOSE_PERMISSIONS": "World-readable key files (0755/0644). ENV_05 refuses a key directory "
    "beyond 0750 and a key file beyond 0640 with permissions_too_open, as PostgreSQL refuses a "
    "data directory with loose permissions; the 2020 patch never wrote such modes.",
    "CUT_AT_STARTUP": "The keys were made under a 1024-byte passphrase and the command now "
    "prints more; startup uses the first 1024 bytes (PASS_06), as the 2020 patch did.",
    "IV_NOT_AUTHENTICATED": "A flipped IV bit in a key file is not detected (WRAP_04, SEC_IV): "
    "startup succeeds and the internal key silently changes in its first 16 bytes, as observed "
    "on the 2020 server. Rejecting it breaks read compatibility; the weakness is the format's.",
    "ID_NOT_BOUND": "Each record's id matches its file name, but the wrapped keys of files 0000 "
    "and 0001 were exchanged. Nothing binds the id to the wrapped key, so startup returns the "
    "two keys exchanged: a weakness of the format no conforming implementation can detect.",
    "ID_NOT_CHECKED_2020": "The record's id differs from its file name (DISK_05). The 2020 patch "
    "placed keys by the id inside the file and never compared (DEV_RECORD_ID): swapped files "
    "went unnoticed.",
    "CHECK_ORDER": "Several faults at once; the expected code is the first in the spec's order: "
    "directory, unexpected entries (sorted), missing files (id order), records (id order), then "
    "unwrapping (START_02).",
    "ALL_FAIL_HMAC": "Every key file fails its HMAC, which is what a wrong passphrase looks like: "
    "reported as wrong_passphrase even when the files are the damaged ones (START_03).",
    "SOME_FAIL_HMAC": "Only some key files fail their HMAC: the passphrase is right and the "
    "files are damaged, reported as hmac_mismatch (START_03). The 2020 patch called every "
    "failure a wrong passphrase (DEV_MESSAGES).",
    "LENGTH_FAILURE_IN_ORDER": "One file fails its HMAC and another authenticates but unwraps "
    "to a key that is not 64 bytes. Every key is attempted and the first failing file in id "
    "order is reported with its own code (START_03); a length failure does not end startup "
    "early. The 2020 patch checked no length at all (DEV_UNWRAP_LENGTH).",
    "EXTRA_ENTRIES_KEPT": "Bootstrap leaves the rest of the data directory alone.",
    "NOTHING_WRITTEN": "A refused operation changes nothing on disk: expected.datadir equals the "
    "input listing.",
    "COMMAND_GIVEN": "The startup is given the configured passphrase_command instead of the "
    "passphrase: a runner runs it first (run_passphrase_command, purpose startup) and starts "
    "with its output; a failing command is the startup's failure, with nothing read or written.",
}


TRIAGE = {
    "LENGTH_FAILURE_IN_ORDER": (
        "EDGE_CASE",
        "names another file's fault than the first failing one in id order",
    ),
    "GROUP_ACCESS_2020": ("LEGACY", "refuses a key directory with the 2020 group-access modes"),
    "LOOSE_PERMISSIONS": (
        "CONFIDENTIALITY",
        "opens world-readable key files instead of refusing them",
    ),
    "CUT_AT_STARTUP": (
        "LEGACY",
        "refuses a long startup passphrase, so keys made under its first 1024 bytes no longer open",
    ),
    "IV_NOT_AUTHENTICATED": (
        "LEGACY",
        "refuses key files the format accepts, or opens them to another key than the format gives",
    ),
    "ID_NOT_BOUND": (
        "LEGACY",
        "refuses keys the format accepts, or returns them in another order than the records give",
    ),
    "ID_NOT_CHECKED_2020": (
        "KNOWN_2020_DEFECT",
        "opens a key directory whose key files were swapped",
    ),
    "CHECK_ORDER": ("EDGE_CASE", "names another fault than the first in the spec's order"),
    "ALL_FAIL_HMAC": ("BASIC", "reports a wrong passphrase as damaged files"),
    "SOME_FAIL_HMAC": (
        "KNOWN_2020_DEFECT",
        "reports damaged key files as a wrong passphrase, as the 2020 patch did",
    ),
    "EXTRA_ENTRIES_KEPT": ("KEY_LOSS", "removes or changes files of PGDATA it does not own"),
    "NOTHING_WRITTEN": ("KEY_LOSS", "changes the key directory although it refused"),
    "COMMAND_GIVEN": (
        "BASIC",
        "starts with something other than the command's exact output, or despite its failure",
    ),
}


def build() -> Family:
    fam = Family(
        name="key_directory",
        header=[
            "Key directories: startup(datadir, passphrase) -> the three internal keys, on "
            "listings of PGDATA; bootstrap(datadir, passphrase, keys, ivs) writes "
            "pg_cryptokeys/ (modes 0700 and 0600) with injected keys then IVs (BOOT_03). "
            "expected.datadir is the listing after the op; after a failure it equals the input "
            "(START_04, BOOT_01).",
            drbg.DESCRIPTION,
            "Labels: the configured passphrase is derive_printable('key_directory/passphrase', "
            "80), another one 'key_directory/other-passphrase'; the internal keys are "
            "D('key_directory/key-N', 64) and the IVs D('key_directory/iv-N', 16), N = 0, 1, 2.",
        ],
        notes=NOTES,
        triage=TRIAGE,
    )
    p = kd.passphrase("key_directory/passphrase")
    other = kd.passphrase("key_directory/other-passphrase")
    keys = kd.internal_keys("key_directory")
    ivs = kd.ivs("key_directory")
    good = kd.key_set(p, keys, ivs)
    _startup_good(fam, p, keys, ivs, good)
    _startup_entries(fam, p, good)
    _startup_records(fam, p, good)
    _startup_unwrap_order(fam, p, keys, ivs, good)
    _startup_unwrap(fam, p, other, good)
    _startup_command(fam, p, other, keys, good)
    _bootstrap(fam, p, keys, ivs, good)
    return fam


def printf_command(data: bytes) -> str:
    """A POSIX ``sh`` command printing exactly ``data`` (every byte as an octal escape)."""
    return "printf '" + "".join(f"\\{b:03o}" for b in data) + "'"


def _startup_command(
    fam: Family, p: bytes, other: bytes, keys: list[bytes], good: ListingJson
) -> None:
    g = fam.group("startup_command", "startup given the passphrase command, not the passphrase")
    g.add(
        "startup",
        {"datadir": good, "passphrase_command": printf_command(p)},
        comment="the command prints the configured passphrase (octal escapes, no newline)",
        requirements=["START_01", "START_03", "PASS_01"],
        flags=["COMMAND_GIVEN"],
        expected={"keys": _hex_keys(keys), "datadir": good},
    )
    g.add(
        "startup",
        {"datadir": good, "passphrase_command": printf_command(other)},
        comment="the command prints another passphrase",
        requirements=["START_03", "START_04", "PASS_01"],
        flags=["COMMAND_GIVEN", "NOTHING_WRITTEN"],
        error="wrong_passphrase",
    )
    g.add(
        "startup",
        {"datadir": good, "passphrase_command": printf_command(p) + "; exit 3"},
        comment="the command prints the passphrase, then exits with status 3",
        requirements=["PASS_03", "START_04"],
        flags=["COMMAND_GIVEN", "NOTHING_WRITTEN"],
        error="passphrase_command_failed",
    )


def _hex_keys(keys: list[bytes]) -> list[str]:
    return [k.hex() for k in keys]


def _startup_good(
    fam: Family, p: bytes, keys: list[bytes], ivs: list[bytes], good: ListingJson
) -> None:
    g = fam.group("startup_good", "key directories that open")
    reqs = [
        "START_01",
        "START_02",
        "START_03",
        "DISK_01",
        "DISK_02",
        "DISK_09",
        "DISK_03",
        "KEY_01",
    ]
    g.add(
        "startup",
        {"datadir": good, "passphrase": p.hex()},
        comment="the three key files as bootstrap writes them",
        requirements=reqs,
        expected={"keys": _hex_keys(keys), "datadir": good},
    )
    with_others = kd.merge(
        good, {"PG_VERSION": {"mode": 0o600, "content": b"13\n".hex()}, "base/": {"mode": 0o700}}
    )
    g.add(
        "startup",
        {"datadir": with_others, "passphrase": p.hex()},
        comment="other files in PGDATA do not matter",
        requirements=reqs,
        expected={"keys": _hex_keys(keys)},
    )
    group_access = kd.key_dir(kd.records(p, keys, ivs), dir_mode=0o750, file_mode=0o640)
    g.add(
        "startup",
        {"datadir": group_access, "passphrase": p.hex()},
        comment="modes 0750/0640 (2020 cluster with group access)",
        requirements=["START_03", "DISK_01", "DISK_02", "CONF_01"],
        flags=["GROUP_ACCESS_2020"],
        expected={"keys": _hex_keys(keys)},
    )
    loose = kd.key_dir(kd.records(p, keys, ivs), dir_mode=0o755, file_mode=0o644)
    g.add(
        "startup",
        {"datadir": loose, "passphrase": p.hex()},
        comment="world-readable modes 0755/0644: refused (ENV_05), nothing written",
        requirements=["ENV_05", "START_02", "START_04"],
        flags=["LOOSE_PERMISSIONS", "NOTHING_WRITTEN"],
        error="permissions_too_open",
    )
    long_p = kd.passphrase("key_directory/passphrase-1024", 1024)
    longer = long_p + kd.passphrase("key_directory/passphrase-tail", 76)
    g.add(
        "startup",
        {"datadir": kd.key_set(long_p, keys, ivs), "passphrase": longer.hex()},
        comment="keys under a 1024-byte passphrase; startup given 1100 bytes, the first 1024 match",
        requirements=["PASS_06", "START_01", "CONF_01"],
        flags=["CUT_AT_STARTUP"],
        expected={"keys": _hex_keys(keys)},
    )
    path = D + "0001"
    flipped = kd.with_content(good, path, common.flip_bit(kd.content(good, path), (4 + 32) * 8))
    altered = list(keys)
    altered[1] = bytes([keys[1][0] ^ 1]) + keys[1][1:]
    g.add(
        "startup",
        {"datadir": flipped, "passphrase": p.hex()},
        comment="bit 0 of the IV in 0001 flipped: opens, and key 1's first byte changes",
        requirements=["WRAP_04", "SEC_IV", "START_03"],
        flags=["IV_NOT_AUTHENTICATED"],
        expected={"keys": _hex_keys(altered)},
    )
    r0, r1 = kd.content(good, D + "0000"), kd.content(good, D + "0001")
    exchanged = kd.with_content(
        kd.with_content(good, D + "0000", r0[:4] + r1[4:]), D + "0001", r1[:4] + r0[4:]
    )
    g.add(
        "startup",
        {"datadir": exchanged, "passphrase": p.hex()},
        comment="wrapped keys of 0000 and 0001 exchanged, ids left matching the names",
        requirements=["DISK_05", "START_03"],
        flags=["ID_NOT_BOUND"],
        expected={"keys": _hex_keys([keys[1], keys[0], keys[2]])},
    )


def _startup_entries(fam: Family, p: bytes, good: ListingJson) -> None:
    g = fam.group("startup_entries", "the directory and its entries (DISK_06)")

    def refuse(
        listing: ListingJson,
        comment: str,
        error: str,
        flags: list[str] | None = None,
        reqs: list[str] | None = None,
    ) -> None:
        g.add(
            "startup",
            {"datadir": listing, "passphrase": p.hex()},
            comment=comment,
            requirements=reqs or ["DISK_06", "START_02", "START_04"],
            flags=[*(flags or []), "NOTHING_WRITTEN"],
            error=error,
        )

    refuse({}, "empty PGDATA: no pg_cryptokeys", "key_directory_missing")
    refuse(
        {"pg_cryptokeys": {"mode": 0o600, "content": ""}},
        "pg_cryptokeys is an empty file",
        "key_directory_missing",
    )
    refuse({D: {"mode": 0o700}}, "pg_cryptokeys is empty", "key_file_missing")
    for name in kd.NAMES:
        refuse(kd.without(good, D + name), f"{name} missing", "key_file_missing")
    refuse(kd.without(good, D + "0001", D + "0002"), "0001 and 0002 missing", "key_file_missing")
    extra: ListingJson = {
        "0003": {"mode": 0o600, "content": kd.content(good, D + "0002").hex()},
        "README": {"mode": 0o600, "content": b"do not touch\n".hex()},
        "0000.bak": {"mode": 0o600, "content": kd.content(good, D + "0000").hex()},
        "000a": {"mode": 0o600, "content": kd.content(good, D + "0000").hex()},
        ".hidden": {"mode": 0o600, "content": ""},
        "sub/": {"mode": 0o700},
    }
    for name, entry in extra.items():
        what = "a subdirectory" if name.endswith("/") else f"an extra file {name}"
        refuse(
            kd.merge(good, {D + name: entry}),
            f"{what} besides the three key files",
            "unexpected_file",
        )
    refuse(
        kd.merge(kd.without(good, D + "0002"), {D + "0003": extra["0003"]}),
        "0002 renamed to 0003: the unexpected entry is reported before the missing one",
        "unexpected_file",
        ["CHECK_ORDER"],
    )


def _startup_records(fam: Family, p: bytes, good: ListingJson) -> None:
    g = fam.group("startup_records", "malformed records (DISK_03..DISK_05)")
    r = {name: kd.content(good, D + name) for name in kd.NAMES}

    def refuse(
        listing: ListingJson,
        comment: str,
        error: str,
        reqs: list[str],
        flags: list[str] | None = None,
    ) -> None:
        g.add(
            "startup",
            {"datadir": listing, "passphrase": p.hex()},
            comment=comment,
            requirements=[*reqs, "START_02", "START_04"],
            flags=[*(flags or []), "NOTHING_WRITTEN"],
            error=error,
        )

    for n in (0, 131, 133):
        data = (r["0002"] + b"\x00")[:n]
        refuse(
            kd.with_content(good, D + "0002", data),
            f"0002 is {n} bytes",
            "record_size_invalid",
            ["DISK_08"],
        )
    refuse(
        kd.with_content(good, D + "0001", r["0001"] * 2),
        "0001 is two records (264 bytes)",
        "record_size_invalid",
        ["DISK_08"],
    )
    refuse(
        kd.with_content(good, D + "0001", (5).to_bytes(4, "little") + r["0001"][4:]),
        "0001 holds id 5",
        "record_id_invalid",
        ["DISK_04"],
    )
    refuse(
        kd.with_content(good, D + "0002", (2).to_bytes(4, "big") + r["0002"][4:]),
        "0002 holds its id big-endian",
        "record_id_invalid",
        ["DISK_04"],
    )
    swapped = kd.with_content(kd.with_content(good, D + "0000", r["0001"]), D + "0001", r["0000"])
    refuse(
        swapped, "0000 and 0001 swapped", "record_id_mismatch", ["DISK_05"], ["ID_NOT_CHECKED_2020"]
    )
    refuse(
        kd.with_content(good, D + "0001", r["0000"]),
        "0001 holds a copy of 0000",
        "record_id_mismatch",
        ["DISK_05"],
        ["ID_NOT_CHECKED_2020"],
    )
    refuse(
        kd.with_content(
            kd.with_content(good, D + "0000", r["0000"][:100]),
            D + "0001",
            (9).to_bytes(4, "little") + r["0001"][4:],
        ),
        "0000 is short and 0001 holds id 9: 0000 is reported first",
        "record_size_invalid",
        ["DISK_08"],
        ["CHECK_ORDER"],
    )


def _startup_unwrap(fam: Family, p: bytes, other: bytes, good: ListingJson) -> None:
    keys, ivs = kd.internal_keys("key_directory"), kd.ivs("key_directory")
    g = fam.group("startup_unwrap", "records that do not unwrap (START_03, KEY_03)")

    def refuse(
        listing: ListingJson,
        passphrase: bytes,
        comment: str,
        error: str,
        *,
        reqs: list[str],
        flags: list[str] | None = None,
    ) -> None:
        g.add(
            "startup",
            {"datadir": listing, "passphrase": passphrase.hex()},
            comment=comment,
            requirements=[*reqs, "START_03", "START_04"],
            flags=[*(flags or []), "NOTHING_WRITTEN"],
            error=error,
        )

    r = {name: kd.content(good, D + name) for name in kd.NAMES}
    refuse(
        good,
        other,
        "another passphrase (80 bytes)",
        "wrong_passphrase",
        reqs=["START_01"],
        flags=["ALL_FAIL_HMAC"],
    )
    refuse(
        good,
        p[:63],
        "the passphrase's first 63 bytes: too short",
        "passphrase_too_short",
        reqs=["PASS_07", "START_01"],
    )
    refuse(
        good,
        p + b"\n",
        "the passphrase plus a newline",
        "wrong_passphrase",
        reqs=["PASS_01"],
        flags=["ALL_FAIL_HMAC"],
    )
    for name, bit in (("0001", 4 * 8 + 200), ("0000", 4 * 8 + 3), ("0002", 131 * 8 + 7)):
        region = "ciphertext" if bit >= (4 + 48) * 8 else "HMAC"
        refuse(
            kd.with_content(good, D + name, common.flip_bit(r[name], bit)),
            p,
            f"one bit of {name}'s {region} flipped (record bit {bit})",
            "hmac_mismatch",
            reqs=["WRAP_07"],
            flags=["SOME_FAIL_HMAC"],
        )
    all_bad = good
    for name in kd.NAMES:
        all_bad = kd.with_content(all_bad, D + name, common.flip_bit(r[name], 100 * 8))
    refuse(
        all_bad,
        p,
        "one ciphertext bit flipped in every file",
        "wrong_passphrase",
        reqs=["WRAP_07"],
        flags=["ALL_FAIL_HMAC"],
    )
    mixed = kd.with_content(good, D + "0002", kd.records(other, keys, ivs)[2])
    refuse(
        mixed,
        p,
        "0002 wrapped under another passphrase",
        "hmac_mismatch",
        reqs=["WRAP_07"],
        flags=["SOME_FAIL_HMAC"],
    )
    kek = kd.kek(p)
    enc, mac = kek.enc.reveal(), kek.mac.reveal()
    bad_pad = (1).to_bytes(4, "little") + unpadded_wrap(enc, mac, ivs[1], b"\x00" * 80)
    refuse(
        kd.with_content(good, D + "0001", bad_pad),
        p,
        "0001 has a valid HMAC over a plaintext with no valid padding",
        "bad_padding",
        reqs=["WRAP_08"],
    )
    for n in (65, 79):
        key = drbg.derive(f"key_directory/long-key-{n}", n)
        pad = 16 - n % 16
        rec = (2).to_bytes(4, "little") + unpadded_wrap(enc, mac, ivs[2], key + bytes([pad]) * pad)
        if len(rec) != 132:
            raise GeneratorError(f"key of {n} bytes does not make a 132-byte record")
        refuse(
            kd.with_content(good, D + "0002", rec),
            p,
            f"0002 unwraps to a {n}-byte key D('key_directory/long-key-{n}', {n})",
            "key_length_invalid",
            reqs=["KEY_03", "DEV_UNWRAP_LENGTH"],
        )


def _bootstrap(
    fam: Family, p: bytes, keys: list[bytes], ivs: list[bytes], good: ListingJson
) -> None:
    g = fam.group("bootstrap", "bootstrap with injected keys and IVs (BOOT_03)")
    inject = {"keys": _hex_keys(keys), "ivs": _hex_keys(ivs)}
    reqs = ["BOOT_03", "BOOT_04", "DISK_01", "DISK_02", "DISK_09", "DISK_03", "KEY_01", "WRAP_01"]
    g.add(
        "bootstrap",
        {"datadir": {}, "passphrase": p.hex(), **inject},
        comment="empty PGDATA: writes pg_cryptokeys with the three records",
        requirements=reqs,
        expected={"datadir": good},
    )
    others: ListingJson = {
        "PG_VERSION": {"mode": 0o600, "content": b"13\n".hex()},
        "base/": {"mode": 0o700},
    }
    g.add(
        "bootstrap",
        {"datadir": others, "passphrase": p.hex(), **inject},
        comment="PGDATA with other entries: they are kept",
        requirements=reqs,
        flags=["EXTRA_ENTRIES_KEPT"],
        expected={"datadir": kd.merge(others, good)},
    )
    for n in (64, 1024):
        q = kd.passphrase(f"key_directory/bootstrap-{n}", n)
        g.add(
            "bootstrap",
            {"datadir": {}, "passphrase": q.hex(), **inject},
            comment=f"a {n}-byte passphrase is accepted",
            requirements=["BOOT_02", "PASS_04" if n == 64 else "PASS_05", "BOOT_03"],
            expected={"datadir": kd.key_set(q, keys, ivs)},
        )

    def refuse(
        listing: ListingJson, passphrase: bytes, comment: str, error: str, reqs: list[str]
    ) -> None:
        g.add(
            "bootstrap",
            {"datadir": listing, "passphrase": passphrase.hex(), **inject},
            comment=comment,
            requirements=reqs,
            flags=["NOTHING_WRITTEN"],
            error=error,
        )

    refuse(
        {},
        kd.passphrase("key_directory/bootstrap-63", 63),
        "a 63-byte passphrase",
        "passphrase_too_short",
        ["BOOT_02", "PASS_04"],
    )
    refuse(
        {},
        kd.passphrase("key_directory/bootstrap-1025", 1025),
        "a 1025-byte passphrase",
        "passphrase_too_long",
        ["BOOT_02", "PASS_05"],
    )
    refuse(good, p, "pg_cryptokeys already holds keys", "keys_already_exist", ["BOOT_01"])
    refuse(
        {D: {"mode": 0o700}}, p, "an empty pg_cryptokeys exists", "keys_already_exist", ["BOOT_01"]
    )
    refuse(
        kd.rename_dir(good, "pg_cryptokeys", "pg_cryptokeys_tmp"),
        p,
        "pg_cryptokeys_tmp exists (an interrupted rotation)",
        "keys_already_exist",
        ["BOOT_01"],
    )


def _startup_unwrap_order(
    fam: Family, p: bytes, keys: list[bytes], ivs: list[bytes], good: dict[str, dict[str, object]]
) -> None:
    """START_03: a key that authenticates but is not 64 bytes (KEY_03) is one more failing file,
    judged in id order with the others; it does not end the attempts early."""
    g = fam.group(
        "startup_unwrap_order", "a length failure takes its place in id order (START_03, KEY_03)"
    )
    long_key = drbg.derive("key_directory/long-key-65", 65)
    long_0 = kd.records(p, [long_key, keys[1], keys[2]], ivs)[0]
    long_2 = kd.records(p, [keys[0], keys[1], long_key], ivs)[2]
    r = {name: kd.content(good, D + name) for name in kd.NAMES}
    flip_0, flip_1 = common.flip_bit(r["0000"], 4 * 8 + 3), common.flip_bit(r["0001"], 4 * 8 + 3)
    for listing, comment, error in (
        (
            kd.with_content(kd.with_content(good, D + "0000", flip_0), D + "0002", long_2),
            "0000's HMAC flipped, 0002 unwraps to a 65-byte key: the first failing file wins",
            "hmac_mismatch",
        ),
        (
            kd.with_content(kd.with_content(good, D + "0000", long_0), D + "0001", flip_1),
            "0000 unwraps to a 65-byte key, 0001's HMAC flipped: the first failing file wins",
            "key_length_invalid",
        ),
    ):
        g.add(
            "startup",
            {"datadir": listing, "passphrase": p.hex()},
            comment=comment,
            requirements=["KEY_03", "START_03", "START_04"],
            flags=["SOME_FAIL_HMAC", "LENGTH_FAILURE_IN_ORDER", "NOTHING_WRITTEN"],
            error=error,
        )
