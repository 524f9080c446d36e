import { MAX_DEPTH, type JsonValue } from "@aiokv/core";
import { describe, expect, it } from "vitest";
import type { HarnessFactory } from "./harness.js";
import { deep, opener, rejection, reopen, type Open } from "./support.js";

class Point {
  x = 1;
}

const invalidValues: Array<[string, string, unknown, string]> = [
  ["a function", "k", () => 1, "value at k is a function"],
  ["a symbol", "k", Symbol("s"), "value at k is a symbol"],
  ["a bigint", "k", 10n, "value at k is a bigint"],
  ["NaN", "k", NaN, "value at k is NaN"],
  ["Infinity", "k", Infinity, "value at k is Infinity"],
  ["-Infinity inside an array", "k", [1, -Infinity], "value at k[1] is -Infinity"],
  ["undefined inside an object", "k", { a: undefined }, "value at k.a is undefined"],
  ["undefined inside an array", "k", [undefined], "value at k[0] is undefined"],
  // eslint-disable-next-line no-sparse-arrays -- the hole is the point
  ["a hole in a sparse array", "k", [1, , 3], "value at k[1] is a hole in a sparse array"],
  ["a Date", "k", new Date(0), "value at k is an instance of Date"],
  ["a Map", "k", new Map(), "value at k is an instance of Map"],
  ["a Set", "k", new Set([1]), "value at k is an instance of Set"],
  ["a class instance", "k", new Point(), "value at k is an instance of Point"],
  ["a typed array", "k", new Uint8Array(2), "value at k is an instance of Uint8Array"],
  ["a boxed string", "k", new String("s"), "value at k is an instance of String"],
  ["a symbol key", "k", { [Symbol("s")]: 1 }, "value at k has a symbol key"],
  ["a function deep inside", "prefs", { tags: ["a", "b", () => 1] }, "value at prefs.tags[2] is a function"],
  ["an odd key in the path", "odd key", { "a b": [null, NaN] }, 'value at ["odd key"]["a b"][1] is NaN'],
  ["a cycle", "k", (() => { const a: Record<string, unknown> = {}; a["self"] = a; return a; })(), "value at k.self is a circular reference"],
  ["a value nested too deep", "k", deep(MAX_DEPTH + 1), `value at k${"[0]".repeat(MAX_DEPTH)} nests deeper than ${MAX_DEPTH} levels`],
];

/**
 * The values of the store: what `get()` resolves (fallbacks, copies, a document written elsewhere),
 * every kind of JSON value `set()` stores and reads back after a reopen, the timestamp default,
 * and the values `set()` refuses (not JSON, too deep).
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function valuesContract(name: string, makeHarness: HarnessFactory): void {
  const open = opener(makeHarness);
  describe(`${name} store contract`, () => {
    describe("get()", () => getTests(open));
    describe("set()", () => {
      setStoresTests(open);
      setDocumentTests(open);
      setRefusesTests(open);
    });
  });
}

function getTests(open: Open): void {
  it("get() resolves undefined for an absent key, without creating a document", async () => {
    const { h, kv } = await open();
    expect(await kv.get("absent")).toBe(undefined);
    expect(await h.peek()).toBe(undefined);
  });

  it("get() resolves the fallback for an absent key", async () => {
    const { kv } = await open();
    expect(await kv.get("absent", 0)).toBe(0);
    const fallback = { a: 1 };
    expect(await kv.get("absent", fallback)).toBe(fallback);
  });

  it("get() resolves stored falsy values and null, not the fallback", async () => {
    const { kv } = await open();
    for (const value of [0, "", false, null, [], {}]) {
      await kv.set("k", value);
      expect(await kv.get("k", "fallback")).toStrictEqual(value);
    }
  });

  it("get() resolves a copy: changing it changes nothing stored", async () => {
    const { kv } = await open();
    await kv.set("k", { list: [1] });
    const first = await kv.get<{ list: number[] }>("k");
    first?.list.push(2);
    expect(await kv.get("k")).toStrictEqual({ list: [1] });
  });

  it("get() reads a document written by another program", async () => {
    const { h, kv } = await open();
    await h.plant('{"a": 1, "nested": {"b": [true, null]}}');
    expect(await kv.get("a")).toBe(1);
    expect(await kv.get("nested")).toStrictEqual({ b: [true, null] });
  });
}

/** Every kind of JSON value, the timestamp default, and copies. */
function setStoresTests(open: Open): void {
  it("set() stores every kind of JSON value, read back equal after a reopen", async () => {
    const { h, kv } = await open();
    const values: Record<string, JsonValue> = {
      string: "ping",
      unicode: "日本語 🎉 \u2028 \ud800",
      number: 3.25,
      big: Number.MAX_SAFE_INTEGER,
      tiny: 5e-324,
      negative: -1,
      true: true,
      false: false,
      null: null,
      array: [1, "two", [3], { four: 4 }],
      object: { a: { b: { c: [] } }, "": "empty key" },
    };
    for (const [key, value] of Object.entries(values)) await kv.set(key, value);
    const reopened = await reopen(kv, h);
    for (const [key, value] of Object.entries(values)) expect(await reopened.get(key)).toStrictEqual(value);
    expect(await reopened.getAll()).toStrictEqual(values);
  });

  it("set(key) and set(key, undefined) store the clock's unix time in whole seconds", async () => {
    const { kv } = await open({ clock: () => 1_764_000_000_999 });
    await kv.set("seen");
    expect(await kv.get("seen")).toBe(1_764_000_000);
    await kv.set("again", undefined);
    expect(await kv.get("again")).toBe(1_764_000_000);
  });

  it("set(key) defaults to the real clock", async () => {
    const { kv } = await open();
    const before = Math.floor(Date.now() / 1000);
    await kv.set("seen");
    const stored = await kv.get<number>("seen");
    expect(stored).toBeGreaterThanOrEqual(before);
    expect(stored).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
  });

  it("set(key, null) stores null", async () => {
    const { h, kv } = await open();
    await kv.set("n", null);
    expect(await (await reopen(kv, h)).get("n", "fallback")).toBe(null);
  });

  it("set() stores -0 as 0, as JSON writes it", async () => {
    const { h, kv } = await open();
    await kv.set("z", -0);
    await kv.set("inside", { a: [-0] });
    expect(Object.is(await kv.get("z"), 0)).toBe(true);
    const reopened = await reopen(kv, h);
    expect(Object.is(await reopened.get("z"), 0)).toBe(true);
    expect(Object.is(((await reopened.get("inside")) as { a: number[] }).a[0], 0)).toBe(true);
  });

  it("set() stores a copy: changing the value afterwards changes nothing stored", async () => {
    const { kv } = await open();
    const value = { list: [1] };
    const setting = kv.set("k", value);
    value.list.push(2);
    await setting;
    expect(await kv.get("k")).toStrictEqual({ list: [1] });
  });

  it("set() stores a value shared by two branches (not a cycle)", async () => {
    const { kv } = await open();
    const shared = [1];
    await kv.set("k", { a: shared, b: shared });
    expect(await kv.get("k")).toStrictEqual({ a: [1], b: [1] });
  });

  it("set() resolves only once the document holds the change", async () => {
    const { h, kv } = await open();
    await kv.set("k", "v");
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ k: "v" });
  });
}

