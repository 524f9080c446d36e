// pnpm bench: every system on every workload that applies, each cell in a fresh worker and temp
// directory, repeated; prints a table per workload, writes results/latest.json and chart.svg.
// pnpm bench --smoke: tiny counts, one repeat, results to a temp directory (what CI runs).
// pnpm bench --baseline <git ref>: also aiokv (journal off) as built from that commit, compared.
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, hostname, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import type { CellInput } from "./cell.js";
import { chart, summary, table, targets, targetLines, type Row } from "./report.js";
import { baselineSystems, systems, type Promised, type System } from "./systems.js";
import { buildBaseline } from "./baseline.js";
import { haveRedis, startRedis } from "@aiokv/tests/redis-server";
import { journalRatio, type Counts, type Measured, type Workload } from "./workloads.js";

const { values } = parseArgs({ options: { smoke: { type: "boolean", default: false }, out: { type: "string" }, baseline: { type: "string" } } });
const smoke = values.smoke === true;
// Smoke: no 100,000-key store (hugeStore 0 skips it), a few hundred journal records and sets.
const counts: Counts = smoke
  ? { sequential: 20, bigStore: 200, hugeStore: 0, bigSets: 5, concurrent: 50, bursts: 2, trickle: 10, getStore: 100, gets: 1000, coldStore: 200, journalRecords: 200, heapSets: 500, budgetMs: 500 }
  : {
      sequential: 500,
      bigStore: 10_000,
      hugeStore: 100_000,
      bigSets: 200,
      concurrent: 1000,
      bursts: 10,
      trickle: 200,
      getStore: 1000,
      gets: 100_000,
      coldStore: 10_000,
      journalRecords: 10_000,
      heapSets: 100_000,
      budgetMs: 1000,
    };
const repeats = smoke ? 1 : 3;
const timeoutMs = smoke ? 30_000 : 15_000;
const outDir = values.out ?? (smoke ? join(tmpdir(), "aiokv-bench-smoke") : fileURLToPath(new URL("../results", import.meta.url)));

// --baseline <ref>: journal-off aiokv as built from that commit, beside today's, in every workload
// it can run (not the journal's cold open: it predates journals).
if (values.baseline !== undefined) {
  const built = await buildBaseline(values.baseline);
  process.env["AIOKV_BENCH_BASELINE"] = built.dir;
  process.env["AIOKV_BENCH_BASELINE_COMMIT"] = built.commit;
}
const before = baselineSystems();

const s = systems;
const aiokv = [s.aiokvSync, s.aiokvNoSync, ...before, s.aiokvMemory, s.aiokvKeyv];
const journal = [s.aiokvJournal, s.aiokvJournalNoSync];
const peers = [s.lowdb, s.conf, s.keyvFile, s.nodePersist, s.unstorage];
// Native modules: a load that fails makes their rows "unavailable" (see probe below).
const engines = [s.sqliteFull, s.sqliteNormal, s.lmdb];
const journalLimits = [s.journalSynced, s.journalUnsynced];
// On the local redis-server that this run starts, when one is installed.
const redis = [s.aiokvRedis, s.keyvRedis, s.rawSet];

interface Plan {
  workload: Workload;
  title: string;
  systems: System[];
  /** The limit a system is compared with: the one that makes its promise the way it writes (a whole file, or appends). */
  limit(system: System): System<"limit"> | undefined;
  /** This workload's cells' time limit, when it is not the run's. */
  timeoutMs?: number;
}

type Limits = readonly [synced: System<"limit">, unsynced: System<"limit">];
/** Whole-file systems against `whole`, appending ones (journal, SQLite, lmdb) against the append limits. */
const bySync =
  ([synced, unsynced]: Limits, [appendSynced, appendUnsynced]: Limits = [s.journalSynced, s.journalUnsynced]) =>
  (system: System): System<"limit"> | undefined => {
    const promised: Promised = system.promised;
    if (promised === "in memory") return undefined;
    if (promised === "in redis") return s.rawSet;
    return system.appends === true ? (promised === "synced" ? appendSynced : appendUnsynced) : promised === "synced" ? synced : unsynced;
  };
