"""A process's own peak memory, measured so that its parent's does not leak into it.

On Linux ``ru_maxrss`` (``getrusage``, ``wait4``) survives ``execve``: a process forked from a
300 MiB pytest reports at least 300 MiB however little it uses itself. ``VmHWM`` in
``/proc/self/status`` belongs to the address space, which ``execve`` replaces, so it is the
figure a memory bound must be checked against.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run a module as ``python -m`` would, and write its VmHWM (KiB) to the file named in argv[1]
# when it exits, however it exits (SystemExit included: atexit handlers run for it). It reads
# /proc itself rather than importing ``procs.peak_rss_kib``: the import would count in the
# figure it measures.
_WRAPPER = """
import atexit, runpy, sys
report, module = sys.argv[1], sys.argv[2]
def _record() -> None:
    with open("/proc/self/status") as status:
        kib = next(l.split()[1] for l in status if l.startswith("VmHWM:"))
    with open(report, "w") as out:
        out.write(kib)
atexit.register(_record)
sys.argv = [module] + sys.argv[3:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def module_command_reporting_peak(report: Path, module: str, *args: str) -> list[str]:
    """A command running ``python -P -m module args`` that writes its own peak RSS to ``report``."""
    return [sys.executable, "-P", "-c", _WRAPPER, str(report), module, *args]


def reported_peak_kib(report: Path) -> int:
    """The figure a command built by :func:`module_command_reporting_peak` wrote."""
    return int(report.read_text())
