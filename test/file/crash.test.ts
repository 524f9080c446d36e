import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { isDeepStrictEqual } from "node:util";
import { AioKV, unlessAbsent } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.js";
import { exited, fixture } from "../helpers/processes.js";

// `pnpm test:crash` runs 200 rounds per sync mode, with and without a journal; the everyday suite runs fewer.
const rounds = Number(process.env["AIOKV_CRASH_ROUNDS"] ?? 25);
const storm = fixture("storm.mjs");
const journalSteps = fixture("journal-steps.mjs");
const hasStrace = spawnSync("strace", ["-V"]).status === 0;
if (!hasStrace) console.log("Skipping the kills at each step of a journal store: strace is not installed (apt-get install strace)");

type Op = ["set", string, number, number] | ["delete", string] | ["clear"];
type Doc = Record<string, unknown>;

function applied(doc: Doc, ops: readonly Op[]): Doc {
  const next = { ...doc };
  for (const op of ops) {
    if (op[0] === "set") next[op[1]] = { seq: op[2], pad: "x".repeat(op[3]) };
    else if (op[0] === "delete") delete next[op[1]];
    else for (const key of Object.keys(next)) delete next[key];
  }
  return next;
}

/**
 * Where the journal storm's SIGKILL landed, from the last step the child announced: in an
 * append, in a compaction's rewrite of the document (temp file, fsync, rename, directory fsync),
 * after that rewrite and before the journal's cut, in that cut, in another cut (a torn record or
 * a stale journal cut off before an append), or between steps (staging, acknowledging, idle).
 */
type Step = "append" | "rewrite" | "rewritten, journal not cut" | "compaction's cut" | "other cut" | "between steps";

/** Runs the storm until a SIGKILL at a random moment; resolves the batches it announced and acknowledged. */
async function stormUntilKilled(file: string, sync: boolean, journal: boolean, seed: number): Promise<{ acked: Op[][]; inFlight: Op[]; step: Step }> {
  const child = spawn(process.execPath, [storm, file, sync ? "1" : "0", String(seed), journal ? "1" : "0"], { stdio: ["ignore", "pipe", "inherit"] });
  const acked: Op[][] = [];
  let inFlight: Op[] = [];
  let step: Step = "between steps";
  let rewritten = false;
  const gone = exited(child);
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === "ready") setTimeout(() => child.kill("SIGKILL"), 5 + Math.random() * 120);
    else if (line.startsWith("B ")) inFlight = JSON.parse(line.slice(2)) as Op[];
    else if (line === "A") {
      acked.push(inFlight);
      inFlight = [];
    } else if (line === "> append") step = "append";
    else if (line === "> write" || line === "> remove") step = "rewrite";
    else if (line === "< write" || line === "< remove") {
      step = "rewritten, journal not cut";
      rewritten = true;
    } else if (line === "> cut") step = rewritten ? "compaction's cut" : "other cut";
    else if (line.startsWith("< ")) {
      step = "between steps";
      rewritten = false;
    }
  }
  await gone;
  return { acked, inFlight, step };
}

