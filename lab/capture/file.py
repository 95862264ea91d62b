"""Capture files: pcap and pcapng, gzipped or not, read as raw records by scapy's reader (the
only part of scapy the decoder uses), with no length in the file trusted.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from lab.capture.link import LINK_READERS


class CaptureError(Exception):
    """The file is not a capture at all (empty, unknown format, header cut short, unknown link type)."""


PCAP_USEC, PCAP_NSEC = 0xA1B2C3D4, 0xA1B23C4D  # a pcap file's magic: microsecond or nanosecond times
PCAP_MAGICS = {m.to_bytes(4, order) for m in (PCAP_USEC, PCAP_NSEC) for order in ("big", "little")}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"  # a section header block's type
GZIP_MAGIC = b"\x1f\x8b"  # libpcap (and scapy) read either format gzipped
MAX_FRAME = 262144  # libpcap's largest snap length
MAX_READ = 16 << 20  # scapy's pcapng reader reads a whole block at once, as long as the file says


class _CappedReads:
    """A file whose reads return at most MAX_READ bytes: a pcapng block length of 4 GiB then
    reads as a block cut short, which ends the file, instead of 4 GiB of memory."""

    def __init__(self, path: Path, max_bytes: int | None = None):
        self._file = path.open("rb")
        self.name = str(path)
        self._left = max_bytes

    def read(self, size: int = -1) -> bytes:
        size = MAX_READ if size < 0 or size > MAX_READ else size
        if self._left is None:
            return self._file.read(size)
        data = self._file.read(min(size, max(0, self._left)))
        self._left -= len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def close(self) -> None:
        self._file.close()


def open_capture(path: Path, max_bytes: int | None = None):
    """scapy's raw reader for the file, or CaptureError saying why it is none."""
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapReader

    path = Path(path)
    with path.open("rb") as f:
        head = f.read(24)
    if head[:2] != GZIP_MAGIC:  # a gzipped one is told by scapy's reader
        if len(head) < 4:
            raise CaptureError(f"{path}: {len(head)} bytes, too short for a capture file")
        if head[:4] not in PCAP_MAGICS and head[:4] != PCAPNG_MAGIC:
            raise CaptureError(f"{path}: not a pcap or pcapng file (it starts with {head[:4].hex()})")
        if head[:4] in PCAP_MAGICS and len(head) < 24:
            raise CaptureError(f"{path}: pcap header cut short ({len(head)} of 24 bytes)")
    capped = _CappedReads(path, max_bytes)
    try:
        reader = RawPcapReader(capped)
    except (Scapy_Exception, EOFError, OSError) as e:
        capped.close()
        raise CaptureError(f"{path}: {e}") from None
    if not hasattr(reader, "interfaces") and reader.linktype & 0x03FFFFFF not in LINK_READERS:
        reader.close()
        raise CaptureError(f"{path}: link type {reader.linktype} is not one this decoder reads")
    return reader


def records(reader) -> Iterator[tuple[int, float, bytes, int, int | None]]:
    """(link type, time, frame, bytes on the wire, pcapng direction flag) per packet record."""
    from scapy.error import Scapy_Exception

    pcapng = hasattr(reader, "interfaces")
    # the upper bits of a pcap link type carry FCS information
    linktype = 0 if pcapng else reader.linktype & 0x03FFFFFF
    unit = 1e9 if getattr(reader, "nano", False) else 1e6
    try:
        while True:
            try:
                # _read_packet: scapy's iterator would cut every frame at 65535 bytes
                frame, meta = reader._read_packet(MAX_FRAME)
            except (EOFError, Scapy_Exception, struct.error, ValueError):
                return  # the end, or the rest of the file is unreadable: what came before stands
            if pcapng:
                ticks = 0 if meta.tshigh is None else meta.tshigh << 32 | meta.tslow
                yield meta.linktype, ticks / meta.tsresol, frame, meta.wirelen, meta.direction
            else:
                yield linktype, meta.sec + meta.usec / unit, frame, meta.wirelen, None
    finally:
        reader.close()



def is_capture(head: bytes) -> bool:
    """Whether a file's first bytes are a capture's (pcap, pcapng, or gzip, as the reader takes them)."""
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC or head[:2] == GZIP_MAGIC
