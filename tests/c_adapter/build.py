"""Build the C adapter template (docs/examples/c-adapter) for the tests, dependencies included.

On a fresh Debian machine the build needs gcc, make, libssl-dev and libjansson-dev (and the
syscall-observing harness needs strace). When one is missing and we run as root with apt-get,
they are installed (bounded in time); otherwise the test fails with one line naming what to
install: never a skip, so a machine that cannot build the template is never reported green.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "c-adapter"
BINARY = "pgkms-c-adapter"
APT_SECONDS = 600


@dataclass(frozen=True)
class Dependency:
    package: str  # the Debian package that provides it
    present: bool


class MissingDependencies(Exception):
    """The build cannot run here; the message is the one line saying what to install."""


def _header(name: str) -> bool:
    return any(Path(d, name).is_file() for d in ("/usr/include", "/usr/local/include"))


def _header_anywhere(name: str) -> bool:
    """A header under a multiarch include directory as well (Debian puts some there)."""
    return _header(name) or any(Path("/usr/include").glob(f"*-linux-gnu*/{name}"))


def dependencies() -> list[Dependency]:
    return [
        Dependency("gcc", shutil.which("gcc") is not None or shutil.which("cc") is not None),
        Dependency("make", shutil.which("make") is not None),
        Dependency("libssl-dev", _header_anywhere("openssl/evp.h")),
        Dependency("libjansson-dev", _header_anywhere("jansson.h")),
        Dependency("strace", shutil.which("strace") is not None),
    ]


def _apt_install(packages: list[str]) -> str | None:
    """Install with apt-get; None on success, else why it failed (one line)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    try:
        done = subprocess.run(install, env=env, capture_output=True, timeout=APT_SECONDS)
        if done.returncode != 0:  # stale package lists on a fresh image: refresh once
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=300)
            done = subprocess.run(install, env=env, capture_output=True, timeout=APT_SECONDS)
    except subprocess.TimeoutExpired:
        return f"apt-get did not finish within {APT_SECONDS} s"
    if done.returncode != 0:
        return f"apt-get install exited {done.returncode}"
    return None


def ensure_dependencies() -> None:
    """Install what is missing when we can; raise MissingDependencies when we cannot."""
    missing = [d.package for d in dependencies() if not d.present]
    if not missing:
        return
    can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
    why = _apt_install(missing) if can_install else "not root or no apt-get"
    still = [d.package for d in dependencies() if not d.present]
    if still:
        raise MissingDependencies(
            f"the C adapter needs the Debian packages {' '.join(still)} ({why}): "
            f"install them with `apt-get install {' '.join(still)}`"
        )


def make(build_dir: Path, *targets: str) -> float:
    """Run make in the template with its output in ``build_dir``; the seconds it took."""
    started = time.monotonic()
    done = subprocess.run(
        ["make", "-s", "-j2", "-C", str(SOURCE), f"BUILD={build_dir}", *targets],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"make {' '.join(targets)} failed:\n{done.stdout}{done.stderr}")
    return time.monotonic() - started


def mutant_names() -> list[str]:
    """The MUTANTS of the Makefile, read from it so the list is kept in one place."""
    text = (SOURCE / "Makefile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("MUTANTS ="):
            return line.split("=", 1)[1].split()
    raise RuntimeError("the Makefile declares no MUTANTS")
