import { AioKV, StoreIOError, UnsyncedWriteError, type AioKVOptions, type Backend } from "@aiokv/core";
import { describe, expect, it } from "vitest";
import { journalMethods, recordingLogger, storeOptions, until, type HarnessFactory } from "./harness.js";
import { hasSettled, instrumentedOpener, opener, parsed, reopen, type Open, type OpenedInstrumented, type OpenInstrumented } from "./support.js";

/**
 * Concurrency: the order operations take effect in, group commit (the changes of one turn in one
 * write), and what a write's outcome means when writes overlap and fail: a resolved write means
 * every change called before it is settled, a failed write leaks into nothing, and a write that is
 * in place but not synced is kept.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function concurrencyContract(name: string, makeHarness: HarnessFactory): void {
  const open = opener(makeHarness);
  const openInstrumented = instrumentedOpener(makeHarness);
  describe(`${name} store contract`, () => {
    describe("ordering and group commit", () => orderingTests(open, openInstrumented));
  });

  describe(`${name} store contract: overlapping and failing writes`, () => {
    overlappingDeleteTests(openInstrumented);
    failedFlushTests(openInstrumented);
    overlappingUpdateTests(openInstrumented);
    sharedWriteTests(openInstrumented);
    unsyncedWriteTests(makeHarness);
  });
}

/** Opens a store holding `entries` (`{ a: 1 }`) whose next write fails with `error`. */
type FailingInFlight = (options?: AioKVOptions, entries?: Record<string, number>) => Promise<OpenedInstrumented & { error: Error }>;

/** {@link FailingInFlight} on the stores `open` opens. */
function failingInFlightOn(open: OpenInstrumented): FailingInFlight {
  return async (options = {}, entries = { a: 1 }) => {
    const opened = await open(options);
    await opened.kv.setMany(entries);
    const error = Object.assign(new Error("disk on fire"), { code: "EIO" });
    opened.backend.failNext = error;
    return { ...opened, error };
  };
}

function orderingTests(open: Open, openInstrumented: OpenInstrumented): void {
  it("set() calls made together all persist", async () => {
    const { h, kv } = await open();
    await Promise.all(Array.from({ length: 200 }, (_, i) => kv.set(`k${i}`, i)));
    const all = await (await reopen(kv, h)).getAll();
    expect(Object.keys(all)).toHaveLength(200);
    expect(all["k199"]).toBe(199);
  });

  it("changes called in one turn go to the backend in one write", async () => {
    const { kv, backend } = await openInstrumented();
    await Promise.all([...Array.from({ length: 100 }, (_, i) => kv.set(`k${i}`, i)), kv.delete("k0"), kv.set("k1", "last")]);
    expect(backend.writes).toBe(1);
    expect(await kv.get("k0")).toBe(undefined);
    expect(await kv.get("k1")).toBe("last");
  });

  it("changes made while a write is in flight share the next write, and each resolves after it", async () => {
    const { h, kv, backend } = await openInstrumented();
    const release = backend.hold();
    const first = kv.set("first", 1);
    await until(() => backend.writes === 1);
    let resolved = 0;
    const later = Array.from({ length: 20 }, (_, i) => kv.set(`later${i}`, i).then(() => resolved++));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(resolved).toBe(0);
    release();
    await Promise.all([first, ...later]);
    expect(backend.writes).toBe(2);
    expect(Object.keys(JSON.parse((await h.peek()) ?? "") as object)).toHaveLength(21);
  });

  it("get() sees a set() called before it, before that set() resolves", async () => {
    const { kv } = await open();
    const setting = kv.set("k", "new");
    expect(await kv.get("k")).toBe("new");
    await setting;
  });

  it("operations take effect in the order they are called", async () => {
    const { h, kv } = await open();
    const results = await Promise.all([
      kv.set("a", 1),
      kv.get("a"),
      kv.delete("a"),
      kv.get("a", "gone"),
      kv.set("a", 2),
      kv.clear(),
      kv.getAll(),
      kv.set("b", 3),
      kv.getAll(),
    ]);
    expect(results).toStrictEqual([undefined, 1, true, "gone", undefined, true, {}, undefined, { b: 3 }]);
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ b: 3 });
  });
}

