// braintumor page: upload a scan to /api/analyze and show the result. No build step, no libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { health: null, result: null, slice: 0, jsonUrl: null, previewUrl: null };

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

function setBusy(busy, name = "") {
  $("spinner").hidden = !busy;
  $("spinner-name").textContent = name;
  $("drop").classList.toggle("busy", busy);
  $("result-panel").setAttribute("aria-busy", String(busy));
  if (busy) {
    $("empty").hidden = true;
    $("result").hidden = true;
  }
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

async function analyze(file) {
  clearError();
  preview(file);
  const limit = state.health ? state.health.max_upload_mb * 1e6 : Infinity;
  if (file.size > limit) {
    showError("File too large.", `${file.name} is ${bytes(file.size)}; this server accepts up to ${bytes(limit)}.`);
    return;
  }
  if (file.size === 0) {
    showError("Empty file.", `${file.name} holds no data.`);
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
      showError(`Analysis failed (${res.status}).`, body.error);
      if (res.status === 401) $("key-row").hidden = false;
      $("empty").hidden = false;
      return;
    }
    render(body);
  } catch (err) {
    showError("The upload did not reach the server.", String(err.message || err));
    $("empty").hidden = false;
  } finally {
    setBusy(false);
  }
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
  const area = r.area_px == null ? "–" : `${num(r.area_px, 0)} px` + (r.area_mm2 != null ? ` · ${num(r.area_mm2)} mm²` : "");
  rows.push(["Tumour area", area]);
  if (r.kind === "volume") rows.push(["Tumour volume", r.volume_mm3 != null ? `${num(r.volume_mm3)} mm³` : "– (no spacing)"]);
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
  rows.push(["Time", `${num(r.elapsed_ms / 1000, 2)} s`]);
  const dl = $("metrics");
  dl.replaceChildren();
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", {}, v));
}

function stripImages(r) {
  const copy = { ...r, images: undefined, mask_nifti: undefined };
  copy.slices = r.slices.map((s) => ({ ...s, images: undefined }));
  return copy;
}

function renderDownloads(r) {
  if (state.jsonUrl) URL.revokeObjectURL(state.jsonUrl);
  const blob = new Blob([JSON.stringify(stripImages(r), null, 2)], { type: "application/json" });
  state.jsonUrl = URL.createObjectURL(blob);
  const stem = r.input.replace(/\.(nii\.gz|[a-z0-9]+)$/i, "");
  $("dl-json").href = state.jsonUrl;
  $("dl-json").download = `${stem}.json`;
  const nifti = $("dl-nifti");
  nifti.hidden = !r.mask_nifti;
  if (r.mask_nifti) {
    nifti.href = r.mask_nifti;
    nifti.download = `${stem}_mask.nii.gz`;
  }
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
    const what = s.skipped ? s.skipped : s.tumour ? `${label(s.class)} · ${num(s.area_px, 0)} px` : "no tumour";
    $("slice-summary").textContent = what;
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
    const stem = r.input.replace(/\.(nii\.gz|[a-z0-9]+)$/i, "");
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
  input.addEventListener("change", () => input.files.length && analyze(input.files[0]));
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
    const file = e.dataTransfer.files[0];
    if (file) analyze(file);
  });
  // a file dropped outside the drop zone must not make the browser navigate away
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  for (const id of ["show-outline", "show-fill", "show-gradcam"]) $(id).addEventListener("change", applyToggles);
  $("slice").addEventListener("input", (e) => showSlice(Number(e.target.value)));
  $("key-row").addEventListener("submit", (e) => e.preventDefault());
  $("layer-image").addEventListener("load", fitRendering);
  window.addEventListener("resize", fitRendering);
  loadInfo();
}

document.addEventListener("DOMContentLoaded", wire);
