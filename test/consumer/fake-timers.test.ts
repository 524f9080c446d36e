// A consumer's tests may fake every timer and the clock (vitest's vi.useFakeTimers() fakes
// setTimeout, setInterval, setImmediate and Date): the store must work under them without the
// test advancing time, and set(key) must stamp the faked time. On every backend (Redis against a
// real redis-server), for a store made before the timers are faked and one made after; and under
// node:test's mock.timers on a file, run by node --test (test/fixtures/node-mock-timers.mjs).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { MemoryBackend } from "@aiokv/memory-backend";
import { RedisBackend } from "@aiokv/redis-backend";
import { AioKV, type Backend } from "aiokv";
import { FileBackend } from "@aiokv/fs-backend";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { fixture } from "../helpers/processes.js";
import { redisTestsRun, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { tempFile } from "../helpers/temp.js";

type Make = () => Promise<{ backend: Backend; peek: () => Promise<string | undefined> }>;

const backends: Array<[string, Make]> = [
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

/** Every kind of write, under vi.useFakeTimers() with its defaults, on a store made `made` the timers were faked. */
async function underFakeTimers(make: Make, made: "before" | "after"): Promise<void> {
  // Made before the timers are faked, as a store shared by a test file's tests would be; or after.
  const open = async (): Promise<{ kv: AioKV; peek: () => Promise<string | undefined> }> => {
    const { backend, peek } = await make();
    return { kv: new AioKV(backend), peek };
  };
  const before = made === "before" ? await open() : undefined;
  vi.useFakeTimers();
  vi.setSystemTime(new Date("2025-11-24T16:00:00.000Z"));
  const { kv, peek } = before ?? (await open());
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
}

describe.each(backends)("%s under vi.useFakeTimers()", (_, make) => {
  // A hang is the failure this guards against: fail fast instead of at the suite's timeout.
  it.each(["before", "after"] as const)(
    "set, get, update, delete, setMany, flush, clear and close complete without advancing time; set(key) stamps the faked time (store made %s the timers were faked)",
    { timeout: 10_000 },
    (made) => underFakeTimers(make, made),
  );
});

describe.skipIf(!redisTestsRun())("RedisBackend (a real redis-server) under vi.useFakeTimers()", () => {
  let server: RedisServer;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedis();
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  // The first connection is made under the fake timers too: the store connects on its first use.
  it.each(["before", "after"] as const)(
    "set, get, update, delete, setMany, flush, clear and close complete without advancing time; set(key) stamps the faked time (store made %s the timers were faked)",
    { timeout: 10_000 },
    async (made) => {
      const key = `fake-timers:${randomBytes(6).toString("hex")}`;
      const make: Make = () => Promise.resolve({ backend: new RedisBackend({ url: server.url, key }), peek: async () => (await admin.get(key)) ?? undefined });
      await underFakeTimers(make, made);
      // Closed: the lock is released, and nothing is left waiting on a faked timer.
      expect(await admin.exists(`${key}.lock`)).toBe(0);
    },
  );
});

it("under node:test's mock.timers (setImmediate and Date, or all four APIs), a file store's writes resolve and set(key) stamps the mocked Date (node --test)", async () => {
  // --test-timeout: a hang fails there, not at this test's timeout.
  const { stdout } = await promisify(execFile)(process.execPath, ["--test", "--test-reporter=tap", "--test-timeout=10000", fixture("node-mock-timers.mjs")]).catch(
    (error: { stdout: string }) => ({ stdout: error.stdout }),
  );
  expect(stdout).toMatch(/^# pass 4\n# fail 0$/m);
}, 30_000);

it("set(key) stamps the faked clock, also for a store made before the clock was faked", async () => {
  const kv = new AioKV(new MemoryBackend());
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2025-11-24T16:00:00.000Z"));
  await kv.set("ran_at");
  expect(await kv.get("ran_at")).toBe(1_764_000_000);
});
