// The analysts' console: sign in with a token, work the case queue, decide a case.
// Plain modern JavaScript, no build step, nothing loaded from elsewhere. Every value
// shown came in on a Kafka topic: it goes into the page as text (textContent), never
// as markup.

import { drawGraph, legendEntries } from "./graph.js";

const PATTERNS = ["rollover_loan", "predatory_lender", "mule_account", "structuring",
                  "fake_account"];
const SEVERITIES = ["low", "medium", "high"];
const STATUSES = ["open", "investigating", "confirmed", "dismissed"];
const ACTIONS = { investigating: "Start investigating", confirmed: "Confirm fraud",
                  dismissed: "Dismiss", open: "Reopen" };
const POLL_MS = 5000;
const TOKEN_KEY = "fraudmon.token";

const $ = (id) => document.getElementById(id);
const session = { token: sessionStorage.getItem(TOKEN_KEY), name: "", role: "" };
const queue = { filters: {}, cursor: null, rows: [], seen: new Set(), timer: null };
let current = null;  // the case on screen

// --- small helpers --------------------------------------------------------------------

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function utc(text) {
  const when = new Date(text);
  if (Number.isNaN(when.getTime())) return String(text);
  return when.toISOString().replace("T", " ").slice(0, 16);
}

export function number(value) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toLocaleString("en-US", { maximumFractionDigits: 4 });
}

function announce(text) {
  $("announce").textContent = text;
}

function showError(id, text) {
  const node = $(id);
  node.textContent = text || "";
  node.hidden = !text;
}

class Unauthorized extends Error {}

function reasonOf(answer) {
  const reason = (answer.body && answer.body.error) || `HTTP ${answer.status}`;
  return answer.status === 503 ? `${reason} (busy: try again in a moment)` : reason;
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${session.token}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers, cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (response.status === 401) throw new Unauthorized("unauthorized");
  return { status: response.status, body };
}

function failed(error, where) {
  if (error instanceof Unauthorized) {
    signOut("The worker no longer accepts this token. Sign in again.");
    return;
  }
  showError(where, `The worker did not answer (${error.message}).`);
}

// --- sign in ----------------------------------------------------------------------------

async function whoAmI() {
  // GET /whoami names the token (and so the history's entries) and its role.
  const answer = await api("/whoami");
  if (answer.status === 200 && answer.body) return answer.body;
  throw new Error(reasonOf(answer));
}

