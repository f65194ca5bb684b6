// emorec dashboard: plain ES module, no dependencies.
// Every piece of user or model text goes into the page through textContent or attributes,
// never through innerHTML, so nothing a user types can become markup.

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const KEY_STORAGE = "emorec.apiKey";
const JOB_STORAGE = "emorec.lastJob";
const HISTORY_PAGE = 10;
const POLL_MS = 700;

// Conventional colours for the common emotion names; other label sets use the palette by index.
const NAMED_COLOURS = {
  sadness: "#4e79a7", joy: "#f2b134", love: "#e377a8", anger: "#d64541", fear: "#8e6cbc",
  surprise: "#2aa198", disgust: "#6a8d2f", neutral: "#9aa5b1",
};
const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
  "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
];

const state = {
  labels: [],
  historyOffset: 0,
  historyTotal: 0,
  jobId: null,
  pollTimer: null,
};

// ---- small helpers ---------------------------------------------------------------------
function el(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function colour(label) {
  if (label in NAMED_COLOURS) return NAMED_COLOURS[label];
  const index = state.labels.indexOf(label);
  return PALETTE[(index >= 0 ? index : hash(label)) % PALETTE.length];
}

function hash(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h;
}

// One decimal where it matters (small shares, near-certain probabilities), none at 0 and 1.
function percent(p) {
  if (p <= 0 || p >= 1) return `${Math.round(100 * p)}%`;
  return `${(100 * p).toFixed(p >= 0.995 || p < 0.0995 ? 1 : 0)}%`;
}

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  if (date.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
  return date.toLocaleString(undefined, options);
}

function showMessage(node, text, kind = "error") {
  node.textContent = text;
  node.className = `message ${kind}`;
  node.hidden = false;
}

function hideMessage(node) {
  node.hidden = true;
  node.textContent = "";
}

// ---- the API ---------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

const apiKey = () => localStorage.getItem(KEY_STORAGE) || "";

async function api(path, { method = "GET", json, form, raw = false } = {}) {
  const headers = {};
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch {
    throw new ApiError(0, "The service cannot be reached; check that `emorec serve` is running.");
  }
  if (!response.ok) throw new ApiError(response.status, await errorDetail(response));
  return raw ? response : response.json();
}

async function errorDetail(response) {
  try {
    const data = await response.json();
    if (typeof data.detail === "string") return data.detail;
    if (data.detail !== undefined) return JSON.stringify(data.detail);
  } catch {
    // not JSON: fall back to the status line below
  }
  return `The service answered ${response.status} ${response.statusText}.`;
}

function explainError(error) {
  if (!(error instanceof ApiError)) return String(error);
  switch (error.status) {
    case 401:
      return `${error.message} Enter a valid API key at the top of the page `
        + "(create one with `emorec apikey create NAME`).";
    case 413:
      return `Too large: ${error.message}`;
    case 422:
      return `Invalid input: ${error.message}`;
    default:
      return error.message;
  }
}

// ---- model status ----------------------------------------------------------------------
async function loadReady() {
  const status = $("model-status");
  let data;
  try {
    const response = await fetch("/ready");
    data = await response.json();
  } catch {
    status.textContent = "The service cannot be reached.";
    status.classList.add("bad");
    return;
  }
  state.labels = Array.isArray(data.labels) ? data.labels : [];
  if (!data.ready) {
    const problems = [];
    if (data.database && data.database !== "ok") problems.push(`database: ${data.database}`);
    status.textContent = `Not ready${problems.length ? ` (${problems.join("; ")})` : ""}.`;
    status.classList.add("bad");
  } else {
    status.classList.remove("bad");
    const kind = data.multi_label ? "multi-label" : "single-label";
    status.textContent = `Model ${data.model} · ${data.backend} · ${state.labels.length} `
      + `emotions, ${kind}`;
  }
  if (data.version) $("footer-version").textContent = `emorec ${data.version}`;
  const select = $("history-label");
  for (const label of state.labels) select.append(el("option", { text: label, attrs: { value: label } }));
  renderLegend();
}

// ---- API key ---------------------------------------------------------------------------
function initApiKey() {
  const input = $("api-key");
  input.value = apiKey();
  updateKeyState();
  $("api-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    updateKeyState(true);
    refreshProtected();
  });
}