/** delete() and deleteMany() of keys an earlier call removes. */
function overlappingDeleteTests(open: OpenInstrumented): void {
  const failingInFlight = failingInFlightOn(open);

  it("delete() of a key an earlier un-awaited delete() removed resolves true only once a write removed it", async () => {
    const { h, kv, backend } = await failingInFlight({ logger: recordingLogger() });
    const release = backend.hold();
    const first = kv.delete("a");
    await until(() => backend.writes === 2);
    const second = kv.delete("a");
    expect(await hasSettled(second)).toBe(false);
    release();
    expect(await first).toBe(false);
    expect(await second).toBe(true);
    expect(backend.writes).toBe(3);
    expect(await kv.get("a")).toBe(undefined);
    expect(parsed(await h.peek())).toStrictEqual({});
  });

  it("delete() of a key an earlier un-awaited clear() removed shares the clear's failure, or a write that removes it", async () => {
    const { h, kv, backend } = await failingInFlight({ logger: recordingLogger() }, { a: 1, b: 2 });
    const release = backend.hold();
    // With a set after it, the clear is a write (alone, it would remove the document).
    const cleared = kv.clear();
    const setting = kv.set("c", 3).catch((e: unknown) => e);
    await until(() => backend.writes === 2);
    const deleted = kv.delete("a");
    const deletedMany = kv.deleteMany(["b", "never"]);
    release();
    expect([await cleared, await deleted, await deletedMany]).toStrictEqual([false, true, true]);
    expect(await setting).toBeInstanceOf(StoreIOError);
    expect(await kv.getAll()).toStrictEqual({});
    expect(parsed(await h.peek())).toStrictEqual({});
  });

  it("delete() of a key a pending delete() removes shares that write's fate", async () => {
    const { h, kv } = await failingInFlight({ logger: recordingLogger() });
    const outcomes = await Promise.all([kv.delete("a"), kv.delete("a"), kv.deleteMany(["a"])]);
    expect(outcomes).toStrictEqual([false, false, false]);
    expect(await kv.get("a")).toBe(1);
    expect(parsed(await h.peek())).toStrictEqual({ a: 1 });
  });

  it("delete() of an absent key, and setMany([]), resolve only after the writes called before them", async () => {
    const { h, kv, backend } = await open();
    await kv.set("ready", true);
    const release = backend.hold();
    const setting = kv.set("x", 1);
    const deleted = kv.delete("absent");
    const deletedMany = kv.deleteMany(["absent", "also absent"]);
    const setNone = kv.setMany([]);
    expect(await hasSettled(deleted)).toBe(false);
    expect(await hasSettled(deletedMany)).toBe(false);
    expect(await hasSettled(setNone)).toBe(false);
    release();
    expect(await Promise.all([setting, deleted, deletedMany, setNone])).toStrictEqual([undefined, true, true, undefined]);
    expect(backend.writes).toBe(2);
    expect(parsed(await h.peek())).toStrictEqual({ ready: true, x: 1 });
  });
}

function failedFlushTests(open: OpenInstrumented): void {
  const failingInFlight = failingInFlightOn(open);

  it("flush() rejects with a failure that happened before it was called, once", async () => {
    const { kv, error } = await failingInFlight();
    const failed = await kv.set("a", 2).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(StoreIOError);
    expect((failed as Error).cause).toBe(error);
    await expect(kv.flush()).rejects.toBe(failed);
    await expect(kv.flush()).resolves.toBe(undefined);
    await kv.set("b", 3);
    await expect(kv.flush()).resolves.toBe(undefined);
  });

  it("flush() called while a write fails reports it, and the next flush() starts clean", async () => {
    const { kv, backend } = await failingInFlight();
    const release = backend.hold();
    const failing = kv.set("a", 2).catch((e: unknown) => e);
    const flushed = kv.flush().catch((e: unknown) => e);
    release();
    const failure = await failing;
    expect(failure).toBeInstanceOf(StoreIOError);
    expect(await flushed).toBe(failure);
    await expect(kv.flush()).resolves.toBe(undefined);
  });
}