async function signIn(event) {
  event.preventDefault();
  const given = $("token").value.trim();
  showError("signin-error", "");
  if (!given) {
    showError("signin-error", "Enter a token.");
    return;
  }
  session.token = given;
  try {
    const who = await whoAmI();
    session.name = who.name || "";
    session.role = who.role || "";
    sessionStorage.setItem(TOKEN_KEY, given);
    $("token").value = "";
    location.hash = "#/queue";
    route();
  } catch (error) {
    session.token = null;
    showError("signin-error", error instanceof Unauthorized
      ? "Sign-in failed: the worker does not accept this token."
      : `Sign-in failed: ${error.message}.`);
    $("token").focus();
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = null;
  session.name = "";
  stopPolling();
  location.hash = "#/signin";
  route();
  if (message) showError("signin-error", message);
}

// --- views ------------------------------------------------------------------------------

const VIEWS = ["signin-view", "queue-view", "case-view", "rules-view"];

function show(view) {
  for (const id of VIEWS) $(id).hidden = id !== view;
  $("bar").hidden = view === "signin-view";
  $("who").textContent = session.name ? `Signed in as ${session.name}` : "";
  for (const [id, name] of [["nav-queue", "queue-view"], ["nav-rules", "rules-view"]]) {
    if (name === view) $(id).setAttribute("aria-current", "page");
    else $(id).removeAttribute("aria-current");
  }
}

async function route() {
  const hash = location.hash || "#/queue";
  if (!session.token) {
    stopPolling();
    show("signin-view");
    $("token").focus();
    return;
  }
  if (!session.name) {
    try {
      const who = await whoAmI();
      session.name = who.name || "";
      session.role = who.role || "";
    } catch (error) {
      signOut("Sign in again.");
      return;
    }
  }
  if (hash.startsWith("#/case/")) {
    stopPolling();
    show("case-view");
    await openCase(decodeURIComponent(hash.slice("#/case/".length)));
  } else if (hash.startsWith("#/rules")) {
    stopPolling();
    show("rules-view");
    await loadRules();
  } else {
    show("queue-view");
    await loadQueue(true);
    startPolling();
    $("queue-title").focus?.();
  }
}

// --- the queue --------------------------------------------------------------------------

function readFilters() {
  const form = $("filters");
  const filters = {};
  for (const name of ["status", "pattern", "severity", "assignee"]) {
    const value = form.elements[name].value.trim();
    if (value) filters[name] = value;
  }
  for (const name of ["since", "until"]) {
    const value = form.elements[name].value;
    if (value) filters[name] = `${value.length === 16 ? `${value}:00` : value}Z`;
  }
  return filters;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function fetchPage(filters, cursor) {
  return api(`/cases${query({ ...filters, cursor })}`);
}

async function loadQueue(reset) {
  if (reset) {
    queue.filters = readFilters();
    queue.cursor = null;
  }
  let answer;
  try {
    answer = await fetchPage(queue.filters, null);
  } catch (error) {
    failed(error, "queue-error");
    return;
  }
  if (answer.status !== 200) {
    showError("queue-error", reasonOf(answer));
    return;
  }
  showError("queue-error", "");
  const fresh = answer.body.cases.filter((c) => queue.rows.length && !queue.seen.has(c.alert_id));
  queue.rows = answer.body.cases;
  queue.cursor = answer.body.next_cursor;
  renderQueue(queue.rows, false, new Set(fresh.map((c) => c.alert_id)));
  renderCounts(answer.body.counts);
  $("updated").textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC`;
  if (fresh.length && !reset) announce(`${fresh.length} new case${fresh.length > 1 ? "s" : ""}`);
  for (const c of queue.rows) queue.seen.add(c.alert_id);
}

async function loadOlder() {
  if (!queue.cursor) return;
  try {
    const answer = await fetchPage(queue.filters, queue.cursor);
    if (answer.status !== 200) {
      showError("queue-error", reasonOf(answer));
      return;
    }
    queue.cursor = answer.body.next_cursor;
    queue.rows = queue.rows.concat(answer.body.cases);
    renderQueue(answer.body.cases, true, new Set());
  } catch (error) {
    failed(error, "queue-error");
  }
}

function renderCounts(counts) {
  const list = clear($("counts"));
  if (!counts) return;
  for (const status of STATUSES) {
    const item = el("li", null, { class: `count status-${status}` });
    item.append(el("span", status, { class: "count-name" }), " ",
                el("span", number(counts[status] ?? 0), { class: "count-value",
                                                           "data-status": status }));
    list.append(item);
  }
}

function renderQueue(rows, append, fresh) {
  const body = $("queue-rows");
  if (!append) clear(body);
  for (const item of rows) {
    const alert = item.alert;
    const row = el("tr", null, { class: fresh.has(item.alert_id) ? "new" : "",
                                 "data-alert-id": item.alert_id });
    const severity = el("td");
    severity.append(el("span", alert.severity, { class: `sev sev-${alert.severity}` }));
    const entity = el("td");
    entity.append(el("a", `${alert.entity_type} ${alert.entity}`,
                     { href: `#/case/${encodeURIComponent(item.alert_id)}`,
                       class: "case-link" }));
    row.append(severity, el("td", Number(alert.score).toFixed(2), { class: "num" }),
               el("td", alert.pattern), entity, el("td", utc(alert.ts)),
               el("td", item.status, { class: `status status-${item.status}` }),
               el("td", item.assignee || ""));
    body.append(row);
  }
  $("queue-empty").hidden = body.children.length > 0;
  $("older").hidden = !queue.cursor;
}

function startPolling() {
  stopPolling();
  queue.timer = setInterval(() => {
    if (!$("queue-view").hidden) loadQueue(false);
  }, POLL_MS);
}

function stopPolling() {
  if (queue.timer) clearInterval(queue.timer);
  queue.timer = null;
}

// --- a case -----------------------------------------------------------------------------

async function fetchCase(alertId) {
  const answer = await api(`/cases/${encodeURIComponent(alertId)}`);
  if (answer.status === 200) return answer.body;
  throw new Error(reasonOf(answer));
}

async function openCase(alertId) {
  showError("case-error", "");
  $("decide-result").textContent = "";
  let item;
  try {
    item = await fetchCase(alertId);
  } catch (error) {
    if (error instanceof Unauthorized) return failed(error, "case-error");
    $("case-title").textContent = "Case not found";
    $("case-summary").textContent = "";
    showError("case-error", `No case ${alertId}: ${error.message}.`);
    return;
  }
  current = item;
  renderCase(item);
  $("case-title").focus?.();
  const alert = item.alert;
  await Promise.all([loadEntity(alert), loadGraph(alert)]);
}

