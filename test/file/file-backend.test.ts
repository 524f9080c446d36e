import { execFileSync } from "node:child_process";
import { chmod, chown, lstat, mkdir, readdir, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { AioKV, isStoreIOError, StoreIOError } from "@aiokv/core";
import { recordingLogger } from "@aiokv/test-suite";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.js";
import { fixture } from "../helpers/processes.js";

const shortWrite = fixture("short-write.mjs");

/** Runs the short-write fixture in a child whose files may not grow past `limitKiB`. */
function underFileSizeLimit(limitKiB: number, mode: string, file: string, bytes: number): Record<string, unknown> {
  const out = execFileSync("bash", ["-c", `ulimit -f ${limitKiB} && exec node "$@"`, "bash", shortWrite, mode, file, String(bytes)], {
    encoding: "utf8",
  });
  return JSON.parse(out) as Record<string, unknown>;
}

async function rejection(promise: Promise<unknown>): Promise<StoreIOError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isStoreIOError(error)).toBe(true);
  return error as StoreIOError;
}

describe("FileBackend short writes (RLIMIT_FSIZE, as on a filling disk)", () => {
  const good = JSON.stringify({ small: "old" });

  it("write-file-atomic 7 resolves and renames a truncated file over the good one", async () => {
    const file = join(await tempDir(), "state.json");
    await writeFile(file, good);
    expect(underFileSizeLimit(4, "write-file-atomic", file, 10_000)).toStrictEqual({ ok: true });
    const text = await readFile(file, "utf8");
    expect(text.length).toBe(4096);
    expect(() => JSON.parse(text) as unknown).toThrow(SyntaxError);
  });

  it("write() rejects with EFBIG and leaves the old file and no temp file", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    await writeFile(file, good);
    expect(underFileSizeLimit(4, "file-backend", file, 10_000)).toStrictEqual({ ok: false, name: "Error", code: "EFBIG" });
    expect(await readFile(file, "utf8")).toBe(good);
    expect(await readdir(dir)).toStrictEqual(["state.json"]);
  });

  it("set() rejects with StoreIOError caused by EFBIG, rolls back, and the next set() succeeds", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    await writeFile(file, good);
    const failed = { ok: false, name: "StoreIOError", code: "EFBIG", cause: "EFBIG" };
    expect(underFileSizeLimit(4, "store", file, 10_000)).toStrictEqual({
      alone: failed,
      afterAlone: "old",
      batch: [failed, failed],
      afterBatch: { small: "old" },
      next: { ok: true },
      final: { small: "new" },
    });
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ small: "new" });
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
  });
});

describe("FileBackend across processes", () => {
  it("a set() awaited just before process.exit() is in the file", async () => {
    const file = join(await tempDir(), "state.json");
    for (let run = 0; run < 5; run++) {
      execFileSync("node", [fixture("set-then-exit.mjs"), file, `run${run}`, JSON.stringify({ run })]);
    }
    const stored = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    expect(stored).toStrictEqual({ run0: { run: 0 }, run1: { run: 1 }, run2: { run: 2 }, run3: { run: 3 }, run4: { run: 4 } });
  });
});

