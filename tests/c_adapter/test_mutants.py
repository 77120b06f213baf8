"""Every seeded durability mutant of the C adapter builds, and differs from the real adapter.

Each mutant skips exactly one durability point (README.md of the template names the
requirement it breaks); catching them is the job of ``pgkms-conformance run --trace-syscalls``,
which judges durability from the adapter's system calls. Until then this checks that each
variant builds with -Werror, runs, and answers hello like the real adapter.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.c_adapter.build import SOURCE, make, mutant_names
from tests.c_adapter.conftest import Built

README_POINTS = ("BOOT_04", "ROT_04", "ROT_05", "ROT_06", "REC_03", "REC_04", "DISK_07")


@pytest.mark.req(*README_POINTS)
def test_each_durability_mutant_builds_and_speaks_the_protocol(c_adapter: Built) -> None:
    names = mutant_names()
    assert len(names) >= 14
    make(c_adapter.build_dir, "mutants")
    real = c_adapter.binary.read_bytes()
    readme = (SOURCE / "README.md").read_text()
    for name in names:
        binary = c_adapter.build_dir / f"mutant-{name}"
        assert binary.is_file(), name
        assert binary.read_bytes() != real, f"mutant {name} compiled to the real adapter"
        done = subprocess.run(
            [str(binary)],
            input='{"id":0,"op":"hello"}\n{"id":1,"op":"shutdown"}\n',
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert done.returncode == 0, name
        assert '"protocol":1' in done.stdout.splitlines()[0], name
        row = next((line for line in readme.splitlines() if f"`{name}`" in line), "")
        assert any(req in row for req in README_POINTS), f"README names no requirement for {name}"
