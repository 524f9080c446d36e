import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AioKV, StoreLockedError } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it, onTestFinished } from "vitest";
import { tempDir } from "./file-harness.js";

const fixture = (name: string): string => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));
const staleAfter = 2000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Holder {
  child: ChildProcessWithoutNullStreams;
  /** Sends a command line and resolves the holder's answer. */
  ask(line: string): Promise<string>;
}

/** Starts `command` (node holder.mjs by default) owning `file`, once it reports ready. */
async function startHolder(file: string, prefix: string[] = []): Promise<Holder> {
  const argv = [...prefix, process.execPath, fixture("holder.mjs"), file, String(staleAfter)];
  const child = spawn(argv[0] ?? "", argv.slice(1));
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  const lines: AsyncIterator<string> = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const line = await lines.next();
    if (line.done === true) throw new Error("The holder exited");
    return line.value;
  };
  expect(await next()).toBe("ready");
  return {
    child,
    ask: (line) => {
      child.stdin.write(`${line}\n`);
      return next();
    },
  };
}

/** Runs a fixture to its end; resolves its stdout lines. */
function runFixture(name: string, args: string[], prefix: string[] = []): Promise<string[]> {
  const argv = [...prefix, process.execPath, fixture(name), ...args];
  const child = spawn(argv[0] ?? "", argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
  onTestFinished(() => {
    child.kill("SIGKILL");
  });
  let out = "";
  child.stdout.on("data", (data: Buffer) => (out += data.toString()));
  return new Promise((resolve) => child.once("exit", () => resolve(out.split("\n").filter((line) => line !== ""))));
}

async function lockedError(kv: AioKV): Promise<StoreLockedError> {
  const error = await kv.get("holder").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreLockedError);
  return error as StoreLockedError;
}

const exited = (child: ChildProcess): Promise<unknown> => new Promise((resolve) => child.once("exit", resolve));

/** The pid of a process that has exited, so that no process on this host has it (for now). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await exited(child);
  return child.pid ?? 0;
}

/** Leaves `file`'s lock as a holder left it: generation `generation`, written by `record`. */
async function plantLock(file: string, record: object, generation = 1): Promise<string> {
  await mkdir(`${file}.lock`, { recursive: true });
  const path = join(`${file}.lock`, `${generation}.json`);
  await writeFile(path, JSON.stringify({ since: new Date().toISOString(), process: "elsewhere", token: "0", ...record }));
  return path;
}

