"""The HTML report as a person sees it, for every scenario: headless Chromium loads each
report (in an iframe of a harness page, 1280 px wide, and 390 px for a phone) and JavaScript
in the harness looks at the rendered page: no two texts of a drawing overlap and none is cut
off, nothing is wider than the window, the language switch leaves no text of the other
language visible, and every link resolves to a file of the run. Plus: a ladder arrow for
every IKE message of a capture, retransmissions marked, and screenshots to look at."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tests import repo
from lab.browser import environment
from lab.capture import packets
from lab.report import ladder
from lab.schema.load import LoadedScenario, load_scenario
from lab.schema.locate import catalogue_names

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(shutil.which("chromium") is None,
                                 reason="Debian's chromium is installed by make test")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
         # the harness reads the reports' documents: file:// pages are otherwise each an origin of its own
         "--allow-file-access-from-files"]
WIDTH, PHONE = 1280, 390
# Screenshots: kept with the test's artifacts; IPSEC_LAB_DOCS_SCREENSHOTS=1 refreshes the README's.
ARTIFACTS = repo.ROOT / "results" / "test-artifacts"
# (report, width) -> the picture's first and last element: the summary down to the topology; the
# fault phase down to its first ladder; on a phone, the outcome as cards down to the topology (its
# frame scrolls sideways), and the fault phase's checks as cards down to its first ladder
SHOTS = {("tcp-asym", WIDTH): ("header.top", "#topology-legend"),
         ("dpd-nat-timeout", WIDTH): ("#phase-fault", "#phase-fault svg.ladder"),
         ("tcp-asym", PHONE): ("table.outcome", "#topology-legend"),
         ("dpd-nat-timeout", PHONE): ("#phase-fault table.checks", "#phase-fault .ladder-frame")}
MAX_SHOT_HEIGHT = 2400

# Runs inside the harness page once every report has loaded: the checks, their findings as
# JSON in <pre id="results">, read back from Chromium's --dump-dom.
CHECKS_JS = r"""
function box(svg, el) {  // el's getBBox in the svg's own coordinates
  var b = el.getBBox(), m = svg.getScreenCTM().inverse().multiply(el.getScreenCTM());
  var xs = [], ys = [];
  [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height], [b.x + b.width, b.y + b.height]].forEach(function (c) {
    var p = svg.createSVGPoint(); p.x = c[0]; p.y = c[1]; p = p.matrixTransform(m); xs.push(p.x); ys.push(p.y);
  });
  return {x0: Math.min.apply(null, xs), y0: Math.min.apply(null, ys), x1: Math.max.apply(null, xs), y1: Math.max.apply(null, ys)};
}
function svgProblems(svg, where) {
  var out = [], texts = [], vb = svg.viewBox.baseVal, TOL = 1;
  svg.querySelectorAll("text").forEach(function (t) {
    if (!t.checkVisibility() || !t.textContent.trim()) return;
    var b = box(svg, t);
    if (b.x1 - b.x0 > 0) texts.push({b: b, s: t.textContent.trim()});
  });
  texts.forEach(function (t, i) {
    if (t.b.x0 < vb.x - TOL || t.b.y0 < vb.y - TOL || t.b.x1 > vb.x + vb.width + TOL || t.b.y1 > vb.y + vb.height + TOL)
      out.push(where + ": text cut off by the drawing's edge: " + t.s);
    for (var j = i + 1; j < texts.length; j++) {
      var u = texts[j];
      if (Math.min(t.b.x1, u.b.x1) - Math.max(t.b.x0, u.b.x0) > TOL && Math.min(t.b.y1, u.b.y1) - Math.max(t.b.y0, u.b.y0) > TOL)
        out.push(where + ": texts overlap: '" + t.s + "' and '" + u.s + "'");
    }
  });
  return out;
}
function stackProblems(doc, lang) {  // on a phone every table is cards: each cell a full line, nothing cut off
  var out = [], win = doc.defaultView;
  doc.querySelectorAll("table.stack").forEach(function (table, t) {
    var where = lang + ": table " + (table.className || t);
    table.querySelectorAll("tbody tr").forEach(function (tr, r) {
      if (win.getComputedStyle(tr).display !== "block") out.push(where + ": row " + r + " is not a card");
      var cells = Array.prototype.filter.call(tr.children, function (td) { return td.checkVisibility() && td.textContent.trim(); });
      cells.forEach(function (td, i) {
        var box = td.getBoundingClientRect(), label = win.getComputedStyle(td, "::before").content;
        if (box.width < tr.getBoundingClientRect().width * 0.8)
          out.push(where + ": row " + r + " cell " + i + " is " + Math.round(box.width) + " px wide, not a line of its card");
        if (td.scrollWidth > td.clientWidth + 1) out.push(where + ": row " + r + " cell " + i + " is cut off");
        if (!label || label === "none") out.push(where + ": row " + r + " cell " + i + " has no column name");
        cells.slice(i + 1).forEach(function (other, j) {
          var b = other.getBoundingClientRect();
          if (Math.min(box.bottom, b.bottom) - Math.max(box.top, b.top) > 1)
            out.push(where + ": row " + r + " cells " + i + " and " + (i + 1 + j) + " overlap");
        });
      });
    });
  });
  return out;
}
function check(frame, width) {
  var win = frame.contentWindow, doc = win.document, found = {problems: [], links: [], ladders: {}};
  if (frame.dataset.from) {  // where a screenshot starts and ends, on the page as it opens
    var from = doc.querySelector(frame.dataset.from), to = doc.querySelector(frame.dataset.to);
    found.shot = [Math.round(from.getBoundingClientRect().top + win.scrollY),
                  Math.round(to.getBoundingClientRect().bottom + win.scrollY)];
  }
  doc.querySelectorAll("details").forEach(function (d) { d.open = true; });  // every ladder laid out
  var en = doc.querySelectorAll(".en").length, zh = doc.querySelectorAll(".zh").length;
  if (en !== zh) found.problems.push(en + " English texts but " + zh + " Chinese ones");
  ["zh", "en"].forEach(function (lang) {
    doc.getElementById("btn-" + lang).click();
    var other = lang === "en" ? ".zh" : ".en";
    doc.querySelectorAll(other).forEach(function (e) {
      if (e.checkVisibility()) found.problems.push(lang + ": still visible: " + other + " '" + e.textContent.trim() + "'");
    });
    var root = doc.documentElement;
    if (root.scrollWidth > width || root.scrollWidth > root.clientWidth)
      found.problems.push(lang + ": " + root.scrollWidth + " px wide in a " + width + " px window");
    doc.querySelectorAll("svg").forEach(function (svg, i) {
      if (svg.closest("ul.legend")) return;
      var where = lang + ": " + (svg.id || svg.dataset.capture || "svg " + i);
      found.problems = found.problems.concat(svgProblems(svg, where));
      // a diagram keeps its text size: drawn at MIN_SCALE of its natural size or more, whatever the window
      var natural = parseFloat(svg.style.maxWidth), drawn = svg.getBoundingClientRect().width;
      if (drawn < natural * %(MIN_SCALE)f - 1)
        found.problems.push(where + ": drawn at " + Math.round(100 * drawn / natural) + " %% of its size");
    });
    if (width === %(PHONE)d) found.problems = found.problems.concat(stackProblems(doc, lang));
  });
  doc.querySelectorAll("a[href]").forEach(function (a) { found.links.push(a.getAttribute("href")); });
  doc.querySelectorAll("svg.ladder").forEach(function (svg) {
    var phase = svg.closest("section.phase").id, name = phase + "/" + svg.dataset.capture;
    var first = svg.querySelector("text.time");
    found.ladders[name] = {first: first ? first.textContent : null,
      ike: svg.querySelectorAll(".arrow.ike, .arrow.ike-tcp").length,
      retransmit: svg.querySelectorAll(".arrow.ike.retransmit").length,
      unanswered: svg.querySelectorAll(".arrow.unanswered").length};
  });
  return found;
}
window.addEventListener("load", function () {
  var results = {};
  document.querySelectorAll("iframe").forEach(function (f) {
    try { results[f.dataset.key] = check(f, parseInt(f.style.width)); }
    catch (e) { results[f.dataset.key] = {problems: ["harness: " + e], links: [], ladders: {}}; }
  });
  document.getElementById("results").textContent = JSON.stringify(results);
});
""" % {"PHONE": PHONE, "MIN_SCALE": ladder.MIN_SCALE}


def chromium(profile: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    with environment() as env:
        return subprocess.run(["chromium", *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, env=env)


def harness(out: Path, reports: dict[str, Path]) -> Path:
    """A page with every report in an iframe at 1280 px and at 390 px."""
    frames = []
    for name, report in reports.items():
        for width in (WIDTH, PHONE):
            first, last = SHOTS.get((name, width), ("", ""))
            frames.append(f'<iframe data-key="{name}@{width}" data-from="{first}" data-to="{last}" src="{report.as_uri()}" '
                          f'style="width:{width}px;height:900px;border:0"></iframe>')
    page = out / "harness.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + "".join(frames)
                    + f"<pre id='results'></pre><script>{CHECKS_JS}</script></body></html>")
    return page


@pytest.fixture(scope="module")
def scenarios() -> dict[str, LoadedScenario]:
    return {name: load_scenario(name) for name in catalogue_names()}


@pytest.fixture(scope="module")
def reports(scenarios, catalogue) -> dict[str, Path]:
    """Each scenario's report.html from the catalogue run (every scenario, phases side by side)."""
    assert not catalogue.left, f"left behind: {catalogue.left}"
    return {name: catalogue.out / name / "report.html" for name in scenarios}


