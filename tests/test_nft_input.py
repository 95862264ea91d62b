"""nft rulesets from scenario files: read as nft's scanner reads them (lab.schema.nftsyntax), and
checked by nft in a namespace that is killed, whole, when it takes too long (lab.nftcheck)."""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lab import nftcheck
from lab.schema.nftsyntax import refusal

ROOT = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="nft needs root")

# Each hides an `include` from a line-wise filter; nft reads the file in every one (test below).
HIDDEN_INCLUDES = {
    "a define's string spans lines": 'define x = "abc\n" ; include "{path}" # "\n',
    "a # inside a string": 'table inet t {{ chain c {{ comment "#"; }}; }}\ninclude "{path}"\n',
    "a time token runs into it": 'define x = 1dinclude "{path}"\n',
    "after a line continuation": 'add table inet t \\\ninclude "{path}"\n',
    "after a semicolon": 'add table inet t; include "{path}"\n',
    "inside a block": 'table inet t {{\n  include "{path}"\n}}\n',
}
# Harmless look-alikes: nft reads no file for any of them.
LOOK_ALIKES = {
    "in a comment": 'add table inet t # include "{path}"\n',
    "in a string": 'add table inet t {{ comment "include {path}"; }}\n',
    "a string across lines": 'add table inet t {{ comment "a\ninclude {path}"; }}\n',
}


@pytest.mark.parametrize("case", sorted(HIDDEN_INCLUDES))
def test_a_hidden_include_is_refused(case):
    found = refusal(HIDDEN_INCLUDES[case].format(path="/etc/hostname"))
    assert found is not None and "may not 'include'" in found.message


@pytest.mark.parametrize("case", sorted(LOOK_ALIKES))
def test_include_inside_strings_and_comments_is_text(case):
    assert refusal(LOOK_ALIKES[case].format(path="/etc/hostname")) is None


@pytest.mark.parametrize("text, word", [("monitor\n", "monitor"), ("list ruleset\n", "list"),
                                        ("add table ip t\nexport ruleset json\n", "export"),
                                        ("describe tcp dport\n", "describe"), ("$x\n", "$x")])
def test_only_statements_that_build_a_ruleset(text, word):
    found = refusal(text)
    assert found is not None and f"'{word}' is not a statement" in found.message


def test_an_unterminated_string_is_refused_with_its_line():
    found = refusal('add table ip t\nadd chain ip t "c\n')
    assert found is not None and found.line == 2 and "never closed" in found.message


@ROOT
@pytest.mark.parametrize("case", sorted(HIDDEN_INCLUDES) + sorted(LOOK_ALIKES))
def test_nft_itself_sees_the_include_exactly_when_refused(case, tmp_path):
    """The scanner agrees with nft: nft (in a throwaway namespace, checking only) reads the
    `include` keyword, and opens the file where it stands as a statement, exactly in the cases
    the scanner refuses."""
    canary = tmp_path / "included.nft"
    canary.write_text("canary-line-that-is-no-ruleset\n")
    text = {**HIDDEN_INCLUDES, **LOOK_ALIKES}[case].format(path=canary)
    proc = subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=text, capture_output=True, text=True,
                          timeout=30)
    seen = "canary-line" in proc.stderr or "unexpected include" in proc.stderr
    assert seen == (refusal(text) is not None), proc.stderr


@ROOT
def test_an_nft_check_that_hangs_is_killed_with_its_process_group(monkeypatch):
    """`monitor` never returns (the schema refuses it; here it is given to the checker directly):
    the check reports it and kills the checker and its nft, not only the checker."""
    started = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]
    monkeypatch.setattr(nftcheck, "TIMEOUT", 2)
    monkeypatch.setattr(nftcheck.subprocess, "Popen", popen)
    complaints = nftcheck.check({"n1": (["wan"], [nftcheck.Ruleset("n1/nft", "monitor\n")])})
    assert "no answer within 2 s" in complaints["n1/nft"]
    [proc] = started
    deadline = time.monotonic() + 10  # nft, killed, is reaped by init
    while _alive_in_session(proc.pid):
        assert time.monotonic() < deadline, "a process of the killed check still runs"
        time.sleep(0.05)


def _alive_in_session(sid: int) -> bool:
    """Whether a process of session `sid` runs (not a zombie)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            return True
    return False
