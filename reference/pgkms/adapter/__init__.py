"""``python -m pgkms.adapter``: the entry point of the reference adapter, kept at its old name.

The adapter itself is ``pgkms.tools.adapter``; this package only starts it, so that the command
line the harness, the docs and third-party scripts use keeps working.
"""
