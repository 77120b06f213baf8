"""``python -m pgkms_conformance.crash``: the crash explorer's command line."""

from __future__ import annotations

import sys

from pgkms_conformance.crash.cli import main

sys.exit(main())
