import {
  CorruptStoreError,
  InvalidStoreShapeError,
  isStoreFormatError,
  isStoreIOError,
  StoreFormatError,
  StoreIOError,
} from "@aiokv/core";
import { describe, expect, it } from "vitest";
import { recordingLogger, until, type HarnessFactory } from "./harness.js";
import { eachReadRejects, instrumentedOpener, opener, rejection, type Open, type Opened, type OpenInstrumented } from "./support.js";

type Logger = ReturnType<typeof recordingLogger>;

// The text, and where and what the message says is wrong.
const corruptTexts: Array<[string, string, string]> = [
  ["truncated JSON", '{"a": 1, "b": [1, 2', "line 1, column 20 (close bracket expected)"],
  ["an empty file", "", "line 1, column 1 (value expected)"],
  ["garbage", "not json at all", "line 1, column 1 (invalid symbol)"],
  ["a byte-order mark", '\uFEFF{"a": 1}', "line 1, column 1 (invalid symbol)"],
  ["NUL bytes", "\0\0\0\0", "line 1, column 1 (invalid symbol)"],
  ["a bad value on line 3", '{\n  "a": 1,\n  "b": tru\n}\n', "line 3, column 8 (invalid symbol)"],
  ["a trailing comma", '{\n  "a": 1,\n}\n', "line 3, column 1 (property name expected)"],
];

// What the document is (as the message names it), and its text.
const wrongShapes = Object.entries({ "an array": "[1, 2]", "a number": "42", "a string": '"state"', null: "null", "a boolean": "true" });

/**
 * The error contract: a document that is not JSON, not an object, or nests too deep rejects every
 * read with its `StoreFormatError` and stays as it was until `clear()`; a failed write rejects
 * every change in it with `StoreIOError` and rolls them back.
 *
 * @param name The backend's name, for the test titles.
 * @param makeHarness Makes a fresh harness per test.
 */
export function errorsContract(name: string, makeHarness: HarnessFactory): void {
  describe(`${name} store contract`, () => {
    describe("error contract", () => {
      formatErrorTests(opener(makeHarness));
      writeFailureTests(instrumentedOpener(makeHarness));
    });
  });
}

/**
 * Plants `text` and hands `check` the error each read rejects with and the store's location; then
 * checks that delete() resolves false and logs one error, and that the document stays as it was.
 */
async function unloadable(open: Open, text: string, check: (error: Error, location: string) => void): Promise<Opened & { logger: Logger }> {
  const logger = recordingLogger();
  const { h, kv } = await open({ logger });
  await h.plant(text);
  await eachReadRejects(kv, (error) => check(error, kv.location));
  expect(await kv.delete("a")).toBe(false);
  expect(logger.calls).toHaveLength(1);
  expect(await h.peek()).toBe(text);
  return { h, kv, logger };
}

