import {
  AioKV,
  CorruptStoreError,
  InvalidStoreShapeError,
  isStoreFormatError,
  isStoreIOError,
  isStoreLockedError,
  MAX_DEPTH,
  StoreFormatError,
  StoreIOError,
  StoreLockedError,
  type AioKVOptions,
  type JsonValue,
} from "@aiokv/core";
import { describe, expect, it } from "vitest";
import { apiContract } from "./api-contract.js";
import { commitContract } from "./commit-contract.js";
import { instrumented, recordingLogger, skipWithout, until, type Harness, type HarnessFactory } from "./harness.js";

/** Resolves the error `promise` rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in outcome)) throw new Error(`Expected a rejection, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(Error);
  return outcome.error as Error;
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** Closes `kv`, then opens the same storage again, as a restart would. */
async function reopen(kv: AioKV, h: Harness): Promise<AioKV> {
  await kv.close();
  return new AioKV(h.backend());
}

function deep(levels: number): JsonValue {
  let value: JsonValue = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

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

// The text, and where and what the message says is wrong.
const corruptTexts: Array<[string, string, string]> = [
  ["truncated JSON", '{"a": 1, "b": [1, 2', "line 1, column 20 (close bracket expected)"],
  ["an empty file", "", "line 1, column 1 (value expected)"],
  ["garbage", "not json at all", "line 1, column 1 (invalid symbol)"],
  ["a byte-order mark", '\uFEFF{"a": 1}', "line 1, column 1 (invalid symbol)"],
  ["NUL bytes", "\0\0\0\0", "line 1, column 1 (invalid symbol)"],
  ["a bad value on line 3", '{\n  "a": 1,\n  "b": tru\n}\n', "line 3, column 8 (invalid symbol)"],
  ["a trailing comma", '{\n  "a": 1,\n}\n', "line 3, column 1 (property name expected)"],
];

const wrongShapes: Array<[string, string, string]> = [
  ["an array", "[1, 2]", "an array"],
  ["a number", "42", "a number"],
  ["a string", '"state"', "a string"],
  ["null", "null", "null"],
  ["a boolean", "true", "a boolean"],
];

const oddKeys = ["", "__proto__", "constructor", "toString", "hasOwnProperty", "a.b[0]", "ünï 🎉", " "];

/**
 * Registers the tests of AioKV's whole contract on a backend: values, keys, copies, the timestamp
 * default, the error contract, ordering and group commit. A backend is done when these pass.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function storeContract(name: string, makeHarness: HarnessFactory): void {
  async function open(options: AioKVOptions = {}): Promise<{ h: Harness; kv: AioKV }> {
    const h = await makeHarness();
    return { h, kv: new AioKV(h.backend(), options) };
  }

  describe(`${name} store contract`, () => {
    describe("get()", () => {
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
    });

    describe("set()", () => {
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
    });

    describe("keys", () => {
      it("keys such as __proto__ and constructor are ordinary keys, read back after a reopen", async () => {
        const { h, kv } = await open();
        for (const [i, key] of oddKeys.entries()) await kv.set(key, { i });
        const reopened = await reopen(kv, h);
        for (const [i, key] of oddKeys.entries()) expect(await reopened.get(key)).toStrictEqual({ i });
        const all = await reopened.getAll();
        expect(Object.getPrototypeOf(all)).toBe(Object.prototype);
        expect(Object.keys(all).sort()).toStrictEqual([...oddKeys].sort());
        expect(Object.getOwnPropertyDescriptor(all, "__proto__")?.value).toStrictEqual({ i: 1 });
        expect(({} as Record<string, unknown>)["i"]).toBe(undefined);
        expect(await reopened.get("absent")).toBe(undefined);
      });

      it("__proto__ in a document written elsewhere is an ordinary key", async () => {
        const { h, kv } = await open();
        await h.plant('{"__proto__": {"polluted": true}, "a": 1}');
        expect(await kv.get("__proto__")).toStrictEqual({ polluted: true });
        expect(await kv.get("polluted")).toBe(undefined);
        expect(({} as Record<string, unknown>)["polluted"]).toBe(undefined);
      });

      it.each([
        ["a number", 1, "a number"],
        ["undefined", undefined, "undefined"],
        ["null", null, "null"],
        ["a symbol", Symbol("k"), "a symbol"],
        ["an object", { k: 1 }, "an object"],
      ])("every method rejects %s as a key with a TypeError", async (_, key, kind) => {
        const { h, kv } = await open();
        const bad = key as unknown as string;
        for (const [method, call] of [
          ["get", () => kv.get(bad)],
          ["set", () => kv.set(bad, 1)],
          ["delete", () => kv.delete(bad)],
        ] as const) {
          const error = await rejection(call());
          expect(error).toBeInstanceOf(TypeError);
          expect(error.message).toBe(`Cannot ${method} key: expected a string, received ${kind}`);
        }
        expect(await h.peek()).toBe(undefined);
      });
    });

    describe("delete()", () => {
      it("delete() removes the key and resolves true", async () => {
        const { h, kv } = await open();
        await kv.set("a", 1);
        await kv.set("b", 2);
        expect(await kv.delete("a")).toBe(true);
        expect(await kv.get("a")).toBe(undefined);
        expect(await (await reopen(kv, h)).getAll()).toStrictEqual({ b: 2 });
      });

      it("delete() resolves true when the key is absent, writing nothing", async () => {
        const h = await makeHarness();
        const backend = instrumented(h.backend());
        expect(await new AioKV(backend).delete("absent")).toBe(true);
        expect(backend.writes).toBe(0);
        expect(await h.peek()).toBe(undefined);
      });

      it("delete() of the last key leaves an empty object", async () => {
        const { h, kv } = await open();
        await kv.set("a", 1);
        await kv.delete("a");
        expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({});
      });
    });

    describe("getAll()", () => {
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
    });

    describe("clear()", () => {
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
    });

    describe("error contract", () => {
      for (const [what, text, where] of corruptTexts) {
        it(`a document of ${what}: reads reject with CorruptStoreError, the document stays as it was`, async () => {
          const logger = recordingLogger();
          const { h, kv } = await open({ logger });
          await h.plant(text);
          for (const call of [() => kv.get("a"), () => kv.set("a", 2), () => kv.getAll()]) {
            const error = await rejection(call());
            expect(error).toBeInstanceOf(CorruptStoreError);
            expect(error).toBeInstanceOf(StoreFormatError);
            expect(error.name).toBe("CorruptStoreError");
            expect(isStoreFormatError(error)).toBe(true);
            expect((error as CorruptStoreError).location).toBe(kv.location);
            expect(error.message).toBe(`Cannot load store ${JSON.stringify(kv.location)}: not valid JSON at ${where}`);
            const [, line, column] = /line (\d+), column (\d+)/.exec(where) ?? [];
            expect((error as CorruptStoreError).position).toEqual({ line: Number(line), column: Number(column) });
            expect(error.cause).toBeInstanceOf(SyntaxError);
          }
          expect(await kv.delete("a")).toBe(false);
          expect(logger.calls).toHaveLength(1);
          expect(logger.calls[0]?.[0]).toBe(`Cannot delete key "a" in store ${JSON.stringify(kv.location)}`);
          expect(logger.calls[0]?.[1]).toBeInstanceOf(CorruptStoreError);
          expect(await h.peek()).toBe(text);
        });
      }

      for (const [what, text, found] of wrongShapes) {
        it(`a document of ${what}: reads reject with InvalidStoreShapeError, the document stays as it was`, async () => {
          const logger = recordingLogger();
          const { h, kv } = await open({ logger });
          await h.plant(text);
          for (const call of [() => kv.get("a"), () => kv.set("a", 2), () => kv.getAll()]) {
            const error = await rejection(call());
            expect(error).toBeInstanceOf(InvalidStoreShapeError);
            expect(error).toBeInstanceOf(StoreFormatError);
            expect(isStoreFormatError(error)).toBe(true);
            expect(error.message).toBe(`Cannot load store ${JSON.stringify(kv.location)}: expected a JSON object, found ${found}`);
            expect(error.cause).toBeInstanceOf(Error);
          }
          expect(await kv.delete("a")).toBe(false);
          expect(logger.calls).toHaveLength(1);
          expect(await h.peek()).toBe(text);
        });
      }

      it("a value nested deeper than set() accepts is an InvalidStoreShapeError at load, naming the key; clear() is the way out", async () => {
        const { h, kv } = await open();
        const planted = `{"ok": 1, "deep": ${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
        await h.plant(planted);
        for (const call of [() => kv.get("ok"), () => kv.get("deep"), () => kv.set("other", 2), () => kv.getAll()]) {
          const error = await rejection(call());
          expect(error).toBeInstanceOf(InvalidStoreShapeError);
          expect(error.message).toBe(
            `Cannot load store ${JSON.stringify(kv.location)}: the value of key "deep" nests 100000 levels deep, deeper than the 1000 a store accepts`,
          );
        }
        expect(await h.peek()).toBe(planted);
        expect(await kv.clear()).toBe(true);
        await kv.set("other", 2);
        expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ other: 2 });
      });

      it("clear() is the way out of a corrupt document, and the store works afterwards", async () => {
        const { h, kv } = await open();
        await h.plant("{corrupt");
        await expect(kv.get("a")).rejects.toBeInstanceOf(CorruptStoreError);
        expect(await kv.clear()).toBe(true);
        expect(await h.peek()).toBe(undefined);
        await kv.set("a", 1);
        expect(await kv.get("a")).toBe(1);
      });

      it("clear() and set() called together on a corrupt document leave only the new key", async () => {
        const { h, kv } = await open();
        await h.plant("{corrupt");
        const [cleared] = await Promise.all([kv.clear(), kv.set("a", 1)]);
        expect(cleared).toBe(true);
        expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ a: 1 });
      });

      it("a document fixed on disk after a failed read loads on the next call", async () => {
        const { h, kv } = await open();
        await h.plant("{corrupt");
        await expect(kv.get("a")).rejects.toBeInstanceOf(CorruptStoreError);
        await h.plant('{"a": 1}');
        expect(await kv.get("a")).toBe(1);
      });

      it("a failed write rejects every change in it with StoreIOError and rolls them back", async () => {
        const logger = recordingLogger();
        const h = await makeHarness();
        const backend = instrumented(h.backend());
        const kv = new AioKV(backend, { logger });
        await kv.set("a", 1);
        await kv.set("gone", true);
        const cause = Object.assign(new Error("disk on fire"), { code: "EIO" });
        backend.failNext = cause;
        const failed = [kv.set("a", 2), kv.set("b", 3), kv.delete("gone")];
        const errors = await Promise.all(failed.slice(0, 2).map((p) => rejection(p)));
        for (const error of errors) {
          expect(error).toBeInstanceOf(StoreIOError);
          expect(isStoreIOError(error)).toBe(true);
          expect(error.message).toBe(`Cannot write store ${JSON.stringify(kv.location)}: disk on fire`);
          expect(error.cause).toBe(cause);
          expect((error as StoreIOError).code).toBe("EIO");
          expect((error as StoreIOError).operation).toBe("write");
        }
        expect(await failed[2]).toBe(false);
        expect(logger.calls[0]?.[1]).toBe(errors[0]);
        expect(backend.writes).toBe(3);
        expect(await kv.getAll()).toStrictEqual({ a: 1, gone: true });
        expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ a: 1, gone: true });
        await kv.set("c", 4);
        expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ a: 1, gone: true, c: 4 });
      });

      it("changes made while a failing write is in flight go into the next write and succeed", async () => {
        const h = await makeHarness();
        const backend = instrumented(h.backend());
        const kv = new AioKV(backend);
        await kv.set("a", 1);
        backend.failNext = new Error("full");
        const release = backend.hold();
        const failing = kv.set("a", 2);
        await until(() => backend.writes === 2);
        const next = kv.set("b", 3);
        expect(await kv.get("b")).toBe(3);
        release();
        await expect(failing).rejects.toBeInstanceOf(StoreIOError);
        await next;
        expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ a: 1, b: 3 });
        expect(await kv.get("a")).toBe(1);
      });
    });

    describe("ordering and group commit", () => {
      it("set() calls made together all persist", async () => {
        const { h, kv } = await open();
        await Promise.all(Array.from({ length: 200 }, (_, i) => kv.set(`k${i}`, i)));
        const all = await (await reopen(kv, h)).getAll();
        expect(Object.keys(all)).toHaveLength(200);
        expect(all["k199"]).toBe(199);
      });

      it("changes called in one turn go to the backend in one write", async () => {
        const h = await makeHarness();
        const backend = instrumented(h.backend());
        const kv = new AioKV(backend);
        await Promise.all([...Array.from({ length: 100 }, (_, i) => kv.set(`k${i}`, i)), kv.delete("k0"), kv.set("k1", "last")]);
        expect(backend.writes).toBe(1);
        expect(await kv.get("k0")).toBe(undefined);
        expect(await kv.get("k1")).toBe("last");
      });

      it("changes made while a write is in flight share the next write, and each resolves after it", async () => {
        const h = await makeHarness();
        const backend = instrumented(h.backend());
        const kv = new AioKV(backend);
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
    });

    describe("ownership and close()", () => {
      it("a second store on the same storage rejects with StoreLockedError while the first is open", async (context) => {
        const logger = recordingLogger();
        const { h, kv } = await open();
        skipWithout(context, h.backend(), "lock");
        await kv.set("a", 1);
        const second = new AioKV(h.backend(), { logger });
        for (const call of [() => second.get("a"), () => second.set("a", 2), () => second.getAll()]) {
          const error = await rejection(call());
          expect(error).toBeInstanceOf(StoreLockedError);
          expect(isStoreLockedError(error)).toBe(true);
          expect((error as StoreLockedError).location).toBe(kv.location);
          expect(error.message).toMatch(new RegExp(`^Cannot own store ${escape(JSON.stringify(kv.location))}: it is locked by `));
        }
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
        const second = new AioKV(h.backend());
        await expect(second.get("a")).rejects.toBeInstanceOf(StoreLockedError);
        await kv.close();
        expect(await second.get("a")).toBe(1);
        await second.set("b", 2);
        await second.close();
      });

      it("lock: false lets two stores open the same storage", async () => {
        const { h, kv } = await open({ lock: false });
        await kv.set("a", 1);
        const second = new AioKV(h.backend(), { lock: false });
        expect(await second.get("a")).toBe(1);
      });

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
        const h = await makeHarness();
        const backend = instrumented(h.backend());
        const kv = new AioKV(backend);
        backend.failNext = new Error("full");
        // The outcome is taken at once: the rejection must not wait, unhandled, for close().
        const failing = kv.set("a", 1).then(
          () => undefined,
          (error: unknown) => error,
        );
        await kv.close();
        expect(await failing).toBeInstanceOf(StoreIOError);
        const reopened = new AioKV(h.backend());
        expect(await reopened.get("a")).toBe(undefined);
        await reopened.close();
      });

      it("await using closes the store at the end of the block", async () => {
        const h = await makeHarness();
        {
          await using kv = new AioKV(h.backend());
          await kv.set("a", 1);
        }
        await using again = new AioKV(h.backend());
        expect(await again.get("a")).toBe(1);
      });

      it("close() of a store never used resolves", async () => {
        const { kv } = await open();
        await expect(kv.close()).resolves.toBe(undefined);
      });
    });

  });

  apiContract(name, makeHarness);
  commitContract(name, makeHarness);
}
