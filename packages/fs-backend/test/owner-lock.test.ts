import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AioKV, StoreLockedError } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it, onTestFinished } from "vitest";
import { tempDir } from "./file-harness.js";

const holderScript = fileURLToPath(new URL("fixtures/holder.mjs", import.meta.url));
const staleAfter = 2000;

interface Holder {
  child: ChildProcessWithoutNullStreams;
  /** Sends a command line and resolves the holder's answer. */
  ask(line: string): Promise<string>;
}

/** Starts a child that owns `file` and answers commands, once it reports ready. */
async function startHolder(file: string): Promise<Holder> {
  const child = spawn("node", [holderScript, file, String(staleAfter)]);
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

const exited = (child: ChildProcessWithoutNullStreams): Promise<unknown> => new Promise((resolve) => child.once("exit", resolve));

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
    const dir = await tempDir();
    const file = join(dir, "state.json");
    await mkdir(`${file}.lock`);
    const since = new Date().toISOString();
    await writeFile(join(`${file}.lock`, "owner.json"), JSON.stringify({ pid: 1, host: "elsewhere", since }));
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    const error = await lockedError(kv);
    expect(error.owner).toStrictEqual({ pid: 1, host: "elsewhere", since });
    const lockAge = Date.now() - (await stat(`${file}.lock`)).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, staleAfter - lockAge + 200));
    await kv.set("taken", true);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ taken: true });
    await kv.close();
  });

  it("an owner paused past staleAfter (SIGSTOP) loses the lock, and its write on waking is refused", async () => {
    const file = join(await tempDir(), "state.json");
    const holder = await startHolder(file);
    holder.child.kill("SIGSTOP");
    const kv = new AioKV(new FileBackend(file, { staleAfter }));
    await lockedError(kv);
    await new Promise((resolve) => setTimeout(resolve, staleAfter + 300));
    await kv.set("successor", true);
    holder.child.kill("SIGCONT");
    expect(await holder.ask("set stale 1")).toBe("error StoreLockedError");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ holder: holder.child.pid, successor: true });
    await kv.close();
  });

  it("an owner that exits without close() releases the lock", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const holder = await startHolder(file);
    holder.child.stdin.write("exit\n");
    await exited(holder.child);
    expect(await readdir(dir)).toStrictEqual(["state.json"]);
  });

  it("the next owner removes the temp files that killed writers left", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const leftovers = [".state.json.123.deadbeef.aiokv.tmp", ".state.json.456.cafef00d.aiokv.tmp"];
    for (const name of leftovers) await writeFile(join(dir, name), '{"partial');
    await writeFile(join(dir, ".other.json.123.deadbeef.aiokv.tmp"), "not ours");
    const kv = new AioKV(new FileBackend(file));
    await kv.get("a");
    await kv.close();
    expect((await readdir(dir)).sort()).toStrictEqual([".other.json.123.deadbeef.aiokv.tmp"]);
  });
});
