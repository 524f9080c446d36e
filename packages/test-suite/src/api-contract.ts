import {
  AioKV,
  CorruptStoreError,
  InvalidStoreShapeError,
  isStoreFormatError,
  SchemaMismatchError,
  StoreIOError,
  type AioKVOptions,
} from "@aiokv/core";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { instrumented, recordingLogger, skipWithout, type Harness, type HarnessFactory } from "./harness.js";

const parsed = (text: string | undefined): unknown => JSON.parse(text ?? "null");

/**
 * The contract of `update`, `has`, `keys`, `setMany`, `deleteMany`, `flush`, `quarantine` and
 * the `schema` option; part of {@link storeContract}.
 */
export function apiContract(name: string, makeHarness: HarnessFactory): void {
  async function open(options: AioKVOptions = {}): Promise<{ h: Harness; kv: AioKV; backend: ReturnType<typeof instrumented> }> {
    const h = await makeHarness();
    const backend = instrumented(h.backend());
    return { h, backend, kv: new AioKV(backend, options) };
  }

  async function reopened(kv: AioKV, h: Harness): Promise<unknown> {
    await kv.close();
    const again = new AioKV(h.backend());
    const all = await again.getAll();
    await again.close();
    return all;
  }

  describe(`${name} store contract: update, has, keys, setMany, deleteMany, flush`, () => {
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
      expect(await new AioKV(h.backend()).keys()).toStrictEqual([]);
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
  });

  describe(`${name} store contract: quarantine()`, () => {
    const clock = (): number => Date.UTC(2026, 10, 30, 6, 30, 0, 123);

    for (const [what, text, error] of [
      ["not JSON", '{"a": 1,', CorruptStoreError],
      ["not an object", "[1, 2]", InvalidStoreShapeError],
    ] as const) {
      it(`moves a document that is ${what} aside, logs where, and leaves an empty store`, async (context) => {
        const logger = recordingLogger();
        const { h, kv, backend } = await open({ logger, clock });
        skipWithout(context, backend, "moveAside");
        await h.plant(text);
        await expect(kv.get("a")).rejects.toBeInstanceOf(error);
        const moved = await kv.quarantine();
        expect(moved).toBe(`${kv.location}.corrupt-2026-11-30T06-30-00.123Z`);
        expect(logger.calls).toHaveLength(1);
        expect(logger.calls[0]?.[0]).toBe(
          `Moved the unreadable store ${JSON.stringify(kv.location)} aside to ${JSON.stringify(moved)}; the store is empty`,
        );
        expect(logger.calls[0]?.[1]).toBeInstanceOf(error);
        if (h.peekAt && moved) expect(await h.peekAt(moved)).toBe(text);
        expect(await h.peek()).toBe(undefined);
        expect(await kv.getAll()).toStrictEqual({});
        await kv.set("a", 1);
        expect(await reopened(kv, h)).toStrictEqual({ a: 1 });
      });
    }

    it("refuses to move a document that loads, and resolves undefined when there is none", async () => {
      const { h, kv } = await open();
      expect(await kv.quarantine()).toBe(undefined);
      await kv.set("a", 1);
      const before = await h.peek();
      await expect(kv.quarantine()).rejects.toThrow(
        `Cannot quarantine store ${JSON.stringify(kv.location)}: it loads without error (clear() empties it)`,
      );
      expect(await h.peek()).toBe(before);
      expect(await kv.get("a")).toBe(1);
    });

    it("rejects, moving nothing, on a backend that cannot move a document aside", async () => {
      const h = await makeHarness();
      const inner = h.backend();
      const kv = new AioKV({ location: inner.location, read: () => inner.read(), write: (pieces) => inner.write(pieces), remove: () => inner.remove() });
      await h.plant("{");
      await expect(kv.quarantine()).rejects.toThrow(
        `Cannot quarantine store ${JSON.stringify(kv.location)}: its backend cannot move a document aside (clear() removes it)`,
      );
      expect(await h.peek()).toBe("{");
    });
  });

  describe(`${name} store contract: schema`, () => {
    const schema = z.object({ last_command: z.string(), seen: z.array(z.number().int()), ran_at: z.number(), name: z.string().trim() });

    it("set() refuses a value the schema refuses with a TypeError naming the key; nothing is written", async () => {
      const { h, kv } = await open({ schema });
      await kv.set("seen", [1, 2]);
      const before = await h.peek();
      const error = await kv.set("seen", [1, "2"] as never).catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(TypeError);
      expect(error?.message).toBe('Cannot set key "seen": does not match the schema: Invalid input: expected number, received string at seen[1]');
      expect(error?.cause).toBeInstanceOf(z.ZodError);
      await expect(kv.set("last_command", 1 as never)).rejects.toThrow(
        new TypeError('Cannot set key "last_command": does not match the schema: Invalid input: expected string, received number'),
      );
      await expect(kv.set("other", 1)).rejects.toThrow(new TypeError('Cannot set key "other": is not a key of the schema'));
      await expect(kv.setMany({ last_command: "ok", seen: "no" } as never)).rejects.toThrow(TypeError);
      await expect(kv.update("seen", () => ["x"] as never)).rejects.toThrow(TypeError);
      expect(await h.peek()).toBe(before);
    });

    it("set(key) gives a number key its timestamp; values are stored as the schema outputs them", async () => {
      const { kv } = await open({ schema, clock: () => 1_764_000_000_000 });
      await kv.set("ran_at");
      await kv.set("name", "  bot  ");
      expect(await kv.getAll()).toStrictEqual({ ran_at: 1_764_000_000, name: "bot" });
      await expect(kv.set("last_command")).rejects.toThrow(TypeError);
    });

    it("a loaded document with a value the schema refuses rejects with SchemaMismatchError; the file stays", async () => {
      const { h, kv, backend } = await open({ schema, logger: recordingLogger() });
      const text = '{"last_command": "ping", "seen": [1, 2.5], "ran_at": "yesterday"}';
      await h.plant(text);
      for (const call of [() => kv.get("last_command"), () => kv.set("last_command", "x"), () => kv.keys()]) {
        const error = (await call().catch((e: unknown) => e)) as SchemaMismatchError;
        expect(error).toBeInstanceOf(SchemaMismatchError);
        expect(isStoreFormatError(error)).toBe(true);
        expect(error.key).toBe("seen");
        expect(error.location).toBe(kv.location);
        expect(error.message).toBe(
          `Cannot load store ${JSON.stringify(kv.location)}: key "seen" does not match the schema: Invalid input: expected int, received number at seen[1]`,
        );
      }
      expect(await h.peek()).toBe(text);
      // The way out: quarantine() where the backend can move a document aside, clear() elsewhere.
      if (backend.moveAside) expect(await kv.quarantine()).toMatch(/\.corrupt-/);
      else expect(await kv.clear()).toBe(true);
      expect(await kv.getAll()).toStrictEqual({});
    });

    it("a key the schema does not name fails the load, unless the schema is loose", async () => {
      const { h, kv } = await open({ schema });
      await h.plant('{"last_command": "ping", "legacy": 1}');
      await expect(kv.get("last_command")).rejects.toThrow(`Cannot load store ${JSON.stringify(kv.location)}: key "legacy" is not a key of the schema`);
      await kv.close();
      const loose = new AioKV(h.backend(), { schema: z.looseObject({ last_command: z.string() }) } as AioKVOptions);
      expect(await loose.getAll()).toStrictEqual({ last_command: "ping", legacy: 1 });
      await loose.set("other", [1]);
      await expect(loose.set("last_command", 1 as never)).rejects.toThrow(TypeError);
    });

    it("a schema that transforms or coerces a value is refused at construction, naming the key; nothing is written", async () => {
      const h = await makeHarness();
      const message = (which: string): string =>
        `Cannot create store: the schema of ${which} transforms or coerces values (.transform, z.preprocess, z.codec, z.coerce), so the store could not load what it writes; check values without changing their type (.refine, .trim)`;
      const tree = z.lazy((): z.ZodType => z.object({ children: z.array(tree), size: z.string().transform((s) => s.length) }));
      for (const [which, schema] of [
        ['key "n"', z.object({ ok: z.string(), n: z.string().transform((s) => s.length) })],
        ['key "n"', z.object({ n: z.preprocess((v) => Number(v), z.number()) })],
        ['key "n"', z.object({ n: z.coerce.number() })],
        ['key "n"', z.object({ n: z.codec(z.string(), z.number(), { decode: Number, encode: String }) })],
        ['key "deep"', z.object({ deep: z.array(z.object({ when: z.string().pipe(z.transform((s) => s.toUpperCase())) }).optional()) })],
        ['key "tree"', z.object({ tree })],
        ["other keys", z.object({ ok: z.string() }).catchall(z.number().transform(String))],
      ] as const) {
        expect(() => new AioKV(h.backend(), { schema } as unknown as AioKVOptions)).toThrow(new TypeError(message(which)));
      }
      expect(await h.peek()).toBe(undefined);
    });

    it("a schema's checks and non-transforming pipes are accepted, and what set() stored loads again after a reopen", async () => {
      const h = await makeHarness();
      const checked = z.object({
        name: z.string().trim().toLowerCase(),
        tags: z.array(z.string().pipe(z.string().min(1))),
        n: z.number().int().default(0),
      });
      const kv = new AioKV(h.backend(), { schema: checked });
      await kv.setMany({ name: "  Bot ", tags: ["a"], n: 3 });
      await kv.close();
      const again = new AioKV(h.backend(), { schema: checked });
      expect(await again.getAll()).toStrictEqual({ name: "bot", tags: ["a"], n: 3 });
      await again.close();
    });

    it("set() refuses a value whose schema output the schema itself refuses, so that the store never writes what it cannot load", async () => {
      const { h, kv } = await open({ schema: z.object({ n: z.number().overwrite((n) => n + 1).max(2) }) });
      await kv.set("n", 0);
      await expect(kv.set("n", 1)).rejects.toThrow(
        new TypeError('Cannot set key "n": the schema\'s output for it does not match the schema: Too big: expected number to be <=2, so the store could not load it'),
      );
      expect(parsed(await h.peek())).toStrictEqual({ n: 1 });
      await kv.close();
      const again = new AioKV(h.backend(), { schema: z.object({ n: z.number().overwrite((n) => n + 1).max(2) }) });
      expect(await again.get("n")).toBe(1);
      await again.close();
    });

    it("a schema that is not a zod object schema is refused at construction", async () => {
      const h = await makeHarness();
      for (const bad of [z.string(), {}, "schema"]) {
        expect(() => new AioKV(h.backend(), { schema: bad } as unknown as AioKVOptions)).toThrow(
          new TypeError("Cannot create store: the schema option must be a zod object schema, such as z.object({ ... })"),
        );
      }
    });
  });
}