function updateKeyState(saved = false) {
  const key = apiKey();
  $("api-key-state").textContent = key ? (saved ? "saved" : "set") : "not set";
}

function refreshProtected() {
  loadHistory(0);
  loadStats();
  loadJobs();
  const last = localStorage.getItem(JOB_STORAGE);
  if (last && !state.jobId && apiKey()) watchJob(last, true);
}

function needKey(messageNode, what) {
  if (apiKey()) return false;
  showMessage(messageNode, `Enter an API key at the top of the page to see ${what}.`, "info");
  return true;
}

// ---- analyse ---------------------------------------------------------------------------
function initAnalyse() {
  const input = $("text-input");
  const count = () => {
    const n = input.value.length;
    $("char-count").textContent = `${n.toLocaleString()} character${n === 1 ? "" : "s"}`;
  };
  input.addEventListener("input", count);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("analyse-form").requestSubmit();
  });
  count();
  $("analyse-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    const message = $("analyse-message");
    hideMessage(message);
    if (!text.trim()) {
      showMessage(message, "Type a text to analyse first.", "info");
      return;
    }
    const button = $("analyse-button");
    button.disabled = true;
    button.textContent = "Analysing…";
    try {
      const store = $("store-input").checked;
      const data = await api("/v1/predict", { method: "POST", json: { texts: [text], store } });
      renderPrediction(data.predictions[0], data.multi_label);
      if ($("explain-input").checked) await explain(text);
      else clearExplanation();
      if (store && apiKey()) {
        loadHistory(0);
        loadStats();
      }
    } catch (error) {
      showMessage(message, explainError(error));
    } finally {
      button.disabled = false;
      button.textContent = "Analyse";
    }
  });
}

function renderPrediction(prediction, multiLabel) {
  const box = $("prediction");
  box.replaceChildren();
  const decided = new Set(prediction.labels || []);
  const decision = el("p", { className: "decision" });
  if (decided.size) {
    decision.append(multiLabel ? "Emotions: " : "Emotion: ");
    decision.append(el("strong", { text: [...decided].join(", "), attrs: { id: "predicted-label" } }));
  } else {
    decision.append(el("strong", { text: "none", attrs: { id: "predicted-label" } }));
    decision.append(" — no emotion passed its decision threshold");
  }
  box.append(decision);
  // [{label, score}], highest first: the probability of each emotion.
  for (const { label, score } of prediction.scores) {
    const fill = el("div", { className: "bar-fill" });
    fill.style.width = `${Math.max(0.5, 100 * score)}%`;
    fill.style.background = colour(label);
    const row = el("div", {
      className: `bar-row${decided.has(label) ? " decided" : ""}`,
      attrs: { "data-label": label, role: "meter", "aria-valuemin": "0", "aria-valuemax": "1",
        "aria-valuenow": String(score), "aria-label": label },
    }, [
      el("span", { className: "bar-label", text: label }),
      el("div", { className: "bar-track" }, [fill]),
      el("span", { className: "bar-value", text: percent(score) }),
    ]);
    box.append(row);
  }
}

function clearExplanation() {
  $("explanation").replaceChildren(el("span", { className: "empty", text: "Explanation off." }));
  $("explanation-meta").textContent = "";
}

// The words the model saw, as highlights of the user's text: words cleaned from one part of
// it share its span (an emoji's four-word name, "idk" read as "i do not know"), so
// overlapping spans become one highlight with the words' scores summed.
function userWords(words) {
  const sorted = [...words].sort((a, b) => a.start - b.start || a.end - b.end);
  const segments = [];
  for (const word of sorted) {
    const last = segments[segments.length - 1];
    if (last && word.start < last.end) {
      last.end = Math.max(last.end, word.end);
      last.score += word.score;
      last.words.push(word.word);
    } else {
      segments.push({ start: word.start, end: word.end, score: word.score, words: [word.word] });
    }
  }
  return segments;
}

