import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isStoreFormatError, SchemaMismatchError } from "../src/errors.js";
import { formatPath, toJson } from "../src/json-value.js";
import { SchemaChecks } from "../src/schema.js";

const location = "test:schema";

/** The error `forSet` throws for `value` under `key`. */
function setError(schema: z.ZodObject, key: string, value: unknown): TypeError {
  try {
    new SchemaChecks(schema).forSet(key, value);
  } catch (error) {
    return error as TypeError;
  }
  throw new Error(`forSet(${JSON.stringify(key)}) accepted the value`);
}

/** The error the load check throws for `value` under `key`. */
function loadError(schema: z.ZodObject, key: string, value: unknown): SchemaMismatchError {
  try {
    new SchemaChecks(schema).forLoad(location)(key, value);
  } catch (error) {
    return error as SchemaMismatchError;
  }
  throw new Error(`the load check accepted ${JSON.stringify(key)}`);
}

/** The places zod's documented `prettifyError` names (`→ at <path>`), for the same key in a whole-document schema. */
function zodPlaces(schema: z.ZodObject, key: string, value: unknown): string[] {
  const shape = schema.shape as Record<string, z.ZodType | undefined>;
  const result = z.object({ [key]: shape[key] ?? z.never() }).safeParse({ [key]: value });
  if (result.success) throw new Error("zod accepted the value");
  return [...z.prettifyError(result.error).matchAll(/→ at (.*)/g)].map((match) => match[1] ?? "");
}

describe("formatPath", () => {
  it("writes names with dots, indices and other names in brackets, as zod does", () => {
    expect(formatPath(["seen"])).toBe("seen");
    expect(formatPath(["seen", 1])).toBe("seen[1]");
    expect(formatPath(["a", "b_c", "$d", 0, "e"])).toBe("a.b_c.$d[0].e");
    expect(formatPath(["odd key", "x-y", "", 2])).toBe('["odd key"]["x-y"][""][2]');
    expect(formatPath(["quote\"d", "é"])).toBe('["quote\\"d"]["é"]');
    expect(formatPath(["a", Symbol("s")])).toBe('a["Symbol(s)"]');
    expect(formatPath([0, "a"])).toBe("[0].a");
  });

  it("writes an empty name in brackets, so that a place under the key \"\" is not blank", () => {
    expect(formatPath([""])).toBe('[""]');
    expect(formatPath(["", "a", ""])).toBe('[""].a[""]');
    expect(() => toJson("", { a: () => 1 })).toThrow(new TypeError('Cannot set key "": value at [""].a is a function'));
    const loose = z.object({}).catchall(z.array(z.number()));
    expect(setError(loose, "", [1, "2"]).message).toBe('Cannot set key "": does not match the schema: Invalid input: expected number, received string at [""][1]');
  });
});

describe("SchemaChecks: the places its messages name", () => {
  const schema = z.object({
    seen: z.array(z.number().int()),
    "odd key": z.object({ "x-y": z.array(z.object({ ok: z.boolean() })) }),
    nested: z.object({ $id: z.string(), list_2: z.tuple([z.string(), z.number()]) }),
    name: z.string(),
  });

  it("names the key and the place inside its value, on set() and on load", () => {
    for (const [key, value, place, problem] of [
      ["seen", [1, "2"], "seen[1]", "Invalid input: expected number, received string"],
      ["odd key", { "x-y": [{ ok: true }, { ok: 1 }] }, '["odd key"]["x-y"][1].ok', "Invalid input: expected boolean, received number"],
      ["nested", { $id: 1, list_2: ["a", 2] }, "nested.$id", "Invalid input: expected string, received number"],
      ["nested", { $id: "a", list_2: ["a", "b"] }, "nested.list_2[1]", "Invalid input: expected number, received string"],
    ] as const) {
      expect(setError(schema, key, value).message).toBe(`Cannot set key ${JSON.stringify(key)}: does not match the schema: ${problem} at ${place}`);
      expect(loadError(schema, key, value).message).toBe(
        `Cannot load store ${JSON.stringify(location)}: key ${JSON.stringify(key)} does not match the schema: ${problem} at ${place}`,
      );
      // The same place zod's own documented formatting gives, so that a store's messages read as zod's.
      expect(zodPlaces(schema, key, value)).toStrictEqual([place]);
    }
  });

  it("names no place for a problem with the key's whole value, and joins several issues", () => {
    expect(setError(schema, "name", 1).message).toBe('Cannot set key "name": does not match the schema: Invalid input: expected string, received number');
    expect(setError(schema, "seen", ["a", 1.5]).message).toBe(
      'Cannot set key "seen": does not match the schema: Invalid input: expected number, received string at seen[0]; Invalid input: expected int, received number at seen[1]',
    );
  });

  it("keeps zod's error as the cause, and names the key of a load error", () => {
    const set = setError(schema, "seen", [1, "2"]);
    expect(set).toBeInstanceOf(TypeError);
    expect(set.cause).toBeInstanceOf(z.ZodError);
    const load = loadError(schema, "seen", [1, "2"]);
    expect(load).toBeInstanceOf(SchemaMismatchError);
    expect(isStoreFormatError(load)).toBe(true);
    expect(load.key).toBe("seen");
    expect(load.location).toBe(location);
    expect(load.cause).toBeInstanceOf(z.ZodError);
  });

  it("refuses a key the schema does not name unless it lets other keys through, checking those with its catchall", () => {
    expect(setError(schema, "other", 1).message).toBe('Cannot set key "other": is not a key of the schema');
    const missing = loadError(schema, "other", 1);
    expect(missing.message).toBe(`Cannot load store ${JSON.stringify(location)}: key "other" is not a key of the schema`);
    expect(missing.cause).toBe(undefined);
    expect(new SchemaChecks(z.looseObject({ a: z.string() })).forSet("other", [1])).toStrictEqual([1]);
    const numbers = z.object({ a: z.string() }).catchall(z.number());
    expect(new SchemaChecks(numbers).forSet("other", 2)).toBe(2);
    expect(setError(numbers, "other", "x").message).toBe('Cannot set key "other": does not match the schema: Invalid input: expected number, received string');
    expect(setError(numbers, "weird key", [1]).message).toBe('Cannot set key "weird key": does not match the schema: Invalid input: expected number, received array');
  });

  it("stores the schema's output, and refuses an output the schema itself refuses", () => {
    expect(new SchemaChecks(z.object({ name: z.string().trim() })).forSet("name", "  bot ")).toBe("bot");
    const growing = z.object({ n: z.number().overwrite((n) => n + 1).max(2) });
    expect(new SchemaChecks(growing).forSet("n", 0)).toBe(1);
    expect(setError(growing, "n", 1).message).toBe(
      'Cannot set key "n": the schema\'s output for it does not match the schema: Too big: expected number to be <=2, so the store could not load it',
    );
  });
});