function renderCase(item) {
  const alert = item.alert;
  $("case-title").textContent = `${alert.pattern}: ${alert.entity_type} ${alert.entity}`;
  $("case-title").setAttribute("tabindex", "-1");
  const summary = clear($("case-summary"));
  summary.append(el("span", alert.severity, { class: `sev sev-${alert.severity}` }),
                 ` score ${Number(alert.score).toFixed(3)} · event time ${utc(alert.ts)} UTC · `,
                 el("code", item.alert_id));
  renderDecision(item);
  const reasons = clear($("reasons").tBodies[0]);
  for (const reason of alert.reasons || []) {
    const row = el("tr");
    row.append(el("td", reason.signal), el("td", number(reason.value), { class: "num" }),
               el("td", reason.typical));
    reasons.append(row);
  }
  const evidence = clear($("evidence"));
  for (const id of alert.evidence || []) {
    const item = el("li");
    item.append(el("code", id));
    evidence.append(item);
  }
  renderHistory(item.history || []);
}

function renderDecision(item) {
  const status = clear($("case-status"));
  status.append("Status: ", el("strong", item.status, { class: `status status-${item.status}`,
                                                        id: "case-state" }));
  if (item.assignee) status.append(` · assigned to ${item.assignee}`);
  const buttons = clear($("transitions"));
  const allowed = item.allowed || [];
  if (!allowed.length) {
    buttons.append(el("span", "No transition from here.", { class: "muted" }));
  }
  for (const target of allowed) {
    const button = el("button", ACTIONS[target] || target,
                      { type: "button", "data-to": target, id: `to-${target}`,
                        class: `action action-${target}` });
    button.addEventListener("click", () => decide({ status: target }));
    buttons.append(button);
  }
}

function renderHistory(history) {
  const list = clear($("history"));
  if (!history.length) list.append(el("li", "Nothing yet.", { class: "muted" }));
  for (const entry of history) {
    const item = el("li");
    item.append(el("time", utc(entry.at), { datetime: entry.at }), " ",
                el("strong", entry.by), " ");
    if (entry.to) item.append(`${entry.from} → ${entry.to}`);
    if (entry.assignee && entry.to === "investigating") item.append(` (assigned ${entry.assignee})`);
    if (entry.label_event_id) item.append(" · label ", el("code", entry.label_event_id));
    if (entry.note) item.append(el("blockquote", entry.note));
    list.append(item);
  }
}

