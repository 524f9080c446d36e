import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Harness } from "@aiokv/test-suite";
import { FileBackend, type FileBackendOptions } from "@aiokv/fs-backend";
import { onTestFinished } from "vitest";

/** A fresh temp directory for the current test, removed when it finishes. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "aiokv-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A state file in a fresh temp directory, planted and peeked at with plain node:fs. */
export async function fileHarness(options: FileBackendOptions = {}): Promise<Harness & { file: string }> {
  const file = join(await tempDir(), "state.json");
  return {
    file,
    backend: () => new FileBackend(file, options),
    plant: (text) => (text === undefined ? rm(file, { force: true }) : writeFile(file, text)),
    peek: () => readIfExists(file),
    peekAt: readIfExists,
  };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
