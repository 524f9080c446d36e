import { expect } from "vitest";
import { parseJson } from "../src/json-parse.js";
import type { Batch } from "../src/document.js";

/** The text of a rendering's pieces, decoded as a backend's reader would decode the file. */
export function textOf(pieces: readonly Uint8Array[]): string {
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(Buffer.concat(pieces));
}

/** A top-level member of a document's text, as written there. */
export interface Member {
  readonly key: string;
  /** `token: value` with the key's token and the value's text exactly as the text has them. */
  readonly line: string;
}

/**
 * The top-level members of `text`, in the text's order. JSON.parse cannot tell it: it puts
 * integer-like keys ("0", "10") first. A scanner of its own, written apart from members.ts so
 * that it checks that one instead of repeating it; it trusts the text to be JSON, which
 * JSON.parse checks first. (jsonc-parser would do, but builds a tree of every nested value:
 * most of the model test's time.)
 */
export function membersOf(text: string): Member[] {
  JSON.parse(text);
  const members: Member[] = [];
  let at = skipSpace(text, 0);
  if (text[at] !== "{") throw new Error(`not a JSON object: ${text.slice(0, 80)}`);
  at = skipSpace(text, at + 1);
  if (text[at] === "}") return members;
  for (;;) {
    const keyEnd = stringEnd(text, at);
    const token = text.slice(at, keyEnd);
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const end = valueEnd(text, start);
    members.push({ key: JSON.parse(token) as string, line: `${token}: ${text.slice(start, end)}` });
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
  if (string.exec(text) === null) throw new Error(`no string at ${at}`);
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

/** The keys of `text`'s top-level object in the text's order. */
export function keysOf(text: string): string[] {
  return membersOf(text).map((member) => member.key);
}

/**
 * A value's JSON with the numbers JSON cannot write (a loaded `1e400` is Infinity) and `-0`
 * spelled out, so that two values compare as one string: much faster than a deep equality
 * over thousands of keys, which the model test does after every step.
 */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_, inner: unknown) =>
    typeof inner === "number" && (!Number.isFinite(inner) || Object.is(inner, -0)) ? `number ${Object.is(inner, -0) ? "-0" : inner}` : inner,
  );
}

/**
 * Expects `text` to be a document of `entries` (key, value's JSON text): these keys in this
 * order in the text, and parsing to what parsing those values makes (`__proto__` as an own key,
 * integer-like keys first, as JSON.parse orders them). Returns the text's members.
 */
export function expectDocument(text: string, entries: ReadonlyArray<readonly [string, string]>): Member[] {
  const members = membersOf(text);
  expect(JSON.stringify(members.map((member) => member.key))).toBe(JSON.stringify(entries.map(([key]) => key)));
  const expected = `{${entries.map(([key, json]) => `${JSON.stringify(key)}:${json}`).join(",")}}`;
  // parseJson, not JSON.parse: Node 24's JSON.parse can misname escaped keys (json-parse.ts).
  expect(canonical(parseJson(text))).toBe(canonical(parseJson(expected)));
  return members;
}

/** The batch that sets `key` to `value`. */
export function setting(key: string, value: unknown): Batch {
  return { cleared: false, changes: new Map([[key, JSON.stringify(value)]]) };
}

/** The batch that deletes `keys`. */
export function deleting(...keys: string[]): Batch {
  return { cleared: false, changes: new Map(keys.map((key) => [key, undefined])) };
}

/** The batch that clears the document, then sets `entries`. */
export function clearing(entries: Iterable<readonly [string, unknown]> = []): Batch {
  return { cleared: true, changes: new Map(Array.from(entries, ([key, value]) => [key, JSON.stringify(value)])) };
}

/** A promise with its settling functions, for a test to decide when it settles. */
export interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every promise job queued so far (and the jobs they queue, `rounds` deep) run. */
export async function ticks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
