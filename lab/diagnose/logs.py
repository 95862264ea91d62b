"""charon logs read line by line (dialects.py takes each line apart), with every line given to the
IKE_SA it belongs to and that IKE_SA's peer.

The IKE_SA of a line is its `<name|id>` when the log has one (file logger or syslog with ike_name,
journald's IKE_SA_UNIQUE_ID); otherwise it is read from the messages themselves: one that names an
IKE_SA (`initiating IKE_SA hq[3] to B`, `IKE_SA hq[3] established between ...`, `received DELETE
for IKE_SA hq[3]`) or a packet to or from a peer starts that IKE_SA's context on its thread (on the
whole log when lines carry no thread), and the lines after it belong to it. The peer is the
remote address of the IKE_SA (packets, `initiating ... to`, `... is initiating`, `established
between`). A daemon start (`Starting IKE charon daemon`, or charon-systemd's `spawning N worker
threads`: it logs no banner) starts the numbering anew.

Reading is streamed: only lines a diagnosis may cite are kept (KEPT), the rest only counted,
so a log of any size is read in bounded memory; the bytes read are bounded by the caller.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable

from lab.diagnose.dialects import _FILELOG, Record, clock, parse

MAX_KEPT = 150_000  # lines kept of one run: beyond, only _ALERT lines are kept (MAX_ALERTS)
MAX_ALERTS = 10_000
_ALERT = re.compile(r"fail|error|retransmit|giving up|deleting|established|mismatch|invalid|unacceptable|expired|"
                    r"revoked|not responding|^no |rekey|^Starting IKE|^spawning \d+ worker")


PAST_BUDGET = (f"kept {MAX_KEPT} charon lines, then only errors, deletions and successes (at most "
               f"{MAX_ALERTS}); allowed: at most {MAX_KEPT} lines kept a run")


def _past_budget(text: str, alerts: int, out: "LogFile") -> bool:
    """Past the budget of lines, only what signals trouble or success is kept, up to a budget of
    its own; the rest is read and counted, and the diagnosis says so."""
    if alerts < MAX_ALERTS and _alert(text):
        return False
    out.truncated = PAST_BUDGET
    return True


def _alert(text: str) -> bool:
    """A line that signals trouble or success (what is kept once the budget of lines is spent)."""
    if text.startswith(("received packet", "sending packet")):
        return False
    if text.startswith(("parsed ", "generating ")):
        return "N(" in text and ("AUTH_FAILED" in text or "NO_PROP" in text or "TS_UNACCEPT" in text or "INVAL" in text)
    return _ALERT.search(text) is not None
# noise a diagnosis never cites: the configuration dump of the lab's `cfg = 2`, vici chatter,
# the kernel's address events, the receiver's idle lines
_NOISE = re.compile(r"^(?:\s{2,}\w[\w.]* = |\s*conn \S+:$|\s*child \S+:$|vici client \d+ |flags changed for |"
                    r"waiting for data on sockets|checkout |checkin |IKE_SA \S+\[\d+\] successfully checked out|"
                    r"(?:adding|removing) (?:DNS server|address)|interface \S+ (?:activated|deactivated|appeared|"
                    r"disappeared)|\d+ entries? in |looking for (?:an? )?(?:SA|IKE_SA|CHILD_SA) )")
_PACKET = re.compile(r"^(?P<dir>received|sending) packet: from (?P<src>\S+?)\[(?P<sport>\d+)\] to "
                     r"(?P<dst>\S+?)\[(?P<dport>\d+)\](?: \((?P<bytes>\d+) bytes\))?")
_NAMED_SA = re.compile(r"(?:^initiating (?:Main Mode |Aggressive Mode )?IKE_SA |^IKE_SA |"
                       r"IKE_SA )(?P<name>[^\s\[]+)\[(?P<uid>\d+)\](?: to (?P<to>\S+)| (?:established|rekeyed) between "
                       r"(?P<l>\S+?)\[(?P<lid>[^\]]*)\]\.\.\.(?P<r>\S+?)\[(?P<rid>[^\]]*)\])?")
_DELETING = re.compile(r"^deleting IKE_SA (?P<name>[^\s\[]+)\[(?P<uid>\d+)\] between (?P<l>\S+?)\[(?P<lid>[^\]]*)\]"
                       r"\.\.\.(?P<r>\S+?)\[(?P<rid>[^\]]*)\]")
_RESPONDING = re.compile(r"^(?P<r>\S+) is initiating an? (?:Main Mode |Aggressive Mode )?IKE_SA")
_MATCHING = re.compile(r"^looking for (?:\S+ )?peer configs matching (?P<l>\S+?)(?:\[(?P<lid>[^\]]*)\])?\.\.\."
                       r"(?P<r>\S+?)\[(?P<rid>[^\]]*)\]")
_QUOTED_IDS = re.compile(r"'([^']*)'(?:\[[^\]]*\])? - '([^']*)'")  # no shared key / tried N keys for 'A' - 'B'
_MYSELF = re.compile(r"^authentication of '(?P<id>.*)' \(myself\)")
_CHILD_SPIS = re.compile(r"CHILD_SA \S+\{\d+\} established with SPIs (?P<i>[0-9a-f]{8})_i (?:\S+ )?(?P<o>[0-9a-f]{8})_o")
# a daemon starts: charon's banner, or its worker threads spawned (charon-systemd logs no banner)
STARTED = re.compile(r"^(?:Starting IKE charon daemon|spawning \d+ worker threads)")
# messages that tell something of their IKE_SA (addresses, identities, SPIs)
_TELLING = ("received packet", "sending packet", "deleting", "looking for", "authentication of", "CHILD_SA ",
            "giving up", "Starting IKE")
_PACKETS = ("received packet", "sending packet")
_NOT_IKE = frozenset({"DMN", "LIB", "JOB", "KNL", "ASN", "TLS", "APP", "MGR"})
_PACKET_PATH = frozenset({"ESP"})  # kernel-libipsec's packet processing (no IKE_SA unless <name|id> says)
_PROVISIONAL = "~"  # an IKE_SA known only by its peer's address so far
MAX_PENDING = 32  # lines of one job waiting for the packet that names its IKE_SA
JOB_SECONDS = 1.0  # a job's lines and its packet lie this close (times often have whole seconds)


@dataclass(slots=True)
class LogLine:
    file: Path  # as cited
    number: int  # 1-based, as `file:line` cites it
    time: str | None  # as written
    subsystem: str | None  # charon's group (IKE, CFG, ...); None in a journal's short output or a bare paste
    ike: str | None  # the IKE_SA's name as the line carries it
    uid: str | None  # the IKE_SA's unique id as the line carries it
    text: str
    dialect: str = "filelog"
    thread: int | None = None
    sa: str | None = None  # the IKE_SA the line belongs to (its unique id, or inferred): one per file and restart
    peer: str | None = None  # that IKE_SA's remote address

    def cite(self) -> str:
        return f"{self.file}:{self.number}"

    def seconds(self) -> float | None:
        """The line's time of day in seconds (None without a time): orders lines of two logs."""
        return clock(self.time)


