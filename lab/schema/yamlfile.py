"""YAML files read safely, remembering where each key came from.

Scenario files are untrusted, so reading one is bounded before anything is built from it:
a size limit, UTF-8 text without control characters, a nesting limit, and a limit on how
far YAML aliases expand (an alias repeats what its anchor holds, so a few lines can stand
for billions of values). Booleans are `true`/`false` only, as in YAML 1.2: `yes`, `on`,
`1:30` and dates stay text, and a key written `yes:` is the key it looks like.

pydantic reports errors by path (`ipsec.gw1.connections.site.proposals.0`); the composed
node tree turns such a path back into a line of the file.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml._yaml import CParser  # libyaml, part of PyYAML's wheels and of Debian's python3-yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import BaseResolver

from lab.schema.errors import InputError, Problem
from lab.visible import hidden

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_VALUES = 100_000  # after expanding aliases
_STR, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"
# What a file may hold besides printable text: tabs and line breaks (CR of CRLF files too, which
# YAML reads as line breaks). Everything else `visible` would write out (controls, bidi and
# zero-width characters, separators) is refused, raw or written as a YAML escape ("\e", "\x85").
_RAW_KEEP, _VALUE_KEEP = "\t\n\r", "\t\n"
_BOM = "\ufeff"


class _Resolver(BaseResolver):
    """YAML 1.2 core scalars: null, true/false, decimal and hex integers, floats; else text."""


for _tag, _regex, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*\.[0-9_]*)(?:[eE][-+]?[0-9]+)?"
                                r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", list("-+0123456789.")),
    ("tag:yaml.org,2002:merge", r"^<<$", ["<"]),
):
    _Resolver.add_implicit_resolver(_tag, re.compile(_regex), _first)

class _Loader(CParser, SafeConstructor, _Resolver):
    """libyaml's parser (a 1 MiB file in well under a second), the safe constructor, our resolver."""

    def __init__(self, text: str):
        CParser.__init__(self, text)
        SafeConstructor.__init__(self)
        _Resolver.__init__(self)


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
                match = next(((k, v) for k, v in node.value if str(_key(k)) == str(part)), None)
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
    """`ipsec.gw1.connections[0]`; a key as written in an untrusted file is shown escaped and cut short."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
            continue
        text = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], str(part))
        text = text if len(text) <= 40 else text[:40] + "..."
        out += f".{text}" if out else text
    return out


def _key(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return SafeConstructor().construct_object(node)
    return None


def read_text(path: Path) -> str:
    """A regular file of at most MAX_BYTES, as UTF-8 text without control characters."""
    def fail(line: int | None, message: str) -> InputError:
        return InputError([Problem(path, line, "", message)])

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the reader
    except OSError as exc:
        raise fail(None, f"cannot read file: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise fail(None, "not a regular file; allowed: a YAML file")
        if info.st_size > MAX_BYTES:
            raise fail(None, f"file is {info.st_size} bytes; allowed: at most {MAX_BYTES} bytes (1 MiB)")
        raw = stream.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise fail(None, f"file is over {MAX_BYTES} bytes; allowed: at most {MAX_BYTES} bytes (1 MiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise fail(line, f"byte 0x{raw[exc.start]:02x} is not UTF-8 text; allowed: a UTF-8 YAML file") from None
    bad = hidden(text.removeprefix(_BOM), _RAW_KEEP)
    if bad:
        raise fail(text.count("\n", 0, text.index(bad)) + 1, f"control character U+{ord(bad):04X} in the text; "
                                                              "allowed: printable text, tabs and newlines")
    return text


def _bounds(text: str, path: Path) -> None:
    """Nesting depth and alias expansion, from the event stream before anything is composed."""
    loader = _Loader(text)
    stack: list[list] = []  # per open collection: [anchor, values so far]
    sizes: dict[str, int] = {}
    total = 0

    def fail(event: yaml.Event, message: str) -> InputError:
        return InputError([Problem(path, event.start_mark.line + 1, "", message)])

    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                stack.append([event.anchor, 1])
                if len(stack) > MAX_DEPTH:
                    raise fail(event, f"nested more than {MAX_DEPTH} levels deep; allowed: at most {MAX_DEPTH}")
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                anchor, size = stack.pop()
                if anchor:
                    sizes[anchor] = size
            elif isinstance(event, yaml.AliasEvent):
                if any(anchor == event.anchor for anchor, _ in stack):
                    raise fail(event, f"alias *{event.anchor} lies inside what it points to (a structure that "
                                      "contains itself); allowed: aliases to finished values")
                if event.anchor not in sizes:
                    continue  # undefined: the composer reports it
                size = sizes[event.anchor]
            elif isinstance(event, yaml.ScalarEvent):
                size = 1
                if event.anchor:
                    sizes[event.anchor] = 1
            else:
                continue
            if stack:
                stack[-1][1] += size
            total += size
            if total > MAX_VALUES or (stack and stack[-1][1] > MAX_VALUES):
                raise fail(event, f"the file expands to more than {MAX_VALUES} values (YAML aliases repeat what "
                                  f"they point to); allowed: at most {MAX_VALUES}")
    finally:
        loader.dispose()


def _node_problems(root: yaml.Node, path: Path) -> list[Problem]:
    """Keys that are not names or come twice, and scalars holding characters the raw text may
    not hold, written as escapes. Each node object once: an alias shares its anchor's node,
    and walking shared nodes as a tree is what makes alias bombs explode."""
    found: list[tuple[yaml.Mark, Problem]] = []

    def add(mark: yaml.Mark, key: str, message: str) -> None:
        found.append((mark, Problem(path, mark.line + 1, key, message)))

    seen_nodes: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
            bad = hidden(node.value, _VALUE_KEEP)
            if bad:
                add(node.start_mark, "", f"control character U+{ord(bad):04X} written as an escape; allowed: "
                                         "printable text, tabs and newlines")
        elif isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key, value in node.value:
                todo.append(key)
                line = key.start_mark.line + 1
                if not isinstance(key, yaml.ScalarNode) or key.tag not in (_STR, _MERGE):
                    shown = str(key.value)[:40] if isinstance(key, yaml.ScalarNode) else "a list or mapping"
                    add(key.start_mark, "", f"key {shown} is not a name (YAML reads it as "
                                            f"{key.tag.rsplit(':', 1)[-1]}); allowed: text keys")
                    continue
                name = _key(key)
                if name in seen and key.value != "<<":
                    add(key.start_mark, str(key.value), f"duplicate key (first at line {seen[name]}); "
                                                        "allowed: each key once")
                seen.setdefault(name, line)
                todo.append(value)
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return [problem for _, problem in sorted(found, key=lambda f: (f[0].line, f[0].column))]


def load(path: Path) -> Document:
    text = read_text(path)
    try:
        _bounds(text, path)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is not None:
                found = _node_problems(root, path)
                if found:
                    raise InputError(found)
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError([Problem(path, line, "", f"invalid YAML: {exc.problem or exc.context}; allowed: YAML 1.2 syntax")]) from None
    except yaml.YAMLError as exc:  # e.g. the reader's own character checks
        raise InputError([Problem(path, None, "", f"invalid YAML: {exc}")]) from None
    except (TypeError, ValueError) as exc:  # a constructor refusing a value (e.g. an unhashable key)
        raise InputError([Problem(path, None, "", f"invalid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise InputError([Problem(path, 1, "", "the file is not a mapping of keys; allowed: key: value lines at the top level")])
    return Document(path, data, root)
