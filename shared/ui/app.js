// The taskhooks UI: a client of the public API like any other, signing its calls with
// Hawk from credentials kept in this tab's session storage.

import { authorization } from "./hawk.js";

const $ = (sel, root = document) => root.querySelector(sel);
const main = $("#main");
const STORAGE_KEY = "taskhooks.credentials";

// --- credentials -------------------------------------------------------------------------

function credentials() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
}

function showIdentity() {
  const creds = credentials();
  $("#signin").hidden = !!creds;
  $("#who").hidden = !creds;
  $("#who-id").textContent = creds ? creds.clientId : "";
}

$("#signin").addEventListener("submit", (event) => {
  event.preventDefault();
  const clientId = $("#client-id").value.trim();
  const accessToken = $("#access-token").value.trim();
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ clientId, accessToken }));
  $("#access-token").value = "";
  showIdentity();
  route();
});

$("#signout").addEventListener("click", () => {
  sessionStorage.removeItem(STORAGE_KEY);
  showIdentity();
  route();
});

// --- the API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body) {
  const url = `/api/${path}`;
  const headers = {};
  const text = body === undefined ? undefined : JSON.stringify(body);
  if (text !== undefined) headers["content-type"] = "application/json";
  const creds = credentials();
  if (creds) headers.authorization = await authorization(creds, method, url, text);
  let response;
  try {
    response = await fetch(url, { method, headers, body: text });
  } catch (e) {
    throw new ApiError(0, { code: "NetworkError", message: `The service did not answer: ${e.message}` });
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const enc = encodeURIComponent;
const hooksApi = {
  groups: () => api("GET", "hooks/v1/hooks"),
  hooks: (g) => api("GET", `hooks/v1/hooks/${enc(g)}`),
  hook: (g, h) => api("GET", `hooks/v1/hooks/${enc(g)}/${enc(h)}`),
  status: (g, h) => api("GET", `hooks/v1/hooks/${enc(g)}/${enc(h)}/status`),
  fires: (g, h) => api("GET", `hooks/v1/hooks/${enc(g)}/${enc(h)}/last-fires?limit=20`),
  create: (g, h, def) => api("PUT", `hooks/v1/hooks/${enc(g)}/${enc(h)}`, def),
  update: (g, h, def) => api("POST", `hooks/v1/hooks/${enc(g)}/${enc(h)}`, def),
  remove: (g, h) => api("DELETE", `hooks/v1/hooks/${enc(g)}/${enc(h)}`),
  trigger: (g, h, payload) => api("POST", `hooks/v1/hooks/${enc(g)}/${enc(h)}/trigger`, payload),
  token: (g, h) => api("GET", `hooks/v1/hooks/${enc(g)}/${enc(h)}/token`),
  resetToken: (g, h) => api("POST", `hooks/v1/hooks/${enc(g)}/${enc(h)}/token`),
  nextFires: (g, h) => api("GET", `taskhooks/v1/hooks/${enc(g)}/${enc(h)}/next-fires?count=5`),
  fireStats: (g, h) => api("GET", `taskhooks/v1/hooks/${enc(g)}/${enc(h)}/fire-stats`),
  lastFireResults: (g) => api("GET", `taskhooks/v1/hooks/${enc(g)}/last-fire-results`),
  dryRun: (g, h, payload) => api("POST", `taskhooks/v1/hooks/${enc(g)}/${enc(h)}/dry-run`, { payload }),
  schedulePreview: (schedule) => api("POST", "taskhooks/v1/schedule-preview", { schedule, count: 3 }),
};

const auditApi = {
  changes: (type, id) => api("GET", `taskhooks/v1/audit/${enc(type)}/${enc(id)}?limit=100`),
};

const cronApi = {
  list: () => api("GET", "taskhooks/v1/cron-projects"),
  get: (p) => api("GET", `taskhooks/v1/cron-projects/${enc(p)}`),
  remove: (p) => api("DELETE", `taskhooks/v1/cron-projects/${enc(p)}`),
  dryRun: (p, at) => api("POST", `taskhooks/v1/cron-projects/${enc(p)}/dry-run`, { at }),
};

// A cron project's job hook (`cron/<project>/<job>`): the project it belongs to.
const cronProjectOf = (g, h) => (g === "cron" && h.includes("/") ? h.slice(0, h.indexOf("/")) : null);
const cronHref = (p) => `#/cron-projects/${enc(p)}`;

// --- rendering helpers ---------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

const hookHref = (g, h, page = "") => `#/hooks/${enc(g)}/${enc(h)}${page}`;

// An API error as the API states it: its code, its message, its status.
function errorBox(error) {
  if (!(error instanceof ApiError)) return el("div", { class: "error-box", role: "alert", text: String(error) });
  const code = error.body.code || `HTTP ${error.status}`;
  return el("div", { class: "error-box", role: "alert" },
    el("strong", { text: `${code} (${error.status})` }),
    el("pre", { text: error.body.message || "" }));
}

// A panel that shows "Loading…" until `load` settles, then its content or the error.
function panel(title, load, render) {
  const body = el("div", { class: "loading", "aria-busy": "true", text: "Loading…" });
  const section = el("section", { class: "card" }, el("h2", { text: title }), body);
  load().then(
    (data) => body.replaceWith(render(data)),
    (error) => body.replaceWith(errorBox(error)),
  );
  return section;
}

// Disables `button` and shows `busyText` while `work` runs.
async function busy(button, busyText, work) {
  const label = button.textContent;
  button.disabled = true;
  button.textContent = busyText;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

function confirmDialog(text, okLabel = "Confirm") {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
    $("#confirm-cancel").focus();
  });
}

