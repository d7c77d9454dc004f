// Pursuit dashboard: fills the pages from the JSON API and keeps them live.
// Every string from the store is written with textContent, never parsed as markup.
"use strict";

const POLL_MS = 2000;

function fmt(value, digits = 4) {
  // A number as the terminal shows it (Python's "{:.4g}"); "—" for none.
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (value === 0) return "0";
  const size = Math.abs(value);
  if (size >= 10 ** digits || size < 1e-4) {
    const [mantissa, exponent] = value.toExponential(digits - 1).split("e");
    const power = Number(exponent);
    return `${String(Number(mantissa))}e${power < 0 ? "-" : "+"}${String(Math.abs(power)).padStart(2, "0")}`;
  }
  return String(Number(value.toPrecision(digits)));
}

function configText(config) {
  if (config === null || config === undefined) return "—";
  const parts = Object.entries(config).map(([k, v]) => `${k}=${typeof v === "number" ? fmt(v, 3) : String(v)}`);
  return parts.length ? parts.join(" ") : "(no dials)";
}

function interval(lo, hi) {
  return lo === null || lo === undefined ? "—" : `[${fmt(lo)}, ${fmt(hi)}]`;
}

function el(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function link(href, text) {
  return el("a", text, { href });
}

function makeRows(rows) {
  // rows: arrays of cells, each a string or a node
  return rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell);
      else td.textContent = cell === null || cell === undefined ? "—" : String(cell);
      tr.appendChild(td);
    }
    return tr;
  });
}

function fillRows(tbody, rows) {
  tbody.replaceChildren(...makeRows(rows));
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (response.status === 401) {
    window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
    throw new Error("signed out");
  }
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function note(id, text) {
  const node = document.getElementById(id);
  if (node) node.textContent = text || "";
}

// --- plots -------------------------------------------------------------------------

const PLOT_CONFIG = { displaylogo: false, responsive: true };

// A plot is drawn when it comes near the screen: a page of a large goal holds a dozen
// plots of thousands of points, and drawing them all at once would keep the first
// screen waiting. A plot already drawn is redrawn in place when its figure changes.
const near = new Set();
const waiting = new Map();
const watcher = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) {
      near.delete(entry.target);
      continue;
    }
    near.add(entry.target);
    if (waiting.has(entry.target)) {
      const figure = waiting.get(entry.target);
      waiting.delete(entry.target);
      drawNow(entry.target, figure);
    }
  }
}, { rootMargin: "300px 0px" }) : null;

function drawNow(node, figure) {
  window.Plotly.react(node, figure.data || [], figure.layout || {}, PLOT_CONFIG);
  node.dataset.drawn = "true";
}

function draw(node, figure) {
  if (!figure || !window.Plotly) return;
  if (watcher === null || near.has(node)) {
    drawNow(node, figure);
    return;
  }
  if (!waiting.has(node)) watcher.observe(node);
  waiting.set(node, figure);
}

function drawAll(container, figures) {
  // One plot per figure, reusing the nodes already there.
  while (container.children.length > figures.length) {
    const gone = container.lastElementChild;
    waiting.delete(gone);
    near.delete(gone);
    if (watcher) watcher.unobserve(gone);
    gone.remove();
  }
  while (container.children.length < figures.length) container.appendChild(el("div", null, { class: "plot" }));
  figures.forEach((figure, i) => draw(container.children[i], figure));
}

// --- the goal list -------------------------------------------------------------------

async function goalsPage() {
  const tbody = document.querySelector("#goals tbody");
  async function refresh() {
    const { goals } = await getJSON("/api/goals");
    document.getElementById("empty").hidden = goals.length > 0;
    fillRows(tbody, goals.map((g) => [
      link(`/goals/${g.id}`, g.name), g.reason ? `${g.state}: ${g.reason}` : g.state,
      `${g.metric} (${g.direction})`, fmt(g.target), g.trials_total,
      g.trials.completed || 0, g.trials.failed || 0,
    ]));
  }
  await refresh();
  setInterval(() => refresh().catch(() => {}), 5 * POLL_MS);
}