/** update() while the write of the value it reads is in flight, or fails. */
function overlappingUpdateTests(open: OpenInstrumented): void {
  const failingInFlight = failingInFlightOn(open);

  it("update() waits for the write in flight it would read from: a failed increment is not built on", async () => {
    const { h, kv, backend, error } = await failingInFlight();
    const release = backend.hold();
    const first = kv.update("n", (n: number) => n + 1, 0);
    await until(() => backend.writes === 2);
    const second = kv.update("n", (n: number) => n + 1, 0);
    release();
    const failure = await first.catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(StoreIOError);
    expect((failure as Error).cause).toBe(error);
    expect(await second).toBe(1);
    expect(await kv.get("n")).toBe(1);
    expect(parsed(await h.peek())).toStrictEqual({ a: 1, n: 1 });
  });

  it("update() waits for an in-flight clear() before reading: a failed clear leaves the value to build on", async () => {
    const { h, kv, backend } = await failingInFlight({ logger: recordingLogger() });
    const release = backend.hold();
    const cleared = kv.clear();
    const setting = kv.set("c", 3).catch((e: unknown) => e);
    await until(() => backend.writes === 2);
    const updated = kv.update("a", (n: number) => n + 10, 0);
    release();
    expect(await cleared).toBe(false);
    expect(await setting).toBeInstanceOf(StoreIOError);
    expect(await updated).toBe(11);
    expect(parsed(await h.peek())).toStrictEqual({ a: 11 });
  });

  it("update() with an async fn rejects when the pending write of its value fails meanwhile; nothing is stored", async () => {
    const { h, kv, backend, error } = await failingInFlight();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const setting = kv.set("a", 5).catch((e: unknown) => e);
    const updated = kv.update<number>("a", async (n) => {
      await gate;
      return (n ?? 0) + 1;
    });
    const failure = await setting;
    expect(failure).toBeInstanceOf(StoreIOError);
    expect((failure as Error).cause).toBe(error);
    release();
    const rejected = await updated.catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(Error);
    expect((rejected as Error).message).toBe('Cannot update key "a": the value it was computed from was not stored');
    expect((rejected as Error).cause).toBe(failure);
    expect(backend.writes).toBe(2);
    expect(await kv.get("a")).toBe(1);
    expect(parsed(await h.peek())).toStrictEqual({ a: 1 });
  });

  it("update() with an async fn stores its result when the pending write of its value succeeds meanwhile", async () => {
    const { h, kv, backend } = await open();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const setting = kv.set("a", 5);
    const updated = kv.update<number>("a", async (n) => {
      await gate;
      return (n ?? 0) + 1;
    });
    await setting;
    release();
    expect(await updated).toBe(6);
    expect(backend.writes).toBe(2);
    expect(parsed(await h.peek())).toStrictEqual({ a: 6 });
  });

  it("update() with a synchronous fn joins the pending write of its value: one write, one fate", async () => {
    const { h, kv, backend } = await failingInFlight();
    const outcomes = await Promise.allSettled([kv.set("a", 5), kv.update("a", (n: number) => n + 1, 0), kv.set("b", 1)]);
    expect(outcomes.map((outcome) => outcome.status)).toStrictEqual(["rejected", "rejected", "rejected"]);
    expect(backend.writes).toBe(2);
    expect(await kv.update("a", (n: number) => n + 1, 0)).toBe(2);
    expect(parsed(await h.peek())).toStrictEqual({ a: 2 });
  });
}

