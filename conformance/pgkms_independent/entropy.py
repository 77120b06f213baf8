"""Random bytes: the OS CSPRNG, or a plan of injected draws (vectors, differential tests).

The order of draws is part of the spec (BOOT_03: keys 0, 1, 2 then IVs 0, 1, 2; ROT_03: IVs
0, 1, 2), so a plan replays any implementation's output byte for byte. A plan entry of None
means "draw this one from the CSPRNG", which lets a caller inject the keys but not the IVs.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence


class Entropy:
    def __init__(self, plan: Sequence[bytes | None] = ()) -> None:
        self._plan = list(plan)
        self._drawn = 0

    def draw(self, size: int) -> bytes:
        planned = self._plan[self._drawn] if self._drawn < len(self._plan) else None
        self._drawn += 1
        if planned is None:
            return secrets.token_bytes(size)
        if len(planned) != size:
            raise ValueError(
                f"injected draw {self._drawn}: {len(planned)} bytes, the procedure needs {size}"
            )
        return planned


def fresh() -> Entropy:
    """The production source: every draw from the CSPRNG (WRAP_03, KEY_01)."""
    return Entropy()
