import os
import shutil

import pytest

from tests.leaks import snapshot

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
