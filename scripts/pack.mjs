// Packs every published package with pnpm (which turns workspace: ranges into versions), as
// npm would publish it, and checks each tarball with publint (package.json and files) and
// @arethetypeswrong/cli (types resolve for import and require alike, in every resolution mode).
// `node scripts/pack.mjs [dir] [--no-check]`: the tarballs stay in dir (a temp dir by default), for tests.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const published = ["core", "fs-backend", "memory-backend", "redis-backend", "aiokv", "test-suite"];
// The contract suite runs inside vitest, which is ESM only: so is the suite.
const esmOnly = new Set(["test-suite"]);

/** Packs the published packages into `dir`; resolves the tarballs' paths by package directory name. */
export function pack(dir) {
  mkdirSync(dir, { recursive: true });
  const tarballs = {};
  for (const name of published) {
    const before = new Set(readdirSync(dir));
    execFileSync("pnpm", ["pack", "--pack-destination", dir], { cwd: new URL(`../packages/${name}/`, import.meta.url), stdio: "ignore" });
    const [tarball] = readdirSync(dir).filter((file) => !before.has(file));
    tarballs[name] = join(dir, tarball);
  }
  return tarballs;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [target, flag] = process.argv.slice(2);
  const dir = target ?? mkdtempSync(join(tmpdir(), "aiokv-pack-"));
  const tarballs = pack(dir);
  if (flag === "--no-check") process.exit(0);
  const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
  for (const [name, tarball] of Object.entries(tarballs)) {
    console.log(`\n== ${name}: ${tarball}`);
    execFileSync(bin("publint"), ["run", tarball, "--strict"], { stdio: "inherit" });
    execFileSync(bin("attw"), [tarball, "--profile", esmOnly.has(name) ? "esm-only" : "strict"], { stdio: "inherit" });
  }
}