/** What a store on `file` holds, read without aiokv: the document, and the journal's complete records when its base is the document's SHA-256. */
async function readState(file: string): Promise<{ doc: Doc; records: number; torn: boolean; stale: boolean }> {
  const bytes = await unlessAbsent(readFile(file));
  const doc = bytes === undefined ? {} : (JSON.parse(bytes.toString("utf8")) as unknown);
  expect(typeof doc === "object" && doc !== null && !Array.isArray(doc), "the document is not a JSON object").toBe(true);
  const state = { ...(doc as Doc) };
  const journal = await unlessAbsent(readFile(`${file}.journal`, "utf8"));
  if (journal === undefined) return { doc: state, records: 0, torn: false, stale: false };
  const end = journal.lastIndexOf("\n") + 1;
  const torn = end < journal.length;
  const [header, ...records] = journal.slice(0, end).split("\n").slice(0, -1);
  if (header === undefined) return { doc: state, records: 0, torn, stale: false };
  const base = bytes === undefined ? null : `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const parsed = JSON.parse(header) as { aiokv: string; version: number; base: string | null };
  expect(parsed).toMatchObject({ aiokv: "journal", version: 1 });
  if (parsed.base !== base) return { doc: state, records: 0, torn, stale: true };
  for (const line of records) {
    const record = JSON.parse(line) as { clear?: true; delete?: string[]; set?: Array<[string, unknown]> };
    if (record.clear) for (const key of Object.keys(state)) delete state[key];
    for (const key of record.delete ?? []) delete state[key];
    for (const [key, value] of record.set ?? []) {
      delete state[key];
      state[key] = value;
    }
  }
  return { doc: state, records: records.length, torn, stale: false };
}

describe.each([
  ["whole-file", false],
  ["journal", true],
])("FileBackend crash safety, %s store", (_, journal) => {
  describe.each([
    ["synced", true],
    ["unsynced", false],
  ])("%s writes, SIGKILL mid-storm", (mode, sync) => {
    const what = journal ? "a whole file and a loadable journal" : "a whole file";
    it(`leaves ${what} holding every acknowledged change, over ${rounds} rounds`, async () => {
      const dir = await tempDir();
      const file = join(dir, "state.json");
      const started = performance.now();
      let expected: Doc = {};
      let acknowledged = 0;
      const steps = new Map<Step, number>();
      const journals = { applied: 0, stale: 0, torn: 0, records: 0 };
      for (let round = 0; round < rounds; round++) {
        const seed = (Math.random() * 2 ** 32) >>> 0;
        const { acked, inFlight, step } = await stormUntilKilled(file, sync, journal, seed);
        acknowledged += acked.length;
        steps.set(step, (steps.get(step) ?? 0) + 1);
        for (const batch of acked) expected = applied(expected, batch);
        const { doc: actual, records, torn, stale } = await readState(file);
        if (records > 0) journals.applied++;
        if (stale) journals.stale++;
        if (torn) journals.torn++;
        journals.records += records;
        // The batch in flight may have reached the file whole, in part (group commit splits it in
        // call order), or not at all; nothing else may differ.
        const allowed = Array.from({ length: inFlight.length + 1 }, (_, n) => applied(expected, inFlight.slice(0, n)));
        const match = allowed.findIndex((doc) => isDeepStrictEqual(doc, actual));
        expect(match, `round ${round}, seed ${seed}, killed at ${step}: the file is not the acknowledged state`).toBeGreaterThanOrEqual(0);
        if (journal) {
          // aiokv reads the same: the document, then the journal's records.
          const reader = new AioKV(new FileBackend(file), { readOnly: true });
          expect(await reader.getAll(), `round ${round}, seed ${seed}: aiokv reads another state`).toStrictEqual(actual);
          await reader.close();
        }
        expected = actual;
        const temps = (await readdir(dir)).filter((name) => name.endsWith(".aiokv.tmp"));
        expect(temps.length, `round ${round}: leftover temp files pile up`).toBeLessThanOrEqual(1);
      }
      expect(acknowledged).toBeGreaterThan(rounds);
      const kv = new AioKV(new FileBackend(file), { journal });
      expect(await kv.getAll()).toStrictEqual(expected);
      await kv.close();
      // close() leaves the file alone (a journal folded into it; no file for an empty store, or
      // `{}`), and the owner lock's directory, which stays (its numbers must never go back).
      const listing = (await readdir(dir)).sort();
      expect(listing.filter((name) => name !== "state.json")).toStrictEqual(["state.json.lock"]);
      if (Object.keys(expected).length > 0) expect(listing).toContain("state.json");
      expect((await readState(file)).doc).toStrictEqual(expected);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const where = journal ? `; killed in: ${JSON.stringify(Object.fromEntries(steps))}; journals after a kill: ${JSON.stringify(journals)}` : "";
      console.log(`${journal ? "journal" : "whole-file"}, ${mode}: ${rounds} rounds in ${seconds} s, ${acknowledged} acknowledged batches, 0 torn or lost${where}`);
    }, 30_000 + rounds * 2000);
  });
});

/** What journal-steps.mjs stores under `key`. */
const stepValue = (key: string): unknown => ({ key, pad: "x".repeat(100) });
const stepDoc = (...keys: string[]): Doc => Object.fromEntries(keys.map((key) => [key, stepValue(key)]));

/**
 * Runs a phase of journal-steps.mjs, under strace with `trace` when given; its stdout, exit signal
 * and strace's calls (an unfinished call joined with its resumption, in the order they ended).
 */
function runStep(file: string, sync: boolean, phase: string, trace?: string[]): { stdout: string; signal: NodeJS.Signals | null; traced: string[] } {
  const node = [process.execPath, journalSteps, file, sync ? "1" : "0", phase];
  // Beside the store's directory, not in it.
  const log = `${dirname(file)}.strace`;
  const argv = trace === undefined ? node : ["strace", "-f", "-qq", "-y", "-o", log, ...trace, ...node];
  // strace counts an injection's `when` per thread: with one thread in libuv's pool, where every
  // fs call of the store runs, the Nth call of the process is the Nth call of that thread.
  const env = trace === undefined ? process.env : { ...process.env, UV_THREADPOOL_SIZE: "1" };
  const { stdout, stderr, signal, status } = spawnSync(argv[0] ?? "", argv.slice(1), { encoding: "utf8", env });
  if (trace === undefined) {
    expect(status, stderr).toBe(0);
    return { stdout, signal, traced: [] };
  }
  const lines = readFileSync(log, "utf8").split("\n");
  rmSync(log);
  const unfinished = new Map<string, string>();
  const traced: string[] = [];
  for (const raw of lines) {
    const [, pid = "", line = ""] = /^(\d+) +(.*)$/.exec(raw) ?? [];
    if (line.endsWith(" <unfinished ...>")) unfinished.set(pid, `${pid}  ${line.slice(0, -" <unfinished ...>".length)}`);
    else if (/^\w+\(/.test(line)) traced.push(`${pid}  ${line}`);
    else {
      const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(line);
      if (resumed) traced.push(`${unfinished.get(pid) ?? ""}${resumed[1] ?? ""}`);
      if (resumed) unfinished.delete(pid);
    }
  }
  // A call the process died in never returns: strace shows it as `= ?`, or leaves it unfinished.
  for (const line of unfinished.values()) traced.push(`${line} = ?`);
  // strace pads short calls to align their results: one space, as the patterns expect.
  for (const [index, line] of traced.entries()) traced[index] = line.replace(/\) +=( |$)/, ") =$1");
  // strace exits as the traced process did: killed by a signal, it kills itself with it.
  return { stdout, signal, traced };
}

/** The calls that never returned (the one the process died in), and the last call that did before the first of them. */
function killedCalls(traced: readonly string[]): { killed: string[]; before: string | undefined } {
  const index = traced.findIndex((line) => / = \?$/.test(line));
  // One call: strace sometimes shows the killed call twice, under two thread ids, once unfinished.
  const killed = new Map<string, string>();
  for (const line of traced.filter((line) => / = \?$/.test(line))) {
    const call = line.replace(/^\d+ +/, "").replace(/\)? = \?$/, "");
    if (!killed.has(call)) killed.set(call, line);
  }
  return { killed: [...killed.values()], before: index < 0 ? traced.at(-1) : traced[index - 1] };
}

/**
 * strace arguments that SIGKILL the process as it enters `calls` on `path` (every path:
 * `undefined`), at their `when`th call; `alsoTraced`, traced but never killed, show what came before.
 */
function killAt(calls: string, path: string | undefined, when?: number, alsoTraced?: string): string[] {
  return [
    ...(path === undefined ? [] : ["-P", path]),
    "-e",
    `trace=${calls}${alsoTraced === undefined ? "" : `,${alsoTraced}`}`,
    "-e",
    `inject=${calls}:signal=SIGKILL${when === undefined ? "" : `:when=${when}`}`,
  ];
}

const writes = "pwrite64,pwritev,pwritev2,write,writev";
const renames = "rename,renameat,renameat2";

interface StepKill {
  /** Where the process dies. */
  step: string;
  sync: boolean;
  /**
   * "compact": a compaction of a document (k0) and a journal of three records (k1-k3); "append": a
   * set of k4 after them, a new process's first write (the journal it found, copied into a new
   * file when it took the lock, folded into the document, then a journal of its own started);
   * "append again": that, then a set of k5 appended to the journal it started (its first append,
   * which opens the journal and keeps it open); "new journal": a set of k4 after a compaction (no
   * journal to copy or fold).
   */
  phase: "compact" | "append" | "append again" | "new journal";
  /**
   * The strace arguments that kill it there, given the file's, its directory's and its journal's
   * paths. A `when` past 1 counts the calls of libuv's one pool thread (see runStep).
   */
  kill: (paths: { file: string; dir: string; journal: string }) => string[];
  /** The call it dies in, as strace shows it (with -y). */
  killedIn: RegExp;
  /** The traced call that ended just before it, where that names the step. */
  after?: RegExp;
  /** What the file and the journal hold after the kill: the journal applies, is stale (already in the document), or there is none. */
  journal: "applies" | "stale" | "none";
  /** What the store holds after it. */
  holds: Doc;
  /** Whether a temp file is left (the next owner removes it). */
  temp: boolean;
}

const all = stepDoc("k0", "k1", "k2", "k3");
const withK4 = stepDoc("k0", "k1", "k2", "k3", "k4");
const withK5 = stepDoc("k0", "k1", "k2", "k3", "k4", "k5");
/** A write at an offset: a whole file's (a temp file's), never an append (the owner lock's refresh is one too, seconds apart). */
const positionedWrites = "pwrite64,pwritev,pwritev2";
/** A temp file of the journal's, as strace shows its descriptor or its path. */
const journalTemp = String.raw`\.state\.json\.journal\.\d+\.[0-9a-f]{8}\.aiokv\.tmp`;
/** A temp file of the document's (a compaction's or a fold's), as strace shows its descriptor or its path. */
const fileTemp = String.raw`\.state\.json\.\d+\.[0-9a-f]{8}\.aiokv\.tmp`;
/** The journal's path, or its descriptor, as strace shows it. */
const journalPath = String.raw`/state\.json\.journal`;
/** lock()'s copy of the journal it found renamed over it. */
const sealRename = new RegExp(String.raw`rename(at2?)?\(.*/${journalTemp}", .*${journalPath}"\) = 0`);

const stepKills: StepKill[] = [
  ...[true, false].flatMap((sync): StepKill[] => [
    {
      step: "lock(): the journal found copied into a temp file, before its rename over the journal",
      sync,
      phase: "append",
      // The process's first rename: lock()'s copy (the owner lock renames its file only on release).
      kill: () => killAt(renames, undefined, 1),
      killedIn: new RegExp(String.raw`rename(at2?)?\(.*/${journalTemp}", .*${journalPath}"\) = \?`),
      journal: "applies",
      holds: all,
      temp: true,
    },
    {
      step: "compaction: the new document's temp file written, before its rename",
      sync,
      phase: "compact",
      // The process's second rename: the first is lock()'s copy of the journal it found. Not -P
      // <file>: strace matches a rename by its first path only.
      kill: () => killAt(renames, undefined, 2),
      killedIn: new RegExp(String.raw`rename(at2?)?\(.*/${fileTemp}", .*/state\.json"\) = \?`),
      after: sealRename,
      journal: "applies",
      holds: all,
      temp: true,
    },
    {
      step: "compaction: the document renamed into place, before the journal's removal (its rename aside)",
      sync,
      phase: "compact",
      // The first rename from the journal's path (lock()'s copy is renamed onto it, not from it).
      kill: ({ journal }) => killAt(renames, journal),
      killedIn: new RegExp(String.raw`rename(at2?)?\(.*${journalPath}", .*/${journalTemp}"\) = \?`),
      journal: "stale",
      holds: all,
      temp: false,
    },
    {
      step: "a new process's first write: the journal it found folded into the document, before that journal's removal",
      sync,
      phase: "append",
      kill: ({ journal }) => killAt(renames, journal),
      killedIn: new RegExp(String.raw`rename(at2?)?\(.*${journalPath}", .*/${journalTemp}"\) = \?`),
      journal: "stale",
      holds: all,
      temp: false,
    },
    {
      step: "append: the first append's open of the journal (O_APPEND, kept open), before it opens",
      sync,
      phase: "append again",
      // The third open of the journal's path: lock() read it to copy it, the load read it, then
      // k4 went into a temp file renamed there; k5 is the first append.
      kill: ({ journal }) => killAt("open,openat", journal, 3),
      killedIn: new RegExp(String.raw`openat?\(.*${journalPath}", O_WRONLY\|O_APPEND\b.*\) = \?`),
      journal: "applies",
      holds: withK4,
      temp: false,
    },
    {
      step: "append: the journal open, before the record's write",
      sync,
      phase: "append again",
      // The first write to the journal's path, through the descriptor kept open (strace -P
      // matches a descriptor by the path it resolves to): write for one piece, writev for more.
      kill: ({ journal }) => killAt(writes, journal),
      killedIn: new RegExp(String.raw`\bwritev?\(\d+<.*${journalPath}>, .*\) = \?`),
      journal: "applies",
      holds: withK4,
      temp: false,
    },
    {
      step: "a new journal: its temp file made, before its first write",
      sync,
      phase: "new journal",
      // With no journal to copy or fold, the process's first whole-file write is the new journal's.
      kill: () => killAt(positionedWrites, undefined),
      killedIn: new RegExp(String.raw`\b(?:pwrite64|pwritev2?)\(\d+<.*/${journalTemp}>, .*\) = \?`),
      journal: "none",
      holds: all,
      temp: true,
    },
    {
      step: "a new journal: its temp file written, before its rename into place",
      sync,
      phase: "new journal",
      // The process's first rename (the owner lock renames its file only on release).
      kill: () => killAt(renames, undefined, 1),
      killedIn: new RegExp(String.raw`rename(at2?)?\(.*/${journalTemp}", .*${journalPath}"\) = \?`),
      journal: "none",
      holds: all,
      temp: true,
    },
  ]),
  {
    step: "lock(): the journal found copied and renamed over it, before the directory's fsync",
    sync: true,
    phase: "append",
    // The process's second fsync, after lock()'s copy was synced and renamed.
    kill: () => killAt("fsync", undefined, 2, renames),
    killedIn: /fsync\(\d+<[^>]+>\) = \?/,
    after: sealRename,
    journal: "applies",
    holds: all,
    temp: false,
  },
  {
    step: "compaction: the new document's temp file written, before its fsync",
    sync: true,
    phase: "compact",
    // The process's third fsync: lock()'s copy of the journal and its directory come first; the
    // owner lock syncs nothing.
    kill: () => killAt("fsync", undefined, 3),
    killedIn: new RegExp(String.raw`fsync\(\d+<.*/${fileTemp}>\) = \?`),
    journal: "applies",
    holds: all,
    temp: true,
  },
  {
    step: "compaction: the document renamed into place, before its directory's fsync",
    sync: true,
    phase: "compact",
    // The process's fourth fsync: lock()'s copy of the journal and its directory, the new
    // document, then (after its rename) the directory.
    kill: () => killAt("fsync", undefined, 4, renames),
    killedIn: /fsync\(\d+<[^>]+>\) = \?/,
    after: new RegExp(String.raw`rename(at2?)?\(.*/${fileTemp}", .*/state\.json"\) = 0`),
    journal: "stale",
    holds: all,
    temp: false,
  },
  {
    step: "append: the record written, before the journal's fdatasync (not acknowledged, but in the file)",
    sync: true,
    phase: "append again",
    // The first sync of the journal's path: k4's journal was synced as its temp file.
    kill: ({ journal }) => killAt("fdatasync,fsync", journal, undefined, writes),
    killedIn: new RegExp(String.raw`fdatasync\(\d+<.*${journalPath}>\) = \?`),
    after: new RegExp(String.raw`\bwritev?\(\d+<.*${journalPath}>, .*\) = [1-9]\d*$`),
    journal: "applies",
    holds: withK5,
    temp: false,
  },
  {
    step: "a new journal: header and record written to its temp file, before its fsync",
    sync: true,
    phase: "new journal",
    // The process's first fsync: with no journal to copy or fold, the new journal's; the owner lock syncs nothing.
    kill: () => killAt("fsync", undefined, 1),
    killedIn: new RegExp(String.raw`fsync\(\d+<.*/${journalTemp}>\) = \?`),
    journal: "none",
    holds: all,
    temp: true,
  },
  {
    step: "a new journal: header and record written and synced, renamed into place, before the directory's fsync",
    sync: true,
    phase: "new journal",
    kill: ({ dir }) => killAt("fsync", dir),
    killedIn: /fsync\(\d+<[^>]+>\) = \?/,
    journal: "applies",
    holds: withK4,
    temp: false,
  },
];

