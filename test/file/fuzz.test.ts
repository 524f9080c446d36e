import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AioKV, isStoreFormatError } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.js";

describe("FileBackend fuzzing", () => {
  it("any bytes in the file load as an object or reject with StoreFormatError, and the file stays byte for byte", async () => {
    const dir = await tempDir();
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.json({ maxDepth: 2 }).map((json) => new TextEncoder().encode(json)),
      fc.tuple(fc.json({ maxDepth: 2 }), fc.uint8Array({ minLength: 1, maxLength: 3 })).map(([json, noise]) =>
        Buffer.concat([Buffer.from(json), Buffer.from(noise)]),
      ),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(bytes, async (content) => {
        const file = join(dir, `state-${run++}.json`);
        await writeFile(file, content);
        const kv = new AioKV(new FileBackend(file), { logger: { error() {} } });
        const error = await kv.getAll().then(
          () => undefined,
          (e: unknown) => e,
        );
        if (error !== undefined) expect(isStoreFormatError(error), (error as Error).message).toBe(true);
        expect(Buffer.compare(await readFile(file), Buffer.from(content))).toBe(0);
        await kv.close();
      }),
      { numRuns: 300 },
    );
  });
});
