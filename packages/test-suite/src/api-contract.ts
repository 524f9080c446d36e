import { AioKV, CorruptStoreError, StoreIOError } from "@aiokv/core";
import { describe, expect, it } from "vitest";
import { recordingLogger, storeOptions, type HarnessFactory } from "./harness.js";
import { instrumentedOpener, parsed, reopened, type OpenInstrumented } from "./support.js";

/**
 * The methods beyond get, set, delete, getAll and clear: `update`, `has`, `keys`, `setMany`,
 * `deleteMany` and `flush`, and that each rejects once the store is closed.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function apiContract(name: string, makeHarness: HarnessFactory): void {
  const open = instrumentedOpener(makeHarness);
  describe(`${name} store contract: update, has, keys, setMany, deleteMany, flush`, () => {
    for (const tests of [updateTests, batchTests, flushTests]) tests(open);
  });
}

function updateTests(open: OpenInstrumented): void {
  it("update() gives fn the current value or the fallback, stores what it returns, resolves it", async () => {
    const { h, kv } = await open();
    expect(await kv.update<number>("n", (n) => (n ?? 0) + 1)).toBe(1);
    expect(await kv.update("n", (n: number) => n + 1, 0)).toBe(2);
    expect(await kv.update("list", (list: number[]) => [...list, 1], [])).toStrictEqual([1]);
    expect(await reopened(kv, h)).toStrictEqual({ n: 2, list: [1] });
  });

  it("update() loses no increment among 200 called at once, each in one of a few writes", async () => {
    const { h, kv, backend } = await open();
    const results = await Promise.all(Array.from({ length: 200 }, () => kv.update("count", (n: number) => n + 1, 0)));
    expect(results.toSorted((a, b) => a - b)).toStrictEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(backend.writes).toBeLessThanOrEqual(3);
    expect(await reopened(kv, h)).toStrictEqual({ count: 200 });
  });

  it("update() with an async fn: operations called meanwhile wait for it", async () => {
    const { kv } = await open();
    await kv.set("n", 1);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const updating = kv.update<number>("n", async (n) => {
      await gate;
      return (n ?? 0) * 10;
    });
    const setting = kv.set("n", 5);
    const reading = kv.get("n");
    release();
    expect(await updating).toBe(10);
    await setting;
    expect(await reading).toBe(5);
  });

  it("update() rejects with what fn throws, and writes nothing", async () => {
    const { h, kv, backend } = await open();
    await kv.set("n", 1);
    const before = await h.peek();
    const writes = backend.writes;
    const failure = new Error("no");
    await expect(
      kv.update("n", () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(backend.writes).toBe(writes);
    expect(await h.peek()).toBe(before);
    expect(await kv.get("n")).toBe(1);
  });

  it("update() refuses undefined and non-JSON results with a TypeError naming the key", async () => {
    const { h, kv } = await open();
    await expect(kv.update("k", () => undefined as unknown as number)).rejects.toThrow(
      new TypeError('Cannot update key "k": the function returned undefined (return a value, or use delete())'),
    );
    await expect(kv.update("k", () => ({ when: new Date(0) }) as never)).rejects.toThrow(
      new TypeError('Cannot set key "k": value at k.when is an instance of Date'),
    );
    await expect(kv.update("k", 1 as never)).rejects.toThrow(new TypeError('Cannot update key "k": expected a function, received number'));
    expect(await h.peek()).toBe(undefined);
  });

  it("update() passes a copy: changing it in fn before a throw changes nothing stored", async () => {
    const { kv } = await open();
    await kv.set("o", { list: [1] });
    await expect(
      kv.update<{ list: number[] }>("o", (o) => {
        o?.list.push(2);
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect(await kv.get("o")).toStrictEqual({ list: [1] });
  });

  it("update() on a corrupt document rejects with CorruptStoreError without calling fn", async () => {
    const { h, kv } = await open();
    await h.plant("{");
    let called = false;
    await expect(kv.update("n", () => (called = true))).rejects.toBeInstanceOf(CorruptStoreError);
    expect(called).toBe(false);
    expect(await h.peek()).toBe("{");
  });
}

/** has(), keys(), setMany() and deleteMany(). */
function batchTests(open: OpenInstrumented): void {
  it("has() tells present keys, staged changes included, without creating a document", async () => {
    const { h, kv } = await open();
    expect(await kv.has("a")).toBe(false);
    expect(await kv.has("__proto__")).toBe(false);
    expect(await h.peek()).toBe(undefined);
    const setting = kv.set("a", null);
    expect(await kv.has("a")).toBe(true);
    await setting;
    await kv.delete("a");
    expect(await kv.has("a")).toBe(false);
    await expect(kv.has(1 as unknown as string)).rejects.toThrow(new TypeError("Cannot has key: expected a string, received a number"));
  });

  it("keys() lists keys in file order: new keys last, deleted ones gone, staged ones in", async () => {
    const { h, kv } = await open();
    await h.plant('{"b": 1, "a": 2}');
    expect(await kv.keys()).toStrictEqual(["b", "a"]);
    await kv.set("c", 3);
    await kv.delete("b");
    const pending = kv.set("b", 4);
    expect(await kv.keys()).toStrictEqual(["a", "c", "b"]);
    await pending;
    await kv.clear();
    expect(await kv.keys()).toStrictEqual([]);
    await kv.close();
    expect(await new AioKV(h.backend(), storeOptions(h)).keys()).toStrictEqual([]);
  });

  it("setMany() stores an object's entries, or [key, value] pairs, in one write", async () => {
    const { h, kv, backend } = await open();
    await kv.setMany({ a: 1, b: [true] });
    expect(backend.writes).toBe(1);
    await kv.setMany([
      ["__proto__", { polluted: true }],
      ["c", "x"],
    ]);
    expect(backend.writes).toBe(2);
    await kv.setMany({});
    await kv.setMany([]);
    expect(backend.writes).toBe(2);
    const all = (await reopened(kv, h)) as Record<string, unknown>;
    expect(Object.hasOwn(all, "__proto__")).toBe(true);
    expect(all).toStrictEqual(JSON.parse('{"a": 1, "b": [true], "__proto__": {"polluted": true}, "c": "x"}'));
  });

  it("setMany() refuses the whole batch when one value is not JSON, naming the key; nothing is written", async () => {
    const { h, kv } = await open();
    await kv.set("a", 1);
    const before = await h.peek();
    await expect(kv.setMany({ a: 2, b: () => 1 } as never)).rejects.toThrow(new TypeError('Cannot set key "b": value at b is a function'));
    await expect(kv.setMany({ a: 2, b: undefined } as never)).rejects.toThrow(
      new TypeError('Cannot set key "b": setMany() takes no undefined values'),
    );
    await expect(kv.setMany(null as never)).rejects.toThrow(new TypeError("Cannot set keys: expected an object or [key, value] pairs, received null"));
    await expect(kv.setMany([["a"]] as never)).rejects.toThrow(new TypeError("Cannot set keys: each pair must be [key, value]"));
    await expect(kv.setMany([[1, 2]] as never)).rejects.toThrow(new TypeError("Cannot set key: expected a string, received a number"));
    expect(await h.peek()).toBe(before);
    expect(await kv.get("a")).toBe(1);
  });

  it("a failed setMany() write rejects and rolls every key of it back", async () => {
    const { h, kv, backend } = await open();
    await kv.set("a", 1);
    backend.failNext = new Error("disk full");
    await expect(kv.setMany({ a: 2, b: 3 })).rejects.toBeInstanceOf(StoreIOError);
    expect(await kv.getAll()).toStrictEqual({ a: 1 });
    expect(parsed(await h.peek())).toStrictEqual({ a: 1 });
  });

  it("deleteMany() removes keys in one write; absent keys write nothing", async () => {
    const { h, kv, backend } = await open();
    await kv.setMany({ a: 1, b: 2, c: 3 });
    expect(await kv.deleteMany(["a", "c", "absent"])).toBe(true);
    expect(backend.writes).toBe(2);
    expect(await kv.deleteMany(new Set(["absent", "a"]))).toBe(true);
    expect(backend.writes).toBe(2);
    expect(parsed(await h.peek())).toStrictEqual({ b: 2 });
    await expect(kv.deleteMany(["b", 3 as unknown as string])).rejects.toThrow(TypeError);
    expect(await kv.get("b")).toBe(2);
  });

  it("deleteMany() logs a failed write and resolves false, keeping the keys", async () => {
    const logger = recordingLogger();
    const { kv, backend } = await open({ logger });
    await kv.setMany({ a: 1, b: 2 });
    backend.failNext = new Error("disk full");
    expect(await kv.deleteMany(["a", "b"])).toBe(false);
    expect(logger.calls[0]?.[0]).toBe(`Cannot delete keys "a", "b" in store ${JSON.stringify(kv.location)}`);
    expect(logger.calls[0]?.[1]).toBeInstanceOf(StoreIOError);
    expect(await kv.getAll()).toStrictEqual({ a: 1, b: 2 });
  });
}