async function decide(change) {
  if (!current) return;
  const note = $("note").value.trim();
  const body = { ...change, version: current.version };
  if (note) body.note = note;
  if (!body.status && !body.note) {
    $("decide-result").textContent = "Write a note first.";
    return;
  }
  $("decide-result").textContent = "Saving…";
  for (const button of $("transitions").querySelectorAll("button")) button.disabled = true;
  try {
    const answer = await api(`/cases/${encodeURIComponent(current.alert_id)}`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    if (answer.status === 200) {
      current = answer.body;
      $("note").value = "";
      renderDecision(current);
      renderHistory(current.history || []);
      $("decide-result").textContent = change.status
        ? `Saved: ${current.status}.` : "Note added.";
      announce($("decide-result").textContent);
      // The pressed button is gone (the transitions are drawn anew): keep the keyboard's
      // place on the decision, whose next Tab is the first transition from here.
      $("case-status").focus();
    } else {
      $("decide-result").textContent = `Not saved: ${reasonOf(answer)}`;
      if (answer.status === 409) await openCase(current.alert_id);
    }
  } catch (error) {
    failed(error, "case-error");
  } finally {
    for (const button of $("transitions").querySelectorAll("button")) button.disabled = false;
  }
}

async function loadEntity(alert) {
  const meta = $("entity-meta");
  const scores = clear($("scores").tBodies[0]);
  const features = clear($("features").tBodies[0]);
  try {
    const answer = await api(`/entities/${encodeURIComponent(alert.entity)}`
                             + query({ entity_type: alert.entity_type }));
    if (answer.status !== 200) {
      meta.textContent = answer.status === 404
        ? "No worker holds state for the entity now (evicted, or not yet seen)."
        : `Entity: ${reasonOf(answer)}`;
      return;
    }
    const entity = answer.body;
    meta.textContent = `Shard ${entity.shard} · last seen ${entity.last_seen_ts
      ? utc(entity.last_seen_ts * 1000) : "?"} UTC · model ${entity.model_version}`;
    for (const [name, value] of Object.entries(entity.scores || {})) {
      const row = el("tr");
      row.append(el("th", name, { scope: "row" }), el("td", number(value), { class: "num" }));
      scores.append(row);
    }
    for (const [name, value] of Object.entries(entity.labels || {})) {
      const row = el("tr");
      row.append(el("th", `label ${name}`, { scope: "row" }),
                 el("td", value ? "confirmed" : "dismissed"));
      scores.append(row);
    }
    for (const [name, value] of Object.entries(entity.features || {})) {
      const row = el("tr");
      row.append(el("th", name, { scope: "row" }), el("td", number(value), { class: "num" }));
      features.append(row);
    }
  } catch (error) {
    failed(error, "case-error");
  }
}

async function loadGraph(alert) {
  const wrap = clear($("graph-wrap"));
  const rows = clear($("movements").tBodies[0]);
  $("graph-focus").textContent = "";
  try {
    const answer = await api(`/entities/${encodeURIComponent(alert.entity)}/movements`
                             + query({ entity_type: alert.entity_type, limit: 200 }));
    if (answer.status !== 200) {
      $("graph-meta").textContent = answer.status === 404
        ? "No movements held for this entity now (its state was evicted, or not yet seen)."
        : `Movements: ${reasonOf(answer)}`;
      return;
    }
    const graph = answer.body;
    $("graph-meta").textContent = `${graph.nodes.length} parties, ${graph.edges.length} `
      + `movements${graph.omitted ? ` (${graph.omitted} older not shown)` : ""}. `
      + `Held: ${graph.held}.`;
    drawGraph(wrap, graph, { onFocus: (text) => { $("graph-focus").textContent = text; } });
    const legend = clear($("legend"));
    for (const entry of legendEntries(graph)) {
      legend.append(el("li", entry.label, { class: `legend-${entry.key}` }));
    }
    const names = new Map(graph.nodes.map((n) => [n.id, n.entity]));
    for (const edge of graph.edges.slice().reverse()) {
      const detail = [];
      if (edge.channel) detail.push(edge.channel);
      if (edge.loan_id) detail.push(edge.loan_id);
      if (edge.funded_by) detail.push(`rollover: funded by ${edge.funded_by}`
                                      + (edge.funded_by_lender ? ` (${edge.funded_by_lender})` : ""));
      if (edge.term_days) detail.push(`${edge.term_days} days, fee ${number(edge.fee)}`);
      if (edge.payments) detail.push(`${edge.payments} payments`);
      const row = el("tr");
      row.append(el("td", utc(edge.ts)), el("td", edge.kind),
                 el("td", names.get(edge.source) || edge.source),
                 el("td", names.get(edge.target) || edge.target),
                 el("td", number(edge.amount), { class: "num" }), el("td", detail.join(", ")));
      rows.append(row);
    }
  } catch (error) {
    failed(error, "case-error");
  }
}

// --- rules ------------------------------------------------------------------------------

async function loadRules() {
  showError("rules-error", "");
  $("rules").textContent = "";
  try {
    const answer = await api("/rules");
    if (answer.status === 200) {
      $("rules").textContent = JSON.stringify(answer.body, null, 2);
    } else if (answer.status === 404) {
      $("rules").textContent = "This worker has no rules API.";
    } else {
      showError("rules-error", reasonOf(answer));
    }
  } catch (error) {
    failed(error, "rules-error");
  }
}

// --- start ------------------------------------------------------------------------------

function fillSelect(select, values) {
  for (const value of values) select.append(el("option", value, { value }));
}

function start() {
  fillSelect($("f-pattern"), PATTERNS);
  fillSelect($("f-severity"), SEVERITIES);
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    queue.rows = [];
    queue.seen.clear();
    loadQueue(true);
  });
  $("clear-filters").addEventListener("click", () => {
    $("filters").reset();
    queue.rows = [];
    queue.seen.clear();
    loadQueue(true);
  });
  $("older").addEventListener("click", loadOlder);
  $("add-note").addEventListener("click", () => decide({}));
  window.addEventListener("hashchange", route);
  $("queue-title").setAttribute("tabindex", "-1");
  $("case-status").setAttribute("tabindex", "-1");
  route();
}

start();
