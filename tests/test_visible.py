"""Untrusted text reaches no terminal raw: controls, bidi and separators are written out."""
import pytest

from lab.visible import visible, visible_lines


@pytest.mark.parametrize("raw, shown", [
    ("\x1b]52;c;SGVsbG8=\x07", "\\x1b]52;c;SGVsbG8=\\x07"),       # OSC 52 clipboard write
    ("ok\rHEALTHY", "ok\\x0dHEALTHY"),                            # carriage return over a line
    ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),                          # screen clear
    ("a\u202eb", "a\\u202eb"),                                    # bidi override
    ("x\u2066y\u2069", "x\\u2066y\\u2069"),                        # bidi isolates
    ("\x9b31m", "\\x9b31m"),                                       # C1 CSI
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("line\u2028sep", "line\\u2028sep"),
    ("nul\x00", "nul\\x00"),
    ("del\x7f", "del\\x7f"),
    ("a\nb\tc", "a\\x0ab\\x09c"),
])
def test_controls_are_written_out(raw, shown):
    assert visible(raw) == shown
    assert "\x1b" not in visible(raw)


def test_ordinary_text_is_unchanged():
    for text in ("psk-mismatch: 预共享密钥不一致", "IKE_SA hq[3] established between 192.0.2.1[gw1]...",
                 "10.2.0.0/23 => 10.2.0.0/24", "Grüße, naïve café", "全角：ＡＢＣ"):
        assert visible(text) == text


def test_blocks_keep_line_breaks_only():
    assert visible_lines("table inet x {\n\tchain y\x1b[31m\r\n}") == "table inet x {\n\tchain y\\x1b[31m\\x0d\n}"
