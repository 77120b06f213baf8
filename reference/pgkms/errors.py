"""The typed errors of the key manager, one class per failure kind.

Chapter ``spec/chapters/error-codes.rst``: ERR_01, ERR_02 (messages name what is wrong, never
a secret).

Every class carries a stable, machine-readable ``code`` (spec chapter "Error codes", ERR_01).
The codes are part of the conformance contract: the adapter protocol reports them, the test
vectors expect them, and a third-party implementation must produce the same code for the same
failure. Messages name the file and what was expected versus found; they never carry a secret
(passphrase, key, plaintext), which is why no constructor here accepts one.
"""

from __future__ import annotations

from typing import ClassVar


class KmsError(Exception):
    """Base class of every failure the key manager reports."""

    code: ClassVar[str] = "kms_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


# --- passphrase acquisition (spec: Passphrase acquisition) -------------------------------------


class PassphraseError(KmsError):
    code = "passphrase_error"


class PassphraseCommandFailed(PassphraseError):
    code = "passphrase_command_failed"


class PassphraseTooShort(PassphraseError):
    code = "passphrase_too_short"


class PassphraseTooLong(PassphraseError):
    code = "passphrase_too_long"


class PassphraseCommandTimeout(PassphraseError):
    """PASS_08: the command did not finish within its timeout; its process group was killed."""

    code = "passphrase_command_timeout"


# --- unwrapping (spec: Wrap format) -------------------------------------------------------------


class UnwrapError(KmsError):
    code = "unwrap_error"


class WrappedTooShort(UnwrapError):
    code = "wrapped_too_short"


class WrappedLengthInvalid(UnwrapError):
    code = "wrapped_length_invalid"


class HmacMismatch(UnwrapError):
    code = "hmac_mismatch"


class BadPadding(UnwrapError):
    code = "bad_padding"


# --- key records and the key directory (spec: On-disk format, Startup) --------------------------


class KeyStoreError(KmsError):
    code = "key_store_error"


class KeyLengthInvalid(KeyStoreError):
    code = "key_length_invalid"


class RecordSizeInvalid(KeyStoreError):
    code = "record_size_invalid"


class RecordIdInvalid(KeyStoreError):
    code = "record_id_invalid"


class RecordIdMismatch(KeyStoreError):
    code = "record_id_mismatch"


class KeyDirectoryMissing(KeyStoreError):
    code = "key_directory_missing"


class KeyFileMissing(KeyStoreError):
    code = "key_file_missing"


class UnexpectedFile(KeyStoreError):
    code = "unexpected_file"


class KeysAlreadyExist(KeyStoreError):
    code = "keys_already_exist"


class WrongPassphrase(KeyStoreError):
    code = "wrong_passphrase"


class NoValidKeySet(KeyStoreError):
    code = "no_valid_key_set"


class RotationIncomplete(KeyStoreError):
    """ROT_08: a failure past the point of no return; the new passphrase opens the keys now."""

    code = "rotation_incomplete"


# --- concurrency and the environment (spec: Concurrency and the environment) --------------------


class KeyDirectoryLocked(KmsError):
    """CONC_02: another process held the lock for longer than the lock timeout."""

    code = "key_directory_locked"


class ServerRunning(KmsError):
    """CONC_03: postmaster.pid names a live process, or cannot be read."""

    code = "server_running"


class SymlinkRefused(KeyStoreError):
    """ENV_01: a key directory, key file or lock file is a symbolic link."""

    code = "symlink_refused"


class NotRegularFile(KeyStoreError):
    """ENV_02: a key file or lock file is a FIFO, socket, device or directory."""

    code = "not_regular_file"


class PermissionsTooOpen(KeyStoreError):
    """ENV_05: a key directory beyond 0750 or a key file beyond 0640."""

    code = "permissions_too_open"


class StorageError(KmsError):
    """An operating-system failure on a path (permission denied, not a directory, ...)."""

    code = "storage_error"


# --- input encodings (CLI, adapter) -------------------------------------------------------------


class InputError(KmsError):
    code = "input_invalid"


class HexInvalid(InputError):
    code = "hex_invalid"


def all_error_classes() -> list[type[KmsError]]:
    """Every error class, base classes included, in a stable order (for docs and checks)."""
    found: list[type[KmsError]] = []
    pending: list[type[KmsError]] = [KmsError]
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


# Categories group codes for ``except`` clauses and are never raised themselves, so their codes
# are not part of the code table.
CATEGORIES: frozenset[type[KmsError]] = frozenset(
    {KmsError, PassphraseError, UnwrapError, KeyStoreError}
)


def error_codes() -> dict[str, type[KmsError]]:
    """Map every code the key manager's errors carry (ERR_01) to its class.

    Complete: a raisable class is listed even when it has subclasses (``InputError`` is raised
    itself and is also the base of ``HexInvalid``). Stable: only this module's classes count, so
    importing ``pgkms.tools.adapter``, whose protocol errors subclass ``KmsError``, changes nothing.
    """
    return {
        cls.code: cls
        for cls in all_error_classes()
        if cls.__module__ == __name__ and cls not in CATEGORIES
    }
