"""Hypothesis strategies shared by the differential tests."""

from __future__ import annotations

import random

from hypothesis import strategies as st

passphrases = st.binary(min_size=64, max_size=1024)
half_keys = st.binary(min_size=32, max_size=32)
internal_keys = st.binary(min_size=64, max_size=64)
ivs = st.binary(min_size=16, max_size=16)
three_keys = st.lists(internal_keys, min_size=3, max_size=3)
three_ivs = st.lists(ivs, min_size=3, max_size=3)

# Lengths around every block boundary up to 64 KiB: k*16 - 1, k*16, k*16 + 1.
_BOUNDARY_LENGTHS = sorted(
    {max(0, b + d) for b in [16 * k for k in range(0, 4097, 1)] for d in (-1, 0, 1)}
    & set(range(0, 65537))
)


@st.composite
def plaintexts(draw: st.DrawFn) -> bytes:
    """0..64 KiB; small sizes drawn byte by byte, large ones from a seeded generator (fast)."""
    kind = draw(st.sampled_from(["small", "boundary", "large"]))
    if kind == "small":
        return draw(st.binary(max_size=100))
    length = (
        draw(st.sampled_from(_BOUNDARY_LENGTHS))
        if kind == "boundary"
        else draw(st.integers(0, 65536))
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return random.Random(seed).randbytes(length)