async function explain(text) {
  const box = $("explanation");
  const meta = $("explanation-meta");
  box.replaceChildren(el("span", { className: "empty", text: "Explaining…" }));
  meta.textContent = "";
  let data;
  try {
    data = await api("/v1/explain", { method: "POST", json: { text } });
  } catch (error) {
    const note = error instanceof ApiError && (error.status === 404 || error.status === 501)
      ? "Explanations are not available for this model or service."
      : `No explanation: ${explainError(error)}`;
    box.replaceChildren(el("span", { className: "empty", text: note }));
    return;
  }
  const source = typeof data.text === "string" ? data.text : text;
  // The API counts offsets in Unicode code points (Python str indices); a JavaScript string
  // indexes UTF-16 code units, two for an emoji. Array.from splits the text by code point.
  const chars = Array.from(source);
  const part = (start, end) => chars.slice(start, end).join("");
  const segments = userWords(data.words || []);
  const peak = Math.max(1e-9, ...segments.map((s) => Math.abs(s.score)));
  const nodes = [];
  let position = 0;
  for (const segment of segments) {
    if (segment.start < position || segment.end > chars.length || segment.end <= segment.start) continue;
    if (segment.start > position) nodes.push(document.createTextNode(part(position, segment.start)));
    const typed = part(segment.start, segment.end);
    const span = el("span", { className: "w", text: typed });
    const strength = Math.abs(segment.score) / peak;
    const rgb = segment.score >= 0 ? "var(--for)" : "var(--against)";
    span.style.background = `rgba(${rgb}, ${(0.6 * strength).toFixed(3)})`;
    const cleaned = segment.words.join(" ");
    const readAs = typed.toLowerCase() === cleaned.toLowerCase() ? "" : ` (read as “${cleaned}”)`;
    span.title = `${segment.score >= 0 ? "for" : "against"} ${data.label}: `
      + `${segment.score.toFixed(3)}${readAs}`;
    nodes.push(span);
    position = segment.end;
  }
  if (position < chars.length) nodes.push(document.createTextNode(part(position, chars.length)));
  box.replaceChildren(...nodes);
  meta.textContent = `— ${data.label} (${percent(data.probability)}), ${data.method}`;
}

// ---- batch -----------------------------------------------------------------------------
function initBatch() {
  $("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("batch-message");
    hideMessage(message);
    const file = $("file-input").files[0];
    if (!file) {
      showMessage(message, "Choose a file first.", "info");
      return;
    }
    if (needKey(message, "batch jobs")) return;
    const form = new FormData();
    form.append("file", file);
    const column = $("text-column").value.trim();
    if (column) form.append("text_column", column);
    const button = $("upload-button");
    button.disabled = true;
    try {
      const job = await api("/v1/jobs", { method: "POST", form });
      localStorage.setItem(JOB_STORAGE, job.id);
      renderJob(job);
      watchJob(job.id);
      loadJobs();
    } catch (error) {
      showMessage(message, explainError(error));
    } finally {
      button.disabled = false;
    }
  });
  $("job-download").addEventListener("click", downloadResult);
}

function watchJob(id, resumed = false) {
  clearTimeout(state.pollTimer);
  state.jobId = id;
  const poll = async () => {
    if (state.jobId !== id) return;
    try {
      const job = await api(`/v1/jobs/${encodeURIComponent(id)}`);
      renderJob(job);
      if (job.status === "queued" || job.status === "running") {
        state.pollTimer = setTimeout(poll, POLL_MS);
      }
    } catch (error) {
      if (resumed && error instanceof ApiError && error.status === 404) {
        localStorage.removeItem(JOB_STORAGE);  // an old job the service no longer knows
        state.jobId = null;
        return;
      }
      showMessage($("batch-message"), explainError(error));
    }
  };
  poll();
}

