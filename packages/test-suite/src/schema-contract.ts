import { AioKV, isStoreFormatError, SchemaMismatchError, type AioKVOptions } from "@aiokv/core";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { recordingLogger, storeOptions, type HarnessFactory } from "./harness.js";
import { instrumentedOpener, parsed, type OpenInstrumented } from "./support.js";

const schema = z.object({ last_command: z.string(), seen: z.array(z.number().int()), ran_at: z.number(), name: z.string().trim() });

/**
 * The `schema` option: what `set()` refuses and how it stores what it accepts, a loaded document
 * the schema refuses (`SchemaMismatchError`), and the schemas a store refuses at construction.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function schemaContract(name: string, makeHarness: HarnessFactory): void {
  const open = instrumentedOpener(makeHarness);
  describe(`${name} store contract: schema`, () => {
    setAndLoadTests(open);
    constructionTests(open, makeHarness);
  });
}

/** What set() takes and a store loads under a schema. */
function setAndLoadTests(open: OpenInstrumented): void {
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
    const loose = new AioKV(h.backend(), storeOptions(h, { schema: z.looseObject({ last_command: z.string() }) } as AioKVOptions));
    expect(await loose.getAll()).toStrictEqual({ last_command: "ping", legacy: 1 });
    await loose.set("other", [1]);
    await expect(loose.set("last_command", 1 as never)).rejects.toThrow(TypeError);
  });
}

/** The schemas a store takes and refuses. */
function constructionTests(open: OpenInstrumented, makeHarness: HarnessFactory): void {
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
      expect(() => new AioKV(h.backend(), storeOptions(h, { schema } as unknown as AioKVOptions))).toThrow(new TypeError(message(which)));
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
    const kv = new AioKV(h.backend(), storeOptions(h, { schema: checked }));
    await kv.setMany({ name: "  Bot ", tags: ["a"], n: 3 });
    await kv.close();
    const again = new AioKV(h.backend(), storeOptions(h, { schema: checked }));
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
    const again = new AioKV(h.backend(), storeOptions(h, { schema: z.object({ n: z.number().overwrite((n) => n + 1).max(2) }) }));
    expect(await again.get("n")).toBe(1);
    await again.close();
  });

  it("a schema that is not a zod object schema is refused at construction", async () => {
    const h = await makeHarness();
    for (const bad of [z.string(), {}, "schema"]) {
      expect(() => new AioKV(h.backend(), storeOptions(h, { schema: bad } as unknown as AioKVOptions))).toThrow(
        new TypeError("Cannot create store: the schema option must be a zod object schema, such as z.object({ ... })"),
      );
    }
  });
}
