import { randomBytes } from "node:crypto";
import { RedisBackend } from "@aiokv/redis-backend";
import { backendContract, modelContract, storeContract, type Harness } from "@aiokv/test-suite";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe } from "vitest";
import { redisTestsRun, startRedis, type RedisServer } from "../helpers/redis-server.js";

let server: RedisServer;
let client: Redis;

/** A fresh key per test on one real server; the backends share a client, as an app's would. */
function redisHarness(): Harness {
  const key = `contract:${randomBytes(6).toString("hex")}`;
  return {
    backend: () => new RedisBackend({ client, key }),
    plant: async (text) => void (text === undefined ? await client.del(key) : await client.set(key, text)),
    peek: async () => (await client.get(key)) ?? undefined,
    peekAt: async (location) => (await client.get(location.slice(location.indexOf("#") + 1))) ?? undefined,
  };
}

describe.skipIf(!redisTestsRun())("RedisBackend on a real redis-server", () => {
  beforeAll(async () => {
    server = await startRedis();
    client = new Redis(server.url);
  });
  afterAll(async () => {
    await client.quit();
    await server.stop();
  });

  backendContract("RedisBackend", redisHarness);
  storeContract("RedisBackend", redisHarness);
  modelContract("RedisBackend", redisHarness);
});
