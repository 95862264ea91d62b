"""Check titles are for people, in the page's language: every check of the catalogue has a title
in English and in Chinese, and none is a raw pattern (the pattern stays in the check's detail)."""
import re

import pytest

from lab.checks.readable import readable
from lab.schema.load import load_scenario
from lab.schema.locate import scenario_names

CJK = re.compile(r"[\u4e00-\u9fff]")
REGEX = re.compile(r"\\[dsSwW.\[\]()|]|\.\*|\.\+|\[\^")


def _checks():
    for name in scenario_names():
        spec = load_scenario(name).spec
        for section, checks in (("symptoms", spec.symptoms), ("healthy", spec.healthy),
                                ("partial_fix", spec.partial_fix.expect if spec.partial_fix else [])):
            for i, check in enumerate(checks):
                yield f"{name}: {section}[{i}]", check


@pytest.mark.parametrize("where,check", list(_checks()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_check_has_a_title_in_both_languages_and_no_raw_pattern(where, check):
    title = check.heading()
    assert title["en"] and CJK.search(title["zh"]), (where, title)
    for text in title.values():
        assert not REGEX.search(text), (where, text)


@pytest.mark.parametrize("pattern,shown", [
    (r"tried \d+ shared key.* but MAC mismatched", "tried N shared key… but MAC mismatched"),
    (r"^blackhole 10\.2\.0\.0/23 .*metric 254", "blackhole 10.2.0.0/23 …metric 254"),
    (r"received proposals unacceptable|no acceptable proposal found",
     "received proposals unacceptable” / “no acceptable proposal found"),
    (r"IKE_SA hq\[2\] rekeyed", "IKE_SA hq[2] rekeyed"),
    (r"(a|b)?x", None),  # groups and optional parts: not said in words
    (r"a{2,3}", None),
])
def test_a_pattern_in_words(pattern, shown):
    assert readable(pattern) == shown
