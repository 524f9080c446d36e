// `aiokv watch <file>`, run as a real process while a store in this test writes the file.
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { AioKV } from "aiokv";
import { describe, expect, it } from "vitest";
import { aiokv, aiokvManifest } from "../helpers/processes.js";
import { tempFile } from "../helpers/temp.js";
import { run } from "./child.js";

const bin = join(dirname(aiokvManifest()), "dist", "cli.js");

/** Starts `aiokv watch <file>`; resolves once it says it is watching. */
async function watching(file: string): Promise<ReturnType<typeof run>> {
  const child = run([bin, "watch", file]);
  await child.line((line) => line.startsWith("aiokv: watching"), { stream: "stderr" });
  return child;
}

describe("aiokv watch", () => {
  it("prints each change as a JSON line as the owner makes it, and exits 0 on SIGTERM", async () => {
    const file = await tempFile();
    await using kv = new AioKV(file);
    await kv.set("a", 1);
    const child = await watching(file);
    expect(child.stderr).toStrictEqual([`aiokv: watching ${file} (Ctrl-C stops)`]);
    const expected: unknown[] = [];
    // Each change printed before the next is made: one line each, in order.
    const steps: Array<[() => Promise<unknown>, unknown[]]> = [
      [() => kv.set("b", { list: [1, "two"] }), [{ type: "set", key: "b", value: { list: [1, "two"] } }]],
      [() => kv.set("a", 2), [{ type: "set", key: "a", value: 2 }]],
      [
        () => kv.setMany({ c: null, d: "x" }),
        [
          { type: "set", key: "c", value: null },
          { type: "set", key: "d", value: "x" },
        ],
      ],
      [() => kv.delete("b"), [{ type: "delete", key: "b" }]],
      [() => kv.clear(), [{ type: "clear" }]],
      [() => kv.set("e", true), [{ type: "set", key: "e", value: true }]],
    ];
    for (const [change, lines] of steps) {
      await change();
      expected.push(...lines);
      await child.line(() => child.stdout.length >= expected.length);
    }
    child.process.kill("SIGTERM");
    expect(await child.exit()).toBe(0);
    expect(child.stdout.map((line) => JSON.parse(line) as unknown)).toStrictEqual(expected);
    expect(child.stderr).toHaveLength(1);
  });

  it("says on stderr when the file stops loading and when it loads again, goes on, and exits 0 on SIGINT", async () => {
    const file = await tempFile();
    await using kv = new AioKV(file);
    await kv.set("a", 1);
    const child = await watching(file);
    await writeFile(file, '{"a": ');
    await child.line((line) => line.includes("not valid JSON"), { stream: "stderr" });
    await kv.set("b", 2);
    await child.line((line) => line === `aiokv: ${file} loads again`, { stream: "stderr" });
    await child.line((line) => line.includes('"b"'));
    child.process.kill("SIGINT");
    expect(await child.exit()).toBe(0);
    expect(child.stdout.map((line) => JSON.parse(line) as unknown)).toStrictEqual([{ type: "set", key: "b", value: 2 }]);
  });

  it("exits 1 on a file that does not load when it starts, and 2 with an extra argument", async () => {
    const file = await tempFile();
    await writeFile(file, "[1]");
    expect(await aiokv("watch", file)).toMatchObject({ code: 1, stdout: "", stderr: expect.stringContaining("expected a JSON object, found an array") as string });
    expect(await aiokv("watch", file, "extra")).toMatchObject({ code: 2, stderr: expect.stringContaining("watch: expected no more arguments after the store") as string });
    expect((await aiokv("--help")).stdout).toContain("watch <store>");
  });
});
