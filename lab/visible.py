"""Text from strangers made safe to show: every character that could act on a terminal or a
reader instead of being read is written out visibly.

Scenario files, charon logs, file names and captures are untrusted. On a terminal an ESC
starts a control sequence (an OSC 52 clipboard write, a window title, a cleared screen, a
line that paints "HEALTHY" over a failure); CR returns to the start of the line; bidi
controls reorder what follows, so text says one thing and reads as another. None of them
has a place in what the lab shows, so each becomes its escape (`\\x1b`, `\\u202e`): the
reader sees that it was there, and nothing acts on it. Newline and tab stay when asked.

Every output writes untrusted text through `visible` (the terminal) or through its
format's own escaping on top of it (HTML, XML, JSON).
"""
from __future__ import annotations

import re
import unicodedata

# Cc: C0, DEL and C1 controls; Cf: format characters (bidi embeddings, overrides and
# isolates, zero-width characters, the BOM); Zl/Zp: line and paragraph separators; Cs:
# lone surrogates (from bytes decoded with surrogateescape); Co: private use.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})
# A quick pass for the common case: printable ASCII and ordinary text need no work.
_MAYBE_HIDDEN = re.compile(r"[^\x20-\x7e\u00a0-\u02ff\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _hidden(char: str) -> bool:
    """Hidden categories, and noncharacters (U+FFFE, U+FFFF and their kin in every plane,
    U+FDD0..U+FDEF): they mean nothing, and XML may not hold U+FFFE and U+FFFF."""
    code = ord(char)
    return unicodedata.category(char) in _HIDDEN_CATEGORIES or code & 0xFFFE == 0xFFFE or 0xFDD0 <= code <= 0xFDEF


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def hidden(text: str, keep: str = "") -> str | None:
    """The first character of `text` that `visible` would write out (not in `keep`), or None:
    what a file may not hold where people will read it."""
    if not _MAYBE_HIDDEN.search(text):
        return None
    return next((c for c in text if c not in keep and _hidden(c)), None)


def visible(text: str, keep: str = "") -> str:
    """`text` with every control, format and separator character written as its escape;
    the characters in `keep` (e.g. "\\n\\t" for a multi-line block) stay as they are."""
    if not _MAYBE_HIDDEN.search(text):
        return text
    return "".join(_escape(c) if c not in keep and _hidden(c) else c for c in text)


def visible_lines(text: str) -> str:
    """A multi-line block (a ruleset, a log excerpt): line breaks and tabs kept, the rest visible."""
    return visible(text, keep="\n\t")
