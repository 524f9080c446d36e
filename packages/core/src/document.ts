import { CorruptStoreError, InvalidStoreShapeError } from "./errors.js";
import { MAX_DEPTH, MAX_TEXT_LENGTH } from "./json-value.js";
import { parseJson } from "./json-parse.js";
import { scanMembers } from "./members.js";

/**
 * Changes that go to the backend in one write. Applying a batch does what applying its calls one
 * by one, in call order, does: a set of a stored key replaces it in place, a set of a key not
 * stored puts it last (a key deleted, then set again, included), a clear starts an empty document.
 */
export interface Batch {
  /** Everything before this batch is gone (`clear()`). */
  cleared: boolean;
  /**
   * Key to its new value's JSON text; `undefined` marks a deleted key. One entry per key, in the
   * order that new keys go last in: each where its first change was, or where it was last set
   * again after a delete (see `reinserted`).
   */
  readonly changes: Map<string, string | undefined>;
  /**
   * Keys that `changes` sets after this batch (or, in `combine`, the batch before it) deleted
   * them: each leaves its place and goes last, where its entry in `changes` is. Absent: none.
   */
  readonly reinserted?: ReadonlySet<string>;
}

/**
 * The changes of a batch being staged call by call: a set of a key whose change so far is a
 * delete moves the key's entry last and marks it reinserted, so that the batch applies as the
 * calls applied one by one would. O(1) a call; `clear()` forgets the marks with the changes.
 */
class StagedChanges extends Map<string, string | undefined> {
  readonly #reinserted: Set<string>;

  constructor(reinserted: Set<string>) {
    // No entries: the Map constructor would call set() before #reinserted is there.
    super();
    this.#reinserted = reinserted;
  }

  override set(key: string, json: string | undefined): this {
    if (json === undefined) {
      this.#reinserted.delete(key);
    } else if (super.get(key) === undefined && super.has(key)) {
      super.delete(key);
      this.#reinserted.add(key);
    }
    return super.set(key, json);
  }

  override delete(key: string): boolean {
    this.#reinserted.delete(key);
    return super.delete(key);
  }

  override clear(): void {
    this.#reinserted.clear();
    super.clear();
  }
}

/** An empty batch to stage calls in (`changes.set`, `changes.clear`, `cleared`), each applying after the ones before. */
export function stagingBatch(): Batch {
  const reinserted = new Set<string>();
  return { cleared: false, changes: new StagedChanges(reinserted), reinserted };
}

/** Throws when a loaded document's value under `key` is not allowed (a schema's check). */
export type LoadCheck = (key: string, value: unknown) => void;

/**
 * A loaded member that no change has touched: its key token and value text exactly as the file
 * has them, so that writing it back keeps its bytes (a big integer, `1.0`, `1e400`, `"\u00e9"`,
 * a pretty-printed value), which a round trip through `JSON.parse` and `JSON.stringify` would not.
 */
interface Raw {
  readonly token: string;
  readonly value: string;
}

/** A slot's line: written by this store (`"key": json`), or as loaded. */
type Line = string | Raw;

const lineOf = (key: string, json: string): string => `${JSON.stringify(key)}: ${json}`;
const separator = ",\n  ";
const encoder = new TextEncoder();
const bytes = {
  open: encoder.encode("{\n  "),
  separator: encoder.encode(separator),
  close: encoder.encode("\n}\n"),
  empty: encoder.encode("{}\n"),
};
// Strict: a document that is not UTF-8 is corrupt, never loaded with U+FFFD in place of its bytes
// (and written back so). The BOM is kept, so that JSON.parse refuses it as for a text.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// Lines are joined and encoded in chunks of 2^chunkBits, each kept until one of its lines changes:
// a write encodes the chunks it touched and copies the cached bytes of the others, which costs a
// tenth of encoding the whole text again.
const chunkBits = 8;

/**
 * The stored document, kept as the lines of its file (`"key": value`), one slot per key in file
 * order, encoded in cached chunks: a write serialises and encodes only what it changed, and a key
 * nobody changed keeps the text it was loaded with. A read parses the value's text, which makes
 * its copy.
 */
