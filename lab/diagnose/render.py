"""A diagnosis as people read it (English, Chinese or both) and as JSON.

Everything that comes from the input (file names, log lines, packet summaries, peers, capture
points) is written through lab.visible: no control or bidi character of a hostile log or file
name reaches the terminal as itself.
"""
from __future__ import annotations

from lab.diagnose.engine import STEPS, Diagnosis
from lab.visible import visible

VERDICT = {"healthy": {"en": "HEALTHY", "zh": "正常"}, "fault": {"en": "FAULT", "zh": "故障"},
           "indeterminate": {"en": "INDETERMINATE", "zh": "无法判断"}}
LABELS = {"evidence": {"en": "evidence", "zh": "证据"}, "ruled_out": {"en": "ruled out", "zh": "已排除"},
          "why": {"en": "why", "zh": "原因"}, "next": {"en": "next", "zh": "下一步"},
          "fix": {"en": "typical fix", "zh": "常见修复"}, "reason": {"en": "reason", "zh": "原因"},
          "step": {"en": "step", "zh": "第"}, "read": {"en": "read as", "zh": "识别为"},
          "peers": {"en": "peers", "zh": "对端"}, "faulty": {"en": "fault at", "zh": "故障对端"},
          "candidates": {"en": "candidate causes", "zh": "可能原因"},
          "difference": {"en": "the two sides differ", "zh": "两端差异"}}


def evidence_line(item: dict) -> str:
    if item["kind"] == "log":
        return visible(f"{item['file']}:{item['line']}  {item['text']}")
    return visible(f"{item['file']} #{item['number']}  t={item['time']:.3f}  {item['where']}  {item['summary']}")


def _peer_line(p: dict) -> str:
    what = p["verdict"] + (f" step {p['step']} {p['class']}" if p["class"] else "")
    cite = f"  ({evidence_line(p['evidence'][0])})" if p["evidence"] and p["verdict"] == "fault" else ""
    return f"{visible(p['peer'])}: {what}{cite}"


def text(d: Diagnosis, lang: str) -> str:
    """`lang`: en, zh or both (each text in both languages, English first)."""
    langs = ["en", "zh"] if lang == "both" else [lang]

    def say(texts: dict) -> list[str]:
        return [texts[code] for code in langs]

    def label(key: str) -> str:
        return " / ".join(say(LABELS[key]))

    entry = d.entry()
    lines = [f"== {visible(d.label)}"]
    for log in d.inputs.get("logs", []):
        lines.append(f"  {label('read')}: {visible(log['file'])}: {log['read_as'] or '-'}")
    head = " / ".join(VERDICT[d.verdict][code] for code in langs)
    if entry:
        steps = " / ".join(f"step {d.step} ({STEPS[d.step]['en']})" if code == "en" else
                           f"第 {d.step} 步({STEPS[d.step]['zh']})" for code in langs)
        head += f": {steps}: {d.fault_class}: " + " / ".join(say(entry.title.model_dump()))
    lines.append(head)
    if d.faulty:
        lines.append(f"  {label('faulty')}: " + "; ".join(visible(p) for p in d.faulty))
    if d.reason:
        lines += [f"  {LABELS['reason'][code]}: {t}" for code, t in zip(langs, say(d.reason))]
    if d.evidence:
        lines.append(f"  {label('evidence')}:")
        lines += [f"    {evidence_line(item)}" for item in d.evidence]
    if d.difference:
        lines.append(f"  {label('difference')}:")
        for diff in d.difference:
            lines.append(f"    {' / '.join(say(diff['what']))}:")
            lines += [f"      {visible(side)}: {visible(value)}" for side, value in diff["sides"].items()]
    if d.candidates:
        lines.append(f"  {label('candidates')}:")
        lines += [f"    - {t}" for item in d.candidates for t in say(item)]
    if d.peers:
        lines.append(f"  {label('peers')}:")
        lines += [f"    {_peer_line(p)}" for p in d.peers]
    if d.ruled_out:
        lines.append(f"  {label('ruled_out')}:")
        lines += [f"    {visible(t)}" for item in d.ruled_out for t in say(item)]
    if entry:
        for key, value in (("why", entry.explanation), ("next", entry.next)):
            lines += [f"  {LABELS[key][code]}: {t}" for code, t in zip(langs, say(value.model_dump()))]
        lines.append(f"  {label('fix')}:")
        lines.append(f"    Linux/strongSwan: {entry.fix.linux}")
        lines += [f"    {v.platform}: {v.commands}" for v in entry.fix.vendor]
    lines += [f"  note: {visible(n)}" for n in d.notes]
    return "\n".join(lines)


def as_json(d: Diagnosis, lang: str) -> dict:
    """The JSON document in one language (`en`, `zh`: every {en, zh} text becomes that language's
    string) or both; strings from the input written through lab.visible as on the terminal."""
    return _clean(d.as_json(), lang)


def _clean(value, lang: str):
    if isinstance(value, dict):
        if lang != "both" and set(value) == {"en", "zh"}:
            return _clean(value[lang], lang)
        return {visible(str(k)): _clean(v, lang) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, lang) for v in value]
    if isinstance(value, str):
        return visible(value)
    return value
