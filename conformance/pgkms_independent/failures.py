"""Failures, arranged by category; the stable code travels on each instance.

The reference implementation has one class per code. Here a failure is one of a handful of
categories (bad bytes, a bad key store, a bad passphrase, a storage problem, a bad protocol
message), and the precise reason is the ``code`` given when it is raised. The code strings are
the spec's code table (ERR_01); they are written out below, not imported, so that a typo in
either implementation shows up as a disagreement in the differential tests.

Messages name files, offsets and sizes; no constructor takes secret bytes, and nothing here
formats a value that could be a key, a passphrase or a plaintext.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """The stable error codes (spec: Error codes; adapter protocol ADP_03)."""

    # passphrase acquisition (PASS_03..PASS_07)
    PASSPHRASE_COMMAND_FAILED = "passphrase_command_failed"  # noqa: S105  (a code, not a password)
    PASSPHRASE_TOO_SHORT = "passphrase_too_short"  # noqa: S105  (a code, not a password)
    PASSPHRASE_TOO_LONG = "passphrase_too_long"  # noqa: S105  (a code, not a password)
    PASSPHRASE_COMMAND_TIMEOUT = "passphrase_command_timeout"  # noqa: S105  (PASS_08)
    # wrapped values (WRAP_05..WRAP_08)
    WRAPPED_TOO_SHORT = "wrapped_too_short"
    WRAPPED_LENGTH_INVALID = "wrapped_length_invalid"
    HMAC_MISMATCH = "hmac_mismatch"
    BAD_PADDING = "bad_padding"
    # key records and key directories (KEY_03, DISK_03..DISK_06, BOOT_01, START_03, REC_05)
    KEY_LENGTH_INVALID = "key_length_invalid"
    RECORD_SIZE_INVALID = "record_size_invalid"
    RECORD_ID_INVALID = "record_id_invalid"
    RECORD_ID_MISMATCH = "record_id_mismatch"
    KEY_DIRECTORY_MISSING = "key_directory_missing"
    KEY_FILE_MISSING = "key_file_missing"
    UNEXPECTED_FILE = "unexpected_file"
    KEYS_ALREADY_EXIST = "keys_already_exist"
    WRONG_PASSPHRASE = "wrong_passphrase"  # noqa: S105  (a code, not a password)
    NO_VALID_KEY_SET = "no_valid_key_set"
    ROTATION_INCOMPLETE = "rotation_incomplete"  # ROT_08
    # concurrency (CONC_02, CONC_03) and the environment (ENV_01, ENV_02, ENV_05)
    KEY_DIRECTORY_LOCKED = "key_directory_locked"
    SERVER_RUNNING = "server_running"
    SYMLINK_REFUSED = "symlink_refused"
    NOT_REGULAR_FILE = "not_regular_file"
    PERMISSIONS_TOO_OPEN = "permissions_too_open"
    # the operating system refused something
    STORAGE_ERROR = "storage_error"
    # text input that is not hex (the CLI's bytea input; never raised by this package's adapter,
    # which reports bad hex as malformed_request, but part of the code table)
    HEX_INVALID = "hex_invalid"
    # the adapter protocol (ADP_03)
    MALFORMED_REQUEST = "malformed_request"
    UNSUPPORTED_OPERATION = "unsupported_operation"
    INTERNAL_ERROR = "internal_error"


class Failure(Exception):
    """Anything this implementation reports; ``code`` is one of ``Code``."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.message!r})"


class FormatFailure(Failure):
    """Bytes that do not follow a format: a wrapped value, a record, an unwrapped key."""


class StoreFailure(Failure):
    """A key directory that is missing, incomplete, crowded, or does not open; or an entry that
    is not what a key directory may hold (a symbolic link, a special file, modes too open)."""


class ExclusionFailure(Failure):
    """Another procedure or a running server holds the data directory (CONC_02, CONC_03)."""


class PassphraseFailure(Failure):
    """The passphrase command failed, or its output breaks the length rules."""


class StorageFailure(Failure):
    """The operating system refused a file operation (permissions, wrong kind of entry...)."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.STORAGE_ERROR, message)


class IncompleteFailure(Failure):
    """A rotation (or upgrade copy) that failed past its point of no return (ROT_08)."""


class ProtocolFailure(Failure):
    """A request the adapter cannot accept (ADP_03)."""


# The failures that describe *content* (as opposed to the OS refusing an operation). Recovery
# judges a directory invalid on these and never on a storage failure (REC_02).
CONTENT_FAILURES: tuple[type[Failure], ...] = (FormatFailure, StoreFailure)
