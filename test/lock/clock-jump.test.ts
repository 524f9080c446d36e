// What a wall-clock jump does to the owner lock (README › Guarantees › Time). Staleness compares
// two mtimes the kernel stamps, never a process's clock: processes whose clocks jump (libfaketime,
// which moves what a process reads, not the kernel's clock) change nothing. A jump of the
// kernel's own clock cannot be made in a test without moving the whole machine's; what it does to
// the lock, which reads that clock only through mtimes, is made here by moving the lock file's
// mtime by the jump (utimes): forward past staleAfter, a live holder's lock looks stale; backward,
// a stale lock is taken over that much later, a dead holder's still at once.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { readFile, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { AioKV, StoreLockedError } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it, onTestFinished } from "vitest";
import { generations, plantLock, staleAfter } from "../helpers/lock-harness.js";
import { deadPid, fixture, lineChild, sleep, type LineChild } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const day = 86_400_000;
const hasFaketime = spawnSync("faketime", ["--version"]).status === 0;
if (!hasFaketime) console.log("Skipping the process clock jump test: faketime is not installed (apt-get install faketime)");

/**
 * The environment that runs a process under libfaketime: its clock `offset` ("+1d"), or read
 * from the file `timestamps` at every reading, so that the test can move it while it runs. The
 * monotonic clock, which a wall-clock jump leaves alone (and Node's timers run on), stays true.
 */
function faketime(clock: { offset: string } | { timestamps: string }): NodeJS.ProcessEnv {
  // The library's path as the faketime command sets it (with the loader's $LIB): no fork between.
  const preload = execFileSync("faketime", ["-f", "+0", "printenv", "LD_PRELOAD"], { encoding: "utf8" }).trim();
  const time = "offset" in clock ? { FAKETIME: clock.offset } : { FAKETIME_TIMESTAMP_FILE: clock.timestamps, FAKETIME_NO_CACHE: "1" };
  return { ...process.env, LD_PRELOAD: preload, FAKETIME_DONT_FAKE_MONOTONIC: "1", ...time };
}

/** Runs race.mjs on `file` at once (holding what it wins `hold` ms) with `env`; resolves its stdout lines. */
function contend(file: string, env: NodeJS.ProcessEnv, hold = 0): Promise<string[]> {
  const child = spawn(process.execPath, [fixture("race.mjs"), file, String(hold)], { env, stdio: ["ignore", "pipe", "inherit"] });
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  let out = "";
  child.stdout.on("data", (data: Buffer) => (out += data.toString()));
  return new Promise((resolve) => child.once("exit", () => resolve(out.split("\n").filter((line) => line !== ""))));
}

/** Starts `fixture` owning `file` with `env`; resolves it and its first line. */
async function startOwner(name: string, file: string, env: NodeJS.ProcessEnv = process.env): Promise<LineChild & { first: string }> {
  const owner = lineChild(name, [file, String(staleAfter)], env);
  return { ...owner, first: await owner.next() };
}

async function refused(kv: AioKV): Promise<void> {
  await expect(kv.get("x")).rejects.toBeInstanceOf(StoreLockedError);
}

/** The clock reading a line such as "ok 1764000000000" reports, less this process's now. */
const offsetOf = (line: string): number => Number(line.split(" ")[1]) - Date.now();

