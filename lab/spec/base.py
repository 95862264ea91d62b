"""Building blocks shared by every spec model: strict keys, bilingual text, lab addresses."""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

# The lab never uses an address that could be somebody's real host: documentation
# ranges for the "internet" and private ranges for LANs and NAT insides.
LAB_RANGES = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "2001:db8::/32", "fc00::/7",
))
LAB_RANGES_TEXT = ", ".join(str(n) for n in LAB_RANGES)


class Spec(BaseModel):
    """Base of every spec section: an unknown key is an error that lists the allowed ones."""

    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = sorted(f.alias or name for name, f in cls.model_fields.items())
            for key in data:
                if key not in allowed:
                    raise PydanticCustomError(
                        "unknown_key", "unknown key '{key}'; allowed keys: {allowed}",
                        {"key": str(key), "allowed": ", ".join(allowed)})
        return data


class Text(Spec):
    """Every text shown to people exists in English and Chinese."""

    en: str
    zh: str

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


def _in_lab_ranges(value: str, what: str) -> None:
    addr = ipaddress.ip_interface(value).ip
    if not any(addr in net for net in LAB_RANGES):
        raise PydanticCustomError(
            "outside_lab", "{what} {value} is outside the lab's ranges; allowed: {ranges}",
            {"what": what, "value": value, "ranges": LAB_RANGES_TEXT})


def _interface(value: Any) -> str:
    if not isinstance(value, str) or "/" not in value:
        raise PydanticCustomError("cidr", "expected an address with prefix length, e.g. 10.1.0.1/24")
    try:
        ipaddress.ip_interface(value)
    except ValueError as exc:
        raise PydanticCustomError("cidr", "not an address/prefix: {err}", {"err": str(exc)}) from None
    _in_lab_ranges(value, "address")
    return value


def _address(value: Any) -> str:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        raise PydanticCustomError("ip", "not an IP address: {value}", {"value": str(value)}) from None
    _in_lab_ranges(str(value), "address")
    return str(value)


def _network(value: Any) -> str:
    try:
        return str(ipaddress.ip_network(str(value), strict=True))
    except ValueError as exc:
        raise PydanticCustomError("network", "not a network: {err}", {"err": str(exc)}) from None


def _route_dst(value: Any) -> str:
    if value == "default":
        return value
    net = _network(value)
    _in_lab_ranges(net, "route destination")
    return net


IfaceAddr = Annotated[str, BeforeValidator(_interface)]
IpAddr = Annotated[str, BeforeValidator(_address)]
Network = Annotated[str, BeforeValidator(_network)]
RouteDst = Annotated[str, BeforeValidator(_route_dst)]

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,11}$")
_IFNAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$")


def _node_name(value: str) -> str:
    if not _NAME.match(value):
        raise PydanticCustomError(
            "name", "node name '{value}': lower-case letters, digits and '-', at most 12, starting with a letter",
            {"value": value})
    return value


def _if_name(value: str) -> str:
    if not _IFNAME.match(value):
        raise PydanticCustomError(
            "ifname", "interface name '{value}': letters, digits, '_.-', at most 15, starting with a letter",
            {"value": value})
    return value


NodeName = Annotated[str, AfterValidator(_node_name)]
IfName = Annotated[str, AfterValidator(_if_name)]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value: float | int | str) -> float:
    """strongSwan-style durations: 30, '30s', '10m', '4h', '1d'."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(value)
    return float(match.group(1)) * _UNITS[match.group(2)]


def _duration(value: Any) -> float:
    if isinstance(value, bool):
        raise PydanticCustomError("duration", "expected a duration such as 30, '30s', '10m', '4h'")
    try:
        result = seconds(value)
    except (ValueError, AttributeError, TypeError):
        raise PydanticCustomError(
            "duration", "'{value}' is not a duration; use a number of seconds or 30s, 10m, 4h, 1d",
            {"value": str(value)}) from None
    if result < 0:
        raise PydanticCustomError("duration", "a duration cannot be negative")
    return result


Duration = Annotated[float, BeforeValidator(_duration)]
