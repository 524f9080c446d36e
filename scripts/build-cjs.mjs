// The CommonJS half of the dual build: `tsc -b` builds each package's ESM into dist/; this
// builds the same sources as CommonJS into dist/cjs/ (marked "type": "commonjs"), so that
// `require("aiokv")` works with types on every Node.js the packages support. In dependency order.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
for (const name of ["core", "fs-backend", "memory-backend", "redis-backend", "aiokv"]) {
  const dir = new URL(`../packages/${name}/`, import.meta.url);
  execFileSync(process.execPath, [tsc, "-p", new URL("tsconfig.cjs.json", dir).pathname], { stdio: "inherit" });
  writeFileSync(new URL("dist/cjs/package.json", dir), '{ "type": "commonjs" }\n');
}