@pytest.fixture(scope="module")
def looked_at(reports, tmp_path_factory) -> tuple[dict, subprocess.CompletedProcess]:
    """What the harness found per report and width, and Chromium's run (for its console)."""
    work = tmp_path_factory.mktemp("chromium")
    dom = chromium(work / "profile", "--dump-dom", f"--window-size={WIDTH},1000", harness(work, reports).as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="results">(.*?)</pre>', dom.stdout, re.S)
    assert found and found.group(1), "the harness wrote no results"
    return json.loads(html.unescape(found.group(1))), dom


def test_every_report_loads_without_errors(reports, looked_at):
    results, dom = looked_at
    assert set(results) == {f"{n}@{w}" for n in reports for w in (WIDTH, PHONE)}
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console


def test_no_overlap_no_overflow_and_one_language_at_a_time(looked_at):
    problems = {key: found["problems"] for key, found in looked_at[0].items() if found["problems"]}
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)[:6000]


def test_every_link_resolves_to_a_file_of_the_run(reports, looked_at):
    broken = []
    for key, found in looked_at[0].items():
        report = reports[key.split("@")[0]]
        files = {p.relative_to(report.parent).as_posix() for p in report.parent.glob("*/*") if p.suffix in (".pcap", ".log")}
        assert files - set(found["links"]) == set(), f"{key}: pcaps and logs the report does not link"
        for href in found["links"]:
            if href.startswith("#"):
                continue
            url = urlparse(href)
            assert not url.scheme and not url.netloc, f"{key}: a link leaves the run: {href}"
            if not (report.parent / unquote(url.path)).is_file():
                broken.append(f"{key}: {href}")
    assert not broken, broken


