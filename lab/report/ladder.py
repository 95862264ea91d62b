"""Ladder diagrams of a capture, read like Wireshark's flow graph: one column per address,
one arrow per IKE message, TCP handshake packet or ICMP error, in time order.

Time runs down the page to scale (PX_PER_S) where the rows leave room, and silences longer
than SCALE_GAP_S are cut and marked with their length. ESP, NAT-T keepalives and other
traffic in clear are drawn as bands (a run of packets between two addresses, counted per
direction), never as thousands of arrows. Retransmissions and requests that got no answer
are marked. Everything is bounded: at most MAX_ROWS rows, the rest counted.

This module measures text to place it: labels are in an 11 px monospace font (the report's
stylesheet), where every Latin character is CHAR_PX wide; a Chinese character counts as two.
"""
from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lab.capture import packets as pcap
from lab.capture.ike import FIRST_STATUS_NOTIFY
from lab.schema.ike import notify_short_name

MAX_ROWS = 300
MAX_LABEL_LINES = 4
BAND_GAP_S = 1.0  # a band goes on while its packets are closer than this
PX_PER_S = 50.0
SCALE_GAP_S = 2.0  # a longer silence is cut out of the time axis
BREAK_PX = 26
WIDTH = 1160  # the drawing's coordinate width, scaled to the page; wider when columns need it
MIN_SCALE = 0.95  # a diagram shrinks this far with its window at most, then scrolls sideways in its frame
MIN_SPAN = 110  # px between columns: below that, labels get too short to read
GUTTER = 136  # time and packet number, left of the first column
RIGHT_PAD = 16
HEADER_Y = 16  # the column headers' first line
TOP = 52  # below them
CHAR_PX = 6.7  # 0.6 em of an 11 px monospace font, rounded up
LINE_PX = 13
ARROW_ROOM = 28  # horizontal room an arrow label leaves for the arrowheads

# what a decoded packet becomes: an arrow of this kind, or a band
IKE, IKE_TCP, TCP, ICMP = "ike", "ike-tcp", "tcp", "icmp"
ESP, KEEPALIVE, CLEAR = "esp", "keepalive", "clear"


@dataclass(frozen=True)
class Segment:
    """A piece of label text: `zh` when it reads differently in Chinese; `tone` a CSS class."""

    en: str
    zh: str | None = None
    tone: str = ""

    @property
    def units(self) -> int:
        """Width in Latin characters, the wider language counted."""
        return max(len(self.en), _cjk_units(self.zh)) if self.zh is not None else len(self.en)


def _cjk_units(text: str) -> int:
    return sum(2 if ord(c) > 0x2E7F else 1 for c in text)


@dataclass
class Message:
    """One packet drawn as an arrow."""

    time: float
    number: int
    src: str
    dst: str
    kind: str
    words: list[list[Segment]]  # the label: its first line, then wrappable items (notifies)
    detail: str  # the decoder's summary, shown on hover
    retransmit: bool = False
    unanswered: bool = False
    fragments: int = 0  # IP fragments after the first, which carries the IKE header


@dataclass
class Band:
    """A run of packets of one kind between two addresses (and ports)."""

    kind: str
    a: str
    b: str
    port_a: int | None
    port_b: int | None
    carrier: str  # "ESP · UDP", "ESP", "ICMP", ...
    time: float
    last: float
    number: int
    last_number: int
    forward: int = 0  # a -> b
    backward: int = 0
    fragments: int = 0  # IP fragments after the first
    split: int = 0  # TCP segments ending inside an RFC 9329 frame


@dataclass
class LadderRows:
    """What a capture holds for the ladder, in file order."""

    rows: list[Message | Band] = field(default_factory=list)
    start: float | None = None
    packets: int = 0
    housekeeping: int = 0  # link-local and multicast: neighbour discovery, MLD
    quiet: int = 0  # TCP segments that start no IKE or ESP message (acknowledgements, continuations)
    left_out: int = 0  # packets after the row limit


# --- reading --------------------------------------------------------------------------------

