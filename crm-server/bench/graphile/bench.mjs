// graphile-worker on the same PostgreSQL as crm-server/benches/outbox.rs, run by that bench.
//
// `node bench.mjs` adds no-op jobs from GW_ADDERS concurrent connections (one `addJob` call, that
// is one autocommitted `graphile_worker.add_job` statement, per job) while one worker process
// (forked from this script, `concurrentJobs` GW_CONCURRENCY) runs them:
// - GW_JOBS set: as fast as the adders can (throughput);
// - GW_RATE and GW_SECONDS set instead: paced at GW_RATE jobs/s in all (latency at a given load);
// - GW_PREFILL=1 with GW_JOBS: the jobs queued first (`addJobs`, 5000 a call), then the worker
//   started: the worker's throughput alone, first to last task start, as graphile-worker's own
//   performance test measures it (no add->start latency then).
// GW_MODE is `unbatched` (the defaults: no local queue, no batched completion) or `batched`
// (`localQueue: { size: 500 }`, `completeJobBatchDelay: 0`, `failJobBatchDelay: 0`, the
// configuration of graphile-worker's performance page).
//
// add->start latency: from the moment `addJob` resolved (the job committed) to the moment the
// task function starts, both read from CLOCK_MONOTONIC (`process.hrtime`), which every process
// on the machine shares. Jobs/s: jobs / (last task start - first add call).
//
// Prints one JSON line to stdout; anything else goes to stderr.

import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { Logger, makeWorkerUtils, run, runMigrations } from "graphile-worker";

const env = process.env;
const connectionString = env.DATABASE_URL;
const mode = env.GW_MODE ?? "unbatched";
const concurrency = Number(env.GW_CONCURRENCY ?? 24);
const adders = Number(env.GW_ADDERS ?? 8);
const warmUpJobs = Number(env.GW_WARMUP_JOBS ?? 500);
const timeoutMs = Number(env.GW_TIMEOUT_SECONDS ?? 300) * 1000;

if (!connectionString) {
  console.error("DATABASE_URL is not set");
  process.exit(2);
}
if (mode !== "unbatched" && mode !== "batched") {
  console.error(`GW_MODE must be unbatched or batched, not ${mode}`);
  process.exit(2);
}

/** Milliseconds on CLOCK_MONOTONIC, comparable between processes. */
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Warnings and errors only, to stderr. */
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") {
    console.error(`graphile-worker ${level}: ${message}`);
  }
});

function workerPreset() {
  const batching =
    mode === "batched"
      ? { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
      : { localQueue: { size: -1 }, completeJobBatchDelay: -1, failJobBatchDelay: -1 };
  return {
    worker: {
      connectionString,
      logger,
      concurrentJobs: concurrency,
      maxPoolSize: concurrency + 1,
      ...batching,
    },
  };
}

if (process.argv[2] === "worker") {
  await workerProcess();
} else {
  await main();
}

/** The worker: records each task's start and reports them when asked. */
async function workerProcess() {
  const starts = [];
  let expected = Infinity;
  const check = () => {
    if (starts.length >= expected) {
      expected = Infinity;
      process.send({ type: "reached", count: starts.length });
    }
  };
  const taskList = {
    noop: async (_payload, helpers) => {
      starts.push([helpers.job.id, now()]);
      check();
    },
  };
  const runner = await run({ preset: workerPreset(), taskList, noHandleSignals: true });
  process.on("message", async (message) => {
    if (message.type === "expect") {
      expected = message.count;
      check();
    } else if (message.type === "report") {
      process.send({ type: "report", starts });
    } else if (message.type === "stop") {
      await runner.stop();
      process.exit(0);
    }
  });
  process.send({ type: "ready" });
}

/** Waits for the next message of `type` from `child`. */
function nextMessage(child, type) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${type}" from the worker in time`)), timeoutMs);
    const onMessage = (message) => {
      if (message.type === type) {
        clearTimeout(timer);
        child.off("message", onMessage);
        resolve(message);
      }
    };
    child.on("message", onMessage);
  });
}

/** Adds `count` jobs from `adders` connections, paced at `rate` jobs/s if given. */
async function addJobs(utils, count, rate) {
  const added = new Map();
  let next = 0;
  let lastAdded = 0;
  const started = now();
  const adder = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      if (rate) {
        const wait = started + (i * 1000) / rate - now();
        if (wait > 0) await sleep(wait);
      }
      const job = await utils.addJob("noop", {});
      lastAdded = now();
      added.set(job.id, lastAdded);
    }
  };
  await Promise.all(Array.from({ length: adders }, adder));
  return { added, started, lastAdded };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.round((sorted.length - 1) * p)];
}

