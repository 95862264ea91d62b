"""Bad and hostile input as data (netlab's tests/errors): each tests/bad-input/<case>.yaml has
the problems `lab validate` must print beside it in <case>.log, as `file:line: key: message`.

Every case: exit 2, exactly the expected problems, no traceback, within 5 s and 300 MB.
Hostile cases (hostile-*) are also given to `lab run`: nothing is built, no process is left,
and the canary file their payloads try to create never appears. Inputs too big to keep in
the repository (50 MB, 5 MB of dense YAML, 50,000 levels of nesting, a FIFO) are made here.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lab import paths
from tests.leaks import snapshot

CASES = Path(__file__).parent / "bad-input"
LAB = [sys.executable, "-m", "lab"]
CANARY = Path("/tmp/ipsec-lab-pwned")
# ~0.4 s and ~45 MB each on an idle machine; the bound catches a hang or a blow-up, with room
# for a 2-core machine busy with labs side by side.
SECONDS, MEGABYTES = 10.0, 300


def _deep(path: Path) -> None:
    path.write_text("name: " + "[" * 50_000 + "]" * 50_000 + "\n")


def _huge(path: Path) -> None:
    with path.open("w") as out:
        out.write("name: x\nhints:\n")
        line = "  - {en: " + "a" * 200 + ", zh: b}\n"
        for _ in range(50 * 1024 * 1024 // len(line)):
            out.write(line)


def _dense(path: Path) -> None:
    """5 MB of short keys: the shape that made the old loader take 90 s and 1.9 GB."""
    with path.open("w") as out:
        out.write("extends: psk-mismatch\nname: dense\nhints:\n")
        for i in range(5 * 1024 * 1024 // 20):
            out.write(f"  - {{en: {i}, zh: {i}}}\n")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


GENERATED = {
    "generated-deep-nesting": (_deep, "nested more than 32 levels deep; allowed: at most 32", 1),
    "generated-50mb": (_huge, "file is 52428", None),
    "generated-dense-5mb": (_dense, "allowed: at most 1048576 bytes (1 MiB)", None),
    "generated-fifo": (_fifo, "not a regular file; allowed: a YAML file", None),
}


def _run(args: list[str]) -> tuple[int, str, float, float]:
    """(exit code, stdout+stderr, seconds, peak MB) of one lab command."""
    with tempfile.TemporaryFile("w+") as output:
        started = time.monotonic()
        proc = subprocess.Popen([*LAB, *args], cwd=paths.ROOT, stdout=output, stderr=subprocess.STDOUT,
                                env={**os.environ, "COLUMNS": "400"})
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory
        elapsed = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        return proc.returncode, output.read(), elapsed, usage.ru_maxrss / 1024


def _problems(output: str, case: Path) -> list[str]:
    """The problem lines, with the case folder written as bad-input/ (and a shipped scenario a
    case extends as scenarios/)."""
    lines = []
    for line in output.splitlines():
        line = line.strip()
        for prefix, shown in ((str(CASES) + "/", "bad-input/"), (str(CASES.relative_to(paths.ROOT)) + "/", "bad-input/"),
                              (str(paths.SCENARIOS) + "/", "scenarios/")):
            if line.startswith(prefix):
                lines.append(shown + line[len(prefix):])
    return lines


def _case_ids() -> list[str]:
    return sorted(p.stem for p in CASES.glob("*.yaml"))


def test_enough_cases():
    assert len(_case_ids()) + len(GENERATED) >= 40
    assert all((CASES / f"{case}.log").is_file() for case in _case_ids()), "every case has its expected output"


@pytest.mark.parametrize("case", _case_ids())
def test_bad_input(case):
    if case.startswith("nft-") and os.geteuid() != 0:
        pytest.skip("nft rulesets are loaded in a throwaway namespace only as root")
    before = snapshot()
    path = CASES / f"{case}.yaml"
    code, out, elapsed, peak = _run(["validate", str(path)])
    assert code == 2, out
    assert "Traceback" not in out and "Error:" not in out.split("problem(s)")[0], out
    expected = (CASES / f"{case}.log").read_text().splitlines()
    assert _problems(out, path) == expected, out
    assert elapsed < SECONDS and peak < MEGABYTES, (elapsed, peak)
    if case.startswith("hostile-") and os.geteuid() == 0:
        out_dir = Path(f"/tmp/ipsec-lab-bad-input-{case}")
        code, out, _, _ = _run(["run", str(path), "--out", str(out_dir)])
        assert code == 2 and "nothing was built" in out, out
        assert not out_dir.exists()
    assert not CANARY.exists(), f"{case} created {CANARY}"
    assert not snapshot().left_over(before)


@pytest.mark.parametrize("case", sorted(GENERATED))
def test_generated_bad_input(case, tmp_path):
    make, message, line = GENERATED[case]
    path = tmp_path / f"{case}.yaml"
    make(path)
    code, out, elapsed, peak = _run(["validate", str(path)])
    assert code == 2 and "Traceback" not in out, out[-2000:]
    [problem] = [l.strip() for l in out.splitlines() if l.strip().startswith(str(path))]
    assert message in problem and problem.startswith(f"{path}:{line}:" if line else f"{path}:")
    assert elapsed < SECONDS and peak < MEGABYTES, (elapsed, peak)


def test_a_pattern_that_backtracks_in_python_is_linear_under_re2():
    """`^(\\w+\\s?)+:$` takes minutes in Python's re on a long line; the log check uses RE2."""
    import re2

    from lab.schema.types import regex_options
    line = "word " * 5000 + "!"
    started = time.monotonic()
    assert re2.compile(r"^(\w+\s?)+:$", regex_options()).search(line) is None
    assert time.monotonic() - started < 1
