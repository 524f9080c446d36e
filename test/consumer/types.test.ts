// Type-level tests: `pnpm typecheck` (tsc over the tests) fails when a type regresses, because
// each @ts-expect-error line must be an error and each expectTypeOf must hold. The runtime part
// only proves the typed calls run.
import { MemoryBackend } from "@aiokv/memory-backend";
import { AioKV, type JsonValue } from "aiokv";
import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";

interface BotState {
  last_command: string;
  seen: number[];
  ran_at?: number;
}

describe("types", () => {
  it("an untyped store takes any string key and any JSON value; get<V> narrows", async () => {
    const kv = new AioKV(new MemoryBackend());
    expectTypeOf(kv.get("a")).toEqualTypeOf<Promise<JsonValue | undefined>>();
    expectTypeOf(kv.get<number>("a")).toEqualTypeOf<Promise<number | undefined>>();
    expectTypeOf(kv.get<number, 0>("a", 0)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(kv.get("a", "fallback")).toEqualTypeOf<Promise<JsonValue>>();
    expectTypeOf(kv.update<number>("n", (n) => (n ?? 0) + 1)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(kv.keys()).toEqualTypeOf<Promise<string[]>>();
    await kv.set("a", { nested: [1, "two", null] });
    await kv.set("stamp");
    await kv.setMany({ b: 1, c: "x" });
    // @ts-expect-error: a Date is not JSON data
    await expect(kv.set("d", new Date())).rejects.toThrow(TypeError);
    // @ts-expect-error: keys are strings
    await expect(kv.get(1)).rejects.toThrow(TypeError);
    // @ts-expect-error: a string is one key, not an iterable of keys (it would delete "a", "b", "c")
    await expect(kv.deleteMany("abc")).rejects.toThrow("Cannot delete keys: expected an iterable of keys, received a string");
    expect(await kv.deleteMany(new Set(["a"]))).toBe(true);
  });

  it("a typed store checks every key and value at compile time", async () => {
    const kv = new AioKV<BotState>(new MemoryBackend());
    expectTypeOf(kv.get("last_command")).toEqualTypeOf<Promise<string | undefined>>();
    expectTypeOf(kv.get("seen", [] as number[])).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(kv.get("ran_at")).toEqualTypeOf<Promise<number | undefined>>();
    expectTypeOf(kv.getAll()).toEqualTypeOf<Promise<{ last_command?: string; seen?: number[]; ran_at?: number }>>();
    expectTypeOf(kv.keys()).toEqualTypeOf<Promise<Array<"last_command" | "seen" | "ran_at">>>();
    expectTypeOf(kv.update("seen", (seen) => [...(seen ?? []), 1])).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(kv.update("seen", (seen) => [...seen, 1], [] as number[])).toEqualTypeOf<Promise<number[]>>();

    await kv.set("last_command", "ping");
    await kv.set("ran_at");
    await kv.setMany({ seen: [1, 2] });
    await kv.setMany([["last_command", "pong"]]);
    await kv.deleteMany(["seen"]);
    expect(await kv.getAll()).toEqual({ last_command: "pong", ran_at: expect.any(Number) as number });

    // @ts-expect-error: not a key of BotState
    await kv.get("unknown");
    // @ts-expect-error: a typed store takes no value type argument
    await kv.get<number>("last_command");
    // @ts-expect-error: last_command holds a string
    await expect(kv.set("last_command", 1)).resolves.toBe(undefined);
    // @ts-expect-error: set(key) stores a number, and last_command holds a string
    await kv.set("last_command");
    // @ts-expect-error: seen holds numbers
    await kv.setMany({ seen: ["x"] });
    // @ts-expect-error: the pair's value must match its key
    await kv.setMany([["seen", "x"]]);
    // @ts-expect-error: not a key of BotState
    await kv.deleteMany(["unknown"]);
    // @ts-expect-error: not a key of BotState
    await kv.has("unknown");
    // @ts-expect-error: fn must return number[] (the type is all that checks it: there is no schema)
    expect(await kv.update("seen", () => "x")).toBe("x");
  });

  it("a document type whose values are not JSON data is refused", () => {
    // @ts-expect-error: a Date is not a JSON value
    expectTypeOf<AioKV<{ when: Date }>>().not.toBeAny();
    // @ts-expect-error: functions are not JSON values
    expectTypeOf<AioKV<{ run: () => void }>>().not.toBeAny();
  });

  it("interface-typed plain data is JSON data; Dates, functions, bigints and undefined properties are not", async () => {
    interface Prefs {
      theme: string;
      sizes: number[];
      font?: { name: string; bold: boolean | null };
    }
    const prefs: Prefs = { theme: "dark", sizes: [12], font: { name: "mono", bold: null } };
    const kv = new AioKV(new MemoryBackend());
    await kv.set("prefs", prefs);
    await kv.set("list", [prefs] as readonly Prefs[]);
    expectTypeOf(kv.get<Prefs>("prefs")).toEqualTypeOf<Promise<Prefs | undefined>>();
    expect(await kv.get<Prefs>("prefs")).toStrictEqual(prefs);
    expectTypeOf(kv.update<Prefs>("prefs", (p) => ({ theme: "light", sizes: p?.sizes ?? [] }))).toEqualTypeOf<Promise<Prefs>>();
    const typed = new AioKV<{ prefs: Prefs; all: Prefs[] }>(new MemoryBackend());
    await typed.set("prefs", prefs);
    await typed.set("all", [prefs]);
    expectTypeOf(typed.get("prefs")).toEqualTypeOf<Promise<Prefs | undefined>>();
    expect(await typed.get("all")).toStrictEqual([prefs]);

    interface Dated {
      when: Date;
    }
    interface Callable {
      run: () => void;
    }
    interface Big {
      n: bigint;
    }
    interface Maybe {
      a: string | undefined;
    }
    const [dated, callable, big, maybe]: [Dated, Callable, Big, Maybe] = [{ when: new Date(0) }, { run: () => {} }, { n: 1n }, { a: undefined }];
    // @ts-expect-error: a Date inside an interface is not JSON data
    await expect(kv.set("k", dated)).rejects.toThrow("Cannot set key \"k\": value at k.when is an instance of Date");
    // @ts-expect-error: a function property
    await expect(kv.set("k", callable)).rejects.toThrow("Cannot set key \"k\": value at k.run is a function");
    // @ts-expect-error: a bigint property
    await expect(kv.set("k", big)).rejects.toThrow("Cannot set key \"k\": value at k.n is a bigint");
    // @ts-expect-error: a property that may be undefined
    await expect(kv.set("k", maybe)).rejects.toThrow("Cannot set key \"k\": value at k.a is undefined");
    // @ts-expect-error: undefined inside an array
    await expect(kv.set("k", [1, undefined])).rejects.toThrow("Cannot set key \"k\": value at k[1] is undefined");
    // @ts-expect-error: a function
    await expect(kv.set("k", () => 1)).rejects.toThrow("Cannot set key \"k\": value at k is a function");
    // @ts-expect-error: a Map
    await expect(kv.set("k", new Map([["a", 1]]))).rejects.toThrow("Cannot set key \"k\": value at k is an instance of Map");
    // @ts-expect-error: get<V> takes JSON data only
    expect(await kv.get<Dated>("k")).toBe(undefined);
    // @ts-expect-error: update<V> too
    await expect(kv.update<Callable>("k", () => ({ run: () => {} }))).rejects.toThrow(TypeError);
    // @ts-expect-error: a document type whose interface holds a Date
    expectTypeOf<AioKV<{ d: Dated }>>().not.toBeAny();
  });

  it("a schema types the store", async () => {
    const kv = new AioKV(new MemoryBackend(), { schema: z.object({ count: z.number(), tags: z.array(z.string()) }) });
    expectTypeOf(kv).toEqualTypeOf<AioKV<{ count: number; tags: string[] }>>();
    expectTypeOf(kv.get("count")).toEqualTypeOf<Promise<number | undefined>>();
    expectTypeOf(kv.update("count", (n) => (n ?? 0) + 1)).toEqualTypeOf<Promise<number>>();
    await kv.set("count");
    // @ts-expect-error: tags holds strings
    await expect(kv.set("tags", [1])).rejects.toThrow(TypeError);
    // @ts-expect-error: not in the schema
    await expect(kv.set("other", 1)).rejects.toThrow(TypeError);
  });
});
