#!/usr/bin/env node
// Enqueues one bg job from Node with ioredis (npm ci here installs it from package-lock.json).
//
//     node produce.js CLASS [ARG] [-q QUEUE] [--in SECONDS] [--retries N]
//
// Prints the job's UUID. ARG (default {}) is stored as given (Node reads its command line as
// UTF-8). With --in the job is delayed: it goes into the scheduled set and a bg-watcher moves it
// to the ready list when due. The Redis server is $BG_REDIS_URL, else $REDIS_URL, else
// redis://127.0.0.1:6379/0; the namespace is $BG_NAMESPACE, else bg. Bad input exits 2, a Redis
// error exits 1. The keys and fields are those of docs/schema.md.
"use strict";

const { randomUUID } = require("node:crypto");
const { parseArgs } = require("node:util");
const Redis = require("ioredis");

// bg's rule for queue names (1 to 128) and namespaces (1 to 64): bg's programs refuse others.
const QUEUE = /^[A-Za-z0-9_.-]{1,128}$/;
const NAMESPACE = /^[A-Za-z0-9_.-]{1,64}$/;
const SECONDS = /^[0-9]+(\.[0-9]+)?$/;
const COUNT = /^[0-9]+$/;
const MAX_MS = 2 ** 53; // what bg accepts, so the due time stays an exact integer everywhere
const USAGE = "usage: produce.js CLASS [ARG] [-q QUEUE] [--in SECONDS] [--retries N]";

function usageError(message) {
  console.error(`produce.js: ${message}\n${USAGE}`);
  process.exit(2);
}

// An environment variable, where an empty one counts as unset, as bg's programs do.
function env(name, fallback) {
  return process.env[name] || fallback;
}

function parse(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        queue: { type: "string", short: "q", default: "default" },
        in: { type: "string" },
        retries: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    usageError(e.message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (positionals.length < 1) usageError("CLASS is missing");
  if (positionals.length > 2) usageError("too many arguments");
  const job = { cls: positionals[0], arg: positionals[1] ?? "{}", queue: values.queue };

  job.ns = env("BG_NAMESPACE", "bg");
  if (!NAMESPACE.test(job.ns)) {
    usageError(`invalid namespace '${job.ns}' in $BG_NAMESPACE: 1 to 64 of A-Z a-z 0-9 _ . -`);
  }
  if (!QUEUE.test(job.queue)) {
    usageError(`invalid queue '${job.queue}': 1 to 128 of A-Z a-z 0-9 _ . -`);
  }
  if (values.in !== undefined) {
    const ms = SECONDS.test(values.in) ? Number(values.in) * 1000 : -1;
    if (!(ms >= 0 && ms <= MAX_MS)) {
      usageError(`invalid --in '${values.in}': a number of seconds such as 30 or 1.5`);
    }
    job.delayMs = Math.round(ms);
  }
  if (values.retries !== undefined) {
    if (!COUNT.test(values.retries) || Number(values.retries) > 2 ** 31 - 1) {
      usageError(`invalid --retries '${values.retries}': a whole number from 0 to 2147483647`);
    }
    job.retries = Number(values.retries);
  }
  return job;
}

// Writes the job and makes it visible in one MULTI/EXEC, so a producer that dies halfway leaves
// nothing behind; resolves to the job's UUID.
async function enqueue(redis, { ns, queue, cls, arg, delayMs, retries }) {
  const id = randomUUID(); // lowercase, random (version 4): bg drops any other kind
  const [seconds, micros] = await redis.time(); // the server's clock, the one bg compares against
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  const fields = { que: queue, cls, arg, qat: now };
  if (retries !== undefined) fields.rty = retries;
  const tx = redis.multi();
  if (delayMs === undefined) {
    tx.hset(`${ns}:jobs:${id}`, fields);
    tx.rpush(`${ns}:ready:${queue}`, id);
  } else {
    fields.pat = now + delayMs;
    tx.hset(`${ns}:jobs:${id}`, fields);
    tx.zadd(`${ns}:scheduled:${queue}`, fields.pat, id);
  }
  tx.sadd(`${ns}:queues`, queue); // so bg-cli status and the watchers know it at once
  // exec() resolves to [error, result] pairs: a command that failed inside EXEC is an error too.
  for (const [err] of await tx.exec()) if (err) throw err;
  return id;
}

async function main() {
  const job = parse(process.argv.slice(2));
  const url = env("BG_REDIS_URL", env("REDIS_URL", "redis://127.0.0.1:6379/0"));
  if (!/^(rediss?|unix):\/\//.test(url)) {
    usageError("invalid Redis URL: not redis://, rediss:// or unix://");
  }
  let redis;
  try {
    // ioredis takes a Unix socket as a path: unix:///run/redis.sock?db=1 is /run/redis.sock?db=1.
    redis = new Redis(url.replace(/^unix:\/\//, ""), {
      lazyConnect: true,
      retryStrategy: () => null, // a command-line tool fails at once rather than retry forever
      maxRetriesPerRequest: 0,
    });
  } catch (e) {
    usageError(`invalid Redis URL: ${e.message}`);
  }
  // ioredis reports why a connection failed as an event; the command then only says "Connection
  // is closed".
  let lastError;
  redis.on("error", (e) => (lastError = e));
  try {
    await redis.connect();
    console.log(await enqueue(redis, job));
    await redis.quit();
  } catch (e) {
    const why = e instanceof Redis.ReplyError ? e : (lastError ?? e);
    console.error(`produce.js: ${why.message}`);
    process.exit(1); // at once: a closed connection would hold ioredis's disconnect timer open
  }
}

main();
