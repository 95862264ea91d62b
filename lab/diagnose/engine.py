"""The verdict: the catalogue's classes tried in order against the facts of an observation.

fault: the first class whose evidence holds (and, for a class marked `resolved`, that no later
success of the same peer in the same source superseded); healthy: no class holds and an SA was
established; indeterminate: neither, with the reason. Classes marked `fallback` are tried after
all others. With several peers (a hub's spokes), each peer also gets a verdict of its own, and the
fault names the peers it belongs to.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lab.capture import packets
from lab.diagnose import catalogue as cat
from lab.diagnose import facts as F
from lab.diagnose import peers as P
from lab.diagnose.logs import describe, read_stream
from lab.diagnose.sources import MAX_FILE_BYTES, Inputs, open_regular
from lab.exitcodes import ExitCode

STEPS = {1: {"en": "reachability", "zh": "网络通达性"}, 2: {"en": "negotiation", "zh": "协商过程"},
         3: {"en": "authentication and policy", "zh": "认证与策略"}}
EVIDENCE_SHOWN = 8
PEERS_SHOWN = 20  # peers listed one by one; beyond that the healthy ones are counted


@dataclass
class Diagnosis:
    label: str
    verdict: str  # healthy / fault / indeterminate
    step: int | None = None
    fault_class: str | None = None
    evidence: list[dict] = field(default_factory=list)
    ruled_out: list[dict] = field(default_factory=list)
    reason: dict | None = None  # indeterminate: why
    inputs: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    peers: list[dict] = field(default_factory=list)  # per peer its own verdict (when there are several)
    faulty: list[str] = field(default_factory=list)  # the peers the fault belongs to
    candidates: list[dict] = field(default_factory=list)  # candidate causes (a fault whose reason is elsewhere)
    difference: list[dict] = field(default_factory=list)  # both sides given: what differs between them
    cited: list = field(default_factory=list, repr=False)  # the evidence itself (F.Evidence), for peers

    @property
    def exit_code(self) -> ExitCode:
        return {"healthy": ExitCode.OK, "fault": ExitCode.FAILED, "indeterminate": ExitCode.INDETERMINATE}[self.verdict]

    def entry(self) -> cat.FaultClass | None:
        return cat.catalogue().classes[self.fault_class] if self.fault_class else None

    def as_json(self) -> dict:
        entry = self.entry()
        return {
            "label": self.label, "verdict": self.verdict, "step": self.step, "class": self.fault_class,
            "title": entry.title.model_dump() if entry else None,
            "evidence": self.evidence, "ruled_out": self.ruled_out,
            "explanation": entry.explanation.model_dump() if entry else None,
            "next": entry.next.model_dump() if entry else None,
            "fix": entry.fix.model_dump() if entry else None,
            "reason": self.reason, "inputs": self.inputs, "notes": self.notes,
            "peers": self.peers, "faulty_peers": self.faulty, "candidates": self.candidates,
            "difference": self.difference,
        }


def observe(inputs: Inputs, ike_ports: frozenset[int] = F.IKE_PORTS,
            nat_t_ports: frozenset[int] = packets.NAT_T_PORTS) -> F.Observation:
    obs = F.Observation()
    for found in inputs.captures:
        capture = F.ObservedCapture(found.path, found.where, found.node, two_way=found.where is not None)
        obs.captures.append(capture)
        try:
            for packet in packets.stream(found.path, found.mac, nat_t_ports=nat_t_ports, ike_ports=ike_ports,
                                         max_bytes=MAX_FILE_BYTES):
                obs.add(capture, packet)
        except packets.CaptureError as exc:
            capture.error = str(exc)
            obs.notes.append(f"{found.path}: {exc}")
    for source in inputs.logs:
        fd, _ = open_regular(source.path)
        with open(fd, "rb") as stream:
            log = read_stream(stream, source.path, source.shown, MAX_FILE_BYTES, obs.logs)
        obs.log_files.append(log)
        obs.logs += log.lines
        if log.truncated:
            obs.notes.append(f"{source.shown}: {log.truncated}")
    return obs


def classes() -> list[tuple[str, cat.FaultClass]]:
    """The catalogue's classes in the order they are tried: as written, the fallbacks last."""
    entries = list(cat.catalogue().classes.items())
    return [e for e in entries if not e[1].fallback] + [e for e in entries if e[1].fallback]