const groupCommit = {
  systems: [...aiokv, ...journal, ...peers, ...engines, s.idealSynced, s.idealUnsynced, ...journalLimits, ...redis],
  limit: bySync([s.idealSynced, s.idealUnsynced]),
};
const intoStores = [...aiokv, ...journal, ...peers, ...engines, s.rawSameTextSynced, s.rawSameTextUnsynced, s.rawSynced, s.rawUnsynced, ...journalLimits, ...redis];
const intoStoresLimit = bySync([s.rawSameTextSynced, s.rawSameTextUnsynced]);

const allPlans: Plan[] = [
  {
    workload: "sequential",
    title: `${counts.sequential} sequential awaited sets of small keys into an empty store`,
    systems: [...aiokv, ...journal, ...peers, ...engines, s.rawSynced, s.rawUnsynced, ...journalLimits, ...redis],
    limit: bySync([s.rawSynced, s.rawUnsynced]),
  },
  {
    workload: "emptyStore",
    title: `${counts.bigSets} sequential awaited sets into an empty store (the sets of the next workloads, for their "x empty")`,
    systems: intoStores,
    limit: intoStoresLimit,
  },
  {
    workload: "bigStore",
    title: `${counts.bigSets} sequential awaited sets into a store of ${counts.bigStore} keys`,
    systems: intoStores,
    limit: intoStoresLimit,
  },
  {
    workload: "hugeStore",
    title: `${counts.bigSets} sequential awaited sets into a store of ${counts.hugeStore} keys`,
    systems: intoStores,
    limit: intoStoresLimit,
    // Its prefill writes 100,000 files for the one-file-per-key stores.
    timeoutMs: 180_000,
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
    systems: [...aiokv, ...journal, ...peers, ...engines, s.mapClone, s.aiokvRedis, s.keyvRedis],
    limit: () => s.mapClone,
  },
  {
    workload: "cold",
    title: `cold open of a ${counts.coldStore}-key store plus the first get`,
    systems: [s.aiokvSync, ...before, s.aiokvJournal, ...peers, ...engines, s.readParse, s.aiokvRedis, s.keyvRedis],
    limit: () => s.readParse,
  },
  {
    workload: "coldJournal",
    title: `cold open of a ${counts.coldStore}-key store plus a journal of ${counts.journalRecords} records (each key set again) and the first get; the limit reads the compacted file`,
    systems: [s.aiokvJournal, s.aiokvSync, s.journalSynced, s.readParse],
    limit: () => s.readParse,
  },
  {
    workload: "memory",
    title: `heap held by an open ${counts.coldStore}-key store, against the size of its files`,
    systems: [s.aiokvSync, ...before, s.aiokvJournal, s.aiokvMemory, ...peers, ...engines, s.readParse],
    limit: () => undefined,
  },
  {
    workload: "heapAfterSets",
    title: `heap held by an open ${counts.bigStore}-key store after ${counts.heapSets} sets to its keys (bursts of ${counts.concurrent}), journal against none`,
    systems: [s.aiokvSync, s.aiokvJournal, s.aiokvNoSync, s.aiokvJournalNoSync, ...before],
    limit: () => undefined,
    timeoutMs: 120_000,
  },
];
const plans = allPlans.filter((plan) => plan.workload !== "hugeStore" || counts.hugeStore > 0);

