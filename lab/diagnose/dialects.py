"""One line of a charon log, in any of the forms it reaches people, taken apart by its content.

charon writes the same record everywhere: a thread, a group (IKE, CFG, ...), the IKE_SA's name and
unique id when it belongs to one, and the message. What differs is the wrapping (facts from
strongSwan's source: src/libcharon/bus/listeners/file_logger.c and sys_logger.c,
src/charon-systemd/charon-systemd.c, src/swanctl/commands/log.c, the android_log plugin and the
Android app's charonservice.c, which sets `time_format = %b %e %T`):

| dialect | a line |
| --- | --- |
| filelog | `[<strftime time_format>[.ms|.us] ]TT[GRP] [<name|N> ]message` (`log_level`: `[GRP1]`) |
| filelog-json | `{"time":...,"thread":7,"group":"IKE","level":1,"ikesa-uniqueid":"3","ikesa-name":"hq","msg":"..."}` |
| syslog-rfc3164 | `Dec  5 07:38:14 host charon: TT[GRP] [<name|N> ]message` (or `charon[PID]`, `<PRI>` first) |
| syslog-rfc5424 | `<30>1 2026-12-05T07:38:14+00:00 host charon 4242 - - TT[GRP] ...` |
| opnsense | RFC 5424 with OPNsense's `[meta sequenceId="N"]` |
| pfsense | `Jan 21 12:34:10 charon: TT[GRP] ...` (no host: the datagram pfSense's syslog writes) |
| charon-nm | NetworkManager's charon-nm through syslog or the journal: program `charon-nm` |
| journald-short / -iso | `Dec 05 07:38:14 host charon-systemd[PID]: message` (charon-systemd: the bare message) |
| journald-json | `journalctl -o json`: MESSAGE plus GROUP, THREAD, IKE_SA_UNIQUE_ID, IKE_SA_NAME |
| swanctl-log | `TT[GRP] message` (vici log events; no IKE_SA name); `--raw`: `log {group=IKE ... msg=...}` |
| logcat-brief / -threadtime | `I/charon  ( 1234): TT[GRP] message`, `12-05 07:38:14.123  1234  1250 I charon  : TT[GRP] ...` |
| android-app | the app's own file log: `Dec  5 07:38:14 TT[GRP] message` |
| bare | the message alone, as forums show it: recognised by charon's own wording (VOCABULARY) |

Pasted lines also come with the `<name|N>` eaten by an HTML renderer, or written `[name|N]`.
A line is taken as charon's only if it has the `TT[GRP]` core, comes from a charon program, or
says something in charon's words; anything else (other daemons, shell prompts) is skipped.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

GROUPS = "DMN|MGR|IKE|CHD|JOB|CFG|KNL|NET|ASN|ENC|TNC|IMC|IMV|PTS|TLS|APP|ESP|LIB"
# programs whose syslog/journal lines are charon's
PROGRAMS = {"charon", "charon-nm", "charon-systemd", "charon-cmd", "ipsec", "strongswan", "ipsec_starter"}

_MONTH = r"[A-Z][a-z]{2}"
# prefixes before the core (or before a bare message), most specific first
_PREFIXES: list[tuple[str, re.Pattern]] = [(name, re.compile(pattern)) for name, pattern in (
    ("logcat-threadtime", r"^(?P<time>\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\s+\d+\s+\d+ [VDIWEFA] (?P<prog>[\w-]+)\s*: "),
    ("logcat-time", r"^(?P<time>\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) [VDIWEFA]/(?P<prog>[\w-]+)\s*\(\s*\d+\): "),
    ("logcat-brief", r"^[VDIWEFA]/(?P<prog>[\w-]+)\s*\(\s*\d+\): "),
    ("syslog-rfc5424", r"^(?:<\d{1,3}>)?1 (?P<time>\S+) (?P<host>\S+) (?P<prog>\S+) \S+ \S+ "
                       r"(?P<sd>-|(?:\[(?:[^\]\"]|\"(?:[^\"\\]|\\.)*\")*\])+) "),
    ("journald-short-iso", r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
                           r"(?P<host>\S+) (?P<prog>[\w.-]+)(?P<pid>\[\d+\])?: "),
    ("syslog-rfc3164", rf"^(?:<\d{{1,3}}>)?(?P<time>{_MONTH} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?) "
                       r"(?:(?P<host>[^\s:\[]+) )?(?P<prog>[\w./-]+?)(?P<pid>\[\d+\])?: "),
    ("opnsense-view", r"^(?P<time>\d{4}-\d\d-\d\dT\S+)\t\w+\t(?P<prog>[\w-]+)\t"),
)]
_SYSLOG_TIME = re.compile(rf"^{_MONTH} (?P<day>[ \d]\d) ")


@dataclass(slots=True)
class Record:
    dialect: str
    time: str | None
    thread: int | None
    group: str | None
    ike: str | None  # the IKE_SA's name
    uid: str | None  # the IKE_SA's unique id
    text: str


def _program_dialect(name: str, found: re.Match) -> str | None:
    """The dialect of a recognised prefix, or None when the program is not charon's."""
    prog = found.group("prog").rsplit("/", 1)[-1]
    if prog not in PROGRAMS:
        return None
    if prog == "charon-nm":
        return "charon-nm"
    if name == "syslog-rfc5424":
        return "opnsense" if "sequenceId" in found.group("sd") else name
    if name == "opnsense-view":
        return "opnsense"
    if name == "syslog-rfc3164":
        day = _SYSLOG_TIME.match(found.group("time"))
        if prog == "charon-systemd" or (day and day.group("day").startswith("0")):
            return "journald-short"  # journalctl pads the day with 0, syslog with a space
        if found.group("host") is None:
            return "pfsense"  # the syslog datagram as pfSense writes it, without a host
        return name
    if name == "journald-short-iso":
        return name
    return "logcat-threadtime" if name == "logcat-time" else name


