"""IKE messages as a capture holds them: the header, and what the body shows without keys.

An IKE message comes from anywhere (a lab's tcpdump, a field capture), so no length it reads is
trusted: a bad one marks the message (`Ike.malformed`) instead of raising.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from lab.schema.ike import notify_name, notify_short_name

# names as the lab's checks use them; per version, since their numbers do not overlap by design only
EXCHANGES = {
    1: {2: "IKEv1_MAIN", 4: "IKEv1_AGGRESSIVE", 5: "IKEv1_INFORMATIONAL", 6: "IKEv1_TRANSACTION",
        32: "IKEv1_QUICK"},
    2: {34: "IKE_SA_INIT", 35: "IKE_AUTH", 36: "CREATE_CHILD_SA", 37: "INFORMATIONAL"},
}
# strongSwan's short payload names (payload.c), as its message summaries print them
PAYLOADS = {
    1: {1: "SA", 2: "PROP", 3: "TRANS", 4: "KE", 5: "ID", 6: "CERT", 7: "CERTREQ", 8: "HASH", 9: "SIG",
        10: "No", 11: "N", 12: "D", 13: "V", 14: "CP", 20: "NAT-D", 21: "NAT-OA", 130: "NAT-D", 131: "NAT-OA",
        132: "FRAG"},
    2: {33: "SA", 34: "KE", 35: "IDi", 36: "IDr", 37: "CERT", 38: "CERTREQ", 39: "AUTH", 40: "No", 41: "N",
        42: "D", 43: "V", 44: "TSi", 45: "TSr", 46: "E", 47: "CP", 48: "EAP", 49: "GSPM", 50: "IDg", 51: "GSA",
        52: "KD", 53: "EF"},
}
IKE_HEADER = 28
FIRST_STATUS_NOTIFY = 16384  # below: error types (RFC 7296 3.10.1, RFC 2408 3.14.1)
INVALID_KE_PAYLOAD = 17


@dataclass(slots=True)
class Ike:
    """An IKE message's header and what of its body can be read without keys.

    IKEv1 has no response flag: `response` is False for every IKEv1 message and `initiator`
    None; who answers whom is for the reader of a whole exchange to work out.
    """
    exchange: str
    response: bool
    msgid: int
    spi_i: str  # hex
    notifies: list[str] = field(default_factory=list)  # strongSwan's names, per IKE version
    notify_types: list[int] = field(default_factory=list)  # the same notifies by number
    version: int = 2
    spi_r: str = "0" * 16
    initiator: bool | None = None  # IKEv2 I flag: sent by the original initiator of the IKE_SA
    length: int = 0  # the header's length field
    encrypted: bool = False  # an IKEv2 SK/SKF payload, or the IKEv1 E flag
    # the first payload inside the encryption: SK/SKF's (IKEv1: the header's) next-payload field,
    # which is in clear; an IKE_AUTH response starting with IDr authenticated, one with N did not
    inner: str | None = None
    fragment: tuple[int, int] | None = None  # IKEv2 SKF (RFC 7383): fragment number, total
    malformed: str | None = None  # why a receiver would reject the framing

    def summary(self) -> str:
        text = f"{self.exchange} {'response' if self.response else 'request'} {self.msgid}"
        # errors in full, as charon logs them when received; status types by strongSwan's short names
        names = [name if number < FIRST_STATUS_NOTIFY else notify_short_name(name)
                 for name, number in zip(self.notifies, self.notify_types)]
        text += f" N({','.join(names)})" if names else ""
        return text + (f" EF({self.fragment[0]}/{self.fragment[1]})" if self.fragment else "")




def parse_ike(data: bytes, ikev1_notifies: bool = True, complete: bool = True) -> Ike | None:
    """An IKE header and what its body shows in clear, or None when `data` is no IKE header.

    `complete`: `data` is all of the message its carrier delivered. False for the first IP
    fragment of a datagram, a record the capture cut short, or a TCP message whose end is not
    in the capture: a header length beyond the bytes present is then no malformation.
    `ikev1_notifies`: also name the notifies of unencrypted IKEv1 messages.
    """
    if len(data) < IKE_HEADER or data[17] >> 4 not in (1, 2):
        return None
    version = data[17] >> 4
    flags = data[19]
    msgid, length = struct.unpack_from(">II", data, 20)
    ike = Ike(exchange=EXCHANGES[version].get(data[18], f"EXCHANGE_{data[18]}"),
              response=version == 2 and bool(flags & 0x20), msgid=msgid, spi_i=data[:8].hex(),
              version=version, spi_r=data[8:16].hex(), initiator=bool(flags & 0x08) if version == 2 else None,
              length=length)
    if length < IKE_HEADER:
        ike.malformed = f"length {length}, shorter than the {IKE_HEADER}-byte header"
        return ike  # no payload can be where the header says the message ends
    if complete and length != len(data):
        ike.malformed = f"length {length}, but the message has {len(data)} bytes"
    if version == 1 and flags & 0x01:  # IKEv1 E flag: everything after the header is ciphertext
        ike.encrypted, ike.inner = True, _payload_name(1, data[16])
        return ike
    _walk_payloads(ike, data, data[16], ikev1_notifies)
    return ike


def _payload_name(version: int, number: int) -> str:
    return PAYLOADS[version].get(number, f"({number})")


def _walk_payloads(ike: Ike, data: bytes, kind: int, ikev1_notifies: bool) -> None:
    """Follow the generic payload headers from the first payload, within the header's length
    and the bytes present; each step moves on by at least 4 bytes, so the walk always ends."""
    end, present = ike.length, min(ike.length, len(data))
    offset = IKE_HEADER
    while kind:
        if offset + 4 > present:
            if present == end:
                _flag(ike, f"payload {_payload_name(ike.version, kind)} announced at offset {offset}, "
                           f"past the message's end")
            return  # otherwise the rest was not captured
        size = int.from_bytes(data[offset + 2:offset + 4], "big")
        if size < 4:
            _flag(ike, f"payload length {size} < 4 ({_payload_name(ike.version, kind)} at offset {offset})")
            return
        if offset + size > end:
            _flag(ike, f"payload {_payload_name(ike.version, kind)} at offset {offset} of length {size} "
                       f"runs past the message's length {end}")
            return
        if kind == 41 and ike.version == 2 or kind == 11 and ike.version == 1 and ikev1_notifies:
            _notify(ike, data, offset, size)
        elif kind in (46, 53) and ike.version == 2:  # SK / SKF: always the last payload
            ike.encrypted = True
            ike.inner = _payload_name(2, data[offset]) if data[offset] else None  # SKF: 0 after fragment 1
            if kind == 53 and offset + 8 <= present:
                ike.fragment = struct.unpack_from(">HH", data, offset + 4)
            offset += size
            break
        kind = data[offset]
        offset += size
    if offset < end:
        _flag(ike, f"{end - offset} bytes after the last payload")


def _notify(ike: Ike, data: bytes, offset: int, size: int) -> None:
    # IKEv2: protocol, SPI size, type; IKEv1 puts a 4-byte DOI first
    at = offset + (8 if ike.version == 1 else 4)
    if size < at - offset + 4 or at + 4 > len(data):
        return
    spi_size = data[at + 1]
    number = int.from_bytes(data[at + 2:at + 4], "big")
    ike.notifies.append(notify_name(number, ikev1=ike.version == 1))
    ike.notify_types.append(number)
    if ike.version == 2 and number == INVALID_KE_PAYLOAD and size - (at + 4 - offset) - spi_size != 2:
        # strongSwan refuses it (notify_payload.c): an initiator cannot learn which group to use
        _flag(ike, "INVALID_KE_PAYLOAD without its 2-byte DH group")


def _flag(ike: Ike, why: str) -> None:
    ike.malformed = ike.malformed or why  # the first problem found is the one to report



def exact_ike(payload: bytes, declared: int) -> bool:
    """An IKE header whose length field is the datagram's: IKE on a port not known to carry it."""
    return (len(payload) >= IKE_HEADER and payload[17] in (0x10, 0x20)
            and int.from_bytes(payload[24:28], "big") == declared)
