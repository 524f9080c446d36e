// A consumer's tests may fake every timer and the clock (vitest's vi.useFakeTimers() fakes
// setTimeout, setInterval, setImmediate and Date): the store must work under them without the
// test advancing time, and set(key) must stamp the faked time.
import { readFile } from "node:fs/promises";
import { MemoryBackend } from "@aiokv/memory-backend";
import { AioKV, type Backend } from "aiokv";
import { FileBackend } from "@aiokv/fs-backend";
import { afterEach, describe, expect, it, vi } from "vitest";
import { tempFile } from "../helpers/temp.js";

const backends: Array<[string, () => Promise<{ backend: Backend; peek: () => Promise<string | undefined> }>]> = [
  [
    "MemoryBackend",
    () => {
      const backend = new MemoryBackend();
      return Promise.resolve({ backend, peek: async () => String(await backend.read()) });
    },
  ],
  [
    "FileBackend",
    async () => {
      const file = await tempFile();
      return { backend: new FileBackend(file), peek: () => readFile(file, "utf8") };
    },
  ],
];

afterEach(() => {
  vi.useRealTimers();
});

describe.each(backends)("%s under vi.useFakeTimers()", (_, make) => {
  // A hang is the failure this guards against: fail fast instead of at the suite's timeout.
  it("set, get, update, delete, setMany, flush, clear and close complete without advancing time; set(key) stamps the faked time", { timeout: 10_000 }, async () => {
    const { backend, peek } = await make();
    // Made before the timers are faked, as a store shared by a test file's tests would be.
    const kv = new AioKV(backend);
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2025-11-24T16:00:00.000Z"));
    await kv.set("ran_at");
    expect(await kv.get("ran_at")).toBe(1_764_000_000);
    await kv.set("n", 1);
    expect(await kv.update("n", (n: number) => n + 1, 0)).toBe(2);
    expect(await kv.delete("n")).toBe(true);
    await kv.setMany({ a: 1, b: 2 });
    void kv.set("c", 3);
    await kv.flush();
    expect(await kv.getAll()).toStrictEqual({ ran_at: 1_764_000_000, a: 1, b: 2, c: 3 });
    expect(await kv.clear()).toBe(true);
    vi.setSystemTime(new Date("2025-11-24T16:01:00.000Z"));
    await kv.set("after_clear");
    await kv.close();
    expect(await peek()).toBe('{\n  "after_clear": 1764000060\n}\n');
  });
});

it("set(key) stamps the faked clock, also for a store made before the clock was faked", async () => {
  const kv = new AioKV(new MemoryBackend());
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2025-11-24T16:00:00.000Z"));
  await kv.set("ran_at");
  expect(await kv.get("ran_at")).toBe(1_764_000_000);
});
