// What several of this package's test files need: a state file in a fresh temp dir, and the
// built `aiokv` command run as a real process.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";

/** `state.json` in a fresh temp directory, removed when the current test finishes. */
export async function tempFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "aiokv-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return join(dir, "state.json");
}

/** What a run of the command did. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

const bin = fileURLToPath(new URL("../dist/cli.js", import.meta.url));

/** Runs the built `aiokv` command with `args`; resolves its exit code and output. */
export function aiokv(...args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}