/** Documents the store cannot load. */
function formatErrorTests(open: Open): void {
  for (const [what, text, where] of corruptTexts) {
    it(`a document of ${what}: reads reject with CorruptStoreError, the document stays as it was`, async () => {
      const { kv, logger } = await unloadable(open, text, (error, location) => {
        expect(error).toBeInstanceOf(CorruptStoreError);
        expect(error).toBeInstanceOf(StoreFormatError);
        expect(error.name).toBe("CorruptStoreError");
        expect(isStoreFormatError(error)).toBe(true);
        expect((error as CorruptStoreError).location).toBe(location);
        expect(error.message).toBe(`Cannot load store ${JSON.stringify(location)}: not valid JSON at ${where}`);
        const [, line, column] = /line (\d+), column (\d+)/.exec(where) ?? [];
        expect((error as CorruptStoreError).position).toEqual({ line: Number(line), column: Number(column) });
        expect(error.cause).toBeInstanceOf(SyntaxError);
      });
      expect(logger.calls[0]?.[0]).toBe(`Cannot delete key "a" in store ${JSON.stringify(kv.location)}`);
      expect(logger.calls[0]?.[1]).toBeInstanceOf(CorruptStoreError);
    });
  }

  for (const [what, text] of wrongShapes) {
    it(`a document of ${what}: reads reject with InvalidStoreShapeError, the document stays as it was`, async () => {
      await unloadable(open, text, (error, location) => {
        expect(error).toBeInstanceOf(InvalidStoreShapeError);
        expect(error).toBeInstanceOf(StoreFormatError);
        expect(isStoreFormatError(error)).toBe(true);
        expect(error.message).toBe(`Cannot load store ${JSON.stringify(location)}: expected a JSON object, found ${what}`);
        expect(error.cause).toBeInstanceOf(Error);
      });
    });
  }

  it("a value nested deeper than set() accepts is an InvalidStoreShapeError at load, naming the key; clear() is the way out", async () => {
    const { h, kv } = await open();
    const planted = `{"ok": 1, "deep": ${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    await h.plant(planted);
    for (const call of [() => kv.get("ok"), () => kv.get("deep"), () => kv.set("other", 2), () => kv.getAll()]) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(InvalidStoreShapeError);
      expect(error.message).toBe(
        `Cannot load store ${JSON.stringify(kv.location)}: the value of key "deep" nests 100000 levels deep, deeper than the 1000 a store accepts`,
      );
    }
    expect(await h.peek()).toBe(planted);
    expect(await kv.clear()).toBe(true);
    await kv.set("other", 2);
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ other: 2 });
  });

  it("clear() is the way out of a corrupt document, and the store works afterwards", async () => {
    const { h, kv } = await open();
    await h.plant("{corrupt");
    await expect(kv.get("a")).rejects.toBeInstanceOf(CorruptStoreError);
    expect(await kv.clear()).toBe(true);
    expect(await h.peek()).toBe(undefined);
    await kv.set("a", 1);
    expect(await kv.get("a")).toBe(1);
  });

  it("clear() and set() called together on a corrupt document leave only the new key", async () => {
    const { h, kv } = await open();
    await h.plant("{corrupt");
    const [cleared] = await Promise.all([kv.clear(), kv.set("a", 1)]);
    expect(cleared).toBe(true);
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ a: 1 });
  });

  it("a document fixed on disk after a failed read loads on the next call", async () => {
    const { h, kv } = await open();
    await h.plant("{corrupt");
    await expect(kv.get("a")).rejects.toBeInstanceOf(CorruptStoreError);
    await h.plant('{"a": 1}');
    expect(await kv.get("a")).toBe(1);
  });
}

/** Writes the backend fails. */
function writeFailureTests(openInstrumented: OpenInstrumented): void {
  it("a failed write rejects every change in it with StoreIOError and rolls them back", async () => {
    const logger = recordingLogger();
    const { h, kv, backend } = await openInstrumented({ logger });
    await kv.set("a", 1);
    await kv.set("gone", true);
    const cause = Object.assign(new Error("disk on fire"), { code: "EIO" });
    backend.failNext = cause;
    const failed = [kv.set("a", 2), kv.set("b", 3), kv.delete("gone")];
    const errors = await Promise.all(failed.slice(0, 2).map((p) => rejection(p)));
    for (const error of errors) {
      expect(error).toBeInstanceOf(StoreIOError);
      expect(isStoreIOError(error)).toBe(true);
      expect(error.message).toBe(`Cannot write store ${JSON.stringify(kv.location)}: disk on fire`);
      expect(error.cause).toBe(cause);
      expect((error as StoreIOError).code).toBe("EIO");
      expect((error as StoreIOError).operation).toBe("write");
    }
    expect(await failed[2]).toBe(false);
    expect(logger.calls[0]?.[1]).toBe(errors[0]);
    expect(backend.writes).toBe(3);
    expect(await kv.getAll()).toStrictEqual({ a: 1, gone: true });
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ a: 1, gone: true });
    await kv.set("c", 4);
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ a: 1, gone: true, c: 4 });
  });

  it("changes made while a failing write is in flight go into the next write and succeed", async () => {
    const { h, kv, backend } = await openInstrumented();
    await kv.set("a", 1);
    backend.failNext = new Error("full");
    const release = backend.hold();
    const failing = kv.set("a", 2);
    await until(() => backend.writes === 2);
    const next = kv.set("b", 3);
    expect(await kv.get("b")).toBe(3);
    release();
    await expect(failing).rejects.toBeInstanceOf(StoreIOError);
    await next;
    expect(JSON.parse((await h.peek()) ?? "")).toStrictEqual({ a: 1, b: 3 });
    expect(await kv.get("a")).toBe(1);
  });
}