def _verdict(obs: F.Observation, found: Diagnosis, owner=None) -> Diagnosis:
    successes = F.successes(obs)
    facts: dict[str, list[F.Evidence]] = {}
    for name, entry in classes():
        evidence = _holds(entry, obs, facts)
        if evidence is None:
            continue
        if entry.resolved and _superseded(evidence, successes, owner):
            found.ruled_out.append(_text(f"{name}: seen, then resolved by a later success",
                                         f"{name}:出现过,随后已成功建立"))
            continue
        found.verdict, found.step, found.fault_class = "fault", entry.step, name
        found.cited = _dedup(evidence + _also(entry, obs, facts))
        found.evidence = [e.cite() for e in found.cited][:EVIDENCE_SHOWN]
        found.ruled_out = _passed_steps(obs, successes, below=entry.step) + found.ruled_out
        found.candidates = _candidates(entry, obs)
        return found
    if successes:
        found.verdict = "healthy"
        found.evidence = [e.cite() for e in successes[:3]]
        found.ruled_out = _passed_steps(obs, successes, below=4) + found.ruled_out
        return found
    found.reason = _why_indeterminate(obs)
    found.ruled_out = _passed_steps(obs, successes, below=4) + found.ruled_out
    return found


def _inputs(obs: F.Observation) -> dict:
    return {"captures": [{"file": str(c.path), "where": c.name(), "packets": c.packets, "one_sided": c.one_sided()}
                         for c in obs.captures],
            "logs": [{"file": str(log.shown), "lines": log.read_lines, "charon_lines": log.charon_lines,
                      "dialects": dict(log.dialects.most_common()), "read_as": describe(log.dialects.most_common())}
                     for log in obs.log_files]}


def diagnose(inputs: Inputs, **ports) -> Diagnosis:
    obs = observe(inputs, **ports)
    return diagnose_observation(obs, inputs.label)


def diagnose_observation(obs: F.Observation, label: str) -> Diagnosis:
    from lab.diagnose.sides import differences

    peers = P.partition(obs)
    owner = P.owner(peers)
    found = _verdict(obs, Diagnosis(label, "indeterminate", inputs=_inputs(obs), notes=list(obs.notes)), owner)
    if len(peers) > 1:
        _per_peer(found, obs, peers, owner)
    found.difference = differences(obs, peers)
    return found


def _per_peer(found: Diagnosis, obs: F.Observation, peers: list[P.Peer], owner) -> None:
    """Each peer's own verdict; the fault is named by peer, and a fault of one peer is never lost in
    the success of others."""
    order = {name: i for i, (name, _) in enumerate(classes())}
    by_sa = P.lines_by_sa(obs)
    own = [_verdict(P.restrict(obs, peer, by_sa), Diagnosis(peer.label(), "indeterminate")) for peer in peers]
    evidence_of = {owner(e) for e in found.cited} - {None}
    faulty = [i for i, d in enumerate(own) if d.verdict == "fault"]
    if found.verdict != "fault" and faulty:
        first = min(faulty, key=lambda i: order[own[i].fault_class])
        part = own[first]
        found.verdict, found.step, found.fault_class = "fault", part.step, part.fault_class
        found.evidence, found.candidates, found.reason, found.cited = part.evidence, part.candidates, None, part.cited
        evidence_of = {first}
    named = sorted(set(faulty) | evidence_of) if found.verdict == "fault" else []
    found.faulty = [peers[i].label() for i in named]
    listed = [i for i in range(len(peers)) if own[i].verdict != "healthy"][:PEERS_SHOWN]
    listed += [i for i in range(len(peers)) if own[i].verdict == "healthy"][:max(0, PEERS_SHOWN - len(listed))]
    found.peers = [{"peer": peers[i].label(), "verdict": own[i].verdict, "step": own[i].step,
                    "class": own[i].fault_class, "evidence": own[i].evidence[:2]}
                   for i in sorted(listed, key=lambda i: (own[i].verdict == "healthy", i))]
    if len(peers) > len(listed):
        found.notes.append(f"{len(peers) - len(listed)} more peers, all healthy, not listed")


def _candidates(entry: cat.FaultClass, obs: F.Observation) -> list[dict]:
    """The candidate causes of a class whose reason is on the other side, chosen by what this side's
    log shows (how it authenticated, what it sent)."""
    out = []
    for candidate in entry.candidates:
        if candidate.when is None or any(re.search(candidate.when, l.text) for l in obs.logs):
            out.append(candidate.text.model_dump())
    return out


def _holds(entry: cat.FaultClass, obs: F.Observation, facts: dict) -> list[F.Evidence] | None:
    """The evidence of the first signature whose every item holds, or None."""
    for signature in entry.signatures:
        evidence: list[F.Evidence] = []
        for item in signature:
            found = _item(item, obs, facts)
            if not found:
                break
            evidence += found
        else:
            return evidence
    return None


def _item(item: cat.Item, obs: F.Observation, facts: dict) -> list[F.Evidence]:
    if item.fact:
        if item.fact not in facts:
            facts[item.fact] = F.FACTS[item.fact](obs)
        return facts[item.fact]
    return [F.Logged(line) for line in _matching(obs, item.log)[:3]]


