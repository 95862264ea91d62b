// A trainee's page: the lab's state pushed by the server (server-sent events), hints, checks,
// a terminal per node (xterm.js over a WebSocket), a live capture. Every text from the server
// is put in as text, never as markup, except the ladder: SVG the server drew with every text escaped.
"use strict";
(function () {
  var base = location.pathname.replace(/[^/]*$/, "");  // /t/TOKEN/
  window.labTerminals = {};  // node -> xterm Terminal (tests read what a terminal shows)

  var el = window.labPage.el, both = window.labPage.both, said = window.labPage.said;

  function wsUrl(path) { return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path; }
  function post(path) {
    return fetch(base + path, {method: "POST"}).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) throw new Error(body.error || r.statusText); return body; });
    });
  }

  // -- the lab's state, as the server pushes it --------------------------------------------
  var known = null;
  function render(s) {
    var badge = document.getElementById("lab-state");
    badge.replaceChildren(s.alive ? said("running", "运行中") : said("not running", "未运行"));
    badge.className = "badge " + (s.alive ? "pass" : "fail");
    var gone = document.getElementById("gone");
    gone.hidden = !s.gone.length;
    gone.replaceChildren();
    s.gone.forEach(function (g) { var p = el("p"); p.append(both(g)); gone.append(p); });
    var hints = document.getElementById("hints");
    hints.replaceChildren();
    s.hints.forEach(function (h) { var li = el("li"); li.append(both(h)); hints.append(li); });
    document.getElementById("hint-count").textContent = s.hints.length + "/" + s.hints_total;
    document.getElementById("next-hint").disabled = s.hints.length >= s.hints_total;
    if (!known) { nodes(s); known = s; }
    showChecks(s.checks, s.last_verdict);
    document.getElementById("check").disabled = s.busy.indexOf("check") >= 0 || !s.alive;
  }
  function nodes(s) {
    var buttons = document.getElementById("node-buttons");
    s.nodes.forEach(function (n) {
      var b = el("button", "node", n);
      b.type = "button";
      b.dataset.node = n;
      b.addEventListener("click", function () { openTerminal(n); });
      buttons.append(b, " ");
    });
    var select = document.getElementById("capture-point");
    Object.keys(s.interfaces).forEach(function (n) {
      s.interfaces[n].forEach(function (i) { var o = el("option", null, n + ":" + i); o.value = n + "/" + i; select.append(o); });
    });
  }
  function labelled(en, zh) {  // a cell that names its column when a phone stacks the table
    var td = el("td");
    td.dataset.labelEn = en; td.dataset.labelZh = zh;
    return td;
  }
  function showChecks(checks, verdict) {
    var body = document.querySelector("#checks tbody");
    body.replaceChildren();
    checks.forEach(function (c) {
      var tr = el("tr", c.passed ? "passed" : "failed");
      var title = labelled("check", "检查项"); title.append(both(c.title));
      var seen = labelled("observed", "实际观察"); seen.append(el("code", null, c.observed));
      var result = labelled("result", "结果"); var b = el("span", "badge " + (c.passed ? "pass" : "fail"));
      b.append(c.passed ? said("pass", "通过") : said("fail", "失败")); result.append(b);
      tr.append(title, seen, result);
      body.append(tr);
    });
    var state = document.getElementById("check-state");
    state.replaceChildren(verdict === "healthy" ? said("healthy: well done", "已恢复正常,做得好")
                          : verdict ? said("not healthy yet", "尚未恢复正常") : "");
  }
  var events = new EventSource(base + "events");
  events.onmessage = function (e) { render(JSON.parse(e.data)); };
  events.addEventListener("gone", function () {
    events.close();
    document.getElementById("lab-state").replaceChildren(said("stopped", "已停止"));
  });

  document.getElementById("next-hint").addEventListener("click", function () {
    post("hint").catch(function (e) { alert(e.message); });
  });
  document.getElementById("check").addEventListener("click", function () {
    var state = document.getElementById("check-state");
    document.getElementById("check").disabled = true;
    state.replaceChildren(said("checking (this takes a few seconds)…", "正在检查(需要几秒钟)…"));
    post("check").then(function (r) { showChecks(r.checks, r.passed ? "healthy" : "not healthy"); })
      .catch(function (e) { state.textContent = e.message; })
      .finally(function () { document.getElementById("check").disabled = false; });
  });

  // -- terminals -----------------------------------------------------------------------------
  function openTerminal(node) {
    if (window.labTerminals[node]) { window.labTerminals[node].focus(); return; }
    var box = el("div", "terminal");
    box.dataset.node = node;
    var head = el("div", "terminal-head", node + " ");
    var close = el("button", null, "×"); close.type = "button"; close.title = "close";
    head.append(close);
    var screen = el("div", "terminal-screen");
    box.append(head, screen);
    document.getElementById("terminals").append(box);
    var term = new window.Terminal({fontSize: 13, convertEol: false, scrollback: 2000});
    var fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(screen);
    fit.fit();
    window.labTerminals[node] = term;
    var ws = new WebSocket(wsUrl(base + "terminal/" + encodeURIComponent(node)));
    ws.binaryType = "arraybuffer";
    var encoder = new TextEncoder();
    function size() { if (ws.readyState === 1) ws.send(JSON.stringify({cols: term.cols, rows: term.rows})); }
    ws.onopen = size;
    ws.onmessage = function (e) { term.write(new Uint8Array(e.data)); };
    ws.onclose = function () { term.write("\r\n[closed / 已关闭]\r\n"); };
    term.onData(function (d) { if (ws.readyState === 1) ws.send(encoder.encode(d)); });
    window.addEventListener("resize", function () { fit.fit(); size(); });
    close.addEventListener("click", function () { ws.close(); term.dispose(); box.remove(); delete window.labTerminals[node]; });
    term.focus();
  }

  // -- live capture ----------------------------------------------------------------------------
  var capture = null;
  var startButton = document.getElementById("capture-start"), stopButton = document.getElementById("capture-stop");
  startButton.addEventListener("click", function () {
    var point = document.getElementById("capture-point").value;
    if (!point) return;
    var download = document.getElementById("capture-download");
    capture = new WebSocket(wsUrl(base + "capture/" + point));
    startButton.disabled = true; stopButton.disabled = false;
    capture.onmessage = function (e) {
      var f = JSON.parse(e.data);
      document.getElementById("capture-ladder").innerHTML = f.svg;  // drawn by the server, every text escaped
      var count = document.getElementById("capture-count");
      count.replaceChildren(said(f.packets + " packets", f.packets + " 个报文"));
      if (f.error) count.append(" · " + f.error);
      download.href = base + "capture/" + point + "/pcap";
      download.hidden = !f.packets;
    };
    capture.onclose = function () { startButton.disabled = false; stopButton.disabled = true; };
  });
  stopButton.addEventListener("click", function () { if (capture) capture.close(); });
})();
