// The operator's page: the admin API (/admin/v1/keys) from the same origin, with the admin key the
// operator types (kept in this page's memory only: never in the URL, storage or a cookie).
// Everything the server says is written as text (textContent); the charts are SVG elements made
// here, so the page needs no library and no inline script or style.
"use strict";

const base = document.body.dataset.base || "";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let adminKey = "";
let editing = null; // the id of the key the form edits, or null for a new one
let keys = []; // the keys shown, with their daily spend
let next = null; // the cursor of the next page

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + adminKey };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(base + "/admin/v1" + path, {
    method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = answer.error || {};
    throw new Error(`${response.status} ${error.code || ""}: ${error.message || response.statusText}`);
  }
  return answer;
}

function svg(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

function usd(value) {
  return value === null || value === undefined ? "-" : "$" + Number(value).toPrecision(3);
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "-" : String(text);
  return td;
}

function drawSpend() {
  // One bar per key: this month's spend, scaled to the largest.
  const chart = $("spend-chart");
  const row = 22, label = 160, width = 640;
  const top = Math.max(...keys.map((k) => k.spend_usd), 0);
  chart.replaceChildren();
  chart.setAttribute("height", String(keys.length * row + 4));
  chart.setAttribute("viewBox", `0 0 ${width} ${keys.length * row + 4}`);
  keys.forEach((key, index) => {
    const y = index * row + 2;
    const name = svg("text", { x: 0, y: y + 14 });
    name.textContent = key.name;
    const length = top > 0 ? ((width - label - 80) * key.spend_usd) / top : 0;
    const bar = svg("rect", { class: "bar", x: label, y, width: Math.max(length, 1), height: row - 6 });
    bar.dataset.keyId = key.id;
    const amount = svg("text", { x: label + length + 6, y: y + 14 });
    amount.textContent = usd(key.spend_usd);
    const title = svg("title");
    title.textContent = `${key.name}: ${usd(key.spend_usd)} this month`;
    bar.append(title);
    chart.append(name, bar, amount);
  });
}

function sparkline(daily) {
  // Each day's spend as a small line (the last 30 days, oldest first).
  const width = 120, height = 24;
  const line = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  const top = Math.max(...daily.map((d) => d.spend_usd), 0);
  const step = daily.length > 1 ? width / (daily.length - 1) : width;
  const points = daily.map((d, i) => {
    const y = top > 0 ? height - 2 - ((height - 4) * d.spend_usd) / top : height - 2;
    return `${(i * step).toFixed(1)},${y.toFixed(1)}`;
  });
  line.append(svg("polyline", { class: "spark", points: points.join(" ") }));
  const title = svg("title");
  title.textContent = daily.map((d) => `${d.day}: ${usd(d.spend_usd)}`).join("\n");
  line.append(title);
  line.dataset.testid = "daily";
  return line;
}

function button(text, action, testid) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = text;
  element.dataset.testid = testid;
  element.addEventListener("click", () => action().catch((error) => showError(error.message)));
  return element;
}

function row(key) {
  const tr = document.createElement("tr");
  tr.dataset.testid = "key-row";
  tr.dataset.keyId = key.id;
  if (key.status !== "active") tr.className = key.status;
  tr.append(
    cell(key.name), cell(key.prefix), cell(key.status),
    cell(key.models ? key.models.join(", ") : "all"), cell(key.rpm), cell(key.tpm),
    cell(key.monthly_budget_usd === null ? null : usd(key.monthly_budget_usd)),
    cell(key.expires_at ? key.expires_at.replace("T", " ").replace("Z", " UTC") : null),
    cell(usd(key.spend_usd)),
  );
  const spark = document.createElement("td");
  spark.append(sparkline(key.daily || []));
  const actions = document.createElement("td");
  actions.className = "actions";
  if (key.status !== "revoked") {
    actions.append(
      button("Edit", async () => edit(key), "edit"),
      button("Rotate", async () => rotate(key), "rotate"),
      button("Revoke", async () => revoke(key), "revoke"),
    );
  }
  tr.append(spark, actions);
  return tr;
}

function render() {
  $("rows").replaceChildren(...keys.map(row));
  $("more").hidden = !next;
  drawSpend();
}

async function load(after = "") {
  const page = await api("GET", "/keys?limit=50" + (after ? "&after=" + after : ""));
  const details = await Promise.all(page.data.map((key) => api("GET", `/keys/${key.id}?days=30`)));
  keys = after ? keys.concat(details) : details;
  next = page.next;
  render();
}

function policy() {
  // The form's fields as the admin API takes them (an empty limit: none).
  const number = (id) => ($(id).value === "" ? null : Number($(id).value));
  const models = $("f-models").value.split(",").map((m) => m.trim()).filter(Boolean);
  const expires = $("f-expires").value;
  return {
    name: $("f-name").value.trim(),
    models: models.length ? models : null,
    rpm: number("f-rpm"),
    tpm: number("f-tpm"),
    monthly_budget_usd: number("f-budget"),
    expires_at: expires ? new Date(expires + "Z").toISOString() : null,
    paid_models: $("f-paid").checked,
  };
}

function showSecret(answer) {
  $("secret-value").textContent = answer.key;
  $("secret").hidden = false;
}

function resetForm() {
  editing = null;
  $("key-form").reset();
  $("form-title").textContent = "New key";
  $("save").textContent = "Create";
  $("cancel").hidden = true;
}

function edit(key) {
  editing = key.id;
  $("f-name").value = key.name;
  $("f-models").value = key.models ? key.models.join(", ") : "";
  $("f-rpm").value = key.rpm ?? "";
  $("f-tpm").value = key.tpm ?? "";
  $("f-budget").value = key.monthly_budget_usd ?? "";
  $("f-expires").value = key.expires_at ? key.expires_at.slice(0, 16) : "";
  $("f-paid").checked = key.paid_models;
  $("form-title").textContent = "Edit " + key.name;
  $("save").textContent = "Save";
  $("cancel").hidden = false;
}

async function rotate(key) {
  if (!confirm(`Rotate ${key.name}? Its current secret stops working.`)) return;
  showSecret(await api("POST", `/keys/${key.id}/rotate`, { grace_seconds: 0 }));
  await load();
}

async function revoke(key) {
  if (!confirm(`Revoke ${key.name}? Every secret of it stops working.`)) return;
  await api("DELETE", `/keys/${key.id}`);
  await load();
}

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  try {
    if (editing) {
      await api("PATCH", `/keys/${editing}`, policy());
    } else {
      const body = policy();
      if (!body.expires_at) delete body.expires_at;
      showSecret(await api("POST", "/keys", body));
    }
    resetForm();
    await load();
  } catch (error) {
    showError(error.message);
  }
});

$("cancel").addEventListener("click", resetForm);
$("more").addEventListener("click", () => load(next).catch((error) => showError(error.message)));

$("unlock").addEventListener("submit", async (event) => {
  event.preventDefault();
  adminKey = $("admin-key").value.trim();
  showError("");
  try {
    await load();
    $("unlock").hidden = true;
    $("console").hidden = false;
  } catch (error) {
    showError(error.message);
  }
});
