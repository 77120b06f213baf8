"""Crash-state exploration of passphrase rotation and recovery (spec: Crash model, CRASH_01..).

``simfs`` is a ``pgkms.fs.FileSystem`` that records every operation and knows which effects a
crash may still take away; ``machine`` holds the rotation protocols' transitions as data;
``legacy`` is the 2020 patch's rotation and recovery; ``explorer`` runs a protocol, enumerates
every crash state it can leave, and checks the invariants I1..I4 on each; ``vectors`` exports
those states as portable test vectors.
"""
