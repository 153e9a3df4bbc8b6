// `auth` commands (the io.use middleware): exit 0 accepts and a JSON object
// on stdout becomes the socket's data (seen by `sioctl sockets --json` and by
// later handlers); any other exit refuses with {message, data} as the
// client's connect_error; a handler that hangs or crashes refuses with
// "auth handler failed".
import {
  assert, test, before, after, startStack, connect, connected, eventually, sleep,
} from "./lib.mjs";
import { app, next, refused, logMatch } from "./handlers_util.mjs";

const A = app(`
[namespace /]
auth = sh auth.sh
connection = sh conn.sh
event.whoami = sh whoami.sh

[namespace /slow]
auth = sleep 30
timeout = 2000

[namespace /crash]
auth = kill -SEGV $$

[namespace /text]
auth = echo "go away"; echo "second line"; exit 3

[namespace /empty]
auth = exit 1

[namespace /garbage]
auth = printf '\\001\\002{not json'; exit 2
`, {
  "auth.sh": `#!/bin/sh
ev=$(cat)
token=$(printf '%s' "$ev" | sh @JGET@ -r auth.token) || token=
case $token in
good) printf '{"user":"alice","level":3}\\n'; exit 0 ;;
noisy) echo "accepted, but this is not JSON"; exit 0 ;;
*) printf '{"message":"forbidden","data":{"code":42,"token":%s}}\\n' "$(printf '%s' "$ev" | sh @JGET@ auth.token || echo null)"; exit 1 ;;
esac
`,
  // the connection record carries the data the auth command returned
  "conn.sh": `#!/bin/sh
exec sioctl emit welcome "$(sh @JGET@ data)"
`,
  // an event record is given the socket's data and handshake too
  "whoami.sh": `#!/bin/sh
ev=$(cat)
exec sioctl ack "$(printf '%s' "$ev" | sh @JGET@ data)" "$(printf '%s' "$ev" | sh @JGET@ -r handshake.query.name)"
`,
});

let stack;
before(async () => { stack = await startStack("embedded", { config: A.config }); });
after(async () => { if (stack) await stack.stop(); });

for (const transport of ["websocket", "polling"]) {
  const opts = (o = {}) => ({ transports: [transport], ...o });

  test(`${transport}: accepted; stdout JSON becomes the socket's data`, async () => {
    const s = connect(stack.url, "/", opts({ auth: { token: "good" }, query: { name: "Alice A." } }));
    const welcome = next(s, "welcome", 8000);
    await connected(s);
    assert.deepEqual(await welcome, [{ user: "alice", level: 3 }]);
    const r = await stack.sioctl("sockets", "--json");
    assert.equal(r.code, 0, r.stderr);
    const me = JSON.parse(r.stdout).find((x) => x.id === s.id);
    assert.ok(me, `socket ${s.id} not listed`);
    assert.deepEqual(me.data, { user: "alice", level: 3 });
    assert.deepEqual(me.auth, { token: "good" });
    const who = await new Promise((resolve) => s.emit("whoami", (...a) => resolve(a)));
    assert.deepEqual(who, [{ user: "alice", level: 3 }, "Alice A."]);
  });

  test(`${transport}: exit 0 with non-JSON output accepts without data`, async () => {
    const s = await connected(connect(stack.url, "/", opts({ auth: { token: "noisy" } })));
    const r = JSON.parse((await stack.sioctl("sockets", "--json")).stdout).find((x) => x.id === s.id);
    assert.ok(r);
    assert.equal(r.data, null);
  });

  test(`${transport}: refused with the message and data the handler printed`, async () => {
    const e = await refused(connect(stack.url, "/", opts({ auth: { token: "bad" } })));
    assert.equal(e.message, "forbidden");
    assert.deepEqual(e.data, { code: 42, token: "bad" });
    const e2 = await refused(connect(stack.url, "/", opts()));
    assert.equal(e2.message, "forbidden");
    assert.deepEqual(e2.data, { code: 42, token: null });
  });

  test(`${transport}: refused with the first line of plain output, or "unauthorized"`, async () => {
    const e = await refused(connect(stack.url, "/text", opts()));
    assert.equal(e.message, "go away");
    assert.equal(e.data, undefined);
    const e2 = await refused(connect(stack.url, "/empty", opts()));
    assert.equal(e2.message, "unauthorized");
    const e3 = await refused(connect(stack.url, "/garbage", opts()));
    assert.equal(e3.message, "\u0001\u0002{not json");
  });

  test(`${transport}: a hanging auth handler is killed at its timeout; others are not delayed`, async () => {
    const SLOW_TIMEOUT = 2000; // [namespace /slow] timeout
    const start = Date.now();
    let slowAt = 0;
    const slow = refused(connect(stack.url, "/slow", opts()), SLOW_TIMEOUT + 8000)
      .then((e) => { slowAt = Date.now(); return e; });
    await sleep(50);
    await connected(connect(stack.url, "/", opts({ auth: { token: "good" } })));
    // not delayed: accepted while the hanging handler still runs
    assert.equal(slowAt, 0, "the connect to / was answered only after the hanging handler was killed");
    const e = await slow;
    assert.equal(e.message, "auth handler failed");
    const took = slowAt - start;
    assert.ok(took >= SLOW_TIMEOUT - 20, `refused after ${took} ms (timeout ${SLOW_TIMEOUT})`);
    await logMatch(stack, new RegExp(`/slow auth \\(socket [^)]+\\): killed after ${SLOW_TIMEOUT} ms \\(timeout\\)`));
  });

  test(`${transport}: a crashing auth handler refuses with "auth handler failed"`, async () => {
    const e = await refused(connect(stack.url, "/crash", opts()));
    assert.equal(e.message, "auth handler failed");
    await logMatch(stack, /\/crash auth \(socket [^)]+\): killed by signal 11/);
  });
}

test("refused sockets are not listed; accepted ones are", async () => {
  await refused(connect(stack.url, "/", { auth: { token: "nope" } }));
  const r = JSON.parse((await stack.sioctl("sockets", "--json")).stdout);
  for (const s of r) assert.notDeepEqual(s.auth, { token: "nope" });
});
