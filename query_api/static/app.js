// The query page: POST /v1/query with "stream": true and render its Server-Sent Events as they arrive.
// Events (query_api/streaming.py): `citations`, then `delta`s in order, then `done` (or `error`); `reset` voids
// the deltas so far (the LLM broke off) and an extractive answer follows.
"use strict";

const KEY_STORAGE = "ragbus.apiKey";
const $ = (id) => document.getElementById(id);

const ui = {
  form: $("ask"),
  question: $("question"),
  submit: $("submit"),
  apiKey: $("api-key"),
  forgetKey: $("forget-key"),
  topK: $("top-k"),
  error: $("error"),
  result: $("result"),
  status: $("status"),
  answer: $("answer"),
  citations: $("citations"),
  cached: $("badge-cached"),
  degraded: $("badge-degraded"),
  latency: $("latency"),
};

// --- API key, remembered in localStorage -------------------------------------------------------------------

ui.apiKey.value = localStorage.getItem(KEY_STORAGE) || "";
ui.apiKey.addEventListener("change", () => {
  const key = ui.apiKey.value.trim();
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
});
ui.forgetKey.addEventListener("click", () => {
  ui.apiKey.value = "";
  localStorage.removeItem(KEY_STORAGE);
});

// --- rendering ---------------------------------------------------------------------------------------------

const HINTS = {
  401: "Enter a valid API key under \u201cAPI key and options\u201d.",
  403: "This key may not query: ask for a key with the read scope.",
  413: "The question is too long.",
  422: "Rephrase the question.",
  429: "Too many questions with this key: wait before asking again.",
  503: "A backing service is down: try again shortly.",
};

function showError(title, message, hint) {
  ui.error.replaceChildren();
  const strong = document.createElement("strong");
  strong.textContent = title;
  const text = document.createElement("span");
  text.className = "message";
  text.textContent = message;
  ui.error.append(strong, " ", text);
  if (hint) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = hint;
    ui.error.append(p);
  }
  ui.error.hidden = false;
}

function clearResult() {
  ui.error.hidden = true;
  ui.result.hidden = true;
  ui.answer.textContent = "";
  ui.citations.replaceChildren();
  ui.cached.hidden = true;
  ui.degraded.hidden = true;
  ui.latency.textContent = "";
}

function renderCitations(citations) {
  ui.citations.replaceChildren();
  for (const citation of citations) {
    const item = document.createElement("li");
    item.className = "citation";
    item.id = `citation-${ui.citations.children.length + 1}`;
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    const title = document.createElement("span");
    title.className = "citation-title";
    title.textContent = citation.title || citation.doc_id;
    const source = document.createElement("span");
    source.className = "citation-source";
    // Listed in ranked order; the figure shown is the one that ranked them (the API's `score`), never another.
    // Where in the document: its section and, for a PDF, its page.
    const where = [citation.section, citation.page ? `page ${citation.page}` : null].filter(Boolean);
    source.textContent = [citation.doc_id, ...where, `rank ${citation.rank}`, `score ${Number(citation.score).toPrecision(3)}`].join(" \u00b7 ");
    summary.append(title, " ", source);
    const passage = document.createElement("blockquote");
    passage.className = "passage";
    passage.textContent = citation.text;
    details.append(summary, passage);
    item.append(details);
    ui.citations.append(item);
  }
}

// Once the answer is complete, its [n] markers become links that open citation n.
function linkCitations() {
  const text = ui.answer.textContent;
  const parts = text.split(/(\[\d+\])/);
  const count = ui.citations.children.length;
  ui.answer.replaceChildren();
  for (const part of parts) {
    const match = /^\[(\d+)\]$/.exec(part);
    const n = match ? Number(match[1]) : 0;
    if (n >= 1 && n <= count) {
      const link = document.createElement("a");
      link.href = `#citation-${n}`;
      link.className = "cite";
      link.textContent = part;
      link.addEventListener("click", () => {
        ui.citations.children[n - 1].querySelector("details").open = true;
      });
      ui.answer.append(link);
    } else if (part) {
      ui.answer.append(part);
    }
  }
}

function renderDone(data) {
  linkCitations();
  ui.cached.hidden = !data.cached;
  ui.degraded.hidden = !data.degraded;
  ui.latency.textContent = `${Math.round(data.took_ms)} ms`;
  ui.status.textContent = "done";
  ui.result.dataset.state = "done";
}

function handleEvent(name, data) {
  switch (name) {
    case "citations":
      renderCitations(data.citations || []);
      ui.status.textContent = "answering\u2026";
      break;
    case "delta":
      ui.answer.textContent += data.text;
      break;
    case "reset":
      ui.answer.textContent = "";
      ui.status.textContent = "the model broke off; answering from the passages\u2026";
      break;
    case "done":
      renderDone(data);
      break;
    case "error":
      showError(data.code || "error", data.message || "the answer broke off", null);
      ui.result.dataset.state = "failed";
      break;
  }
}

// --- Server-Sent Events over fetch (EventSource cannot POST or send headers) -------------------------------

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  return data.length ? { name, data: JSON.parse(data.join("\n")) } : null;
}

async function readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) handleEvent(event.name, event.data);
    }
  }
}

async function refusal(response) {
  let code = `HTTP ${response.status}`;
  let message = response.statusText || "the request failed";
  try {
    const body = await response.json();
    if (body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch (_) {
    // Not JSON (a proxy's page): keep the status line.
  }
  const retry = response.headers.get("Retry-After");
  const hint = (HINTS[response.status] || "") + (retry ? ` Retry after ${retry}s.` : "");
  showError(`${response.status} ${code}:`, message, hint.trim() || null);
}

async function ask(question) {
  clearResult();
  ui.submit.disabled = true;
  ui.result.dataset.state = "streaming";
  const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
  const key = ui.apiKey.value.trim();
  if (key) headers["X-API-Key"] = key;
  const topK = Number.parseInt(ui.topK.value, 10);
  const body = { query: question, stream: true };
  if (topK > 0) body.top_k = topK;
  try {
    const response = await fetch("/v1/query", { method: "POST", headers, body: JSON.stringify(body) });
    if (!response.ok) {
      ui.result.dataset.state = "failed";
      await refusal(response);
      return;
    }
    ui.result.hidden = false;
    ui.status.textContent = "searching\u2026";
    await readEvents(response);
    if (ui.result.dataset.state === "streaming") {
      showError("incomplete:", "the answer stream ended early", "Ask again.");
      ui.result.dataset.state = "failed";
    }
  } catch (exc) {
    ui.result.dataset.state = "failed";
    showError("unreachable:", String(exc), "Is the query API running? Start it with `ragbus up`.");
  } finally {
    ui.submit.disabled = false;
  }
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = ui.question.value.trim();
  if (question) ask(question);
});
