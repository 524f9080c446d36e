import { describe, expect, it, vi } from "vitest";
import * as errors from "../src/errors.js";
import {
  CorruptStoreError,
  isStoreFormatError,
  isStoreIOError,
  isStoreLockedError,
  StoreFormatError,
  StoreIOError,
  StoreLockedError,
  UnsyncedWriteError,
} from "../src/errors.js";

const location = "test:errors";

/** One of each format error class, as a store throws them. */
function formatErrors(module: typeof errors): errors.StoreFormatError[] {
  return [
    new module.StoreFormatError("format", location),
    new module.CorruptStoreError("corrupt", location, { position: { line: 1, column: 2 } }),
    new module.InvalidStoreShapeError("shape", location),
    new module.SchemaMismatchError("schema", location, "key"),
  ];
}

/** A second copy of the module, as when an ESM and a CommonJS build of core share one process. */
async function anotherCopy(): Promise<typeof errors> {
  vi.resetModules();
  const copy = await import("../src/errors.js");
  expect(copy.StoreFormatError).not.toBe(StoreFormatError);
  return copy;
}

describe("isStoreFormatError", () => {
  it("is true for every format error class, a subclass declared later included", () => {
    for (const error of formatErrors(errors)) expect(isStoreFormatError(error), error.name).toBe(true);
    class NewFormatError extends StoreFormatError {
      override readonly name = "NewFormatError";
    }
    expect(isStoreFormatError(new NewFormatError("new", location))).toBe(true);
  });

  it("is true for another copy's format errors, which instanceof refuses", async () => {
    const copy = await anotherCopy();
    for (const error of formatErrors(copy)) {
      expect(error, error.name).not.toBeInstanceOf(StoreFormatError);
      expect(isStoreFormatError(error), error.name).toBe(true);
      expect(copy.isStoreFormatError(error), error.name).toBe(true);
    }
    for (const error of formatErrors(errors)) expect(copy.isStoreFormatError(error), error.name).toBe(true);
  });

  it("is false for an error that only looks like one: its name is not what makes it one", () => {
    for (const name of ["StoreFormatError", "CorruptStoreError", "InvalidStoreShapeError", "SchemaMismatchError"]) {
      const lookalike = Object.assign(new Error("looks like one"), { name, location });
      expect(isStoreFormatError(lookalike), name).toBe(false);
    }
  });

  it("is false for other store errors and for what is not an error", () => {
    const mark = Object.getOwnPropertySymbols(StoreFormatError.prototype);
    expect(mark).toHaveLength(1);
    const [symbol] = mark as [symbol];
    for (const other of [
      new StoreIOError("read", location, new Error("EACCES")),
      new StoreLockedError(location),
      new UnsyncedWriteError(new Error("EIO")),
      new TypeError("Cannot set key"),
      // The mark without being an Error: a plain object is not something a store throws.
      { name: "CorruptStoreError", message: "x", location, [symbol]: true },
      null,
      undefined,
      "CorruptStoreError",
    ]) {
      expect(isStoreFormatError(other)).toBe(false);
    }
  });

  it("keeps the mark on the prototype, out of each error's own properties, which logs and inspectors show", () => {
    const [symbol] = Object.getOwnPropertySymbols(StoreFormatError.prototype) as [symbol];
    expect(Object.getOwnPropertyDescriptor(StoreFormatError.prototype, symbol)).toMatchObject({ value: true, enumerable: false });
    for (const error of formatErrors(errors)) expect(Object.getOwnPropertySymbols(error), error.name).toStrictEqual([]);
    expect(Object.getOwnPropertySymbols(CorruptStoreError.prototype)).toStrictEqual([]);
  });
});

describe("the other guards", () => {
  it("hold across copies of the module too", async () => {
    const copy = await anotherCopy();
    const io = new copy.StoreIOError("move", location, Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" }));
    expect(io).not.toBeInstanceOf(StoreIOError);
    expect(isStoreIOError(io)).toBe(true);
    expect(isStoreLockedError(new copy.StoreLockedError(location))).toBe(true);
    expect(isStoreIOError(new CorruptStoreError("corrupt", location))).toBe(false);
  });
});
