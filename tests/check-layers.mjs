// check-layers: the include rules of the C code, checked on every `make test`.
//
//   node tests/check-layers.mjs      prints "layers: N passed, N failed"
//
// 1. shared/ is in layers, lowest first: base, proto, store and notify,
//    server, handlers.  A file includes project headers of its own layer or
//    lower ones only (by path: "base/buf.h").
// 2. Inside a layer that lists an order (server/, gateway/), a module
//    includes only modules before it: the order is the one its README or
//    header comment gives, repeated below.
// 3. No include circles anywhere: a module is a .c and its .h; module A
//    depends on B when A.c or A.h includes B.h.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const LAYERS = ['base', 'proto', ['store', 'notify'], 'server', ['cluster', 'handlers']];
const rank = {};
LAYERS.forEach((l, i) => [].concat(l).forEach((n) => (rank[n] = i)));
// Modules of a folder in the order they may include each other.
const ORDER = {
    'shared/server': ['server', 'http', 'access', 'rooms', 'reader', 'socketio', 'session', 'polling',
                      'websocket', 'actions', 'metrics'],
    'shared/cluster': ['rconn', 'wire', 'bridge', 'client'],
    gateway: ['front_lws', 'front_timer', 'front_conn', 'front_deliver', 'front_demo', 'front_guard', 'front_ws',
              'front_http', 'front', 'fcgi'],
};

function files(dir) {
    const out = [];
    for (const e of readdirSync(dir)) {
        const p = join(dir, e);
        if (statSync(p).isDirectory()) out.push(...files(p));
        else if (/\.[ch]$/.test(e)) out.push(p);
    }
    return out;
}

const all = ['shared', 'gateway', 'stated', 'sioctl'].flatMap((d) => files(join(root, d)));
const mod = (p) => relative(root, p).replace(/\.[ch]$/, '');
const includes = (p) =>
    [...readFileSync(p, 'utf8').matchAll(/^#include "([^"]+)"/gm)].map((m) => m[1]);
// Where an include resolves: shared/<path>, else next to the file.
function resolveInclude(from, inc) {
    for (const cand of [join(root, 'shared', inc), join(dirname(from), inc)])
        if (all.includes(cand)) return mod(cand);
    return null;
}

// One test per module: it passes when all of its includes do.
const bad = new Set();
let failed = 0;
const fail = (msg, m) => { failed++; if (m) bad.add(m); console.log(`FAIL ${msg}`); };
const deps = new Map();

for (const f of all) {
    const m = mod(f);
    const folder = dirname(m);
    if (!deps.has(m)) deps.set(m, new Set());
    for (const inc of includes(f)) {
        const target = resolveInclude(f, inc);
        if (!target) continue; // a system or library header
        if (target !== m) deps.get(m).add(target);
        const [top, layer] = m.split('/');
        const [ttop, tlayer] = target.split('/');
        if (top === 'shared' && ttop === 'shared') {
            if (rank[tlayer] > rank[layer]) fail(`${relative(root, f)}: includes ${inc} (layer ${tlayer} is above ${layer})`, m);
        } else if (ttop !== 'shared' && top === 'shared') {
            fail(`${relative(root, f)}: includes ${inc}, outside shared/`, m);
        }
        const order = ORDER[folder];
        if (order && dirname(target) === folder && target !== m) {
            const a = order.indexOf(basename(m)), b = order.indexOf(basename(target));
            if (a < 0) fail(`${m}: not in the module order of ${folder} (tests/check-layers.mjs)`, m);
            else if (b > a) fail(`${relative(root, f)}: includes ${inc}, which comes after it in ${folder}`, m);
        }
    }
}

// Circles, by depth-first search.
const state = new Map();
function visit(m, path) {
    if (state.get(m) === 2) return;
    if (state.get(m) === 1) {
        fail(`include circle: ${[...path.slice(path.indexOf(m)), m].join(' -> ')}`);
        return;
    }
    state.set(m, 1);
    for (const d of deps.get(m) || []) visit(d, [...path, m]);
    state.set(m, 2);
}
for (const m of deps.keys()) visit(m, []);
const passed = [...deps.keys()].filter((m) => !bad.has(m)).length;
console.log(`layers: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
