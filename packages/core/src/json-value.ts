/** A value that JSON writes and reads back unchanged. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A plain object of JSON values: what `getAll()` resolves. */
export type JsonObject = { [key: string]: JsonValue };

/** How deep a value may nest. `JSON.stringify` overflows the stack a few thousand levels down. */
export const MAX_DEPTH = 1000;

/**
 * The longest document a store can read back, in UTF-16 units: V8's longest string on 64-bit
 * (`2 ** 29 - 24`), since a document is decoded into one string. A longer one could be written
 * but never loaded, so a change that would make one is refused before any I/O.
 */
export const MAX_TEXT_LENGTH: number = 2 ** 29 - 24;

/**
 * Throws a `TypeError` unless `key` is a string.
 *
 * @param key The caller's key.
 * @param method The method it was passed to, for the message.
 */
export function checkKey(key: unknown, method: string): asserts key is string {
  if (typeof key !== "string") {
    throw new TypeError(`Cannot ${method} key: expected a string, received ${kind(key)}`);
  }
}

/**
 * The JSON text of `value`, after checking that it reads back deep-equal (`-0` reads back as `0`).
 *
 * @param key The key it is set under, for the message.
 * @param value Anything the caller passed.
 * @returns The value's compact JSON text.
 * @throws {TypeError} When the value, or anything inside it, is not JSON data.
 * @throws {RangeError} When its JSON is too long for a document the store can read back ({@link MAX_TEXT_LENGTH}).
 */
export function toJson(key: string, value: unknown): string {
  const type = typeof value;
  const plain = type === "string" || type === "boolean" || value === null || (type === "number" && Number.isFinite(value));
  const path: PropertyKey[] = [key];
  const problem = plain ? undefined : findProblem(value, path, []);
  if (problem !== undefined) {
    throw new TypeError(`Cannot set key ${JSON.stringify(key)}: value at ${formatPath(path)} ${problem}`);
  }
  // The line `"key": json` in a document of its own (`{`, `}`, separators): nothing longer can be
  // read back. A string's JSON is its length and two quotes at least: a doomed one is refused
  // without the seconds JSON.stringify takes on hundreds of millions of characters.
  const room = MAX_TEXT_LENGTH - JSON.stringify(key).length - 9;
  let json: string | undefined;
  try {
    if (type !== "string" || (value as string).length + 2 <= room) json = JSON.stringify(value);
  } catch (error) {
    // V8 refuses to make a string longer than MAX_TEXT_LENGTH; any other error is unexpected.
    if (!(error instanceof RangeError) || /call stack/i.test(error.message)) throw error;
  }
  if (json === undefined || json.length > room) {
    throw new RangeError(
      `Cannot set key ${JSON.stringify(key)}: its JSON is longer than the ${MAX_TEXT_LENGTH} characters of the longest document a store can read back`,
    );
  }
  return json;
}

// Depth-first, leaving `path` at the offending place. `ancestors` holds the open objects, so a
// cycle is rejected while a value shared by two branches (which JSON simply repeats) is not.
function findProblem(value: unknown, path: PropertyKey[], ancestors: object[]): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `is ${value}`;
    case "object":
      break;
    default:
      return `is ${kind(value)}`;
  }
  if (value === null) return undefined;
  if (ancestors.includes(value)) return "is a circular reference";
  if (ancestors.length >= MAX_DEPTH) return `nests deeper than ${MAX_DEPTH} levels`;
  const prototype: unknown = Object.getPrototypeOf(value);
  const isArray = Array.isArray(value) && prototype === Array.prototype;
  if (!isArray && prototype !== Object.prototype && prototype !== null) return `is ${kind(value)}`;
  if (Object.getOwnPropertySymbols(value).length > 0) return "has a symbol key";
  ancestors.push(value);
  const record = value as Record<string, unknown>;
  const length = isArray ? (value as unknown[]).length : 0;
  // Object.keys, not 0..length: a sparse array costs what it holds, not its length (new Array(1e8)).
  const names = Object.keys(value);
  for (const [at, name] of names.entries()) {
    let problem: string | undefined;
    if (!isArray || name === String(at)) {
      path.push(isArray ? at : name);
      problem = findProblem(record[name], path, ancestors);
    } else if (at < length) {
      // An array's keys are its indices in order, then its other properties: a name out of
      // place means that index is a hole or, past the length, a property JSON does not write.
      path.push(at);
      problem = "is a hole in a sparse array";
    } else {
      path.push(name);
      problem = "is a property of an array, which JSON does not write";
    }
    if (problem !== undefined) return problem;
    path.pop();
  }
  if (names.length < length) {
    path.push(names.length);
    return "is a hole in a sparse array";
  }
  ancestors.pop();
  return undefined;
}

/**
 * `key.name[2]["odd key"]`: a place inside a value. The one formatter for both kinds of value
 * error, `set()`'s JSON checks and a schema's issues (schema.ts), so that they name places alike,
 * as zod's own messages do; but an empty name is `[""]`, where zod writes nothing (a store's key
 * may be `""`).
 */
export function formatPath(path: readonly PropertyKey[]): string {
  const parts: string[] = [];
  for (const segment of path) {
    if (typeof segment === "number") parts.push(`[${segment}]`);
    else if (typeof segment === "symbol") parts.push(`[${JSON.stringify(String(segment))}]`);
    else if (segment === "" || /[^\w$]/.test(segment)) parts.push(`[${JSON.stringify(segment)}]`);
    else parts.push(parts.length > 0 ? `.${segment}` : segment);
  }
  return parts.join("");
}

/** "a function", "an instance of Date", "null": what a value is, for a message. */
function kind(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value !== "object") return `a ${typeof value}`;
  if (Array.isArray(value)) return "an array subclass";
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === "string" && name !== "" && name !== "Object" ? `an instance of ${name}` : "an object";
}