function renderJob(job) {
  $("job").hidden = false;
  $("job-id").textContent = job.id;
  $("job-file").textContent = job.filename || "";
  const status = $("job-status");
  status.textContent = job.status;
  status.className = `badge ${job.status}`;
  const total = job.rows_total;
  $("job-rows").textContent = total == null
    ? `${job.rows_done.toLocaleString()} done`
    : `${job.rows_done.toLocaleString()} of ${total.toLocaleString()}`;
  const progress = job.status === "done" ? 1 : Number(job.progress) || 0;
  $("job-progress").value = progress;
  $("job-progress").textContent = percent(progress);
  const error = $("job-error");
  if (job.error) showMessage(error, job.error);
  else hideMessage(error);
  const link = $("job-download");
  link.hidden = job.status !== "done";
  if (job.status === "done") {
    link.href = job.result_url || `/v1/jobs/${encodeURIComponent(job.id)}/result`;
    link.dataset.filename = resultName(job.filename);
  }
}

function resultName(filename) {
  const name = filename || "result";
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const ext = name.toLowerCase().endsWith(".jsonl") ? "jsonl" : "csv";
  return `${stem}.emotions.${ext}`;
}

// The result needs the X-API-Key header, which a plain link cannot send: fetch it and hand
// the browser a blob to save.
async function downloadResult(event) {
  event.preventDefault();
  const link = event.currentTarget;
  try {
    const response = await api(link.getAttribute("href"), { raw: true });
    const url = URL.createObjectURL(await response.blob());
    const save = el("a", { attrs: { href: url, download: link.dataset.filename || "result" } });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    showMessage($("batch-message"), explainError(error));
  }
}

// ---- jobs list -------------------------------------------------------------------------
// The newest jobs (GET /v1/jobs) with their status, progress and result; refreshed while any
// of them is still queued or running.
const JOBS_PAGE = 10;
const JOBS_POLL_MS = 2000;
let jobsTimer = null;
let jobsUnfinished = new Set();

function initJobs() {
  $("jobs-refresh").addEventListener("click", () => loadJobs());
}

async function loadJobs() {
  clearTimeout(jobsTimer);
  const message = $("jobs-message");
  const body = $("jobs-table").tBodies[0];
  hideMessage(message);
  if (needKey(message, "the jobs")) {
    body.replaceChildren();
    $("jobs-info").textContent = "";
    return;
  }
  let data;
  try {
    data = await api(`/v1/jobs?limit=${JOBS_PAGE}`);
  } catch (error) {
    showMessage(message, explainError(error));
    return;
  }
  body.replaceChildren(...data.items.map(jobRow));
  if (!data.items.length) {
    body.append(el("tr", {}, [el("td", {
      className: "empty", text: "No jobs yet.", attrs: { colspan: "5" },
    })]));
  }
  $("jobs-info").textContent = data.total > data.items.length
    ? `${data.items.length} newest of ${data.total.toLocaleString()}`
    : "";
  const unfinished = new Set(data.items
    .filter((job) => job.status === "queued" || job.status === "running")
    .map((job) => job.id));
  // A job that just ended may have added its rows to the history (EMOREC_JOB_HISTORY).
  const ended = [...jobsUnfinished].some((id) => !unfinished.has(id));
  jobsUnfinished = unfinished;
  if (ended) {
    loadHistory(0);
    loadStats();
  }
  if (unfinished.size) jobsTimer = setTimeout(loadJobs, JOBS_POLL_MS);
}

function jobRow(job) {
  const done = job.status === "done";
  const progress = el("progress", { attrs: {
    max: "1", value: String(done ? 1 : Number(job.progress) || 0),
    "aria-label": `Progress of ${job.filename}`,
  } });
  const rows = el("td", { className: "num" }, [
    `${job.rows_done.toLocaleString()} of ${job.rows_total.toLocaleString()}`, progress,
  ]);
  const result = el("td");
  if (done) {
    const link = el("a", { className: "job-result", text: "Download", attrs: {
      href: job.result_url || `/v1/jobs/${encodeURIComponent(job.id)}/result`,
      "data-filename": resultName(job.filename),
    } });
    link.addEventListener("click", downloadResult);
    result.append(link);
  } else if (job.error) {
    result.className = "error";
    result.textContent = job.error;
  }
  return el("tr", { attrs: { "data-job": job.id, "data-status": job.status } }, [
    el("td", { className: "time", text: formatTime(job.created_at) }),
    el("td", { className: "text" }, [el("span", { text: job.filename, attrs: { title: job.filename } })]),
    el("td", {}, [el("span", { className: `badge ${job.status}`, text: job.status })]),
    rows,
    result,
  ]);
}

