"""The reference's plumbing: everything around the executable specification, none of it normative.

The modules next to this package (``pgkms.kdf`` .. ``pgkms.upgrade``) are the specification as
code, one chapter each. This package holds what drives them: the adapter protocol server
(``adapter``, ``fstrace``), the ``pgkms`` command line (``cli``, ``demo``, ``inspection``,
``hexcodec``) and SIGTERM handling for both (``stopping``). Core modules never import from here.
"""