def test_a_ladder_arrow_for_every_ike_message(scenarios, reports, looked_at):
    """Every IKE message of every capture is one arrow (captures short enough to be drawn whole)."""
    checked = 0
    for name, report in reports.items():
        sc = scenarios[name]
        drawn = looked_at[0][f"{name}@{WIDTH}"]["ladders"]
        for meta_path in report.parent.glob("*/*.capture.json"):
            pcap = meta_path.with_name(meta_path.name.replace(".capture.json", ".pcap"))
            meta = json.loads(meta_path.read_text())
            capture = ladder.read(pcap, meta["mac"], sc.nat_t_ports())
            if capture.left_out:
                continue
            ike = [p for p in packets.stream(pcap, meta["mac"], nat_t_ports=sc.nat_t_ports()) if p.ike]
            key = f"phase-{meta_path.parent.name}/{pcap.stem}"
            assert drawn.get(key, {}).get("ike", 0) == len(ike), (key, drawn.get(key), len(ike))
            checked += 1
    assert checked >= len(reports)


def test_retransmissions_and_unanswered_requests_are_marked(looked_at):
    """udp500-blocked: the branch's IKE_SA_INIT never gets through; every copy after the first
    is a retransmission, and none is answered."""
    fault = looked_at[0][f"udp500-blocked@{WIDTH}"]["ladders"]["phase-fault/gw1-wan"]
    assert fault["ike"] >= 3
    assert fault["retransmit"] == fault["ike"] - 1
    assert fault["unanswered"] == fault["ike"]


