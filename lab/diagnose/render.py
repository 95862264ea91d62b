"""A diagnosis as people read it (English, Chinese or both) and as JSON."""
from __future__ import annotations

from lab.diagnose.engine import STEPS, Diagnosis

VERDICT = {"healthy": {"en": "HEALTHY", "zh": "正常"}, "fault": {"en": "FAULT", "zh": "故障"},
           "indeterminate": {"en": "INDETERMINATE", "zh": "无法判断"}}
LABELS = {"evidence": {"en": "evidence", "zh": "证据"}, "ruled_out": {"en": "ruled out", "zh": "已排除"},
          "why": {"en": "why", "zh": "原因"}, "next": {"en": "next", "zh": "下一步"},
          "fix": {"en": "typical fix", "zh": "常见修复"}, "reason": {"en": "reason", "zh": "原因"},
          "step": {"en": "step", "zh": "第"}}


def evidence_line(item: dict) -> str:
    if item["kind"] == "log":
        return f"{item['file']}:{item['line']}  {item['text']}"
    direction = f" {item['direction']}" if item.get("direction") else ""
    return f"{item['file']} #{item['number']}  t={item['time']:.3f}  {item['where']}{direction}  {item['summary']}"


def text(d: Diagnosis, lang: str) -> str:
    """`lang`: en, zh or both (each text in both languages, English first)."""
    langs = ["en", "zh"] if lang == "both" else [lang]

    def say(texts: dict) -> list[str]:
        return [texts[code] for code in langs]

    entry = d.entry()
    lines = [f"== {d.label}"]
    head = " / ".join(VERDICT[d.verdict][code] for code in langs)
    if entry:
        steps = " / ".join(f"step {d.step} ({STEPS[d.step]['en']})" if code == "en" else
                           f"第 {d.step} 步({STEPS[d.step]['zh']})" for code in langs)
        head += f": {steps}: {d.fault_class}: " + " / ".join(say(entry.title.model_dump()))
    lines.append(head)
    if d.reason:
        lines += [f"  {LABELS['reason'][code]}: {t}" for code, t in zip(langs, say(d.reason))]
    if d.evidence:
        lines.append("  " + " / ".join(say(LABELS["evidence"])) + ":")
        lines += [f"    {evidence_line(item)}" for item in d.evidence]
    if d.ruled_out:
        lines.append("  " + " / ".join(say(LABELS["ruled_out"])) + ":")
        lines += [f"    {t}" for item in d.ruled_out for t in say(item)]
    if entry:
        for key, value in (("why", entry.explanation), ("next", entry.next)):
            lines += [f"  {LABELS[key][code]}: {t}" for code, t in zip(langs, say(value.model_dump()))]
        lines.append("  " + " / ".join(say(LABELS["fix"])) + ":")
        lines.append(f"    Linux/strongSwan: {entry.fix.linux}")
        lines += [f"    {v.platform}: {v.commands}" for v in entry.fix.vendor]
    lines += [f"  note: {n}" for n in d.notes]
    return "\n".join(lines)
