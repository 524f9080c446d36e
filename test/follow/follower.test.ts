// Followers (readOnly: true) on real files: what they refuse and leave untouched, a file someone
// else corrupts, fake timers, the poll alone, and that close() (or no close() at all) stops them.
import { lstat, readdir, readFile, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MemoryBackend } from "@aiokv/memory-backend";
import { eventually } from "@aiokv/test-suite";
import { AioKV, CorruptStoreError, FileBackend, isStoreReadOnlyError, SchemaMismatchError, StoreReadOnlyError, type Backend, type StoreChange } from "aiokv";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { fixture, sleep } from "../helpers/processes.js";
import { tempDir, tempFile } from "../helpers/temp.js";
import { run } from "./child.js";


/** What a directory holds, with each entry's size and modification time. */
async function listing(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).sort();
  return Promise.all(
    names.map(async (name) => {
      const info = await lstat(join(dir, name));
      return `${name} ${info.size} ${info.mtimeMs}`;
    }),
  );
}

/** A store owned by another process (test/fixtures/holder.mjs), with `set` as its one change. */
async function ownerProcess(file: string): Promise<{ set(key: string, json: string): Promise<void> }> {
  const holder = run([fixture("holder.mjs"), file, "10000"]);
  await holder.line((line) => line === "ready");
  let answered = 0;
  return {
    async set(key, json) {
      holder.process.stdin.write(`set ${key} ${json}\n`);
      const at = ++answered;
      // Answers come in order: the at-th is this one's.
      await holder.line(() => holder.stdout.filter((line) => line === "ok" || line.startsWith("error")).length >= at);
      expect(holder.stdout.filter((line) => line === "ok" || line.startsWith("error"))[at - 1]).toBe("ok");
    },
  };
}

describe("a follower on a file", () => {
  it("refuses every change while another process owns the file, and leaves the file and its directory as they were", async () => {
    const file = await tempFile();
    const owner = await ownerProcess(file);
    await owner.set("a", '{"n":1}');
    const bytes = await readFile(file);
    const before = await listing(join(file, ".."));
    await using follower = new AioKV(file, { readOnly: true });
    expect(await follower.getAll()).toMatchObject({ a: { n: 1 } });
    const calls: Array<() => Promise<unknown>> = [
      () => follower.set("a", 2),
      () => follower.set("stamp"),
      () => follower.setMany([["b", 1]]),
      () => follower.update("a", () => 3),
      () => follower.delete("a"),
      () => follower.deleteMany(["a", "holder"]),
      () => follower.remove("a"),
      () => follower.removeMany(["a"]),
      () => follower.clear(),
      () => follower.quarantine(),
    ];
    for (const call of calls) {
      // A rejection, never a synchronous throw.
      const outcome = call();
      expect(outcome).toBeInstanceOf(Promise);
      const error = await outcome.then(
        () => expect.unreachable("a change on a follower resolved"),
        (error: unknown) => error,
      );
      expect(error).toBeInstanceOf(StoreReadOnlyError);
      expect(isStoreReadOnlyError(error)).toBe(true);
      expect((error as Error).message).toContain(`on store ${JSON.stringify(file)}: it is read-only`);
    }
    await follower.flush();
    await follower.close();
    expect(await readFile(file)).toStrictEqual(bytes);
    // No lock taken over, no temp file, the file not even touched.
    expect(await listing(join(file, ".."))).toStrictEqual(before);
    // The owner was never disturbed: it goes on writing.
    await owner.set("b", "2");
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ a: { n: 1 }, b: 2 });
  });

  it("of a store nobody has opened creates nothing: no lock directory, no file", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const follower = new AioKV(file, { readOnly: true });
    expect(await follower.getAll()).toStrictEqual({});
    await expect(follower.set("a", 1)).rejects.toBeInstanceOf(StoreReadOnlyError);
    await follower.close();
    expect(await readdir(dir)).toStrictEqual([]);
  });

  it("rejects reads with CorruptStoreError while someone else's write leaves the file corrupt, then follows the owner's next write", async () => {
    const file = await tempFile();
    const owner = await ownerProcess(file);
    await owner.set("a", "1");
    await using follower = new AioKV(file, { readOnly: true });
    const seen: StoreChange[] = [];
    follower.watch((change) => void seen.push(change));
    expect(await follower.get("a")).toBe(1);
    // Not the owner, and not atomic: what a text editor or a careless script does.
    await writeFile(file, '{\n  "holder": 1,\n  "a": 2,\n');
    const error = await eventually(async () => {
      const caught = await follower.get("a").then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(caught).toBeInstanceOf(CorruptStoreError);
      return caught as CorruptStoreError;
    });
    expect(error.location).toBe(file);
    await expect(follower.keys()).rejects.toBeInstanceOf(CorruptStoreError);
    expect(seen).toStrictEqual([]);
    // The owner's memory is the truth: its next write replaces the file whole.
    await owner.set("b", '"fixed"');
    await eventually(async () => expect(await follower.get("b")).toBe("fixed"));
    expect(await follower.get("a")).toBe(1);
    expect(seen).toStrictEqual([{ type: "set", key: "b", value: "fixed" }]);
  });

  it("checks each document it reads with the schema, as a load does", async () => {
    const file = await tempFile();
    await using owner = new AioKV(file);
    await owner.set("n", 1);
    await using follower = new AioKV(file, { readOnly: true, schema: z.object({ n: z.number() }) });
    expect(await follower.get("n")).toBe(1);
    await owner.set("n", "one");
    await eventually(async () => expect(await follower.get("n").catch((error: unknown) => error)).toBeInstanceOf(SchemaMismatchError));
    await owner.set("n", 2);
    await eventually(async () => expect(await follower.get("n")).toBe(2));
  });

  it("follows a symlinked state file: the target's directory is watched", async () => {
    const dir = await tempDir();
    const target = join(dir, "real.json");
    const link = join(dir, "state.json");
    await symlink(target, link);
    await using owner = new AioKV(link);
    await owner.set("a", 1);
    await using follower = new AioKV(link, { readOnly: true, pollInterval: 3_600_000 });
    expect(await follower.get("a")).toBe(1);
    await owner.set("a", 2);
    await eventually(async () => expect(await follower.get("a")).toBe(2));
  });

  it("reports a file replaced by a rename from another program, and a removed file as a clear", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    await writeFile(file, '{"a": 1}');
    await using follower = new AioKV(file, { readOnly: true, pollInterval: 3_600_000 });
    const seen: StoreChange[] = [];
    follower.watch((change) => void seen.push(change));
    expect(await follower.getAll()).toStrictEqual({ a: 1 });
    // The same value written another way is no change; a pretty-printed one is the same value.
    await writeFile(join(dir, "next.json"), '{\n    "a": 1.0,\n    "b": [\n      1,\n      2\n    ]\n}');
    await rename(join(dir, "next.json"), file);
    await eventually(() => expect(seen).toStrictEqual([{ type: "set", key: "b", value: [1, 2] }]));
    await writeFile(join(dir, "next.json"), '{"b": [1, 2]}');
    await rename(join(dir, "next.json"), file);
    await eventually(() => expect(seen.slice(1)).toStrictEqual([{ type: "delete", key: "a" }]));
    await rename(file, join(dir, "gone.json"));
    await eventually(() => expect(seen.slice(2)).toStrictEqual([{ type: "clear" }]));
    expect(await follower.getAll()).toStrictEqual({});
  });
});

