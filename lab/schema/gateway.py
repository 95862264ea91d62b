"""strongSwan configuration of one IPsec gateway, in swanctl.conf / strongswan.conf terms.

Field names follow swanctl.conf so that an engineer who knows strongSwan reads the
scenario files without a glossary; the templates map them one to one. Every value is
typed by its grammar (lab.schema.types): nothing a scenario writes can add a key, a
section or a directive to the rendered files.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from lab.schema.ike import IKE_PORT, NAT_T_PORT
from lab.schema.merge import deep_merge
from lab.schema.types import (Duration, FileModel, Identifier, IkeIdentity, LogSubsystem, PeerAddr, PoolAddrs,
                              PreSharedKey, Proposal, TrafficSelector, VirtualIp, seconds_between)

StartAction = Literal["none", "trap", "start", "trap|start"]
DpdAction = Literal["clear", "trap", "restart", "none"]
CloseAction = Literal["none", "trap", "start"]


class Auth(FileModel):
    auth: Literal["psk", "pubkey"] = "psk"
    id: IkeIdentity | None = None
    # Local side: certificates (names from the scenario's `pki`) this node proves itself with.
    certs: list[Identifier] = Field([], max_length=8)
    # Remote side: the CAs (names from `pki`) the peer's certificate must chain up to.
    cacerts: list[Identifier] = Field([], max_length=8)
    # Remote side: how certificate status (CRL/OCSP) is required: strict needs a good status.
    revocation: Literal["strict", "ifuri", "relaxed"] | None = None


class Child(FileModel):
    # `dynamic`: the IKE address, or the virtual IP assigned (a road warrior's local_ts, the
    # gateway's remote_ts for it)
    local_ts: list[TrafficSelector] = Field(min_length=1, max_length=32)
    remote_ts: list[TrafficSelector] = Field(min_length=1, max_length=32)
    esp_proposals: list[Proposal] = Field(["aes256-sha256"], min_length=1, max_length=16)
    mode: Literal["tunnel", "transport"] = "tunnel"
    start_action: StartAction = "none"
    dpd_action: DpdAction = "clear"
    close_action: CloseAction = "none"
    rekey_time: Duration | None = None
    life_time: Duration | None = None
    rand_time: Duration | None = None


class Connection(FileModel):
    version: Literal[1, 2] = 2
    local_addrs: list[PeerAddr] = Field(min_length=1, max_length=8)
    remote_addrs: list[PeerAddr] = Field(min_length=1, max_length=8)
    local_port: int | None = Field(None, ge=1, le=65535)
    remote_port: int | None = Field(None, ge=1, le=65535)
    proposals: list[Proposal] = Field(["aes256-sha256-modp2048"], min_length=1, max_length=16)
    local: Auth
    remote: Auth
    children: dict[Identifier, Child] = Field(max_length=16)
    encap: bool | None = None
    mobike: bool | None = None
    # road warriors: the client asks for a virtual IP (vips = [0.0.0.0]), the gateway assigns
    # one from its pools; unique: what a new IKE_SA of the same identity does to the old ones
    vips: list[VirtualIp] = Field([], max_length=4)
    pools: list[Identifier] = Field([], max_length=8)
    unique: Literal["no", "never", "keep", "replace"] | None = None
    # IKEv2 fragmentation (RFC 7383): yes = when the peer supports it (strongSwan's default), no, force
    fragmentation: Literal["yes", "no", "accept", "force"] | None = None
    keyingtries: int | None = Field(None, ge=0, le=1000)
    dpd_delay: Duration | None = None
    dpd_timeout: Duration | None = None
    rekey_time: Duration | None = None
    reauth_time: Duration | None = None
    over_time: Duration | None = None
    rand_time: Duration | None = None


class Pool(FileModel):
    """A virtual IP pool (swanctl.conf `pools`): the addresses a gateway hands its road warriors."""

    addrs: PoolAddrs


class Secret(FileModel):
    ids: list[IkeIdentity] = Field(min_length=1, max_length=16)
    secret: PreSharedKey


class CharonSettings(FileModel):
    """strongswan.conf `charon` settings the scenarios tune (timers mostly)."""

    port: int = Field(IKE_PORT, ge=0, le=65535)
    port_nat_t: int = Field(NAT_T_PORT, ge=0, le=65535)
    retransmit_timeout: seconds_between(0.01, 3600) = 4.0
    retransmit_base: float = Field(1.8, ge=1, le=10)
    retransmit_tries: int = Field(5, ge=0, le=100)
    retransmit_limit: seconds_between(0.01, 3600) | None = None
    keep_alive: Duration | None = None
    # charon log levels per subsystem (-1..4), e.g. {default: 1, cfg: 2}
    log: dict[LogSubsystem, Annotated[int, Field(ge=-1, le=4)]] = {"default": 1}


class GatewayConfig(FileModel):
    """Everything of one gateway's strongSwan: strongswan.conf (`charon`), swanctl.conf, trust, tunnel MTU."""

    charon: CharonSettings = CharonSettings()
    connections: dict[Identifier, Connection] = Field({}, max_length=64)
    secrets: list[Secret] = Field([], max_length=64)
    pools: dict[Identifier, Pool] = Field({}, max_length=16)
    # CA certificates (names from `pki`) installed in swanctl/x509ca: roots and intermediates.
    trust: list[Identifier] = Field([], max_length=16)
    # MTU of kernel-libipsec's TUN device ipsec0. libipsec creates it with 1400 and sizes its
    # reads by that: a larger MTU truncates packets, so only lower values are accepted.
    tunnel_mtu: int | None = Field(None, ge=576, le=1400)

    @model_validator(mode="after")
    def _pools_defined(self) -> "GatewayConfig":
        for name, conn in self.connections.items():
            unknown = [p for p in conn.pools if p not in self.pools]
            if unknown:
                raise ValueError(f"connection '{name}' names pool '{unknown[0]}', which is not defined; allowed: "
                                 f"{', '.join(self.pools) or 'none (define it under pools)'}")
        return self

    def patched(self, patch: dict) -> "GatewayConfig":
        """This configuration with a change merged in (a `swanctl` step), validated as a whole."""
        return GatewayConfig.model_validate(deep_merge(self.model_dump(exclude_unset=True, by_alias=True), patch))

    def credential_refs(self) -> tuple[set[str], set[str]]:
        """(certificate names, CA names) this gateway's configuration refers to."""
        certs = {c for conn in self.connections.values() for c in conn.local.certs}
        cas = set(self.trust) | {c for conn in self.connections.values() for c in conn.remote.cacerts}
        return certs, cas

    def nat_t_ports(self) -> set[int]:
        """Every port this gateway may carry ESP-in-UDP on."""
        ports = {self.charon.port, self.charon.port_nat_t}
        return ports | {p for c in self.connections.values() for p in (c.local_port, c.remote_port) if p}
