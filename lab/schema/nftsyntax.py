"""nftables rulesets read the way nft's own scanner reads them, to refuse what may not be in one.

A ruleset is loaded with `nft -f -` inside a node, so nothing in it may reach past the node:
no `include` (nft would read a host file, and print its first line in an error), and no
command but those that build a ruleset (`monitor` would block forever, `list` and `export`
only print). Line-wise regexes cannot tell: in nft (src/scanner.l) a quoted string runs from
one `"` to the next, across lines and without escapes, and `#` starts a comment to the end
of the line only outside a string. So a `define` whose string holds a newline, or a `#`
inside a string, makes a line say something else than it seems to. This scanner splits the
text exactly where nft does (strings, comments, line continuations, statement ends, braces)
and judges only what nft reads as code.

Every piece of code is searched for `include` as a substring, not as a word: nft's scanner
has number, address and time tokens that end in the middle of what looks like one word
(`1dinclude` is the time `1d`, then the keyword), so a word-wise search could be fooled.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# What starts a statement at the top level of a ruleset: commands that build or change a
# ruleset (`add` may be left out before an object: `table inet x { ... }`), and variables.
COMMANDS = frozenset({
    "add", "create", "insert", "replace", "delete", "destroy", "flush", "reset", "rename",
    "table", "chain", "rule", "set", "map", "element", "flowtable", "counter", "quota", "limit", "ct",
    "secmark", "synproxy", "define", "redefine", "undefine",
})
ALLOWED = ("statements that build the ruleset (" + ", ".join(sorted(COMMANDS)) + "), with quoted strings "
           "and # comments; no include, list, monitor, export, import or describe")

# nft's scanner: {quotedstring} \"[^"]*\", {comment} #.*$, \\{newline} continues a line; a `"`
# without its closing one is no string (nft: junk). Anything else is code, cut at what ends a
# statement (newline, ';') and at braces.
_PIECE = re.compile(r'(?P<string>"[^"]*")|(?P<unterminated>")|(?P<comment>#[^\n]*)|(?P<continued>\\\n)'
                    r'|(?P<end>[\n;])|(?P<open>\{)|(?P<close>\})|(?P<code>[^"#\\\n;{}]+|\\)')
# nft's {string}: the first word of a statement
_WORD = re.compile(r"[A-Za-z_.][A-Za-z0-9/\-_.]*")
_INCLUDE = re.compile("include", re.IGNORECASE)


@dataclass(frozen=True)
class Refusal:
    line: int  # of the ruleset, 1-based
    message: str


@lru_cache(maxsize=256)
def refusal(text: str) -> Refusal | None:
    """Why nft must not be given `text`, or None. Cached: YAML aliases repeat one ruleset."""
    depth, statement_start, line = 0, True, 1
    for piece in _PIECE.finditer(text):
        kind, value = piece.lastgroup, piece.group()
        if kind == "unterminated":
            return Refusal(line, 'a string opened with " is never closed; allowed: strings closed on a later " '
                                 "(nft's strings have no escapes)")
        if kind == "code":
            found = _INCLUDE.search(value)
            if found:
                return Refusal(line, "an nft ruleset may not 'include' files; allowed: the rules themselves, "
                                     "written in the ruleset")
            if statement_start and value.strip():
                statement_start = False
                word = _WORD.match(value.lstrip())
                if depth == 0 and (word is None or word.group() not in COMMANDS):
                    shown = (word.group() if word else value.strip())[:30]
                    return Refusal(line, f"'{shown}' is not a statement of a ruleset; allowed: {ALLOWED}")
        elif kind == "string" and statement_start and depth == 0:
            return Refusal(line, f"a statement starts with a string; allowed: {ALLOWED}")
        elif kind in ("end", "open", "close"):
            statement_start = True
            depth = depth + 1 if kind == "open" else max(0, depth - 1) if kind == "close" else depth
        line += value.count("\n")
    return None