function show(...nodes) {
  main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
  main.focus({ preventScroll: true });
}

// --- explorer --------------------------------------------------------------------------------------

let explorerGroups = null;

async function renderExplorer(current) {
  const nav = $("#explorer");
  try {
    if (!explorerGroups) explorerGroups = (await hooksApi.groups()).groups;
  } catch (error) {
    nav.replaceChildren(el("p", { class: "muted", text: `Hook groups unavailable: ${error.message}` }));
    return;
  }
  const list = el("ul");
  for (const g of explorerGroups) {
    const item = el("li", {}, el("a", { href: `#/hooks/${enc(g)}`, "aria-current": current.group === g && !current.hook ? "page" : null, text: g }));
    if (current.group === g) {
      try {
        const hooks = (await hooksApi.hooks(g)).hooks;
        // Hooks whose last fire failed are marked (the marks are extra: without them the
        // list still shows).
        const results = await hooksApi.lastFireResults(g).then((r) => r.lastFires, () => ({}));
        item.append(el("ul", {}, hooks.map((hook) => el("li", {}, el("a", {
          href: hookHref(g, hook.hookId), "aria-current": current.hook === hook.hookId ? "page" : null,
          class: results[hook.hookId] === "error" ? "failed" : null,
          title: results[hook.hookId] === "error" ? "its last fire failed" : null,
        }, hook.hookId, results[hook.hookId] === "error" ? el("span", { class: "failed-mark", "aria-label": "last fire failed", text: " ✗" }) : null)))));
      } catch {
        // The group's page shows the error.
      }
    }
    list.append(item);
  }
  nav.replaceChildren(el("p", {}, el("a", { class: "button", href: "#/new", text: "New hook" }), " ",
    el("a", { href: "#/cron-projects", "aria-current": current.cron ? "page" : null, text: "Cron projects" })),
    explorerGroups.length ? list : el("p", { class: "muted", text: "No hooks yet." }));
}

function refreshExplorer() {
  explorerGroups = null;
}

// --- pages ---------------------------------------------------------------------------------------------

function groupsPage() {
  show(el("h1", { text: "Hook groups" }), panel("Groups", hooksApi.groups, ({ groups }) =>
    groups.length
      ? el("ul", {}, groups.map((g) => el("li", {}, el("a", { href: `#/hooks/${enc(g)}`, text: g }))))
      : el("p", { class: "muted", text: "No hooks yet. Create one with “New hook”." })));
}

function groupPage(g) {
  show(el("h1", { text: `Hooks in ${g}` }), panel("Hooks", () => hooksApi.hooks(g), ({ hooks }) =>
    el("table", {},
      el("thead", {}, el("tr", {}, el("th", { text: "Hook" }), el("th", { text: "Name" }), el("th", { text: "Schedule" }))),
      el("tbody", {}, hooks.map((hook) => el("tr", {},
        el("td", {}, el("a", { href: hookHref(g, hook.hookId), text: hook.hookId })),
        el("td", { text: hook.metadata.name }),
        el("td", { text: (hook.schedule || []).join(", ") || "—" })))))));
}

