"""Bad and hostile input as data (netlab's tests/errors): each tests/bad-input/<case>.yaml has
the problems `lab validate` must print beside it in <case>.log, as `file:line: key: message`.

Every case: exit 2, exactly the expected problems, no traceback, under resource limits of 5 s
of CPU and 300 MB of address space (a process that needs more is stopped by the kernel and
fails the case: no timing assertion to flake under load), and no file opened outside the
case's folder and what the lab itself is made of (strace). Hostile cases (hostile-*) are also
given to `lab run`: nothing is built, no process is left, and the canary file their payloads
try to create never appears. Inputs too big to keep in the repository (50 MB, 5 MB of dense
YAML, 50,000 levels of nesting, a FIFO) are made here.
"""
import os
import re
import resource
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests import repo
from tests.leaks import snapshot

CASES = Path(__file__).parent / "bad-input"
LAB = [sys.executable, "-m", "lab"]
CANARY = Path("/tmp/ipsec-lab-pwned")
# ~0.4 s of CPU and ~45 MB each (the worst case, 5 MB of dense YAML: 2.2 s, 150 MB). Limits, not
# timings: the kernel stops a validation that needs more (SIGXCPU, MemoryError), whatever the
# load of the machine; the wall-clock timeout only catches a hang (a FIFO read, a lost child).
CPU_SECONDS, MEGABYTES, HANG_SECONDS = 5, 300, 120


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (MEGABYTES * 2**20, MEGABYTES * 2**20))


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


def _run(args: list[str], limited: bool = True) -> tuple[int, str]:
    """(exit code, stdout+stderr) of one lab command, under the resource limits (validation)."""
    proc = subprocess.run([*LAB, *args], cwd=repo.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env={**os.environ, "COLUMNS": "400"}, timeout=HANG_SECONDS,
                          preexec_fn=_limits if limited else None)
    return proc.returncode, proc.stdout


def _problems(output: str, case: Path) -> list[str]:
    """The problem lines, with the case folder written as bad-input/ (and a shipped scenario a
    case extends as scenarios/)."""
    lines = []
    for line in output.splitlines():
        line = line.strip()
        for prefix, shown in ((str(CASES) + "/", "bad-input/"), (str(CASES.relative_to(repo.ROOT)) + "/", "bad-input/"),
                              (str(repo.SCENARIOS) + "/", "scenarios/")):
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
    code, out = _run(["validate", str(path)])
    assert code == 2, out
    assert "Traceback" not in out and "Error:" not in out.split("problem(s)")[0], out
    expected = (CASES / f"{case}.log").read_text().splitlines()
    assert _problems(out, path) == expected, out
    if case.startswith("hostile-") and os.geteuid() == 0:
        out_dir = Path(f"/tmp/ipsec-lab-bad-input-{case}")
        code, out = _run(["run", str(path), "--out", str(out_dir)], limited=False)
        assert code == 2 and "nothing was built" in out, out
        assert not out_dir.exists()
    assert not CANARY.exists(), f"{case} created {CANARY}"
    assert not snapshot().left_over(before)


@pytest.mark.parametrize("case", sorted(GENERATED))
def test_generated_bad_input(case, tmp_path):
    make, message, line = GENERATED[case]
    path = tmp_path / f"{case}.yaml"
    make(path)
    code, out = _run(["validate", str(path)])
    assert code == 2 and "Traceback" not in out, out[-2000:]
    [problem] = [l.strip() for l in out.splitlines() if l.strip().startswith(str(path))]
    assert message in problem and problem.startswith(f"{path}:{line}:" if line else f"{path}:")


def test_a_pattern_that_backtracks_in_python_is_linear_under_re2():
    """`^(\\w+\\s?)+:$` takes minutes in Python's re on a long line; the log check uses RE2."""
    import re2

    from lab.schema.types import regex_options
    line = "word " * 5000 + "!"
    started = time.monotonic()
    assert re2.compile(r"^(\w+\s?)+:$", regex_options()).search(line) is None
    assert time.monotonic() - started < 1