async function main() {
  const version = JSON.parse(
    readFileSync(new URL("./node_modules/graphile-worker/package.json", import.meta.url), "utf8"),
  ).version;
  const prefill = env.GW_PREFILL === "1";
  const paced = !prefill && env.GW_RATE !== undefined;
  const rate = paced ? Number(env.GW_RATE) : null;
  const jobs = paced ? Math.round(Number(env.GW_RATE) * Number(env.GW_SECONDS ?? 10)) : Number(env.GW_JOBS ?? 10000);

  // The schema first, so that the worker's start does not race the adders.
  await runMigrations({ preset: { worker: { connectionString, logger } } });
  if (prefill) {
    await prefilled(version, jobs);
    return;
  }
  const child = fork(fileURLToPath(import.meta.url), ["worker"], { env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  try {
    await nextMessage(child, "ready");
    const utils = await makeWorkerUtils({ connectionString, maxPoolSize: adders, logger });
    try {
      // Warm-up: connections, prepared statements, the task's row.
      child.send({ type: "expect", count: warmUpJobs });
      const reachedWarmUp = nextMessage(child, "reached");
      await addJobs(utils, warmUpJobs, null);
      await reachedWarmUp;
      await sleep(500);

      child.send({ type: "expect", count: warmUpJobs + jobs });
      const reached = nextMessage(child, "reached");
      const { added, started, lastAdded } = await addJobs(utils, jobs, rate);
      await reached;
      child.send({ type: "report" });
      const { starts } = await nextMessage(child, "report");

      const latencies = [];
      let lastStart = 0;
      let early = 0;
      for (const [id, at] of starts) {
        const addedAt = added.get(id);
        if (addedAt === undefined) continue;
        lastStart = Math.max(lastStart, at);
        if (at < addedAt) early++;
        latencies.push(Math.max(0, at - addedAt));
      }
      latencies.sort((a, b) => a - b);
      const elapsedMs = lastStart - started;
      console.log(
        JSON.stringify({
          version,
          mode,
          paced,
          rate,
          concurrency,
          adders,
          jobs,
          handled: latencies.length,
          elapsed_s: elapsedMs / 1000,
          jobs_per_s: (latencies.length * 1000) / elapsedMs,
          add_per_s: (jobs * 1000) / (lastAdded - started),
          p50_ms: percentile(latencies, 0.5),
          p99_ms: percentile(latencies, 0.99),
          max_ms: latencies[latencies.length - 1] ?? null,
          started_before_add_returned: early,
        }),
      );
    } finally {
      await utils.release();
    }
  } finally {
    child.send({ type: "stop" });
    await Promise.race([exited, sleep(10000)]);
    child.kill();
  }
}

/** Queues `jobs` jobs, then runs the worker on them: its throughput alone. */
async function prefilled(version, jobs) {
  const utils = await makeWorkerUtils({ connectionString, maxPoolSize: 2, logger });
  const addStarted = now();
  try {
    for (let queued = 0; queued < jobs; queued += 5000) {
      const count = Math.min(5000, jobs - queued);
      await utils.addJobs(Array.from({ length: count }, () => ({ identifier: "noop", payload: {} })));
    }
  } finally {
    await utils.release();
  }
  const addElapsed = now() - addStarted;
  const child = fork(fileURLToPath(import.meta.url), ["worker"], { env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  try {
    await nextMessage(child, "ready");
    child.send({ type: "expect", count: jobs });
    await nextMessage(child, "reached");
    child.send({ type: "report" });
    const { starts } = await nextMessage(child, "report");
    let first = Infinity;
    let last = -Infinity;
    for (const [, at] of starts) {
      first = Math.min(first, at);
      last = Math.max(last, at);
    }
    console.log(
      JSON.stringify({
        version,
        mode,
        prefill: true,
        concurrency,
        jobs,
        handled: starts.length,
        elapsed_s: (last - first) / 1000,
        jobs_per_s: ((starts.length - 1) * 1000) / (last - first),
        add_per_s: (jobs * 1000) / addElapsed,
        p50_ms: null,
        p99_ms: null,
        max_ms: null,
      }),
    );
  } finally {
    child.send({ type: "stop" });
    await Promise.race([exited, sleep(10000)]);
    child.kill();
  }
}
