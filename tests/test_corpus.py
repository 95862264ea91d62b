"""The diagnosis corpus (tests/diagnose/corpus): accuracy per dialect and class, the converter that
renders it, and the dialect each rendering is read as."""
from pathlib import Path

import pytest

from lab.diagnose import corpus
from lab.diagnose.convert import DIALECTS, WRITERS, convert, records
from lab.diagnose.dialects import parse
from lab.diagnose.engine import run

CORPUS = Path(__file__).parent / "diagnose" / "corpus"
LOGS = CORPUS / "logs"
SAMPLE = LOGS / "cert-expired.fault.gw2.log"
# what a rendering is read as (swanctl --log and the file logger without time write the same line)
READ_AS = {"swanctl-log": "filelog-notime", "filelog": "filelog", "mixed": None}


@pytest.fixture(scope="module")
def result() -> dict:
    return corpus.table(corpus.evaluate(CORPUS))


def test_the_corpus_has_at_least_150_labelled_inputs(result):
    assert result["overall"]["inputs"] >= 150
    assert set(result["dialects"]) >= set(DIALECTS)


def test_accuracy_overall_and_in_every_dialect(result):
    assert result["overall"]["percent"] >= 95, result["wrong"]
    low = {d: r["percent"] for d, r in result["dialects"].items() if r["percent"] < 95}
    assert not low, (low, result["wrong"])


def test_no_fault_called_healthy_and_no_traceback(result):
    assert result["fault_called_healthy"] == 0, result["wrong"]
    assert result["tracebacks"] == 0


def test_every_log_of_the_corpus_is_labelled():
    labelled = set(corpus.labels(CORPUS)["logs"])
    assert labelled == {p.name for p in LOGS.iterdir()}
    recorded = corpus.labels(CORPUS)["recorded"]
    assert set(recorded) == {p.name for p in (CORPUS / "recorded").iterdir()}
    assert {e["dialect"] for e in recorded.values()} == {"syslog-rfc3164", "journald-short", "journald-json"}
    for entry in corpus.labels(CORPUS)["logs"].values():
        verdict = corpus.expectation(entry["expect"])
        assert verdict[0] in ("fault", "healthy", "indeterminate")
        # a label other than the fault's own says why
        assert verdict[0] == "fault" or entry.get("why")


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "mixed"])
def test_the_converter_keeps_every_message(dialect):
    source = SAMPLE.read_text().splitlines()
    messages = [r.text for r in records(source)]
    out = convert(source, dialect)
    assert len(out) == len(messages)
    for line, text in zip(out, messages):
        assert text in line or text.replace('"', '\\"') in line


def test_mixed_keeps_every_message_between_other_programs_lines():
    source = SAMPLE.read_text().splitlines()
    out = convert(source, "mixed")
    assert len(out) > len(list(records(source)))
    assert any("sshd[" in line for line in out)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_dialect_read_is_named(tmp_path, dialect):
    path = tmp_path / "log.txt"
    path.write_text("\n".join(convert(SAMPLE.read_text().splitlines(), dialect)) + "\n")
    [found] = run([path])
    [log] = found.inputs["logs"]
    expected = READ_AS.get(dialect, dialect)
    if expected is None:
        assert len(log["dialects"]) >= 3
    else:
        assert next(iter(log["dialects"])) == expected, log
    assert log["read_as"]


@pytest.mark.parametrize("line, dialect, fields", [
    # as they appear in public issue threads and vendor documents
    ('<30>1 2024-06-08T00:46:22+02:00 opnsense01 charon 51742 - [meta sequenceId="1"] 15[CFG] '
     '<943dd117-0378|541> selected proposal: ESP:AES_CBC_256/HMAC_SHA2_256_128/ECP_521/NO_EXT_SEQ',
     "opnsense", {"thread": 15, "group": "CFG", "ike": "943dd117-0378", "uid": "541"}),
    ("Jan 21 12:34:10 charon: 11[ENC] <con1000|39> generating INFORMATIONAL_V1 request 1108859347 [ HASH N(DPD) ]",
     "pfsense", {"uid": "39"}),
    ("Jun  8 00:59:20 r1-roll charon: 07[IKE] <peer-192.0.2.2-tunnel-0|1> initiating Main Mode IKE_SA "
     "peer-192.0.2.2-tunnel-0[1] to 192.0.2.2", "syslog-rfc3164", {"uid": "1"}),
    ("Jul 06 15:47:47 gittest charon[14488]: 06[ENC] parsed INFORMATIONAL request 5 [ ]", "journald-short",
     {"thread": 6}),
    ("Oct 01 14:22:35 charon[6522]: 01[IKE] received DPD vendor ID", "journald-short", {"thread": 1}),
    ("I/charon  (18819): 07[IKE] initiating IKE_SA android[1] to 198.51.100.2", "logcat-brief", {"thread": 7}),
    ("12-05 07:38:14.123 18819 18840 I charon  : 07[IKE] establishing CHILD_SA android{1}", "logcat-threadtime",
     {"thread": 7}),
    ("Dec  5 07:38:14 07[IKE] initiating IKE_SA android[1] to 198.51.100.2", "android-app", {"thread": 7}),
    ("Dec 05 07:38:14 host charon-systemd[4242]: initiating IKE_SA hq[3] to 198.51.100.2", "journald-short",
     {"thread": None, "group": None}),
    ("Dec  5 07:38:14 laptop charon-nm: 09[IKE] received AUTHENTICATION_FAILED notify error", "charon-nm", {}),
    ("[IKE] [conn|16] received AUTHENTICATION_FAILED notify error", "swanctl-log", {"ike": "conn", "uid": "16"}),
    ("initiating Main Mode IKE_SA gw[1] to 198.51.100.2", "bare", {}),
    ("log {group=IKE level=1 thread=7 ikesa-name=hq ikesa-uniqueid=1 msg=initiating IKE_SA hq[1] to 1.2.3.4}",
     "swanctl-log", {"uid": "1", "ike": "hq"}),
])
def test_field_lines(line, dialect, fields):
    record = parse(line)
    assert record is not None and record.dialect == dialect
    for key, value in fields.items():
        assert getattr(record, key) == value


@pytest.mark.parametrize("line", [
    "Dec  5 07:38:14 host sshd[1]: 07[IKE] Accepted publickey",  # another program
    "some other daemon: hello", "$ sudo swanctl --initiate --child net", "", "{not json",
    '{"MESSAGE": "initiating IKE_SA x[1] to 1.2.3.4", "SYSLOG_IDENTIFIER": "sshd"}',
])
def test_not_charon(line):
    assert parse(line) is None


def test_writers_cover_the_dialects_the_reader_names():
    from lab.diagnose.logs import DIALECT_NAMES
    assert set(WRITERS) <= set(DIALECT_NAMES)