def _housekeeping(p: pcap.Packet) -> bool:
    try:
        src, dst = ipaddress.ip_address(p.src), ipaddress.ip_address(p.dst)
    except ValueError:
        return True
    return any(a.is_multicast or a.is_link_local or a.is_unspecified for a in (src, dst)) or p.dst == "255.255.255.255"


class _Reader:
    """Turns packets into rows: arrows for messages, bands for runs of traffic."""

    def __init__(self) -> None:
        self.capture = LadderRows()
        self.open: dict[tuple, Band] = {}
        # (src, dst, IP id) -> the row of a datagram's first fragment, which the others join
        self.first_fragment: dict[tuple, Message | Band] = {}
        self.seen: set[tuple] = set()
        self.answered: set[tuple] = set()  # IKEv2 (SPI, message ID, exchange) and TCP 4-tuples that got a reply
        self.requests: list[tuple[Message, tuple]] = []

    def add(self, p: pcap.Packet) -> None:
        cap = self.capture
        cap.packets += 1
        if cap.start is None:
            cap.start = p.time
        if _housekeeping(p):
            cap.housekeeping += 1
        elif len(cap.rows) >= MAX_ROWS:
            cap.left_out += 1
            self._note_reply(p)  # so what was drawn is still judged answered or not
        elif p.fragment and p.frag_offset:
            self._fragment(p)
        elif p.ike:
            self._ike(p)
        elif p.proto == "TCP" and set(p.tcp_flags) & set("SRF"):
            self._tcp(p)
        elif p.icmp:
            self._icmp(p)
        elif p.proto == "TCP" and not p.esp:
            cap.quiet += 1
        else:
            self._band(p)

    def finish(self) -> LadderRows:
        for message, key in self.requests:
            message.unanswered = key not in self.answered
        self.capture.rows.sort(key=lambda r: (r.time, r.number))
        return self.capture

    # -- arrows

    def _ike(self, p: pcap.Packet) -> None:
        ike = p.ike
        key = (p.src, p.dst, ike.spi_i, ike.spi_r, ike.exchange, ike.response, ike.msgid, ike.fragment, p.length)
        message = Message(p.time, p.number, p.src, p.dst, IKE_TCP if p.proto == "TCP" else IKE, _ike_words(p),
                          p.summary(), retransmit=key in self.seen)
        self.seen.add(key)
        self._note_reply(p)
        if ike.version == 2 and not ike.response:  # IKEv1 has no response flag to pair by
            self.requests.append((message, _exchange_key(ike, ike.initiator)))
        if p.more_fragments:
            self.first_fragment[(p.src, p.dst, p.ip_id)] = message
        self.capture.rows.append(message)

    def _tcp(self, p: pcap.Packet) -> None:
        key = (p.src, p.sport, p.dst, p.dport, p.tcp_flags)
        name = _tcp_name(p.tcp_flags)
        words = [[Segment(name, tone="alert" if name == "RST" else ""), Segment(f"{p.sport} → {p.dport}", tone="muted")]]
        message = Message(p.time, p.number, p.src, p.dst, TCP, words, p.summary(), retransmit=key in self.seen)
        self.seen.add(key)
        self._note_reply(p)
        if name == "SYN":
            self.requests.append((message, (p.dst, p.dport, p.src, p.sport)))
        self.capture.rows.append(message)

    def _icmp(self, p: pcap.Packet) -> None:
        reason = p.icmp.split(" for ")[0]
        words = [[Segment("ICMP", tone="alert"), Segment(reason, tone="alert")]]
        self.capture.rows.append(Message(p.time, p.number, p.src, p.dst, ICMP, words, p.summary()))

    def _note_reply(self, p: pcap.Packet) -> None:
        if p.ike and p.ike.version == 2 and p.ike.response:
            self.answered.add(_exchange_key(p.ike, not p.ike.initiator))
        elif p.proto == "TCP" and _tcp_name(p.tcp_flags) in ("SYN/ACK", "RST"):
            self.answered.add((p.src, p.sport, p.dst, p.dport))

    # -- bands

    def _band(self, p: pcap.Packet) -> None:
        kind, carrier = _band_kind(p)
        (a, pa), (b, pb) = sorted([(p.src, p.sport), (p.dst, p.dport)], key=lambda e: (e[0], e[1] or 0))
        key = (kind, a, b, pa, pb, carrier)
        band = self.open.get(key)
        if band is None or p.time - band.last > BAND_GAP_S:
            band = Band(kind, a, b, pa, pb, carrier, p.time, p.time, p.number, p.number)
            self.open[key] = band
            self.capture.rows.append(band)
        band.last, band.last_number = p.time, p.number
        if p.src == a:
            band.forward += 1
        else:
            band.backward += 1
        band.split += p.split_frame
        if p.more_fragments:
            self.first_fragment[(p.src, p.dst, p.ip_id)] = band

    def _fragment(self, p: pcap.Packet) -> None:
        row = self.first_fragment.get((p.src, p.dst, p.ip_id))
        if row is None:  # its first fragment was not captured: drawn as traffic of its own
            self._band(p)
            return
        row.fragments += 1
        if isinstance(row, Band):
            row.last, row.last_number = max(row.last, p.time), p.number