describe("a follower under fake timers", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  // A hang is the failure this guards against: fail fast instead of at the suite's timeout.
  it("reads, and sees an owner's write, without advancing time (a file and a MemoryBackend)", { timeout: 10_000 }, async () => {
    const file = await tempFile();
    const memory = new MemoryBackend();
    const pairs: Array<[string, AioKV, AioKV]> = [
      ["file", new AioKV(file), new AioKV(file, { readOnly: true })],
      ["memory", new AioKV(memory), new AioKV(memory, { readOnly: true })],
    ];
    vi.useFakeTimers();
    for (const [name, owner, follower] of pairs) {
      await owner.set("a", 1);
      expect(await follower.get("a"), name).toBe(1);
      expect(await follower.getAll(), name).toStrictEqual({ a: 1 });
      // Told by fs.watch (the file) or by the backend itself (memory): no timer on the way.
      const changed = new Promise<StoreChange>((resolve) => follower.watch(resolve));
      await owner.set("a", 2);
      expect(await changed, name).toStrictEqual({ type: "set", key: "a", value: 2 });
      expect(await follower.get("a"), name).toBe(2);
      await follower.close();
      await owner.close();
    }
  });

  it("on a backend without watch(), reads the document again on each read, without advancing time", { timeout: 10_000 }, async () => {
    const memory = new MemoryBackend();
    const bare: Backend = { location: memory.location, read: () => memory.read(), write: (pieces) => memory.write(pieces), remove: () => memory.remove() };
    vi.useFakeTimers();
    const owner = new AioKV(memory);
    const follower = new AioKV(bare, { readOnly: true });
    await owner.set("a", 1);
    expect(await follower.get("a")).toBe(1);
    await owner.set("a", 2);
    expect(await follower.get("a")).toBe(2);
    await follower.close();
    await owner.close();
  });
});