@dataclass
class IkeSa:
    """What a log says of one IKE_SA."""

    key: str
    name: str | None = None
    uid: str | None = None
    local: str | None = None
    remote: str | None = None
    local_id: str | None = None
    remote_id: str | None = None
    child_spis: set = field(default_factory=set)  # (inbound, outbound) hex as this side logs them
    packets: list = field(default_factory=list)  # (direction, exchange-less size) of the first packets
    ports: set = field(default_factory=set)  # the peer's UDP ports in those packets (behind NAT: its mapping)


@dataclass
class LogFile:
    """One log as read: its kept lines, IKE_SAs and what dialects it was written in."""

    path: Path
    shown: Path
    lines: list[LogLine] = field(default_factory=list)
    sas: dict[str, IkeSa] = field(default_factory=dict)
    dialects: Counter = field(default_factory=Counter)
    read_lines: int = 0
    charon_lines: int = 0
    truncated: str | None = None  # why reading stopped early


def _address(endpoint: str) -> str:
    return endpoint.strip("[]")


class _Reader:
    """The attribution state of one file while it is read."""

    def __init__(self, out: LogFile):
        self.out = out
        self.epoch = 0
        self.context: dict[object, str] = {}  # thread (or None) -> IKE_SA key
        self.by_remote: dict[str, str] = {}  # remote address -> latest IKE_SA key
        self.by_id: dict[str, str] = {}  # the peer's identity -> latest IKE_SA key
        self.last: str | None = None  # the IKE_SA of the latest attributed line, whatever its thread
        # per thread, lines given to its context since its last packet: a job that starts anew
        # (a DPD, a retransmit, a rekey) names its IKE_SA only when its packet leaves
        self.pending: dict[object, list] = {}
        self.sent: dict[object, bool] = {}
        self.guessed = False  # the last line's IKE_SA came from the context alone
        self.alias: dict[str, str] = {}  # a peer's provisional IKE_SA -> the IKE_SA it turned out to be
        self.retransmit = None  # the latest `retransmit N of request` line: `giving up` follows it

    def sa(self, key: str) -> IkeSa:
        found = self.out.sas.get(key)
        if found is None:
            found = self.out.sas[key] = IkeSa(key)
        return found

    def _addressed(self, uid: str) -> bool:
        """Both addresses of the IKE_SA are known (its next packets tell nothing new)."""
        sa = self.out.sas.get(self.key(uid))
        return sa is not None and sa.remote is not None and sa.local is not None and len(sa.packets) >= 8

    def key(self, uid: str) -> str:
        return f"{self.epoch}:{uid}" if self.epoch else uid

    def attribute(self, rec) -> str | None:
        """The IKE_SA of a line: its <name|id>; else an IKE_SA the message names (by name, by the
        peer's address, by the peer's identity); else the thread's context."""
        text = rec.text
        where = rec.thread
        self.guessed = False
        if rec.uid and (not text.startswith(_TELLING) or (text.startswith(_PACKETS) and self._addressed(rec.uid))) \
                and "IKE_SA " not in text and " is initiating " not in text:
            # the common case: the line names its IKE_SA and says nothing about it worth keeping
            key = self.key(rec.uid)
            if key not in self.out.sas:
                self.out.sas[key] = IkeSa(key, name=rec.ike, uid=rec.uid)
            self.context[where] = self.last = key
            return key
        if text.startswith(("Starting IKE", "spawning ")) and STARTED.match(text):
            self.epoch += 1
            for state in (self.context, self.by_remote, self.by_id, self.pending):
                state.clear()
            self.last = None
            return None
        if rec.group in _PACKET_PATH and not rec.uid:
            return None  # libipsec's own threads, working on packets, never in an IKE_SA's job
        key = self.key(rec.uid) if rec.uid else None
        named = _NAMED_SA.search(text) if "IKE_SA " in text else None
        packet = _PACKET.match(text) if text.startswith(("received packet", "sending packet")) else None
        both = named if named and named.group("r") else (_DELETING.match(text) if text.startswith("deleting") else None) \
            or (_MATCHING.match(text) if text.startswith("looking for") else None)
        remote = local = None
        if packet:
            outgoing = packet.group("dir") == "sending"
            remote = _address(packet.group("dst" if outgoing else "src"))
            local = _address(packet.group("src" if outgoing else "dst"))
        elif both:
            local, remote = _address(both.group("l")), _address(both.group("r"))
        elif " is initiating " in text and (found := _RESPONDING.match(text)):
            remote = _address(found.group("r"))
        elif named and named.group("to"):
            remote = _address(named.group("to"))
        if key is None and named:
            key = self.key(named.group("uid"))
            provisional = self.by_remote.get(remote) if remote else (
                self.context.get(where) if where is not None else self.last)
            if provisional and provisional.startswith(_PROVISIONAL) and provisional not in self.alias:
                self.alias[provisional] = key  # the provisional IKE_SA gets its name
        if key is None and text.startswith("giving up after") and self.retransmit is not None:
            key = self.retransmit.sa
        if key is None and remote is not None:
            # the latest IKE_SA with that peer, or one to be named later
            key = self.by_remote.get(remote) or f"{_PROVISIONAL}{self.epoch} {remote}"
        if key is None and "'" in text and (ids := _QUOTED_IDS.search(text)):
            key = self.by_id.get(ids.group(2)) or self.by_id.get(ids.group(1))
        if packet is not None:
            job = self.pending.pop(where, [])
            if packet.group("dir") == "sending":
                # a job that sends ends with its packet, and its lines belong to the IKE_SA it names;
                # a received packet starts a job, so what its thread logged before was another job's,
                # and so is a line further back than a job lasts
                at = clock(rec.time)
                for line in job:
                    if at is None or (then := line.seconds()) is None or at - then <= JOB_SECONDS:
                        line.sa = key
            self.sent[where] = packet.group("dir") == "sending"
        if key is None:
            known = self.context.get(where) if where is not None else None
            key = known or self.last  # a thread seen for the first time: the latest IKE_SA, until its packet
            self.guessed = known is None or self.sent.get(where, False)
        if key is None:
            return None
        self.context[where] = key
        self.last = key
        sa = self.sa(key)
        if rec.uid or named:
            sa.uid = sa.uid or rec.uid or named.group("uid")
            sa.name = sa.name or rec.ike or (named.group("name") if named else None)
        if both:
            sa.local_id = both.group("lid") or sa.local_id
            sa.remote_id = both.group("rid") or sa.remote_id
            if sa.remote_id:
                self.by_id[sa.remote_id] = key
        if text.startswith("authentication of") and (myself := _MYSELF.match(text)) and not sa.local_id:
            sa.local_id = myself.group("id")
        if "established with SPIs" in text and (spis := _CHILD_SPIS.search(text)):
            sa.child_spis.add((spis.group("i"), spis.group("o")))
        if remote:
            sa.remote = remote
            self.by_remote[remote] = key
        elif sa.remote and self.by_remote.get(sa.remote, key).startswith(_PROVISIONAL):
            self.by_remote[sa.remote] = key
        if local:
            sa.local = local
        if packet and len(sa.packets) < 8:
            sa.packets.append((packet.group("dir"), int(packet.group("bytes") or 0)))
            sa.ports.add(int(packet.group("dport" if packet.group("dir") == "sending" else "sport")))
        return key


