// Live roster over Server-Sent Events, the mute buttons and the copy button.
// Builds DOM nodes with textContent only: nothing from the server is parsed as
// HTML.  Mute is PATCH /api/conferences/{id}/roster/{call_id} {"muted": bool}
// with the session's X-CSRF-Token (from data-csrf); the roster event that
// follows redraws the row.
"use strict";

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function stateText(p) {
  let text = p.state;
  if (p.reason) text += ` · ${p.reason}`;  // why a dial-out failed: "486 Busy Here"
  if (p.muted) text += " · muted";
  if (p.talking) text += " · talking";
  if (p.last_dtmf) text += ` · DTMF ${p.last_dtmf.event}`;
  return text;
}

async function setMuted(box, p, button) {
  const status = document.getElementById("roster-status");
  button.disabled = true;
  try {
    const response = await fetch(`${box.dataset.api}/${encodeURIComponent(p.call_id)}`, {
      method: "PATCH",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf },
      body: JSON.stringify({ muted: !p.muted }),
    });
    if (!response.ok) status.textContent = `Could not change mute (HTTP ${response.status}).`;
  } catch {
    status.textContent = "Could not change mute (network error).";
  } finally {
    button.disabled = false;
  }
}

function muteButton(box, p) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.textContent = p.muted ? "Unmute" : "Mute";
  button.setAttribute("aria-label", `${p.muted ? "Unmute" : "Mute"} ${p.uri}`);
  button.setAttribute("aria-pressed", p.muted ? "true" : "false");
  button.addEventListener("click", () => setMuted(box, p, button));
  return button;
}

function renderRoster(box, roster) {
  const table = box.querySelector("table");
  const body = table.querySelector("tbody");
  const empty = box.querySelector(".empty");
  body.replaceChildren();
  for (const p of roster.participants) {
    const row = document.createElement("tr");
    row.dataset.uri = p.uri;
    cell(row, p.uri);
    cell(row, p.role);
    cell(row, stateText(p));
    const media = cell(row, "");
    for (const m of p.media) {
      const span = document.createElement("span");
      span.className = "stream";
      span.textContent = `${m.type} · ${m.key_mode} · ${m.packets_in ?? "-"}/${m.packets_out ?? "-"}`;
      media.appendChild(span);
    }
    const actions = cell(row, "");
    if (p.call_id && box.dataset.api) actions.appendChild(muteButton(box, p));
    body.appendChild(row);
  }
  table.hidden = roster.participants.length === 0;
  empty.hidden = roster.participants.length !== 0;
}

function startRoster() {
  const box = document.getElementById("roster");
  if (!box || !window.EventSource) return;
  const status = document.getElementById("roster-status");
  const source = new EventSource(box.dataset.events);
  source.addEventListener("open", () => { status.textContent = "Live."; box.dataset.live = "1"; });
  source.addEventListener("error", () => { status.textContent = "Reconnecting…"; });
  source.addEventListener("roster", (event) => renderRoster(box, JSON.parse(event.data)));
  source.addEventListener("gone", () => {
    source.close();
    status.textContent = "This conference was deleted.";
  });
}

function startCopy() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    button.hidden = false;
    button.addEventListener("click", async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Press Ctrl+C";
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => { startRoster(); startCopy(); });