def _tcp_name(flags: str) -> str:
    """What a segment with SYN, RST or FIN is in the handshake (ECN and PSH bits aside)."""
    if "S" in flags:
        return "SYN/ACK" if "A" in flags else "SYN"
    return "RST" if "R" in flags else "FIN"


def _exchange_key(ike: pcap.Ike, requester_is_initiator: bool | None) -> tuple:
    """An IKEv2 exchange: each side numbers its own requests, so the same message ID is two
    exchanges, one per side (the I flag tells the sides apart)."""
    return ike.spi_i, ike.msgid, ike.exchange, requester_is_initiator


def _band_kind(p: pcap.Packet) -> tuple[str, str]:
    if p.keepalive:
        return KEEPALIVE, "NAT-T"
    if p.esp:
        return ESP, "ESP" if p.proto == "ESP" else f"ESP · {p.proto}"
    return CLEAR, p.proto.split()[0]


def _ike_words(p: pcap.Packet) -> list[list[Segment]]:
    """The label of an IKE message: exchange, request/response, message ID (and fragment),
    the ports, then each notify as an item to wrap."""
    ike = p.ike
    first = [Segment(ike.exchange)]
    if ike.version == 2:
        first.append(Segment("response", "响应") if ike.response else Segment("request", "请求"))
    first.append(Segment(str(ike.msgid)))
    if ike.fragment:
        first.append(Segment(f"EF({ike.fragment[0]}/{ike.fragment[1]})"))
    if p.proto == "TCP":
        first.append(Segment("TCP", tone="tcp"))
    if p.split_frame:  # RFC 9329: the frame goes on in the next segment
        first.append(Segment("split", "跨分段", tone="alert"))
    first.append(Segment(f"{p.sport} → {p.dport}", tone="muted"))
    words = [first]
    if ike.notifies:
        names = [n if t < FIRST_STATUS_NOTIFY else notify_short_name(n)
                 for n, t in zip(ike.notifies, ike.notify_types)]
        errors = any(t < FIRST_STATUS_NOTIFY for t in ike.notify_types)
        items = [f"N({n}," if i == 0 else f"{n}," for i, n in enumerate(names)]
        items[-1] = items[-1][:-1] + ")"
        if len(names) == 1:
            items = [f"N({names[0]})"]
        words.append([Segment(item, tone="alert" if errors else "notify") for item in items])
    if ike.malformed:
        words.append([Segment("malformed", "格式错误", tone="alert")])
    return words


def read(path: Path, mac: str, nat_t_ports: frozenset[int]) -> LadderRows:
    """The rows of one capture (streamed: memory stays bounded whatever the file's size)."""
    reader = _Reader()
    for packet in pcap.stream(path, mac, nat_t_ports=nat_t_ports):
        reader.add(packet)
    return reader.finish()


# --- layout ---------------------------------------------------------------------------------

@dataclass
class Lane:
    address: str
    owner: str  # "node · interface", or "" when no lab node has the address
    x: float
    header_y: float
    shown: tuple[str, str]  # address and owner, cut to the room the column has


