import { core, type z } from "zod";
import { SchemaMismatchError } from "./errors.js";
import type { LoadCheck } from "./document.js";

/** A zod object schema describing a store's keys and their values. */
export type StoreSchema = z.ZodObject;

/**
 * The checks a schema makes. Every key of a store is optional (a new store is empty); a key the
 * schema does not name is refused unless the schema lets other keys through (`z.looseObject`,
 * `.catchall()`).
 */
export class SchemaChecks {
  readonly #shape: Readonly<Record<string, z.ZodType>>;
  readonly #others: z.ZodType | undefined;

  /** @throws {TypeError} When `schema` is not a zod object schema. */
  constructor(schema: unknown) {
    const def = (schema as { _zod?: { def?: { type?: unknown; shape?: unknown; catchall?: z.ZodType } } } | null)?._zod?.def;
    if (def?.type !== "object" || typeof def.shape !== "object" || def.shape === null) {
      throw new TypeError("Cannot create store: the schema option must be a zod object schema, such as z.object({ ... })");
    }
    this.#shape = def.shape as Record<string, z.ZodType>;
    const others = def.catchall;
    this.#others = others?._zod.def.type === "never" ? undefined : others;
  }

  /**
   * The value to store under `key`: the schema's output for `value`.
   * @throws {TypeError} Naming the key and what the schema says, before anything is written.
   */
  forSet(key: string, value: unknown): unknown {
    const result = this.#check(key, value);
    if (result.ok) return result.value;
    throw new TypeError(`Cannot set key ${JSON.stringify(key)}: ${result.problem}`, { cause: result.cause });
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
      issue.path.length > 0 ? `${issue.message} at ${core.toDotPath([key, ...issue.path])}` : issue.message,
    );
    return { ok: false, problem: `does not match the schema: ${issues.join("; ")}`, cause: result.error };
  }
}
