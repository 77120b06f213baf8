"""A guided walk through the key manager's life cycle, driven through the CLI's own code paths.

It creates a data directory, verifies it, wraps and unwraps a secret, rotates the passphrase,
shows that the old passphrase no longer opens the keys and the new one does, and prints every
step. Passphrase commands are ``printf`` commands; their output is never printed.
"""

from __future__ import annotations

import os
import tempfile

from pgkms.bootstrap import bootstrap
from pgkms.errors import WrongPassphrase
from pgkms.fs import OsFileSystem
from pgkms.passphrase import Purpose, acquire_passphrase
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.sqlwrap import pg_unwrap, pg_wrap
from pgkms.startup import startup
from pgkms.tools.hexcodec import to_bytea_hex
from pgkms.tools.inspection import describe

OLD_COMMAND = "printf '%s' demo-old-passphrase-$(printf 'x%.0s' $(seq 1 60))"
NEW_COMMAND = "printf '%s' demo-new-passphrase-$(printf 'y%.0s' $(seq 1 60))"


def _step(n: int, text: str) -> None:
    print(f"[{n}] {text}")


def run(workdir: str | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="pgkms-demo-", dir=workdir) as root:
        datadir = os.path.join(root, "pgdata")
        os.mkdir(datadir, 0o700)
        old = acquire_passphrase(OLD_COMMAND, Purpose.BOOTSTRAP)
        new = acquire_passphrase(NEW_COMMAND, Purpose.ROTATION)
        _step(1, f"init {datadir} (passphrase: {len(old)} bytes from a printf command)")
        bootstrap(datadir, old)
        for line in describe(OsFileSystem(), datadir):
            print("    " + line)
        _step(2, "verify: startup with the same passphrase")
        keys = startup(datadir, old)
        print("    all 3 internal keys opened and authenticated")
        _step(3, "pg_wrap('my secret passward')")
        wrapped = pg_wrap(keys, Secret(b"my secret passward"))
        print(f"    {len(wrapped)} bytes: {to_bytea_hex(wrapped)[:26]}...")
        _step(4, "pg_unwrap of that value")
        secret = pg_unwrap(keys, wrapped)
        equal = secret.reveal() == b"my secret passward"
        print(f"    recovered {len(secret)} bytes, equal to the input: {equal}")
        _step(5, "rotate the cluster passphrase")
        rotate(datadir, old, new)
        print("    keys re-wrapped in pg_cryptokeys_tmp/, swapped into pg_cryptokeys/")
        _step(6, "verify with the old passphrase (must fail)")
        try:
            startup(datadir, old)
        except WrongPassphrase as exc:
            print(f"    refused as expected: {exc.code}")
        else:
            print("    UNEXPECTED: the old passphrase still opens the keys")
            return 1
        _step(7, "verify with the new passphrase, and unwrap the old value again")
        rotated = startup(datadir, new)
        same = pg_unwrap(rotated, wrapped).reveal() == b"my secret passward"
        print(f"    keys opened; the value wrapped before rotation still unwraps: {same}")
        return 0 if same else 1
