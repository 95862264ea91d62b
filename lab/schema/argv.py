"""The commands a `command` check may run: whole argv shapes per program, each one that only reads.

A scenario file is untrusted, and a command's output lands in result.json and the report.
So an argv is accepted only if it has one of the shapes below from its first word to its
last: the program, its subcommand, then only options that read, each with a value of its
type. Anything else is refused at load: options that read a file (`swanctl --options`,
`nft -f`, `conntrack -o labels`), reach elsewhere (`swanctl --uri`, `ip -n`, `nft -N`
reverse DNS) or change the lab (`conntrack -L --zero`, `ip route flush`), and any word a
shape does not name. Every shape here is run for real by tests/test_argv_shapes.py, and each
of its words is looked up in the program's manual.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Callable

from lab.schema.types import LAB_RANGES, ike_identity, lab_address, sysctl_key

MAX_WORDS = 32


@dataclass(frozen=True)
class Value:
    """What an option's value or a positional word may be."""

    name: str  # as the allowed forms show it: ADDRESS, NAME
    accepts: Callable[[str], bool]
    example: str  # a value that fits a lab built from topologies/site-to-site.yaml (tests, docs)


def _choice(name: str, *words: str) -> Value:
    return Value(name, frozenset(words).__contains__, words[0])


def _regex(name: str, pattern: str, example: str) -> Value:
    compiled = re.compile(pattern)
    return Value(name, lambda text: compiled.fullmatch(text) is not None, example)


def _raises_not(check: Callable[[str], object]) -> Callable[[str], bool]:
    def accepts(text: str) -> bool:
        try:
            check(text)
        except (ValueError, TypeError):
            return False
        return True
    return accepts


def _lab_prefix(text: str) -> None:
    net = ipaddress.ip_network(text, strict=False)
    if "%" in text or not any(net.subnet_of(r) for r in LAB_RANGES if r.version == net.version):
        raise ValueError(text)


def _number(limit: int) -> Callable[[str], bool]:
    return lambda text: re.fullmatch(r"[0-9]{1,10}", text) is not None and int(text) <= limit


NAME = _regex("NAME", r"[A-Za-z][A-Za-z0-9_-]{0,31}", "hq")
CHILD = _regex("NAME", r"[A-Za-z][A-Za-z0-9_-]{0,31}", "net")
NFT_NAME = _regex("NAME", r"[A-Za-z][A-Za-z0-9_-]{0,31}", "probe")
NUMBER = Value("NUMBER", _number(0xFFFFFFFF), "1")
PORT = Value("PORT", lambda t: _number(65535)(t) and int(t) > 0, "500")
ADDRESS = Value("ADDRESS", _raises_not(lab_address), "10.2.0.10")
PREFIX = Value("PREFIX", _raises_not(_lab_prefix), "10.2.0.0/24")
IFNAME = _regex("IFNAME", r"[a-zA-Z][a-zA-Z0-9_-]{0,14}", "wan")
TABLE = Value("TABLE", lambda t: t in ("main", "local", "default", "all") or (_number(252)(t) and int(t) > 0),
              "main")
SYSCTL_KEY = Value("net.KEY", _raises_not(sysctl_key), "net.ipv4.ip_forward")
IDENTITY = Value("IDENTITY", _raises_not(ike_identity), "hq.example.net")
FAMILY = _choice("FAMILY", "inet", "ip", "ip6", "arp", "bridge", "netdev")
IP_PROTOCOL = _choice("PROTOCOL", "udp", "tcp", "icmp", "icmpv6", "esp", "sctp")


@dataclass(frozen=True)
class Option:
    value: Value | None = None  # None: a flag
    requires: tuple[str, ...] = ()  # one of these options must be given too
    example: str | None = None  # where the value's own example does not fit this option

    def example_value(self) -> list[str]:
        return [self.example or self.value.example] if self.value else []


@dataclass(frozen=True)
class Shape:
    """`program [before...] word... [slot or option]...`: each option at most once, options in
    any order after the words, positional slots filled in order (optional ones may be left out),
    and of each `exclusive` group at most one option."""

    program: str
    words: tuple[tuple[str, ...], ...]  # per position, its spellings (show, list)
    slots: tuple[tuple[Value, bool], ...] = ()  # (value, optional)
    options: dict[str, Option] = field(default_factory=dict)
    exclusive: tuple[frozenset[str], ...] = ()
    before: dict[str, Option] = field(default_factory=dict)  # program options before the words

    def usage(self) -> str:
        """The form without the program's options before the subcommand (`refusal` names them once)."""
        parts = [self.program] + (["[OPTIONS]"] if self.before else [])
        parts += ["|".join(spellings) for spellings in self.words]
        parts += [f"[{v.name}]" if optional else v.name for v, optional in self.slots]
        parts += [f"[{name}{' ' + o.value.name if o.value else ''}]" for name, o in self.options.items()]
        return " ".join(parts)

    def matches(self, argv: list[str]) -> bool:
        if not argv or argv[0] != self.program:
            return False
        args, i = argv[1:], 0
        given: set[str] = set()
        while i < len(args) and args[i] in self.before and args[i] not in given:
            given.add(args[i])
            i += 1
        for spellings in self.words:
            if i >= len(args) or args[i] not in spellings:
                return False
            i += 1
        positional: list[str] = []
        while i < len(args):
            option = self.options.get(args[i])
            if option is None:
                positional.append(args[i])
                i += 1
                continue
            if args[i] in given or (option.value and (i + 1 >= len(args) or not option.value.accepts(args[i + 1]))):
                return False
            given.add(args[i])
            i += 2 if option.value else 1
        if any(len(given & group) > 1 for group in self.exclusive):
            return False
        if any(o.requires and not given & set(o.requires) for name, o in self.options.items() if name in given):
            return False
        return _fill(self.slots, positional)


