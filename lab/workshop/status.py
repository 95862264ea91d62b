"""The trainer's view of a training room on the terminal: every trainee's lab, its scenario,
hints taken, checks run, the last verdict and its dead daemons; and as one HTML snapshot (the
live view is `lab serve`'s trainer page)."""
from __future__ import annotations

import html
import time
from typing import Any

from lab.workshop import record, state
from lab.workshop.state import Seat


def row(seat: Seat) -> dict[str, Any] | None:
    found = record.read(seat)
    if found is None:
        return None
    return {"account": seat.account, "scenario": found.scenario or "?", "started": found.started,
            "alive": found.alive, "hints_shown": found.hints_shown, "checks_run": found.checks_run,
            "last_verdict": found.last_verdict if found.invalid is None else f"invalid state: {found.invalid}",
            "recurrences": found.recurrences if found.recur_every else None,
            "gone": [g.text["en"] for g in found.gone if "en" in g.text], "page": state.page_url(seat)}


def page(rows: list[dict[str, Any]]) -> str:
    cells = "".join(
        f"<tr class=\"{'ok' if r['last_verdict'] == 'healthy' else ''}\"><td>{html.escape(r['account'])}</td>"
        f"<td>{html.escape(r['scenario'])}</td><td>{'running' if r['alive'] else 'NOT running'}</td>"
        f"<td>{html.escape(r['started'])}</td><td>{r['hints_shown']}</td><td>{r['checks_run']}</td>"
        f"<td>{'-' if r['recurrences'] is None else r['recurrences']}</td>"
        f"<td>{html.escape(r['last_verdict'] or '-')}</td></tr>" for r in rows)
    return ("<!doctype html><meta charset=\"utf-8\">"
            "<title>ipsec-lab training room</title><style>body{font-family:sans-serif;margin:2em}"
            "td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}.ok td:last-child{color:#070;"
            "font-weight:bold}</style><h1>Training room / 培训教室</h1><p>As of / 截至 " + time.strftime("%Y-%m-%d %H:%M:%S")
            + " (a snapshot; the live view / 实时视图: lab serve)</p><table><tr><th>trainee / 学员</th>"
            "<th>scenario / 场景</th><th>lab / 实验</th><th>since / 开始</th><th>hints / 提示</th>"
            "<th>checks / 检查</th><th>fault re-armed / 故障重现</th><th>last verdict / 最近结果</th></tr>" + cells + "</table>\n")
