"""The crash explorer and the vector generator depend one way only: vectors -> crash.

The graph is read from the source with ``ast``, counting as an import every ``import`` and
``from ... import`` (at any depth, inside functions too) and every load through ``importlib``
or ``__import__`` (``import_module``, ``find_spec``). A load by a name the code computes (the
top-level CLI's table of subcommands) counts as an edge to every module whose full name appears
as a string in that file; inside ``crash`` and ``vectors`` no dynamic load is allowed at all.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pgkms_conformance
import pytest

PACKAGE_DIR = Path(pgkms_conformance.__file__).parent
DYNAMIC_LOADERS = frozenset({"import_module", "find_spec", "__import__"})
COMPUTED = "<a module named at run time>"

pytestmark = pytest.mark.req("VEC_02")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_names(path: Path, package: str) -> Iterator[str]:
    """Every module name the file at ``path`` (in ``package``) imports or loads, and for a load
    by a computed name (``ComputedLoad`` inside it) every string constant of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in DYNAMIC_LOADERS:
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield first.value
            else:
                yield COMPUTED
                yield from (v for v in strings if isinstance(v, str))


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges[name] = {m for m in imported_names(path, package_of(path)) if m in modules}
    return edges


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_crash_package_never_reaches_the_vectors_package() -> None:
    edges = graph()
    crash = [m for m in edges if in_package(m, "pgkms_conformance.crash")]
    assert crash
    for module in crash:
        reached = sorted(
            m for m in reachable(edges, module) if in_package(m, "pgkms_conformance.vectors")
        )
        assert reached == [], f"{module} reaches {reached}"


def test_the_generator_builds_crash_vectors_through_an_ordinary_import() -> None:
    edges = graph()
    family = "pgkms_conformance.vectors.families.crash_recovery"
    assert family in edges["pgkms_conformance.vectors.generate"]
    assert "pgkms_conformance.crash.explorer" in edges[family]


def test_dynamic_loads_are_counted_and_computed_names_refused(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import importlib\n"
        "from . import simfs\n"
        "importlib.import_module('pgkms_conformance.vectors.generate')\n",
        encoding="utf-8",
    )
    found = set(imported_names(probe, "pgkms_conformance.crash"))
    assert {"pgkms_conformance.vectors.generate", "pgkms_conformance.crash.simfs"} <= found
    probe.write_text(
        "import importlib\nTABLE = {'v': 'pgkms_conformance.vectors.cli'}\n"
        "importlib.import_module(TABLE['v'])\n",
        encoding="utf-8",
    )
    found = set(imported_names(probe, "pgkms_conformance"))
    assert {COMPUTED, "pgkms_conformance.vectors.cli"} <= found


def test_the_cli_table_is_followed() -> None:
    edges = graph()
    assert "pgkms_conformance.crash.cli" in edges["pgkms_conformance.cli"]
    assert "pgkms_conformance.vectors.cli" in edges["pgkms_conformance.cli"]


def test_no_module_of_either_package_loads_a_module_dynamically() -> None:
    for package in ("crash", "vectors"):
        for path in (PACKAGE_DIR / package).rglob("*.py"):
            names = set(imported_names(path, package_of(path)))
            assert COMPUTED not in names, path
            assert not {n for n in names if n.startswith("importlib")}, path
