"""Recovery of an interrupted rotation: the decision table and its execution.

Chapter ``spec/chapters/rotation-recovery.rst``, section "Recovery": REC_01..REC_06. The
rotation it recovers from is ``rotation.py`` (ROT_01..ROT_08).

Theory of operation. A rotation (see ``rotation.py``) writes the re-wrapped keys to
``pg_cryptokeys_tmp/`` before it touches ``pg_cryptokeys/``; a crash can leave either, both, or
parts of both. Recovery classifies each directory by *content* under the configured passphrase
(``DirState``), looks the pair up in ``RECOVERY_TABLE`` and carries out the decision. Everything
that affects the decision lives in that table; the spec's recovery table is generated from it.

Invariants this module keeps:
- it never removes a directory unless the other one holds a valid key set for the configured
  passphrase (so the last valid copy of the keys is never deleted, REC_05);
- every removal and rename is made durable (fsync of the parent) before the next step, so a
  crash during recovery leaves a state recovery handles again (idempotence, REC_06).

The 2020 patch decided by counting files in the temporary directory and never checked that the
keys it kept open under the passphrase (spec deviation DEV_RECOVERY_COUNT).
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from pgkms.errors import (
    KeyStoreError,
    KmsError,
    NoValidKeySet,
    StorageError,
    SymlinkRefused,
    UnwrapError,
)
from pgkms.fs import FileSystem, join, remove_tree
from pgkms.internal_keys import load_key_set
from pgkms.kdf import WrapKeys
from pgkms.layout import KEY_DIR, KEY_TMP_DIR, LOCK_TIMEOUT
from pgkms.shown import shown


class DirState(Enum):
    """What one key directory holds, judged under the configured passphrase."""

    ABSENT = "absent"
    INVALID = "invalid"  # present, but incomplete, malformed, or not opening under the passphrase
    VALID = "valid"  # a complete key set that opens under the passphrase


class Decision(Enum):
    NOTHING = "nothing"  # no temporary directory: nothing to recover
    DISCARD_TMP = "discard_tmp"  # the current set is valid: the temporary one is surplus
    ADOPT_TMP = "adopt_tmp"  # only the temporary set is valid: it replaces the current one
    FAIL = "fail"  # no valid set: refuse, change nothing


# (state of pg_cryptokeys, state of pg_cryptokeys_tmp) -> decision
RECOVERY_TABLE: Final[dict[tuple[DirState, DirState], Decision]] = {
    (DirState.ABSENT, DirState.ABSENT): Decision.NOTHING,
    (DirState.INVALID, DirState.ABSENT): Decision.NOTHING,
    (DirState.VALID, DirState.ABSENT): Decision.NOTHING,
    (DirState.ABSENT, DirState.INVALID): Decision.FAIL,
    (DirState.INVALID, DirState.INVALID): Decision.FAIL,
    (DirState.VALID, DirState.INVALID): Decision.DISCARD_TMP,
    (DirState.ABSENT, DirState.VALID): Decision.ADOPT_TMP,
    (DirState.INVALID, DirState.VALID): Decision.ADOPT_TMP,
    (DirState.VALID, DirState.VALID): Decision.DISCARD_TMP,
}


def assess(fs: FileSystem, directory: str, kek: WrapKeys) -> tuple[DirState, KmsError | None]:
    """REC_02: classify ``directory``; also return why it is invalid, for reports.

    A key directory that is a symbolic link is refused outright (ENV_01): judged INVALID it
    could be removed, and removing it would act on whatever it points to.
    """
    st = fs.stat(directory)
    if st is None:
        return DirState.ABSENT, None
    if st.kind == "symlink":
        raise SymlinkRefused(
            f"{shown(directory)}: key directory is a symbolic link; recovery changes nothing "
            "(replace it by the directory it points to, or remove it)"
        )
    try:
        load_key_set(fs, directory, kek)
    except StorageError:
        raise  # an I/O failure says nothing about the content: do not decide on it
    except (KeyStoreError, UnwrapError) as exc:
        return DirState.INVALID, exc
    return DirState.VALID, None


def decide(fs: FileSystem, datadir: str, kek: WrapKeys) -> Decision:
    """REC_01..REC_05: the decision for ``datadir``, without acting on it."""
    tmp = join(datadir, KEY_TMP_DIR)
    if fs.stat(tmp) is None:
        return Decision.NOTHING  # REC_01: the common case costs one stat
    # both are assessed before anything is decided, so a link on either side stops recovery
    current_state, _ = assess(fs, join(datadir, KEY_DIR), kek)
    tmp_state, _ = assess(fs, tmp, kek)
    return RECOVERY_TABLE[(current_state, tmp_state)]


def recover(fs: FileSystem, datadir: str, kek: WrapKeys) -> Decision:
    """REC_01..REC_06: decide, then carry the decision out durably."""
    decision = decide(fs, datadir, kek)
    current = join(datadir, KEY_DIR)
    tmp = join(datadir, KEY_TMP_DIR)
    if decision is Decision.FAIL:
        raise NoValidKeySet(
            f"{shown(datadir)}: an interrupted rotation left {KEY_TMP_DIR}, and neither it nor "
            f"{KEY_DIR} holds a complete key set that opens under the configured passphrase; "
            "nothing was changed"
        )
    if decision is Decision.DISCARD_TMP:
        remove_tree(fs, tmp)
        fs.fsync_dir(datadir)
    elif decision is Decision.ADOPT_TMP:
        if fs.stat(current) is not None:
            remove_tree(fs, current)
            fs.fsync_dir(datadir)
        fs.rename(tmp, current)
        fs.fsync_dir(datadir)
    return decision


def recover_locked(
    fs: FileSystem, datadir: str, kek: WrapKeys, lock_timeout: float = LOCK_TIMEOUT
) -> Decision:
    """Recovery run on its own (``pgkms recover --apply``, the adapter's ``recover``): under
    the data directory's lock (CONC_01), like every procedure that may change the keys."""
    with fs.lock(datadir, lock_timeout):
        return recover(fs, datadir, kek)
