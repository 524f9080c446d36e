import { describe, expect, it } from "vitest";
import { AioKV, type Logger } from "../src/aiokv.js";
import type { Backend } from "../src/backend.js";
import { isStoreIOError, StoreIOError } from "../src/errors.js";

/** What fs gives when the file's mode changed under a running store. */
const eacces = (): NodeJS.ErrnoException =>
  Object.assign(new Error("EACCES: permission denied, open '/srv/bot/state.json'"), { code: "EACCES", errno: -13, syscall: "open" });

/** A document in memory whose reads can be made to fail, recording every move aside. */
class FlakyBackend implements Backend {
  readonly location = "test:quarantine";
  text: string | undefined;
  /** What the next reads reject with; none while `undefined`. */
  readError: Error | undefined;
  reads = 0;
  readonly moves: string[] = [];

  constructor(text?: string) {
    this.text = text;
  }

  read(): Promise<string | undefined> {
    this.reads++;
    return this.readError ? Promise.reject(this.readError) : Promise.resolve(this.text);
  }

  write(pieces: readonly Uint8Array[]): Promise<void> {
    this.text = Buffer.concat(pieces).toString("utf8");
    return Promise.resolve();
  }

  remove(): Promise<void> {
    this.text = undefined;
    return Promise.resolve();
  }

  moveAside(suffix: string): Promise<string | undefined> {
    this.moves.push(suffix);
    this.text = undefined;
    return Promise.resolve(`${this.location}.${suffix}`);
  }
}

function recordingLogger(): Logger & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return { calls, error: (...args: unknown[]) => void calls.push(args) };
}

/** The rejection of `promise`, which must reject. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (error: unknown) => error as Error,
  );
}

function expectReadError(error: Error, cause: Error, location: string): void {
  expect(error).toBeInstanceOf(StoreIOError);
  expect(isStoreIOError(error)).toBe(true);
  const io = error as StoreIOError;
  expect(io.operation).toBe("read");
  expect(io.location).toBe(location);
  expect(io.code).toBe("EACCES");
  expect(io.cause).toBe(cause);
  expect(io.message).toBe(`Cannot read store ${JSON.stringify(location)}: ${cause.message}`);
}

describe("quarantine() when the backend cannot read", () => {
  for (const [what, text] of [
    ["an empty document", "{}"],
    ["no document", undefined],
  ] as const) {
    it(`with ${what} loaded, a read that fails when it checks again is a StoreIOError "read"; nothing is moved`, async () => {
      const logger = recordingLogger();
      const backend = new FlakyBackend(text);
      const kv = new AioKV(backend, { logger });
      expect(await kv.get("a")).toBe(undefined);
      const cause = eacces();
      backend.readError = cause;
      const readsBefore = backend.reads;
      expectReadError(await rejection(kv.quarantine()), cause, kv.location);
      // The check for a document left empty is the read that failed, not the queue's first load.
      expect(backend.reads).toBe(readsBefore + 1);
      expect(backend.moves).toStrictEqual([]);
      expect(backend.text).toBe(text);
      expect(logger.calls).toStrictEqual([]);
      // Once the file can be read again, quarantine() answers as it does for a store that loads.
      backend.readError = undefined;
      if (text === undefined) expect(await kv.quarantine()).toBe(undefined);
      else await expect(kv.quarantine()).rejects.toThrow(`Cannot quarantine store ${JSON.stringify(kv.location)}: it loads without error`);
      expect(backend.moves).toStrictEqual([]);
    });
  }

  it("a first load that fails is the same StoreIOError, not taken for a bad document; nothing is moved", async () => {
    const logger = recordingLogger();
    const backend = new FlakyBackend("{corrupt");
    const cause = eacces();
    backend.readError = cause;
    const kv = new AioKV(backend, { logger });
    expectReadError(await rejection(kv.quarantine()), cause, kv.location);
    expect(backend.moves).toStrictEqual([]);
    expect(backend.text).toBe("{corrupt");
    expect(logger.calls).toStrictEqual([]);
    // The read error said nothing of the document: once it reads, the corrupt one is moved aside.
    backend.readError = undefined;
    expect(await kv.quarantine()).toMatch(/^test:quarantine\.corrupt-/);
    expect(backend.moves).toHaveLength(1);
  });
});