_GROUP_SET = frozenset(GROUPS.split("|"))
_DIGITS = str.maketrans("0123456789", "0000000000")
_SHAPES: dict[str, tuple[str, int, int] | None] = {}  # a prefix's shape (digits as 0) -> dialect, time span
MAX_SHAPES = 4096


def _find_core(line: str) -> tuple[int, int, int] | None:
    """(start of the thread number, position of '[', end of the core's `[GRP]` and space) of the
    first `TT[GRP]` at the start or after a space or colon; plain string operations (a log of a
    million lines is read in seconds)."""
    at = line.find("[")
    while 0 <= at < 256:
        group = line[at + 1:at + 4]
        close = at + 4
        if line[close:close + 1] in "01234" and line[close + 1:close + 2] == "]":
            close += 1
        if group in _GROUP_SET and line[close:close + 1] == "]":
            start = at
            while start > 0 and at - start < 3 and line[start - 1].isdigit():
                start -= 1
            if start == 0 or line[start - 1] in " \t:":
                end = close + 1
                return start, at, end + 1 if line[end:end + 1] == " " else end
        at = line.find("[", at + 1)
    return None


def _ike_sa(line: str, at: int) -> tuple[str | None, str | None, int]:
    """`<name|id> `, `<id> ` or `[name|id] ` at `at`: (name, id, where the message starts)."""
    opener = line[at:at + 1]
    if opener not in ("<", "["):
        return None, None, at
    close = line.find(">" if opener == "<" else "]", at + 1, at + 200)
    if close < 0 or line[close + 1:close + 2] != " ":
        return None, None, at
    inside = line[at + 1:close]
    name, bar, uid = inside.rpartition("|")
    if not uid.isdigit() or len(uid) > 10 or (bar and (not name or "<" in name or " " in name.strip())):
        return None, None, at
    return (name or None), uid, close + 2


def _prefix_dialect(prefix: str) -> tuple[str, int, int] | None:
    """The dialect and time span of what precedes the core; None: not charon's."""
    shape = prefix.translate(_DIGITS)
    if shape in _SHAPES:
        return _SHAPES[shape]
    found = _classify_prefix(prefix)
    if len(_SHAPES) < MAX_SHAPES:
        _SHAPES[shape] = found
    return found


def _classify_prefix(prefix: str) -> tuple[str, int, int] | None:
    for name, pattern in _PREFIXES:
        found = pattern.match(prefix)
        if found and found.end() == len(prefix):
            dialect = _program_dialect(name, found)
            if dialect is None:
                return None
            span = found.span("time") if "time" in found.groupdict() and found.group("time") else (0, 0)
            return dialect, *span
    # any other prefix: the file logger's strftime time_format (free form), or the Android app's
    # `%b %e %T`
    head = prefix.rstrip()
    if len(head) > 64 or head.endswith(":"):
        return None
    dialect = "android-app" if re.fullmatch(rf"{_MONTH} [ \d]\d \d\d:\d\d:\d\d", head) else "filelog"
    return dialect, 0, len(head)


# the file logger with `%H:%M:%S` (strongSwan's example, the lab's own): one match for the common case
_FILELOG = re.compile(rf"(\d\d:\d\d:\d\d(?:\.\d+)?) (\d{{2,3}})\[({GROUPS})[0-4]?\] ?"
                      r"(?:<(?:([^|<>\s][^|<>]*)\|)?(\d{1,10})> )?")


