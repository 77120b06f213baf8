"""Where keys and IVs come from.

Chapter ``spec/chapters/security.rst``, section "Secrets and randomness": keys and IVs come from
the operating system's CSPRNG (WRAP_03, KEY_01); injected randomness exists only behind test
interfaces (CONF_04): ``ScriptedRandom`` is built only by test tooling (the adapter's
``inject_randomness``, the vector generator, the crash explorer, the tests).

Every function that needs random bytes takes a ``RandomSource`` so that test vectors and the
adapter protocol can inject exact bytes and compare outputs byte for byte. The order in which
the procedures draw is part of the spec (BOOT_03, ROT_03), so a scripted source reproduces any
implementation's output.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from pgkms.errors import InputError

RandomSource = Callable[[int], bytes]


def system_random(size: int) -> bytes:
    """The default source: the OS CSPRNG."""
    return os.urandom(size)


class ScriptedRandom:
    """Replays given byte strings in order; each draw must ask for exactly the next one's size.

    A size mismatch or running out means the caller drew in an order the spec does not
    prescribe, which is an error in the caller, not something to paper over.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = [bytes(c) for c in chunks]
        self._next = 0

    def __call__(self, size: int) -> bytes:
        if self._next >= len(self._chunks):
            raise InputError(
                f"injected randomness exhausted: draw {self._next + 1} of {size} bytes"
            )
        chunk = self._chunks[self._next]
        if len(chunk) != size:
            raise InputError(
                f"injected randomness draw {self._next + 1}: expected {size} bytes, "
                f"found {len(chunk)}"
            )
        self._next += 1
        return chunk