def _fill(slots: tuple[tuple[Value, bool], ...], words: list[str]) -> bool:
    """The positional words fill the slots in order, an optional slot taken or left out."""
    if not slots:
        return not words
    (value, optional), rest = slots[0], slots[1:]
    if words and value.accepts(words[0]) and _fill(rest, words[1:]):
        return True
    return optional and _fill(rest, words)


def _flags(*names: str) -> dict[str, Option]:
    return {name: Option() for name in names}


def _raw_or_pretty(program: str, word: str, **extra: Option) -> Shape:
    return Shape(program, ((word,),), options={**extra, **_flags("--raw", "--pretty")},
                 exclusive=(frozenset({"--raw", "--pretty"}),))


# -- ip (ip(8), ip-route(8), ip-rule(8), ip-address(8), ip-link(8), ip-neighbour(8)) ------------
_IP_BEFORE = _flags("-4", "-6", "-s", "-d", "-o", "-j", "-p", "-br")
_SHOW = ("show", "list")
_ROUTE_TYPE = _choice("TYPE", "unicast", "blackhole", "unreachable", "prohibit", "local", "broadcast", "multicast")
_SCOPE = _choice("SCOPE", "global", "link", "host", "site")
_RTPROTO = _choice("RTPROTO", "kernel", "boot", "static", "dhcp")
_NUD = _choice("STATE", "reachable", "stale", "delay", "probe", "failed", "incomplete", "noarp", "permanent", "all")

IP = (
    Shape("ip", (("route",), _SHOW), slots=((PREFIX, True),), before=_IP_BEFORE, options={
        **{k: Option(PREFIX) for k in ("to", "root", "match", "exact")},
        "table": Option(TABLE), "protocol": Option(_RTPROTO), "scope": Option(_SCOPE), "type": Option(_ROUTE_TYPE),
        "dev": Option(IFNAME), "via": Option(ADDRESS), "src": Option(ADDRESS)},
        exclusive=(frozenset({"to", "root", "match", "exact"}),)),
    Shape("ip", (("route",), ("get",)), slots=((ADDRESS, False),), before=_IP_BEFORE, options={
        **_flags("fibmatch", "connected"), "from": Option(ADDRESS, example="10.1.0.1"), "iif": Option(IFNAME, requires=("from",)),
        "oif": Option(IFNAME), "mark": Option(NUMBER), "ipproto": Option(IP_PROTOCOL),
        "sport": Option(PORT, requires=("ipproto",)), "dport": Option(PORT, requires=("ipproto",))}),
    Shape("ip", (("rule",), _SHOW), before=_IP_BEFORE, options={
        "from": Option(PREFIX), "to": Option(PREFIX), "iif": Option(IFNAME), "oif": Option(IFNAME),
        "fwmark": Option(NUMBER), "pref": Option(NUMBER), "table": Option(TABLE)}),
    Shape("ip", (("address", "addr"), _SHOW), slots=((IFNAME, True),), before=_IP_BEFORE, options={
        "dev": Option(IFNAME), "scope": Option(_SCOPE), "to": Option(PREFIX), "up": Option()}),
    Shape("ip", (("link",), _SHOW), slots=((IFNAME, True),), before=_IP_BEFORE, options={
        "dev": Option(IFNAME), "up": Option()}),
    Shape("ip", (("neigh", "neighbour"), _SHOW), before=_IP_BEFORE, options={
        "to": Option(PREFIX), "dev": Option(IFNAME), "nud": Option(_NUD)}),
)

# -- nft (nft(8): LISTING and the list forms of each object) -----------------------------------
# -N (reverse DNS), -S (/etc/services), -u (/etc/passwd), -f/-I (files), -i (a shell), -e, -c, -o: never
_NFT_BEFORE = _flags("-a", "--handle", "-n", "--numeric", "-j", "--json", "-s", "--stateless", "-y",
                     "--numeric-priority", "-t", "--terse", "-T", "--numeric-time", "-p", "--numeric-protocol")
NFT = (
    Shape("nft", (("list",), ("ruleset", "tables", "chains", "sets", "maps", "counters", "quotas", "limits",
                             "flowtables", "meters")), slots=((FAMILY, True),), before=_NFT_BEFORE),
    Shape("nft", (("list",), ("table",)), slots=((FAMILY, True), (NFT_NAME, False)), before=_NFT_BEFORE),
    # (one flowtable or meter: this kernel has no flowtables, and meters are listed as sets)
    Shape("nft", (("list",), ("chain", "set", "map", "counter", "quota", "limit")),
          slots=((FAMILY, True), (NFT_NAME, False), (NFT_NAME, False)), before=_NFT_BEFORE),
)

