"""Check evaluation: positive expectations pass once seen, negative ones must hold all window long."""
import time
from typing import Literal

from lab.checks import Check, Probe, evaluate


class Flip(Check):
    """Holds (or not) until `flip_after` seconds, then the opposite."""

    kind: Literal["flip"] = "flip"
    positive: bool = True
    holds_first: bool = False
    flip_after: float = 0.2
    started: float = 0.0

    def eventually(self) -> bool:
        return self.positive

    def expectation(self) -> str:
        return "flip"

    def linux(self, folder: str = "") -> str:
        return "true"

    def probe(self, lab) -> Probe:
        self.started = self.started or time.monotonic()
        flipped = time.monotonic() - self.started >= self.flip_after
        holds = self.holds_first != flipped
        return Probe(holds, f"holds={holds}")


def test_eventually_passes_as_soon_as_seen():
    result = evaluate(Flip(within=2, holds_first=False, flip_after=0.2), lab=None)
    assert result.passed and 0.15 < result.duration_s < 1.0


def test_eventually_fails_at_deadline():
    result = evaluate(Flip(within=0.3, holds_first=False, flip_after=10), lab=None)
    assert not result.passed and result.duration_s >= 0.3 and result.observed == "holds=False"


def test_throughout_fails_as_soon_as_broken():
    result = evaluate(Flip(within=5, positive=False, holds_first=True, flip_after=0.2), lab=None)
    assert not result.passed and result.duration_s < 1.0


def test_throughout_passes_only_after_whole_window():
    result = evaluate(Flip(within=0.4, positive=False, holds_first=True, flip_after=10), lab=None)
    assert result.passed and result.duration_s >= 0.4 and result.mode == "throughout 0.4s"


class Pings:
    """A lab whose pings are answered as `replies` says, in turn."""

    def __init__(self, replies: list[bool]):
        self.replies = iter(replies)

    def exec(self, node, argv, check=True):
        from types import SimpleNamespace
        return SimpleNamespace(returncode=0 if next(self.replies) else 1, stdout="")


def test_lost_counts_unanswered_pings_up_to_min_lost():
    """A loss must recur `min_lost` times: one ping lost as an SA was replaced is not the symptom."""
    from lab.checks.reachability import PingCheck

    check = PingCheck.model_validate({"from": "pc", "to": "192.0.2.1", "expect": "lost", "min_lost": 2,
                                      "interval": 0.01, "within": 0.5})
    result = evaluate(check, Pings([False, True, True, False, True]))
    assert result.passed and result.observed.endswith("(2 of 4 unanswered)")
    result = evaluate(check, Pings([False] + [True] * 1000))  # the count starts again with each evaluation
    assert not result.passed and "(1 of " in result.observed


def test_negative_checks_in_a_row_share_the_longest_window():
    """Side by side: both watch 0.6 s (the longer window), in about 0.6 s, not 0.9 s; the results
    keep the scenario's order, and a check that breaks still fails at once."""
    from lab.checks import observe

    checks = [Flip(within=0.3, positive=False, holds_first=True, flip_after=10, name="short"),
              Flip(within=0.6, positive=False, holds_first=True, flip_after=10, name="long"),
              Flip(within=0.6, positive=False, holds_first=True, flip_after=0.1, name="breaks")]
    started = time.monotonic()
    results = list(observe(checks, lab=None))
    assert 0.6 <= time.monotonic() - started < 0.85
    assert [r.name for r in results] == ["short", "long", "breaks"]
    assert [r.passed for r in results] == [True, True, False]
    assert results[0].mode == "throughout 0.6s" and results[0].duration_s >= 0.6
    assert results[2].duration_s < 0.4


def test_a_positive_check_splits_the_negative_ones():
    """An eventually check between two negative ones: three observations one after the other."""
    from lab.checks import observe

    checks = [Flip(within=0.3, positive=False, holds_first=True, flip_after=10),
              Flip(within=2, positive=True, holds_first=False, flip_after=0.2),
              Flip(within=0.3, positive=False, holds_first=True, flip_after=10)]
    started = time.monotonic()
    assert all(r.passed for r in observe(checks, lab=None))
    assert time.monotonic() - started >= 0.8


class Breaks(Flip):
    """A negative check whose probe fails (a dead daemon, say) after 0.2 s."""

    def probe(self, lab) -> Probe:
        self.started = self.started or time.monotonic()
        if time.monotonic() - self.started >= 0.2:
            raise RuntimeError("charon died")
        return Probe(True, "holds")


def test_checks_side_by_side_stop_when_one_cannot_go_on():
    """An error (or Ctrl-C) stops the whole group at once: the lab is torn down now, not when the
    longest window beside it would have ended."""
    import pytest
    from lab.checks import observe

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="charon died"):
        list(observe([Flip(within=10, positive=False, holds_first=True, flip_after=100),
                      Breaks(within=10, positive=False)], lab=None))
    assert time.monotonic() - started < 1.0
