"""Outages read from a `ping -O -D` log (no root needed)."""
from lab.monitor import parse

START = 1000.0


def log(*lines: tuple[float, str]) -> str:
    return "PING 10.2.0.10 (10.2.0.10) 56(84) bytes of data.\n" + "".join(
        f"[{START + t:.6f}] {text}\n" for t, text in lines)


def reply(seq: int) -> str:
    return f"64 bytes from 10.2.0.10: icmp_seq={seq} ttl=62 time=0.7 ms"


def lost(seq: int) -> str:
    return f"no answer yet for icmp_seq={seq}"


def test_outage_is_the_time_between_the_answered_pings_around_it():
    text = log((0.0, reply(1)), (0.2, reply(2)), (0.4, lost(3)), (0.6, lost(4)), (0.8, reply(5)), (1.0, reply(6)))
    record = parse(text, 0.2, START, START + 1.1)
    assert (record.sent, record.answered) == (6, 4)
    [outage] = record.outages
    assert outage.ended and round(outage.start_s, 3) == 0.2 and round(outage.duration_s, 3) == 0.6


def test_an_outage_still_on_lasts_until_now_and_one_at_the_start_from_the_start():
    text = log((0.2, lost(1)), (0.4, reply(2)), (0.6, reply(3)), (0.8, lost(4)), (1.0, lost(5)))
    record = parse(text, 0.2, START, START + 3.0)
    first, last = record.outages
    assert first.ended and round(first.duration_s, 3) == 0.4
    assert not last.ended and round(last.duration_s, 3) == 2.4
    assert record.summary()["ongoing"] and record.summary()["longest_s"] == 2.4
    assert "still on" in record.text()


def test_a_late_reply_is_no_loss():
    text = log((0.0, reply(1)), (0.2, lost(2)), (0.25, reply(2)), (0.4, reply(3)))
    record = parse(text, 0.2, START, START + 0.5)
    assert record.outages == [] and record.text() == "3/3 pings answered, no outage"


def test_only_the_part_of_an_outage_after_a_moment_counts_after_it():
    text = log((0.0, reply(1)), (0.2, lost(2)), (0.4, lost(3)), (1.0, reply(4)), (1.2, reply(5)))
    record = parse(text, 0.2, START, START + 1.3)
    assert round(record.longest_after(0.0), 3) == 1.0
    assert round(record.longest_after(0.6), 3) == 0.4  # a check that began mid-outage
    assert record.longest_after(1.1) == 0.0
