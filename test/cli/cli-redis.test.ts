// The aiokv command on Redis stores (a real redis-server), and copying a store between a file and Redis.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisTestsRun, startRedis, type RedisServer } from "../helpers/redis-server.js";
import { aiokv } from "../helpers/processes.js";

let server: RedisServer;
let admin: Redis;
let dir: string;

describe.skipIf(!redisTestsRun())("aiokv command on Redis", () => {
  beforeAll(async () => {
    server = await startRedis();
    admin = new Redis(server.url);
    dir = await mkdtemp(join(tmpdir(), "aiokv-cli-redis-"));
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("takes a redis:// URL with the key after # or in --key wherever it takes a file", async () => {
    const store = `${server.url}#bot:state`;
    expect(await aiokv("set", store, "last_command", '"ping"')).toMatchObject({ code: 0 });
    expect(await aiokv("set", server.url, "--key", "bot:state", "seen", "[1]")).toMatchObject({ code: 0 });
    expect(await aiokv("get", store, "last_command")).toMatchObject({ code: 0, stdout: '"ping"\n' });
    expect(await aiokv("list", server.url, "--key", "bot:state")).toMatchObject({ code: 0, stdout: "last_command\nseen\n" });
    expect(await aiokv("check", store)).toMatchObject({ code: 0 });
    expect(await admin.get("bot:state")).toBe('{\n  "last_command": "ping",\n  "seen": [1]\n}\n');
    expect(await aiokv("get", server.url, "a")).toMatchObject({ code: 2, stderr: expect.stringContaining("a Redis store needs a key") as string });
    expect(await aiokv("clear", store)).toMatchObject({ code: 0 });
    expect(await admin.exists("bot:state")).toBe(0);
  });

  it("copy moves a store from a file to Redis and back, unchanged; a non-empty target needs --force", async () => {
    const file = join(dir, "state.json");
    const text = '{\n  "last_command": "ping",\n  "名前": ["東京"],\n  "seen": [1,2,3]\n}\n';
    await writeFile(file, text);
    const store = `${server.url}#copy:state`;
    expect(await aiokv("copy", file, store)).toMatchObject({ code: 0, stdout: `copied 3 keys from ${file} to redis://127.0.0.1:${server.port}/0#copy:state\n` });
    expect(await admin.get("copy:state")).toBe(text);
    await admin.set("copy:other", '{"keep": true}');
    const refused = await aiokv("copy", file, `${server.url}#copy:other`);
    expect(refused).toMatchObject({ code: 1, stderr: `aiokv: redis://127.0.0.1:${server.port}/0#copy:other holds 1 key; --force replaces them\n` });
    expect(await admin.get("copy:other")).toBe('{"keep": true}');
    expect(await aiokv("copy", file, `${server.url}#copy:other`, "--force")).toMatchObject({ code: 0 });
    expect(await admin.get("copy:other")).toBe(text);
    const back = join(dir, "back.json");
    expect(await aiokv("copy", store, back)).toMatchObject({ code: 0 });
    expect(await readFile(back, "utf8")).toBe(text);
  });

  it("a corrupt Redis value fails check with line and column, like a file", async () => {
    await admin.set("bad:state", '{\n  "a": tru\n}');
    const ran = await aiokv("check", `${server.url}#bad:state`);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain("not valid JSON at line 2, column 8 (invalid symbol)");
  });
});
