"""``python -m pgkms.adapter``: serve adapter protocol version 1 on stdin and stdout."""

from pgkms.tools.adapter import main

main()