@dataclass
class Row:
    """A row as drawn: an arrow (message) or a band, at height y."""

    item: Message | Band
    y: float
    x1: float  # where it starts (the sender; a band's left column)
    x2: float
    lines: list[list[Segment]]
    label_y: list[float]
    bottom: float = 0.0  # a band's lower edge

    @property
    def is_band(self) -> bool:
        return isinstance(self.item, Band)

    @property
    def mid(self) -> float:
        return (self.x1 + self.x2) / 2

    @property
    def direction(self) -> int:
        return 1 if self.x2 >= self.x1 else -1


@dataclass
class Break:
    y: float
    height: float
    seconds: float


@dataclass
class Ladder:
    lanes: list[Lane]
    rows: list[Row]
    breaks: list[Break]
    height: float
    width: float
    gutter: int = GUTTER
    # never drawn smaller than this (its text stays readable): a narrower window scrolls it sideways
    min_scale: float = MIN_SCALE


def wrap(words: list[list[Segment]], units: int) -> list[list[Segment]]:
    """Lines of at most `units` characters: the first group, then the items, greedily; a
    word too long for a line is cut with an ellipsis (the full text is on hover)."""
    lines: list[list[Segment]] = []
    for group in words:
        line: list[Segment] = []
        width = 0
        for word in group:
            word = _cut(word, units)
            need = word.units + (1 if line else 0)
            if line and width + need > units:
                lines.append(line)
                line, width, need = [], 0, word.units
            line.append(word)
            width += need
        if line:
            lines.append(line)
    if len(lines) > MAX_LABEL_LINES:
        lines = lines[:MAX_LABEL_LINES]
        if _line_units(lines[-1]) + 2 > units:
            lines[-1].pop()
        lines[-1].append(Segment("…"))
    return lines


def _line_units(line: list[Segment]) -> int:
    return sum(w.units for w in line) + max(len(line) - 1, 0)


