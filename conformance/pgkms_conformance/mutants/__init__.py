"""The mutant zoo: deliberately wrong variants of the independent implementation.

Each mutant (``catalog.MUTANTS``) is one small, named deviation from the spec, switched on by
patching ``pgkms_independent`` in the adapter process (``python -m
pgkms_conformance.mutants.adapter --mutant NAME``); ``pgkms_independent`` itself is never
edited. Each declares the requirement it violates, and the zoo's test runs the harness against
it and requires a failure naming that requirement: a harness that lets a mutant pass has a blind
spot, and the mutation score (caught / total) measures how many it has.
"""
