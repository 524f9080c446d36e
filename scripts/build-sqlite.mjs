// pnpm bench:sqlite: builds better-sqlite3 for the bench's SQLite rows. Not at install: its
// prebuilt binary comes from GitHub, which machines without that network cannot reach, and its
// build from source (node-gyp, Node's headers) takes about two minutes of two cores, which every
// install (CI's included) would pay for rows only `pnpm bench` shows.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname } from "node:path";

// Resolved from the bench, which depends on it.
const require = createRequire(new URL("../bench/package.json", import.meta.url));
const dir = dirname(require.resolve("better-sqlite3/package.json"));
// Its own install script (prebuild-install, else node-gyp), run by npm, which puts node-gyp on the PATH.
const { status } = spawnSync("npm", ["run", "install"], { cwd: dir, stdio: "inherit" });
process.exit(status ?? 1);
