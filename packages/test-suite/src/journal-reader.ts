import { createHash } from "node:crypto";
import type { Harness } from "./harness.js";

/**
 * A reader of a document and its journal written from the format alone (README, "The file"),
 * sharing no code with the store's: so that a journal harness's `peek()` checks what the store
 * put on disk instead of asking the store what it meant to.
 *
 * The journal is JSON Lines: a header `{"aiokv":"journal","version":1,"base":"sha256:<hex>"|null}`
 * naming the SHA-256 of the document bytes it extends (`null`: no document), then one record per
 * write, `{"clear":true,"delete":[keys],"set":[[key,value],...]}` (fields omitted when empty),
 * applied as clear, then deletes, then sets in order. A last line without its `\n` is torn and
 * does not count; a journal whose base is not the document's digest is stale and does not count.
 */

/** A top-level member: its key token and value text as written. */
interface Member {
  readonly token: string;
  readonly value: string;
}

/**
 * What `document` (the document's text, `undefined` when there is none) and `journal` (its
 * journal's bytes or text) hold together: the document's text as it is while the journal holds
 * no record that applies, else the document a compaction writes, which is the one a store
 * without a journal would have written: one member per line, the members no record touched
 * exactly as the document has them, the others as `JSON.stringify` writes them; `{}` when no key
 * is left, and none after a clear that set nothing (a clear removes the document).
 *
 * @throws {Error} When the journal's header or a complete record is damaged, or the document
 *   does not parse while records apply to it: nothing a store can load.
 */
export function documentWithJournal(document: string | undefined, journal: string | Uint8Array | undefined): string | undefined {
  const bytes = typeof journal === "string" ? Buffer.from(journal, "utf8") : journal;
  if (bytes === undefined) return document;
  const complete = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.lastIndexOf(0x0a) + 1).toString("utf8");
  const lines = complete.split("\n").slice(0, -1);
  if (lines.length === 0) return document;
  const header = parseLine(lines[0] ?? "", 1) as Record<string, unknown> | null;
  if (typeof header !== "object" || header === null || header["aiokv"] !== "journal" || header["version"] !== 1) {
    throw new Error(`The journal's first line is not a version 1 header: ${lines[0]}`);
  }
  const base = document === undefined ? null : `sha256:${createHash("sha256").update(document, "utf8").digest("hex")}`;
  if (header["base"] !== base || lines.length === 1) return document;
  const members = document === undefined ? new Map<string, Member>() : membersOf(document);
  let removed = false;
  for (const [index, line] of lines.entries()) {
    if (index > 0) removed = applyRecord(members, parseLine(line, index + 1), index + 1);
  }
  if (removed) return undefined;
  if (members.size === 0) return "{}\n";
  return `{\n  ${Array.from(members.values(), ({ token, value }) => `${token}: ${value}`).join(",\n  ")}\n}\n`;
}

/**
 * `h` with its stores keeping a journal (`storeOptions.journal`), and `peek()` answering what
 * the document and the journal hold together ({@link documentWithJournal}); `peekJournal` reads
 * the journal's raw bytes or text without aiokv. The journal is read before the document, as a
 * store reads them: a compaction between the two reads leaves a stale journal, never a lost one.
 */
export function journalHarness(h: Harness, peekJournal: () => Promise<string | Uint8Array | undefined>): Harness {
  return {
    ...h,
    storeOptions: { ...h.storeOptions, journal: true },
    peek: async () => {
      const journal = await peekJournal();
      return documentWithJournal(await h.peek(), journal);
    },
  };
}

function parseLine(line: string, number: number): unknown {
  try {
    return JSON.parse(line);
  } catch (error) {
    throw new Error(`The journal's line ${number} is not JSON: ${line}`, { cause: error });
  }
}

/**
 * Applies one record to `members`; returns whether it leaves no document: a clear that sets
 * nothing, which a store without a journal makes by removing the document. (Any other write
 * leaves one, `{}` when it holds no key.)
 */
function applyRecord(members: Map<string, Member>, record: unknown, number: number): boolean {
  if (typeof record !== "object" || record === null || Array.isArray(record)) throw new Error(`The journal's line ${number} is not an object`);
  const { clear, delete: deleted, set, ...rest } = record as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || (clear !== undefined && clear !== true)) throw new Error(`The journal's line ${number} is not a record`);
  if (clear === true) members.clear();
  for (const key of (deleted ?? []) as string[]) {
    if (typeof key !== "string") throw new Error(`The journal's line ${number} deletes a key that is not a string`);
    members.delete(key);
  }
  for (const pair of (set ?? []) as Array<[string, unknown]>) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string") throw new Error(`The journal's line ${number} sets something other than [key, value]`);
    const [key, value] = pair;
    // A key set again keeps its place (Map.set); a new one, or one deleted above, goes last.
    members.set(key, { token: JSON.stringify(key), value: JSON.stringify(value) });
  }
  return clear === true && ((set ?? []) as unknown[]).length === 0;
}

/**
 * The members of a document's top-level object in the text's order (JSON.parse puts integer-like
 * keys first), each key token and value text as written; a key written twice keeps its first
 * place and its last token and value (JSON.parse keeps its last value). Checks the text with
 * JSON.parse first.
 */
function membersOf(text: string): Map<string, Member> {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("The document is not a JSON object");
  const members = new Map<string, Member>();
  let at = skipSpace(text, 0) + 1;
  at = skipSpace(text, at);
  if (text[at] === "}") return members;
  for (;;) {
    const keyEnd = stringEnd(text, at);
    const token = text.slice(at, keyEnd);
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const end = valueEnd(text, start);
    members.set(JSON.parse(token) as string, { token, value: text.slice(start, end) });
    at = skipSpace(text, end);
    if (text[at] === "}") return members;
    at = skipSpace(text, at + 1);
  }
}

const space = /[ \t\n\r]*/y;
const string = /"[^"\\]*(?:\\.[^"\\]*)*"/y;
const literal = /[^ \t\n\r,\]}]+/y;

function skipSpace(text: string, at: number): number {
  space.lastIndex = at;
  space.exec(text);
  return space.lastIndex;
}

function stringEnd(text: string, at: number): number {
  string.lastIndex = at;
  if (string.exec(text) === null) throw new Error(`No string at ${at}`);
  return string.lastIndex;
}

function valueEnd(text: string, start: number): number {
  const first = text[start];
  if (first === '"') return stringEnd(text, start);
  if (first !== "{" && first !== "[") {
    literal.lastIndex = start;
    literal.exec(text);
    return literal.lastIndex;
  }
  let depth = 0;
  for (let at = start; ; at++) {
    const char = text[at];
    if (char === '"') at = stringEnd(text, at) - 1;
    else if (char === "{" || char === "[") depth++;
    else if ((char === "}" || char === "]") && --depth === 0) return at + 1;
  }
}