/** flush(), and every method above once the store is closed. */
function flushTests(open: OpenInstrumented): void {
  it("flush() resolves once every change called before it is written", async () => {
    const { h, kv } = await open();
    await kv.flush();
    void kv.set("a", 1);
    void kv.delete("missing");
    void kv.setMany({ b: 2 });
    await kv.flush();
    expect(parsed(await h.peek())).toStrictEqual({ a: 1, b: 2 });
  });

  it("flush() rejects with the error of a failed write called before it", async () => {
    const { kv, backend } = await open();
    await kv.set("a", 1);
    backend.failNext = new Error("disk full");
    const failing = kv.set("b", 2).catch((error: unknown) => error);
    const flushed = kv.flush().catch((error: unknown) => error);
    expect(await failing).toBeInstanceOf(StoreIOError);
    expect(await flushed).toBeInstanceOf(StoreIOError);
    await kv.set("c", 3);
    await expect(kv.flush()).resolves.toBe(undefined);
  });

  it("the new methods reject once the store is closed", async () => {
    const { kv } = await open();
    await kv.close();
    for (const [method, call] of [
      ["update", () => kv.update("a", () => 1)],
      ["has", () => kv.has("a")],
      ["keys", () => kv.keys()],
      ["setMany", () => kv.setMany({ a: 1 })],
      ["deleteMany", () => kv.deleteMany(["a"])],
      ["flush", () => kv.flush()],
      ["quarantine", () => kv.quarantine()],
    ] as const) {
      await expect(call()).rejects.toThrow(`Cannot call ${method}() on store ${JSON.stringify(kv.location)}: it is closed`);
    }
  });
}
