// The demo page: connect to a namespace, join a room through the front's
// /demo endpoints, list the room's members, and log every event received;
// a live panel shows what the server pushes about itself every second.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  let socket = null;
  let timer = null;

  function setStatus(text, on) {
    $("status").textContent = text;
    $("status").className = "badge " + (on ? "on" : "off");
  }

  function setConnected(on) {
    $("connect").disabled = on;
    $("disconnect").disabled = !on;
    $("join").disabled = !on;
    $("leave").disabled = !on;
    $("nsp").disabled = on;
    $("transport").disabled = on;
  }

  function showTransport() {
    const t = socket && socket.io.engine ? socket.io.engine.transport.name : "-";
    $("tname").textContent = t;
  }

  function addLog(event, args, sys) {
    const log = $("log");
    const empty = log.querySelector(".empty");
    if (empty) empty.remove();
    const li = document.createElement("li");
    if (sys) li.className = "sys";
    const t = document.createElement("span");
    t.className = "t";
    t.textContent = new Date().toLocaleTimeString();
    const ev = document.createElement("span");
    ev.className = "ev";
    ev.textContent = event;
    const a = document.createElement("span");
    a.className = "args";
    a.textContent = args.map((x) => {
      if (x instanceof ArrayBuffer) return "<" + x.byteLength + " bytes>";
      try { return JSON.stringify(x); } catch (e) { return String(x); }
    }).join(", ");
    li.append(t, ev, a);
    log.prepend(li);
  }

  function room() { return $("room").value.trim(); }
  function nsp() { return $("nsp").value.trim() || "/"; }

  async function refreshMembers() {
    const r = room();
    $("roomname").textContent = r || "-";
    const ul = $("members");
    if (!r) return;
    let ids = [];
    try {
      const res = await fetch("/demo/rooms?nsp=" + encodeURIComponent(nsp()) + "&room=" + encodeURIComponent(r));
      if (demoOff(res)) { showDemoOff(); return; }
      if (res.ok) ids = await res.json();
    } catch (e) { return; }
    ul.textContent = "";
    $("count").textContent = String(ids.length);
    if (!ids.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "nobody yet";
      ul.append(li);
      return;
    }
    for (const id of ids.sort()) {
      const li = document.createElement("li");
      li.textContent = id;
      if (socket && id === socket.id) li.className = "me";
      ul.append(li);
    }
  }

  // Without `sio-front --demo` (make run passes it) the room endpoints are
  // missing files (404, not the endpoints' JSON).
  function demoOff(res) {
    return res.status === 404 && !(res.headers.get("content-type") || "").includes("json");
  }
  function showDemoOff() {
    const ul = $("members");
    ul.textContent = "";
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "room endpoints are off: start sio-front with --demo (make run does)";
    ul.append(li);
  }

  async function roomAction(what) {
    if (!socket || !socket.connected) return;
    const body = JSON.stringify({ nsp: nsp(), socket: socket.id, room: room() });
    const res = await fetch("/demo/" + what, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    if (demoOff(res)) addLog(what + " failed", ["room endpoints are off: start sio-front with --demo"], true);
    else if (!res.ok) addLog(what + " failed", [res.status, await res.text()], true);
    else addLog(what === "join" ? "joined" : "left", [room()], true);
    refreshMembers();
  }

  function connect() {
    const t = $("transport").value;
    const opts = { forceNew: true };
    if (t === "websocket") opts.transports = ["websocket"];
    else if (t === "polling") opts.transports = ["polling"];
    socket = io(nsp(), opts);
    setStatus("connecting...", false);
    socket.on("connect", () => {
      setStatus("connected", true);
      setConnected(true);
      $("sid").textContent = socket.id;
      showTransport();
      socket.io.engine.on("upgrade", showTransport);
      refreshMembers();
    });
    socket.on("connect_error", (err) => {
      setStatus("error: " + err.message, false);
      addLog("connect_error", [err.message], true);
    });
    socket.on("disconnect", (reason) => {
      setStatus("disconnected", false);
      setConnected(false);
      $("sid").textContent = "-";
      $("tname").textContent = "-";
      addLog("disconnect", [reason], true);
    });
    socket.onAny((event, ...args) => addLog(event, args, false));
    clearInterval(timer);
    timer = setInterval(refreshMembers, 2000);
  }

  // The live panel: a socket of its own on "/", in room demo:panel (joined
  // through the /demo endpoint), to which the front pushes "demo:stats".
  function fmtBytes(n) {
    if (n >= 1048576) return (n / 1048576).toFixed(1) + " MB";
    if (n >= 1024) return (n / 1024).toFixed(1) + " kB";
    return Math.round(n) + " B";
  }
  function fmtRate(n) { return n >= 100 ? String(Math.round(n)) : n.toFixed(1); }

  function showPanel(s) {
    const clients = s.clients.polling + s.clients.websocket;
    $("panel-clients").textContent = String(clients);
    $("panel-clients-split").textContent = "(" + s.clients.websocket + " ws, " + s.clients.polling + " polling)";
    $("panel-in-rate").textContent = fmtRate(s.rate.packetsIn);
    $("panel-out-rate").textContent = fmtRate(s.rate.packetsOut);
    $("panel-bytes-rate").textContent = fmtBytes(s.rate.bytesIn) + " / " + fmtBytes(s.rate.bytesOut);
    $("panel-in-total").textContent = String(s.total.packetsIn);
    $("panel-broadcasts").textContent = String(s.total.broadcasts);
    const tb = $("panel-nsps");
    tb.textContent = "";
    for (const n of s.namespaces) {
      const tr = document.createElement("tr");
      const rooms = n.top.map((r) => r.room + " (" + r.size + ")").join(", ");
      for (const [text, cls] of [[n.name, ""], [String(n.sockets), ""], [String(n.rooms), ""], [rooms || "\u2013", "rooms"]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
      }
      tr.dataset.nsp = n.name;
      tb.append(tr);
    }
    $("panel-updated").textContent = "updated " + new Date(s.at).toLocaleTimeString();
  }

  function startPanel() {
    if (typeof io !== "function") return;
    const panel = io("/", { forceNew: true });
    panel.on("connect", async () => {
      try {
        const res = await fetch("/demo/join", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ nsp: "/", socket: panel.id, room: "demo:panel" }),
        });
        if (!res.ok) $("panel-updated").textContent = demoOff(res) ? "off: start sio-front with --demo (make run does)" : "join failed: " + res.status;
      } catch (e) { $("panel-updated").textContent = "join failed"; }
    });
    panel.on("demo:stats", showPanel);
    panel.on("disconnect", () => { $("panel-updated").textContent = "disconnected from the server"; });
  }

  $("connect").onclick = connect;
  $("disconnect").onclick = () => { if (socket) socket.disconnect(); };
  $("join").onclick = () => roomAction("join");
  $("leave").onclick = () => roomAction("leave");
  $("room").onchange = refreshMembers;
  $("clear").onclick = () => {
    $("log").innerHTML = '<li class="empty">Events sent to this socket show up here.</li>';
  };
  if (typeof io !== "function") {
    setStatus("socket.io.js did not load", false);
    $("connect").disabled = true;
  }
  refreshMembers();
  startPanel();
})();
