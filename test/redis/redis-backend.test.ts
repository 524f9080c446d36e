// RedisBackend against a real redis-server: the owner lock across processes, takeover after a
// SIGKILL, fencing of a SIGSTOPped owner, AOF restarts, a server killed mid-storm, bad values.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { createInterface } from "node:readline";
import { AioKV, CorruptStoreError, InvalidStoreShapeError, StoreIOError, StoreLockedError } from "@aiokv/core";
import { RedisBackend } from "@aiokv/redis-backend";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { redisTestsRun, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { fixture, sleep } from "../helpers/processes.js";

const ownerFixture = fixture("redis-owner.mjs");
const ttl = 1500;
const quiet = { error: () => {} };
let server: RedisServer;
let admin: Redis;

const freshKey = (): string => `test:${randomBytes(6).toString("hex")}`;

function open(key: string, options: Partial<ConstructorParameters<typeof RedisBackend>[0]> = {}): AioKV {
  const kv = new AioKV(new RedisBackend({ url: server.url, key, lockTtl: ttl, ...options }), { logger: quiet });
  onTestFinished(() => kv.close());
  return kv;
}

/** A child process owning `key`, with a line reader of its answers. */
async function owner(key: string): Promise<{ child: ChildProcessWithoutNullStreams; next: () => Promise<string> }> {
  const child = spawn(process.execPath, [ownerFixture, server.url, key, String(ttl)]);
  onTestFinished(() => void child.kill("SIGKILL"));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => String((await lines.next()).value);
  expect(await next()).toBe("ready");
  return { child, next };
}

/** A child owner of a fresh key, SIGSTOPped past its ttl while a store here takes over and writes. */
async function takenOverWhilePaused(): Promise<Awaited<ReturnType<typeof owner>> & { key: string; kv: AioKV }> {
  const key = freshKey();
  const { child, next } = await owner(key);
  child.kill("SIGSTOP");
  await sleep(ttl + 300);
  const kv = open(key);
  await kv.set("owner", "parent");
  return { key, child, next, kv };
}

describe.skipIf(!redisTestsRun())("RedisBackend on a real redis-server", () => {
  beforeAll(async () => {
    server = await startRedis({ aof: true });
    admin = new Redis(server.url);
    admin.on("error", () => {}); // the server is killed on purpose below
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  it("keeps the document as the same JSON text a state file holds, under the key", async () => {
    const key = freshKey();
    const kv = open(key);
    await kv.set("last_command", "ping");
    expect(await admin.get(key)).toBe('{\n  "last_command": "ping"\n}\n');
    expect(kv.location).toBe(`redis://127.0.0.1:${server.port}/0#${key}`);
  });

  it("a second owner in another process gets StoreLockedError naming pid and host; reads and writes are refused", async () => {
    const key = freshKey();
    const { child } = await owner(key);
    const kv = open(key);
    const error = (await kv.set("a", 1).catch((e: unknown) => e)) as StoreLockedError;
    expect(error).toBeInstanceOf(StoreLockedError);
    expect(error.owner).toMatchObject({ pid: child.pid, host: hostname() });
    expect(error.message).toMatch(new RegExp(`it is locked by process ${child.pid} on `));
    expect(JSON.parse((await admin.get(key)) ?? "")).toStrictEqual({ owner: `child ${child.pid}` });
  });

  it("a SIGKILLed owner's lock is taken over once its ttl runs out, not before", async () => {
    const key = freshKey();
    const { child } = await owner(key);
    child.kill("SIGKILL");
    const killedAt = Date.now();
    const kv = open(key);
    let attempts = 0;
    for (;;) {
      attempts++;
      const outcome = await kv.set("owner", "parent").then(
        () => "ok",
        (e: unknown) => e,
      );
      if (outcome === "ok") break;
      expect(outcome).toBeInstanceOf(StoreLockedError);
      await sleep(50);
    }
    const waited = Date.now() - killedAt;
    console.log(`redis takeover after SIGKILL: ${waited} ms (lockTtl ${ttl} ms, ${attempts} attempts)`);
    expect(attempts).toBeGreaterThan(1);
    expect(waited).toBeLessThanOrEqual(ttl + 1000);
    expect(JSON.parse((await admin.get(key)) ?? "")).toStrictEqual({ owner: "parent" });
  });

  it("fencing: an owner SIGSTOPped past its ttl wakes up to StoreLockedError, and the new owner's state stays", async () => {
    const { key, child, next, kv } = await takenOverWhilePaused();
    child.kill("SIGCONT");
    child.stdin.write('set owner "child-again"\n');
    const answer = await next();
    console.log(`paused owner's write after takeover: ${answer}`);
    expect(answer).toMatch(new RegExp(`^refused StoreLockedError: Cannot own store ".*#${key}": it is locked by process ${process.pid} on `));
    expect(JSON.parse((await admin.get(key)) ?? "")).toStrictEqual({ owner: "parent" });
    expect(await kv.get("owner")).toBe("parent");
  });

  it("an owner paused past its ttl while nobody took the lock takes it back, and writes", async () => {
    const key = freshKey();
    const { child, next } = await owner(key);
    child.kill("SIGSTOP");
    await sleep(ttl + 300);
    expect(await admin.exists(`${key}.lock`)).toBe(0);
    child.kill("SIGCONT");
    child.stdin.write('set after "pause"\n');
    expect(await next()).toBe("ok");
    expect(JSON.parse((await admin.get(key)) ?? "")).toStrictEqual({ owner: `child ${child.pid}`, after: "pause" });
    expect(JSON.parse((await admin.get(`${key}.lock`)) ?? "")).toMatchObject({ pid: child.pid });
    await expect(open(key).get("owner")).rejects.toBeInstanceOf(StoreLockedError);
  });

  it("an owner paused past its ttl does not take the lock back after another owner changed the document, even one that closed since", async () => {
    const { key, child, next, kv } = await takenOverWhilePaused();
    await kv.close();
    child.kill("SIGCONT");
    child.stdin.write('set owner "child-again"\n');
    expect(await next()).toBe(`refused StoreLockedError: Cannot own store "redis://127.0.0.1:${server.port}/0#${key}": it is locked by another owner`);
    expect(JSON.parse((await admin.get(key)) ?? "")).toStrictEqual({ owner: "parent" });
    expect(await admin.exists(`${key}.lock`)).toBe(0);
  });

  it("an owner's lock outlives its ttl while the owner lives: it is renewed", async () => {
    const key = freshKey();
    const kv = open(key);
    await kv.set("a", 1);
    await sleep(ttl * 2);
    await expect(open(key).get("a")).rejects.toBeInstanceOf(StoreLockedError);
    await kv.set("a", 2);
    expect(JSON.parse((await admin.get(key)) ?? "")).toStrictEqual({ a: 2 });
  });

  it("at the shortest lockTtl, an owner keeps its lock for many lease periods while another store keeps trying", async () => {
    const key = freshKey();
    const shortest = 1000;
    const kv = open(key, { lockTtl: shortest });
    await kv.set("n", 0);
    const contender = open(key, { lockTtl: shortest });
    const outcomes: unknown[] = [];
    const until = Date.now() + 6 * shortest;
    for (let n = 1; Date.now() < until; n++) {
      outcomes.push(await contender.set("n", -n).then(() => "written", (e: unknown) => (e as Error).name));
      if (n % 5 === 0) await kv.set("n", n); // the owner writes now and then, idle in between
      await sleep(50);
    }
    expect(outcomes.length).toBeGreaterThan(30);
    expect(new Set(outcomes)).toStrictEqual(new Set(["StoreLockedError"]));
    await kv.set("last", true);
    expect(JSON.parse((await admin.get(key)) ?? "")).toMatchObject({ last: true });
    expect(await admin.pttl(`${key}.lock`)).toBeGreaterThan(shortest / 2);
  });

  it("close() releases the lock at once and closes the connection", async () => {
    const key = freshKey();
    const clients = async (): Promise<number> => Number(/connected_clients:(\d+)/.exec(await admin.info("clients"))?.[1]);
    const before = await clients();
    const kv = open(key);
    await kv.set("a", 1);
    expect(await clients()).toBe(before + 1);
    await kv.close();
    expect(await clients()).toBe(before);
    expect(await admin.exists(`${key}.lock`)).toBe(0);
    expect(await open(key).get("a")).toBe(1);
    // A store closed before any use never connects at all.
    const connections = async (): Promise<number> => Number(/total_connections_received:(\d+)/.exec(await admin.info("stats"))?.[1]);
    const made = await connections();
    const unused = new AioKV(new RedisBackend({ url: server.url, key }));
    await unused.close();
    expect(await connections()).toBe(made);
  });

  it("a server killed mid-storm: pending writes reject, acknowledged ones survive the AOF restart, then it works again", async () => {
    const key = freshKey();
    const kv = open(key, { timeout: 1000 });
    await kv.set("start", 0);
    const acknowledged: number[] = [];
    const rejected: unknown[] = [];
    let stop = false;
    const storm = (async () => {
      for (let i = 0; !stop; i++) {
        const batch = Array.from({ length: 20 }, (_, j) => i * 20 + j);
        await Promise.all(
          batch.map((n) =>
            kv.set(`k${n}`, n).then(
              () => void acknowledged.push(n),
              (error: unknown) => void rejected.push(error),
            ),
          ),
        );
        if (rejected.length > 0) return;
      }
    })();
    await sleep(300);
    await server.kill();
    await storm.then(() => (stop = true));
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(rejected.length).toBeGreaterThan(0);
    for (const error of rejected) expect(error).toBeInstanceOf(StoreIOError);
    console.log(`server killed mid-storm: ${acknowledged.length} sets acknowledged, ${rejected.length} rejected`);
    await server.start();
    const stored = JSON.parse((await admin.get(key)) ?? "{}") as Record<string, number>;
    for (const n of acknowledged) expect(stored[`k${n}`]).toBe(n);
    await kv.set("after", true);
    expect(await kv.get("after")).toBe(true);
  });

  it("a server that stops answering: calls reject after the timeout, never hang, and work once it answers", async () => {
    const key = freshKey();
    const kv = open(key, { timeout: 300 });
    await kv.set("a", 1);
    server.signal("SIGSTOP");
    const started = Date.now();
    try {
      const error = (await kv.set("a", 2).catch((e: unknown) => e)) as StoreIOError;
      expect(error).toBeInstanceOf(StoreIOError);
      expect((error.cause as Error).message).toMatch(/timed out/i);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(await kv.delete("a")).toBe(false);
    } finally {
      server.signal("SIGCONT");
    }
    expect(await kv.get("a")).toBe(1);
    await kv.set("a", 3);
    expect(JSON.parse((await admin.get(key)) ?? "")).toStrictEqual({ a: 3 });
  });

  it("replicas: n waits for n replicas to hold each write, and rejects the write when they do not", async () => {
    const key = freshKey();
    const lonely = open(key, { replicas: 1, timeout: 300 });
    const error = (await lonely.set("a", 1).catch((e: unknown) => e)) as StoreIOError;
    expect(error).toBeInstanceOf(StoreIOError);
    expect((error.cause as Error).message).toBe("only 0 of 1 replicas acknowledged the write within 150 ms");
    await lonely.close();

    await admin.config("SET", "repl-diskless-sync-delay", "0"); // sync a new replica at once, not after 5 s
    const replica = await startRedis({ replicaOf: server.port });
    onTestFinished(() => replica.stop());
    const kv = open(key, { replicas: 1, timeout: 5000 });
    // The replica acknowledges writes once its first sync with the primary is done.
    for (let tries = 0; ; tries++) {
      const outcome = await kv.set("a", 2).then(
        () => "ok",
        (e: unknown) => e,
      );
      if (outcome === "ok") break;
      expect(outcome).toBeInstanceOf(StoreIOError); // not yet synced: 0 of 1 acknowledged
      if (tries >= 20) throw outcome;
    }
    const mirror = new Redis(replica.url);
    onTestFinished(() => mirror.disconnect());
    expect(JSON.parse((await mirror.get(key)) ?? "")).toStrictEqual({ a: 2 });
  });

  it("a refused connection rejects within the timeout, saying it could not connect, with the client's error as cause", async () => {
    const timeout = 500;
    for (const lock of [true, false]) {
      const started = Date.now();
      const kv = new AioKV(new RedisBackend({ url: "redis://127.0.0.1:1", key: "k", timeout }), { logger: quiet, lock });
      const error = (await kv.get("a").catch((e: unknown) => e)) as StoreIOError;
      expect(Date.now() - started).toBeLessThan(timeout + 1000);
      expect(error).toBeInstanceOf(StoreIOError);
      expect(error.operation).toBe(lock ? "lock" : "read");
      expect(error.code).toBe("ECONNREFUSED");
      expect(error.message).toBe(
        `Cannot ${error.operation} store "redis://127.0.0.1:1/0#k": could not connect within ${timeout} ms: connect ECONNREFUSED 127.0.0.1:1`,
      );
      expect((error.cause as Error).cause).toBeInstanceOf(Error);
      expect(await kv.delete("a")).toBe(false);
      await kv.close();
    }
  });

  it("a server that accepts and does not answer at the first connection: the first call rejects within the timeout, the next works once it answers", async () => {
    const timeout = 500;
    const key = freshKey();
    const kv = open(key, { timeout });
    server.signal("SIGSTOP"); // the kernel still accepts the connection; nothing answers
    try {
      for (let attempt = 1; attempt <= 2; attempt++) {
        const started = Date.now();
        const error = (await kv.set("a", 1).catch((e: unknown) => e)) as StoreIOError;
        expect(Date.now() - started).toBeLessThan(timeout + 1000);
        expect(error).toBeInstanceOf(StoreIOError);
        expect(error.code).toBe("ETIMEDOUT");
        expect(error.message).toBe(`Cannot lock store "redis://127.0.0.1:${server.port}/0#${key}": could not connect within ${timeout} ms: the server did not answer`);
      }
    } finally {
      server.signal("SIGCONT");
    }
    await kv.set("a", 2);
    expect(JSON.parse((await admin.get(key)) ?? "")).toStrictEqual({ a: 2 });
  });

  it("a value that is not JSON, not an object, or not a string gives the file's errors", async () => {
    const corrupt = freshKey();
    await admin.set(corrupt, '{"a": 1,');
    await expect(open(corrupt).get("a")).rejects.toBeInstanceOf(CorruptStoreError);
    const array = freshKey();
    await admin.set(array, "[1, 2]");
    await expect(open(array).get("a")).rejects.toBeInstanceOf(InvalidStoreShapeError);
    const list = freshKey();
    await admin.lpush(list, "x");
    const error = (await open(list).get("a").catch((e: unknown) => e)) as StoreIOError;
    expect(error).toBeInstanceOf(StoreIOError);
    expect(error.operation).toBe("read");
    expect(String((error.cause as Error).message)).toMatch(/^WRONGTYPE/);
    expect(await admin.type(list)).toBe("list");
  });

  it("refuses bad options with an error naming the key", () => {
    expect(() => new RedisBackend({ key: "k" })).toThrow(new TypeError('Cannot open Redis store "k": give either url or client'));
    expect(() => new RedisBackend({ url: server.url, key: "" })).toThrow(TypeError);
    expect(() => new RedisBackend({ url: server.url, key: "k", lockTtl: 10 })).toThrow(RangeError);
  });
});