def _matching(obs: F.Observation, log: str) -> list:
    """Every line matching a catalogue pattern, found once per observation; a peer's part of an
    observation picks its own from its parent's."""
    parent = obs.cache.get("parent")
    if parent is not None:
        members = obs.cache["members"]
        return [line for line in _matching(parent, log) if id(line) in members]
    key = ("log", log)
    if key not in obs.cache:
        search, needed = cat.compiled(log).search, cat.required_text(log)
        if "texts" not in obs.cache:
            obs.cache["texts"] = [line.text for line in obs.logs]
        obs.cache[key] = [line for line, text in zip(obs.logs, obs.cache["texts"]) if needed in text and search(text)]
    return obs.cache[key]


def _also(entry: cat.FaultClass, obs: F.Observation, facts: dict) -> list[F.Evidence]:
    """What corroborates the verdict without deciding it: the AUTHENTICATION_FAILED the initiator
    received, the error the capture shows."""
    out: list[F.Evidence] = []
    for item in entry.also:
        out += _item(item, obs, facts)
    return out


def _dedup(evidence: list[F.Evidence]) -> list[F.Evidence]:
    seen, out = set(), []
    for e in evidence:
        key = e.position()
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def _superseded(evidence: list[F.Evidence], successes: list[F.Evidence], owner=None) -> bool:
    """Every source the evidence came from shows a success after it, of the same peer (a hub's
    other spokes coming up resolve nothing of this one's failure)."""
    peer = owner or (lambda e: None)
    last: dict[tuple, float] = {}
    for e in evidence:
        source, at = e.position()
        key = (source, peer(e))
        last[key] = max(last.get(key, at), at)
    later: dict[tuple, float] = {}
    for s in successes:
        source, at = s.position()
        key = (source, peer(s))
        later[key] = max(later.get(key, at), at)
    return all(key in later and later[key] > at for key, at in last.items())


def _text(en: str, zh: str) -> dict:
    return {"en": en, "zh": zh}


def _passed_steps(obs: F.Observation, successes: list[F.Evidence], below: int) -> list[dict]:
    """What the triage ruled out on the way to the failing step."""
    out = []
    answered = next((s for s in obs.ike if s.packet.ike.exchange in ("IKE_SA_INIT", "IKEv1_MAIN", "IKEv1_AGGRESSIVE")
                     and s.packet.ike.response), None)
    init_log = next((l for l in obs.logs if re.search(r"parsed IKE_SA_INIT (request|response)|is initiating an? "
                                                       r"(Main Mode |Aggressive Mode )?IKE_SA", l.text)), None)
    if below > 1 and (answered or init_log or successes):
        where = answered.cite() if answered else (F.Logged(init_log).cite() if init_log else successes[0].cite())
        at = f"{where['file']}" + (f" #{where['number']}" if "number" in where else f":{where['line']}")
        out.append(_text(f"step 1 passed: IKE reached the peer and was answered ({at})",
                         f"第 1 步通过:IKE 报文到达对端并得到响应({at})"))
    auth = next((l for l in obs.logs if re.search(r"authentication of '.*' \(myself\)|parsed IKE_AUTH", l.text)), None)
    if below > 2 and (auth or successes):
        where = F.Logged(auth).cite() if auth else successes[0].cite()
        at = f"{where['file']}" + (f" #{where['number']}" if "number" in where else f":{where['line']}")
        out.append(_text(f"step 2 passed: proposals agreed, authentication under way ({at})",
                         f"第 2 步通过:算法提议一致,已进入认证({at})"))
    if below > 3 and successes:
        where = successes[0].cite()
        at = f"{where['file']}" + (f" #{where['number']}" if "number" in where else f":{where['line']}")
        out.append(_text(f"step 3 passed: SAs established ({at})", f"第 3 步通过:SA 已建立({at})"))
    return out


def _why_indeterminate(obs: F.Observation) -> dict:
    if not obs.ike and not obs.logs:
        return _text("no IKE message and no charon log line in what was given",
                     "所给材料中没有 IKE 报文,也没有 charon 日志")
    if obs.captures and all(c.one_sided() for c in obs.captures) and not obs.logs:
        return _text("the capture shows one direction only: a missing answer may just not have been captured; "
                     "capture on the interface (both directions) or add the charon log",
                     "抓包只有单向报文:没看到响应不代表对端未响应;请在接口上双向抓包或提供 charon 日志")
    refused = [s for s in obs.ike if s.packet.ike.exchange == "IKE_AUTH" and s.packet.ike.response
               and s.packet.ike.inner == "N"]
    if refused and not obs.logs:
        return _text("IKE_AUTH was answered with an error notify, but it is encrypted and no charon log names it: "
                     "add the responder's log", "IKE_AUTH 的响应携带错误通知,但已加密且没有 charon 日志说明原因:请提供响应方日志")
    return _text("no fault signature matched and no established SA was seen",
                 "没有匹配的故障特征,也没有看到已建立的 SA")


def run(paths: list[Path], spool_dir: Path | None = None, **ports) -> list[Diagnosis]:
    from lab.diagnose.sources import gather
    return [diagnose(inputs, **ports) for inputs in gather(paths, spool_dir)]
