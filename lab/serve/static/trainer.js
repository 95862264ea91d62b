// The trainer's page: every lab of the room, pushed by the server whenever anything changes.
"use strict";
(function () {
  var base = location.pathname.replace(/[^/]*$/, "");  // /trainer/TOKEN/
  var el = window.labPage.el, both = window.labPage.both, said = window.labPage.said;

  function cell(row, label, content) {
    var td = el("td");
    td.dataset.labelEn = label[0]; td.dataset.labelZh = label[1];
    if (content !== undefined) td.append(content);
    row.append(td);
    return td;
  }
  function render(room) {
    document.getElementById("updated").textContent = room.at;
    var body = document.querySelector("#room tbody");
    body.replaceChildren();
    document.getElementById("empty").hidden = room.labs.length > 0;
    room.labs.forEach(function (lab) {
      var tr = el("tr", lab.last_verdict === "healthy" ? "passed" : lab.gone.length || !lab.alive ? "failed" : "");
      tr.dataset.account = lab.account;
      var who = cell(tr, ["trainee", "学员"], el("b", null, lab.account));
      if (lab.page) { var a = el("a", "small", " page"); a.href = lab.page; who.append(" ", a); }
      var sc = cell(tr, ["scenario", "场景"], el("code", null, lab.scenario || "?"));
      if (lab.title) { sc.append(el("br")); sc.append(both(lab.title)); }
      if (lab.fault) {
        var d = el("details"), s = el("summary"); s.append(said("fault and fix", "故障与修复"));
        var f = el("p"); f.append(said("Fault: ", "故障:"), both(lab.fault));
        var x = el("p"); x.append(said("Fix: ", "修复:"), both(lab.fix));
        d.append(s, f, x); sc.append(d);
      }
      var daemons = cell(tr, ["lab and daemons", "实验与守护进程"]);
      var up = el("span", "badge " + (lab.alive ? "pass" : "fail"));
      up.append(lab.invalid ? said("invalid state", "状态无效") : lab.alive ? said("running", "运行中") : said("not running", "未运行"));
      daemons.append(up);
      if (lab.invalid) daemons.append(el("div", "small", lab.invalid));
      lab.gone.forEach(function (g) { var p = el("div", "gone"); p.append(both(g.text)); daemons.append(p); });
      if (lab.alive && !lab.gone.length) daemons.append(el("div", "small", lab.daemons.length + " daemons up"));
      cell(tr, ["hints", "提示"], String(lab.hints_shown) + (lab.hints_total !== null ? "/" + lab.hints_total : ""));
      var checks = cell(tr, ["checks", "检查"], String(lab.checks_run));
      if (lab.busy.indexOf("check") >= 0) checks.append(" ", said("(checking)", "(检查中)"));
      if (lab.checks.length) {
        var det = el("details"), sum = el("summary"); sum.append(said("last check", "最近一次检查"));
        var ul = el("ul", "small");
        lab.checks.forEach(function (c) {
          var li = el("li", c.passed ? "ok" : "bad"); li.append(c.passed ? "✓ " : "✗ ", both(c.title), " — ", el("code", null, c.observed));
          ul.append(li);
        });
        det.append(sum, ul); checks.append(det);
      }
      var verdict = cell(tr, ["verdict", "结果"]);
      if (lab.last_verdict) {
        var v = el("span", "badge " + (lab.last_verdict === "healthy" ? "pass" : "fail"));
        v.append(lab.last_verdict === "healthy" ? said("healthy", "正常") : said("not healthy", "未恢复"));
        verdict.append(v);
      } else verdict.append("—");
      cell(tr, ["minutes to healthy", "修复用时(分钟)"], lab.minutes_to_healthy === null ? "—" :
           String(lab.minutes_to_healthy) + " (" + lab.first_healthy_at + ")");
      body.append(tr);
    });
  }
  var events = new EventSource(base + "events");
  events.onmessage = function (e) { render(JSON.parse(e.data)); };
})();
