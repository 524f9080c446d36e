import { z } from "zod";
import { CorruptStoreError, InvalidStoreShapeError } from "./errors.js";

/** Changes that go to the backend in one write. */
export interface Batch {
  /** Everything before this batch is gone (`clear()`). */
  cleared: boolean;
  /** Key to its new value's JSON text; `undefined` marks a deleted key. */
  readonly changes: Map<string, string | undefined>;
}

/** Throws when a loaded document's value under `key` is not allowed (a schema's check). */
export type LoadCheck = (key: string, value: unknown) => void;

/** A value as `JSON.parse` made it, not yet written back: serialised when first needed. */
interface Parsed {
  readonly value: unknown;
}

// zod explains a document that is not an object (its output, which would copy `__proto__` into a
// prototype, is not used). Parsed JSON has only string keys, so for an object there is nothing to
// walk: the schema runs only when the cheap check fails.
const documentSchema = z.record(z.string(), z.unknown());

const lineOf = (key: string, json: string): string => `${JSON.stringify(key)}: ${json}`;
const separator = ",\n  ";
const encoder = new TextEncoder();
const bytes = {
  open: encoder.encode("{\n  "),
  separator: encoder.encode(separator),
  close: encoder.encode("\n}\n"),
  empty: encoder.encode("{}\n"),
};
// Lines are joined and encoded in chunks of 2^chunkBits, each kept until one of its lines changes:
// a write encodes the chunks it touched and copies the cached bytes of the others, which costs a
// tenth of encoding the whole text again.
const chunkBits = 8;

/**
 * The stored document, kept as the lines of its file (`"key": value`), one slot per key in file
 * order, encoded in cached chunks: a write serialises and encodes only what it changed. A read
 * parses the value's text, which makes its copy.
 */
export class StoredDocument {
  readonly #location: string;
  /** The object `JSON.parse` made, answering reads until the first write builds the slots. */
  #parsed: Record<string, unknown> | undefined;
  readonly #slots = new Map<string, number>();
  #keys: string[] = [];
  #lines: Array<string | Parsed | undefined> = [];
  /** The encoded lines of each chunk, while none of them changed. */
  #chunks: Array<Uint8Array | undefined> = [];
  #holes = 0;

  constructor(location: string) {
    this.#location = location;
  }