def read_stream(stream: BinaryIO, path: Path, shown: Path | None = None, max_bytes: int | None = None,
                kept: list | None = None) -> LogFile:
    """The charon lines of a byte stream; other lines (a syslog's other daemons, shell prompts) are
    skipped. Reading stops after `max_bytes` (the file then says so in `truncated`)."""
    out = LogFile(path, shown or path)
    reader = _Reader(out)
    budget = max_bytes
    keep = out.lines
    room = MAX_KEPT - (len(kept) if kept is not None else 0)
    dialects: dict[str, int] = {}
    number = charon = filelog = 0
    full = False  # both budgets spent: the lines after are only counted
    fast_match, noise = _FILELOG.match, _NOISE.match
    for number, line in enumerate(_lines(stream, max_bytes, out), 1):
        fast = fast_match(line)
        if fast is not None:  # the common case without a Record first: most lines are noise
            filelog += 1
            if full:
                out.truncated = PAST_BUDGET
                continue
            text = line[fast.end():]
            if noise(text) or (len(keep) >= room and _past_budget(text, len(keep) - room, out)):
                continue
            time, thread, group, ike, uid = fast.groups()
            rec = Record("filelog", time, int(thread), group, ike, uid, text.rstrip("\r"))
        else:
            rec = parse(line)
            if rec is None:
                continue
            charon += 1
            dialects[rec.dialect] = dialects.get(rec.dialect, 0) + 1
            if full:
                out.truncated = PAST_BUDGET
                continue
            if _NOISE.match(rec.text):
                continue  # nothing of an IKE_SA: the configuration dump, vici, the kernel's addresses
        if len(keep) >= room and _past_budget(rec.text, len(keep) - room, out):
            continue
        sa = reader.attribute(rec)
        if _routine(rec.text, reader, sa):
            continue
        line = LogLine(out.shown, number, rec.time, rec.group, rec.ike, rec.uid, rec.text, rec.dialect,
                       rec.thread, sa)
        keep.append(line)
        full = len(keep) - room >= MAX_ALERTS
        if rec.text.startswith("retransmit "):
            reader.retransmit = line
        if reader.guessed and rec.group not in _NOT_IKE:
            pending = reader.pending.setdefault(rec.thread, [])
            pending.append(line)
            del pending[:-MAX_PENDING]
    out.read_lines, out.charon_lines = number, charon + filelog
    out.dialects.update(dialects)
    if filelog:
        out.dialects["filelog"] += filelog
    for key, named in reader.alias.items():
        _merge(out.sas, key, named)
    for line in keep:
        if line.sa is not None:
            line.sa = reader.alias.get(line.sa, line.sa)
            line.peer = out.sas[line.sa].remote if line.sa in out.sas else None
    return out