describe("a follower that polls", () => {
  it("sees an owner's writes with fs.watch off, within about the poll interval", async () => {
    const file = await tempFile();
    await using owner = new AioKV(file, { sync: false });
    await owner.set("a", 0);
    await using follower = new AioKV(file, { readOnly: true, fsWatch: false, pollInterval: 50 });
    const seen: StoreChange[] = [];
    follower.watch((change) => void seen.push(change));
    expect(await follower.get("a")).toBe(0);
    const delays: number[] = [];
    for (let i = 1; i <= 10; i++) {
      const started = performance.now();
      await owner.set("a", i);
      await eventually(async () => expect(await follower.get("a")).toBe(i));
      delays.push(performance.now() - started);
    }
    await owner.delete("a");
    await eventually(() => expect(seen.at(-1)).toStrictEqual({ type: "delete", key: "a" }));
    expect(seen).toStrictEqual([...Array.from({ length: 10 }, (_, i) => ({ type: "set", key: "a", value: i + 1 })), { type: "delete", key: "a" }]);
    console.log(`Polling alone every 50 ms: delay from the set to the follower's read max ${Math.max(...delays).toFixed(1)} ms`);
    expect(Math.max(...delays)).toBeLessThan(5000);
  });

  it("FileBackend.watch() alone: the poll tells of a file created, replaced and removed; stop() ends it", async () => {
    const dir = await tempDir();
    const file = join(dir, "sub", "state.json");
    let calls = 0;
    const stop = new FileBackend(file, { fsWatch: false, pollInterval: 20 }).watch(() => calls++);
    await sleep(100);
    expect(calls).toBe(0);
    // The directory does not exist yet: the poll sees the file once it is there.
    const writer = new AioKV(file, { lock: false, sync: false });
    await writer.set("a", 1);
    await eventually(() => expect(calls).toBe(1));
    await writer.set("a", 22);
    await eventually(() => expect(calls).toBe(2));
    await writer.clear();
    await eventually(() => expect(calls).toBe(3));
    stop();
    await writer.set("a", 3);
    await sleep(100);
    expect(calls).toBe(3);
  });

  it("FileBackend.watch() with fs.watch: a change is told at once, not at the next poll; events of other files are not", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    await writeFile(file, "{}");
    let calls = 0;
    const stop = new FileBackend(file, { pollInterval: 3_600_000 }).watch(() => calls++);
    await writeFile(join(dir, "other.json"), "{}");
    await writeFile(join(dir, "state.json.bak"), "{}");
    await sleep(100);
    expect(calls).toBe(0);
    await writeFile(join(dir, "next"), '{"a": 1}');
    await rename(join(dir, "next"), file);
    await eventually(() => expect(calls).toBeGreaterThan(0), 2000);
    stop();
    const after = calls;
    await writeFile(file, "{}");
    await sleep(100);
    expect(calls).toBe(after);
  });

  it("refuses a poll interval out of its range", () => {
    for (const pollInterval of [0, 9, 1.5, 3_600_001, Number.NaN]) {
      expect(() => new FileBackend("state.json", { pollInterval })).toThrow(RangeError);
    }
    expect(() => new AioKV("state.json", { readOnly: true, pollInterval: 5 })).toThrow(
      'Cannot open store "state.json": pollInterval must be a whole number of milliseconds from 10 to 3600000, received 5',
    );
  });
});

describe("a follower's close()", () => {
  it("stops its watch: nothing is reported after it, and later calls reject", async () => {
    const file = await tempFile();
    await using owner = new AioKV(file, { sync: false });
    await owner.set("a", 1);
    const follower = new AioKV(file, { readOnly: true, pollInterval: 10 });
    const seen: StoreChange[] = [];
    follower.watch((change) => void seen.push(change));
    expect(await follower.get("a")).toBe(1);
    await owner.set("a", 2);
    await eventually(() => expect(seen).toHaveLength(1));
    await follower.close();
    for (let i = 3; i < 10; i++) await owner.set("a", i);
    await owner.clear();
    await sleep(150);
    expect(seen).toStrictEqual([{ type: "set", key: "a", value: 2 }]);
    await expect(follower.get("a")).rejects.toThrow("it is closed");
  });

  it("is not needed for the process to exit: a follower left open keeps nothing alive", async () => {
    const file = await tempFile();
    await using owner = new AioKV(file);
    await owner.set("a", 1);
    const child = run([fixture("follow-idle.mjs"), file, "10"]);
    await child.line((line) => line.includes('"start"'));
    await owner.set("a", 2);
    await child.line((line) => line.includes('"change"'));
    expect(await child.exit(10_000)).toBe(0);
    expect(child.stdout.map((line) => JSON.parse(line) as unknown)).toStrictEqual([{ start: { a: 1 } }, { change: { type: "set", key: "a", value: 2 } }]);
  });
});
