import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { unlessAbsent } from "@aiokv/core";
import { journalHarness, type Harness } from "@aiokv/test-suite";
import { FileBackend, type FileBackendOptions } from "@aiokv/fs-backend";
import { tempDir } from "./temp.js";

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

/**
 * {@link fileHarness} whose stores keep a journal (`journal: true`): `peek()` reads the file and
 * its journal (`<file>.journal`) with plain node:fs, and answers what they hold together.
 */
export async function fileJournalHarness(options: FileBackendOptions = {}): Promise<Harness & { file: string }> {
  const h = await fileHarness(options);
  return { ...journalHarness(h, () => unlessAbsent(readFile(`${h.file}.journal`))), file: h.file };
}

function readIfExists(path: string): Promise<string | undefined> {
  return unlessAbsent(readFile(path, "utf8"));
}
