"""strongSwan configuration of one lab node, in swanctl.conf / strongswan.conf terms.

Field names follow swanctl.conf so that an engineer who knows strongSwan reads the
scenario files without a glossary; the templates map them one to one.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from lab.spec.base import Duration, Network, Spec

StartAction = Literal["none", "trap", "start", "trap|start"]
DpdAction = Literal["clear", "trap", "restart", "none"]
CloseAction = Literal["none", "trap", "start"]


class Auth(Spec):
    auth: Literal["psk", "pubkey"] = "psk"
    id: str | None = None
    # Local side: certificates (names from the scenario's `pki`) this node proves itself with.
    certs: list[str] = []
    # Remote side: the CAs (names from `pki`) the peer's certificate must chain up to.
    cacerts: list[str] = []


class Child(Spec):
    local_ts: list[Network]
    remote_ts: list[Network]
    esp_proposals: list[str] = ["aes256-sha256"]
    mode: Literal["tunnel", "transport"] = "tunnel"
    start_action: StartAction = "none"
    dpd_action: DpdAction = "clear"
    close_action: CloseAction = "none"
    rekey_time: Duration | None = None
    life_time: Duration | None = None
    rand_time: Duration | None = None


class Connection(Spec):
    version: Literal[1, 2] = 2
    local_addrs: list[str]
    remote_addrs: list[str]
    local_port: int | None = Field(None, ge=1, le=65535)
    remote_port: int | None = Field(None, ge=1, le=65535)
    proposals: list[str] = ["aes256-sha256-modp2048"]
    local: Auth
    remote: Auth
    children: dict[str, Child]
    encap: bool | None = None
    mobike: bool | None = None
    keyingtries: int | None = Field(None, ge=0)
    dpd_delay: Duration | None = None
    dpd_timeout: Duration | None = None
    rekey_time: Duration | None = None
    reauth_time: Duration | None = None
    over_time: Duration | None = None
    rand_time: Duration | None = None


class Secret(Spec):
    ids: list[str] = Field(min_length=1)
    secret: str


class Charon(Spec):
    """strongswan.conf `charon` settings the scenarios tune (timers mostly)."""

    port: int = Field(500, ge=0, le=65535)
    port_nat_t: int = Field(4500, ge=0, le=65535)
    retransmit_timeout: float = Field(4.0, gt=0)
    retransmit_base: float = Field(1.8, ge=1)
    retransmit_tries: int = Field(5, ge=0)
    retransmit_limit: float | None = Field(None, gt=0)
    keep_alive: Duration | None = None
    # charon log levels per subsystem (-1..4), e.g. {default: 1, cfg: 2}
    log: dict[str, int] = {"default": 1}


class IpsecNode(Spec):
    charon: Charon = Charon()
    connections: dict[str, Connection] = {}
    secrets: list[Secret] = []
    # CA certificates (names from `pki`) installed in swanctl/x509ca: roots and intermediates.
    trust: list[str] = []
    # MTU of kernel-libipsec's TUN device ipsec0. libipsec creates it with 1400 and sizes its
    # reads by that: a larger MTU truncates packets, so only lower values are accepted.
    tunnel_mtu: int | None = Field(None, ge=576, le=1400)

    def credential_refs(self) -> tuple[set[str], set[str]]:
        """(certificate names, CA names) this node's configuration refers to."""
        certs = {c for conn in self.connections.values() for c in conn.local.certs}
        cas = set(self.trust) | {c for conn in self.connections.values() for c in conn.remote.cacerts}
        return certs, cas
