// Per-socket limits (README "Per-socket limits"): max_rooms_per_socket (a
// join past it is refused, all or nothing, sioctl exit 1), max_queue_packets
// (a WebSocket client that stops reading is dropped once that many messages
// wait for it, logged), max_handler_queue (records past it for one socket
// are dropped and logged; the socket's later events are handled again).
import { writeFileSync, readFileSync, existsSync } from "node:fs";
import {
  assert, test, before, after, startStack, connect, connected, eventually, closeClients,
} from "./lib.mjs";
import { app, logMatch, WebSocket } from "./handlers_util.mjs";

const MAX_ROOMS = 3, MAX_PACKETS = 20, MAX_HANDLER = 4;
const A = app(`
max_rooms_per_socket = ${MAX_ROOMS}
max_queue_packets = ${MAX_PACKETS}
max_queue_bytes = 268435456
max_handler_queue = ${MAX_HANDLER}

[namespace /]
event.block = echo "$SIO_EVENT" >> seen.txt; while [ ! -f go ]; do sleep 0.05; done
event.after = sioctl ack ok
timeout = 3600000
`);

let stack;
before(async () => { stack = await startStack("embedded", { config: A.config }); });
after(async () => { closeClients(); if (stack) await stack.stop(); });

const sockets = async () => JSON.parse((await stack.sioctl("--json", "sockets")).stdout);
const roomsOf = async (id) => (await sockets()).find((s) => s.id === id).rooms.sort();

test("max_rooms_per_socket: a join past it is refused (exit 1), all or nothing; joining a room it is in is fine", async () => {
  const a = await connected(connect(stack.url, "/", { transports: ["websocket"] }));
  const b = await connected(connect(stack.url, "/", { transports: ["websocket"] }));
  let r = await stack.sioctl("join", "--to", a.id, "r1", "r2");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await roomsOf(a.id), [a.id, "r1", "r2"].sort());
  r = await stack.sioctl("join", "--to", a.id, "r3");
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`socket ${a.id} is in 3 room\\(s\\): joining 1 more would pass max_rooms_per_socket \\(${MAX_ROOMS}\\); nothing was joined`));
  assert.deepEqual(await roomsOf(a.id), [a.id, "r1", "r2"].sort());
  r = await stack.sioctl("join", "--to", a.id, "r1");
  assert.equal(r.code, 0, "already in r1: no new room");
  // socketsJoin on the namespace: b could join, a cannot: nobody joins
  r = await stack.sioctl("join", "r9");
  assert.equal(r.code, 1);
  assert.deepEqual(await roomsOf(b.id), [b.id]);
  r = await stack.sioctl("leave", "--to", a.id, "r2");
  assert.equal(r.code, 0);
  r = await stack.sioctl("join", "r9");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await roomsOf(a.id), [a.id, "r1", "r9"].sort());
  assert.deepEqual(await roomsOf(b.id), [b.id, "r9"].sort());
}, { timeout: 60000 });

test("max_queue_packets: a WebSocket client that stops reading is dropped at that many queued messages", async () => {
  const ws = new WebSocket(`${stack.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
  const id = await new Promise((resolve, reject) => {
    ws.on("message", (d) => {
      const t = d.toString();
      if (t[0] === "0") ws.send("40");
      else if (t.startsWith("40")) resolve(JSON.parse(t.slice(2)).sid);
    });
    ws.on("error", reject);
  });
  ws._socket.pause(); // reads nothing more: the kernel's buffers fill, then the front's queue
  // each emit: 10 binary attachments, 11 WebSocket messages of ~90 KB
  const bin = JSON.stringify({ $binary: Buffer.alloc(90000, 7).toString("base64") });
  const args = Array(10).fill(bin);
  const dropped = /session \S+ dropped: [^\n]*in (\d+) messages; limits max_queue_bytes 268435456, max_queue_packets 20\)/;
  for (let i = 0; i < 1000 && !dropped.test(stack.proc.output); i++) {
    const r = await stack.sioctl("emit", "--to", id, "big", ...args);
    assert.equal(r.code, 0, r.stderr);
  }
  const m = await logMatch(stack, dropped, 10000);
  assert.equal(Number(m[1]), MAX_PACKETS);
  await eventually(async () => assert.ok(!(await sockets()).some((s) => s.id === id), "its socket is gone"));
  ws.terminate();
}, { timeout: 60000 });

test("max_handler_queue: records past it for one socket are dropped and logged; later events are handled", async () => {
  const s = await connected(connect(stack.url, "/", { transports: ["websocket"] }));
  for (let i = 0; i < 20; i++) s.emit("block", i);
  await logMatch(stack, new RegExp(`more than ${MAX_HANDLER} records pending for socket ${s.id}: dropping`), 15000);
  writeFileSync(A.file("go"), "");
  // the socket's lane drains, then takes events again
  await eventually(async () => assert.equal(await s.timeout(2000).emitWithAck("after"), "ok"), 30000, 10);
  const seen = existsSync(A.file("seen.txt")) ? readFileSync(A.file("seen.txt"), "utf8").trim().split("\n") : [];
  assert.ok(seen.length >= 1 && seen.length <= MAX_HANDLER + 1, `handled ${seen.length} of 20`);
});
