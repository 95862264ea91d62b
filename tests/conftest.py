import fcntl
import json
import os
import pwd
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import repo
from lab.sandbox.identity import hand_to_lab
from tests.leaks import SESSION_VAR, snapshot
from tests.login import LOGIN_PATH

# Every process this test process starts (labs included) carries its name, so a leak check sees
# them only, whatever else runs on the machine (other test workers included).
os.environ[SESSION_VAR] = f"pytest-{os.getpid()}"


def lab_available() -> str | None:
    """None when this machine and account can run labs (lab doctor's checks), else why not."""
    from lab import preflight
    missing = preflight.missing(preflight.check(deep_kernel=False))
    return f"this machine cannot run labs: {missing[0].what} {missing[0].detail} (run make setup)" if missing else None


def pytest_collection_modifyitems(config, items):
    # the catalogue's readers first: the first worker starts the longest run at once, and the
    # other workers are handed the rest meanwhile
    items.sort(key=lambda item: "catalogue" not in getattr(item, "fixturenames", ()))
    reason = lab_available()
    if reason:
        for item in items:
            if "lab" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def no_leaks():
    """Fails the test if anything the lab makes outlives it."""
    before = snapshot()
    yield
    deadline = time.monotonic() + 5
    while (left := snapshot().left_over(before)) and time.monotonic() < deadline:
        time.sleep(0.05)  # a sandbox's last processes are being reaped as its init exits
    assert not left, f"left behind: {left}"


@pytest.fixture
def lab_dir(tmp_path) -> Path:
    """A folder a lab may write (the lab's account's, when the tests run as root)."""
    hand_to_lab(tmp_path)
    return tmp_path


@dataclass
class Catalogue:
    out: Path  # OUT/NAME/result.json, report.html, phase folders; OUT/all.xml
    run: subprocess.CompletedProcess
    left: dict  # what the run left behind


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory, worker_id) -> Catalogue:
    """Every scenario run once, by the command CI runs (`lab run --all --junit`, phases side by
    side). The tests of phases, JUnit and reports read its results, on whichever test worker
    they land: the first worker to need it runs it under a file lock in the session's shared
    temporary folder, the others wait for it and read what it wrote (pytest-xdist's pattern for
    a fixture that must run once; its loadgroup does not group under pytest 9.2)."""
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    out, record = shared / "catalogue", shared / "catalogue.json"
    with open(shared / "catalogue.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            before = snapshot()
            run = subprocess.run([sys.executable, "-m", "lab", "run", "--all", "--quiet", "--out", str(out),
                                  "--junit", str(out / "all.xml")], capture_output=True, text=True, cwd=repo.ROOT,
                                 timeout=1800)
            deadline = time.monotonic() + 5
            while (left := snapshot().left_over(before)) and time.monotonic() < deadline:
                time.sleep(0.05)
            left = {k: sorted(map(str, v)) for k, v in left.items()}
            record.write_text(json.dumps({"args": run.args, "returncode": run.returncode, "stdout": run.stdout,
                                          "stderr": run.stderr, "left": left}))
    done = json.loads(record.read_text())
    return Catalogue(out, subprocess.CompletedProcess(done["args"], done["returncode"], done["stdout"],
                                                      done["stderr"]), done["left"])


# -- ordinary accounts, for what trainees and non-root users do ---------------------------------

ACCOUNT_PREFIX = "iplt"  # with the test worker's pid: useradd's names are at most 32 characters
ACCOUNT_LOCK = Path(tempfile.gettempdir()) / "ipsec-lab-tests-accounts.lock"


@dataclass
class Account:
    name: str
    home: Path

    def lab(self, *args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
        """`lab ARGS` run by this account from its home (as a trainee types it)."""
        return subprocess.run(self._as(sys.executable, "-m", "lab", *args), capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "PATH": LOGIN_PATH, **(env or {})})

    def start_lab(self, *args: str) -> subprocess.Popen:
        """`lab ARGS` started by this account, its output (both streams) on the process's stdout."""
        return subprocess.Popen(self._as(sys.executable, "-m", "lab", *args), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env={**os.environ, "PATH": LOGIN_PATH})

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self._as(*argv), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PATH": LOGIN_PATH})

    def _as(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "lab.sandbox.runas", self.name, "--", *argv]


def _shadow(*argv: str) -> None:
    """useradd/userdel, one at a time across test workers (they lock /etc/passwd and fail if busy)."""
    with open(ACCOUNT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(argv, check=True, capture_output=True, text=True)


def _left_by_killed_suites() -> list[str]:
    """Test accounts whose worker is gone (a suite killed before its teardown, a CI timeout):
    named after the worker's pid, which no process has now (or has again: this one)."""
    found = []
    for entry in pwd.getpwall():
        match = re.fullmatch(rf"{ACCOUNT_PREFIX}(\d+)[ab]", entry.pw_name)
        if match and (int(match[1]) == os.getpid() or not Path(f"/proc/{match[1]}").exists()):
            found.append(entry.pw_name)
    return found


@pytest.fixture(scope="session")
def accounts(worker_id):
    """Two ordinary accounts of this test worker (made with subordinate ids, as Debian's useradd
    makes any user), removed with their homes at the end. Root only."""
    if os.geteuid() != 0:
        pytest.skip("making test accounts needs root")
    for stale in _left_by_killed_suites():
        _shadow("userdel", "--remove", stale)
    made = []
    try:
        for who in ("a", "b"):
            name = f"{ACCOUNT_PREFIX}{os.getpid()}{who}"
            _shadow("useradd", "--create-home", "--shell", "/bin/bash", name)
            made.append(Account(name, Path(pwd.getpwnam(name).pw_dir)))
        yield made
    finally:
        for account in made:
            _shadow("userdel", "--remove", account.name)


@pytest.fixture
def room(monkeypatch):
    """A training room of this test's own (as `make setup` makes the real one)."""
    path = Path(tempfile.mkdtemp(prefix="ipsec-lab-room-"))
    os.chmod(path, 0o1733)
    monkeypatch.setenv("LAB_ROOM", str(path))
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)