function firesTable({ lastFires }) {
  if (!lastFires.length) return el("p", { class: "muted", text: "Not fired yet." });
  return el("table", {},
    el("thead", {}, el("tr", {}, ["Time", "Fired by", "Task", "Result"].map((t) => el("th", { text: t })))),
    el("tbody", {}, lastFires.map((f) => el("tr", {},
      el("td", { text: f.taskCreateTime }),
      el("td", { text: f.firedBy }),
      el("td", {}, el("a", { href: `/api/queue/v1/task/${enc(f.taskId)}`, text: f.taskId })),
      el("td", {}, f.result === "success"
        ? el("span", { class: "ok", text: "success" })
        : el("details", {}, el("summary", { text: "error" }), el("pre", { text: f.error })))))));
}

// A line diff of two JSON texts, for the history tab. Written here rather than taken from
// a library because the page loads nothing but its own files; the longest common
// subsequence of lines, which for hook definitions (tens to hundreds of lines) is instant.
export function lineDiff(before, after) {
  const a = before.split("\n");
  const b = after.split("\n");
  if (a.length * b.length > 4_000_000) return [...a.map((t) => ["-", t]), ...b.map((t) => ["+", t])];
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push([" ", a[i]]);
      i++;
      j++;
    } else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push(["+", b[j++]]);
    } else {
      out.push(["-", a[i++]]);
    }
  }
  return out;
}

// A stacked bar chart of fires (success, error, declined) as inline SVG, drawn here: the
// page loads nothing from elsewhere. Each bar has a <title> with its counts.
// Colours are the stylesheet's (`.s-<series>`): the page's Content-Security-Policy allows
// no inline style.
const SERIES = ["success", "error", "declined"];

