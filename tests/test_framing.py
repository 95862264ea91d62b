"""RFC 9329 framing: split reads, several messages per read, bad lengths, wrong prefix."""
import pytest

from lab.transport.framing import PREFIX, Deframer, FrameError, frame, kind

IKE = b"\0\0\0\0" + bytes(range(40))
ESP = b"\x12\x34\x56\x78" + bytes(60)


def test_length_counts_itself():
    assert frame(IKE)[:2] == (len(IKE) + 2).to_bytes(2, "big")
    assert kind(IKE) == "IKE" and kind(ESP) == "ESP"


def test_byte_by_byte_reads():
    stream = PREFIX + frame(IKE) + frame(ESP)
    d = Deframer(expect_prefix=True)
    out = [m for byte in stream for m in d.feed(bytes([byte]))]
    assert out == [IKE, ESP]


def test_several_messages_in_one_read_and_a_partial_tail():
    d = Deframer(expect_prefix=False)
    data = frame(IKE) + frame(ESP) + frame(IKE)[:5]
    assert d.feed(data) == [IKE, ESP]
    assert d.feed(frame(IKE)[5:]) == [IKE]


@pytest.mark.parametrize("length", [0, 1, 2, 5])
def test_too_short_length(length):
    with pytest.raises(FrameError, match="below the minimum"):
        Deframer(expect_prefix=False).feed(length.to_bytes(2, "big") + b"\0" * 8)


def test_oversize_length():
    with pytest.raises(FrameError, match="exceeds the maximum of 1000"):
        Deframer(expect_prefix=False, max_length=1000).feed((1001).to_bytes(2, "big"))


def test_wrong_prefix_detected_early():
    d = Deframer(expect_prefix=True)
    with pytest.raises(FrameError, match="IKETCP"):
        d.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(FrameError):
        Deframer(expect_prefix=True).feed(b"IKX")


def test_keepalive_and_empty_payloads_are_not_framed():
    with pytest.raises(FrameError):
        frame(b"\xff")