def _merge(sas: dict[str, IkeSa], provisional: str, named: str) -> None:
    """What was learnt of a provisional IKE_SA goes to the IKE_SA it turned out to be."""
    old = sas.pop(provisional, None)
    if old is None:
        return
    new = sas.setdefault(named, IkeSa(named))
    new.remote, new.local = new.remote or old.remote, new.local or old.local
    new.local_id, new.remote_id = new.local_id or old.local_id, new.remote_id or old.remote_id
    new.child_spis |= old.child_spis
    new.packets = old.packets + new.packets


CHUNK = 1 << 20
_FIRST_EXCHANGES = ("IKE_SA_INIT", "IKE_AUTH", "ID_PROT", "AGGRESSIVE")


def _routine(text: str, reader: _Reader, sa: str | None) -> bool:
    """A line of an IKE_SA's routine once it is up, read (for its IKE_SA) but not kept: packets
    received after the first eight, messages other than the first exchanges that carry no notify.
    What a diagnosis cites (errors, retransmits, deletes, establishment) is always kept."""
    if text.startswith(("parsed ", "generating ")):
        return "N(" not in text and not any(x in text for x in _FIRST_EXCHANGES)
    if text.startswith("received packet") and sa is not None:
        known = reader.out.sas.get(sa)
        return known is not None and len(known.packets) >= 8
    return False


