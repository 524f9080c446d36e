// Types only: a store calls nothing of zod but the documented API of the schema it is given
// (`def`, `safeParse`), so it runs with whichever copy of zod 4 made that schema.
import type { z } from "zod";
import { SchemaMismatchError } from "./errors.js";
import type { LoadCheck } from "./document.js";
import { formatPath } from "./json-value.js";

/** A zod object schema describing a store's keys and their values. */
export type StoreSchema = z.ZodObject;

/** The `schema` option of a store whose document type is `T`: a zod object schema that outputs `T`. */
export type StoreSchemaOf<T> = z.ZodType<T> & StoreSchema;

/** The part of zod 4's public `schema.def` read here; every zod 4 schema has `def.type`. */
interface Def {
  readonly type: string;
  readonly coerce?: boolean;
  readonly shape?: Readonly<Record<string, z.ZodType>>;
  readonly getter?: () => z.ZodType;
  readonly catchall?: z.ZodType;
  readonly [child: string]: unknown;
}

const defOf = (schema: unknown): Def | undefined => {
  const def = (schema as { def?: Partial<Def> } | null)?.def;
  return typeof def?.type === "string" ? (def as Def) : undefined;
};

/** The fields of a def that hold inner schemas, one or a list (object shapes and lazy getters aside). */
const innerFields = ["innerType", "element", "options", "left", "right", "items", "rest", "keyType", "valueType", "in", "out", "catchall"];

/**
 * Whether parsing with `schema` can change a value's type: a transform (`.transform()`,
 * `z.preprocess`, `z.codec`) or a coercion (`z.coerce`) anywhere inside it. The load check runs
 * the schema on what `set()` stored, its output: after a transform that is another type, which
 * the schema refuses, and a coercion lets through a file whose value is not what the type says.
 */
function transforms(schema: unknown, seen = new Set<unknown>()): boolean {
  const def = defOf(schema);
  if (def === undefined || seen.has(schema)) return false;
  seen.add(schema); // a z.lazy schema may contain itself
  if (def.type === "transform" || def.coerce === true || (def.type === "pipe" && "transform" in def)) return true;
  const inner: unknown[] = innerFields.flatMap((field) => def[field] ?? []);
  if (def.type === "object" && def.shape) inner.push(...Object.values(def.shape));
  if (def.type === "lazy" && def.getter) inner.push(def.getter());
  return inner.some((child) => transforms(child, seen));
}

/**
 * The checks a schema makes. Every key of a store is optional (a new store is empty); a key the
 * schema does not name is refused unless the schema lets other keys through (`z.looseObject`,
 * `.catchall()`).
 */
export class SchemaChecks {
  readonly #shape: Readonly<Record<string, z.ZodType>>;
  readonly #others: z.ZodType | undefined;

  /**
   * @throws {TypeError} When `schema` is not a zod object schema, or transforms or coerces a
   *   value: a store must load every document it writes.
   */
  constructor(schema: unknown) {
    const def = defOf(schema);
    if (def?.type !== "object" || typeof def.shape !== "object") {
      throw new TypeError("Cannot create store: the schema option must be a zod object schema, such as z.object({ ... })");
    }
    const others = defOf(def.catchall)?.type === "never" ? undefined : def.catchall;
    const parts: Array<[string, unknown]> = Object.entries(def.shape).map(([key, type]) => [`key ${JSON.stringify(key)}`, type]);
    for (const [which, type] of [...parts, ["other keys", others] satisfies [string, unknown]]) {
      if (!transforms(type)) continue;
      throw new TypeError(
        `Cannot create store: the schema of ${which} transforms or coerces values (.transform, z.preprocess, z.codec, z.coerce), so the store could not load what it writes; check values without changing their type (.refine, .trim)`,
      );
    }
    this.#shape = def.shape;
    this.#others = others;
  }

  /**
   * The value to store under `key`: the schema's output for `value`.
   * @throws {TypeError} Naming the key and what the schema says, before anything is written.
   */
  forSet(key: string, value: unknown): unknown {
    const result = this.#check(key, value);
    if (!result.ok) throw new TypeError(`Cannot set key ${JSON.stringify(key)}: ${result.problem}`, { cause: result.cause });
    // The load check runs the schema on what is stored, the output: an output the schema refuses
    // (an .overwrite() that is not idempotent) would make a document this store cannot load.
    const again = this.#check(key, result.value);
    if (!again.ok) {
      throw new TypeError(`Cannot set key ${JSON.stringify(key)}: the schema's output for it ${again.problem}, so the store could not load it`, {
        cause: again.cause,
      });
    }
    return result.value;
  }

  /** The check of a loaded document: its first refused key is a {@link SchemaMismatchError}. */
  forLoad(location: string): LoadCheck {
    return (key, value) => {
      const result = this.#check(key, value);
      if (result.ok) return;
      throw new SchemaMismatchError(
        `Cannot load store ${JSON.stringify(location)}: key ${JSON.stringify(key)} ${result.problem}`,
        location,
        key,
        { cause: result.cause },
      );
    };
  }

  #check(key: string, value: unknown): { ok: true; value: unknown } | { ok: false; problem: string; cause?: unknown } {
    const type = Object.hasOwn(this.#shape, key) ? this.#shape[key] : this.#others;
    if (type === undefined) return { ok: false, problem: "is not a key of the schema" };
    const result = type.safeParse(value);
    if (result.success) return { ok: true, value: result.data };
    const issues = result.error.issues.map((issue) =>
      issue.path.length > 0 ? `${issue.message} at ${formatPath([key, ...issue.path])}` : issue.message,
    );
    return { ok: false, problem: `does not match the schema: ${issues.join("; ")}`, cause: result.error };
  }
}
