"""``python -m pgkms``: the same as the ``pgkms`` command."""

import sys

from pgkms.tools.cli import main

sys.exit(main())
