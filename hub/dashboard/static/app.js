// Outpost NOC dashboard: reads the REST API with its credentials kept in this tab's sessionStorage only.
// Two ways in: a user's password (a short-lived access token, renewed with its refresh token before it
// expires, so a NOC screen stays signed in all day), or an API token pasted as is.
"use strict";
const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem("outpost-token") || "";
let refreshToken = sessionStorage.getItem("outpost-refresh") || "";
let renewTimer = null, renewing = null, started = false;
let allSeries = [];

function keep(access, refresh) {
  token = access; refreshToken = refresh;
  sessionStorage.setItem("outpost-token", token);
  if (refresh) sessionStorage.setItem("outpost-refresh", refresh); else sessionStorage.removeItem("outpost-refresh");
}

// Renews at three quarters of the access token's life, measured on the hub's clock (its Date header),
// so a skewed workstation clock neither renews in a loop nor lets the token lapse.
async function takeTokens(r) {
  const t = await r.json();
  const hubNow = Date.parse(r.headers.get("Date") || "") || Date.now();
  keep(t.access_token, t.refresh_token);
  clearTimeout(renewTimer);
  renewTimer = setTimeout(() => renew().catch(() => {}), Math.max(5000, (t.expires_ms - hubNow) * 0.75));
}

// One renewal at a time: every request that meets a 401 waits for the same one. True when renewed.
function renew() {
  if (!refreshToken) return Promise.resolve(false);
  renewing ??= (async () => {
    try {
      const r = await fetch("/api/v1/auth/refresh", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: refreshToken }),
      });
      if (r.status === 401) { signOut("session ended: sign in again"); return false; }
      if (!r.ok) { clearTimeout(renewTimer); renewTimer = setTimeout(() => renew().catch(() => {}), 5000); return false; }
      await takeTokens(r);
      return true;
    } finally { renewing = null; }
  })();
  return renewing;
}

