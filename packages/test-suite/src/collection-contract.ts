import { describe, expect, it } from "vitest";
import type { HarnessFactory } from "./harness.js";
import { instrumentedOpener, opener, rejection, reopen, type Open, type OpenInstrumented } from "./support.js";

/**
 * The store as a collection: `size()`, `entries()` and `for await`, `remove()` and `removeMany()`
 * (which report whether keys were there), and the `defaults` option.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function collectionContract(name: string, makeHarness: HarnessFactory): void {
  const open = opener(makeHarness);
  describe(`${name} store contract: size, entries, remove, defaults`, () => {
    iterationTests(open);
    removeTests(open, instrumentedOpener(makeHarness));
    defaultsTests(open);
  });
}

function iterationTests(open: Open): void {
  it("size() counts the stored keys, through sets, deletes, a clear and a reopen", async () => {
    const { h, kv } = await open();
    expect(await kv.size()).toBe(0);
    await kv.setMany({ a: 1, b: 2, c: 3 });
    void kv.delete("b");
    expect(await kv.size()).toBe(2);
    const again = await reopen(kv, h);
    expect(await again.size()).toBe(2);
    await again.clear();
    expect(await again.size()).toBe(0);
  });

  it("entries() and for await yield copies of every pair in the file's order, as of the first next()", async () => {
    const { kv } = await open();
    await kv.setMany([["b", { n: 1 }], ["10", [1]], ["__proto__", "p"], ["a", null]]);
    const seen: Array<[string, unknown]> = [];
    for await (const [key, value] of kv) {
      seen.push([key, structuredClone(value)]);
      if (key === "b") {
        (value as { n: number }).n = 99;
        await kv.set("late", 1); // after the snapshot: not yielded
      }
    }
    expect(seen).toStrictEqual([["b", { n: 1 }], ["10", [1]], ["__proto__", "p"], ["a", null]]);
    expect(await kv.get("b")).toStrictEqual({ n: 1 });
    const again: unknown[] = [];
    for await (const pair of kv.entries()) again.push(pair[0]);
    expect(again).toStrictEqual(["b", "10", "__proto__", "a", "late"]);
  });

  it("entries() of a corrupt document rejects at the first next() with the format error", async () => {
    const { h, kv } = await open();
    await h.plant('{"a": ');
    const iterator = kv.entries();
    const error = await rejection(iterator.next());
    expect(error.name).toBe("CorruptStoreError");
  });
}

function removeTests(open: Open, openInstrumented: OpenInstrumented): void {
  it("remove() resolves whether the key was stored, decided in call order: two removes see true once", async () => {
    const { h, kv } = await open();
    await kv.setMany({ a: 1, b: 2 });
    const [first, second, absent] = await Promise.all([kv.remove("a"), kv.remove("a"), kv.remove("zz")]);
    expect([first, second, absent]).toStrictEqual([true, false, false]);
    expect(await (await reopen(kv, h)).keys()).toStrictEqual(["b"]);
  });

  it("remove() after a set in the same turn sees the set; a set after it brings the key back", async () => {
    const { h, kv } = await open();
    void kv.set("k", 1);
    const removed = kv.remove("k");
    const set = kv.set("k", 2);
    expect(await removed).toBe(true);
    await set;
    expect(await (await reopen(kv, h)).get("k")).toBe(2);
  });

  it("removeMany() removes in one write and counts the keys that were stored, each once", async () => {
    const { h, kv, backend } = await openInstrumented();
    await kv.setMany({ a: 1, b: 2, c: 3 });
    const writes = backend.writes;
    expect(await kv.removeMany(["a", "c", "a", "zz"])).toBe(2);
    expect(backend.writes).toBe(writes + 1);
    expect(await kv.removeMany(new Set(["zz"]))).toBe(0);
    expect(await (await reopen(kv, h)).getAll()).toStrictEqual({ b: 2 });
  });

  it("removeMany(predicate) picks from the keys stored when it runs: a set called after it is kept", async () => {
    const { h, kv } = await open();
    await kv.setMany({ "ns:a": 1, "ns:b": 2, other: 3 });
    const removed = kv.removeMany((key) => key.startsWith("ns:"));
    const set = kv.set("ns:a", 4);
    expect(await removed).toBe(2);
    await set;
    expect(await (await reopen(kv, h)).getAll()).toStrictEqual({ other: 3, "ns:a": 4 });
  });

  it("remove() and removeMany() reject a failed write and keep the keys; removeMany() refuses a string", async () => {
    const { kv, backend } = await openInstrumented();
    await kv.setMany({ a: 1, b: 2 });
    backend.failNext = new Error("disk gone");
    expect((await rejection(kv.remove("a"))).name).toBe("StoreIOError");
    expect(await kv.get("a")).toBe(1);
    backend.failNext = new Error("disk gone");
    expect((await rejection(kv.removeMany(["a", "b"]))).name).toBe("StoreIOError");
    expect(await kv.keys()).toStrictEqual(["a", "b"]);
    await expect(kv.removeMany("ab" as unknown as string[])).rejects.toThrow(new TypeError("Cannot remove keys: expected an iterable of keys, received a string"));
    await expect(kv.remove(1 as unknown as string)).rejects.toThrow(TypeError);
    expect(await kv.remove("a")).toBe(true);
  });
}

function defaultsTests(open: Open): void {
  it("defaults: get() and update() see them for absent keys; nothing is written until set; has/keys/size/getAll do not", async () => {
    const { h, kv } = await open({ defaults: { theme: { dark: true }, count: 5 } });
    const theme = (await kv.get("theme")) as { dark: boolean };
    expect(theme).toStrictEqual({ dark: true });
    theme.dark = false; // a copy: the default stays
    expect(await kv.get("theme")).toStrictEqual({ dark: true });
    expect(await kv.get("count", 0)).toBe(0); // a fallback passed wins
    expect(await kv.get("other")).toBe(undefined);
    expect([await kv.has("count"), await kv.keys(), await kv.size(), await kv.getAll()]).toStrictEqual([false, [], 0, {}]);
    expect(await h.peek()).toBe(undefined);
    expect(await kv.update<number>("count", (n) => (n ?? 0) + 1)).toBe(6);
    expect(await kv.get("count")).toBe(6);
    await kv.delete("count");
    expect(await kv.get("count")).toBe(5);
  });

  it("defaults are checked when the store is made: a value set() refuses is a TypeError naming the key", async () => {
    await expect(open({ defaults: { bad: (() => 1) as unknown as number } })).rejects.toThrow(/the default of key "bad" is refused/);
    await expect(open({ defaults: [] as unknown as Record<string, never> })).rejects.toThrow(/defaults option must be an object/);
  });
}