function cell(input: CellInput, limitMs: number): Promise<Measured | string> {
  return new Promise((resolve) => {
    const worker = new Worker(new URL("./cell.js", import.meta.url), { workerData: input });
    const timer = setTimeout(() => {
      void worker.terminate();
      resolve(`timed out after ${limitMs / 1000} s`);
    }, limitMs);
    worker.once("message", (message: { ok: boolean; result?: Measured; error?: string }) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(message.ok && message.result ? message.result : `failed: ${message.error?.split("\n")[0] ?? "?"}`);
    });
    worker.once("error", (error) => {
      clearTimeout(timer);
      resolve(`failed: ${error.message}`);
    });
    // A worker that exits without a message (its loop emptied with a promise unsettled) fails now, not at the timeout.
    worker.once("exit", (code) => {
      clearTimeout(timer);
      resolve(`failed: the worker exited (code ${code}) without a result`);
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

/**
 * Runs a system's probe in a child process (a native module that crashes takes only that down):
 * why it is unavailable, or `undefined` when it loaded and worked.
 */
function probe(system: System): Promise<string | undefined> {
  if (system.probe === undefined) return Promise.resolve(undefined);
  return new Promise((done) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", system.probe ?? ""], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 60_000,
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", (error) => done(error.message));
    child.on("close", (code, signal) => {
      if (code === 0) return done(undefined);
      const why = stderr.split("\n").find((line) => /^\s*(\w*Error|error)\b[^:]*:/.test(line))?.trim() ?? stderr.trim().split("\n").at(-1) ?? "";
      done(signal ? `crashed (${signal}) ${why}`.trim() : why || `exit code ${code}`);
    });
  });
}
const unavailable = new Map<System, string>();
for (const system of new Set(plans.flatMap((plan) => plan.systems))) {
  const why = await probe(system);
  if (why !== undefined) {
    // better-sqlite3 is built on demand (pnpm bench:sqlite), not at install.
    const hint = system.name.startsWith("SQLite") ? " (pnpm bench:sqlite builds better-sqlite3)" : "";
    unavailable.set(system, `unavailable: ${why.slice(0, 160)}${hint}`);
    console.log(`${system.name}: unavailable (${why})${hint}`);
  }
}

const median = (numbers: number[]): number => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)] ?? NaN;
const started = Date.now();
const results: Array<{ workload: Workload; title: string; rows: Row[] }> = [];
for (const plan of plans) {
  const rows: Row[] = [];
  // Repeats go round the systems, not one system at a time: a noisy minute on a shared machine
  // then lands on every system alike instead of on whichever was running.
  const runsOf = new Map<System, Measured[]>(plan.systems.map((system) => [system, []]));
  const failures = new Map<System, string>([...unavailable].filter(([system]) => plan.systems.includes(system)));
  for (let r = 0; r < repeats; r++) {
    for (const system of plan.systems) {
      if (failures.has(system)) continue;
      const outcome = await cell({ system: system.name, workload: plan.workload, counts }, Math.max(timeoutMs, plan.timeoutMs ?? 0));
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
      firstMs: runs.length && runs[0]?.firstMs !== undefined ? median(runs.map((m) => m.firstMs ?? 0)) : undefined,
      // The rate of the sets after the first, each run's, then their median.
      restPerSecond: runs.length && runs.every((m) => m.firstMs !== undefined && m.ops > 1) ? median(runs.map((m) => ((m.ops - 1) * 1000) / (m.ms - (m.firstMs ?? 0)))) : undefined,
      fileBytes: runs[0]?.fileBytes,
      // The run whose journal was longest against its document.
      journal: runs
        .map((m) => m.journal)
        .filter((sample) => sample !== undefined)
        .sort((a, b) => journalRatio(b) - journalRatio(a))[0],
      limit: plan.limit(system)?.name,
    });
  }
  // The same sets into an empty store: what the prefilled store's size costs each system.
  const empty = plan.workload === "bigStore" || plan.workload === "hugeStore" ? results.find((r) => r.workload === "emptyStore") : undefined;
  for (const row of rows) {
    const limit = rows.find((r) => r.system === row.limit);
    if (limit?.opsPerSecond && row.opsPerSecond && row.system !== row.limit) row.ratio = limit.opsPerSecond / row.opsPerSecond;
    const emptyRow = empty?.rows.find((r) => r.system === row.system);
    if (emptyRow?.opsPerSecond && row.opsPerSecond) row.vsEmpty = row.opsPerSecond / emptyRow.opsPerSecond;
    if (emptyRow?.restPerSecond && row.restPerSecond) row.restVsEmpty = row.restPerSecond / emptyRow.restPerSecond;
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
const met = targets({ counts, results });
console.log(`\n${targetLines(met).join("\n")}`);
const report = { date: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000), smoke, repeats, counts, machine, results, targets: met };
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
await writeFile(join(outDir, "chart.svg"), chart(report));
await writeFile(join(outDir, "summary.md"), summary(report));
console.log(`${results.reduce((n, r) => n + r.rows.length, 0)} cells in ${report.seconds} s; results in ${outDir}`);