export class StoredDocument {
  readonly #location: string;
  /** The object `JSON.parse` made, answering reads until the first write builds the slots. */
  #parsed: Record<string, unknown> | undefined;
  /** The text `#parsed` came from, scanned for each member's raw text when the slots are built. */
  #text: string | undefined;
  readonly #slots = new Map<string, number>();
  #keys: string[] = [];
  #lines: Array<Line | undefined> = [];
  /** The encoded lines of each chunk, while none of them changed. */
  #chunks: Array<Uint8Array | undefined> = [];
  #holes = 0;
  /** The total length of the lines held, to refuse a document too long to read back. */
  #length = 0;

  constructor(location: string) {
    this.#location = location;
  }

  /**
   * Parses a document, given as bytes (decoded here, strictly) or text. Values stay as parsed
   * until first read or written.
   *
   * @throws {CorruptStoreError} When the bytes are not UTF-8, or the text is not JSON.
   * @throws {InvalidStoreShapeError} When it is JSON but not an object, or a value nests deeper
   *   than `set()` accepts.
   */
  static async parse(source: string | Uint8Array, location: string, check?: LoadCheck): Promise<StoredDocument> {
    const cannot = `Cannot load store ${JSON.stringify(location)}`;
    const text = typeof source === "string" ? source : await decode(source, cannot, location);
    let data: unknown;
    try {
      data = parseJson(text);
    } catch (error) {
      // Loaded only for a corrupt document: every other start-up is spared the parser.
      const { locateSyntaxError } = await import("./syntax-error.js");
      const found = locateSyntaxError(text);
      const where = found ? ` at line ${found.position.line}, column ${found.position.column} (${found.problem})` : "";
      throw new CorruptStoreError(`${cannot}: not valid JSON${where}`, location, { cause: error, position: found?.position });
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      const found = jsonKind(data);
      // The message names what was found; the cause says why that cannot be a store, for whoever
      // wrote the file by hand or pointed the store at another program's JSON.
      const why = new TypeError(`the document is ${found}, but a store keeps its keys as the members of one top-level JSON object`);
      throw new InvalidStoreShapeError(`${cannot}: expected a JSON object, found ${found}`, location, { cause: why });
    }
    const parsed = data as Record<string, unknown>;
    if (check) for (const key of Object.keys(parsed)) check(key, parsed[key]);
    const document = new StoredDocument(location);
    document.#parsed = parsed;
    document.#text = text;
    // Only a text with more opening brackets than MAX_DEPTH can hold a value nested deeper: for it
    // the parsed values are walked, stopping at MAX_DEPTH (about a third of JSON.parse's time for
    // a store of small objects; the scan of the text costs more, and waits for the first write,
    // unless the walk found a value too deep and the error must say how deep).
    if (mayNestDeeper(text) && Object.values(parsed).some((value) => nestsDeeper(value, MAX_DEPTH))) document.#index();
    return document;
  }

