// Many processes at once, and SIGKILLs at every step, against the owner lock. AIOKV_RACE_ROUNDS
// sets the rounds (pnpm test:soak runs 100).
import { spawn } from "node:child_process";
import { readdir, readFile, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { AioKV } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it, onTestFinished } from "vitest";
import { plantLock, staleAfter } from "../helpers/lock-harness.js";
import { deadPid, exited, fixture } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const rounds = Number(process.env["AIOKV_RACE_ROUNDS"] ?? 8);
const racers = 6;

/** Starts the racers, and once all are ready, tells them one start time; resolves their outputs. */
async function race(file: string): Promise<string[][]> {
  const children = Array.from({ length: racers }, () => {
    const child = spawn(process.execPath, [fixture("race.mjs"), file, "500"], { stdio: ["pipe", "pipe", "inherit"] });
    onTestFinished(() => {
      child.kill("SIGKILL");
    });
    const lines: string[] = [];
    const ready = new Promise<void>((resolve) => {
      createInterface({ input: child.stdout }).on("line", (line) => {
        if (line === "ready") resolve();
        else lines.push(line);
      });
    });
    return { child, lines, ready, done: exited(child) };
  });
  await Promise.all(children.map(({ ready }) => ready));
  const startAt = String(Date.now() + 250);
  for (const { child } of children) child.stdin?.end(`${startAt}\n`);
  await Promise.all(children.map(({ done }) => done));
  return children.map(({ lines }) => lines);
}

/** A step of taking (kill-target mode 0, which then exits without close()) or giving up (mode 1: close()) the lock. */
interface KillStep {
  name: string;
  mode: "0" | "1";
  /** The system calls (strace's names) that may make the step's call, on any architecture. */
  calls: string;
  callPattern: RegExp;
  /** The path the call is on, for strace -P: in the lock directory, for the generation being taken. */
  path?: (lock: string, generation: number) => string;
}

const generationFile = (lock: string, generation: number): string => join(lock, `${generation}.json`);

// Each step is a call the lock really makes (the strace log shows it killed), in its order.
const killSteps: KillStep[] = [
  { name: "mkdir of the lock directory", mode: "0", calls: "?mkdir,?mkdirat", callPattern: /^mkdir/, path: (lock) => lock },
  { name: "link of the candidate as the next generation", mode: "0", calls: "?link,?linkat", callPattern: /^link/, path: generationFile },
  { name: "open of the generation just linked", mode: "0", calls: "?open,?openat,?openat2", callPattern: /^open/, path: generationFile },
  { name: "unlink of the earlier, released generation", mode: "0", calls: "?unlink,?unlinkat", callPattern: /^unlink/, path: (lock, generation) => join(lock, `${generation - 1}.released`) },
  // The first unlink of the process: of the candidate or of the earlier generation, whichever runs first.
  { name: "first unlink of the clean-up after the link", mode: "0", calls: "?unlink,?unlinkat", callPattern: /^unlink/ },
  { name: "rename to <n>.released as the process exits", mode: "0", calls: "?rename,?renameat,?renameat2", callPattern: /^rename/, path: generationFile },
  { name: "close()'s ownership check (stat of its generation)", mode: "1", calls: "%%stat", callPattern: /stat/, path: generationFile },
  { name: "close()'s rename to <n>.released", mode: "1", calls: "?rename,?renameat,?renameat2", callPattern: /^rename/, path: generationFile },
  { name: "close()'s close of the released file", mode: "1", calls: "close", callPattern: /^close$/, path: (lock, generation) => join(lock, `${generation}.released`) },
];