def parse(line: str) -> Record | None:
    """The charon record of one line, or None when the line is not charon's."""
    fast = _FILELOG.match(line)
    if fast is not None:
        time, thread, group, ike, uid = fast.groups()
        return Record("filelog", time, int(thread), group, ike, uid, line[fast.end():].rstrip("\r\n"))
    first = line[:1]
    if first == "{":
        return _json(line)
    if first == "l" and line.startswith("log {"):
        return _vici_raw(line)
    core = _find_core(line)
    if core is not None:
        start, at, end = core
        thread = line[start:at]
        ike, uid, text_at = _ike_sa(line, end)
        text = line[text_at:].rstrip("\r\n")
        group = line[at + 1:at + 4]
        if start == 0:
            return Record("filelog-notime" if thread else "swanctl-log", None, int(thread) if thread else None,
                          group, ike, uid, text)
        prefix = line[:start]
        found = _prefix_dialect(prefix)
        if found is not None:
            dialect, t0, t1 = found
            return Record(dialect, prefix[t0:t1] if t1 else None, int(thread) if thread else None, group,
                          ike, uid, text)
    # a bare message: from a charon program (charon-systemd writes nothing else), or in charon's words
    for name, pattern in _PREFIXES:
        found = pattern.match(line)
        if found:
            dialect = _program_dialect(name, found)
            if dialect is None:
                return None
            text = line[found.end():].rstrip("\r\n")
            if dialect in ("journald-short", "journald-short-iso") or is_charon_message(text):
                return Record(dialect, found.groupdict().get("time"), None, None, None, None, text)
            return None
    text = line.strip()
    if is_charon_message(text):
        return Record("bare", None, None, None, None, None, text)
    return None


_CLOCK = re.compile(r"(?<!\d)(\d{1,2}):(\d\d):(\d\d)(?:[.,](\d{1,9}))?")
_DAY = 86_400


def clock(time: str | None) -> float | None:
    """Seconds since midnight of a record's time as its dialect writes it (any strftime form with
    %H:%M:%S, ISO 8601, syslog, logcat; journald's microseconds since the epoch, UTC), for
    ordering the lines of two logs of one clock; None without a time."""
    if not time:
        return None
    if time.isdigit():  # journald's __REALTIME_TIMESTAMP
        return int(time) % (_DAY * 1_000_000) / 1_000_000 if len(time) <= 20 else None
    found = _CLOCK.search(time)
    if found is None:
        return None
    h, m, s, frac = found.groups()
    return int(h) * 3600 + int(m) * 60 + int(s) + (int(frac) / 10 ** len(frac) if frac else 0.0)


def _json(line: str) -> Record | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if "MESSAGE" in doc:  # journalctl -o json
        prog = doc.get("SYSLOG_IDENTIFIER") or doc.get("_COMM") or ""
        if not isinstance(prog, str) or prog not in PROGRAMS:
            return None
        text = _journal_value(doc["MESSAGE"])
        if text is None:
            return None
        time = doc.get("__REALTIME_TIMESTAMP")
        thread = _int(doc.get("THREAD"))
        group = doc.get("GROUP") if isinstance(doc.get("GROUP"), str) else None
        inner = parse(text) if group is None else None
        if inner is not None and inner.group:  # charon's syslog logger under journald: the core is in MESSAGE
            inner.dialect, inner.time = "journald-json", str(time) if time else None
            return inner
        return Record("journald-json", str(time) if time else None, thread, group,
                      _str(doc.get("IKE_SA_NAME")), _str(doc.get("IKE_SA_UNIQUE_ID")), text)
    if "msg" in doc and "group" in doc:  # the file logger's json = yes (strongSwan 5.9.10 and later)
        text = doc["msg"]
        if not isinstance(text, str):
            return None
        return Record("filelog-json", _str(doc.get("time")), _int(doc.get("thread")), _str(doc.get("group")),
                      _str(doc.get("ikesa-name")), _str(doc.get("ikesa-uniqueid")), text.split("\n", 1)[0])
    return None


