#!/usr/bin/env node
// The Node reference for `make bench`: socket.io 4.8 with its defaults
// (WebSocket and long-polling), serving the bench protocol on 127.0.0.1:PORT.
//
//   node server.js PORT [--workers N] [--redis URL]
//
//   connection                    join room "bench"
//   "echo" (...args, ack)         ack(...args)
//   "bench:start" {size,batch,rate,ms[,stamp]}
//                                 broadcast "bench:msg" {seq,pad} to room
//                                 "bench": `batch` per event-loop turn (rate 0)
//                                 or `rate` per second, for `ms` ms or until
//                                 "bench:stop"; then "bench:done" {sent} to
//                                 the sender.  stamp: each message also
//                                 carries t = wall clock in us at the emit.
//   GET /bench/emit?t=T           io.emit("bench:emit", T): what `sioctl emit`
//                                 is for our server (the emit-latency scenario
//                                 runs `curl` on it)
//
// --workers N: N processes behind node's cluster module (round-robin accept
// in the primary), for connection counts above one process's fd limit.  Only
// the connection scenario uses it: rooms are per worker.
//
// --redis URL: the server joins a Redis cluster with @socket.io/redis-adapter
// (the cluster scenario runs two of them).
'use strict';

const cluster = require('node:cluster');
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const { Server } = require('socket.io');

const args = process.argv.slice(2);
let port = 3000;
let workers = 0;
let redisUrl = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--workers') workers = parseInt(args[++i], 10) || 0;
  else if (args[i] === '--redis') redisUrl = args[++i];
  else port = parseInt(args[i], 10);
}
if (!(port > 0 && port < 65536)) {
  console.error('usage: node server.js PORT [--workers N] [--redis URL]');
  process.exit(2);
}

const wallUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

async function serve() {
  const httpServer = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/bench/emit') {
      io.emit('bench:emit', Number(u.searchParams.get('t')) || 0);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  const io = new Server(httpServer); // library defaults
  if (redisUrl) {
    const { createAdapter } = require('@socket.io/redis-adapter');
    const { createClient } = require('redis');
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }

  let current = null; // the broadcast in progress

  function start(sender, o) {
    if (current) current.stop = true;
    const run = { stop: false, sent: 0 };
    current = run;
    const num = (v, d, lo, hi) => (typeof v === 'number' && isFinite(v) ? Math.min(Math.max(v, lo), hi) : d);
    const size = Math.floor(num(o.size, 32, 0, 1 << 19));
    const batch = Math.floor(num(o.batch, 1, 1, 100000));
    const rate = num(o.rate, 0, 0, 1e7);
    const ms = num(o.ms, 10000, 1, 3600000);
    const stamp = !!o.stamp;
    const pad = 'x'.repeat(size);
    const t0 = Date.now();
    const one = () => {
      const m = stamp ? { seq: run.sent, t: wallUs(), pad } : { seq: run.sent, pad };
      run.sent++;
      io.to('bench').emit('bench:msg', m);
    };
    const turn = () => {
      const now = Date.now();
      if (run.stop || now - t0 >= ms) {
        if (current === run) current = null;
        sender.emit('bench:done', { sent: run.sent });
        return;
      }
      if (rate === 0) {
        for (let i = 0; i < batch; i++) one();
        setImmediate(turn);
        return;
      }
      let due = Math.floor(((now - t0) * rate) / 1000) + 1 - run.sent;
      due = Math.min(due, Math.ceil(rate / 100) + 1); // at most 10 ms worth at once
      for (let i = 0; i < due; i++) one();
      const next = t0 + (run.sent * 1000) / rate;
      setTimeout(turn, Math.max(0, next - Date.now()));
    };
    setImmediate(turn);
  }

  io.on('connection', (socket) => {
    socket.join('bench');
    socket.on('echo', (...a) => {
      const ack = a.pop();
      if (typeof ack === 'function') ack(...a);
    });
    socket.on('bench:start', (o) => start(socket, o && typeof o === 'object' ? o : {}));
    socket.on('bench:stop', () => {
      if (current) current.stop = true;
    });
  });

  httpServer.listen(port, '127.0.0.1', () => {
    const v = require('socket.io/package.json').version;
    console.log(`node ${process.version} socket.io ${v} on 127.0.0.1:${port} pid ${process.pid}`);
  });
}

if (workers > 1 && cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_RR;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (w, code, sig) => {
    console.error(`worker ${w.process.pid} exited (${sig || code})`);
    process.exit(1);
  });
  for (const s of ['SIGINT', 'SIGTERM']) {
    process.on(s, () => {
      for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
      process.exit(0);
    });
  }
} else {
  serve().catch((e) => {
    console.error(e);
    process.exit(1);
  });
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(0));
}