// ---- history ---------------------------------------------------------------------------
function initHistory() {
  $("history-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadHistory(0);
  });
  $("history-label").addEventListener("change", () => loadHistory(0));
  $("history-prev").addEventListener("click", () => loadHistory(state.historyOffset - HISTORY_PAGE));
  $("history-next").addEventListener("click", () => loadHistory(state.historyOffset + HISTORY_PAGE));
}

async function loadHistory(offset) {
  const message = $("history-message");
  const body = $("history-table").tBodies[0];
  hideMessage(message);
  if (needKey(message, "the history")) {
    body.replaceChildren();
    updatePager(0, 0, 0);
    return;
  }
  const params = new URLSearchParams({ limit: HISTORY_PAGE, offset: Math.max(0, offset) });
  const label = $("history-label").value;
  if (label) params.set("label", label);
  let data;
  try {
    data = await api(`/v1/history?${params}`);
  } catch (error) {
    showMessage(message, explainError(error));
    return;
  }
  state.historyOffset = data.offset;
  state.historyTotal = data.total;
  body.replaceChildren(...data.items.map(historyRow));
  if (!data.items.length) {
    body.append(el("tr", {}, [el("td", {
      className: "empty", text: label ? `No texts labelled ${label} yet.` : "No predictions stored yet.",
      attrs: { colspan: "4" },
    })]));
  }
  updatePager(data.offset, data.items.length, data.total);
}

function historyRow(item) {
  const labels = item.labels && item.labels.length ? item.labels : [];
  const emotion = el("td");
  if (labels.length) {
    for (const label of labels) {
      const chip = el("span", { className: "chip", text: label });
      chip.style.setProperty("--chip", colour(label));
      emotion.append(chip, " ");
    }
  } else {
    emotion.append(el("span", { className: "empty", text: "none" }));
  }
  // The top emotion: the decided one, else the most probable (scores come highest first).
  const scores = item.scores || [];
  const top = item.label ?? (scores.length ? scores[0].label : undefined);
  const probability = scores.find((s) => s.label === top)?.score;
  return el("tr", {}, [
    el("td", { className: "time", text: formatTime(item.created_at) }),
    el("td", { className: "text" }, [el("span", { text: item.text, attrs: { title: item.text } })]),
    emotion,
    el("td", { className: "num", text: probability === undefined ? "" : probability.toFixed(2) }),
  ]);
}

function updatePager(offset, count, total) {
  $("history-prev").disabled = offset <= 0;
  $("history-next").disabled = offset + count >= total;
  $("history-info").textContent = total
    ? `${(offset + 1).toLocaleString()}–${(offset + count).toLocaleString()} of ${total.toLocaleString()}`
    : "";
}

// ---- analytics -------------------------------------------------------------------------
function initStats() {
  $("stats-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadStats();
  });
  $("stats-range").addEventListener("change", loadStats);
  $("stats-bucket").addEventListener("change", loadStats);
}

async function loadStats() {
  const message = $("stats-message");
  hideMessage(message);
  if (needKey(message, "the analytics")) {
    $("chart-distribution").replaceChildren();
    $("chart-timeline").replaceChildren();
    $("stats-total").textContent = "";
    return;
  }
  const params = new URLSearchParams({ bucket: $("stats-bucket").value });
  const hours = Number($("stats-range").value);
  if (hours) params.set("since", new Date(Date.now() - hours * 3_600_000).toISOString());
  let data;
  try {
    data = await api(`/v1/stats?${params}`);
  } catch (error) {
    showMessage(message, explainError(error));
    return;
  }
  if (data.labels && data.labels.length) state.labels = data.labels;
  $("stats-total").textContent = `${data.total.toLocaleString()} text${data.total === 1 ? "" : "s"}`;
  drawDistribution(data);
  drawTimeline(data, $("stats-bucket").value);
  renderLegend();
}

function emptyChart(node, text) {
  node.replaceChildren(el("p", { className: "empty", text }));
}

