import { describe, expect, it } from "vitest";
import type { HarnessFactory } from "./harness.js";
import { instrumentedOpener, opener, reopen, type Open, type OpenInstrumented } from "./support.js";

/**
 * The document as a whole: `delete()` of a key, `getAll()` of every key, and `clear()`, which
 * removes the document.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function documentContract(name: string, makeHarness: HarnessFactory): void {
  const open = opener(makeHarness);
  const openInstrumented = instrumentedOpener(makeHarness);
  describe(`${name} store contract`, () => {
    describe("delete()", () => deleteTests(open, openInstrumented));
    describe("getAll()", () => getAllTests(open));
    describe("clear()", () => clearTests(open));
  });
}

function deleteTests(open: Open, openInstrumented: OpenInstrumented): void {
  it("delete() removes the key and resolves true", async () => {
    const { h, kv } = await open();
    await kv.set("a", 1);
    await kv.set("b", 2);
    expect(await kv.delete("a")).toBe(true);
    expect(await kv.get("a")).toBe(undefined);
    expect(await (await reopen(kv, h)).getAll()).toStrictEqual({ b: 2 });
  });

  it("delete() resolves true when the key is absent, writing nothing", async () => {
    const { h, kv, backend } = await openInstrumented();
    expect(await kv.delete("absent")).toBe(true);
    expect(backend.writes).toBe(0);
    expect(await h.peek()).toBe(undefined);
  });

  it("delete() of the last key leaves an empty object", async () => {
    const { h, kv } = await open();
    await kv.set("a", 1);
    await kv.delete("a");
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({});
  });
}

function getAllTests(open: Open): void {
  it("getAll() resolves {} when there is no document, without creating one", async () => {
    const { h, kv } = await open();
    expect(await kv.getAll()).toStrictEqual({});
    expect(await h.peek()).toBe(undefined);
  });

  it("getAll() resolves a fresh copy", async () => {
    const { kv } = await open();
    await kv.set("a", { b: [1] });
    const all = await kv.getAll();
    (all["a"] as { b: number[] }).b.push(2);
    all["c"] = 3;
    expect(await kv.getAll()).toStrictEqual({ a: { b: [1] } });
  });

  it("getAll() resolves what the document holds, parsed", async () => {
    const { h, kv } = await open();
    await kv.set("x", [1, { y: "z" }]);
    await kv.set("seen");
    expect(await kv.getAll()).toStrictEqual(JSON.parse((await h.peek()) ?? ""));
  });
}

function clearTests(open: Open): void {
  it("clear() removes the document and resolves true", async () => {
    const { h, kv } = await open();
    await kv.set("a", 1);
    expect(await kv.clear()).toBe(true);
    expect(await h.peek()).toBe(undefined);
    expect(await kv.getAll()).toStrictEqual({});
    expect(await (await reopen(kv, h)).get("a")).toBe(undefined);
  });

  it("clear() resolves true when there is no document", async () => {
    const { h, kv } = await open();
    expect(await kv.clear()).toBe(true);
    expect(await h.peek()).toBe(undefined);
  });

  it("clear() resolves true when someone else removed the document first", async () => {
    const { h, kv } = await open();
    await kv.set("a", 1);
    await h.plant(undefined);
    expect(await kv.clear()).toBe(true);
  });

  it("set() after clear() in the same turn leaves only the new key", async () => {
    const { h, kv } = await open();
    await kv.set("old", 1);
    const results = await Promise.all([kv.clear(), kv.set("new", 2)]);
    expect(results).toStrictEqual([true, undefined]);
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ new: 2 });
  });
}
