"""The two implementations behind one face, so a test can run an operation on both and compare.

Every call returns an ``Outcome``: the result (bytes, a tuple of keys, a decision...) or the
stable error code. Comparing outcomes compares behaviour, including *which* failure is reported;
an exception that is neither implementation's typed error escapes, which fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import pgkms
from pgkms.errors import KmsError
from pgkms.fs import OsFileSystem
from pgkms.kdf import WrapKeys
from pgkms.passphrase import Purpose as RefPurpose
from pgkms.randomness import ScriptedRandom
from pgkms.record import KeyRecord
from pgkms.secret import Secret
from pgkms_independent import codec, primitives
from pgkms_independent import sql as ind_sql
from pgkms_independent.entropy import Entropy
from pgkms_independent.failures import Failure
from pgkms_independent.hidden import Hidden
from pgkms_independent.keystore import Cluster, InternalKeys
from pgkms_independent.passphrase import Purpose as IndPurpose
from pgkms_independent.passphrase import effective, expand

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    value: object = None
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.code is None


def ref_outcome(action: Callable[[], object]) -> Outcome:
    try:
        return Outcome(value=action())
    except KmsError as exc:
        return Outcome(code=exc.code)


def ind_outcome(action: Callable[[], object]) -> Outcome:
    try:
        return Outcome(value=action())
    except Failure as exc:
        return Outcome(code=exc.code.value)


class Impl(Protocol):
    """The operations the differential tests drive, with plain bytes in and out."""

    name: str

    def derive(self, passphrase: bytes) -> Outcome: ...
    def wrap(self, enc: bytes, mac: bytes, plaintext: bytes, iv: bytes) -> Outcome: ...
    def unwrap(self, enc: bytes, mac: bytes, wrapped: bytes) -> Outcome: ...
    def encode_record(self, key_id: int, wrapped_key: bytes) -> Outcome: ...
    def decode_record(self, record: bytes, file_id: int | None) -> Outcome: ...
    def check_passphrase(self, passphrase: bytes, purpose: str) -> Outcome: ...
    def substitute(self, command: str) -> Outcome: ...
    def bootstrap(
        self, datadir: str, passphrase: bytes, keys: list[bytes], ivs: list[bytes]
    ) -> Outcome: ...
    def startup(self, datadir: str, passphrase: bytes) -> Outcome: ...
    def rotate(self, datadir: str, old: bytes, new: bytes, ivs: list[bytes]) -> Outcome: ...
    def recover(self, datadir: str, passphrase: bytes) -> Outcome: ...
    def sql_wrap(self, sql_key: bytes, plaintext: bytes, iv: bytes) -> Outcome: ...
    def sql_unwrap(self, sql_key: bytes, wrapped: bytes) -> Outcome: ...


class Reference:
    name = "reference"

    @staticmethod
    def _keys(enc: bytes, mac: bytes) -> WrapKeys:
        return WrapKeys(Secret(enc), Secret(mac))

    def derive(self, passphrase: bytes) -> Outcome:
        def run() -> tuple[bytes, bytes]:
            kek = pgkms.derive_kek(Secret(passphrase))
            return kek.enc.reveal(), kek.mac.reveal()

        return ref_outcome(run)

    def wrap(self, enc: bytes, mac: bytes, plaintext: bytes, iv: bytes) -> Outcome:
        return ref_outcome(
            lambda: pgkms.wrap(self._keys(enc, mac), Secret(plaintext), ScriptedRandom([iv]))
        )

    def unwrap(self, enc: bytes, mac: bytes, wrapped: bytes) -> Outcome:
        return ref_outcome(lambda: pgkms.unwrap(self._keys(enc, mac), wrapped).reveal())

    def encode_record(self, key_id: int, wrapped_key: bytes) -> Outcome:
        return ref_outcome(lambda: pgkms.encode_record(KeyRecord(key_id, wrapped_key)))

    def decode_record(self, record: bytes, file_id: int | None) -> Outcome:
        def run() -> tuple[int, bytes]:
            decoded = pgkms.decode_record(record, file_id, "record")
            return decoded.key_id, decoded.wrapped_key

        return ref_outcome(run)

    def check_passphrase(self, passphrase: bytes, purpose: str) -> Outcome:
        return ref_outcome(lambda: pgkms.check_passphrase(passphrase, RefPurpose(purpose)).reveal())

    def substitute(self, command: str) -> Outcome:
        return ref_outcome(lambda: pgkms.substitute(command))

    def bootstrap(
        self, datadir: str, passphrase: bytes, keys: list[bytes], ivs: list[bytes]
    ) -> Outcome:
        return ref_outcome(
            lambda: _ref_keys(
                pgkms.bootstrap(datadir, Secret(passphrase), random=ScriptedRandom(keys + ivs))
            )
        )

    def startup(self, datadir: str, passphrase: bytes) -> Outcome:
        return ref_outcome(lambda: _ref_keys(pgkms.startup(datadir, Secret(passphrase))))

    def rotate(self, datadir: str, old: bytes, new: bytes, ivs: list[bytes]) -> Outcome:
        return ref_outcome(
            lambda: _ref_keys(
                pgkms.rotate(datadir, Secret(old), Secret(new), random=ScriptedRandom(ivs))
            )
        )

    def recover(self, datadir: str, passphrase: bytes) -> Outcome:
        def run() -> str:
            secret = pgkms.check_passphrase(passphrase, RefPurpose.STARTUP)
            return str(pgkms.recover(OsFileSystem(), datadir, pgkms.derive_kek(secret)).value)

        return ref_outcome(run)

    def sql_wrap(self, sql_key: bytes, plaintext: bytes, iv: bytes) -> Outcome:
        keys = pgkms.InternalKeys(Secret(sql_key), Secret(b""), Secret(b""))
        return ref_outcome(lambda: pgkms.pg_wrap(keys, Secret(plaintext), ScriptedRandom([iv])))

    def sql_unwrap(self, sql_key: bytes, wrapped: bytes) -> Outcome:
        keys = pgkms.InternalKeys(Secret(sql_key), Secret(b""), Secret(b""))
        return ref_outcome(lambda: pgkms.pg_unwrap(keys, wrapped).reveal())


def _ref_keys(keys: pgkms.InternalKeys) -> tuple[bytes, ...]:
    return tuple(k.reveal() for k in keys.by_id().values())


class Independent:
    name = "independent"

    @staticmethod
    def _keys(enc: bytes, mac: bytes) -> primitives.KeyPair:
        return primitives.KeyPair(Hidden(enc), Hidden(mac))

    def derive(self, passphrase: bytes) -> Outcome:
        def run() -> tuple[bytes, bytes]:
            kek = primitives.derive(Hidden(passphrase))
            return kek.cipher_key.expose(), kek.mac_key.expose()

        return ind_outcome(run)

    def wrap(self, enc: bytes, mac: bytes, plaintext: bytes, iv: bytes) -> Outcome:
        return ind_outcome(lambda: primitives.seal(self._keys(enc, mac), Hidden(plaintext), iv))

    def unwrap(self, enc: bytes, mac: bytes, wrapped: bytes) -> Outcome:
        return ind_outcome(
            lambda: primitives.open_sealed(self._keys(enc, mac), wrapped, "value").expose()
        )

    def encode_record(self, key_id: int, wrapped_key: bytes) -> Outcome:
        return ind_outcome(lambda: codec.pack_record(key_id, wrapped_key))

    def decode_record(self, record: bytes, file_id: int | None) -> Outcome:
        def run() -> tuple[int, bytes]:
            decoded = codec.unpack_record(record, file_id, "record")
            return decoded.key_id, decoded.wrapped_key

        return ind_outcome(run)

    def check_passphrase(self, passphrase: bytes, purpose: str) -> Outcome:
        return ind_outcome(lambda: effective(passphrase, IndPurpose(purpose)).expose())

    def substitute(self, command: str) -> Outcome:
        return ind_outcome(lambda: expand(command))

    def bootstrap(
        self, datadir: str, passphrase: bytes, keys: list[bytes], ivs: list[bytes]
    ) -> Outcome:
        return ind_outcome(
            lambda: _ind_keys(Cluster(datadir).bootstrap(passphrase, Entropy([*keys, *ivs])))
        )

    def startup(self, datadir: str, passphrase: bytes) -> Outcome:
        return ind_outcome(lambda: _ind_keys(Cluster(datadir).startup(passphrase)))

    def rotate(self, datadir: str, old: bytes, new: bytes, ivs: list[bytes]) -> Outcome:
        return ind_outcome(lambda: _ind_keys(Cluster(datadir).rotate(old, new, Entropy(ivs))))

    def recover(self, datadir: str, passphrase: bytes) -> Outcome:
        return ind_outcome(lambda: Cluster(datadir).recover_with(passphrase))

    def sql_wrap(self, sql_key: bytes, plaintext: bytes, iv: bytes) -> Outcome:
        return ind_outcome(lambda: ind_sql.pg_wrap(Hidden(sql_key), Hidden(plaintext), iv))

    def sql_unwrap(self, sql_key: bytes, wrapped: bytes) -> Outcome:
        return ind_outcome(lambda: ind_sql.pg_unwrap(Hidden(sql_key), wrapped).expose())


def _ind_keys(keys: InternalKeys) -> tuple[bytes, ...]:
    return tuple(k.expose() for k in keys.keys)


REFERENCE = Reference()
INDEPENDENT = Independent()
BOTH: tuple[Impl, Impl] = (REFERENCE, INDEPENDENT)
