"""Value types of scenario and topology files, each checked against what it may be.

Scenario files are untrusted (README, "The lab stays inside its namespaces"). Every string
that reaches a configuration file, a command line, a file name or a regex has one of the
types here and is refused at load, with what is allowed: names are identifiers, addresses
lie in the lab's ranges, IKE identities and proposals follow strongSwan's grammar, log
patterns compile under RE2 (linear time), durations are finite and bounded. The renderers
escape what they write as well; refusing at load, with file and line, comes first.
"""
from __future__ import annotations

import ipaddress
import math
import posixpath
import re
from typing import Annotated, Any, Callable

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from lab.schema import ike, nftsyntax

# The lab never uses an address that could be somebody's real host: documentation
# ranges for the "internet" and private ranges for LANs and NAT insides.
LAB_RANGES = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "2001:db8::/32", "fc00::/7",
))
LAB_RANGES_TEXT = ", ".join(str(n) for n in LAB_RANGES)
TEN_YEARS = 10 * 365 * 86400
MAX_NFT_CHARS = 65536  # one ruleset


class FileModel(BaseModel):
    """Base of every model of what a file says. Every unknown key of a mapping is reported
    (not only the first) with the keys allowed there, alongside the other problems."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        allowed = sorted(f.alias or name for name, f in cls.model_fields.items())
        unknown = [k for k in data if k not in allowed]
        if not unknown:
            return handler(data)
        details = [InitErrorDetails(type=PydanticCustomError(
            "unknown_key", "unknown key '{key}'; allowed keys: {allowed}",
            {"key": _shown(k), "allowed": ", ".join(allowed)}), loc=(str(k),), input=data[k]) for k in unknown]
        try:
            handler({k: v for k, v in data.items() if k not in unknown})
        except ValidationError as exc:
            details += [InitErrorDetails(type=PydanticCustomError(e["type"], "{message}", {"message": e["msg"]}),
                                         loc=e["loc"], input=e.get("input")) for e in exc.errors()]
        raise ValidationError.from_exception_data(cls.__name__, details)


def _shown(value: Any, limit: int = 60) -> str:
    """A value as an error message quotes it: one line (control characters escaped), bounded."""
    text = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], str(value))
    return text if len(text) <= limit else text[:limit] + "..."


def _invalid(value: Any, what: str, allowed: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", "'{value}' is not {what}; allowed: {allowed}",
                               {"value": _shown(value), "what": what, "allowed": allowed})


def _text(value: Any, what: str, allowed: str) -> str:
    if not isinstance(value, str):
        raise _invalid(value, what, allowed)
    return value


def _matcher(regex: str, what: str, allowed: str, forbidden: frozenset[str] = frozenset()) -> Callable[[Any], str]:
    compiled = re.compile(regex)

    def check(value: Any) -> str:
        if not compiled.fullmatch(_text(value, what, allowed)) or value.lower() in forbidden:
            raise _invalid(value, what, allowed)
        return value
    return check


def matching(regex: str, what: str, allowed: str, forbidden: frozenset[str] = frozenset()) -> Any:
    """A string type that must match `regex` (whole)."""
    return Annotated[str, BeforeValidator(_matcher(regex, what, allowed, forbidden))]


# -- names --------------------------------------------------------------------------
# `include` is a directive of strongSwan's config syntax, never a section name; no name
# holds '%' (swanctl formats section paths printf-style) or anything but [A-Za-z0-9_-].
Identifier = matching(r"[A-Za-z][A-Za-z0-9_-]{0,31}", "a name",
                      "a letter, then letters, digits, '_' or '-', at most 32 characters", frozenset({"include"}))
NodeName = matching(r"[a-z][a-z0-9-]{0,11}", "a node name",
                    "a lower-case letter, then lower-case letters, digits or '-', at most 12 characters")
IfName = matching(r"[a-zA-Z][a-zA-Z0-9_-]{0,14}", "an interface name",
                  "a letter, then letters, digits, '_' or '-', at most 15 characters")
ScenarioName = matching(r"[a-z0-9][a-z0-9-]{0,47}", "a scenario name",
                        "lower-case letters, digits and '-', at most 48 characters")
CaseFile = matching(r"[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*\.txt", "a case file name",
                    "the file name of a case write-up such as psk.zh.txt (no folders)")
# Shown as a link in the report: http(s) only (never javascript: or file:), printable ASCII
# without spaces, quotes or angle brackets.
WebUrl = matching(r"https?://[!#-;=?-~]{1,500}", "a web address",
                  "http:// or https:// then at most 500 printable characters without spaces, quotes or <>")


# -- text ---------------------------------------------------------------------------
def _bounded(limit: int, what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        value = _text(value, what, f"text of at most {limit} characters")
        if len(value) > limit:
            raise PydanticCustomError("too_long", "{what} of {n} characters; allowed: at most {limit}",
                                      {"what": what, "n": len(value), "limit": limit})
        return value
    return check


def bounded_text(limit: int, what: str = "text") -> Any:
    """Free text (shown, never run) of at most `limit` characters."""
    return Annotated[str, BeforeValidator(_bounded(limit, what))]


Prose = bounded_text(8000)


class Text(FileModel):
    """Every text shown to people exists in English and Chinese."""

    en: Prose
    zh: Prose

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


class Vendor(FileModel):
    """Commands as a vendor's CLI has them (a case's fault and fix, a fault class's fix): shown, never run."""

    platform: bounded_text(100, "a platform name")
    commands: Prose