# -- conntrack (conntrack(8)): list, count, statistics; never -z/--zero, -D, -F, -E, -R, labels ---
_CT_TABLE = _choice("TABLE", "conntrack", "expect", "dying", "unconfirmed")
_CT_PROTO = ("-p", "--proto")
# each group: one option under its names (conntrack takes it once)
_CT_GROUPS = (
    (Option(_choice("FAMILY", "ipv4", "ipv6")), ("-f", "--family")),
    (Option(_choice("PROTO", "udp", "tcp", "icmp", "icmpv6", "sctp", "gre")), _CT_PROTO),
    *((Option(ADDRESS), names) for names in (("-s", "--src", "--orig-src"), ("-d", "--dst", "--orig-dst"),
                                             ("-r", "--reply-src"), ("-q", "--reply-dst"))),
    *((Option(PORT, requires=_CT_PROTO), names) for names in (("--sport", "--orig-port-src"),
                                                              ("--dport", "--orig-port-dst"),
                                                              ("--reply-port-src",), ("--reply-port-dst",))),
    (Option(NUMBER), ("-m", "--mark")),
    *((Option(), names) for names in (("-n", "--src-nat"), ("-g", "--dst-nat"), ("-j", "--any-nat"))),
    (Option(_choice("FORMAT", "extended", "timestamp", "id", "ktimestamp", "save")), ("-o", "--output")),
)
CONNTRACK = (
    Shape("conntrack", (("-L", "--dump"),), slots=((_CT_TABLE, True),),
          options={name: option for option, names in _CT_GROUPS for name in names},
          exclusive=tuple(frozenset(names) for _, names in _CT_GROUPS if len(names) > 1)),
    Shape("conntrack", (("-C", "--count"),), slots=((_CT_TABLE, True),)),
    Shape("conntrack", (("-S", "--stats"),)),
)

# -- swanctl (swanctl --<command> --help); never --uri, --options (a file), --debug --------------
_OUTPUT = frozenset({"--raw", "--pretty"})
SWANCTL = (
    Shape("swanctl", (("--list-sas",),),
          options={"--ike": Option(NAME), "--ike-id": Option(NUMBER), "--child": Option(CHILD),
                   "--child-id": Option(NUMBER), **_flags("--noblock", "--raw", "--pretty")},
          exclusive=(frozenset({"--ike", "--ike-id"}), frozenset({"--child", "--child-id"}), _OUTPUT)),
    _raw_or_pretty("swanctl", "--list-conns"),
    Shape("swanctl", (("--list-certs",),),
          options={"--subject": Option(IDENTITY),
                   "--type": Option(_choice("TYPE", "x509", "x509_ac", "x509_crl", "ocsp_response", "pubkey")),
                   "--flag": Option(_choice("FLAG", "any", "none", "ca", "aa", "ocsp")),
                   **_flags("--pem", "--raw", "--pretty", "--short", "--utc")},
          exclusive=(frozenset({"--raw", "--pretty", "--short", "--utc"}),)),
    _raw_or_pretty("swanctl", "--list-authorities", **{"--name": Option(NAME)}),
    Shape("swanctl", (("--list-pols",),),
          options={"--child": Option(NAME), **_flags("--trap", "--drop", "--pass", "--raw", "--pretty")},
          exclusive=(_OUTPUT,)),
    _raw_or_pretty("swanctl", "--list-pools", **{"--name": Option(NAME), "--leases": Option()}),
    _raw_or_pretty("swanctl", "--list-algs"),
    _raw_or_pretty("swanctl", "--stats"),
    _raw_or_pretty("swanctl", "--version", **{"--daemon": Option()}),
)

# -- sysctl (sysctl(8)): one per-namespace key, read ----------------------------------------------
SYSCTL = (Shape("sysctl", (), slots=((SYSCTL_KEY, False),), before=_flags("-n")),)

SHAPES: dict[str, tuple[Shape, ...]] = {"ip": IP, "nft": NFT, "conntrack": CONNTRACK, "swanctl": SWANCTL,
                                        "sysctl": SYSCTL}


def refusal(argv: list[str]) -> str | None:
    """Why `argv` is not a command a check may run (with the forms allowed), or None."""
    if len(argv) > MAX_WORDS:
        return f"{len(argv)} words; allowed: at most {MAX_WORDS}"
    shapes = SHAPES.get(argv[0]) if argv else None
    if shapes is None:
        return f"not a program a check may run; allowed: {', '.join(SHAPES)}, with the forms of each"
    if any(shape.matches(argv) for shape in shapes):
        return None
    before = sorted({o for s in shapes for o in s.before})
    return (f"not a read-only form of {argv[0]}; allowed: " + "; ".join(s.usage() for s in shapes)
            + (f" (OPTIONS: {' '.join(before)}, each at most once)" if before else ""))

