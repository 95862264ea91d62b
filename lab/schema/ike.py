"""IKE vocabulary as strongSwan 5.9.8 has it: proposal keywords, notify types, log subsystems.

Read from the data files beside this module (taken from strongSwan's source at tag 5.9.8,
see their headers), so scenario files are checked against what charon really accepts, and
captures and logs are named the way charon names them.
"""
from __future__ import annotations

from functools import cache
from importlib.resources import files

_DATA = files("lab.schema") / "data"  # package data

# The ports IKE uses unless configured otherwise (RFC 7296 2.23: 500, and 4500 once NAT-T floats)
IKE_PORT = 500
NAT_T_PORT = 4500

# charon's logger subsystems (src/libstrongswan/utils/debug.c), and `default`
LOG_SUBSYSTEMS = ("default", "dmn", "mgr", "ike", "chd", "job", "cfg", "knl", "net", "asn", "enc", "tnc",
                  "imc", "imv", "pts", "tls", "app", "esp", "lib")


@cache
def proposal_keywords() -> frozenset[str]:
    """Every token of an IKE or ESP proposal (`aes256`, `sha256`, `modp2048`, ...); case-sensitive."""
    lines = (_DATA / "proposal_keywords.txt").read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@cache
def _notify_table() -> dict[str, dict[int, tuple[str, str]]]:
    """section (ikev2, ikev1, iana) -> number -> (name, short name)."""
    table: dict[str, dict[int, tuple[str, str]]] = {}
    section = ""
    for line in (_DATA / "notify_types.txt").read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            table[section] = {}
        elif line.strip() and not line.startswith("#"):
            number, name, *short = line.split()
            table[section][int(number)] = (name, short[0] if short else name)
    return table


@cache
def notify_names() -> frozenset[str]:
    """Every notify name a check may ask for: strongSwan's long and short names and IANA's."""
    return frozenset(n for section in _notify_table().values() for names in section.values() for n in names)


def notify_name(number: int, ikev1: bool = False) -> str:
    """The name charon logs for a notify type; IKEv1 numbers below 16384 differ from IKEv2's."""
    table = _notify_table()
    sections = ("ikev1", "ikev2", "iana") if ikev1 else ("ikev2", "iana", "ikev1")
    for section in sections:
        if number in table.get(section, {}):
            return table[section][number][0]
    return f"({number})"  # as charon logs a type it does not know


def notify_short_name(name: str) -> str:
    """strongSwan's short name (`NATD_S_IP`), as its message summaries print it."""
    for section in _notify_table().values():
        for long_name, short in section.values():
            if long_name == name:
                return short
    return name
