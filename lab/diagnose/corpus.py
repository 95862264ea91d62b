"""The diagnosis corpus (the repository's tests/diagnose/corpus, not part of the package): every
labelled log in every dialect, diagnosed, and the accuracy per dialect and per class. `python -m
lab.diagnose.corpus [FOLDER]` prints the table (FOLDER: the corpus, by default tests/diagnose/corpus
of the folder it is run from, a checkout's root); make bench records it; tests/test_corpus.py
requires it.

An input is right when verdict, step and class are all the expected ones. Counted apart: fault
inputs called healthy (the worst answer), and inputs that raised (a traceback).
"""
from __future__ import annotations

import sys
import tempfile
import traceback
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from lab.diagnose.convert import DIALECTS, convert
from lab.diagnose.engine import run

IN_A_CHECKOUT = Path("tests") / "diagnose" / "corpus"  # from a checkout's root, where make runs
AS_WRITTEN = "as written"  # a recorded log, diagnosed in the dialect charon wrote it in


@dataclass
class Case:
    name: str  # the log's file name
    dialect: str
    expect: tuple  # (verdict, step, class)
    got: tuple | None = None
    error: str | None = None
    faulty: str | None = None  # the peer the fault must be named for (an identity), if given
    named: list | None = None  # the peers the diagnosis named

    @property
    def right(self) -> bool:
        peer_named = self.faulty is None or (self.named is not None and len(self.named) == 1
                                             and self.faulty in self.named[0].split())
        return self.error is None and self.got == self.expect and peer_named

    @property
    def fault_called_healthy(self) -> bool:
        return self.expect[0] == "fault" and self.got is not None and self.got[0] == "healthy"


def expectation(text: str) -> tuple:
    words = text.split()
    return (words[0], int(words[1]), words[2]) if words[0] == "fault" else (words[0], None, None)


def labels(corpus: Path) -> dict[str, dict]:
    return yaml.safe_load((corpus / "manifest.yaml").read_text())


def diagnose_one(path: Path) -> tuple[tuple, list]:
    [found] = run([path])
    return (found.verdict, found.step, found.fault_class), found.faulty


def evaluate(corpus: Path, dialects: tuple[str, ...] = DIALECTS) -> list[Case]:
    doc = labels(corpus)
    cases = []
    with tempfile.TemporaryDirectory(prefix="ipsec-lab-corpus-") as tmp:
        for name, entry in doc.get("logs", {}).items():
            lines = (corpus / "logs" / name).read_text(errors="replace").splitlines()
            for dialect in dialects:
                case = Case(name, dialect, expectation(entry["expect"]), faulty=entry.get("faulty"))
                path = Path(tmp) / f"{dialect}-{name}"
                path.write_text("\n".join(convert(lines, dialect)) + "\n")
                _judge(case, path)
                cases.append(case)
        for name, entry in doc.get("recorded", {}).items():
            case = Case(name, entry["dialect"], expectation(entry["expect"]), faulty=entry.get("faulty"))
            _judge(case, corpus / "recorded" / name)
            cases.append(case)
    return cases


def _judge(case: Case, path: Path) -> None:
    try:
        case.got, case.named = diagnose_one(path)
    except Exception:  # the corpus counts tracebacks instead of stopping at the first
        case.error = traceback.format_exc(limit=3)


def table(cases: list[Case]) -> dict:
    """Accuracy overall, per dialect and per expected class, with the counts that must be 0."""
    def rate(group: list[Case]) -> dict:
        right = sum(c.right for c in group)
        return {"right": right, "inputs": len(group), "percent": round(100 * right / len(group), 1) if group else None}

    by_dialect, by_class = defaultdict(list), defaultdict(list)
    for c in cases:
        by_dialect[c.dialect].append(c)
        by_class[c.expect[2] or c.expect[0]].append(c)
    return {"overall": rate(cases), "dialects": {d: rate(g) for d, g in by_dialect.items()},
            "classes": {k: rate(g) for k, g in sorted(by_class.items())},
            "fault_called_healthy": sum(c.fault_called_healthy for c in cases),
            "tracebacks": sum(c.error is not None for c in cases),
            "wrong": [{"log": c.name, "dialect": c.dialect, "expected": c.expect, "got": c.got, "named": c.named}
                      for c in cases if not c.right and c.error is None][:50]}


def markdown(doc: dict) -> str:
    """The table as the README keeps it."""
    o = doc["overall"]
    lines = [f"Overall: **{o['right']}/{o['inputs']} ({o['percent']} %)**; fault inputs called healthy: "
             f"{doc['fault_called_healthy']}; tracebacks: {doc['tracebacks']}.", "",
             "| dialect | right | % |", "| --- | --- | --- |"]
    lines += [f"| {d} | {r['right']}/{r['inputs']} | {r['percent']} |" for d, r in doc["dialects"].items()]
    lines += ["", "| expected | right | % |", "| --- | --- | --- |"]
    lines += [f"| {k} | {r['right']}/{r['inputs']} | {r['percent']} |" for k, r in doc["classes"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    result = table(evaluate(Path(sys.argv[1]) if len(sys.argv) > 1 else IN_A_CHECKOUT))
    print(markdown(result))
    for wrong in result["wrong"]:
        print("wrong:", wrong)