describe("SchemaChecks: schemas a store refuses", () => {
  const refusal = (which: string): TypeError =>
    new TypeError(
      `Cannot create store: the schema of ${which} transforms or coerces values (.transform, z.preprocess, z.codec, z.coerce), so the store could not load what it writes; check values without changing their type (.refine, .trim)`,
    );

  it("refuses a transform or a coercion anywhere in a key's schema, naming the key", () => {
    const tree = z.lazy((): z.ZodType => z.object({ children: z.array(tree), size: z.string().transform((s) => s.length) }));
    for (const [which, schema] of [
      ['key "n"', z.object({ n: z.string().transform((s) => s.length) })],
      ['key "n"', z.object({ n: z.preprocess((v) => Number(v), z.number()) })],
      ['key "n"', z.object({ n: z.coerce.number() })],
      ['key "n"', z.object({ n: z.codec(z.string(), z.number(), { decode: Number, encode: String }) })],
      ['key "n"', z.object({ n: z.string().pipe(z.transform((s) => s.length)) })],
      ['key "n"', z.object({ n: z.union([z.number(), z.string().transform(Number)]) })],
      ['key "n"', z.object({ n: z.record(z.string(), z.object({ at: z.coerce.date() })).optional() })],
      ['key "n"', z.object({ n: z.tuple([z.string()], z.string().transform((s) => s.length)) })],
      ['key "n"', z.object({ n: z.map(z.string(), z.number().transform(String)).nullable() })],
      ['key "odd key"', z.object({ ok: z.string(), "odd key": z.array(z.string().default("x").transform((s) => s + s)) })],
      ['key "tree"', z.object({ tree })],
      ["other keys", z.object({ ok: z.string() }).catchall(z.number().transform(String))],
    ] as const) {
      expect(() => new SchemaChecks(schema)).toThrow(refusal(which));
    }
  });

  it("accepts checks, defaults and pipes that keep a value's type, and a schema that refers to itself", () => {
    const tree: z.ZodType = z.lazy(() => z.object({ children: z.array(tree), name: z.string().trim() }));
    for (const schema of [
      z.object({ name: z.string().trim().toLowerCase(), n: z.number().int().default(0).refine((n) => n >= 0) }),
      z.object({ tags: z.array(z.string().pipe(z.string().min(1))), at: z.iso.datetime() }),
      z.object({ tree }),
      z.looseObject({ a: z.string() }),
      z.object({}).catchall(z.union([z.string(), z.number()])),
    ]) {
      expect(() => new SchemaChecks(schema)).not.toThrow();
    }
  });

  it("refuses a schema that is not a zod object schema", () => {
    for (const bad of [z.string(), z.array(z.object({})), {}, { def: {} }, { def: { type: "object" } }, "schema", null, undefined]) {
      expect(() => new SchemaChecks(bad)).toThrow(new TypeError("Cannot create store: the schema option must be a zod object schema, such as z.object({ ... })"));
    }
  });
});
