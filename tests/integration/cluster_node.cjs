// A Node socket.io 4.8 server in a Redis cluster (@socket.io/redis-adapter
// 8.x), the peer our nodes must interoperate with (tests/integration/
// cluster.test.mjs).  Usage: node cluster_node.cjs PORT REDIS_URL
//
// Beside Socket.IO (namespaces / and /custom) it answers POST /ctl with a
// JSON body {op, ...} so the test can make it act as an application would:
//   fetch {nsp, rooms}                 -> io.of(nsp).in(rooms).fetchSockets()
//   emit {nsp, rooms, except, event, args}
//   emitWithAck {nsp, rooms, event, args, timeout} -> the acks (or the error)
//   serverSideEmit {nsp, event, args, ack} -> with ack: the answers (the
//                                      adapter waits requestsTimeout, 5 s)
//   allRooms {nsp}
//   serverSideEvents                   -> what other servers serverSideEmit'ted
// Every socket answers "join" (room) by joining it, and "echo" with an ack.
// Prints "node ready on PORT" when listening.
const http = require("node:http");
const path = require("node:path");
const req = require("node:module").createRequire(path.join(__dirname, "..", "package.json"));
const { Server } = req("socket.io");
const { createAdapter } = req("@socket.io/redis-adapter");
const { createClient } = req("redis");

const [port, redisUrl] = process.argv.slice(2);
const serverSide = [];

async function control(io, body) {
  const nsp = io.of(body.nsp || "/");
  const target = (op) => {
    let t = op;
    for (const r of body.rooms || []) t = t.in(r);
    for (const r of body.except || []) t = t.except(r);
    return t;
  };
  switch (body.op) {
    case "fetch":
      return (await target(nsp).fetchSockets()).map((s) => ({ id: s.id, rooms: [...s.rooms], handshake: s.handshake, data: s.data }));
    case "emit":
      target(nsp).emit(body.event, ...(body.args || []).map(revive));
      return { ok: true };
    case "emitWithAck":
      try {
        return { acks: await target(nsp).timeout(body.timeout || 2000).emitWithAck(body.event, ...(body.args || [])) };
      } catch (e) {
        return { error: e.message };
      }
    case "serverSideEmit":
      if (!body.ack) {
        nsp.serverSideEmit(body.event, ...(body.args || []));
        return { ok: true };
      }
      try {
        return { answers: await nsp.serverSideEmitWithAck(body.event, ...(body.args || [])) };
      } catch (e) {
        return { error: e.message };
      }
    case "allRooms":
      return [...(await nsp.adapter.allRooms())];
    case "serverSideEvents":
      return serverSide;
    case "count":
      return await nsp.adapter.serverCount();
    default:
      return { error: "unknown op" };
  }
}

// {"$buffer":"<base64>"} in a control body is sent as a Buffer.
function revive(v) {
  return v && typeof v === "object" && typeof v.$buffer === "string" ? Buffer.from(v.$buffer, "base64") : v;
}

(async () => {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  pub.on("error", () => {});
  sub.on("error", () => {});
  await Promise.all([pub.connect(), sub.connect()]);
  let io;
  const server = http.createServer(async (rq, rs) => {
    if (rq.url !== "/ctl") return;
    let body = "";
    for await (const c of rq) body += c;
    const out = await control(io, JSON.parse(body));
    rs.writeHead(200, { "content-type": "application/json" });
    rs.end(JSON.stringify(out));
  });
  io = new Server(server, { adapter: createAdapter(pub, sub), transports: ["polling", "websocket"] });
  for (const name of ["/", "/custom"]) {
    const nsp = io.of(name);
    nsp.on("connection", (socket) => {
      socket.data.origin = "node";
      socket.on("join", (room, cb) => { socket.join(room); if (typeof cb === "function") cb("joined"); });
      socket.on("echo", (x, cb) => { if (typeof cb === "function") cb(x); });
    });
    nsp.on("server-ping", (...args) => {
      const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
      serverSide.push({ nsp: name, args });
      if (cb) cb({ pong: "node", got: args });
    });
  }
  server.listen(Number(port), "127.0.0.1", () => console.log(`node ready on ${port}`));
})().catch((e) => { console.error(e); process.exit(1); });