describe("FileBackend path faults", () => {
  it("a parent path that is a file: reads and writes reject with ENOTDIR, delete() and clear() resolve false", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "blocker"), "not a directory");
    const logger = recordingLogger();
    const kv = new AioKV(new FileBackend(join(dir, "blocker", "state.json")), { logger });
    const failed = await rejection(kv.get("a"));
    expect(failed.code).toBe("ENOTDIR");
    expect(failed.operation).toBe("lock");
    expect(failed.message).toMatch(new RegExp(`^Cannot lock store ${JSON.stringify(kv.location).replaceAll("/", "\\/")}: ENOTDIR`));
    expect((failed.cause as NodeJS.ErrnoException).code).toBe("ENOTDIR");
    const unlocked = new AioKV(new FileBackend(join(dir, "blocker", "state.json")), { lock: false });
    const read = await rejection(unlocked.get("a"));
    expect([read.operation, read.code]).toStrictEqual(["read", "ENOTDIR"]);
    expect((await rejection(kv.set("a", 1))).code).toBe("ENOTDIR");
    expect((await rejection(kv.getAll())).code).toBe("ENOTDIR");
    expect(await kv.delete("a")).toBe(false);
    expect(await kv.clear()).toBe(false);
    expect(logger.calls.map(([message]) => message)).toStrictEqual([
      `Cannot delete key "a" in store ${JSON.stringify(kv.location)}`,
      `Cannot clear in store ${JSON.stringify(kv.location)}`,
    ]);
    expect(await readFile(join(dir, "blocker"), "utf8")).toBe("not a directory");
    // The fault gone, the same store works.
    await rm(join(dir, "blocker"));
    await kv.set("a", 1);
    expect(JSON.parse(await readFile(join(dir, "blocker", "state.json"), "utf8"))).toStrictEqual({ a: 1 });
    await kv.close();
  });

  it("a state path that is a directory: reads reject with EISDIR, clear() resolves false, the directory stays", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    await mkdir(file);
    const kv = new AioKV(new FileBackend(file), { logger: recordingLogger() });
    expect((await rejection(kv.get("a"))).code).toBe("EISDIR");
    expect((await rejection(kv.set("a", 1))).code).toBe("EISDIR");
    expect(await kv.clear()).toBe(false);
    expect((await stat(file)).isDirectory()).toBe(true);
    await rm(file, { recursive: true });
    await kv.set("a", 1);
    expect(await kv.get("a")).toBe(1);
    await kv.close();
  });

  it("a state path replaced by a directory after loading: set() rejects, rolls back, and works once it is gone", async () => {
    const dir = await tempDir();
    const file = join(dir, "state.json");
    const kv = new AioKV(new FileBackend(file));
    await kv.set("a", 1);
    // The state path becomes a directory after the first load: the rename fails with EISDIR.
    await rm(file);
    await mkdir(file);
    await writeFile(join(file, "inside"), "x");
    const error = await rejection(kv.set("b", 2));
    expect(error.operation).toBe("write");
    expect(["EISDIR", "ENOTEMPTY", "EEXIST"]).toContain(error.code);
    expect(await kv.getAll()).toStrictEqual({ a: 1 });
    // The fault gone, the next set() writes the whole document, without the failed change.
    await rm(file, { recursive: true });
    await kv.set("c", 3);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: 1, c: 3 });
    await kv.close();
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
  });
});

describe("FileBackend and other writers", () => {
  it("a state file removed by someone else is written again whole by the next set()", async () => {
    const file = join(await tempDir(), "state.json");
    const kv = new AioKV(new FileBackend(file));
    await kv.set("a", 1);
    await rm(file);
    expect(await kv.get("a")).toBe(1);
    await kv.set("b", 2);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: 1, b: 2 });
    await kv.close();
  });

  it("a state file replaced by someone else is overwritten by the owner's document on the next set()", async () => {
    const file = join(await tempDir(), "state.json");
    const kv = new AioKV(new FileBackend(file));
    await kv.set("a", 1);
    await writeFile(file, '{"edited": "by hand"}');
    expect(await kv.get("edited")).toBe(undefined);
    await kv.set("b", 2);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: 1, b: 2 });
    await kv.close();
  });

  it("a file edited while no store is open is read as edited", async () => {
    const file = join(await tempDir(), "state.json");
    const kv = new AioKV(new FileBackend(file));
    await kv.set("a", 1);
    await kv.close();
    await writeFile(file, '{"a": 2}');
    const reopened = new AioKV(new FileBackend(file));
    expect(await reopened.get("a")).toBe(2);
    await reopened.close();
  });
});

