// hookgate inspector: the little script the pages use. Every page reads fine without it;
// it adds the pretty/raw toggle, confirmations, and live refresh from the server-sent
// event stream. It never builds markup from data: refreshed parts are HTML the server
// rendered (and escaped), fetched from the page's own URL with ?partial=<name>.
"use strict";
document.documentElement.classList.add("js");

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-show]");
  if (!button) return;
  const group = button.closest("[data-toggle]");
  for (const other of group.querySelectorAll("[data-show]")) {
    const shown = other === button;
    other.setAttribute("aria-pressed", String(shown));
    document.getElementById(other.dataset.show).classList.toggle("js-hidden", !shown);
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  const message = form.dataset.confirm;
  if (message && !window.confirm(message)) { event.preventDefault(); return; }
  if (form.method === "get") {
    // Leave empty filters out of the URL, so a shared link says only what was asked.
    for (const field of form.elements) if (field.name && !field.value) field.disabled = true;
  }
});

// At most one refresh of a region per second (or its data-live-every), however busy the
// stream is.
const REFRESH_EVERY_MS = 1000;

function refresher(region) {
  let timer = null;
  let last = 0;
  const every = Number(region.dataset.liveEvery) || REFRESH_EVERY_MS;
  const refresh = async () => {
    timer = null;
    last = Date.now();
    const url = new URL(window.location.href);
    url.searchParams.set("partial", region.dataset.partial);
    const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!answer.ok || !answer.headers.get("Content-Type").startsWith("text/html")) return;
    const before = new Set([...region.querySelectorAll("[data-key]")].map((el) => el.dataset.key));
    region.innerHTML = await answer.text();
    for (const el of region.querySelectorAll("[data-key]")) {
      if (before.size && !before.has(el.dataset.key)) el.classList.add("fresh");
    }
  };
  return () => {
    if (timer === null) timer = setTimeout(refresh, Math.max(100, last + every - Date.now()));
  };
}

function connect() {
  const regions = [...document.querySelectorAll("[data-live]")];
  const status = document.querySelector(".live");
  if (!regions.length || !window.EventSource) return;
  const source = new EventSource(regions[0].dataset.live);
  const watchers = regions.map((region) => ({ region, kick: refresher(region) }));
  const onMessage = (message) => {
    for (const { region, kick } of watchers) {
      const only = region.dataset.liveEvent;
      if (only && !message.data.includes(only)) continue;
      kick();
    }
  };
  for (const kind of ["message", "event", "attempt", "delivery"]) source.addEventListener(kind, onMessage);
  source.onopen = () => status && status.classList.add("on");
  source.onerror = () => status && status.classList.remove("on");
}
document.addEventListener("DOMContentLoaded", connect);
