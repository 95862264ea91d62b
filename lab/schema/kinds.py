"""What the schema is extended with: step kinds, check kinds and the fault classes of `lab diagnose`.

The schema imports none of them. They register into it: each registry names an entry-point
group (pyproject.toml, `[project.entry-points."ipsec_lab.steps"]` and the others), and loads
its group the first time a scenario model needs it. A step or check group names a package;
every module of that package is imported, and each registers its kinds with `@register`, so
adding a kind is adding one file. `union()` is the pydantic type of "any registered kind,
told apart by `kind`", with errors that list the kinds.
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from importlib.metadata import entry_points
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

STEP_GROUP, CHECK_GROUP, FAULT_CLASS_GROUP = "ipsec_lab.steps", "ipsec_lab.checks", "ipsec_lab.fault_classes"


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind")
        return kind if isinstance(kind, str) else None
    return getattr(value, "kind", None)


class Registry:
    def __init__(self, what: str, group: str):
        self.what = what  # "step", "check"
        self.group = group
        self.kinds: dict[str, type] = {}
        self._discovered = False

    def register(self, cls: type) -> type:
        self.kinds[cls.model_fields["kind"].default] = cls
        return cls

    def discover(self) -> dict[str, type]:
        """Import every module of every package of the group once: each registers its kinds."""
        if not self._discovered:
            self._discovered = True
            for point in entry_points(group=self.group):
                package = point.load()
                for module in pkgutil.iter_modules(package.__path__):
                    importlib.import_module(f"{package.__name__}.{module.name}")
            if not self.kinds:
                raise RuntimeError(f"no {self.what} kinds: the entry points '{self.group}' are missing "
                                   "(install the package: pip install, or make setup)")
        return self.kinds

    def union(self) -> Any:
        kinds = self.discover()
        return Annotated[Union[tuple(Annotated[cls, Tag(tag)] for tag, cls in kinds.items())],
                         Discriminator(_tag, custom_error_type="missing_kind",
                                       custom_error_message=f"missing 'kind'; allowed kinds: {', '.join(kinds)}")]


STEPS = Registry("step", STEP_GROUP)
CHECKS = Registry("check", CHECK_GROUP)


@cache
def fault_classes() -> dict[str, int]:
    """Every fault class a scenario's `diagnosis` may name, with its triage step: each entry point
    of the group is a function that returns them."""
    found: dict[str, int] = {}
    for point in entry_points(group=FAULT_CLASS_GROUP):
        found.update(point.load()())
    return found
