#include "proxy/admin/ui_page.hpp"

namespace devspaces::proxy::admin {

namespace {

constexpr std::string_view page = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>devspaces-proxy traces</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; padding: 8px 12px;
         background: #24304a; color: #fff; }
header h1 { font-size: 15px; margin: 0 12px 0 0; }
header input, header select { font: inherit; padding: 2px 4px; }
header input { width: 110px; }
header input[type=checkbox] { width: auto; margin: 0 4px 0 0; }
header label { white-space: nowrap; }
#state { margin-left: auto; font-size: 12px; }
main { display: flex; height: calc(100vh - 46px); }
#list { flex: 3; overflow: auto; }
#detail { flex: 2; overflow: auto; border-left: 1px solid #ccd; padding: 8px 12px;
          background: #fff; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #e3e6ec;
         white-space: nowrap; }
th { position: sticky; top: 0; background: #e9ecf2; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: #eef3ff; }
tbody tr.selected { background: #dbe6ff; }
td.path { max-width: 360px; overflow: hidden; text-overflow: ellipsis; }
.s2 { color: #1a7f37; } .s3 { color: #0b6e99; } .s4 { color: #9a6700; }
.s5, .err { color: #cf222e; font-weight: 600; }
pre { background: #f3f4f6; padding: 8px; overflow: auto; font-size: 12px; }
#detail h2 { font-size: 14px; margin: 4px 0 8px; }
#detail table { width: auto; }
#detail table td { border: none; padding: 1px 16px 1px 0; }
</style>
</head>
<body>
<header>
  <h1>devspaces-proxy traces</h1>
  <select id="f-direction" title="direction">
    <option value="">any direction</option><option>inbound</option><option>outbound</option>
  </select>
  <input id="f-method" placeholder="method">
  <input id="f-status" placeholder="status (5xx, 404)">
  <input id="f-path" placeholder="path prefix">
  <input id="f-route_as" placeholder="route as">
  <select id="f-decision" title="decision">
    <option value="">any decision</option><option>own</option><option>parent</option>
    <option>grandparent</option><option>original</option>
  </select>
  <label><input type="checkbox" id="f-error"> errors only</label>
  <input id="f-trace_id" placeholder="trace id">
  <button id="pause">Pause</button>
  <span id="state">connecting</span>
</header>
<main>
  <div id="list">
    <table>
      <thead><tr><th>time</th><th>direction</th><th>method</th><th>path</th><th>status</th>
        <th>duration</th><th>route</th></tr></thead>
      <tbody id="rows"></tbody>
    </table>
  </div>
  <div id="detail"><p>Click an exchange to see the whole record.</p></div>
</main>
<script>
"use strict";
const maxRows = 2000;
const records = [];
let paused = false;
let held = [];
let heldDropped = 0;
let selected = null;
const $ = (id) => document.getElementById(id);
const text = (tag, s, cls) => {
  const e = document.createElement(tag);
  e.textContent = s == null ? "" : String(s);
  if (cls) e.className = cls;
  return e;
};
function filters() {
  const f = {};
  for (const k of ["direction", "method", "status", "path", "route_as", "decision", "trace_id"]) {
    const v = $("f-" + k).value.trim();
    if (v) f[k] = v;
  }
  if ($("f-error").checked) f.error = true;
  return f;
}
function matches(r, f) {
  const req = r.request || {};
  const res = r.response;
  const anyOf = (list, v) => list.split(",").map((s) => s.trim().toLowerCase())
      .includes(String(v == null ? "" : v).toLowerCase());
  if (f.direction && r.direction !== f.direction) return false;
  if (f.method && !anyOf(f.method, req.method)) return false;
  if (f.path && !String(req.target || "").startsWith(f.path)) return false;
  if (f.status) {
    if (!res) return false;
    const ok = f.status.split(",").some((s) => {
      s = s.trim().toLowerCase();
      return /^[1-5]xx$/.test(s) ? Math.floor(res.status / 100) === Number(s[0])
                                 : String(res.status) === s;
    });
    if (!ok) return false;
  }
  if (f.route_as && !anyOf(f.route_as, r.route_as)) return false;
  if (f.decision && !(r.route && r.route.decision === f.decision)) return false;
  if (f.error && !r.error) return false;
  if (f.trace_id && !anyOf(f.trace_id, r.trace_id)) return false;
  return true;
}
function fmtDuration(us) {
  if (us == null) return "";
  return us >= 1000 ? (us / 1000).toFixed(1) + " ms" : us + " µs";
}
function statusCell(r) {
  if (r.response) return text("td", r.response.status, "s" + Math.floor(r.response.status / 100));
  return text("td", r.error || "", "err");
}
function routeText(r) {
  const d = r.route ? r.route.decision : "";
  return r.route_as ? d + " (" + r.route_as + " via " + r.route_as_source + ")" : d;
}
function row(r) {
  const tr = document.createElement("tr");
  tr.dataset.id = r.id;
  tr.appendChild(text("td", (r.ts || "").replace("T", " ").replace("Z", "").slice(11, 23)));
  tr.appendChild(text("td", r.direction));
  tr.appendChild(text("td", (r.request || {}).method));
  tr.appendChild(text("td", (r.request || {}).target, "path"));
  tr.appendChild(statusCell(r));
  tr.appendChild(text("td", fmtDuration(r.duration_us)));
  tr.appendChild(text("td", routeText(r)));
  tr.addEventListener("click", () => show(r, tr));
  return tr;
}
function render() {
  const f = filters();
  const body = $("rows");
  body.replaceChildren();
  for (let i = records.length - 1; i >= 0; --i) {
    if (matches(records[i], f)) body.appendChild(row(records[i]));
  }
}
function add(r) {
  records.push(r);
  if (records.length > maxRows) records.shift();
  if (matches(r, filters())) $("rows").prepend(row(r));
  const body = $("rows");
  while (body.children.length > maxRows) body.lastChild.remove();
}
function show(r, tr) {
  if (selected) selected.classList.remove("selected");
  selected = tr;
  tr.classList.add("selected");
  const d = $("detail");
  d.replaceChildren();
  const req = r.request || {};
  d.appendChild(text("h2", (req.method || "") + " " + (req.host || "") + (req.target || "")));
  const facts = document.createElement("table");
  const fact = (k, v) => {
    const tr2 = document.createElement("tr");
    tr2.appendChild(text("td", k));
    tr2.appendChild(text("td", v));
    facts.appendChild(tr2);
  };
  fact("exchange", r.id + " (" + r.direction + ", pod " + r.pod + ")");
  fact("status", r.response ? r.response.status + " " + (r.response.reason || "") : "none");
  fact("error", r.error || "none");
  fact("duration", fmtDuration(r.duration_us));
  fact("route as", r.route_as ? r.route_as + " (from " + r.route_as_source + ")" : "none");
  const route = r.route || {};
  fact("decision", (route.decision || "") + (route.level != null ? " (level " + route.level + ")" : ""));
  fact("service", route.service || "none");
  fact("upstream", r.upstream || "none");
  fact("trace id", r.trace_id || "none");
  d.appendChild(facts);
  d.appendChild(text("h2", "Tried names"));
  const tried = document.createElement("table");
  tried.id = "tried";
  for (const t of route.tried || []) {
    const tr3 = document.createElement("tr");
    tr3.appendChild(text("td", t.name));
    tr3.appendChild(text("td", t.result));
    tried.appendChild(tr3);
  }
  if (!(route.tried || []).length) d.appendChild(text("p", "No names were looked up."));
  d.appendChild(tried);
  d.appendChild(text("h2", "Record"));
  d.appendChild(text("pre", JSON.stringify(r, null, 2)));
}
function connect() {
  const es = new EventSource("/traces?follow=1&last=200");
  es.onopen = () => { $("state").textContent = paused ? "paused" : "live"; };
  es.onerror = () => { $("state").textContent = "reconnecting"; };
  // A reconnect replays the last records: skip the ones already shown. Bounded like the table.
  const seen = new Set();
  es.onmessage = (ev) => {
    let r;
    try { r = JSON.parse(ev.data); } catch (e) { return; }
    const key = r.pod + "/" + r.id;
    if (seen.has(key)) return;
    seen.add(key);
    if (seen.size > 2 * maxRows) seen.delete(seen.values().next().value);
    if (paused) {
      held.push(r);
      if (held.length > maxRows) { held.shift(); ++heldDropped; }
      $("state").textContent = "paused (" + (held.length + heldDropped) + " new)";
    } else {
      add(r);
    }
  };
}
$("pause").addEventListener("click", () => {
  paused = !paused;
  $("pause").textContent = paused ? "Resume" : "Pause";
  $("state").textContent = paused ? "paused" : "live";
  if (!paused) { for (const r of held) add(r); held = []; heldDropped = 0; }
});
for (const el of document.querySelectorAll("header input, header select")) {
  el.addEventListener("input", render);
  el.addEventListener("change", render);
}
connect();
</script>
</body>
</html>
)html";

}  // namespace

std::string_view ui_page() {
  return page;
}

}  // namespace devspaces::proxy::admin