def _lines(stream: BinaryIO, max_bytes: int | None, out: LogFile):
    """The lines of a byte stream, decoded a chunk at a time, up to `max_bytes`."""
    left = max_bytes
    rest = b""
    while True:
        chunk = stream.read(CHUNK if left is None else min(CHUNK, left + 1))
        if not chunk:
            break
        if left is not None:
            left -= len(chunk)
            if left < 0:
                out.truncated = f"read the first {max_bytes} bytes; allowed: at most {max_bytes} bytes a log"
                chunk = chunk[:len(chunk) + left]
        *whole, rest = (rest + chunk).split(b"\n")
        if whole:
            yield from b"\n".join(whole).decode("utf-8", "replace").split("\n")
        if left is not None and left < 0:
            return
    if rest:
        yield rest.decode("utf-8", "replace")


def read(path: Path, max_bytes: int | None = None) -> list[LogLine]:
    """The kept charon lines of a file (tests and tools; `lab diagnose` reads through sources)."""
    with path.open("rb") as stream:
        return read_stream(stream, path, max_bytes=max_bytes).lines


def looks_like_charon_log(head: bytes) -> bool:
    """A file's first bytes hold a charon line (a line of the first 64 KiB, never more)."""
    return any(parse(line) is not None for line in head.decode("utf-8", "replace").splitlines()[:400] if line)


DIALECT_NAMES = {
    "filelog": "charon file log", "filelog-notime": "charon file log without time",
    "filelog-json": "charon file log as JSON", "syslog-rfc3164": "syslog (RFC 3164)",
    "syslog-rfc5424": "syslog (RFC 5424)", "opnsense": "OPNsense syslog", "pfsense": "pfSense syslog",
    "charon-nm": "NetworkManager charon-nm", "journald-short": "journald (short)",
    "journald-short-iso": "journald (short-iso)", "journald-json": "journald (json)",
    "swanctl-log": "swanctl --log", "logcat-brief": "Android logcat (brief)",
    "logcat-threadtime": "Android logcat (threadtime)", "android-app": "strongSwan Android app log",
    "bare": "bare charon messages",
}


def describe(dialects: Iterable[tuple[str, int]]) -> str:
    """`charon file log (120 lines), syslog (RFC 3164) (30 lines)`."""
    return ", ".join(f"{DIALECT_NAMES.get(d, d)} ({n} lines)" for d, n in dialects)
