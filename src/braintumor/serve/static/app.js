// braintumor page: upload scans to /api/analyze one after another and show the results. No build
// step, no libraries. A queue holds the chosen files (waiting / analysing / done / failed); every
// analysed input (a zip of DICOM series gives one per series) becomes a row of the results table,
// which downloads as CSV built here.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  health: null, result: null, slice: 0, jsonUrl: null, previewUrl: null, csvUrl: null,
  queue: [], rows: [], running: false, pinned: false, nextId: 0,
};
const STATUS_TEXT = { waiting: "waiting", analysing: "analysing…", done: "done", failed: "failed" };
const FORMULA_START = /^[=+\-@\t\r]/; // cells a spreadsheet would run as a formula (as the CLI's CSVs)

// ---------------------------------------------------------------- formatting helpers

function pct(p) {
  return p == null ? "–" : `${(100 * p).toFixed(1)}%`;
}

function num(v, digits = 1) {
  return v == null ? null : Number(v).toLocaleString(undefined, { maximumFractionDigits: digits });
}

function bytes(n) {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

function label(name) {
  return name === "notumor" ? "no tumour" : String(name ?? "–");
}

function stemOf(r) {
  // last component of the input's label without its suffix: "study.zip/patient" -> "patient"
  const last = String(r.input ?? "result").split("/").pop();
  return last.replace(/\.(nii\.gz|[a-z0-9]+)$/i, "") || "result";
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- messages and busy state

function showError(title, message) {
  const box = $("error");
  box.replaceChildren(el("strong", {}, title), document.createTextNode(message || ""));
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

function announce(text) {
  $("status").textContent = text;
}

function setBusy(busy, name = "") {
  // the spinner stands in for the result until there is one; later results replace it in place
  const first = busy && !state.result;
  $("spinner").hidden = !first;
  $("spinner-name").textContent = name;
  $("result-panel").setAttribute("aria-busy", String(busy));
  if (first) $("empty").hidden = true;
}

// ---------------------------------------------------------------- server info

async function loadInfo() {
  try {
    const res = await fetch("/api/health");
    state.health = await res.json();
    const h = state.health;
    $("model-info").textContent = `model ${h.model.name} v${h.model.version} · braintumor ${h.version}`;
    $("limit").textContent = `up to ${h.max_upload_mb} MB`;
    $("limit").hidden = false;
    $("key-row").hidden = !h.auth_required;
    $("api-key").value = sessionStorage.getItem("braintumor-api-key") || "";
  } catch (err) {
    $("model-info").textContent = "server unreachable";
    showError("Cannot reach the server.", "Is `braintumor serve` still running?");
  }
}

// ---------------------------------------------------------------- upload

function preview(file) {
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = null;
  const img = $("preview-img");
  const placeholder = $("preview-placeholder");
  const browserImage = /^image\/(png|jpeg)$/.test(file.type);
  if (browserImage) {
    state.previewUrl = URL.createObjectURL(file);
    img.src = state.previewUrl;
  } else {
    placeholder.textContent = /\.nii(\.gz)?$/i.test(file.name) ? "NIfTI" : file.name.split(".").pop().toUpperCase().slice(0, 5);
  }
  img.hidden = !browserImage;
  placeholder.hidden = browserImage;
  $("preview-name").textContent = file.name;
  $("preview-size").textContent = bytes(file.size);
  $("preview").hidden = false;
}

function enqueue(files) {
  if (!files.length) return;
  if (!state.running) {
    clearError();
    state.pinned = false;
  }
  for (const file of files) state.queue.push({ id: state.nextId++, file, status: "waiting", error: "" });
  renderQueue();
  if (!state.running) runQueue();
}

async function runQueue() {
  state.running = true;
  $("clear").disabled = true;
  let entry;
  while ((entry = state.queue.find((e) => e.status === "waiting"))) {
    const waiting = state.queue.filter((e) => e.status === "waiting").length;
    announce(`Analysing ${entry.file.name}` + (waiting > 1 ? ` (${waiting - 1} more waiting)` : "") + "…");
    await analyze(entry);
  }
  state.running = false;
  $("clear").disabled = false;
  const done = state.queue.filter((e) => e.status === "done").length;
  const failed = state.queue.filter((e) => e.status === "failed").length;
  announce(`Finished: ${done} analysed` + (failed ? `, ${failed} failed` : "") + ".");
}

function setStatus(entry, status, error = "") {
  entry.status = status;
  entry.error = error;
  renderQueue();
}

function renderQueue() {
  const list = $("queue");
  list.replaceChildren();
  for (const e of state.queue) {
    const item = el("li", { class: "queue-item", "data-status": e.status });
    item.append(el("span", { class: "queue-name", title: e.file.name }, e.file.name));
    item.append(el("span", { class: `badge ${e.status}` }, STATUS_TEXT[e.status] + (e.note ? ` · ${e.note}` : "")));
    if (e.error) item.append(el("div", { class: "queue-error" }, e.error));
    list.append(item);
  }
  $("queue-box").hidden = state.queue.length === 0;
}

function failEntry(entry, title, message) {
  setStatus(entry, "failed", message);
  showError(`${entry.file.name}: ${title}`, ` ${message}`);
  addRow(entry, { input: entry.file.name, ok: false, error: message });
  if (!state.result) $("empty").hidden = false;
}

async function analyze(entry) {
  const file = entry.file;
  preview(file);
  setStatus(entry, "analysing");
  const limit = state.health ? state.health.max_upload_mb * 1e6 : Infinity;
  if (file.size > limit) {
    failEntry(entry, "File too large.", `${file.name} is ${bytes(file.size)}; this server accepts up to ${bytes(limit)}.`);
    return;
  }
  if (file.size === 0) {
    failEntry(entry, "Empty file.", `${file.name} holds no data.`);
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  const headers = {};
  const key = $("api-key").value.trim();
  if (key) {
    headers["X-API-Key"] = key;
    sessionStorage.setItem("braintumor-api-key", key);
  }
  const gradcam = $("opt-gradcam").checked;
  setBusy(true, file.name);
  try {
    const res = await fetch(`/api/analyze?gradcam=${gradcam}`, { method: "POST", body: form, headers });
    const body = await res.json().catch(() => ({ error: `the server answered ${res.status} without details` }));
    if (!res.ok) {
      if (res.status === 401) $("key-row").hidden = false;
      failEntry(entry, `Analysis failed (${res.status}).`, body.error);
      return;
    }
    finish(entry, body);
  } catch (err) {
    failEntry(entry, "The upload did not reach the server.", String(err.message || err));
  } finally {
    setBusy(false);
  }
}

function finish(entry, body) {
  // a zip answers one result per input found in it (a DICOM series, a slice folder, an image)
  const results = body.format === "zip" ? body.results : [{ ...body, file: entry.file.name }];
  const failed = results.filter((r) => !r.ok).length;
  if (body.format === "zip") entry.note = `${results.length} input${results.length > 1 ? "s" : ""}` + (failed ? `, ${failed} failed` : "");
  setStatus(entry, "done", results.filter((r) => !r.ok).map((r) => `${r.input}: ${r.error}`).join("\n"));
  let first = null;
  for (const r of results) {
    const row = addRow(entry, r);
    if (r.ok && !first) first = row;
  }
  if (first && !state.pinned) showRow(first);
}

// ---------------------------------------------------------------- results table and CSV

function addRow(entry, r) {
  const row = { id: state.rows.length, entry: entry.id, file: r.file ?? r.input, result: r };
  state.rows.push(row);
  renderTable();
  return row;
}

function showRow(row) {
  render(row.result);
  for (const tr of $("results-body").children) {
    if (tr.dataset.row === String(row.id)) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
  }
}

function areaText(r) {
  if (r.area_px == null) return "–";
  return `${num(r.area_px, 0)} px` + (r.area_mm2 != null ? ` · ${num(r.area_mm2)} mm²` : "");
}

function renderTable() {
  const body = $("results-body");
  body.replaceChildren();
  for (const row of state.rows) {
    const r = row.result;
    const tr = el("tr", { "data-row": String(row.id), "data-status": r.ok ? "done" : "failed" });
    const cell = el("td");
    if (r.ok) {
      const button = el("button", { type: "button", class: "link-button", title: `Show ${row.file}` }, row.file);
      button.addEventListener("click", () => {
        state.pinned = true;
        showRow(row);
      });
      cell.append(button);
    } else cell.textContent = row.file;
    tr.append(cell);
    if (!r.ok) {
      tr.append(el("td", { colspan: "5", class: "row-error" }, `failed: ${r.error}`));
    } else {
      const p = r.tumour ? r.probabilities[r.class] : null;
      const volume = r.kind === "volume" ? (r.volume_mm3 != null ? `${num(r.volume_mm3)} mm³` : "– (no spacing)") : "–";
      for (const text of [r.tumour ? "yes" : "no", label(r.class), p == null ? "–" : pct(p), areaText(r), volume]) {
        tr.append(el("td", {}, text));
      }
    }
    if (state.result === r) tr.setAttribute("aria-current", "true");
    body.append(tr);
  }
  $("table-box").hidden = state.rows.length === 0;
  updateCsv();
}

const CSV_COLUMNS = [
  ["file", (row) => row.file], ["ok", (row) => row.result.ok], ["error", (row) => row.result.error || ""],
  ["kind", (row) => row.result.kind], ["format", (row) => row.result.format], ["tumour", (row) => row.result.tumour],
  ["class", (row) => row.result.class], ["probability", (row) => (row.result.probabilities || {})[row.result.class]],
  ["majority_class", (row) => row.result.majority_class], ["area_px", (row) => row.result.area_px],
  ["area_mm2", (row) => row.result.area_mm2], ["volume_mm3", (row) => row.result.volume_mm3],
  ["tumour_slices", (row) => (row.result.tumour_slices ? row.result.tumour_slices.length : null)],
  ["slices", (row) => (row.result.slices ? row.result.slices.length : null)],
];

function csvCell(value) {
  if (value == null) return "";
  let text = String(value);
  if (typeof value === "string" && FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvText() {
  const lines = [CSV_COLUMNS.map(([name]) => name).join(",")];
  for (const row of state.rows) lines.push(CSV_COLUMNS.map(([, get]) => csvCell(get(row))).join(","));
  return lines.join("\r\n") + "\r\n";
}

function updateCsv() {
  if (state.csvUrl) URL.revokeObjectURL(state.csvUrl);
  state.csvUrl = URL.createObjectURL(new Blob([csvText()], { type: "text/csv" }));
  $("dl-csv").href = state.csvUrl;
}

function clearAll() {
  if (state.running) return;
  state.queue = [];
  state.rows = [];
  state.result = null;
  renderQueue();
  renderTable();
  clearError();
  announce("Cleared.");
  $("result").hidden = true;
  $("empty").hidden = false;
  $("preview").hidden = true;
}

// ---------------------------------------------------------------- result

function render(r) {
  state.result = r;
  const volume = r.kind === "volume";
  $("result").hidden = false;
  $("empty").hidden = true;

  const cls = $("result-class");
  cls.textContent = r.tumour ? label(r.class) : "No tumour";
  cls.className = `class-name ${r.tumour ? "tumour" : "no-tumour"}`;
  const p = r.probabilities[r.class];
  // a segmentation-only bundle labels tumours "tumour" without class probabilities
  let sub = !r.tumour ? `predicted ${label(r.class)}` : p == null ? "segmentation only (no tumour type)" : `${pct(p)} probability`;
  if (volume) sub += ` · tumour on ${r.tumour_slices.length} of ${r.slices.length} slices`;
  $("result-sub").textContent = sub;
  $("result-kicker").textContent = volume ? "Predicted class (whole volume)" : "Predicted class";
  const warning = $("input-warning");
  warning.textContent = r.warning ? `Check the input: ${r.warning}` : "";
  warning.hidden = !r.warning;

  renderBars(r.probabilities, r.class);
  renderMetrics(r);
  renderDownloads(r);

  $("slice-row").hidden = !volume;
  if (volume) {
    const slider = $("slice");
    slider.max = String(r.slices.length - 1);
    slider.value = String(r.slice_index);
    renderTicks(r);
  }
  showSlice(volume ? r.slice_index : 0);
}

function renderBars(probs, top) {
  const rows = Object.entries(probs).sort((a, b) => b[1] - a[1]);
  const box = $("probs");
  box.replaceChildren();
  if (!rows.length) box.append(el("div", { class: "muted" }, "no probabilities"));
  for (const [name, p] of rows) {
    const row = el("div", { class: `bar-row${name === top ? " top" : ""}` });
    const track = el("div", { class: "bar-track" });
    const fill = el("div", { class: "bar-fill" });
    fill.style.width = `${Math.max(0, Math.min(1, p ?? 0)) * 100}%`;
    track.append(fill);
    row.append(el("span", { class: "name", title: name }, label(name)), track, el("span", { class: "value" }, pct(p)));
    box.append(row);
  }
}

function renderMetrics(r) {
  const rows = [];
  rows.push(["Tumour area", areaText(r)]);
  if (r.kind === "volume") {
    rows.push(["Tumour volume", r.volume_mm3 != null ? `${num(r.volume_mm3)} mm³` : "– (no spacing)"]);
    rows.push(["Slices with tumour", `${r.tumour_slices.length} of ${r.slices.length}`]);
    rows.push(["Majority class", r.majority_class ? `${label(r.majority_class)} (most frequent slice class)` : "–"]);
  }
  if (r.bbox) {
    const [r0, r1, c0, c1] = r.bbox; // half-open in the JSON; shown inclusive
    rows.push(["Bounding box", `rows ${r0}–${r1 - 1} · cols ${c0}–${c1 - 1}`]);
  }
  const u = r.uncertainty || {};
  if (u.segmentation != null || u.classification != null) {
    rows.push(["Uncertainty", `mask ${num(u.segmentation, 4) ?? "–"} · class ${num(u.classification, 4) ?? "–"}`]);
  }
  if (r.shape) rows.push(["Size", `${r.shape.slice(1, 3).join(" × ")} px` + (r.kind === "volume" ? ` × ${r.shape[0]} slices` : "")]);
  rows.push(["File", `${r.input} (${r.format})`]);
  if (r.elapsed_ms != null) rows.push(["Time", `${num(r.elapsed_ms / 1000, 2)} s`]);
  if (r.notes && r.notes.length) rows.push(["Notes", r.notes.join(" · ")]);
  const dl = $("metrics");
  dl.replaceChildren();
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", {}, v));
}

function stripImages(r) {
  const copy = { ...r, images: undefined, mask_nifti: undefined, dicom_seg: undefined, report: undefined, file: undefined };
  copy.slices = r.slices.map((s) => ({ ...s, images: undefined }));
  return copy;
}

function renderDownloads(r) {
  if (state.jsonUrl) URL.revokeObjectURL(state.jsonUrl);
  const blob = new Blob([JSON.stringify(stripImages(r), null, 2)], { type: "application/json" });
  state.jsonUrl = URL.createObjectURL(blob);
  const stem = stemOf(r);
  $("dl-json").href = state.jsonUrl;
  $("dl-json").download = `${stem}.json`;
  const link = (id, url, name) => {
    const a = $(id);
    a.hidden = !url;
    if (url) {
      a.href = url;
      a.download = name;
    } else a.removeAttribute("href");
  };
  link("dl-nifti", r.mask_nifti, `${stem}_mask.nii.gz`);
  link("dl-seg", r.dicom_seg, `${stem}_seg.dcm`);
  link("dl-report", r.report, `${stem}_report.html`);
}

function renderTicks(r) {
  const ticks = $("slice-ticks");
  ticks.replaceChildren();
  const n = Math.max(1, r.slices.length - 1);
  for (const k of r.tumour_slices) {
    const tick = el("i");
    tick.style.left = `calc(${(100 * k) / n}% - 1px)`;
    ticks.append(tick);
  }
}

function sliceImages(r, k) {
  return r.kind === "volume" ? r.slices[k].images : r.images;
}

function showSlice(k) {
  const r = state.result;
  state.slice = k;
  const images = sliceImages(r, k);
  const s = r.slices[k];
  if (r.kind === "volume") {
    $("slice-label").textContent = `${k + 1} / ${r.slices.length}`;
    // a classify-only bundle makes no mask: its tumour slices have no area
    const size = s.area_px == null ? "" : ` · ${num(s.area_px, 0)} px`;
    const what = s.skipped ? s.skipped : s.tumour ? `${label(s.class)}${size}` : "no tumour";
    $("slice-summary").textContent = what;
    $("slice").setAttribute("aria-valuetext", `slice ${k + 1} of ${r.slices.length}: ${what}`);
    const note = $("slice-note");
    note.hidden = Boolean(images);
    note.textContent = images ? "" : `No image of this slice in the answer: the server returns images of at most ${state.health ? state.health.max_slice_images : "a few hundred"} slices per upload (tumour slices first).`;
  }
  const set = (id, url) => {
    const img = $(id);
    if (url) img.src = url;
    else img.removeAttribute("src");
    img.dataset.available = url ? "1" : "";
  };
  set("layer-image", images && images.image);
  set("layer-outline", images && images.outline);
  set("layer-fill", images && images.fill);
  set("layer-gradcam", images && images.gradcam);
  const gradcam = $("show-gradcam");
  gradcam.disabled = !(images && images.gradcam);
  gradcam.parentElement.title = gradcam.disabled ? "No Grad-CAM for this slice (no tumour, or Grad-CAM was off)" : "";
  const mask = $("dl-mask");
  mask.hidden = !(images && images.mask);
  if (images && images.mask) {
    mask.href = images.mask;
    const stem = stemOf(r);
    mask.download = r.kind === "volume" ? `${stem}_s${String(k).padStart(3, "0")}_mask.png` : `${stem}_mask.png`;
  }
  applyToggles();
}

function applyToggles() {
  const on = (id, box) => {
    const img = $(id);
    img.hidden = !($(box).checked && !$(box).disabled && img.dataset.available);
  };
  on("layer-outline", "show-outline");
  on("layer-fill", "show-fill");
  on("layer-gradcam", "show-gradcam");
}

function fitRendering() {
  const img = $("layer-image");
  const small = img.naturalWidth > 0 && img.naturalWidth < img.clientWidth;
  $("stack").classList.toggle("pixelated", small);
}

// ---------------------------------------------------------------- wiring

function wire() {
  const drop = $("drop");
  const input = $("file-input");
  input.addEventListener("change", () => {
    enqueue([...input.files]);
    input.value = ""; // the same files can be chosen again
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      input.click();
    }
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    enqueue([...e.dataTransfer.files]);
  });
  // a file dropped outside the drop zone must not make the browser navigate away
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  for (const id of ["show-outline", "show-fill", "show-gradcam"]) $(id).addEventListener("change", applyToggles);
  $("slice").addEventListener("input", (e) => showSlice(Number(e.target.value)));
  $("key-row").addEventListener("submit", (e) => e.preventDefault());
  $("clear").addEventListener("click", clearAll);
  $("layer-image").addEventListener("load", fitRendering);
  window.addEventListener("resize", fitRendering);
  loadInfo();
}

document.addEventListener("DOMContentLoaded", wire);