function fireChart(title, bars, label) {
  const w = 600;
  const h = 120;
  const pad = 18;
  const max = Math.max(1, ...bars.map((b) => b.success + b.error + b.declined));
  const bw = (w - 2) / bars.length;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h + pad}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ${bars.reduce((n, b) => n + b.success + b.error + b.declined, 0)} fires`);
  svg.classList.add("chart");
  bars.forEach((b, i) => {
    const g = document.createElementNS(svg.namespaceURI, "g");
    g.setAttribute("class", "bar");
    const tip = document.createElementNS(svg.namespaceURI, "title");
    tip.textContent = `${label(b.start)}: ${b.success} success, ${b.error} error, ${b.declined} declined`;
    g.append(tip);
    let y = h;
    for (const key of SERIES) {
      const bh = (b[key] / max) * (h - 4);
      if (bh <= 0) continue;
      y -= bh;
      const r = document.createElementNS(svg.namespaceURI, "rect");
      Object.entries({ x: 1 + i * bw + 1, y, width: Math.max(1, bw - 2), height: bh, class: `s-${key}`, "data-series": key }).forEach(([k, v]) => r.setAttribute(k, v));
      g.append(r);
    }
    // An empty bar still answers to the pointer (its title says 0).
    const hit = document.createElementNS(svg.namespaceURI, "rect");
    Object.entries({ x: 1 + i * bw, y: 0, width: bw, height: h, fill: "transparent" }).forEach(([k, v]) => hit.setAttribute(k, v));
    g.append(hit);
    svg.append(g);
  });
  const axis = document.createElementNS(svg.namespaceURI, "text");
  axis.setAttribute("x", 2);
  axis.setAttribute("y", h + pad - 4);
  axis.setAttribute("class", "axis");
  axis.textContent = `${label(bars[0].start)} … ${label(bars[bars.length - 1].start)}, most ${max}`;
  svg.append(axis);
  return el("figure", { class: "chart-box" }, el("figcaption", { text: title }), svg);
}

function fireCharts({ hours, days }) {
  return el("div", { id: "fire-charts" },
    el("p", { class: "legend" }, ...SERIES.map((k) => el("span", { class: "key" }, el("span", { class: `swatch s-${k}` }), k))),
    fireChart("Last 24 hours", hours, (t) => t.slice(11, 16)),
    fireChart("Last 30 days", days, (t) => t.slice(5)));
}

function historyTable({ auditHistory }) {
  if (!auditHistory.length) return el("p", { class: "muted", text: "No changes recorded in the last 30 days." });
  const text = (v) => (v === undefined ? "" : JSON.stringify(v, null, 2));
  return el("table", { id: "history" },
    el("thead", {}, el("tr", {}, ["Time", "By", "Action", "Change"].map((t) => el("th", { text: t })))),
    el("tbody", {}, [...auditHistory].reverse().map((e) => el("tr", {},
      el("td", { text: e.created }),
      el("td", { text: e.clientId }),
      el("td", { text: e.actionType }),
      el("td", {}, e.before === undefined && e.after === undefined ? "—"
        : el("details", {}, el("summary", { text: "diff" }),
          el("pre", { class: "diff" }, lineDiff(text(e.before), text(e.after))
            .filter(([op], k, all) => op !== " " || all.slice(Math.max(0, k - 2), k + 3).some(([o]) => o !== " "))
            .map(([op, line]) => el("span", { class: op === "+" ? "added" : op === "-" ? "removed" : null, text: `${op} ${line}\n` })))))))));
}

function hookPage(g, h) {
  // A cron project's job is changed through its repository's .cron.yml, not here.
  const project = cronProjectOf(g, h);
  const actions = el("div", { class: "actions" },
    el("a", { class: "button", href: hookHref(g, h, "/trigger"), text: "Trigger" }),
    project ? null : el("a", { class: "button secondary", href: hookHref(g, h, "/edit"), text: "Edit" }),
    el("button", { type: "button", class: "secondary", id: "reveal-token", onclick: (e) => revealToken(g, h, e.target, false) }, "Show trigger token"),
    el("button", { type: "button", class: "secondary", id: "reset-token", onclick: (e) => revealToken(g, h, e.target, true) }, "Reset trigger token"),
    project ? null : el("button", { type: "button", class: "danger", id: "remove", onclick: (e) => removeHook(g, h, e.target) }, "Remove"));
  show(
    el("h1", { text: `${g}/${h}` }),
    project ? el("p", { class: "muted", id: "managed" }, "A job of the cron project ",
      el("a", { href: cronHref(project), text: project }), ": change it in the repository's .cron.yml.") : null,
    actions,
    el("div", { id: "token-box" }),
    el("div", { class: "grid2" },
      panel("Status", () => hooksApi.status(g, h), (status) => el("dl", {},
        el("dt", { text: "Last fire" }),
        el("dd", { text: status.lastFire.result === "no-fire" ? "never" : `${status.lastFire.result} at ${status.lastFire.time}` }),
        el("dt", { text: "Next scheduled" }),
        el("dd", { text: status.nextScheduledDate || "not scheduled" }))),
      panel("Next fires", () => hooksApi.nextFires(g, h), ({ nextFires }) =>
        nextFires.length ? el("ul", {}, nextFires.map((t) => el("li", { text: t }))) : el("p", { class: "muted", text: "No schedule." }))),
    panel("Fires", () => hooksApi.fireStats(g, h), fireCharts),
    panel("Last fires", () => hooksApi.fires(g, h), firesTable),
    panel("Definition", () => hooksApi.hook(g, h), (def) => el("pre", { id: "definition", text: JSON.stringify(def, null, 2) })),
    panel("History", () => auditApi.changes("hook", `${g}/${h}`), historyTable),
  );
}

async function revealToken(g, h, button, reset) {
  const question = reset
    ? "Reset the trigger token? Every URL holding the old token stops working."
    : "Show the trigger token? Anyone who sees it can fire this hook.";
  if (!(await confirmDialog(question, reset ? "Reset token" : "Show token"))) return;
  const box = $("#token-box");
  try {
    const { token } = await busy(button, reset ? "Resetting…" : "Loading…", () => (reset ? hooksApi.resetToken(g, h) : hooksApi.token(g, h)));
    const url = `${location.origin}/api/hooks/v1/hooks/${enc(g)}/${enc(h)}/trigger/${enc(token)}`;
    box.replaceChildren(el("section", { class: "card" }, el("h2", { text: "Trigger URL" }),
      el("p", { class: "muted", text: "POST a JSON payload to this URL to fire the hook without credentials." }),
      el("pre", { id: "token-url", text: url })));
  } catch (error) {
    box.replaceChildren(errorBox(error));
  }
}

async function removeHook(g, h, button) {
  if (!(await confirmDialog(`Remove ${g}/${h} and its fire history?`, "Remove"))) return;
  try {
    await busy(button, "Removing…", () => hooksApi.remove(g, h));
    refreshExplorer();
    location.hash = `#/hooks/${enc(g)}`;
  } catch (error) {
    main.prepend(errorBox(error));
  }
}

// --- the hook editor ----------------------------------------------------------------------------