describe("A journal store SIGKILLed at each step of an append and of a compaction (strace)", () => {
  it.skipIf(!hasStrace).each(stepKills.map((kill) => [kill.sync ? "synced" : "unsynced", kill.step, kill] as const))(
    "%s, %s: the file and the journal load, holding every acknowledged change; the next owner goes on",
    async (_, __, { sync, phase, kill, killedIn, after, journal, holds, temp }) => {
      const dir = await tempDir();
      const file = join(dir, "state.json");
      expect(runStep(file, sync, "prepare").stdout).toBe("acked\n");
      if (phase === "new journal") expect(runStep(file, sync, "compact").stdout).toBe("compacted\n");
      const { stdout, signal, traced } = runStep(file, sync, phase === "new journal" ? "append" : phase, kill({ file, dir, journal: `${file}.journal` }));
      // Killed on entering that call, which therefore never ran: nothing after it either.
      expect({ stdout, signal }).toStrictEqual({ stdout: "", signal: "SIGKILL" });
      const { killed, before } = killedCalls(traced);
      expect(killed, traced.join("\n")).toHaveLength(1);
      expect(killed[0]).toMatch(killedIn);
      if (after) expect(before, traced.join("\n")).toMatch(after);
      const state = await readState(file);
      expect(state.doc).toStrictEqual(holds);
      expect({ applies: state.records > 0, stale: state.stale, torn: state.torn }).toStrictEqual({
        applies: journal === "applies",
        stale: journal === "stale",
        torn: false,
      });
      expect((await readdir(dir)).some((name) => name.endsWith(".aiokv.tmp"))).toBe(temp);
      // aiokv reads the same, journal mode or not.
      for (const options of [{ readOnly: true }, { readOnly: true, journal: true }]) {
        const reader = new AioKV(new FileBackend(file), options);
        expect(await reader.getAll()).toStrictEqual(holds);
        await reader.close();
      }
      // The next owner takes over at once and applies, or removes, what it finds: closed, even
      // without a write, it leaves the file alone.
      const owner = new AioKV(new FileBackend(file, { sync }), { journal: true });
      expect(await owner.getAll()).toStrictEqual(holds);
      await owner.close();
      expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
      expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual(holds);
      // The one after it appends and folds as ever.
      const kv = new AioKV(new FileBackend(file, { sync }), { journal: true });
      await kv.set("after", 1);
      expect(await kv.getAll()).toStrictEqual({ ...holds, after: 1 });
      await kv.close();
      expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
      expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ ...holds, after: 1 });
    },
  );
});
