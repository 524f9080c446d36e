// The README's "Writing a backend" example, run as written: its backend and its test file are
// copied from the README into a temp dir, where @aiokv/test-suite and @aiokv/core resolve to
// this workspace's packages, and the test file is imported here, registering its suites.
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll } from "vitest";
import { root } from "../helpers/processes.js";
import { readmeBlock } from "../helpers/readme.js";

/** The README's one ts block that starts with the line `first`. */
const block = (first: string): string => readmeBlock(`starting with ${first}`, (text) => text.startsWith(`${first}\n`));

const dir = await mkdtemp(join(tmpdir(), "aiokv-readme-backend-"));
afterAll(() => rm(dir, { recursive: true, force: true }));
await mkdir(join(dir, "node_modules", "@aiokv"), { recursive: true });
for (const name of ["core", "test-suite"]) await symlink(join(root, "packages", name), join(dir, "node_modules", "@aiokv", name), "dir");
await writeFile(join(dir, "map-backend.ts"), block("// map-backend.ts"));
await writeFile(join(dir, "map-backend.test.ts"), block("// map-backend.test.ts"));
await import(pathToFileURL(join(dir, "map-backend.test.ts")).href);
