// The live roster over Server-Sent Events, its actions, and the copy buttons.
// Builds DOM nodes with textContent only: nothing from the server is parsed as
// HTML.  One row per identity (its calls grouped); calls that failed or ended
// go to the history below, with their SIP status and a Dismiss button.
// Actions (the session's X-CSRF-Token from data-csrf; the roster event that
// follows redraws the rows):
//   Mute/Unmute  PATCH  /api/conferences/{id}/roster/{call_id} {"muted": bool}
//   Mute all     PATCH  /api/conferences/{id}/roster {"muted": bool}
//   Hang up      DELETE /api/conferences/{id}/roster/{call_id}  (a connected call:
//                BYE, the authorization stays), Cancel (a ringing dial-out: CANCEL),
//                Dismiss (an ended call: out of the history)
// Every button's accessible name starts with its visible text ("Mute sip:ana@…").
"use strict";

const ENDED = new Set(["failed", "left"]);
const RINGING = new Set(["dialing", "ringing"]);

function cell(row, label, text) {
  const td = document.createElement("td");
  td.dataset.label = label;
  if (text !== undefined) td.textContent = text;
  row.appendChild(td);
  return td;
}

function uriCode(uri) {
  const code = document.createElement("code");
  code.className = "uri";
  code.textContent = uri;
  return code;
}

function stateText(p) {
  let text = p.state;
  if (p.reason) text += ` · ${p.reason}`;  // why a dial-out failed: "486 Busy Here"
  if (p.muted) text += " · muted";
  if (p.talking) text += " · talking";
  if (p.last_dtmf) text += ` · DTMF ${p.last_dtmf.event}`;
  return text;
}

async function send(box, method, url, body, what) {
  const status = document.getElementById("roster-status");
  try {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) status.textContent = `Could not ${what} (HTTP ${response.status}).`;
    return response.ok;
  } catch {
    status.textContent = `Could not ${what} (network error).`;
    return false;
  }
}

function actionButton(label, subject, kind, onClick, pressed) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = kind;
  button.textContent = label;
  button.setAttribute("aria-label", `${label} ${subject}`);
  if (pressed !== undefined) button.setAttribute("aria-pressed", pressed ? "true" : "false");
  button.addEventListener("click", async () => {
    button.disabled = true;
    await onClick();
    button.disabled = false;
  });
  return button;
}

function callActions(box, p) {
  const url = `${box.dataset.api}/${encodeURIComponent(p.call_id)}`;
  const buttons = [];
  if (RINGING.has(p.state)) {
    buttons.push(actionButton("Cancel", `the call to ${p.uri}`, "danger",
      () => send(box, "DELETE", url, undefined, "cancel the call")));
    return buttons;
  }
  const mute = p.muted ? "Unmute" : "Mute";
  buttons.push(actionButton(mute, p.uri, "secondary",
    () => send(box, "PATCH", url, { muted: !p.muted }, "change mute"), p.muted));
  buttons.push(actionButton("Hang up", p.uri, "danger",
    () => send(box, "DELETE", url, undefined, "hang up")));
  return buttons;
}

function groupByIdentity(entries) {
  const groups = new Map();
  for (const p of entries) {
    if (!groups.has(p.uri)) groups.set(p.uri, []);
    groups.get(p.uri).push(p);
  }
  return groups;
}

function renderRow(box, uri, calls) {
  const row = document.createElement("tr");
  row.dataset.uri = uri;
  cell(row, "Participant").appendChild(uriCode(uri));
  const nick = calls.map((p) => p.nickname).find(Boolean);
  if (nick) {
    const span = document.createElement("span");
    span.className = "nickname";
    span.textContent = ` “${nick}”`;
    row.firstChild.appendChild(span);
  }
  cell(row, "Role", calls[0].role);
  cell(row, "State", calls.map(stateText).join("; "));
  const media = cell(row, "Media");
  for (const p of calls) {
    for (const m of p.media) {
      const span = document.createElement("span");
      span.className = "stream";
      span.textContent = `${m.type} · ${m.key_mode} · ${m.packets_in ?? "-"}/${m.packets_out ?? "-"}`;
      media.appendChild(span);
    }
  }
  const actions = cell(row, "Actions");
  actions.className = "actions";
  for (const p of calls) {
    if (p.call_id && box.dataset.api) actions.append(...callActions(box, p));
  }
  return row;
}

function renderHistory(box, ended) {
  const history = box.querySelector(".history");
  const list = history.querySelector("ul");
  list.replaceChildren();
  for (const p of ended) {
    const item = document.createElement("li");
    item.appendChild(uriCode(p.uri));
    item.append(` · ${stateText(p)} `);
    if (p.call_id && box.dataset.api) {
      const url = `${box.dataset.api}/${encodeURIComponent(p.call_id)}`;
      item.appendChild(actionButton("Dismiss", `the call of ${p.uri}`, "secondary",
        () => send(box, "DELETE", url, undefined, "dismiss")));
    }
    list.appendChild(item);
  }
  history.hidden = ended.length === 0;
}