/** The rest of the document through many changes. */
function setDocumentTests(open: Open): void {
  it("a document of 1,000 keys stays exact through updates, many deletes and appends", async () => {
    const { h, kv } = await open();
    const model = new Map<string, JsonValue>();
    const entries = Array.from({ length: 1000 }, (_, i): [string, JsonValue] => [`key${i}`, { i }]);
    await h.plant(JSON.stringify(Object.fromEntries(entries)));
    for (const [key, value] of entries) model.set(key, value);
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < 1000; i += 7) {
      model.set(`key${i}`, [i]);
      calls.push(kv.set(`key${i}`, [i]));
    }
    await Promise.all(calls);
    const same = async (): Promise<void> =>
      expect(JSON.stringify(JSON.parse((await h.peek()) ?? ""))).toBe(JSON.stringify(Object.fromEntries(model)));
    await same();
    // Fewer deletes than half the keys: the cached chunks must forget the deleted lines.
    for (let i = 300; i < 600; i++) {
      model.delete(`key${i}`);
      await kv.delete(`key${i}`);
    }
    await same();
    // A write elsewhere reuses the cached text of the chunks the deletes touched.
    model.set("key0", "elsewhere");
    await kv.set("key0", "elsewhere");
    await same();
    // More than half deleted: the document compacts its slots.
    for (let i = 0; i < 300; i++) {
      model.delete(`key${i}`);
      await kv.delete(`key${i}`);
    }
    await same();
    for (let i = 0; i < 300; i += 3) {
      model.set(`key${i}`, "back");
      await kv.set(`key${i}`, "back");
    }
    for (let i = 0; i < 50; i++) {
      model.set(`new${i}`, i);
      await kv.set(`new${i}`, i);
    }
    await same();
    expect(JSON.stringify(await (await reopen(kv, h)).getAll())).toBe(JSON.stringify(Object.fromEntries(model)));
  });

  it("set() keeps the other keys of an existing document", async () => {
    const { h, kv } = await open();
    await h.plant('{"a": 1, "b": 2}');
    await kv.set("b", 3);
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ a: 1, b: 3 });
  });
}

/** Values that are not JSON, or nest too deep. */
function setRefusesTests(open: Open): void {
  it.each(invalidValues)("set() rejects %s with a TypeError naming the place, writing nothing", async (_, key, value, place) => {
    const { h, kv } = await open();
    await kv.set(key, "before");
    const before = await h.peek();
    const error = await rejection(kv.set(key, value as JsonValue));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(`Cannot set key ${JSON.stringify(key)}: ${place}`);
    expect(await h.peek()).toBe(before);
    expect(await kv.get(key)).toBe("before");
  });

  it("set() rejects a value 100,000 levels deep with a TypeError, not a stack overflow", async () => {
    const { h, kv } = await open();
    const error = await rejection(kv.set("k", deep(100_000)));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/nests deeper than 1000 levels$/);
    expect(await h.peek()).toBe(undefined);
  });

  it("set() stores a value nested exactly as deep as allowed", async () => {
    const { kv } = await open();
    await kv.set("k", deep(MAX_DEPTH));
    expect(await kv.get("k")).toStrictEqual(deep(MAX_DEPTH));
  });
}