describe("FileBackend owner lock across processes", () => {
  it("a store opened while another process owns the file rejects with StoreLockedError naming it", async () => {
    const file = join(await tempDir(), "state.json");
    const holder = await startHolder(file);
    const error = await lockedError(new AioKV(new FileBackend(file, { staleAfter })));
    expect(error.owner?.pid).toBe(holder.child.pid);
    expect(error.owner?.host).toBe(hostname());
    expect(error.message).toMatch(new RegExp(`it is locked by process ${holder.child.pid} on `));
    expect(await holder.ask("set still 1")).toBe("ok");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: holder.child.pid, still: 1 });
  });

  it("the lock of an owner killed with SIGKILL is taken over at once", async () => {
    const file = join(await tempDir(), "state.json");
    const holder = await startHolder(file);
    holder.child.kill("SIGKILL");
    await exited(holder.child);
    const started = Date.now();
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    expect(await kv.get("holder")).toBe(holder.child.pid);
    expect(Date.now() - started).toBeLessThan(staleAfter);
    await kv.set("next", 1);
    await kv.close();
  });

  it("a lock held from another host is taken over only after staleAfter", async () => {
    const file = join(await tempDir(), "state.json");
    const since = new Date().toISOString();
    const path = await plantLock(file, { pid: 1, host: "elsewhere", since });
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    const error = await lockedError(kv);
    expect(error.owner).toStrictEqual({ pid: 1, host: "elsewhere", since });
    // Aged by the file's mtime, the one clock every host sharing the file agrees on.
    const old = new Date(Date.now() - staleAfter - 100);
    await utimes(path, old, old);
    await kv.set("taken", true);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ taken: true });
    await kv.close();
  });

  it("the lock of a dead pid on this host is taken over at once, and one of an unreadable record after staleAfter", async () => {
    const file = join(await tempDir(), "state.json");
    await plantLock(file, { pid: await deadPid(), host: hostname() }, 7);
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    await kv.set("a", 1);
    expect(await readdir(`${file}.lock`)).toStrictEqual(["8.json"]);
    await kv.close();
    await mkdir(`${file}.lock`);
    await writeFile(join(`${file}.lock`, "3.json"), "");
    const next = new AioKV(new FileBackend(file, { staleAfter }));
    await lockedError(next);
    const old = new Date(Date.now() - staleAfter - 100);
    await utimes(join(`${file}.lock`, "3.json"), old, old);
    await next.set("b", 2);
    await next.close();
  });

  it("an owner paused past staleAfter (SIGSTOP) loses the lock to a contender, and its write on waking is refused", async () => {
    const file = join(await tempDir(), "state.json");
    const holder = await startHolder(file);
    holder.child.kill("SIGSTOP");
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    await lockedError(kv);
    await sleep(staleAfter + 300);
    await kv.set("successor", true);
    holder.child.kill("SIGCONT");
    expect(await holder.ask("set stale 1")).toBe("error StoreLockedError");
    expect(await holder.ask("set stale 2")).toBe("error StoreLockedError");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: holder.child.pid, successor: true });
    await kv.close();
  });

  it("an owner that lost its lock while paused is refused while the other owns the file, then takes it back from the file as the other left it", async () => {
    const file = join(await tempDir(), "state.json");
    const holder = await startHolder(file);
    holder.child.kill("SIGSTOP");
    await sleep(staleAfter + 300);
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    await kv.set("successor", true);
    holder.child.kill("SIGCONT");
    expect(await holder.ask("set stale 1")).toBe("error StoreLockedError");
    // Its memory is stale: while the other owns the file, reads are refused too.
    expect(await holder.ask("get successor")).toBe("error StoreLockedError");
    await kv.close();
    expect(await holder.ask("get successor")).toBe("true");
    expect(await holder.ask("set back 1")).toBe("ok");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: holder.child.pid, successor: true, back: 1 });
    await lockedError(new AioKV(new FileBackend(file, { staleAfter })));
  });

  it("an owner paused past 2x staleAfter (SIGSTOP) with no contender takes its lapsed lock back and writes", async () => {
    const file = join(await tempDir(), "state.json");
    const holder = await startHolder(file);
    holder.child.kill("SIGSTOP");
    await sleep(2 * staleAfter + 300);
    holder.child.kill("SIGCONT");
    expect(await holder.ask("set woke 1")).toBe("ok");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: holder.child.pid, woke: 1 });
    // Still its own: a contender is refused.
    await lockedError(new AioKV(new FileBackend(file, { staleAfter })));
    expect(await holder.ask("set again 2")).toBe("ok");
  });

  it("a restarted container's process with the dead holder's pid (1) takes the lock at once", async () => {
    const file = join(await tempDir(), "state.json");
    // A new pid namespace makes the holder pid 1, as in a container; the next one is pid 1 again.
    const container = ["unshare", "--pid", "--fork", "--mount-proc"];
    const first = await startHolder(file, container);
    first.child.kill("SIGKILL");
    await exited(first.child);
    const started = Date.now();
    const second = await startHolder(file, container);
    expect(Date.now() - started).toBeLessThan(staleAfter);
    expect(await second.ask("set restarted 1")).toBe("ok");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: 1, restarted: 1 });
  });

  it("an owner that exits without close() releases the lock, leaving nothing beside the file", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const holder = await startHolder(file);
    holder.child.stdin.write("exit\n");
    await exited(holder.child);
    expect(await readdir(dir)).toStrictEqual(["state.json"]);
  });

  it("a disk that refuses the lock record (RLIMIT_FSIZE 0) fails with StoreIOError and leaves nothing that blocks the next owner", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const lines = await runFixture("race.mjs", [file, "0"], ["sh", "-c", 'ulimit -f 0 && exec "$@"', "sh"]);
    expect(lines).toStrictEqual(["ready", expect.stringMatching(/^error Cannot lock store .*EFBIG/)]);
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    await kv.set("a", 1);
    await kv.close();
    expect(await readdir(dir)).toStrictEqual(["state.json"]);
  });

  it("staleAfter is a whole number of ms from 2000 to a day", () => {
    for (const bad of [1999, 86_400_001, 2 ** 31, Number.NaN, Infinity, 2500.5]) {
      expect(() => new FileBackend("state.json", { staleAfter: bad })).toThrow(RangeError);
    }
    expect(() => new FileBackend("state.json", { staleAfter: 2 ** 31 })).toThrow(
      'Cannot open store "state.json": staleAfter must be a whole number of milliseconds from 2000 to 86400000, received 2147483648',
    );
    expect(new FileBackend("state.json", { staleAfter: 86_400_000 })).toBeInstanceOf(FileBackend);
  });

  it("the next owner removes the temp files that killed writers left, and only this file's", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const leftovers = [".state.json.123.deadbeef.aiokv.tmp", ".state.json.456.cafef00d.aiokv.tmp"];
    for (const name of leftovers) await writeFile(join(dir, name), '{"partial');
    const others = [".other.json.123.deadbeef.aiokv.tmp", ".state.json.bak.123.deadbeef.aiokv.tmp"];
    for (const name of others) await writeFile(join(dir, name), "not ours");
    const kv = new AioKV(new FileBackend(file));
    await kv.get("a");
    await kv.close();
    expect((await readdir(dir)).sort()).toStrictEqual(others.sort());
  });

  it("opening a store does not break the writes of another store whose name extends it (state.json.bak)", async () => {
    const dir = await tempDir();
    const backup = new AioKV(new FileBackend(join(dir, "state.json.bak")));
    const writes = Array.from({ length: 200 }, (_, i) => backup.set(`k${i}`, i));
    const kv = new AioKV(new FileBackend(join(dir, "state.json")));
    await kv.get("a");
    await Promise.all(writes);
    expect(Object.keys(await backup.getAll())).toHaveLength(200);
    await Promise.all([kv.close(), backup.close()]);
  });
});

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

  it("a SIGKILL at each step of taking or giving up the lock (strace): the next owner always gets in at once, and leaves nothing behind", async () => {
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
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json"]);
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
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json"]);
  }, 10_000 + rounds * 4 * 1500);
});
