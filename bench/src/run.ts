// pnpm bench: every system on every workload that applies, each cell in a fresh worker and temp
// directory, repeated; prints a table per workload, writes results/latest.json and chart.svg.
// pnpm bench --smoke: tiny counts, one repeat, results to a temp directory (what CI runs).
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, hostname, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import type { CellInput } from "./cell.js";
import { chart, summary, table, type Row } from "./report.js";
import { systems, type Promised, type System } from "./systems.js";
import { haveRedis, startRedis } from "@aiokv/tests/redis-server";
import type { Counts, Measured, Workload } from "./workloads.js";

const { values } = parseArgs({ options: { smoke: { type: "boolean", default: false }, out: { type: "string" } } });
const smoke = values.smoke === true;
const counts: Counts = smoke
  ? { sequential: 20, bigStore: 200, bigSets: 5, concurrent: 50, bursts: 2, trickle: 10, getStore: 100, gets: 1000, coldStore: 200, budgetMs: 500 }
  : { sequential: 500, bigStore: 10_000, bigSets: 200, concurrent: 1000, bursts: 10, trickle: 200, getStore: 1000, gets: 100_000, coldStore: 10_000, budgetMs: 1000 };
const repeats = smoke ? 1 : 3;
const timeoutMs = smoke ? 30_000 : 15_000;
const outDir = values.out ?? (smoke ? join(tmpdir(), "aiokv-bench-smoke") : fileURLToPath(new URL("../results", import.meta.url)));

const s = systems;
const aiokv = [s.aiokvSync, s.aiokvNoSync, s.aiokvMemory, s.aiokvKeyv];
const peers = [s.lowdb, s.conf, s.keyvFile, s.nodePersist, s.unstorage];
// On the local redis-server that this run starts, when one is installed.
const redis = [s.aiokvRedis, s.keyvRedis, s.rawSet];

interface Plan {
  workload: Workload;
  title: string;
  systems: System[];
  /** The limit a system making this promise is compared with. */
  limit(promised: Promised): System<"limit"> | undefined;
}

const bySync = (synced: System<"limit">, unsynced: System<"limit">) => (promised: Promised) =>
  promised === "in memory" ? undefined : promised === "in redis" ? s.rawSet : promised === "synced" ? synced : unsynced;
const groupCommit = { systems: [...aiokv, ...peers, s.idealSynced, s.idealUnsynced, ...redis], limit: bySync(s.idealSynced, s.idealUnsynced) };

const plans: Plan[] = [
  {
    workload: "sequential",
    title: `${counts.sequential} sequential awaited sets of small keys into an empty store`,
    systems: [...aiokv, ...peers, s.rawSynced, s.rawUnsynced, ...redis],
    limit: bySync(s.rawSynced, s.rawUnsynced),
  },
  {
    workload: "bigStore",
    title: `${counts.bigSets} sequential awaited sets into a store of ${counts.bigStore} keys`,
    systems: [...aiokv, ...peers, s.rawSameTextSynced, s.rawSameTextUnsynced, s.rawSynced, s.rawUnsynced, ...redis],
    limit: bySync(s.rawSameTextSynced, s.rawSameTextUnsynced),
  },
  {
    workload: "concurrent",
    title: `up to ${counts.bursts} bursts of ${counts.concurrent} sets started at once and awaited together, then counted after a reopen`,
    ...groupCommit,
  },
  {
    workload: "trickle",
    title: `${counts.trickle} sets started 1 ms apart (new sets arrive while a write is in flight), then counted after a reopen`,
    ...groupCommit,
  },
  {
    workload: "get",
    title: `${counts.gets} gets of existing keys in a ${counts.getStore}-key store`,
    systems: [...aiokv, ...peers, s.mapClone, s.aiokvRedis, s.keyvRedis],
    limit: () => s.mapClone,
  },
  {
    workload: "cold",
    title: `cold open of a ${counts.coldStore}-key store plus the first get`,
    systems: [s.aiokvSync, ...peers, s.readParse, s.aiokvRedis, s.keyvRedis],
    limit: () => s.readParse,
  },
  {
    workload: "memory",
    title: `heap held by an open ${counts.coldStore}-key store, against the size of its files`,
    systems: [s.aiokvSync, s.aiokvMemory, ...peers, s.readParse],
    limit: () => undefined,
  },
];

