import { AioKV, CorruptStoreError } from "@aiokv/core";
import { MemoryBackend } from "@aiokv/memory-backend";
import { describe, expect, it } from "vitest";

describe("MemoryBackend", () => {
  it("location is memory:<name>, memory:store by default", () => {
    expect(new MemoryBackend().location).toBe("memory:store");
    expect(new MemoryBackend({ name: "bot" }).location).toBe("memory:bot");
  });

  it("starts from seeded raw text, corrupt text included, with the file's error", async () => {
    const error = await new AioKV(new MemoryBackend({ name: "bot", text: '{"a": 1' })).get("a").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptStoreError);
    expect((error as Error).message).toBe('Cannot load store "memory:bot": not valid JSON at line 1, column 8 (close brace expected)');
  });

  it("read() returns the text a file would hold", async () => {
    const backend = new MemoryBackend();
    await new AioKV(backend, { clock: () => 1_764_000_000_000 }).set("seen");
    expect(await backend.read()).toBe('{\n  "seen": 1764000000\n}\n');
  });

  it("each instance has its own volume", async () => {
    const first = new MemoryBackend();
    await first.write([new TextEncoder().encode("one")]);
    expect(await new MemoryBackend().read()).toBe(undefined);
    expect(await first.read()).toBe("one");
  });
});
