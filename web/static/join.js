// The browser join page: a small SIP-over-WebSocket user agent (RFC 7118) of ours.
//
// One INVITE with the RTCPeerConnection's offer (ICE, DTLS-SRTP, rtcp-mux: what
// the browser makes), its ACK, a SUBSCRIBE to the conference event package
// (RFC 4575) whose NOTIFYs fill the participant list, BYE to leave.  The server
// binds the WebSocket to the web session's identity; what this page writes in
// From is not what the focus admits.  No library, no build step: served as is.
//
// Chat: the INVITE also offers an m=message TCP/WSS/MSRP line (TCP/WS/MSRP over
// plain ws; RFC 7977) that the RTCPeerConnection never sees; once in the call the
// page opens /msrp, binds with a bodiless SEND and sends and receives CPIM
// (RFC 7701) text.  The switch relays it as the web session's identity.
"use strict";

(() => {
  const root = document.getElementById("join");
  if (!root) return;
  const socketUrl = root.dataset.socket;
  const conference = root.dataset.conference;
  const identity = root.dataset.identity;
  const $ = (id) => document.getElementById(id);
  const status = $("join-status");
  const joinButton = $("join-button");
  const muteButton = $("mute-button");
  const leaveButton = $("leave-button");
  const localMeter = $("local-level");
  const remoteMeter = $("remote-level");
  const list = $("participants");
  const remoteAudio = $("remote-audio");
  const chatLog = $("chat-log");
  const chatForm = $("chat-form");
  const chatText = $("chat-text");
  const chatSend = $("chat-send");

  const random = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)),
    (b) => b.toString(16).padStart(2, "0")).join("");
  const host = `${random(6)}.invalid`;  // RFC 7118 §5.4: no address of ours is reachable
  const transport = socketUrl.startsWith("wss:") ? "WSS" : "WS";
  const user = (identity.split(":")[1] || "browser").split("@")[0];
  const contact = `<sip:${user}@${host};transport=${transport.toLowerCase()}>`;
  const encoder = new TextEncoder();

  let ws = null, pc = null, stream = null, audio = null;
  let call = null;        // {callId, from, to, cseq, target}
  let subscription = null;
  let leaving = null;
  let chat = null;        // {socket, path, remote}: the MSRP session over /msrp

  function say(text) { status.textContent = text; }

  // -- chat: MSRP over WebSocket (RFC 4975 framing, one message per WebSocket message) --
  const msrpScheme = transport === "WSS" ? "msrps" : "msrp";
  const chatPath = `${msrpScheme}://${host}:9/${random(10)};ws`;
  const chatOffer = () => [`m=message 9 TCP/${transport}/MSRP *`, "c=IN IP4 0.0.0.0",
    "a=accept-types:message/cpim text/plain", "a=accept-wrapped-types:text/plain",
    `a=path:${chatPath}`, "a=setup:active", ""].join("\r\n");

  function sections(sdp) {  // the session part, then one string per m= section
    return sdp.split(/\r\n(?=m=)/);
  }

  function msrpFrame(tid, first, headers, body) {
    const lines = [first, ...headers];
    return lines.join("\r\n") + "\r\n" + (body === null ? "" : "\r\n" + body + "\r\n") +
      `-------${tid}$\r\n`;
  }

  function chatShow(from, text, note = "") {
    const item = document.createElement("li");
    const who = document.createElement("span");
    who.className = "uri";
    who.textContent = from;
    item.append(who, document.createTextNode(`: ${text}${note}`));
    chatLog.append(item);
  }

  function chatOpen(remote) {
    const socket = new WebSocket(socketUrl.replace(/\/sip$/, "/msrp"), "msrp");
    chat = { socket, remote, sent: new Map() };
    const paths = [`To-Path: ${remote}`, `From-Path: ${chatPath}`];
    socket.onopen = () => {
      const tid = random(8);  // RFC 4975 §7.1: the active end binds with a bodiless SEND
      socket.send(msrpFrame(tid, `MSRP ${tid} SEND`,
        [...paths, `Message-ID: ${random(8)}`, "Byte-Range: 1-0/0"], null));
      chatSend.disabled = chatText.disabled = false;
    };
    socket.onmessage = (event) => { if (typeof event.data === "string") chatReceived(event.data); };
    socket.onclose = () => { chatSend.disabled = chatText.disabled = true; };
  }

  function chatReceived(text) {
    const split = text.indexOf("\r\n\r\n");
    const head = (split < 0 ? text : text.slice(0, split)).split("\r\n");
    const [, tid, method] = head[0].split(" ");
    const get = (name) => {
      const line = head.find((l) => l.toLowerCase().startsWith(name + ":"));
      return line ? line.slice(name.length + 1).trim() : null;
    };
    if (method === "REPORT") {
      const status = get("status") || "";
      const id = get("message-id");
      if (!status.startsWith("000 200") && chat.sent.has(id)) {
        chatShow(identity, chat.sent.get(id), ` (not delivered: ${status.slice(4)})`);
      }
      return;
    }
    if (method !== "SEND") return;  // a response to ours
    if ((get("failure-report") || "yes") !== "no") {
      chat.socket.send(msrpFrame(tid, `MSRP ${tid} 200 OK`,
        [`To-Path: ${get("from-path")}`, `From-Path: ${chatPath}`], null));
    }
    const end = text.lastIndexOf(`\r\n-------${tid}`);
    const body = split < 0 || end < split ? "" : text.slice(split + 4, end);
    if (!(get("byte-range") || "").startsWith("1-") || !text.endsWith("$\r\n")) return;
    const [cpim, , ...rest] = body.split("\r\n\r\n");
    const content = rest.join("\r\n\r\n");
    const from = /^From:\s*(?:"[^"]*"\s*)?<([^>]*)>/im.exec(cpim || "");
    if (from) chatShow(from[1], content);
  }

  function chatSubmit(event) {
    event.preventDefault();
    const text = chatText.value.trim();
    if (!text || !chat || chat.socket.readyState !== WebSocket.OPEN) return;
    const tid = random(8), id = random(8);
    const body = `From: <${identity}>\r\nTo: <${conference}>\r\n\r\n` +
      `Content-Type: text/plain;charset=utf-8\r\n\r\n${text}`;
    const size = encoder.encode(body).length;
    chat.socket.send(msrpFrame(tid, `MSRP ${tid} SEND`, [`To-Path: ${chat.remote}`,
      `From-Path: ${chatPath}`, `Message-ID: ${id}`, `Byte-Range: 1-${size}/${size}`,
      "Content-Type: message/cpim"], body));
    chat.sent.set(id, text);
    chatShow(identity, text);
    chatText.value = "";
  }

  function build(method, uri, headers, body = "", branch = random(8)) {
    const lines = [`${method} ${uri} SIP/2.0`,
      `Via: SIP/2.0/${transport} ${host};branch=z9hG4bK${branch}`,
      "Max-Forwards: 70", ...headers];
    if (body) lines.push("Content-Type: application/sdp");
    lines.push(`Content-Length: ${encoder.encode(body).length}`);
    return lines.join("\r\n") + "\r\n\r\n" + body;
  }

  function parse(text) {
    const split = text.indexOf("\r\n\r\n");
    const head = (split < 0 ? text : text.slice(0, split)).split("\r\n");
    const body = split < 0 ? "" : text.slice(split + 4);
    const headers = [];
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
    }
    const get = (name) => (headers.find(([n]) => n === name) || [null, null])[1];
    const all = (name) => headers.filter(([n]) => n === name).map(([, v]) => v);
    const first = head[0].split(" ");
    if (first[0] === "SIP/2.0") {
      return { response: true, status: Number(first[1]), reason: first.slice(2).join(" "), get, all, body };
    }
    return { response: false, method: first[0], uri: first[1], get, all, body };
  }

  function answer(request, code, reason) {
    const to = request.get("to") || request.get("t");
    const lines = [`SIP/2.0 ${code} ${reason}`,
      ...request.all("via").map((v) => `Via: ${v}`),
      `From: ${request.get("from")}`, `To: ${/;\s*tag=/.test(to) ? to : to + ";tag=" + random(4)}`,
      `Call-ID: ${request.get("call-id")}`, `CSeq: ${request.get("cseq")}`, "Content-Length: 0"];
    ws.send(lines.join("\r\n") + "\r\n\r\n");
  }

  const uriOf = (nameAddr) => { const m = /<([^>]+)>/.exec(nameAddr || ""); return m ? m[1] : null; };

  function onResponse(message) {
    const [number, method] = (message.get("cseq") || "").split(" ");
    if (message.status < 200) return;
    if (method === "INVITE" && call && number === String(call.cseq)) {
      const ok = message.status < 300;  // a 2xx ACK is its own transaction (RFC 3261 §13.2.2.4)
      ws.send(build("ACK", ok ? uriOf(message.get("contact")) || conference : conference, [
        `From: ${call.from}`, `To: ${message.get("to")}`, `Call-ID: ${call.callId}`,
        `CSeq: ${call.cseq} ACK`], "", ok ? random(8) : call.branch));
      if (message.status >= 300) {
        const warning = /"([^"]*)"/.exec(message.get("warning") || "");
        say(`Refused: ${message.status} ${message.reason}${warning ? " — " + warning[1] : ""}`);
        finish(false);
        return;
      }
      call.to = message.get("to");
      call.target = uriOf(message.get("contact")) || conference;
      const parts = sections(message.body);
      const chatPart = parts.find((p) => p.startsWith("m=message ") && !p.startsWith("m=message 0 "));
      const media = parts.filter((p) => !p.startsWith("m=message ")).join("\r\n").replace(/(\r\n)?$/, "\r\n");
      pc.setRemoteDescription({ type: "answer", sdp: media }).then(() => {
        say("In the conference");
        const path = chatPart && /^a=path:(\S+)/m.exec(chatPart);
        if (path) chatOpen(path[1]);
        root.dataset.state = "in-call";
        muteButton.disabled = false;
        leaveButton.disabled = false;
        subscribe();
      }, (error) => leave(`The answer could not be used: ${error.message}`));
    } else if (method === "BYE" && leaving) {
      leaving();
    }
  }

  function onRequest(message) {
    if (message.method === "ACK") return;
    answer(message, 200, "OK");
    if (message.method === "BYE" && call && message.get("call-id") === call.callId) {
      say("The conference ended your call");
      finish(true);
    } else if (message.method === "NOTIFY" && subscription === message.get("call-id")) {
      showRoster(message.body);
    }
  }

  const roster = new Map();  // entity -> status text (RFC 4575 §4.1: full, then partials)

  function showRoster(xml) {
    if (!xml) return;
    const doc = new DOMParser().parseFromString(xml, "application/xml");
    if (doc.getElementsByTagName("parsererror").length) return;
    if (doc.documentElement.getAttribute("state") !== "partial") roster.clear();
    for (const u of Array.from(doc.getElementsByTagNameNS("*", "user"))) {
      const entity = u.getAttribute("entity") || "";
      if (u.getAttribute("state") === "deleted") { roster.delete(entity); continue; }
      const state = u.getElementsByTagNameNS("*", "status")[0];
      roster.set(entity, state ? state.textContent : roster.get(entity) || "");
    }
    list.replaceChildren(...Array.from(roster, ([entity, state]) => {
      const item = document.createElement("li");
      item.textContent = state ? `${entity} · ${state}` : entity;
      item.dataset.uri = entity;
      return item;
    }));
  }

  function subscribe() {
    subscription = random(10);
    ws.send(build("SUBSCRIBE", conference, [
      `From: <${identity}>;tag=${random(4)}`, `To: <${conference}>`, `Call-ID: ${subscription}`,
      "CSeq: 1 SUBSCRIBE", `Contact: ${contact}`, "Event: conference",
      "Accept: application/conference-info+xml", "Expires: 600"]));
  }

  function meter(source, element) {
    const analyser = audio.createAnalyser();
    analyser.fftSize = 1024;
    audio.createMediaStreamSource(source).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const tick = () => {
      if (!audio) return;
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      element.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      requestAnimationFrame(tick);
    };
    tick();
  }

  async function gathered(connection) {
    if (connection.iceGatheringState === "complete") return;
    await new Promise((resolve) => {
      const done = () => { if (connection.iceGatheringState === "complete") resolve(); };
      connection.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);
    });
  }

  async function join() {
    joinButton.disabled = true;
    say("Asking for the microphone…");
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    } catch (error) {
      say(`No microphone: ${error.message}`);
      joinButton.disabled = false;
      return;
    }
    audio = new AudioContext();
    meter(stream, localMeter);
    // max-bundle: one transport; the focus answers the BUNDLE group of its one audio line
    pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    pc.ontrack = (event) => {
      const remote = event.streams[0] || new MediaStream([event.track]);
      remoteAudio.srcObject = remote;
      meter(remote, remoteMeter);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    say("Calling…");
    ws = new WebSocket(socketUrl, "sip");
    ws.onopen = () => {
      call = { callId: random(12), from: `<${identity}>;tag=${random(4)}`, cseq: 1, branch: random(8) };
      ws.send(build("INVITE", conference, [
        `From: ${call.from}`, `To: <${conference}>`, `Call-ID: ${call.callId}`, "CSeq: 1 INVITE",
        `Contact: ${contact}`, "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY"],
        pc.localDescription.sdp + chatOffer(), call.branch));
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      const message = parse(event.data);
      if (message.response) onResponse(message); else onRequest(message);
    };
    ws.onclose = () => { if (call) say("Disconnected"); finish(false); };
    ws.onerror = () => say("The connection to the server failed (not signed in or invite no longer valid?)");
  }

  function toggleMute() {
    const track = stream && stream.getAudioTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    muteButton.setAttribute("aria-pressed", String(!track.enabled));
    muteButton.textContent = track.enabled ? "Mute" : "Unmute";
  }

  async function leave(why = "You left the conference") {
    if (call && call.to && ws && ws.readyState === WebSocket.OPEN) {
      call.cseq += 1;
      ws.send(build("BYE", call.target, [`From: ${call.from}`, `To: ${call.to}`,
        `Call-ID: ${call.callId}`, `CSeq: ${call.cseq} BYE`]));
      await new Promise((resolve) => { leaving = resolve; setTimeout(resolve, 2000); });
    }
    say(why);
    finish(true);
  }

  function finish(clean) {
    const wasOpen = ws;
    call = null;
    subscription = null;
    if (wasOpen) { wasOpen.onclose = null; wasOpen.close(); }
    ws = null;
    if (pc) pc.close();
    pc = null;
    if (chat) { chat.socket.onclose = null; chat.socket.close(); }
    chat = null;
    chatSend.disabled = chatText.disabled = true;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    if (audio) audio.close();
    audio = null;
    root.dataset.state = clean ? "left" : "ended";
    roster.clear();
    list.replaceChildren();
    muteButton.disabled = leaveButton.disabled = true;
    joinButton.disabled = false;
  }

  joinButton.addEventListener("click", join);
  muteButton.addEventListener("click", toggleMute);
  leaveButton.addEventListener("click", () => leave());
  chatForm.addEventListener("submit", chatSubmit);
  joinButton.hidden = muteButton.hidden = leaveButton.hidden = false;
})();
