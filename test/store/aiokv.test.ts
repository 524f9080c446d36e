import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import * as core from "@aiokv/core";
import { MemoryBackend } from "@aiokv/memory-backend";
import { AioKV, aiocache, CorruptStoreError, FileBackend, StoreIOError } from "aiokv";
import { describe, expect, it } from "vitest";
import { tempFile } from "../helpers/temp.js";

describe("aiokv", () => {
  it("new AioKV(path) stores in that JSON file", async () => {
    const file = await tempFile();
    const kv = new AioKV(file);
    expect(kv.location).toBe(file);
    await kv.set("last_command", "ping");
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ last_command: "ping" });
    await kv.close();
    expect(await new AioKV(file).get("last_command")).toBe("ping");
  });

  it("new AioKV(path, options) passes the file options on", async () => {
    const file = await tempFile();
    await new AioKV(file, { mode: 0o640, sync: false, clock: () => 5_000 }).set("t");
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual({ t: 5 });
  });

  it("new AioKV(backend) takes any Backend", async () => {
    const kv = new AioKV(new MemoryBackend({ text: '{"a": 1}' }));
    expect(await kv.get("a")).toBe(1);
  });

  it("is the core AioKV, and aiocache is the same class", async () => {
    expect(new AioKV(new MemoryBackend())).toBeInstanceOf(core.AioKV);
    expect(aiocache).toBe(AioKV);
    const file = await tempFile();
    const legacy = new aiocache(file);
    await legacy.set("legacy", true);
    await legacy.close();
    expect(await new AioKV(file).get("legacy")).toBe(true);
  });

  it("re-exports every value @aiokv/core exports, and the file backend", async () => {
    const aiokv: Record<string, unknown> = await import("aiokv");
    for (const [name, value] of Object.entries(core)) {
      if (name === "AioKV") continue; // the path-taking subclass
      expect({ name, value: aiokv[name] }).toEqual({ name, value });
    }
    expect(CorruptStoreError).toBe(core.CorruptStoreError);
    expect(StoreIOError).toBe(core.StoreIOError);
    expect(new FileBackend("x.json").location).toBe(join(process.cwd(), "x.json"));
  });

  it("the core AioKV rejects a path with a TypeError that points to aiokv", () => {
    expect(() => new core.AioKV("state.json" as unknown as core.Backend)).toThrow(
      new TypeError('Cannot create store: expected a Backend, received "state.json" (a path needs AioKV from "aiokv")'),
    );
  });
});
