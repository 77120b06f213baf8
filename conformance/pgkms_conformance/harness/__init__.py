"""The conformance harness: drive an implementation under test (IUT) and judge it per requirement.

Theory of operation. ``pgkms-conformance run --impl CMD`` starts the IUT's adapter (adapter
protocol v1), reads its capabilities, then runs four stages, each producing ``Case`` results
that cite the requirement IDs they check:

1. ``protocol``: the adapter's own contract (ADP_01..ADP_04) on a few deliberately bad requests;
2. ``vectors``: every static vector the capabilities allow, through the vector runner;
3. ``properties``: hypothesis-generated inputs, the IUT's answers compared with the in-process
   reference (the oracle), failures shrunk and written out as replayable requests;
4. ``scenarios``: a key directory's life (bootstrap, startup, SQL wrapping, rotation, recovery,
   corruption) on real temporary directories, each step compared with the oracle run on a copy.

A case that fails names only the requirement it breaks, so the per-requirement summary says what
is wrong, not merely that something is. Secrets never reach the console or a report: byte values
are shown as a length and a SHA-256 prefix, and every text that came from the IUT (messages,
stderr) is scrubbed of every secret the harness has sent or received (``redact.Redactor``).
"""
