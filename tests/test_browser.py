"""The headless Chromium the tests and `lab bench` drive: nothing of it outlives its `async with`."""
import asyncio
import shutil
import tempfile
from pathlib import Path

from lab.browser import Browser, _running_in_group


def test_nothing_of_chromium_outlives_the_browser(tmp_path):
    async def visit() -> int:
        async with Browser(tmp_path / "profile") as browser:
            page = await browser.page("data:text/html,<p id=p>here</p>", wait="!!document.getElementById('p')")
            assert await page.eval("document.getElementById('p').textContent") == "here"
            return browser.proc.pid

    singletons = set(Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*"))
    for _ in range(3):  # helpers writing to the profile after the browser process ended: a race
        group = asyncio.run(visit())
        assert not _running_in_group(group)
        shutil.rmtree(tmp_path / "profile")  # no writer left in it
    # Chromium's single-instance folder was in the profile, not left in the host's temporary folder
    assert set(Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*")) <= singletons
