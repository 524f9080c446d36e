// The build, over the packages pnpm-workspace.yaml lists (scripts/workspace.mjs): `tsc -b` builds
// each one's ESM and declarations into dist/; then each published package with a
// tsconfig.cjs.json is built again as CommonJS into dist/cjs/ (marked "type": "commonjs"), so
// that `require("aiokv")` works with types on every Node.js the packages support.
// `node scripts/build.mjs [--esm | --clean]`: ESM only (what the tests and the bench need), or
// remove what the build wrote.
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { root, workspacePackages } from "./workspace.mjs";

const tsc = (...args) => execFileSync(process.execPath, [createRequire(import.meta.url).resolve("typescript/bin/tsc"), ...args], { cwd: root, stdio: "inherit" });
const mode = process.argv[2];
const packages = workspacePackages();
const projects = packages.map((pkg) => pkg.dir).filter((dir) => existsSync(join(root, dir, "tsconfig.json")));

tsc("-b", ...(mode === "--clean" ? ["--clean"] : []), ...projects);
if (mode === undefined) {
  for (const pkg of packages) {
    const config = join(root, pkg.dir, "tsconfig.cjs.json");
    if (pkg.private || !existsSync(config)) continue;
    tsc("-p", config);
    writeFileSync(join(root, pkg.dir, "dist", "cjs", "package.json"), '{ "type": "commonjs" }\n');
  }
} else if (mode !== "--esm" && mode !== "--clean") {
  throw new Error(`usage: node scripts/build.mjs [--esm | --clean], not ${mode}`);
}
