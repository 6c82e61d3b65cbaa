"""Import paths of contrasent 0.1 that moved when the package became one folder per pipeline stage.

``import contrasent.model_io`` (and every other path in :data:`MOVED`) still works for one release: it
warns with a ``DeprecationWarning`` naming the new path and returns the new module itself (the same
object, so attributes set through either name are seen through both). Remove after the next release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

# old module path -> new module path
MOVED: dict[str, str] = {
    "contrasent.encoder": "contrasent.models.encoder",
    "contrasent.config": "contrasent.models.config",
    "contrasent.pooling": "contrasent.models.pooling",
    "contrasent.padding_free": "contrasent.models.padding_free",
    "contrasent.model_io": "contrasent.models.folders",
    "contrasent.model_card": "contrasent.models.card",
    "contrasent.hub": "contrasent.models.hub",
    "contrasent.metrics": "contrasent.losses.geometry",
    "contrasent.training.false_negatives": "contrasent.losses.masks",
    "contrasent.mining": "contrasent.search.mining",
    "contrasent.serve": "contrasent.search.serve",
    "contrasent.mining_cli": "contrasent.cli.mine",
    "contrasent.cli_search": "contrasent.cli.search",
    "contrasent.evaluation.readers": "contrasent.evaluation",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of :data:`MOVED` and loads each as its new module, with a warning."""

    def __init__(self) -> None:
        # old path -> the new module's own spec, between create_module and exec_module (keyed, not one
        # attribute, so that two threads importing two old paths cannot swap them)
        self._own_specs: dict[str, importlib.machinery.ModuleSpec] = {}

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old path will be removed in the next release",
                      DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._own_specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias's spec on the shared module object: give it back its own.
        module.__spec__ = self._own_specs.pop(module.__spec__.name)


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
