"""A log pattern as people read it: `tried \\d+ shared key.* but MAC mismatched` becomes
`tried N shared key … but MAC mismatched`. Only the shapes log patterns use are rewritten;
anything else (groups, optional parts, repetition counts) gives None, and the check's title
then says "a line matching the pattern below" while the pattern itself stays in the detail.
"""
from __future__ import annotations

import re

ANY = "…"
NUMBER = "N"
# (what a piece of pattern looks like, what a reader is shown instead), tried in this order
_PIECES = [
    (re.compile(r"\[(?:0-9|1-9|[0-9]-9)\](?:\[0-9\])?[*+]?|\\d[+*]?"), NUMBER),
    (re.compile(r"(?:\.|\\S|\[\^ \])[*+]\??"), ANY),
    (re.compile(r"(?:\\s| )[+*]|\\s"), " "),
    (re.compile(r"\\([^A-Za-z0-9])"), None),  # an escaped character: itself
    (re.compile(r"(\.)(?![*+?{])"), None),  # any one character, where the reader sees the dot it stands for
]
_PLAIN = re.compile(r"[^\\\[\]()|?*+{}^$]")


def readable(pattern: str) -> str | None:
    """The text a line must contain, for people; None when the pattern is not that simple."""
    branches = _split_alternatives(pattern.removeprefix("^").removesuffix("$"))
    shown = [_branch(b) for b in branches]
    if any(s is None for s in shown):
        return None
    return "” / “".join(s for s in shown if s)


def _split_alternatives(pattern: str) -> list[str]:
    """Top-level `a|b` (outside brackets and after no backslash)."""
    parts, current, depth, escaped = [], "", 0, False
    for char in pattern:
        if escaped:
            current, escaped = current + char, False
            continue
        if char == "\\":
            current, escaped = current + char, True
            continue
        depth += char in "([" and 1 or char in ")]" and -1 or 0
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _branch(pattern: str) -> str | None:
    out, i = "", 0
    while i < len(pattern):
        for regex, shown in _PIECES:
            found = regex.match(pattern, i)
            if found:
                out += found.group(1) if shown is None else shown
                i = found.end()
                break
        else:
            if not _PLAIN.match(pattern, i):
                return None
            out += pattern[i]
            i += 1
    out = re.sub(f"{ANY}(?: ?{ANY})+", ANY, out)
    return re.sub(r" {2,}", " ", out).strip()