/** Calls that share a write, and what update() and deleteMany() take. */
function sharedWriteTests(open: OpenInstrumented): void {
  it("changes called in one turn share one write, an update's among them", async () => {
    const { kv, backend } = await open();
    await kv.set("n", 1);
    const results = await Promise.all([kv.set("a", 1), kv.update("n", (n: number) => n + 1, 0), kv.delete("a"), kv.set("b", 2), kv.flush()]);
    expect(results).toStrictEqual([undefined, 2, true, undefined, undefined]);
    expect(backend.writes).toBe(2);
  });

  it("a write starts while calls made after it keep the store busy", async () => {
    const { kv, backend } = await open();
    await kv.set("a", 1);
    const updating = kv.update("a", (n: number) => n + 1, 0);
    // Readers that queue behind each other for as long as they run: the write must not wait for them.
    const seen = await Promise.all(
      Array.from({ length: 3 }, async () => {
        for (let i = 0; i < 200; i++) await kv.get("a");
        return backend.writes;
      }),
    );
    expect(seen).toStrictEqual([2, 2, 2]);
    expect(await updating).toBe(2);
  });

  it("update() gives fn a copy of the fallback: fn changing it changes nothing of the caller's", async () => {
    const { kv } = await open();
    const fallback = { seen: [1] };
    expect(
      await kv.update(
        "state",
        (state: { seen: number[] }) => {
          state.seen.push(2);
          return state;
        },
        fallback,
      ),
    ).toStrictEqual({ seen: [1, 2] });
    expect(fallback).toStrictEqual({ seen: [1] });
    await expect(kv.update("state2", (f: unknown) => f as number, () => 1)).rejects.toThrow(TypeError);
  });

  it("deleteMany() refuses a string, which would delete its characters, and other non-iterables", async () => {
    const { kv, backend } = await open();
    await kv.setMany({ a: 1, b: 2, c: 3, abc: 4 });
    const refused = await kv.deleteMany("abc" as unknown as string[]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TypeError);
    expect((refused as Error).message).toBe("Cannot delete keys: expected an iterable of keys, received a string");
    for (const [value, kind] of [
      [1, "a number"],
      [null, "null"],
      [{ a: 1 }, "a non-iterable object"],
    ] as const) {
      await expect(kv.deleteMany(value as unknown as string[])).rejects.toThrow(`Cannot delete keys: expected an iterable of keys, received ${kind}`);
    }
    expect(backend.writes).toBe(1);
    expect(await kv.getAll()).toStrictEqual({ a: 1, b: 2, c: 3, abc: 4 });
  });
}

function unsyncedWriteTests(makeHarness: HarnessFactory): void {
  it("a write in place but not synced is kept; its callers get StoreIOError 'sync' saying so", async () => {
    const h = await makeHarness();
    const inner = h.backend();
    const cause = Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
    let unsynced = false;
    // As a file backend whose directory sync fails after the rename: the write is in place.
    const backend: Backend = {
      location: inner.location,
      read: () => inner.read(),
      remove: () => inner.remove(),
      async write(pieces) {
        await inner.write(pieces);
        if (unsynced) throw new UnsyncedWriteError(cause);
      },
    };
    // A journal store's writes are appends: as a journal whose fdatasync fails, the record is in place.
    if (h.storeOptions?.journal === true) {
      Object.assign(backend, journalMethods(inner), {
        async appendJournal(pieces: readonly Uint8Array[]) {
          await inner.appendJournal?.(pieces);
          if (unsynced) throw new UnsyncedWriteError(cause);
        },
        async writeJournal(pieces: readonly Uint8Array[]) {
          await inner.writeJournal?.(pieces);
          if (unsynced) throw new UnsyncedWriteError(cause);
        },
      });
    }
    const logger = recordingLogger();
    const kv = new AioKV(backend, storeOptions(h, { logger }));
    await kv.set("a", 1);
    unsynced = true;
    const failures = await Promise.all([kv.set("a", 2), kv.set("b", 3)].map((p) => p.catch((e: unknown) => e)));
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(StoreIOError);
      const { operation, code, location } = failure as StoreIOError;
      expect({ operation, code, location, cause: (failure as Error).cause }).toStrictEqual({ operation: "sync", code: "EIO", location: kv.location, cause });
      expect((failure as Error).message).toBe(
        `Cannot sync store ${JSON.stringify(kv.location)}: the change is in the file but may not survive a power loss (EIO: i/o error, fsync)`,
      );
    }
    expect(await kv.getAll()).toStrictEqual({ a: 2, b: 3 });
    expect(parsed(await h.peek())).toStrictEqual({ a: 2, b: 3 });
    await expect(kv.flush()).rejects.toBe(failures[0]);
    expect(await kv.delete("b")).toBe(false);
    expect((logger.calls[0]?.[1] as StoreIOError | undefined)?.operation).toBe("sync");
    unsynced = false;
    await kv.set("c", 4);
    expect(parsed(await h.peek())).toStrictEqual({ a: 2, c: 4 });
    await kv.close();
  });
}
