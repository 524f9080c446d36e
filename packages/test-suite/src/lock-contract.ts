import { AioKV, isStoreLockedError, StoreIOError, StoreLockedError } from "@aiokv/core";
import { describe, expect, it } from "vitest";
import { recordingLogger, skipWithout, storeOptions, type HarnessFactory } from "./harness.js";
import { eachReadRejects, escape, instrumentedOpener, opener, rejection, type Open, type OpenInstrumented } from "./support.js";

/**
 * Ownership and `close()`: a second store on locked storage is refused until the first closes
 * (on a backend with `lock()`), `lock: false` shares it, and `close()` waits for pending writes,
 * after which every call rejects.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function lockContract(name: string, makeHarness: HarnessFactory): void {
  const open = opener(makeHarness);
  describe(`${name} store contract`, () => {
    describe("ownership and close()", () => {
      ownershipTests(open);
      closeTests(open, instrumentedOpener(makeHarness), makeHarness);
    });
  });
}

/** Who may open locked storage. */
function ownershipTests(open: Open): void {
  it("a second store on the same storage rejects with StoreLockedError while the first is open", async (context) => {
    const logger = recordingLogger();
    const { h, kv } = await open();
    skipWithout(context, h.backend(), "lock");
    await kv.set("a", 1);
    const second = new AioKV(h.backend(), storeOptions(h, { logger }));
    await eachReadRejects(second, (error) => {
      expect(error).toBeInstanceOf(StoreLockedError);
      expect(isStoreLockedError(error)).toBe(true);
      expect((error as StoreLockedError).location).toBe(kv.location);
      expect(error.message).toMatch(new RegExp(`^Cannot own store ${escape(JSON.stringify(kv.location))}: it is locked by `));
    });
    expect(await second.delete("a")).toBe(false);
    expect(await second.clear()).toBe(false);
    expect(logger.calls.map(([, error]) => (error as Error).name)).toStrictEqual(["StoreLockedError", "StoreLockedError"]);
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ a: 1 });
    expect(await kv.get("a")).toBe(1);
  });

  it("a store refused the lock gets it once the first store is closed", async (context) => {
    const { h, kv } = await open();
    skipWithout(context, h.backend(), "lock", "unlock");
    await kv.set("a", 1);
    const second = new AioKV(h.backend(), storeOptions(h));
    await expect(second.get("a")).rejects.toBeInstanceOf(StoreLockedError);
    await kv.close();
    expect(await second.get("a")).toBe(1);
    await second.set("b", 2);
    await second.close();
  });

  it("lock: false lets two stores open the same storage", async () => {
    const { h, kv } = await open({ lock: false });
    await kv.set("a", 1);
    const second = new AioKV(h.backend(), storeOptions(h, { lock: false }));
    expect(await second.get("a")).toBe(1);
  });
}

function closeTests(open: Open, openInstrumented: OpenInstrumented, makeHarness: HarnessFactory): void {
  it("close() waits for pending writes, and later calls reject", async () => {
    const { h, kv } = await open();
    const writes = [kv.set("a", 1), kv.set("b", 2), kv.delete("a")];
    await kv.close();
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ b: 2 });
    await Promise.all(writes);
    for (const [method, call] of [
      ["get", () => kv.get("b")],
      ["set", () => kv.set("b", 3)],
      ["delete", () => kv.delete("b")],
      ["getAll", () => kv.getAll()],
      ["clear", () => kv.clear()],
    ] as const) {
      const error = await rejection(call());
      expect(error.message).toBe(`Cannot call ${method}() on store ${JSON.stringify(kv.location)}: it is closed`);
    }
    await expect(kv.close()).resolves.toBe(undefined);
  });

  it("close() resolves when a pending write failed; the write's caller gets the error", async () => {
    const { h, kv, backend } = await openInstrumented();
    backend.failNext = new Error("full");
    // The outcome is taken at once: the rejection must not wait, unhandled, for close().
    const failing = kv.set("a", 1).then(
      () => undefined,
      (error: unknown) => error,
    );
    await kv.close();
    expect(await failing).toBeInstanceOf(StoreIOError);
    const reopened = new AioKV(h.backend(), storeOptions(h));
    expect(await reopened.get("a")).toBe(undefined);
    await reopened.close();
  });

  it("await using closes the store at the end of the block", async () => {
    const h = await makeHarness();
    {
      await using kv = new AioKV(h.backend(), storeOptions(h));
      await kv.set("a", 1);
    }
    await using again = new AioKV(h.backend(), storeOptions(h));
    expect(await again.get("a")).toBe(1);
  });

  it("close() of a store never used resolves", async () => {
    const { kv } = await open();
    await expect(kv.close()).resolves.toBe(undefined);
  });
}