function drawDistribution(data) {
  const node = $("chart-distribution");
  const labels = data.labels || state.labels;
  if (!data.total) {
    emptyChart(node, "No predictions in this range yet.");
    return;
  }
  const rowHeight = 26;
  const width = 420;
  const labelWidth = 92;
  const valueWidth = 120;
  const barWidth = width - labelWidth - valueWidth;
  const height = labels.length * rowHeight + 6;
  const peak = Math.max(1, ...labels.map((l) => data.counts[l] || 0));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "Number of texts per top emotion" });
  labels.forEach((label, i) => {
    const y = i * rowHeight + 4;
    const count = data.counts[label] || 0;
    const mean = data.mean_probability ? data.mean_probability[label] : undefined;
    chart.append(svg("text", { x: labelWidth - 8, y: y + 14, "text-anchor": "end" }, label));
    chart.append(svg("rect", { x: labelWidth, y, width: barWidth, height: 18, rx: 4, fill: "#eef1f6" }));
    const bar = svg("rect", { x: labelWidth, y, width: Math.max(count ? 2 : 0, (barWidth * count) / peak),
      height: 18, rx: 4, fill: colour(label) });
    bar.append(svg("title", {}, `${label}: ${count} texts (${percent(count / data.total)})`
      + (mean === undefined ? "" : `, mean probability ${mean.toFixed(3)}`)));
    chart.append(bar);
    const value = svg("text", { x: labelWidth + barWidth + 8, y: y + 14, class: "value" },
      `${count.toLocaleString()} · ${percent(count / data.total)}`);
    chart.append(value);
    if (mean !== undefined) {
      chart.append(svg("text", { x: width - 2, y: y + 14, "text-anchor": "end" }, `p̄ ${mean.toFixed(2)}`));
    }
  });
  node.replaceChildren(chart);
}

function drawTimeline(data, bucket) {
  const node = $("chart-timeline");
  const labels = data.labels || state.labels;
  const buckets = (data.buckets || []).filter((b) => b.total > 0 || data.buckets.length < 200);
  if (!buckets.length) {
    emptyChart(node, "No predictions in this range yet.");
    return;
  }
  const width = 640;
  const height = 250;
  const pad = { left: 40, right: 10, top: 10, bottom: 38 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const step = niceStep(Math.max(1, ...buckets.map((b) => b.total)) / 4);
  const peak = 4 * step;
  const slot = plotW / buckets.length;
  const barW = Math.max(1, Math.min(48, slot * 0.78));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Texts per ${bucket} by top emotion` });
  for (let t = 0; t <= 4; t += 1) {
    const value = step * t;
    const y = pad.top + plotH - (plotH * t) / 4;
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
    chart.append(svg("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end" },
      Number.isInteger(value) ? value.toLocaleString() : value.toFixed(1)));
  }
  const every = Math.ceil(buckets.length / 8);
  buckets.forEach((b, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    let y = pad.top + plotH;
    for (const label of labels) {
      const count = (b.counts && b.counts[label]) || 0;
      if (!count) continue;
      const h = (plotH * count) / peak;
      y -= h;
      const rect = svg("rect", { x, y, width: barW, height: h, fill: colour(label) });
      rect.append(svg("title", {}, `${formatTime(b.start)} — ${label}: ${count}`));
      chart.append(rect);
    }
    if (i % every === 0) {
      const when = new Date(b.start);
      const tick = bucket === "hour"
        ? when.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit" })
        : when.toLocaleDateString(undefined, { month: "short", day: "numeric" });
      chart.append(svg("text", { x: x + barW / 2, y: height - pad.bottom + 16, "text-anchor": "middle" }, tick));
    }
  });
  node.replaceChildren(chart);
}

// The smallest of 1, 2, 5 × 10^k (at least 1: counts are whole) that is ≥ value.
function niceStep(value) {
  if (value <= 1) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

function renderLegend() {
  const legend = $("chart-legend");
  legend.replaceChildren(...state.labels.map((label) => {
    const chip = el("span", { className: "chip", text: label });
    chip.style.setProperty("--chip", colour(label));
    return el("li", {}, [chip]);
  }));
}

// ---- start -----------------------------------------------------------------------------
initApiKey();
initAnalyse();
initBatch();
initJobs();
initHistory();
initStats();
loadReady().then(refreshProtected);