async function authed(path, init = {}) {
  const send = () => fetch(path, { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${token}` } });
  let r = await send();
  if (r.status === 401 && (await renew())) r = await send();  // a tab that slept past its token's expiry
  if (r.status === 401) { signOut("token rejected"); throw new Error("unauthorized"); }
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r;
}

async function api(path) { return (await authed(path)).json(); }
async function post(path) { return (await authed(path, { method: "POST" })).json().catch(() => ({})); }

function signOut(why) {
  token = ""; refreshToken = ""; clearTimeout(renewTimer);
  sessionStorage.removeItem("outpost-token"); sessionStorage.removeItem("outpost-refresh");
  $("#main").hidden = true; $("#login").hidden = false; $("#sign-out").hidden = true;
  $("#who").textContent = ""; $("#status").textContent = why;
}

function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
function row(cells) { const tr = document.createElement("tr"); cells.forEach((c) => tr.appendChild(c)); return tr; }
function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return s < 172800 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86400)}d ago`;
}
function keyText(s) { return `${s.metric}{${Object.entries(s.labels).map(([k, v]) => `${k}="${v}"`).join(",")}}`; }

async function refresh() {
  const [{ agents }, { events }] = await Promise.all([api("/api/v1/agents"), api("/api/v1/events?start=-1h")]);
  const at = $("#agents tbody"); at.replaceChildren();
  for (const a of agents) {
    const stale = Date.now() - a.last_seen_ms > 120000;
    at.appendChild(row([cell(a.id), cell(ago(a.last_seen_ms), stale ? "stale" : ""), cell(a.points_received.toLocaleString()),
      cell(a.gaps, a.gaps ? "gaps" : ""), cell(a.duplicates)]));
  }
  const et = $("#events tbody"); et.replaceChildren();
  for (const e of events.slice(0, 100)) {
    et.appendChild(row([cell(new Date(e.ts_ms).toLocaleTimeString()), cell(e.severity, `sev-${e.severity}`), cell(e.kind),
      cell(e.agent), cell(e.source), cell(e.message)]));
  }
  $("#status").textContent = `${agents.length} agents · updated ${new Date().toLocaleTimeString()}`;
}

// Alerts: firing first, then acknowledged, then suppressed; within each, critical first, newest first.
const STATUS_ORDER = { firing: 0, acknowledged: 1, suppressed: 2, resolved: 3 };
const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };
const rank = (order, v) => (v in order ? order[v] : 9);
const SHOWN_LABELS = new Set(["alertname", "device", "agent", "site", "severity"]);
const OPEN_ALERTS = "/api/v1/alerts?status=firing&status=acknowledged&status=suppressed&limit=100";

function button(text, onClick) {
  const b = document.createElement("button"); b.type = "button"; b.textContent = text; b.onclick = onClick; return b;
}

async function act(id, action) {
  try { await post(`/api/v1/alerts/${encodeURIComponent(id)}/${action}`); } catch (e) { alertsState(`${action} failed: ${e.message}`, true); }
  refreshAlerts().catch(() => {});
}

function alertsState(text, error) { const el = $("#alerts-state"); el.textContent = text; el.className = error ? "error" : ""; }

function alertRow(a) {
  const labels = a.labels || {}, notes = a.annotations || {};
  const status = cell(a.status, `st-${a.status} nowrap`);
  if (a.flapping) { const f = document.createElement("span"); f.className = "flapping"; f.textContent = " flapping"; status.appendChild(f); }
  const actions = cell("", "actions");
  if (a.status === "acknowledged") actions.appendChild(button("Unack", () => act(a.id, "unack")));
  else actions.appendChild(button("Ack", () => act(a.id, "ack")));
  actions.appendChild(button("Resolve", () => act(a.id, "resolve")));
  // Alerts of one name on one device (a BMC's sensors) differ only by their other labels: show those under the name.
  const name = cell(labels.alertname || "");
  const extra = Object.entries(labels).filter(([k]) => !SHOWN_LABELS.has(k)).map(([k, v]) => `${k}=${v}`).join(" ");
  if (extra) { const d = document.createElement("div"); d.className = "labels"; d.textContent = extra.slice(0, 160); name.appendChild(d); }
  const tr = row([cell(a.severity, `sev-${a.severity}`), name, cell(labels.device || labels.agent || "", "nowrap"),
    cell(notes.summary || ""), status, cell(ago(a.starts_ms || a.first_seen_ms), "nowrap"), cell(a.count), actions]);
  tr.dataset.id = a.id; tr.title = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(", ");
  return tr;
}

async function refreshAlerts() {
  const [{ alerts }, { incidents }] = await Promise.all([api(OPEN_ALERTS), api("/api/v1/incidents?limit=50")]);
  alerts.sort((x, y) => rank(STATUS_ORDER, x.status) - rank(STATUS_ORDER, y.status)
    || rank(SEVERITY_ORDER, x.severity) - rank(SEVERITY_ORDER, y.severity) || (y.starts_ms || 0) - (x.starts_ms || 0));
  $("#alerts tbody").replaceChildren(...alerts.map(alertRow));
  $("#alerts-empty").hidden = alerts.length > 0;
  const firing = alerts.filter((a) => a.status === "firing").length;
  alertsState(`${firing} firing · ${alerts.length} open`, false);
  $("#incidents tbody").replaceChildren(...incidents.map((i) => {
    const tr = row([cell(i.title), cell(i.status, `st-${i.status}`),
      cell(`${new Date(i.opened_ms).toLocaleString()} (${ago(i.opened_ms)})`), cell((i.alert_ids || []).length)]);
    tr.dataset.id = i.id; tr.onclick = () => showIncident(i.id).catch(() => {});
    return tr;
  }));
  $("#incidents-empty").hidden = incidents.length > 0;
  if (shownIncident) showIncident(shownIncident).catch(() => {});  // its explanation may have arrived
}

// One incident under the table, with its LLM explanation (enrichment.js renders it as text only).
let shownIncident = null;
async function showIncident(id) {
  const inc = await api(`/api/v1/incidents/${encodeURIComponent(id)}`);
  shownIncident = id;
  $("#incident").hidden = false;
  $("#incident-title").textContent = `${inc.title} · ${inc.status}`;
  $("#incident-enrichment").replaceChildren(...buildNodes(document, enrichmentView(inc.enrichment)));
}

async function loadSeries() {
  allSeries = (await api("/api/v1/series?limit=5000")).series;
  renderSeries();
}

function renderSeries() {
  const f = $("#filter").value.toLowerCase();
  const list = $("#series-list"); list.replaceChildren();
  for (const s of allSeries.filter((x) => keyText(x).toLowerCase().includes(f)).slice(0, 300)) {
    const d = document.createElement("div"); d.textContent = keyText(s); d.onclick = () => chart(s); list.appendChild(d);
  }
}

async function chart(s) {
  const match = Object.entries(s.labels).map(([k, v]) => `&match=${encodeURIComponent(`${k}=${v}`)}`).join("");
  const { series } = await api(`/api/v1/query?metric=${encodeURIComponent(s.metric)}${match}&start=-1h&max_points=400`);
  const pts = series.length ? series[0].points : [];
  $("#chart-box").hidden = false;
  $("#chart-title").textContent = `${keyText(s)} · ${pts.length} points · last ${pts.length ? pts[pts.length - 1][1] : "-"}`;
  if (!pts.length) { $("#chart").replaceChildren(); return; }
  const t0 = pts[0][0], t1 = pts[pts.length - 1][0] || t0 + 1;
  const vs = pts.map((p) => p[1]); const lo = Math.min(...vs), hi = Math.max(...vs);
  const poly = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  poly.setAttribute("points", pts.map(([t, v]) => `${((t - t0) / Math.max(1, t1 - t0)) * 800},${190 - ((v - lo) / ((hi - lo) || 1)) * 180}`).join(" "));
  $("#chart").replaceChildren(poly);
}

// Log lines of the last hour, newest first, through the hub's full-text search; a query the store
// cannot parse says so instead of emptying the table.
const SEVERITY = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
async function loadLogs() {
  const params = new URLSearchParams({ from: "-1h", limit: "100" });
  const q = $("#logs-q").value.trim(), sev = $("#logs-severity").value;
  if (q) params.set("q", q);
  if (sev) params.set("severity", sev);
  let body;
  try { body = await api(`/api/v1/logs?${params}`); } catch (e) {
    $("#logs-state").textContent = e.message.endsWith(": 400") ? "search not understood" : `not available: ${e.message}`;
    $("#logs-state").className = "error";
    return;
  }
  $("#logs-state").textContent = `${body.logs.length}${body.next_cursor ? "+" : ""} lines`; $("#logs-state").className = "";
  $("#logs tbody").replaceChildren(...body.logs.map((l) => row([
    cell(new Date(l.ts_ms).toLocaleTimeString(), "nowrap"),
    cell(SEVERITY[l.severity] || String(l.severity), l.severity <= 3 ? "sev-critical" : l.severity === 4 ? "sev-warning" : "sev-info"),
    cell(l.device || l.host), cell(l.app), cell(l.message),
  ])));
  $("#logs-empty").hidden = body.logs.length > 0;
}

// Alerts and incidents arrive over /ws: the tables reload when the hub says something changed (an
// incident's explanation arriving too), and on each reconnect, so nothing missed while away is lost.
// The token goes in the first frame, never the URL.
// While the stream is down the tables poll every 3 s, and the stream reconnects after 2 s.
function streamAlerts(reload) {
  let poll = null, connected = false;
  const open = () => {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    const used = token;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "auth", token: used }));
      ws.send(JSON.stringify({ type: "subscribe", topics: ["alerts", "incidents"] }));
    };
    ws.onmessage = (m) => {
      const frame = JSON.parse(m.data);
      if (frame.type === "subscribed") {
        clearInterval(poll); poll = null;
        if (connected) reload();  // a reconnect: what changed meanwhile
        connected = true;
      }
      if (frame.type === "events" || frame.type === "reset") reload();
    };
    ws.onclose = (ev) => {
      if (!token) return;
      // The hub closes a stream when its token expires: one renewed meanwhile reconnects at once.
      if (ev.code === 4401 && token !== used) { open(); return; }
      if (ev.code === 4401) { signOut("token rejected"); return; }
      if (!poll) poll = setInterval(reload, 3000);
      setTimeout(open, 2000);
    };
  };
  open();
}

