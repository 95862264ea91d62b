// What both pages of lab serve share: making elements from text (never markup) and the language switch.
"use strict";
window.labPage = (function () {
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function both(t) {  // {en, zh} -> the two spans the language switch shows one of
    var f = document.createDocumentFragment();
    f.append(el("span", "en", t ? t.en : ""), el("span", "zh", t ? t.zh : ""));
    return f;
  }
  function said(en, zh) { return both({en: en, zh: zh}); }
  function setLang(l) {
    document.body.className = "lang-" + l;
    document.documentElement.lang = l === "zh" ? "zh-CN" : "en";
    ["en", "zh"].forEach(function (x) { document.getElementById("btn-" + x).setAttribute("aria-pressed", String(x === l)); });
  }
  document.getElementById("btn-en").addEventListener("click", function () { setLang("en"); });
  document.getElementById("btn-zh").addEventListener("click", function () { setLang("zh"); });
  if ((navigator.language || "").toLowerCase().indexOf("zh") === 0) setLang("zh");
  return {el: el, both: both, said: said};
})();