function cell(input: CellInput): Promise<Measured | string> {
  return new Promise((resolve) => {
    const worker = new Worker(new URL("./cell.js", import.meta.url), { workerData: input });
    const timer = setTimeout(() => {
      void worker.terminate();
      resolve(`timed out after ${timeoutMs / 1000} s`);
    }, timeoutMs);
    worker.once("message", (message: { ok: boolean; result?: Measured; error?: string }) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(message.ok && message.result ? message.result : `failed: ${message.error?.split("\n")[0] ?? "?"}`);
    });
    worker.once("error", (error) => {
      clearTimeout(timer);
      resolve(`failed: ${error.message}`);
    });
  });
}

/** A redis-server of this run's own (no persistence, a free port), when one is installed. */
async function benchRedis(): Promise<(() => Promise<void>) | undefined> {
  if (!haveRedis) return undefined;
  const server = await startRedis();
  process.env["AIOKV_BENCH_REDIS"] = server.url;
  return () => server.stop();
}
const stopRedis = await benchRedis();

const median = (numbers: number[]): number => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)] ?? NaN;
const started = Date.now();
const results: Array<{ workload: Workload; title: string; rows: Row[] }> = [];
for (const plan of plans) {
  const rows: Row[] = [];
  // Repeats go round the systems, not one system at a time: a noisy minute on a shared machine
  // then lands on every system alike instead of on whichever was running.
  const runsOf = new Map<System, Measured[]>(plan.systems.map((system) => [system, []]));
  const failures = new Map<System, string>();
  for (let r = 0; r < repeats; r++) {
    for (const system of plan.systems) {
      if (failures.has(system)) continue;
      const outcome = await cell({ system: system.name, workload: plan.workload, counts });
      if (typeof outcome === "string") failures.set(system, outcome);
      else runsOf.get(system)?.push(outcome);
    }
  }
  for (const system of plan.systems) {
    const runs = runsOf.get(system) ?? [];
    const rates = runs.map((m) => (m.ops * 1000) / m.ms);
    rows.push({
      system: system.name,
      kind: system.kind,
      promised: system.promised,
      note: system.note,
      failure: failures.get(system),
      opsPerSecond: runs.length ? median(rates) : undefined,
      ms: runs.length ? median(runs.map((m) => m.ms)) : undefined,
      ops: runs.length ? median(runs.map((m) => m.ops)) : undefined,
      stallMs: runs.length ? Math.max(...runs.map((m) => m.stallMs)) : undefined,
      lost: runs.length && runs[0]?.lost !== undefined ? Math.max(...runs.map((m) => m.lost ?? 0)) : undefined,
      heapBytes: runs.length && runs[0]?.heapBytes !== undefined ? median(runs.map((m) => m.heapBytes ?? 0)) : undefined,
      fileBytes: runs[0]?.fileBytes,
      limit: plan.limit(system.promised)?.name,
    });
  }
  for (const row of rows) {
    const limit = rows.find((r) => r.system === row.limit);
    if (limit?.opsPerSecond && row.opsPerSecond && row.system !== row.limit) row.ratio = limit.opsPerSecond / row.opsPerSecond;
  }
  results.push({ workload: plan.workload, title: plan.title, rows });
  console.log(table(plan.workload, plan.title, rows));
}

await stopRedis?.();

const machine = {
  cpu: cpus()[0]?.model ?? "?",
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  host: hostname(),
};
const report = { date: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000), smoke, repeats, counts, machine, results };
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
await writeFile(join(outDir, "chart.svg"), chart(report));
await writeFile(join(outDir, "summary.md"), summary(report));
console.log(`${results.reduce((n, r) => n + r.rows.length, 0)} cells in ${report.seconds} s; results in ${outDir}`);
