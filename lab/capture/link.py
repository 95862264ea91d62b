"""The link layer of a capture: where each frame's IP header starts, and which way it went.

Ethernet (802.1Q/802.1ad tags skipped), Linux cooked SLL and SLL2, raw IP, BSD loopback
(DLT_NULL, DLT_LOOP). A reader returns (offset of the IP header, "in"/"out"/None), or None for
a frame that carries no IP.
"""
from __future__ import annotations

from collections.abc import Callable

ETHER_IP = (0x0800, 0x86DD)
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
AF_INET6 = (10, 24, 28, 30)  # Linux, NetBSD/OpenBSD, FreeBSD, macOS
SLL_DIRECTIONS = {0: "in", 1: "in", 2: "in", 3: "in", 4: "out"}  # to us, broadcast, multicast, other host, outgoing


def _ethernet(frame: bytes, mac: bytes | None) -> tuple[int, str | None] | None:
    if len(frame) < 14:
        return None
    offset = _skip_tags(frame, 12)
    if offset is None:
        return None
    return offset, None if mac is None else ("out" if frame[6:12] == mac else "in")


def _skip_tags(frame: bytes, at: int) -> int | None:
    """Where the IP header starts, given where the EtherType is; None when it carries no IP."""
    ethertype = int.from_bytes(frame[at:at + 2], "big")
    while ethertype in VLAN_TAGS and at + 6 <= len(frame):
        at += 4
        ethertype = int.from_bytes(frame[at:at + 2], "big")
    return at + 2 if ethertype in ETHER_IP else None


def _sll(frame: bytes, mac: bytes | None) -> tuple[int, str | None] | None:
    if len(frame) < 16:
        return None
    offset = _skip_tags(frame, 14)
    return None if offset is None else (offset, SLL_DIRECTIONS.get(int.from_bytes(frame[:2], "big")))


def _sll2(frame: bytes, mac: bytes | None) -> tuple[int, str | None] | None:
    if len(frame) < 20 or int.from_bytes(frame[:2], "big") not in ETHER_IP:
        return None
    return 20, SLL_DIRECTIONS.get(frame[10])


def _loopback(frame: bytes, mac: bytes | None) -> tuple[int, str | None] | None:
    # the address family is in the capturing host's byte order (DLT_NULL) or network order (DLT_LOOP)
    if len(frame) < 4:
        return None
    families = (int.from_bytes(frame[:4], "little"), int.from_bytes(frame[:4], "big"))
    return (4, None) if 2 in families or any(f in AF_INET6 for f in families) else None


def _raw(frame: bytes, mac: bytes | None) -> tuple[int, str | None] | None:
    return 0, None


LINK_READERS: dict[int, Callable[[bytes, bytes | None], tuple[int, str | None] | None]] = {
    1: _ethernet, 113: _sll, 276: _sll2, 0: _loopback, 108: _loopback,
    101: _raw, 12: _raw, 14: _raw, 228: _raw, 229: _raw,
}