  /** The stored keys, in file order. */
  keys(): string[] {
    // JSON.parse puts integer-like keys first: the scan tells the file's order.
    this.#index();
    return [...this.#slots.keys()];
  }

  /** Whether `key` is stored, without serialising its value. */
  has(key: string): boolean {
    return this.#parsed ? Object.hasOwn(this.#parsed, key) : this.#slots.has(key);
  }

  /** The JSON text of `key`'s value, or `undefined` when absent. */
  get(key: string): string | undefined {
    const parsed = this.#parsed;
    if (parsed) {
      if (!Object.hasOwn(parsed, key)) return undefined;
      const json = JSON.stringify(parsed[key]);
      // JSON.stringify writes null for a loaded 1e400 (Infinity): the raw text answers then.
      if (!json.includes("null") || !hasNonFinite(parsed[key])) return json;
      this.#index();
    }
    const slot = this.#slots.get(key);
    const line = slot === undefined ? undefined : this.#lines[slot];
    if (line === undefined) return undefined;
    return typeof line === "string" ? line.slice(JSON.stringify(key).length + 2) : line.value;
  }

  /**
   * The document's UTF-8 bytes with `batch` applied, leaving this document as it is: in pieces
   * to write one after the other, each whole lines, so that unchanged chunks are never copied.
   */
  render(batch?: Batch): Uint8Array[] {
    this.#index();
    this.#checkLength(batch);
    const patched = new Map<number, string | undefined>();
    const appended: string[] = [];
    for (const [key, json] of batch?.changes ?? []) {
      const slot = batch?.cleared ? undefined : this.#slots.get(key);
      const line = json === undefined ? undefined : lineOf(key, json);
      const moved = line !== undefined && slot !== undefined && batch?.reinserted?.has(key) === true;
      if (slot !== undefined) patched.set(slot, moved ? undefined : line);
      if (line !== undefined && (slot === undefined || moved)) appended.push(line);
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

  /**
   * Throws what `render(batch)` would, without rendering: for a write that goes elsewhere (the journal).
   *
   * @throws {RangeError} When the document would be longer than a string can be.
   */
  assertFits(batch: Batch): void {
    this.#index();
    this.#checkLength(batch);
  }

  /** Applies `batch` in place. */
  apply(batch: Batch): void {
    this.#index();
    if (batch.cleared) this.#empty();
    for (const [key, json] of batch.changes) {
      // A reinserted key leaves its place first, so that #put puts it last.
      const slot = json === undefined || batch.reinserted?.has(key) === true ? this.#slots.get(key) : undefined;
      if (slot !== undefined) this.#remove(key, slot);
      if (json !== undefined) this.#put(key, lineOf(key, json));
    }
    if (this.#holes > 32 && this.#holes > this.#lines.length / 2) this.#compact();
  }

  /**
   * Refuses a batch that would make the document longer than a string can be: the file is
   * decoded into one string when read, so such a document could be written but never loaded.
   */
  #checkLength(batch: Batch | undefined): void {
    if (batch === undefined) return;
    let count = batch.cleared ? 0 : this.#slots.size;
    let length = batch.cleared ? 0 : this.#length;
    // Where a line goes does not count: a reinserted key's line is taken out as a replaced one is.
    for (const [key, json] of batch.changes) {
      const slot = batch.cleared ? undefined : this.#slots.get(key);
      if (slot !== undefined) {
        count--;
        length -= lengthOf(this.#lines[slot]);
      }
      if (json !== undefined) {
        count++;
        length += JSON.stringify(key).length + 2 + json.length;
      }
    }
    const total = documentLength(count, length);
    if (total > MAX_TEXT_LENGTH) {
      throw new RangeError(
        `Cannot write store ${JSON.stringify(this.#location)}: the document would be ${total} characters long, longer than the ${MAX_TEXT_LENGTH} a store can read back`,
      );
    }
  }

  #put(key: string, line: Line): void {
    const slot = this.#slots.get(key);
    this.#chunks[(slot ?? this.#lines.length) >> chunkBits] = undefined;
    this.#length += lengthOf(line) - lengthOf(slot === undefined ? undefined : this.#lines[slot]);
    if (slot !== undefined) {
      this.#lines[slot] = line;
      return;
    }
    this.#slots.set(key, this.#lines.length);
    this.#keys.push(key);
    this.#lines.push(line);
  }

  /** Leaves a hole at `slot`: given by the caller, who found it in `#slots`, so a missing key cannot get here. */
  #remove(key: string, slot: number): void {
    this.#slots.delete(key);
    this.#length -= lengthOf(this.#lines[slot]);
    this.#lines[slot] = undefined;
    this.#chunks[slot >> chunkBits] = undefined;
    this.#holes++;
  }

  #compact(): void {
    const keys = this.#keys;
    const lines = this.#lines;
    this.#empty();
    // Every slot has its key (`#put` pushes both): a slot without a line is a hole.
    for (const [slot, key] of keys.entries()) {
      const line = lines[slot];
      if (line !== undefined) this.#put(key, line);
    }
  }

  /** Holds nothing: after `clear()`, and before `#compact()` puts the remaining lines back. */
  #empty(): void {
    this.#slots.clear();
    this.#keys = [];
    this.#lines = [];
    this.#chunks = [];
    this.#holes = 0;
    this.#length = 0;
  }

