// The playground: talks to this server's API as any application would, from the same origin.
// Everything a reply or the server says is written as text (textContent), never as HTML. The API
// key lives in its input only: never in the URL, localStorage or a cookie.
"use strict";

const base = document.body.dataset.base || "";
const $ = (id) => document.getElementById(id);
const log = $("log");
const errorLine = $("error");
let running = null; // the AbortController of the turn in flight

function newSessionId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return "s-" + Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
}

function headers() {
  const sent = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) sent["X-Api-Key"] = key;
  return sent;
}

function showError(text) {
  errorLine.textContent = text;
  errorLine.hidden = !text;
}

async function failure(response) {
  // "429 budget_exceeded: ..." from either API's error body, or the status alone.
  let code = "", message = response.statusText;
  try {
    const body = await response.json();
    const error = body.error || {};
    code = error.code || error.type || "";
    message = error.message || body.error_message || body.message || message;
  } catch (ignored) { /* not JSON */ }
  return `${response.status}${code ? " " + code : ""}: ${message}`;
}

async function api(path, options = {}) {
  return fetch(base + path, { headers: headers(), cache: "no-store", ...options });
}

async function loadModels() {
  const select = $("model");
  const chosen = select.value;
  const response = await api("/v1/models");
  if (!response.ok) {
    showError("models: " + (await failure(response)));
    return;
  }
  // The list holds the embedding models too (every id of theirs names "embed"): not for chat.
  const models = ((await response.json()).data || []).filter((model) => !/embed/i.test(model.id));
  select.replaceChildren(...models.map((model) => {
    const option = document.createElement("option");
    option.value = option.textContent = model.id;
    return option;
  }));
  if (models.some((model) => model.id === chosen)) select.value = chosen;
}

function bubble(kind, text) {
  const item = document.createElement("li");
  item.className = kind;
  if (kind === "assistant") item.dataset.testid = "reply";
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  item.append(body);
  log.append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function figures(item, text) {
  const line = document.createElement("div");
  line.className = "usage";
  line.dataset.testid = "usage";
  line.textContent = text;
  item.append(line);
}

async function monthSpend() {
  // What the caller's tenant spent this month (null when the ledger cannot say). Usage is kept
  // per caller: without a key the server would answer 401, logged in the console each turn.
  if (!$("api-key").value.trim()) return null;
  const response = await api("/api/v1/usage").catch(() => null);
  if (!response || !response.ok) return null;
  const usage = await response.json();
  const all = (usage.by_model || []).reduce((sum, row) => sum + (row.cost_usd || 0), 0);
  return { all, operator: usage.cost_usd };
}

function dollars(value) {
  return "$" + value.toFixed(8).replace(/0+$/, "").replace(/\.$/, ".0");
}

function requestBody(message) {
  const body = {
    session_id: $("session").value.trim(),
    user_message: message,
    stream: true,
    free_mode: $("free-mode").checked,
    system_message: $("system-message").value,
    role: $("role").value,
    instructions: $("instructions").value,
    memory_context: $("memory").value.split("\n").map((line) => line.trim()).filter(Boolean),
  };
  if ($("model").value) body.model = $("model").value;
  const temperature = $("temperature").value, maxTokens = $("max-tokens").value;
  if (temperature !== "") body.temperature = Number(temperature);
  if (maxTokens !== "") body.max_tokens = Number(maxTokens);
  return body;
}

async function* events(response) {
  // Server-Sent Events as {event, data} objects, as they arrive.
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message", data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
      }
      if (data) yield { event, data: JSON.parse(data) };
    }
  }
}

async function send(message) {
  showError("");
  if (!$("session").value.trim()) $("session").value = newSessionId();
  bubble("user", message);
  const reply = bubble("assistant", "");
  const text = reply.querySelector(".text");
  running = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  const before = await monthSpend();
  try {
    const response = await api("/api/v1/chat", {
      method: "POST",
      body: JSON.stringify(requestBody(message)),
      signal: running.signal,
    });
    if (!response.ok) throw new Error(await failure(response));
    for await (const { event, data } of events(response)) {
      if (event === "delta") {
        text.textContent += data.text;
      } else if (event === "done") {
        text.textContent = data.response_text;
        await finished(reply, data, before);
      } else if (event === "error") {
        const error = data.error || {};
        throw new Error(`${error.code || "error"}: ${error.message || data.error_message}`);
      }
    }
  } catch (error) {
    if (error.name === "AbortError") figures(reply, "stopped");
    else showError(error.message);
  } finally {
    running = null;
    $("send").disabled = false;
    $("stop").disabled = true;
  }
}

async function finished(reply, chat, before) {
  const parts = [
    chat.model,
    `tokens ${chat.input_tokens} in / ${chat.output_tokens} out`,
    `${Number(chat.response_time).toFixed(2)} s`,
  ];
  const after = before && (await monthSpend());
  if (after) {
    parts.push(`turn ${dollars(after.all - before.all)}`);
    parts.push(`month ${dollars(after.operator)} on the server's account`);
  }
  figures(reply, parts.join(" · "));
}

async function loadSession() {
  showError("");
  const id = $("session").value.trim();
  if (!id) return;
  const response = await api("/api/v1/sessions/" + encodeURIComponent(id));
  if (!response.ok) {
    showError("session: " + (await failure(response)));
    return;
  }
  log.replaceChildren();
  for (const turn of (await response.json()).turns) {
    bubble("user", turn.user);
    figures(bubble("assistant", turn.assistant), turn.model);
  }
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const message = $("message").value;
  if (!message.trim() || running) return;
  $("message").value = "";
  send(message);
});
$("message").addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter is a new line; never while an IME is composing (Korean input).
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("stop").addEventListener("click", () => running && running.abort());
$("new-session").addEventListener("click", () => {
  $("session").value = newSessionId();
  log.replaceChildren();
});
$("load-session").addEventListener("click", loadSession);
$("api-key").addEventListener("change", loadModels);
loadModels();