def _cut(word: Segment, units: int) -> Segment:
    if word.units <= units:
        return word
    keep = max(units - 1, 1)
    return Segment(word.en[:keep].rstrip() + "…", None if word.zh is None else word.zh[:max(keep // 2, 1)] + "…",
                   word.tone)


def _lanes(capture: LadderRows, owners: dict[str, tuple[str, str, int]]) -> list[str]:
    """Addresses in column order: by the topology column of the node that has them (as in
    the drawing above), then by first appearance."""
    first: dict[str, int] = {}
    for row in capture.rows:
        for address in (row.src, row.dst) if isinstance(row, Message) else (row.a, row.b):
            first.setdefault(address, len(first))
    return sorted(first, key=lambda a: (owners.get(a, ("", "", math.inf))[2], first[a]))


def _place_lanes(addresses: list[str], owners: dict[str, tuple[str, str, int]]) -> list[Lane]:
    """Columns spread evenly; the headers of narrow columns alternate between two heights so
    that neighbours do not collide, and are cut to the room they have."""
    span = max((WIDTH - GUTTER - RIGHT_PAD) / max(len(addresses), 1), MIN_SPAN)
    stagger = span < 18 * CHAR_PX
    room = int((span * (2 if stagger else 1) - 8) / CHAR_PX)
    lanes = []
    for i, address in enumerate(addresses):
        owner = " · ".join(owners[address][:2]) if address in owners else ""
        shown = (_cut(Segment(address), room).en, _cut(Segment(owner), room).en)
        lanes.append(Lane(address, owner, GUTTER + (i + 0.5) * span, HEADER_Y + (28 if stagger and i % 2 else 0),
                          shown))
    return lanes


def layout(capture: LadderRows, owners: dict[str, tuple[str, str, int]]) -> Ladder:
    """Place columns and rows. `owners`: address -> (node, interface, topology column)."""
    lanes = _place_lanes(_lanes(capture, owners), owners)
    x = {lane.address: lane.x for lane in lanes}
    top = TOP + max((lane.header_y for lane in lanes), default=HEADER_Y) - HEADER_Y  # below the lowest header
    rows: list[Row] = []
    breaks: list[Break] = []
    y = top
    previous: float | None = None
    for item in capture.rows:
        ends = (item.src, item.dst) if isinstance(item, Message) else (item.a, item.b)
        x1, x2 = x[ends[0]], x[ends[1]]
        room = int((abs(x2 - x1) - ARROW_ROOM) / CHAR_PX)
        if isinstance(item, Band):
            words, (x1, x2) = band_words(item, x1 > x2), sorted((x1, x2))
        else:
            words = _flagged(item)
        lines = wrap(words, max(room, 8))
        height = len(lines) * LINE_PX + 9
        if previous is None:
            y += height
        elif item.time - previous > SCALE_GAP_S:
            breaks.append(Break(y + 6, BREAK_PX - 6, item.time - previous))
            y += BREAK_PX + height
        else:
            y += max(height, (item.time - previous) * PX_PER_S)
        previous = item.time
        label_y = [y - 5 - (len(lines) - 1 - k) * LINE_PX for k in range(len(lines))]
        rows.append(Row(item, y, x1, x2, lines, label_y))
    _extend_bands(rows)
    bottom = max([y] + [r.bottom for r in rows])
    width = max(WIDTH, lanes[-1].x + MIN_SPAN / 2 + RIGHT_PAD) if lanes else WIDTH
    return Ladder(lanes, rows, breaks, bottom + 24, width)


def _flagged(message: Message) -> list[list[Segment]]:
    """The message's words with its marks at the end of the first line."""
    flags = []
    if message.fragments:
        flags.append(Segment(f"+{message.fragments} IP fragment{'s' if message.fragments > 1 else ''}",
                             f"+{message.fragments} 个 IP 分片", tone="alert"))
    if message.retransmit:
        flags.append(Segment("(retransmission)", "(重传)", tone="flag"))
    if message.unanswered:
        flags.append(Segment("no response", "无响应", tone="flag"))
    return [message.words[0] + flags] + message.words[1:]


def band_words(band: Band, flipped: bool) -> list[list[Segment]]:
    """A band's label, its counts oriented as drawn: `flipped` when `b` is the left column."""
    ports = (band.port_b, band.port_a) if flipped else (band.port_a, band.port_b)
    right, left = (band.forward, band.backward) if not flipped else (band.backward, band.forward)
    if band.kind == KEEPALIVE:
        words = [Segment("NAT-T keepalive", "NAT-T 保活", tone=band.kind)]
    else:
        words = [Segment(band.carrier, tone=band.kind)]
    if ports[0] is not None:
        words.append(Segment(f"{ports[0]} ⇄ {ports[1]}", tone="muted"))
    # ESP that flows one way only is a tunnel half down: the missing direction is the finding
    one_way = band.kind == ESP
    words += [Segment(f"→ {right}", tone="alert" if one_way and not right else ""),
              Segment(f"← {left}", tone="alert" if one_way and not left else "")]
    if band.last - band.time >= 0.05:  # shorter reads as a burst, not a duration
        words.append(Segment(f"{band.last - band.time:.1f} s", tone="muted"))
    if band.fragments:
        words.append(Segment(f"+{band.fragments} IP fragments", f"+{band.fragments} 个 IP 分片", tone="alert"))
    if band.split:
        words.append(Segment(f"{band.split} frames split over TCP segments", f"{band.split} 个帧跨 TCP 分段",
                             tone="alert"))
    return [words]


def _extend_bands(rows: list[Row]) -> None:
    """A band reaches down to the height of its last packet's time, found between the rows
    around it (to scale within a stretch, at the top of a cut silence)."""
    times = [r.item.time for r in rows]
    for i, row in enumerate(rows):
        row.bottom = row.y + 4
        if not row.is_band:
            continue
        last = row.item.last
        j = i
        while j + 1 < len(rows) and times[j + 1] <= last:
            j += 1
        anchor = rows[j]
        within = min((last - anchor.item.time) * PX_PER_S, LINE_PX)
        row.bottom = max(row.bottom, anchor.y + within + 4)


def owners(addresses: Iterable[tuple[str, str, str, int]]) -> dict[str, tuple[str, str, int]]:
    """address -> (node, interface, column) from (address with prefix, node, interface, column)."""
    return {str(ipaddress.ip_interface(a).ip): (node, intf, column) for a, node, intf, column in addresses}
