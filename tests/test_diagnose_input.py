"""`lab diagnose` on hostile and odd input: FIFOs, devices, sparse giants, crowded folders, huge
capture.json files, standard input, escape sequences in log lines and file names; each ends in exit 2
or a verdict, within seconds and bounded memory, and no raw ESC reaches the terminal."""
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import repo
from lab.diagnose import sources

LAB = [sys.executable, "-m", "lab", "diagnose"]
CORPUS = Path(__file__).parent / "diagnose" / "corpus" / "logs"
PSK_HQ = CORPUS / "psk-mismatch.fault.gw2.log"
LIMIT_S, LIMIT_MB = 5, 300


def _cli(*args: str, stdin: bytes | None = None, timeout: float = 20) -> tuple[subprocess.CompletedProcess, float, float]:
    """Runs lab diagnose; (result, seconds, peak MB of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    out = subprocess.run([*LAB, *args], input=stdin, capture_output=True, cwd=repo.ROOT, timeout=timeout)
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return out, seconds, max(peak, before) / 1024


def _bounded(out, seconds, mb, codes=(2,)):
    assert out.returncode in codes, (out.returncode, out.stderr[-500:])
    assert b"Traceback" not in out.stderr
    assert seconds < LIMIT_S and mb < LIMIT_MB, (seconds, mb)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    out, seconds, mb = _cli(str(fifo), timeout=10)  # a blocking open would hang here until the timeout
    _bounded(out, seconds, mb)
    assert b"a FIFO" in out.stderr and b"allowed: regular files" in out.stderr


def test_a_device_is_refused():
    out, seconds, mb = _cli("/dev/zero", timeout=10)
    _bounded(out, seconds, mb)
    assert b"a device" in out.stderr


def test_a_fifo_inside_a_folder_is_skipped(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "hq.log").write_bytes(PSK_HQ.read_bytes())
    out, seconds, mb = _cli(str(tmp_path), timeout=10)
    _bounded(out, seconds, mb, codes=(1,))


@pytest.mark.parametrize("head", [b"", b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(16)])
def test_a_2gb_sparse_file(tmp_path, head):
    """Zeros (neither capture nor log) and a pcap header with 2 GB behind it (past the byte budget)."""
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.write(head)
        f.truncate(2 << 30)
    out, seconds, mb = _cli(str(big))
    _bounded(out, seconds, mb)
    assert b"neither a capture" in out.stderr or b"allowed: at most" in out.stderr


def test_a_2gb_sparse_file_in_a_folder(tmp_path):
    with (tmp_path / "big.bin").open("wb") as f:
        f.truncate(2 << 30)
    (tmp_path / "hq.log").write_bytes(PSK_HQ.read_bytes())
    out, seconds, mb = _cli(str(tmp_path))
    _bounded(out, seconds, mb, codes=(1,))


def test_a_folder_of_10000_files(tmp_path):
    for i in range(10_000):
        (tmp_path / f"f{i:05d}.log").write_bytes(b"x\n")
    out, seconds, mb = _cli(str(tmp_path))
    _bounded(out, seconds, mb)
    assert f"allowed: at most {sources.MAX_FILES}".encode() in out.stderr


def test_a_huge_capture_json_is_not_read(tmp_path):
    from tests.test_diagnose import _pcap
    pcap = _pcap(tmp_path / "wan.pcap", ("203.0.113.2", "198.51.100.2", True))
    with (tmp_path / "wan.capture.json").open("wb") as f:
        f.write(b'{"node": "gw1", "intf": "wan", "pad": "')
        f.truncate(1 << 30)
    out, seconds, mb = _cli(str(pcap), "--json")
    _bounded(out, seconds, mb, codes=(4,))
    assert json.loads(out.stdout)["diagnoses"][0]["inputs"]["captures"][0]["where"] == "wan.pcap"


def test_standard_input(tmp_path):
    out, _, _ = _cli("-", "--json", stdin=PSK_HQ.read_bytes())
    [doc] = json.loads(out.stdout)["diagnoses"]
    assert out.returncode == 1 and doc["class"] == "psk-mismatch"
    assert all(e["file"] == "-" for e in doc["evidence"] if e["kind"] == "log")


def test_standard_input_that_is_nothing(tmp_path):
    out, seconds, mb = _cli("-", stdin=b"hello\n")
    _bounded(out, seconds, mb)
    assert b"standard input is neither" in out.stderr


ESC = "\x1b]52;c;aGVsbG8=\x07\x1b[2J\u202e"


@pytest.mark.parametrize("args", [[], ["--json"], ["--lang", "zh"], ["--json", "--lang", "en"]])
def test_no_raw_escape_reaches_the_terminal(tmp_path, args):
    """Escapes in log lines, in a file name and in a capture.json: written out, never raw."""
    hostile = tmp_path / f"gw{ESC}.log"
    text = PSK_HQ.read_text().replace("but MAC mismatched", f"but MAC mismatched {ESC}")
    hostile.write_text(text.replace("<branch|1>", f"<bra{ESC}nch|1>"))
    from tests.test_diagnose import _pcap
    pcap = _pcap(tmp_path / "wan.pcap", ("203.0.113.2", "198.51.100.2", True))
    (tmp_path / "wan.capture.json").write_text(json.dumps({"node": f"gw{ESC}", "intf": "wan", "mac": None}))
    for target in ([str(hostile)], [str(tmp_path)], [str(pcap)]):
        out, _, _ = _cli(*target, *args)
        assert out.returncode in (1, 4), out.stderr
        assert b"\x1b" not in out.stdout + out.stderr
        assert "\u202e".encode() not in out.stdout + out.stderr
    assert b"\\x1b" in _cli(str(hostile), *args)[0].stdout


def test_json_honours_the_language():
    out, _, _ = _cli(str(PSK_HQ), "--json", "--lang", "zh")
    [doc] = json.loads(out.stdout)["diagnoses"]
    assert doc["title"] == "预共享密钥不一致" and isinstance(doc["next"], str)
    [both] = json.loads(_cli(str(PSK_HQ), "--json")[0].stdout)["diagnoses"]
    assert set(both["title"]) == {"en", "zh"}


def test_the_dialect_read_is_shown():
    out, _, _ = _cli(str(PSK_HQ), "--lang", "en")
    assert b"read as: " in out.stdout and b"charon file log" in out.stdout


@pytest.mark.parametrize("dialect", ["filelog", "syslog"])
def test_a_log_past_its_budgets_keeps_lines_then_alerts_then_counts(dialect, monkeypatch):
    """Past MAX_KEPT lines only alerts are kept, MAX_ALERTS of them; after that every line is
    still read and counted, and the file says it was cut."""
    import io

    from lab.diagnose import logs

    monkeypatch.setattr(logs, "MAX_KEPT", 40)
    monkeypatch.setattr(logs, "MAX_ALERTS", 10)
    prefix = "Dec  6 02:11:21 gw1 charon: " if dialect == "syslog" else "Dec  6 02:11:21 "
    lines = [f"{prefix}09[IKE] <hq|{i}> sending DPD request" for i in range(60)]  # routine: kept up to 40
    lines += [f"{prefix}09[IKE] <hq|{i}> retransmit 1 of request with message ID 7" for i in range(30)]  # alerts
    lines.append(f"{prefix}09[IKE] <hq|99> IKE_SA hq[99] established between 192.0.2.1[a]...192.0.2.2[b]")
    got = logs.read_stream(io.BytesIO("\n".join(lines).encode()), Path("big.log"))
    assert (got.read_lines, got.charon_lines) == (91, 91)
    assert len(got.lines) == 50 and got.lines[-1].text.startswith("retransmit")  # 40 lines, then 10 alerts
    assert got.truncated == logs.PAST_BUDGET
