// The "Rooms and Namespaces" examples (scripts/examples/seed.conf, shell
// handlers using sioctl) end to end with the real socket.io-client: on the
// embedded front over WebSocket and polling, and behind lighttpd (polling).
import path from "node:path";
import {
  REPO, assert, test, before, after, startStack, connect, connected, record, eventually, sleep,
} from "./lib.mjs";
import { next } from "./handlers_util.mjs";

const CONFIG = path.join(REPO, "scripts/examples/seed.conf");
const stacks = {};

const variants = [
  ["embedded", "websocket"],
  ["embedded", "polling"],
  ["lighttpd", "polling"],
];

before(async () => {
  stacks.embedded = await startStack("embedded", { config: CONFIG });
  stacks.lighttpd = await startStack("lighttpd", { config: CONFIG });
});
after(async () => {
  for (const s of Object.values(stacks)) await s.stop();
});

async function inRoom(stack, id, room) {
  await eventually(async () => {
    const r = await stack.sioctl("sockets", "--json");
    assert.equal(r.code, 0, r.stderr);
    const me = JSON.parse(r.stdout).find((s) => s.id === id);
    assert.ok(me && me.rooms.includes(room), `${id} not in '${room}': ${r.stdout}`);
  });
}

for (const [kind, transport] of variants) {
  const opts = { transports: [transport] };

  test(`${kind}/${transport}: every socket of / joins 'some room' on connection`, async () => {
    const stack = stacks[kind];
    const a = await connected(connect(stack.url, "/", opts));
    const ev = record(a);
    await inRoom(stack, a.id, "some room");
    const r = await stack.sioctl("emit", "--to", "some room", "some event", '{"n":1}');
    assert.equal(r.code, 0, r.stderr);
    await eventually(() => assert.deepEqual(ev.filter((e) => e[0] === "some event"), [["some event", { n: 1 }]]));
  });

  test(`${kind}/${transport}: 'say to someone' reaches exactly the socket named, never the sender`, async () => {
    const stack = stacks[kind];
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => connected(connect(stack.url, "/", opts))));
    const evs = [a, b, c].map(record);
    await inRoom(stack, c.id, "some room");
    a.emit("say to someone", b.id, { text: "hi b", n: [1, 2] });
    a.emit("say to someone", a.id, "to myself");      // broadcast: excludes the sender
    a.emit("say to someone", "some room", -5);        // a room name: b and c, not a
    await eventually(() => assert.equal(evs[2].filter((e) => e[0] === "my message").length, 1));
    await eventually(() => assert.equal(evs[1].filter((e) => e[0] === "my message").length, 2));
    // Everything emitted later than the handlers' output arrives after it
    // (one log, one order), so a sentinel proves nothing more is coming.
    const r = await stack.sioctl("emit", "sentinel");
    assert.equal(r.code, 0, r.stderr);
    await eventually(() => evs.forEach((ev) => assert.ok(ev.some((e) => e[0] === "sentinel"))));
    const mine = (ev) => ev.filter((e) => e[0] === "my message");
    assert.deepEqual(mine(evs[0]), [], "the sender must get nothing");
    assert.deepEqual(mine(evs[1]), [["my message", { text: "hi b", n: [1, 2] }], ["my message", -5]]);
    assert.deepEqual(mine(evs[2]), [["my message", -5]]);
  });

  test(`${kind}/${transport}: /my-namespace announces each connection with 'hi'`, async () => {
    const stack = stacks[kind];
    const s = connect(stack.url, "/my-namespace", opts);
    const got = next(s, "hi", 8000);
    await connected(s);
    assert.deepEqual(await got, ["everyone!"]);
    const main = await connected(connect(stack.url, "/", opts));
    const ev = record(main);
    const second = next(s, "hi", 8000); // listen first: the 'hi' may beat connected(t)
    const t = connect(stack.url, "/my-namespace", opts);
    await connected(t);
    await second;
    await sleep(200);
    assert.deepEqual(ev.filter((e) => e[0] === "hi"), [], "a namespace emit must not reach /");
  });
}
