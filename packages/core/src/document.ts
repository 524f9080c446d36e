import { z } from "zod";
import { CorruptStoreError, InvalidStoreShapeError } from "./errors.js";

/**
 * The document in memory: each key's value kept as its compact JSON text, so writing the file
 * joins strings instead of serialising every value again, and a read parses a fresh copy.
 */
export type Entries = Map<string, string>;

/** Changes that go to the backend in one write. */
export interface Batch {
  /** Everything before this batch is gone (`clear()`). */
  cleared: boolean;
  /** Key to new JSON text; `undefined` marks a deleted key. */
  readonly changes: Map<string, string | undefined>;
}

// The output is thrown away (zod would rebuild the object, and copy `__proto__` into a prototype):
// zod only decides whether the parsed text is an object of string keys, and explains why not.
const documentSchema = z.record(z.string(), z.unknown());

/**
 * Parses a document's text.
 *
 * @throws {CorruptStoreError} When the text is not JSON.
 * @throws {InvalidStoreShapeError} When it is JSON but not an object of storable values.
 */
export function parseDocument(text: string, location: string): Entries {
  const cannot = `Cannot load store ${JSON.stringify(location)}`;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new CorruptStoreError(`${cannot}: not valid JSON`, location, { cause: error });
  }
  const shape = documentSchema.safeParse(data);
  if (!shape.success) {
    throw new InvalidStoreShapeError(`${cannot}: expected a JSON object, found ${jsonKind(data)}`, location, {
      cause: shape.error,
    });
  }
  const entries: Entries = new Map();
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    try {
      entries.set(key, JSON.stringify(value));
    } catch (error) {
      // JSON.parse takes any depth; JSON.stringify overflows the stack a few thousand levels down.
      throw new InvalidStoreShapeError(`${cannot}: the value of key ${JSON.stringify(key)} nests too deep`, location, {
        cause: error,
      });
    }
  }
  return entries;
}

/** The document's text: one key per line, so that a person can read and diff the file. */
export function renderDocument(entries: Iterable<[string, string]>): string {
  let text = "";
  for (const [key, json] of entries) {
    text += `${text === "" ? "{\n  " : ",\n  "}${JSON.stringify(key)}: ${json}`;
  }
  return text === "" ? "{}\n" : `${text}\n}\n`;
}

/** The entries that `base` holds once `batch` is applied, in file order, without copying `base`. */
export function* merge(base: Entries | undefined, batch: Batch): Generator<[string, string]> {
  const { changes } = batch;
  const kept = batch.cleared ? undefined : base;
  for (const [key, json] of kept ?? []) {
    const next = changes.has(key) ? changes.get(key) : json;
    if (next !== undefined) yield [key, next];
  }
  for (const [key, json] of changes) {
    if (json !== undefined && !kept?.has(key)) yield [key, json];
  }
}

/** Applies `batch` to `entries` in place. */
export function apply(entries: Entries, batch: Batch): void {
  if (batch.cleared) entries.clear();
  for (const [key, json] of batch.changes) {
    if (json === undefined) entries.delete(key);
    else entries.set(key, json);
  }
}

function jsonKind(data: unknown): string {
  if (data === null) return "null";
  return Array.isArray(data) ? "an array" : `a ${typeof data}`;
}
