import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { AioKV, type JsonValue } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

// `pnpm test:soak` sets AIOKV_SOAK_SECONDS for a run of minutes; the suite's own run takes 3 s.
const seconds = Number(process.env["AIOKV_SOAK_SECONDS"] ?? 3);

describe("FileBackend soak", () => {
  it("mixed operations for a while end in the model's file, with a heap that does not grow", async () => {
    const file = join(await tempDir(), "state.json");
    const kv = new AioKV(new FileBackend(file, { sync: false }));
    const model = new Map<string, JsonValue>();
    let ops = 0;
    let seed = 1;
    const next = (n: number): number => (seed = (seed * 48271) % 2147483647) % n;
    const phase = async (milliseconds: number): Promise<void> => {
      const end = Date.now() + milliseconds;
      while (Date.now() < end) {
        const calls: Array<Promise<unknown>> = [];
        for (let i = 0; i < 20; i++, ops++) {
          const key = `key${next(300)}`;
          const roll = next(100);
          if (roll < 55) {
            const value = { n: ops, tags: ["x".repeat(next(400))] };
            model.set(key, value);
            calls.push(kv.set(key, value));
          } else if (roll < 70) {
            model.delete(key);
            calls.push(kv.delete(key));
          } else if (roll < 98) {
            const expected = model.get(key);
            calls.push(kv.get(key).then((value) => expect(value).toStrictEqual(expected)));
          } else {
            const expected = Object.fromEntries(model);
            calls.push(kv.getAll().then((all) => expect(all).toStrictEqual(expected)));
          }
        }
        await Promise.all(calls);
      }
    };
    await phase((seconds * 1000) / 2);
    const opsAtMiddle = ops;
    const heapAtMiddle = heapAfterGc();
    await phase((seconds * 1000) / 2);
    const growth = heapAfterGc() - heapAtMiddle;
    await kv.close();
    expect(JSON.parse(await readFile(file, "utf8"))).toStrictEqual(Object.fromEntries(model));
    console.log(`soak: ${ops} operations; heap growth over the second ${ops - opsAtMiddle}: ${(growth / 1024).toFixed(0)} KiB`);
    expect(ops - opsAtMiddle).toBeGreaterThan(1000);
    expect(growth).toBeLessThan(4 * 1024 * 1024);
  }, 30_000 + seconds * 1000);
});
