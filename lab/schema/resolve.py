"""`${name}` in scenario and topology files: a timer's lab value or a parameter's value.

A value that is only a reference takes the referenced value's type (`dpd_delay: ${dpd}`
is a number); a reference inside a longer string is written into it. Resolution happens
before validation, so a resolved value meets the same types as a written one.
"""
from __future__ import annotations

import re
from typing import Any

from lab.schema.errors import InputError, Problem
from lab.schema.topology import Param
from lab.schema.yamlfile import Document
from lab.visible import visible

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve(doc: Document, data: Any, values: dict[str, Any], loc: tuple, problems: list[Problem]) -> Any:
    if isinstance(data, dict):
        return {k: resolve(doc, v, values, loc + (k,), problems) for k, v in data.items()}
    if isinstance(data, list):
        return [resolve(doc, v, values, loc + (i,), problems) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data
    unknown = [n for n in REFERENCE.findall(data) if n not in values]
    if unknown:
        problems.append(doc.problem(loc, f"unknown reference '${{{unknown[0]}}}'; allowed: timers and parameters "
                                         f"{', '.join(values) or 'none'}"))
        return data
    whole = REFERENCE.fullmatch(data)
    if whole:
        return values[whole.group(1)]
    return REFERENCE.sub(lambda m: as_text(values[m.group(1)]), data)


def as_text(value: Any) -> str:
    """A value as written into text: a whole-second timer as `8`, not `8.0` (nft, sysctl)."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def param_values(doc: Document, declared: dict[str, tuple[Param, Document]], overrides: dict[str, str]) -> dict[str, Any]:
    """Declared defaults, overridden from the command line (`--param port=10443`): a value must be
    of its default's type and range, else a problem where the parameter is declared, naming it
    (an unknown name: in `doc`, the scenario). `declared`: name -> (parameter, file declaring it)."""
    values: dict[str, Any] = {name: p.default for name, (p, _) in declared.items()}
    problems: list[Problem] = []
    for name, text in overrides.items():
        if name not in declared:
            problems.append(doc.problem(("params",), f"--param {visible(name)[:40]}: no such parameter; allowed: "
                                                     f"{', '.join(declared) or 'none'}"))
            continue
        param, where = declared[name]
        try:
            values[name] = param.parse(text)
        except ValueError:
            problems.append(where.problem(("params", name), f"--param {name}={visible(text)[:60]}: not a value this "
                                                          f"parameter takes; allowed: {param.allowed()}"))
    if problems:
        raise InputError(problems)
    return values
