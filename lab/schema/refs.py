"""What a step or check refers to by name, declared by the kind itself and checked at load.

Each kind lists its references (`refs()`), so a new kind brings its own and
lab.schema.references resolves them all alike: nodes and their roles, captures, monitors,
the SAs of a gateway, changes of a gateway's configuration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NodeRef:
    path: tuple
    node: str
    roles: frozenset[str] | None = None  # roles the node must have (None: any)


@dataclass(frozen=True)
class InterfaceRef:
    """An interface of a node (a link step takes it down or up)."""

    path: tuple
    node: str
    intf: str


@dataclass(frozen=True)
class CaptureRef:
    path: tuple
    name: str


@dataclass(frozen=True)
class MonitorRef:
    path: tuple
    name: str


@dataclass(frozen=True)
class SaRef:
    """An IKE_SA (connection) and/or CHILD_SA of a gateway's configuration at that point."""

    path: tuple
    node: str
    ike: str | None
    child: str | None


@dataclass(frozen=True)
class ConfigPatch:
    """A change of a gateway's strongSwan configuration, checked against the configuration it meets."""

    path: tuple
    node: str
    patch: dict[str, Any]


@dataclass(frozen=True)
class KernelChange:
    """A change of a node's routes, rules or interface sysctls (lab.schema.routing), checked
    against what the node holds at that point of the phase. `what`: route, rule or sysctl."""

    path: tuple
    node: str
    what: str
    action: str  # add, replace, delete; set for a sysctl
    change: Any  # the Route, the PolicyRule, the sysctl key


@dataclass(frozen=True)
class Listener:
    """A TCP server a step starts on the node: one address and port can have one. `crls`: it
    publishes the scenario's CRLs (else files of its own)."""

    path: tuple
    node: str
    address: str
    port: int
    crls: bool = True


@dataclass(frozen=True)
class RelayRef:
    """What the node's TCP relay does (its log): the node carries IKE over TCP (tcp_encap)."""

    path: tuple
    node: str


@dataclass(frozen=True)
class RulesetRef:
    """An nft ruleset loaded on the node: all of a scenario's rulesets share a budget of characters."""

    path: tuple
    node: str
    chars: int


Ref = NodeRef | InterfaceRef | CaptureRef | MonitorRef | SaRef | ConfigPatch | KernelChange | Listener | RelayRef | RulesetRef


def nested(prefix: tuple, refs: list[Ref]) -> list[Ref]:
    """References of an embedded model (an await step's check), under the embedding field."""
    return [type(r)(prefix + r.path, *[getattr(r, f) for f in r.__dataclass_fields__ if f != "path"]) for r in refs]
