// pnpm bench --baseline <git ref>: aiokv's core and file backend as they were at a commit, built
// beside this checkout (bench/dist/baseline/<commit>/), so that journal-off aiokv can be compared
// with an earlier main in the same run (issue 12: "journal off: no workload slower than main").
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm, symlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Builds the commit's core and file backend once (kept for later runs); their directory and the short commit. */
export async function buildBaseline(ref: string): Promise<{ dir: string; commit: string }> {
  const commit = execFileSync("git", ["-C", root, "rev-parse", "--short", `${ref}^{commit}`], { encoding: "utf8" }).trim();
  const dir = fileURLToPath(new URL(`../dist/baseline/${commit}/`, import.meta.url));
  if (existsSync(join(dir, "packages", "fs-backend", "dist", "index.js"))) return { dir, commit };
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const archive = execFileSync("git", ["-C", root, "archive", "--format=tar", commit, "packages/core", "packages/fs-backend", "tsconfig.base.json"], {
    maxBuffer: 1 << 30,
  });
  execFileSync("tar", ["-x", "-C", dir], { input: archive });
  // The core's dependencies as this checkout installed them; the backend's @aiokv/core is the commit's.
  await symlink(join(root, "packages", "core", "node_modules"), join(dir, "packages", "core", "node_modules"), "dir");
  await mkdir(join(dir, "packages", "fs-backend", "node_modules", "@aiokv"), { recursive: true });
  await symlink(join(dir, "packages", "core"), join(dir, "packages", "fs-backend", "node_modules", "@aiokv", "core"), "dir");
  const tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-b", "packages/core", "packages/fs-backend"], { cwd: dir, stdio: "inherit" });
  return { dir, commit };
}
