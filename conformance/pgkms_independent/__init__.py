"""pgkms_independent: a second, independent implementation of the kms_v10 key manager.

Written from the design thread, the byte-level facts and the requirement list, on pycryptodome
and the standard library only. It never imports the reference implementation (``pgkms``) nor
``cryptography``; an import-linter contract in ``pyproject.toml`` enforces that, so that the
two implementations can only agree by both following the specification.

Layout of this package (a deliberately different decomposition from the reference):
- ``failures``: one exception class per *category*, each instance carrying its stable code;
- ``hidden``: the redacted holder for secret bytes;
- ``codec``: every byte format (wrapped value, key record, key file names, hex);
- ``primitives``: SHA-512 derivation and the seal/open (wrap/unwrap) procedures;
- ``entropy``: where random bytes come from, with injection for tests and vectors;
- ``passphrase``: running ``cluster_passphrase_command`` and the length policy;
- ``disk``: the plain-``os`` file layer with durability helpers;
- ``keystore``: ``KeyStore`` (one key directory) and ``Cluster`` (a data directory: bootstrap,
  startup, rotation, recovery);
- ``adapter``: adapter protocol v1 (``python -m pgkms_independent.adapter``).
"""

IMPLEMENTATION_NAME = "pgkms-independent"
__version__ = "0.1.0"
