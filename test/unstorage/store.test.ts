// What the unstorage driver keeps from aiokv: one write per setItems and clear, a store shared
// through `base`, typed errors for a corrupt or locked file (never a silent reset), the file
// backend's options, dispose releasing the file, and the CommonJS build.
import { stat, writeFile, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { AioKV, CorruptStoreError, InvalidStoreShapeError, isStoreLockedError, StoreLockedError } from "@aiokv/core";
import { MemoryBackend } from "@aiokv/memory-backend";
import { aiokvDriver, type AioKVDriverOptions } from "@aiokv/unstorage";
import { createStorage, type Driver, type Storage, type StorageValue } from "unstorage";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { tempFile } from "../helpers/temp.js";

function open(driver: Driver): Storage {
  const storage = createStorage({ driver });
  onTestFinished(() => storage.dispose());
  return storage;
}

/** A MemoryBackend whose writes are counted. */
function counted(): { backend: MemoryBackend; writes: () => number } {
  const backend = new MemoryBackend();
  const write = vi.spyOn(backend, "write");
  return { backend, writes: () => write.mock.calls.length };
}

describe("one write per call", () => {
  it("setItems writes every item in one write", async () => {
    const { backend, writes } = counted();
    const storage = open(aiokvDriver({ backend }));
    await storage.setItems(Array.from({ length: 50 }, (_, i) => ({ key: `item:${i}`, value: { i } })));
    expect(writes()).toBe(1);
    expect((await storage.getKeys()).length).toBe(50);
  });

  it("setItems refusing one value writes none", async () => {
    const { backend, writes } = counted();
    const driver = aiokvDriver({ backend });
    const storage = open(driver);
    await expect(driver.setItems([{ key: "ok", value: "1" }, { key: "bad", value: 1n as unknown as string }], {})).rejects.toThrow(TypeError);
    expect(writes()).toBe(0);
    expect(await storage.getKeys()).toStrictEqual([]);
  });

  it("clear(base) removes the keys under it in one write, and writes nothing when there are none", async () => {
    const { backend, writes } = counted();
    const driver = aiokvDriver({ backend });
    const storage = open(driver);
    await storage.setItems<StorageValue>([...Array.from({ length: 20 }, (_, i) => ({ key: `cache:${i}`, value: i })), { key: "keep", value: true }]);
    await driver.clear("cache", {});
    expect(writes()).toBe(2);
    await driver.clear("cache", {});
    expect(writes()).toBe(2);
    expect(await storage.getKeys()).toStrictEqual(["keep"]);
    await storage.clear();
    expect(writes()).toBe(3);
  });

  it("getItems reads without writing", async () => {
    const { backend, writes } = counted();
    const storage = open(aiokvDriver({ backend }));
    await storage.getItems(["a", "b"]);
    expect(writes()).toBe(0);
  });
});

describe("the base option", () => {
  it("keeps each driver's items under its base in one shared store, each seeing only its own", async () => {
    const backend = new MemoryBackend();
    const kv = new AioKV(backend);
    onTestFinished(() => kv.close());
    await kv.set("bot_state", { runs: 3 });
    const sessions = open(aiokvDriver({ store: kv, base: "sessions" }));
    const cache = open(aiokvDriver({ store: kv, base: "cache:" }));
    await sessions.setItem("u1", "s-1");
    await cache.setItem("u1", "c-1");
    await cache.setItem("pages:home", "<h1>");
    expect(await sessions.getItem("u1")).toBe("s-1");
    expect(await cache.getItem("u1")).toBe("c-1");
    expect(await sessions.getKeys()).toStrictEqual(["u1"]);
    expect(await cache.getKeys()).toStrictEqual(["u1", "pages:home"]);
    expect(await kv.keys()).toStrictEqual(["bot_state", "sessions:u1", "cache:u1", "cache:pages:home"]);
    await cache.clear();
    expect(await kv.keys()).toStrictEqual(["bot_state", "sessions:u1"]);
    expect(await kv.get("bot_state")).toStrictEqual({ runs: 3 });
  });
});

describe("a store given as `store`", () => {
  it("is the driver's instance, and stays open after dispose (its owner closes it)", async () => {
    const kv = new AioKV(new MemoryBackend());
    onTestFinished(() => kv.close());
    const driver = aiokvDriver({ store: kv });
    expect(driver.getInstance()).toBe(kv);
    expect(driver.name).toBe("aiokv");
    const storage = createStorage({ driver });
    await storage.setItem("a", "1");
    await storage.dispose();
    expect(await kv.get("a")).toBe("1");
  });

  it("reads values another program wrote with aiokv: JSON data comes back as it is", async () => {
    const kv = new AioKV(new MemoryBackend({ text: '{"count": 3, "seen": [1, 2], "name": "bot", "flag": false}' }));
    onTestFinished(() => kv.close());
    const storage = open(aiokvDriver({ store: kv }));
    expect(await storage.getItem("count")).toBe(3);
    expect(await storage.getItem("seen")).toStrictEqual([1, 2]);
    expect(await storage.getItem("name")).toBe("bot");
    expect(await storage.getItem("flag")).toBe(false);
    expect(await storage.getItemRaw("seen")).toStrictEqual([1, 2]);
  });
});

describe("dispose", () => {
  it("closes the store it opened: later calls reject, and the file is free for another", async () => {
    const path = await tempFile();
    const storage = createStorage({ driver: aiokvDriver({ path }) });
    await storage.setItem("a", "1");
    await storage.dispose();
    await expect(storage.getItem("a")).rejects.toThrow(/it is closed/);
    const next = open(aiokvDriver({ path }));
    expect(await next.getItem("a")).toBe(1);
  });

  it("closes the store it made on a backend (a second store on it gets the lock)", async () => {
    const backend = new MemoryBackend();
    const storage = createStorage({ driver: aiokvDriver({ backend }) });
    await storage.setItem("a", "x");
    await storage.dispose();
    const kv = new AioKV(backend);
    expect(await kv.get("a")).toBe("x");
    await kv.close();
  });

  it("may be called twice", async () => {
    const storage = createStorage({ driver: aiokvDriver({ path: await tempFile() }) });
    await storage.setItem("a", "1");
    await storage.dispose();
    await storage.dispose();
  });
});

describe("errors are aiokv's, never a silent reset", () => {
  it("a corrupt file rejects every call with CorruptStoreError and stays as it is", async () => {
    const path = await tempFile();
    const corrupt = '{"user:1": "{\\"name\\":\\"Ada\\"}", "user:2": ';
    await writeFile(path, corrupt);
    const driver = aiokvDriver({ path });
    const storage = open(driver);
    const calls: Array<() => Promise<unknown>> = [
      () => storage.getItem("user:1"),
      () => storage.hasItem("user:1"),
      () => storage.getKeys(),
      () => storage.getItems(["user:1"]),
      () => storage.getItemRaw("user:1"),
      () => storage.setItem("user:3", "x"),
      () => storage.setItems([{ key: "user:3", value: "x" }]),
      () => storage.setItemRaw("user:3", new Uint8Array([1])),
      () => storage.removeItem("user:1"),
      () => storage.clear(),
      () => Promise.resolve(driver.clear("user", {})),
    ];
    for (const call of calls) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CorruptStoreError);
      expect((error as Error).message).toMatch(/^Cannot load store ".*state\.json": not valid JSON at line 1, column/);
    }
    await expect(storage.watch(() => undefined)).rejects.toBeInstanceOf(CorruptStoreError);
    expect(await readFile(path, "utf8")).toBe(corrupt);
  });

  it("a document that is not an object is InvalidStoreShapeError, on MemoryBackend too", async () => {
    const storage = open(aiokvDriver({ backend: new MemoryBackend({ text: "[1, 2]" }) }));
    await expect(storage.getKeys()).rejects.toBeInstanceOf(InvalidStoreShapeError);
    const seeded = open(aiokvDriver({ backend: new MemoryBackend({ text: "{" }) }));
    await expect(seeded.getItem("a")).rejects.toBeInstanceOf(CorruptStoreError);
  });

  it("a file another store owns rejects with StoreLockedError; the owner's items stay", async () => {
    const path = await tempFile();
    const owner = open(aiokvDriver({ path }));
    await owner.setItem("a", "mine");
    const second = open(aiokvDriver({ path }));
    const error = await second.setItem("a", "theirs").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreLockedError);
    expect(isStoreLockedError(error)).toBe(true);
    expect((error as Error).message).toMatch(new RegExp(`it is locked by process ${process.pid} on `));
    expect(await owner.getItem("a")).toBe("mine");
  });
});

