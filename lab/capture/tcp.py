"""IKE and ESP inside TCP streams (RFC 9329), as a capture shows them: each stream reassembled by
sequence number one segment at a time, its frames found and credited to the segments they start
in; and the queue that keeps packets in file order while a segment waits for its message's end.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from lab.capture.ike import IKE_HEADER, parse_ike
from lab.transport.framing import NON_ESP_MARKER, PREFIX

if TYPE_CHECKING:
    from lab.capture.packets import Packet

MAX_WAITING = 10000  # packets queued behind one whose TCP message has not ended yet


class OutputQueue:
    """Packets in file order. A TCP segment whose classification awaits later segments is held,
    and the packets behind it wait; past MAX_WAITING, its stream stops waiting (`_Tcp.settle`)."""

    def __init__(self) -> None:
        self.entries: deque[Packet] = deque()
        self.holds: dict[int, list] = {}  # id(packet) -> [count, stream]

    def push(self, pkt: Packet) -> None:
        self.entries.append(pkt)

    def hold(self, pkt: Packet, stream: "_Stream") -> None:
        entry = self.holds.get(id(pkt))
        if entry:
            entry[0] += 1
        else:
            self.holds[id(pkt)] = [1, stream]

    def release(self, pkt: Packet) -> None:
        entry = self.holds.get(id(pkt))
        if entry:
            entry[0] -= 1
            if not entry[0]:
                del self.holds[id(pkt)]

    def ready(self) -> Iterator[Packet]:
        while self.entries:
            held = self.holds.get(id(self.entries[0]))
            if held:
                if len(self.entries) <= MAX_WAITING:
                    return
                held[1].tcp.settle(held[1])
                # settling a stream releases everything it holds; should a hold survive, the
                # packet goes out as it is rather than the queue growing without end
                self.holds.pop(id(self.entries[0]), None)
            yield self.entries.popleft()



# Bounds, and what is given up past them:
MAX_STREAMS = 4096  # streams followed at once; the least recently active is forgotten, and if
#                     it carries on it is picked up like a capture starting in its middle
MAX_OUT_OF_ORDER = 256 << 10  # bytes ahead of a hole kept per stream, in at most
MAX_AHEAD_SEGMENTS = 256  #     so many segments: past either, the hole is taken for bytes the capture
#                               lost, and framing resumes behind it
MAX_SPIS = 32  # SPIs remembered per stream to vouch for a frame after a gap
BUDGET = 32 << 20  # bytes buffered by all streams together; past it the largest stops waiting
# A stream that stops waiting credits the message it is in with what has arrived (an IKE message
# then shows the notifies captured so far) and looks for the next frame it can vouch for.

# A stream's mode: START, the initiator's until its first 6 bytes show PREFIX or not; PEER, the
# responder's until the initiator's show it; FRAME, reading frames; RESYNC, looking for a frame
# that vouches for itself; OFF, not RFC 9329.
START, PEER, FRAME, RESYNC, OFF = range(5)


class TcpStreams:
    """RFC 9329 framing over each TCP stream, reassembled by sequence number one segment at a time:
    a message is credited to the segment it starts in, and that segment is marked when the
    message runs on into later segments.

    A connection carries RFC 9329 when its initiator's stream starts with IKETCP; the other
    stream then carries frames from its first byte. A stream whose start the capture missed,
    or that lost bytes, is framed again from the first frame header that vouches for itself:
    IKE whose header length is the frame's, ESP with an SPI the stream carried before, or ESP
    at a segment's start whose next frame carries the same SPI. (A stream whose SYN is missing
    starts at the first segment captured: a segment before it in sequence, captured later, is
    taken for a retransmission.)
    """

    def __init__(self, queue: OutputQueue, whole_streams: bool):
        self.queue = queue
        self.streams: OrderedDict[tuple, _Stream] = OrderedDict()
        self.buffered = 0
        # read(): a message is oversize against its stream's largest segment over the whole capture
        self.whole_streams = whole_streams
        self.largest: dict[tuple, int] = {}
        self.split_messages: list[tuple[Packet, tuple, int]] = []

    def segment(self, pkt: Packet, key: tuple, seq: int, flags: int, payload: bytes, missing: int) -> None:
        stream = self.streams.get(key)
        if flags & 0x02:  # SYN: a connection's start; any payload on it is not framed (as before)
            if stream is None or stream.isn != seq + 1:
                if stream is not None:
                    self.forget(key)
                if not flags & 0x10:  # the initiator's SYN: the other direction is new as well
                    self.forget(_reverse(key))
                initiator = self.streams.get(_reverse(key))
                mode = START if not flags & 0x10 else FRAME if initiator and initiator.prefixed else PEER
                self.add(key, _Stream(self, key, seq + 1, mode))
            return
        if not payload and not missing:
            return
        if stream is None:  # the capture began in this stream's middle
            stream = self.add(key, _Stream(self, key, seq, RESYNC))
        else:
            self.streams.move_to_end(key)
        peer = self.streams.get(_reverse(key))
        before = stream.size() + (peer.size() if peer else 0)
        stream.add(seq, payload, missing, pkt)
        self.buffered += stream.size() + (peer.size() if peer else 0) - before
        if self.buffered > BUDGET:
            self.buffered = sum(s.size() for s in self.streams.values())
            while self.buffered > BUDGET:
                self.settle(max(self.streams.values(), key=_Stream.size))  # settling empties its buffers

    def add(self, key: tuple, stream: "_Stream") -> "_Stream":
        self.streams[key] = stream
        while len(self.streams) > MAX_STREAMS:
            self.forget(next(iter(self.streams)))
        return stream

    def forget(self, key: tuple) -> None:
        stream = self.streams.get(key)
        if stream is not None:
            self.settle(stream)
            self.buffered -= stream.size()
            del self.streams[key]

    def settle(self, stream: "_Stream") -> None:
        before = stream.size()
        stream.force()
        self.buffered += stream.size() - before

    def peer(self, stream: "_Stream") -> "_Stream | None":
        return self.streams.get(_reverse(stream.key))

    def grew(self, stream: "_Stream", size: int) -> None:
        if self.whole_streams and size > self.largest.get(stream.key, 0):
            self.largest[stream.key] = size

    def split(self, owner: Packet, stream: "_Stream", length: int) -> None:
        if self.whole_streams:
            self.split_messages.append((owner, stream.key, length))

    def finish(self) -> None:
        for stream in list(self.streams.values()):
            self.settle(stream)
        for owner, key, length in self.split_messages:  # only a split message can outgrow every segment
            owner.oversize_message = False
        for owner, key, length in self.split_messages:
            owner.oversize_message |= length > self.largest.get(key, 0)


def _reverse(key: tuple) -> tuple:
    return key[2], key[3], key[0], key[1]


class _Stream:
    """One direction of a TCP connection: its bytes in sequence order, and where frames start.

    `pos` is the stream offset up to which bytes have arrived (or are known lost); `buf` holds
    the bytes from `base` to `pos` still needed: the message being read when it is IKE, a frame
    header cut by a segment's end, or, while looking for a frame (START, RESYNC), the bytes
    since the last place a frame could start, whose segments (`window`) are held meanwhile.
    """

    def __init__(self, tcp: TcpStreams, key: tuple, isn: int, mode: int):
        self.tcp, self.key, self.isn, self.mode = tcp, key, isn, mode
        self.pos = 0
        self.ahead: dict[int, tuple[bytes, int, Packet]] = {}  # offset -> (bytes, missing, packet)
        self.ahead_bytes = 0
        self.buf = bytearray()
        self.base = 0
        self.window: list[tuple[int, int, Packet]] = []
        self.scan = 0  # RESYNC: no frame starts before this offset
        self.waiting = False  # RESYNC: the frame that may start at scan awaits its bytes
        self.next = 0  # FRAME: where the next frame header starts
        self.header_owner: tuple[Packet, int] | None = None  # a segment whose frame header ends in a later one
        self.open: tuple[Packet, int, int, bool] | None = None  # owner, start, length, IKE? of an unfinished message
        self.largest = 0
        self.spis: dict[bytes, None] = {}
        self.prefixed = False

    def size(self) -> int:
        return len(self.buf) + self.ahead_bytes

    def _hold(self, pkt: Packet) -> None:
        self.tcp.queue.hold(pkt, self)

    def _release(self, pkt: Packet) -> None:
        self.tcp.queue.release(pkt)

    # arrival

    def add(self, seq: int, payload: bytes, missing: int, pkt: Packet) -> None:
        if self.mode == OFF:
            return
        # the segment's offset, near pos: sequence numbers wrap at 2**32
        delta = (seq - self.isn - self.pos) % 2**32
        offset = self.pos + (delta - 2**32 if delta >= 2**31 else delta)
        if offset + len(payload) + missing <= self.pos:
            return  # a retransmission of what arrived already
        if offset > self.pos:  # a hole before it: reordered, or lost
            if offset not in self.ahead:
                self.ahead[offset] = (payload, missing, pkt)
                self.ahead_bytes += len(payload)
                self._hold(pkt)
            if self.ahead_bytes > MAX_OUT_OF_ORDER or len(self.ahead) > MAX_AHEAD_SEGMENTS:
                self._hole(min(self.ahead))
                self._drain()
            return
        self._take(offset, payload, missing, pkt)
        self._drain()

    def _drain(self) -> None:
        while self.ahead:
            offset = min(self.ahead)
            if offset > self.pos:
                return
            payload, missing, pkt = self.ahead.pop(offset)
            self.ahead_bytes -= len(payload)
            self._release(pkt)
            if self.mode != OFF and offset + len(payload) + missing > self.pos:
                self._take(offset, payload, missing, pkt)

    def _take(self, offset: int, payload: bytes, missing: int, pkt: Packet) -> None:
        end = offset + len(payload) + missing
        fresh = end - self.pos  # what this segment adds to the stream: a retransmitted part does not count
        self.largest = max(self.largest, fresh)
        self.tcp.grew(self, fresh)
        cut = self.pos - offset
        if cut < len(payload):
            start, self.pos = self.pos, offset + len(payload)
            self._chunk(start, self.pos, payload[cut:] if cut else payload, pkt)
        if end > self.pos:
            self._hole(end)  # the capture cut the segment short

    def _chunk(self, a: int, b: int, data: bytes, pkt: Packet) -> None:
        if self.mode == OFF:
            return
        if self.mode == PEER:  # bytes before the initiator's showed IKETCP: not a responder's frames
            self._resync(a)
        self.buf += data
        if self.mode == FRAME:
            self._frames(a, b, pkt)
            self._trim()  # nothing when framing was lost meanwhile
        else:
            self.window.append((a, b, pkt))
            self._hold(pkt)
            self._look(final=False)

    # framing

    def _frames(self, a: int, b: int, pkt: Packet) -> None:
        """Read the frame headers that start in the segment [a, b) owned by `pkt`."""
        if self.open and self.open[1] + self.open[2] <= self.pos:
            self._close()
        while self.next < b and self.open is None:
            h = self.next
            owner, owner_end = self.header_owner or (pkt, b)
            if h + 6 > self.pos:  # the header runs on into the next segment
                if self.header_owner is None:
                    self.header_owner = (owner, owner_end)
                    self._hold(owner)
                return
            if self.header_owner:
                self.header_owner = None
                self._release(owner)
            i = h - self.base
            length = self.buf[i] << 8 | self.buf[i + 1]
            if length < 6:  # the framing is lost: look for a frame that vouches for itself
                self._resync(self.pos)
                return
            ike = self.buf[i + 2:i + 6] == NON_ESP_MARKER
            if not ike:
                spi = bytes(self.buf[i + 2:i + 6])
                owner.esp = True
                owner.esp_spi = owner.esp_spi or spi.hex()
                self.spis[spi] = None
                if len(self.spis) > MAX_SPIS:
                    del self.spis[next(iter(self.spis))]
            if h + length > owner_end:
                owner.split_frame = True
                self.tcp.split(owner, self, length)
            self.next = h + length
            if h + length <= self.pos:
                self._credit(owner, h, length, ike)
            else:  # wait for its end: its IKE body, and the segments it spans
                self.open = (owner, h, length, ike)
                self._hold(owner)

    def _close(self) -> None:
        """The open message's bytes are in, or will not come: credit its owner."""
        owner, start, length, ike = self.open
        self.open = None
        self._credit(owner, start, length, ike)
        self._release(owner)

    def _credit(self, owner: Packet, start: int, length: int, ike: bool) -> None:
        if ike and owner.ike is None:
            end = min(start + length, self.pos)
            owner.ike = parse_ike(bytes(self.buf[start + 6 - self.base:end - self.base]),
                                  complete=end == start + length)
        if length > self.largest:
            owner.oversize_message = True

    def _trim(self) -> None:
        if self.mode != FRAME:
            return
        keep = self.pos
        if self.open and self.open[3]:
            keep = self.open[1]
        elif self.next < self.pos:
            keep = self.next
        del self.buf[:keep - self.base]
        self.base = keep

    # looking for a frame

    def _look(self, final: bool) -> None:
        """START: does the stream open with IKETCP (framing.PREFIX)? RESYNC: where does the first frame that vouches
        for itself start? `final`: no more bytes will come to decide with."""
        if self.mode == START or self.mode == RESYNC and self.base == 0 == self.scan and self.buf[:6] == PREFIX:
            head = bytes(self.buf[:6])
            if head == PREFIX:
                self.prefixed = True
                self._found(6)
                peer = self.tcp.peer(self)
                if peer and peer.mode == PEER:
                    peer.mode, peer.next = FRAME, 0
            elif len(head) < 6 and PREFIX.startswith(head) and not final:
                return
            else:  # the initiator spoke first, and not RFC 9329
                self._off()
                peer = self.tcp.peer(self)
                if peer and not peer.prefixed:
                    peer._off()
            return
        while True:
            # a candidate still waiting for its bytes is at scan: no need to search the buffer again
            candidate = self.scan if self.waiting else self._candidate()
            if candidate is None:
                self.scan = max(self.scan, self.pos - 5)  # a marker may straddle the next segment
                break
            verdict = self._vouches(candidate, final)
            self.waiting = verdict is None
            if verdict is None:
                self.scan = candidate
                break
            if verdict:
                self._found(candidate)
                return
            self.scan = candidate + 1
        if final:
            self.scan = self.pos
        passed = [seg for seg in self.window if seg[1] <= self.scan]
        self.window = [seg for seg in self.window if seg[1] > self.scan]
        for _, _, pkt in passed:
            self._release(pkt)
        del self.buf[:self.scan - self.base]
        self.base = self.scan

    def _candidate(self) -> int | None:
        """The first offset from `scan` where a marker or a known SPI follows two length bytes, or
        where a segment starts (senders often start one with a frame)."""
        start = self.scan + 2 - self.base
        hits = [self.base + hit - 2 for hit in (self.buf.find(needle, start) for needle in (NON_ESP_MARKER, *self.spis))
                if hit != -1]
        hits += [a for a, _, _ in self.window if a >= self.scan][:1]
        return min(hits) if hits else None

    def _vouches(self, at: int, final: bool) -> bool | None:
        """Whether a frame starts at `at`; None while the bytes to tell have not arrived."""
        i, have = at - self.base, self.pos - at
        if have < 6:
            return False if final else None
        length = self.buf[i] << 8 | self.buf[i + 1]
        if length < 10:
            return False
        what = bytes(self.buf[i + 2:i + 6])
        if what == NON_ESP_MARKER:
            if length < 6 + IKE_HEADER:
                return False
            if have < 6 + IKE_HEADER:
                return False if final else None
            header = self.buf[i + 6:i + 6 + IKE_HEADER]
            if header[17] >> 4 not in (1, 2) or int.from_bytes(header[24:28], "big") != length - 6:
                return False
        elif what not in self.spis:  # ESP with an SPI not seen yet: the next frame must carry it too
            if have < length + 6:
                return False if final else None
            j = i + length
            return self.buf[j + 2:j + 6] == what and (self.buf[j] << 8 | self.buf[j + 1]) >= 10
        # the whole frame must be there, as a random match is unlikely to be followed by it
        if have < length:
            return False if final else None
        return True

    def _found(self, at: int) -> None:
        """Frames start at `at`: read them from the segments held while looking."""
        self.mode, self.next, self.waiting = FRAME, at, False
        window, self.window = self.window, []
        for a, b, pkt in window:
            if b > at and self.mode == FRAME:  # a broken length further on loses the framing again
                self._frames(max(a, at), b, pkt)
            self._release(pkt)
        self._trim()

    def _resync(self, at: int) -> None:
        self.mode, self.scan, self.base, self.waiting = RESYNC, at, at, False
        self.buf.clear()

    def _off(self) -> None:
        """Not RFC 9329: let go of everything held, as it is."""
        self.mode = OFF
        held = [pkt for _, _, pkt in self.ahead.values()] + [pkt for _, _, pkt in self.window]
        held += [self.open[0]] if self.open else []
        held += [self.header_owner[0]] if self.header_owner else []
        for pkt in held:
            self._release(pkt)
        self.ahead.clear()
        self.ahead_bytes = 0
        self.window.clear()
        self.open = self.header_owner = None
        self.buf.clear()

    # giving up waiting

    def _hole(self, to: int) -> None:
        """The bytes from pos to `to` will not come: the capture lost them or cut them off."""
        if self.mode in (START, PEER):
            for _, _, pkt in self.window:
                self._release(pkt)
            self.window.clear()
            self._resync(to)
        elif self.mode == RESYNC:
            self._look(final=True)
            if self.mode == RESYNC:
                self._resync(to)
        if self.mode == FRAME:
            if self.open:
                self._close()
            if self.header_owner or self.next < to:  # the next frame header is in the hole
                if self.header_owner:
                    self._release(self.header_owner[0])
                    self.header_owner = None
                self._resync(to)
            else:
                self.buf.clear()
                self.base = to
        self.pos = to

    def force(self) -> None:
        """Stop waiting for bytes: settle every segment this stream holds with what has arrived."""
        while self.ahead:
            offset = min(self.ahead)
            if offset > self.pos:
                self._hole(offset)
            self._drain()
        if self.mode in (START, RESYNC):
            self._look(final=True)
        if self.mode == FRAME:
            if self.open:
                self._close()
            if self.header_owner:  # its header will not be read: look for the next frame
                self._release(self.header_owner[0])
                self.header_owner = None
                self._resync(self.pos)
            self._trim()