def test_the_ladders_of_a_phase_share_one_clock(scenarios, reports, looked_at):
    """A moment has one time in every ladder of its phase: each ladder's first row is timed from
    the phase's first captured packet, not from its own capture's."""
    from lab.report.html import _owners
    checked = 0
    for name, report in reports.items():
        drawn = looked_at[0][f"{name}@{WIDTH}"]["ladders"]
        for phase_dir in sorted(p for p in report.parent.iterdir() if p.is_dir()):
            views = {}
            for meta_path in phase_dir.glob("*.capture.json"):
                meta = json.loads(meta_path.read_text())
                pcap = meta_path.with_name(meta_path.name.replace(".capture.json", ".pcap"))
                capture = ladder.read(pcap, meta["mac"], scenarios[name].nat_t_ports())
                if capture.packets:
                    views[pcap.stem] = (capture, ladder.layout(capture, _owners(scenarios[name])))
            if len(views) < 2:
                continue
            origin = min(capture.start for capture, _ in views.values())
            for stem, (capture, laid) in views.items():
                if laid.rows:
                    shown = drawn[f"phase-{phase_dir.name}/{stem}"]["first"]
                    assert shown == f"{laid.rows[0].item.time - origin:.3f} s", (name, phase_dir.name, stem, shown)
                    checked += 1
    assert checked >= 4


def test_screenshots(reports, looked_at, tmp_path):
    """The top of tcp-asym's report and dpd-nat-timeout's fault phase, 1280 px wide and on a 390 px
    phone: to look at."""
    target = repo.ROOT / "docs" if os.environ.get("IPSEC_LAB_DOCS_SCREENSHOTS") == "1" else ARTIFACTS
    target.mkdir(parents=True, exist_ok=True)
    for (name, width), _ in SHOTS.items():
        top, bottom = looked_at[0][f"{name}@{width}"]["shot"]
        top, height = max(top - 12, 0), min(bottom - top + 24, MAX_SHOT_HEIGHT)
        # the report in a frame moved up to the picture's top: a screenshot shows the window's top
        view = tmp_path / f"{name}-{width}.html"
        view.write_text(f"<!DOCTYPE html><html><body style='margin:0;overflow:hidden'>"
                        f"<iframe src='{reports[name].as_uri()}' scrolling='no' style='border:0;width:{width}px;"
                        f"height:{top + height}px;margin-top:-{top}px'></iframe></body></html>")
        png = target / (f"report-{name}.png" if width == WIDTH else f"report-{name}-phone.png")
        shot = chromium(tmp_path / "profile", f"--window-size={width},{height}", f"--screenshot={png}",
                        view.as_uri())
        assert shot.returncode == 0 and png.stat().st_size > 20_000, shot.stderr[-2000:]
