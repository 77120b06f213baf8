"""Crash-state exploration of passphrase rotation and recovery (spec: Crash model, CRASH_01..).

``simfs`` is a ``pgkms.fs.FileSystem`` that records every operation and knows which effects a
crash may still take away; ``machine`` holds the rotation protocols' transitions as data;
``legacy`` is the 2020 patch's rotation and recovery; ``points`` derives the durability
points of each procedure; ``explorer`` crashes a trace (a protocol's, or an IUT's replayed),
enumerates every crash state it can leave, and checks the invariants I1..I4 on each.

This package imports nothing of ``pgkms_conformance.vectors``: the crash-recovery vectors are
the vector family ``vectors/families/crash_recovery.py``, which reads the explorer's states.
"""
