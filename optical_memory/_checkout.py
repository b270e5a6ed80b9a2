"""Make ``renderers/``, ``model/`` and ``integrations/`` importable from a source checkout.

``pyproject.toml`` installs those top-level folders as ``optical_memory.renderers`` and
friends. Uninstalled, right after ``git clone``, Python finds ``optical_memory/`` from the
repository root but not its siblings; this finder maps exactly those three names and
nothing else, and does nothing once the package is installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import MutableSequence, Sequence
from pathlib import Path
from types import ModuleType

SIBLINGS = ("renderers", "model", "integrations")


class _SiblingFinder(importlib.abc.MetaPathFinder):
    def __init__(self, package: str, root: Path) -> None:
        self._package = package
        self._root = root

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != self._package or name not in SIBLINGS:
            return None
        init = self._root / name / "__init__.py"
        return importlib.util.spec_from_file_location(
            fullname, init, submodule_search_locations=[str(init.parent)]
        )


def expose_sibling_packages(package: str, package_path: MutableSequence[str]) -> None:
    """Install the sibling finder when ``package`` runs from a source checkout."""
    here = Path(package_path[0])
    root = here.parent
    installed = all((here / name).is_dir() for name in SIBLINGS)
    in_checkout = (root / "pyproject.toml").is_file() and (root / "renderers").is_dir()
    if installed or not in_checkout:
        return
    if not any(isinstance(finder, _SiblingFinder) for finder in sys.meta_path):
        sys.meta_path.append(_SiblingFinder(package, root))