const TEMPLATE = {
  metadata: { name: "", description: "", owner: "", emailOnError: true },
  schedule: [],
  task: {
    taskQueueId: "proj/ci",
    payload: {},
    metadata: { name: "", description: "", owner: "", source: "https://example.com" },
  },
  bindings: [],
  triggerSchema: { type: "object", additionalProperties: false },
};

// The JSON's parse error with its line and column, or null. Browsers word the error
// differently; the position is taken from the message, or is the end for a truncated text.
function parseError(text) {
  try {
    JSON.parse(text);
    return null;
  } catch (e) {
    const at = /position (\d+)/.exec(e.message);
    const offset = at ? Number(at[1]) : /end of (JSON|data)/i.test(e.message) ? text.length : null;
    if (offset === null) return e.message;
    const before = text.slice(0, offset).split("\n");
    const detail = e.message.replace(/\s*\(line \d+ column \d+\)/, "");
    return `Line ${before.length}, column ${before[before.length - 1].length + 1}: ${detail}`;
  }
}

const str = (v) => typeof v === "string";
const EMAIL = /^[^@\s]+@[^@\s]+$/;

// Checks a hook definition against the create-hook-request schema (Hooks v1), the way
// the service will, so mistakes show before sending. Returns `path: problem` strings.
export function hookProblems(def, g, h) {
  const problems = [];
  const need = (cond, path, message) => { if (!cond) problems.push(`${path}: ${message}`); };
  if (typeof def !== "object" || def === null || Array.isArray(def)) return ["the definition must be a JSON object"];
  const allowed = ["hookGroupId", "hookId", "metadata", "task", "schedule", "bindings", "triggerSchema"];
  for (const key of Object.keys(def)) need(allowed.includes(key), key, "is not a hook property");
  if ("hookGroupId" in def) need(def.hookGroupId === g, "hookGroupId", `must be "${g}", the group in the URL`);
  if ("hookId" in def) need(def.hookId === h, "hookId", `must be "${h}", the id in the URL`);
  const m = def.metadata;
  need(typeof m === "object" && m !== null && !Array.isArray(m), "metadata", "is required, an object");
  if (m && typeof m === "object") {
    for (const key of ["name", "description", "owner"]) need(str(m[key]), `metadata.${key}`, "is required, a string");
    need(!str(m.name) || m.name.length <= 255, "metadata.name", "must be at most 255 characters");
    need(!str(m.owner) || m.owner.length <= 255, "metadata.owner", "must be at most 255 characters");
    need(!str(m.owner) || EMAIL.test(m.owner), "metadata.owner", "must be an e-mail address");
    need(!("emailOnError" in m) || typeof m.emailOnError === "boolean", "metadata.emailOnError", "must be true or false");
    for (const key of Object.keys(m)) need(["name", "description", "owner", "emailOnError"].includes(key), `metadata.${key}`, "is not a metadata property");
  }
  need(typeof def.task === "object" && def.task !== null && !Array.isArray(def.task), "task", "is required, an object (a JSON-e template)");
  if ("schedule" in def) {
    need(Array.isArray(def.schedule), "schedule", "must be a list of cron expressions");
    (Array.isArray(def.schedule) ? def.schedule : []).forEach((s, i) => {
      need(str(s), `schedule[${i}]`, "must be a string");
      need(def.schedule.indexOf(s) === i, `schedule[${i}]`, "repeats an earlier entry");
    });
  }
  if ("bindings" in def) {
    need(Array.isArray(def.bindings), "bindings", "must be a list");
    (Array.isArray(def.bindings) ? def.bindings : []).forEach((b, i) => {
      need(b && str(b.exchange) && b.exchange.length > 0, `bindings[${i}].exchange`, "is required, a non-empty string");
      need(b && str(b.routingKeyPattern) && b.routingKeyPattern.length > 0, `bindings[${i}].routingKeyPattern`, "is required, a non-empty string");
      for (const key of Object.keys(b || {})) need(["exchange", "routingKeyPattern"].includes(key), `bindings[${i}].${key}`, "is not a binding property");
      const same = def.bindings.findIndex((o) => o && b && o.exchange === b.exchange && o.routingKeyPattern === b.routingKeyPattern);
      need(same === i, `bindings[${i}]`, "repeats an earlier binding");
    });
  }
  if ("triggerSchema" in def) need(typeof def.triggerSchema === "object" && def.triggerSchema !== null && !Array.isArray(def.triggerSchema), "triggerSchema", "must be an object (a JSON schema)");
  return problems;
}

