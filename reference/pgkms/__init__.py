"""pgkms: the reference implementation of PostgreSQL's kms_v10 cluster key manager.

The modules of this package are the executable specification: each implements one chapter of
``spec/chapters/``, names it in its docstring and cites the requirement IDs it implements. The
plumbing that drives them (the adapter, the ``pgkms`` command, the demo, inspection) lives in
``pgkms.tools`` and is never imported from here. The public surface is re-exported here.
"""

from pgkms.bootstrap import bootstrap
from pgkms.errors import KmsError, error_codes
from pgkms.fs import FileSystem, OsFileSystem
from pgkms.internal_keys import InternalKeys
from pgkms.kdf import WrapKeys, derive_kek, split_internal_key
from pgkms.passphrase import Purpose, acquire_passphrase, check_passphrase, substitute
from pgkms.randomness import RandomSource, ScriptedRandom, system_random
from pgkms.record import KeyRecord, decode_record, encode_record
from pgkms.recovery import Decision, DirState, decide, recover
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.sqlwrap import pg_unwrap, pg_wrap
from pgkms.startup import startup
from pgkms.wrap import unwrap, wrap

__version__ = "0.1.0"

__all__ = [
    "Decision",
    "DirState",
    "FileSystem",
    "InternalKeys",
    "KeyRecord",
    "KmsError",
    "OsFileSystem",
    "Purpose",
    "RandomSource",
    "ScriptedRandom",
    "Secret",
    "WrapKeys",
    "acquire_passphrase",
    "bootstrap",
    "check_passphrase",
    "decide",
    "decode_record",
    "derive_kek",
    "encode_record",
    "error_codes",
    "pg_unwrap",
    "pg_wrap",
    "recover",
    "rotate",
    "split_internal_key",
    "startup",
    "substitute",
    "system_random",
    "unwrap",
    "wrap",
]
