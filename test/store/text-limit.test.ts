// A document is decoded into one string when read, so one longer than V8's longest string
// (2 ** 29 - 24 UTF-16 units on 64-bit) could be written but never loaded: such a change is
// refused before any I/O. Values of hundreds of millions of characters: seconds and gigabytes.
import { AioKV } from "aiokv";
import { MemoryBackend } from "@aiokv/memory-backend";
import { describe, expect, it } from "vitest";

const limit = 2 ** 29 - 24;

/** Counts the writes that reach the backend: reading 300 MB back to compare would take seconds. */
class CountingBackend extends MemoryBackend {
  writes = 0;

  override async write(pieces: readonly Uint8Array[]): Promise<void> {
    this.writes++;
    await super.write(pieces);
  }
}

describe("a document the store could not read back", () => {
  it("is refused: a batch at render time, before the write, and the store keeps what it had", async () => {
    const backend = new CountingBackend({ name: "big" });
    const kv = new AioKV(backend);
    await kv.set("a", "x".repeat(300_000_000));
    await expect(kv.set("b", "y".repeat(300_000_000))).rejects.toThrow(
      new RangeError(`Cannot write store "memory:big": the document would be 600000025 characters long, longer than the ${limit} a store can read back`),
    );
    expect(backend.writes).toBe(1);
    expect(await kv.has("b")).toBe(false);
    expect(await kv.keys()).toStrictEqual(["a"]);
    await kv.close();
  });

  it("is refused in set() at once for a single value whose JSON is that long", async () => {
    const backend = new MemoryBackend({ name: "big" });
    const kv = new AioKV(backend);
    for (const length of [limit - 10, limit]) {
      await expect(kv.set("a", "x".repeat(length))).rejects.toThrow(
        new RangeError(`Cannot set key "a": its JSON is longer than the ${limit} characters of the longest document a store can read back`),
      );
    }
    expect(await backend.read()).toBe(undefined);
    await kv.close();
  });
});
