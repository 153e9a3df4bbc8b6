// The `transports` option: a polling-only stack advertises no upgrade and
// refuses the websocket transport like Node (code 0), while clients connect.
import { assert, test, before, after, startStack, writeConfig, http, connect, connected } from "./lib.mjs";

let stack;
before(async () => { stack = await startStack("lighttpd", { config: writeConfig("transports = polling\n") }); });
after(async () => { if (stack) await stack.stop(); });

test("transports = polling: no upgrade offered, websocket refused, clients still connect", async () => {
  const h = await http("GET", `${stack.url}/socket.io/?EIO=4&transport=polling`);
  assert.equal(h.status, 200);
  assert.deepEqual(JSON.parse(h.body.slice(1)).upgrades, []);
  const w = await http("GET", `${stack.url}/socket.io/?EIO=4&transport=websocket`);
  assert.equal(w.status, 400);
  assert.deepEqual(JSON.parse(w.body), { code: 0, message: "Transport unknown" });
  const s = await connected(connect(stack.url)); // default client: polling, then tries to upgrade
  assert.equal(s.io.engine.transport.name, "polling");
});