  /**
   * Parses a document's text. Values stay as parsed until first read or written.
   *
   * @throws {CorruptStoreError} When the text is not JSON.
   * @throws {InvalidStoreShapeError} When it is JSON but not an object.
   */
  static async parse(text: string, location: string, check?: LoadCheck): Promise<StoredDocument> {
    const cannot = `Cannot load store ${JSON.stringify(location)}`;
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      // Loaded only for a corrupt document: every other start-up is spared the parser.
      const { locateSyntaxError } = await import("./syntax-error.js");
      const found = locateSyntaxError(text);
      const where = found ? ` at line ${found.position.line}, column ${found.position.column} (${found.problem})` : "";
      throw new CorruptStoreError(`${cannot}: not valid JSON${where}`, location, { cause: error, position: found?.position });
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw new InvalidStoreShapeError(`${cannot}: expected a JSON object, found ${jsonKind(data)}`, location, {
        cause: documentSchema.safeParse(data).error,
      });
    }
    const parsed = data as Record<string, unknown>;
    if (check) for (const key of Object.keys(parsed)) check(key, parsed[key]);
    const document = new StoredDocument(location);
    document.#parsed = parsed;
    return document;
  }

  /** The stored keys, in file order. */
  keys(): string[] {
    return this.#parsed ? Object.keys(this.#parsed) : [...this.#slots.keys()];
  }

  /** Whether `key` is stored, without serialising its value. */
  has(key: string): boolean {
    return this.#parsed ? Object.hasOwn(this.#parsed, key) : this.#slots.has(key);
  }

  /** The JSON text of `key`'s value, or `undefined` when absent. */
  get(key: string): string | undefined {
    if (this.#parsed) return Object.hasOwn(this.#parsed, key) ? this.#serialise(key, this.#parsed[key]) : undefined;
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    return this.#line(slot).slice(JSON.stringify(key).length + 2);
  }

  /**
   * The document's UTF-8 bytes with `batch` applied, leaving this document as it is: in pieces
   * to write one after the other, each whole lines, so that unchanged chunks are never copied.
   */
  render(batch?: Batch): Uint8Array[] {
    this.#index();
    const patched = new Map<number, string | undefined>();
    const appended: string[] = [];
    for (const [key, json] of batch?.changes ?? []) {
      const slot = batch?.cleared ? undefined : this.#slots.get(key);
      const line = json === undefined ? undefined : lineOf(key, json);
      if (slot !== undefined) patched.set(slot, line);
      else if (line !== undefined) appended.push(line);
    }
    const parts: Uint8Array[] = [];
    const dirty = new Set(Array.from(patched.keys(), (slot) => slot >> chunkBits));
    const chunks = batch?.cleared ? 0 : Math.ceil(this.#lines.length / 2 ** chunkBits);
    for (let chunk = 0; chunk < chunks; chunk++) {
      const text = dirty.has(chunk) ? this.#join(chunk, patched) : (this.#chunks[chunk] ??= this.#join(chunk));
      if (text.length > 0) parts.push(text);
    }
    if (appended.length > 0) parts.push(encoder.encode(appended.join(separator)));
    return parts.length === 0 ? [bytes.empty] : frame(parts);
  }

  /** Applies `batch` in place. */
  apply(batch: Batch): void {
    this.#index();
    if (batch.cleared) {
      this.#slots.clear();
      this.#keys = [];
      this.#lines = [];
      this.#chunks = [];
      this.#holes = 0;
    }
    for (const [key, json] of batch.changes) {
      if (json !== undefined) this.#put(key, lineOf(key, json));
      else if (this.#slots.has(key)) this.#remove(key);
    }
    if (this.#holes > 32 && this.#holes > this.#lines.length / 2) this.#compact();
  }

  #put(key: string, line: string | Parsed): void {
    const slot = this.#slots.get(key);
    this.#chunks[(slot ?? this.#lines.length) >> chunkBits] = undefined;
    if (slot !== undefined) {
      this.#lines[slot] = line;
      return;
    }
    this.#slots.set(key, this.#lines.length);
    this.#keys.push(key);
    this.#lines.push(line);
  }

  #remove(key: string): void {
    const slot = this.#slots.get(key) ?? -1;
    this.#slots.delete(key);
    this.#lines[slot] = undefined;
    this.#chunks[slot >> chunkBits] = undefined;
    this.#holes++;
  }

  #compact(): void {
    const keys = this.#keys;
    const lines = this.#lines;
    this.#slots.clear();
    this.#keys = [];
    this.#lines = [];
    this.#chunks = [];
    this.#holes = 0;
    for (const [slot, line] of lines.entries()) if (line !== undefined) this.#put(keys[slot] ?? "", line);
  }

  /** One chunk's lines joined and encoded, with `patched` lines in place of the stored ones. */
  #join(chunk: number, patched?: Map<number, string | undefined>): Uint8Array {
    const lines: string[] = [];
    const end = Math.min(this.#lines.length, (chunk + 1) << chunkBits);
    for (let slot = chunk << chunkBits; slot < end; slot++) {
      // A value parsed at load is serialised once, by the first write that keeps it.
      const line = patched?.has(slot) ? patched.get(slot) : this.#lines[slot] === undefined ? undefined : this.#line(slot);
      if (line !== undefined) lines.push(line);
    }
    return encoder.encode(lines.join(separator));
  }

  /** Builds the slots from the parsed object, before the first write. */
  #index(): void {
    const parsed = this.#parsed;
    if (parsed === undefined) return;
    this.#parsed = undefined;
    for (const key of Object.keys(parsed)) this.#put(key, { value: parsed[key] });
  }

  #line(slot: number): string {
    const line = this.#lines[slot];
    if (typeof line === "string" || line === undefined) return line ?? "";
    const key = this.#keys[slot] ?? "";
    const serialised = lineOf(key, this.#serialise(key, line.value));
    this.#lines[slot] = serialised;
    return serialised;
  }

  #serialise(key: string, value: unknown): string {
    try {
      return JSON.stringify(value);
    } catch (error) {
      // JSON.parse takes any depth; JSON.stringify overflows the stack a few thousand levels down.
      throw new InvalidStoreShapeError(
        `Cannot load store ${JSON.stringify(this.#location)}: the value of key ${JSON.stringify(key)} nests too deep`,
        this.#location,
        { cause: error },
      );
    }
  }
}

/** `a` then `b`, as one batch: what the document would be once both are written. */
export function combine(a: Batch | undefined, b: Batch | undefined): Batch {
  const changes = new Map<string, string | undefined>(b?.cleared ? [] : a?.changes);
  for (const [key, json] of b?.changes ?? []) changes.set(key, json);
  return { cleared: (a?.cleared ?? false) || (b?.cleared ?? false), changes };
}

/** Whether `pieces` are the text of an empty document. */
export function isEmptyDocument(pieces: readonly Uint8Array[]): boolean {
  return pieces.length === 1 && pieces[0] === bytes.empty;
}

/** The document's pieces: `{`, the chunks between separators, `}`. */
function frame(parts: Uint8Array[]): Uint8Array[] {
  const pieces: Uint8Array[] = [bytes.open];
  for (const [i, part] of parts.entries()) {
    if (i > 0) pieces.push(bytes.separator);
    pieces.push(part);
  }
  pieces.push(bytes.close);
  return pieces;
}

function jsonKind(data: unknown): string {
  if (data === null) return "null";
  return Array.isArray(data) ? "an array" : `a ${typeof data}`;
}