# -- addresses ----------------------------------------------------------------------
def _in_lab_ranges(value: str, what: str) -> None:
    addr = ipaddress.ip_interface(value).ip
    if not any(addr in net for net in LAB_RANGES):
        raise PydanticCustomError("outside_lab", "{what} {value} is outside the lab's ranges; allowed: {ranges}",
                                  {"what": what, "value": value, "ranges": LAB_RANGES_TEXT})


def _no_scope(value: Any) -> str:
    text = str(value)
    if "%" in text:  # an IPv6 scope id: text that would ride along into commands
        raise _invalid(text, "an address", "an IPv4 or IPv6 address without a scope id")
    return text


def _interface(value: Any) -> str:
    text = _no_scope(value)
    if "/" not in text:
        raise _invalid(text, "an address with prefix length", "an address/prefix such as 10.1.0.1/24")
    try:
        ipaddress.ip_interface(text)
    except ValueError as exc:
        raise _invalid(text, "an address/prefix", f"an address/prefix such as 10.1.0.1/24 ({exc})") from None
    _in_lab_ranges(text, "address")
    return text


def lab_address(value: Any) -> str:
    """An IP address of the lab's ranges, without a scope id."""
    text = _no_scope(value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise _invalid(text, "an IP address", "an IPv4 or IPv6 address such as 10.1.0.10") from None
    _in_lab_ranges(text, "address")
    return text


def _network(value: Any) -> str:
    text = _no_scope(value)
    try:
        net = str(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        raise _invalid(text, "a network", f"a network address/prefix such as 10.1.0.0/24 ({exc})") from None
    _in_lab_ranges(net, "network")
    return net


def _route_dst(value: Any) -> str:
    return "default" if value == "default" else _network(value)


def _peer_address(value: Any) -> str:
    return "%any" if value == "%any" else lab_address(value)


def _selector(value: Any) -> str:
    if value == "dynamic":
        return value
    try:
        return _network(value)
    except PydanticCustomError as exc:
        if exc.type != "invalid":
            raise  # outside the lab's ranges: that message says it
        raise _invalid(value, "a traffic selector", "a network address/prefix such as 10.1.0.0/24, or dynamic (the "
                                                    "IKE address or the virtual IP)") from None


def _pool(value: Any) -> str:
    """A virtual IP pool as swanctl.conf's `addrs` has it: a network, or a range first-last."""
    text = _no_scope(value)
    if "-" not in text:
        return _network(text)
    first, _, last = text.partition("-")
    low, high = lab_address(first.strip()), lab_address(last.strip())
    if ipaddress.ip_address(low).version != ipaddress.ip_address(high).version \
            or ipaddress.ip_address(low) > ipaddress.ip_address(high):
        raise _invalid(text, "an address range", "first-last of one family, first not above last, such as "
                                                  "10.99.0.1-10.99.0.20")
    return f"{low}-{high}"


def _virtual_ip(value: Any) -> str:
    """What a client asks a pool for: 0.0.0.0 (or ::) for any address, else one of the lab's."""
    return value if value in ("0.0.0.0", "::") else lab_address(value)


IfaceAddr = Annotated[str, BeforeValidator(_interface)]
IpAddr = Annotated[str, BeforeValidator(lab_address)]
Prefix = Annotated[str, BeforeValidator(_network)]  # an address prefix (10.2.0.0/24); lab.network.Network is the running network
RouteDst = Annotated[str, BeforeValidator(_route_dst)]
PeerAddr = Annotated[str, BeforeValidator(_peer_address)]  # swanctl local_addrs / remote_addrs
TrafficSelector = Annotated[str, BeforeValidator(_selector)]  # a network, or dynamic
PoolAddrs = Annotated[str, BeforeValidator(_pool)]  # swanctl pools.<name>.addrs
VirtualIp = Annotated[str, BeforeValidator(_virtual_ip)]  # swanctl connections.<name>.vips


# -- IKE ----------------------------------------------------------------------------
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_FQDN = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")
_EMAIL = re.compile(rf"(?:\*|[A-Za-z0-9._+-]{{1,64}})@{_LABEL}(?:\.{_LABEL})*")
# RDN types strongSwan's atodn() knows (utils/identification.c); no escaping exists in a DN.
_RDN_TYPES = {"ND", "UID", "DC", "CN", "SN", "SERIALNUMBER", "C", "L", "ST", "STREET", "O", "OU", "T", "D",
              "POSTALADDRESS", "POSTALCODE", "N", "G", "I", "DNQUALIFIER", "DMDNAME", "PSEUDONYM", "ID", "EN",
              "EMPLOYEENUMBER", "E", "EMAIL", "EMAILADDRESS", "UN", "UNSTRUCTUREDNAME", "UA",
              "UNSTRUCTUREDADDRESS", "TCGID"}
_RDN_VALUE = re.compile(r"[A-Za-z0-9 ._@*-]{1,64}")
IDENTITY_ALLOWED = ("%any, an IP address of the lab's ranges, a DNS name (hq.example.net, @hq.example.net, "
                    "*.example.net), an email address (vpn@hq.example.net), or a DN (CN=hq.example.net, O=Lab)")


def is_dn(value: str) -> bool:
    """A DN as strongSwan's atodn() reads it: RDN types it knows, values without separators."""
    parts = [p.strip() for p in value.split(",")]
    for part in parts:
        key, sep, val = part.partition("=")
        if not sep or key.strip().upper() not in _RDN_TYPES or not _RDN_VALUE.fullmatch(val.strip()):
            return False
    return 0 < len(parts) <= 20


def ike_identity(value: Any) -> str:
    text = _text(value, "an IKE identity", IDENTITY_ALLOWED)
    if text == "%any" or (_FQDN.fullmatch(text.removeprefix("@")) and len(text) <= 253):
        return text
    if _EMAIL.fullmatch(text) or ("=" in text and is_dn(text)):
        return text
    try:
        ipaddress.ip_address(_no_scope(text))
    except ValueError:
        raise _invalid(text, "an IKE identity", IDENTITY_ALLOWED) from None
    _in_lab_ranges(text, "identity")
    return text


def _proposal(value: Any) -> str:
    allowed = ("algorithm keywords of strongSwan 5.9.8 joined by '-', such as aes256-sha256-modp2048 or "
               "aes128gcm16-prfsha256-ecp256 (list: lab/schema/data/proposal_keywords.txt)")
    text = _text(value, "a proposal", allowed)
    tokens = text.split("-")
    if text.lower() == "default":
        return text
    unknown = [t for t in tokens if t not in ike.proposal_keywords() or t == "default"]
    if unknown or not text:
        raise PydanticCustomError("proposal", "'{value}' is not a proposal: unknown keyword '{token}'; allowed: {allowed}",
                                  {"value": _shown(text), "token": _shown(unknown[0] if unknown else ""),
                                   "allowed": allowed})
    return text


def _psk(value: Any) -> str:
    allowed = "printable ASCII, 1 to 255 characters"
    text = _text(value, "a pre-shared key", allowed)
    if not 1 <= len(text) <= 255 or not all(" " <= c <= "~" for c in text):
        raise PydanticCustomError("psk", "not a usable pre-shared key; allowed: {allowed}", {"allowed": allowed})
    return text


IkeIdentity = Annotated[str, BeforeValidator(ike_identity)]
Proposal = Annotated[str, BeforeValidator(_proposal)]
PreSharedKey = Annotated[str, BeforeValidator(_psk)]


def _notify(value: Any) -> str:
    text = _text(value, "a notify type", "an IKE notify name")
    if text not in ike.notify_names():
        raise _invalid(text, "an IKE notify type", "IANA / strongSwan notify names such as NO_PROPOSAL_CHOSEN, "
                       "AUTHENTICATION_FAILED, TS_UNACCEPTABLE, INVALID_KE_PAYLOAD, COOKIE "
                       "(list: lab/schema/data/notify_types.txt)")
    return text


NotifyName = Annotated[str, BeforeValidator(_notify)]


def _log_subsystem(value: Any) -> str:
    if value not in ike.LOG_SUBSYSTEMS:
        raise _invalid(value, "a charon log subsystem", ", ".join(ike.LOG_SUBSYSTEMS))
    return value


LogSubsystem = Annotated[str, BeforeValidator(_log_subsystem)]


# -- commands, filters, patterns ----------------------------------------------------------
def _nft(value: Any) -> str:
    text = _bounded(MAX_NFT_CHARS, "an nft ruleset")(value)
    found = nftsyntax.refusal(text)
    if found:
        raise PydanticCustomError("nft", "line {line} of the ruleset: {message}",
                                  {"line": found.line, "message": found.message})
    return text


def _bpf(value: Any) -> str:
    allowed = "a tcpdump (pcap-filter) expression of printable ASCII, at most 1000 characters"
    text = _text(value, "a capture filter", allowed)
    if len(text) > 1000 or not all(" " <= c <= "~" for c in text):
        raise _invalid(text, "a capture filter", allowed)
    from lab import bpf  # libpcap's own compiler, as tcpdump uses it
    error = bpf.compile_error(text)
    if error:
        raise PydanticCustomError("bpf", "capture filter '{value}' does not compile: {error}; allowed: {allowed}",
                                  {"value": _shown(text), "error": error, "allowed": "pcap-filter(7) syntax"})
    return text


def regex_options() -> Any:
    """RE2 as the lab uses it: linear time, Perl classes (\\d, \\w), errors returned, not logged."""
    import re2
    options = re2.Options()
    options.log_errors = False
    return options


def _regex(value: Any) -> str:
    allowed = "an RE2 regular expression (no backreferences or lookaround), at most 1000 characters"
    text = _text(value, "a pattern", allowed)
    if len(text) > 1000:
        raise _invalid(text, "a pattern", allowed)
    import re2  # linear time: no pattern can make a check backtrack for minutes
    try:
        re2.compile(text, regex_options())
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PydanticCustomError("regex", "not a regular expression RE2 accepts: {error}; allowed: {allowed}",
                                  {"error": reason, "allowed": allowed}) from None
    return text


NftRuleset = Annotated[str, BeforeValidator(_nft)]
CaptureFilter = Annotated[str, BeforeValidator(_bpf)]
LogPattern = Annotated[str, BeforeValidator(_regex)]

_SYSCTL = re.compile(r"net(?:\.[A-Za-z0-9_-]+)+")


def sysctl_key(value: Any) -> str:
    allowed = "a per-namespace key: net. then dot-separated plain names (letters, digits, '_', '-')"
    text = _text(value, "a sysctl key", allowed)
    # procps turns '/' into '.' and back: only plain segments, and the path they make stays in /proc/sys/net
    path = posixpath.normpath("/proc/sys/" + text.replace(".", "/"))
    if not _SYSCTL.fullmatch(text) or not path.startswith("/proc/sys/net/"):
        raise _invalid(text, "a namespaced sysctl key", allowed)
    return text


SysctlKey = Annotated[str, BeforeValidator(sysctl_key)]
_sysctl_word = _matcher(r"[A-Za-z0-9 ._:-]{0,64}", "a sysctl value", "numbers and words, at most 64 characters")
SysctlValue = Annotated[str, BeforeValidator(
    lambda v: _sysctl_word(str(v) if isinstance(v, int) and not isinstance(v, bool) else v))]

# -- PKI ----------------------------------------------------------------------------
CommonName = matching(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}", "a common name",
                      "letters, digits, spaces, '.', '_' or '-', at most 64 characters")


def _san(value: Any) -> str:
    allowed = "a DNS name, an email address or an IP address of the lab's ranges"
    text = _text(value, "a subjectAltName", allowed)
    if (_FQDN.fullmatch(text) and not text.startswith("*")) or _EMAIL.fullmatch(text):
        return text
    return lab_address(text)


SubjectAltName = Annotated[str, BeforeValidator(_san)]


# -- time ---------------------------------------------------------------------------
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value: float | int | str) -> float:
    """strongSwan-style durations: 30, '30s', '10m', '4h', '1d'."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise ValueError(value)
    return float(match.group(1)) * _UNITS[match.group(2)]


def seconds_between(low: float, high: float) -> Any:
    """A duration of `low` to `high` seconds: a number, or 30s, 10m, 4h, 1d."""
    allowed = f"{low:g} to {high:g} seconds (a number, or 30s, 10m, 4h, 1d)"

    def check(value: Any) -> float:
        if isinstance(value, bool):
            raise _invalid(value, "a duration", allowed)
        try:
            result = seconds(value)
        except (ValueError, AttributeError, TypeError):
            raise _invalid(value, "a duration", allowed) from None
        if not math.isfinite(result) or not low <= result <= high:
            raise _invalid(value, "a duration in range", allowed)
        return result
    return Annotated[float, BeforeValidator(check)]


Duration = seconds_between(0, TEN_YEARS)  # strongSwan timers
Window = seconds_between(0, 600)  # how long a check observes
Interval = seconds_between(0.01, 60)  # between probes: finer than 10 ms is a busy loop