function editorPage(g, h) {
  const creating = h === undefined;
  const groupInput = el("input", { type: "text", id: "hook-group", value: g || "", required: true, "aria-label": "Hook group" });
  const idInput = el("input", { type: "text", id: "hook-id", value: h || "", required: true, "aria-label": "Hook id" });
  const textarea = el("textarea", { id: "editor", spellcheck: "false", "aria-describedby": "editor-problems", "aria-label": "Hook definition (JSON)" });
  const problemsList = el("ul", { id: "editor-problems", class: "errors", "aria-live": "polite" });
  const schedule = el("p", { id: "schedule-preview", class: "muted", "aria-live": "polite" });
  const result = el("div", { id: "save-result" });
  const save = el("button", { type: "submit", id: "save" }, creating ? "Create hook" : "Save changes");

  let previewTimer;
  const check = () => {
    const gid = groupInput.value.trim();
    const hid = idInput.value.trim();
    const syntax = parseError(textarea.value);
    const problems = syntax ? [syntax] : hookProblems(JSON.parse(textarea.value), gid, hid);
    if (!/^[a-zA-Z0-9_-]{1,1000}$/.test(gid)) problems.push("hook group: is required; letters, digits, - and _");
    if (!/^[a-zA-Z0-9_/-]{1,1000}$/.test(hid)) problems.push("hook id: is required; letters, digits, -, _ and /");
    problemsList.replaceChildren(...problems.map((p) => el("li", { text: p })));
    textarea.setAttribute("aria-invalid", problems.length ? "true" : "false");
    save.disabled = problems.length > 0;
    clearTimeout(previewTimer);
    if (!syntax) {
      const def = JSON.parse(textarea.value);
      if (Array.isArray(def.schedule) && def.schedule.length && def.schedule.every(str)) {
        previewTimer = setTimeout(() => hooksApi.schedulePreview(def.schedule).then(
          ({ nextFires }) => { schedule.className = "muted"; schedule.textContent = `Next fires: ${nextFires.join(", ")}`; },
          (error) => { schedule.className = "errors"; schedule.textContent = `schedule: ${error.message}`; }), 250);
      } else {
        schedule.textContent = "";
      }
    }
    return problems.length === 0;
  };
  for (const input of [textarea, groupInput, idInput]) input.addEventListener("input", check);
  textarea.addEventListener("keydown", (event) => {
    // Tab indents inside the editor; Escape then Tab leaves it (keyboard users keep a way out).
    if (event.key === "Tab" && !event.shiftKey && textarea.dataset.escaped !== "1") {
      event.preventDefault();
      textarea.setRangeText("  ", textarea.selectionStart, textarea.selectionEnd, "end");
      check();
    }
    textarea.dataset.escaped = event.key === "Escape" ? "1" : "0";
  });

  const form = el("form", { id: "hook-form", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (!check()) return;
    const gid = groupInput.value.trim();
    const hid = idInput.value.trim();
    try {
      await busy(save, creating ? "Creating…" : "Saving…", () =>
        creating ? hooksApi.create(gid, hid, JSON.parse(textarea.value)) : hooksApi.update(gid, hid, JSON.parse(textarea.value)));
      refreshExplorer();
      location.hash = hookHref(gid, hid);
    } catch (error) {
      result.replaceChildren(errorBox(error));
    }
  } },
  el("div", { class: "fields" },
    el("label", {}, "Hook group", groupInput),
    el("label", {}, "Hook id", idInput)),
  textarea, problemsList, schedule,
  el("div", { class: "actions" }, save, el("a", { class: "button secondary", href: creating ? "#/" : hookHref(g, h), text: "Cancel" })),
  result);

  if (creating) {
    textarea.value = JSON.stringify(TEMPLATE, null, 2);
    show(el("h1", { text: "New hook" }), el("p", { class: "muted", text: "The definition is checked as you type; the service checks it again." }), form);
    check();
  } else {
    groupInput.readOnly = true;
    idInput.readOnly = true;
    show(el("h1", { text: `Edit ${g}/${h}` }), el("p", { class: "loading", id: "editor-loading", text: "Loading…" }), form);
    textarea.disabled = true;
    hooksApi.hook(g, h).then((def) => {
      delete def.hookGroupId;
      delete def.hookId;
      textarea.value = JSON.stringify(def, null, 2);
      textarea.disabled = false;
      $("#editor-loading")?.remove();
      check();
    }, (error) => $("#editor-loading").replaceWith(errorBox(error)));
  }
}

