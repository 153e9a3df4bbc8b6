// Acknowledgements both ways: a client's emit with a callback answered by a
// handler's `sioctl ack`; `sioctl emit --ack` waiting for clients' answers
// (from outside and from inside a handler); a client that never answers.
import {
  assert, test, before, after, startStack, connect, connected, whyGone, record, eventually,
} from "./lib.mjs";
import { app, next, logMatch } from "./handlers_util.mjs";

const A = app(`
[namespace /]
# answer with a fixed word and the first argument
event.question = sh question.sh
# an ack for an event that did not ask for one: sioctl refuses (logged)
event.no-callback = sioctl ack nothing
# ask the client something from inside a handler, then tell it the answer
event.ask-me = sh ask.sh
[namespace /other]
event.question = sioctl ack other-namespace
`, {
  "question.sh": `#!/bin/sh
exec sioctl ack answer "$(sh @JGET@ args.0)"
`,
  "ask.sh": `#!/bin/sh
a=$(sioctl --json emit --ack --timeout 2000 confirm '{"really":true}')
echo "ack exit $?" >&2
exec sioctl emit confirmed "$a"
`,
});

let stack;
before(async () => { stack = await startStack("embedded", { config: A.config }); });
after(async () => { if (stack) await stack.stop(); });

for (const transport of ["websocket", "polling"]) {
  const opts = { transports: [transport] };

  test(`${transport}: client emit with a callback is answered by the handler's sioctl ack`, async () => {
    const s = await connected(connect(stack.url, "/", opts));
    const answers = await Promise.all([1, 2, 3].map((n) =>
      new Promise((resolve) => s.emit("question", { n, bin: Buffer.from([n]) }, (...a) => resolve(a)))));
    for (const [i, a] of answers.entries()) {
      assert.equal(a[0], "answer");
      assert.equal(a[1].n, i + 1);
      assert.deepEqual([...a[1].bin], [i + 1]);
    }
    const o = await connected(connect(stack.url, "/other", opts));
    const r = await new Promise((resolve) => o.emit("question", 1, (...a) => resolve(a)));
    assert.deepEqual(r, ["other-namespace"]);
  });

  test(`${transport}: sioctl ack without an ack id is refused and logged`, async () => {
    const s = await connected(connect(stack.url, "/", opts));
    s.emit("no-callback", 1);
    await logMatch(stack, new RegExp(`event\\.no-callback \\(socket ${s.id}\\): exit status 2`));
  });

  test(`${transport}: sioctl emit --ack prints every client's answer`, async () => {
    const [a, b] = await Promise.all([0, 1].map(() => connected(connect(stack.url, "/", opts))));
    a.on("q", (x, cb) => cb(x + 1, "from a"));
    b.on("q", (x, cb) => cb(x + 2, { b: true }));
    const r = await stack.sioctl("emit", "--ack", "--timeout", "3000", "--to", a.id, "--to", b.id, "q", "10");
    assert.equal(r.code, 0, r.stderr);
    const lines = Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split("\t")));
    assert.ok(lines[a.id] && lines[b.id], `answers: ${JSON.stringify(r.stdout)}; a ${whyGone(a)}, b ${whyGone(b)}`);
    assert.deepEqual(JSON.parse(lines[a.id]), [11, "from a"]);
    assert.deepEqual(JSON.parse(lines[b.id]), [12, { b: true }]);
    const j = await stack.sioctl("--json", "emit", "--ack", "--to", a.id, "q", "1");
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), { [a.id]: [2, "from a"] });
  });

  test(`${transport}: sioctl emit --ack times out when a client does not answer`, async () => {
    const [a, b] = await Promise.all([0, 1].map(() => connected(connect(stack.url, "/", opts))));
    a.on("q", (x, cb) => cb("yes"));
    b.on("q", () => {}); // never answers
    const t0 = Date.now();
    const r = await stack.sioctl("emit", "--ack", "--timeout", "1000", "--to", a.id, "--to", b.id, "q", "1");
    const took = Date.now() - t0;
    assert.equal(r.code, 4, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, /timeout/);
    assert.match(r.stdout, new RegExp(`^${a.id}\t\\["yes"\\]`));
    assert.ok(took >= 900 && took < 5000, `took ${took} ms`);
  });

  test(`${transport}: a handler asks its own client with emit --ack and uses the answer`, async () => {
    const s = await connected(connect(stack.url, "/", opts));
    s.on("confirm", (arg, cb) => cb({ ok: arg.really }));
    const got = next(s, "confirmed", 8000);
    s.emit("ask-me");
    const [answers] = await got;
    assert.deepEqual(answers, { [s.id]: [{ ok: true }] });
  });
}
