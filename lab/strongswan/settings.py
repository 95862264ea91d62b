"""strongSwan's settings syntax (strongswan.conf, swanctl.conf), read back after rendering.

The renderer quotes every value; this reader proves it: a rendered file is parsed the
way charon's lexer reads it (src/libstrongswan/settings/settings_lexer.l: an unquoted
value ends at a newline, '#' or '}', quoted values know \\-escapes, `include` is a
directive) and every key it finds must be one the lab writes. So no value a scenario
provides can add `start-scripts`, `updown`, `include` or any other key, whatever slipped
past validation.
"""
from __future__ import annotations

import re

_NAME = re.compile(r'[^#{}:.,="\r\n\t ]+')
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


class SettingsError(ValueError):
    pass


def keys(text: str) -> dict[str, str]:
    """Every key of the file as a dotted path (sections.key) with its value; `include`
    directives appear as the key `include` of their section."""
    out: dict[str, str] = {}
    sections: list[str] = []
    i, n = 0, len(text)

    def skip_blank(i: int) -> int:
        while i < n:
            if text[i] in " \t\r\n":
                i += 1
            elif text[i] == "#":
                while i < n and text[i] != "\n":
                    i += 1
            else:
                break
        return i

    while True:
        i = skip_blank(i)
        if i >= n:
            break
        if text[i] == "}":
            if not sections:
                raise SettingsError("unbalanced '}'")
            sections.pop()
            i += 1
            continue
        match = _NAME.match(text, i)
        if not match:
            raise SettingsError(f"unexpected {text[i]!r} at offset {i}")
        name, i = match.group(), match.end()
        if name == "include" and i < n and text[i] in " \t":
            value, i = _value(text, i)
            out[".".join([*sections, "include"])] = value
            continue
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == "{":
            sections.append(name)
            i += 1
        elif i < n and text[i] == ":":
            raise SettingsError(f"section reference after '{name}'")  # never rendered by the lab
        elif i < n and text[i] == "=":
            value, i = _value(text, i + 1)
            out[".".join([*sections, name])] = value
        else:
            raise SettingsError(f"'{name}' is neither a section nor a key")
    if sections:
        raise SettingsError(f"section '{sections[-1]}' is not closed")
    return out


def _value(text: str, i: int) -> tuple[str, int]:
    """A value up to the end of the line, '#' or '}' (left for the caller), with quoted parts."""
    parts: list[str] = []
    n = len(text)
    while i < n and text[i] not in "\n#}":
        if text[i] in " \t\r":
            i += 1
        elif text[i] == '"':
            i += 1
            chunk = []
            while True:
                if i >= n:
                    raise SettingsError("unterminated string")
                if text[i] == '"':
                    i += 1
                    break
                if text[i] == "\\" and i + 1 < n:
                    chunk.append(_ESCAPES.get(text[i + 1], text[i + 1]))
                    i += 2
                elif text[i] == "\r":
                    i += 1
                else:
                    chunk.append(text[i])
                    i += 1
            parts.append("".join(chunk))
        else:
            start = i
            while i < n and text[i] not in ' \t\r\n#}"':
                i += 1
            parts.append(text[start:i])
    return " ".join(parts), i


def quote(value: object) -> str:
    """A value as the renderer writes it: always quoted, backslash and quote escaped."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def unexpected(text: str, allowed: list[str]) -> list[str]:
    """Keys of a rendered file that match none of the `allowed` regexes (whole dotted paths)."""
    patterns = [re.compile(p) for p in allowed]
    return [key for key in keys(text) if not any(p.fullmatch(key) for p in patterns)]