describe("options", () => {
  it("takes exactly one of path, backend and store", () => {
    const message = /Give exactly one of the options `path`, `backend` and `store`/;
    expect(() => aiokvDriver({} as AioKVDriverOptions)).toThrow(message);
    expect(() => aiokvDriver({ path: "a.json", backend: new MemoryBackend() } as unknown as AioKVDriverOptions)).toThrow(message);
    expect(() => aiokvDriver({ path: "" })).toThrow("`path` must be a non-empty string");
    expect(() => aiokvDriver({ store: {} as AioKV })).toThrow("`store` must be an AioKV");
    // @ts-expect-error: the file backend's options go with a path only
    aiokvDriver({ backend: new MemoryBackend(), sync: false });
  });

  it("passes the file backend's options on: mode, sync", async () => {
    const path = await tempFile();
    const storage = open(aiokvDriver({ path, mode: 0o640, sync: false }));
    await storage.setItem("a", "1");
    expect((await stat(path)).mode & 0o777).toBe(0o640);
    expect(aiokvDriver({ path: "x.json", sync: false }).options).toStrictEqual({ path: "x.json", sync: false });
  });

  it("passes the store's options on: lock, logger, clock", async () => {
    const backend = new MemoryBackend();
    const storage = open(aiokvDriver({ backend, lock: false, clock: () => 0, logger: { error: () => undefined } }));
    await storage.setItem("a", "1");
    // Without the owner lock a second store may open the same backend.
    const other = new AioKV(backend, { lock: false });
    expect(await other.get("a")).toBe("1");
    await other.close();
  });

  it("rejects an empty key given to the driver directly", async () => {
    const driver = aiokvDriver({ backend: new MemoryBackend() });
    onTestFinished(() => driver.dispose());
    await expect(Promise.resolve().then(() => driver.getItem("::"))).rejects.toThrow('[unstorage] [aiokv] Invalid key: "::"');
  });
});

describe("the CommonJS build", () => {
  it("is required with unstorage's CommonJS build and works the same", async () => {
    const require = createRequire(import.meta.url);
    const cjs = require("@aiokv/unstorage") as typeof import("@aiokv/unstorage");
    const { createStorage: createCjsStorage } = require("unstorage") as typeof import("unstorage");
    expect(require.resolve("@aiokv/unstorage")).toMatch(/dist[/\\]cjs[/\\]index\.js$/);
    const path = await tempFile();
    const storage = createCjsStorage({ driver: cjs.aiokvDriver({ path }) });
    await storage.setItem("a", { b: 1 });
    expect(await storage.getItem("a")).toStrictEqual({ b: 1 });
    await storage.dispose();
    expect(JSON.parse(await readFile(path, "utf8"))).toStrictEqual({ a: '{"b":1}' });
  });
});
