// A consumer's project, made from scratch in a temp dir: it installs the packed tarballs (as
// npm would publish them) and runs the README's examples there. The examples must type-check
// except on the lines marked ✗, which must fail; the testing guide's examples
// run under vitest and node:test, its fake-timers ones too; a CommonJS file requires every
// package, with types.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { root } from "../helpers/processes.js";
import { readmeBlock, readmeBlocks } from "../helpers/readme.js";

const run = promisify(execFile);
/** The README's ts block whose text contains every one of `marks`. */
const block = (...marks: string[]): string => readmeBlock(`with ${marks.join(", ")}`, (text) => marks.every((mark) => text.includes(mark)));

/** The version installed in the workspace, so that the consumer installs from pnpm's store. */
async function installed(name: string, from = root): Promise<string> {
  const manifest = JSON.parse(await readFile(join(from, "node_modules", name, "package.json"), "utf8")) as { version: string };
  return manifest.version;
}

// Every other self-contained example (it starts with its imports) must type-check as it is.
const standalone = readmeBlocks.filter((text) => text.startsWith("import ") && !text.includes("✗"));
const typedExample = block("interface BotState", "✗");
const schemaExample = block("schema: z.object", "✗");
let dir = "";

describe("a consumer project on the packed packages", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiokv-consumer-"));
    const packs = join(dir, "packs");
    const { stdout } = await run(process.execPath, [join(root, "scripts/pack.mjs"), packs, "--no-check"]);
    // Every published package, each installed from its tarball as npm would publish it.
    const tarballs = Object.fromEntries(Object.entries(JSON.parse(stdout) as Record<string, string>).map(([name, path]) => [name, `file:${path}`]));
    const ours = Object.keys(tarballs);
    const manifest = {
      name: "consumer",
      private: true,
      type: "module",
      dependencies: {
        ...Object.fromEntries(ours.map((name) => [name, tarballs[name]])),
        zod: await installed("zod", join(root, "packages/core")),
        // The peers of @aiokv/keyv and @aiokv/unstorage, for the README's examples of them.
        keyv: await installed("keyv", join(root, "packages/keyv")),
        unstorage: await installed("unstorage", join(root, "packages/unstorage")),
        typescript: await installed("typescript"),
        vitest: await installed("vitest"),
        "@types/node": await installed("@types/node"),
      },
      // aiokv's own dependencies on @aiokv/* come from the tarballs too, not the registry.
      pnpm: { overrides: Object.fromEntries(ours.filter((name) => name.startsWith("@aiokv/")).map((name) => [name, tarballs[name]])) },
    };
    await writeFile(join(dir, "package.json"), JSON.stringify(manifest, null, 2));
    await writeFile(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2022", module: "NodeNext", strict: true, outDir: "dist", skipLibCheck: true, types: ["node"] },
        include: ["*.ts", "*.cts"],
      }),
    );
    for (const [i, text] of standalone.entries()) await writeFile(join(dir, `readme-${i}.ts`), text);
    await writeFile(join(dir, "typed.ts"), typedExample);
    await writeFile(join(dir, "schema.ts"), schemaExample);
    await writeFile(join(dir, "cooldown.ts"), block("// cooldown.ts\n"));
    await writeFile(join(dir, "cooldown.test.ts"), block("// cooldown.test.ts", "vitest"));
    await writeFile(join(dir, "cooldown.node.test.ts"), block("// cooldown.test.ts", "node:test"));
    await writeFile(join(dir, "timers.test.ts"), block("// timers.test.ts", "vi.useFakeTimers()", "new MemoryBackend()", "state.json"));
    await writeFile(join(dir, "timers.node.test.ts"), block("// timers.node.test.ts", "mock.timers.enable("));
    await writeFile(join(dir, "required.cts"), requiredExample);
    await run("pnpm", ["install", "--prefer-offline", "--config.confirmModulesPurge=false"], { cwd: dir });
    return () => rm(dir, { recursive: true, force: true });
  }, 120_000);

  it("type-checks the README's examples, failing exactly on the lines marked ✗", async () => {
    expect(standalone.length).toBeGreaterThanOrEqual(3);
    const result = await run(join(dir, "node_modules/.bin/tsc"), ["-p", "."], { cwd: dir }).then(
      () => "",
      (error: { stdout: string }) => error.stdout,
    );
    const errors = Array.from(result.matchAll(/^(\S+)\((\d+),\d+\): error (TS\d+)/gm), (m) => `${m[1]}:${m[2]}`);
    const marked = (file: string, text: string): string[] =>
      text.split("\n").flatMap((line, i) => (line.includes("✗") ? [`${file}:${i + 1}`] : []));
    expect(errors.toSorted(), result).toStrictEqual([...marked("schema.ts", schemaExample), ...marked("typed.ts", typedExample)].toSorted());
  }, 60_000);

  it("runs the testing guide's vitest example", async () => {
    const { stdout } = await run(join(dir, "node_modules/.bin/vitest"), ["run", "cooldown.test.ts"], { cwd: dir, env: { ...process.env, NO_COLOR: "1" } });
    expect(stdout).toMatch(/Tests\s+\S*2 passed/);
  }, 60_000);

  it("runs the testing guide's node:test example", async () => {
    const { stdout } = await run(process.execPath, ["--test", "--test-reporter=tap", "dist/cooldown.node.test.js"], { cwd: dir });
    expect(stdout).toMatch(/# pass 1\n# fail 0/);
  }, 60_000);

  // A hang is the failure these guard against (a write waiting on a faked timer): the runs time out.
  it("runs the testing guide's fake-timers example under vitest, on memory and on a file", async () => {
    const { stdout } = await run(join(dir, "node_modules/.bin/vitest"), ["run", "timers.test.ts", "--testTimeout=10000"], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: "1" },
    });
    expect(stdout).toMatch(/Tests\s+\S*2 passed/);
  }, 60_000);

  it("runs the testing guide's mock-timers example under node:test", async () => {
    const { stdout } = await run(process.execPath, ["--test", "--test-reporter=tap", "--test-timeout=10000", "dist/timers.node.test.js"], { cwd: dir });
    expect(stdout).toMatch(/# pass 1\n# fail 0/);
  }, 60_000);

  it("requires every package from CommonJS, with types", async () => {
    const { stdout } = await run(process.execPath, ["dist/required.cjs"], { cwd: dir });
    expect(stdout).toBe("required: 7 CorruptStoreError SchemaMismatchError\n");
  }, 60_000);
});

