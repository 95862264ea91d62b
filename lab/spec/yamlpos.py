"""YAML documents that remember where each key came from.

pydantic reports errors by path (`ipsec.gw1.connections.site.proposals.0`); the
composed node tree turns such a path back into a line of the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lab.spec.errors import Problem, SpecError


class Document:
    def __init__(self, path: Path, data: Any, root: yaml.Node | None):
        self.path = path
        self.data = data
        self._root = root

    def line(self, loc: tuple[Any, ...]) -> int | None:
        """Line of the deepest node on `loc` that exists in this file (1-based)."""
        node, line = self._root, None
        if node is not None:
            line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
                if match is None:
                    break
                line = match[0].start_mark.line + 1
                node = match[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def has(self, loc: tuple[Any, ...]) -> bool:
        value = self.data
        for part in loc:
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and isinstance(part, int) and part < len(value):
                value = value[part]
            else:
                return False
        return True

    def problem(self, loc: tuple[Any, ...], message: str) -> Problem:
        return Problem(self.path, self.line(loc), dotted(loc), message)


class Extended(Document):
    """A scenario that `extends` another: its data is the merge; a problem is located in the
    child where the child wrote that key (or appended to it with `key+`), else in the parent."""

    def __init__(self, child: Document, parent: Document, data: Any):
        super().__init__(child.path, data, None)
        self.child, self.parent = child, parent

    def problem(self, loc: tuple[Any, ...], message: str) -> Problem:
        if self.child.has(loc):
            return self.child.problem(loc, message)
        if loc and isinstance(loc[0], str):
            for key in (loc[0], f"{loc[0]}+"):
                if key in self.child.data:
                    return Problem(self.child.path, self.child.line((key,)), dotted(loc), message)
        return self.parent.problem(loc, message)


def dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _duplicate_keys(node: yaml.Node, path: Path) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in seen:
                problems.append(Problem(path, line, str(key.value),
                                        f"duplicate key (first at line {seen[key.value]})"))
            seen.setdefault(key.value, line)
            problems += _duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems += _duplicate_keys(item, path)
    return problems


def load(path: Path) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([Problem(path, None, "", f"cannot read file: {exc.strerror}")]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SpecError([Problem(path, line, "", f"invalid YAML: {exc.problem or exc.context}")]) from None
    if root is not None:
        dups = _duplicate_keys(root, path)
        if dups:
            raise SpecError(dups)
    if not isinstance(data, dict):
        raise SpecError([Problem(path, 1, "", "expected a mapping of keys at the top of the file")])
    return Document(path, data, root)
