"""``key_record.json``: the 132-byte on-disk record, ``uint32 LE id || 128-byte wrapped key``
(DISK_03), and the checks made when decoding it, in order: size (DISK_08), id range (DISK_04),
id against the file name (DISK_05)."""

from __future__ import annotations

import struct

from pgkms_conformance.vectors import drbg
from pgkms_conformance.vectors.builder import Family


def _wrapped(key_id: int) -> bytes:
    return drbg.derive(f"key_record/wrapped-{key_id}", 128)


def _record(key_id: int, wrapped: bytes) -> bytes:
    return struct.pack("<I", key_id) + wrapped


TRIAGE = {
    "LITTLE_ENDIAN": ("BASIC", "reads or writes the id in another byte order: keys swap places"),
    "ID_NOT_CHECKED_2020": (
        "KNOWN_2020_DEFECT",
        "accepts a record whose id differs from its file name: swapped key files go unnoticed",
    ),
    "CHECK_ORDER": ("EDGE_CASE", "names another fault than the first check's"),
    "NO_FILE_NAME": ("BASIC", "checks a file name where there is none and refuses a good record"),
    "LONGER_ACCEPTED_2020": (
        "KNOWN_2020_DEFECT",
        "accepts a record file with trailing bytes, as the 2020 patch did",
    ),
    "ID_RANGE_UNCHECKED_2020": (
        "KNOWN_2020_DEFECT",
        "accepts an id outside 0..2: the 2020 patch wrote past its key table",
    ),
}


def build() -> Family:
    fam = Family(
        name="key_record",
        header=[
            "Key records: encode_record(key_id, wrapped_key) -> record and decode_record(record, "
            "file_id) -> key_id, wrapped_key. A record is the id as uint32 little-endian followed "
            "by the 128-byte wrapped key: 132 bytes (DISK_03). Decoding checks the size "
            "(DISK_08), then the id range 0..2 (DISK_04), then (unless file_id is null) that the "
            "id equals the id in the file name (DISK_05).",
            drbg.DESCRIPTION,
            "Labels: the wrapped key in a record for id N is D('key_record/wrapped-N', 128); it "
            "is not a real wrapped key, records are not unwrapped here.",
        ],
        triage=TRIAGE,
        notes={
            "LITTLE_ENDIAN": "The id is little-endian on disk (the 2020 patch wrote host order on "
            "little-endian machines). A big-endian reader sees id 0x02000000 for key 2.",
            "ID_NOT_CHECKED_2020": "The 2020 patch placed a key by the id inside the file and "
            "never compared it with the file name (DEV_RECORD_ID); a conforming implementation "
            "rejects the mismatch.",
            "CHECK_ORDER": "Several things are wrong; the code expected is the first check's, in "
            "the order size, id range, id vs name, so every implementation names the same fault.",
            "NO_FILE_NAME": "file_id is null: the record was not read from a named file, so the "
            "name check is skipped.",
            "LONGER_ACCEPTED_2020": "The 2020 patch read 132 bytes with one read and ignored the "
            "rest, so it accepted a longer file (DEV_RECORD_SIZE); a conforming reader rejects "
            "it.",
            "ID_RANGE_UNCHECKED_2020": "The 2020 patch never range-checked the id inside the "
            "file: an id of 3 or more indexed past its three-entry key table, an out-of-bounds "
            "write, and a byte-swapped id crashed it (DEV_RECORD_ID_RANGE).",
        },
    )
    g = fam.group("encode", "encode a record for each key id")
    for key_id in (0, 1, 2):
        g.add(
            "encode_record",
            {"key_id": key_id, "wrapped_key": _wrapped(key_id).hex()},
            comment=f"record for key {key_id}",
            requirements=["DISK_03"],
            flags=["LITTLE_ENDIAN"],
            expected={"record": _record(key_id, _wrapped(key_id)).hex()},
        )
    g = fam.group("decode", "decode well-formed records")
    for key_id in (0, 1, 2):
        for file_id in (key_id, None):
            g.add(
                "decode_record",
                {"record": _record(key_id, _wrapped(key_id)).hex(), "file_id": file_id},
                comment=f"record for key {key_id}, "
                + ("read from its own file" if file_id is not None else "no file name"),
                requirements=["DISK_03", "DISK_04"] + (["DISK_05"] if file_id is not None else []),
                flags=["LITTLE_ENDIAN"] + (["NO_FILE_NAME"] if file_id is None else []),
                expected={"key_id": key_id, "wrapped_key": _wrapped(key_id).hex()},
            )
    g = fam.group("wrong_size", "records of another size than 132 bytes")
    good = _record(1, _wrapped(1))
    for n in (0, 3, 4, 64, 128, 131, 133, 136, 264):
        data = (good + _record(1, _wrapped(1)))[:n] if n <= 264 else good
        g.add(
            "decode_record",
            {"record": data.hex(), "file_id": 1},
            comment=f"{n} bytes (a valid record for key 1, cut or doubled)",
            requirements=["DISK_08"] + (["DEV_RECORD_SIZE"] if n > 132 else []),
            flags=["LONGER_ACCEPTED_2020"] if n > 132 else [],
            error="record_size_invalid",
        )
    g = fam.group("wrong_id", "ids outside 0..2, and ids that do not match the file name")
    for raw_id, what in (
        (3, "id 3"),
        (5, "id 5"),
        (256, "id 256: bytes 00 01 00 00"),
        (0x01000000, "key 1's id written big-endian (byte-swapped)"),
        (0x02000000, "key 2's id written big-endian"),
        (0xFFFFFFFF, "id 0xffffffff (-1 as a signed integer)"),
        (0x80000000, "id 0x80000000 (negative as a signed integer)"),
    ):
        g.add(
            "decode_record",
            {"record": _record(raw_id, _wrapped(2)).hex(), "file_id": 2},
            comment=f"{what}, read from file 0002",
            requirements=["DISK_04", "DEV_RECORD_ID_RANGE"],
            flags=(["LITTLE_ENDIAN"] if raw_id in (0x01000000, 0x02000000) else [])
            + ["ID_RANGE_UNCHECKED_2020"],
            error="record_id_invalid",
        )
    g.add(
        "decode_record",
        {"record": _record(3, _wrapped(2)).hex(), "file_id": None},
        comment="id 3 with no file name: still out of range",
        requirements=["DISK_04"],
        flags=["NO_FILE_NAME"],
        error="record_id_invalid",
    )
    for key_id, file_id in ((0, 1), (1, 0), (2, 0), (0, 2)):
        g.add(
            "decode_record",
            {"record": _record(key_id, _wrapped(key_id)).hex(), "file_id": file_id},
            comment=f"record for key {key_id} read from file {file_id:04X}",
            requirements=["DISK_05"],
            flags=["ID_NOT_CHECKED_2020"],
            error="record_id_mismatch",
        )
    g = fam.group("check_order", "several faults at once: the first check names the fault")
    g.add(
        "decode_record",
        {"record": _record(3, _wrapped(0))[:131].hex(), "file_id": 0},
        comment="131 bytes with id 3 from file 0000: the size is checked first",
        requirements=["DISK_08"],
        flags=["CHECK_ORDER"],
        error="record_size_invalid",
    )
    g.add(
        "decode_record",
        {"record": _record(7, _wrapped(0)).hex(), "file_id": 0},
        comment="id 7 from file 0000: the range is checked before the name",
        requirements=["DISK_04"],
        flags=["CHECK_ORDER"],
        error="record_id_invalid",
    )
    return fam
