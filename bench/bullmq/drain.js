#!/usr/bin/node
// BullMQ's side of bench/run: the same no-op jobs as bg's bg.noop, on the same redis-server,
// timed the same way (the clock runs until the completed count polled every 10 ms reaches N).
// One JSON line on standard output; errors on standard error and exit 1.
//
//   node drain.js add   --port P -n N [--queues Q]
//       adds N no-op jobs with Queue.addBulk, 1,000 a call, spread evenly over Q queues
//   node drain.js drain --port P -n N [-c C] [--queues Q] [--procs K]
//       drains the N jobs already waiting with K worker processes, each running one Worker
//       per queue at concurrency C/Q (at least 1), so that C is the concurrency of a process
//       whatever the number of queues, as with bg-worker -c C -q q0,q1,...
//
// Queues are "bench", or "bench0".."bench<Q-1>"; the key prefix is BullMQ's default "bull".
// Jobs keep BullMQ's defaults (completed jobs are kept, as bg keeps completed attempts), so
// the Redis work a job costs is that of an ordinary BullMQ deployment.
'use strict';

const { fork } = require('child_process');
const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');

const POLL_MS = 10;
const STALL_MS = 20000;
const CHUNK = 1000;

function fail(msg) {
  process.stderr.write(`drain.js: ${msg}\n`);
  process.exit(1);
}

function parse(argv) {
  const o = { mode: argv[0], port: 0, n: 0, c: 10, queues: 1, procs: 1 };
  for (let i = 1; i < argv.length; i += 2) {
    const k = argv[i], v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 1) fail(`bad value for ${k}: ${argv[i + 1]}`);
    if (k === '--port') o.port = v;
    else if (k === '-n') o.n = v;
    else if (k === '-c') o.c = v;
    else if (k === '--queues') o.queues = v;
    else if (k === '--procs') o.procs = v;
    else fail(`unknown option ${k}`);
  }
  if (!['add', 'drain', 'work'].includes(o.mode) || !o.port) {
    fail('usage: drain.js add|drain --port P -n N [-c C] [--queues Q] [--procs K]');
  }
  return o;
}

function queueNames(q) {
  if (q === 1) return ['bench'];
  return Array.from({ length: q }, (_, i) => `bench${i}`);
}

function connection(o) {
  // maxRetriesPerRequest null is what BullMQ asks of a Worker's connection.
  return { host: '127.0.0.1', port: o.port, maxRetriesPerRequest: null };
}

async function add(o) {
  const names = queueNames(o.queues);
  const queues = names.map((name) => new Queue(name, { connection: connection(o) }));
  await Promise.all(queues.map((q) => q.waitUntilReady()));
  const t0 = process.hrtime.bigint();
  for (let done = 0, i = 0; done < o.n; i++) {
    const k = Math.min(CHUNK, o.n - done);
    const jobs = Array.from({ length: k }, () => ({ name: 'noop', data: {} }));
    await queues[i % queues.length].addBulk(jobs);
    done += k;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await Promise.all(queues.map((q) => q.close()));
  return { mode: 'add', jobs: o.n, seconds: secs, jobs_per_s: o.n / secs };
}

// A worker process: its Workers connect, say "ready", run on "go", report and close on "stop".
async function work(o) {
  const names = queueNames(o.queues);
  const conc = Math.max(1, Math.round(o.c / names.length));
  const workers = names.map((name) => new Worker(name, async () => {}, {
    connection: connection(o), concurrency: conc, autorun: false,
  }));
  for (const w of workers) w.on('error', (e) => fail(`worker: ${e.message}`));
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  let cpu0;
  process.on('message', async (m) => {
    if (m === 'go') {
      cpu0 = process.cpuUsage();
      for (const w of workers) w.run().catch((e) => fail(`worker: ${e.message}`));
    } else if (m === 'stop') {
      const cpu = process.cpuUsage(cpu0);
      const rss = process.memoryUsage().rss;
      await Promise.all(workers.map((w) => w.close()));
      process.send({ rss_kb: Math.round(rss / 1024), cpu_s: (cpu.user + cpu.system) / 1e6 },
        () => process.exit(0));
    }
  });
  process.send('ready');
}

function completed(redis, names) {
  const p = redis.pipeline();
  for (const name of names) p.zcard(`bull:${name}:completed`);
  return p.exec().then((res) => res.reduce((s, [err, v]) => {
    if (err) throw err;
    return s + v;
  }, 0));
}

function once(child, pred) {
  return new Promise((resolve, reject) => {
    const onMsg = (m) => {
      if (pred(m)) {
        child.removeListener('message', onMsg);
        resolve(m);
      }
    };
    child.on('message', onMsg);
    child.once('exit', (code) => reject(new Error(`a worker process exited with status ${code}`)));
  });
}

async function drain(o) {
  const names = queueNames(o.queues);
  const redis = new IORedis(connection(o));
  const args = ['work', '--port', o.port, '-n', o.n, '-c', o.c, '--queues', o.queues].map(String);
  const children = Array.from({ length: o.procs }, () => fork(__filename, args));
  await Promise.all(children.map((c) => once(c, (m) => m === 'ready')));
  const base = await completed(redis, names);
  const t0 = process.hrtime.bigint();
  for (const c of children) c.send('go');
  let last = base, lastT = Date.now();
  for (;;) {
    const done = (await completed(redis, names)) - base;
    if (done >= o.n) break;
    if (done !== last) {
      last = done;
      lastT = Date.now();
    } else if (Date.now() - lastT > STALL_MS) {
      fail(`no job completed for ${STALL_MS / 1000} s (${done} of ${o.n})`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const reports = await Promise.all(children.map((c) => {
    const p = once(c, (m) => m && typeof m === 'object');
    c.send('stop');
    return p;
  }));
  await redis.quit();
  return {
    mode: 'drain', jobs: o.n, seconds: secs, jobs_per_s: o.n / secs, procs: o.procs,
    rss_kb: reports.map((r) => r.rss_kb), cpu_s: reports.map((r) => r.cpu_s),
  };
}

const o = parse(process.argv.slice(2));
const run = { add, drain, work }[o.mode];
run(o).then((res) => {
  if (res) process.stdout.write(`${JSON.stringify(res)}\n`);
}).catch((e) => fail(e.stack || String(e)));
