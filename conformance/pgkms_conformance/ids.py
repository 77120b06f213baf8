"""The identifier shapes of the specification, in one place.

Requirements are ``AREA_NN`` (two digits) with ``AREA`` one of ``AREAS``; security findings are
``SEC_<NAME>`` and deviations from the 2020 patch ``DEV_<NAME>``. The Sphinx configuration, the
vector schemas, the traceability check and the harness all build their patterns from these.
"""

from __future__ import annotations

import re
from typing import Final

AREAS: Final = "PASS|KDF|WRAP|KEY|DISK|BOOT|START|SQL|ROT|REC|UPG|ERR|CRASH|ADP|VEC|CONF|CONC|ENV"
# A requirement id alone (anchored) and cited inside text (word-bounded).
REQUIREMENT_PATTERN: Final = rf"(?:{AREAS})_[0-9]{{2}}"
REQUIREMENT_ID_RE: Final = re.compile(rf"^{REQUIREMENT_PATTERN}$")
REQUIREMENT_CITATION_RE: Final = re.compile(rf"\b{REQUIREMENT_PATTERN}\b")
# Any id a vector or a test may cite: a requirement, a finding or a deviation.
CITABLE_PATTERN: Final = rf"^(?:{REQUIREMENT_PATTERN}|(?:SEC|DEV)_[A-Z0-9_]+)$"
CITABLE_ID_RE: Final = re.compile(CITABLE_PATTERN)

# The lock file of CONC_01 (the spec's name: the toolkit checks implementations and imports
# none). Any procedure may create it in PGDATA and it holds no key state, so directory listings
# and traces leave it out.
LOCK_FILE_NAME: Final = "pg_cryptokeys.lock"
