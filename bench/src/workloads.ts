// The workloads, run inside a worker per cell. Each resolves what it measured.
import { mkdir, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { journalSizes, type Store, type System } from "./systems.js";

export interface Counts {
  sequential: number;
  bigStore: number;
  /** The keys of the larger prefilled store (the journal's 100,000-key workload); 0 skips it. */
  hugeStore: number;
  bigSets: number;
  concurrent: number;
  /** How many bursts of `concurrent` sets the concurrent workload times, one after another. */
  bursts: number;
  trickle: number;
  getStore: number;
  gets: number;
  coldStore: number;
  /** The journal records a cold open replays over its `coldStore` keys. */
  journalRecords: number;
  /** The sets, in bursts of `concurrent`, after which the heap of a `bigStore`-key store is measured. */
  heapSets: number;
  /** A loop stops once it has run this long, and reports the rate of what it did. */
  budgetMs: number;
}

export interface Measured {
  ops: number;
  ms: number;
  /** The longest the event loop was blocked during the timed part. */
  stallMs: number;
  lost?: number;
  /** Sequential sets: how long the first set took (a store may do once what the sets after it need). */
  firstMs?: number;
  heapBytes?: number;
  fileBytes?: number;
  /** aiokv's journal mode: the journal's and the document's bytes where the journal was longest against the document. */
  journal?: JournalSample;
}

export interface JournalSample {
  journalBytes: number;
  documentBytes: number;
}

export type Workload =
  | "sequential"
  | "emptyStore"
  | "bigStore"
  | "hugeStore"
  | "concurrent"
  | "trickle"
  | "get"
  | "cold"
  | "coldJournal"
  | "memory"
  | "heapAfterSets";

const value = (i: number): { id: number; name: string; tags: string[] } => ({ id: i, name: `user-${i}`, tags: ["a", "b"] });
const entries = (count: number): Record<string, unknown> =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`key${i}`, value(i)]));

async function timed(work: (deadline: number) => Promise<number>, budgetMs: number): Promise<Measured> {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  const start = performance.now();
  const ops = await work(start + budgetMs);
  const ms = performance.now() - start;
  histogram.disable();
  return { ops, ms, stallMs: histogram.max / 1e6 };
}

async function present(system: System, dir: string, count: number): Promise<number> {
  const store = await system.open(dir);
  let found = 0;
  for (let i = 0; i < count; i++) if ((await store.get(`k${i}`)) !== undefined) found++;
  await store.close();
  return found;
}

/** Opens and closes a store in a scratch directory, so that lazily loaded modules are loaded for every system alike. */
async function warmUp(system: System, dir: string): Promise<void> {
  const scratch = join(dir, "warm-up");
  await system.prefill(scratch, { a: 1 });
  const store = await system.open(scratch);
  await store.get("a");
  await store.close();
}

/**
 * One untimed burst in a scratch directory: a burst is over in milliseconds, so timed on code the
 * JIT has not compiled yet it would measure the compiler, not the store. Every system gets it alike.
 */
async function warmBurst(system: System, dir: string, count: number): Promise<void> {
  const scratch = join(dir, "warm-up");
  await mkdir(scratch, { recursive: true });
  const store = await system.open(scratch);
  await Promise.all(Array.from({ length: count }, (_, i) => store.set(`w${i}`, i)));
  await store.close();
}

/** The sample of the two whose journal is longer against its document (no document: infinitely). */
function longer(a: JournalSample | undefined, b: JournalSample | undefined): JournalSample | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return journalRatio(b) > journalRatio(a) ? b : a;
}

export const journalRatio = (sample: JournalSample): number =>
  sample.journalBytes === 0 ? 0 : sample.documentBytes === 0 ? Infinity : sample.journalBytes / sample.documentBytes;

/** Where a journal-mode store's journal stands against its document now (before close, which compacts). */
async function sampled(system: System, dir: string): Promise<{ journal?: JournalSample }> {
  if (system.journal !== true) return {};
  return { journal: await journalSizes(dir) };
}