// --- trigger -----------------------------------------------------------------------------------------

function triggerPage(g, h) {
  const textarea = el("textarea", { id: "payload", spellcheck: "false", "aria-describedby": "payload-problems", "aria-label": "Trigger payload (JSON)" }, "{}");
  textarea.style.minHeight = "10rem";
  const problems = el("ul", { id: "payload-problems", class: "errors", "aria-live": "polite" });
  const preview = el("div", { id: "preview" });
  const previewButton = el("button", { type: "button", class: "secondary", id: "preview-button" }, "Preview task");
  const fire = el("button", { type: "submit", id: "fire" }, "Trigger hook");
  const result = el("div", { id: "trigger-result", "aria-live": "polite" });

  const syntaxOk = () => {
    const error = parseError(textarea.value);
    problems.replaceChildren(...(error ? [el("li", { text: error })] : []));
    textarea.setAttribute("aria-invalid", error ? "true" : "false");
    fire.disabled = !!error;
    previewButton.disabled = !!error;
    return !error;
  };
  textarea.addEventListener("input", syntaxOk);

  // The dry run checks the payload against the hook's triggerSchema and renders the task.
  const dryRun = async () => {
    const outcome = await hooksApi.dryRun(g, h, JSON.parse(textarea.value));
    if (outcome.outcome === "invalid-payload") {
      problems.replaceChildren(el("li", { text: `triggerSchema: ${outcome.error}` }));
      textarea.setAttribute("aria-invalid", "true");
      return null;
    }
    return outcome;
  };

  previewButton.addEventListener("click", async () => {
    if (!syntaxOk()) return;
    try {
      const outcome = await busy(previewButton, "Previewing…", dryRun);
      if (!outcome) return preview.replaceChildren();
      const body = outcome.task ? JSON.stringify(outcome.task, null, 2) : (outcome.error || "");
      preview.replaceChildren(el("section", { class: "card" }, el("h2", { text: `Preview: ${outcome.outcome}` }),
        outcome.missingScopes ? el("p", { class: "errors", text: `The role ${outcome.role} lacks: ${JSON.stringify(outcome.missingScopes)}` }) : null,
        el("pre", { text: body })));
    } catch (error) {
      preview.replaceChildren(errorBox(error));
    }
  });

  const form = el("form", { id: "trigger-form", onsubmit: async (event) => {
    event.preventDefault();
    if (!syntaxOk()) return;
    try {
      const answer = await busy(fire, "Triggering…", async () => {
        if (!(await dryRun())) return null;
        return hooksApi.trigger(g, h, JSON.parse(textarea.value));
      });
      if (!answer) return;
      result.replaceChildren(answer.taskId
        ? el("p", { class: "ok", id: "fired" }, "Created task ", el("a", { href: `/api/queue/v1/task/${enc(answer.taskId)}`, text: answer.taskId }))
        : el("p", { class: "muted", id: "fired", text: "The template declined: no task was created." }));
    } catch (error) {
      result.replaceChildren(errorBox(error));
    }
  } }, textarea, problems, el("div", { class: "actions" }, fire, previewButton,
    el("a", { class: "button secondary", href: hookHref(g, h), text: "Back to the hook" })));

  show(el("h1", { text: `Trigger ${g}/${h}` }),
    el("p", { class: "muted", text: "The payload is checked against the hook's triggerSchema before the hook fires." }),
    form, result, preview,
    panel("triggerSchema", () => hooksApi.hook(g, h), (def) => el("pre", { text: JSON.stringify(def.triggerSchema, null, 2) })));
}

function cronProjectsPage() {
  show(el("h1", { text: "Cron projects" }),
    el("p", { class: "muted", text: "Repositories whose .cron.yml the service runs; each job is a hook in the group cron." }),
    panel("Projects", cronApi.list, ({ cronProjects }) => cronProjects.length
      ? el("table", {},
        el("thead", {}, el("tr", {}, ["Project", "Repository", "Branch", "Level"].map((t) => el("th", { text: t })))),
        el("tbody", {}, cronProjects.map((p) => el("tr", {},
          el("td", {}, el("a", { href: cronHref(p.project), text: p.project })),
          el("td", { text: p.repository.url }),
          el("td", { text: p.repository.branch }),
          el("td", { text: p.repository.level })))))
      : el("p", { class: "muted", text: "No cron projects. Register one with PUT /api/taskhooks/v1/cron-projects/<project> (see the README)." })));
}

