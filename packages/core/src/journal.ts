import { stagingBatch, nestsDeeper, type Batch } from "./document.js";
import { CorruptStoreError, InvalidStoreShapeError } from "./errors.js";
import { parseJson } from "./json-parse.js";
import { MAX_DEPTH } from "./json-value.js";

/**
 * The journal format's version, in its first line: a journal of a later version is refused
 * instead of being misread.
 */
export const JOURNAL_VERSION: number = 1;

/**
 * The journal (JSON Lines, beside the document) holds the writes made since the document was
 * last rewritten: a header line naming the document it extends by its SHA-256, then one record
 * per write, each applying as its calls did:
 *
 * ```
 * {"aiokv":"journal","version":1,"base":"sha256:…"}
 * {"set":[["last_command","ping"]]}
 * {"delete":["cooldown"],"set":[["cooldown",1764000000]]}
 * {"clear":true,"set":[["a",1]]}
 * ```
 *
 * A record clears (if `clear`), deletes its `delete` keys, then sets its `set` pairs in order: a
 * key both deleted and set goes last, as a key deleted and then set again does. A record is
 * one line written by one append and ended by its `\n`, so a crash mid-append leaves a last line
 * without one, which is dropped; a line that ends but does not parse is damage, and refused.
 * The base ties the journal to one document: after a rewrite of the document (compaction) and
 * before the journal is emptied, the journal names the old document, so it is known to be
 * already in the new one.
 */
export interface JournalContents {
  /** Its records as one batch (applying it applies them in turn); `undefined` when it has none that apply. */
  readonly batch: Batch | undefined;
  /** The bytes of its header and complete records (what a new record goes after); 0 when it is stale or empty. */
  readonly length: number;
  /** Whether the journal holds more bytes than `length`: a torn last record, or a stale journal, to cut before appending. */
  readonly excess: boolean;
  /**
   * Whether its last record clears and sets nothing: a store without a journal removes the
   * document for that write, so the store it makes has no document (a follower reports a clear,
   * and a compaction removes the document instead of writing `{}`).
   */
  readonly removed: boolean;
}

const encoder = new TextEncoder();
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const newline = 0x0a;

