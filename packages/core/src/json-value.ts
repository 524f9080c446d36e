import { core } from "zod";

/** A value that JSON writes and reads back unchanged. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A plain object of JSON values: what `getAll()` resolves. */
export type JsonObject = { [key: string]: JsonValue };

/** How deep a value may nest. `JSON.stringify` overflows the stack a few thousand levels down. */
export const MAX_DEPTH = 1000;

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
 */
export function toJson(key: string, value: unknown): string {
  const type = typeof value;
  if (type === "string" || type === "boolean" || value === null || (type === "number" && Number.isFinite(value))) {
    return JSON.stringify(value);
  }
  const path: PropertyKey[] = [key];
  const problem = findProblem(value, path, []);
  if (problem !== undefined) {
    throw new TypeError(`Cannot set key ${JSON.stringify(key)}: value at ${core.toDotPath(path)} ${problem}`);
  }
  return JSON.stringify(value);
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
  const keys = isArray ? Array.from((value as unknown[]).keys(), String) : Object.keys(value);
  for (const name of keys) {
    path.push(isArray ? Number(name) : name);
    const problem = isArray && !(name in value) ? "is a hole in a sparse array" : findProblem(record[name], path, ancestors);
    if (problem !== undefined) return problem;
    path.pop();
  }
  ancestors.pop();
  return undefined;
}

/** "a function", "an instance of Date", "null": what a value is, for a message. */
function kind(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value !== "object") return `a ${typeof value}`;
  if (Array.isArray(value)) return "an array subclass";
  const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === "string" && name !== "" && name !== "Object" ? `an instance of ${name}` : "an object";
}