  /** One chunk's lines joined and encoded, with `patched` lines in place of the stored ones. */
  #join(chunk: number, patched?: Map<number, string | undefined>): Uint8Array {
    const lines: string[] = [];
    const end = Math.min(this.#lines.length, (chunk + 1) << chunkBits);
    for (let slot = chunk << chunkBits; slot < end; slot++) {
      const line = patched?.has(slot) ? patched.get(slot) : textOf(this.#lines[slot]);
      if (line !== undefined) lines.push(line);
    }
    return encoder.encode(lines.join(separator));
  }

  /**
   * Builds the slots from the loaded text, before the first write: each member keeps its key
   * token and value text as written. A duplicated key keeps its first place and its last value,
   * as `JSON.parse` does.
   *
   * @throws {InvalidStoreShapeError} When a value nests deeper than `set()` accepts.
   */
  #index(): void {
    const text = this.#text;
    if (text === undefined) return;
    this.#parsed = undefined;
    this.#text = undefined;
    const deep = new Map<string, number>();
    for (const { key, token, value, depth } of scanMembers(text)) {
      this.#put(key, { token, value });
      if (depth > MAX_DEPTH) deep.set(key, depth);
      else deep.delete(key);
    }
    const [first] = deep;
    if (first !== undefined) throw tooDeepError(this.#location, ...first);
  }
}

/**
 * `a` then `b`, as one batch: what the document would be once both are written, key order
 * included. A key that `b` sets after `a` deleted it, or that `b` reinserts, goes last, as
 * applying `b` after `a` puts it. Neither input is changed.
 */
export function combine(a: Batch | undefined, b: Batch | undefined): Batch {
  const first = b?.cleared ? undefined : a;
  const changes = new Map<string, string | undefined>(first?.changes);
  const reinserted = new Set<string>(first?.reinserted);
  for (const [key, json] of b?.changes ?? []) {
    if (json === undefined) {
      reinserted.delete(key);
    } else if (b?.reinserted?.has(key) === true || (changes.get(key) === undefined && changes.has(key))) {
      changes.delete(key);
      reinserted.add(key);
    }
    changes.set(key, json);
  }
  return { cleared: (a?.cleared ?? false) || (b?.cleared ?? false), changes, reinserted };
}

/**
 * The text of a document's bytes.
 *
 * @throws {CorruptStoreError} Naming the offset of the first byte sequence that is not UTF-8.
 */
async function decode(bytes: Uint8Array, cannot: string, location: string): Promise<string> {
  try {
    return decoder.decode(bytes);
  } catch (error) {
    // Loaded only for a document that is not UTF-8, as the JSON locator is for one that is not JSON.
    const { locateInvalidUtf8 } = await import("./syntax-error.js");
    const byteOffset = locateInvalidUtf8(bytes);
    if (byteOffset === undefined) throw error;
    throw new CorruptStoreError(`${cannot}: not valid UTF-8 at byte ${byteOffset}`, location, { cause: error, byteOffset });
  }
}

/** A line's text. */
function textOf(line: Line | undefined): string | undefined {
  return line === undefined || typeof line === "string" ? line : `${line.token}: ${line.value}`;
}

/** A line's length in UTF-16 units, as `textOf` would make it, without making it. */
function lengthOf(line: Line | undefined): number {
  if (line === undefined) return 0;
  return typeof line === "string" ? line.length : line.token.length + 2 + line.value.length;
}

/** The length of the document's text with `count` lines of `length` in total: `{`, lines and separators, `}`. */
function documentLength(count: number, length: number): number {
  return count === 0 ? bytes.empty.length : length + 4 * count + 3;
}

/** Whether `text` has more opening brackets than one member could need for `MAX_DEPTH` levels. */
function mayNestDeeper(text: string): boolean {
  let count = 0;
  for (const bracket of ["[", "{"]) {
    for (let at = text.indexOf(bracket); at !== -1; at = text.indexOf(bracket, at + 1)) {
      // One is the document's own brace.
      if (++count > MAX_DEPTH + 1) return true;
    }
  }
  return false;
}

/** Whether `value` nests deeper than `levels` containers; stops as soon as it finds so (no deeper recursion). */
export function nestsDeeper(value: unknown, levels: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (levels === 0) return true;
  // An indexed loop for arrays: for...in over an array costs several times as much.
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (nestsDeeper(value[i], levels - 1)) return true;
    return false;
  }
  for (const key in value) if (nestsDeeper((value as Record<string, unknown>)[key], levels - 1)) return true;
  return false;
}

function tooDeepError(location: string, key: string, depth: number): InvalidStoreShapeError {
  return new InvalidStoreShapeError(
    `Cannot load store ${JSON.stringify(location)}: the value of key ${JSON.stringify(key)} nests ${depth} levels deep, deeper than the ${MAX_DEPTH} a store accepts`,
    location,
  );
}

/** Whether `value` is or holds a number JSON cannot write (a loaded `1e400` parses as Infinity). */
function hasNonFinite(value: unknown): boolean {
  if (typeof value === "number") return !Number.isFinite(value);
  if (typeof value !== "object" || value === null) return false;
  return Object.values(value).some(hasNonFinite);
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