/** Runs a fixture under `prefix` (strace) to its end; resolves its stdout lines and the signal it died of. */
function runTraced(name: string, args: string[], prefix: string[]): Promise<{ lines: string[]; signal: NodeJS.Signals | null }> {
  const child = spawn(prefix[0] ?? "", [...prefix.slice(1), process.execPath, fixture(name), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  let out = "";
  child.stdout.on("data", (data: Buffer) => (out += data.toString()));
  return new Promise((resolve) => child.once("exit", (_, signal) => resolve({ lines: out.split("\n").filter((line) => line !== ""), signal })));
}

describe("FileBackend owner lock races", () => {
  it(`${racers} processes starting in the same millisecond, ${rounds} rounds on dead, stale and free locks: exactly one owner each round, never removed`, async () => {
    const dir = await tempDir();
    const tally = { double: 0, none: 0, lost: 0 };
    let late = 0;
    for (let round = 0; round < rounds; round++) {
      const file = join(dir, `state-${round}.json`);
      const kind = round % 3;
      if (kind === 0) await plantLock(file, { pid: await deadPid(), host: hostname() }, round + 1);
      if (kind === 1) {
        const path = await plantLock(file, { pid: 1, host: "elsewhere" }, round + 1);
        const old = new Date(Date.now() - staleAfter - 1000);
        await utimes(path, old, old);
      }
      const outputs = await race(file);
      // A late start (a loaded machine) still races with the others; it is counted, not excluded.
      if (outputs.some((lines) => lines.includes("late"))) late++;
      // A winner's tenure runs from "won" to "kept"; two that overlap are two owners at once.
      const tenures = outputs.flatMap((lines) => {
        const won = lines.find((line) => line.startsWith("won "));
        const kept = lines.find((line) => line.startsWith("kept "));
        return won === undefined ? [] : [[Number(won.slice(4)), kept === undefined ? Infinity : Number(kept.slice(5))]];
      });
      tenures.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
      if (tenures.some((tenure, i) => i > 0 && (tenure[0] ?? 0) <= (tenures[i - 1]?.[1] ?? 0))) tally.double++;
      if (tenures.length === 0) tally.none++;
      const results = outputs.flat();
      tally.lost += results.filter((line) => line.startsWith("lost")).length;
      expect(results.filter((line) => !/^(won \d+|kept \d+|locked|late)$/.test(line))).toStrictEqual([]);
    }
    console.log(`lock race: ${rounds} rounds of ${racers} processes (${late} with a late starter), ${JSON.stringify(tally)}`);
    expect(tally).toStrictEqual({ double: 0, none: 0, lost: 0 });
  }, 10_000 + rounds * 5000);

  it("a SIGKILL at each step of taking or giving up the lock (strace): each kill lands on its step, the next owner always gets in at once, and leaves only the released lock behind", async () => {
    const dir = await tempDir();
    const logs = await tempDir();
    const file = join(dir, "state.json");
    const lock = `${file}.lock`;
    const states = new Set<string>();
    for (const [i, step] of killSteps.entries()) {
      // The generation this run takes: one past the latest, which the previous run's next owner released.
      const names = await readdir(lock).catch(() => []);
      const generation = Math.max(0, ...names.map((name) => Number(/^(\d+)\.(?:json|released)$/.exec(name)?.[1] ?? 0))) + 1;
      const log = join(logs, `${i}.log`);
      // One system call is killed: the first on `path` (strace -P), or the first of its name. Only
      // the first: strace counts calls per thread, so a later count would depend on which thread
      // of libuv's pool made which call (the old steps' unlink:2 and rename:1 landed at exit).
      const filter = step.path === undefined ? [] : ["-P", step.path(lock, generation)];
      const strace = ["strace", "-f", "-q", "-o", log, ...filter, "-e", `trace=${step.calls}`, "-e", `inject=${step.calls}:signal=SIGKILL:when=1`];
      const { lines, signal } = await runTraced("kill-target.mjs", [file, step.mode], strace);
      // The kill landed, on the step: the target died of SIGKILL (strace dies of the signal its
      // tracee died of) in a call of the step's, which never returned.
      const traced = await readFile(log, "utf8");
      const killedIn = /^\d+ +(?:<\.\.\. )?(\w+)(?:\(| resumed>).*= \?$/m.exec(traced)?.[1];
      expect(signal, step.name).toBe("SIGKILL");
      expect(traced, step.name).toContain("+++ killed by SIGKILL +++");
      expect(killedIn, step.name).toMatch(step.callPattern);
      expect(lines, step.name).toStrictEqual(["start"]);
      const left = (await readdir(dir)).concat((await readdir(lock).catch(() => [])).map((name) => `lock/${name.replace(/^\.\w+\./, ".*.")}`));
      states.add(left.map((name) => name.replace(/^lock\/\d+\./, "lock/<n>.")).sort().join(" "));
      const kv = new AioKV(new FileBackend(file, { staleAfter }));
      const started = Date.now();
      await kv.set("step", step.name);
      expect(Date.now() - started).toBeLessThan(staleAfter);
      await kv.close();
    }
    console.log(`lock states left by a SIGKILL (${killSteps.length} steps, each killed): ${[...states].join(" | ")}`);
    expect(states.size).toBeGreaterThan(4);
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
    expect((await readdir(lock)).filter((name) => !/^\d+\.released$/.test(name))).toStrictEqual([]);
  });

  it(`a SIGKILL at a random moment of taking or giving up the lock, ${rounds * 4} rounds: the next owner always gets in at once`, async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    let seed = 7;
    const random = (n: number): number => (seed = (seed * 48271) % 2147483647) % n;
    for (let round = 0; round < rounds * 4; round++) {
      // The child prints "start" right before it takes the lock; it takes ~1-3 ms, and a release as long.
      const child = spawn(process.execPath, [fixture("kill-target.mjs"), file, String(round % 2)], { stdio: ["ignore", "pipe", "inherit"] });
      onTestFinished(() => {
        child.kill("SIGKILL");
      });
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      expect((await lines.next()).value).toBe("start");
      const delay = random(4000) / 1000;
      const until = performance.now() + delay;
      while (performance.now() < until);
      child.kill("SIGKILL");
      await exited(child);
      const kv = new AioKV(new FileBackend(file, { staleAfter }));
      const started = Date.now();
      await kv.set("round", round);
      expect(Date.now() - started).toBeLessThan(staleAfter);
      await kv.close();
    }
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
    expect((await readdir(`${file}.lock`)).filter((name) => !/^\d+\.released$/.test(name))).toStrictEqual([]);
  }, 10_000 + rounds * 4 * 1500);
});
