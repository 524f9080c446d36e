// Packs every published package with pnpm (which turns workspace: ranges into versions), as
// npm would publish it, and checks each tarball with publint (package.json and files) and
// @arethetypeswrong/cli (types resolve for import and require alike, in every resolution mode).
// `node scripts/pack.mjs [dir] [--no-check]`: the tarballs stay in dir (a temp dir by default);
// with --no-check it prints them as JSON, { name: path }, for tests.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publishedPackages, root } from "./workspace.mjs";

/** Packs the published packages into `dir`; resolves their tarballs' paths by package name. */
export function pack(dir) {
  mkdirSync(dir, { recursive: true });
  const tarballs = {};
  for (const pkg of publishedPackages()) {
    const before = new Set(readdirSync(dir));
    execFileSync("pnpm", ["pack", "--pack-destination", dir], { cwd: join(root, pkg.dir), stdio: "ignore" });
    const [tarball] = readdirSync(dir).filter((file) => !before.has(file));
    tarballs[pkg.name] = join(dir, tarball);
  }
  return tarballs;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [target, flag] = process.argv.slice(2);
  const dir = target ?? mkdtempSync(join(tmpdir(), "aiokv-pack-"));
  const tarballs = pack(dir);
  if (flag === "--no-check") {
    console.log(JSON.stringify(tarballs));
    process.exit(0);
  }
  const bin = (name) => join(root, "node_modules", ".bin", name);
  for (const pkg of publishedPackages()) {
    const tarball = tarballs[pkg.name];
    console.log(`\n== ${pkg.name}: ${tarball}`);
    execFileSync(bin("publint"), ["run", tarball, "--strict"], { stdio: "inherit" });
    // A package without a CommonJS build (the contract suite runs inside vitest, which is ESM
    // only) is checked as ESM only.
    const profile = existsSync(join(root, pkg.dir, "tsconfig.cjs.json")) ? "strict" : "esm-only";
    execFileSync(bin("attw"), [tarball, "--profile", profile], { stdio: "inherit" });
  }
}
