// Temp directories for one test each, removed when it finishes.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";

/** A fresh temp directory for the current test, removed when it finishes. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "aiokv-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `state.json` in a fresh temp directory, removed when the current test finishes. */
export async function tempFile(): Promise<string> {
  return join(await tempDir(), "state.json");
}
