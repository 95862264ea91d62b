"""Both sides at once: when a peer's evidence holds both sides' logs (peers.py merged them by CHILD_SA
SPIs, addresses or identities), say which IKE_SA of one is which of the other, how their messages
pair up (message ID, exchange and size of what one sent and the other received), and what exactly
differs: the proposals offered and accepted, the identities presented and expected, the traffic
selectors asked for and configured.
"""
from __future__ import annotations

import re

from lab.diagnose import facts as F
from lab.diagnose import peers as P

_MSG = re.compile(r"^(parsed|generating) (\S+) (request|response) (\d+) ")
_SIZE = re.compile(r"^(received|sending) packet: .*\((\d+) bytes\)")
_OFFERED = re.compile(r"^received proposals: (.+)$")
_ACCEPTED = re.compile(r"^configured proposals: (.+)$")
_REFUSED = re.compile(r"no acceptable proposal found|received proposals unacceptable|^no proposal found$|"
                      r"no matching proposal found")
_MATCHING = re.compile(r"^looking for (?:\S+ )?peer configs matching (\S+?)(?:\[([^\]]*)\])?\.\.\.(\S+?)\[([^\]]*)\]")
_MYSELF = re.compile(r"^authentication of '(.*)' \(myself\)")
_NO_CONFIG = re.compile(r"no matching peer config found|^no peer config found|constraint check failed: identity")
_SELECTING = re.compile(r"^selecting traffic selectors for (us|other):")
_TS = re.compile(r"^\s*config: (.+?), received: (.+?) => match: (.+)$")
_TS_REFUSED = re.compile(r"traffic selectors (.+) unacceptable|no matching CHILD_SA config found for (.+)$")


def _text(en: str, zh: str) -> dict:
    return {"en": en, "zh": zh}


def differences(obs: F.Observation, peers: list[P.Peer]) -> list[dict]:
    out = []
    for peer in peers:
        files = sorted({g.file for g in peer.groups})
        if len(files) < 2:
            continue
        sas = {(g.file, sa) for g in peer.groups for sa in g.sas}
        lines = {f: [l for l in obs.logs if str(l.file) == f and (f, l.sa) in sas] for f in files}
        found = [d for d in (_proposals(lines), _identities(lines), _selectors(lines)) if d]
        if found:
            out.append(_correlation(peer, lines))
            out += found
    return out


def _correlation(peer: P.Peer, lines: dict) -> dict:
    """Which IKE_SA is which, and the messages one side sent that the other received."""
    sides = {}
    for f, own in lines.items():
        names = sorted({l.ike for l in own if l.ike} | {g_name for g in peer.groups if g.file == f
                                                          for g_name in g.names})
        messages, size, waiting = [], None, None
        for line in own:
            found = _SIZE.match(line.text)
            if found and found.group(1) == "sending" and waiting is not None:
                messages[waiting] += f" ({found.group(2)} B)"
                waiting = None
            elif found:
                size = found.group(2)
            elif (found := _MSG.match(line.text)) and len(messages) < 6:
                if found.group(1) == "parsed":
                    messages.append(f"<-{found.group(2)} {found.group(3)} {found.group(4)}" + (f" ({size} B)" if size else ""))
                else:
                    messages.append(f"->{found.group(2)} {found.group(3)} {found.group(4)}")
                    waiting = len(messages) - 1
                size = None
        sides[f] = f"IKE_SA {', '.join(names) or '?'}: " + "; ".join(messages)
    return {"what": _text("the same IKE_SA on both sides (message IDs and sizes pair up)",
                          "两端日志中的同一 IKE_SA(消息 ID 与长度一一对应)"), "sides": sides}


def _proposals(lines: dict) -> dict | None:
    for f, own in lines.items():
        for i, line in enumerate(own):
            if not _REFUSED.search(line.text):
                continue
            before = own[max(0, i - 8):i + 3]
            offered = next((m.group(1) for l in before if (m := _OFFERED.match(l.text))), None)
            accepted = next((m.group(1) for l in before if (m := _ACCEPTED.match(l.text))), None)
            if offered and accepted:
                other = next(o for o in lines if o != f)
                return {"what": _text("proposals", "算法提议"),
                        "sides": {f"{other} (initiator) offers": offered, f"{f} (responder) accepts": accepted}}
    return None


def _identities(lines: dict) -> dict | None:
    for f, own in lines.items():
        refused = next((l for l in own if _NO_CONFIG.search(l.text)), None)
        matching = next((m for l in own if (m := _MATCHING.match(l.text))), None)
        if refused is None or matching is None:
            continue
        other = next(o for o in lines if o != f)
        presented = next((m.group(1) for l in lines[other] if (m := _MYSELF.match(l.text))), matching.group(4))
        return {"what": _text("identities", "身份"),
                "sides": {f"{other} presents itself as": presented,
                          f"{f} is asked for": matching.group(2) or "(any)",
                          f"{f}": f"has no connection for {presented}: {refused.text}"}}
    return None


def _selectors(lines: dict) -> dict | None:
    for f, own in lines.items():
        side = None
        for line in own:
            found = _SELECTING.match(line.text.strip())
            if found:
                side = found.group(1)
                continue
            found = _TS.match(line.text)
            if found and found.group(1) != found.group(3):
                other = next(o for o in lines if o != f)
                mine = "local" if side == "us" else "remote"
                return {"what": _text("traffic selectors", "流量选择器"),
                        "sides": {f"{other} asks for": found.group(2), f"{f} has ({mine})": found.group(1),
                                  "negotiated": found.group(3)}}
            refused = _TS_REFUSED.search(line.text)
            if refused:
                other = next(o for o in lines if o != f)
                return {"what": _text("traffic selectors", "流量选择器"),
                        "sides": {f"{other} asks for": refused.group(1) or refused.group(2),
                                  f"{f}": line.text}}
    return None
