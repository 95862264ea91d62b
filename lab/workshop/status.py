"""The trainer's view of a training room: every trainee's lab, its scenario, hints taken,
checks run and the last verdict, on the terminal and as one HTML page."""
from __future__ import annotations

import html
from typing import Any

from lab.workshop import state
from lab.workshop.state import Seat


def row(seat: Seat) -> dict[str, Any] | None:
    current = seat.read()
    if current is None:
        return None
    return {"account": seat.account, "scenario": current.get("scenario", "?"), "started": current.get("started", "?"),
            "alive": bool(current.get("pid")) and state.alive(current["pid"], current.get("started_at")),
            "hints_shown": current.get("hints_shown", 0), "checks_run": current.get("checks_run", 0),
            "last_verdict": current.get("last_verdict"), "artifacts": current.get("artifacts", ""),
            "recurrences": current.get("recurrences", 0) if current.get("recur_every") else None}


def page(rows: list[dict[str, Any]]) -> str:
    cells = "".join(
        f"<tr class=\"{'ok' if r['last_verdict'] == 'healthy' else ''}\"><td>{html.escape(r['account'])}</td>"
        f"<td>{html.escape(r['scenario'])}</td><td>{'running' if r['alive'] else 'NOT running'}</td>"
        f"<td>{html.escape(r['started'])}</td><td>{r['hints_shown']}</td><td>{r['checks_run']}</td>"
        f"<td>{'-' if r['recurrences'] is None else r['recurrences']}</td>"
        f"<td>{html.escape(r['last_verdict'] or '-')}</td></tr>" for r in rows)
    return ("<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"10\">"
            "<title>ipsec-lab training room</title><style>body{font-family:sans-serif;margin:2em}"
            "td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}.ok td:last-child{color:#070;"
            "font-weight:bold}</style><h1>Training room / 培训教室</h1><table><tr><th>trainee / 学员</th>"
            "<th>scenario / 场景</th><th>lab / 实验</th><th>since / 开始</th><th>hints / 提示</th>"
            "<th>checks / 检查</th><th>fault re-armed / 故障重现</th><th>last verdict / 最近结果</th></tr>" + cells + "</table>\n")