// Floors (BFCP): who holds each, who waits; Grant/Deny act as the chair
//   POST /api/conferences/{id}/floors/{floor_id}/requests/{request_id} {"action"}
function renderFloors(box, floors) {
  const pane = document.getElementById("floors");
  if (!pane) return;
  const list = pane.querySelector("ul");
  list.replaceChildren();
  const api = box.dataset.api.replace(/\/roster$/, "/floors");
  for (const floor of floors || []) {
    const item = document.createElement("li");
    item.dataset.floor = floor.floor_id;
    item.append(`Floor ${floor.floor_id}: `);
    if (floor.holder) {
      item.append("held by ");
      item.appendChild(uriCode(floor.holder));
    } else {
      item.append("free");
    }
    if (floor.queue.length) {
      const queue = document.createElement("ol");
      for (const waiting of floor.queue) {
        const entry = document.createElement("li");
        entry.appendChild(uriCode(waiting.uri || "(left)"));
        entry.append(` ${waiting.status} `);
        const url = `${api}/${floor.floor_id}/requests/${waiting.request_id}`;
        const who = `floor ${floor.floor_id} to ${waiting.uri}`;
        entry.appendChild(actionButton("Grant", who, "secondary",
          () => send(box, "POST", url, { action: "grant" }, "grant the floor")));
        entry.appendChild(actionButton("Deny", who, "danger",
          () => send(box, "POST", url, { action: "deny" }, "deny the floor")));
        queue.appendChild(entry);
      }
      item.appendChild(queue);
    }
    list.appendChild(item);
  }
  pane.hidden = !(floors && floors.length);
}

function renderRoster(box, roster) {
  renderFloors(box, roster.floors);
  const table = box.querySelector("table");
  const body = table.querySelector("tbody");
  const live = roster.participants.filter((p) => !ENDED.has(p.state));
  const ended = roster.participants.filter((p) => ENDED.has(p.state));
  body.replaceChildren();
  for (const [uri, calls] of groupByIdentity(live)) body.appendChild(renderRow(box, uri, calls));
  table.hidden = live.length === 0;
  box.querySelector(".empty").hidden = live.length !== 0;
  renderHistory(box, ended);
}

// The chat pane: the room's recent messages (event: chat), nicknames and private ones marked
function renderChat(messages) {
  const list = document.getElementById("chat");
  if (!list) return;
  list.replaceChildren();
  for (const m of messages) {
    const item = document.createElement("li");
    if (m.private) item.className = "private";
    item.appendChild(uriCode(m.from));
    if (m.nickname) item.append(` “${m.nickname}”`);
    if (m.private) {
      const mark = document.createElement("strong");
      mark.textContent = "private";
      item.append(" ", mark, " to ");
      item.appendChild(uriCode(m.to));
    }
    item.append(": ");
    if (m.text === null) {
      const note = document.createElement("em");
      note.textContent = m.private ? "(not shown)" : "(not text)";
      item.appendChild(note);
    } else {
      item.append(m.text);
    }
    list.appendChild(item);
  }
  const empty = document.querySelector(".empty-chat");
  if (empty) empty.hidden = messages.length !== 0;
}

function startMuteAll(box) {
  for (const button of document.querySelectorAll("button[data-mute-all]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      await send(box, "PATCH", box.dataset.api, { muted: button.dataset.muteAll === "true" },
        "change mute");
      button.disabled = false;
    });
  }
}

function startRoster() {
  const box = document.getElementById("roster");
  if (!box || !window.EventSource) return;
  const status = document.getElementById("roster-status");
  startMuteAll(box);
  const source = new EventSource(box.dataset.events);
  source.addEventListener("open", () => { status.textContent = "Live."; box.dataset.live = "1"; });
  source.addEventListener("error", () => { status.textContent = "Reconnecting…"; });
  source.addEventListener("roster", (event) => renderRoster(box, JSON.parse(event.data)));
  source.addEventListener("chat", (event) => renderChat(JSON.parse(event.data)));
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
      const what = (button.getAttribute("aria-label") || "").replace(/^\S+ /, "");
      let said = "Copied";
      try {
        await navigator.clipboard.writeText(field.value);
      } catch {
        said = "Press Ctrl+C to copy";
      }
      button.textContent = said;  // the accessible name keeps starting with the visible text
      if (what) button.setAttribute("aria-label", `${said}: ${what}`);
    });
  }
}

document.addEventListener("DOMContentLoaded", () => { startRoster(); startCopy(); });