describe("FileBackend files", () => {
  it("creates a new state file with mode 0600", async () => {
    const file = join(await tempDir(), "state.json");
    await new AioKV(new FileBackend(file)).set("a", 1);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("creates a new state file with the mode option, whatever the umask", async () => {
    const file = join(await tempDir(), "state.json");
    const umask = process.umask(0o077);
    try {
      await new AioKV(new FileBackend(file, { mode: 0o644 })).set("a", 1);
    } finally {
      process.umask(umask);
    }
    expect((await stat(file)).mode & 0o777).toBe(0o644);
  });

  it("keeps the mode of an existing state file", async () => {
    const file = join(await tempDir(), "state.json");
    await writeFile(file, "{}");
    await chmod(file, 0o640);
    await new AioKV(new FileBackend(file)).set("a", 1);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
  });

  it.skipIf(process.getuid?.() !== 0)("keeps the owner of an existing state file (when running as root)", async () => {
    const file = join(await tempDir(), "state.json");
    await writeFile(file, "{}");
    await chown(file, 4321, 4321);
    const kv = new AioKV(new FileBackend(file));
    await kv.set("a", 1);
    await kv.close();
    const { uid, gid } = await stat(file);
    expect([uid, gid]).toStrictEqual([4321, 4321]);
  });

  it("a state file that is a symlink stays one, and its target is updated", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "data"));
    const target = join(dir, "data", "real.json");
    const link = join(dir, "state.json");
    await writeFile(target, '{"a": 1}');
    await symlink(relative(dir, target), link);
    const kv = new AioKV(new FileBackend(link));
    await kv.set("b", 2);
    await kv.close();
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(JSON.parse(await readFile(target, "utf8"))).toStrictEqual({ a: 1, b: 2 });
    expect((await readdir(join(dir, "data"))).sort()).toStrictEqual(["real.json", "real.json.lock"]);
  });

  it("a dangling symlink gets its target created, and clear() removes the target, not the link", async () => {
    const dir = await tempDir();
    const target = join(dir, "real.json");
    const link = join(dir, "state.json");
    await symlink("real.json", link);
    const kv = new AioKV(new FileBackend(link));
    await kv.set("a", 1);
    expect(JSON.parse(await readFile(target, "utf8"))).toStrictEqual({ a: 1 });
    expect(await kv.clear()).toBe(true);
    expect(await readlink(link)).toBe("real.json");
    expect((await readdir(dir)).sort()).toStrictEqual(["real.json.lock", "state.json"]);
    await kv.set("b", 2);
    expect(JSON.parse(await readFile(target, "utf8"))).toStrictEqual({ b: 2 });
  });

  it("creates missing parent directories on the first write", async () => {
    const file = join(await tempDir(), "a", "b", "state.json");
    await new AioKV(new FileBackend(file)).set("a", 1);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ a: 1 });
  });

  it("leaves no temp file behind after many writes", async () => {
    const dir = await tempDir();
    const kv = new AioKV(new FileBackend(join(dir, "state.json"), { sync: false }));
    for (let i = 0; i < 20; i++) await Promise.all([kv.set(`k${i}`, i), kv.set("x", i)]);
    await kv.close();
    expect((await readdir(dir)).sort()).toStrictEqual(["state.json", "state.json.lock"]);
  });

  it("writes one key per line, readable by JSON.parse", async () => {
    const file = join(await tempDir(), "state.json");
    const kv = new AioKV(new FileBackend(file));
    await kv.set("last_command", "ping");
    await kv.set("seen", [1, 2]);
    expect(await readFile(file, "utf8")).toBe('{\n  "last_command": "ping",\n  "seen": [1,2]\n}\n');
  });

  it("location is the absolute path; relative paths resolve against the current directory", () => {
    expect(new FileBackend("state.json").location).toBe(join(process.cwd(), "state.json"));
  });

  it("rejects a path that is not a non-empty string, and a mode out of range", () => {
    expect(() => new FileBackend("")).toThrow(TypeError);
    expect(() => new FileBackend(42 as unknown as string)).toThrow(new TypeError("Cannot open store: expected a file path, received 42"));
    expect(() => new FileBackend("s.json", { mode: 0o10000 })).toThrow(RangeError);
    expect(() => new FileBackend("s.json", { mode: 1.5 })).toThrow(RangeError);
  });
});