function collector(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

async function opened(system: System, dir: string): Promise<Store> {
  const store = await system.open(dir);
  await store.get("warm-up");
  return store;
}

export async function run(workload: Workload, system: System, dir: string, counts: Counts): Promise<Measured> {
  const { budgetMs } = counts;
  switch (workload) {
    case "sequential": {
      const store = await opened(system, dir);
      let firstMs = 0;
      const result = await timed(async (deadline) => {
        const start = performance.now();
        await store.set("k0", 0);
        firstMs = performance.now() - start;
        let i = 1;
        for (; i < counts.sequential && performance.now() < deadline; i++) await store.set(`k${i}`, i);
        return i;
      }, budgetMs);
      const journal = await sampled(system, dir);
      await store.close();
      return { ...result, firstMs, ...journal };
    }
    case "emptyStore":
    case "bigStore":
    case "hugeStore": {
      // The same sets into an empty store and into prefilled ones: the rates' ratio is what the store's size costs.
      const keys = workload === "emptyStore" ? 0 : workload === "bigStore" ? counts.bigStore : counts.hugeStore;
      if (keys > 0) await system.prefill(dir, entries(keys));
      const store = await opened(system, dir);
      let firstMs = 0;
      const result = await timed(async (deadline) => {
        const start = performance.now();
        await store.set("key0", value(-0));
        firstMs = performance.now() - start;
        let i = 1;
        for (; i < counts.bigSets && performance.now() < deadline; i++) await store.set(`key${i}`, value(-i));
        return i;
      }, budgetMs);
      const journal = await sampled(system, dir);
      await store.close();
      return { ...result, firstMs, ...journal };
    }
    case "concurrent":
    case "trickle": {
      const count = workload === "concurrent" ? counts.concurrent : counts.trickle;
      // One burst is over in milliseconds, within the jitter of a single fsync: the concurrent
      // workload times up to `bursts` bursts of new keys, one after another, and counts them all.
      const bursts = workload === "concurrent" ? counts.bursts : 1;
      if (workload === "concurrent") await warmBurst(system, dir, count);
      const store = await opened(system, dir);
      let done = 0;
      const result = await timed(async (deadline) => {
        // A slow system stops after the burst that crosses the time budget, as the loops above do.
        for (let burst = 0; burst < bursts && (burst === 0 || performance.now() < deadline); burst++, done++) {
          const sets: Array<Promise<unknown>> = [];
          for (let i = burst * count; i < (burst + 1) * count; i++) {
            sets.push(store.set(`k${i}`, i));
            if (workload === "trickle") await new Promise((resolve) => setTimeout(resolve, 1));
          }
          await Promise.all(sets);
        }
        return done * count;
      }, budgetMs);
      const journal = await sampled(system, dir);
      await store.close();
      return { ...result, ...journal, lost: done * count - (await present(system, dir, done * count)) };
    }
    case "get": {
      await system.prefill(dir, entries(counts.getStore));
      const store = await opened(system, dir);
      const result = await timed(async (deadline) => {
        let i = 0;
        for (; i < counts.gets && (i % 1000 !== 0 || performance.now() < deadline); i++) await store.get(`key${i % counts.getStore}`);
        return i;
      }, budgetMs);
      await store.close();
      return result;
    }
    case "cold": {
      await warmUp(system, dir);
      await system.prefill(dir, entries(counts.coldStore));
      return timed(async () => {
        const store = await system.open(dir);
        await store.get("key5");
        await store.close();
        return 1;
      }, budgetMs);
    }
    case "coldJournal": {
      // A store that did not close: its document, and a journal of sets since (each key of the
      // document set again, in turn), which the open replays. Only the open and first get are
      // timed: close() would compact.
      await warmUp(system, dir);
      const records = Array.from({ length: counts.journalRecords }, (_, i) => [`key${i % counts.coldStore}`, value(-i)] as const);
      await system.prefillJournal(dir, entries(counts.coldStore), records);
      let store: Store | undefined;
      const result = await timed(async () => {
        store = await system.open(dir);
        await store.get("key5");
        return 1;
      }, budgetMs);
      const expected = records.findLast(([key]) => key === "key5")?.[1];
      const got = await store?.get("key5");
      await store?.close();
      if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`key5 is ${JSON.stringify(got)} after the open, not the journal's ${JSON.stringify(expected)}`);
      return result;
    }
    case "heapAfterSets": {
      // Bursts of concurrent sets over the keys of a prefilled store, then the heap the open
      // store holds; its journal is sampled after each burst (compactions come and go).
      await warmUp(system, dir);
      await system.prefill(dir, entries(counts.bigStore));
      const gc = collector();
      gc();
      const before = process.memoryUsage().heapUsed;
      const store = await opened(system, dir);
      let journal: JournalSample | undefined;
      const result = await timed(async () => {
        for (let done = 0; done < counts.heapSets; done += counts.concurrent) {
          await Promise.all(Array.from({ length: counts.concurrent }, (_, j) => store.set(`key${(done + j) % counts.bigStore}`, value(done + j))));
          journal = longer(journal, (await sampled(system, dir)).journal);
        }
        return counts.heapSets;
      }, budgetMs);
      gc();
      const heapBytes = process.memoryUsage().heapUsed - before;
      const fileBytes = await sizeOf(dir);
      await store.close();
      return { ...result, heapBytes, fileBytes, ...(journal && { journal }) };
    }
    case "memory": {
      await warmUp(system, dir);
      await system.prefill(dir, entries(counts.coldStore));
      const gc = collector();
      gc();
      const before = process.memoryUsage().heapUsed;
      const store = await system.open(dir);
      await store.get("key5");
      gc();
      const heapBytes = process.memoryUsage().heapUsed - before;
      await store.close();
      return { ops: 1, ms: 0, stallMs: 0, heapBytes, fileBytes: await sizeOf(dir) };
    }
  }
}

async function sizeOf(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const name of await readdir(path)) if (!name.endsWith(".lock") && name !== "warm-up") total += await sizeOf(join(path, name));
  return total;
}
