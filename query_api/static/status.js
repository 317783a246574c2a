// The status view: polls GET /v1/status (documented in docs/api.md) and draws counts, lag, dead letters and small
// plots of the indexed count, the ingest rate and the lag over the last minutes (rates computed here, from the counts
// seen over time), and freshness (event produced -> searchable) p50/p95 with its p95 per minute, which the API keeps
// per tenant for the last 15 minutes.
// It polls only while the view is open and the page is visible: each poll counts against the API key's rate limit,
// like a question does, so a closed view or a background tab spends none of the user's budget.
"use strict";

(() => {
  const KEY_STORAGE = "ragbus.apiKey";
  const HISTORY_S = 600;
  const $ = (id) => document.getElementById(id);
  const view = $("pipeline-status");
  const refreshMs = Number(view.dataset.refreshMs || 2000);
  const history = []; // {t (s), documents, chunks, lag}

  const text = (id, value) => { $(id).textContent = value; };
  const number = (v) => (v === null || v === undefined ? "?" : v.toLocaleString("en"));

  // Both lanes: a large publish, a snapshot or a replay travels in the bulk lane.
  function lagTotal(report) {
    const lanes = [report.lag, report.bulk_lag || {}];
    return lanes.reduce((all, lane) => all + Object.values(lane).reduce((sum, stage) => sum + (stage.total || 0), 0), 0);
  }

  // Documents per minute over the last `window` seconds of history (null until two readings exist).
  function ingestRate(window) {
    const now = history[history.length - 1];
    const past = history.find((h) => h.t >= now.t - window && h.documents !== null);
    if (!past || past === now || now.documents === null || now.t === past.t) return null;
    return ((now.documents - past.documents) * 60) / (now.t - past.t);
  }

  function sparkline(id, values) {
    const svg = $(id);
    const w = 240, h = 48;
    const points = values.filter((v) => v !== null);
    if (points.length < 2) { svg.replaceChildren(); return; }
    const max = Math.max(...points, 1), n = values.length - 1;
    const path = values
      .map((v, i) => (v === null ? null : `${((i / n) * w).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`))
      .filter((p) => p !== null)
      .join(" ");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", path);
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "currentColor");
    line.setAttribute("stroke-width", "1.5");
    const top = document.createElementNS("http://www.w3.org/2000/svg", "text");
    top.setAttribute("x", "2"); top.setAttribute("y", "10");
    top.textContent = `max ${Math.round(max).toLocaleString("en")}`;
    svg.replaceChildren(line, top);
  }

  function renderLag(report) {
    const rows = Object.entries(report.lag).map(([stage, lag]) => {
      const tr = document.createElement("tr");
      tr.dataset.stage = stage;
      const parts = lag.error
        ? lag.error
        : Object.entries(lag.partitions).map(([p, n]) => `p${p}: ${n}`).join("  ");
      const bulk = (report.bulk_lag || {})[stage];
      const bulkShown = !bulk ? "\u2014" : bulk.error ? "?" : number(bulk.total);
      for (const cell of [stage, lag.error ? "?" : number(lag.total), bulkShown, parts]) {
        const td = document.createElement("td");
        td.textContent = cell;
        tr.append(td);
      }
      return tr;
    });
    $("st-lag").replaceChildren(...rows);
  }

  function renderDeadLetters(report) {
    const items = report.dead_letters.map((letter) => {
      const li = document.createElement("li");
      const what = document.createElement("strong");
      what.textContent = letter.doc_id || `${letter.stage} ${letter.partition}:${letter.offset}`;
      li.append(what, ` \u2014 ${letter.stage} rejected it (${letter.error_code}): `);
      const reason = document.createElement("span");
      reason.className = "reason";
      reason.textContent = letter.error;
      li.append(reason);
      return li;
    });
    for (const [stage, error] of Object.entries(report.dead_letters_error)) {
      const li = document.createElement("li");
      li.textContent = `${stage}: ${error}`;
      items.push(li);
    }
    $("st-dead-letters").replaceChildren(...items);
    text("st-dead-count", report.dead_letters.length);
  }

  function render(report) {
    history.push({ t: report.generated_at, documents: report.documents, chunks: report.chunks, lag: lagTotal(report) });
    while (history.length && history[0].t < report.generated_at - HISTORY_S) history.shift();
    text("st-documents", number(report.documents));
    text("st-chunks", number(report.chunks));
    text("st-lag-total", number(lagTotal(report)));
    const rate = ingestRate(60);
    text("st-rate", rate === null ? "\u2014" : `${rate.toFixed(1)} docs/min`);
    const fresh = report.freshness || {};
    text("st-freshness", fresh.error || (fresh.documents
      ? `${fresh.p50_s.toFixed(2)} s / ${fresh.p95_s.toFixed(2)} s (${number(fresh.documents)} changes, ${Math.round(fresh.window_s / 60)} min)`
      : "\u2014"));
    text("st-collection", report.serving_collection || "(not created yet)");
    text("st-index-error", report.index_error || "");
    // Per Milvus deployment: hybrid (BM25 + dense) or dense-only, and why.
    text("st-retrieval", (report.retrieval || []).map((r) => `${r.mode} (${r.reason})`).join("; ") || "?");
    $("st-pipelines").replaceChildren(...report.pipelines.map((line) => {
      const li = document.createElement("li");
      li.textContent = line;
      return li;
    }));
    renderLag(report);
    renderDeadLetters(report);
    sparkline("plot-documents", history.map((h) => h.documents));
    sparkline("plot-lag", history.map((h) => h.lag));
    sparkline("plot-rate", history.map((_, i) => {
      const a = history[Math.max(0, i - 5)], b = history[i];
      return b.t > a.t && a.documents !== null && b.documents !== null ? ((b.documents - a.documents) * 60) / (b.t - a.t) : null;
    }));
    sparkline("plot-freshness", (fresh.per_minute || []).map((m) => m.p95_s));
    text("st-updated", new Date(report.generated_at * 1000).toLocaleTimeString());
    $("st-error").hidden = true;
  }

  let timer = null; // the next poll, while one is scheduled
  let polling = false; // a request is in flight

  const wanted = () => view.open && !document.hidden;

  async function poll() {
    timer = null;
    if (!wanted() || polling) return;
    polling = true;
    const key = localStorage.getItem(KEY_STORAGE);
    try {
      const reply = await fetch("/v1/status", { headers: key ? { "X-API-Key": key } : {} });
      if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
      render(await reply.json());
    } catch (err) {
      text("st-error", `status unavailable: ${err.message}`);
      $("st-error").hidden = false;
    } finally {
      polling = false;
      schedule(refreshMs);
    }
  }

  // Poll now (delay 0) or later, if the view still wants it; stop when it is closed or the page hidden.
  function schedule(delay) {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    if (wanted() && !polling) timer = setTimeout(poll, delay);
  }

  view.addEventListener("toggle", () => schedule(0));
  document.addEventListener("visibilitychange", () => schedule(0));
  schedule(0);
})();