// --- a goal ----------------------------------------------------------------------------

function standing(view) {
  const o = view.overview;
  const run = view.run;
  note("run-state", `${run.state}${run.reason ? `: ${run.reason}` : ""}${o.stage ? ` · stage ${o.stage}` : ""}`);
  note("verdict", o.verdict);
  const counts = document.getElementById("counts");
  const items = [["trials", o.trials_total], ...Object.entries(o.trials)];
  items.push(["compute", `${fmt(o.compute_seconds, 3)} s`]);
  counts.replaceChildren(...items.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  const budget = Object.entries(o.budget || {}).filter(([, v]) => v !== null)
    .map(([k, v]) => `${k.replace(/_/g, " ")} ${fmt(v)}`).join(", ");
  note("best", budget ? `budget: ${budget}` : "");
}

function leaderboard(view) {
  const board = view.leaderboard;
  fillRows(document.querySelector("#methods tbody"), board.methods.map((m) => [
    `${m.method}${m.baseline ? " (baseline)" : ""}`, configText(m.config), m.n, fmt(m.mean),
    interval(m.lo, m.hi), m.diff === null ? "—" : `${fmt(m.diff, 3)} ${interval(m.diff_lo, m.diff_hi)}`,
    fmt(m.p_holm, 2), m.verdict, m.trials, m.failed,
  ]));
  fillRows(document.querySelector("#configs tbody"), board.configs.map((c) => [
    c.method, configText(c.config), c.n, fmt(c.mean), interval(c.lo, c.hi),
    c.verified ? "verified" : c.basis,
  ]));
  note("configs-note", board.configs_total > board.configs.length
    ? `the best ${board.configs.length} of ${board.configs_total} configurations` : "");
}

function trialLists(view) {
  const o = view.overview;
  fillRows(document.querySelector("#running tbody"), o.running.map((t) => [
    link(`/trials/${t.trial_id}`, `#${t.trial_id}`), t.method, t.stage]));
  note("running-note", o.running_total ? (o.running_total > o.running.length
    ? `the newest ${o.running.length} of ${o.running_total}` : "") : "Nothing is running.");
  fillRows(document.querySelector("#failed tbody"), o.failed.map((t) => [
    link(`/trials/${t.trial_id}`, `#${t.trial_id}`), t.method, (t.error || []).join(" ")]));
  note("failed-note", o.failed_total ? (o.failed_total > o.failed.length
    ? `the newest ${o.failed.length} of ${o.failed_total}` : "") : "No trial failed.");
}

function figures(view) {
  const f = view.figures;
  draw(document.getElementById("plot-leaderboard"), f.leaderboard);
  draw(document.getElementById("plot-progress"), f.progress);
  draw(document.getElementById("plot-progress_compute"), f.progress_compute);
  drawAll(document.getElementById("plots-curves"), f.curves);
  note("curves-note", f.curves.length ? "" : "No learning curves were reported.");
  drawAll(document.getElementById("plots-dials"), f.dials);
  note("dials-note", f.dials.length ? "" : "No completed trial with dials yet.");
  drawAll(document.getElementById("plots-ladder"), f.ladder);
  note("ladder-lines", view.ladder_lines.length ? view.ladder_lines.join("\n")
    : "The ladder has not run (it steps the leader's scale dials after search and confirmation).");
}

function trialsTable(goal, metric) {
  const tbody = document.querySelector("#trials tbody");
  const older = document.getElementById("older");
  const select = document.getElementById("trial-state");
  let before = null;

  async function load(append) {
    const query = new URLSearchParams({ limit: "50" });
    if (select.value) query.append("state", select.value);
    if (append && before !== null) query.set("before", String(before));
    const page = await getJSON(`/api/goals/${goal}/trials?${query}`);
    const rows = page.trials.map((t) => {
      const value = Object.prototype.hasOwnProperty.call(t.values, metric) ? t.values[metric] : null;
      return [link(`/trials/${t.id}`, `#${t.id}`), t.method, t.stage, t.seed, t.state,
        configText(t.dials), fmt(value)];
    });
    if (append) tbody.append(...makeRows(rows));
    else fillRows(tbody, rows);
    before = page.before;
    older.hidden = before === null;
    note("trials-note", `${tbody.children.length} of ${page.total} trials`);
  }
  select.addEventListener("change", () => load(false).catch(() => {}));
  older.addEventListener("click", () => load(true).catch(() => {}));
  return {
    refresh: () => (tbody.children.length <= 50 ? load(false) : Promise.resolve()),
  };
}

async function goalPage() {
  const goal = document.body.dataset.goal;
  const metric = document.body.dataset.metric;
  const trials = trialsTable(goal, metric);
  let version = null;

  async function render(asked) {
    const view = await (asked || getJSON(`/api/goals/${goal}/view`));
    version = view.version;
    standing(view);
    leaderboard(view);
    trialLists(view);
    figures(view);
    document.body.dataset.version = version; // the first screen is drawn
    note("updated", `updated ${new Date().toLocaleTimeString()} (follows the run as it goes)`);
    await trials.refresh();
  }

  async function poll() {
    try {
      const now = await getJSON(`/api/goals/${goal}/version`);
      if (now.version !== version) await render();
    } catch (error) {
      note("updated", `could not reach the server (${error.message}); trying again`);
    }
    setTimeout(poll, POLL_MS);
  }
  await render(firstView);
  setTimeout(poll, POLL_MS);
}

// --- a trial ---------------------------------------------------------------------------

function curveFigure(curve, metric) {
  const data = [];
  for (const [name, series] of Object.entries(curve.metrics)) {
    const thinned = series.points > series.step.length;
    if (thinned) {
      data.push({ x: series.step, y: series.max, mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false });
      data.push({ x: series.step, y: series.min, mode: "lines", line: { width: 0 }, fill: "tonexty",
        fillcolor: "rgba(99,110,250,0.2)", name: `${name}: lowest to highest in each bucket`, hoverinfo: "skip" });
    }
    data.push({ x: series.step, y: series.mean, mode: "lines", name: thinned ? `${name} (bucket means)` : name,
      visible: name === metric || Object.keys(curve.metrics).length === 1 ? true : "legendonly" });
  }
  const shown = Object.values(curve.metrics).map((s) => s.points).reduce((a, b) => a + b, 0);
  return {
    data,
    layout: {
      title: { text: `Learning curve, attempt ${curve.attempt} (${shown} points)`, x: 0.01 },
      template: "plotly_white", height: 380, xaxis: { title: { text: "step" } },
      margin: { l: 60, r: 20, t: 50, b: 50 }, legend: { orientation: "h", y: -0.2 },
    },
  };
}

async function trialPage() {
  const trial = document.body.dataset.trial;
  const metric = document.body.dataset.metric;
  const node = document.getElementById("plot-curve");
  let state = document.body.dataset.state;

  async function redraw() {
    const curve = await getJSON(`/api/trials/${trial}/curve?points=500`);
    if (Object.keys(curve.metrics).length) draw(node, curveFigure(curve, metric));
  }
  async function follow() {
    try {
      const now = await getJSON(`/api/trials/${trial}`);
      state = now.state;
      document.body.dataset.state = state;
      note("live-state", `${state}${state === "running" ? ": the curve follows it" : ""}`);
      await redraw();
    } catch (error) {
      note("live-state", `could not reach the server (${error.message}); trying again`);
    }
    if (state === "running") setTimeout(follow, POLL_MS);
  }
  if (node && window.Plotly) await redraw();
  if (state === "running") setTimeout(follow, POLL_MS);
}

const PAGES = { goals: goalsPage, goal: goalPage, trial: trialPage };

// The goal page's data is asked for at once, while Plotly's script (loaded after this
// one) is still being read.
const firstView = document.body && document.body.dataset.page === "goal"
  ? getJSON(`/api/goals/${document.body.dataset.goal}/view`) : null;
if (firstView) firstView.catch(() => {}); // a failure is reported when the page renders

document.addEventListener("DOMContentLoaded", () => {
  const page = PAGES[document.body.dataset.page];
  if (page) page().catch((error) => note("updated", `could not load: ${error.message}`));
});
