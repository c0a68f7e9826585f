// sgan explore: the page. Every change asks the server for a new image; a request still in flight is
// aborted (AbortController) and the server renders only the newest request of this page (older ones: 409).
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const client = Math.random().toString(36).slice(2, 12);
const $ = (id) => document.getElementById(id);
let model = null;
let requestNumber = 0;
let inFlight = null;

function headers() {
  return { "Content-Type": "application/json", "X-Sgan-Token": token };
}

function showError(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = !text;
}

async function readError(response) {
  try {
    const body = await response.json();
    return body.error || `${response.status} ${response.statusText}`;
  } catch (e) {
    return `${response.status} ${response.statusText}`;
  }
}

function mixStyles() {
  const group = $("mix-group").value;
  return group === "range" ? $("mix-range").value : group;
}

function currentState() {
  const cutoff = Number($("cutoff").value);
  const state = {
    seed: $("seed").value.trim(),
    truncation_psi: Number($("psi").value),
    truncation_cutoff: cutoff >= model.num_ws ? "all" : cutoff,
    noise_mode: $("noise").value,
  };
  if (model.classes.length) state["class"] = $("class").value;
  if ($("mix-on").checked) {
    state.mix_seed = $("mix-seed").value.trim();
    state.mix_styles = mixStyles();
  }
  if (model.directions) {
    state.directions = model.directions.names.map((_, i) => Number($(`dir-${i}`).value));
  }
  if (model.input_transform) {
    state.translate = [Number($("tx").value), Number($("ty").value)];
    state.rotate = Number($("rot").value);
  }
  return state;
}

function showValues() {
  $("psi-value").textContent = Number($("psi").value).toFixed(2);
  const cutoff = Number($("cutoff").value);
  $("cutoff-value").textContent = cutoff >= model.num_ws ? "all" : String(cutoff);
  $("mix-range-row").hidden = $("mix-group").value !== "range";
  for (const id of ["tx", "ty", "rot"]) $(`${id}-value`).textContent = $(id).value;
  if (model.directions) {
    model.directions.names.forEach((_, i) => { $(`dir-${i}-value`).textContent = (Number($(`dir-${i}`).value) + 0).toFixed(1).replace(/^-0\.0$/, "0.0"); });
  }
}

async function render() {
  if (!model) return;
  showValues();
  if (inFlight) inFlight.abort();               // the newer request replaces the one in flight
  const controller = new AbortController();
  inFlight = controller;
  const number = ++requestNumber;
  $("status").textContent = "rendering…";
  try {
    const response = await fetch("api/render", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ client, request: number, state: currentState() }),
    });
    if (response.status === 409) return;          // overtaken by a newer request: it answers
    if (!response.ok) {
      showError(await readError(response));
      $("status").textContent = "not rendered";
      return;
    }
    const body = await response.json();
    if (number !== requestNumber) return;
    $("image").src = body.image;
    $("image").dataset.request = String(number);
    $("status").textContent = `rendered in ${body.ms} ms (${model.resolution}×${model.resolution}, ${model.precision})`;
    $("command").textContent = body.command || "(none)";
    $("command-note").textContent = body.note || "";
    showError("");
  } catch (err) {
    if (err.name === "AbortError") return;
    showError(`the server did not answer (${err.message}); is sgan explore still running?`);
  } finally {
    if (inFlight === controller) inFlight = null;
  }
}

async function save() {
  $("saved").textContent = "saving…";
  try {
    const response = await fetch("api/save", {
      method: "POST", headers: headers(), body: JSON.stringify({ state: currentState() }),
    });
    if (!response.ok) {
      showError(await readError(response));
      $("saved").textContent = "";
      return;
    }
    const body = await response.json();
    $("saved").textContent = "saved " + body.files.join(", ");
    showError("");
  } catch (err) {
    showError(`the server did not answer (${err.message}).`);
    $("saved").textContent = "";
  }
}

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  select.appendChild(o);
}

function buildDirections(d) {
  $("directions").hidden = false;
  $("directions-info").textContent = `${d.names.length} ${d.method} directions from ${d.file}, on ws ${d.layers[0]}-${d.layers[d.layers.length - 1]}`;
  const box = $("direction-sliders");
  d.names.forEach((name, i) => {
    const row = document.createElement("div");
    row.className = "direction";
    const span = document.createElement("span");
    span.className = "name";
    span.textContent = name;
    span.title = `score ${d.scores[i]}`;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", id: `dir-${i}`, min: -d.range[i], max: d.range[i], step: d.range[i] / 50, value: 0 });
    const out = document.createElement("output");
    out.id = `dir-${i}-value`;
    row.append(span, input, out);
    box.appendChild(row);
  });
}

function buildControls(m) {
  $("model-name").textContent = `${m.checkpoint} · ${m.arch} · ${m.resolution} px`;
  $("seed").max = m.seed_max;
  $("mix-seed").max = m.seed_max;
  $("psi").value = m.defaults.truncation_psi;
  $("cutoff").max = m.num_ws;
  $("cutoff").value = m.defaults.truncation_cutoff === null ? m.num_ws : m.defaults.truncation_cutoff;
  for (const mode of m.noise_modes) option($("noise"), mode, mode);
  $("noise").value = m.defaults.noise_mode;
  if (m.classes.length) {
    $("class-row").hidden = false;
    m.classes.forEach((name, i) => option($("class"), name, `${i}: ${name}`));
  }
  for (const [name, span] of Object.entries(m.style_groups)) {
    if (span) option($("mix-group"), name, `${name} (ws ${span[0]}-${span[1]})`);
  }
  option($("mix-group"), "range", "ws range…");
  if (m.input_transform) $("transform").hidden = false;
  if (m.directions) buildDirections(m.directions);
}

function wire() {
  const form = $("controls");
  form.addEventListener("input", render);
  const step = (delta) => {
    const seed = Math.min(model.seed_max, Math.max(0, (parseInt($("seed").value, 10) || 0) + delta));
    $("seed").value = seed;
    render();
  };
  $("seed-down").addEventListener("click", () => step(-1));
  $("seed-up").addEventListener("click", () => step(1));
  $("seed-random").addEventListener("click", () => {
    $("seed").value = Math.floor(Math.random() * 2 ** 31);
    render();
  });
  $("directions-reset").addEventListener("click", () => {
    document.querySelectorAll("#direction-sliders input").forEach((el) => { el.value = 0; });
    render();
  });
  $("save").addEventListener("click", save);
}

async function start() {
  try {
    const response = await fetch("api/model", { headers: headers() });
    if (!response.ok) {
      showError(await readError(response));
      $("status").textContent = "";
      return;
    }
    model = await response.json();
  } catch (err) {
    showError(`the server did not answer (${err.message}).`);
    return;
  }
  buildControls(model);
  wire();
  render();
}

start();
