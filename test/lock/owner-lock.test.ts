import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { AioKV, StoreLockedError } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it, onTestFinished } from "vitest";
import { generations, plantLock, staleAfter } from "../helpers/lock-harness.js";
import { deadPid, exited, fixture, runFixture, sleep } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

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

async function lockedError(kv: AioKV): Promise<StoreLockedError> {
  const error = await kv.get("holder").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreLockedError);
  return error as StoreLockedError;
}



/**
 * Starts a holder of `file`, SIGSTOPs it past staleAfter while a store here takes the file over and
 * writes "successor", wakes it, and checks that its first write is refused.
 */
async function takenOverWhilePaused(file: string): Promise<{ holder: Holder; kv: AioKV }> {
  const holder = await startHolder(file);
  holder.child.kill("SIGSTOP");
  const kv = new AioKV(new FileBackend(file, { staleAfter }));
  await lockedError(kv);
  await sleep(staleAfter + 300);
  await kv.set("successor", true);
  holder.child.kill("SIGCONT");
  expect(await holder.ask("set stale 1")).toBe("error StoreLockedError");
  return { holder, kv };
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

  it("the lock of an owner killed but not yet reaped by its parent (a zombie) is taken over at once", async () => {
    const file = join(await tempDir(), "state.json");
    // The shell becomes `sleep`, which never waits for its child: the killed holder stays a zombie.
    const parent = spawn("sh", ["-c", `"${process.execPath}" "${fixture("holder.mjs")}" "${file}" ${staleAfter} & echo $!; exec sleep 60`]);
    onTestFinished(() => {
      parent.kill("SIGKILL");
    });
    const lines = createInterface({ input: parent.stdout })[Symbol.asyncIterator]();
    const pid = Number((await lines.next()).value);
    expect((await lines.next()).value).toBe("ready");
    process.kill(pid, "SIGKILL");
    await sleep(200);
    expect((await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.[0]).toBe("Z");
    const started = Date.now();
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    expect(await kv.get("holder")).toBe(pid);
    expect(Date.now() - started).toBeLessThan(staleAfter);
    await kv.close();
  });

  it("a live owner whose socket file was removed (a clean-up of old files in /tmp) is still refused to others", async () => {
    const file = join(await tempDir(), "state.json");
    const holder = await startHolder(file);
    for (const name of await readdir(`${file}.lock`)) if (name.endsWith(".sock")) await rm(join(`${file}.lock`, name));
    const error = await lockedError(new AioKV(new FileBackend(file, { staleAfter })));
    expect(error.owner?.pid).toBe(holder.child.pid);
    expect(await holder.ask("set still 1")).toBe("ok");
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
    expect(await generations(file)).toStrictEqual(["8.json"]);
    await kv.close();
    expect(await generations(file)).toStrictEqual(["8.released"]);
    await rm(`${file}.lock`, { recursive: true });
    await mkdir(`${file}.lock`);
    await writeFile(join(`${file}.lock`, "3.json"), "");
    const next = new AioKV(new FileBackend(file, { staleAfter }));
    await lockedError(next);
    const old = new Date(Date.now() - staleAfter - 100);
    await utimes(join(`${file}.lock`, "3.json"), old, old);
    await next.set("b", 2);
    await next.close();
  });

  it("a fresh lock whose record names this process's own pid, boot and start time on this host, without a socket, is an earlier process's (a restarted container's pid 1): taken over at once; this process's own is not", async () => {
    const file = join(await tempDir(), "state.json");
    const boot = (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim();
    const stat = await readFile("/proc/self/stat", "utf8");
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    // All that tells it from this process is its identity token ("elsewhere"); no socket to ask.
    await plantLock(file, { pid: process.pid, host: hostname(), boot, start }, 4);
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    const started = Date.now();
    await kv.set("a", 1);
    expect(Date.now() - started).toBeLessThan(staleAfter / 2);
    expect(await generations(file)).toStrictEqual(["5.json"]);
    // This process's own holder, with its socket gone too, still counts as alive.
    for (const name of await readdir(`${file}.lock`)) if (name.endsWith(".sock")) await rm(join(`${file}.lock`, name));
    const error = await lockedError(new AioKV(new FileBackend(file, { staleAfter })));
    expect(error.owner?.pid).toBe(process.pid);
    await kv.set("b", 2);
    await kv.close();
    expect(await generations(file)).toStrictEqual(["5.released"]);
  });

  it("an owner paused past staleAfter (SIGSTOP) loses the lock to a contender, and its write on waking is refused", async () => {
    const file = join(await tempDir(), "state.json");
    const { holder, kv } = await takenOverWhilePaused(file);
    expect(await holder.ask("set stale 2")).toBe("error StoreLockedError");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: holder.child.pid, successor: true });
    await kv.close();
  });

  it("an owner that lost its lock while paused is refused while the other owns the file, then takes it back from the file as the other left it", async () => {
    const file = join(await tempDir(), "state.json");
    const { holder, kv } = await takenOverWhilePaused(file);
    // Its memory is stale: while the other owns the file, reads are refused too.
    expect(await holder.ask("get successor")).toBe("error StoreLockedError");
    await kv.close();
    expect(await holder.ask("get successor")).toBe("true");
    expect(await holder.ask("set back 1")).toBe("ok");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: holder.child.pid, successor: true, back: 1 });
    await lockedError(new AioKV(new FileBackend(file, { staleAfter })));
  });

  it("an owner whose thread pool is blocked past 2x staleAfter (slow DNS, a stuck open) keeps its lock: it is refreshed on the event loop", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const holder = await startHolder(file);
    // libuv's pool has 4 threads; four FIFO opens without a writer hold them all.
    expect(await holder.ask(`block ${dir} 4`)).toBe("blocked");
    await sleep(2 * staleAfter + 500);
    await lockedError(new AioKV(new FileBackend(file, { staleAfter })));
    for (let i = 0; i < 4; i++) closeSync(openSync(join(dir, `fifo-${i}`), "w"));
    expect(await holder.ask("set after 1")).toBe("ok");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: holder.child.pid, after: 1 });
  });

  it("an owner whose lock directory was removed by hand, and retaken by another with the same generation number, is refused", async () => {
    const file = join(await tempDir(), "state.json");
    const holder = await startHolder(file);
    await rm(`${file}.lock`, { recursive: true });
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    await kv.set("other", true);
    // The same name, 1.json, as the holder's: only the file's identity tells them apart.
    expect(await generations(file)).toStrictEqual(["1.json"]);
    expect(await holder.ask("set mine 1")).toBe("error StoreLockedError");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: holder.child.pid, other: true });
    await kv.close();
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
    // --kill-child: a SIGKILL of unshare takes its child with it, as stopping a container does.
    const container = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];
    const first = await startHolder(file, container);
    first.child.kill("SIGKILL");
    await exited(first.child);
    const started = Date.now();
    const second = await startHolder(file, container);
    expect(Date.now() - started).toBeLessThan(staleAfter);
    expect(await second.ask("set restarted 1")).toBe("ok");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: 1, restarted: 1 });
  });

  it("a second container on the same host and file, also pid 1, is refused while the first runs (its socket answers for it)", async () => {
    const file = join(await tempDir(), "state.json");
    const container = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];
    const first = await startHolder(file, container);
    expect(await runFixture("race.mjs", [file, "0"], container)).toStrictEqual(["ready", "locked"]);
    expect(await first.ask("set still 1")).toBe("ok");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: 1, still: 1 });
  });

  it("an owner that exits without close() releases the lock: its generation is marked released, and the next owner gets in at once", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const holder = await startHolder(file);
    holder.child.stdin.write("exit\n");
    await exited(holder.child);
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
    expect(await generations(file)).toStrictEqual(["1.released"]);
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    await kv.set("next", 1);
    expect(await generations(file)).toStrictEqual(["2.json"]);
    await kv.close();
    expect(await generations(file)).toStrictEqual(["2.released"]);
  });

  it("a disk that refuses the lock record (RLIMIT_FSIZE 0) fails with StoreIOError and leaves nothing that blocks the next owner", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const lines = await runFixture("race.mjs", [file, "0"], ["sh", "-c", 'ulimit -f 0 && exec "$@"', "sh"]);
    expect(lines).toStrictEqual(["ready", expect.stringMatching(/^error Cannot lock store .*EFBIG/)]);
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    await kv.set("a", 1);
    await kv.close();
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
    expect(await generations(file)).toStrictEqual(["1.released"]);
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
    expect((await readdir(dir)).sort()).toStrictEqual([...others, "state.json.lock"].sort());
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
