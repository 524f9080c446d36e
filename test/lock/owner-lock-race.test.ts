// Many processes at once, and SIGKILLs at every step, against the owner lock. AIOKV_RACE_ROUNDS
// sets the rounds (pnpm test:soak runs 100).
import { spawn } from "node:child_process";
import { readdir, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { AioKV } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it, onTestFinished } from "vitest";
import { plantLock, staleAfter } from "../helpers/lock-harness.js";
import { deadPid, exited, fixture, runFixture } from "../helpers/processes.js";
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

  it("a SIGKILL at each step of taking or giving up the lock (strace): the next owner always gets in at once, and leaves only the released lock behind", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    // The lock's own system calls, each killed at its first few calls: before the link (a
    // candidate left), after it (a candidate and a generation), in a release (between its rename
    // and its removal), and so on. Node's start-up makes none of these.
    const steps = ["link:1", "unlink:1", "unlink:2", "rename:1", "rmdir:1", "unlinkat:1", "unlinkat:2"];
    const states = new Set<string>();
    for (const step of steps) {
      for (const mode of ["0", "1"]) {
        const [call, when] = step.split(":");
        const strace = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", `trace=${call}`, "-e", `inject=${call}:signal=SIGKILL:when=${when}`];
        await runFixture("kill-target.mjs", [file, mode], strace);
        states.add((await readdir(dir)).concat((await readdir(`${file}.lock`).catch(() => [])).map((name) => `lock/${name.replace(/^\.\w+\./, ".*.")}`)).join(" "));
        const kv = new AioKV(new FileBackend(file, { staleAfter }));
        const started = Date.now();
        await kv.set("step", step);
        expect(Date.now() - started).toBeLessThan(staleAfter);
        await kv.close();
      }
    }
    console.log(`lock states left by a SIGKILL: ${[...states].join(" | ")}`);
    expect(states.size).toBeGreaterThan(3);
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
    expect((await readdir(`${file}.lock`)).filter((name) => !/^\d+\.released$/.test(name))).toStrictEqual([]);
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
