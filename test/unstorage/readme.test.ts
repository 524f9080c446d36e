// The package README's example, run as it is written (as example.mjs in an empty directory, its
// two imports pointed at the built packages): what it prints, and the file it leaves.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { root } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const run = promisify(execFile);
const readme = readFileSync(join(root, "packages/unstorage/README.md"), "utf8");
const example = /```ts\n(\/\/ example\.mjs\n[\s\S]*?)```/.exec(readme)?.[1] ?? "";

it("runs the README's example: the events it logs and the file it leaves", async () => {
  expect(example).toContain('aiokvDriver({ path: "state.json" })');
  const dir = await tempDir();
  const code = example
    .replace('from "unstorage"', `from ${JSON.stringify(import.meta.resolve("unstorage"))}`)
    .replace('from "@aiokv/unstorage"', `from ${JSON.stringify(import.meta.resolve("@aiokv/unstorage"))}`);
  await writeFile(join(dir, "example.mjs"), code);
  const { stdout } = await run(process.execPath, ["example.mjs"], { cwd: dir });
  expect(stdout).toBe("remove visits\n");
  // What the README says the file then holds.
  expect(await readFile(join(dir, "state.json"), "utf8")).toBe(/```json\n(\{\n {2}"user:1"[\s\S]*?)```/.exec(readme)?.[1]);
});
