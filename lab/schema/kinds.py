"""Registries of step and check kinds: a kind is one module that registers itself.

A package of kinds (lab.steps, lab.checks) makes one Registry; `discover()` imports every
module of the package, so adding a kind is adding one file. `union()` is the pydantic type
of "any registered kind, told apart by `kind`", with errors that list the kinds.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind")
        return kind if isinstance(kind, str) else None
    return getattr(value, "kind", None)


class Registry:
    def __init__(self, what: str, package: str):
        self.what = what  # "step", "check"
        self.package = package
        self.kinds: dict[str, type] = {}
        self._discovered = False

    def register(self, cls: type) -> type:
        self.kinds[cls.model_fields["kind"].default] = cls
        return cls

    def discover(self) -> dict[str, type]:
        """Import every module of the package once: each registers its kinds."""
        if not self._discovered:
            self._discovered = True
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{self.package}.{module.name}")
        return self.kinds

    def union(self) -> Any:
        kinds = self.discover()
        return Annotated[Union[tuple(Annotated[cls, Tag(tag)] for tag, cls in kinds.items())],
                         Discriminator(_tag, custom_error_type="missing_kind",
                                       custom_error_message=f"missing 'kind'; allowed kinds: {', '.join(kinds)}")]
