// Live parts of a page: the server names changed topics over server-sent events; every element
// with data-part whose data-topics match is fetched again (server-rendered HTML) and replaced.
// A part is fetched at most once a second, and less often when it is slow to render (a big
// site's device list), so an open page never keeps the gateway busy.
"use strict";
(function () {
  const state = document.getElementById("live-state");
  const timing = new WeakMap();  // element -> {busy, again, last, took}
  function say(text) { if (state) { state.textContent = "live updates: " + text; } }
  async function refresh(el) {
    const t = timing.get(el) || { busy: false, again: false, last: 0, took: 0 };
    timing.set(el, t);
    if (t.busy) { t.again = true; return; }
    const wait = t.last + Math.max(1000, 5 * t.took) - Date.now();
    t.busy = true;
    if (wait > 0) { await new Promise((done) => setTimeout(done, wait)); }
    const start = Date.now();
    try {
      const r = await fetch(el.dataset.part, { credentials: "same-origin", cache: "no-store" });
      if (r.ok) { el.innerHTML = await r.text(); }
    } finally {
      t.last = Date.now();
      t.took = t.last - start;
      t.busy = false;
      if (t.again) { t.again = false; refresh(el); }
    }
  }
  document.addEventListener("submit", function (ev) {
    const question = ev.target.dataset.confirm;
    if (question && !window.confirm(question)) { ev.preventDefault(); }
  });
  const parts = Array.from(document.querySelectorAll("[data-part]"));
  if (!parts.some((el) => el.dataset.topics)) { say("none on this page"); return; }
  const events = new EventSource(document.querySelector("link[rel=stylesheet]").href.replace(/static\/style\.css$/, "events"));
  events.onopen = function () { say("on"); };
  events.onerror = function () { say("reconnecting"); };
  events.onmessage = function (ev) {
    const topics = JSON.parse(ev.data);
    for (const el of parts) {
      const wanted = (el.dataset.topics || "").split(" ");
      const any = topics.includes("charger:*") && wanted.some((t) => t.startsWith("charger:"));
      if (any || topics.some((t) => wanted.includes(t))) { refresh(el); }
    }
  };
})();