# What validating may open besides the case's folder: the lab itself (its code, and the library of
# scenarios and topologies a case names), the interpreter and its packages, shared libraries, and
# the fixed configuration files of the programs the nft check runs (ip, nft) and of libc.
_LAB_PARTS = ("lab", "scenarios", "topologies", ".venv", "ipsec_lab.egg-info")
_SYSTEM = ("/etc/ld.so.cache", "/etc/localtime", "/etc/iproute2/", "/etc/connlabel.conf", "/etc/nsswitch.conf",
           "/usr/lib/ssl/", "/usr/lib/locale/", "/usr/share/locale/", "/dev/null", "/dev/urandom", "/proc/self/",
           "/sys/devices/system/cpu/", "/usr/share/zoneinfo/")
_LIBRARY = re.compile(r"^/(usr/)?(local/)?lib(64|32)?/.*\.so(\.[0-9.]+)?$")
_OPENED = re.compile(r'^(\d+)\s+(?:open|openat|openat2|creat|execve)\((?:AT_FDCWD, )?"([^"]*)"')
_EXECVE = re.compile(r'^(\d+)\s+execve\("([^"]*)"')
# What the lab's sandbox reads to map its ids (lab/sandbox): the account and its subordinate ids,
# written by the lab's own Python and newuidmap/newgidmap, never by a tool a case drives (nft, ip).
_SANDBOX = re.compile(r"^(/etc/(passwd|group|subuid|subgid|login\.defs)|/proc/\d+/(uid_map|gid_map|setgroups)"
                      r"|/usr/bin/new[ug]idmap)$")


def _allowed(path: str, case_folder: Path) -> bool:
    resolved = Path(os.path.normpath(repo.ROOT / path))  # relative: against the command's folder
    if resolved.is_relative_to(case_folder) or resolved == repo.ROOT:
        return True
    if resolved.is_relative_to(repo.ROOT):
        return resolved.relative_to(repo.ROOT).parts[0] in _LAB_PARTS or resolved.name.startswith("__editable__")
    python = {sys.prefix, sys.base_prefix, *sysconfig.get_paths().values(),
              *(p for p in sys.path if p.startswith("/") and not Path(p).is_relative_to(repo.ROOT))}
    text = str(resolved)
    return (text.startswith(_SYSTEM) or _LIBRARY.match(text) is not None or text in python
            or any(text.startswith(p.rstrip("/") + "/") for p in python)
            or text in (shutil.which("ip"), shutil.which("nft"), "/sbin/ldconfig", "/usr/sbin/ip", "/usr/sbin/nft"))


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (make test installs it)")
def test_validation_opens_nothing_outside_the_cases_folder(tmp_path):
    """Every case at once under strace -f (the nft check's namespaces, ip and nft included): each
    file any of them opened, or tried to, is the case folder's or the lab's own; nothing a
    case names (/etc/shadow, /etc/passwd, /etc/hostname, a symlink's target) is ever opened."""
    trace = tmp_path / "trace"
    cases = [str(CASES / f"{case}.yaml") for case in _case_ids()]
    proc = subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat,openat2,creat,execve", "-o", str(trace),
                           *LAB, "validate", *cases], cwd=repo.ROOT, capture_output=True, text=True,
                          timeout=HANG_SECONDS * 5)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    program: dict[str, str] = {}  # pid -> what it runs
    opened: set[str] = set()
    by_tools: set[str] = set()  # opened by the programs a case's text reaches (nft, ip)
    for line in trace.read_text().splitlines():
        if (run := _EXECVE.match(line)):
            program[run.group(1)] = run.group(2)
        if (m := _OPENED.match(line)):
            opened.add(m.group(2))
            if Path(program.get(m.group(1), "")).name in ("nft", "ip"):
                by_tools.add(m.group(2))
    assert len(opened) > 100  # the trace saw the imports: it works
    assert "nft" in {Path(p).name for p in program.values()}  # and the nft checks, through the sandbox
    outside = sorted(p for p in opened if not _allowed(p, CASES.resolve()) and not _SANDBOX.match(p))
    assert not outside, outside
    assert not {"/etc/shadow", "/etc/hostname", "/etc/sysctl.conf"} & opened
    assert not {"/etc/passwd"} & by_tools  # a case names it; only the sandbox's own id mapping reads it
