"""RFC 9329 stream framing: the `IKETCP` prefix, then messages each led by a 16-bit length
that counts the two length bytes themselves. IKE messages start with the 4-byte zero
non-ESP marker; ESP packets start with their SPI, never zero.
"""
from __future__ import annotations

PREFIX = b"IKETCP"  # the initiator's first bytes on a stream
NON_ESP_MARKER = b"\0\0\0\0"  # IKE follows it, in a frame as in ESP-in-UDP (RFC 3948)
# Linux espintcp refuses shorter frames: length field + at least a 4-byte marker/SPI.
MIN_LENGTH = 6
MAX_LENGTH = 0xFFFF
NAT_KEEPALIVE = b"\xff"


class FrameError(ValueError):
    """The peer broke the framing; the connection must be closed."""


def frame(payload: bytes) -> bytes:
    """One UDP payload of charon's (IKE with its marker, or ESP) as one stream message."""
    length = len(payload) + 2
    if length < MIN_LENGTH or length > MAX_LENGTH:
        raise FrameError(f"payload of {len(payload)} bytes cannot be framed")
    return length.to_bytes(2, "big") + payload


def kind(payload: bytes) -> str:
    return "IKE" if payload[:4] == NON_ESP_MARKER else "ESP"


class Deframer:
    """Turns stream reads of any size back into whole messages."""

    def __init__(self, expect_prefix: bool, max_length: int = MAX_LENGTH):
        self._need_prefix = expect_prefix
        self._max = max_length
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        if self._need_prefix:
            if len(self._buf) < len(PREFIX):
                if not PREFIX.startswith(bytes(self._buf)):
                    raise FrameError(f"stream does not start with IKETCP: {bytes(self._buf)!r}")
                return []
            if self._buf[:len(PREFIX)] != PREFIX:
                raise FrameError(f"stream does not start with IKETCP: {bytes(self._buf[:len(PREFIX)])!r}")
            del self._buf[:len(PREFIX)]
            self._need_prefix = False
        messages = []
        while len(self._buf) >= 2:
            length = int.from_bytes(self._buf[:2], "big")
            if length < MIN_LENGTH:
                raise FrameError(f"length {length} is below the minimum of {MIN_LENGTH}")
            if length > self._max:
                raise FrameError(f"length {length} exceeds the maximum of {self._max}")
            if len(self._buf) < length:
                break
            messages.append(bytes(self._buf[2:length]))
            del self._buf[:length]
        return messages
