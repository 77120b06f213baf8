"""Swapping a function of ``pgkms_independent`` for a mutated one, wherever it is referenced.

The package imports names with ``from x import y``, so one function can be bound in several
modules; ``rebind`` replaces every binding of the original object in every loaded module of the
package, so the mutation reaches all its callers.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

PACKAGE = "pgkms_independent"
MODULES = (
    "failures",
    "hidden",
    "codec",
    "primitives",
    "entropy",
    "passphrase",
    "disk",
    "keystore",
    "sql",
    "adapter",
)


class SeamMissing(Exception):
    """The implementation no longer has the function a mutant patches."""


def load_all() -> None:
    for name in MODULES:
        importlib.import_module(f"{PACKAGE}.{name}")


def module(name: str) -> Any:
    """A module of the package, typed loosely: mutants poke at internals on purpose."""
    return importlib.import_module(f"{PACKAGE}.{name}")


def original(module: str, name: str) -> Any:
    mod = importlib.import_module(f"{PACKAGE}.{module}")
    try:
        return getattr(mod, name)
    except AttributeError:
        raise SeamMissing(f"{PACKAGE}.{module}.{name} does not exist") from None


def rebind(module: str, name: str, replacement: Any) -> Any:
    """Replace ``module.name`` everywhere in the package; return the original."""
    load_all()
    before = original(module, name)
    for mod_name, mod in list(sys.modules.items()):
        if mod_name != PACKAGE and not mod_name.startswith(PACKAGE + "."):
            continue
        for attr, value in list(vars(mod).items()):
            if value is before:
                setattr(mod, attr, replacement)
    return before


def set_method(module: str, cls: str, name: str, replacement: Any) -> Any:
    """Replace a method on a class; return the original function."""
    klass = original(module, cls)
    before = getattr(klass, name, None)
    if before is None:
        raise SeamMissing(f"{PACKAGE}.{module}.{cls}.{name} does not exist")
    setattr(klass, name, replacement)
    return before