describe("FileBackend owner lock and wall-clock jumps", () => {
  it.skipIf(!hasFaketime)(
    "processes' clocks jumping a day (libfaketime) change nothing: the holder keeps its lock and writes; contenders a day ahead or behind are refused while it lives, and one a day behind takes its lock once stale",
    async () => {
      const dir = await tempDir();
      const file = join(dir, "state.json");
      const timestamps = join(dir, "faketime");
      await writeFile(timestamps, "+0\n");
      const holder = await startOwner("clock-owner.mjs", file, faketime({ timestamps }));
      expect(holder.first).toMatch(/^ready \d+$/);
      const ahead = faketime({ offset: "+1d" });
      const behind = faketime({ offset: "-1d" });

      // The holder's clock jumps a day forward: it writes on; a contender a day behind is refused.
      await writeFile(timestamps, "+1d\n");
      const forward = await holder.ask("stamp forward");
      expect(Math.abs(offsetOf(forward) - day)).toBeLessThan(60_000);
      expect(await contend(file, behind)).toStrictEqual(["ready", "locked"]);

      // It jumps back two days: contenders a day ahead, and on the true clock, are refused.
      await writeFile(timestamps, "-1d\n");
      const back = await holder.ask("stamp back");
      expect(Math.abs(offsetOf(back) + day)).toBeLessThan(60_000);
      const kv = new AioKV(new FileBackend(file, { staleAfter }));
      onTestFinished(() => kv.close());
      expect(await Promise.all([contend(file, ahead), refused(kv)])).toStrictEqual([["ready", "locked"], undefined]);

      // A day ahead again, it is paused: its lock goes stale by the kernel's clock, and a contender
      // whose clock is a day behind the holder's last write takes it over after staleAfter.
      await writeFile(timestamps, "+1d\n");
      expect(await holder.ask("stamp last")).toMatch(/^ok /);
      holder.child.kill("SIGSTOP");
      expect(await contend(file, behind)).toStrictEqual(["ready", "locked"]);
      await sleep(staleAfter + 300);
      expect(await contend(file, behind)).toStrictEqual(["ready", expect.stringMatching(/^won \d+$/), expect.stringMatching(/^kept \d+$/)]);
      holder.child.kill("SIGCONT");
      expect(await holder.ask("stamp late")).toBe("error StoreLockedError");
      // set(key) stored the holder's clock of the moment; the winner's write followed its last.
      const stamps = JSON.parse(await readFile(file, "utf8")) as Record<string, number>;
      expect(Math.abs((stamps["forward"] ?? 0) * 1000 - Date.now() - day)).toBeLessThan(60_000);
      expect(Math.abs((stamps["back"] ?? 0) * 1000 - Date.now() + day)).toBeLessThan(60_000);
      expect(Object.keys(stamps)).toStrictEqual(["opened", "forward", "back", "last", expect.stringMatching(/^winner-\d+$/)]);
    },
  );

  it("the file system's clock jumping forward past staleAfter (the lock's mtime made that old) lets a contender take a live holder's lock; the holder's next write is refused, never interleaved", async () => {
    const file = join(await tempDir(), "state.json");
    const holder = await startOwner("holder.mjs", file);
    expect(holder.first).toBe("ready");
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    onTestFinished(() => kv.close());
    await refused(kv);
    // The holder rewrites its record every staleAfter / 3: a refresh between the jump and the
    // contender's look undoes the jump, so it is made again.
    let jumps = 0;
    for (let taken = false; !taken; ) {
      expect(++jumps).toBeLessThanOrEqual(5);
      const old = new Date(Date.now() - staleAfter - 1000);
      await utimes(join(`${file}.lock`, "1.json"), old, old);
      taken = await kv.get("holder").then(
        () => true,
        (error: unknown) => (error instanceof StoreLockedError ? false : Promise.reject(error as Error)),
      );
    }
    await kv.set("contender", true);
    expect(await holder.ask("set late 1")).toBe("error StoreLockedError");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: holder.child.pid, contender: true });
    expect(await generations(file)).toStrictEqual(["2.json"]);
  });

  it("the file system's clock jumping backward (a lock's mtime 600 ms ahead) delays the takeover of a stale lock by that much; a dead holder's, a day ahead, is taken at once", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const planted = Date.now();
    const path = await plantLock(file, { pid: 1, host: "elsewhere" });
    const ahead = new Date(planted + 600);
    await utimes(path, ahead, ahead);
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    onTestFinished(() => kv.close());
    let admitted: number | undefined;
    while (admitted === undefined) {
      const outcome = await kv.get("x").then(
        () => "admitted",
        (error: unknown) => (error instanceof StoreLockedError ? "refused" : Promise.reject(error as Error)),
      );
      if (outcome === "admitted") admitted = Date.now() - planted;
      else if (Date.now() - planted > staleAfter + 3000) throw new Error("never admitted");
      else await sleep(25);
    }
    console.log(`a lock 600 ms ahead was taken over ${admitted} ms after it was written (staleAfter ${staleAfter})`);
    // The kernel stamps mtimes from a coarse clock (a tick behind at most).
    expect(admitted).toBeGreaterThanOrEqual(staleAfter + 600 - 20);
    expect(admitted).toBeLessThan(staleAfter + 600 + 1000);

    const other = join(dir, "other.json");
    const dead = await plantLock(other, { pid: await deadPid(), host: hostname() });
    const dayAhead = new Date(Date.now() + day);
    await utimes(dead, dayAhead, dayAhead);
    const next = new AioKV(new FileBackend(other, { staleAfter }));
    const started = Date.now();
    await next.set("a", 1);
    expect(Date.now() - started).toBeLessThan(staleAfter / 2);
    await next.close();
  });
});