async function start() {
  $("#login").hidden = true; $("#main").hidden = false; $("#sign-out").hidden = false;
  api("/api/v1/auth/me").then((me) => { $("#who").textContent = `${me.name} (${me.role})`; }).catch(() => {});
  if (started) { location.reload(); return; }  // signed in again: start clean, with the stored credential
  started = true;
  // Alerts on their own: a hub without them (or a failed read) must not blank the rest.
  const alerts = () => refreshAlerts().catch((e) => { if (token) alertsState(`not available: ${e.message}`, true); });
  alerts();
  try { await refresh(); await loadSeries(); } catch (e) { started = false; return; }
  streamAlerts(alerts);
  setInterval(() => { if (token) refresh().catch(() => {}); }, 5000);
  setInterval(() => { if (token) loadSeries().catch(() => {}); }, 30000);
  loadLogs();
  setInterval(() => { if (token && !document.hidden) loadLogs(); }, 10000);
}

$("#password-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = $("#login-error"); err.hidden = true;
  const r = await fetch("/api/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("#username").value.trim(), password: $("#password").value }),
  }).catch(() => null);
  $("#password").value = "";
  if (r && r.ok) { await takeTokens(r); start(); return; }
  err.textContent = !r ? "hub not reachable"
    : r.status === 401 ? "wrong username or password"
    : r.status === 429 ? `too many attempts: retry in ${r.headers.get("Retry-After") || "a few"} s`
    : `sign-in failed (${r.status})`;
  err.hidden = false;
});
$("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault(); keep($("#token").value.trim(), ""); start();
});
$("#sign-out").addEventListener("click", async () => {
  // A password session is ended at the hub too, so its refresh token cannot be spent later.
  if (refreshToken) await fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  signOut("signed out");
});
$("#filter").addEventListener("input", renderSeries);
let logsTyping = null;
$("#logs-q").addEventListener("input", () => { clearTimeout(logsTyping); logsTyping = setTimeout(loadLogs, 300); });
$("#logs-severity").addEventListener("change", loadLogs);
$("#logs-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadLogs(); });
if (refreshToken) renew().then((ok) => { if (ok) start(); });  // a reload: fresh tokens first
else if (token) start();
