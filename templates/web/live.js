// Live parts of a page: the server names changed topics over server-sent events; every element
// with data-part whose data-topics match is fetched again (server-rendered HTML) and replaced.
"use strict";
(function () {
  const state = document.getElementById("live-state");
  const busy = new WeakMap();
  function say(text) { if (state) { state.textContent = "live updates: " + text; } }
  async function refresh(el) {
    if (busy.get(el)) { busy.set(el, "again"); return; }
    busy.set(el, true);
    try {
      const r = await fetch(el.dataset.part, { credentials: "same-origin", cache: "no-store" });
      if (r.ok) { el.innerHTML = await r.text(); }
    } finally {
      const again = busy.get(el) === "again";
      busy.set(el, false);
      if (again) { refresh(el); }
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
