import { describe, expect, it } from "vitest";
import type { HarnessFactory } from "./harness.js";
import { opener, rejection, reopen, type Open } from "./support.js";

const oddKeys = ["", "__proto__", "constructor", "toString", "hasOwnProperty", "a.b[0]", "ünï 🎉", " "];

/**
 * The keys of the store: any string is an ordinary key (`__proto__`, `constructor`, the empty
 * string included), in a document written elsewhere too; every method refuses a key that is not a
 * string.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function keysContract(name: string, makeHarness: HarnessFactory): void {
  const open = opener(makeHarness);
  describe(`${name} store contract`, () => {
    describe("keys", () => keysTests(open));
  });
}

function keysTests(open: Open): void {
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
}
