import os
import shutil

import pytest

from lab import owner
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