/** The SHA-256 of a document's bytes, as a header's base names it; `null` for no document. */
export async function documentDigest(source: string | Uint8Array | readonly Uint8Array[] | undefined): Promise<string | null> {
  if (source === undefined) return null;
  const bytes = typeof source === "string" ? encoder.encode(source) : source instanceof Uint8Array ? source : concat(source);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

/** The first line of a journal that extends the document whose digest is `base`. */
export function journalHeader(base: string | null): Uint8Array {
  return encoder.encode(`${JSON.stringify({ aiokv: "journal", version: JOURNAL_VERSION, base })}\n`);
}

/** A batch as one record line. */
export function journalRecord(batch: Batch): Uint8Array {
  const deleted: string[] = [];
  const set: string[] = [];
  for (const [key, json] of batch.changes) {
    if (json === undefined || batch.reinserted?.has(key) === true) deleted.push(key);
    // The value's JSON text as the store made it: one line, since JSON.stringify escapes newlines.
    if (json !== undefined) set.push(`[${JSON.stringify(key)},${json}]`);
  }
  const parts: string[] = [];
  if (batch.cleared) parts.push(`"clear":true`);
  if (deleted.length > 0) parts.push(`"delete":${JSON.stringify(deleted)}`);
  if (set.length > 0) parts.push(`"set":[${set.join(",")}]`);
  return encoder.encode(`{${parts.join(",")}}\n`);
}

/**
 * Reads a journal: its complete records, as one batch, when its header names the document read
 * (`base`); none when it names another (the document was rewritten since, with them in it).
 *
 * @param source The journal's bytes or text.
 * @param location The journal's location, for errors.
 * @param base The digest of the document read after the journal.
 * @throws {CorruptStoreError} When it is not UTF-8, or a complete line is not a record (naming the line and why).
 * @throws {InvalidStoreShapeError} When a value nests deeper than `set()` accepts.
 */
export function readJournal(source: string | Uint8Array, location: string, base: () => Promise<string | null>): Promise<JournalContents> {
  const bytes = typeof source === "string" ? encoder.encode(source) : source;
  const end = bytes.lastIndexOf(newline) + 1;
  return parseLines(bytes, end, location, base);
}

async function parseLines(bytes: Uint8Array, end: number, location: string, base: () => Promise<string | null>): Promise<JournalContents> {
  const excess = end < bytes.length;
  // No complete line, not even the header: an empty journal too (a kill between its creation and
  // its first write leaves one) is excess, removed by the next append or compaction.
  if (end === 0) return { batch: undefined, length: 0, excess: true, removed: false };
  let text: string;
  try {
    text = strict.decode(bytes.subarray(0, end));
  } catch (error) {
    const { locateInvalidUtf8 } = await import("./syntax-error.js");
    const byteOffset = locateInvalidUtf8(bytes.subarray(0, end));
    // Valid UTF-8 that does not decode is longer than a string can be: no store writes one so long.
    const why = byteOffset === undefined ? `too long to read (${end} bytes)` : `not valid UTF-8 at byte ${byteOffset}`;
    throw new CorruptStoreError(`Cannot load journal ${JSON.stringify(location)}: ${why}`, location, { cause: error, byteOffset });
  }
  const lines = text.split("\n");
  lines.pop(); // after the last "\n": nothing
  const header = parseLine(lines[0] ?? "", 1, location) as { aiokv?: unknown; version?: unknown; base?: unknown } | null;
  if (typeof header !== "object" || header === null || header.aiokv !== "journal") {
    throw damaged(location, 1, "the first line is not a journal header");
  }
  if (header.version !== JOURNAL_VERSION) {
    throw damaged(location, 1, `it is version ${JSON.stringify(header.version)}, and this aiokv reads version ${JOURNAL_VERSION} (written by a newer aiokv?)`);
  }
  if (header.base !== null && typeof header.base !== "string") throw damaged(location, 1, "its base is neither null nor a digest");
  if (header.base !== (await base())) return { batch: undefined, length: 0, excess: true, removed: false };
  const batch = stagingBatch();
  let removed = false;
  const records = parseRecords(lines, location);
  for (let index = 1; index < lines.length; index++) removed = apply(batch, records[index - 1], index + 1, location);
  return { batch: lines.length > 1 ? batch : undefined, length: end, excess, removed };
}

/** The records after the header, parsed in one pass (a tenth of parsing line by line); line by line only to name a damaged one. */
function parseRecords(lines: readonly string[], location: string): unknown[] {
  if (lines.length <= 1) return [];
  try {
    const records = parseJson(`[${lines.slice(1).join(",")}]`) as unknown[];
    // A line such as `{},{}` parses as two records: each line must be one.
    if (records.length === lines.length - 1) return records;
  } catch {
    // Damaged somewhere: found below.
  }
  // Each line alone: the damaged one throws, naming its line.
  return lines.slice(1).map((line, index) => parseLine(line, index + 2, location));
}

function parseLine(line: string, number: number, location: string): unknown {
  try {
    return parseJson(line);
  } catch (error) {
    throw damaged(location, number, `not valid JSON (${(error as Error).message})`, error);
  }
}

/** Stages one record's changes after those before it; returns whether it clears and sets nothing. */
function apply(batch: Batch, record: unknown, number: number, location: string): boolean {
  if (typeof record !== "object" || record === null || Array.isArray(record)) throw damaged(location, number, "a record is a JSON object");
  const { clear, delete: deleted, set, ...rest } = record as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw damaged(location, number, `unknown field ${JSON.stringify(unknown[0])}`);
  if (clear !== undefined && clear !== true) throw damaged(location, number, "clear is true when present");
  if (deleted !== undefined && !(Array.isArray(deleted) && deleted.every((key) => typeof key === "string"))) {
    throw damaged(location, number, "delete is a list of keys");
  }
  if (set !== undefined && !(Array.isArray(set) && set.every((pair) => Array.isArray(pair) && pair.length === 2 && typeof pair[0] === "string"))) {
    throw damaged(location, number, "set is a list of [key, value] pairs");
  }
  if (clear === true) {
    batch.changes.clear();
    batch.cleared = true;
  }
  for (const key of (deleted ?? [])) batch.changes.set(key, undefined);
  for (const [key, value] of (set ?? []) as Array<[string, unknown]>) {
    if (nestsDeeper(value, MAX_DEPTH)) {
      throw new InvalidStoreShapeError(
        `Cannot load journal ${JSON.stringify(location)}: line ${number} sets key ${JSON.stringify(key)} to a value nested deeper than the ${MAX_DEPTH} a store accepts`,
        location,
      );
    }
    batch.changes.set(key, JSON.stringify(value));
  }
  return clear === true && (set === undefined || set.length === 0);
}

function damaged(location: string, line: number, why: string, cause?: unknown): CorruptStoreError {
  return new CorruptStoreError(`Cannot load journal ${JSON.stringify(location)}: line ${line} is damaged: ${why}`, location, {
    cause,
    position: { line, column: 1 },
  });
}

function concat(pieces: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(pieces.reduce((total, piece) => total + piece.length, 0));
  let at = 0;
  for (const piece of pieces) {
    bytes.set(piece, at);
    at += piece.length;
  }
  return bytes;
}