// A .cts file compiles to require() calls, and its imports resolve through the "require"
// conditions: this fails to compile if the CommonJS types are missing or wrong.
const requiredExample = `
import { AioKV, isStoreFormatError } from "aiokv";
import { AioKV as CoreAioKV, CorruptStoreError } from "@aiokv/core";
import { FileBackend } from "@aiokv/fs-backend";
import { MemoryBackend } from "@aiokv/memory-backend";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";

async function main(): Promise<void> {
  const file = join(mkdtempSync(join(tmpdir(), "required-")), "state.json");
  const kv = new AioKV<{ count: number }>(new FileBackend(file));
  const count: number = await kv.update("count", (n) => (n ?? 6) + 1);
  await kv.close();
  const corrupt = new CoreAioKV(new MemoryBackend({ text: "{" }));
  const error = await corrupt.get("a").catch((e: unknown) => e);
  const typed = new AioKV(new MemoryBackend({ text: '{"n": "x"}' }), { schema: z.object({ n: z.number() }) });
  const mismatch = await typed.get("n").catch((e: unknown) => e);
  if (!(error instanceof CorruptStoreError) || !isStoreFormatError(mismatch)) throw new Error("wrong errors");
  console.log("required:", count, error.name, mismatch.name);
}
void main();
`;
