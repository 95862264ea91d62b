"""How a gateway carries charon's UDP over TCP: its relay addresses and tunnels."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lab.schema.ike import NAT_T_PORT
from lab.schema.types import FileModel, Identifier, IpAddr, seconds_between


class RelayTunnel(FileModel):
    name: Identifier
    # The address charon has as remote_addrs for this peer (on the node's loopback).
    relay: IpAddr
    # Server side: the WAN address to accept TCP (and UDP) on.
    listen: IpAddr | None = None
    # Client side: the peer's WAN address, and our own address to connect from.
    remote: IpAddr | None = None
    local: IpAddr | None = None

    @model_validator(mode="after")
    def _one_side(self) -> "RelayTunnel":
        if (self.listen is None) == (self.remote is None):
            raise ValueError("a tunnel either listens ('listen') or connects ('remote' and 'local')")
        if self.remote is not None and self.local is None:
            raise ValueError("a connecting tunnel needs 'local', the address it connects from")
        return self


class TcpEncap(FileModel):
    # charon's own address on the node's loopback (its local_addrs for relayed peers)
    charon: IpAddr
    # charon's NAT-T port on a relayed gateway (its port_nat_t and connections' local_port):
    # not NAT_T_PORT, which the relay itself uses on the wire.
    charon_port: int = Field(4510, ge=1, le=65535)
    # the relay's port on its loopback addresses (the connections' remote_port)
    relay_port: int = Field(4511, ge=1, le=65535)
    mode: Literal["tcp", "udp", "auto"] = "tcp"
    tcp_port: int = Field(443, ge=1, le=65535)
    udp_port: int = Field(NAT_T_PORT, ge=1, le=65535)
    auto_threshold: seconds_between(0, 600) = 15.0
    connect_timeout: seconds_between(0.1, 60) = 5.0
    tunnels: list[RelayTunnel] = Field(min_length=1, max_length=16)

    def addresses(self) -> list[str]:
        return [self.charon] + [t.relay for t in self.tunnels]