def _journal_value(value) -> str | None:
    """journald writes a MESSAGE that is not valid UTF-8 as a list of byte values."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value[:65536]):
        return bytes(value[:65536]).decode("utf-8", "replace")
    return None


def _str(value) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _int(value) -> int | None:
    try:
        return int(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    except ValueError:
        return None


_VICI_FIELD = re.compile(r"(group|level|thread|ikesa-name|ikesa-uniqueid)=(\S+) ")


def _vici_raw(line: str) -> Record | None:
    """`swanctl --log --raw`: `log {group=IKE level=1 thread=7 ikesa-name=hq ikesa-uniqueid=1 msg=...}`."""
    body = line.rstrip("\r\n")
    at = body.find(" msg=")
    if not body.endswith("}") or at < 0:
        return None
    fields = dict(_VICI_FIELD.findall(body[5:at + 1]))
    if "group" not in fields:
        return None
    return Record("swanctl-log", None, _int(fields.get("thread")), fields["group"], fields.get("ikesa-name"),
                  fields.get("ikesa-uniqueid"), body[at + 5:-1])


# -- charon's words -----------------------------------------------------------------------------
# The starts of messages charon logs at levels 0-1 (and the level-2 ones a diagnosis reads), from
# its format strings; a bare line is charon's only if it says one of these.
VOCABULARY = re.compile(r"^\s{0,3}(?:" + "|".join((
    r"(?:received|sending) packet: from ",
    r"(?:parsed|generating) \S+ (?:request|response) \d+ \[",
    r"initiating (?:Main Mode |Aggressive Mode )?IKE_SA ",
    r"\S+ is initiating an? (?:Main Mode |Aggressive Mode )?IKE_SA",
    r"IKE_SA \S+\[\d+\] (?:established|state change|rekeyed)",
    r"CHILD_SA \S+\{\d+\} established",
    r"(?:outbound )?CHILD_SA \S+\{\d+\} established",
    r"(?:retransmit \d+ of request|giving up after \d+ retransmits)",
    r"(?:establishing|rekeying|reauthenticating) (?:IKE_SA|CHILD_SA) ",
    r"(?:deleting|received DELETE for|sending DELETE for) ",
    r"IKE_SA deleted|CHILD_SA closed",
    r"(?:closing|closing expired) CHILD_SA ",
    r"received \S+ notify(?: error)?",
    r"received (?:AUTHENTICATION_FAILED|NO_PROPOSAL_CHOSEN|TS_UNACCEPTABLE|INVALID_KE_PAYLOAD|"
    r"INVALID_ID_INFORMATION|INVALID_SYNTAX|INTERNAL_ADDRESS_FAILURE|FAILED_CP_REQUIRED|SINGLE_PAIR_REQUIRED) ",
    r"tried \d+ shared keys? for ",
    r"no (?:shared key|peer config|matching peer config|trusted \S+ public key|issuer certificate|proposal|"
    r"acceptable proposal|IKE config|matching CHILD_SA config|virtual IP|private key|alternative config|"
    r"matching outbound IPsec policy)",
    r"pool '[^']*' is full",
    r"old path is not (?:available|preferred) anymore",
    r"found \d+ matching configs?, but none allows",
    r"looking for (?:\S+ )?peer configs matching",
    r"(?:selected|received|configured) proposals?: ",
    r"selecting (?:proposal|traffic selectors)",
    r"config: .*, received: .* => match: ",
    r"traffic selectors .* unacceptable",
    r"authentication of '.*' (?:\(myself\) )?with ",
    r"(?:received|sending) (?:end entity |issuer |)cert(?:ificate)? (?:request )?",
    r"(?:subject|issuer) certificate invalid",
    r"certificate (?:was revoked|status is)",
    r"constraint check failed",
    r"using (?:trusted |)(?:certificate|ca certificate|intermediate ca certificate) ",
    r"(?:crl|ocsp) ",
    r"(?:local|remote) host is behind NAT",
    r"remote endpoint changed from ",
    r"sending (?:DPD request|keep alive|address list update)",
    r"(?:peer|remote host) (?:supports|not responding|didn't accept)",
    r"peer not responding",
    r"unable to (?:reauthenticate|install|apply|allocate)",
    r"invalid (?:HASH_V1|ID_V1) payload length, decryption failed",
    r"scheduling (?:rekeying|reauthentication|CHILD_SA recreate)",
    r"rescheduling reauthentication",
    r"maximum IKE_SA lifetime",
    r"(?:IKE_SA|CHILD_SA) rekey(?:ed| collision)",
    r"detected (?:reauth|rekeying|changes in NAT)",
    r"creating (?:rekey|delete) job for CHILD_SA",
    r"splitting IKE message",
    r"(?:DPD check timed out|restarting CHILD_SA|failed to establish CHILD_SA)",
    r"applying DH public value failed|DH group selection failed|negotiated DH group",
    r"KE payload missing|unable to apply received KE value",
    r"(?:assigning|peer requested) virtual IP",
    r"(?:vici client \d+ |loaded plugins: |added configuration |received stroke: )",
    r"Starting IKE charon daemon|SIGTERM received|spawning \d+ worker threads",
    r"closing IKE_SA due CHILD_SA setup failure",
)) + ")")


def is_charon_message(text: str) -> bool:
    return bool(VOCABULARY.match(text))
