import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab import owner, paths
from tests.leaks import snapshot

# This test process's runs (and those of the lab commands it starts) carry its name, so a leak
# check sees them only, whatever else runs on the machine (other test workers included).
os.environ[owner.SESSION_VAR] = f"pytest-{os.getpid()}"

NEEDS = ("mnexec", "tcpdump", "nft", "swanctl")


def lab_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    missing = [tool for tool in NEEDS if shutil.which(tool) is None]
    if missing or not os.path.exists("/usr/lib/ipsec/charon"):
        return f"missing tools: {missing or ['charon']} (run make setup)"
    return None


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
    after = snapshot()
    left = after.left_over(before)
    assert not left, f"left behind: {left}"


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
                                  "--junit", str(out / "all.xml")], capture_output=True, text=True, cwd=paths.ROOT,
                                 timeout=1800)
            left = {k: sorted(map(str, v)) for k, v in snapshot().left_over(before).items()}
            record.write_text(json.dumps({"args": run.args, "returncode": run.returncode, "stdout": run.stdout,
                                          "stderr": run.stderr, "left": left}))
    done = json.loads(record.read_text())
    return Catalogue(out, subprocess.CompletedProcess(done["args"], done["returncode"], done["stdout"],
                                                      done["stderr"]), done["left"])