function cronStatus(project) {
  const s = project.status;
  if (!s) return el("p", { class: "muted", id: "cron-status", text: "Not read yet: the next tick reads its .cron.yml." });
  return el("dl", { id: "cron-status" },
    el("dt", { text: "Last read" }), el("dd", { text: s.time }),
    el("dt", { text: "Revision" }), el("dd", { text: s.revision || "—" }),
    s.error ? el("dt", { text: "Error" }) : null,
    s.error ? el("dd", {}, el("pre", { class: "error-text", text: s.error })) : null,
    el("dt", { text: "Jobs" }),
    el("dd", {}, s.jobs.length
      ? el("ul", {}, s.jobs.map((j) => el("li", {}, el("a", { href: hookHref("cron", `${project.project}/${j}`), text: j }))))
      : el("span", { class: "muted", text: "none" })));
}

function dryRunForm(p) {
  const at = el("input", { id: "dry-run-at", type: "datetime-local", step: 900 });
  const out = el("div", { id: "dry-run-result" });
  const run = el("button", { type: "submit" }, "Dry run");
  const form = el("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const when = at.value ? new Date(`${at.value}Z`).toISOString() : new Date().toISOString();
        const r = await busy(run, "Running…", () => cronApi.dryRun(p, when));
        out.replaceChildren(el("p", { text: `Slot ${r.slot} at revision ${r.revision}: ${r.jobs.length ? r.jobs.length + " job(s)" : "no job"} would run.` }),
          ...r.jobs.map((j) => el("details", {}, el("summary", { text: j.error ? `${j.job}: error` : j.declined ? `${j.job}: declines` : `${j.job}: task ${j.taskId}` }),
            el("pre", { text: j.error || JSON.stringify(j.task, null, 2) }))));
      } catch (error) {
        out.replaceChildren(errorBox(error));
      }
    },
  }, el("label", { for: "dry-run-at", text: "Slot (UTC; empty: now)" }), at, el("div", { class: "actions" }, run));
  return el("section", { class: "card" }, el("h2", { text: "Dry run" }),
    el("p", { class: "muted", text: "Which jobs would run in a 15-minute slot and the task each would create; nothing is created." }), form, out);
}

function cronProjectPage(p) {
  const remove = el("button", { type: "button", class: "danger", id: "remove-project", onclick: async (e) => {
    if (!(await confirmDialog(`Remove the cron project ${p}? Its job hooks are removed with it.`, "Remove"))) return;
    try {
      await busy(e.target, "Removing…", () => cronApi.remove(p));
      refreshExplorer();
      location.hash = "#/cron-projects";
    } catch (error) {
      main.prepend(errorBox(error));
    }
  } }, "Remove");
  show(el("h1", { text: `Cron project ${p}` }), el("div", { class: "actions" }, remove),
    el("div", { class: "grid2" },
      panel("Repository", () => cronApi.get(p), (project) => el("dl", {},
        el("dt", { text: "URL" }), el("dd", { text: project.repository.url }),
        el("dt", { text: "Type" }), el("dd", { text: project.repository.type }),
        el("dt", { text: "Branch" }), el("dd", { text: project.repository.branch }),
        el("dt", { text: "Level" }), el("dd", { text: project.repository.level }),
        el("dt", { text: "Jobs' roles" }), el("dd", {}, el("code", { text: `repo:${project.repository.repoPath}:cron:<job>` })),
        el("dt", { text: "Owner" }), el("dd", { text: project.owner || "none (failures are only recorded)" }))),
      panel("Last read", () => cronApi.get(p), cronStatus)),
    dryRunForm(p));
}

// --- routing ---------------------------------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "").map(decodeURIComponent);
  const [first, g, h, page] = parts;
  renderExplorer({ group: first === "hooks" ? g : undefined, hook: h, cron: first === "cron-projects" });
  if (first === "cron-projects" && g) return cronProjectPage(g);
  if (first === "cron-projects") return cronProjectsPage();
  if (first === "new") return editorPage(undefined, undefined);
  if (first === "hooks" && g && h && page === "edit") return editorPage(g, h);
  if (first === "hooks" && g && h && page === "trigger") return triggerPage(g, h);
  if (first === "hooks" && g && h) return hookPage(g, h);
  if (first === "hooks" && g) return groupPage(g);
  return groupsPage();
}

window.addEventListener("hashchange", route);
showIdentity();
route();
